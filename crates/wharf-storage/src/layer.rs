//! Importing one layer: blob in, committed snapshot out.
//!
//! The blob is stored first (verified by its own digest), then unpacked into a temporary active
//! snapshot, then committed under its chain id. A failed import removes what it made, so the
//! store holds either the whole layer or nothing of it. A crash mid-import can leave a temporary
//! snapshot behind; [`cleanup_interrupted_imports`] removes those at daemon start.

use std::io::Read;

use crate::diff::{apply_layer, peek, Compression};
use crate::digest::chain_id_next;
use crate::meta::SnapshotKind;
use crate::{random_hex, ContentStore, Digest, Result, Snapshotter, StorageError};

pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Key prefix of the temporary snapshot a layer is unpacked into.
const IMPORT_PREFIX: &str = "import-tmp-";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerImport {
    /// Digest of the stored (possibly compressed) blob.
    pub blob: Digest,
    pub blob_size: u64,
    pub media_type: String,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Key of the committed snapshot (`sha256:...`).
    pub chain_id: Digest,
    /// Bytes of file content in this layer's snapshot (Docker's per-layer "size").
    pub size: u64,
}

/// Stores the layer read from `r` and unpacks it on top of the committed snapshot
/// `parent_chain` (`None` for a base layer). Importing the same layer twice yields the same
/// chain id and one snapshot.
pub fn import_layer(
    content: &ContentStore,
    snaps: &Snapshotter,
    r: impl Read,
    parent_chain: Option<&Digest>,
) -> Result<LayerImport> {
    // Checked first so that a bad parent stores nothing at all.
    if let Some(p) = parent_chain {
        match snaps.stat(p.as_str())? {
            None => return Err(StorageError::SnapshotNotFound(p.to_string())),
            Some(i) if i.kind != SnapshotKind::Committed => {
                return Err(StorageError::SnapshotWrongKind {
                    key: p.to_string(),
                    expected: SnapshotKind::Committed,
                    actual: i.kind,
                })
            }
            Some(_) => {}
        }
    }
    let (head, r) =
        peek::<_, 6>(r).map_err(|e| StorageError::InvalidLayer(format!("reading layer: {e}")))?;
    let media_type = match Compression::detect(&head) {
        Compression::Gzip => MEDIA_TYPE_LAYER_TAR_GZIP,
        Compression::Zstd => MEDIA_TYPE_LAYER_TAR_ZSTD,
        _ => MEDIA_TYPE_LAYER_TAR,
    };
    let blob = content.ingest_reporting(r, None)?;
    let tmp_key = format!("{IMPORT_PREFIX}{}", random_hex(8));
    let mut prepared = false;
    let result = unpack(
        content,
        snaps,
        &blob.digest,
        &tmp_key,
        parent_chain,
        &mut prepared,
    );
    match result {
        Ok((stats, chain)) => Ok(LayerImport {
            blob: blob.digest,
            blob_size: blob.size,
            media_type: media_type.to_owned(),
            diff_id: stats.diff_id,
            chain_id: chain,
            size: stats.file_bytes,
        }),
        Err(e) => {
            if prepared {
                if let Err(re) = snaps.remove(&tmp_key) {
                    tracing::warn!(key = %tmp_key, error = %re, "cannot remove snapshot of failed import");
                }
            }
            if blob.created {
                if let Err(de) = content.delete(&blob.digest) {
                    tracing::warn!(blob = %blob.digest, error = %de, "cannot remove blob of failed import");
                }
            }
            Err(e)
        }
    }
}

fn unpack(
    content: &ContentStore,
    snaps: &Snapshotter,
    blob: &Digest,
    tmp_key: &str,
    parent_chain: Option<&Digest>,
    prepared: &mut bool,
) -> Result<(crate::ApplyStats, Digest)> {
    snaps.prepare(tmp_key, parent_chain.map(Digest::as_str))?;
    *prepared = true;
    let upper = snaps.upper_dir(tmp_key)?;
    let f = std::io::BufReader::with_capacity(256 * 1024, content.open_blob(blob)?);
    let stats = apply_layer(f, &upper)?;
    let chain = chain_id_next(parent_chain, &stats.diff_id);
    let exists = |snaps: &Snapshotter| -> Result<bool> {
        Ok(snaps
            .stat(chain.as_str())?
            .is_some_and(|i| i.kind == SnapshotKind::Committed))
    };
    if exists(snaps)? {
        snaps.remove(tmp_key)?;
        *prepared = false;
        return Ok((stats, chain));
    }
    match snaps.commit(chain.as_str(), tmp_key) {
        Ok(()) => {
            *prepared = false;
        }
        // Another import of the same layer won the race: theirs is as good as ours.
        Err(StorageError::SnapshotExists(_)) if exists(snaps)? => {
            snaps.remove(tmp_key)?;
            *prepared = false;
        }
        Err(e) => return Err(e),
    }
    Ok((stats, chain))
}

/// Removes temporary import snapshots left by a crash. Call once at start, before any import.
pub fn cleanup_interrupted_imports(snaps: &Snapshotter) -> Result<usize> {
    let mut n = 0;
    for s in snaps.list()? {
        if s.kind == SnapshotKind::Active && s.key.starts_with(IMPORT_PREFIX) {
            snaps.remove(&s.key)?;
            tracing::info!(key = %s.key, "restore: removed the half-unpacked layer of an import cut by a crash");
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::tests::{tar_bytes, E};
    use crate::Db;
    use std::sync::Arc;

    struct Env {
        _d: tempfile::TempDir,
        cs: ContentStore,
        snaps: Snapshotter,
    }

    /// Importing gives each file the owner its layer names, which takes CAP_CHOWN.
    const NEEDS_CHOWN: &str = "needs root: applying a layer gives files their owners (CAP_CHOWN)";

    fn env() -> Env {
        let d = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&d.path().join("meta.db")).unwrap());
        let cs = ContentStore::open(&d.path().join("content")).unwrap();
        let snaps = Snapshotter::new(d.path(), db).unwrap();
        Env { _d: d, cs, snaps }
    }

    #[test]
    fn import_twice_same_chain_one_snapshot() {
        if !nix::unistd::geteuid().is_root() {
            crate::test_skip::skip(NEEDS_CHOWN);
            return;
        }
        let e = env();
        let l1 = tar_bytes(&[E::File("a", b"1")]);
        let i1 = import_layer(&e.cs, &e.snaps, &l1[..], None).unwrap();
        assert_eq!(i1.media_type, MEDIA_TYPE_LAYER_TAR);
        assert_eq!(i1.diff_id, Digest::sha256_of(&l1));
        assert_eq!(i1.chain_id, i1.diff_id);
        assert_eq!(i1.size, 1);
        let again = import_layer(&e.cs, &e.snaps, &l1[..], None).unwrap();
        assert_eq!(again, i1);
        assert_eq!(e.snaps.list().unwrap().len(), 1);

        let l2 = crate::diff::tests::gzip(&tar_bytes(&[E::File("b", b"22")]));
        let i2 = import_layer(&e.cs, &e.snaps, &l2[..], Some(&i1.chain_id)).unwrap();
        assert_eq!(i2.media_type, MEDIA_TYPE_LAYER_TAR_GZIP);
        assert_eq!(i2.blob, Digest::sha256_of(&l2));
        assert_eq!(
            i2.chain_id,
            crate::chain_id(&[i1.diff_id.clone(), i2.diff_id.clone()])
        );
        let info = e.snaps.stat(i2.chain_id.as_str()).unwrap().unwrap();
        assert_eq!(info.parent.as_deref(), Some(i1.chain_id.as_str()));
        assert_eq!(info.kind, SnapshotKind::Committed);
        assert_eq!(e.snaps.list().unwrap().len(), 2);
        assert_eq!(e.cs.list().unwrap().len(), 2);
    }

    #[test]
    fn failed_import_leaves_nothing() {
        if !nix::unistd::geteuid().is_root() {
            crate::test_skip::skip(NEEDS_CHOWN);
            return;
        }
        let e = env();
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        let err = import_layer(&e.cs, &e.snaps, &garbage[..], None).unwrap_err();
        assert!(matches!(err, StorageError::InvalidLayer(_)), "{err:?}");
        assert!(e.cs.list().unwrap().is_empty());
        assert!(e.snaps.list().unwrap().is_empty());
        let dirs = std::fs::read_dir(e._d.path().join("snapshots"))
            .unwrap()
            .count();
        assert_eq!(dirs, 0);

        // A traversal attempt fails after files were already written: still nothing left.
        let evil = tar_bytes(&[E::File("ok", b"x"), E::File("../evil", b"x")]);
        let err = import_layer(&e.cs, &e.snaps, &evil[..], None).unwrap_err();
        assert!(matches!(err, StorageError::UnsafePath { .. }), "{err:?}");
        assert!(e.cs.list().unwrap().is_empty());
        assert!(e.snaps.list().unwrap().is_empty());
        assert_eq!(
            std::fs::read_dir(e._d.path().join("snapshots"))
                .unwrap()
                .count(),
            0
        );

        // Missing parent: nothing is even stored.
        let ok = tar_bytes(&[E::File("a", b"1")]);
        let missing = Digest::sha256_of(b"nope");
        assert!(import_layer(&e.cs, &e.snaps, &ok[..], Some(&missing))
            .unwrap_err()
            .is_not_found());
        assert!(e.cs.list().unwrap().is_empty());
    }

    #[test]
    fn failed_import_keeps_preexisting_blob() {
        let e = env();
        let evil = tar_bytes(&[E::File("../evil", b"x")]);
        let d = e.cs.put_bytes(&evil).unwrap();
        assert!(import_layer(&e.cs, &e.snaps, &evil[..], None).is_err());
        assert!(e.cs.exists(&d));
    }

    #[test]
    fn cleanup_removes_interrupted() {
        let e = env();
        e.snaps.prepare("import-tmp-dead", None).unwrap();
        e.snaps.prepare("container-rw", None).unwrap();
        assert_eq!(cleanup_interrupted_imports(&e.snaps).unwrap(), 1);
        assert_eq!(e.snaps.list().unwrap().len(), 1);
    }
}
