//! Removing a stopped container's libcontainer state and cgroups without libcontainer.
//!
//! libcontainer's `Container::load` + `delete` re-derives every cgroup mount point (parsing
//! mountinfo once per controller) and opens a private procfs before a handful of rmdirs, and
//! in the small monitor it would need a child process. For the common case (init reaped, no
//! hooks) the same end state is a few syscalls; anything unusual is left to libcontainer.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// libcontainer's per-container state dir entries this module understands.
const YOUKI_CONFIG: &str = "youki_config.json";

/// Removes `<runtime_root>/<id>` and the container's cgroup in every hierarchy. Returns false
/// (having changed nothing that libcontainer's delete would not also accept) when the caller
/// must fall back to libcontainer: hooks to run, processes still in the cgroup, state it
/// cannot read.
pub fn remove_stopped(runtime_root: &Path, id: &str) -> bool {
    let dir = runtime_root.join(id);
    let config = match fs::read(dir.join(YOUKI_CONFIG)) {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::NotFound => return !dir.exists(),
        Err(_) => return false,
    };
    let Ok(config) = serde_json::from_slice::<serde_json::Value>(&config) else {
        return false;
    };
    // Poststop hooks and anything we do not recognise belong to libcontainer.
    if !config.get("hooks").is_none_or(|h| h.is_null()) {
        return false;
    }
    let Some(cgroup_path) = config.get("cgroup_path").and_then(|p| p.as_str()) else {
        return false;
    };
    let rel = cgroup_path.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == "..") {
        return false;
    }
    for mount in cgroup_mounts() {
        match fs::remove_dir(mount.join(rel)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            // EBUSY: something still lives in it; libcontainer kills it and retries.
            Err(_) => return false,
        }
    }
    fs::remove_dir_all(&dir).is_ok()
}

/// Mount points of every cgroup (v1) and cgroup2 hierarchy visible to us.
fn cgroup_mounts() -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let fstype = post.split_whitespace().next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            pre.split_whitespace().nth(4).map(unescape)
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape("/plain"), PathBuf::from("/plain"));
        assert_eq!(unescape("/trail\\04"), PathBuf::from("/trail\\04"));
    }

    #[test]
    fn missing_state_is_done_and_hooks_defer() {
        let root = tempfile::tempdir().unwrap();
        assert!(remove_stopped(root.path(), "nope"));
        let dir = root.path().join("c1");
        fs::create_dir(&dir).unwrap();
        fs::write(
            dir.join(YOUKI_CONFIG),
            r#"{"hooks":{"poststop":[{"path":"/bin/true"}]},"cgroup_path":"/x/c1"}"#,
        )
        .unwrap();
        assert!(!remove_stopped(root.path(), "c1"));
        assert!(dir.exists());
        fs::write(
            dir.join(YOUKI_CONFIG),
            r#"{"hooks":null,"cgroup_path":"/../x"}"#,
        )
        .unwrap();
        assert!(!remove_stopped(root.path(), "c1"));
    }
}
