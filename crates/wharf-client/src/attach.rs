//! Attach with every option the CLI uses (stdin, detach keys) and TTY resizes.

use crate::{encode, with_query, AttachStream, Client, ClientError, Method};

/// Query options of `POST /containers/{id}/attach` (always `stream=1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// docker's `--detach-keys` (`ctrl-p,ctrl-q`); sent only when set, as the CLI does.
    pub detach_keys: Option<String>,
}

impl AttachOptions {
    /// The query string, in the CLI's (sorted) order.
    pub fn query(&self) -> Vec<String> {
        let mut q = Vec::new();
        if let Some(k) = self.detach_keys.as_deref().filter(|k| !k.is_empty()) {
            q.push(format!("detachKeys={}", encode(k)));
        }
        if self.stderr {
            q.push("stderr=1".to_string());
        }
        if self.stdin {
            q.push("stdin=1".to_string());
        }
        if self.stdout {
            q.push("stdout=1".to_string());
        }
        q.push("stream=1".to_string());
        q
    }
}

impl Client {
    /// Hijacks the container's stdio with explicit options. Without stdin the write side is
    /// shut at once, as the CLI does, so the daemon never waits for input that cannot come.
    pub async fn attach_with(
        &self,
        id: &str,
        opts: &AttachOptions,
    ) -> Result<AttachStream, ClientError> {
        let path = with_query(&format!("/containers/{}/attach", encode(id)), &opts.query());
        let path = self.versioned(&path).await?;
        let upgraded = self.inner.transport.upgrade(&path, None).await?;
        let mut s = AttachStream::new(upgraded);
        if !opts.stdin {
            s.shutdown_write().await?;
        }
        Ok(s)
    }

    /// `POST /containers/{id}/resize?h=&w=`: the container's TTY takes the terminal's size.
    pub async fn resize(&self, id: &str, height: u16, width: u16) -> Result<(), ClientError> {
        let path = format!("/containers/{}/resize?h={height}&w={width}", encode(id));
        self.request(Method::POST, &path, None)
            .await?
            .error_for_status()
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_query_is_sorted_like_the_cli() {
        let o = AttachOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            detach_keys: Some("ctrl-a,x".into()),
        };
        assert_eq!(
            o.query().join("&"),
            "detachKeys=ctrl-a%2Cx&stderr=1&stdin=1&stdout=1&stream=1"
        );
        let o = AttachOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        assert_eq!(o.query().join("&"), "stderr=1&stdout=1&stream=1");
    }
}
