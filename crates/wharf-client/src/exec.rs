//! `docker exec`: create an exec instance, start it (hijacked or detached), resize its TTY and
//! read its exit code.

use crate::{encode, AttachStream, Client, ClientError, Method};
use serde::Deserialize;
use serde_json::Value;

/// The parts of `GET /exec/{id}/json` the CLI reads.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ExecInspect {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(rename = "Running", default)]
    pub running: bool,
    /// `null` while the process runs.
    #[serde(rename = "ExitCode", default)]
    pub exit_code: Option<i64>,
    #[serde(rename = "Pid", default)]
    pub pid: i64,
}

impl Client {
    /// `POST /containers/{container}/exec` with the CLI's body; returns the exec ID.
    pub async fn exec_create(&self, container: &str, body: &Value) -> Result<String, ClientError> {
        let path = format!("/containers/{}/exec", encode(container));
        let resp: Value = self.post_json(&path, body).await?;
        resp.get("Id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| ClientError::Stream {
                message: "exec ID empty".to_string(),
            })
    }

    /// `POST /exec/{id}/start` with `Upgrade: tcp`: the process's stdio as a raw duplex stream.
    /// Without stdin the write side is shut at once.
    pub async fn exec_start(
        &self,
        id: &str,
        body: &Value,
        stdin: bool,
    ) -> Result<AttachStream, ClientError> {
        let path = self
            .versioned(&format!("/exec/{}/start", encode(id)))
            .await?;
        let bytes = serde_json::to_vec(body).map_err(|source| ClientError::Encode {
            path: path.clone(),
            source,
        })?;
        let upgraded = self.inner.transport.upgrade(&path, Some(bytes)).await?;
        let mut s = AttachStream::new(upgraded);
        if !stdin {
            s.shutdown_write().await?;
        }
        Ok(s)
    }

    /// `exec -d`: `POST /exec/{id}/start` with `{"Detach":true}` and no upgrade.
    pub async fn exec_start_detached(&self, id: &str, body: &Value) -> Result<(), ClientError> {
        let path = format!("/exec/{}/start", encode(id));
        let bytes = serde_json::to_vec(body).map_err(|source| ClientError::Encode {
            path: path.clone(),
            source,
        })?;
        self.request(Method::POST, &path, Some(bytes))
            .await?
            .error_for_status()
            .map(drop)
    }

    pub async fn exec_inspect(&self, id: &str) -> Result<ExecInspect, ClientError> {
        self.get_json(&format!("/exec/{}/json", encode(id))).await
    }

    /// `POST /exec/{id}/resize?h=&w=`.
    pub async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<(), ClientError> {
        let path = format!("/exec/{}/resize?h={height}&w={width}", encode(id));
        self.request(Method::POST, &path, None)
            .await?
            .error_for_status()
            .map(drop)
    }
}
