//! Exec wire types: `POST /containers/{id}/exec`, `POST /exec/{id}/start`, `GET /exec/{id}/json`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Body of `POST /containers/{id}/exec` (the docker CLI and docker-py send these fields);
/// anything else stays in `extra`, where the exec table refuses it unless it is zero.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ExecCreateRequest {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub tty: bool,
    /// `[height, width]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<Vec<u16>>,
    #[serde(default)]
    pub attach_stdin: bool,
    #[serde(default)]
    pub attach_stdout: bool,
    #[serde(default)]
    pub attach_stderr: bool,
    #[serde(default)]
    pub detach_keys: String,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// Go's `ExecConfig` has it and the docker CLI sends it; dockerd never reads it at create
    /// (the start request's `Detach` decides).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub detach: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `POST /exec/{id}/start`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ExecStartRequest {
    #[serde(default)]
    pub detach: bool,
    #[serde(default)]
    pub tty: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<Vec<u16>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"Id": ...}`, the answer to exec create.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdResponse {
    #[serde(rename = "Id")]
    pub id: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExecProcessConfig {
    pub tty: bool,
    pub entrypoint: String,
    pub arguments: Vec<String>,
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
}

/// `GET /exec/{id}/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ExecInspect {
    #[serde(rename = "ID")]
    pub id: String,
    pub running: bool,
    /// `null` until the process has exited.
    pub exit_code: Option<i64>,
    pub process_config: ExecProcessConfig,
    pub open_stdin: bool,
    pub open_stderr: bool,
    pub open_stdout: bool,
    pub can_remove: bool,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    pub detach_keys: String,
    pub pid: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_cli_body() {
        let body = r#"{"User":"","Privileged":false,"Tty":true,"ConsoleSize":[25,90],
            "AttachStdin":true,"AttachStderr":true,"AttachStdout":true,"Detach":false,
            "DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["sh"]}"#;
        let r: ExecCreateRequest = serde_json::from_str(body).unwrap();
        assert!(r.tty && r.attach_stdin);
        assert_eq!(r.console_size, Some(vec![25, 90]));
        assert_eq!(r.cmd, Some(vec!["sh".to_string()]));
    }

    #[test]
    fn inspect_field_names() {
        let v = serde_json::to_value(ExecInspect::default()).unwrap();
        for k in [
            "ID",
            "ContainerID",
            "ExitCode",
            "ProcessConfig",
            "Pid",
            "CanRemove",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert!(v["ExitCode"].is_null());
        assert!(v["ProcessConfig"].get("entrypoint").is_some());
    }
}
