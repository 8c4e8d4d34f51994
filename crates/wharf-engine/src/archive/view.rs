//! Which filesystem a copy sees, and how it gets there.
//!
//! * A **running** container: its init's root, `/proc/<pid>/root`, opened as a descriptor.
//!   Walks from it cross the mounts of the container's own mount namespace, so volumes,
//!   binds and tmpfs are seen as the container sees them. The descriptor is checked to be
//!   the root of the container's rootfs mount (same device and inode as the host side of
//!   it), so a pid reused by another process is refused rather than read.
//! * A **stopped** (or created) container: a thread of its own unshares its mount namespace
//!   (`CLONE_NEWNS`, which also gives it its own root and cwd), makes every mount a slave so
//!   nothing it mounts reaches the host, mounts the writable layer over
//!   `<exec-root>/archive`, binds the container's volume and bind mounts at their
//!   destinations, runs the work and exits. The mounts exist only in that namespace: they
//!   vanish with the thread, and with wharfd if it dies mid-copy, so a crash leaves nothing
//!   mounted anywhere (the empty directory stays, and is reused). Every such thread mounts
//!   over the same directory, each in its own namespace.
//!
//! Both run under the container's operation lock (the one start, stop and rm take), so a
//! start cannot mount the same upper and work directories while a stopped container's layer
//! is mounted here, and a container does not go away under a copy.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use wharf_api::container::MountPoint;
use wharf_fs::root::{fstat, is_dir, join, open_child, Root};

/// Opens a running container's root through its init's `/proc/<pid>/root`.
pub(crate) fn running_root(pid: i64, host_rootfs: &Path) -> io::Result<Root> {
    let root = Root::open(Path::new(&format!("/proc/{pid}/root")))?;
    let seen = fstat(root.fd())?;
    let want = std::fs::metadata(host_rootfs)?;
    use std::os::unix::fs::MetadataExt;
    if seen.st_dev != want.dev() || seen.st_ino != want.ino() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the process is not the container's any more",
        ));
    }
    Ok(root)
}

/// What a stopped container's view is made of.
pub(crate) struct Stopped {
    pub layer: Vec<wharf_storage::Mount>,
    /// Volume and bind mounts, in the container's order (none for export).
    pub binds: Vec<MountPoint>,
    /// Where the layer is mounted inside the private namespace.
    pub mount_dir: PathBuf,
}

/// Runs `job` on the stopped container's filesystem, on a thread of its own (see above),
/// and answers what it returns.
pub(crate) async fn with_stopped<T: Send + 'static>(
    view: Stopped,
    job: impl FnOnce(&Root) -> T + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("wharf-archive".into())
        .spawn(move || {
            let _ = tx.send(in_private_namespace(&view, job));
        })?;
    rx.await
        .map_err(|_| io::Error::other("the filesystem thread ended without an answer"))?
}

fn in_private_namespace<T>(view: &Stopped, job: impl FnOnce(&Root) -> T) -> io::Result<T> {
    use nix::mount::MsFlags;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_FS)?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )?;
    wharf_storage::mount_all(&view.layer, &view.mount_dir)
        .map_err(|e| io::Error::other(format!("mounting the container's layer: {e}")))?;
    let root = Root::open(&view.mount_dir)?;
    for m in &view.binds {
        bind(&root, m)?;
    }
    let out = job(&root);
    drop(root);
    // The namespace goes with this thread anyway; detach now so the layer is free at once.
    let _ = nix::mount::umount2(&view.mount_dir, nix::mount::MntFlags::MNT_DETACH);
    Ok(out)
}

/// Binds a volume or bind mount's source at its destination, resolved inside the root and
/// made when missing (a directory, or an empty file for a file source), read-only when the
/// mount is.
fn bind(root: &Root, m: &MountPoint) -> io::Result<()> {
    if m.r#type == "tmpfs" || m.source.is_empty() {
        // A stopped container's tmpfs holds nothing: its directory in the layer is what a
        // copy sees, as with dockerd.
        return Ok(());
    }
    let source_is_dir = std::fs::metadata(&m.source)?.is_dir();
    let r = root.resolve(m.destination.as_bytes(), true)?;
    let target = if source_is_dir {
        root.open_dir_creating(&r.comps, r.missing)?
    } else {
        let (name, parent) = r
            .comps
            .split_last()
            .ok_or_else(|| io::Error::other("a file mount at /"))?;
        let dir = root.open_dir_creating(parent, r.missing.saturating_sub(1))?;
        if r.missing > 0 {
            let _ = wharf_fs::root::create_child(dir.as_fd(), name, libc::O_WRONLY, 0o644)?;
        }
        open_child(dir.as_fd(), name, libc::O_PATH)?
    };
    if r.exists() && r.stat.as_ref().is_some_and(is_dir) != source_is_dir {
        return Err(io::Error::other(format!(
            "cannot mount {} over {}",
            m.source,
            join(&r.comps).to_string_lossy()
        )));
    }
    // The mount call takes a path; this one names exactly the inode just resolved.
    let at = format!("/proc/thread-self/fd/{}", target.as_raw_fd());
    use nix::mount::MsFlags;
    nix::mount::mount(
        Some(Path::new(&m.source)),
        at.as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    if !m.rw {
        // Opened again: the walk now crosses onto the new mount, whose root this names.
        let fresh = root.open_resolved(&r.comps, libc::O_PATH)?;
        let at = format!("/proc/thread-self/fd/{}", fresh.as_raw_fd());
        nix::mount::mount(
            None::<&str>,
            at.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )?;
    }
    Ok(())
}
