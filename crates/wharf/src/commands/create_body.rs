//! The `POST /containers/create` request the docker CLI 28 builds from `run`/`create` flags:
//! every field docker sends (zero values included, Go's `omitempty` fields only when set), so
//! the daemon sees the same request from `wharf` as from `docker` and decides alone what it
//! honours or refuses.

use super::Exit;
use crate::cli::ContainerOpts;
use crate::opts::health::{healthcheck, HealthFlags};
use crate::opts::mounts::{parse_mount, parse_volume, VolumeSpec};
use crate::opts::network::{networking, platform_query, NetworkFlags};
use crate::opts::ports::Ports;
use crate::opts::values::{self as v, go_quoted};
pub use crate::opts::BadFlag;
use anyhow::Result;
use serde_json::{json, Map, Value};

/// What `run`/`create` send and the client-side settings around the call.
#[derive(Debug)]
pub struct CreateRequest {
    pub image: String,
    /// `POST /containers/create?name=..&platform=..` query (already encoded).
    pub query: Vec<String>,
    pub body: Value,
}

/// The flags of one `run`/`create` as docker reads them.
pub struct Inputs<'a> {
    pub opts: &'a ContainerOpts,
    /// `run -d`: nothing is attached.
    pub detach: bool,
    /// The terminal's `(height, width)`, sent as `HostConfig.ConsoleSize`.
    pub console: (u16, u16),
}

fn opt_i64(flag: &'static str, val: &Option<String>) -> Result<i64, BadFlag> {
    match val {
        Some(s) => v::parse_i64(s).map_err(|r| BadFlag::value(flag, s, r)),
        None => Ok(0),
    }
}

fn opt_size(flag: &'static str, val: &Option<String>) -> Result<i64, BadFlag> {
    match val {
        Some(s) => v::parse_size(s, true).map_err(|r| BadFlag::value(flag, s, r)),
        None => Ok(0),
    }
}

fn each<T>(
    flag: &'static str,
    vals: &[String],
    f: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, BadFlag> {
    vals.iter()
        .map(|s| f(s).map_err(|r| BadFlag::value(flag, s, r)))
        .collect()
}

/// `Resources` fields shared by create and update, in docker's spelling.
pub fn resources(r: &crate::cli::ResourceFlags) -> Result<Map<String, Value>, BadFlag> {
    let mut m = Map::new();
    let blkio = match &r.blkio_weight {
        Some(s) => {
            v::parse_uint(s, u16::MAX as u64).map_err(|e| BadFlag::value("--blkio-weight", s, e))?
        }
        None => 0,
    };
    let swap = match &r.memory_swap {
        Some(s) => v::parse_swap(s).map_err(|e| BadFlag::value("--memory-swap", s, e))?,
        None => 0,
    };
    let cpus = match &r.cpus {
        Some(s) => v::parse_cpus(s).map_err(|e| BadFlag::value("--cpus", s, e))?,
        None => 0,
    };
    m.insert("BlkioWeight".into(), json!(blkio));
    m.insert(
        "CpuShares".into(),
        json!(opt_i64("-c, --cpu-shares", &r.cpu_shares)?),
    );
    m.insert("Memory".into(), json!(opt_size("-m, --memory", &r.memory)?));
    m.insert(
        "MemoryReservation".into(),
        json!(opt_size("--memory-reservation", &r.memory_reservation)?),
    );
    m.insert("MemorySwap".into(), json!(swap));
    m.insert("NanoCpus".into(), json!(cpus));
    m.insert(
        "CpuPeriod".into(),
        json!(opt_i64("--cpu-period", &r.cpu_period)?),
    );
    m.insert(
        "CpuQuota".into(),
        json!(opt_i64("--cpu-quota", &r.cpu_quota)?),
    );
    m.insert(
        "CpuRealtimePeriod".into(),
        json!(opt_i64("--cpu-rt-period", &r.cpu_rt_period)?),
    );
    m.insert(
        "CpuRealtimeRuntime".into(),
        json!(opt_i64("--cpu-rt-runtime", &r.cpu_rt_runtime)?),
    );
    m.insert(
        "CpusetCpus".into(),
        json!(r.cpuset_cpus.clone().unwrap_or_default()),
    );
    m.insert(
        "CpusetMems".into(),
        json!(r.cpuset_mems.clone().unwrap_or_default()),
    );
    m.insert(
        "PidsLimit".into(),
        json!(opt_i64("--pids-limit", &r.pids_limit)?),
    );
    Ok(m)
}

/// `--restart` (docker's `ParseRestartPolicy`).
pub fn restart_policy(policy: &str) -> Result<Value, String> {
    let (name, count) = match policy.split_once(':') {
        Some(("", _)) => {
            return Err(
                "invalid restart policy format: no policy provided before colon".to_string(),
            )
        }
        Some((name, count)) => (name, count),
        None => (policy, ""),
    };
    let count: i64 = if count.is_empty() {
        0
    } else {
        count.parse().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?
    };
    Ok(json!({"Name": name, "MaximumRetryCount": count}))
}

/// `-e NAME` takes NAME's value from our environment, as docker does.
pub fn expand_env(e: &str) -> String {
    if e.contains('=') {
        return e.to_string();
    }
    match std::env::var(e) {
        Ok(val) => format!("{e}={val}"),
        Err(_) => e.to_string(),
    }
}

/// `--env-file`/`--label-file`: one `KEY=value` per line; blank lines and `#` comments are
/// skipped. A bare `NAME` line takes NAME's value from our environment in an env file (dropped
/// when unset) and is dropped from a label file, as docker's `parseKeyValueFile` does.
pub fn read_kv_file(file: &str, env: bool) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Exit::error(125, format!("wharf: open {file}: {}", io_words(&e))))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            if l.contains('=') {
                Some(l.to_string())
            } else if env {
                let name = l.trim();
                std::env::var(name).ok().map(|v| format!("{name}={v}"))
            } else {
                None
            }
        })
        .collect())
}

/// A namespace mode flag as docker validates it (`host`, `container:<id>`, and the extra
/// words each mode allows).
fn ns_mode(
    flag: &str,
    what: &str,
    val: &Option<String>,
    extra: &[&str],
) -> Result<String, BadFlag> {
    let s = val.clone().unwrap_or_default();
    let ok = s.is_empty()
        || s == "host"
        || extra.contains(&s.as_str())
        || (flag != "--cgroupns"
            && flag != "--userns"
            && flag != "--uts"
            && s.strip_prefix("container:").is_some_and(|c| !c.is_empty()));
    if ok {
        Ok(s)
    } else {
        Err(BadFlag::Parse(format!("{flag}: invalid {what} mode")))
    }
}

/// `--security-opt` as docker sends it: a `seccomp=<file>` is replaced by the file's compact
/// JSON, `systempaths=unconfined` becomes empty `MaskedPaths`/`ReadonlyPaths`.
fn security_opts(items: &[String]) -> Result<(Option<Vec<String>>, bool), BadFlag> {
    let mut out = Vec::new();
    let mut unconfined_paths = false;
    for opt in items {
        let (k, val, ok) = match opt.split_once('=') {
            Some((k, v)) => (k, v, true),
            None if opt != "no-new-privileges" => match opt.split_once(':') {
                Some((k, v)) => (k, v, true),
                None => (opt.as_str(), "", false),
            },
            None => (opt.as_str(), "", false),
        };
        if (!ok || val.is_empty()) && k != "no-new-privileges" {
            return Err(BadFlag::Parse(format!(
                "Invalid --security-opt: {}",
                go_quoted(opt)
            )));
        }
        if opt == "systempaths=unconfined" {
            unconfined_paths = true;
            continue;
        }
        if k == "seccomp" && val != "builtin" && val != "unconfined" {
            let text = std::fs::read(val).map_err(|e| {
                BadFlag::Parse(format!(
                    "opening seccomp profile ({val}) failed: open {val}: {}",
                    io_words(&e)
                ))
            })?;
            serde_json::from_slice::<Value>(&text).map_err(|e| {
                BadFlag::Parse(format!(
                    "compacting json for seccomp profile ({val}) failed: {}",
                    go_json_error(&text, &e)
                ))
            })?;
            out.push(format!("seccomp={}", compact_json(&text)));
            continue;
        }
        out.push(opt.clone());
    }
    Ok(((!items.is_empty()).then_some(out), unconfined_paths))
}

/// Go's `json.Compact` of valid JSON: whitespace outside strings dropped, everything else
/// (key order included) kept byte for byte.
fn compact_json(text: &[u8]) -> String {
    let mut out = Vec::with_capacity(text.len());
    let (mut in_str, mut escaped) = (false, false);
    for &b in text {
        if in_str {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else if b == b'"' {
            in_str = true;
            out.push(b);
        } else if !b.is_ascii_whitespace() {
            out.push(b);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Go's `encoding/json` words for the commonest failure (not JSON at all); serde's otherwise.
fn go_json_error(text: &[u8], e: &serde_json::Error) -> String {
    let first = text.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match first {
        None => "unexpected end of JSON input".into(),
        Some(b) if !b"{[\"-0123456789tfn".contains(&b) => {
            format!(
                "invalid character '{}' looking for beginning of value",
                b as char
            )
        }
        _ => e.to_string(),
    }
}

/// Go's wording of common I/O errors.
fn io_words(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Builds the request; `Err` carries docker's words and exit code.
pub fn build(inp: &Inputs, command: &str) -> Result<CreateRequest> {
    let (image, cmd) = inp.opts.image_and_cmd.split_first().ok_or_else(|| {
        Exit::error(
            125,
            format!("wharf: '{command}' requires at least 1 argument\n\nUsage:  wharf {command} [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nSee 'wharf {command} --help'."),
        )
    })?;
    let mut env = Vec::new();
    for file in &inp.opts.env_file {
        env.extend(read_kv_file(file, true)?);
    }
    env.extend(inp.opts.env.iter().map(|e| expand_env(e)));
    let mut labels = Vec::new();
    for file in &inp.opts.host.label_file {
        labels.extend(read_kv_file(file, false)?);
    }
    labels.extend(inp.opts.label.iter().cloned());
    let mut req = body(inp, image, cmd, env, labels).map_err(|b| b.into_exit(command))?;
    if let Some(n) = &inp.opts.name {
        req.query.push(format!("name={}", wharf_client::encode(n)));
    }
    // Go's `url.Values.Encode` sorts by key.
    req.query.sort();
    Ok(req)
}

fn body(
    inp: &Inputs,
    image: &str,
    cmd: &[String],
    env: Vec<String>,
    labels: Vec<String>,
) -> Result<CreateRequest, BadFlag> {
    let o = inp.opts;
    let h = &o.host;
    if let Some(k) = &h.resources.kernel_memory {
        // Kernel memory limits are gone from the kernel (cgroup v2) and from the API since
        // 1.42; docker drops the value without a word, which would be accepting and ignoring.
        return Err(BadFlag::Parse(format!(
            "--kernel-memory {k}: kernel memory limits are not supported (removed in API 1.42)"
        )));
    }
    // pflag checks each value as it parses the command line.
    let mut resources = resources(&h.resources)?;
    let swappiness = match &h.memory_swappiness {
        Some(s) => v::parse_i64(s).map_err(|r| BadFlag::value("--memory-swappiness", s, r))?,
        None => -1,
    };
    let oom_score_adj = opt_i64("--oom-score-adj", &h.oom_score_adj)?;
    let cpu_count = opt_i64("--cpu-count", &h.cpu_count)?;
    let cpu_percent = opt_i64("--cpu-percent", &h.cpu_percent)?;
    let io_bw = match &h.io_maxbandwidth {
        Some(s) => v::parse_size(s, true).map_err(|r| BadFlag::value("--io-maxbandwidth", s, r))?,
        None => 0,
    };
    let io_iops = match &h.io_maxiops {
        Some(s) => v::parse_uint(s, u64::MAX).map_err(|r| BadFlag::value("--io-maxiops", s, r))?,
        None => 0,
    };
    let weight_devices = each(
        "--blkio-weight-device",
        &h.blkio_weight_device,
        v::parse_weight_device,
    )?;
    let read_bps = each(
        "--device-read-bps",
        &h.device_read_bps,
        v::parse_throttle_bps,
    )?;
    let write_bps = each(
        "--device-write-bps",
        &h.device_write_bps,
        v::parse_throttle_bps,
    )?;
    let read_iops = each(
        "--device-read-iops",
        &h.device_read_iops,
        v::parse_throttle_iops,
    )?;
    let write_iops = each(
        "--device-write-iops",
        &h.device_write_iops,
        v::parse_throttle_iops,
    )?;
    let mut ulimits: Vec<(String, i64, i64)> = Vec::new();
    for u in each("--ulimit", &h.ulimit, v::parse_ulimit)? {
        // Keyed by name: a later value replaces an earlier one; sent sorted by name.
        ulimits.retain(|x| x.0 != u.0);
        ulimits.push(u);
    }
    ulimits.sort_by(|a, b| a.0.cmp(&b.0));
    let shm = opt_size("--shm-size", &h.shm_size)?;
    let extra_hosts = each("--add-host", &h.add_host, v::parse_extra_host)?;
    let dns = each("--dns", &h.dns, v::parse_ip)?;
    each("--sysctl", &h.sysctl, v::validate_sysctl)?;
    each(
        "--device-cgroup-rule",
        &h.device_cgroup_rule,
        v::validate_device_cgroup_rule,
    )?;
    let gpus = each("--gpus", &h.gpus, v::parse_gpus)?;
    let mounts = each("--mount", &h.mount, parse_mount)?;
    for a in &h.attach {
        if !matches!(
            a.to_ascii_lowercase().as_str(),
            "stdin" | "stdout" | "stderr"
        ) {
            return Err(BadFlag::value(
                "-a, --attach",
                a,
                "valid streams are STDIN, STDOUT and STDERR".into(),
            ));
        }
    }

    // docker's `parse`, in its order.
    if let Some(mac) = h.mac_address.as_deref().filter(|m| !m.is_empty()) {
        if !v::valid_mac(mac) {
            return Err(BadFlag::Parse(format!("{mac} is not a valid mac address")));
        }
    }
    if swappiness != -1 && !(0..=100).contains(&swappiness) {
        return Err(BadFlag::Parse(format!(
            "invalid value: {swappiness}. Valid memory swappiness range is 0-100"
        )));
    }
    let mut binds = Vec::new();
    let mut volumes = Map::new();
    for spec in &h.volume {
        match parse_volume(spec).map_err(BadFlag::Parse)? {
            VolumeSpec::Bind(b) => binds.push(b),
            VolumeSpec::Anonymous(t) => {
                volumes.insert(t, json!({}));
            }
        }
    }
    let mut tmpfs = Map::new();
    for t in &h.tmpfs {
        let (k, val) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(k.to_string(), json!(val));
    }
    let mut ports = Ports::default();
    for p in &h.publish {
        ports.publish(p).map_err(BadFlag::Parse)?;
    }
    for e in &h.expose {
        ports.expose(e).map_err(BadFlag::Parse)?;
    }
    let mut devices = Vec::new();
    for d in &h.device {
        devices.push(v::parse_device(d).map_err(BadFlag::Parse)?);
    }
    let pid = ns_mode("--pid", "PID", &h.pid, &[])?;
    let uts = ns_mode("--uts", "UTS", &h.uts, &[])?;
    let userns = ns_mode("--userns", "USER", &h.userns, &[])?;
    let cgroupns = ns_mode("--cgroupns", "CGROUP", &h.cgroupns, &["private"])?;
    let restart = restart_policy(&o.restart).map_err(BadFlag::Parse)?;
    let log_driver = h.log_driver.clone().unwrap_or_default();
    if log_driver == "none" && !h.log_opt.is_empty() {
        return Err(BadFlag::Parse(format!(
            "invalid logging opts for driver {log_driver}"
        )));
    }
    let (security, unconfined_paths) = security_opts(&h.security_opt)?;
    let mut storage = Map::new();
    for s in &h.storage_opt {
        let (k, val) = s
            .split_once('=')
            .ok_or_else(|| BadFlag::Parse("invalid storage option".into()))?;
        storage.insert(k.to_string(), json!(val));
    }
    let health = healthcheck(&HealthFlags {
        cmd: &o.health_cmd,
        interval: &o.health_interval,
        timeout: &o.health_timeout,
        start_period: &o.health_start_period,
        start_interval: &o.health_start_interval,
        retries: o.health_retries,
        none: o.no_healthcheck,
    })?;
    if o.rm && !matches!(restart["Name"].as_str(), Some("no") | Some("")) {
        return Err(BadFlag::Parse(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }
    let (network_mode, endpoints) = networking(&NetworkFlags {
        networks: &o.network,
        aliases: &h.network_alias,
        links: &h.link,
        ip: &h.ip,
        ip6: &h.ip6,
        mac: &h.mac_address,
        link_local: &h.link_local_ip,
    })?;

    let attach_given = |s: &str| h.attach.iter().any(|a| a.eq_ignore_ascii_case(s));
    let (mut att_in, mut att_out, mut att_err) = if h.attach.is_empty() {
        (false, true, true)
    } else {
        (
            attach_given("stdin"),
            attach_given("stdout"),
            attach_given("stderr"),
        )
    };
    if o.interactive {
        att_in = true;
    }
    if inp.detach {
        (att_in, att_out, att_err) = (false, false, false);
    }

    let mut host_config = json!({
        "Binds": (!binds.is_empty()).then_some(binds),
        "ContainerIDFile": h.cidfile.clone().unwrap_or_default(),
        "LogConfig": {"Type": log_driver, "Config": v::kv_map(&h.log_opt)},
        "NetworkMode": network_mode,
        "PortBindings": ports.bindings,
        "RestartPolicy": restart,
        "AutoRemove": o.rm,
        "VolumeDriver": h.volume_driver.clone().unwrap_or_default(),
        "VolumesFrom": (!h.volumes_from.is_empty()).then_some(&h.volumes_from),
        "ConsoleSize": [inp.console.0, inp.console.1],
        "CapAdd": v::normalize_caps(&h.cap_add),
        "CapDrop": v::normalize_caps(&h.cap_drop),
        "CgroupnsMode": cgroupns,
        "Dns": dns,
        "DnsOptions": h.dns_option,
        "DnsSearch": h.dns_search,
        "ExtraHosts": (!extra_hosts.is_empty()).then_some(extra_hosts),
        "GroupAdd": (!h.group_add.is_empty()).then_some(&h.group_add),
        "IpcMode": h.ipc.clone().unwrap_or_default(),
        "Cgroup": "",
        "Links": (!h.link.is_empty()).then_some(&h.link),
        "OomScoreAdj": oom_score_adj,
        "PidMode": pid,
        "Privileged": h.privileged,
        "PublishAllPorts": h.publish_all,
        "ReadonlyRootfs": h.read_only,
        "SecurityOpt": security,
        "UTSMode": uts,
        "UsernsMode": userns,
        "ShmSize": shm,
        "Isolation": h.isolation.clone().unwrap_or_default(),
        "CgroupParent": h.cgroup_parent.clone().unwrap_or_default(),
        "BlkioWeightDevice": weight_devices,
        "BlkioDeviceReadBps": read_bps,
        "BlkioDeviceWriteBps": write_bps,
        "BlkioDeviceReadIOps": read_iops,
        "BlkioDeviceWriteIOps": write_iops,
        "Devices": devices,
        "DeviceCgroupRules": (!h.device_cgroup_rule.is_empty()).then_some(&h.device_cgroup_rule),
        "DeviceRequests": (!gpus.is_empty()).then_some(gpus),
        "MemorySwappiness": swappiness,
        "OomKillDisable": h.oom_kill_disable,
        "Ulimits": ulimits
            .iter()
            .map(|(n, s, hd)| json!({"Name": n, "Soft": s, "Hard": hd}))
            .collect::<Vec<_>>(),
        "CpuCount": cpu_count,
        "CpuPercent": cpu_percent,
        "IOMaximumIOps": io_iops,
        "IOMaximumBandwidth": io_bw,
        "MaskedPaths": if unconfined_paths { Some(json!([])) } else { None },
        "ReadonlyPaths": if unconfined_paths { Some(json!([])) } else { None },
    });
    if let Value::Object(hc) = &mut host_config {
        hc.append(&mut resources);
        // Go's `omitempty` fields: on the wire only when set.
        if !h.annotation.is_empty() {
            hc.insert(
                "Annotations".into(),
                Value::Object(v::kv_map(&h.annotation)),
            );
        }
        if !storage.is_empty() {
            hc.insert("StorageOpt".into(), Value::Object(storage));
        }
        if !tmpfs.is_empty() {
            hc.insert("Tmpfs".into(), Value::Object(tmpfs));
        }
        if !h.sysctl.is_empty() {
            hc.insert("Sysctls".into(), Value::Object(v::kv_map(&h.sysctl)));
        }
        if let Some(rt) = h.runtime.as_deref().filter(|r| !r.is_empty()) {
            hc.insert("Runtime".into(), json!(rt));
        }
        if !mounts.is_empty() || h.use_api_socket {
            hc.insert("Mounts".into(), json!(mounts));
        }
        if let Some(init) = o.init {
            hc.insert("Init".into(), json!(init));
        }
    }
    let mut labels_map = Map::new();
    for l in &labels {
        let (k, val) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels_map.insert(k.to_string(), json!(val));
    }
    let mut cfg = json!({
        "Hostname": o.hostname.clone().unwrap_or_default(),
        "Domainname": h.domainname.clone().unwrap_or_default(),
        "User": o.user.clone().unwrap_or_default(),
        "AttachStdin": att_in,
        "AttachStdout": att_out,
        "AttachStderr": att_err,
        "Tty": o.tty,
        "OpenStdin": o.interactive,
        "StdinOnce": o.interactive && att_in,
        "Env": (!env.is_empty()).then_some(env),
        "Cmd": (!cmd.is_empty()).then_some(cmd),
        "Image": image,
        "Volumes": volumes,
        "WorkingDir": o.workdir.clone().unwrap_or_default(),
        // docker: `--entrypoint ""` resets the image's entrypoint.
        "Entrypoint": o.entrypoint.as_ref().map(|e| vec![e]),
        "OnBuild": null,
        "Labels": labels_map,
        "HostConfig": host_config,
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    });
    if !ports.exposed.is_empty() {
        cfg["ExposedPorts"] = Value::Object(ports.exposed);
    }
    if let Some(hc) = health {
        cfg["Healthcheck"] = hc;
    }
    if let Some(s) = o.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        cfg["StopSignal"] = json!(s);
    }
    if let Some(t) = o.stop_timeout {
        cfg["StopTimeout"] = json!(t);
    }
    let mut query = Vec::new();
    if let Some(p) = h.platform.as_deref().filter(|p| !p.is_empty()) {
        query.push(format!(
            "platform={}",
            wharf_client::encode(&platform_query(p)?)
        ));
    }
    Ok(CreateRequest {
        image: image.to_string(),
        query,
        body: cfg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::RunArgs;

    fn parse_run(args: &[&str]) -> RunArgs {
        use clap::Parser;
        let mut argv = vec!["wharf", "run"];
        argv.extend_from_slice(args);
        match crate::cli::Cli::try_parse_from(argv).map(|c| c.cmd) {
            Ok(Some(crate::cli::Cmd::Run(a))) => a,
            other => panic!("not a run: {other:?}"),
        }
    }

    fn body(args: &[&str]) -> Value {
        let a = parse_run(args);
        let inp = Inputs {
            opts: &a.opts,
            detach: a.detach,
            console: (40, 120),
        };
        build(&inp, "run").unwrap().body
    }

    fn body_err(args: &[&str]) -> String {
        let a = parse_run(args);
        let inp = Inputs {
            opts: &a.opts,
            detach: a.detach,
            console: (0, 0),
        };
        let e = build(&inp, "run").unwrap_err();
        let exit = e.downcast_ref::<Exit>().expect("an Exit");
        assert_eq!(exit.code, 125);
        exit.message.clone()
    }

    #[test]
    fn tty_flags_match_docker_run_it() {
        let b = body(&["-it", "--rm", "busybox", "sh"]);
        for k in [
            "Tty",
            "OpenStdin",
            "StdinOnce",
            "AttachStdin",
            "AttachStdout",
        ] {
            assert_eq!(b[k], json!(true), "{k}");
        }
        assert_eq!(b["HostConfig"]["ConsoleSize"], json!([40, 120]));
        assert_eq!(b["Cmd"], json!(["sh"]));
        // `-t` alone: a TTY without stdin.
        let b = body(&["-t", "busybox"]);
        assert_eq!(b["Tty"], json!(true));
        assert_eq!(b["OpenStdin"], json!(false));
        assert_eq!(b["AttachStdin"], json!(false));
        // `-d -i`: stdin open but not attached.
        let b = body(&["-d", "-i", "busybox"]);
        assert_eq!(b["OpenStdin"], json!(true));
        assert_eq!(b["StdinOnce"], json!(false));
        assert_eq!(b["AttachStdout"], json!(false));
        let a = parse_run(&["--detach-keys", "ctrl-a,x", "--sig-proxy=false", "busybox"]);
        assert_eq!(a.detach_keys.as_deref(), Some("ctrl-a,x"));
        assert!(!a.sig_proxy);
        assert!(parse_run(&["busybox"]).sig_proxy);
    }

    #[test]
    fn health_init_restart_match_docker() {
        // The values docker 28 sent for the same flags (captured against a fake daemon).
        let b = body(&[
            "--health-cmd",
            "curl x",
            "--health-interval",
            "30s",
            "--health-timeout",
            "1m30s",
            "--health-retries",
            "3",
            "--health-start-period",
            "5s",
            "--health-start-interval",
            "2s",
            "--init",
            "--restart",
            "on-failure:3",
            "busybox",
            "true",
        ]);
        assert_eq!(
            b["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "curl x"], "Interval": 30_000_000_000i64,
                   "Timeout": 90_000_000_000i64, "StartPeriod": 5_000_000_000i64,
                   "StartInterval": 2_000_000_000i64, "Retries": 3})
        );
        assert_eq!(b["HostConfig"]["Init"], json!(true));
        assert_eq!(
            b["HostConfig"]["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        let b = body(&["--no-healthcheck", "--restart", "always", "busybox"]);
        assert_eq!(b["Healthcheck"], json!({"Test": ["NONE"]}));
        assert_eq!(b["HostConfig"].get("Init"), None);
        assert_eq!(
            b["HostConfig"]["RestartPolicy"],
            json!({"Name": "always", "MaximumRetryCount": 0})
        );
        let b = body(&["--init=false", "busybox"]);
        assert_eq!(b["HostConfig"]["Init"], json!(false));
        assert_eq!(b.get("Healthcheck"), None);
        assert_eq!(
            b["HostConfig"]["RestartPolicy"],
            json!({"Name": "no", "MaximumRetryCount": 0})
        );
        // Only the interval: no Test, as docker leaves it to the image.
        let b = body(&["--health-interval", "1m", "busybox"]);
        assert_eq!(b["Healthcheck"], json!({"Interval": 60_000_000_000i64}));
    }

    #[test]
    fn flag_errors_use_docker_words() {
        assert!(
            body_err(&["--no-healthcheck", "--health-retries", "2", "busybox"])
                .starts_with("wharf: --no-healthcheck conflicts with --health-* options\n")
        );
        assert!(body_err(&["--rm", "--restart", "always", "busybox"])
            .contains("conflicting options: cannot specify both --restart and --rm"));
        assert!(body_err(&["--health-retries", "-1", "busybox"])
            .contains("--health-retries cannot be negative"));
        assert!(body_err(&["--health-interval", "-5s", "busybox"])
            .contains("--health-interval cannot be negative"));
        assert!(body_err(&["--health-interval", "5", "busybox"])
            .contains("time: missing unit in duration \"5\""));
        assert!(
            body_err(&["--restart", ":3", "busybox"]).contains("no policy provided before colon")
        );
        assert!(body_err(&["--restart", "on-failure:x", "busybox"])
            .contains("maximum retry count must be an integer"));
    }

    /// What docker 28 sent for `docker create busybox` (captured against a fake daemon): the
    /// whole body, zero values included.
    const DOCKER_CREATE_BUSYBOX: &str = concat!(
        "{\"AttachStderr\":true,\"AttachStdin\":false,\"AttachStdout\":true,\"Cmd\":null,\"Domainname\":\"\",",
        "\"Entrypoint\":null,\"Env\":null,\"HostConfig\":{\"AutoRemove\":false,\"Binds\":null,",
        "\"BlkioDeviceReadBps\":[],\"BlkioDeviceReadIOps\":[],\"BlkioDeviceWriteBps\":[],",
        "\"BlkioDeviceWriteIOps\":[],\"BlkioWeight\":0,\"BlkioWeightDevice\":[],\"CapAdd\":null,",
        "\"CapDrop\":null,\"Cgroup\":\"\",\"CgroupParent\":\"\",\"CgroupnsMode\":\"\",\"ConsoleSize\":[0,0],",
        "\"ContainerIDFile\":\"\",\"CpuCount\":0,\"CpuPercent\":0,\"CpuPeriod\":0,\"CpuQuota\":0,",
        "\"CpuRealtimePeriod\":0,\"CpuRealtimeRuntime\":0,\"CpuShares\":0,\"CpusetCpus\":\"\",",
        "\"CpusetMems\":\"\",\"DeviceCgroupRules\":null,\"DeviceRequests\":null,\"Devices\":[],\"Dns\":[],",
        "\"DnsOptions\":[],\"DnsSearch\":[],\"ExtraHosts\":null,\"GroupAdd\":null,\"IOMaximumBandwidth\":0,",
        "\"IOMaximumIOps\":0,\"IpcMode\":\"\",\"Isolation\":\"\",\"Links\":null,\"LogConfig\":{\"Config\":{},",
        "\"Type\":\"\"},\"MaskedPaths\":null,\"Memory\":0,\"MemoryReservation\":0,\"MemorySwap\":0,",
        "\"MemorySwappiness\":-1,\"NanoCpus\":0,\"NetworkMode\":\"default\",\"OomKillDisable\":false,",
        "\"OomScoreAdj\":0,\"PidMode\":\"\",\"PidsLimit\":0,\"PortBindings\":{},\"Privileged\":false,",
        "\"PublishAllPorts\":false,\"ReadonlyPaths\":null,\"ReadonlyRootfs\":false,",
        "\"RestartPolicy\":{\"MaximumRetryCount\":0,\"Name\":\"no\"},\"SecurityOpt\":null,\"ShmSize\":0,",
        "\"UTSMode\":\"\",\"Ulimits\":[],\"UsernsMode\":\"\",\"VolumeDriver\":\"\",\"VolumesFrom\":null},",
        "\"Hostname\":\"\",\"Image\":\"busybox\",\"Labels\":{},",
        "\"NetworkingConfig\":{\"EndpointsConfig\":{\"default\":{\"Aliases\":null,\"DNSNames\":null,",
        "\"DriverOpts\":null,\"EndpointID\":\"\",\"Gateway\":\"\",\"GlobalIPv6Address\":\"\",",
        "\"GlobalIPv6PrefixLen\":0,\"GwPriority\":0,\"IPAMConfig\":null,\"IPAddress\":\"\",\"IPPrefixLen\":0,",
        "\"IPv6Gateway\":\"\",\"Links\":null,\"MacAddress\":\"\",\"NetworkID\":\"\"}}},\"OnBuild\":null,",
        "\"OpenStdin\":false,\"StdinOnce\":false,\"Tty\":false,\"User\":\"\",\"Volumes\":{},\"WorkingDir\":\"\"}",
    );

    #[test]
    fn plain_create_is_docker_body_field_for_field() {
        let a = parse_run(&["busybox"]);
        let inp = Inputs {
            opts: &a.opts,
            detach: false,
            console: (0, 0),
        };
        let want: Value = serde_json::from_str(DOCKER_CREATE_BUSYBOX).unwrap();
        assert_eq!(build(&inp, "create").unwrap().body, want);
    }

    #[test]
    fn seccomp_profiles_are_sent_compact_in_file_order() {
        assert_eq!(
            compact_json(b"{\n  \"z\": [1, 2],\n  \"a\": \"x y\\\" \"\n}\n"),
            "{\"z\":[1,2],\"a\":\"x y\\\" \"}"
        );
    }

    #[test]
    fn kernel_memory_is_refused_by_name() {
        let msg = body_err(&["--kernel-memory", "4m", "busybox"]);
        assert!(
            msg.starts_with("wharf: --kernel-memory 4m: kernel memory limits are not supported"),
            "{msg}"
        );
        let msg = body_err(&["-m", "abc", "busybox"]);
        assert_eq!(
            msg,
            "invalid argument \"abc\" for \"-m, --memory\" flag: invalid size: 'abc'\n\nUsage:  wharf run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'wharf run --help' for more information"
        );
    }
}
