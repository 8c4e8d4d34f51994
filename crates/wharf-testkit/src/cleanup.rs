//! Leaving nothing behind: processes, mounts, cgroups and directories a test daemon made.
//!
//! Every step keeps going after a failure (a test that already failed must still clean up as
//! much as it can) and reports the failures together at the end.

use anyhow::{anyhow, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Where every test daemon's directory lives.
pub const TEST_DIR_BASE: &str = "/tmp";
/// Cgroup v1 controllers are mounted under here, v2 at the top or at `unified/`.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Pid files the shim writes into each container's state dir (wharf-runtime's shim_proto).
pub const SHIM_PID_FILE: &str = "shim.pid";
pub const INIT_PID_FILE: &str = "init.pid";
/// Written by the harness so a later run can tell a crashed owner from a live one.
pub const OWNER_FILE: &str = "owner";

pub fn test_dir_prefix(name: &str) -> String {
    format!("wharf-test-{name}-")
}

pub fn cgroup_parent(name: &str) -> String {
    format!("wharf-test-{name}")
}

/// `pid starttime` of this process, to write into `OWNER_FILE`.
pub fn owner_stamp() -> String {
    let pid = std::process::id() as i32;
    format!("{pid} {}", start_ticks(pid).unwrap_or(0))
}

/// True when the process that wrote `stamp` is still the same process (same pid, same start).
fn owner_alive(stamp: &str) -> bool {
    let mut it = stamp.split_whitespace();
    let (Some(pid), Some(ticks)) = (
        it.next().and_then(|p| p.parse::<i32>().ok()),
        it.next().and_then(|t| t.parse::<u64>().ok()),
    ) else {
        return false;
    };
    pid as u32 != std::process::id() && is_alive(pid) && start_ticks(pid) == Some(ticks)
}

/// `(state, starttime)` from `/proc/<pid>/stat`.
fn stat_fields(pid: i32) -> Option<(char, u64)> {
    let fields = stat_after_comm(pid)?;
    // After the comm, field 3 (state) is index 0 and field 22 (starttime) is index 19.
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// The fields of `/proc/<pid>/stat` after the command name, which may contain spaces and
/// parentheses (so the split is at the last `)`).
fn stat_after_comm(pid: i32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The process group of `pid` (field 5).
pub fn process_group(pid: i32) -> Option<i32> {
    stat_after_comm(pid)?.get(2)?.parse().ok()
}

/// Live processes in process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| process_group(*p) == Some(pgid) && is_alive(*p))
        .collect()
}

fn start_ticks(pid: i32) -> Option<u64> {
    stat_fields(pid).map(|(_, t)| t)
}

/// Alive for our purposes: exists and is not a zombie (zombies of reparented shims may never
/// be reaped in a container without a reaping pid 1, and they hold nothing).
pub fn is_alive(pid: i32) -> bool {
    matches!(stat_fields(pid), Some((s, _)) if s != 'Z' && s != 'X')
}

fn boot_time() -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Start of `pid` in seconds since the epoch (1 s resolution is plenty here).
fn start_epoch_secs(pid: i32) -> Option<u64> {
    let ticks = start_ticks(pid)?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|h| *h > 0)? as u64;
    Some(boot_time()? + ticks / hz)
}

/// The pid named by a pid file, but only if that process started before the file was last
/// written: a pid recycled since then belongs to someone else and must not be killed.
fn pid_from_file(path: &Path) -> Option<i32> {
    let text = fs::read_to_string(path).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    if pid <= 1 || pid as u32 == std::process::id() || !is_alive(pid) {
        return None;
    }
    let written = fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs();
    let started = start_epoch_secs(pid)?;
    (started <= written + 2).then_some(pid)
}

fn sigkill(pid: i32) {
    // ESRCH (already gone) is the outcome we want anyway.
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// Waits until every pid is gone (or a zombie); true if they all went in time.
pub fn wait_gone(pids: &[i32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pids.iter().all(|p| !is_alive(*p)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pids of processes whose command line mentions `needle` (shims and daemons get their roots
/// on the command line, so this finds them even when a pid file was never written).
fn pids_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let c = String::from_utf8_lossy(&c).replace('\0', " ");
                    c.contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// SIGKILLs shims, then container inits, found through `<exec>/containers/*/{shim,init}.pid`
/// and through command lines that mention `dir`; waits briefly until they are gone.
pub fn kill_container_processes(dir: &Path, exec_root: &Path) {
    let mut shims = Vec::new();
    let mut inits = Vec::new();
    if let Ok(rd) = fs::read_dir(exec_root.join("containers")) {
        for e in rd.flatten() {
            let state = e.path();
            shims.extend(pid_from_file(&state.join(SHIM_PID_FILE)));
            inits.extend(pid_from_file(&state.join(INIT_PID_FILE)));
        }
    }
    // A trailing slash keeps /tmp/wharf-test-x-1 from matching /tmp/wharf-test-x-12.
    let needle = format!("{}/", dir.display());
    for pid in pids_mentioning(&needle) {
        if !inits.contains(&pid) && !shims.contains(&pid) {
            shims.push(pid);
        }
    }
    // A shim leads its own session; helpers it forked share its process group and would
    // otherwise outlive it.
    let mut helpers = Vec::new();
    for p in &shims {
        if process_group(*p) == Some(*p) {
            helpers.extend(group_members(*p).into_iter().filter(|h| h != p));
        }
    }
    // Shims first: a live shim would see its init die and start writing exit state.
    for p in &shims {
        sigkill(*p);
    }
    for p in &helpers {
        sigkill(*p);
    }
    for p in &inits {
        sigkill(*p);
    }
    let all: Vec<i32> = shims
        .iter()
        .chain(&helpers)
        .chain(&inits)
        .copied()
        .collect();
    wait_gone(&all, Duration::from_secs(3));
}

/// Undoes the octal escapes (`\040` for space) of /proc/self/mountinfo.
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let oct = s
                .get(i + 1..i + 4)
                .filter(|o| o.bytes().all(|c| (b'0'..=b'7').contains(&c)));
            if let Some(v) = oct.and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points at or under `dir`, deepest first (later mounts first among equals, so
/// stacked mounts come off top to bottom).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let root = dir.to_string_lossy().trim_end_matches('/').to_string();
    let mut found: Vec<(usize, usize, PathBuf)> = info
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let mp = unescape_mount_path(line.split(' ').nth(4)?);
            let under = mp == root || mp.starts_with(&format!("{root}/"));
            under.then(|| (mp.matches('/').count(), i, PathBuf::from(mp)))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    found.into_iter().map(|(_, _, p)| p).collect()
}

/// Lazily unmounts everything under `dir`, in rounds, since unmounting can uncover mounts
/// that were stacked beneath.
pub fn unmount_all_under(dir: &Path) -> Result<()> {
    for _ in 0..8 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return Ok(());
        }
        for m in mounts {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let left = mounts_under(dir);
    if left.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("still mounted under {}: {left:?}", dir.display()))
    }
}

/// Every `<controller>/<parent>` (v1) and `<parent>` or `unified/<parent>` (v2) that exists.
pub fn cgroup_dirs_for(parent: &str) -> Vec<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    let mut out = Vec::new();
    let top = root.join(parent);
    if top.is_dir() {
        out.push(top);
    }
    if let Ok(rd) = fs::read_dir(root) {
        let mut ctrls: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        ctrls.sort();
        for c in ctrls {
            // `cpu` and `cpuacct` are symlinks to `cpu,cpuacct`; visiting once is enough.
            if fs::symlink_metadata(&c)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(true)
            {
                continue;
            }
            let d = c.join(parent);
            if d.is_dir() && !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

/// `dir` and every cgroup below it, children before parents.
fn cgroup_tree_postorder(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                cgroup_tree_postorder(&e.path(), out);
            }
        }
    }
    out.push(dir.to_path_buf());
}

fn cgroup_pids(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Kills whatever is left in the cgroups named `parent` (thawing frozen ones first, since a
/// frozen task never handles SIGKILL) and removes them, deepest first.
pub fn remove_cgroups(parent: &str) -> Result<()> {
    let mut errors = Vec::new();
    for top in cgroup_dirs_for(parent) {
        let mut tree = Vec::new();
        cgroup_tree_postorder(&top, &mut tree);
        let mut pids = Vec::new();
        for d in &tree {
            let _ = fs::write(d.join("freezer.state"), "THAWED");
            let _ = fs::write(d.join("cgroup.freeze"), "0");
            let _ = fs::write(d.join("cgroup.kill"), "1");
            for p in cgroup_pids(d) {
                sigkill(p);
                pids.push(p);
            }
        }
        wait_gone(&pids, Duration::from_secs(3));
        for d in &tree {
            // A cgroup whose last task just exited can be busy for a moment.
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                match fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if Instant::now() >= deadline => {
                        errors.push(format!("rmdir {}: {e}", d.display()));
                        break;
                    }
                    Err(_) => {
                        for p in cgroup_pids(d) {
                            sigkill(p);
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("cgroup cleanup: {}", errors.join("; ")))
    }
}

/// Everything under one test directory: processes, mounts, the directory itself. Cgroups are
/// per name, not per directory, and are removed by the caller.
pub fn cleanup_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let mut errors = Vec::new();
    let daemon_pidfile = dir.join("wharfd.pid");
    if let Some(pid) = pid_from_file(&daemon_pidfile) {
        sigkill(pid);
        wait_gone(&[pid], Duration::from_secs(3));
    }
    kill_container_processes(dir, &dir.join("exec"));
    if let Err(e) = unmount_all_under(dir) {
        errors.push(e.to_string());
    }
    if let Err(e) = fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            errors.push(format!("removing {}: {e}", dir.display()));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(errors.join("; ")))
    }
}

/// Cleans what an earlier, crashed run of the test `name` left: its directories (whose owner
/// process is gone) and, when no live run of the same name remains, its cgroups.
pub fn cleanup_stale(name: &str) -> Result<()> {
    let prefix = test_dir_prefix(name);
    let mut live_elsewhere = false;
    let mut errors = Vec::new();
    let rd = fs::read_dir(TEST_DIR_BASE).with_context(|| format!("reading {TEST_DIR_BASE}"))?;
    for e in rd.flatten() {
        let fname = e.file_name();
        let Some(fname) = fname.to_str() else {
            continue;
        };
        let Some(rest) = fname.strip_prefix(&prefix) else {
            continue;
        };
        // Only `<prefix><pid>`: the name `a` must not claim `wharf-test-a-b-12`.
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let dir = e.path();
        let stamp = fs::read_to_string(dir.join(OWNER_FILE)).unwrap_or_default();
        if owner_alive(&stamp) {
            live_elsewhere = true;
            continue;
        }
        if let Err(err) = cleanup_dir(&dir) {
            errors.push(err.to_string());
        }
    }
    if !live_elsewhere {
        if let Err(err) = remove_cgroups(&cgroup_parent(name)) {
            errors.push(err.to_string());
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("stale cleanup for {name}: {}", errors.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape_mount_path(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mount_path(r"/tmp/x\"), r"/tmp/x\");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
    }

    #[test]
    fn own_process_is_alive_and_stamped() {
        let me = std::process::id() as i32;
        assert!(is_alive(me));
        let stamp = owner_stamp();
        assert!(stamp.starts_with(&format!("{me} ")));
        // Our own stamp is never "alive elsewhere": a leftover of ours is always stale.
        assert!(!owner_alive(&stamp));
        assert!(!owner_alive("garbage"));
        assert!(start_epoch_secs(me).is_some());
    }

    #[test]
    fn pid_file_guard_rejects_recycled_or_bogus_pids() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.pid");
        fs::write(&f, "1\n").unwrap();
        assert_eq!(pid_from_file(&f), None);
        fs::write(&f, format!("{}\n", std::process::id())).unwrap();
        assert_eq!(pid_from_file(&f), None);
        fs::write(&f, "not a pid").unwrap();
        assert_eq!(pid_from_file(&f), None);
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        fs::write(&f, child.id().to_string()).unwrap();
        assert_eq!(pid_from_file(&f), Some(child.id() as i32));
        // A pid file written long before the process started names someone else.
        let old = std::fs::File::options().write(true).open(&f).unwrap();
        old.set_modified(UNIX_EPOCH + Duration::from_secs(1_000_000))
            .unwrap();
        assert_eq!(pid_from_file(&f), None);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn finds_processes_by_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("marker-arg");
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("sleep 30; : \"$0\"")
            .arg(&marker)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let found = pids_mentioning(&marker.to_string_lossy());
        assert!(found.contains(&(child.id() as i32)), "{found:?}");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn no_mounts_under_a_fresh_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert!(mounts_under(dir.path()).is_empty());
        unmount_all_under(dir.path()).unwrap();
    }
}
