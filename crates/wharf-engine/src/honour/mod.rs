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
/// why it is not planned. `path` is the field as the client sent it, list indices and map keys
/// included (`HostConfig.Mounts[0].TmpfsOptions.Options`).
fn refusal(table: &[Field], top: &str, path: &str, until: &str) -> EngineError {
    // The create body has Config's fields at its top level; Docker's docs and inspect call
    // them `Config.X`.
    let first = path.split(['.', '[']).next().unwrap_or_default();
    let path = if top.is_empty() || (path.contains('.') && lookup(table, first).is_none()) {
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

/// Whether the table has fields below `path` (`path.X`; a list's elements are `path[].X`, a
/// map's values `path.*.X`).
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
///
/// An applied field whose value is a struct, a list of structs or a map of structs is walked
/// into when the table lists its fields (`Healthcheck.Retries`, `HostConfig.Mounts[].Type`,
/// `NetworkingConfig.EndpointsConfig.*.Aliases`), by the same rules as the top level.
pub fn check(table: &[Field], top: &str, body: &Value) -> Result<(), EngineError> {
    match body {
        Value::Object(o) => walk(table, top, &At::root(), o),
        _ => Ok(()),
    }
}

/// Where the walk is: the table's name for it and the client's.
struct At {
    /// `HostConfig.Mounts[].TmpfsOptions`.
    pattern: String,
    /// `HostConfig.Mounts[2].TmpfsOptions`.
    shown: String,
}

impl At {
    fn root() -> At {
        At {
            pattern: String::new(),
            shown: String::new(),
        }
    }

    fn key(&self, k: &str) -> At {
        if self.pattern.is_empty() {
            At {
                pattern: k.to_string(),
                shown: k.to_string(),
            }
        } else {
            At {
                pattern: format!("{}.{k}", self.pattern),
                shown: format!("{}.{k}", self.shown),
            }
        }
    }

    fn map_value(&self, k: &str) -> At {
        At {
            pattern: format!("{}.*", self.pattern),
            shown: format!("{}.{k}", self.shown),
        }
    }

    fn element(&self, i: usize) -> At {
        At {
            pattern: format!("{}[]", self.pattern),
            shown: format!("{}[{i}]", self.shown),
        }
    }
}

fn walk(table: &[Field], top: &str, at: &At, obj: &Map<String, Value>) -> Result<(), EngineError> {
    for (k, v) in obj {
        let here = at.key(k);
        match lookup(table, &here.pattern) {
            Some(f) => {
                apply(table, top, f, &here.shown, v)?;
                if !matches!(f.rule, Rule::Refused { .. }) {
                    descend(table, top, &here, v)?;
                }
            }
            None => match v {
                Value::Object(inner) if has_children(table, &here.pattern) => {
                    walk(table, top, &here, inner)?
                }
                _ if is_zero(v) => {}
                _ => return Err(refusal(table, top, &here.shown, "")),
            },
        }
    }
    Ok(())
}

/// Into an applied field's value, when the table lists what is inside it.
fn descend(table: &[Field], top: &str, at: &At, v: &Value) -> Result<(), EngineError> {
    let probe = |suffix: &str| has_children(table, &format!("{}{suffix}", at.pattern));
    match v {
        Value::Object(o) if probe(".*") => {
            for (k, item) in o {
                if let Value::Object(inner) = item {
                    walk(table, top, &at.map_value(k), inner)?;
                }
            }
        }
        Value::Object(o) if probe("") => walk(table, top, at, o)?,
        Value::Array(items) if probe("[]") => {
            for (i, item) in items.iter().enumerate() {
                if let Value::Object(inner) = item {
                    walk(table, top, &at.element(i), inner)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn apply(table: &[Field], top: &str, f: &Field, shown: &str, v: &Value) -> Result<(), EngineError> {
    match f.rule {
        Rule::Honoured(_) => Ok(()),
        Rule::Partly(_, _) if is_zero(v) => Ok(()),
        Rule::Partly(_, check) => check(v).map_err(EngineError::invalid),
        Rule::Refused { until, is_default } => {
            if is_default(v) {
                Ok(())
            } else {
                Err(refusal(table, top, shown, until))
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
        Field {
            path: "S",
            rule: Rule::Honoured(Effect::Spec),
        },
        Field {
            path: "S.X",
            rule: Rule::Honoured(Effect::Spec),
        },
        Field {
            path: "L",
            rule: Rule::Honoured(Effect::Spec),
        },
        Field {
            path: "L[].X",
            rule: Rule::Refused {
                until: "issue 99",
                is_default: is_zero,
            },
        },
        Field {
            path: "M",
            rule: Rule::Honoured(Effect::Spec),
        },
        Field {
            path: "M.*.X",
            rule: Rule::Honoured(Effect::Spec),
        },
    ];

    #[test]
    fn walks_into_structs_lists_and_maps() {
        let ok = json!({"S": {"X": 1, "Y": 0}, "L": [{"X": 0, "Y": ""}, {}], "M": {"k": {"X": 5, "Y": []}}});
        assert!(check(TABLE, "Config", &ok).is_ok());
        let msg = |body: Value| {
            check(TABLE, "Config", &body)
                .unwrap_err()
                .message()
                .to_string()
        };
        assert_eq!(
            msg(json!({"S": {"Y": 1}})),
            "Wharf does not support Config.S.Y"
        );
        assert_eq!(
            msg(json!({"L": [{}, {"X": 2}]})),
            "Wharf does not support Config.L[1].X yet (issue 99)"
        );
        assert_eq!(
            msg(json!({"L": [{"Y": {"Z": 1}}]})),
            "Wharf does not support Config.L[0].Y"
        );
        assert_eq!(
            msg(json!({"M": {"k": {"Y": true}}})),
            "Wharf does not support Config.M.k.Y"
        );
        assert_eq!(
            msg(json!({"Host": {"D": 1}})),
            "Wharf does not support Host.D"
        );
        // Scalars where a struct belongs are the typed decoding's business, not a refusal.
        assert!(check(TABLE, "Config", &json!({"S": 3, "L": [1], "M": {"k": 2}})).is_ok());
    }

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
