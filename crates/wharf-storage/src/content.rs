//! Content-addressed blob store: `root/blobs/sha256/<hex>`, with writes staged in `root/ingest/`.
//!
//! A blob becomes visible only after its bytes were hashed, compared with the expected digest,
//! fsynced and renamed into place, so every file under `blobs/` is complete and matches its name.
//! What a cut-off download received is kept in `ingest/<hex>.partial` for the next one to
//! resume ([`partial`]); those files are never blobs.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::{random_hex, Digest, IoContext, Result, StorageError};

pub mod partial;

/// Prefix of our own temp files in `ingest/`; other names there (resumable downloads) are left alone.
const TMP_PREFIX: &str = "tmp-";

/// Result of [`ContentStore::ingest_reporting`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    pub digest: Digest,
    pub size: u64,
    /// False when the blob was already stored.
    pub created: bool,
}

#[derive(Debug)]
pub struct ContentStore {
    root: PathBuf,
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens (creating) the store and deletes temp files left by an ingest that died mid-way,
    /// and resumable downloads too old or too many to keep ([`partial`]).
    pub fn open(root: &Path) -> Result<ContentStore> {
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        fs::create_dir_all(&blobs).ctx("create dir", &blobs)?;
        fs::create_dir_all(&ingest).ctx("create dir", &ingest)?;
        for e in fs::read_dir(&ingest).ctx("read dir", &ingest)? {
            let e = e.ctx("read dir", &ingest)?;
            if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let p = e.path();
                match fs::remove_file(&p) {
                    Ok(()) => {
                        tracing::info!(path = %p.display(), "restore: removed the partial blob of an ingest cut by a crash")
                    }
                    Err(err) => {
                        tracing::warn!(path = %p.display(), error = %err, "cannot remove stale ingest file")
                    }
                }
            }
        }
        partial::sweep(&ingest)?;
        Ok(ContentStore {
            root: root.to_owned(),
            blobs,
            ingest,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a blob's file (whether or not it exists).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    /// Streams `r` into the store, hashing as it goes. With `expected`, a different digest is a
    /// [`StorageError::DigestMismatch`] and nothing is stored. Storing an existing blob is a no-op
    /// that still reads `r` to the end (to verify it).
    pub fn ingest(&self, r: impl Read, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let i = self.ingest_reporting(r, expected)?;
        Ok((i.digest, i.size))
    }

    /// [`Self::ingest`] that also says whether this call created the blob (it did not exist
    /// before), so a caller undoing a failed operation knows whether to delete it.
    pub fn ingest_reporting(
        &self,
        mut r: impl Read,
        expected: Option<&Digest>,
    ) -> Result<Ingested> {
        let tmp = self.ingest.join(format!("{TMP_PREFIX}{}", random_hex(12)));
        self.ingest_into(&mut r, expected, &tmp)
    }

    fn ingest_into(
        &self,
        r: &mut dyn Read,
        expected: Option<&Digest>,
        tmp: &Path,
    ) -> Result<Ingested> {
        let mut w = self.writer_at(tmp.to_owned())?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StorageError::io("read ingest source for", tmp, e)),
            };
            w.write(&buf[..n])?;
        }
        w.commit(expected)
    }

    /// A blob written piece by piece (a layer is stored while it is unpacked). Nothing is
    /// visible until [`BlobWriter::commit`]; dropping the writer without it removes the temp file.
    pub fn writer(&self) -> Result<BlobWriter<'_>> {
        self.writer_at(self.ingest.join(format!("{TMP_PREFIX}{}", random_hex(12))))
    }

    fn writer_at(&self, tmp: PathBuf) -> Result<BlobWriter<'_>> {
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
            .ctx("create", &tmp)?;
        Ok(BlobWriter {
            store: self,
            tmp,
            file: Some(f),
            hasher: Sha256::new(),
            size: 0,
            resumable: false,
            on_disk: 0,
        })
    }

    pub fn put_bytes(&self, data: &[u8]) -> Result<Digest> {
        Ok(self.ingest(data, None)?.0)
    }

    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        fs::read(&p).map_err(|e| self.not_found_or(d, "read", &p, e))
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.blob_path(d);
        File::open(&p).map_err(|e| self.not_found_or(d, "open", &p, e))
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    pub fn size(&self, d: &Digest) -> Result<u64> {
        let p = self.blob_path(d);
        Ok(fs::metadata(&p)
            .map_err(|e| self.not_found_or(d, "stat", &p, e))?
            .len())
    }

    pub fn delete(&self, d: &Digest) -> Result<()> {
        let p = self.blob_path(d);
        fs::remove_file(&p).map_err(|e| self.not_found_or(d, "remove", &p, e))?;
        // Losing this fsync only resurrects a deleted blob after a crash, which GC handles.
        let _ = wharf_fs::fsync_dir(&self.blobs);
        Ok(())
    }

    /// Every stored blob; files whose names are not 64 lowercase hex are ignored.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.blobs).ctx("read dir", &self.blobs)? {
            let e = e.ctx("read dir", &self.blobs)?;
            if let Some(d) = e
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    fn not_found_or(&self, d: &Digest, op: &'static str, p: &Path, e: io::Error) -> StorageError {
        if e.kind() == io::ErrorKind::NotFound {
            StorageError::BlobNotFound(d.clone())
        } else {
            StorageError::io(op, p, e)
        }
    }
}

/// A blob being written: see [`ContentStore::writer`].
#[derive(Debug)]
pub struct BlobWriter<'a> {
    store: &'a ContentStore,
    tmp: PathBuf,
    /// `None` once committed (the temp file is then the blob, or gone).
    file: Option<File>,
    hasher: Sha256,
    size: u64,
    /// The file is `<hex>.partial`, locked, kept by [`Self::keep_for_resume`].
    resumable: bool,
    /// How many bytes at the start of the stream the file already holds (a resumed download
    /// replays them): hashed, not written again.
    on_disk: u64,
}

impl BlobWriter<'_> {
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        self.hasher.update(data);
        let held = self
            .on_disk
            .saturating_sub(self.size)
            .min(data.len() as u64) as usize;
        f.write_all(&data[held..]).ctx("write", &self.tmp)?;
        self.size += data.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Hashes what was written, compares it with `expected` (a mismatch stores nothing), and
    /// makes the blob visible: fsynced, read-only, renamed into `blobs/`.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<Ingested> {
        let Some(f) = self.file.take() else {
            return Err(StorageError::io(
                "commit",
                &self.tmp,
                io::Error::other("blob writer already committed"),
            ));
        };
        let actual = Digest::from_sha256_bytes(&std::mem::take(&mut self.hasher).finalize().into());
        let size = self.size;
        let tmp = self.tmp.clone();
        if let Some(exp) = expected {
            if *exp != actual {
                // Removed before it is closed: a resumable file's lock goes with the close.
                let _ = fs::remove_file(&tmp);
                drop(f);
                return Err(StorageError::DigestMismatch {
                    expected: exp.clone(),
                    actual,
                });
            }
        }
        let store = self.store;
        // From here the temp file is handled below, not by Drop. It stays open until it is
        // renamed or removed: a resumable file's lock keeps the next download of the same
        // blob from taking it meanwhile.
        let res = (|| {
            let dst = store.blob_path(&actual);
            if dst.exists() {
                return Ok(false);
            }
            f.sync_all().ctx("fsync", &tmp)?;
            // Read-only on disk: a blob is immutable and a stray write would silently break its digest.
            f.set_permissions(fs::Permissions::from_mode(0o444))
                .ctx("chmod", &tmp)?;
            fs::rename(&tmp, &dst).ctx("rename into", &dst)?;
            wharf_fs::fsync_dir(&store.blobs).ctx("fsync dir", &store.blobs)?;
            Ok(true)
        })();
        let done = match res {
            Ok(created) => {
                if !created {
                    fs::remove_file(&tmp).ctx("remove", &tmp)?;
                }
                Ok(Ingested {
                    digest: actual,
                    size,
                    created,
                })
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        };
        drop(f);
        done
    }

    /// Stops a resumable ingest and keeps what it received, fsynced, for a later one to
    /// resume ([`partial`]). Any other writer is dropped: its temp file goes.
    pub fn keep_for_resume(mut self) {
        if !self.resumable {
            return;
        }
        if let Some(f) = self.file.take() {
            if let Err(e) = f.sync_all() {
                // Kept all the same: a bad prefix only fails the next download's digest check.
                tracing::warn!(path = %self.tmp.display(), error = %e, "cannot fsync a partial download");
            }
        }
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.file.take() {
            // Removed before it is closed: a resumable file's lock goes with the close.
            if let Err(e) = fs::remove_file(&self.tmp) {
                tracing::warn!(path = %self.tmp.display(), error = %e, "cannot remove the partial blob of a failed ingest");
            }
            drop(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_verify_and_read() {
        let d = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(d.path()).unwrap();
        let want = Digest::sha256_of(b"hello");
        let (got, n) = cs.ingest(&b"hello"[..], Some(&want)).unwrap();
        assert_eq!((got.clone(), n), (want.clone(), 5));
        assert!(cs.exists(&want));
        assert_eq!(cs.read(&want).unwrap(), b"hello");
        assert_eq!(cs.size(&want).unwrap(), 5);
        let mut s = String::new();
        cs.open_blob(&want).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        assert_eq!(cs.list().unwrap(), vec![want.clone()]);
        // Idempotent.
        assert_eq!(cs.put_bytes(b"hello").unwrap(), want);
        assert_eq!(cs.list().unwrap().len(), 1);
        cs.delete(&want).unwrap();
        assert!(cs.delete(&want).unwrap_err().is_not_found());
        assert!(cs.read(&want).unwrap_err().is_not_found());
        assert!(cs.open_blob(&want).unwrap_err().is_not_found());
        assert_eq!(fs::read_dir(d.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn mismatch_stores_nothing() {
        let d = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(d.path()).unwrap();
        let wrong = Digest::sha256_of(b"other");
        let err = cs.ingest(&b"hello"[..], Some(&wrong)).unwrap_err();
        assert!(matches!(err, StorageError::DigestMismatch { .. }));
        assert!(cs.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(d.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn failing_reader_leaves_no_temp() {
        struct Bad;
        impl Read for Bad {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("boom"))
            }
        }
        let d = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(d.path()).unwrap();
        assert!(cs.ingest(Bad, None).is_err());
        assert_eq!(fs::read_dir(d.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn open_cleans_stale_temps_only() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("ingest/resumable-ref")).unwrap();
        fs::write(d.path().join("ingest/tmp-dead"), b"x").unwrap();
        let _cs = ContentStore::open(d.path()).unwrap();
        assert!(!d.path().join("ingest/tmp-dead").exists());
        assert!(d.path().join("ingest/resumable-ref").exists());
    }
}
