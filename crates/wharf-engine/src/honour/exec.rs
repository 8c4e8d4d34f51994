//! `POST /containers/{id}/exec` (Docker's `ExecConfig`) and `POST /exec/{id}/start`
//! (`ExecStartCheck`): every field of API 1.44's bodies is applied by the exec service.

use super::{Effect, Field, Rule};

const fn applied(path: &'static str, by: &'static str) -> Field {
    Field {
        path,
        rule: Rule::Honoured(Effect::Engine(by)),
    }
}

pub const CREATE_TABLE: &[Field] = &[
    applied("AttachStdin", "the exec's stdin pipe (exec/mod.rs)"),
    applied("AttachStdout", "the exec's stdout pipe (exec/mod.rs)"),
    applied("AttachStderr", "the exec's stderr pipe (exec/mod.rs)"),
    applied("ConsoleSize", "the exec pty's initial size"),
    applied("DetachKeys", "the session's detach keys"),
    applied("Tty", "a pty for the exec"),
    applied(
        "Env",
        "the exec process's environment (wharf_runtime::spec::exec_process)",
    ),
    applied("Cmd", "the exec process's argv"),
    applied("Privileged", "the exec process's capabilities"),
    applied("User", "the exec process's user and groups"),
    applied("WorkingDir", "the exec process's cwd"),
    Field {
        path: "Detach",
        rule: Rule::Honoured(Effect::Stored(
            "the docker CLI sends it; dockerd reads Detach from the start request only",
        )),
    },
    Field {
        path: "Container",
        rule: Rule::Honoured(Effect::Stored(
            "docker-py repeats the container's id from the URL, which is what names it",
        )),
    },
];

pub const START_TABLE: &[Field] = &[
    applied("Detach", "start without streams (exec/mod.rs)"),
    applied("Tty", "the stream's framing, raw or stdcopy"),
    applied("ConsoleSize", "the exec pty's size at start"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::honour::check;
    use serde_json::json;
    use wharf_api::exec::{ExecCreateRequest, ExecStartRequest};

    /// API 1.44's `ExecConfig` and `ExecStartConfig` (swagger, moby v25.0.0).
    const CREATE_SCHEMA: [&str; 11] = [
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
        "ConsoleSize",
        "DetachKeys",
        "Tty",
        "Env",
        "Cmd",
        "Privileged",
        "User",
        "WorkingDir",
    ];
    const START_SCHEMA: [&str; 3] = ["Detach", "Tty", "ConsoleSize"];

    #[test]
    fn tables_cover_the_schemas_and_the_wire_types_know_them() {
        for p in CREATE_SCHEMA {
            assert!(CREATE_TABLE.iter().any(|f| f.path == p), "{p}");
        }
        for p in START_SCHEMA {
            assert!(START_TABLE.iter().any(|f| f.path == p), "{p}");
        }
        let r: ExecCreateRequest = serde_json::from_value(json!({"AttachStdin": true,
            "AttachStdout": true, "AttachStderr": true, "ConsoleSize": [1, 2], "DetachKeys": "ctrl-x",
            "Tty": true, "Env": ["A=1"], "Cmd": ["sh"], "Privileged": true, "User": "1",
            "WorkingDir": "/", "Detach": true}))
        .unwrap();
        assert!(r.extra.is_empty());
        let s: ExecStartRequest =
            serde_json::from_value(json!({"Detach": true, "Tty": true, "ConsoleSize": [1, 2]}))
                .unwrap();
        assert!(s.extra.is_empty());
    }

    #[test]
    fn unknown_fields_are_refused_unless_zero() {
        let r: ExecCreateRequest =
            serde_json::from_value(json!({"Cmd": ["sh"], "Later": 1, "Zero": 0})).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            check(CREATE_TABLE, "", &v).unwrap_err().message(),
            "Wharf does not support Later"
        );
        let r: ExecCreateRequest =
            serde_json::from_value(json!({"Cmd": ["sh"], "Zero": 0, "Detach": false})).unwrap();
        assert!(check(CREATE_TABLE, "", &serde_json::to_value(&r).unwrap()).is_ok());
    }
}
