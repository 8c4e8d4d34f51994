use super::*;
use crate::error::EngineError;
use serde_json::json;

pub(crate) fn host() -> HostFacts {
    HostFacts {
        cgroup_v2: false,
        memory: true,
        swap: true,
        memory_reservation: true,
        swappiness: true,
        oom_kill_disable: true,
        cpu_shares: true,
        cpu_cfs: true,
        cpuset: true,
        pids: true,
        blkio_weight: true,
        cpus: "0-1".into(),
        mems: "0".into(),
        ncpu: 2,
        cgroup_namespaces: true,
        ipv4_forwarding: true,
        rlimit_ceiling: RlimitCeiling::default(),
    }
}

pub(crate) fn image() -> ContainerConfig {
    ContainerConfig {
        env: Some(vec!["PATH=/bin".into(), "A=image".into(), "B=image".into()]),
        cmd: Some(vec!["sh".into()]),
        working_dir: "/srv".into(),
        ..Default::default()
    }
}

pub(crate) fn merge_json(body: serde_json::Value, h: &HostFacts) -> Result<Merged, EngineError> {
    let req: ContainerCreateRequest = serde_json::from_value(body).unwrap();
    merge(
        &req,
        &image(),
        &MergeContext {
            id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            host: h,
            host_hostname: "thehost",
        },
    )
}

fn err(body: serde_json::Value) -> String {
    merge_json(body, &host()).unwrap_err().message()
}

#[test]
fn env_is_dockers_merge_and_unset() {
    let m = merge_json(
        json!({"Image": "x", "Env": ["B=user", "A", "C=3"]}),
        &host(),
    )
    .unwrap();
    assert_eq!(m.config.env.unwrap(), ["B=user", "A", "C=3", "PATH=/bin"]);
    let env = process_env(
        &[
            "PATH=/bin".into(),
            "A".into(),
            "HOSTNAME".into(),
            "X=1".into(),
        ],
        "h",
        "/root",
        true,
    );
    assert_eq!(env, ["PATH=/bin", "TERM=xterm", "X=1", "HOME=/root"]);
}

#[test]
fn env_of_100k_entries_merges_in_linear_time() {
    let user: Vec<String> = (0..100_000).map(|i| format!("V{i}={i}")).collect();
    let image: Vec<String> = (0..100_000).map(|i| format!("I{i}={i}")).collect();
    let merged = merge_env(&image, &user);
    assert_eq!(merged.len(), 200_000);
    let mut config = merged;
    config.extend((0..100_000).map(|i| format!("V{i}=again")));
    config.push("I7".into());
    let env = process_env(&config, "h", "/root", false);
    // PATH, HOSTNAME, the 100k V (replaced in place), 99,999 I, HOME.
    assert_eq!(env.len(), 2 + 100_000 + 99_999 + 1);
    assert_eq!(env[2], "V0=again");
    assert!(!env.iter().any(|e| e == "I7=7"));
}

#[test]
fn image_defaults_and_command() {
    let m = merge_json(json!({"Image": "x"}), &host()).unwrap();
    assert_eq!((m.path.as_str(), m.args.len()), ("sh", 0));
    assert_eq!(m.config.working_dir, "/srv");
    assert_eq!(m.config.hostname, "0123456789ab");
    let m = merge_json(
        json!({"Image": "x", "HostConfig": {"UTSMode": "host"}}),
        &host(),
    )
    .unwrap();
    assert_eq!(m.config.hostname, "thehost");
    assert_eq!(
        err(json!({"Image": "x", "Hostname": "h", "HostConfig": {"UTSMode": "host"}})),
        "conflicting options: hostname and the UTS mode"
    );
}

#[test]
fn the_images_volumes_join_the_users() {
    let mut img = image();
    img.volumes = Some(
        [
            ("/data".to_string(), json!({})),
            ("/logs".to_string(), json!({})),
        ]
        .into_iter()
        .collect(),
    );
    let req: ContainerCreateRequest =
        serde_json::from_value(json!({"Image": "x", "Volumes": {"/mine": {}}})).unwrap();
    let ctx = MergeContext {
        id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        host: &host(),
        host_hostname: "thehost",
    };
    let m = merge(&req, &img, &ctx).unwrap();
    let got: Vec<&String> = m.config.volumes.as_ref().unwrap().keys().collect();
    assert_eq!(got, ["/data", "/logs", "/mine"]);
    img.volumes = Some(Default::default());
    let req: ContainerCreateRequest = serde_json::from_value(json!({"Image": "x"})).unwrap();
    assert_eq!(merge(&req, &img, &ctx).unwrap().config.volumes, None);
}

#[test]
fn dockers_defaults_show_in_host_config() {
    let m = merge_json(
        json!({"Image": "x", "HostConfig": {"Memory": 16777216}}),
        &host(),
    )
    .unwrap();
    let hc = m.host_config;
    assert_eq!(hc.resources.memory_swap, 2 * 16777216);
    assert_eq!(hc.shm_size, DEFAULT_SHM_SIZE);
    assert_eq!(hc.ipc_mode, "private");
    assert_eq!(hc.cgroupns_mode, "host");
    assert_eq!(hc.resources.oom_kill_disable, Some(false));
    assert_eq!(hc.network_mode, "default");
    assert_eq!(hc.log_config.r#type, "json-file");
    let mut no_swap = host();
    no_swap.swap = false;
    let m = merge_json(
        json!({"Image": "x", "HostConfig": {"Memory": 16777216}}),
        &no_swap,
    )
    .unwrap();
    assert_eq!(m.host_config.resources.memory_swap, -1);
    assert_eq!(limits(&m.host_config.resources).memory_swap, None);
    let mut v2 = host();
    v2.cgroup_v2 = true;
    let m = merge_json(json!({"Image": "x"}), &v2).unwrap();
    assert_eq!(m.host_config.cgroupns_mode, "private");
    let m = merge_json(
        json!({"Image": "x", "HostConfig": {"PidsLimit": 0, "MemorySwappiness": -1, "CpuShares": 1}}),
        &host(),
    )
    .unwrap();
    assert_eq!(m.host_config.resources.pids_limit, None);
    assert_eq!(m.host_config.resources.memory_swappiness, None);
    assert_eq!(m.host_config.resources.cpu_shares, 2);
}

#[test]
fn dockers_resource_words() {
    let hc = |v: serde_json::Value| err(json!({"Image": "x", "HostConfig": v}));
    assert_eq!(
        hc(json!({"Memory": 1024})),
        "Minimum memory limit allowed is 6MB"
    );
    assert_eq!(
        hc(json!({"Memory": -5})),
        "Minimum memory limit allowed is 6MB"
    );
    assert_eq!(
        hc(json!({"MemorySwap": 33554432})),
        "You should always set the Memory limit when using Memoryswap limit, see usage"
    );
    assert_eq!(
        hc(json!({"Memory": 33554432, "MemorySwap": 16777216})),
        "Minimum memoryswap limit should be larger than memory limit, see usage"
    );
    assert_eq!(
        hc(json!({"CpusetCpus": "7"})),
        "Requested CPUs are not available - requested 7, available: 0-1"
    );
    assert_eq!(
        hc(json!({"CpusetCpus": "x"})),
        "Invalid value x for cpuset cpus: invalid format: x"
    );
    assert_eq!(
        hc(json!({"NanoCpus": 3000000000i64})),
        "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
    );
    assert_eq!(
        hc(json!({"NanoCpus": 1000000000, "CpuQuota": 50000})),
        "Conflicting options: Nano CPUs and CPU Quota cannot both be set"
    );
    assert_eq!(
        hc(json!({"CpuPeriod": 10})),
        "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
    );
    assert_eq!(
        hc(json!({"BlkioWeight": 5})),
        "Range of blkio weight is from 10 to 1000"
    );
    assert_eq!(
        hc(json!({"OomScoreAdj": 2000})),
        "Invalid value 2000, range for oom score adj is [-1000, 1000]"
    );
    assert_eq!(
        hc(json!({"CapAdd": ["FOO"]})),
        "unknown capability: \"CAP_FOO\""
    );
    assert_eq!(
        hc(json!({"Sysctls": {"kernel.panic": "1"}})),
        "sysctl \"kernel.panic\" is not in a separate kernel namespace"
    );
    assert_eq!(
        hc(json!({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]})),
        "ulimit soft limit must be less than or equal to hard limit: 10 > 5"
    );
    assert_eq!(
        hc(json!({"ExtraHosts": ["db:not-an-ip"]})),
        "invalid IP address in add-host: \"not-an-ip\""
    );
    assert_eq!(
        hc(json!({"NetworkMode": "mynet"})),
        "network mynet not found"
    );
}

/// Values dockerd stores and hands to the kernel (which refuses them at start, or misreads
/// them) are refused at create.
#[test]
fn meaningless_numbers_are_refused() {
    let hc = |v: serde_json::Value| err(json!({"Image": "x", "HostConfig": v}));
    assert_eq!(
        hc(json!({"MemoryReservation": -5})),
        "Invalid value -5 for HostConfig.MemoryReservation: the smallest allowed is 0"
    );
    assert_eq!(
        hc(json!({"Memory": 33554432, "MemorySwap": -2})),
        "Invalid value -2 for HostConfig.MemorySwap: the smallest allowed is -1"
    );
    assert_eq!(
        hc(json!({"CpuQuota": -5})),
        "Invalid value -5 for HostConfig.CpuQuota: the smallest allowed is -1"
    );
    assert_eq!(hc(json!({"CpuShares": -5})), "shares: invalid argument");
    assert_eq!(
        hc(json!({"CpusetCpus": "0-4294967295"})),
        "Invalid value 0-4294967295 for cpuset cpus: value of out range, maximum is 8192"
    );
    assert_eq!(
        hc(json!({"PidsLimit": 9223372036854775807i64})),
        "Invalid value 9223372036854775807 for HostConfig.PidsLimit: the kernel allows at most 4194304"
    );
    assert!(hc(json!({"ConsoleSize": [70000, 80]})).contains("HostConfig.ConsoleSize"));
    assert!(
        hc(json!({"Ulimits": [{"Name": "nofile", "Soft": -5, "Hard": -5}]}))
            .starts_with("Invalid value for ulimit nofile")
    );
    assert!(
        hc(json!({"Dns": ["1.1.1.1"], "DnsSearch": ["a\nnameserver 6.6.6.6"]}))
            .starts_with("invalid HostConfig.DnsSearch entry")
    );
    assert!(
        hc(json!({"DnsOptions": ["ndots:1 rotate"]})).starts_with("invalid HostConfig.DnsOptions")
    );
    assert_eq!(
        hc(json!({"ExtraHosts": ["a\u{1}b:1.2.3.4"]})),
        "bad format for add-host: \"a\\u{1}b:1.2.3.4\""
    );
    // Unlimited forms and the largest memory stay accepted; swap's default cannot overflow.
    let m = merge_json(
        json!({"Image": "x", "HostConfig": {"Memory": i64::MAX, "CpuQuota": -1, "PidsLimit": -1,
            "Ulimits": [{"Name": "core", "Soft": -1, "Hard": -1}]}}),
        &host(),
    )
    .unwrap();
    assert_eq!(m.host_config.resources.memory_swap, i64::MAX);
}

#[test]
fn what_the_host_cannot_enforce_is_refused() {
    let mut h = host();
    h.blkio_weight = false;
    h.pids = false;
    let e = merge_json(
        json!({"Image": "x", "HostConfig": {"BlkioWeight": 300}}),
        &h,
    )
    .unwrap_err()
    .message();
    assert!(
        e.starts_with("Wharf cannot apply HostConfig.BlkioWeight on this host"),
        "{e}"
    );
    assert!(merge_json(json!({"Image": "x", "HostConfig": {"PidsLimit": 5}}), &h).is_err());
    // Unlimited is always possible.
    assert!(merge_json(json!({"Image": "x", "HostConfig": {"PidsLimit": -1}}), &h).is_ok());
}

#[test]
fn limits_follow_dockers_mapping() {
    let l = limits(&Resources {
        nano_cpus: 1_500_000_000,
        memory: 32 << 20,
        memory_swap: -1,
        pids_limit: Some(0),
        oom_kill_disable: Some(false),
        ..Default::default()
    });
    assert_eq!((l.cpu_period, l.cpu_quota), (Some(100_000), Some(150_000)));
    assert_eq!((l.memory, l.memory_swap), (Some(32 << 20), None));
    assert_eq!(l.pids_limit, Some(-1));
    assert_eq!(l.oom_kill_disable, None);
    assert_eq!(limits(&Resources::default()), Limits::default());
}

fn start_context() -> StartContext {
    StartContext {
        rootfs: "/rootfs".into(),
        etc_dir: "/exec/c".into(),
        user: ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: "/root".into(),
        },
        group_add: vec![29],
        cgroups_path: "/wharf/c".into(),
        pid: NsMode::Private,
        ipc: NsMode::Private,
        shm: Shm::Private(DEFAULT_SHM_SIZE as u64),
        devices: vec![],
        rlimit_ceiling: RlimitCeiling::default(),
        default_net_sysctls: [("net.ipv4.ping_group_range".to_string(), "0 1".to_string())].into(),
        mounts: Default::default(),
        hook_binary: "/wharf-shim".into(),
    }
}

pub(crate) fn spec_of(m: Merged) -> ContainerSpec {
    ContainerSpec {
        id: "c".into(),
        created: String::new(),
        path: m.path,
        args: m.args,
        image_id: "sha256:x".into(),
        config: m.config,
        host_config: m.host_config,
        networking_config: m.networking_config,
        snapshot_key: "container-c".into(),
        mounts: Vec::new(),
        mount_extras: Default::default(),
    }
}

#[test]
fn spec_input_carries_the_config() {
    let m = merge_json(
        json!({"Image": "x", "Domainname": "example.org", "HostConfig": {
            "Tmpfs": {"/run": "size=1m"},
            "Mounts": [{"Type": "tmpfs", "Target": "/scratch", "ReadOnly": true,
                        "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 448}}],
            "SecurityOpt": ["no-new-privileges"],
            "Sysctls": {"net.core.somaxconn": "1024"}
        }}),
        &host(),
    )
    .unwrap();
    let spec = spec_of(m);
    let i = spec_input(&spec, &spec.host_config.resources, start_context()).unwrap();
    assert_eq!(i.additional_gids, vec![0, 29]);
    assert!(i.no_new_privileges);
    assert_eq!(i.domainname, "example.org");
    assert_eq!(i.namespaces.net, NsMode::Private);
    assert_eq!(i.sysctls.len(), 2);
    let scratch = i
        .tmpfs
        .iter()
        .find(|t| t.destination == "/scratch")
        .unwrap();
    assert_eq!(scratch.data, "ro,size=1048576,mode=700");
    assert!(i.env.contains(&"HOSTNAME=0123456789ab".to_string()));
    // The default net sysctls are for a network namespace of the container's own only.
    let m = merge_json(
        json!({"Image": "x", "HostConfig": {"NetworkMode": "host"}}),
        &host(),
    )
    .unwrap();
    let spec = spec_of(m);
    let i = spec_input(&spec, &spec.host_config.resources, start_context()).unwrap();
    assert_eq!(i.namespaces.net, NsMode::Host);
    assert!(i.sysctls.is_empty());
    assert!(i.env.contains(&"HOSTNAME=thehost".to_string()));
}
