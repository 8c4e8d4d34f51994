//! What this host can do for containers, read once when the engine opens: the cgroup version
//! and which limits its controllers can enforce, the CPUs and memory nodes, the rlimit ceiling
//! of wharfd, IPv4 forwarding. Create refuses what the host cannot enforce (Docker would drop
//! it with a warning and run the container unlimited), and `/info` claims only what is here.

use std::path::{Path, PathBuf};
use wharf_runtime::spec::RlimitCeiling;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    pub cgroup_v2: bool,
    pub memory: bool,
    pub swap: bool,
    pub memory_reservation: bool,
    pub swappiness: bool,
    pub oom_kill_disable: bool,
    pub cpu_shares: bool,
    pub cpu_cfs: bool,
    pub cpuset: bool,
    pub pids: bool,
    pub blkio_weight: bool,
    /// `cpuset.cpus` of the root, e.g. `0-1`.
    pub cpus: String,
    pub mems: String,
    pub ncpu: usize,
    pub cgroup_namespaces: bool,
    pub ipv4_forwarding: bool,
    pub rlimit_ceiling: RlimitCeiling,
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A child cgroup of `root` holding `file`: some knobs exist only below the root.
fn any_child_has(root: &Path, file: &str) -> bool {
    std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .any(|e| e.path().is_dir() && e.path().join(file).exists())
        })
        .unwrap_or(false)
}

impl HostFacts {
    pub fn probe() -> HostFacts {
        let mut f = HostFacts::probe_cgroups(Path::new("/sys/fs/cgroup"));
        f.ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        f.cgroup_namespaces = Path::new("/proc/self/ns/cgroup").exists();
        f.ipv4_forwarding = read(Path::new("/proc/sys/net/ipv4/ip_forward")) == "1";
        f.rlimit_ceiling = RlimitCeiling::of_this_process();
        f
    }

    /// The cgroup part, from a cgroup filesystem mounted at `root` (v2 unified, or v1 with one
    /// directory per controller).
    pub fn probe_cgroups(root: &Path) -> HostFacts {
        let mut f = HostFacts::default();
        let controllers = read(&root.join("cgroup.controllers"));
        if root.join("cgroup.controllers").exists() {
            f.cgroup_v2 = true;
            let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
            f.memory = has("memory");
            f.memory_reservation = f.memory;
            f.swap = f.memory && any_child_has(root, "memory.swap.max");
            f.cpu_shares = has("cpu");
            f.cpu_cfs = has("cpu");
            f.cpuset = has("cpuset");
            f.pids = has("pids");
            f.blkio_weight = has("io")
                && (any_child_has(root, "io.weight") || any_child_has(root, "io.bfq.weight"));
            f.cpus = read(&root.join("cpuset.cpus.effective"));
            f.mems = read(&root.join("cpuset.mems.effective"));
        } else {
            let ctl = |c: &str, file: &str| root.join(c).join(file).exists();
            f.memory = ctl("memory", "memory.limit_in_bytes");
            f.swap = ctl("memory", "memory.memsw.limit_in_bytes");
            f.memory_reservation = ctl("memory", "memory.soft_limit_in_bytes");
            f.swappiness = ctl("memory", "memory.swappiness");
            f.oom_kill_disable = ctl("memory", "memory.oom_control");
            f.cpu_shares = ctl("cpu", "cpu.shares");
            f.cpu_cfs = ctl("cpu", "cpu.cfs_quota_us");
            f.cpuset = ctl("cpuset", "cpuset.cpus");
            f.pids = root.join("pids").is_dir();
            f.blkio_weight = ctl("blkio", "blkio.weight") || ctl("blkio", "blkio.bfq.weight");
            f.cpus = read(&root.join("cpuset").join("cpuset.effective_cpus"));
            if f.cpus.is_empty() {
                f.cpus = read(&root.join("cpuset").join("cpuset.cpus"));
            }
            f.mems = read(&root.join("cpuset").join("cpuset.effective_mems"));
            if f.mems.is_empty() {
                f.mems = read(&root.join("cpuset").join("cpuset.mems"));
            }
        }
        if f.cpus.is_empty() {
            f.cpus = read(&PathBuf::from("/sys/devices/system/cpu/online"));
        }
        if f.mems.is_empty() {
            f.mems = "0".into();
        }
        f
    }
}

/// The IPv4 address of the interface that holds the default route: where a container that
/// asks for `host-gateway` reaches this host until the default bridge (issue 16) has a gateway.
pub fn default_route_ipv4() -> Option<std::net::IpAddr> {
    let routes = std::fs::read_to_string("/proc/net/route").ok()?;
    let iface = routes.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 2 && f[1] == "00000000").then(|| f[0].to_string())
    })?;
    nix::ifaddrs::getifaddrs().ok()?.find_map(|a| {
        if a.interface_name != iface {
            return None;
        }
        let sin = a.address.as_ref()?.as_sockaddr_in()?;
        Some(std::net::IpAddr::V4(sin.ip()))
    })
}

/// Parses a cpuset list (`0-2,4`) into its members, Docker's words on failure.
pub fn parse_cpuset(list: &str) -> Result<Vec<u32>, String> {
    parse_cpuset_max(list, None)
}

/// [`parse_cpuset`] for a request: no number above `maximum` (moby's `ParseUintListMaximum`,
/// in its words), so `0-4294967295` is refused before it becomes a list of 2^32 numbers.
pub fn parse_cpuset_max(list: &str, maximum: Option<u32>) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    if list.trim().is_empty() {
        return Ok(out);
    }
    for part in list.split(',') {
        let bad = || format!("invalid format: {list}");
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.trim().parse().map_err(|_| bad())?;
                let b: u32 = b.trim().parse().map_err(|_| bad())?;
                if b < a {
                    return Err(bad());
                }
                check_max(b, maximum)?;
                out.extend(a..=b);
            }
            None => {
                let v = part.trim().parse().map_err(|_| bad())?;
                check_max(v, maximum)?;
                out.push(v);
            }
        }
    }
    Ok(out)
}

fn check_max(v: u32, maximum: Option<u32>) -> Result<(), String> {
    match maximum {
        Some(m) if v > m => Err(format!("value of out range, maximum is {m}")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_cannot_ask_for_four_billion_cpus() {
        assert_eq!(
            parse_cpuset_max("0-4294967295", Some(1)).unwrap_err(),
            "value of out range, maximum is 1"
        );
        assert_eq!(parse_cpuset_max("0-1,1", Some(1)).unwrap(), vec![0, 1, 1]);
        assert_eq!(parse_cpuset("0-3").unwrap(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn v1_and_v2_layouts() {
        let d = tempfile::tempdir().unwrap();
        for (c, f) in [
            ("memory", "memory.limit_in_bytes"),
            ("memory", "memory.memsw.limit_in_bytes"),
            ("cpu", "cpu.shares"),
            ("cpuset", "cpuset.cpus"),
            ("blkio", "blkio.throttle.read_bps_device"),
        ] {
            std::fs::create_dir_all(d.path().join(c)).unwrap();
            std::fs::write(d.path().join(c).join(f), "0-3\n").unwrap();
        }
        let f = HostFacts::probe_cgroups(d.path());
        assert!(!f.cgroup_v2 && f.memory && f.swap && f.cpu_shares && f.cpuset);
        assert!(!f.cpu_cfs && !f.pids && !f.blkio_weight);
        assert_eq!(f.cpus, "0-3");

        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("cgroup.controllers"),
            "cpuset cpu pids memory\n",
        )
        .unwrap();
        std::fs::write(d.path().join("cpuset.cpus.effective"), "0-1\n").unwrap();
        std::fs::create_dir(d.path().join("init.scope")).unwrap();
        std::fs::write(d.path().join("init.scope/memory.swap.max"), "max\n").unwrap();
        let f = HostFacts::probe_cgroups(d.path());
        assert!(f.cgroup_v2 && f.memory && f.swap && f.pids && f.cpu_cfs);
        assert!(!f.swappiness && !f.oom_kill_disable && !f.blkio_weight);
        assert_eq!(f.cpus, "0-1");
    }

    #[test]
    fn cpusets() {
        assert_eq!(parse_cpuset("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpuset("").unwrap(), Vec::<u32>::new());
        assert!(parse_cpuset("a").is_err());
        assert!(parse_cpuset("3-1").is_err());
    }
}
