//! Container wire types: create body, inspect, list summary, wait answer.
//!
//! Typed fields are the ones Wharf acts on; every other field a client sends is kept in
//! `extra` and given back by inspect, so clients see what they sent.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `Config` of a container (also the `Config` of an image, which uses the same names).
///
/// Every field of API 1.44's `ContainerConfig` is typed; anything else a client sends stays in
/// `extra`, where the create check refuses it unless it is a zero value. Scalars follow Go:
/// `null` or a missing key is the zero value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    pub hostname: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub domainname: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub user: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attach_stdin: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attach_stdout: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attach_stderr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tty: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub open_stdin: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub stdin_once: bool,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// Go's `strslice`: a JSON string is a one-element list.
    #[serde(default, deserialize_with = "str_or_list")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// Windows only (the command line is already escaped).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_false"
    )]
    pub args_escaped: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub image: String,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub working_dir: String,
    #[serde(default, deserialize_with = "str_or_list")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_false"
    )]
    pub network_disabled: bool,
    /// Deprecated in 1.44 in favour of the endpoint's `MacAddress`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub mac_address: String,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// The shell of shell-form RUN/CMD/ENTRYPOINT (builds and commits).
    #[serde(
        default,
        deserialize_with = "str_or_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub shell: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Go's `strslice.StrSlice`: `null`, a list of strings, or one string meaning a one-element list.
fn str_or_list<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct StrSlice;
    impl<'de> serde::de::Visitor<'de> for StrSlice {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(vec![s.to_string()]))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut v = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                v.push(s);
            }
            Ok(Some(v))
        }
    }
    d.deserialize_any(StrSlice)
}

/// docker-py sends `null` for every healthcheck field the caller left out.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// `Config.Healthcheck`: durations in nanoseconds; zero means "the image's, else the default"
/// and, as in Docker's JSON, is left out.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["CMD", exe, args...]`, `["CMD-SHELL", command]` or `["NONE"]`; empty inherits.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub test: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub interval: i64,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub timeout: i64,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub start_period: i64,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub start_interval: i64,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub retries: i64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `State.Health`: present once a container with a healthcheck has started.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: i64,
    /// The last probes, oldest first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub log: Vec<HealthcheckResult>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthcheckResult {
    /// RFC 3339 with nanoseconds.
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub maximum_retry_count: i64,
    /// Keys this struct does not know, kept so the honour check can refuse them by name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `HostConfig.LogConfig`: the logging driver and its options.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    pub r#type: String,
    #[serde(default)]
    pub config: Option<BTreeMap<String, String>>,
    /// Keys this struct does not know, kept so the honour check can refuse them by name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `--blkio-weight-device`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct WeightDevice {
    #[serde(default, deserialize_with = "null_as_default")]
    pub path: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub weight: u16,
}

/// `--device-read-bps` and friends.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ThrottleDevice {
    #[serde(default, deserialize_with = "null_as_default")]
    pub path: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub rate: u64,
}

/// `--device /dev/x[:/dev/y[:rwm]]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    #[serde(default, deserialize_with = "null_as_default")]
    pub path_on_host: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub path_in_container: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cgroup_permissions: String,
    /// Keys this struct does not know, kept so the honour check can refuse them by name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `--ulimit name=soft[:hard]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub soft: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub hard: i64,
    /// Keys this struct does not know, kept so the honour check can refuse them by name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The cgroup and rlimit part of `HostConfig` (embedded in it, and the body of `update`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Resources {
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpu_shares: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub memory: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub nano_cpus: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cgroup_parent: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub blkio_weight: u16,
    #[serde(default)]
    pub blkio_weight_device: Option<Vec<WeightDevice>>,
    #[serde(default)]
    pub blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
    #[serde(default)]
    pub blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
    #[serde(default, rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
    #[serde(default, rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpu_period: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpu_quota: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpu_realtime_period: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpu_realtime_runtime: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpuset_cpus: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpuset_mems: String,
    #[serde(default)]
    pub devices: Option<Vec<DeviceMapping>>,
    #[serde(default)]
    pub device_cgroup_rules: Option<Vec<String>>,
    /// GPUs and other driver devices (`--gpus`).
    #[serde(default)]
    pub device_requests: Option<Vec<Value>>,
    /// Deprecated by the kernel (5.4) and by Docker; Go leaves it out when zero.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub kernel_memory: i64,
    #[serde(
        default,
        rename = "KernelMemoryTCP",
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub kernel_memory_tcp: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub memory_reservation: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub memory_swap: i64,
    #[serde(default)]
    pub memory_swappiness: Option<i64>,
    #[serde(default)]
    pub oom_kill_disable: Option<bool>,
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default)]
    pub ulimits: Option<Vec<Ulimit>>,
    /// Windows only.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpu_count: i64,
    /// Windows only.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpu_percent: i64,
    /// Windows only.
    #[serde(
        default,
        rename = "IOMaximumIOps",
        deserialize_with = "null_as_default"
    )]
    pub io_maximum_iops: u64,
    /// Windows only.
    #[serde(
        default,
        rename = "IOMaximumBandwidth",
        deserialize_with = "null_as_default"
    )]
    pub io_maximum_bandwidth: u64,
}

/// `HostConfig.PortBindings` entries.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    #[serde(default, rename = "HostIp", deserialize_with = "null_as_default")]
    pub host_ip: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub host_port: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct BindOptions {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub propagation: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_false"
    )]
    pub non_recursive: bool,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_false"
    )]
    pub create_mountpoint: bool,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_false"
    )]
    pub read_only_non_recursive: bool,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_false"
    )]
    pub read_only_force_recursive: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeOptions {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_false"
    )]
    pub no_copy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_config: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TmpfsOptions {
    /// Bytes; zero means unlimited.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub size_bytes: i64,
    /// File mode of the tmpfs root (Go's `os.FileMode`); zero means the default (1777).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero_u32"
    )]
    pub mode: u32,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// `HostConfig.Mounts` (`--mount`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Mount {
    #[serde(default, deserialize_with = "null_as_default")]
    pub r#type: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub source: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub target: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_false"
    )]
    pub read_only: bool,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub consistency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `HostConfig` of a container: every field of API 1.44 (Docker's `Resources` embedded).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    #[serde(default)]
    pub binds: Option<Vec<String>>,
    /// A client-side option (`docker run --cidfile`); the daemon never writes it.
    #[serde(
        default,
        rename = "ContainerIDFile",
        deserialize_with = "null_as_default"
    )]
    pub container_id_file: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub log_config: LogConfig,
    #[serde(default, deserialize_with = "null_as_default")]
    pub network_mode: String,
    #[serde(default)]
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub restart_policy: RestartPolicy,
    #[serde(default, deserialize_with = "null_as_default")]
    pub auto_remove: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub volume_driver: String,
    #[serde(default)]
    pub volumes_from: Option<Vec<String>>,
    /// `[height, width]` of a TTY container's initial console; zeros mean unset.
    #[serde(default, deserialize_with = "null_as_default")]
    pub console_size: [u64; 2],
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "str_or_list")]
    pub cap_add: Option<Vec<String>>,
    #[serde(default, deserialize_with = "str_or_list")]
    pub cap_drop: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cgroupns_mode: String,
    #[serde(default)]
    pub dns: Option<Vec<String>>,
    #[serde(default)]
    pub dns_options: Option<Vec<String>>,
    #[serde(default)]
    pub dns_search: Option<Vec<String>>,
    #[serde(default)]
    pub extra_hosts: Option<Vec<String>>,
    #[serde(default)]
    pub group_add: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ipc_mode: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cgroup: String,
    #[serde(default)]
    pub links: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub oom_score_adj: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub pid_mode: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub privileged: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub publish_all_ports: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub readonly_rootfs: bool,
    #[serde(default)]
    pub security_opt: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_opt: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "UTSMode", deserialize_with = "null_as_default")]
    pub uts_mode: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub userns_mode: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub shm_size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysctls: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub runtime: String,
    /// Windows only.
    #[serde(default, deserialize_with = "null_as_default")]
    pub isolation: String,
    #[serde(flatten)]
    pub resources: Resources,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    #[serde(default)]
    pub masked_paths: Option<Vec<String>>,
    #[serde(default)]
    pub readonly_paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl HostConfig {
    /// `ConsoleSize` as `(height, width)`, when both are set and fit a terminal.
    pub fn console_size(&self) -> Option<(u16, u16)> {
        let h = u16::try_from(self.console_size[0]).ok()?;
        let w = u16::try_from(self.console_size[1]).ok()?;
        (h > 0 && w > 0).then_some((h, w))
    }
}

/// `NetworkingConfig`: per-network endpoint settings, by network name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkingConfig {
    #[serde(default)]
    pub endpoints_config: Option<BTreeMap<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `POST /containers/create`: the config's fields at top level plus HostConfig and
/// NetworkingConfig.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateRequest {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(default)]
    pub host_config: Option<HostConfig>,
    #[serde(default)]
    pub networking_config: Option<NetworkingConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerCreateResponse {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Warnings")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub data: BTreeMap<String, String>,
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    #[serde(rename = "Id")]
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: HostConfig,
    pub graph_driver: GraphDriver,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub mounts: Vec<MountPoint>,
    pub config: ContainerConfig,
    pub network_settings: Value,
}

/// One of a container's mounts as inspect and ps show it (Docker's `types.MountPoint`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    /// `volume`, `bind` or `tmpfs`.
    pub r#type: String,
    /// The volume's name; empty for binds and tmpfs.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The host path bound: the volume's `_data` or the bind's source; empty for tmpfs.
    pub source: String,
    pub destination: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    #[serde(rename = "Id")]
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub status: String,
    pub host_config: Value,
    pub network_settings: Value,
    pub mounts: Vec<MountPoint>,
}

/// Body of `POST /containers/{id}/update` (Docker's `UpdateConfig`): resources plus the
/// restart policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerUpdateRequest {
    #[serde(flatten)]
    pub resources: Resources,
    #[serde(
        rename = "RestartPolicy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerUpdateResponse {
    #[serde(rename = "Warnings")]
    pub warnings: Vec<String>,
}

/// Answer of `GET /containers/{id}/top`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TopResponse {
    #[serde(rename = "Titles")]
    pub titles: Vec<String>,
    #[serde(rename = "Processes")]
    pub processes: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WaitError {
    #[serde(rename = "Message")]
    pub message: String,
}

/// Body of the `wait` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WaitResponse {
    #[serde(rename = "Error")]
    pub error: Option<WaitError>,
    #[serde(rename = "StatusCode")]
    pub status_code: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_keeps_unknown_fields() {
        let body = r#"{"Hostname":"","Cmd":["echo","hi"],"Image":"busybox","Env":null,
            "Volumes":{},"HostConfig":{"AutoRemove":true,"NetworkMode":"default","ShmSize":0,
            "RestartPolicy":{"Name":"no","MaximumRetryCount":0}},"NetworkingConfig":{"EndpointsConfig":{}},
            "Healthcheck":{"Test":["NONE"]}}"#;
        let req: ContainerCreateRequest = serde_json::from_str(body).unwrap();
        assert_eq!(
            req.config.cmd.as_deref(),
            Some(&["echo".to_string(), "hi".to_string()][..])
        );
        let hc = req.host_config.unwrap();
        assert!(hc.auto_remove);
        assert_eq!(hc.shm_size, 0);
        assert!(hc.extra.is_empty(), "{:?}", hc.extra);
        assert_eq!(
            req.config.healthcheck.as_ref().map(|h| h.test.clone()),
            Some(vec!["NONE".to_string()])
        );
        assert!(!req.config.extra.contains_key("Healthcheck"));
    }

    #[test]
    fn healthcheck_round_trips_like_docker() {
        // docker-py leaves nulls for what the caller did not give; unknown fields survive.
        let h: HealthConfig = serde_json::from_str(
            r#"{"Test":["CMD-SHELL","true"],"Interval":200000000,"Timeout":null,"Retries":null,"StartPeriod":null,"Future":1}"#,
        )
        .unwrap();
        assert_eq!(h.interval, 200_000_000);
        assert_eq!(h.retries, 0);
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"Test":["CMD-SHELL","true"],"Interval":200000000,"Future":1}"#
        );
        let none: HealthConfig = serde_json::from_str(r#"{"Test":["NONE"]}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&none).unwrap(),
            r#"{"Test":["NONE"]}"#
        );
        // No Health key without a healthcheck.
        let v = serde_json::to_value(ContainerState::default()).unwrap();
        assert!(v.get("Health").is_none());
    }

    #[test]
    fn console_size_and_go_nulls() {
        let hc: HostConfig =
            serde_json::from_str(r#"{"ConsoleSize":[40,120],"Memory":null,"CapAdd":"NET_ADMIN"}"#)
                .unwrap();
        assert_eq!(hc.console_size(), Some((40, 120)));
        assert_eq!(hc.resources.memory, 0);
        assert_eq!(hc.cap_add, Some(vec!["NET_ADMIN".to_string()]));
        let hc: HostConfig = serde_json::from_str(r#"{"ConsoleSize":[0,0]}"#).unwrap();
        assert_eq!(hc.console_size(), None);
        assert_eq!(HostConfig::default().console_size(), None);
        // Wrong types are errors, not silently stored.
        assert!(serde_json::from_str::<HostConfig>(r#"{"Memory":"lots"}"#).is_err());
        assert!(serde_json::from_str::<HostConfig>(r#"{"CpuShares":1.5e300}"#).is_err());
    }

    #[test]
    fn state_field_names() {
        let v = serde_json::to_value(ContainerState::default()).unwrap();
        assert!(v.get("OOMKilled").is_some());
        assert!(v.get("ExitCode").is_some());
        let w = serde_json::to_string(&WaitResponse::default()).unwrap();
        assert_eq!(w, r#"{"Error":null,"StatusCode":0}"#);
    }
}

/// One entry of `GET /containers/{id}/changes` (moby's `container.FilesystemChange`): `Kind`
/// 0 modified, 1 added, 2 deleted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct FilesystemChange {
    pub path: String,
    pub kind: u8,
}
