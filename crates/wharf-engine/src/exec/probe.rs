//! Health probes as execs (dockerd's `cmdProbe`), for the containers service's health monitor,
//! which reaches this through the `ProbeHook` the engine gives it.

use super::ExecService;
use crate::containers::health::{self, ProbeHook};
use crate::containers::Container;
use futures_util::StreamExt;
use std::sync::Weak;
use std::time::{Duration, Instant};
use wharf_api::exec::{ExecCreateRequest, ExecStartRequest};
use wharf_backend::ExecStarted;

/// After a timed-out probe is killed, how long to wait for its exit to be reported (dockerd
/// waits so that dying probes do not pile up).
const KILL_WAIT: Duration = Duration::from_secs(5);

impl ExecService {
    /// The hook the containers service probes through; it holds the service weakly, so a
    /// dropped engine ends its monitors.
    pub fn probe_hook(me: &Weak<ExecService>) -> ProbeHook {
        let me = me.clone();
        Box::new(move |c, cmd, timeout| {
            let me = me.clone();
            Box::pin(async move {
                match me.upgrade() {
                    Some(svc) => svc.probe(&c, cmd, timeout).await,
                    None => (-1, "the daemon is shutting down".into()),
                }
            })
        })
    }

    /// One probe: the exit code and the combined output. Failures to run it count as failed
    /// probes with exit code -1, as in dockerd.
    async fn probe(&self, c: &Container, cmd: Vec<String>, timeout: Duration) -> (i64, String) {
        let req = ExecCreateRequest {
            attach_stdout: true,
            attach_stderr: true,
            cmd: Some(cmd),
            ..Default::default()
        };
        let id = match self.create(c.id(), req).await {
            Ok(id) => id,
            Err(e) => return (-1, e.message()),
        };
        let result = self.run_probe(c, &id, timeout).await;
        // Nobody inspects a probe's exec afterwards; a short interval would otherwise fill
        // the exec table until the exited ones expire.
        self.forget(&id);
        result
    }

    async fn run_probe(&self, c: &Container, id: &str, timeout: Duration) -> (i64, String) {
        let mut output = match self.start(id, ExecStartRequest::default()).await {
            Ok(ExecStarted::Attached(session)) => session.output,
            Ok(ExecStarted::Detached) => return (-1, "health check exec was detached".into()),
            Err(e) => return (-1, e.message()),
        };
        let mut out = health::Output::default();
        let finished = tokio::time::timeout(timeout, async {
            while let Some(chunk) = output.next().await {
                out.push(&chunk.data);
            }
        })
        .await;
        if finished.is_err() {
            self.kill(id).await;
            drop(output);
            let deadline = Instant::now() + KILL_WAIT;
            while Instant::now() < deadline {
                match self.inspect(id).await {
                    Ok(i) if i.exit_code.is_none() => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    _ => break,
                }
            }
            return (-1, health::timeout_message(timeout, &out.text()));
        }
        match self.inspect(id).await.map(|i| i.exit_code) {
            Ok(Some(code)) => (code, out.text()),
            Ok(None) => (
                -1,
                format!("healthcheck for container {} has no exit code", c.id()),
            ),
            Err(e) => (-1, e.message()),
        }
    }
}
