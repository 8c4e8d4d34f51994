//! A container's root directory as a file descriptor, and every path resolved inside it.
//!
//! Nothing here ever hands the kernel a path that could leave the root: each step of a walk
//! opens one component relative to its parent's descriptor with `openat2(2)` and
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`, and symlinks are read and
//! followed here, textually, with `/` meaning the container's root and `..` stopping there
//! (moby's `FollowSymlinkInScope`). Whatever is opened later by its resolved (symlink-free)
//! path goes through `RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS`, so a symlink swapped in by a
//! process of a running container between the walk and the open fails the open instead of
//! leading anywhere.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// At most this many symlinks in one resolution (Linux's own limit is 40 per lookup;
/// moby's `FollowSymlinkInScope` allows 255).
const MAX_LINKS: usize = 255;

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

/// The kernel's `struct open_how` (libc's is non-exhaustive, so it cannot be built).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(2)`. `flags` get `O_CLOEXEC`; `mode` matters with `O_CREAT` only.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &OsStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_bytes()).map_err(|_| errno(libc::EINVAL))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: u64::from(mode),
        resolve,
    };
    // The kernel answers EAGAIN to RESOLVE_IN_ROOT lookups raced by a rename; try again a
    // few times, as its documentation asks.
    for _ in 0..16 {
        // SAFETY: `c` is a NUL-terminated string and `how` a valid `open_how` that both
        // outlive the call; the size passed is the struct's.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if r >= 0 {
            // SAFETY: a non-negative return of openat2 is a new descriptor we now own.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as i32) });
        }
        let e = io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) {
            return Err(e);
        }
    }
    Err(errno(libc::EAGAIN))
}

/// One component, beneath `dir`, never following a symlink (the link itself is opened).
const STEP: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
/// A resolved path from the root: `..` cannot climb out, no symlink is taken.
const CANONICAL: u64 =
    libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    nix::sys::stat::fstat(fd.as_raw_fd()).map_err(io::Error::from)
}

/// Lstat of `name` in `dir`; `None` when it does not exist.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<libc::stat>> {
    match nix::sys::stat::fstatat(
        Some(dir.as_raw_fd()),
        name,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(st) => Ok(Some(st)),
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The target of the symlink `fd` (opened with `O_PATH | O_NOFOLLOW`).
pub fn readlink_fd(fd: BorrowedFd<'_>) -> io::Result<OsString> {
    nix::fcntl::readlinkat(Some(fd.as_raw_fd()), "").map_err(io::Error::from)
}

pub fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

pub fn is_symlink(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFLNK
}

/// The components of a path, `.` and empty ones dropped (`..` kept for the walk).
pub fn components(path: &[u8]) -> Vec<OsString> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| OsString::from_vec(c.to_vec()))
        .collect()
}

/// `a/b/c` of resolved components (`.` for none): a path relative to the root.
pub fn join(comps: &[OsString]) -> OsString {
    if comps.is_empty() {
        return OsString::from(".");
    }
    let mut out = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_bytes());
    }
    OsString::from_vec(out)
}

/// `/a/b/c`, how the container names a resolved path.
pub fn display(comps: &[OsString]) -> String {
    if comps.is_empty() {
        return "/".into();
    }
    format!("/{}", join(comps).to_string_lossy())
}

/// Where a path leads inside the root.
#[derive(Debug)]
pub struct Resolved {
    /// Every symlink followed (except a last one not asked to be), `..` applied: the path
    /// from the root, without symlinks. When something is missing, the rest of the path is
    /// appended lexically, as moby's `FollowSymlinkInScope` does.
    pub comps: Vec<OsString>,
    /// How many of the last `comps` do not exist (0: the whole path does).
    pub missing: usize,
    /// The lstat of what the path names, when it exists.
    pub stat: Option<libc::stat>,
}

impl Resolved {
    pub fn exists(&self) -> bool {
        self.missing == 0
    }
}

/// A container's root.
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens `path` (a path of the daemon's, never one from a request) as the root.
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(io::Error::from)?;
        // SAFETY: `open` returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Root { fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Resolves `path` (absolute or not: both start at the root). `follow_last` follows a
    /// final symlink too; a path ending in `/` or `/.` always does, as the kernel does.
    /// A component that exists but is not a directory, with more to come, is `ENOTDIR`.
    pub fn resolve(&self, path: &[u8], follow_last: bool) -> io::Result<Resolved> {
        self.resolve_depth(path, follow_last, 0)
    }

    fn resolve_depth(&self, path: &[u8], follow_last: bool, depth: usize) -> io::Result<Resolved> {
        if depth > 8 {
            return Err(errno(libc::ELOOP));
        }
        let trailing = path.ends_with(b"/") || path.ends_with(b"/.") || path == b".";
        let follow_last = follow_last || trailing;
        let mut queue: std::collections::VecDeque<OsString> = components(path).into();
        // The resolved components and the descriptor of each (O_PATH).
        let mut stack: Vec<(OsString, OwnedFd)> = Vec::new();
        let mut stat: Option<libc::stat> = None;
        let mut links = 0;
        while let Some(c) = queue.pop_front() {
            if c == ".." {
                stack.pop();
                stat = None;
                continue;
            }
            let last = queue.is_empty();
            let parent = stack.last().map(|(_, fd)| fd.as_fd()).unwrap_or(self.fd());
            let fd = match openat2(parent, &c, libc::O_PATH | libc::O_NOFOLLOW, 0, STEP) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    let mut comps: Vec<OsString> = stack.into_iter().map(|(n, _)| n).collect();
                    let existing = comps.len();
                    comps.push(c);
                    let mut low = comps.len();
                    for q in queue {
                        if q == ".." {
                            comps.pop();
                            low = low.min(comps.len());
                        } else {
                            comps.push(q);
                        }
                    }
                    if low <= existing {
                        // `missing/..` climbed back to what exists: walk that again.
                        return self.resolve_depth(join(&comps).as_bytes(), follow_last, depth + 1);
                    }
                    let missing = comps.len() - existing;
                    return Ok(Resolved {
                        comps,
                        missing,
                        stat: None,
                    });
                }
                Err(e) => return Err(e),
            };
            let st = fstat(fd.as_fd())?;
            if is_symlink(&st) && (!last || follow_last) {
                links += 1;
                if links > MAX_LINKS {
                    return Err(errno(libc::ELOOP));
                }
                let target = readlink_fd(fd.as_fd())?;
                if target.as_bytes().starts_with(b"/") {
                    stack.clear();
                }
                for t in components(target.as_bytes()).into_iter().rev() {
                    queue.push_front(t);
                }
                stat = None;
                continue;
            }
            if !last && !is_dir(&st) {
                return Err(errno(libc::ENOTDIR));
            }
            stat = Some(st);
            stack.push((c, fd));
        }
        let stat = match stat {
            Some(st) => st,
            // The root itself, or a path that ended by climbing (`a/..`).
            None => match stack.last() {
                Some((_, fd)) => fstat(fd.as_fd())?,
                None => fstat(self.fd())?,
            },
        };
        if trailing && !is_dir(&stat) {
            return Err(errno(libc::ENOTDIR));
        }
        Ok(Resolved {
            comps: stack.into_iter().map(|(n, _)| n).collect(),
            missing: 0,
            stat: Some(stat),
        })
    }

    /// Opens a resolved path (`Resolved::comps` of an existing one). A final symlink is
    /// opened itself only with `O_PATH | O_NOFOLLOW`; anything else fails with `ELOOP`.
    pub fn open_resolved(&self, comps: &[OsString], flags: i32) -> io::Result<OwnedFd> {
        openat2(
            self.fd(),
            &join(comps),
            flags | libc::O_NOFOLLOW,
            0,
            CANONICAL,
        )
    }

    /// The directory `comps` (resolved), created with the missing ones (mode 0755, owned by
    /// whoever runs wharfd, as dockerd's `MkdirAllAndChownNew` with root's ids), opened
    /// `O_PATH`.
    pub fn open_dir_creating(&self, comps: &[OsString], missing: usize) -> io::Result<OwnedFd> {
        let existing = comps.len() - missing;
        let mut dir = self.open_resolved(&comps[..existing], libc::O_PATH | libc::O_DIRECTORY)?;
        for c in &comps[existing..] {
            match nix::sys::stat::mkdirat(
                Some(dir.as_raw_fd()),
                c.as_os_str(),
                nix::sys::stat::Mode::from_bits_truncate(0o755),
            ) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
            dir = openat2(
                dir.as_fd(),
                c,
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
                STEP,
            )?;
        }
        Ok(dir)
    }
}

/// Opens `name` in `dir` (one component, never a symlink's target).
pub fn open_child(dir: BorrowedFd<'_>, name: &OsStr, flags: i32) -> io::Result<OwnedFd> {
    openat2(dir, name, flags | libc::O_NOFOLLOW, 0, STEP)
}

/// Creates `name` in `dir` with `flags` (`O_CREAT | O_EXCL` added) and `mode`.
pub fn create_child(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    openat2(
        dir,
        name,
        flags | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
        mode,
        STEP,
    )
}
