//! JSON field names matched as Go's `encoding/json` matches them: a key that names no field
//! exactly goes to the field it names case-insensitively. dockerd decodes every request body
//! that way, so clients send `detachKeys` (docker-py's exec create), `hostconfig` or `memory`
//! and expect them honoured.
//!
//! serde matches names exactly, and a derived `Deserialize` does not expose its field names
//! (not at all for structs with `#[serde(flatten)]`, which most wire types use to keep unknown
//! fields). So each request type declares Docker's schema for its body as data, [`WireKeys`],
//! and [`from_value`] rewrites the keys of the parsed JSON to Docker's spelling before serde
//! sees them, recursing into nested structs, lists of structs and maps of structs. Map keys
//! that are user data (labels, env-like maps, port specs) are never touched.
//!
//! The schema is Docker's (API 1.44, from moby's Go types), not the Rust type's: fields Wharf
//! keeps in an `extra` map are canonicalised too, so a refusal table that looks for `Memory`
//! finds a client's `memory`. A test checks that every field a wire type serialises is
//! declared.

pub mod docker;
pub mod typed;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// One field of a body: Docker's name and what its value holds.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub inner: Inner,
}

/// What a field's value is, as far as key matching cares.
#[derive(Debug, Clone, Copy)]
pub enum Inner {
    /// A scalar, a list of scalars, or a map whose keys are data.
    Leaf,
    /// A nested struct with these fields.
    Struct(&'static [Key]),
    /// A list whose elements are this.
    List(&'static Inner),
    /// A map with data keys whose values are this.
    Map(&'static Inner),
    /// Not a field: Go's embedded struct (or serde's `flatten`), whose fields sit at this level.
    Flatten(&'static [Key]),
}

impl Key {
    pub const fn leaf(name: &'static str) -> Key {
        Key {
            name,
            inner: Inner::Leaf,
        }
    }
    pub const fn nested(name: &'static str, fields: &'static [Key]) -> Key {
        Key {
            name,
            inner: Inner::Struct(fields),
        }
    }
    pub const fn with(name: &'static str, inner: Inner) -> Key {
        Key { name, inner }
    }
    pub const fn flatten(fields: &'static [Key]) -> Key {
        Key {
            name: "",
            inner: Inner::Flatten(fields),
        }
    }
}

/// A request body type whose field names match case-insensitively.
pub trait WireKeys {
    /// The body's fields, Docker's names.
    const KEYS: &'static [Key];
    /// The Go struct dockerd decodes the body into, for messages.
    const GO_NAME: &'static str = "";
}

/// Go's rule for one object: a key equal to a field name stays; otherwise it becomes the first
/// field whose name equals it ignoring ASCII case (Go folds Unicode too; Docker's names are
/// ASCII). When both spellings are present, the exact one wins. Unknown keys stay as they are.
pub fn canonicalize(value: &mut Value, inner: &Inner) {
    match inner {
        Inner::Leaf => {}
        Inner::Struct(fields) | Inner::Flatten(fields) => {
            if let Value::Object(obj) = value {
                canonicalize_object(obj, fields);
            }
        }
        Inner::List(elem) => {
            if let Value::Array(items) = value {
                for item in items {
                    canonicalize(item, elem);
                }
            }
        }
        Inner::Map(elem) => {
            if let Value::Object(obj) = value {
                for item in obj.values_mut() {
                    canonicalize(item, elem);
                }
            }
        }
    }
}

fn canonicalize_object(obj: &mut Map<String, Value>, fields: &[Key]) {
    let mut flat = Vec::new();
    flatten_into(fields, &mut flat);
    let entries = std::mem::take(obj);
    let mut renamed = Vec::new();
    for (k, mut v) in entries {
        let key = match flat.iter().find(|f| f.name == k) {
            Some(f) => {
                canonicalize(&mut v, &f.inner);
                obj.insert(k, v);
                continue;
            }
            None => flat.iter().find(|f| f.name.eq_ignore_ascii_case(&k)),
        };
        match key {
            Some(f) => {
                canonicalize(&mut v, &f.inner);
                renamed.push((f.name.to_string(), v));
            }
            None => {
                obj.insert(k, v);
            }
        }
    }
    for (k, v) in renamed {
        obj.entry(k).or_insert(v);
    }
}

fn flatten_into<'a>(fields: &'a [Key], out: &mut Vec<&'a Key>) {
    for f in fields {
        match f.inner {
            Inner::Flatten(inner) => flatten_into(inner, out),
            _ => out.push(f),
        }
    }
}

/// Deserialises `T` from `value` after matching its keys as Go does.
pub fn from_value<T: WireKeys + DeserializeOwned>(mut value: Value) -> serde_json::Result<T> {
    canonicalize(&mut value, &Inner::Struct(T::KEYS));
    serde_json::from_value(value)
}

/// [`from_value`] for request bodies: a value of the wrong type is refused naming its field in
/// Go's words ([`typed`]).
pub fn decode<T: WireKeys + DeserializeOwned>(mut value: Value) -> Result<T, String> {
    canonicalize(&mut value, &Inner::Struct(T::KEYS));
    typed::decode(&value)
}

/// Every field name declared by `keys`, nested ones as `Outer.Inner`, a list's elements as
/// `List[].Inner` and a map's values as `Map.*.Inner` (the honour tables' names), for tests
/// and tables.
pub fn paths(keys: &'static [Key]) -> Vec<String> {
    fn walk(prefix: &str, inner: &Inner, out: &mut Vec<String>) {
        match inner {
            Inner::Leaf => {}
            Inner::Struct(fields) | Inner::Flatten(fields) => {
                for f in *fields {
                    if let Inner::Flatten(_) = f.inner {
                        walk(prefix, &f.inner, out);
                        continue;
                    }
                    let p = if prefix.is_empty() {
                        f.name.to_string()
                    } else {
                        format!("{prefix}.{}", f.name)
                    };
                    out.push(p.clone());
                    walk(&p, &f.inner, out);
                }
            }
            Inner::List(e) => walk(&format!("{prefix}[]"), e, out),
            Inner::Map(e) => walk(&format!("{prefix}.*"), e, out),
        }
    }
    let mut out = Vec::new();
    walk("", &Inner::Struct(keys), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{ContainerCreateRequest, ContainerUpdateRequest};
    use crate::exec::{ExecCreateRequest, ExecStartRequest};
    use serde::Serialize;
    use serde_json::json;

    #[test]
    fn docker_py_exec_body() {
        let r: ExecCreateRequest = from_value(json!({
            "AttachStdin": false, "AttachStdout": true, "AttachStderr": true, "Tty": false,
            "Cmd": ["true"], "Privileged": false, "User": "", "Env": null,
            "detachKeys": "ctrl-x,x", "workingdir": "/tmp"
        }))
        .unwrap();
        assert_eq!(r.detach_keys, "ctrl-x,x");
        assert_eq!(r.working_dir, "/tmp");
        let s: ExecStartRequest = from_value(json!({"detach": true, "TTY": true})).unwrap();
        assert!(s.detach && s.tty);
    }

    #[test]
    fn nested_structs_lists_and_maps_but_not_data_keys() {
        let r: ContainerCreateRequest = from_value(json!({
            "image": "busybox",
            "CMD": ["true"],
            "labels": {"image": "data", "Cmd": "data"},
            "healthcheck": {"test": ["NONE"]},
            "hostconfig": {
                "memory": 1048576,
                "restartpolicy": {"name": "always"},
                "portbindings": {"80/tcp": [{"hostport": "8080"}]},
                "ulimits": [{"name": "nofile", "soft": 1, "hard": 2}],
                "mounts": [{"type": "tmpfs", "target": "/t", "tmpfsoptions": {"sizebytes": 1}}],
                "sysctls": {"net.ipv4.ip_forward": "1"},
                "NotDockers": 1
            },
            "networkingconfig": {"endpointsconfig": {"mynet": {"aliases": ["a"]}}}
        }))
        .unwrap();
        assert_eq!(r.config.image, "busybox");
        assert_eq!(r.config.cmd, Some(vec!["true".to_string()]));
        let labels = r.config.labels.unwrap();
        assert_eq!(labels["image"], "data");
        assert_eq!(labels["Cmd"], "data");
        assert_eq!(r.config.healthcheck.unwrap().test, ["NONE"]);
        let hc = r.host_config.unwrap();
        assert_eq!(hc.restart_policy.name, "always");
        assert_eq!(hc.resources.memory, 1048576);
        let pb = hc.port_bindings.unwrap();
        assert_eq!(pb["80/tcp"].as_ref().unwrap()[0].host_port, "8080");
        assert_eq!(hc.resources.ulimits.unwrap()[0].soft, 1);
        assert_eq!(
            hc.mounts.unwrap()[0]
                .tmpfs_options
                .as_ref()
                .unwrap()
                .size_bytes,
            1
        );
        assert_eq!(hc.sysctls.unwrap()["net.ipv4.ip_forward"], "1");
        assert_eq!(hc.extra["NotDockers"], 1, "unknown keys stay as sent");
        assert_eq!(
            r.networking_config.unwrap().endpoints_config.unwrap()["mynet"]["Aliases"][0],
            "a"
        );
        let u: ContainerUpdateRequest =
            from_value(json!({"memory": 5, "restartPolicy": {"Name": "no"}})).unwrap();
        assert_eq!(u.restart_policy.unwrap().name, "no");
        assert_eq!(u.resources.memory, 5);
    }

    #[test]
    fn the_exact_spelling_wins() {
        let r: ExecCreateRequest =
            from_value(json!({"detachkeys": "a", "DetachKeys": "b"})).unwrap();
        assert_eq!(r.detach_keys, "b");
    }

    /// Every key a wire type writes at a struct level must be one of Docker's names declared
    /// in its [`WireKeys`]; a typed field added under another name fails here.
    fn assert_declared(v: &Value, inner: &Inner, at: &str) {
        match (v, inner) {
            (Value::Object(obj), Inner::Struct(fields) | Inner::Flatten(fields)) => {
                let mut flat = Vec::new();
                flatten_into(fields, &mut flat);
                for (k, child) in obj {
                    let f = flat
                        .iter()
                        .find(|f| f.name == k)
                        .unwrap_or_else(|| panic!("{at}{k} is not declared in WireKeys"));
                    assert_declared(child, &f.inner, &format!("{at}{k}."));
                }
            }
            (Value::Array(items), Inner::List(e)) => {
                for i in items {
                    assert_declared(i, e, at);
                }
            }
            (Value::Object(obj), Inner::Map(e)) => {
                for i in obj.values() {
                    assert_declared(i, e, at);
                }
            }
            _ => {}
        }
    }

    fn round_trip<T: WireKeys + DeserializeOwned + Serialize + Default>(sample: Value) {
        let v = serde_json::to_value(T::default()).unwrap();
        assert_declared(&v, &Inner::Struct(T::KEYS), "");
        let t: T = from_value(sample).unwrap();
        let v = serde_json::to_value(t).unwrap();
        assert_declared(&v, &Inner::Struct(T::KEYS), "");
    }

    #[test]
    fn wire_types_use_only_declared_names() {
        // The docker CLI 28's body for `run -d -p 8080:80 busybox httpd`, plus the fields it
        // leaves out by default.
        round_trip::<ContainerCreateRequest>(
            serde_json::from_str(
                r#"{
            "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
            "AttachStdout": false, "AttachStderr": false, "ExposedPorts": {"80/tcp": {}},
            "Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": null,
            "Cmd": ["busybox", "httpd"], "Image": "busybox", "Volumes": {}, "WorkingDir": "",
            "Entrypoint": null, "OnBuild": null, "Labels": {}, "StopSignal": "SIGTERM",
            "StopTimeout": 3, "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1},
            "HostConfig": {"Binds": null, "ContainerIDFile": "",
                "LogConfig": {"Type": "", "Config": {}}, "NetworkMode": "default",
                "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": false,
                "Init": true, "VolumeDriver": "", "VolumesFrom": null, "ConsoleSize": [0, 0],
                "CapAdd": null, "CapDrop": null, "CgroupnsMode": "", "Dns": [],
                "DnsOptions": [], "DnsSearch": [], "ExtraHosts": null, "GroupAdd": null,
                "IpcMode": "", "Cgroup": "", "Links": null, "OomScoreAdj": 0, "PidMode": "",
                "Privileged": false, "PublishAllPorts": false, "ReadonlyRootfs": false,
                "SecurityOpt": null, "UTSMode": "", "UsernsMode": "", "ShmSize": 0,
                "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
                "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
                "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [],
                "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
                "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "",
                "CpusetMems": "", "Devices": [], "DeviceCgroupRules": null,
                "DeviceRequests": null, "MemoryReservation": 0, "MemorySwap": 0,
                "MemorySwappiness": -1, "OomKillDisable": false, "PidsLimit": 0, "Ulimits": [],
                "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
                "MaskedPaths": null, "ReadonlyPaths": null},
            "NetworkingConfig": {"EndpointsConfig": {"default": {"IPAMConfig": null,
                "Links": null, "Aliases": null, "MacAddress": "", "DriverOpts": null,
                "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
                "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0, "DNSNames": null}}}
        }"#,
            )
            .unwrap(),
        );
        round_trip::<ContainerUpdateRequest>(json!({
            "Memory": 1, "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}
        }));
        round_trip::<ExecCreateRequest>(json!({
            "User": "u", "Privileged": true, "Tty": true, "ConsoleSize": [1, 2],
            "AttachStdin": true, "AttachStderr": true, "AttachStdout": true,
            "DetachKeys": "ctrl-a", "Env": ["A=1"], "WorkingDir": "/", "Cmd": ["sh"]
        }));
        round_trip::<ExecStartRequest>(json!({"Detach": true, "Tty": true, "ConsoleSize": [1, 2]}));
        round_trip::<crate::registry::AuthConfig>(json!({
            "Username": "u", "password": "p", "auth": "", "Email": "e",
            "ServerAddress": "localhost:5000", "identitytoken": "", "registrytoken": ""
        }));
        assert!(paths(HOST_CONFIG_FOR_TEST).contains(&"Memory".to_string()));
        // The docker CLI 28's body for `volume create --label a=b -o type=tmpfs v`.
        round_trip::<crate::volume::VolumeCreateRequest>(json!({
            "Driver": "local", "DriverOpts": {"type": "tmpfs"}, "Labels": {"a": "b"},
            "Name": "v", "ClusterVolumeSpec": {"Group": "g"}
        }));
    }

    const HOST_CONFIG_FOR_TEST: &[Key] = docker::HOST_CONFIG;
}
