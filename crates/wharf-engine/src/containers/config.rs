//! Docker config → what runs, in one place and pure:
//! - [`merge`]: the create-time merge of the request with the image's config, dockerd's
//!   validations (against what this host can enforce: what it cannot is refused, where dockerd
//!   would drop it with a warning) and the defaults dockerd fills in, so that inspect shows
//!   exactly what runs;
//! - [`limits`]: a container's cgroup limits from its `Resources`;
//! - [`spec_input`]: the runtime's input at each start, from the stored config and what the
//!   start found on disk (user, groups, devices, namespaces to join).

use super::model::ContainerSpec;
use super::rootfs::ResolvedUser;
use crate::error::EngineError;
use crate::honour::create::{parse_security_opt, SecurityOpt};
use crate::host::{parse_cpuset, parse_cpuset_max, HostFacts};
use crate::ids;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use wharf_api::container::{ContainerConfig, ContainerCreateRequest, HostConfig, Resources};
use wharf_runtime::spec::{
    check_sysctl, parse_device_cgroup_rule, validate_capabilities, validate_ulimits, BindMount,
    Device, Limits, Namespaces, NsMode, RlimitCeiling, Shm, SpecInput, TmpfsMount, Ulimit,
};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// dockerd's smallest memory limit and reservation.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// dockerd's default `--shm-size`.
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;
const MIN_CPU_SHARES: i64 = 2;
/// The kernel's `PID_MAX_LIMIT`, the largest `pids.max`.
const MAX_PIDS: i64 = 4 * 1024 * 1024;
const MAX_CPU_SHARES: i64 = 262_144;
/// The CFS period dockerd uses for `--cpus`.
const NANO_CPUS_PERIOD: u64 = 100_000;

/// A container's config after the merge.
#[derive(Debug, Clone)]
pub struct Merged {
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub networking_config: serde_json::Value,
}

/// What the merge needs to know about the host besides [`HostFacts`].
pub struct MergeContext<'a> {
    pub id: &'a str,
    pub host: &'a HostFacts,
    pub host_hostname: &'a str,
}

fn invalid(m: impl Into<String>) -> EngineError {
    EngineError::invalid(m)
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map(|(k, _)| k).unwrap_or(e)
}

/// dockerd's merge of the user's env with the image's: the user's entries first, then the
/// image's that the user did not name (`FOO` without `=` names FOO too: it unsets it).
/// Linear in both (a set of the user's names).
pub fn merge_env(image: &[String], user: &[String]) -> Vec<String> {
    if user.is_empty() {
        return image.to_vec();
    }
    let named: HashSet<&str> = user.iter().map(|u| env_key(u)).collect();
    let mut out = user.to_vec();
    out.extend(
        image
            .iter()
            .filter(|e| !named.contains(env_key(e)))
            .cloned(),
    );
    out
}

/// The process's environment (dockerd's `CreateDaemonEnvironment` + `ReplaceOrAppendEnvValues`):
/// PATH, HOSTNAME (and TERM with a TTY) as defaults, replaced in place or extended by the
/// config's env; an entry without `=` removes the variable; HOME last if still unset.
/// Linear: a map from each name to its slot (a search per entry made 100k entries take
/// minutes at every start).
pub fn process_env(config_env: &[String], hostname: &str, home: &str, tty: bool) -> Vec<String> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    let mut slot: HashMap<&str, usize> = HashMap::from([("PATH", 0), ("HOSTNAME", 1)]);
    if tty {
        slot.insert("TERM", env.len());
        env.push("TERM=xterm".to_string());
    }
    let mut unset = HashSet::new();
    for e in config_env {
        match e.split_once('=') {
            None => {
                unset.insert(e.as_str());
            }
            Some((k, _)) => match slot.get(k) {
                Some(&i) => env[i] = e.clone(),
                None => {
                    slot.insert(k, env.len());
                    env.push(e.clone());
                }
            },
        }
    }
    if !unset.is_empty() {
        env.retain(|e| !unset.contains(env_key(e)));
    }
    if !slot.contains_key("HOME") && !unset.contains("HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

/// Merges a create request with the image's config. Pure.
pub fn merge(
    req: &ContainerCreateRequest,
    image: &ContainerConfig,
    ctx: &MergeContext<'_>,
) -> Result<Merged, EngineError> {
    let mut hc = req.host_config.clone().unwrap_or_default();
    match hc.network_mode.as_str() {
        "" => hc.network_mode = "default".into(),
        "default" | "bridge" | "none" | "host" => {}
        other => return Err(EngineError::not_found(format!("network {other} not found"))),
    }
    // Clients (docker-py's `run`) read the driver back to decide how to fetch output.
    if hc.log_config.r#type.is_empty() {
        hc.log_config.r#type = super::logconfig::DEFAULT_DRIVER.into();
    }
    if hc.log_config.config.is_none() {
        hc.log_config.config = Some(BTreeMap::new());
    }
    super::logconfig::of_host_config(&hc)?;
    super::restart::validate(&hc)?;
    super::health::validate(req.config.healthcheck.as_ref())?;
    if hc.uts_mode == "host" && !req.config.hostname.is_empty() {
        return Err(invalid("conflicting options: hostname and the UTS mode"));
    }
    validate_endpoints(&hc.network_mode, req.networking_config.as_ref())?;
    validate_resources(&mut hc.resources, ctx.host, false)?;
    validate_host_config(&hc, ctx.host)?;
    adapt_defaults(&mut hc, ctx.host);

    let mut config = req.config.clone();
    let user_entrypoint = config.entrypoint.clone().filter(|e| !e.is_empty());
    let user_cmd = config.cmd.clone().filter(|c| !c.is_empty());
    let (entrypoint, cmd) = match (user_entrypoint, user_cmd) {
        (Some(ep), cmd) => (ep, cmd.unwrap_or_default()),
        (None, Some(cmd)) => (image.entrypoint.clone().unwrap_or_default(), cmd),
        (None, None) => (
            image.entrypoint.clone().unwrap_or_default(),
            image.cmd.clone().unwrap_or_default(),
        ),
    };
    let argv: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
    let Some((path, args)) = argv.split_first() else {
        return Err(invalid("No command specified"));
    };
    config.entrypoint = (!entrypoint.is_empty()).then(|| entrypoint.clone());
    config.cmd = Some(cmd.clone());
    let mut env = merge_env(
        image.env.as_deref().unwrap_or(&[]),
        config.env.as_deref().unwrap_or(&[]),
    );
    if !env.iter().any(|e| env_key(e) == "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    config.env = Some(env);
    if config.working_dir.is_empty() {
        config.working_dir = image.working_dir.clone();
    }
    if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
        return Err(invalid(format!(
            "the working directory '{}' is invalid, it needs to be an absolute path",
            config.working_dir
        )));
    }
    if config.user.is_empty() {
        config.user = image.user.clone();
    }
    if config.hostname.is_empty() {
        // Docker gives a container sharing the host's network or UTS namespace the host's name.
        config.hostname = if hc.network_mode == "host" || hc.uts_mode == "host" {
            ctx.host_hostname.to_string()
        } else {
            ids::short(ctx.id).to_string()
        };
    }
    if config.stop_signal.is_none() {
        config.stop_signal = image.stop_signal.clone();
    }
    config.healthcheck =
        super::health::merge(config.healthcheck.take(), image.healthcheck.as_ref());
    let mut labels = image.labels.clone().unwrap_or_default();
    labels.extend(config.labels.clone().unwrap_or_default());
    config.labels = Some(labels);
    // dockerd's merge: the image's volumes join the user's (each becomes an anonymous
    // volume at create unless a mount covers it: `mounts::resolve`).
    if let Some(image_volumes) = image.volumes.as_ref().filter(|v| !v.is_empty()) {
        let mut volumes = config.volumes.take().unwrap_or_default();
        for (k, v) in image_volumes {
            volumes.entry(k.clone()).or_insert_with(|| v.clone());
        }
        config.volumes = Some(volumes);
    }

    Ok(Merged {
        path: path.clone(),
        args: args.to_vec(),
        config,
        host_config: hc,
        networking_config: req
            .networking_config
            .as_ref()
            .and_then(|n| serde_json::to_value(n).ok())
            .unwrap_or(serde_json::Value::Null),
    })
}

/// `EndpointsConfig` may only name the network NetworkMode names (the table has already
/// refused any per-endpoint setting).
fn validate_endpoints(
    mode: &str,
    nc: Option<&wharf_api::container::NetworkingConfig>,
) -> Result<(), EngineError> {
    let Some(eps) = nc.and_then(|n| n.endpoints_config.as_ref()) else {
        return Ok(());
    };
    let default_like = |n: &str| matches!(n, "default" | "bridge");
    for net in eps.keys() {
        let same = net == mode || (default_like(net) && default_like(mode));
        if !same {
            return Err(invalid(format!(
                "Wharf does not support connecting to network \"{net}\" besides NetworkMode \"{mode}\" yet (issue 16: networking)"
            )));
        }
    }
    Ok(())
}

/// `Wharf cannot apply X: <why>` for a setting this host cannot enforce.
fn unenforceable(field: &str, why: &str) -> EngineError {
    invalid(format!(
        "Wharf cannot apply HostConfig.{field} on this host: {why}"
    ))
}

/// dockerd's `verifyPlatformContainerResources`, with a refusal where dockerd would drop the
/// setting with a warning. `update` relaxes what an update may leave out.
pub fn validate_resources(
    r: &mut Resources,
    host: &HostFacts,
    update: bool,
) -> Result<(), EngineError> {
    if r.memory_swappiness == Some(-1) {
        r.memory_swappiness = None;
    }
    if r.memory != 0 && r.memory < MIN_MEMORY {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    if r.memory > 0 && !host.memory {
        return Err(unenforceable(
            "Memory",
            "there is no memory cgroup controller",
        ));
    }
    if r.memory_swap > 0 && !host.swap {
        return Err(unenforceable(
            "MemorySwap",
            "the kernel does not account swap (swapaccount=1)",
        ));
    }
    if r.memory > 0 && r.memory_swap > 0 && r.memory_swap < r.memory {
        return Err(invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if r.memory == 0 && r.memory_swap > 0 && !update {
        return Err(invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if let Some(s) = r.memory_swappiness {
        if !host.swappiness {
            return Err(unenforceable(
                "MemorySwappiness",
                "memory swappiness needs a cgroup v1 memory controller",
            ));
        }
        if !(0..=100).contains(&s) {
            return Err(invalid(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            )));
        }
    }
    // dockerd stores these negative values and passes them on to the kernel; none means
    // anything (-1 is "unlimited" where a limit has that form).
    for (field, v, floor) in [
        ("MemoryReservation", r.memory_reservation, 0),
        ("MemorySwap", r.memory_swap, -1),
        ("CpuQuota", r.cpu_quota, -1),
    ] {
        if v < floor {
            return Err(invalid(format!(
                "Invalid value {v} for HostConfig.{field}: the smallest allowed is {floor}"
            )));
        }
    }
    if r.memory_reservation > 0 && !host.memory_reservation {
        return Err(unenforceable(
            "MemoryReservation",
            "there is no memory cgroup controller",
        ));
    }
    if r.memory_reservation > 0 && r.memory_reservation < MIN_MEMORY {
        return Err(invalid("Minimum memory reservation allowed is 6MB"));
    }
    if r.memory > 0 && r.memory_reservation > 0 && r.memory < r.memory_reservation {
        return Err(invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    if r.oom_kill_disable == Some(true) && !host.oom_kill_disable {
        return Err(unenforceable(
            "OomKillDisable",
            "disabling the OOM killer needs a cgroup v1 memory controller",
        ));
    }
    // The pids controller refuses more than PID_MAX_LIMIT (2^22) with EINVAL at start.
    if let Some(p) = r.pids_limit.filter(|p| *p > MAX_PIDS) {
        return Err(invalid(format!(
            "Invalid value {p} for HostConfig.PidsLimit: the kernel allows at most {MAX_PIDS}"
        )));
    }
    if r.pids_limit.is_some_and(|p| p > 0) && !host.pids {
        return Err(unenforceable(
            "PidsLimit",
            "there is no pids cgroup controller",
        ));
    }
    if r.nano_cpus > 0 && r.cpu_period > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if r.nano_cpus > 0 && r.cpu_quota > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if r.nano_cpus > 0 && !host.cpu_cfs {
        return Err(invalid("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted"));
    }
    let ncpu = host.ncpu as i64;
    if r.nano_cpus < 0 || r.nano_cpus > ncpu * 1_000_000_000 {
        return Err(invalid(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if r.cpu_shares < 0 {
        return Err(invalid("shares: invalid argument"));
    }
    if r.cpu_shares > 0 && !host.cpu_shares {
        return Err(unenforceable(
            "CpuShares",
            "there is no cpu cgroup controller",
        ));
    }
    if (r.cpu_period != 0 || r.cpu_quota != 0) && !host.cpu_cfs {
        return Err(unenforceable(
            if r.cpu_period != 0 {
                "CpuPeriod"
            } else {
                "CpuQuota"
            },
            "the kernel has no CFS bandwidth control",
        ));
    }
    if r.cpu_period != 0 && !(1000..=1_000_000).contains(&r.cpu_period) {
        return Err(invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if r.cpu_quota > 0 && r.cpu_quota < 1000 {
        return Err(invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    if (!r.cpuset_cpus.is_empty() || !r.cpuset_mems.is_empty()) && !host.cpuset {
        return Err(unenforceable(
            "CpusetCpus",
            "there is no cpuset cgroup controller",
        ));
    }
    check_cpuset(&r.cpuset_cpus, &host.cpus, "cpus", "CPUs")?;
    check_cpuset(&r.cpuset_mems, &host.mems, "mems", "memory nodes")?;
    if r.blkio_weight > 0 && !host.blkio_weight {
        return Err(unenforceable(
            "BlkioWeight",
            "the block I/O scheduler has no weights (blkio.weight / io.weight)",
        ));
    }
    if r.blkio_weight > 0 && !(10..=1000).contains(&r.blkio_weight) {
        return Err(invalid("Range of blkio weight is from 10 to 1000"));
    }
    if r.io_maximum_bandwidth != 0 || r.io_maximum_iops != 0 {
        return Err(invalid(
            "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps",
        ));
    }
    Ok(())
}

fn check_cpuset(
    requested: &str,
    available: &str,
    what: &str,
    words: &str,
) -> Result<(), EngineError> {
    if requested.is_empty() {
        return Ok(());
    }
    let have = parse_cpuset(available).unwrap_or_default();
    // dockerd's bound: Linux's usual 8192 CPUs, or more when the host has them.
    let max = have.iter().copied().max().unwrap_or(0).max(8192);
    let want = parse_cpuset_max(requested, Some(max))
        .map_err(|e| invalid(format!("Invalid value {requested} for cpuset {what}: {e}")))?;
    if want.iter().any(|c| !have.contains(c)) {
        return Err(invalid(format!(
            "Requested {words} are not available - requested {requested}, available: {available}"
        )));
    }
    Ok(())
}

fn ulimits(hc: &HostConfig) -> Vec<Ulimit> {
    hc.resources
        .ulimits
        .iter()
        .flatten()
        .map(|u| Ulimit {
            name: u.name.clone(),
            soft: u.soft,
            hard: u.hard,
        })
        .collect()
}

fn ns_mode(mode: &str) -> NsMode {
    match mode {
        "host" => NsMode::Host,
        _ => NsMode::Private,
    }
}

/// The rest of dockerd's create-time checks, in its words.
fn validate_host_config(hc: &HostConfig, host: &HostFacts) -> Result<(), EngineError> {
    if hc.oom_score_adj < -1000 || hc.oom_score_adj > 1000 {
        return Err(invalid(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            hc.oom_score_adj
        )));
    }
    if hc.shm_size < 0 {
        return Err(invalid("SHM size can not be less than 0"));
    }
    if hc.console_size.iter().any(|v| *v > u64::from(u16::MAX)) {
        return Err(invalid(format!(
            "Invalid value {:?} for HostConfig.ConsoleSize: a terminal has at most 65535 rows and columns",
            hc.console_size
        )));
    }
    for u in hc.resources.ulimits.iter().flatten() {
        if u.soft < -1 || u.hard < -1 {
            return Err(invalid(format!(
                "Invalid value for ulimit {}: soft and hard limits are -1 (unlimited) or more",
                u.name
            )));
        }
    }
    for m in hc.mounts.iter().flatten() {
        if m.tmpfs_options.as_ref().is_some_and(|t| t.size_bytes < 0) {
            return Err(invalid(format!(
                "invalid mount config for {}: tmpfs size can not be less than 0",
                m.target
            )));
        }
    }
    let caps: Vec<String> = hc
        .cap_add
        .iter()
        .flatten()
        .chain(hc.cap_drop.iter().flatten())
        .cloned()
        .collect();
    validate_capabilities(&caps).map_err(|e| invalid(e.to_string()))?;
    validate_ulimits(&ulimits(hc), &host.rlimit_ceiling).map_err(|e| invalid(e.to_string()))?;
    for dest in hc.tmpfs.iter().flatten().map(|(d, _)| d) {
        check_mount_destination(dest)?;
    }
    // Volume and bind mounts are checked in dockerd's words by `mounts::parse`.
    for m in hc.mounts.iter().flatten().filter(|m| m.r#type == "tmpfs") {
        check_mount_destination(&m.target)?;
    }
    for (d, opts) in hc.tmpfs.iter().flatten() {
        wharf_runtime::spec::tmpfs_options(opts).map_err(|e| invalid(format!("{d}: {e}")))?;
    }
    let net = ns_mode(if hc.network_mode == "host" {
        "host"
    } else {
        ""
    });
    for name in hc.sysctls.iter().flatten().map(|(k, _)| k) {
        check_sysctl(name, &ns_mode(&hc.ipc_mode), &net, &ns_mode(&hc.uts_mode))
            .map_err(|e| invalid(e.to_string()))?;
    }
    for r in hc.resources.device_cgroup_rules.iter().flatten() {
        parse_device_cgroup_rule(r).map_err(|e| invalid(e.to_string()))?;
    }
    for d in hc.resources.devices.iter().flatten() {
        if !d.cgroup_permissions.is_empty()
            && !wharf_runtime::spec::valid_device_mode(&d.cgroup_permissions)
        {
            return Err(invalid(format!(
                "invalid device mode: {}",
                d.cgroup_permissions
            )));
        }
        if !d.path_in_container.is_empty() && !d.path_in_container.starts_with('/') {
            return Err(invalid(format!(
                "{} is not an absolute path",
                d.path_in_container
            )));
        }
    }
    for h in hc.extra_hosts.iter().flatten() {
        parse_extra_host(h, None)?;
    }
    for d in hc.dns.iter().flatten() {
        if d.parse::<IpAddr>().is_err() {
            return Err(invalid(format!("{d} is not an ip address")));
        }
    }
    let none = Vec::new();
    super::rootfs::check_dns_words(super::rootfs::DnsOverrides {
        servers: hc.dns.as_ref().unwrap_or(&none),
        search: hc.dns_search.as_ref().unwrap_or(&none),
        options: hc.dns_options.as_ref().unwrap_or(&none),
    })
    .map_err(invalid)?;
    if hc.resources.cgroup_parent.split('/').any(|c| c == "..") {
        return Err(invalid(format!(
            "invalid cgroup parent {:?}: it must not contain \"..\"",
            hc.resources.cgroup_parent
        )));
    }
    if hc.cgroupns_mode == "private" && !host.cgroup_namespaces {
        return Err(unenforceable(
            "CgroupnsMode",
            "the kernel has no cgroup namespaces",
        ));
    }
    Ok(())
}

fn check_mount_destination(dest: &str) -> Result<(), EngineError> {
    if !dest.starts_with('/') {
        return Err(invalid(format!(
            "invalid mount config: mount path must be absolute: {dest}"
        )));
    }
    if dest.trim_end_matches('/').is_empty() {
        return Err(invalid("invalid mount config: destination can't be '/'"));
    }
    Ok(())
}

/// `--add-host name:ip` (or `name=ip`); `host-gateway` becomes `gateway` when given.
pub fn parse_extra_host(
    entry: &str,
    gateway: Option<IpAddr>,
) -> Result<(String, String), EngineError> {
    let (name, addr) = entry
        .split_once('=')
        .or_else(|| entry.split_once(':'))
        .ok_or_else(|| invalid(format!("bad format for add-host: {entry:?}")))?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(invalid(format!("bad format for add-host: {entry:?}")));
    }
    if addr == "host-gateway" {
        return Ok((
            name.to_string(),
            gateway.map(|g| g.to_string()).unwrap_or_default(),
        ));
    }
    addr.parse::<IpAddr>()
        .map_err(|_| invalid(format!("invalid IP address in add-host: {addr:?}")))?;
    Ok((name.to_string(), addr.to_string()))
}

/// What dockerd writes into HostConfig at create so inspect shows what runs.
fn adapt_defaults(hc: &mut HostConfig, host: &HostFacts) {
    let r = &mut hc.resources;
    if r.cpu_shares > 0 {
        r.cpu_shares = r.cpu_shares.clamp(MIN_CPU_SHARES, MAX_CPU_SHARES);
    }
    if r.memory > 0 && r.memory_swap == 0 {
        // By default, MemorySwap is set to twice the size of Memory. Where the kernel does
        // not account swap, dockerd shows -1 (unlimited swap), which is what runs.
        r.memory_swap = if host.swap {
            r.memory.saturating_mul(2)
        } else {
            -1
        };
    }
    if r.pids_limit.is_some_and(|p| p <= 0) {
        r.pids_limit = None;
    }
    if r.oom_kill_disable.is_none() {
        r.oom_kill_disable = Some(false);
    }
    if hc.shm_size == 0 {
        hc.shm_size = DEFAULT_SHM_SIZE;
    }
    if hc.ipc_mode.is_empty() {
        hc.ipc_mode = "private".into();
    }
    if hc.cgroupns_mode.is_empty() {
        hc.cgroupns_mode = if host.cgroup_v2 && !hc.privileged {
            "private".into()
        } else {
            "host".into()
        };
    }
    if hc.pid_mode.is_empty() {
        // Docker stores "" for a private pid namespace; nothing to fill.
    }
}

/// A container's cgroup limits (dockerd's `getMemoryResources`/`getCPUResources`/...).
pub fn limits(r: &Resources) -> Limits {
    let pos = |v: i64| (v > 0).then_some(v);
    let (cpu_period, cpu_quota) = if r.nano_cpus > 0 {
        (
            Some(NANO_CPUS_PERIOD),
            Some(r.nano_cpus * NANO_CPUS_PERIOD as i64 / 1_000_000_000),
        )
    } else {
        (
            u64::try_from(r.cpu_period).ok().filter(|p| *p > 0),
            (r.cpu_quota != 0).then_some(r.cpu_quota),
        )
    };
    Limits {
        memory: pos(r.memory),
        memory_reservation: pos(r.memory_reservation),
        memory_swap: pos(r.memory_swap),
        memory_swappiness: r
            .memory_swappiness
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s <= 100),
        oom_kill_disable: r.oom_kill_disable.filter(|d| *d),
        cpu_shares: u64::try_from(r.cpu_shares).ok().filter(|s| *s > 0),
        cpu_period,
        cpu_quota,
        cpuset_cpus: (!r.cpuset_cpus.is_empty()).then(|| r.cpuset_cpus.clone()),
        cpuset_mems: (!r.cpuset_mems.is_empty()).then(|| r.cpuset_mems.clone()),
        pids_limit: r.pids_limit.map(|p| if p > 0 { p } else { -1 }),
        blkio_weight: (r.blkio_weight > 0).then_some(r.blkio_weight),
    }
}

/// The container's cgroup, relative to each hierarchy's root: under its own
/// `--cgroup-parent` when it has one, else under the daemon's.
pub fn cgroups_path(daemon_parent: &str, spec: &ContainerSpec) -> String {
    let own = spec.host_config.resources.cgroup_parent.trim_matches('/');
    let parent = if own.is_empty() {
        daemon_parent.trim_matches('/')
    } else {
        own
    };
    format!("/{parent}/{}", spec.id)
}

/// What a start found out before building the spec.
pub struct StartContext {
    pub rootfs: PathBuf,
    /// Where hostname, hosts and resolv.conf were written.
    pub etc_dir: PathBuf,
    pub user: ResolvedUser,
    /// `GroupAdd`, resolved in the container's /etc/group.
    pub group_add: Vec<u32>,
    pub cgroups_path: String,
    /// `container:<id>` modes resolved to the donor's namespaces.
    pub pid: NsMode,
    pub ipc: NsMode,
    pub shm: Shm,
    pub devices: Vec<Device>,
    pub rlimit_ceiling: RlimitCeiling,
    /// dockerd's defaults for a private network namespace, when the kernel has them.
    pub default_net_sysctls: BTreeMap<String, String>,
    /// The container's volume and bind mounts (`mounts::start`).
    pub mounts: crate::mounts::start::Prepared,
    /// What runs the container's propagation hook (`wharf-shim`).
    pub hook_binary: PathBuf,
}

/// The runtime's input for one start. Pure.
pub fn spec_input(
    spec: &ContainerSpec,
    resources: &Resources,
    s: StartContext,
) -> Result<SpecInput, EngineError> {
    let cfg = &spec.config;
    let hc = &spec.host_config;
    let env = process_env(
        cfg.env.as_deref().unwrap_or(&[]),
        &cfg.hostname,
        &s.user.home,
        cfg.tty,
    );
    let mut args = vec![spec.path.clone()];
    args.extend(spec.args.iter().cloned());
    // dockerd always lists the primary group among the supplementary ones.
    let mut additional_gids = vec![s.user.gid];
    for g in s.user.additional_gids.iter().copied().chain(s.group_add) {
        if !additional_gids.contains(&g) {
            additional_gids.push(g);
        }
    }
    let net = match hc.network_mode.as_str() {
        "host" => NsMode::Host,
        _ => NsMode::Private,
    };
    let mut sysctls = BTreeMap::new();
    if net == NsMode::Private {
        sysctls.extend(s.default_net_sysctls);
    }
    sysctls.extend(hc.sysctls.clone().unwrap_or_default());
    let mut no_new_privileges = false;
    for o in hc.security_opt.iter().flatten() {
        if let Ok(SecurityOpt::NoNewPrivileges(b)) = parse_security_opt(o) {
            no_new_privileges = b;
        }
    }
    let mut tmpfs: Vec<TmpfsMount> = hc
        .tmpfs
        .iter()
        .flatten()
        .map(|(d, data)| TmpfsMount {
            destination: d.clone(),
            data: data.clone(),
        })
        .collect();
    for m in hc.mounts.iter().flatten().filter(|m| m.r#type == "tmpfs") {
        let mut data = Vec::new();
        if m.read_only {
            data.push("ro".to_string());
        }
        if let Some(o) = &m.tmpfs_options {
            if o.size_bytes > 0 {
                data.push(format!("size={}", o.size_bytes));
            }
            if o.mode != 0 {
                data.push(format!("mode={:o}", o.mode));
            }
        }
        tmpfs.push(TmpfsMount {
            destination: m.target.clone(),
            data: data.join(","),
        });
    }
    let (masked_paths, readonly_paths) = (hc.masked_paths.clone(), hc.readonly_paths.clone());
    Ok(SpecInput {
        rootfs: s.rootfs,
        args,
        env,
        cwd: if cfg.working_dir.is_empty() {
            "/".into()
        } else {
            cfg.working_dir.clone()
        },
        uid: s.user.uid,
        gid: s.user.gid,
        additional_gids,
        hostname: cfg.hostname.clone(),
        domainname: cfg.domainname.clone(),
        namespaces: Namespaces {
            net,
            pid: s.pid,
            ipc: s.ipc,
            uts: ns_mode(&hc.uts_mode),
            cgroup: if hc.cgroupns_mode == "private" {
                NsMode::Private
            } else {
                NsMode::Host
            },
        },
        bind_mounts: ["hostname", "hosts", "resolv.conf"]
            .iter()
            .map(|f| BindMount {
                source: s.etc_dir.join(f),
                destination: format!("/etc/{f}"),
                propagation: "rprivate".into(),
                ..Default::default()
            })
            // A user's mount there replaces the file (dockerd's `TrySetNetworkMount`).
            .filter(|b| {
                !s.mounts
                    .binds
                    .iter()
                    .any(|u| u.destination == b.destination)
            })
            .chain(s.mounts.binds.iter().cloned())
            .collect(),
        tmpfs,
        rootfs_propagation: s.mounts.rootfs_propagation.clone(),
        propagation_hook: (!s.mounts.propagation_fixes.is_empty()).then(|| {
            wharf_runtime::spec::PropagationHook {
                binary: s.hook_binary.clone(),
                mounts: s.mounts.propagation_fixes.clone(),
            }
        }),
        shm: s.shm,
        cgroups_path: s.cgroups_path,
        readonly_rootfs: hc.readonly_rootfs,
        privileged: hc.privileged,
        terminal: cfg.tty,
        cap_add: hc.cap_add.clone().unwrap_or_default(),
        cap_drop: hc.cap_drop.clone().unwrap_or_default(),
        no_new_privileges,
        ulimits: ulimits(hc),
        rlimit_ceiling: s.rlimit_ceiling,
        limits: limits(resources),
        devices: s.devices,
        device_cgroup_rules: hc.resources.device_cgroup_rules.clone().unwrap_or_default(),
        sysctls,
        oom_score_adj: i32::try_from(hc.oom_score_adj).ok().filter(|v| *v != 0),
        masked_paths,
        readonly_paths,
        annotations: hc.annotations.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
pub(crate) mod tests;
