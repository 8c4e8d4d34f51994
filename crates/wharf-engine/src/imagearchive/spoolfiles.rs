//! The files of a load's archive, each in a temp file of its own in the content store's
//! `ingest/` directory, named by the load and hashed as it is written.
//!
//! Not blobs yet: nothing is fsynced or renamed, so a layer the load then unpacks (which
//! stores its blob, synced, as every layer ingest does) or an archive's `manifest.json` costs
//! one write to the page cache, which is dropped with the file, often before it ever reaches
//! the disk. The files go when the load ends, whatever its outcome ([`Drop`]); a crash leaves
//! them with the `tmp-` prefix that `ContentStore::open` removes at the next start.

use sha2::Digest as _;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use wharf_storage::Digest;

/// The temp files of one load, by the digest of their content (identical files once).
#[derive(Debug)]
pub(super) struct SpoolFiles {
    dir: PathBuf,
    /// `tmp-load-<random>-`: `tmp-` is the content store's temp prefix (removed at its open).
    prefix: String,
    next: u64,
    files: HashMap<Digest, PathBuf>,
}

/// A file that could not be spooled: its digest is not the one its name says, or writing or
/// reading failed.
#[derive(Debug)]
pub(super) enum SpoolError {
    Mismatch { actual: Digest },
    Io(io::Error),
}

impl SpoolFiles {
    /// Spool files under `ingest_dir` (the content store's `ingest/`).
    pub fn new(ingest_dir: PathBuf) -> SpoolFiles {
        let mut r = [0u8; 8];
        // Uniqueness is also enforced by `create_new`; a failure only makes a clash likelier.
        let _ = getrandom::fill(&mut r);
        SpoolFiles {
            dir: ingest_dir,
            prefix: format!("tmp-load-{}-", hex::encode(r)),
            next: 0,
            files: HashMap::new(),
        }
    }

    /// Writes `r` to a new temp file; its digest and size. With `expected`, another digest
    /// keeps nothing.
    pub fn add(
        &mut self,
        r: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), SpoolError> {
        let path = self.dir.join(format!("{}{}", self.prefix, self.next));
        self.next += 1;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(SpoolError::Io)?;
        let written = copy_hashing(r, &mut f);
        drop(f);
        let (digest, size) = match written {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(SpoolError::Io(e));
            }
        };
        if expected.is_some_and(|x| *x != digest) {
            let _ = std::fs::remove_file(&path);
            return Err(SpoolError::Mismatch { actual: digest });
        }
        if self.files.contains_key(&digest) {
            let _ = std::fs::remove_file(&path);
        } else {
            self.files.insert(digest.clone(), path);
        }
        Ok((digest, size))
    }

    /// The spooled file with this content.
    pub fn open(&self, d: &Digest) -> io::Result<File> {
        match self.files.get(d) {
            Some(p) => File::open(p),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{d} is not in the archive"),
            )),
        }
    }
}

fn copy_hashing(r: &mut dyn Read, w: &mut File) -> io::Result<(Digest, u64)> {
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n: u64 = 0;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..k]);
        w.write_all(&buf[..k])?;
        n += k as u64;
    }
    Ok((Digest::from_sha256_bytes(&h.finalize().into()), n))
}

impl Drop for SpoolFiles {
    fn drop(&mut self) {
        for p in self.files.values() {
            if let Err(e) = std::fs::remove_file(p) {
                tracing::warn!(path = %p.display(), error = %e, "load: cannot remove a spool file");
            }
        }
    }
}

impl Default for SpoolFiles {
    /// Spool files nowhere: for a [`super::spool::Spooled`] built by hand in tests.
    fn default() -> Self {
        SpoolFiles::new(PathBuf::new())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn files_are_hashed_checked_shared_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let mut s = SpoolFiles::new(d.path().to_path_buf());
        let (a, n) = s.add(&mut &b"abc"[..], None).unwrap();
        assert_eq!((a.clone(), n), (Digest::sha256_of(b"abc"), 3));
        // The same content again is one file.
        s.add(&mut &b"abc"[..], Some(&a)).unwrap();
        assert!(matches!(
            s.add(&mut &b"abd"[..], Some(&a)),
            Err(SpoolError::Mismatch { .. })
        ));
        let mut got = String::new();
        s.open(&a).unwrap().read_to_string(&mut got).unwrap();
        assert_eq!(got, "abc");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        let name = std::fs::read_dir(d.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name();
        assert!(name.to_string_lossy().starts_with("tmp-load-"));
        drop(s);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
