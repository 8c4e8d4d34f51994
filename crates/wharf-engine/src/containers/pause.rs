//! `docker pause` and `unpause`: the shim freezes or thaws the container's cgroup, then
//! `Paused` is saved. The cgroup is the truth: a crash between the two leaves the saved flag
//! wrong, and restore takes the shim's word for it ([`ContainerService::settle_paused`]).

use super::lifecycle::not_running;
use super::model::Status;
use super::{lock, shim, Container, ContainerService};
use crate::error::{Cause, EngineError};
use std::sync::Arc;

impl ContainerService {
    /// `docker pause`: freezes every process of the container.
    pub async fn pause(&self, name: &str) -> Result<(), EngineError> {
        self.set_paused(name, true).await
    }

    pub async fn unpause(&self, name: &str) -> Result<(), EngineError> {
        self.set_paused(name, false).await
    }

    async fn set_paused(&self, name: &str, paused: bool) -> Result<(), EngineError> {
        let c = self.resolve(name)?;
        // On a task of its own: a client that hangs up must not cut the freeze from its record
        // (the request's future is dropped with the connection; a spawned task is not).
        let svc = self.handle();
        tokio::spawn(async move {
            match svc.upgrade() {
                Some(svc) => svc.set_paused_now(&c, paused).await,
                None => Err(EngineError::internal("the daemon is shutting down")),
            }
        })
        .await
        .map_err(|e| e.during("pausing"))?
    }

    async fn set_paused_now(&self, c: &Arc<Container>, paused: bool) -> Result<(), EngineError> {
        let _op = c.op.lock().await;
        let st = c.state();
        if st.status != Status::Running {
            return Err(not_running(c.id()));
        }
        if st.paused == paused {
            return Err(EngineError::conflict(if paused {
                format!("Container {} is already paused", c.id())
            } else {
                format!("Container {} is not paused", c.id())
            }));
        }
        shim::freeze(&self.exec_dir(c.id()), paused)
            .await
            .map_err(|e| {
                e.during(&format!(
                    "Cannot {} container {}",
                    if paused { "pause" } else { "unpause" },
                    c.id()
                ))
            })?;
        // A crash here leaves the saved `Paused` wrong; restore takes the shim's word for it.
        crate::failpoint::hit(
            &self.ctx.exec_root,
            if paused {
                crate::failpoint::PAUSE_FROZEN
            } else {
                crate::failpoint::UNPAUSE_THAWED
            },
        );
        lock(&c.state).paused = paused;
        self.emit(c, if paused { "pause" } else { "unpause" }, &[]);
        self.persist_state(c)
    }

    /// A frozen process cannot act on a signal; like Docker, deliver it and then thaw.
    pub(super) async fn thaw_after_signal(&self, c: &Container) {
        if !lock(&c.state).paused {
            return;
        }
        if shim::freeze(&self.exec_dir(c.id()), false).await.is_ok() {
            lock(&c.state).paused = false;
            let _ = self.persist_state(c);
        }
    }

    /// At restore, for a re-adopted container: `frozen` is what its shim says of its cgroup
    /// now. A pause or unpause cut by a crash between the freezer and the record leaves the
    /// saved flag wrong; the kernel's state wins, and is saved.
    pub(super) fn settle_paused(&self, c: &Container, frozen: Option<bool>) {
        let Some(frozen) = frozen else { return };
        let saved = lock(&c.state).paused;
        if saved == frozen {
            return;
        }
        lock(&c.state).paused = frozen;
        if let Err(e) = self.persist_state(c) {
            tracing::error!(container = %c.id(), error = %e, "saving the paused state");
        }
        if frozen {
            tracing::info!(container = %c.id(), "restore: marked paused: its cgroup is frozen (a pause cut by the daemon's crash)");
        } else {
            tracing::info!(container = %c.id(), "restore: marked unpaused: its cgroup is not frozen (an unpause cut by the daemon's crash)");
        }
    }
}
