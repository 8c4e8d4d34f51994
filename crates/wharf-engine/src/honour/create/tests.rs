//! The table test: every field of API 1.44's create body, each with a non-default value, is
//! either refused (400 naming it, nothing created) or applied. "Applied" is checked where it
//! can be: a field whose effect is the OCI spec must change the spec the container runs with.

use super::super::{check, Effect, Rule};
use super::TABLE;
use crate::containers::config::tests::{host, image, spec_of};
use crate::containers::config::{self, MergeContext, StartContext};
use crate::containers::rootfs::ResolvedUser;
use serde_json::{json, Value};
use wharf_api::container::ContainerCreateRequest;
use wharf_api::wire_keys::WireKeys;
use wharf_runtime::spec::{build_spec, NsMode, RlimitCeiling, Shm};

/// Every field of the create body in API 1.44 (generated from moby v25.0.0's
/// `api/swagger.yaml`: `ContainerConfig`, `HostConfig` with its `Resources`, and
/// `NetworkingConfig`; plus `HostConfig.KernelMemory`, which the Go type still carries), each
/// with a request that sets it to something other than its default. Where a field cannot be
/// set alone (MemorySwap needs Memory), the request carries its partner too, and the baseline
/// is the same request without the field.
fn samples() -> Vec<(&'static str, Value)> {
    let hc = |v: Value| json!({ "HostConfig": v });
    vec![
        ("Hostname", json!({"Hostname": "web"})),
        ("Domainname", json!({"Domainname": "example.org"})),
        ("User", json!({"User": "1000"})),
        ("AttachStdin", json!({"AttachStdin": true})),
        ("AttachStdout", json!({"AttachStdout": true})),
        ("AttachStderr", json!({"AttachStderr": true})),
        ("ExposedPorts", json!({"ExposedPorts": {"80/tcp": {}}})),
        ("Tty", json!({"Tty": true})),
        ("OpenStdin", json!({"OpenStdin": true})),
        ("StdinOnce", json!({"StdinOnce": true})),
        ("Env", json!({"Env": ["X=1"]})),
        ("Cmd", json!({"Cmd": ["echo", "hi"]})),
        (
            "Healthcheck",
            json!({"Healthcheck": {"Test": ["CMD", "true"]}}),
        ),
        ("ArgsEscaped", json!({"ArgsEscaped": true})),
        ("Image", json!({"Image": "busybox:other"})),
        ("Volumes", json!({"Volumes": {"/data": {}}})),
        ("WorkingDir", json!({"WorkingDir": "/tmp"})),
        ("Entrypoint", json!({"Entrypoint": ["env"]})),
        ("NetworkDisabled", json!({"NetworkDisabled": true})),
        ("MacAddress", json!({"MacAddress": "02:42:ac:11:00:02"})),
        ("OnBuild", json!({"OnBuild": ["RUN true"]})),
        ("Labels", json!({"Labels": {"a": "b"}})),
        ("StopSignal", json!({"StopSignal": "SIGINT"})),
        ("StopTimeout", json!({"StopTimeout": 5})),
        ("Shell", json!({"Shell": ["/bin/bash", "-c"]})),
        ("HostConfig.Binds", hc(json!({"Binds": ["/tmp:/tmp"]}))),
        (
            "HostConfig.ContainerIDFile",
            hc(json!({"ContainerIDFile": "/tmp/cid"})),
        ),
        (
            "HostConfig.LogConfig",
            hc(json!({"LogConfig": {"Type": "json-file", "Config": {}}})),
        ),
        ("HostConfig.NetworkMode", hc(json!({"NetworkMode": "host"}))),
        (
            "HostConfig.PortBindings",
            hc(json!({"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}})),
        ),
        (
            "HostConfig.RestartPolicy",
            hc(json!({"RestartPolicy": {"Name": "always"}})),
        ),
        ("HostConfig.AutoRemove", hc(json!({"AutoRemove": true}))),
        (
            "HostConfig.VolumeDriver",
            hc(json!({"VolumeDriver": "local"})),
        ),
        (
            "HostConfig.VolumesFrom",
            hc(json!({"VolumesFrom": ["other"]})),
        ),
        (
            "HostConfig.ConsoleSize",
            hc(json!({"ConsoleSize": [24, 80]})),
        ),
        (
            "HostConfig.Annotations",
            hc(json!({"Annotations": {"a": "b"}})),
        ),
        ("HostConfig.CapAdd", hc(json!({"CapAdd": ["NET_ADMIN"]}))),
        ("HostConfig.CapDrop", hc(json!({"CapDrop": ["CHOWN"]}))),
        (
            "HostConfig.CgroupnsMode",
            hc(json!({"CgroupnsMode": "private"})),
        ),
        ("HostConfig.Dns", hc(json!({"Dns": ["1.1.1.1"]}))),
        (
            "HostConfig.DnsOptions",
            hc(json!({"DnsOptions": ["ndots:2"]})),
        ),
        (
            "HostConfig.DnsSearch",
            hc(json!({"DnsSearch": ["example.org"]})),
        ),
        (
            "HostConfig.ExtraHosts",
            hc(json!({"ExtraHosts": ["db:10.0.0.1"]})),
        ),
        ("HostConfig.GroupAdd", hc(json!({"GroupAdd": ["29"]}))),
        ("HostConfig.IpcMode", hc(json!({"IpcMode": "host"}))),
        (
            "HostConfig.Cgroup",
            hc(json!({"Cgroup": "container:other"})),
        ),
        ("HostConfig.Links", hc(json!({"Links": ["a:b"]}))),
        ("HostConfig.OomScoreAdj", hc(json!({"OomScoreAdj": 100}))),
        ("HostConfig.PidMode", hc(json!({"PidMode": "host"}))),
        ("HostConfig.Privileged", hc(json!({"Privileged": true}))),
        (
            "HostConfig.PublishAllPorts",
            hc(json!({"PublishAllPorts": true})),
        ),
        (
            "HostConfig.ReadonlyRootfs",
            hc(json!({"ReadonlyRootfs": true})),
        ),
        (
            "HostConfig.SecurityOpt",
            hc(json!({"SecurityOpt": ["no-new-privileges"]})),
        ),
        (
            "HostConfig.StorageOpt",
            hc(json!({"StorageOpt": {"size": "1G"}})),
        ),
        ("HostConfig.Tmpfs", hc(json!({"Tmpfs": {"/run": ""}}))),
        ("HostConfig.UTSMode", hc(json!({"UTSMode": "host"}))),
        ("HostConfig.UsernsMode", hc(json!({"UsernsMode": "host"}))),
        ("HostConfig.ShmSize", hc(json!({"ShmSize": 1048576}))),
        (
            "HostConfig.Sysctls",
            hc(json!({"Sysctls": {"net.core.somaxconn": "1024"}})),
        ),
        ("HostConfig.Runtime", hc(json!({"Runtime": "runc"}))),
        ("HostConfig.Isolation", hc(json!({"Isolation": "default"}))),
        ("HostConfig.CpuShares", hc(json!({"CpuShares": 512}))),
        ("HostConfig.Memory", hc(json!({"Memory": 16777216}))),
        ("HostConfig.NanoCpus", hc(json!({"NanoCpus": 500000000}))),
        (
            "HostConfig.CgroupParent",
            hc(json!({"CgroupParent": "mygroup"})),
        ),
        ("HostConfig.BlkioWeight", hc(json!({"BlkioWeight": 300}))),
        (
            "HostConfig.BlkioWeightDevice",
            hc(json!({"BlkioWeightDevice": [{"Path": "/dev/sda", "Weight": 300}]})),
        ),
        (
            "HostConfig.BlkioDeviceReadBps",
            hc(json!({"BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1024}]})),
        ),
        (
            "HostConfig.BlkioDeviceWriteBps",
            hc(json!({"BlkioDeviceWriteBps": [{"Path": "/dev/sda", "Rate": 1024}]})),
        ),
        (
            "HostConfig.BlkioDeviceReadIOps",
            hc(json!({"BlkioDeviceReadIOps": [{"Path": "/dev/sda", "Rate": 10}]})),
        ),
        (
            "HostConfig.BlkioDeviceWriteIOps",
            hc(json!({"BlkioDeviceWriteIOps": [{"Path": "/dev/sda", "Rate": 10}]})),
        ),
        ("HostConfig.CpuPeriod", hc(json!({"CpuPeriod": 100000}))),
        ("HostConfig.CpuQuota", hc(json!({"CpuQuota": 50000}))),
        (
            "HostConfig.CpuRealtimePeriod",
            hc(json!({"CpuRealtimePeriod": 1000000})),
        ),
        (
            "HostConfig.CpuRealtimeRuntime",
            hc(json!({"CpuRealtimeRuntime": 10000})),
        ),
        ("HostConfig.CpusetCpus", hc(json!({"CpusetCpus": "0"}))),
        ("HostConfig.CpusetMems", hc(json!({"CpusetMems": "0"}))),
        (
            "HostConfig.Devices",
            hc(
                json!({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "rw"}]}),
            ),
        ),
        (
            "HostConfig.DeviceCgroupRules",
            hc(json!({"DeviceCgroupRules": ["c 42:* rmw"]})),
        ),
        (
            "HostConfig.DeviceRequests",
            hc(json!({"DeviceRequests": [{"Driver": "nvidia", "Count": -1}]})),
        ),
        (
            "HostConfig.KernelMemory",
            hc(json!({"KernelMemory": 8388608})),
        ),
        (
            "HostConfig.KernelMemoryTCP",
            hc(json!({"KernelMemoryTCP": 8388608})),
        ),
        (
            "HostConfig.MemoryReservation",
            hc(json!({"MemoryReservation": 8388608})),
        ),
        (
            "HostConfig.MemorySwap",
            hc(json!({"Memory": 16777216, "MemorySwap": 67108864})),
        ),
        (
            "HostConfig.MemorySwappiness",
            hc(json!({"MemorySwappiness": 10})),
        ),
        (
            "HostConfig.OomKillDisable",
            hc(json!({"OomKillDisable": true})),
        ),
        ("HostConfig.PidsLimit", hc(json!({"PidsLimit": 5}))),
        (
            "HostConfig.Ulimits",
            hc(json!({"Ulimits": [{"Name": "nproc", "Soft": 10, "Hard": 20}]})),
        ),
        ("HostConfig.CpuCount", hc(json!({"CpuCount": 2}))),
        ("HostConfig.CpuPercent", hc(json!({"CpuPercent": 50}))),
        ("HostConfig.IOMaximumIOps", hc(json!({"IOMaximumIOps": 10}))),
        (
            "HostConfig.IOMaximumBandwidth",
            hc(json!({"IOMaximumBandwidth": 10})),
        ),
        (
            "HostConfig.Mounts",
            hc(json!({"Mounts": [{"Type": "tmpfs", "Target": "/scratch"}]})),
        ),
        (
            "HostConfig.MaskedPaths",
            hc(json!({"MaskedPaths": ["/proc/kcore"]})),
        ),
        (
            "HostConfig.ReadonlyPaths",
            hc(json!({"ReadonlyPaths": ["/proc/sys"]})),
        ),
        ("HostConfig.Init", hc(json!({"Init": true}))),
        (
            "NetworkingConfig.EndpointsConfig",
            json!({"HostConfig": {"NetworkMode": "host"}, "NetworkingConfig": {"EndpointsConfig": {"host": {}}}}),
        ),
    ]
}

/// Values a `Partly` field refuses, with the words of the refusal.
fn refused_values() -> Vec<(Value, &'static str)> {
    let hc = |v: Value| json!({ "HostConfig": v });
    vec![
        (
            hc(json!({"LogConfig": {"Type": "syslog"}})),
            "\"syslog\" logging driver",
        ),
        (
            hc(json!({"NetworkMode": "container:db"})),
            "HostConfig.NetworkMode \"container:db\"",
        ),
        (
            hc(json!({"CgroupnsMode": "other"})),
            "invalid cgroup namespace mode: other",
        ),
        (hc(json!({"IpcMode": "other"})), "invalid IPC mode: other"),
        (hc(json!({"PidMode": "other"})), "invalid PID mode: other"),
        (hc(json!({"UTSMode": "other"})), "invalid UTS mode: other"),
        (
            hc(json!({"UsernsMode": "private"})),
            "user namespace remapping",
        ),
        (hc(json!({"SecurityOpt": ["seccomp=/p.json"]})), "issue 17"),
        (
            hc(json!({"SecurityOpt": ["bogus"]})),
            "invalid --security-opt 1: \"bogus\"",
        ),
        (
            hc(json!({"SecurityOpt": ["no-new-privileges=maybe"]})),
            "invalid --security-opt 2",
        ),
        (
            hc(json!({"Isolation": "hyperv"})),
            "Invalid isolation: \"hyperv\" - linux only supports 'default'",
        ),
        (
            hc(json!({"Mounts": [{"Type": "npipe", "Source": "/tmp", "Target": "/t"}]})),
            "invalid mount config for type \"npipe\": mount type unknown",
        ),
        (
            hc(json!({"Mounts": [{"Type": "tmpfs", "Source": "x", "Target": "/t"}]})),
            "field Source must not be specified",
        ),
        (
            json!({"NetworkingConfig": {"EndpointsConfig": {"default": {"Aliases": ["db"]}}}}),
            "NetworkingConfig.EndpointsConfig.default.Aliases",
        ),
    ]
}

fn with_image(mut body: Value) -> Value {
    if body.get("Image").is_none() {
        body["Image"] = json!("busybox");
    }
    body
}

fn typed(body: &Value) -> ContainerCreateRequest {
    serde_json::from_value(with_image(body.clone())).unwrap_or_else(|e| panic!("{body}: {e}"))
}

fn checked(body: &Value) -> Result<(), String> {
    let v = serde_json::to_value(typed(body)).unwrap();
    check(TABLE, "Config", &v).map_err(|e| e.message())
}

/// The same request without the field the sample is about.
fn baseline(path: &str, body: &Value) -> Value {
    let mut b = body.clone();
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap_or_default();
    let mut cur = &mut b;
    for p in parts {
        cur = &mut cur[p];
    }
    if let Some(o) = cur.as_object_mut() {
        o.remove(last);
    }
    b
}

/// The OCI spec a request would run with, built the way a start builds it.
fn oci_spec(body: &Value) -> Value {
    let req = typed(body);
    let h = host();
    let m = config::merge(
        &req,
        &image(),
        &MergeContext {
            id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            host: &h,
            host_hostname: "thehost",
        },
    )
    .unwrap_or_else(|e| panic!("{body}: {}", e.message()));
    let spec = spec_of(m);
    let hc = &spec.host_config;
    let pid = if hc.pid_mode == "host" {
        NsMode::Host
    } else {
        NsMode::Private
    };
    let (ipc, shm) = if hc.ipc_mode == "host" {
        (NsMode::Host, Shm::Bind("/dev/shm".into()))
    } else {
        (NsMode::Private, Shm::Private(hc.shm_size as u64))
    };
    let mut devices = Vec::new();
    for d in hc.resources.devices.iter().flatten() {
        devices.extend(crate::containers::devices::resolve(d).unwrap());
    }
    let groups = hc
        .group_add
        .iter()
        .flatten()
        .map(|g| g.parse::<u32>().unwrap())
        .collect();
    let input = config::spec_input(
        &spec,
        &spec.host_config.resources,
        StartContext {
            rootfs: "/rootfs".into(),
            etc_dir: "/exec/c".into(),
            user: ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
                home: "/root".into(),
            },
            group_add: groups,
            cgroups_path: config::cgroups_path("wharf", &spec),
            pid,
            ipc,
            shm,
            devices,
            rlimit_ceiling: RlimitCeiling::default(),
            default_net_sysctls: Default::default(),
            mounts: Default::default(),
            hook_binary: "/wharf-shim".into(),
        },
    )
    .unwrap_or_else(|e| panic!("{body}: {}", e.message()));
    serde_json::to_value(build_spec(&input).unwrap_or_else(|e| panic!("{body}: {e}"))).unwrap()
}

#[test]
fn the_table_covers_the_schema_exactly() {
    let schema: Vec<&str> = samples().iter().map(|(p, _)| *p).collect();
    for f in TABLE.iter().filter(|f| !is_nested(f.path)) {
        assert!(
            schema.contains(&f.path),
            "{} is in the table but not in the schema",
            f.path
        );
    }
    for p in &schema {
        assert!(
            TABLE.iter().any(|f| f.path == *p),
            "{p} is in the schema but not in the table"
        );
    }
    let top = TABLE.iter().filter(|f| !is_nested(f.path)).count();
    assert_eq!(top, schema.len());
    let mut dedup = schema.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(dedup.len(), schema.len(), "a field is listed twice");
    // 25 ContainerConfig fields, 39 HostConfig fields and its 31 Resources fields (Init is
    // among them in the 1.44 swagger) plus KernelMemory, 1 NetworkingConfig field.
    assert_eq!(schema.len(), 25 + 39 + 31 + 1 + 1);
}

#[test]
fn the_wire_types_know_every_field() {
    for (path, body) in samples() {
        let req = typed(&body);
        assert!(req.config.extra.is_empty(), "{path} fell into Config.extra");
        if let Some(hc) = &req.host_config {
            assert!(
                hc.extra.is_empty(),
                "{path} fell into HostConfig.extra: {:?}",
                hc.extra
            );
        }
        if let Some(nc) = &req.networking_config {
            assert!(
                nc.extra.is_empty(),
                "{path} fell into NetworkingConfig.extra"
            );
        }
        // And the value survives the round trip that storage and inspect make.
        let back = serde_json::to_value(&req).unwrap();
        let mut want = &with_image(body.clone());
        let mut got = &back;
        for p in path.split('.') {
            want = &want[p];
            got = &got[p];
        }
        assert!(
            same_but_zeros(want, got),
            "{path} did not round-trip: {want} -> {got}"
        );
    }
}

/// Equal, except that `got` may carry Go's zero values for fields `want` left out.
fn same_but_zeros(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            w.iter()
                .all(|(k, v)| g.get(k).is_some_and(|gv| same_but_zeros(v, gv)))
                && g.iter()
                    .all(|(k, v)| w.contains_key(k) || crate::honour::is_zero(v))
        }
        (Value::Array(w), Value::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(a, b)| same_but_zeros(a, b))
        }
        _ => want == got,
    }
}

#[test]
fn every_field_is_applied_or_refused() {
    for (path, body) in samples() {
        let field = TABLE.iter().find(|f| f.path == path).unwrap();
        let effect = match field.rule {
            Rule::Refused { .. } => {
                let e = checked(&body).expect_err(path);
                assert!(e.contains(path), "{path}: refusal does not name it: {e}");
                continue;
            }
            Rule::Honoured(effect) | Rule::Partly(effect, _) => effect,
        };
        checked(&body).unwrap_or_else(|e| panic!("{path} is honoured but refused: {e}"));
        match effect {
            Effect::Spec => {
                let with = oci_spec(&body);
                let without = oci_spec(&baseline(path, &body));
                assert_ne!(
                    with, without,
                    "{path} is said to change the spec but does not"
                );
            }
            Effect::Engine(where_) | Effect::Stored(where_) => {
                assert!(!where_.is_empty(), "{path}: say where it is applied");
                // It is kept as given, so inspect shows it (and nothing else changes the spec).
                oci_spec(&body);
            }
        }
    }
}

#[test]
fn partly_honoured_fields_refuse_the_rest_in_dockers_words() {
    for (body, words) in refused_values() {
        let e = checked(&body).expect_err(words);
        assert!(e.contains(words), "{body}: {e}");
    }
}

#[test]
fn the_docker_cli_body_is_accepted() {
    // What `docker run --rm busybox echo hi` (docker 28) sends: every zero value and default.
    let body = json!({"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,
        "AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["echo","hi"],
        "Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},
        "HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default",
        "PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"",
        "VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],
        "DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,
        "OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,
        "SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,
        "NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],
        "BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,
        "CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],
        "DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,
        "OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,
        "IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},
        "NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Links":null,"Aliases":null,
        "MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"",
        "IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,
        "DNSNames":null}}}});
    checked(&body).unwrap();
    oci_spec(&body);
    // docker-py's minimal body.
    checked(
        &json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "default"}}),
    )
    .unwrap();
}

#[test]
fn unknown_fields_are_refused_unless_zero() {
    assert!(checked(&json!({"Future": 0, "HostConfig": {"Later": ""}})).is_ok());
    assert_eq!(
        checked(&json!({"HostConfig": {"Later": 1}})).unwrap_err(),
        "Wharf does not support HostConfig.Later"
    );
    assert_eq!(
        checked(&json!({"Future": {"A": 1}})).unwrap_err(),
        "Wharf does not support Config.Future"
    );
}

/// A field inside another field of the table (`Healthcheck.Retries`), not one of the body's.
fn is_nested(path: &str) -> bool {
    path.char_indices()
        .filter(|(_, c)| *c == '.' || *c == '[')
        .any(|(i, _)| TABLE.iter().any(|f| f.path == &path[..i]))
}

/// Every field of Docker's create body (wharf_api's `WireKeys`, from moby's Go types) as the
/// table names it: a list's elements `X[].Y`, a map's values `X.*.Y`.
fn docker_schema() -> Vec<String> {
    wharf_api::wire_keys::paths(ContainerCreateRequest::KEYS)
}

/// The field whose value holds `path` (`HostConfig.Mounts` for `HostConfig.Mounts[].Type`).
fn holder(path: &str) -> Option<&str> {
    let (mut parent, _) = path.rsplit_once('.')?;
    loop {
        if let Some(p) = parent.strip_suffix("[]") {
            parent = p;
        } else if let Some(p) = parent.strip_suffix(".*") {
            parent = p;
        } else {
            return Some(parent);
        }
    }
}

#[test]
fn the_table_walks_into_every_applied_struct() {
    let schema = docker_schema();
    for f in TABLE.iter().filter(|f| is_nested(f.path)) {
        assert!(
            schema.iter().any(|p| p == f.path),
            "{} is in the table but not in Docker's schema",
            f.path
        );
    }
    // Inside a field Wharf applies, every field of Docker's struct is in the table too (one
    // that is refused whole needs no list of what it holds).
    for p in &schema {
        let Some(parent) = holder(p) else { continue };
        let Some(f) = TABLE.iter().find(|f| f.path == parent) else {
            continue;
        };
        if matches!(f.rule, Rule::Refused { .. }) {
            continue;
        }
        assert!(
            TABLE.iter().any(|f| f.path == p),
            "{p} is inside {parent}, which is applied, but is not in the table"
        );
    }
}

#[test]
fn nested_fields_are_refused_naming_their_path() {
    let hc = |v: Value| json!({ "HostConfig": v });
    for (body, want) in [
        (
            json!({"Healthcheck": {"Test": ["CMD", "true"], "Later": 1}}),
            "Wharf does not support Config.Healthcheck.Later",
        ),
        (
            hc(json!({"Mounts": [{"Type": "tmpfs", "Target": "/a"},
                {"Type": "tmpfs", "Target": "/b", "TmpfsOptions": {"Options": [["noexec"]]}}]})),
            "Wharf does not support HostConfig.Mounts[1].TmpfsOptions.Options",
        ),
        (
            hc(json!({"Mounts": [{"Type": "tmpfs", "Target": "/a", "Later": "x"}]})),
            "Wharf does not support HostConfig.Mounts[0].Later",
        ),
        (
            hc(json!({"Mounts": [{"Type": "tmpfs", "Target": "/a",
                "BindOptions": {"Propagation": "rshared"}}]})),
            "invalid mount config for type \"tmpfs\": field BindOptions must not be specified",
        ),
        (
            hc(json!({"Mounts": [{"Type": "tmpfs", "Target": "/a",
                "VolumeOptions": {"Subpath": "x"}}]})),
            "invalid mount config for type \"tmpfs\": field VolumeOptions must not be specified",
        ),
        (
            json!({"NetworkingConfig": {"EndpointsConfig": {"default": {"Later": 1}}}}),
            "Wharf does not support NetworkingConfig.EndpointsConfig.default.Later",
        ),
        (
            json!({"NetworkingConfig": {"EndpointsConfig": {"default": {"Aliases": ["db"]}}}}),
            "Wharf does not support NetworkingConfig.EndpointsConfig.default.Aliases yet (issue 16: networking)",
        ),
        (
            json!({"NetworkingConfig": {"EndpointsConfig": {"default": {"IPAMConfig": {"IPv4Address": "10.0.0.2"}}}}}),
            "Wharf does not support NetworkingConfig.EndpointsConfig.default.IPAMConfig yet (issue 16: networking)",
        ),
    ] {
        assert_eq!(checked(&body).unwrap_err(), want, "{body}");
    }
    // Zero values stay accepted, as clients send them (compose: empty option structs; the
    // docker CLI 28: an endpoint's GwPriority, API 1.48).
    for body in [
        json!({"Healthcheck": {"Test": ["CMD", "true"], "Later": 0, "Other": null}}),
        hc(
            json!({"Mounts": [{"Type": "tmpfs", "Target": "/a", "Later": "", "BindOptions": {},
            "VolumeOptions": {"Subpath": ""}, "TmpfsOptions": {"Options": [], "Mode": 448}}]}),
        ),
        json!({"NetworkingConfig": {"EndpointsConfig": {"default": {"GwPriority": 0,
            "IPAMConfig": {"IPv4Address": ""}, "DriverOpts": {}}}}}),
    ] {
        checked(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
    }
}
