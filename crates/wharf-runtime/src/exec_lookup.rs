//! Go's `exec.LookPath`, evaluated inside a container rootfs from the host.
//!
//! The shim runs this before creating the container so that a bad command fails with Docker's
//! exact wording (the docker CLI derives its exit code 126/127 from that text) instead of an
//! opaque runtime error after the namespaces are built. Symlinks are resolved as the container
//! would see them: absolute targets restart at the rootfs and `..` never climbs above it.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::shim_proto::StartErrorKind;

/// `PATH` used when the container environment has none (same as runc and Docker).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Linux's limit on symlinks followed in one lookup.
const MAX_SYMLINKS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum ExecLookupError {
    /// A bare name found in no `PATH` directory.
    #[error("exec: {name:?}: executable file not found in $PATH")]
    NotInPath { name: String },
    /// A name with a `/` that does not exist (or a path through a non-directory).
    #[error("exec: {name:?}: stat {name}: {reason}")]
    Stat {
        name: String,
        reason: String,
        errno: i32,
    },
    /// A directory, or a file without any execute bit.
    #[error("exec: {name:?}: permission denied")]
    NotExecutable { name: String },
    /// The rootfs itself could not be read.
    #[error("exec: {name:?}: {source}")]
    Io {
        name: String,
        #[source]
        source: io::Error,
    },
}

impl ExecLookupError {
    /// How the daemon should report it: 127 for not found, 126 for not executable.
    pub fn kind(&self) -> StartErrorKind {
        match self {
            Self::NotInPath { .. } => StartErrorKind::NotFound,
            Self::Stat { errno, .. } if *errno == libc::ENOENT => StartErrorKind::NotFound,
            Self::Stat { .. } | Self::Io { .. } => StartErrorKind::Other,
            Self::NotExecutable { .. } => StartErrorKind::NotExecutable,
        }
    }
}

/// Finds `arg0` the way the container's runtime will: a name without `/` is searched in
/// `path_env` (or [`DEFAULT_PATH`]), anything else is taken relative to `cwd`.
///
/// Returns the path as the container sees it (e.g. `/bin/sh`), symlinks left in place.
pub fn resolve_executable(
    rootfs: &Path,
    cwd: &str,
    path_env: Option<&str>,
    arg0: &str,
) -> Result<PathBuf, ExecLookupError> {
    let cwd = if cwd.is_empty() { "/" } else { cwd };
    if arg0.contains('/') {
        let in_container = join_container(cwd, arg0);
        return match check(rootfs, &in_container) {
            Ok(()) => Ok(in_container),
            Err(Check::Missing(e)) => Err(stat_error(arg0, e)),
            Err(Check::NotExecutable) => Err(ExecLookupError::NotExecutable {
                name: arg0.to_string(),
            }),
            Err(Check::Io(e)) => Err(ExecLookupError::Io {
                name: arg0.to_string(),
                source: e,
            }),
        };
    }
    if arg0.is_empty() {
        return Err(ExecLookupError::NotInPath {
            name: String::new(),
        });
    }
    let path_env = path_env.unwrap_or(DEFAULT_PATH);
    for dir in path_env.split(':') {
        // An empty element means the current directory, as in every shell.
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = join_container(&join_container(cwd, dir).to_string_lossy(), arg0);
        match check(rootfs, &candidate) {
            Ok(()) => return Ok(candidate),
            // Go keeps looking after any failure on one PATH entry.
            Err(_) => continue,
        }
    }
    Err(ExecLookupError::NotInPath {
        name: arg0.to_string(),
    })
}

fn stat_error(name: &str, e: io::Error) -> ExecLookupError {
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    ExecLookupError::Stat {
        name: name.to_string(),
        reason: errno_text(errno),
        errno,
    }
}

/// Go prints the bare strerror text, without Rust's " (os error N)" suffix.
fn errno_text(errno: i32) -> String {
    match errno {
        libc::ENOENT => "no such file or directory".into(),
        libc::ENOTDIR => "not a directory".into(),
        libc::ELOOP => "too many levels of symbolic links".into(),
        libc::EACCES => "permission denied".into(),
        libc::ENAMETOOLONG => "file name too long".into(),
        other => {
            let s = io::Error::from_raw_os_error(other).to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    }
}

/// Lexically joins a container path onto a container directory (no filesystem access).
fn join_container(base: &str, rel: &str) -> PathBuf {
    if rel.starts_with('/') {
        PathBuf::from(rel)
    } else {
        Path::new(base).join(rel)
    }
}

enum Check {
    Missing(io::Error),
    NotExecutable,
    Io(io::Error),
}

fn check(rootfs: &Path, in_container: &Path) -> Result<(), Check> {
    let host = match resolve_in_root(rootfs, in_container) {
        Ok(p) => p,
        Err(e) if is_missing(&e) => return Err(Check::Missing(e)),
        Err(e) => return Err(Check::Io(e)),
    };
    let meta = match std::fs::metadata(&host) {
        Ok(m) => m,
        Err(e) if is_missing(&e) => return Err(Check::Missing(e)),
        Err(e) => return Err(Check::Io(e)),
    };
    if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 {
        return Err(Check::NotExecutable);
    }
    Ok(())
}

fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP) | Some(libc::ENAMETOOLONG)
    )
}

/// Resolves every symlink in `path` as if `rootfs` were `/`, returning a host path that is
/// guaranteed to lie inside `rootfs`. The last component need not exist.
pub fn resolve_in_root(rootfs: &Path, path: &Path) -> io::Result<PathBuf> {
    // Components still to walk, in reverse so that pushing a symlink target is cheap.
    let mut pending: Vec<PathBuf> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .rev()
        .collect();
    // Resolved components below rootfs, each a plain name.
    let mut resolved: Vec<PathBuf> = Vec::new();
    let mut followed = 0usize;

    while let Some(comp) = pending.pop() {
        if comp.as_os_str() == OsStr::from_bytes(b"..") {
            resolved.pop();
            continue;
        }
        let mut host = rootfs.to_path_buf();
        host.extend(&resolved);
        host.push(&comp);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&host)?;
                if target.is_absolute() {
                    resolved.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(PathBuf::from(n)),
                        Component::ParentDir => pending.push(PathBuf::from("..")),
                        _ => {}
                    }
                }
            }
            Ok(m) => {
                if !pending.is_empty() && !m.is_dir() {
                    return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
                }
                resolved.push(comp);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !pending.is_empty() {
                    return Err(e);
                }
                resolved.push(comp);
            }
            Err(e) => return Err(e),
        }
    }
    let mut host = rootfs.to_path_buf();
    host.extend(&resolved);
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    /// A small busybox-like tree with the awkward cases.
    fn rootfs() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in [
            "bin",
            "usr/bin",
            "usr/local/bin",
            "etc",
            "home/user",
            "opt/app",
        ] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        let exe = |p: &str| {
            fs::write(r.join(p), b"#!/bin/sh\n").unwrap();
            fs::set_permissions(r.join(p), fs::Permissions::from_mode(0o755)).unwrap();
        };
        exe("bin/busybox");
        exe("opt/app/run");
        exe("home/user/tool");
        // Absolute symlinks, as `busybox --install -s` makes them.
        symlink("/bin/busybox", r.join("bin/sh")).unwrap();
        symlink("/bin/busybox", r.join("usr/bin/env")).unwrap();
        // A relative symlink climbing far above the root must stay inside.
        symlink(
            "../../../../../../bin/busybox",
            r.join("usr/local/bin/climb"),
        )
        .unwrap();
        // A symlinked directory.
        symlink("/opt/app", r.join("app")).unwrap();
        // An absolute symlink that would point at the host's /etc/passwd if followed naively.
        symlink("/etc/passwd", r.join("bin/passwdlink")).unwrap();
        fs::write(r.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
        fs::write(r.join("bin/notexec"), b"data").unwrap();
        fs::set_permissions(r.join("bin/notexec"), fs::Permissions::from_mode(0o644)).unwrap();
        symlink("loop2", r.join("bin/loop1")).unwrap();
        symlink("loop1", r.join("bin/loop2")).unwrap();
        t
    }

    #[test]
    fn bare_name_found_in_path_through_absolute_symlink() {
        let t = rootfs();
        let p = resolve_executable(t.path(), "/", None, "sh").unwrap();
        assert_eq!(p, PathBuf::from("/bin/sh"));
        let p = resolve_executable(t.path(), "/", Some("/usr/bin:/bin"), "env").unwrap();
        assert_eq!(p, PathBuf::from("/usr/bin/env"));
    }

    #[test]
    fn path_order_is_respected() {
        let t = rootfs();
        fs::copy(
            t.path().join("bin/busybox"),
            t.path().join("usr/bin/busybox"),
        )
        .unwrap();
        let p = resolve_executable(t.path(), "/", Some("/usr/bin:/bin"), "busybox").unwrap();
        assert_eq!(p, PathBuf::from("/usr/bin/busybox"));
        let p = resolve_executable(t.path(), "/", Some("/bin:/usr/bin"), "busybox").unwrap();
        assert_eq!(p, PathBuf::from("/bin/busybox"));
    }

    #[test]
    fn bare_name_not_found() {
        let t = rootfs();
        let e = resolve_executable(t.path(), "/", None, "nosuch").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"exec: "nosuch": executable file not found in $PATH"#
        );
        assert_eq!(e.kind(), StartErrorKind::NotFound);
    }

    #[test]
    fn non_executable_in_path_is_skipped() {
        let t = rootfs();
        let e = resolve_executable(t.path(), "/", Some("/bin"), "notexec").unwrap_err();
        assert_eq!(e.kind(), StartErrorKind::NotFound);
        // A directory with the name is skipped too.
        let e = resolve_executable(t.path(), "/", Some("/"), "bin").unwrap_err();
        assert!(e.to_string().contains("executable file not found in $PATH"));
    }

    #[test]
    fn missing_absolute_path() {
        let t = rootfs();
        let e = resolve_executable(t.path(), "/", None, "/no/such").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"exec: "/no/such": stat /no/such: no such file or directory"#
        );
        assert_eq!(e.kind(), StartErrorKind::NotFound);
    }

    #[test]
    fn not_executable_and_directory() {
        let t = rootfs();
        let e = resolve_executable(t.path(), "/", None, "/bin/notexec").unwrap_err();
        assert_eq!(e.to_string(), r#"exec: "/bin/notexec": permission denied"#);
        assert_eq!(e.kind(), StartErrorKind::NotExecutable);
        let e = resolve_executable(t.path(), "/", None, "/etc").unwrap_err();
        assert!(e.to_string().contains("permission denied"));
        assert_eq!(e.kind(), StartErrorKind::NotExecutable);
    }

    #[test]
    fn relative_path_against_cwd() {
        let t = rootfs();
        let p = resolve_executable(t.path(), "/home/user", None, "./tool").unwrap();
        assert_eq!(p, PathBuf::from("/home/user/tool"));
        let p = resolve_executable(t.path(), "/opt", None, "app/run").unwrap();
        assert_eq!(p, PathBuf::from("/opt/app/run"));
        let e = resolve_executable(t.path(), "/", None, "./tool").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"exec: "./tool": stat ./tool: no such file or directory"#
        );
        assert_eq!(e.kind(), StartErrorKind::NotFound);
    }

    #[test]
    fn symlinks_never_escape_rootfs() {
        let t = rootfs();
        // Climbing relative link resolves to <rootfs>/bin/busybox.
        let p = resolve_executable(t.path(), "/", None, "climb").unwrap();
        assert_eq!(p, PathBuf::from("/usr/local/bin/climb"));
        let host = resolve_in_root(t.path(), Path::new("/usr/local/bin/climb")).unwrap();
        assert_eq!(host, t.path().join("bin/busybox"));
        // Absolute link to /etc/passwd lands on the rootfs' own file, which is not executable.
        let host = resolve_in_root(t.path(), Path::new("/bin/passwdlink")).unwrap();
        assert_eq!(host, t.path().join("etc/passwd"));
        let e = resolve_executable(t.path(), "/", None, "/bin/passwdlink").unwrap_err();
        assert_eq!(e.kind(), StartErrorKind::NotExecutable);
        // `..` in the argument itself is clamped at the root.
        let p = resolve_executable(t.path(), "/", None, "/../../../bin/sh").unwrap();
        assert_eq!(p, PathBuf::from("/../../../bin/sh"));
        let host = resolve_in_root(t.path(), Path::new("/../../../bin/sh")).unwrap();
        assert_eq!(host, t.path().join("bin/busybox"));
    }

    #[test]
    fn symlinked_directory_in_middle() {
        let t = rootfs();
        let p = resolve_executable(t.path(), "/", None, "/app/run").unwrap();
        assert_eq!(p, PathBuf::from("/app/run"));
        let p = resolve_executable(t.path(), "/", Some("/app"), "run").unwrap();
        assert_eq!(p, PathBuf::from("/app/run"));
    }

    #[test]
    fn symlink_loop_and_not_a_directory() {
        let t = rootfs();
        let e = resolve_executable(t.path(), "/", None, "/bin/loop1").unwrap_err();
        assert!(e.to_string().contains("too many levels of symbolic links"));
        let e = resolve_executable(t.path(), "/", None, "/bin/busybox/x").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"exec: "/bin/busybox/x": stat /bin/busybox/x: not a directory"#
        );
        assert_eq!(e.kind(), StartErrorKind::Other);
    }

    #[test]
    fn empty_path_element_means_cwd() {
        let t = rootfs();
        let p = resolve_executable(t.path(), "/home/user", Some(":/bin"), "tool").unwrap();
        assert_eq!(p, PathBuf::from("/home/user/./tool"));
    }

    #[test]
    fn empty_name() {
        let t = rootfs();
        let e = resolve_executable(t.path(), "/", None, "").unwrap_err();
        assert_eq!(e.kind(), StartErrorKind::NotFound);
    }
}
