//! Image fixtures built from the host, with no network: a minimal busybox rootfs.
//!
//! `scripts/mk-busybox-tar.sh` builds the same rootfs from the shell; keep the two in step.

use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use wharf_client::Client;

/// Host busybox to copy (static, so it runs in any rootfs).
pub const HOST_BUSYBOX: &str = "/bin/busybox";
/// Fixed mtime of every entry, so the tar (and so the imported layer) is the same every run.
pub const FIXTURE_MTIME: u64 = 946_684_800;

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
wharfuser:x:1000:1000::/home/wharfuser:/bin/sh\n";

pub const GROUP: &str = "root:x:0:\n\
daemon:x:1:\n\
nogroup:x:65534:\n\
wharfuser:x:1000:\n";

/// `(path, mode, uid)` of the directories every rootfs gets.
const DIRS: &[(&str, u32, u64)] = &[
    ("bin", 0o755, 0),
    ("dev", 0o755, 0),
    ("etc", 0o755, 0),
    ("home", 0o755, 0),
    ("home/wharfuser", 0o755, 1000),
    ("proc", 0o555, 0),
    ("root", 0o700, 0),
    ("run", 0o755, 0),
    ("sbin", 0o755, 0),
    ("sys", 0o555, 0),
    ("tmp", 0o1777, 0),
    ("usr", 0o755, 0),
    ("usr/bin", 0o755, 0),
    ("usr/sbin", 0o755, 0),
    ("var", 0o755, 0),
];

/// Applet paths (`bin/sh`, `usr/bin/env`, ...) from `busybox --list-full`.
pub fn busybox_applets(busybox: &Path) -> Result<Vec<String>> {
    let out = Command::new(busybox)
        .arg("--list-full")
        .output()
        .with_context(|| format!("running {} --list-full", busybox.display()))?;
    if !out.status.success() {
        bail!("{} --list-full failed: {}", busybox.display(), out.status);
    }
    let list = String::from_utf8_lossy(&out.stdout);
    let mut applets: Vec<String> = list
        .lines()
        .map(|l| l.trim().trim_start_matches('/').to_string())
        .filter(|l| !l.is_empty() && l != "bin/busybox" && !l.contains(".."))
        .collect();
    applets.sort();
    applets.dedup();
    Ok(applets)
}

fn header(kind: tar::EntryType, mode: u32, uid: u64, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(uid);
    h.set_mtime(FIXTURE_MTIME);
    h.set_size(size);
    h
}

/// A tar of a minimal rootfs: the host's static busybox, a symlink to it for every applet,
/// passwd/group with root, daemon, nobody and `wharfuser` (1000:1000), and the usual empty
/// directories. Deterministic: same bytes on every call on the same host.
pub fn busybox_rootfs_tar() -> Result<Vec<u8>> {
    busybox_rootfs_tar_from(Path::new(HOST_BUSYBOX))
}

pub fn busybox_rootfs_tar_from(busybox: &Path) -> Result<Vec<u8>> {
    let bin = std::fs::read(busybox).with_context(|| format!("reading {}", busybox.display()))?;
    let applets = busybox_applets(busybox)?;

    let mut dirs: BTreeSet<(String, u32, u64)> = DIRS
        .iter()
        .map(|(p, m, u)| (p.to_string(), *m, *u))
        .collect();
    let known: BTreeSet<String> = dirs.iter().map(|d| d.0.clone()).collect();
    for a in &applets {
        // Applets may live in directories the fixed list lacks.
        let mut p = Path::new(a).parent();
        while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
            let d_str = d.to_string_lossy().into_owned();
            if !known.contains(&d_str) {
                dirs.insert((d_str, 0o755, 0));
            }
            p = d.parent();
        }
    }

    let mut b = tar::Builder::new(Vec::new());
    // BTreeSet order puts every parent before its children.
    for (path, mode, uid) in &dirs {
        let mut h = header(tar::EntryType::Directory, *mode, *uid, 0);
        b.append_data(&mut h, format!("{path}/"), std::io::empty())
            .with_context(|| format!("tar dir {path}"))?;
    }
    let mut h = header(tar::EntryType::Regular, 0o755, 0, bin.len() as u64);
    b.append_data(&mut h, "bin/busybox", &bin[..])
        .context("tar bin/busybox")?;
    for (path, text) in [("etc/group", GROUP), ("etc/passwd", PASSWD)] {
        let mut h = header(tar::EntryType::Regular, 0o644, 0, text.len() as u64);
        b.append_data(&mut h, path, text.as_bytes())
            .with_context(|| format!("tar {path}"))?;
    }
    for a in &applets {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0, 0);
        b.append_link(&mut h, a, "/bin/busybox")
            .with_context(|| format!("tar symlink {a}"))?;
    }
    b.into_inner().context("finishing tar")
}

/// Splits `repo[:tag]` (a `:` before the last `/` is a registry port, not a tag).
pub fn split_reference(reference: &str) -> (&str, Option<&str>) {
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (&reference[..at], Some(&reference[at + 1..]))
        }
        None => (reference, None),
    }
}

/// Imports the busybox rootfs as `reference` (e.g. `busybox` or `busybox:latest`); returns the
/// image ID.
pub async fn import_busybox(client: &Client, reference: &str) -> Result<String> {
    let tar = busybox_rootfs_tar()?;
    let (repo, tag) = split_reference(reference);
    client
        .import_image(tar, repo, Some(tag.unwrap_or("latest")))
        .await
        .with_context(|| format!("importing busybox as {reference}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Read;

    #[test]
    fn splits_references() {
        assert_eq!(split_reference("busybox"), ("busybox", None));
        assert_eq!(split_reference("busybox:1"), ("busybox", Some("1")));
        assert_eq!(
            split_reference("localhost:5000/x"),
            ("localhost:5000/x", None)
        );
        assert_eq!(
            split_reference("localhost:5000/x:v1"),
            ("localhost:5000/x", Some("v1"))
        );
    }

    #[test]
    fn rootfs_tar_has_what_tests_rely_on() {
        if !Path::new(HOST_BUSYBOX).exists() {
            crate::skip(format!(
                "no {HOST_BUSYBOX} (apt-get install busybox-static)"
            ));
            return;
        }
        let bytes = busybox_rootfs_tar().unwrap();
        assert_eq!(bytes, busybox_rootfs_tar().unwrap(), "not deterministic");
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut entries = BTreeMap::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string();
            let h = e.header().clone();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            entries.insert(
                path,
                (
                    h.entry_type(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    link,
                    data,
                ),
            );
        }
        let bb = &entries["bin/busybox"];
        assert_eq!(bb.0, tar::EntryType::Regular);
        assert_eq!(bb.1, 0o755);
        assert!(bb.4.len() > 100_000);
        for app in [
            "bin/sh",
            "bin/cat",
            "bin/echo",
            "bin/sleep",
            "usr/bin/env",
            "usr/bin/id",
        ] {
            let e = entries.get(app).unwrap_or_else(|| panic!("missing {app}"));
            assert_eq!(e.0, tar::EntryType::Symlink, "{app}");
            assert_eq!(e.3.as_deref(), Some("/bin/busybox"), "{app}");
        }
        assert_eq!(entries["tmp"].1, 0o1777);
        assert_eq!(entries["home/wharfuser"].2, 1000);
        for d in ["proc", "sys", "dev", "etc", "var", "run", "root"] {
            assert_eq!(entries[d].0, tar::EntryType::Directory, "{d}");
        }
        let passwd = String::from_utf8(entries["etc/passwd"].4.clone()).unwrap();
        assert!(passwd.contains("wharfuser:x:1000:1000::/home/wharfuser:/bin/sh"));
        assert!(passwd.starts_with("root:x:0:0:root:/root:/bin/sh\n"));
        let group = String::from_utf8(entries["etc/group"].4.clone()).unwrap();
        assert!(group.contains("nogroup:x:65534:"));
    }

    type Listing = BTreeMap<String, (tar::EntryType, u32, u64, u64, Option<String>, u64, u64)>;

    fn listing(bytes: &[u8]) -> Listing {
        let mut ar = tar::Archive::new(bytes);
        let mut out = BTreeMap::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            let path = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let v = (
                h.entry_type(),
                h.mode().unwrap() & 0o7777,
                h.uid().unwrap(),
                h.gid().unwrap(),
                link,
                h.size().unwrap(),
                h.mtime().unwrap(),
            );
            out.insert(path, v);
        }
        out
    }

    #[test]
    fn shell_script_builds_the_same_rootfs() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mk-busybox-tar.sh");
        if !Path::new(HOST_BUSYBOX).exists() {
            crate::skip(format!(
                "no {HOST_BUSYBOX} (apt-get install busybox-static)"
            ));
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("bb.tar");
        let st = Command::new("sh").arg(&script).arg(&out).status().unwrap();
        assert!(st.success());
        let from_shell = listing(&std::fs::read(&out).unwrap());
        let from_rust = listing(&busybox_rootfs_tar().unwrap());
        let only_shell: Vec<_> = from_shell
            .keys()
            .filter(|k| !from_rust.contains_key(*k))
            .collect();
        let only_rust: Vec<_> = from_rust
            .keys()
            .filter(|k| !from_shell.contains_key(*k))
            .collect();
        assert!(
            only_shell.is_empty() && only_rust.is_empty(),
            "shell only {only_shell:?}, rust only {only_rust:?}"
        );
        for (k, v) in &from_rust {
            assert_eq!(Some(v), from_shell.get(k), "{k}");
        }
    }
}
