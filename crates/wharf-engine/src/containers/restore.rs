//! Re-adopting containers when wharfd starts: the shims kept them running while we were away.

use super::model::{ContainerRuntimeState, ContainerSpec, Status};
use super::{lock, shim, Container, ContainerService, SNAPSHOT_PREFIX};
use crate::timefmt;
use std::sync::Arc;

impl ContainerService {
    /// Loads every container and reconciles its saved state with what is really there:
    /// a live shim is re-adopted, an exit that happened while we were down is recorded with its
    /// real code and time, and after a reboot every run is over.
    pub async fn restore(&self, rebooted: bool) -> Result<usize, wharf_storage::StorageError> {
        let records = self.ctx.db.list_containers()?;
        let n = records.len();
        for rec in records {
            let spec: ContainerSpec = match serde_json::from_str(&rec.config) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(container = %rec.id, error = %e, "unreadable container config; skipped");
                    continue;
                }
            };
            let state: ContainerRuntimeState = serde_json::from_str(&rec.state).unwrap_or_default();
            let c = Arc::new(Container::new(spec, rec.name.clone(), state.clone()));
            self.insert(c.clone());
            let exec_dir = self.exec_dir(c.id());
            match state.status {
                Status::Running if rebooted || state.boot_id != self.ctx.boot_id => {
                    // The host rebooted: the process is gone and nothing recorded its end.
                    {
                        let mut st = lock(&c.state);
                        st.status = Status::Exited;
                        st.exit_code = 255;
                        st.pid = 0;
                        st.finished_at = timefmt::now_rfc3339();
                    }
                    c.events.send_modify(|e| {
                        e.finished = e.started;
                        e.exit_code = 255;
                    });
                    let _ = self.persist_state(&c);
                    super::release_run_dir(&exec_dir);
                }
                Status::Running => {
                    if let Some(exit) = shim::read_exit(&exec_dir) {
                        self.on_exit(&c, Some(exit)).await;
                    } else if shim::alive(&exec_dir).await {
                        tracing::info!(container = %c.id(), "re-adopted running container");
                        self.spawn_monitor(c.clone());
                    } else {
                        self.on_exit(&c, None).await;
                    }
                }
                Status::Removing => {
                    if let Err(e) = self.remove_locked(&c).await {
                        tracing::warn!(container = %c.id(), error = %e, "finishing an interrupted removal");
                    }
                }
                _ => {
                    if exec_dir.exists() {
                        super::release_run_dir(&exec_dir);
                    }
                }
            }
        }
        self.collect_orphans();
        for c in self.all() {
            self.start_by_policy(&c);
        }
        Ok(n)
    }

    /// Writable layers whose container record is gone: a removal that the daemon did not
    /// finish tearing down before it stopped.
    fn collect_orphans(&self) {
        let Ok(snaps) = self.ctx.snaps.list() else {
            return;
        };
        for s in snaps {
            let Some(id) = s.key.strip_prefix(SNAPSHOT_PREFIX) else {
                continue;
            };
            if self.resolve(id).is_err() {
                tracing::info!(container = %id, "removing leftovers of a removed container");
                self.spawn_teardown(id.to_string(), s.key.clone());
            }
        }
    }
}
