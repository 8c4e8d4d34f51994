//! Durable file primitives shared by every Wharf process that writes state outside SQLite.
//!
//! Owns: `atomic_write` (temp file, fsync, rename, fsync dir), `fsync_dir`, `resolve_in`
//! (a container's path on the host, never outside its root), `root` (descriptor walks with
//! openat2 that never leave a container's root: `docker cp`) and `xattr` (file capabilities).
//! Must not touch: anything that knows what the bytes mean.
//!
//! A reader sees either the old file or the new one, never a torn write, even after
//! `kill -9` or a power cut at any instant. On tmpfs (the exec root in production) nothing
//! survives a power cut anyway, so the fsyncs are skipped there and only the rename remains.

pub mod root;
pub mod xattr;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Replaces `path` with `data` atomically and durably.
pub fn atomic_write(path: &Path, data: &[u8]) -> io::Result<()> {
    atomic_write_mode(path, data, 0o644)
}

/// Like [`atomic_write`] with an explicit permission mode for a newly created file.
pub fn atomic_write_mode(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent_dir(path)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        random_suffix()
    ));
    let durable = !on_tmpfs(dir);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        if durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable {
            fsync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Flushes a directory's entries so that a rename or create inside it survives a crash.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `dest`, an absolute path in the container, resolved inside `root` the way the container
/// sees it: symlinks are followed, but `..` and absolute targets never leave `root` (what
/// a copy-up reads, the mount a propagation is set on).
pub fn resolve_in(root: &Path, dest: &str) -> io::Result<std::path::PathBuf> {
    let mut todo: std::collections::VecDeque<std::ffi::OsString> = Path::new(dest)
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_os_string()),
            std::path::Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut cur = std::path::PathBuf::new();
    let mut hops = 0;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&part);
        let on_host = root.join(&next);
        match std::fs::symlink_metadata(&on_host) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 255 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&on_host)?;
                if target.is_absolute() {
                    cur = std::path::PathBuf::new();
                }
                let mut front: std::collections::VecDeque<std::ffi::OsString> = target
                    .components()
                    .filter_map(|c| match c {
                        std::path::Component::Normal(n) => Some(n.to_os_string()),
                        std::path::Component::ParentDir => Some("..".into()),
                        _ => None,
                    })
                    .collect();
                front.extend(todo);
                todo = front;
            }
            _ => cur = next,
        }
    }
    Ok(root.join(cur))
}

/// Whether `dir` is on tmpfs, where an fsync cannot make anything more durable.
pub fn on_tmpfs(dir: &Path) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes only into the zeroed struct we own; `c` is a valid C string.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == TMPFS_MAGIC
    }
}

fn parent_dir(path: &Path) -> io::Result<&Path> {
    match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Ok(Path::new(".")),
        Some(p) => Ok(p),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path has no parent directory",
        )),
    }
}

fn random_suffix() -> String {
    let mut b = [0u8; 6];
    // A failed getrandom only weakens uniqueness; create_new still refuses a clash.
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("real/data")).unwrap();
        std::os::unix::fs::symlink("/real", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../real", root.join("up")).unwrap();
        std::os::unix::fs::symlink("/", root.join("slash")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            resolve_in(root, "/abs/data").unwrap(),
            root.join("real/data")
        );
        assert_eq!(
            resolve_in(root, "/up/data").unwrap(),
            root.join("real/data")
        );
        assert_eq!(
            resolve_in(root, "/slash/../../etc").unwrap(),
            root.join("etc")
        );
        assert_eq!(
            resolve_in(root, "/missing/x").unwrap(),
            root.join("missing/x")
        );
        assert_eq!(
            resolve_in(root, "/loop").unwrap_err().raw_os_error(),
            Some(libc::ELOOP)
        );
    }

    #[test]
    fn writes_and_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let leftovers: Vec<_> = fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }

    #[test]
    fn tmpfs_is_detected() {
        assert!(!on_tmpfs(Path::new("/proc")));
        if let Ok(d) = tempfile::tempdir_in("/dev/shm") {
            assert!(on_tmpfs(d.path()));
            atomic_write(&d.path().join("f"), b"x").unwrap();
            assert_eq!(fs::read(d.path().join("f")).unwrap(), b"x");
        }
    }

    #[test]
    fn missing_dir_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        assert!(atomic_write(&d.path().join("no/such/f"), b"x").is_err());
    }
}
