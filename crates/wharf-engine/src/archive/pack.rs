//! Writing a tree of a container's filesystem as a tar, the way moby's tarballer does: a
//! directory's entries sorted by name, hard links as `Link` entries to the first name seen,
//! sockets left out, ids and modes (setuid, setgid, sticky too) as they are.
//!
//! Every file is opened relative to its directory's descriptor without following symlinks,
//! so a tree being changed under us (a running container) can make the tar odd, never make
//! it read outside the directory it started from.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use wharf_fs::root::{fstat, is_dir, open_child, readlink_fd};

/// Filesystems whose contents are the kernel's, not the container's: a running container's
/// `/proc`, `/sys` and cgroups are written as empty directories (dockerd's view of a
/// container has none of them mounted).
const VIRTUAL_FS: &[i64] = &[
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x27e0eb,    // cgroup
    0x6367_7270, // cgroup2
    0x1cd1,      // devpts
    0x1980_0202, // mqueue
    0x7363_6673, // securityfs
    0x6462_6720, // debugfs
    0x7472_6163, // tracefs
    0x6e73_6673, // nsfs
    0xcafe_4a11, // bpf
];

fn is_virtual(fd: BorrowedFd<'_>) -> bool {
    nix::sys::statfs::fstatfs(fd)
        .map(|s| VIRTUAL_FS.contains(&{ s.filesystem_type().0 }))
        .unwrap_or(false)
}

pub(crate) struct Packer<W: Write> {
    tar: tar::Builder<W>,
    /// (dev, ino) of files with more than one link → the first name written.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// Export: stay on the device of the top directory (no volume or bind inside).
    one_device: Option<u64>,
}

impl<W: Write> Packer<W> {
    pub fn new(out: W, one_filesystem: bool) -> Self {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Complete);
        tar.follow_symlinks(false);
        Packer {
            tar,
            links: HashMap::new(),
            one_device: one_filesystem.then_some(0),
        }
    }

    /// Ends the archive (its two zero blocks) and gives back the writer.
    pub fn finish(self) -> io::Result<W> {
        self.tar.into_inner()
    }

    /// Writes `name` (in `dir`) under the archive name `as_name`, a directory with all it
    /// holds. `as_name` empty writes a directory's contents only (export's top level).
    pub fn add(&mut self, dir: BorrowedFd<'_>, name: &OsString, as_name: &[u8]) -> io::Result<()> {
        let fd = open_child(dir, name, libc::O_PATH)?;
        let st = fstat(fd.as_fd())?;
        self.add_opened(dir, name, fd, st, as_name)
    }

    /// Writes the directory `fd` (opened `O_PATH` or not) under `as_name`.
    pub fn add_dir_fd(&mut self, fd: BorrowedFd<'_>, as_name: &[u8]) -> io::Result<()> {
        let dir = open_child(
            fd,
            std::ffi::OsStr::new("."),
            libc::O_RDONLY | libc::O_DIRECTORY,
        )?;
        let st = fstat(dir.as_fd())?;
        if let Some(dev) = self.one_device.as_mut() {
            *dev = st.st_dev;
        }
        if !as_name.is_empty() {
            self.header(&st, as_name)?;
        }
        self.walk(dir, as_name)
    }

    fn add_opened(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsString,
        fd: OwnedFd,
        st: libc::stat,
        as_name: &[u8],
    ) -> io::Result<()> {
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                if !as_name.is_empty() {
                    self.header(&st, as_name)?;
                }
                if self.one_device.is_some_and(|d| d != st.st_dev) {
                    return Ok(());
                }
                let dir = open_child(parent, name, libc::O_RDONLY | libc::O_DIRECTORY)?;
                if is_virtual(dir.as_fd()) {
                    return Ok(());
                }
                self.walk(dir, as_name)
            }
            libc::S_IFLNK => {
                let target = readlink_fd(fd.as_fd())?;
                let mut h = self.base_header(&st, tar::EntryType::Symlink);
                self.append_named(&mut h, as_name, Some(target.as_bytes()), io::empty())
            }
            libc::S_IFREG => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        let first = first.clone();
                        let mut h = self.base_header(&st, tar::EntryType::Link);
                        h.set_size(0);
                        return self.append_named(&mut h, as_name, Some(&first), io::empty());
                    }
                    self.links.insert(key, as_name.to_vec());
                }
                // O_NONBLOCK: a FIFO swapped in since the stat must not block the read.
                let file = open_child(parent, name, libc::O_RDONLY | libc::O_NONBLOCK)?;
                let now = fstat(file.as_fd())?;
                if now.st_mode & libc::S_IFMT != libc::S_IFREG {
                    return Ok(());
                }
                let mut h = self.base_header(&now, tar::EntryType::Regular);
                h.set_size(now.st_size as u64);
                // A file that grows while read is cut at its size; one that shrinks fails
                // the write, as Go's `archive/tar` answers "missed writing".
                if let Some(cap) = wharf_fs::xattr::get(file.as_fd(), wharf_fs::xattr::CAPABILITY)?
                {
                    // moby's tarballer keeps this one xattr (file capabilities), as PAX.
                    self.tar
                        .append_pax_extensions([("SCHILY.xattr.security.capability", &cap[..])])?;
                }
                let reader = io::Read::take(
                    io::BufReader::with_capacity(CHUNK, std::fs::File::from(file)),
                    now.st_size as u64,
                );
                self.append_named(&mut h, as_name, None, reader)
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => self.header(&st, as_name),
            // Sockets: Go's tar has no type for them; moby skips them.
            _ => Ok(()),
        }
    }

    fn walk(&mut self, dir: OwnedFd, prefix: &[u8]) -> io::Result<()> {
        let mut names: Vec<OsString> = Vec::new();
        {
            let dup = dir.try_clone()?;
            let mut d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dup))
                .map_err(io::Error::from)?;
            for e in d.iter() {
                let e = e.map_err(io::Error::from)?;
                let n = e.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(std::ffi::OsStr::from_bytes(n).to_os_string());
                }
            }
        }
        names.sort();
        for n in names {
            let mut child = prefix.to_vec();
            if !child.is_empty() && !child.ends_with(b"/") {
                child.push(b'/');
            }
            child.extend_from_slice(n.as_bytes());
            let fd = match open_child(dir.as_fd(), &n, libc::O_PATH) {
                Ok(fd) => fd,
                // Gone since the listing (a running container): as moby, skip it.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            let st = fstat(fd.as_fd())?;
            self.add_opened(dir.as_fd(), &n, fd, st, &child)?;
        }
        Ok(())
    }

    fn base_header(&self, st: &libc::stat, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        h
    }

    /// A header-only entry: a directory (name ending in `/`), a device or a FIFO.
    fn header(&mut self, st: &libc::stat, as_name: &[u8]) -> io::Result<()> {
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => tar::EntryType::Directory,
            libc::S_IFCHR => tar::EntryType::Char,
            libc::S_IFBLK => tar::EntryType::Block,
            _ => tar::EntryType::Fifo,
        };
        let mut h = self.base_header(st, kind);
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            let rdev = st.st_rdev;
            h.set_device_major(libc::major(rdev))?;
            h.set_device_minor(libc::minor(rdev))?;
        }
        let mut name = as_name.to_vec();
        if is_dir(st) && !name.ends_with(b"/") {
            name.push(b'/');
        }
        self.append_named(&mut h, &name, None, io::empty())
    }

    /// Appends an entry named exactly `name` (and `link`): tar-rs would normalise `./a` to
    /// `a`, and the docker CLI rebases names by replacing their first `.` (`./a` →
    /// `dest/a`), so names are written as moby's tarballer makes them. A name or link too
    /// long for the header goes before it in a GNU long-name entry.
    fn append_named(
        &mut self,
        h: &mut tar::Header,
        name: &[u8],
        link: Option<&[u8]>,
        data: impl io::Read,
    ) -> io::Result<()> {
        const FIELD: usize = 100;
        if let Some(link) = link.filter(|l| l.len() > FIELD) {
            self.long_entry(tar::EntryType::GNULongLink, link)?;
        }
        if name.len() > FIELD {
            self.long_entry(tar::EntryType::GNULongName, name)?;
        }
        let Some(gnu) = h.as_gnu_mut() else {
            return Err(io::Error::other("not a GNU header"));
        };
        let n = name.len().min(FIELD);
        gnu.name = [0; FIELD];
        gnu.name[..n].copy_from_slice(&name[..n]);
        if let Some(link) = link {
            let n = link.len().min(FIELD);
            gnu.linkname = [0; FIELD];
            gnu.linkname[..n].copy_from_slice(&link[..n]);
        }
        h.set_cksum();
        self.tar.append(h, data)
    }

    fn long_entry(&mut self, kind: tar::EntryType, value: &[u8]) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        let Some(gnu) = h.as_gnu_mut() else {
            return Err(io::Error::other("not a GNU header"));
        };
        gnu.name[..13].copy_from_slice(b"././@LongLink");
        h.set_mode(0o644);
        h.set_entry_type(kind);
        let mut data = value.to_vec();
        data.push(0);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.tar.append(&h, &data[..])
    }
}

/// Bytes to a bounded channel of chunks: the tar is made on a thread of its own and read by
/// the HTTP response at the client's pace, never more than `CHUNK * depth` in memory.
pub(crate) struct ChanWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<bytes::Bytes>>,
    buf: bytes::BytesMut,
}

pub(crate) const CHUNK: usize = 256 * 1024;

impl ChanWriter {
    pub fn new(tx: tokio::sync::mpsc::Sender<io::Result<bytes::Bytes>>) -> Self {
        ChanWriter {
            tx,
            buf: bytes::BytesMut::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    /// Ends the stream with an error the server turns into a cut response.
    pub fn fail(self, e: io::Error) {
        let _ = self.tx.blocking_send(Err(e));
    }
}

impl Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
