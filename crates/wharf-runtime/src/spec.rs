//! Docker container config → OCI runtime spec, as a pure function.
//!
//! The defaults follow what Docker (moby `oci/defaults.go` plus the daemon's additions) hands to
//! runc, so that programs see the same environment under Wharf as under Docker: same mounts, same
//! capability set, same masked and read-only paths, same device allowlist.

mod caps;
mod devices;
mod identity;
mod resources;
mod rlimits;
mod sysctls;
mod tmpfs;

pub use caps::{container_capabilities, validate_capabilities};
pub use devices::{parse_device_cgroup_rule, valid_device_mode, Device};
pub use identity::{check_id, check_uts_name, parse_id, ID_RANGE_MESSAGE, MAX_ID, MAX_UTS_NAME};
pub use resources::{Limits, OciLimits};
pub use rlimits::{rlimits, validate_ulimits, RlimitCeiling, Ulimit, DEFAULT_NOFILE};
pub use sysctls::check_sysctl;
pub use tmpfs::{tmpfs_options, TMPFS_DEFAULTS};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use oci_spec::runtime::{
    Capabilities, Capability, HookBuilder, HooksBuilder, LinuxBuilder, LinuxCapabilitiesBuilder,
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount,
    MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

/// OCI runtime spec version we emit; libcontainer accepts any `1.x`.
pub const OCI_VERSION: &str = "1.2.0";

/// Size of `/dev/shm` in bytes, Docker's default `--shm-size` (64 MiB).
pub const DEFAULT_SHM_SIZE: u64 = 64 * 1024 * 1024;

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Paths Docker hides from unprivileged containers (bind of /dev/null or an empty tmpfs).
pub const DEFAULT_MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker remounts read-only in unprivileged containers.
pub const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// How the container gets one kind of namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NsMode {
    /// A new namespace of its own (for the network: only `lo`; the daemon adds interfaces).
    #[default]
    Private,
    /// The host's (`--network host`, `--pid host`, ...).
    Host,
    /// Another process's, by its `/proc/<pid>/ns/<kind>` path (`--pid container:<id>`).
    Join(PathBuf),
}

/// The namespaces of a container; mount namespaces are always private.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespaces {
    pub net: NsMode,
    pub pid: NsMode,
    pub ipc: NsMode,
    pub uts: NsMode,
    /// Docker's `CgroupnsMode`: private or host (no joining).
    pub cgroup: NsMode,
}

impl Default for Namespaces {
    /// Docker's defaults on a cgroup v1 host: everything private but the cgroup namespace.
    fn default() -> Self {
        Namespaces {
            net: NsMode::Private,
            pid: NsMode::Private,
            ipc: NsMode::Private,
            uts: NsMode::Private,
            cgroup: NsMode::Host,
        }
    }
}

/// What the container's `/dev/shm` is (Docker's IPC modes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shm {
    /// A tmpfs of its own of this many bytes.
    Private(u64),
    /// A bind mount of another `/dev/shm` (the host's, or a donor container's).
    Bind(PathBuf),
    /// No `/dev/shm` at all (`--ipc none`).
    None,
}

impl Default for Shm {
    fn default() -> Self {
        Shm::Private(DEFAULT_SHM_SIZE)
    }
}

/// A tmpfs mount the user asked for (`--tmpfs`, `--mount type=tmpfs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TmpfsMount {
    /// Absolute path inside the container.
    pub destination: String,
    /// The user's comma-separated options; Docker's defaults come first.
    pub data: String,
}

/// A host file or directory bind-mounted into the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub destination: String,
    pub readonly: bool,
    /// Read-only all the way down (`rro`, the submounts too), as dockerd makes a read-only
    /// volume or bind where the kernel can (5.12+); else `ro` on the top mount only.
    pub recursive_readonly: bool,
    /// `bind`, not `rbind`: the submounts of the source are not bound.
    pub non_recursive: bool,
    /// `rprivate` (empty: what the kernel gives a bind, as dockerd leaves a volume's),
    /// `rshared`, `rslave`...
    pub propagation: String,
}

/// The container's createContainer hook setting its binds' propagation (libcontainer binds
/// with `open_tree` and ignores the propagation options): `binary propagate ROOTFS
/// PROPAGATION=DEST...`, run in the container's mount namespace before pivot_root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropagationHook {
    /// `wharf-shim`.
    pub binary: PathBuf,
    /// (propagation, destination) of each bind whose propagation must be set.
    pub mounts: Vec<(String, String)>,
}

/// Everything the daemon decided about a container that the runtime spec needs.
#[derive(Debug, Clone, Default)]
pub struct SpecInput {
    /// Absolute path of the already mounted root filesystem.
    pub rootfs: PathBuf,
    pub args: Vec<String>,
    /// `KEY=value`, already merged with the image env and a default `PATH`.
    pub env: Vec<String>,
    /// Absolute working directory inside the container; empty means `/`.
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub hostname: String,
    pub domainname: String,
    pub namespaces: Namespaces,
    pub bind_mounts: Vec<BindMount>,
    pub tmpfs: Vec<TmpfsMount>,
    /// `linux.rootfsPropagation`: `shared` or `slave` when a bind asks for it (dockerd's rule).
    pub rootfs_propagation: Option<String>,
    pub propagation_hook: Option<PropagationHook>,
    pub shm: Shm,
    /// Cgroup path relative to each hierarchy's root, e.g. `/wharf/<id>`.
    pub cgroups_path: String,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    /// A pty for the process (`docker run -t`); the shim receives its master.
    pub terminal: bool,
    /// `--cap-add`/`--cap-drop` as given (names, `ALL`); ignored when privileged, as in Docker.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub no_new_privileges: bool,
    pub ulimits: Vec<Ulimit>,
    pub rlimit_ceiling: RlimitCeiling,
    pub limits: Limits,
    pub devices: Vec<Device>,
    pub device_cgroup_rules: Vec<String>,
    /// Final values (Docker's defaults already merged with the user's).
    pub sysctls: BTreeMap<String, String>,
    pub oom_score_adj: Option<i32>,
    /// Replace Docker's masked / read-only paths when set (`HostConfig.MaskedPaths`,
    /// `--security-opt systempaths=unconfined` is an empty list).
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    /// `HostConfig.Annotations`, handed to the runtime as OCI annotations.
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("rootfs path must be absolute: {0}")]
    RelativeRootfs(PathBuf),
    #[error("no command specified")]
    NoCommand,
    #[error("working directory must be absolute: {0:?}")]
    RelativeCwd(String),
    #[error("mount destination must be absolute: {0:?}")]
    RelativeMountDestination(String),
    #[error("cgroups path must be absolute: {0:?}")]
    RelativeCgroupsPath(String),
    #[error("invalid environment entry (no '='): {0:?}")]
    InvalidEnv(String),
    /// A uid or gid that `setresuid`/`setgroups` would misread (`(uid_t)-1` is "unchanged").
    #[error("{ID_RANGE_MESSAGE} (got {0})")]
    IdOutOfRange(u32),
    #[error("{0}")]
    UtsName(String),
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),
    #[error("invalid tmpfs option {0:?}")]
    InvalidTmpfsOption(String),
    #[error("{0}")]
    Sysctl(String),
    #[error("{0}")]
    Ulimit(String),
    #[error("{0}")]
    Device(String),
    #[error("building OCI spec: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
}

/// Builds the OCI runtime spec (`config.json`) for one container.
pub fn build_spec(input: &SpecInput) -> Result<Spec, SpecError> {
    validate(input)?;

    let cwd = if input.cwd.is_empty() {
        "/"
    } else {
        input.cwd.as_str()
    };

    let user = UserBuilder::default()
        .uid(input.uid)
        .gid(input.gid)
        .additional_gids(input.additional_gids.clone())
        .build()?;

    let caps = container_capabilities(input.privileged, &input.cap_add, &input.cap_drop)?;
    // Docker stopped filling inheritable (CVE-2022-24769) and never sets ambient: a non-root
    // user gets no capabilities after exec, root keeps bounding/effective/permitted.
    let mut capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()?;
    // The builder starts from oci-spec's own defaults, which fill these two.
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);

    let mut process = ProcessBuilder::default()
        .terminal(input.terminal)
        .user(user)
        .args(input.args.clone())
        .env(input.env.clone())
        .cwd(cwd)
        .capabilities(capabilities)
        .rlimits(rlimits(&input.ulimits, &input.rlimit_ceiling)?)
        .no_new_privileges(input.no_new_privileges)
        .build()?;
    process.set_oom_score_adj(input.oom_score_adj);

    let root = RootBuilder::default()
        .path(input.rootfs.clone())
        .readonly(input.readonly_rootfs)
        .build()?;

    let limits = input.limits.to_oci()?;
    let mut resources = LinuxResourcesBuilder::default().devices(device_cgroup_rules(input)?);
    if let Some(m) = limits.memory {
        resources = resources.memory(m);
    }
    if let Some(c) = limits.cpu {
        resources = resources.cpu(c);
    }
    if let Some(p) = limits.pids {
        resources = resources.pids(p);
    }
    if let Some(b) = limits.block_io {
        resources = resources.block_io(b);
    }
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces(&input.namespaces)?)
        .resources(resources.build()?)
        .devices(devices(input)?)
        .cgroups_path(PathBuf::from(&input.cgroups_path));
    if !input.sysctls.is_empty() {
        linux = linux.sysctl(
            input
                .sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<std::collections::HashMap<_, _>>(),
        );
    }
    let mut linux = linux.build()?;
    linux.set_rootfs_propagation(input.rootfs_propagation.clone());
    // oci-spec's defaults (runc's) would mask paths even for privileged containers.
    linux.set_masked_paths(None);
    linux.set_readonly_paths(None);
    if !input.privileged {
        linux.set_masked_paths(Some(
            input
                .masked_paths
                .clone()
                .unwrap_or_else(|| DEFAULT_MASKED_PATHS.map(String::from).to_vec()),
        ));
        linux.set_readonly_paths(Some(
            input
                .readonly_paths
                .clone()
                .unwrap_or_else(|| DEFAULT_READONLY_PATHS.map(String::from).to_vec()),
        ));
    }
    if linux.sysctl().as_ref().is_some_and(|m| m.is_empty()) {
        linux.set_sysctl(None);
    }

    let mut spec = SpecBuilder::default()
        .version(OCI_VERSION)
        .root(root)
        .mounts(mounts(input)?)
        .process(process)
        .linux(linux)
        .build()?;
    if let Some(h) = input
        .propagation_hook
        .as_ref()
        .filter(|h| !h.mounts.is_empty())
    {
        let mut args = vec![
            "wharf-shim".to_string(),
            "propagate".into(),
            input.rootfs.to_string_lossy().into_owned(),
        ];
        args.extend(h.mounts.iter().map(|(p, d)| format!("{p}={d}")));
        let hook = HookBuilder::default()
            .path(h.binary.clone())
            .args(args)
            .build()?;
        spec.set_hooks(Some(
            HooksBuilder::default()
                .create_container(vec![hook])
                .build()?,
        ));
    }
    // oci-spec's defaults would name the host "youki" and add an empty annotation map. The
    // runtime refuses a hostname without a UTS namespace of the container's own.
    let own_uts = input.namespaces.uts == NsMode::Private;
    spec.set_hostname((own_uts && !input.hostname.is_empty()).then(|| input.hostname.clone()));
    spec.set_domainname(
        (own_uts && !input.domainname.is_empty()).then(|| input.domainname.clone()),
    );
    spec.set_annotations((!input.annotations.is_empty()).then(|| {
        input
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }));
    Ok(spec)
}

fn validate(input: &SpecInput) -> Result<(), SpecError> {
    if !input.rootfs.is_absolute() {
        return Err(SpecError::RelativeRootfs(input.rootfs.clone()));
    }
    if input.args.is_empty() || input.args[0].is_empty() {
        return Err(SpecError::NoCommand);
    }
    if !input.cwd.is_empty() && !input.cwd.starts_with('/') {
        return Err(SpecError::RelativeCwd(input.cwd.clone()));
    }
    if !input.cgroups_path.is_empty() && !input.cgroups_path.starts_with('/') {
        // libcontainer reads a relative path as a systemd slice spec, which we never use.
        return Err(SpecError::RelativeCgroupsPath(input.cgroups_path.clone()));
    }
    if let Some(bad) = input.env.iter().find(|e| !e.contains('=')) {
        return Err(SpecError::InvalidEnv(bad.clone()));
    }
    check_ids(input.uid, input.gid, &input.additional_gids)?;
    check_uts_name("Hostname", &input.hostname).map_err(SpecError::UtsName)?;
    check_uts_name("Domainname", &input.domainname).map_err(SpecError::UtsName)?;
    let destinations = input
        .bind_mounts
        .iter()
        .map(|m| &m.destination)
        .chain(input.tmpfs.iter().map(|m| &m.destination))
        .chain(input.devices.iter().map(|d| &d.path));
    if let Some(bad) = destinations.into_iter().find(|d| !d.starts_with('/')) {
        return Err(SpecError::RelativeMountDestination(bad.clone()));
    }
    Ok(())
}

fn check_ids(uid: u32, gid: u32, additional: &[u32]) -> Result<(), SpecError> {
    for id in [uid, gid].iter().chain(additional) {
        check_id(*id).map_err(|_| SpecError::IdOutOfRange(*id))?;
    }
    Ok(())
}

fn namespaces(ns: &Namespaces) -> Result<Vec<LinuxNamespace>, SpecError> {
    let all = [
        (LinuxNamespaceType::Pid, &ns.pid),
        (LinuxNamespaceType::Ipc, &ns.ipc),
        (LinuxNamespaceType::Uts, &ns.uts),
        (LinuxNamespaceType::Mount, &NsMode::Private),
        (LinuxNamespaceType::Network, &ns.net),
        (LinuxNamespaceType::Cgroup, &ns.cgroup),
    ];
    let mut out = Vec::new();
    for (typ, mode) in all {
        let b = LinuxNamespaceBuilder::default().typ(typ);
        match mode {
            NsMode::Host => {}
            NsMode::Private => out.push(b.build()?),
            NsMode::Join(path) => out.push(b.path(path.clone()).build()?),
        }
    }
    Ok(out)
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()?)
}

fn mounts(input: &SpecInput) -> Result<Vec<Mount>, SpecError> {
    // Privileged containers get writable sysfs and cgroupfs, as in Docker.
    let sys_mode = if input.privileged { "rw" } else { "ro" };
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", sys_mode],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
    ];
    match &input.shm {
        Shm::Private(size) => out.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &[
                "nosuid",
                "noexec",
                "nodev",
                "mode=1777",
                &format!("size={size}"),
            ],
        )?),
        Shm::Bind(source) => out.push(
            MountBuilder::default()
                .destination("/dev/shm")
                .typ("bind")
                .source(source.clone())
                .options(vec!["rbind".to_string(), "rprivate".to_string()])
                .build()?,
        ),
        Shm::None => {}
    }
    // The user's mounts replace a default at the same place (dockerd's rule), and go after
    // the defaults, shallow before deep, so that none hides another.
    let mut user: Vec<Mount> = Vec::new();
    for b in &input.bind_mounts {
        // dockerd's order: the bind, read-only, the propagation.
        let mut options = vec![if b.non_recursive { "bind" } else { "rbind" }.to_string()];
        if b.readonly {
            options.push(if b.recursive_readonly { "rro" } else { "ro" }.to_string());
        }
        if !b.propagation.is_empty() {
            options.push(b.propagation.clone());
        }
        user.push(
            MountBuilder::default()
                .destination(b.destination.as_str())
                .typ("bind")
                .source(b.source.clone())
                .options(options)
                .build()?,
        );
    }
    for t in &input.tmpfs {
        user.push(
            MountBuilder::default()
                .destination(t.destination.as_str())
                .typ("tmpfs")
                .source("tmpfs")
                .options(tmpfs_options(&t.data)?)
                .build()?,
        );
    }
    let depth = |m: &Mount| m.destination().components().count();
    user.sort_by_key(depth);
    out.retain(|d| {
        !user.iter().any(|u| {
            u.destination() == d.destination()
                || (u.destination() == std::path::Path::new("/dev")
                    && d.destination().starts_with("/dev"))
        })
    });
    out.extend(user);
    Ok(out)
}

/// The device nodes every Docker container gets: (path, major, minor).
pub const DEFAULT_DEVICES: [(&str, i64, i64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn devices(input: &SpecInput) -> Result<Vec<LinuxDevice>, SpecError> {
    let mut out: Vec<LinuxDevice> = DEFAULT_DEVICES
        .iter()
        .map(|&(path, major, minor)| {
            Ok(LinuxDeviceBuilder::default()
                .path(path)
                .typ(LinuxDeviceType::C)
                .major(major)
                .minor(minor)
                .file_mode(0o666u32)
                .uid(0u32)
                .gid(0u32)
                .build()?)
        })
        .collect::<Result<_, SpecError>>()?;
    for d in &input.devices {
        // A user device at a default's path replaces it.
        out.retain(|x| x.path() != std::path::Path::new(&d.path));
        out.push(
            LinuxDeviceBuilder::default()
                .path(d.path.as_str())
                .typ(devices::device_type(d.kind)?)
                .major(d.major)
                .minor(d.minor)
                .file_mode(d.file_mode)
                .uid(d.uid)
                .gid(d.gid)
                .build()?,
        );
    }
    Ok(out)
}

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup, SpecError> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access);
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    Ok(b.build()?)
}

fn device_cgroup_rules(input: &SpecInput) -> Result<Vec<LinuxDeviceCgroup>, SpecError> {
    use LinuxDeviceType::{A, B, C};
    if input.privileged {
        return Ok(vec![rule(true, A, None, None, "rwm")?]);
    }
    let mut rules = vec![
        rule(false, A, None, None, "rwm")?,
        // mknod of any node is allowed (CAP_MKNOD is in the default set); using it is not.
        rule(true, C, None, None, "m")?,
        rule(true, B, None, None, "m")?,
    ];
    for &(_, major, minor) in &DEFAULT_DEVICES {
        rules.push(rule(true, C, Some(major), Some(minor), "rwm")?);
    }
    // /dev/pts/* and /dev/pts/ptmx, for the devpts instance we mount.
    rules.push(rule(true, C, Some(136), None, "rwm")?);
    rules.push(rule(true, C, Some(5), Some(2), "rwm")?);
    for d in &input.devices {
        rules.push(rule(
            true,
            devices::device_type(d.kind)?,
            Some(d.major),
            Some(d.minor),
            &d.access,
        )?);
    }
    for r in &input.device_cgroup_rules {
        rules.push(parse_device_cgroup_rule(r)?);
    }
    Ok(rules)
}

/// What `--privileged` grants: every capability this process may pass on. A daemon whose own
/// bounding set lacks some (a sandbox without CAP_SYS_RESOURCE, say) cannot give them, and
/// asking makes the runtime's capset fail; Docker then fails every privileged start, Wharf
/// grants the rest.
pub fn privileged_capabilities() -> Capabilities {
    let mut caps = all_capabilities();
    if let Some(bounding) = own_bounding_set() {
        caps.retain(|c| {
            let bit = capability_number(*c);
            bit < 64 && bounding & (1u64 << bit) != 0
        });
    }
    caps
}

fn own_bounding_set() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// The kernel's number of a capability (`CAP_*` in linux/capability.h).
fn capability_number(c: Capability) -> u32 {
    use Capability::*;
    match c {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
    }
}

/// Every capability the kernel knows.
pub fn all_capabilities() -> Capabilities {
    use Capability::*;
    let all = [
        AuditControl,
        AuditRead,
        AuditWrite,
        BlockSuspend,
        Bpf,
        CheckpointRestore,
        Chown,
        DacOverride,
        DacReadSearch,
        Fowner,
        Fsetid,
        IpcLock,
        IpcOwner,
        Kill,
        Lease,
        LinuxImmutable,
        MacAdmin,
        MacOverride,
        Mknod,
        NetAdmin,
        NetBindService,
        NetBroadcast,
        NetRaw,
        Perfmon,
        Setgid,
        Setfcap,
        Setpcap,
        Setuid,
        SysAdmin,
        SysBoot,
        SysChroot,
        SysModule,
        SysNice,
        SysPacct,
        SysPtrace,
        SysRawio,
        SysResource,
        SysTime,
        SysTtyConfig,
        Syslog,
        WakeAlarm,
    ];
    all.into_iter().collect::<HashSet<_>>()
}

/// A user inside the container, already resolved against its `/etc/passwd` and `/etc/group`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// What `docker exec` asks for on top of the container's own process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecInput {
    pub args: Vec<String>,
    /// `KEY=value` sets or replaces a variable; a bare `KEY` unsets it (dockerd's
    /// `ReplaceOrAppendEnvValues`).
    pub env: Vec<String>,
    /// Empty keeps the container's working directory.
    pub cwd: String,
    /// `None` keeps the container's user.
    pub user: Option<ExecUser>,
    /// A pty for the process (`docker exec -t`).
    pub terminal: bool,
    /// `docker exec --privileged`: every capability, whatever the container has.
    pub privileged: bool,
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

/// `base` with `entries` applied in order: `K=V` replaces the first `K` or is appended, a bare
/// `K` removes every `K` so far. Linear (a map from each name to the slots holding it): a
/// search per entry made a 100k-entry env take minutes.
pub fn apply_env(base: Vec<String>, entries: &[String]) -> Vec<String> {
    let mut slots: Vec<Option<String>> = base.into_iter().map(Some).collect();
    let mut at: HashMap<String, Vec<usize>> = HashMap::with_capacity(slots.len());
    for (i, e) in slots.iter().enumerate() {
        if let Some(e) = e {
            at.entry(env_key(e).to_string()).or_default().push(i);
        }
    }
    for kv in entries {
        match kv.split_once('=') {
            Some((k, _)) => match at.get(k).and_then(|is| is.first()) {
                Some(&i) => slots[i] = Some(kv.clone()),
                None => {
                    at.insert(k.to_string(), vec![slots.len()]);
                    slots.push(Some(kv.clone()));
                }
            },
            None => {
                for i in at.remove(kv.as_str()).unwrap_or_default() {
                    slots[i] = None;
                }
            }
        }
    }
    slots.into_iter().flatten().collect()
}

/// The OCI process of an exec: the container's own (rlimits, capabilities, env, user, cwd, as
/// `build_spec` made them) with the exec's command, environment, working directory, user, TTY
/// and, when privileged, capabilities. Like dockerd, a TTY exec gets `TERM=xterm` unless the
/// environment already names `TERM`.
pub fn exec_process(
    base: &oci_spec::runtime::Process,
    input: &ExecInput,
) -> Result<oci_spec::runtime::Process, SpecError> {
    if input.args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    let mut p = base.clone();
    p.set_args(Some(input.args.clone()));

    let mut env = base.env().clone().unwrap_or_default();
    if input.terminal && !env.iter().any(|e| env_key(e) == "TERM") {
        env.push("TERM=xterm".into());
    }
    p.set_env(Some(apply_env(env, &input.env)));

    if !input.cwd.is_empty() {
        p.set_cwd(PathBuf::from(&input.cwd));
    }
    if let Some(u) = &input.user {
        check_ids(u.uid, u.gid, &u.additional_gids)?;
        let mut user = p.user().clone();
        user.set_uid(u.uid);
        user.set_gid(u.gid);
        user.set_additional_gids(Some(u.additional_gids.clone()));
        p.set_user(user);
    }
    p.set_terminal(Some(input.terminal));
    // The container's console size belongs to its own pty; the exec's is set on its master.
    p.set_console_size(None);
    if input.privileged {
        let all = privileged_capabilities();
        let mut caps = LinuxCapabilitiesBuilder::default()
            .bounding(all.clone())
            .effective(all.clone())
            .permitted(all)
            .build()?;
        // As in `build_spec` (and dockerd's exec): neither inheritable nor ambient.
        caps.set_inheritable(None);
        caps.set_ambient(None);
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SpecInput {
        SpecInput {
            rootfs: "/var/lib/wharf/rootfs/abc".into(),
            args: vec!["sh".into(), "-c".into(), "echo hi".into()],
            env: vec!["PATH=/usr/bin:/bin".into(), "FOO=bar".into()],
            cwd: "/work".into(),
            uid: 1000,
            gid: 1001,
            additional_gids: vec![10, 20],
            hostname: "abc123".into(),
            bind_mounts: vec![
                BindMount {
                    source: "/var/lib/wharf/containers/abc/hosts".into(),
                    destination: "/etc/hosts".into(),
                    propagation: "rprivate".into(),
                    ..Default::default()
                },
                BindMount {
                    source: "/var/lib/wharf/containers/abc/resolv.conf".into(),
                    destination: "/etc/resolv.conf".into(),
                    readonly: true,
                    propagation: "rprivate".into(),
                    ..Default::default()
                },
            ],
            cgroups_path: "/wharf/abc".into(),
            readonly_rootfs: false,
            privileged: false,
            terminal: false,
            ..Default::default()
        }
    }

    fn ns_types(spec: &Spec) -> Vec<LinuxNamespaceType> {
        spec.linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect()
    }

    fn find_mount<'a>(spec: &'a Spec, dest: &str) -> &'a Mount {
        spec.mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == &PathBuf::from(dest))
            .unwrap_or_else(|| panic!("no mount at {dest}"))
    }

    fn opts(m: &Mount) -> Vec<&str> {
        m.options()
            .as_ref()
            .unwrap()
            .iter()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn process_fields() {
        let spec = build_spec(&input()).unwrap();
        assert!(spec.version().starts_with("1."));
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &input().args);
        assert_eq!(p.env().as_ref().unwrap(), &input().env);
        assert_eq!(p.cwd(), &PathBuf::from("/work"));
        assert_eq!(p.terminal(), Some(false));
        assert_eq!(p.no_new_privileges(), Some(false));
        assert_eq!(p.user().uid(), 1000);
        assert_eq!(p.user().gid(), 1001);
        assert_eq!(p.user().additional_gids().as_ref().unwrap(), &vec![10, 20]);
        let rl = p.rlimits().as_ref().unwrap();
        assert_eq!(rl.len(), 1);
        assert_eq!(
            rl[0].typ(),
            oci_spec::runtime::PosixRlimitType::RlimitNofile
        );
        assert_eq!(rl[0].soft(), 1_048_576);
        assert_eq!(rl[0].hard(), 1_048_576);
        assert_eq!(spec.hostname().as_deref(), Some("abc123"));
        let root = spec.root().as_ref().unwrap();
        assert_eq!(root.path(), &PathBuf::from("/var/lib/wharf/rootfs/abc"));
        assert_eq!(root.readonly(), Some(false));
    }

    #[test]
    fn empty_cwd_defaults_to_root_and_readonly_rootfs() {
        let mut i = input();
        i.cwd.clear();
        i.readonly_rootfs = true;
        let spec = build_spec(&i).unwrap();
        assert_eq!(spec.process().as_ref().unwrap().cwd(), &PathBuf::from("/"));
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    }

    #[test]
    fn capabilities_are_dockers_defaults() {
        let spec = build_spec(&input()).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        let want: Capabilities = DEFAULT_CAPABILITIES.iter().copied().collect();
        assert_eq!(want.len(), 14);
        assert_eq!(caps.bounding().as_ref().unwrap(), &want);
        assert_eq!(caps.effective().as_ref().unwrap(), &want);
        assert_eq!(caps.permitted().as_ref().unwrap(), &want);
        assert!(caps.inheritable().is_none());
        assert!(caps.ambient().is_none());
        assert!(!want.contains(&Capability::SysAdmin));
        assert!(!want.contains(&Capability::NetAdmin));
    }

    #[test]
    fn namespaces_new_netns_and_host() {
        let spec = build_spec(&input()).unwrap();
        let ns = ns_types(&spec);
        for t in [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Network,
        ] {
            assert!(ns.contains(&t), "missing {t:?}");
        }
        assert_eq!(ns.len(), 5);
        assert!(spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .all(|n| n.path().is_none()));

        let mut i = input();
        i.namespaces.net = NsMode::Host;
        let ns = ns_types(&build_spec(&i).unwrap());
        assert!(!ns.contains(&LinuxNamespaceType::Network));
        assert_eq!(ns.len(), 4);
    }

    #[test]
    fn default_mounts() {
        let spec = build_spec(&input()).unwrap();
        let proc_ = find_mount(&spec, "/proc");
        assert_eq!(proc_.typ().as_deref(), Some("proc"));

        let dev = find_mount(&spec, "/dev");
        assert_eq!(dev.typ().as_deref(), Some("tmpfs"));
        let o = opts(dev);
        for want in ["nosuid", "strictatime", "mode=755", "size=65536k"] {
            assert!(o.contains(&want), "/dev missing {want}");
        }

        let pts = opts(find_mount(&spec, "/dev/pts"));
        for want in ["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] {
            assert!(pts.contains(&want), "/dev/pts missing {want}");
        }
        assert_eq!(
            find_mount(&spec, "/dev/pts").typ().as_deref(),
            Some("devpts")
        );

        let shm = find_mount(&spec, "/dev/shm");
        assert_eq!(shm.typ().as_deref(), Some("tmpfs"));
        let o = opts(shm);
        for want in ["nosuid", "noexec", "nodev", "size=67108864"] {
            assert!(o.contains(&want), "/dev/shm missing {want}");
        }

        assert_eq!(
            find_mount(&spec, "/dev/mqueue").typ().as_deref(),
            Some("mqueue")
        );
        let sys = find_mount(&spec, "/sys");
        assert_eq!(sys.typ().as_deref(), Some("sysfs"));
        let o = opts(sys);
        for want in ["ro", "nosuid", "noexec", "nodev"] {
            assert!(o.contains(&want), "/sys missing {want}");
        }
        let cg = find_mount(&spec, "/sys/fs/cgroup");
        assert_eq!(cg.typ().as_deref(), Some("cgroup"));
        assert!(opts(cg).contains(&"ro"));

        // /sys must come before /sys/fs/cgroup, /dev before everything under it.
        let dests: Vec<_> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().to_string_lossy().into_owned())
            .collect();
        let pos = |d: &str| dests.iter().position(|x| x == d).unwrap();
        assert!(pos("/sys") < pos("/sys/fs/cgroup"));
        assert!(pos("/dev") < pos("/dev/pts"));
        assert!(pos("/dev") < pos("/dev/shm"));
        assert!(pos("/dev") < pos("/dev/mqueue"));
    }

    #[test]
    fn bind_mounts_are_rbind_rprivate() {
        let spec = build_spec(&input()).unwrap();
        let hosts = find_mount(&spec, "/etc/hosts");
        assert_eq!(hosts.typ().as_deref(), Some("bind"));
        assert_eq!(
            hosts.source().as_ref().unwrap(),
            &PathBuf::from("/var/lib/wharf/containers/abc/hosts")
        );
        assert_eq!(opts(hosts), vec!["rbind", "rprivate"]);
        let resolv = find_mount(&spec, "/etc/resolv.conf");
        assert_eq!(opts(resolv), vec!["rbind", "ro", "rprivate"]);
        // Bind mounts come after the defaults so they are not hidden by them.
        let last = spec.mounts().as_ref().unwrap().last().unwrap();
        assert_eq!(last.destination(), &PathBuf::from("/etc/resolv.conf"));
    }

    #[test]
    fn user_binds_carry_dockerds_options_and_a_propagation_hook() {
        let mut i = input();
        i.bind_mounts.push(BindMount {
            source: "/srv".into(),
            destination: "/data".into(),
            readonly: true,
            recursive_readonly: true,
            propagation: "rshared".into(),
            ..Default::default()
        });
        i.bind_mounts.push(BindMount {
            source: "/vol".into(),
            destination: "/v".into(),
            non_recursive: true,
            ..Default::default()
        });
        i.rootfs_propagation = Some("shared".into());
        i.propagation_hook = Some(PropagationHook {
            binary: "/usr/bin/wharf-shim".into(),
            mounts: vec![("rshared".into(), "/data".into())],
        });
        let spec = build_spec(&i).unwrap();
        assert_eq!(
            opts(find_mount(&spec, "/data")),
            vec!["rbind", "rro", "rshared"]
        );
        assert_eq!(opts(find_mount(&spec, "/v")), vec!["bind"]);
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(linux.rootfs_propagation().as_deref(), Some("shared"));
        let hooks = spec
            .hooks()
            .as_ref()
            .unwrap()
            .create_container()
            .as_ref()
            .unwrap();
        assert_eq!(hooks[0].path(), &PathBuf::from("/usr/bin/wharf-shim"));
        assert_eq!(
            hooks[0].args().as_ref().unwrap(),
            &vec![
                "wharf-shim".to_string(),
                "propagate".into(),
                i.rootfs.to_string_lossy().into_owned(),
                "rshared=/data".into()
            ]
        );
        // No hook when nothing needs one.
        i.propagation_hook = None;
        assert!(build_spec(&i).unwrap().hooks().is_none());
    }

    #[test]
    fn masked_and_readonly_paths() {
        let spec = build_spec(&input()).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let masked = linux.masked_paths().as_ref().unwrap();
        for p in ["/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/scsi"] {
            assert!(masked.iter().any(|m| m == p), "not masked: {p}");
        }
        let ro = linux.readonly_paths().as_ref().unwrap();
        assert_eq!(
            ro,
            &vec![
                "/proc/bus".to_string(),
                "/proc/fs".into(),
                "/proc/irq".into(),
                "/proc/sys".into(),
                "/proc/sysrq-trigger".into()
            ]
        );
    }

    #[test]
    fn devices_and_cgroup_rules() {
        let spec = build_spec(&input()).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let devs = linux.devices().as_ref().unwrap();
        let paths: Vec<_> = devs
            .iter()
            .map(|d| d.path().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            paths,
            vec![
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty"
            ]
        );
        assert!(devs
            .iter()
            .all(|d| d.typ() == LinuxDeviceType::C && d.file_mode() == Some(0o666)));
        let null = &devs[0];
        assert_eq!((null.major(), null.minor()), (1, 3));

        let rules = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap();
        assert!(!rules[0].allow());
        assert_eq!(rules[0].typ(), Some(LinuxDeviceType::A));
        assert_eq!(rules[0].access().as_deref(), Some("rwm"));
        assert!(rules[0].major().is_none() && rules[0].minor().is_none());
        for &(path, major, minor) in &DEFAULT_DEVICES {
            assert!(
                rules.iter().any(|r| r.allow()
                    && r.typ() == Some(LinuxDeviceType::C)
                    && r.major() == Some(major)
                    && r.minor() == Some(minor)
                    && r.access().as_deref() == Some("rwm")),
                "no allow rule for {path}"
            );
        }
        assert_eq!(
            linux.cgroups_path().as_ref().unwrap(),
            &PathBuf::from("/wharf/abc")
        );
    }

    #[test]
    fn privileged_gets_everything() {
        let mut i = input();
        i.privileged = true;
        let spec = build_spec(&i).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.masked_paths().is_none());
        assert!(linux.readonly_paths().is_none());
        let rules = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap();
        assert_eq!(rules.len(), 1);
        assert!(rules[0].allow());
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
        assert!(opts(find_mount(&spec, "/sys")).contains(&"rw"));
    }

    #[test]
    fn serializes_with_oci_field_names() {
        let spec = build_spec(&input()).unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(v["linux"]["cgroupsPath"], "/wharf/abc");
        assert_eq!(v["process"]["user"]["additionalGids"][1], 20);
        assert_eq!(v["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(v["linux"]["maskedPaths"][0], "/proc/asound");
        assert!(v["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "CAP_NET_BIND_SERVICE"));
        // Round trip: what we write is what libcontainer will read.
        let back: Spec = serde_json::from_value(v).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn rejects_bad_input() {
        let mut i = input();
        i.rootfs = "rel/rootfs".into();
        assert!(matches!(build_spec(&i), Err(SpecError::RelativeRootfs(_))));

        let mut i = input();
        i.args.clear();
        assert!(matches!(build_spec(&i), Err(SpecError::NoCommand)));

        let mut i = input();
        i.cwd = "work".into();
        assert!(matches!(build_spec(&i), Err(SpecError::RelativeCwd(_))));

        let mut i = input();
        i.bind_mounts[0].destination = "etc/hosts".into();
        assert!(matches!(
            build_spec(&i),
            Err(SpecError::RelativeMountDestination(_))
        ));

        let mut i = input();
        i.env.push("NOEQUALS".into());
        assert!(matches!(build_spec(&i), Err(SpecError::InvalidEnv(_))));

        let mut i = input();
        i.cgroups_path = "wharf/abc".into();
        assert!(matches!(
            build_spec(&i),
            Err(SpecError::RelativeCgroupsPath(_))
        ));
    }

    #[test]
    fn limits_become_cgroup_resources() {
        let mut i = input();
        i.limits = Limits {
            memory: Some(16 << 20),
            memory_swap: Some(32 << 20),
            cpu_shares: Some(512),
            cpu_period: Some(100_000),
            cpu_quota: Some(50_000),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some(5),
            ..Default::default()
        };
        let v = serde_json::to_value(build_spec(&i).unwrap()).unwrap();
        let r = &v["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 16 << 20);
        assert_eq!(r["memory"]["swap"], 32 << 20);
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["cpu"]["quota"], 50_000);
        assert_eq!(r["cpu"]["cpus"], "0");
        assert_eq!(r["pids"]["limit"], 5);
        assert!(r.get("blockIO").is_none());
        // Nothing asked, nothing limited.
        let v = serde_json::to_value(build_spec(&input()).unwrap()).unwrap();
        assert!(v["linux"]["resources"].get("memory").is_none());
        assert!(v["linux"]["resources"].get("pids").is_none());
    }

    #[test]
    fn shared_and_joined_namespaces() {
        let mut i = input();
        i.namespaces.pid = NsMode::Host;
        i.namespaces.ipc = NsMode::Join("/proc/42/ns/ipc".into());
        i.namespaces.uts = NsMode::Host;
        i.namespaces.cgroup = NsMode::Private;
        i.domainname = "example.org".into();
        let spec = build_spec(&i).unwrap();
        let ns = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(!ns.iter().any(|n| n.typ() == LinuxNamespaceType::Pid));
        assert!(!ns.iter().any(|n| n.typ() == LinuxNamespaceType::Uts));
        let ipc = ns
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Ipc)
            .unwrap();
        assert_eq!(
            ipc.path().as_deref(),
            Some(std::path::Path::new("/proc/42/ns/ipc"))
        );
        assert!(ns.iter().any(|n| n.typ() == LinuxNamespaceType::Cgroup));
        // No hostname without a UTS namespace of its own.
        assert!(spec.hostname().is_none() && spec.domainname().is_none());
        i.namespaces.uts = NsMode::Private;
        assert_eq!(
            build_spec(&i).unwrap().domainname().as_deref(),
            Some("example.org")
        );
    }

    #[test]
    fn tmpfs_and_shm() {
        let mut i = input();
        i.tmpfs = vec![
            TmpfsMount {
                destination: "/run/deep/er".into(),
                data: "size=1m".into(),
            },
            TmpfsMount {
                destination: "/run".into(),
                data: "exec".into(),
            },
        ];
        i.shm = Shm::Private(1 << 20);
        let spec = build_spec(&i).unwrap();
        let run = find_mount(&spec, "/run");
        assert_eq!(run.typ().as_deref(), Some("tmpfs"));
        assert_eq!(opts(run), ["nosuid", "nodev", "rprivate", "exec"]);
        let dests: Vec<_> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().to_string_lossy().into_owned())
            .collect();
        let pos = |d: &str| dests.iter().position(|x| x == d).unwrap();
        assert!(pos("/run") < pos("/run/deep/er"));
        assert!(opts(find_mount(&spec, "/dev/shm")).contains(&"size=1048576"));

        i.shm = Shm::None;
        let spec = build_spec(&i).unwrap();
        assert!(!spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.destination() == std::path::Path::new("/dev/shm")));
        // A user tmpfs at /dev/shm replaces the default one.
        i.shm = Shm::default();
        i.tmpfs = vec![TmpfsMount {
            destination: "/dev/shm".into(),
            data: "size=2m".into(),
        }];
        let spec = build_spec(&i).unwrap();
        let shms: Vec<_> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|m| m.destination() == std::path::Path::new("/dev/shm"))
            .collect();
        assert_eq!(shms.len(), 1);
        assert!(opts(shms[0]).contains(&"size=2m"));
    }

    #[test]
    fn devices_sysctls_caps_and_process_options() {
        let mut i = input();
        i.devices = vec![Device {
            path: "/dev/fuse".into(),
            kind: 'c',
            major: 10,
            minor: 229,
            file_mode: 0o666,
            uid: 0,
            gid: 0,
            access: "rw".into(),
        }];
        i.device_cgroup_rules = vec!["c 42:* rmw".into()];
        i.sysctls = [("net.ipv4.ip_forward".to_string(), "1".to_string())].into();
        i.cap_drop = vec!["ALL".into()];
        i.cap_add = vec!["net_admin".into()];
        i.no_new_privileges = true;
        i.oom_score_adj = Some(500);
        i.masked_paths = Some(vec![]);
        let v = serde_json::to_value(build_spec(&i).unwrap()).unwrap();
        assert!(v["linux"]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["path"] == "/dev/fuse" && d["major"] == 10));
        let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
        assert!(rules
            .iter()
            .any(|r| r["major"] == 10 && r["minor"] == 229 && r["access"] == "rw"));
        assert!(rules
            .iter()
            .any(|r| r["major"] == 42 && r.get("minor").is_none()));
        assert_eq!(v["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
        assert_eq!(
            v["process"]["capabilities"]["bounding"],
            serde_json::json!(["CAP_NET_ADMIN"])
        );
        assert_eq!(v["process"]["noNewPrivileges"], true);
        assert_eq!(v["process"]["oomScoreAdj"], 500);
        assert_eq!(v["linux"]["maskedPaths"], serde_json::json!([]));
        assert!(!v["linux"]["readonlyPaths"].as_array().unwrap().is_empty());
    }

    #[test]
    fn empty_hostname_is_omitted() {
        let mut i = input();
        i.hostname.clear();
        assert!(build_spec(&i).unwrap().hostname().is_none());
    }

    fn exec_base() -> oci_spec::runtime::Process {
        build_spec(&input()).unwrap().process().clone().unwrap()
    }

    fn exec_input(args: &[&str]) -> ExecInput {
        ExecInput {
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn apply_env_replaces_appends_and_unsets_in_order() {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let out = apply_env(
            v(&["PATH=/bin", "A=1", "B=1", "A=dup"]),
            &v(&["A=2", "C=1", "B", "C=2", "B=3"]),
        );
        assert_eq!(out, v(&["PATH=/bin", "A=2", "A=dup", "C=2", "B=3"]));
        // A bare name removes every copy, so a later set appends.
        assert_eq!(
            apply_env(v(&["A=1", "A=2"]), &v(&["A", "A=3"])),
            v(&["A=3"])
        );
    }

    #[test]
    fn apply_env_of_100k_entries_is_linear() {
        let big: Vec<String> = (0..100_000).map(|i| format!("V{i}={i}")).collect();
        let over: Vec<String> = (0..100_000).map(|i| format!("V{i}=x")).collect();
        let out = apply_env(big, &over);
        assert_eq!(out.len(), 100_000);
        assert!(out.iter().all(|e| e.ends_with("=x")));
    }

    #[test]
    fn exec_process_keeps_the_container_process_but_the_command() {
        let base = exec_base();
        let p = exec_process(&base, &exec_input(&["ls", "-l"])).unwrap();
        assert_eq!(
            p.args().as_deref(),
            Some(&["ls".to_string(), "-l".to_string()][..])
        );
        assert_eq!(p.env(), base.env());
        assert_eq!(p.cwd(), base.cwd());
        assert_eq!(p.user(), base.user());
        assert_eq!(p.rlimits(), base.rlimits());
        assert_eq!(p.capabilities(), base.capabilities());
        assert_eq!(p.terminal(), Some(false));
        assert!(matches!(
            exec_process(&base, &exec_input(&[])),
            Err(SpecError::NoCommand)
        ));
    }

    #[test]
    fn exec_env_sets_replaces_and_unsets() {
        let mut i = exec_input(&["env"]);
        i.env = vec![
            "FOO=baz".into(),
            "NEW=1".into(),
            "PATH".into(),
            "NOSUCH".into(),
        ];
        let p = exec_process(&exec_base(), &i).unwrap();
        assert_eq!(
            p.env().clone().unwrap(),
            ["FOO=baz".to_string(), "NEW=1".to_string()]
        );
    }

    #[test]
    fn exec_tty_gets_term_unless_set() {
        let mut i = exec_input(&["sh"]);
        i.terminal = true;
        let p = exec_process(&exec_base(), &i).unwrap();
        assert_eq!(p.terminal(), Some(true));
        assert!(p.env().clone().unwrap().contains(&"TERM=xterm".to_string()));
        i.env = vec!["TERM=vt100".into()];
        let env = exec_process(&exec_base(), &i)
            .unwrap()
            .env()
            .clone()
            .unwrap();
        assert_eq!(env.iter().filter(|e| e.starts_with("TERM=")).count(), 1);
        assert!(env.contains(&"TERM=vt100".to_string()));
        i.terminal = false;
        i.env.clear();
        let env = exec_process(&exec_base(), &i)
            .unwrap()
            .env()
            .clone()
            .unwrap();
        assert!(!env.iter().any(|e| e.starts_with("TERM=")));
    }

    #[test]
    fn exec_cwd_and_user() {
        let mut i = exec_input(&["id"]);
        i.cwd = "/tmp".into();
        i.user = Some(ExecUser {
            uid: 0,
            gid: 29,
            additional_gids: vec![],
        });
        let p = exec_process(&exec_base(), &i).unwrap();
        assert_eq!(p.cwd(), &PathBuf::from("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (0, 29));
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[][..]));
        // Unset, the container's stay.
        let p = exec_process(&exec_base(), &exec_input(&["id"])).unwrap();
        assert_eq!(p.cwd(), &PathBuf::from("/work"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[10, 20][..]));
    }

    #[test]
    fn exec_privileged_gets_every_capability() {
        let mut i = exec_input(&["sh"]);
        i.privileged = true;
        let p = exec_process(&exec_base(), &i).unwrap();
        let caps = p.capabilities().clone().unwrap();
        let all = privileged_capabilities();
        assert_eq!(caps.bounding().as_ref(), Some(&all));
        assert_eq!(caps.effective().as_ref(), Some(&all));
        assert_eq!(caps.permitted().as_ref(), Some(&all));
        assert!(caps.inheritable().is_none() && caps.ambient().is_none());
        // Not privileged: the container's default set, without CAP_SYS_ADMIN.
        let caps = exec_process(&exec_base(), &exec_input(&["sh"]))
            .unwrap()
            .capabilities()
            .clone()
            .unwrap();
        assert!(!caps
            .effective()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
    }

    /// `(uid_t)-1` means "unchanged" to setresuid: a spec carrying it would run as root.
    #[test]
    fn no_id_the_kernel_reads_as_unchanged_reaches_a_spec() {
        for (uid, gid, extra) in [
            (u32::MAX, 0, vec![]),
            (0, u32::MAX, vec![]),
            (1000, 1000, vec![u32::MAX]),
            (MAX_ID + 1, 0, vec![]),
        ] {
            let mut i = input();
            (i.uid, i.gid, i.additional_gids) = (uid, gid, extra.clone());
            assert!(
                matches!(build_spec(&i), Err(SpecError::IdOutOfRange(_))),
                "{uid} {gid} {extra:?}"
            );
            let mut e = exec_input(&["id"]);
            e.user = Some(ExecUser {
                uid,
                gid,
                additional_gids: extra,
            });
            assert!(matches!(
                exec_process(&exec_base(), &e),
                Err(SpecError::IdOutOfRange(_))
            ));
        }
        let mut i = input();
        i.uid = MAX_ID;
        assert_eq!(
            build_spec(&i)
                .unwrap()
                .process()
                .as_ref()
                .unwrap()
                .user()
                .uid(),
            MAX_ID
        );
    }

    #[test]
    fn a_hostname_that_would_add_lines_to_etc_hosts_never_reaches_a_spec() {
        let mut i = input();
        i.hostname = "a\n6.6.6.6 injected.example".into();
        assert!(matches!(build_spec(&i), Err(SpecError::UtsName(_))));
        let mut i = input();
        i.domainname = "x y".into();
        assert!(matches!(build_spec(&i), Err(SpecError::UtsName(_))));
    }
}
