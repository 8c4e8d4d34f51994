//! A body whose value has the wrong type for its field (`"Memory": "lots"`, `"CpuShares": 1.5`,
//! a number beyond the field's range) is refused naming the field, in Go's `encoding/json`
//! words as dockerd writes them (`json: cannot unmarshal string into Go struct field
//! HostConfig.HostConfig.Memory of type int64`), with a 400 where dockerd answers 500.
//!
//! serde's error has no path (the wire types flatten `Config` and `Resources`, and a flattened
//! struct's errors carry none), so the field is found afterwards, on the error path only: the
//! body is cut down to one branch at a time, keeping the branch that still fails with the same
//! error, until a leaf is left. Each level costs one pass over that level's values.

use super::{Inner, Key, WireKeys};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

enum Step {
    Key(String),
    Index(usize),
}

/// `value` with only the branch `path` kept (every object on the way holds just that key, every
/// list just that element).
fn only(value: &Value, path: &[Step]) -> Value {
    match (path.split_first(), value) {
        (None, v) => v.clone(),
        (Some((Step::Key(k), rest)), Value::Object(o)) => {
            let mut m = Map::new();
            if let Some(v) = o.get(k) {
                m.insert(k.clone(), only(v, rest));
            }
            Value::Object(m)
        }
        (Some((Step::Index(i), rest)), Value::Array(a)) => {
            Value::Array(a.get(*i).map(|v| only(v, rest)).into_iter().collect())
        }
        (Some(_), v) => v.clone(),
    }
}

fn node<'a>(value: &'a Value, path: &[Step]) -> &'a Value {
    path.iter().fold(value, |v, s| match (s, v) {
        (Step::Key(k), Value::Object(o)) => o.get(k).unwrap_or(v),
        (Step::Index(i), Value::Array(a)) => a.get(*i).unwrap_or(v),
        _ => v,
    })
}

fn fails_alike<T: DeserializeOwned>(value: &Value, message: &str) -> bool {
    T::deserialize(value).is_err_and(|e| e.to_string() == message)
}

/// Trials before the search stops where it is: a hostile body of a million list elements
/// must not buy seconds of a server thread with one bad value at its end.
const MAX_TRIALS: usize = 4096;

/// The branch of `value` that makes `T` fail with `message` (or the start of it, when
/// [`MAX_TRIALS`] run out).
fn culprit<T: DeserializeOwned>(value: &Value, message: &str) -> Vec<Step> {
    let mut path = Vec::new();
    let mut trials = 0;
    loop {
        let children: Vec<Step> = match node(value, &path) {
            Value::Object(o) => o.keys().cloned().map(Step::Key).collect(),
            Value::Array(a) => (0..a.len()).map(Step::Index).collect(),
            _ => return path,
        };
        let mut found = None;
        for c in children {
            trials += 1;
            if trials > MAX_TRIALS {
                return path;
            }
            path.push(c);
            if fails_alike::<T>(&only(value, &path), message) {
                found = path.pop();
                break;
            }
            path.pop();
        }
        match found {
            Some(c) => path.push(c),
            None => return path,
        }
    }
}

/// Go's type names for moby's structs, by the field that holds them.
fn go_struct(field: &str) -> &str {
    match field {
        "Healthcheck" => "HealthConfig",
        "Ulimits" => "Ulimit",
        "Mounts" => "Mount",
        "Devices" => "DeviceMapping",
        "BlkioWeightDevice" => "WeightDevice",
        "BlkioDeviceReadBps"
        | "BlkioDeviceWriteBps"
        | "BlkioDeviceReadIOps"
        | "BlkioDeviceWriteIOps" => "ThrottleDevice",
        "PortBindings" => "PortBinding",
        "EndpointsConfig" => "EndpointSettings",
        other => other,
    }
}

/// Go's `Struct.Field.Path`: the struct that holds the leaf, then the struct fields from the
/// body's root (list indices and map keys are not fields).
fn go_field(root: &'static [Key], go_root: &str, path: &[Step]) -> String {
    let mut fields: Vec<&str> = Vec::new();
    let mut holder = go_root;
    let mut inner = Inner::Struct(root);
    for step in path {
        inner = match (step, inner) {
            (Step::Key(k), Inner::Struct(keys) | Inner::Flatten(keys)) => {
                let mut flat = Vec::new();
                super::flatten_into(keys, &mut flat);
                match flat.iter().find(|f| f.name == k) {
                    Some(f) => {
                        if let Some(prev) = fields.last() {
                            holder = go_struct(prev);
                        }
                        fields.push(f.name);
                        f.inner
                    }
                    None => {
                        fields.push(k);
                        Inner::Leaf
                    }
                }
            }
            (Step::Index(_), Inner::List(e)) => *e,
            (Step::Key(_), Inner::Map(e)) => *e,
            (_, other) => other,
        };
    }
    if fields.is_empty() {
        return go_root.to_string();
    }
    format!("{holder}.{}", fields.join("."))
}

/// Go's name for the type serde expected.
fn go_type(expected: &str) -> &str {
    match expected {
        "i64" => "int64",
        "i32" => "int32",
        "u64" => "uint64",
        "u32" => "uint32",
        "u16" => "uint16",
        "u8" => "uint8",
        "a boolean" => "bool",
        "a string" => "string",
        "a sequence" => "slice",
        "a map" => "map",
        "a string or a list of strings" => "strslice.StrSlice",
        other => other.strip_prefix("struct ").unwrap_or(other),
    }
}

/// Go's word for a JSON value (`UnmarshalTypeError.Value`): numbers that do not fit carry
/// their text.
fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) => format!("number {n}"),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

/// Deserialises `T` from `value` (keys already matched as Go does); a value of the wrong type
/// or out of its field's range is refused in Go's words, naming the field.
pub fn decode<T: WireKeys + DeserializeOwned>(value: &Value) -> Result<T, String> {
    let err = match T::deserialize(value) {
        Ok(t) => return Ok(t),
        Err(e) => e.to_string(),
    };
    // Not an object at all: Go names the body's type, not a field.
    if !value.is_object() {
        return Err(format!(
            "json: cannot unmarshal {} into Go value of type {}",
            go_value(value),
            T::GO_NAME
        ));
    }
    let path = culprit::<T>(value, &err);
    let field = go_field(T::KEYS, T::GO_NAME, &path);
    let leaf = node(value, &path);
    match err.split_once(", expected ") {
        Some((what, expected))
            if what.starts_with("invalid type") || what.starts_with("invalid value") =>
        {
            Err(format!(
                "json: cannot unmarshal {} into Go struct field {field} of type {}",
                go_value(leaf),
                go_type(expected)
            ))
        }
        _ if path.is_empty() => Err(format!("invalid JSON: {err}")),
        _ => Err(format!("invalid JSON in {field}: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{ContainerCreateRequest, ContainerUpdateRequest};
    use crate::exec::ExecCreateRequest;
    use serde_json::json;

    fn create(body: Value) -> String {
        let mut body = body;
        super::super::canonicalize(&mut body, &Inner::Struct(ContainerCreateRequest::KEYS));
        decode::<ContainerCreateRequest>(&body).unwrap_err()
    }

    #[test]
    fn names_the_field_in_gos_words() {
        assert_eq!(
            create(json!({"HostConfig": {"Memory": "lots"}})),
            "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64"
        );
        assert_eq!(
            create(json!({"hostconfig": {"cpushares": "x"}, "Image": "busybox"})),
            "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.CpuShares of type int64"
        );
        assert_eq!(
            create(json!({"HostConfig": {"Memory": 1.5e300}})),
            "json: cannot unmarshal number 1.5e+300 into Go struct field HostConfig.HostConfig.Memory of type int64"
        );
        assert_eq!(
            create(json!({"HostConfig": {"Memory": 18446744073709551615u64}})),
            "json: cannot unmarshal number 18446744073709551615 into Go struct field HostConfig.HostConfig.Memory of type int64"
        );
        assert_eq!(
            create(json!({"HostConfig": {"BlkioWeight": 70000}})),
            "json: cannot unmarshal number 70000 into Go struct field HostConfig.HostConfig.BlkioWeight of type uint16"
        );
        assert_eq!(
            create(json!({"User": 5})),
            "json: cannot unmarshal number 5 into Go struct field ContainerConfigWrapper.User of type string"
        );
        assert_eq!(
            create(json!({"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 2},
                {"Name": "core", "Soft": "x", "Hard": 1}]}})),
            "json: cannot unmarshal string into Go struct field Ulimit.HostConfig.Ulimits.Soft of type int64"
        );
        assert_eq!(
            create(json!({"HostConfig": {"RestartPolicy": {"MaximumRetryCount": 1.5}}})),
            "json: cannot unmarshal number 1.5 into Go struct field RestartPolicy.HostConfig.RestartPolicy.MaximumRetryCount of type int64"
        );
        assert_eq!(
            create(json!({"Healthcheck": {"Interval": "1s"}})),
            "json: cannot unmarshal string into Go struct field HealthConfig.Healthcheck.Interval of type int64"
        );
        assert_eq!(
            create(json!({"Labels": {"a": 5}})),
            "json: cannot unmarshal number 5 into Go struct field ContainerConfigWrapper.Labels of type string"
        );
        assert_eq!(
            create(json!({"HostConfig": {"ConsoleSize": [1, "x"]}})),
            "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.ConsoleSize of type uint64"
        );
        assert_eq!(
            create(json!({"HostConfig": {"PidsLimit": -1.0}})),
            "json: cannot unmarshal number -1.0 into Go struct field HostConfig.HostConfig.PidsLimit of type int64"
        );
        assert_eq!(
            decode::<ContainerCreateRequest>(&json!([1])).unwrap_err(),
            "json: cannot unmarshal array into Go value of type ContainerConfigWrapper"
        );
        assert_eq!(
            decode::<ContainerCreateRequest>(&json!("x")).unwrap_err(),
            "json: cannot unmarshal string into Go value of type ContainerConfigWrapper"
        );
        assert_eq!(
            decode::<ContainerUpdateRequest>(&json!({"Memory": true})).unwrap_err(),
            "json: cannot unmarshal bool into Go struct field UpdateConfig.Memory of type int64"
        );
        assert_eq!(
            decode::<ExecCreateRequest>(&json!({"Cmd": ["a", 1]})).unwrap_err(),
            "json: cannot unmarshal number 1 into Go struct field ExecConfig.Cmd of type string"
        );
    }

    #[test]
    fn a_huge_list_costs_bounded_trials() {
        let mut env: Vec<Value> = (0..100_000).map(|i| json!(format!("V{i}=x"))).collect();
        env.push(json!(5));
        let e = create(json!({"Env": env}));
        assert!(e.contains("ContainerConfigWrapper.Env"), "{e}");
    }

    #[test]
    fn right_types_pass() {
        let body = json!({"Image": "x", "HostConfig": {"Memory": null, "CpuShares": 0,
            "Ulimits": null, "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}}, "Env": null});
        assert!(decode::<ContainerCreateRequest>(&body).is_ok());
    }
}
