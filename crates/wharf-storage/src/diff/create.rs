//! Writing an overlay upper dir as a layer tar: the reverse of [`super::apply_layer`], as
//! moby's `TarWithOptions` with the overlay whiteout format writes it.
//!
//! Entries come depth first, each directory before what it holds, siblings in byte order of
//! their names; the root itself is not written. Overlay's whiteouts become AUFS ones: a char
//! device 0/0 `<name>` is an empty regular file `.wh.<name>` (mode 0600, its owner and time),
//! an opaque directory is written followed by an empty `.wh..wh..opq` inside it. Hard links
//! within the layer are written once, then as links to the first name. Times are whole
//! seconds; of the extended attributes only `security.capability` is kept, as dockerd keeps
//! it; sockets are skipped, as dockerd skips them.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::changes::{is_opaque, is_whiteout, lgetxattr, Skip};
use crate::{IoContext, Result, StorageError};

/// What a layer tar holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TarStats {
    pub entries: u64,
    pub file_bytes: u64,
}

/// Whether `upper` holds anything a layer tar would carry: an empty one is dockerd's empty
/// layer, which an image does not list.
pub fn layer_is_empty(upper: &Path, skip: &Skip) -> Result<bool> {
    let mut probe = Writer {
        upper,
        skip,
        b: tar::Builder::new(io::sink()),
        links: HashMap::new(),
        stats: TarStats::default(),
        first_only: true,
    };
    match probe.dir(Path::new("")) {
        Ok(()) => Ok(probe.stats.entries == 0),
        Err(StorageError::Cancelled(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes the layer tar of `upper` to `w` (then the two zero blocks that end a tar), but for
/// what `skip` leaves out: below a mount's destination only the directory itself is written.
pub fn write_layer_tar(upper: &Path, skip: &Skip, w: impl Write) -> Result<TarStats> {
    let mut t = Writer {
        upper,
        skip,
        first_only: false,
        b: tar::Builder::new(w),
        links: HashMap::new(),
        stats: TarStats::default(),
    };
    t.b.mode(tar::HeaderMode::Complete);
    t.dir(Path::new(""))?;
    t.b.finish().map_err(|e| write_err(upper, e))?;
    Ok(t.stats)
}

fn write_err(p: &Path, e: io::Error) -> StorageError {
    StorageError::io("write layer tar of", p, e)
}

struct Writer<'a, W: Write> {
    upper: &'a Path,
    skip: &'a Skip,
    /// Stop at the first entry (as `Cancelled`): [`layer_is_empty`]'s probe.
    first_only: bool,
    b: tar::Builder<W>,
    /// (dev, ino) of files with more than one link → the first name written.
    links: HashMap<(u64, u64), PathBuf>,
    stats: TarStats,
}

fn header(m: &Metadata, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(m.mode() & 0o7777);
    h.set_uid(u64::from(m.uid()));
    h.set_gid(u64::from(m.gid()));
    h.set_mtime(u64::try_from(m.mtime()).unwrap_or(0));
    h.set_size(0);
    h
}

impl<W: Write> Writer<'_, W> {
    fn dir(&mut self, rel: &Path) -> Result<()> {
        let abs = self.upper.join(rel);
        let mut names: Vec<_> = fs::read_dir(&abs)
            .ctx("read dir", &abs)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .ctx("read dir", &abs)?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            self.entry(&rel.join(name))?;
        }
        Ok(())
    }

    fn entry(&mut self, rel: &Path) -> Result<()> {
        let abs = self.upper.join(rel);
        let m = fs::symlink_metadata(&abs).ctx("stat", &abs)?;
        let ft = m.file_type();
        if self.skip.is_mount_point(rel, &abs, &m) {
            return Ok(());
        }
        if self.first_only && !ft.is_socket() {
            self.stats.entries += 1;
            return Err(StorageError::Cancelled("found an entry".into()));
        }
        if is_whiteout(&m) {
            let mut h = header(&m, EntryType::Regular);
            h.set_mode(0o600);
            let mut name = std::ffi::OsString::from(".wh.");
            name.push(rel.file_name().unwrap_or_default());
            let path = rel.parent().unwrap_or(Path::new("")).join(name);
            return self.append(h, &path, io::empty());
        }
        if ft.is_dir() {
            let mut h = header(&m, EntryType::Directory);
            h.set_mode(m.mode() & 0o7777);
            self.caps(&abs)?;
            self.append(h, rel, io::empty())?;
            if is_opaque(&abs)? {
                let mut wo = header(&m, EntryType::Regular);
                wo.set_mode(m.mode() & 0o777);
                self.append(wo, &rel.join(".wh..wh..opq"), io::empty())?;
            }
            if self.skip.descends(rel) {
                self.dir(rel)?;
            }
            return Ok(());
        }
        if ft.is_socket() {
            tracing::warn!(path = %rel.display(), "layer tar: skipping a socket");
            return Ok(());
        }
        if ft.is_symlink() {
            let target = fs::read_link(&abs).ctx("read link", &abs)?;
            let mut h = header(&m, EntryType::Symlink);
            self.b
                .append_link(&mut h, rel, &target)
                .map_err(|e| write_err(&abs, e))?;
            self.stats.entries += 1;
            return Ok(());
        }
        if ft.is_file() {
            if m.nlink() > 1 {
                let key = (m.dev(), m.ino());
                if let Some(first) = self.links.get(&key).cloned() {
                    let mut h = header(&m, EntryType::Link);
                    self.b
                        .append_link(&mut h, rel, &first)
                        .map_err(|e| write_err(&abs, e))?;
                    self.stats.entries += 1;
                    return Ok(());
                }
                self.links.insert(key, rel.to_path_buf());
            }
            let f = File::open(&abs).ctx("open", &abs)?;
            let mut h = header(&m, EntryType::Regular);
            h.set_size(m.len());
            self.caps(&abs)?;
            self.stats.file_bytes += m.len();
            return self.append(
                h,
                rel,
                Exact {
                    inner: f,
                    left: m.len(),
                },
            );
        }
        let kind = if ft.is_char_device() {
            EntryType::Char
        } else if ft.is_block_device() {
            EntryType::Block
        } else {
            EntryType::Fifo
        };
        let mut h = header(&m, kind);
        if kind != EntryType::Fifo {
            let dev = m.rdev();
            let major = u32::try_from(nix::sys::stat::major(dev)).unwrap_or(u32::MAX);
            let minor = u32::try_from(nix::sys::stat::minor(dev)).unwrap_or(u32::MAX);
            h.set_device_major(major).map_err(|e| write_err(&abs, e))?;
            h.set_device_minor(minor).map_err(|e| write_err(&abs, e))?;
        }
        self.append(h, rel, io::empty())
    }

    /// The file capabilities of `abs`, as a PAX record ahead of its entry.
    fn caps(&mut self, abs: &Path) -> Result<()> {
        if let Some(v) = lgetxattr(abs, "security.capability")? {
            self.b
                .append_pax_extensions([("SCHILY.xattr.security.capability", &v[..])])
                .map_err(|e| write_err(abs, e))?;
        }
        Ok(())
    }

    fn append(&mut self, mut h: Header, rel: &Path, data: impl Read) -> Result<()> {
        self.b
            .append_data(&mut h, rel, data)
            .map_err(|e| write_err(&self.upper.join(rel), e))?;
        self.stats.entries += 1;
        Ok(())
    }
}

/// Exactly `left` bytes of a file, or an error: a file that shrinks while it is read (a
/// container running unpaused) must not leave a tar whose header lies about its size.
struct Exact {
    inner: File,
    left: u64,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file changed as we read it",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
