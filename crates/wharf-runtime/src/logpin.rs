//! Log readers pin the files they have not opened yet, so a rotation never deletes output a
//! reader still has to deliver (shim_proto's "Log file").
//!
//! A reader that holds a log file open can always finish it, renamed or deleted; what it can
//! lose is a file it has not opened yet, rotated away while the reader was busy with its
//! client. So every log file carries its **generation** (an extended attribute, counting up
//! from 0 as the shim creates files), and a reader holds a shared lock on the byte at offset
//! `g` of the log's readers file (`.<log name>.readers`) while `g` is the next generation it has to
//! open. Before a rotation deletes the file of generation `v`, the shim tries an exclusive lock
//! on bytes `[0, v]`: it fails while a reader still needs `v` or an older one, and the shim
//! then waits (it stops reading the container's output, as a slow `docker attach` does to
//! Docker's containers) instead of deleting it. Removal of a container's log waits the same
//! way for every byte. Locks are open-file-description locks: each reader's open of the
//! readers file holds its own, they go away with the descriptor (a reader that dies or whose
//! client leaves releases its pin), and the kernel needs no cleanup after a crash.
//!
//! A filesystem without extended attributes has no generations: the shim then never waits
//! and readers follow files by identity alone, as before.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where a log file's generation is kept: `trusted.` works for root on every Linux filesystem
/// with xattrs (tmpfs included, where `user.` needs Linux 6.6); `user.` is the fallback for a
/// shim that is not root (tests).
const GENERATION_XATTRS: [&str; 2] = ["trusted.wharf.log-generation", "user.wharf.log-generation"];

/// `.<log name>.readers` beside the log: the file whose byte locks are the readers' pins, as
/// the shim opens it. It may be a symlink to a file that outlives the log's directory (wharfd's
/// `none` log), so that a reader can pin a log before its first file exists. A dot name, so
/// that what globs a log's files (`<id>-json.log*`, as log shippers do) finds only the log.
pub fn readers_path(log: &Path) -> PathBuf {
    hidden_beside(log, ".readers")
}

/// `.<log name>.next`: the shim's next file, given its generation before it takes the log's
/// name.
pub fn next_path(log: &Path) -> PathBuf {
    hidden_beside(log, ".next")
}

fn hidden_beside(log: &Path, suffix: &str) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(log.file_name().unwrap_or_default());
    name.push(suffix);
    log.with_file_name(name)
}

/// The generation the shim gave `f`, if any.
pub fn generation(f: &File) -> Option<u64> {
    GENERATION_XATTRS.iter().find_map(|name| {
        let name = CString::new(*name).ok()?;
        let mut buf = [0u8; 24];
        // SAFETY: `name` is NUL-terminated and `buf` is a writable buffer of the given length.
        let n = unsafe {
            libc::fgetxattr(
                f.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        let n = usize::try_from(n).ok()?;
        std::str::from_utf8(buf.get(..n)?).ok()?.parse().ok()
    })
}

/// Gives `f` its generation.
pub fn set_generation(f: &File, generation: u64) -> io::Result<()> {
    let value = generation.to_string();
    let mut last = io::Error::from(io::ErrorKind::Unsupported);
    for name in GENERATION_XATTRS {
        let name = CString::new(name).map_err(io::Error::other)?;
        // SAFETY: `name` is NUL-terminated and `value` is a readable buffer of its length.
        let r = unsafe {
            libc::fsetxattr(
                f.as_raw_fd(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if r == 0 {
            return Ok(());
        }
        last = io::Error::last_os_error();
    }
    Err(last)
}

fn open_readers(readers: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(readers)
}

/// Which lock to set on a byte range; `len` 0 reaches past any offset.
fn lock(f: &File, kind: libc::c_int, start: u64, len: u64) -> io::Result<bool> {
    let start = i64::try_from(start).map_err(io::Error::other)?;
    let len = i64::try_from(len).map_err(io::Error::other)?;
    let fl = libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: start,
        l_len: len,
        // Open-file-description locks require 0 here.
        l_pid: 0,
    };
    match nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_OFD_SETLK(&fl)) {
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => Ok(false),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// A reader's pin: a shared lock on the next generation it has to open (on all of them until
/// it knows which).
#[derive(Debug)]
pub struct ReaderPin {
    file: File,
}

impl ReaderPin {
    /// Pins every generation. A reader takes this before it opens any log file, then narrows
    /// it with [`ReaderPin::need_from`]. `readers` is the log's readers file. `Ok(None)` while
    /// a removal holds the log (it is about to be deleted: nothing is left to pin).
    pub fn all(readers: &Path) -> io::Result<Option<Self>> {
        let file = open_readers(readers)?;
        Ok(lock(&file, libc::F_RDLCK, 0, 0)?.then_some(ReaderPin { file }))
    }

    /// From now on only `next` and newer are needed: the pin moves to `next` (taken before the
    /// old one is let go, so there is no instant without a pin).
    pub fn need_from(&mut self, next: u64) -> io::Result<()> {
        if !lock(&self.file, libc::F_RDLCK, next, 1)? {
            return Err(io::Error::other("log readers file locked by a removal"));
        }
        if next > 0 {
            lock(&self.file, libc::F_UNLCK, 0, next)?;
        }
        lock(&self.file, libc::F_UNLCK, next.saturating_add(1), 0)?;
        Ok(())
    }

    /// Nothing more is needed (every file the reader will read is open).
    pub fn release(&mut self) -> io::Result<()> {
        lock(&self.file, libc::F_UNLCK, 0, 0).map(|_| ())
    }
}

/// The shim's side: asks before deleting a generation.
#[derive(Debug)]
pub struct Retirer {
    file: File,
}

impl Retirer {
    pub fn open(log: &Path) -> io::Result<Self> {
        open_readers(&readers_path(log)).map(|file| Retirer { file })
    }

    /// Whether the file of generation `victim` may be deleted: no reader still has to open it
    /// or an older one.
    pub fn may_delete(&self, victim: u64) -> io::Result<bool> {
        let free = lock(&self.file, libc::F_WRLCK, 0, victim.saturating_add(1))?;
        if free {
            lock(&self.file, libc::F_UNLCK, 0, 0)?;
        }
        Ok(free)
    }
}

/// Held while a log is deleted: its lock on every generation keeps new readers from pinning
/// files that are going.
#[derive(Debug)]
pub struct Removal {
    _readers: Option<File>,
}

/// Before a log is deleted (container removal, a `none` log's run dir): waits until no reader
/// pins any generation, i.e. every reader has opened every file it will read, up to `timeout`.
/// `None` when readers still held pins at the deadline: they lose what they had not opened.
/// Readers open files ahead of their clients, so only a reader that cannot run for that long
/// gets there, never a slow client.
pub fn wait_for_readers(readers: &Path, timeout: Duration) -> Option<Removal> {
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(readers)
    {
        Ok(f) => f,
        // No readers file: no reader ever pinned this log.
        Err(_) => return Some(Removal { _readers: None }),
    };
    let deadline = Instant::now() + timeout;
    loop {
        match lock(&file, libc::F_WRLCK, 0, 0) {
            Ok(true) => {
                return Some(Removal {
                    _readers: Some(file),
                })
            }
            Ok(false) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_keeps_its_generation_and_newer_ones() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        let shim = Retirer::open(&log).unwrap();
        assert!(shim.may_delete(7).unwrap(), "no reader yet");

        let mut reader = ReaderPin::all(&readers_path(&log)).unwrap().unwrap();
        assert!(!shim.may_delete(0).unwrap(), "a new reader pins everything");
        reader.need_from(3).unwrap();
        assert!(shim.may_delete(2).unwrap());
        assert!(!shim.may_delete(3).unwrap());
        assert!(!shim.may_delete(9).unwrap());

        let mut other = ReaderPin::all(&readers_path(&log)).unwrap().unwrap();
        other.need_from(5).unwrap();
        reader.need_from(6).unwrap();
        assert!(shim.may_delete(4).unwrap());
        assert!(
            !shim.may_delete(5).unwrap(),
            "the slower reader still needs 5"
        );

        drop(other);
        assert!(
            shim.may_delete(5).unwrap(),
            "a reader that goes away lets go"
        );
        reader.release().unwrap();
        assert!(shim.may_delete(100).unwrap());
    }

    #[test]
    fn removal_waits_for_pins_and_keeps_new_readers_out() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        let mut reader = ReaderPin::all(&readers_path(&log)).unwrap().unwrap();
        reader.need_from(1).unwrap();
        assert!(wait_for_readers(&readers_path(&log), Duration::from_millis(20)).is_none());
        reader.release().unwrap();
        let held = wait_for_readers(&readers_path(&log), Duration::from_secs(5)).unwrap();
        assert!(ReaderPin::all(&readers_path(&log)).unwrap().is_none());
        drop(held);
        assert!(ReaderPin::all(&readers_path(&log)).unwrap().is_some());
    }

    #[test]
    fn generations_are_kept_on_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::create(dir.path().join("log")).unwrap();
        assert_eq!(generation(&f), None);
        // The temp dir's filesystem (ext4 or tmpfs) keeps xattrs.
        set_generation(&f, 41).unwrap();
        assert_eq!(generation(&f), Some(41));
        set_generation(&f, 42).unwrap();
        assert_eq!(
            generation(&File::open(dir.path().join("log")).unwrap()),
            Some(42)
        );
    }
}
