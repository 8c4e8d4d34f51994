//! What a container is on disk: a config fixed at create and a state that changes while it
//! runs. Both are stored as JSON columns of the `containers` table; nothing here holds a field
//! that only makes sense in memory.

use serde::{Deserialize, Serialize};
use wharf_api::container::{ContainerConfig, HostConfig};

/// Fixed at create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub id: String,
    /// RFC 3339 nanos.
    pub created: String,
    /// Entrypoint + Cmd after merging with the image: argv[0] and the rest.
    pub path: String,
    pub args: Vec<String>,
    /// The image ID (`sha256:...`) it was created from.
    pub image_id: String,
    /// The config after merging with the image's, as inspect shows it.
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    #[serde(default)]
    pub networking_config: serde_json::Value,
    /// The snapshot holding its writable layer.
    pub snapshot_key: String,
    /// Its volume, bind and tmpfs mounts, resolved at create (volumes named, anonymous ones
    /// created, `VolumesFrom` expanded), in the order they are mounted.
    #[serde(default)]
    pub mounts: Vec<wharf_api::container::MountPoint>,
    /// What each of `mounts` needs beyond what inspect shows, by destination
    /// (`mounts::MountExtra`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub mount_extras: std::collections::BTreeMap<String, crate::mounts::MountExtra>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Exited,
    Removing,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
            Status::Removing => "removing",
            Status::Dead => "dead",
        }
    }
}

impl ContainerRuntimeState {
    /// Docker's `State.Status`: a paused container is "paused", not "running", and one waiting
    /// out its restart backoff (known in memory only, see `Container`) is "restarting".
    pub fn status_name(&self, restarting: bool) -> &'static str {
        if self.status == Status::Running && self.paused {
            "paused"
        } else if restarting {
            "restarting"
        } else {
            self.status.as_str()
        }
    }
}

/// Changes over the container's life.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ContainerRuntimeState {
    pub status: Status,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: i64,
    pub oom_killed: bool,
    /// Frozen through the cgroup freezer (`docker pause`); only meaningful while running.
    #[serde(default)]
    pub paused: bool,
    /// Stopped, killed or removed by a user: restart policies leave it alone (until a user
    /// starts it again; `always` also restarts it when the daemon starts).
    #[serde(default)]
    pub manually_stopped: bool,
    /// Set by `docker update --restart`; replaces the create-time policy.
    #[serde(default)]
    pub restart_policy: Option<wharf_api::container::RestartPolicy>,
    /// Set by `docker update` of resources; replaces the create-time `HostConfig` resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<wharf_api::container::Resources>,
    /// `State.Health`, for containers with a healthcheck once started (`health.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<wharf_api::container::Health>,
    /// The boot the running process belongs to; a different boot means it died with the host.
    #[serde(default)]
    pub boot_id: String,
}
