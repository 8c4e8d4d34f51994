//! Container wire types: create body, inspect, list summary, wait answer.
//!
//! Typed fields are the ones Wharf acts on; every other field a client sends is kept in
//! `extra` and given back by inspect, so clients see what they sent.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `Config` of a container (also the `Config` of an image, which uses the same names).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub domainname: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub attach_stdin: bool,
    #[serde(default)]
    pub attach_stdout: bool,
    #[serde(default)]
    pub attach_stderr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
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
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub maximum_retry_count: i64,
}

/// `HostConfig` of a container.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    #[serde(default)]
    pub network_mode: String,
    #[serde(default)]
    pub auto_remove: bool,
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub readonly_rootfs: bool,
    #[serde(default)]
    pub binds: Option<Vec<String>>,
    #[serde(default)]
    pub port_bindings: Option<Value>,
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
    pub networking_config: Option<Value>,
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
    pub mounts: Vec<Value>,
    pub config: ContainerConfig,
    pub network_settings: Value,
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
    pub mounts: Vec<Value>,
}

/// Body of `POST /containers/{id}/update`: resource limits plus the restart policy; resources
/// stay in `extra` (Wharf updates only the restart policy so far).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerUpdateRequest {
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
        assert_eq!(hc.extra.get("ShmSize"), Some(&Value::from(0)));
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
    fn state_field_names() {
        let v = serde_json::to_value(ContainerState::default()).unwrap();
        assert!(v.get("OOMKilled").is_some());
        assert!(v.get("ExitCode").is_some());
        let w = serde_json::to_string(&WaitResponse::default()).unwrap();
        assert_eq!(w, r#"{"Error":null,"StatusCode":0}"#);
    }
}
