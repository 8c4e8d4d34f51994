//! The containers service: owns every container's config, state, locks and shim, and the
//! lifecycle create → start → exit → remove.

pub mod config;
pub(crate) mod devices;
mod joins;
pub mod logconfig;
pub mod logs;
pub mod model;
pub mod rootfs;

pub(crate) mod health;
pub(crate) mod init;
mod lifecycle;
mod pause;
mod query;
mod reclaim;
mod restart;
mod restore;
pub(crate) mod signals;
pub(crate) mod stdin;
mod top;
pub(crate) mod tty;
mod update;

use crate::ctx::Ctx;
// The submodules talk to shims through `super::shim`.
use crate::error::{Cause, EngineError};
use crate::shim;
use bytes::Bytes;
use model::{ContainerRuntimeState, ContainerSpec};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use tokio::sync::{mpsc, watch};

/// Progress of a container's runs, for waiters and followers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunEvents {
    pub started: u64,
    pub finished: u64,
    /// The last run whose output is all in the log (its shim is gone), published before the
    /// run's files are released so that followers let go of them.
    pub output_ended: u64,
    pub exit_code: i64,
    pub removed: bool,
}

/// Where a container's stdin goes between attachers and the shim.
#[derive(Default)]
struct StdinSlot {
    sender: Option<mpsc::Sender<Bytes>>,
    /// Bytes written before the process exists wait here until start.
    pending: Option<mpsc::Receiver<Bytes>>,
}

pub struct Container {
    pub spec: ContainerSpec,
    name: Mutex<String>,
    state: Mutex<ContainerRuntimeState>,
    pub events: watch::Sender<RunEvents>,
    /// Serializes start/stop/kill/restart/remove of this container.
    op: tokio::sync::Mutex<()>,
    stdin: Mutex<StdinSlot>,
    /// The next restart policy delay (Docker's: 100 ms doubling to 1 min, reset after 10 s up).
    backoff: Mutex<std::time::Duration>,
    /// Waiting out a restart policy's backoff (or restarting): `State.Restarting`. In memory
    /// only; a daemon start decides restarts afresh.
    restarting: AtomicBool,
}

impl Container {
    fn new(spec: ContainerSpec, name: String, state: ContainerRuntimeState) -> Container {
        let running = state.status == model::Status::Running;
        let (events, _) = watch::channel(RunEvents {
            started: u64::from(running),
            finished: 0,
            output_ended: 0,
            exit_code: state.exit_code,
            removed: false,
        });
        Container {
            spec,
            name: Mutex::new(name),
            state: Mutex::new(state),
            events,
            op: tokio::sync::Mutex::new(()),
            stdin: Mutex::new(StdinSlot::default()),
            backoff: Mutex::new(restart::FIRST_DELAY),
            restarting: AtomicBool::new(false),
        }
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub fn name(&self) -> String {
        lock(&self.name).clone()
    }

    pub fn state(&self) -> ContainerRuntimeState {
        lock(&self.state).clone()
    }

    pub fn is_running(&self) -> bool {
        lock(&self.state).status == model::Status::Running
    }

    pub fn is_restarting(&self) -> bool {
        self.restarting.load(Ordering::SeqCst)
    }

    /// The lock start, stop and rm take; `docker cp` and export hold it while they use the
    /// container's filesystem, so no start mounts its writable layer meanwhile.
    pub(crate) fn op_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.op
    }

    pub(crate) fn is_removed(&self) -> bool {
        self.events.borrow().removed
    }

    fn set_restarting(&self, on: bool) {
        self.restarting.store(on, Ordering::SeqCst);
    }
}

/// Key prefix of a container's writable-layer snapshot; the rest is the container id.
pub(crate) const SNAPSHOT_PREFIX: &str = "container-";

/// Under a run's exec dir: the container's rootfs mount point and, for `--ipc shareable`, the
/// host tmpfs other containers' `/dev/shm` binds (dockerd's `mounts/shm`).
pub(crate) const ROOTFS_DIR: &str = "rootfs";
pub(crate) const SHM_DIR: &str = "shm";

fn log_file_name(id: &str) -> String {
    format!("{id}-json.log")
}

/// A `none` container's live log readers file, in its data dir.
const LIVE_READERS: &str = ".live-json.log.readers";

/// How long removing a log waits for followers to open the files they have yet to read. They
/// open ahead of their clients, so this is only ever reached by a follower that cannot run.
const LOG_READERS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Before a log is deleted: every follower has opened what it will read (`logpin`); the
/// returned guard keeps new readers from pinning files that are going.
fn wait_for_log_readers(readers: &std::path::Path) -> Option<wharf_runtime::logpin::Removal> {
    let held = wharf_runtime::logpin::wait_for_readers(readers, LOG_READERS_WAIT);
    if held.is_none() {
        tracing::warn!(readers = %readers.display(), "log followers still had files to open after 10 s; removing the log anyway");
    }
    held
}

/// Unmounts what a run mounted on the host and removes its exec dir (per boot, tmpfs), once
/// the followers of a `none` log there have opened its files.
pub(crate) fn release_run_dir(exec_dir: &std::path::Path) {
    for m in [ROOTFS_DIR, SHM_DIR] {
        let _ = wharf_storage::unmount(&exec_dir.join(m));
    }
    let _held = wait_for_log_readers(&wharf_runtime::logpin::readers_path(
        &exec_dir.join(logconfig::LIVE_FILE),
    ));
    let _ = std::fs::remove_dir_all(exec_dir);
}

/// Filesystem and database work blocks; it runs on tokio's blocking pool so that a slow disk
/// does not stall every other request on the two async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.during("background task failed"))
}

/// A poisoned lock only means another task panicked mid-update; the data is still the best we
/// have, so keep serving rather than cascading the panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct ContainerService {
    me: Weak<ContainerService>,
    ctx: Arc<Ctx>,
    containers: RwLock<HashMap<String, Arc<Container>>>,
    images: Arc<crate::images::ImageService>,
    /// Claims, mounts and releases the volumes containers mount (`crate::mounts`).
    volumes: Arc<crate::volumes::VolumeService>,
    /// Runs health probes (on the exec service).
    probe: health::ProbeHook,
}

impl ContainerService {
    pub fn new(
        ctx: Arc<Ctx>,
        images: Arc<crate::images::ImageService>,
        volumes: Arc<crate::volumes::VolumeService>,
        probe: health::ProbeHook,
    ) -> Arc<ContainerService> {
        Arc::new_cyclic(|me| ContainerService {
            me: me.clone(),
            ctx,
            containers: RwLock::new(HashMap::new()),
            images,
            volumes,
            probe,
        })
    }

    /// Background tasks hold this, so a dropped engine lets them end.
    fn handle(&self) -> Weak<ContainerService> {
        self.me.clone()
    }

    fn all(&self) -> Vec<Arc<Container>> {
        self.containers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn insert(&self, c: Arc<Container>) {
        self.containers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.id().to_string(), c);
    }

    fn forget(&self, id: &str) {
        self.containers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Full id, exact name (with or without `/`), or a unique id prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<Arc<Container>, EngineError> {
        let map = self.containers.read().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(name_or_id) {
            return Ok(c.clone());
        }
        let bare = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if let Some(c) = map.values().find(|c| c.name() == bare) {
            return Ok(c.clone());
        }
        if !name_or_id.is_empty() && name_or_id.chars().all(|c| c.is_ascii_hexdigit()) {
            let hits: Vec<_> = map
                .values()
                .filter(|c| c.id().starts_with(name_or_id))
                .collect();
            match hits.len() {
                1 => return Ok(hits[0].clone()),
                0 => {}
                _ => {
                    return Err(EngineError::invalid(format!(
                        "Multiple IDs found with provided prefix: {name_or_id}"
                    )))
                }
            }
        }
        Err(EngineError::no_such_container(name_or_id))
    }

    /// Containers using an image, for image removal.
    pub fn users_of_image(&self, image_id: &str) -> Vec<(String, bool)> {
        self.all()
            .into_iter()
            .filter(|c| c.spec.image_id == image_id)
            .map(|c| (c.id().to_string(), c.is_running()))
            .collect()
    }

    /// `(total, running, paused, stopped)` for `/info`, counted by Docker's state string as
    /// moby's `fillContainerStates` does: a paused container is paused, not running, and
    /// anything neither running nor paused (restarting included) is stopped.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let all = self.all();
        let (mut running, mut paused) = (0, 0);
        for c in &all {
            match c.state().status_name(c.is_restarting()) {
                "running" => running += 1,
                "paused" => paused += 1,
                _ => {}
            }
        }
        (all.len(), running, paused, all.len() - running - paused)
    }

    /// A container start (or exec) will migrate a process into cgroups, which first waits for
    /// an RCU grace period (8-20 ms on v1 hosts) unless a migration happened just before. The
    /// keeper starts that wait now on its own thread, overlapping the work before the shim gets
    /// there, and keeps the lock ready for the starts that follow.
    pub(crate) fn warm_cgroup_lock(&self) {
        if let Some(w) = &self.ctx.cgroup_warmer {
            w.touch();
        }
    }

    /// Publishes a container event with Docker's attributes (image, name, labels, `extra`).
    pub(crate) fn emit(&self, c: &Container, action: &str, extra: &[(&str, String)]) {
        let labels = c.spec.config.labels.clone().unwrap_or_default();
        let image = if c.spec.config.image.is_empty() {
            c.spec.image_id.clone()
        } else {
            c.spec.config.image.clone()
        };
        self.ctx
            .events
            .container(action, c.id(), &c.name(), &image, &labels, extra);
    }

    /// The `on_detach` of an attach or exec session: the container's `detach` event.
    pub(crate) fn detach_event(&self, c: &Arc<Container>) -> Box<dyn FnOnce() + Send> {
        let svc = self.handle();
        let c = c.clone();
        Box::new(move || {
            if let Some(svc) = svc.upgrade() {
                svc.emit(&c, "detach", &[]);
            }
        })
    }

    /// The container's cgroup, relative to each hierarchy's root: under its own
    /// `--cgroup-parent` when it has one, else under the daemon's.
    fn cgroups_path(&self, c: &Container) -> String {
        config::cgroups_path(&self.ctx.cgroup_parent, &c.spec)
    }

    fn data_dir(&self, id: &str) -> PathBuf {
        self.ctx.data_root.join("containers").join(id)
    }

    /// The daemon's exec root (failpoints are armed under it).
    pub(crate) fn exec_root(&self) -> &std::path::Path {
        &self.ctx.exec_root
    }

    pub(crate) fn exec_dir(&self, id: &str) -> PathBuf {
        self.ctx.exec_root.join("containers").join(id)
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.data_dir(id).join(log_file_name(id))
    }

    /// The readers file of a `none` container's live log (`logpin`): in the data dir, so that
    /// it outlives each run's state dir, where a symlink beside the live file names it.
    fn live_log_readers(&self, id: &str) -> PathBuf {
        self.data_dir(id).join(LIVE_READERS)
    }

    pub(crate) fn rootfs_dir(&self, id: &str) -> PathBuf {
        self.exec_dir(id).join(ROOTFS_DIR)
    }

    fn persist_state(&self, c: &Container) -> Result<(), EngineError> {
        let st = c.state();
        let json = serde_json::to_string(&st).map_err(|e| EngineError::internal(e.to_string()))?;
        self.ctx
            .db
            .update_container_state(c.id(), &json)
            .map_err(|e| {
                EngineError::internal(format!("saving state of container {}: {e}", c.id()))
            })
    }
}
