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
    /// `--registry-mirror`, `--insecure-registry`, `--certs-dir`, `--max-concurrent-*`.
    pub registry: crate::distribution::settings::RegistryFlags,
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
    /// The registry client, built once from the registry flags: its connections and tokens
    /// are shared by every pull.
    pub registries: wharf_distribution::Registries,
    /// The engine's share of the registry flags (layers a pull or push moves at once).
    pub registry: crate::distribution::settings::RegistrySettings,
    /// Which containers use which volumes (`volumes/refs.rs`).
    pub volume_refs: crate::volumes::refs::VolumeRefs,
}

#[cfg(test)]
impl Ctx {
    /// Stores on `root` and this host's facts, for tests of the services.
    pub fn for_tests(root: &std::path::Path) -> Ctx {
        let db = Arc::new(Db::open(&root.join("meta.db")).expect("meta.db"));
        let (registry, registries) = crate::distribution::settings::RegistrySettings::new(
            &crate::distribution::settings::RegistryFlags::default(),
            "test",
        )
        .expect("default registry settings");
        Ctx {
            data_root: root.to_path_buf(),
            exec_root: root.join("exec"),
            shim_path: root.join("wharf-shim"),
            cgroup_parent: "wharf-test".into(),
            content: Arc::new(ContentStore::open(&root.join("content")).expect("content")),
            snaps: Arc::new(Snapshotter::new(root, db.clone()).expect("snapshots")),
            db,
            boot_id: String::new(),
            cgroup_warmer: None,
            events: crate::events::EventBus::default(),
            host: crate::host::HostFacts::probe(),
            host_gateway_ip: None,
            ingest: wharf_storage::IngestPolicy::statvfs(
                wharf_storage::IngestLimits::unlimited(),
                root,
            ),
            registries,
            registry,
            volume_refs: Default::default(),
        }
    }
}
