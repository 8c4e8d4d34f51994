//! Applying a layer tar (plain, gzip or zstd) into an overlay upper dir.
//!
//! The tar crate only parses headers here; every filesystem write is ours, because its `unpack()`
//! follows symlinks already present in the destination. The rules:
//! - entry paths are cleaned lexically; `..` that climbs above the root is refused
//!   ([`StorageError::UnsafePath`]); absolute paths are taken relative to `dest`;
//! - no path component inside `dest` is ever followed if it is a symlink: parents are checked
//!   with `lstat` and files are created with `O_NOFOLLOW | O_EXCL` after removing what was there
//!   (we are the only writer of a fresh upper dir, so check-then-create does not race);
//! - symlink *targets* are stored verbatim, absolute or not: they are only resolved later inside
//!   the container's root, never by us;
//! - hard links must name a non-directory already extracted from this same layer;
//! - whiteouts become overlay's own format: `.wh.<name>` → char device 0/0 `<name>`,
//!   `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory; other `.wh..wh.*` (aufs
//!   bookkeeping) are skipped; `trusted.overlay.*` xattrs from the tar itself are dropped so a layer
//!   cannot forge overlay metadata (redirects, metacopy);
//! - devices and fifos are created (wharfd runs as root); mode, owner, mtime and xattrs are kept.
//!
//! The diff id is the sha256 of the whole uncompressed stream, read to its end even past the
//! tar end-of-archive blocks, as the OCI spec defines it.

use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use sha2::{Digest as _, Sha256};
use tar::EntryType;

use crate::ingest::Guard;
use crate::{Digest, IoContext, Result, StorageError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyStats {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Length of the uncompressed tar stream.
    pub size: u64,
    /// Bytes of regular-file content written (what the layer costs on disk, roughly).
    pub file_bytes: u64,
    /// Tar entries applied (whiteouts included).
    pub entries: u64,
}

/// How a layer stream is compressed, judged by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Compression::Xz,
            [b'B', b'Z', b'h', ..] => Compression::Bzip2,
            _ => Compression::None,
        }
    }
}

/// The plain stream of `r`, whatever of the compressions layers use it is in (gzip or zstd,
/// judged by its first bytes), and which one that was. xz and bzip2 are recognised and refused
/// ([`StorageError::UnsupportedCompression`]): no decoder for them is built in. For callers
/// that read compressed tars other than layers (an image archive).
pub fn decompressed<'a>(r: impl Read + 'a) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let (head, r) = peek::<_, 6>(r).map_err(|e| not_a_tar(format!("reading: {e}")))?;
    let c = Compression::detect(&head);
    let plain: Box<dyn Read + 'a> = match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::ZstdFrames::new(io::BufReader::with_capacity(
            128 * 1024,
            r,
        ))),
        other => return Err(StorageError::UnsupportedCompression(format!("{other:?}"))),
    };
    Ok((c, plain))
}

/// A reader that replays peeked bytes before the rest of the stream.
pub(crate) type Replay<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// Reads up to `N` bytes without losing them: returns them and a reader that yields them again.
pub(crate) fn peek<R: Read, const N: usize>(mut r: R) -> io::Result<(Vec<u8>, Replay<R>)> {
    let mut head = vec![0u8; N];
    let mut n = 0;
    while n < N {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(n);
    Ok((head.clone(), io::Cursor::new(head).chain(r)))
}

/// Hashes and counts everything read through it and keeps the first block pair, which tells an
/// empty archive (two zero blocks) from an empty or garbage stream.
/// With a guard, every read is counted against the ingest's limits first.
struct HashingReader<'g, R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    head: Vec<u8>,
    guard: Option<&'g Guard<'g>>,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(g) = self.guard {
            g.check_cancel()?;
        }
        let n = self.inner.read(buf)?;
        if let Some(g) = self.guard {
            g.expanded(n as u64)?;
        }
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if self.head.len() < 1024 {
            let take = (1024 - self.head.len()).min(n);
            self.head.extend_from_slice(&buf[..take]);
        }
        Ok(n)
    }
}

fn invalid(what: impl std::fmt::Display) -> StorageError {
    StorageError::InvalidLayer(what.to_string())
}

fn not_a_tar(what: impl std::fmt::Display) -> StorageError {
    StorageError::NotATar(what.to_string())
}

/// Applies the layer read from `r` into `dest` (an overlay upper dir that must exist). Every
/// entry gets the owner the layer gives it, which takes CAP_CHOWN: wharfd runs as root, and
/// without it this fails (`chown ...: Operation not permitted`) rather than leave files owned by
/// whoever ran it.
pub fn apply_layer(r: impl Read, dest: &Path) -> Result<ApplyStats> {
    apply(r, dest, Owners::FromLayer, None)
}

/// [`apply_layer`] under an ingest's limits: a stop by the guard fails the apply (the caller
/// takes the reason from the guard).
pub(crate) fn apply_layer_guarded(
    r: impl Read,
    dest: &Path,
    guard: &Guard<'_>,
) -> Result<ApplyStats> {
    apply(r, dest, Owners::FromLayer, Some(guard))
}

/// Whose files an applied layer makes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Owners {
    /// The uid/gid each tar entry names (what a container must see).
    FromLayer,
    /// The caller's, for unit tests run without root, which then check everything but owners
    /// (and say so with a skip).
    #[cfg(test)]
    Caller,
}

fn apply(
    r: impl Read,
    dest: &Path,
    owners: Owners,
    guard: Option<&Guard<'_>>,
) -> Result<ApplyStats> {
    let (head, r) = peek::<_, 6>(r).map_err(|e| not_a_tar(format!("reading layer: {e}")))?;
    if head.is_empty() {
        return Err(not_a_tar("empty layer stream"));
    }
    let plain: Box<dyn Read> = match Compression::detect(&head) {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::ZstdFrames::new(io::BufReader::with_capacity(
            128 * 1024,
            r,
        ))),
        other => return Err(invalid(format!("unsupported layer compression {other:?}"))),
    };
    let mut hr = HashingReader {
        inner: plain,
        hasher: Sha256::new(),
        count: 0,
        head: Vec::with_capacity(1024),
        guard,
    };
    let meta = fs::symlink_metadata(dest).ctx("stat", dest)?;
    if !meta.is_dir() {
        return Err(StorageError::io(
            "apply layer into",
            dest,
            io::Error::new(io::ErrorKind::InvalidInput, "not a directory"),
        ));
    }
    let mut ap = Applier {
        dest,
        owners,
        dir_times: Vec::new(),
        file_bytes: 0,
        entries: 0,
        buf: Vec::new(),
    };
    {
        let mut archive = tar::Archive::new(&mut hr);
        let entries = archive
            .entries()
            .map_err(|e| not_a_tar(format!("reading tar: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| not_a_tar(format!("reading tar: {e}")))?;
            let name = entry_name(&entry.path_bytes());
            ap.apply(&mut entry, &name)
                .map_err(|e| e.in_layer_entry(&name))?;
            ap.entries += 1;
        }
    }
    // Whatever follows the end-of-archive marker is still part of the diff id.
    io::copy(&mut hr, &mut io::sink()).map_err(|e| not_a_tar(format!("reading layer: {e}")))?;
    if ap.entries == 0 && !(hr.head.len() == 1024 && hr.head.iter().all(|b| *b == 0)) {
        return Err(not_a_tar("no tar entries and no end-of-archive marker"));
    }
    // Directory times last: creating children bumped them. Deepest first, so a parent's own
    // time is set after its children's.
    for (p, t) in ap.dir_times.iter().rev() {
        set_mtime(p, t).map_err(|e| {
            let rel = p.strip_prefix(dest).unwrap_or(Path::new("?"));
            e.in_layer_entry(&entry_name(rel.as_os_str().as_bytes()))
        })?;
    }
    Ok(ApplyStats {
        diff_id: Digest::from_sha256_bytes(&hr.hasher.finalize().into()),
        size: hr.count,
        file_bytes: ap.file_bytes,
        entries: ap.entries,
    })
}

/// An entry's name as the layer spells it, for messages: never a path of ours, and cut short
/// (a hostile layer can carry a path of thousands of characters).
fn entry_name(raw: &[u8]) -> String {
    const MAX: usize = 200;
    let s = String::from_utf8_lossy(raw);
    let s = s.escape_debug().to_string();
    if s.chars().count() <= MAX {
        s
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}...")
    }
}

struct Applier<'a> {
    owners: Owners,
    dest: &'a Path,
    dir_times: Vec<(PathBuf, TimeSpec)>,
    file_bytes: u64,
    entries: u64,
    /// One copy buffer for every file of the layer: a fresh 128 KiB one per file is a mmap,
    /// page faults and a munmap each (glibc's mmap threshold), measurable on layers of many
    /// small files.
    buf: Vec<u8>,
}

/// Cleans a tar path to a relative path with only normal components.
fn clean(raw: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(StorageError::UnsafePath {
                        path: raw.to_string_lossy().into_owned(),
                        reason: "'..' escapes the layer root",
                    });
                }
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(out)
}

struct Attrs {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: TimeSpec,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl<'a> Applier<'a> {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, name: &str) -> Result<()> {
        let raw = entry
            .path()
            .map_err(|e| invalid(format!("bad entry path: {e}")))?
            .into_owned();
        let rel = clean(&raw)?;
        let kind = entry.header().entry_type();
        let attrs = self.attrs(entry)?;
        let unsafe_path = |reason| StorageError::UnsafePath {
            path: raw.to_string_lossy().into_owned(),
            reason,
        };

        if let Some(name) = rel.file_name().map(|n| n.as_bytes().to_vec()) {
            if let Some(hidden) = name.strip_prefix(b".wh.") {
                let parent = self.ensure_dirs(rel.parent().unwrap_or(Path::new("")), &raw)?;
                if hidden == b".wh..opq" {
                    return lsetxattr(&parent, "trusted.overlay.opaque", b"y");
                }
                if hidden.starts_with(b".wh.") {
                    return Ok(());
                }
                if hidden.is_empty() || hidden == b"." || hidden == b".." {
                    return Err(unsafe_path("whiteout of an invalid name"));
                }
                let target = parent.join(std::ffi::OsStr::from_bytes(hidden));
                remove_any(&target)?;
                mknod(&target, SFlag::S_IFCHR, 0, 0, 0)?;
                // The entry's owner and time, not the moment of unpacking: a layer unpacks to
                // the same tree every time (and a committed layer keeps them).
                if self.owners == Owners::FromLayer {
                    std::os::unix::fs::lchown(
                        &target,
                        Some(attrs.uid as u32),
                        Some(attrs.gid as u32),
                    )
                    .ctx("chown", &target)?;
                }
                return set_mtime(&target, &attrs.mtime);
            }
        }

        if rel.as_os_str().is_empty() {
            // The archive's root entry ("./"): its attributes become the upper dir's.
            if kind != EntryType::Directory {
                return Err(unsafe_path("non-directory entry for the layer root"));
            }
            self.set_attrs(self.dest.to_path_buf(), &attrs, true)?;
            return Ok(());
        }

        let parent = self.ensure_dirs(rel.parent().unwrap_or(Path::new("")), &raw)?;
        let path = parent.join(rel.file_name().unwrap_or_default());

        match kind {
            EntryType::Directory => {
                let existing = fs::symlink_metadata(&path);
                match existing {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove_any(&path)?;
                        mkdir(&path)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => mkdir(&path)?,
                    Err(e) => return Err(StorageError::io("stat", &path, e)),
                }
                self.set_attrs(path, &attrs, true)?;
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                remove_any(&path)?;
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&path)
                    .ctx("create", &path)?;
                self.file_bytes += copy_body(entry, &mut f, &path, name, &mut self.buf)?;
                drop(f);
                self.set_attrs(path, &attrs, false)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| invalid(format!("bad symlink target: {e}")))?
                    .ok_or_else(|| invalid(format!("symlink {} without target", raw.display())))?
                    .into_owned();
                if target.as_os_str().is_empty() {
                    return Err(invalid(format!(
                        "symlink {} with empty target",
                        raw.display()
                    )));
                }
                remove_any(&path)?;
                std::os::unix::fs::symlink(&target, &path).ctx("symlink", &path)?;
                self.set_attrs(path, &attrs, false)?;
            }
            EntryType::Link => {
                let raw_target = entry
                    .link_name()
                    .map_err(|e| invalid(format!("bad hard link target: {e}")))?
                    .ok_or_else(|| invalid(format!("hard link {} without target", raw.display())))?
                    .into_owned();
                let trel = clean(&raw_target)?;
                if trel.as_os_str().is_empty() || trel == rel {
                    return Err(invalid(format!(
                        "hard link {} to itself or root",
                        raw.display()
                    )));
                }
                let tparent =
                    self.check_dirs(trel.parent().unwrap_or(Path::new("")), &raw_target)?;
                let target = tparent.join(trel.file_name().unwrap_or_default());
                match fs::symlink_metadata(&target) {
                    Ok(m) if !m.is_dir() => {}
                    _ => {
                        return Err(invalid(format!(
                            "hard link {} -> {}: target is not a file of this layer",
                            raw.display(),
                            raw_target.display()
                        )))
                    }
                }
                remove_any(&path)?;
                // linkat without AT_SYMLINK_FOLLOW: a symlink target is linked as itself.
                fs::hard_link(&target, &path).ctx("hard link", &path)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let sflag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let h = entry.header();
                // Writers leave the device fields blank for fifos; they mean nothing there.
                let fields = match (h.as_ustar(), h.as_gnu()) {
                    (Some(u), _) => Some((&u.dev_major, &u.dev_minor)),
                    (None, Some(g)) => Some((&g.dev_major, &g.dev_minor)),
                    (None, None) => None,
                };
                let (major, minor) = match (kind, fields) {
                    (EntryType::Fifo, _) | (_, None) => (0, 0),
                    (_, Some((ma, mi))) => (
                        device_number(numeric("devmajor", ma)?)?,
                        device_number(numeric("devminor", mi)?)?,
                    ),
                };
                remove_any(&path)?;
                mknod(&path, sflag, attrs.mode, major, minor)?;
                self.set_attrs(path, &attrs, false)?;
            }
            EntryType::XGlobalHeader => {}
            other => {
                return Err(invalid(format!(
                    "unsupported tar entry type {other:?} for {}",
                    raw.display()
                )))
            }
        }
        Ok(())
    }

    fn attrs<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<Attrs> {
        let h = entry.header().as_old();
        let mode = (numeric("mode", &h.mode)? & 0o7777) as u32;
        let mut uid = numeric("uid", &h.uid)?;
        let mut gid = numeric("gid", &h.gid)?;
        let mut mtime = TimeSpec::new(numeric("mtime", &h.mtime)? as i64, 0);
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions().map_err(invalid)? {
            for ext in pax {
                let ext = ext.map_err(invalid)?;
                let Ok(key) = ext.key() else { continue };
                let val = ext.value_bytes();
                let num = || {
                    std::str::from_utf8(val)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                };
                match key {
                    "uid" => uid = num().unwrap_or(uid),
                    "gid" => gid = num().unwrap_or(gid),
                    "mtime" => {
                        if let Some(t) = std::str::from_utf8(val).ok().and_then(parse_pax_time) {
                            mtime = t;
                        }
                    }
                    k => {
                        if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                            if name.starts_with("trusted.overlay.") {
                                tracing::warn!(name, "dropping overlay xattr carried by a layer");
                            } else {
                                xattrs.push((name.to_owned(), val.to_vec()));
                            }
                        }
                    }
                }
            }
        }
        Ok(Attrs {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        })
    }

    /// Makes sure every component of `rel_dir` under dest is a real directory, creating missing
    /// ones; a symlink or file in the way is refused.
    fn ensure_dirs(&self, rel_dir: &Path, raw: &Path) -> Result<PathBuf> {
        self.walk_dirs(rel_dir, raw, true)
    }

    /// Like [`Self::ensure_dirs`] but creates nothing.
    fn check_dirs(&self, rel_dir: &Path, raw: &Path) -> Result<PathBuf> {
        self.walk_dirs(rel_dir, raw, false)
    }

    fn walk_dirs(&self, rel_dir: &Path, raw: &Path, create: bool) -> Result<PathBuf> {
        let mut p = self.dest.to_path_buf();
        for c in rel_dir.components() {
            p.push(c);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {}
                Ok(m) => {
                    return Err(StorageError::UnsafePath {
                        path: raw.to_string_lossy().into_owned(),
                        reason: if m.file_type().is_symlink() {
                            "a parent directory is a symlink"
                        } else {
                            "a parent directory is not a directory"
                        },
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => mkdir(&p)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(invalid(format!(
                        "{}: parent directory missing",
                        raw.display()
                    )))
                }
                Err(e) => return Err(StorageError::io("stat", &p, e)),
            }
        }
        Ok(p)
    }

    fn set_attrs(&mut self, path: PathBuf, a: &Attrs, is_dir: bool) -> Result<()> {
        let m = fs::symlink_metadata(&path).ctx("stat", &path)?;
        let is_link = m.file_type().is_symlink();
        if self.owners == Owners::FromLayer {
            std::os::unix::fs::lchown(&path, Some(a.uid as u32), Some(a.gid as u32))
                .ctx("chown", &path)?;
        }
        if !is_link {
            // After chown, which clears setuid/setgid bits.
            fs::set_permissions(&path, fs::Permissions::from_mode(a.mode)).ctx("chmod", &path)?;
        }
        for (name, val) in &a.xattrs {
            lsetxattr(&path, name, val)?;
        }
        if is_dir {
            self.dir_times.push((path, a.mtime));
        } else {
            set_mtime(&path, &a.mtime)?;
        }
        Ok(())
    }
}

/// A header's numeric field read as Go's `archive/tar` reads it: base-256 when the high bit
/// of its first byte is set, else octal between spaces and NULs, and a field with no digits at
/// all is 0. The tar crate refuses that last one ("numeric field was not a number"), but
/// writers leave fields blank (bollard's tests build such headers) and dockerd takes them.
fn numeric(field: &'static str, raw: &[u8]) -> Result<u64> {
    if raw.first().is_some_and(|b| b & 0x80 != 0) {
        // Big-endian two's complement after the marker bit; a negative or too large value is
        // refused rather than wrapped.
        if raw[0] & 0x40 != 0 {
            return Err(invalid(format!(
                "negative value in the tar header's {field}"
            )));
        }
        let mut n: u64 = u64::from(raw[0] & 0x3f);
        for b in &raw[1..] {
            n = n
                .checked_mul(256)
                .map(|n| n | u64::from(*b))
                .ok_or_else(|| invalid(format!("tar header's {field} out of range")))?;
        }
        return Ok(n);
    }
    let text = trim_tar(raw);
    if text.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| u64::from_str_radix(t, 8).ok())
        .ok_or_else(|| {
            invalid(format!(
                "invalid octal number {:?} in the tar header's {field}",
                String::from_utf8_lossy(text)
            ))
        })
}

/// Go's `bytes.Trim(b, " \x00")`.
fn trim_tar(raw: &[u8]) -> &[u8] {
    let pad = |b: &u8| *b == b' ' || *b == 0;
    let start = raw.iter().position(|b| !pad(b)).unwrap_or(raw.len());
    let end = raw.iter().rposition(|b| !pad(b)).map_or(start, |e| e + 1);
    &raw[start..end]
}

fn device_number(n: u64) -> Result<u32> {
    u32::try_from(n).map_err(|_| invalid(format!("device number {n} out of range")))
}

fn parse_pax_time(s: &str) -> Option<TimeSpec> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    if !frac.is_empty() {
        let digits: String = frac.chars().take(9).collect();
        let scale = 10i64.pow(9 - digits.len() as u32);
        nanos = digits.parse::<i64>().ok()? * scale;
    }
    if secs < 0 && nanos > 0 {
        // "-1.5" means 1.5 s before the epoch.
        return Some(TimeSpec::new(secs - 1, 1_000_000_000 - nanos));
    }
    Some(TimeSpec::new(secs, nanos))
}

/// Bytes a file's body is copied by.
const COPY_BUF: usize = 128 * 1024;

fn copy_body(
    r: &mut impl Read,
    w: &mut fs::File,
    path: &Path,
    name: &str,
    buf: &mut Vec<u8>,
) -> Result<u64> {
    if buf.is_empty() {
        buf.resize(COPY_BUF, 0);
    }
    let mut total = 0u64;
    // Tars carry a sparse file's holes as zeros (dockerd's export writes no sparse entries);
    // skipping zero runs instead of writing them gives the holes back, so a 100 MiB sparse
    // file does not take 100 MiB of disk once imported. The file is new, so what is skipped
    // reads as zeros.
    let mut in_hole = false;
    loop {
        let n = match r.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(invalid(format!("reading body of {name}: {e}"))),
        };
        in_hole = buf[..n].iter().all(|b| *b == 0);
        if in_hole {
            w.seek(SeekFrom::Current(n as i64)).ctx("seek", path)?;
        } else {
            w.write_all(&buf[..n]).ctx("write", path)?;
        }
        total += n as u64;
    }
    if in_hole {
        // A trailing hole: the seek alone does not give the file its length.
        w.set_len(total).ctx("truncate", path)?;
    }
    Ok(total)
}

fn mkdir(p: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .mode(0o755)
        .create(p)
        .ctx("create dir", p)
}

/// Removes whatever is at `p` (never following a symlink); absent is fine.
fn remove_any(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("stat", p, e)),
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).ctx("remove dir", p),
        Ok(_) => fs::remove_file(p).ctx("remove", p),
    }
}

fn mknod(p: &Path, kind: SFlag, mode: u32, major: u32, minor: u32) -> Result<()> {
    let dev = nix::sys::stat::makedev(major.into(), minor.into());
    nix::sys::stat::mknod(p, kind, Mode::from_bits_truncate(mode), dev)
        .map_err(|e| StorageError::io("mknod", p, e.into()))
}

fn set_mtime(p: &Path, t: &TimeSpec) -> Result<()> {
    nix::sys::stat::utimensat(None, p, t, t, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| StorageError::io("set times of", p, e.into()))
}

fn lsetxattr(p: &Path, name: &str, value: &[u8]) -> Result<()> {
    let cpath = CString::new(p.as_os_str().as_bytes()).map_err(|_| invalid("NUL in a path"))?;
    let cname = CString::new(name).map_err(|_| invalid(format!("NUL in xattr name {name:?}")))?;
    // SAFETY: both strings are NUL-terminated and outlive the call; value is a valid slice.
    let rc = unsafe {
        libc::lsetxattr(
            cpath.as_ptr(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EOPNOTSUPP) && name != "trusted.overlay.opaque" {
        tracing::warn!(path = %p.display(), name, "filesystem does not support this xattr; skipped");
        return Ok(());
    }
    Err(StorageError::io("set xattr on", p, e))
}

pub mod create;
mod zstd;

#[cfg(test)]
pub(crate) mod tests;
