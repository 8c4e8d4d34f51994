//! A container's cgroup as files: which processes are in it, and freezing it.
//!
//! The runtime creates the cgroup at `<cgroups_path>` in every v1 hierarchy, or once in the v2
//! unified hierarchy; these functions find it there by the same path.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ROOT: &str = "/sys/fs/cgroup";

fn rel(cgroups_path: &str) -> &str {
    cgroups_path.trim_start_matches('/')
}

/// The v2 directory of the cgroup, if the host runs the unified hierarchy with it.
fn unified_dir(cgroups_path: &str) -> Option<PathBuf> {
    let root = Path::new(ROOT);
    if root.join("cgroup.controllers").exists() {
        let d = root.join(rel(cgroups_path));
        return d.is_dir().then_some(d);
    }
    None
}

/// Pids of every process in the cgroup (from the pids or memory hierarchy on v1).
pub fn pids(cgroups_path: &str) -> io::Result<Vec<i32>> {
    let mut candidates: Vec<PathBuf> = unified_dir(cgroups_path).into_iter().collect();
    for ctrl in ["pids", "memory", "cpu,cpuacct", "cpu", "freezer", "unified"] {
        candidates.push(Path::new(ROOT).join(ctrl).join(rel(cgroups_path)));
    }
    for d in candidates {
        if let Ok(text) = fs::read_to_string(d.join("cgroup.procs")) {
            let mut pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            pids.sort_unstable();
            return Ok(pids);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no cgroup {cgroups_path} found under {ROOT}"),
    ))
}

/// Freezes (or thaws) every process of the cgroup and waits until the kernel says it is done.
pub fn set_frozen(cgroups_path: &str, frozen: bool) -> io::Result<()> {
    if let Some(d) = unified_dir(cgroups_path) {
        fs::write(d.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        return poll_until(|| {
            let events = fs::read_to_string(d.join("cgroup.events")).unwrap_or_default();
            Ok(events.lines().any(|l| l.trim() == want))
        });
    }
    let state = Path::new(ROOT)
        .join("freezer")
        .join(rel(cgroups_path))
        .join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    poll_until(|| {
        // v1 can report FREEZING while tasks are still being stopped: write again until it sticks.
        fs::write(&state, want)?;
        Ok(fs::read_to_string(&state)?.trim() == want)
    })
}

/// Retries `done` every millisecond for up to 5 s.
fn poll_until(mut done: impl FnMut() -> io::Result<bool>) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if done()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "cgroup did not (un)freeze",
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
