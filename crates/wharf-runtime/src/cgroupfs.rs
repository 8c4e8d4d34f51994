//! A container's cgroup as files: which processes are in it (the engine's `top`), and freezing
//! it (the shim's monitor, on a `Freeze` request).
//!
//! The runtime creates the cgroup at `<cgroups_path>` in every v1 hierarchy, or once in the v2
//! unified hierarchy; these functions find it there by the same path.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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

/// One step of freezing (or thawing) every process of the cgroup: asks the kernel for the
/// state and says whether it has been reached. Callers repeat it until it returns `true`
/// (`wharf-shim`'s monitor does so from its poll loop, so that a slow freeze delays nothing
/// else); each step is a write and a read, never a wait.
pub fn freeze_step(cgroups_path: &str, frozen: bool) -> io::Result<bool> {
    if let Some(d) = unified_dir(cgroups_path) {
        fs::write(d.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        let events = fs::read_to_string(d.join("cgroup.events"))?;
        return Ok(events.lines().any(|l| l.trim() == want));
    }
    let state = Path::new(ROOT)
        .join("freezer")
        .join(rel(cgroups_path))
        .join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    // v1 can report FREEZING while tasks are still being stopped: the write is repeated until
    // the state sticks, as runc does.
    fs::write(&state, want)?;
    Ok(fs::read_to_string(&state)?.trim() == want)
}

/// Whether the cgroup is frozen now (v2 `cgroup.events`, v1 `freezer.state`); a cgroup half
/// way (`FREEZING`) is not.
pub fn is_frozen(cgroups_path: &str) -> io::Result<bool> {
    if let Some(d) = unified_dir(cgroups_path) {
        let events = fs::read_to_string(d.join("cgroup.events"))?;
        return Ok(events.lines().any(|l| l.trim() == "frozen 1"));
    }
    let state = Path::new(ROOT)
        .join("freezer")
        .join(rel(cgroups_path))
        .join("freezer.state");
    Ok(fs::read_to_string(state)?.trim() == "FROZEN")
}
