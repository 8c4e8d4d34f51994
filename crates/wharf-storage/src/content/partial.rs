//! Resumable downloads: what a cut-off ingest of a blob with a known digest received, kept in
//! `ingest/<hex>.partial` for the next ingest of the same digest to resume.
//!
//! A resumable ingest writes the bytes to that file as they arrive (it is the blob's temp
//! file), holding an exclusive `flock` on it so that two downloads of one blob never write it
//! together. Cancelled (the client went away, the connection broke), it fsyncs the file and
//! leaves it; any other failure removes it, and so does the commit, which renames it into
//! `blobs/`. The next ingest learns how far it got ([`ContentStore::partial_len`]), asks its
//! source for the rest only, and replays the kept bytes through the hash (and the unpacker)
//! before the new ones. Nothing is trusted: kept bytes that are wrong (a torn write after a
//! power cut) only fail the digest check at the end, which removes the file, so the next
//! attempt starts from zero.
//!
//! Bounded: [`ContentStore::open`] removes partial files older than [`PARTIAL_MAX_AGE`] and,
//! past [`PARTIAL_MAX_COUNT`], the oldest ones.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};

use super::{BlobWriter, ContentStore};
use crate::{Digest, IoContext, Result, StorageError};

const SUFFIX: &str = ".partial";
/// A download not resumed within a day is not coming back.
pub const PARTIAL_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// At most this many are kept across a restart (the newest).
pub const PARTIAL_MAX_COUNT: usize = 64;

impl ContentStore {
    fn partial_path(&self, d: &Digest) -> PathBuf {
        self.ingest.join(format!("{}{SUFFIX}", d.hex()))
    }

    /// How many bytes of blob `d` a cut-off download kept: where the next one may resume
    /// (an HTTP `Range: bytes=N-`). 0 when there is nothing to resume.
    pub fn partial_len(&self, d: &Digest) -> u64 {
        fs::metadata(self.partial_path(d)).map_or(0, |m| m.len())
    }

    /// A writer for blob `d` that keeps what it received if it is stopped, with the reader
    /// of the `from` bytes already kept, which the caller replays before its own source
    /// (which starts at `from`). `from` = 0 starts over. `None`: another ingest of `d` holds
    /// the file (and `from` is 0), so this one goes without.
    pub(crate) fn resumable_writer(
        &self,
        d: &Digest,
        from: u64,
    ) -> Result<Option<(BlobWriter<'_>, io::Take<File>)>> {
        let path = self.partial_path(d);
        let unavailable = |reason: String| StorageError::ResumeUnavailable {
            digest: d.clone(),
            offset: from,
            reason,
        };
        let Some(mut f) = lock(&path)? else {
            if from == 0 {
                return Ok(None);
            }
            return Err(unavailable("another download of it is under way".into()));
        };
        let kept = f.metadata().ctx("stat", &path)?.len();
        if from > kept {
            if kept == 0 {
                // Made by the open above: nothing to keep.
                let _ = fs::remove_file(&path);
            }
            return Err(unavailable(format!("only {kept} bytes of it are kept")));
        }
        // Whatever lies past `from` will come again from the source.
        f.set_len(from).ctx("truncate", &path)?;
        f.seek(SeekFrom::Start(from)).ctx("seek", &path)?;
        let replay = File::open(&path).ctx("open", &path)?.take(from);
        let w = BlobWriter {
            store: self,
            tmp: path,
            file: Some(f),
            hasher: Sha256::new(),
            size: 0,
            resumable: true,
            on_disk: from,
        };
        Ok(Some((w, replay)))
    }
}

/// Opens (creating) and locks `path`; `None` if another ingest holds it. The file may be
/// renamed into `blobs/` or removed between the open and the lock by the ingest that held it:
/// then the lock is on a file that is no longer `path`, and this tries again.
fn lock(path: &Path) -> Result<Option<File>> {
    for _ in 0..8 {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)
            .ctx("open", path)?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Ok(None);
            }
            return Err(StorageError::io("lock", path, e));
        }
        let held = f.metadata().ctx("stat", path)?;
        match fs::symlink_metadata(path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => return Ok(Some(f)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io("stat", path, e)),
        }
    }
    Err(StorageError::io(
        "lock",
        path,
        io::Error::other("the file kept changing under us"),
    ))
}

/// Removes partial files that are not named after a digest, older than [`PARTIAL_MAX_AGE`],
/// or past the newest [`PARTIAL_MAX_COUNT`]. Called at start, when no ingest runs.
pub(super) fn sweep(ingest: &Path) -> Result<()> {
    let now = SystemTime::now();
    let mut keep = Vec::new();
    for e in fs::read_dir(ingest).ctx("read dir", ingest)? {
        let e = e.ctx("read dir", ingest)?;
        let name = e.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
            continue;
        };
        let p = e.path();
        let modified = e.metadata().and_then(|m| m.modified()).ok();
        let age = modified.and_then(|m| now.duration_since(m).ok());
        match (Digest::from_hex(stem), modified) {
            (Ok(_), Some(m)) if age.is_none_or(|a| a <= PARTIAL_MAX_AGE) => keep.push((m, p)),
            _ => remove(&p, "too old to resume"),
        }
    }
    keep.sort_by_key(|k| std::cmp::Reverse(k.0));
    for (_, p) in keep.iter().skip(PARTIAL_MAX_COUNT) {
        remove(p, "more than the store keeps");
    }
    Ok(())
}

fn remove(p: &Path, why: &str) {
    match fs::remove_file(p) {
        Ok(()) => tracing::info!(path = %p.display(), why, "removed a partial download"),
        Err(e) => {
            tracing::warn!(path = %p.display(), error = %e, "cannot remove a partial download")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let d = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(d.path()).unwrap();
        (d, cs)
    }

    fn write(cs: &ContentStore, d: &Digest, data: &[u8]) {
        fs::write(cs.partial_path(d), data).unwrap();
    }

    #[test]
    fn kept_bytes_replay_and_commit_as_the_blob() {
        let (_t, cs) = store();
        let data = b"0123456789abcdef";
        let d = Digest::sha256_of(data);
        assert_eq!(cs.partial_len(&d), 0);
        // A first download gets 10 bytes, then stops.
        let (mut w, replay) = cs.resumable_writer(&d, 0).unwrap().unwrap();
        assert_eq!(replay.limit(), 0);
        w.write(&data[..10]).unwrap();
        w.keep_for_resume();
        assert_eq!(cs.partial_len(&d), 10);
        assert!(cs.list().unwrap().is_empty(), "a partial file is no blob");
        // The next resumes at 6 (what it asked the source for): the rest past 6 is dropped.
        let (mut w, mut replay) = cs.resumable_writer(&d, 6).unwrap().unwrap();
        assert_eq!(cs.partial_len(&d), 6);
        let mut kept = Vec::new();
        replay.read_to_end(&mut kept).unwrap();
        assert_eq!(kept, &data[..6]);
        w.write(&kept).unwrap();
        w.write(&data[6..]).unwrap();
        let i = w.commit(Some(&d)).unwrap();
        assert!(i.created);
        assert_eq!(cs.read(&d).unwrap(), data);
        assert_eq!(cs.partial_len(&d), 0);
    }

    #[test]
    fn one_download_at_a_time() {
        let (_t, cs) = store();
        let d = Digest::sha256_of(b"x");
        write(&cs, &d, b"abc");
        let held = cs.resumable_writer(&d, 3).unwrap().unwrap();
        let err = cs.resumable_writer(&d, 3).err().unwrap();
        assert!(
            matches!(err, StorageError::ResumeUnavailable { offset: 3, .. }),
            "{err:?}"
        );
        assert!(cs.resumable_writer(&d, 0).unwrap().is_none());
        drop(held);
        // A failed download removed its file: the next starts from nothing.
        assert_eq!(cs.partial_len(&d), 0);
        let err = cs.resumable_writer(&d, 1).err().unwrap();
        assert!(err.to_string().contains("only 0 bytes"), "{err}");
        assert!(!cs.partial_path(&d).exists());
    }

    #[test]
    fn a_wrong_partial_fails_the_digest_and_goes() {
        let (_t, cs) = store();
        let data = b"the real blob";
        let d = Digest::sha256_of(data);
        write(&cs, &d, b"THE");
        let (mut w, _) = cs.resumable_writer(&d, 3).unwrap().unwrap();
        w.write(b"THE").unwrap();
        w.write(&data[3..]).unwrap();
        assert!(matches!(
            w.commit(Some(&d)),
            Err(StorageError::DigestMismatch { .. })
        ));
        assert_eq!(cs.partial_len(&d), 0);
        assert!(cs.list().unwrap().is_empty());
    }

    #[test]
    fn open_sweeps_old_strange_and_surplus_partials() {
        let t = tempfile::tempdir().unwrap();
        let ingest = t.path().join("ingest");
        fs::create_dir_all(&ingest).unwrap();
        let name = |i: u32| format!("{}{SUFFIX}", Digest::sha256_of(&i.to_le_bytes()).hex());
        let now = SystemTime::now();
        let total = PARTIAL_MAX_COUNT as u32 + 3;
        for i in 0..total {
            let f = File::create(ingest.join(name(i))).unwrap();
            // File i is i minutes old; file 0 two days.
            let age = if i == 0 { 48 * 3600 } else { 60 * u64::from(i) };
            f.set_modified(now - Duration::from_secs(age)).unwrap();
        }
        fs::write(ingest.join(format!("not-a-digest{SUFFIX}")), b"x").unwrap();
        fs::write(ingest.join("resumable-ref"), b"x").unwrap();
        ContentStore::open(t.path()).unwrap();
        let left: Vec<String> = fs::read_dir(&ingest)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left.len(), PARTIAL_MAX_COUNT + 1, "{left:?}");
        assert!(left.contains(&"resumable-ref".to_owned()));
        assert!(!left.contains(&name(0)), "the two-day-old one");
        assert!(left.contains(&name(1)) && left.contains(&name(total - 3)));
        assert!(!left.contains(&name(total - 1)) && !left.contains(&name(total - 2)));
    }
}
