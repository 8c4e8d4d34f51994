//! `POST /containers/create`: every field of API 1.44's body (`ContainerConfig` at the top
//! level, `HostConfig` with Docker's embedded `Resources`, `NetworkingConfig`), with what Wharf
//! does with it. Values are also validated later, against the host, in `containers::config`;
//! this table only says what is built.

use super::{is_empty, is_zero, Effect, Field, Rule};
use serde_json::Value;

const NETWORKING: &str = "issue 16: networking";
const MOUNTS: &str = "volumes and binds (crate::mounts)";
const RESOURCES: &str = "issue 17: the rest of the resource and security options";
const HEALTH: &str = "health probes (containers/health.rs)";
const LOGS: &str = "the shim's log writer";
const RESTART: &str = "restart policies (containers/restart.rs)";

const fn honoured(path: &'static str, effect: Effect) -> Field {
    Field {
        path,
        rule: Rule::Honoured(effect),
    }
}

const fn partly(
    path: &'static str,
    effect: Effect,
    check: fn(&Value) -> Result<(), String>,
) -> Field {
    Field {
        path,
        rule: Rule::Partly(effect, check),
    }
}

const fn refused(path: &'static str, until: &'static str, is_default: fn(&Value) -> bool) -> Field {
    Field {
        path,
        rule: Rule::Refused { until, is_default },
    }
}

use Effect::{Engine, Spec, Stored};

pub const TABLE: &[Field] = &[
    // ContainerConfig
    honoured("Hostname", Spec),
    honoured("Domainname", Spec),
    honoured("User", Spec),
    honoured(
        "AttachStdin",
        Stored("which streams `docker start -a` attaches; dockerd only keeps it"),
    ),
    honoured(
        "AttachStdout",
        Stored("which streams `docker start -a` attaches; dockerd only keeps it"),
    ),
    honoured(
        "AttachStderr",
        Stored("which streams `docker start -a` attaches; dockerd only keeps it"),
    ),
    refused("ExposedPorts", NETWORKING, is_empty),
    honoured("Tty", Spec),
    honoured(
        "OpenStdin",
        Engine("the shim keeps a stdin pipe (containers/stdin.rs)"),
    ),
    honoured(
        "StdinOnce",
        Engine("attach closes stdin after the first attacher (containers/stdin.rs)"),
    ),
    honoured("Env", Spec),
    honoured("Cmd", Spec),
    honoured("Healthcheck", Engine(HEALTH)),
    honoured("Healthcheck.Test", Engine(HEALTH)),
    honoured("Healthcheck.Interval", Engine(HEALTH)),
    honoured("Healthcheck.Timeout", Engine(HEALTH)),
    honoured("Healthcheck.StartPeriod", Engine(HEALTH)),
    honoured("Healthcheck.StartInterval", Engine(HEALTH)),
    honoured("Healthcheck.Retries", Engine(HEALTH)),
    refused("ArgsEscaped", "Windows only", is_zero),
    honoured("Image", Engine("the image the rootfs is made of")),
    honoured("Volumes", Engine(MOUNTS)),
    honoured("WorkingDir", Spec),
    honoured("Entrypoint", Spec),
    honoured(
        "NetworkDisabled",
        Engine("no network but lo, which until issue 16 is also what `default` gives"),
    ),
    refused("MacAddress", NETWORKING, is_zero),
    honoured(
        "OnBuild",
        Stored("image metadata for a later commit; dockerd only keeps it"),
    ),
    honoured("Labels", Engine("ps/events filters and event attributes")),
    honoured("StopSignal", Engine("stop (containers/lifecycle.rs)")),
    honoured("StopTimeout", Engine("stop (containers/lifecycle.rs)")),
    honoured(
        "Shell",
        Stored("the shell of shell-form instructions in a later build; dockerd only keeps it"),
    ),
    // HostConfig
    honoured("HostConfig.Binds", Engine(MOUNTS)),
    honoured(
        "HostConfig.ContainerIDFile",
        Stored("the docker CLI writes the file itself; dockerd ignores it"),
    ),
    partly("HostConfig.LogConfig", Engine(LOGS), log_config),
    honoured("HostConfig.LogConfig.Type", Engine(LOGS)),
    honoured("HostConfig.LogConfig.Config", Engine(LOGS)),
    partly("HostConfig.NetworkMode", Spec, network_mode),
    refused("HostConfig.PortBindings", NETWORKING, is_empty),
    honoured("HostConfig.RestartPolicy", Engine(RESTART)),
    honoured("HostConfig.RestartPolicy.Name", Engine(RESTART)),
    honoured(
        "HostConfig.RestartPolicy.MaximumRetryCount",
        Engine(RESTART),
    ),
    honoured(
        "HostConfig.AutoRemove",
        Engine("removal at exit (containers/lifecycle.rs)"),
    ),
    honoured(
        "HostConfig.VolumeDriver",
        Engine("the driver of the volumes a create makes; only `local` is served, any other is refused like a missing plugin"),
    ),
    honoured("HostConfig.VolumesFrom", Engine(MOUNTS)),
    honoured(
        "HostConfig.ConsoleSize",
        Engine("the pty's initial size (containers/tty.rs)"),
    ),
    honoured("HostConfig.Annotations", Spec),
    honoured("HostConfig.CapAdd", Spec),
    honoured("HostConfig.CapDrop", Spec),
    partly("HostConfig.CgroupnsMode", Spec, cgroupns_mode),
    honoured("HostConfig.Dns", Engine("the container's /etc/resolv.conf")),
    honoured(
        "HostConfig.DnsOptions",
        Engine("the container's /etc/resolv.conf"),
    ),
    honoured(
        "HostConfig.DnsSearch",
        Engine("the container's /etc/resolv.conf"),
    ),
    honoured(
        "HostConfig.ExtraHosts",
        Engine("the container's /etc/hosts"),
    ),
    honoured("HostConfig.GroupAdd", Spec),
    partly("HostConfig.IpcMode", Spec, ipc_mode),
    refused(
        "HostConfig.Cgroup",
        "sharing another container's cgroup is not built",
        is_zero,
    ),
    refused("HostConfig.Links", NETWORKING, is_empty),
    honoured("HostConfig.OomScoreAdj", Spec),
    partly("HostConfig.PidMode", Spec, pid_mode),
    honoured("HostConfig.Privileged", Spec),
    refused("HostConfig.PublishAllPorts", NETWORKING, is_zero),
    honoured("HostConfig.ReadonlyRootfs", Spec),
    partly("HostConfig.SecurityOpt", Spec, security_opt),
    refused(
        "HostConfig.StorageOpt",
        "per-container storage quotas are not built",
        is_empty,
    ),
    honoured("HostConfig.Tmpfs", Spec),
    partly("HostConfig.UTSMode", Spec, uts_mode),
    partly(
        "HostConfig.UsernsMode",
        Engine("Wharf never remaps users, so `host` is what every container gets"),
        userns_mode,
    ),
    honoured("HostConfig.ShmSize", Spec),
    honoured("HostConfig.Sysctls", Spec),
    refused(
        "HostConfig.Runtime",
        "containers run in Wharf's own runtime, libcontainer in wharf-shim",
        is_zero,
    ),
    partly(
        "HostConfig.Isolation",
        Stored("`default` is the only isolation on Linux"),
        isolation,
    ),
    // Resources, embedded in HostConfig
    honoured("HostConfig.CpuShares", Spec),
    honoured("HostConfig.Memory", Spec),
    honoured("HostConfig.NanoCpus", Spec),
    honoured("HostConfig.CgroupParent", Spec),
    honoured("HostConfig.BlkioWeight", Spec),
    refused("HostConfig.BlkioWeightDevice", RESOURCES, is_empty),
    refused("HostConfig.BlkioDeviceReadBps", RESOURCES, is_empty),
    refused("HostConfig.BlkioDeviceWriteBps", RESOURCES, is_empty),
    refused("HostConfig.BlkioDeviceReadIOps", RESOURCES, is_empty),
    refused("HostConfig.BlkioDeviceWriteIOps", RESOURCES, is_empty),
    honoured("HostConfig.CpuPeriod", Spec),
    honoured("HostConfig.CpuQuota", Spec),
    refused("HostConfig.CpuRealtimePeriod", RESOURCES, is_zero),
    refused("HostConfig.CpuRealtimeRuntime", RESOURCES, is_zero),
    honoured("HostConfig.CpusetCpus", Spec),
    honoured("HostConfig.CpusetMems", Spec),
    honoured("HostConfig.Devices", Spec),
    honoured("HostConfig.Devices[].PathOnHost", Spec),
    honoured("HostConfig.Devices[].PathInContainer", Spec),
    honoured("HostConfig.Devices[].CgroupPermissions", Spec),
    honoured("HostConfig.DeviceCgroupRules", Spec),
    refused(
        "HostConfig.DeviceRequests",
        "GPU and driver device requests are not built",
        is_empty,
    ),
    refused("HostConfig.KernelMemory", RESOURCES, is_zero),
    refused("HostConfig.KernelMemoryTCP", RESOURCES, is_zero),
    honoured("HostConfig.MemoryReservation", Spec),
    honoured("HostConfig.MemorySwap", Spec),
    honoured("HostConfig.MemorySwappiness", Spec),
    honoured("HostConfig.OomKillDisable", Spec),
    honoured("HostConfig.PidsLimit", Spec),
    honoured("HostConfig.Ulimits", Spec),
    honoured("HostConfig.Ulimits[].Name", Spec),
    honoured("HostConfig.Ulimits[].Hard", Spec),
    honoured("HostConfig.Ulimits[].Soft", Spec),
    refused("HostConfig.CpuCount", "Windows only", is_zero),
    refused("HostConfig.CpuPercent", "Windows only", is_zero),
    refused("HostConfig.IOMaximumIOps", "Windows only", is_zero),
    refused("HostConfig.IOMaximumBandwidth", "Windows only", is_zero),
    partly("HostConfig.Mounts", Spec, mounts),
    honoured("HostConfig.Mounts[].Type", Spec),
    honoured("HostConfig.Mounts[].Source", Engine(MOUNTS)),
    honoured("HostConfig.Mounts[].Target", Spec),
    honoured("HostConfig.Mounts[].ReadOnly", Spec),
    honoured(
        "HostConfig.Mounts[].Consistency",
        Stored("Docker Desktop's file sharing mode; dockerd on Linux keeps it and ignores it"),
    ),
    honoured("HostConfig.Mounts[].BindOptions", Engine(MOUNTS)),
    honoured("HostConfig.Mounts[].BindOptions.Propagation", Engine(MOUNTS)),
    honoured("HostConfig.Mounts[].BindOptions.NonRecursive", Engine(MOUNTS)),
    honoured("HostConfig.Mounts[].BindOptions.CreateMountpoint", Engine(MOUNTS)),
    honoured(
        "HostConfig.Mounts[].BindOptions.ReadOnlyNonRecursive",
        Engine(MOUNTS),
    ),
    honoured(
        "HostConfig.Mounts[].BindOptions.ReadOnlyForceRecursive",
        Engine("read-only binds are recursively read-only (`rro`) anyway"),
    ),
    honoured("HostConfig.Mounts[].VolumeOptions", Engine(MOUNTS)),
    honoured("HostConfig.Mounts[].VolumeOptions.NoCopy", Engine(MOUNTS)),
    honoured("HostConfig.Mounts[].VolumeOptions.Labels", Engine(MOUNTS)),
    honoured("HostConfig.Mounts[].VolumeOptions.DriverConfig", Engine(MOUNTS)),
    honoured(
        "HostConfig.Mounts[].VolumeOptions.DriverConfig.Name",
        Engine("the volume's driver; only `local` is served"),
    ),
    honoured(
        "HostConfig.Mounts[].VolumeOptions.DriverConfig.Options",
        Engine("the local driver's options of a volume the mount creates (volumes/opts.rs)"),
    ),
    honoured("HostConfig.Mounts[].TmpfsOptions", Spec),
    honoured("HostConfig.Mounts[].TmpfsOptions.SizeBytes", Spec),
    honoured("HostConfig.Mounts[].TmpfsOptions.Mode", Spec),
    honoured("HostConfig.MaskedPaths", Spec),
    honoured("HostConfig.ReadonlyPaths", Spec),
    honoured(
        "HostConfig.Init",
        Engine("Wharf's init as PID 1 (containers/init.rs)"),
    ),
    // NetworkingConfig
    honoured(
        "NetworkingConfig.EndpointsConfig",
        Engine("the network NetworkMode names; no per-endpoint settings yet"),
    ),
    refused(
        "NetworkingConfig.EndpointsConfig.*.IPAMConfig",
        NETWORKING,
        is_zero,
    ),
    refused(
        "NetworkingConfig.EndpointsConfig.*.Links",
        NETWORKING,
        is_empty,
    ),
    refused(
        "NetworkingConfig.EndpointsConfig.*.Aliases",
        NETWORKING,
        is_empty,
    ),
    refused(
        "NetworkingConfig.EndpointsConfig.*.MacAddress",
        NETWORKING,
        is_zero,
    ),
    refused(
        "NetworkingConfig.EndpointsConfig.*.DriverOpts",
        NETWORKING,
        is_empty,
    ),
    refused(
        "NetworkingConfig.EndpointsConfig.*.NetworkID",
        NETWORKING,
        is_zero,
    ),
    refused(
        "NetworkingConfig.EndpointsConfig.*.EndpointID",
        NETWORKING,
        is_zero,
    ),
    refused(
        "NetworkingConfig.EndpointsConfig.*.Gateway",
        NETWORKING,
        is_zero,
    ),
    refused(
        "NetworkingConfig.EndpointsConfig.*.IPAddress",
        NETWORKING,
        is_zero,
    ),
    refused(
        "NetworkingConfig.EndpointsConfig.*.IPPrefixLen",
        NETWORKING,
        is_zero,
    ),
    refused(
        "NetworkingConfig.EndpointsConfig.*.IPv6Gateway",
        NETWORKING,
        is_zero,
    ),
    refused(
        "NetworkingConfig.EndpointsConfig.*.GlobalIPv6Address",
        NETWORKING,
        is_zero,
    ),
    refused(
        "NetworkingConfig.EndpointsConfig.*.GlobalIPv6PrefixLen",
        NETWORKING,
        is_zero,
    ),
    refused(
        "NetworkingConfig.EndpointsConfig.*.DNSNames",
        NETWORKING,
        is_empty,
    ),
];

fn as_str(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn log_config(v: &Value) -> Result<(), String> {
    let driver = as_str(&v["Type"]);
    let opts: std::collections::BTreeMap<String, String> = v["Config"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), as_str(v).to_string()))
        .collect();
    crate::containers::logconfig::validate(driver, &opts)
        .map(|_| ())
        .map_err(|e| e.message())
}

fn network_mode(v: &Value) -> Result<(), String> {
    let mode = as_str(v);
    if mode.starts_with("container:") {
        return Err(format!(
            "Wharf does not support HostConfig.NetworkMode \"{mode}\" yet ({NETWORKING})"
        ));
    }
    Ok(())
}

fn cgroupns_mode(v: &Value) -> Result<(), String> {
    match as_str(v) {
        "" | "host" | "private" => Ok(()),
        other => Err(format!("invalid cgroup namespace mode: {other}")),
    }
}

fn ipc_mode(v: &Value) -> Result<(), String> {
    match as_str(v) {
        "" | "private" | "shareable" | "host" | "none" => Ok(()),
        m if m.strip_prefix("container:").is_some_and(|c| !c.is_empty()) => Ok(()),
        other => Err(format!("invalid IPC mode: {other}")),
    }
}

fn pid_mode(v: &Value) -> Result<(), String> {
    match as_str(v) {
        "" | "host" => Ok(()),
        m if m.strip_prefix("container:").is_some_and(|c| !c.is_empty()) => Ok(()),
        other => Err(format!("invalid PID mode: {other}")),
    }
}

fn uts_mode(v: &Value) -> Result<(), String> {
    match as_str(v) {
        "" | "host" => Ok(()),
        other => Err(format!("invalid UTS mode: {other}")),
    }
}

fn userns_mode(v: &Value) -> Result<(), String> {
    match as_str(v) {
        "" | "host" => Ok(()),
        "private" => Err("Wharf does not support user namespace remapping (HostConfig.UsernsMode \"private\") yet".into()),
        other => Err(format!("invalid USER mode: {other}")),
    }
}

fn isolation(v: &Value) -> Result<(), String> {
    match as_str(v) {
        "" | "default" => Ok(()),
        other => Err(format!(
            "Invalid isolation: \"{other}\" - linux only supports 'default'"
        )),
    }
}

/// One `--security-opt` entry as Wharf understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityOpt {
    NoNewPrivileges(bool),
    /// `seccomp=unconfined`, `apparmor=unconfined`, `label=disable`: Wharf applies no
    /// seccomp filter (until issue 17), no AppArmor profile and no SELinux label, so these
    /// are what runs anyway.
    AlreadyUnconfined,
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses one entry the way dockerd does (`key=value`, the legacy `key:value`, bare
/// `no-new-privileges` and `disable`), with its words for malformed ones.
pub fn parse_security_opt(opt: &str) -> Result<SecurityOpt, String> {
    match opt {
        "no-new-privileges" => return Ok(SecurityOpt::NoNewPrivileges(true)),
        "disable" => return Ok(SecurityOpt::AlreadyUnconfined),
        _ => {}
    }
    let (key, value) = if opt.contains('=') {
        opt.split_once('=')
    } else {
        opt.split_once(':')
    }
    .ok_or_else(|| format!("invalid --security-opt 1: {opt:?}"))?;
    match (key, value) {
        ("no-new-privileges", v) => go_bool(v)
            .map(SecurityOpt::NoNewPrivileges)
            .ok_or_else(|| format!("invalid --security-opt 2: {opt:?}")),
        ("seccomp", "unconfined") | ("apparmor", "unconfined") | ("label", "disable") => {
            Ok(SecurityOpt::AlreadyUnconfined)
        }
        ("seccomp", _) => Err(format!(
            "Wharf does not support HostConfig.SecurityOpt \"{opt}\" yet (issue 17: seccomp profiles)"
        )),
        ("apparmor", _) | ("label", _) => Err(format!(
            "Wharf does not support HostConfig.SecurityOpt \"{opt}\": Wharf applies no AppArmor profiles or SELinux labels"
        )),
        _ => Err(format!("invalid --security-opt 2: {opt:?}")),
    }
}

fn security_opt(v: &Value) -> Result<(), String> {
    for o in v.as_array().into_iter().flatten() {
        parse_security_opt(as_str(o))?;
    }
    Ok(())
}

/// The types Wharf mounts; each is validated in dockerd's words at create (`mounts::parse`,
/// which needs the host to check a bind's source).
fn mounts(v: &Value) -> Result<(), String> {
    for m in v.as_array().into_iter().flatten() {
        let ty = as_str(&m["Type"]);
        if !matches!(ty, "bind" | "volume" | "tmpfs") {
            return Err(format!(
                "invalid mount config for type {ty:?}: mount type unknown"
            ));
        }
        if ty != "tmpfs" {
            continue;
        }
        let field = |name: &str| -> Result<(), String> {
            if m.get(name).is_some_and(|f| !is_zero(f)) {
                return Err(format!(
                    "invalid mount config for type \"tmpfs\": field {name} must not be specified"
                ));
            }
            Ok(())
        };
        field("Source")?;
        field("BindOptions")?;
        field("VolumeOptions")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
