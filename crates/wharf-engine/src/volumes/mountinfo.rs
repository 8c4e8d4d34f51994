//! What is mounted where, from `/proc/self/mountinfo`, and the lazy unmounts the volume
//! service makes. Every deletion under the volumes root asks here first: a tree with a mount
//! below it is never deleted, so a bind of a host directory can never be emptied through.

use std::path::{Path, PathBuf};

/// `p` with its symlinks resolved, as the kernel writes mount points; `p` itself when it does
/// not exist (nothing can be mounted on it then).
pub fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let oct = b
                .get(i + 1..i + 4)
                .filter(|o| o.iter().all(|c| (b'0'..=b'7').contains(c)));
            if let Some(v) = oct
                .and_then(|o| std::str::from_utf8(o).ok())
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}

fn mount_points(info: &str) -> impl Iterator<Item = PathBuf> + '_ {
    info.lines()
        .filter_map(|line| line.split(' ').nth(4).map(unescape))
}

/// Mount points at or under `dir` (resolved), deepest first, later mounts first among equals
/// so that stacked mounts come off top to bottom.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    under(&info, &canonical(dir))
}

fn under(info: &str, dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(usize, usize, PathBuf)> = mount_points(info)
        .enumerate()
        .filter(|(_, mp)| mp.starts_with(dir))
        .map(|(i, mp)| (mp.components().count(), i, mp))
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    found.into_iter().map(|(_, _, p)| p).collect()
}

pub fn is_mount_point(p: &Path) -> bool {
    let p = canonical(p);
    mounts_under(&p).contains(&p)
}

/// Lazily unmounts everything at or under `dir`, in rounds (an unmount can uncover a mount
/// stacked beneath); fails naming what is still mounted.
pub fn unmount_all(dir: &Path) -> Result<(), String> {
    for _ in 0..8 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return Ok(());
        }
        for m in mounts {
            if let Err(e) = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH) {
                // EINVAL: gone meanwhile (moby's Unmount ignores it too).
                if e != nix::errno::Errno::EINVAL {
                    tracing::warn!(mount = %m.display(), error = %e, "unmounting a volume mount");
                }
            }
        }
    }
    match mounts_under(dir).first() {
        None => Ok(()),
        Some(m) => Err(format!("umount {}: still mounted", m.display())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const INFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:40 / /var/lib/wharf/volumes/a/_data rw - tmpfs tmpfs rw
41 22 0:41 / /var/lib/wharf/volumes/my\\040vol/_data rw - tmpfs tmpfs rw
42 40 0:42 / /var/lib/wharf/volumes/a/_data/sub rw - tmpfs tmpfs rw
43 22 0:43 / /var/lib/wharf/volumes/a/_data rw - tmpfs tmpfs rw
44 22 0:44 / /var/lib/wharf/volumesX rw - tmpfs tmpfs rw
";

    #[test]
    fn mounts_under_a_dir_come_deepest_and_latest_first_with_escapes_undone() {
        let got = under(INFO, Path::new("/var/lib/wharf/volumes"));
        let got: Vec<String> = got.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            got,
            [
                "/var/lib/wharf/volumes/a/_data/sub",
                "/var/lib/wharf/volumes/a/_data",
                "/var/lib/wharf/volumes/my vol/_data",
                "/var/lib/wharf/volumes/a/_data",
            ]
        );
        assert!(under(INFO, Path::new("/var/lib/wharf/volumes/b")).is_empty());
    }
}
