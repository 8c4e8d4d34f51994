//! dockerd's copy-up: when a container is created with a volume that is empty, the image's
//! content at the mount's destination is copied into it, with owners, modes, times,
//! symlinks, hard links, device nodes and xattrs (the volume's root takes the owner and mode
//! of the image's directory).
//!
//! Crash safety: a copy cut short would leave a volume that looks used ("not empty") and is
//! never filled again. So a marker, `copy-up.partial` beside the volume's `_data` (in the
//! volume's own directory, which goes with the volume), is made durable before the first
//! byte is copied and removed only once the copy is synced. Whoever mounts the volume next
//! ([`finish_interrupted`], called for every volume mount at create and start) finds the
//! marker, empties the half copy (the volume was empty when the copy began) and removes the
//! marker; a copy-up then starts again from scratch. One lock serializes copy-ups and these
//! checks, so two containers created together with one empty volume copy once.

use crate::failpoint;
use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use wharf_fs::resolve_in;

pub const MARKER: &str = "copy-up.partial";

static LOCK: Mutex<()> = Mutex::new(());

fn guard() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Empties a volume whose copy-up a crash cut short (its marker is there); see the module doc.
pub fn finish_interrupted(vol_dir: &Path, data: &Path) -> io::Result<()> {
    let _g = guard();
    finish_locked(vol_dir, data)
}

fn finish_locked(vol_dir: &Path, data: &Path) -> io::Result<()> {
    let marker = vol_dir.join(MARKER);
    if !marker.exists() {
        return Ok(());
    }
    tracing::warn!(volume = %vol_dir.display(), "a copy-up was cut short; emptying the volume to copy again");
    for e in std::fs::read_dir(data)? {
        let p = e?.path();
        if p.symlink_metadata()?.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
    }
    std::fs::remove_file(&marker)?;
    wharf_fs::fsync_dir(vol_dir)
}

/// Why a copy-up failed, in dockerd's words where it has them.
#[derive(Debug, thiserror::Error)]
pub enum CopyUpError {
    #[error("cannot mount volume over existing file, file exists {0}")]
    NotADirectory(String),
    #[error("copying the image's content at {dest} into the volume: {source}")]
    Io {
        dest: String,
        #[source]
        source: io::Error,
    },
}

/// Copies the image's content at `dest` (under the container's mounted `rootfs`) into the
/// volume's `data` if `data` is empty. `vol_dir` holds the marker; `exec_root` the failpoints.
pub fn copy_up(
    exec_root: &Path,
    rootfs: &Path,
    dest: &str,
    vol_dir: &Path,
    data: &Path,
) -> Result<(), CopyUpError> {
    let io_err = |source| CopyUpError::Io {
        dest: dest.to_string(),
        source,
    };
    let _g = guard();
    finish_locked(vol_dir, data).map_err(io_err)?;
    let src = resolve_in(rootfs, dest).map_err(io_err)?;
    match std::fs::metadata(&src) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(e)),
        Ok(m) if !m.is_dir() => return Err(CopyUpError::NotADirectory(src.display().to_string())),
        Ok(_) => {}
    }
    if std::fs::read_dir(data).map_err(io_err)?.next().is_some() {
        return Ok(());
    }
    let marker = vol_dir.join(MARKER);
    std::fs::File::create(&marker)
        .and_then(|f| f.sync_all())
        .map_err(io_err)?;
    wharf_fs::fsync_dir(vol_dir).map_err(io_err)?;
    let mut links = HashMap::new();
    let mut first = true;
    for e in std::fs::read_dir(&src).map_err(io_err)? {
        let e = e.map_err(io_err)?;
        copy_entry(&e.path(), &data.join(e.file_name()), &mut links).map_err(io_err)?;
        if std::mem::take(&mut first) {
            failpoint::hit(exec_root, failpoint::COPY_UP_PARTIAL);
        }
    }
    let meta = std::fs::symlink_metadata(&src).map_err(io_err)?;
    copy_attrs(&src, data, &meta).map_err(io_err)?;
    syncfs(data).map_err(io_err)?;
    std::fs::remove_file(&marker).map_err(io_err)?;
    wharf_fs::fsync_dir(vol_dir).map_err(io_err)
}

/// One sync of the volume's filesystem instead of an fsync per file.
fn syncfs(p: &Path) -> io::Result<()> {
    let f = std::fs::File::open(p)?;
    // SAFETY: syncfs on a descriptor we own.
    let r = unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn copy_entry(src: &Path, dst: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(src)?;
    let ft = meta.file_type();
    if ft.is_dir() {
        std::fs::create_dir(dst)?;
        for e in std::fs::read_dir(src)? {
            let e = e?;
            copy_entry(&e.path(), &dst.join(e.file_name()), links)?;
        }
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?;
    } else if ft.is_file() {
        let key = (meta.dev(), meta.ino());
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&key) {
                return std::fs::hard_link(first, dst);
            }
            links.insert(key, dst.to_path_buf());
        }
        std::fs::copy(src, dst)?;
    } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
        let c = cpath(dst)?;
        // SAFETY: mknod with a valid C path.
        let r = unsafe { libc::mknod(c.as_ptr(), meta.mode() as libc::mode_t, meta.rdev()) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    } else {
        // Sockets belong to the process that made them; dockerd's copy skips them too.
        return Ok(());
    }
    copy_attrs(src, dst, &meta)
}

/// Owner, then mode (a chown clears set-id bits), xattrs and times; symlinks keep their own.
fn copy_attrs(src: &Path, dst: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))?;
    let symlink = meta.file_type().is_symlink();
    if !symlink {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    copy_xattrs(src, dst)?;
    let times = [
        libc::timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        libc::timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    ];
    let c = cpath(dst)?;
    // SAFETY: a valid C path and two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::ENODATA))
}

fn copy_xattrs(src: &Path, dst: &Path) -> io::Result<()> {
    let (s, d) = (cpath(src)?, cpath(dst)?);
    let mut names = vec![0u8; 4096];
    loop {
        // SAFETY: the buffer is as long as we say.
        let n = unsafe { libc::llistxattr(s.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
        if n >= 0 {
            names.truncate(n as usize);
            break;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ERANGE) {
            names.resize(names.len() * 4, 0);
            continue;
        }
        return if unsupported(&e) { Ok(()) } else { Err(e) };
    }
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut value = vec![0u8; 65536];
        // SAFETY: the buffer is as long as we say.
        let n = unsafe {
            libc::lgetxattr(
                s.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if unsupported(&e) {
                continue;
            }
            return Err(e);
        }
        // SAFETY: the value is n bytes of our buffer.
        let r = unsafe {
            libc::lsetxattr(
                d.as_ptr(),
                cname.as_ptr(),
                value.as_ptr().cast(),
                n as usize,
                0,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            if !unsupported(&e) {
                return Err(e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
