//! What is mounted where, from `/proc/self/mountinfo`, and the mounts and lazy unmounts the
//! volume service makes (its policy, the options' parsing and its words, stay in the engine;
//! the syscalls are here). Every deletion under the volumes root asks here first: a tree with a
//! mount below it is never deleted, so a bind of a host directory can never be emptied through.

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

/// A mount described by a volume's options, already parsed into mount(2)'s terms.
pub struct OptionMount<'a> {
    pub device: &'a str,
    pub fs_type: &'a str,
    /// Every flag the options named, propagation ones included.
    pub flags: libc::c_ulong,
    /// Which of `flags` are propagation (applied by a second mount(2), as moby does).
    pub propagation_mask: libc::c_ulong,
    /// The filesystem-specific data (`size=64m,uid=1000`).
    pub data: &'a str,
}

/// Go's text for an errno ("no such device"), without Rust's "(os error N)".
fn errno_words(e: nix::errno::Errno) -> String {
    let d = e.desc();
    let mut c = d.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => d.to_string(),
    }
}

/// moby's `mount.Mount`: the mount with the non-propagation flags (skipped, as there, for a
/// "remount" — device empty or `none` — without data), then the propagation, then a read-only
/// remount for `bind,ro`. A later step failing takes the mount off again rather than leaving
/// half of it. Errors in moby's words (`mount dev:/target, flags: 0x..., data: ...: reason`).
pub fn mount_with_options(m: &OptionMount<'_>, target: &Path) -> Result<(), String> {
    use nix::mount::MsFlags;
    let oflags = m.flags & !m.propagation_mask;
    let t = target.display();
    let hex = |f: libc::c_ulong| {
        if f == 0 {
            String::new()
        } else {
            format!(", flags: {f:#x}")
        }
    };
    let data = m.data;
    let remount = oflags & libc::MS_REMOUNT != 0 || m.device.is_empty() || m.device == "none";
    let mut mounted = false;
    let result = (|| {
        if !remount || !data.is_empty() {
            nix::mount::mount(
                Some(m.device),
                target,
                Some(m.fs_type),
                MsFlags::from_bits_retain(oflags),
                (!data.is_empty()).then_some(data),
            )
            .map_err(|e| {
                let d = if data.is_empty() {
                    String::new()
                } else {
                    format!(", data: {data}")
                };
                format!(
                    "mount {}:{t}{}{d}: {}",
                    m.device,
                    hex(oflags),
                    errno_words(e)
                )
            })?;
            mounted = true;
        }
        if m.flags & m.propagation_mask != 0 {
            let pf = m.flags & (m.propagation_mask | libc::MS_REC | libc::MS_SILENT);
            nix::mount::mount(
                None::<&str>,
                target,
                None::<&str>,
                MsFlags::from_bits_retain(pf),
                None::<&str>,
            )
            .map_err(|e| format!("remount {t}{}: {}", hex(pf), errno_words(e)))?;
        }
        let bro = libc::MS_BIND | libc::MS_RDONLY;
        if oflags & bro == bro {
            let rf = oflags | libc::MS_REMOUNT;
            nix::mount::mount(
                None::<&str>,
                target,
                None::<&str>,
                MsFlags::from_bits_retain(rf),
                None::<&str>,
            )
            .map_err(|e| format!("remount-ro {t}{}: {}", hex(rf), errno_words(e)))?;
        }
        Ok::<(), String>(())
    })();
    if result.is_err() && mounted {
        let _ = unmount_all(target);
    }
    result
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
