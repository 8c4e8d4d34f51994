//! Re-adopting containers when wharfd starts: the shims kept them running while we were away.

use super::model::{ContainerRuntimeState, ContainerSpec, Status};
use super::reclaim::{launchers, Reclaimed};
use super::{lock, shim, Container, ContainerService, SNAPSHOT_PREFIX};
use crate::timefmt;
use std::collections::HashSet;
use std::sync::Arc;

impl ContainerService {
    /// Loads every container and reconciles its saved state with what is really there:
    /// a live shim is re-adopted, an exit that happened while we were down is recorded with its
    /// real code and time, and after a reboot every run is over.
    pub async fn restore(&self, rebooted: bool) -> Result<usize, wharf_storage::StorageError> {
        let records = self.ctx.db.list_containers()?;
        let n = records.len();
        let recorded: HashSet<String> = records.iter().map(|r| r.id.clone()).collect();
        // Launches that a killed daemon left running: judged once they are done.
        let launching = launchers();
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
            // Which volumes it uses lives in memory only; the records are the truth.
            for m in c.spec.mounts.iter().filter(|m| m.r#type == "volume") {
                self.ctx.volume_refs.add(&m.name, c.id());
            }
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
                    tracing::info!(container = %c.id(), "restore: marked exited (255): the host rebooted under it");
                }
                Status::Running => {
                    // Its run holds its volumes mounted (`on_exit` below, or a later exit,
                    // unmounts them).
                    crate::mounts::start::remount(&self.volumes, c.id(), &c.spec.mounts);
                    if let Some(exit) = shim::read_exit(&exec_dir) {
                        tracing::info!(container = %c.id(), exit_code = exit.exit_code, "restore: marked exited: it exited while the daemon was down");
                        self.on_exit(&c, Some(exit)).await;
                    } else if let Ok(now) = shim::state(&exec_dir).await {
                        tracing::info!(container = %c.id(), "restore: re-adopted running container");
                        self.settle_paused(&c, now.frozen);
                        crate::exec::files::remove_stale(c.id(), &exec_dir);
                        self.spawn_monitor(c.clone());
                    } else {
                        tracing::info!(container = %c.id(), "restore: marked exited (255): its shim is gone without an exit status");
                        // on_exit also takes what the dead shim left (processes in the
                        // cgroups, the cgroups, runtime state).
                        self.on_exit(&c, None).await;
                    }
                }
                Status::Removing => {
                    // Whether `-v` was asked is not recorded: anonymous volumes stay, as
                    // after dockerd's own interrupted removals.
                    if let Err(e) = self.remove_locked(&c, false).await {
                        tracing::warn!(container = %c.id(), error = %e, "finishing an interrupted removal");
                    }
                }
                // Not running by its record, but the record is written only after the shim
                // reported: a start cut by a crash leaves a live shim here.
                _ => {
                    self.wait_for_launch(c.id(), &launching).await;
                    match self.reclaim_run(c.id()).await {
                        Reclaimed::Nothing => {}
                        Reclaimed::Stopped(exit) => {
                            {
                                let mut st = lock(&c.state);
                                st.status = Status::Exited;
                                st.pid = 0;
                                st.paused = false;
                                st.exit_code =
                                    exit.as_ref().map_or(137, |e| i64::from(e.exit_code));
                                st.finished_at = exit
                                    .map(|e| e.finished_at)
                                    .unwrap_or_else(timefmt::now_rfc3339);
                            }
                            let code = c.state().exit_code;
                            c.events.send_modify(|e| e.exit_code = code);
                            if let Err(e) = self.persist_state(&c) {
                                tracing::error!(container = %c.id(), error = %e, "saving exit state");
                            }
                            tracing::info!(container = %c.id(), exit_code = code, "restore: stopped the process of a start cut by the daemon's crash; marked exited");
                        }
                        Reclaimed::Stuck => {
                            crate::mounts::start::remount(&self.volumes, c.id(), &c.spec.mounts);
                            // Still running and beyond our SIGKILL: show it as running, so
                            // that stop and rm can try again, rather than hide it.
                            {
                                let mut st = lock(&c.state);
                                st.status = Status::Running;
                                st.pid = 0;
                                st.boot_id = self.ctx.boot_id.clone();
                            }
                            c.events.send_modify(|e| e.started += 1);
                            let _ = self.persist_state(&c);
                            self.spawn_monitor(c.clone());
                            tracing::info!(container = %c.id(), "restore: adopted as running a container whose cut start could not be stopped");
                        }
                        Reclaimed::Cleaned => {
                            tracing::info!(container = %c.id(), "restore: cleaned the run state a stopped container left");
                        }
                    }
                }
            }
        }
        self.collect_orphans(&recorded);
        for c in self.all() {
            self.start_by_policy(&c);
        }
        Ok(n)
    }

    /// What a container whose record is gone left: a removal that the daemon did not finish
    /// tearing down before it stopped (writable layer, exec dir with maybe a live shim, runtime
    /// state and cgroups, data dir), or a create cut before its record. Judged by the records'
    /// ids, not by name lookup: a container may be named like another's 64-hex id, and a
    /// record whose config cannot be read is still a record (its files stay for an operator).
    fn collect_orphans(&self, recorded: &HashSet<String>) {
        let mut ids: HashSet<String> = HashSet::new();
        if let Ok(snaps) = self.ctx.snaps.list() {
            ids.extend(
                snaps
                    .iter()
                    .filter_map(|s| s.key.strip_prefix(SNAPSHOT_PREFIX).map(String::from)),
            );
        }
        for dir in [
            self.ctx.exec_root.join("containers"),
            self.ctx.exec_root.join("runtime"),
            self.ctx.data_root.join("containers"),
        ] {
            if let Ok(rd) = std::fs::read_dir(&dir) {
                ids.extend(rd.flatten().filter_map(|e| {
                    let n = e.file_name().into_string().ok()?;
                    crate::ids::is_full_id(&n).then_some(n)
                }));
            }
        }
        for id in ids {
            if !recorded.contains(&id) {
                tracing::info!(container = %id, "restore: removing leftovers of a removed container (or of a create cut before its record)");
                self.spawn_teardown(id.clone(), format!("{SNAPSHOT_PREFIX}{id}"));
            }
        }
    }
}
