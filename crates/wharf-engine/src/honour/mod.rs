//! Honour or refuse: one table per request type says, for every field of the Engine API's
//! schema, whether Wharf applies it or refuses it. A request is checked against its table
//! before anything is created; a refused field with anything but its zero (or Docker's
//! default) value answers 400 naming it. Fields not in the table (a newer API version's, or a
//! client's typo) are refused the same way unless they are zero, so nothing a client sends is
//! ever stored, shown back by inspect and silently not done.
//!
//! A capability that lands flips its fields here, in one place; `tests` walks the 1.44 schema
//! and fails when a field is missing from a table or is neither applied nor refused.

pub mod create;
pub mod exec;
pub mod update;
pub mod values;

use crate::error::EngineError;
use serde_json::{Map, Value};

/// What Wharf does with a field.
#[derive(Clone, Copy)]
pub enum Rule {
    /// Applied, for every value the API allows.
    Honoured(Effect),
    /// Applied for the values `check` accepts; it refuses the others with its own message.
    Partly(Effect, fn(&Value) -> Result<(), String>),
    /// Not built yet: a value other than `is_default`'s is refused, naming the field and the
    /// issue that will bring it.
    Refused {
        until: &'static str,
        is_default: fn(&Value) -> bool,
    },
}

/// Where an honoured field takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// In the OCI spec the container runs with (the table test checks that it changes it).
    Spec,
    /// In the engine's own behaviour (restart policy, health checks, /etc files, ...); the
    /// text names where.
    Engine(&'static str),
    /// Kept and shown back, and nothing else, exactly as dockerd does (the text says why that
    /// is the whole of Docker's behaviour too).
    Stored(&'static str),
}

pub struct Field {
    /// `HostConfig.Memory`, `Cmd`, `NetworkingConfig.EndpointsConfig`.
    pub path: &'static str,
    pub rule: Rule,
}

/// Go's zero value: what a client sends when it means "nothing". An object counts as a struct
/// here (zero when all its fields are); use [`is_empty`] for maps, where a key alone means
/// something.
pub fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
    }
}

/// Nothing at all: null, a zero scalar, an empty list or an empty map.
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.is_empty(),
        other => is_zero(other),
    }
}

/// `until` names the issue that will bring the field (`... yet (issue 15: volumes)`) or says
/// why it is not planned.
fn refusal(top: &str, path: &str, until: &str) -> EngineError {
    // The create body has Config's fields at its top level; Docker's docs and inspect call
    // them `Config.X`.
    let path = if top.is_empty() || path.contains('.') {
        path.to_string()
    } else {
        format!("{top}.{path}")
    };
    if until.is_empty() {
        EngineError::invalid(format!("Wharf does not support {path}"))
    } else if until.starts_with("issue") {
        EngineError::invalid(format!("Wharf does not support {path} yet ({until})"))
    } else {
        EngineError::invalid(format!("Wharf does not support {path} ({until})"))
    }
}

fn lookup<'a>(table: &'a [Field], path: &str) -> Option<&'a Field> {
    table.iter().find(|f| f.path == path)
}

fn has_children(table: &[Field], path: &str) -> bool {
    table.iter().any(|f| {
        f.path.len() > path.len()
            && f.path.starts_with(path)
            && f.path.as_bytes()[path.len()] == b'.'
    })
}

/// Checks a request body (its canonical JSON form) against a table. `top` names the body's
/// top-level object in messages (`Config` for create, whose body has Config's fields at the
/// top), or is empty.
pub fn check(table: &[Field], top: &str, body: &Value) -> Result<(), EngineError> {
    match body {
        Value::Object(o) => walk(table, top, "", o),
        _ => Ok(()),
    }
}

fn walk(
    table: &[Field],
    top: &str,
    prefix: &str,
    obj: &Map<String, Value>,
) -> Result<(), EngineError> {
    for (k, v) in obj {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match lookup(table, &path) {
            Some(f) => apply(top, f, v)?,
            None => match v {
                Value::Object(inner) if has_children(table, &path) => {
                    walk(table, top, &path, inner)?
                }
                _ if is_zero(v) => {}
                _ => return Err(refusal(top, &path, "")),
            },
        }
    }
    Ok(())
}

fn apply(top: &str, f: &Field, v: &Value) -> Result<(), EngineError> {
    match f.rule {
        Rule::Honoured(_) => Ok(()),
        Rule::Partly(_, _) if is_zero(v) => Ok(()),
        Rule::Partly(_, check) => check(v).map_err(EngineError::invalid),
        Rule::Refused { until, is_default } => {
            if is_default(v) {
                Ok(())
            } else {
                Err(refusal(top, f.path, until))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn never(_: &Value) -> Result<(), String> {
        Err("no odd values".into())
    }

    const TABLE: &[Field] = &[
        Field {
            path: "A",
            rule: Rule::Honoured(Effect::Spec),
        },
        Field {
            path: "B",
            rule: Rule::Refused {
                until: "issue 99",
                is_default: is_zero,
            },
        },
        Field {
            path: "Host.C",
            rule: Rule::Partly(Effect::Spec, never),
        },
    ];

    #[test]
    fn walks_and_refuses() {
        assert!(check(TABLE, "", &json!({"A": 5, "B": 0, "Host": {"C": null}})).is_ok());
        assert!(check(TABLE, "", &json!({"A": 5, "B": [], "Host": {}})).is_ok());
        let e = check(TABLE, "", &json!({"B": 1})).unwrap_err();
        assert_eq!(e.message(), "Wharf does not support B yet (issue 99)");
        assert_eq!(e.kind(), wharf_api::ErrorKind::InvalidArgument);
        let e = check(TABLE, "", &json!({"Host": {"D": "x"}})).unwrap_err();
        assert_eq!(e.message(), "Wharf does not support Host.D");
        assert!(check(TABLE, "", &json!({"Unknown": {"X": 0, "Y": ""}})).is_ok());
        assert_eq!(
            check(TABLE, "", &json!({"Host": {"C": 1}}))
                .unwrap_err()
                .message(),
            "no odd values"
        );
    }
}
