//! Values no request may carry, whatever its fields' tables say: checked on the canonical JSON
//! of create, update and exec bodies before anything is made. dockerd checks none of these (a
//! newline in `Hostname` lands in `/etc/hosts`, `User: "4294967295"` is `(uid_t)-1`, which
//! `setresuid` reads as "unchanged", so the process stays root); Wharf refuses them with 400.
//!
//! * No string and no map key anywhere holds a NUL (no kernel interface takes one), and none
//!   holds a control character except where text is free: a command's arguments, an
//!   environment value, a health check's command (`FREE_TEXT`).
//! * `User` is a name or a number in moby's id range, for the user and the group.
//! * `Hostname` and `Domainname` are names the kernel and `/etc/hosts` take as one word.
//! * An `Env` entry names a variable: not empty, no control character.

use crate::error::EngineError;
use serde_json::Value;
use wharf_runtime::spec::{check_uts_name, parse_id};

/// Paths (list elements share their list's path) whose strings may hold any character but NUL.
const CREATE_FREE_TEXT: &[&str] = &[
    "Cmd",
    "Entrypoint",
    "Env",
    "Healthcheck.Test",
    "Shell",
    "OnBuild",
];
const EXEC_FREE_TEXT: &[&str] = &["Cmd", "Env"];

/// A value as it appears in a message: quoted, escaped, and cut short when long.
fn shown(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{:?}...", &s[..i]),
        None => format!("{s:?}"),
    }
}

fn what_is_wrong(s: &str, free: bool) -> Option<String> {
    let c = s
        .chars()
        .find(|c| *c == '\0' || (!free && c.is_control()))?;
    Some(if c == '\0' {
        "NUL bytes are not allowed".to_string()
    } else {
        format!("control characters are not allowed (found {c:?})")
    })
}

/// Every string and map key of `body`, `top` naming the body's top-level fields in messages.
fn strings(top: &str, body: &Value, free_text: &[&str]) -> Result<(), EngineError> {
    fn walk(top: &str, path: &str, v: &Value, free_text: &[&str]) -> Result<(), String> {
        let free = free_text.contains(&path);
        let named = |path: &str| {
            if top.is_empty() || path.starts_with("HostConfig") || path.starts_with("Networking") {
                path.to_string()
            } else {
                format!("{top}.{path}")
            }
        };
        match v {
            Value::String(s) => match what_is_wrong(s, free) {
                Some(why) => Err(format!("invalid {} {}: {why}", named(path), shown(s))),
                None => Ok(()),
            },
            Value::Array(items) => items.iter().try_for_each(|i| walk(top, path, i, free_text)),
            Value::Object(o) => {
                for (k, item) in o {
                    if let Some(why) = what_is_wrong(k, false) {
                        let at = if path.is_empty() {
                            "the request".to_string()
                        } else {
                            named(path)
                        };
                        return Err(format!("invalid key {} in {at}: {why}", shown(k)));
                    }
                    let sub = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(top, &sub, item, free_text)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(top, "", body, free_text).map_err(EngineError::invalid)
}

/// `User`: `user`, `user:group`, `uid`, `uid:gid`; names are looked up at start, numbers must
/// be ids a process can have.
pub fn user(field: &str, spec: &str) -> Result<(), EngineError> {
    if spec.is_empty() {
        return Ok(());
    }
    let bad = |why: &str| EngineError::invalid(format!("invalid {field} {}: {why}", shown(spec)));
    if spec.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("control and whitespace characters are not allowed"));
    }
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if g.is_some_and(|g| g.contains(':')) {
        return Err(bad("the form is user[:group]"));
    }
    for part in std::iter::once(u).chain(g) {
        if let Some(Err(why)) = parse_id(part) {
            return Err(bad(&why));
        }
    }
    Ok(())
}

/// `Env` entries: `NAME=value` or `NAME` (unset); the name is not empty and plain.
pub fn env(field: &str, entries: &[String]) -> Result<(), EngineError> {
    for e in entries {
        let name = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        if name.is_empty() && !e.is_empty() {
            return Err(EngineError::invalid(format!(
                "invalid {field} entry {}: the variable name is empty",
                shown(e)
            )));
        }
        if let Some(why) = what_is_wrong(name, false) {
            return Err(EngineError::invalid(format!(
                "invalid {field} entry {}: {why} in the variable name",
                shown(e)
            )));
        }
    }
    Ok(())
}

/// The create body, in its canonical JSON form (`body`) and typed (`req`).
pub fn create(
    req: &wharf_api::container::ContainerCreateRequest,
    body: &Value,
) -> Result<(), EngineError> {
    let c = &req.config;
    if !c.hostname.is_empty() {
        check_uts_name("Config.Hostname", &c.hostname).map_err(EngineError::invalid)?;
    }
    if !c.domainname.is_empty() {
        check_uts_name("Config.Domainname", &c.domainname).map_err(EngineError::invalid)?;
    }
    user("Config.User", &c.user)?;
    env("Config.Env", c.env.as_deref().unwrap_or(&[]))?;
    strings("Config", body, CREATE_FREE_TEXT)
}

/// The exec create body.
pub fn exec(req: &wharf_api::exec::ExecCreateRequest, body: &Value) -> Result<(), EngineError> {
    user("User", &req.user)?;
    env("Env", req.env.as_deref().unwrap_or(&[]))?;
    strings("", body, EXEC_FREE_TEXT)
}

/// The update body.
pub fn update(body: &Value) -> Result<(), EngineError> {
    strings("", body, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create_err(body: Value) -> String {
        let req: wharf_api::container::ContainerCreateRequest =
            serde_json::from_value(body.clone()).unwrap();
        create(&req, &body).unwrap_err().message().to_string()
    }

    #[test]
    fn users() {
        for ok in [
            "",
            "0",
            "1000",
            "1000:1000",
            "nobody",
            "nobody:nogroup",
            "2147483647",
            ":5",
        ] {
            assert!(user("User", ok).is_ok(), "{ok}");
        }
        assert_eq!(
            user("Config.User", "4294967295").unwrap_err().message(),
            "invalid Config.User \"4294967295\": uids and gids must be in range 0-2147483647"
        );
        for bad in [
            "-1",
            "0:4294967295",
            "0:-1",
            "a b",
            "a\nb",
            "a:b:c",
            "99999999999999999999",
        ] {
            assert!(user("User", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostnames_and_strings() {
        assert_eq!(
            create_err(json!({"Image": "x", "Hostname": "a\n6.6.6.6 injected.example"})),
            "invalid Config.Hostname \"a\\n6.6.6.6 injected.example\": control characters are not allowed (found '\\n')"
        );
        assert!(
            create_err(json!({"Image": "x", "Domainname": "x y"})).contains("Config.Domainname")
        );
        assert_eq!(
            create_err(json!({"Image": "x", "Labels": {"a\nb": "c"}})),
            "invalid key \"a\\nb\" in Config.Labels: control characters are not allowed (found '\\n')"
        );
        assert_eq!(
            create_err(json!({"Image": "x", "Labels": {"a": "b\u{1b}[2J"}})),
            "invalid Config.Labels.a \"b\\u{1b}[2J\": control characters are not allowed (found '\\u{1b}')"
        );
        assert!(create_err(
            json!({"Image": "x", "HostConfig": {"Sysctls": {"net.ipv4.ip_forward\n": "1"}}})
        )
        .starts_with("invalid key \"net.ipv4.ip_forward\\n\" in HostConfig.Sysctls"));
        assert_eq!(
            create_err(json!({"Image": "x", "Cmd": ["sh", "-c", "a\u{0}b"]})),
            "invalid Config.Cmd \"a\\0b\": NUL bytes are not allowed"
        );
        assert_eq!(
            create_err(json!({"Image": "x", "Env": ["A\nB=c"]})),
            "invalid Config.Env entry \"A\\nB=c\": control characters are not allowed (found '\\n') in the variable name"
        );
        assert!(create_err(json!({"Image": "x", "Env": ["=c"]})).contains("variable name is empty"));
        assert!(create_err(json!({"Image": "x\ty"})).starts_with("invalid Config.Image"));
        let long = "x".repeat(100_000) + "\n";
        assert!(create_err(json!({"Image": "x", "WorkingDir": long})).len() < 200);
        // Free text stays free.
        let ok = json!({"Image": "x", "Cmd": ["sh", "-c", "echo a\necho b\t"], "Env": ["CERT=a\nb"],
            "Entrypoint": "x\ny", "Healthcheck": {"Test": ["CMD-SHELL", "a\nb"]}, "Hostname": "web-1.example",
            "Labels": {"com.example": "ok"}, "HostConfig": {"Memory": 0}});
        let req = serde_json::from_value(ok.clone()).unwrap();
        create(&req, &ok).unwrap();
    }

    #[test]
    fn exec_and_update() {
        let body = json!({"User": "4294967295", "Cmd": ["id"]});
        let req = serde_json::from_value(body.clone()).unwrap();
        assert!(exec(&req, &body)
            .unwrap_err()
            .message()
            .contains("uids and gids"));
        let body = json!({"WorkingDir": "/a\nb", "Cmd": ["a\nb"]});
        let req = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(
            exec(&req, &body).unwrap_err().message(),
            "invalid WorkingDir \"/a\\nb\": control characters are not allowed (found '\\n')"
        );
        assert!(update(&json!({"CpusetCpus": "0\n"})).is_err());
        assert!(update(&json!({"CpusetCpus": "0-1", "Memory": 0})).is_ok());
    }
}
