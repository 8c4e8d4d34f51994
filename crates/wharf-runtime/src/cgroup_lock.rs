//! Pre-paying the RCU grace period of the first cgroup migration.
//!
//! Moving a task between cgroups (`cgroup.procs` writes, v1 and v2) takes the kernel's global
//! `cgroup_threadgroup_rwsem` for writing. When no migration happened in the last grace period
//! or so, that first waits for a full RCU grace period (8-20 ms measured on a 2-vCPU VM),
//! holding `cgroup_mutex`, so every cgroup mkdir or migration behind it waits too. libcontainer's
//! intermediate process pays this on every container start.
//!
//! [`CgroupLockWarmer::poke`] "moves" the caller into the cgroup it already is in: no effect
//! except that the lock is left in its writer-ready state for about one more grace period, so a
//! migration shortly after is cheap. The shim's launcher pokes while it waits for the shim;
//! wharfd can poke earlier (when it receives create/start) to hide the whole grace period.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Our own `cgroup.procs`, opened once.
pub struct CgroupLockWarmer(File);

impl CgroupLockWarmer {
    /// Picks a hierarchy where a self-migration has no side effects (not cpuset, whose attach
    /// resets CPU affinity; pids first, whose attach only moves a counter). None if there is
    /// no writable one (not root, no cgroupfs): poking is an optimisation only.
    pub fn open() -> Option<Self> {
        let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        candidates(&text)
            .into_iter()
            .find_map(|d| {
                OpenOptions::new()
                    .write(true)
                    .open(d.join("cgroup.procs"))
                    .ok()
            })
            .map(Self)
    }

    /// Blocks for up to one RCU grace period when the lock was idle, microseconds otherwise:
    /// call it from a thread that may block (in async code, `spawn_blocking`).
    pub fn poke(&self) -> io::Result<()> {
        // pid 0 is the writer itself (its whole thread group): already there, nothing moves.
        self.0.write_at(b"0", 0).map(|_| ())
    }
}

/// `cgroup.procs` directories to try, best first, from `/proc/self/cgroup` text.
fn candidates(proc_self_cgroup: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if rel.split('/').any(|c| c == "..") {
            continue;
        }
        if ctrls.is_empty() {
            v2.push(root.join(rel));
            v2.push(root.join("unified").join(rel));
        } else if !ctrls.starts_with("name=") && !ctrls.split(',').any(|c| c == "cpuset") {
            let dir = root.join(ctrls).join(rel);
            if ctrls == "pids" {
                v1.insert(0, dir);
            } else {
                v1.push(dir);
            }
        }
    }
    v1.extend(v2);
    v1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn prefers_pids_skips_cpuset_and_named() {
        let c = candidates("9:name=systemd:/\n8:pids:/a\n7:cpu,cpuacct:/a\n3:cpuset:/a\n0::/a\n");
        assert_eq!(
            c,
            vec![
                PathBuf::from("/sys/fs/cgroup/pids/a"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a"),
                PathBuf::from("/sys/fs/cgroup/a"),
                PathBuf::from("/sys/fs/cgroup/unified/a"),
            ]
        );
        assert!(candidates("1:pids:/../x\n").is_empty());
    }
}
