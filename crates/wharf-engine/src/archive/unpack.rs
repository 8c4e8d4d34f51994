//! Extracting a tar into a directory of a container, as moby's `archive.Untar` does for
//! `PUT /archive` (existing files replaced, directories merged, ids and modes of the
//! archive, setuid bits kept, directory times set last), with every entry kept inside the
//! target directory.
//!
//! Refused with a 400 before anything of the entry is written: absolute names and names
//! that climb out with `..` (dockerd joins an absolute name under the target; Wharf refuses
//! it), a symlink whose target, taken from the symlink's directory, leaves the target
//! (moby's "invalid symlink"), a hard link to anything outside it ("invalid hardlink"), an
//! entry whose directory is reached through a symlink leading out of the target (a symlink
//! first, then a file through it), and device nodes (dockerd makes them; Wharf does not let
//! a copy create a way to a host device).

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use wharf_fs::root::{components, create_child, display, is_dir, lstat_at, open_child, Root};

/// Reads from the archive and writes to each file in pieces this big.
const WRITE_BUFFER: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, Default)]
pub struct UnpackOptions {
    /// Refuse to replace a directory by a non-directory, or the other way round.
    pub no_overwrite_dir_non_dir: bool,
    /// Every entry owned by these ids (`copyUIDGID` with a container `User`), instead of
    /// the archive's.
    pub chown: Option<(u32, u32)>,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The archive asks for something refused (a 400).
    #[error("{0}")]
    Refused(String),
    /// Not a tar, or a cut one (a 400).
    #[error("{0}")]
    BadArchive(String),
    /// The daemon's side failed (a 500).
    #[error("{op}: {source}")]
    Io { op: String, source: io::Error },
}

fn io_err(op: impl Into<String>) -> impl FnOnce(io::Error) -> UnpackError {
    move |source| UnpackError::Io {
        op: op.into(),
        source,
    }
}

fn quoted(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

/// Cleans `name` (a path relative to the target) lexically: `None` when it leaves it.
fn clean_within(base: &[OsString], name: &[u8]) -> Option<Vec<OsString>> {
    let mut out = base.to_vec();
    for c in components(name) {
        if c == ".." {
            out.pop()?;
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The directory of the last entry, kept while the tree above it cannot have changed.
struct ParentCache {
    rel: Vec<OsString>,
    fd: OwnedFd,
}

pub struct Unpacker<'a> {
    root: &'a Root,
    /// The target directory, resolved.
    dest: Vec<OsString>,
    opts: UnpackOptions,
    cache: Option<ParentCache>,
    /// Directories whose times are set at the end (later entries would change them).
    dir_times: Vec<(Vec<OsString>, i64)>,
}

impl<'a> Unpacker<'a> {
    pub fn new(root: &'a Root, dest: Vec<OsString>, opts: UnpackOptions) -> Self {
        Unpacker {
            root,
            dest,
            opts,
            cache: None,
            dir_times: Vec::new(),
        }
    }

    fn dest_name(&self) -> String {
        display(&self.dest)
    }

    pub fn unpack(mut self, reader: impl Read) -> Result<(), UnpackError> {
        // tar reads headers 512 bytes at a time; the body comes from the HTTP request.
        let mut ar = tar::Archive::new(io::BufReader::with_capacity(WRITE_BUFFER, reader));
        let entries = ar
            .entries()
            .map_err(|e| UnpackError::BadArchive(format!("reading the archive: {e}")))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| UnpackError::BadArchive(format!("reading the archive: {e}")))?;
            self.entry(&mut entry)?;
        }
        for (rel, mtime) in std::mem::take(&mut self.dir_times).into_iter().rev() {
            let mut comps = self.dest.clone();
            comps.extend(rel);
            if let Ok(fd) = self
                .root
                .open_resolved(&comps, libc::O_RDONLY | libc::O_DIRECTORY)
            {
                set_times(fd.as_fd(), mtime);
            }
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let xattrs = entry_xattrs(entry)?;
        let outside = || {
            UnpackError::Refused(format!(
                "{} is outside of {:?}",
                quoted(&raw),
                self.dest_name()
            ))
        };
        if raw.starts_with(b"/") {
            return Err(outside());
        }
        let rel = clean_within(&[], &raw).ok_or_else(outside)?;
        let Some((name, parent_rel)) = rel.split_last() else {
            // `.` or `./`: the target itself, which exists.
            return Ok(());
        };
        let (name, parent_rel) = (name.clone(), parent_rel.to_vec());
        let parent = self.parent(&parent_rel, &raw)?;
        let header = entry.header().clone();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let (uid, gid) = match self.opts.chown {
            Some(ids) => ids,
            None => (
                header.uid().unwrap_or(0) as u32,
                header.gid().unwrap_or(0) as u32,
            ),
        };
        let mtime = header.mtime().unwrap_or(0) as i64;
        let is_dir_entry = kind == tar::EntryType::Directory;

        if let Some(st) = lstat_at(parent.as_fd(), &name).map_err(io_err("reading the target"))? {
            let exists_dir = is_dir(&st);
            if self.opts.no_overwrite_dir_non_dir && exists_dir && !is_dir_entry {
                return Err(UnpackError::Refused(format!(
                    "cannot overwrite directory {:?} with non-directory {:?}",
                    display(&[self.dest.clone(), rel.clone()].concat()),
                    self.dest_name()
                )));
            }
            if self.opts.no_overwrite_dir_non_dir && !exists_dir && is_dir_entry {
                return Err(UnpackError::Refused(format!(
                    "cannot overwrite non-directory {:?} with directory {:?}",
                    display(&[self.dest.clone(), rel.clone()].concat()),
                    self.dest_name()
                )));
            }
            if !(exists_dir && is_dir_entry) {
                // The tree changes: a cached directory may be the one going.
                self.cache = None;
                remove_all_at(parent.as_fd(), &name)
                    .map_err(io_err(format!("removing {}", quoted(&raw))))?;
            }
        }

        let what = || format!("extracting {}", quoted(&raw));
        match kind {
            tar::EntryType::Directory => {
                match nix::sys::stat::mkdirat(
                    Some(parent.as_raw_fd()),
                    name.as_os_str(),
                    nix::sys::stat::Mode::from_bits_truncate(0o700),
                ) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(io_err(what())(e.into())),
                }
                let fd = open_child(parent.as_fd(), &name, libc::O_RDONLY | libc::O_DIRECTORY)
                    .map_err(io_err(what()))?;
                own_and_mode(fd.as_fd(), uid, gid, mode).map_err(io_err(what()))?;
                set_xattrs(fd.as_fd(), &xattrs).map_err(io_err(what()))?;
                self.dir_times.push((rel.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = create_child(parent.as_fd(), &name, libc::O_WRONLY, 0o600)
                    .map_err(io_err(what()))?;
                let mut out = io::BufWriter::with_capacity(WRITE_BUFFER, std::fs::File::from(fd));
                io::copy(entry, &mut out)
                    .and_then(|_| io::Write::flush(&mut out))
                    .map_err(|e| {
                        if e.kind() == io::ErrorKind::UnexpectedEof {
                            UnpackError::BadArchive(format!("reading the archive: {e}"))
                        } else {
                            io_err(what())(e)
                        }
                    })?;
                let file = out
                    .into_inner()
                    .map_err(|e| io_err(what())(e.into_error()))?;
                own_and_mode(file.as_fd(), uid, gid, mode).map_err(io_err(what()))?;
                // After the chown, which clears `security.capability`.
                set_xattrs(file.as_fd(), &xattrs).map_err(io_err(what()))?;
                set_times(file.as_fd(), mtime);
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                // moby: the target joined to the symlink's directory must stay in the
                // target directory (an absolute target is joined there too).
                if clean_within(&parent_rel, &target).is_none() {
                    return Err(UnpackError::Refused(format!(
                        "invalid symlink {} -> {}",
                        quoted(&raw),
                        quoted(&target)
                    )));
                }
                self.cache = None;
                nix::unistd::symlinkat(
                    OsStr::from_bytes(&target),
                    Some(parent.as_raw_fd()),
                    name.as_os_str(),
                )
                .map_err(|e| io_err(what())(e.into()))?;
                nix::unistd::fchownat(
                    Some(parent.as_raw_fd()),
                    name.as_os_str(),
                    Some(uid.into()),
                    Some(gid.into()),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| io_err(what())(e.into()))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let invalid = || {
                    UnpackError::Refused(format!(
                        "invalid hardlink {} -> {}",
                        quoted(&raw),
                        quoted(&target)
                    ))
                };
                if target.starts_with(b"/") {
                    return Err(invalid());
                }
                let trel = clean_within(&[], &target).ok_or_else(invalid)?;
                let Some((tname, tparent_rel)) = trel.split_last() else {
                    return Err(invalid());
                };
                let tparent = self.parent(tparent_rel, &target).map_err(|e| match e {
                    UnpackError::Refused(_) => invalid(),
                    e => e,
                })?;
                nix::unistd::linkat(
                    Some(tparent.as_raw_fd()),
                    tname.as_os_str(),
                    Some(parent.as_raw_fd()),
                    name.as_os_str(),
                    nix::fcntl::AtFlags::empty(),
                )
                .map_err(|e| io_err(what())(e.into()))?;
            }
            tar::EntryType::Fifo => {
                nix::sys::stat::mknodat(
                    Some(parent.as_raw_fd()),
                    name.as_os_str(),
                    nix::sys::stat::SFlag::S_IFIFO,
                    nix::sys::stat::Mode::from_bits_truncate(0o600),
                    0,
                )
                .map_err(|e| io_err(what())(e.into()))?;
                let fd = open_child(parent.as_fd(), &name, libc::O_PATH).map_err(io_err(what()))?;
                // fchown/fchmod need a real descriptor; an O_PATH one goes through its
                // /proc/self/fd link, which names this very inode.
                let path = format!("/proc/thread-self/fd/{}", fd.as_raw_fd());
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(io_err(what()))?;
                std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
                    .map_err(io_err(what()))?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(UnpackError::Refused(format!(
                    "Wharf does not create device nodes: {} is a {} device",
                    quoted(&raw),
                    if kind == tar::EntryType::Char {
                        "character"
                    } else {
                        "block"
                    }
                )));
            }
            other => {
                return Err(UnpackError::Refused(format!(
                    "unhandled tar header type {}",
                    other.as_byte()
                )));
            }
        }
        Ok(())
    }

    /// The directory `rel` (relative to the target), reached by following its symlinks
    /// inside the container and made when missing; refused when it leads out of the target.
    fn parent(&mut self, rel: &[OsString], raw: &[u8]) -> Result<OwnedFd, UnpackError> {
        if let Some(c) = &self.cache {
            if c.rel == rel {
                return c.fd.try_clone().map_err(io_err("duplicating a descriptor"));
            }
        }
        let mut path = self.dest.clone();
        path.extend(rel.iter().cloned());
        let outside = || {
            UnpackError::Refused(format!(
                "{} is outside of {:?}",
                quoted(raw),
                self.dest_name()
            ))
        };
        let resolved = match self
            .root
            .resolve(wharf_fs::root::join(&path).as_bytes(), true)
        {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(UnpackError::Refused(format!(
                    "extracting {}: a parent is not a directory",
                    quoted(raw)
                )))
            }
            Err(e) => return Err(io_err(format!("resolving {}", quoted(raw)))(e)),
        };
        if !resolved.comps.starts_with(&self.dest) {
            return Err(outside());
        }
        if resolved.exists() && !resolved.stat.as_ref().is_some_and(is_dir) {
            return Err(UnpackError::Refused(format!(
                "extracting {}: a parent is not a directory",
                quoted(raw)
            )));
        }
        let fd = self
            .root
            .open_dir_creating(&resolved.comps, resolved.missing)
            .map_err(io_err(format!("making the directory of {}", quoted(raw))))?;
        self.cache = Some(ParentCache {
            rel: rel.to_vec(),
            fd: fd.try_clone().map_err(io_err("duplicating a descriptor"))?,
        });
        Ok(fd)
    }
}

/// The entry's `SCHILY.xattr.*` PAX records (Go's `hdr.Xattrs`).
fn entry_xattrs<R: Read>(
    entry: &mut tar::Entry<'_, R>,
) -> Result<Vec<(String, Vec<u8>)>, UnpackError> {
    let bad = |e: io::Error| UnpackError::BadArchive(format!("reading the archive: {e}"));
    let Some(exts) = entry.pax_extensions().map_err(bad)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for ext in exts {
        let ext = ext.map_err(bad)?;
        if let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
            out.push((name.to_string(), ext.value_bytes().to_vec()));
        }
    }
    Ok(out)
}

/// Sets the archive's xattrs; like moby, one the filesystem does not take (`ENOTSUP`) or
/// refuses (`EPERM`: `trusted.*` through overlayfs) is skipped.
fn set_xattrs(fd: BorrowedFd<'_>, xattrs: &[(String, Vec<u8>)]) -> io::Result<()> {
    for (name, value) in xattrs {
        match wharf_fs::xattr::set(fd, name, value) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM)) => {
                tracing::debug!(xattr = %name, error = %e, "cp: xattr not set");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// chown, then chmod (a chown clears setuid bits).
fn own_and_mode(fd: BorrowedFd<'_>, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
    nix::unistd::fchown(fd.as_raw_fd(), Some(uid.into()), Some(gid.into()))?;
    nix::sys::stat::fchmod(
        fd.as_raw_fd(),
        nix::sys::stat::Mode::from_bits_truncate(mode as libc::mode_t),
    )?;
    Ok(())
}

fn set_times(fd: BorrowedFd<'_>, mtime: i64) {
    let t = nix::sys::time::TimeSpec::new(mtime, 0);
    let _ = nix::sys::stat::futimens(fd.as_raw_fd(), &t, &t);
}

/// Removes `name` in `dir` and, for a directory, all it holds, never following a symlink.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if !is_dir(&st) {
        return nix::unistd::unlinkat(
            Some(dir.as_raw_fd()),
            name,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        )
        .map_err(io::Error::from);
    }
    let sub = open_child(dir, name, libc::O_RDONLY | libc::O_DIRECTORY)?;
    let mut names = Vec::new();
    {
        let dup = sub.try_clone()?;
        let mut d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dup))
            .map_err(io::Error::from)?;
        for e in d.iter() {
            let e = e.map_err(io::Error::from)?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsString::from_vec(n.to_vec()));
            }
        }
    }
    for n in names {
        remove_all_at(sub.as_fd(), &n)?;
    }
    nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::RemoveDir,
    )
    .map_err(io::Error::from)
}
