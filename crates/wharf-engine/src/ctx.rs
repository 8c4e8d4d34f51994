//! What every service shares: roots, stores and the daemon's settings.

use std::path::PathBuf;
use std::sync::Arc;
use wharf_storage::{ContentStore, Db, Snapshotter};

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// The `wharf-shim` binary.
    pub shim_path: PathBuf,
    /// Containers' cgroups live at `/<cgroup_parent>/<id>`.
    pub cgroup_parent: String,
    /// What `--add-host name:host-gateway` resolves to; `None` leaves it to the engine (the
    /// address of the host's default-route interface).
    pub host_gateway_ip: Option<std::net::IpAddr>,
    /// Bounds of every layer ingest (`--max-layer-size`, `--max-layer-ratio`,
    /// `--min-free-space`).
    pub ingest_limits: wharf_storage::IngestLimits,
}

pub struct Ctx {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub shim_path: PathBuf,
    pub cgroup_parent: String,
    pub db: Arc<Db>,
    pub content: Arc<ContentStore>,
    pub snaps: Arc<Snapshotter>,
    pub boot_id: String,
    /// Keeps the cgroup migration lock ready while containers and execs start, so that their
    /// first migration does not wait out an RCU grace period (`wharf_runtime::cgroup_lock`).
    pub cgroup_warmer: Option<Arc<wharf_runtime::cgroup_lock::CgroupLockKeeper>>,
    pub events: crate::events::EventBus,
    /// What this host can enforce, read once at start.
    pub host: crate::host::HostFacts,
    pub host_gateway_ip: Option<std::net::IpAddr>,
    /// The ingest limits, with statvfs of the data root as the free-space probe.
    pub ingest: wharf_storage::IngestPolicy,
}
