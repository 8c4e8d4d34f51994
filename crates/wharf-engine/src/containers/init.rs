//! `--init` (HostConfig.Init): Wharf's own init (`init/wharf_init.rs`, built static by
//! build.rs) runs as the container's PID 1, forwarding signals to the command and reaping
//! zombies, as Docker's docker-init does.
//!
//! The binary is written to `<data-root>/wharf-init` at daemon start and bind-mounted read-only
//! at Docker's path, `/sbin/docker-init`, and the process becomes
//! `/sbin/docker-init -- <path> <args...>`; inspect keeps showing the user's command.
//!
//! Not the exec root: hosts commonly mount `/run` `noexec`, a bind mount keeps that flag, and
//! the container would die at its first exec with nothing but exit code 255 to show for it.

use crate::error::EngineError;
use nix::sys::statvfs::{statvfs, FsFlags};
use std::fs::{self, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wharf_runtime::exec_lookup::resolve_in_root;
use wharf_runtime::spec::{BindMount, SpecInput};

/// The static init, compiled by build.rs.
const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/wharf-init"));

/// Where Docker mounts its init, so scripts and `ps` output look the same.
pub(crate) const CONTAINER_PATH: &str = "/sbin/docker-init";

fn host_path(data_root: &Path) -> PathBuf {
    data_root.join("wharf-init")
}

/// Puts the init binary into the data root, unless this very binary is there already (a
/// daemon start should not rewrite and fsync it every time). Replacing it by rename leaves
/// containers that have the previous one mounted untouched: they hold the old inode.
pub(crate) fn install(data_root: &Path) -> io::Result<()> {
    let path = host_path(data_root);
    let current = fs::metadata(&path)
        .is_ok_and(|m| m.permissions().mode() & 0o7777 == 0o755 && m.len() == BINARY.len() as u64)
        && fs::read(&path).is_ok_and(|b| b == BINARY);
    if !current {
        wharf_fs::atomic_write_mode(&path, BINARY, 0o755)?;
        // The daemon's umask may have narrowed the mode; containers running as any user must
        // be able to execute their PID 1.
        fs::set_permissions(&path, Permissions::from_mode(0o755))?;
    }
    if statvfs(&path).is_ok_and(|s| s.flags().contains(FsFlags::ST_NOEXEC)) {
        tracing::warn!(
            path = %path.display(),
            "the data root is mounted noexec: containers started with --init will fail"
        );
    }
    Ok(())
}

/// Makes `input` start the init with the user's command as its child.
pub(super) fn wrap(data_root: &Path, input: &mut SpecInput) -> Result<(), EngineError> {
    create_mountpoint(&input.rootfs).map_err(|e| {
        EngineError::internal(format!(
            "failed to create task for container: OCI runtime create failed: wharf-shim: \
             creating mountpoint {CONTAINER_PATH} in the rootfs: {e}: unknown"
        ))
    })?;
    input.bind_mounts.push(BindMount {
        source: host_path(data_root),
        destination: CONTAINER_PATH.to_string(),
        readonly: true,
        propagation: "rprivate".into(),
        ..Default::default()
    });
    let user_args = std::mem::take(&mut input.args);
    input.args = [CONTAINER_PATH.to_string(), "--".to_string()]
        .into_iter()
        .chain(user_args)
        .collect();
    Ok(())
}

/// The runtime would create the bind mount's target itself, but the shim first checks that the
/// process's executable exists in the rootfs (to fail in Docker's words), so it has to be there
/// already: an empty executable file in the container's writable layer, covered by the mount.
/// Paths are resolved as inside the container so that an image's symlinks cannot make this
/// create a file on the host.
fn create_mountpoint(rootfs: &Path) -> io::Result<()> {
    let dir = resolve_in_root(rootfs, Path::new("/sbin"))?;
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let file = resolve_in_root(rootfs, Path::new(CONTAINER_PATH))?;
    OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o755)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt};

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    fn u64_at(b: &[u8], at: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(a)
    }

    /// The init runs in images without a libc: it must have no program interpreter.
    #[test]
    fn binary_is_static_and_small() {
        const PT_INTERP: u32 = 3;
        let b = BINARY;
        assert_eq!(&b[..4], b"\x7fELF");
        assert_eq!(b[4], 2, "64-bit ELF");
        let phoff = u64_at(b, 0x20) as usize;
        let phentsize = usize::from(u16_at(b, 0x36));
        let phnum = usize::from(u16_at(b, 0x38));
        assert!(phnum > 0);
        for i in 0..phnum {
            assert_ne!(
                u32_at(b, phoff + i * phentsize),
                PT_INTERP,
                "dynamically linked"
            );
        }
        assert!(b.len() < 1 << 20, "wharf-init grew to {} bytes", b.len());
    }

    #[test]
    fn install_writes_an_executable_once() {
        let t = tempfile::tempdir().unwrap();
        install(t.path()).unwrap();
        let path = t.path().join("wharf-init");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
        assert_eq!(fs::read(&path).unwrap(), BINARY);
        // Unchanged: kept as is (same inode); changed: replaced.
        install(t.path()).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().ino(), meta.ino());
        fs::write(&path, b"old").unwrap();
        install(t.path()).unwrap();
        assert_eq!(fs::read(&path).unwrap(), BINARY);
    }

    #[test]
    fn wrap_runs_the_command_under_docker_init() {
        let t = tempfile::tempdir().unwrap();
        let mut input = SpecInput {
            rootfs: t.path().to_path_buf(),
            args: vec!["sleep".into(), "1".into()],
            ..Default::default()
        };
        wrap(Path::new("/var/lib/wharf"), &mut input).unwrap();
        assert_eq!(input.args, ["/sbin/docker-init", "--", "sleep", "1"]);
        let m = &input.bind_mounts[0];
        assert_eq!(m.source, Path::new("/var/lib/wharf/wharf-init"));
        assert_eq!(m.destination, "/sbin/docker-init");
        assert!(m.readonly);
        let meta = fs::metadata(t.path().join("sbin/docker-init")).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o111, 0o111);
        // A second start finds the mountpoint already there.
        create_mountpoint(t.path()).unwrap();
    }

    #[test]
    fn mountpoint_follows_symlinks_inside_the_rootfs_only() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let rootfs = t.path().join("rootfs");
        fs::create_dir_all(rootfs.join("usr/sbin")).unwrap();
        // An absolute link to a host directory must land inside the rootfs.
        symlink(outside.path(), rootfs.join("sbin")).unwrap();
        fs::create_dir_all(rootfs.join(outside.path().strip_prefix("/").unwrap())).unwrap();
        create_mountpoint(&rootfs).unwrap();
        assert!(!outside.path().join("docker-init").exists());
        let inside = rootfs
            .join(outside.path().strip_prefix("/").unwrap())
            .join("docker-init");
        assert!(inside.is_file());
    }
}
