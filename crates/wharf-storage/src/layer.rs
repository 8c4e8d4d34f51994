//! Importing one layer: a stream in, a stored blob and a committed snapshot out, in one pass.
//!
//! Every layer source (import today; load, pull, build, commit and cp to come) goes through
//! [`import_layer`] or its two halves, [`import_layer_detached`] and
//! [`DetachedLayer::commit_onto`]. The stream is read once: each chunk is hashed and written
//! to the blob's temp file as it arrives, and the same bytes go on to the decompressor and
//! the tar applier, which unpacks into a temporary active snapshot. Nothing is buffered
//! whole, so a client that goes away, a layer that expands past a limit, or a filesystem that
//! drops below its reserve stops the ingest within a read (see [`crate::ingest`]). Only once
//! the stream ended cleanly is the blob verified against its digest and made visible, and
//! the snapshot committed under its chain id. A failed or cancelled import removes what it
//! made, so the store holds either the whole layer or nothing of it. A crash mid-import can
//! leave a temporary snapshot and a temp file in `ingest/`; [`cleanup_interrupted_imports`]
//! and [`ContentStore::open`] remove those at daemon start.
//!
//! Detached layers: an overlay upper dir does not depend on the layers below it (a whiteout
//! is a 0/0 char device, an opaque dir an xattr, hard links only reach files of the same
//! layer), so the layers of an image can be unpacked at the same time, each into a
//! temporary snapshot on no parent, and stacked in order as they finish:
//! [`DetachedLayer::commit_onto`] puts the snapshot on its parent as it commits it
//! ([`Snapshotter::commit_with_parent`], one DB transaction).

use std::io::{self, Read};

use crate::content::BlobWriter;
use crate::diff::{apply_layer_guarded, ApplyStats, Compression};
use crate::digest::chain_id_next;
use crate::ingest::{Cancel, Guard, IngestPolicy};
use crate::meta::SnapshotKind;
use crate::{random_hex, ContentStore, Digest, Ingested, Result, Snapshotter, StorageError};

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

/// How one layer is ingested: under which limits, stopped by what, checked against what.
#[derive(Debug, Clone, Copy)]
pub struct LayerIngest<'a> {
    pub policy: &'a IngestPolicy,
    /// Set by the caller when its client goes away.
    pub cancel: &'a Cancel,
    /// The blob's digest when the source names it (a manifest, an archive's index): a stream
    /// that hashes differently stores nothing.
    pub expected_blob: Option<&'a Digest>,
}

/// Stores the layer read from `r` and unpacks it on top of the committed snapshot
/// `parent_chain` (`None` for a base layer), in one pass, under `how`'s limits. Importing the
/// same layer twice yields the same chain id and one snapshot.
pub fn import_layer(
    content: &ContentStore,
    snaps: &Snapshotter,
    r: impl Read,
    parent_chain: Option<&Digest>,
    how: LayerIngest<'_>,
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
    // Unpacked on the parent itself, which keeps the parent from being removed meanwhile.
    unpack(content, snaps, r, parent_chain, how, Resume::No)?.commit_onto(
        content,
        snaps,
        parent_chain,
    )
}

/// Whether a cut-off download keeps what it received, and where the caller's reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resume {
    /// A cut-off ingest leaves nothing, as [`import_layer`]'s.
    #[default]
    No,
    /// Resumable under `how.expected_blob` (which it needs): cancelled, the ingest keeps the
    /// bytes it received ([`crate::content::partial`]); the reader yields the blob from this
    /// offset, which is [`ContentStore::partial_len`] read before the source was opened (0:
    /// from the start; a source that ignored the range asked for starts at 0 too). The kept
    /// bytes are replayed before the reader's.
    From(u64),
}

/// Stores the layer read from `r` and unpacks it into a temporary snapshot of its own, on no
/// parent, under `how`'s limits, so that the layers of an image can be unpacked at the same
/// time. The blob is committed (and checked against `how.expected_blob`) before this returns;
/// the snapshot is committed by [`DetachedLayer::commit_onto`] once its parent is. On error
/// or cancellation nothing is left, as with [`import_layer`], but for what `resume` keeps.
/// A [`StorageError::ResumeUnavailable`] asks the caller to start over from 0.
pub fn import_layer_detached(
    content: &ContentStore,
    snaps: &Snapshotter,
    r: impl Read,
    how: LayerIngest<'_>,
    resume: Resume,
) -> Result<DetachedLayer> {
    unpack(content, snaps, r, None, how, resume)
}

/// A layer stored and unpacked, waiting for its parent: see [`import_layer_detached`]. Hand
/// it to [`DetachedLayer::commit_onto`] or [`DetachedLayer::discard`]; one that is merely
/// dropped leaves its temporary snapshot until the next daemon start, and its blob.
#[derive(Debug)]
#[must_use = "commit it onto its parent or discard it"]
pub struct DetachedLayer {
    /// Key of the temporary active snapshot holding the unpacked files.
    key: String,
    blob: Ingested,
    media_type: &'static str,
    stats: ApplyStats,
}

impl DetachedLayer {
    /// Digest of the stored (possibly compressed) blob.
    pub fn blob(&self) -> &Digest {
        &self.blob.digest
    }

    pub fn blob_size(&self) -> u64 {
        self.blob.size
    }

    pub fn media_type(&self) -> &'static str {
        self.media_type
    }

    /// sha256 of the uncompressed tar: what an image config's `rootfs.diff_ids` must name.
    pub fn diff_id(&self) -> &Digest {
        &self.stats.diff_id
    }

    /// Bytes of file content unpacked ([`LayerImport::size`]).
    pub fn file_bytes(&self) -> u64 {
        self.stats.file_bytes
    }

    /// Puts the layer on the committed snapshot `parent_chain` (`None` for a base layer) and
    /// commits it under `chain_id_next(parent_chain, diff_id)`. If that chain is already
    /// committed (the same layer on the same parent came in another way), the temporary
    /// snapshot is dropped and the existing one stands. On error the layer is discarded.
    pub fn commit_onto(
        self,
        content: &ContentStore,
        snaps: &Snapshotter,
        parent_chain: Option<&Digest>,
    ) -> Result<LayerImport> {
        let chain = chain_id_next(parent_chain, &self.stats.diff_id);
        if let Err(e) = self.settle(snaps, &chain, parent_chain) {
            if let Err(re) = self.remove(content, snaps) {
                tracing::warn!(key = %self.key, error = %re, "cannot remove the layer of a failed import");
            }
            return Err(e);
        }
        Ok(LayerImport {
            blob: self.blob.digest,
            blob_size: self.blob.size,
            media_type: self.media_type.to_owned(),
            diff_id: self.stats.diff_id,
            chain_id: chain,
            size: self.stats.file_bytes,
        })
    }

    /// Removes the temporary snapshot, and the blob if this import stored it.
    pub fn discard(self, content: &ContentStore, snaps: &Snapshotter) -> Result<()> {
        self.remove(content, snaps)
    }

    /// Removes the temporary snapshot and keeps the blob, which is whole and verified: a
    /// pull cut off after this layer's download (a sibling failed, the client went away)
    /// unpacks it from the store next time instead of downloading it again. A blob no image
    /// names is removed at the next daemon start, like any other.
    pub fn discard_keeping_blob(self, snaps: &Snapshotter) -> Result<()> {
        match snaps.remove(&self.key) {
            Err(e) if e.is_not_found() => Ok(()),
            r => r,
        }
    }

    fn settle(&self, snaps: &Snapshotter, chain: &Digest, parent: Option<&Digest>) -> Result<()> {
        let exists = |snaps: &Snapshotter| -> Result<bool> {
            Ok(snaps
                .stat(chain.as_str())?
                .is_some_and(|i| i.kind == SnapshotKind::Committed))
        };
        if exists(snaps)? {
            return snaps.remove(&self.key);
        }
        match snaps.commit_with_parent(chain.as_str(), &self.key, parent.map(Digest::as_str)) {
            Ok(()) => Ok(()),
            // Another import of the same layer won the race: theirs is as good as ours.
            Err(StorageError::SnapshotExists(_)) if exists(snaps)? => snaps.remove(&self.key),
            Err(e) => Err(e),
        }
    }

    fn remove(&self, content: &ContentStore, snaps: &Snapshotter) -> Result<()> {
        let snap = match snaps.remove(&self.key) {
            Err(e) if e.is_not_found() => Ok(()),
            r => r,
        };
        let blob = match self.blob.created {
            true => match content.delete(&self.blob.digest) {
                Err(e) if e.is_not_found() => Ok(()),
                r => r,
            },
            false => Ok(()),
        };
        snap.and(blob)
    }
}

/// Passes the source through to the decompressor while storing and hashing it, and counting
/// it against the guard. A read error of the source (a client that hung up mid-body) stops
/// the ingest as cancelled.
struct Tee<'a, 'c, 'p, R> {
    inner: R,
    blob: &'a mut BlobWriter<'c>,
    guard: &'a Guard<'p>,
    head: Vec<u8>,
}

impl<R: Read> Read for Tee<'_, '_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.guard.check_cancel()?;
        let n = loop {
            match self.inner.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(self.guard.stop(StorageError::Cancelled(format!(
                        "the layer stream broke off: {e}"
                    ))))
                }
            }
        };
        if n == 0 {
            // A stream cut by a dropped request can look like a clean end: the flag says which.
            self.guard.check_cancel()?;
            return Ok(0);
        }
        if self.head.len() < 6 {
            let take = (6 - self.head.len()).min(n);
            self.head.extend_from_slice(&buf[..take]);
        }
        self.blob.write(&buf[..n]).map_err(|e| self.guard.stop(e))?;
        self.guard.compressed(n as u64)?;
        Ok(n)
    }
}

/// Stores and unpacks the layer into a new temporary snapshot on `parent`; the blob is
/// committed, the snapshot not yet. On error, nothing of it is left but a resumable
/// download's kept bytes.
fn unpack(
    content: &ContentStore,
    snaps: &Snapshotter,
    r: impl Read,
    parent: Option<&Digest>,
    how: LayerIngest<'_>,
    resume: Resume,
) -> Result<DetachedLayer> {
    let guard = how.policy.guard(how.cancel)?;
    let key = format!("{IMPORT_PREFIX}{}", random_hex(8));
    snaps.prepare(&key, parent.map(Digest::as_str))?;
    let done = fill(content, snaps, &key, r, &guard, how.expected_blob, resume);
    if done.is_err() {
        if let Err(re) = snaps.remove(&key) {
            tracing::warn!(key = %key, error = %re, "cannot remove snapshot of failed import");
        }
    }
    done
}

/// Streams the layer into the prepared snapshot `key` and commits its blob.
fn fill(
    content: &ContentStore,
    snaps: &Snapshotter,
    key: &str,
    r: impl Read,
    guard: &Guard<'_>,
    expected: Option<&Digest>,
    resume: Resume,
) -> Result<DetachedLayer> {
    let upper = snaps.upper_dir(key)?;
    let (mut writer, kept) = stage(content, expected, resume)?;
    let (stats, head) = match stream(kept.chain(r), &upper, &mut writer, guard) {
        Ok(s) => s,
        Err(e) => {
            if matches!(e, StorageError::Cancelled(_)) {
                writer.keep_for_resume();
            }
            return Err(e);
        }
    };
    let media_type = match Compression::detect(&head) {
        Compression::Gzip => MEDIA_TYPE_LAYER_TAR_GZIP,
        Compression::Zstd => MEDIA_TYPE_LAYER_TAR_ZSTD,
        _ => MEDIA_TYPE_LAYER_TAR,
    };
    Ok(DetachedLayer {
        key: key.to_owned(),
        blob: writer.commit(expected)?,
        media_type,
        stats,
    })
}

/// The blob's writer, and the bytes a resumed download replays before its source.
fn stage<'c>(
    content: &'c ContentStore,
    expected: Option<&Digest>,
    resume: Resume,
) -> Result<(BlobWriter<'c>, Box<dyn Read>)> {
    if let Resume::From(from) = resume {
        let Some(d) = expected else {
            return Err(StorageError::InvalidLayer(
                "a resumable download needs the blob's digest".into(),
            ));
        };
        if let Some((w, kept)) = content.resumable_writer(d, from)? {
            return Ok((w, Box::new(kept)));
        }
        // Another download of the same blob holds its kept bytes: this one goes without.
    }
    Ok((content.writer()?, Box::new(io::empty())))
}

/// Reads the whole stream through the tee into the applier; the stats and the stream's
/// first bytes (which name its compression).
fn stream(
    r: impl Read,
    upper: &std::path::Path,
    writer: &mut BlobWriter<'_>,
    guard: &Guard<'_>,
) -> Result<(ApplyStats, Vec<u8>)> {
    // Buffered above the tee: the tar parser reads 512-byte headers, and each read of the
    // tee is a write to the blob and a wait on the request body.
    let mut src = io::BufReader::with_capacity(
        256 * 1024,
        Tee {
            inner: r,
            blob: writer,
            guard,
            head: Vec::with_capacity(6),
        },
    );
    let applied = apply_layer_guarded(&mut src, upper, guard).and_then(|stats| {
        // The blob is the whole stream, whatever follows the compressed data.
        io::copy(&mut src, &mut io::sink())
            .map_err(|e| StorageError::InvalidLayer(format!("reading layer: {e}")))?;
        Ok(stats)
    });
    let head = std::mem::take(&mut src.get_mut().head);
    drop(src);
    // The guard's reason, when it stopped the stream, is the real one: the parser only saw a
    // broken stream.
    if let Some(stop) = guard.take_stop() {
        return Err(stop);
    }
    let stats = applied?;
    // The last moment a departed client can still undo the import.
    if guard.check_cancel().is_err() {
        return Err(guard
            .take_stop()
            .unwrap_or_else(|| StorageError::Cancelled("the client went away".into())));
    }
    Ok((stats, head))
}

/// Stores the writable layer of the active snapshot `key` (its overlay upper dir, written as
/// a layer tar by [`crate::diff::create::write_layer_tar`]) as a new layer on the committed
/// snapshot `parent_chain`: `docker commit`. The tar is written on a thread of its own and
/// read by [`import_layer`] as it comes, so nothing is buffered whole and the layer is stored,
/// verified and committed exactly as an imported one; on error nothing of it is left.
/// `skip`: what of the upper dir is not the container's (its mounts, the runtime's mount
/// points).
pub fn commit_layer(
    content: &ContentStore,
    snaps: &Snapshotter,
    key: &str,
    parent_chain: Option<&Digest>,
    skip: &crate::changes::Skip,
    how: LayerIngest<'_>,
) -> Result<LayerImport> {
    let upper = snaps.upper_dir(key)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(8);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let mut w = ChannelWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
            };
            let wrote = crate::diff::create::write_layer_tar(&upper, skip, &mut w).and_then(|_| {
                w.send_buf()
                    .map_err(|e| StorageError::io("write layer tar of", &upper, e))
            });
            if let Err(e) = &wrote {
                // The reader must see a failure, never an early end of a tar.
                let _ = w.tx.send(Err(io::Error::other(e.public_message())));
            }
            wrote
        });
        let imported = import_layer(
            content,
            snaps,
            ChannelReader {
                rx,
                cur: Vec::new(),
                pos: 0,
            },
            parent_chain,
            how,
        );
        let wrote = writer.join().unwrap_or_else(|_| {
            Err(StorageError::InvalidLayer(
                "layer tar writer panicked".into(),
            ))
        });
        match (imported, wrote) {
            (Ok(layer), Ok(_)) => Ok(layer),
            // The writer's reason is the real one; a broken pipe only says the import stopped.
            (Err(_), Err(e)) if !is_broken_pipe(&e) => Err(e),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
        }
    })
}

const CHUNK: usize = 256 * 1024;

fn is_broken_pipe(e: &StorageError) -> bool {
    matches!(e, StorageError::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
}

/// The writing end of [`commit_layer`]'s pipe: chunks over a bounded channel.
struct ChannelWriter {
    tx: std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the layer import stopped"))
    }
}

impl io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The writer is done (it sends its failure before it goes).
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
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
pub(crate) mod tests {
    use super::*;
    use crate::diff::tests::{tar_bytes, E};
    use crate::ingest::{IngestLimits, Statvfs};
    use crate::Db;
    use std::sync::Arc;

    pub(crate) struct Env {
        pub(crate) d: tempfile::TempDir,
        pub(crate) cs: ContentStore,
        pub(crate) snaps: Snapshotter,
    }

    pub(crate) fn env() -> Env {
        let d = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&d.path().join("meta.db")).unwrap());
        let cs = ContentStore::open(&d.path().join("content")).unwrap();
        let snaps = Snapshotter::new(d.path(), db).unwrap();
        Env { d, cs, snaps }
    }

    /// Importing gives each file the owner its layer names, which takes CAP_CHOWN: without
    /// root, records a skip and says so.
    pub(crate) fn skip_unless_root() -> bool {
        if nix::unistd::geteuid().is_root() {
            return false;
        }
        crate::test_skip::skip("needs root: applying a layer gives files their owners (CAP_CHOWN)");
        true
    }

    /// A policy with no limit but those `f` sets.
    pub(crate) fn limits(f: impl FnOnce(&mut IngestLimits)) -> IngestPolicy {
        let mut l = IngestLimits::unlimited();
        f(&mut l);
        IngestPolicy::new(l, Arc::new(Statvfs("/".into())))
    }

    pub(crate) fn count(p: &std::path::Path) -> usize {
        std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0)
    }

    /// No blob, no temp file, no snapshot (row or directory).
    pub(crate) fn assert_nothing_left(e: &Env) {
        assert!(e.cs.list().unwrap().is_empty(), "blobs left");
        assert_eq!(
            count(&e.d.path().join("content/ingest")),
            0,
            "temp files left"
        );
        assert!(e.snaps.list().unwrap().is_empty(), "snapshots left");
        assert_eq!(
            count(&e.d.path().join("snapshots")),
            0,
            "snapshot dirs left"
        );
    }

    fn imp(e: &Env, r: impl Read, parent: Option<&Digest>) -> Result<LayerImport> {
        import_unlimited(&e.cs, &e.snaps, r, parent)
    }

    /// [`import_layer`] with no limit and no cancellation, for tests about something else.
    pub(crate) fn import_unlimited(
        cs: &ContentStore,
        snaps: &Snapshotter,
        r: impl Read,
        parent: Option<&Digest>,
    ) -> Result<LayerImport> {
        import_layer(
            cs,
            snaps,
            r,
            parent,
            LayerIngest {
                policy: &limits(|_| {}),
                cancel: &Cancel::new(),
                expected_blob: None,
            },
        )
    }

    /// Hands out `data` in small reads and raises `cancel` after `after` bytes, as a request
    /// dropped mid-body does.
    pub(crate) struct CancelAfter<'a> {
        pub(crate) data: &'a [u8],
        pub(crate) pos: usize,
        pub(crate) after: usize,
        pub(crate) cancel: Cancel,
        pub(crate) reads_after_cancel: usize,
    }

    impl<'a> CancelAfter<'a> {
        pub(crate) fn new(data: &'a [u8], after: usize) -> Self {
            CancelAfter {
                data,
                pos: 0,
                after,
                cancel: Cancel::new(),
                reads_after_cancel: 0,
            }
        }
    }

    impl Read for CancelAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.cancel.is_cancelled() {
                self.reads_after_cancel += 1;
            }
            let n = buf.len().min(4096).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos >= self.after {
                self.cancel.cancel();
            }
            Ok(n)
        }
    }

    #[test]
    fn import_twice_same_chain_one_snapshot() {
        if skip_unless_root() {
            return;
        }
        let e = env();
        let l1 = tar_bytes(&[E::File("a", b"1")]);
        let i1 = imp(&e, &l1[..], None).unwrap();
        assert_eq!(i1.media_type, MEDIA_TYPE_LAYER_TAR);
        assert_eq!(i1.diff_id, Digest::sha256_of(&l1));
        assert_eq!(i1.chain_id, i1.diff_id);
        assert_eq!(i1.size, 1);
        let again = imp(&e, &l1[..], None).unwrap();
        assert_eq!(again, i1);
        assert_eq!(e.snaps.list().unwrap().len(), 1);

        let l2 = crate::diff::tests::gzip(&tar_bytes(&[E::File("b", b"22")]));
        let i2 = imp(&e, &l2[..], Some(&i1.chain_id)).unwrap();
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
        if skip_unless_root() {
            return;
        }
        let e = env();
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        let err = imp(&e, &garbage[..], None).unwrap_err();
        assert!(matches!(err, StorageError::NotATar(_)), "{err:?}");
        assert!(e.cs.list().unwrap().is_empty());
        assert!(e.snaps.list().unwrap().is_empty());
        let dirs = std::fs::read_dir(e.d.path().join("snapshots"))
            .unwrap()
            .count();
        assert_eq!(dirs, 0);

        // A traversal attempt fails after files were already written: still nothing left.
        let evil = tar_bytes(&[E::File("ok", b"x"), E::File("../evil", b"x")]);
        let err = imp(&e, &evil[..], None).unwrap_err();
        assert!(matches!(err, StorageError::UnsafePath { .. }), "{err:?}");
        assert!(e.cs.list().unwrap().is_empty());
        assert!(e.snaps.list().unwrap().is_empty());
        assert_eq!(
            std::fs::read_dir(e.d.path().join("snapshots"))
                .unwrap()
                .count(),
            0
        );

        // Missing parent: nothing is even stored.
        let ok = tar_bytes(&[E::File("a", b"1")]);
        let missing = Digest::sha256_of(b"nope");
        assert!(imp(&e, &ok[..], Some(&missing)).unwrap_err().is_not_found());
        assert!(e.cs.list().unwrap().is_empty());
    }

    #[test]
    fn failed_import_keeps_preexisting_blob() {
        let e = env();
        let evil = tar_bytes(&[E::File("../evil", b"x")]);
        let d = e.cs.put_bytes(&evil).unwrap();
        assert!(imp(&e, &evil[..], None).is_err());
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

#[cfg(test)]
mod detached_tests;

#[cfg(test)]
mod resume_tests;

#[cfg(test)]
mod commit_tests;

#[cfg(test)]
mod bounded {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::tests::*;
    use super::*;
    use crate::diff::tests::{gzip, tar_bytes, E};
    use crate::ingest::{IngestLimits, MinFree, Space, SpaceProbe};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn run(e: &Env, r: impl Read, policy: &IngestPolicy, cancel: &Cancel) -> Result<LayerImport> {
        import_layer(
            &e.cs,
            &e.snaps,
            r,
            None,
            LayerIngest {
                policy,
                cancel,
                expected_blob: None,
            },
        )
    }

    fn zeros_layer(n: usize) -> Vec<u8> {
        tar_bytes(&[E::File("zeros", &vec![0u8; n])])
    }

    #[test]
    fn bomb_refused_by_ratio() {
        if skip_unless_root() {
            return;
        }
        let e = env();
        let bomb = gzip(&zeros_layer(8 << 20));
        assert!(bomb.len() < 64 << 10);
        let p = limits(|l| {
            l.max_ratio = 100;
            l.ratio_floor = 1 << 20;
        });
        let err = run(&e, &bomb[..], &p, &Cancel::new()).unwrap_err();
        assert!(
            matches!(err, StorageError::LayerRatio { ratio: 100, .. }),
            "{err:?}"
        );
        assert!(err.is_invalid_input());
        let m = err.to_string();
        assert!(
            m.contains("decompression bomb") && m.contains("--max-layer-ratio"),
            "{m}"
        );
        assert_nothing_left(&e);
        // Below the floor the same ratio is fine: small, very compressible layers are normal.
        let small = gzip(&zeros_layer(512 << 10));
        run(&e, &small[..], &p, &Cancel::new()).unwrap();
    }

    #[test]
    fn bomb_refused_by_max_size() {
        if skip_unless_root() {
            return;
        }
        let e = env();
        let p = limits(|l| l.max_layer_size = 256 << 10);
        for layer in [zeros_layer(1 << 20), gzip(&zeros_layer(1 << 20))] {
            let err = run(&e, &layer[..], &p, &Cancel::new()).unwrap_err();
            assert!(
                matches!(err, StorageError::LayerTooLarge { limit } if limit == 256 << 10),
                "{err:?}"
            );
            assert!(err.is_invalid_input());
            assert!(err.to_string().contains("--max-layer-size"), "{err}");
            assert_nothing_left(&e);
        }
        // Just under the limit passes.
        let ok = zeros_layer(100 << 10);
        run(&e, &ok[..], &p, &Cancel::new()).unwrap();
    }

    #[test]
    fn cancelled_mid_stream_leaves_nothing() {
        if skip_unless_root() {
            return;
        }
        let e = env();
        let layer = tar_bytes(&[
            E::File("a", &[1u8; 300 << 10]),
            E::File("b", &[2u8; 300 << 10]),
        ]);
        let mut r = CancelAfter::new(&layer, 200 << 10);
        let cancel = r.cancel.clone();
        let p = limits(|_| {});
        let err = run(&e, &mut r, &p, &cancel).unwrap_err();
        assert!(matches!(err, StorageError::Cancelled(_)), "{err:?}");
        assert!(r.reads_after_cancel == 0, "read on after the cancel");
        assert!(r.pos < layer.len());
        assert_nothing_left(&e);

        // Cancelled while the stream ends cleanly (a dropped request's body can look like
        // that): still nothing.
        let small = tar_bytes(&[E::File("a", b"1")]);
        let mut r = CancelAfter::new(&small, small.len());
        let cancel = r.cancel.clone();
        let err = run(&e, &mut r, &p, &cancel).unwrap_err();
        assert!(matches!(err, StorageError::Cancelled(_)), "{err:?}");
        assert_nothing_left(&e);
    }

    #[test]
    fn broken_stream_is_cancelled_and_leaves_nothing() {
        if skip_unless_root() {
            return;
        }
        struct Broken<'a>(&'a [u8]);
        impl Read for Broken<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::new(io::ErrorKind::ConnectionReset, "peer gone"));
                }
                let n = buf.len().min(self.0.len()).min(1000);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let e = env();
        let layer = gzip(&zeros_layer(1 << 20));
        let half = &layer[..layer.len() / 2];
        let err = run(&e, Broken(half), &limits(|_| {}), &Cancel::new()).unwrap_err();
        assert!(
            matches!(err, StorageError::Cancelled(ref m) if m.contains("peer gone")),
            "{err:?}"
        );
        assert_nothing_left(&e);
    }

    /// Free space that shrinks by what was asked so far: `free` for the first `ok_calls`
    /// measurements, then nothing.
    struct Shrinking {
        calls: AtomicU64,
        ok_calls: u64,
    }

    impl SpaceProbe for Shrinking {
        fn space(&self) -> io::Result<Space> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(Space {
                free: if n < self.ok_calls { 10 << 30 } else { 1 << 20 },
                total: 100 << 30,
            })
        }
    }

    #[test]
    fn free_space_reserve_refuses_and_stops() {
        if skip_unless_root() {
            return;
        }
        let e = env();
        let layer = zeros_layer(16 << 20);
        let lim = IngestLimits {
            min_free: MinFree::Bytes(2 << 20),
            ..IngestLimits::unlimited()
        };
        // Already below the reserve: refused before anything is made.
        let probe = Arc::new(Shrinking {
            calls: AtomicU64::new(0),
            ok_calls: 0,
        });
        let p = IngestPolicy::new(lim.clone(), probe.clone());
        let err = run(&e, &layer[..], &p, &Cancel::new()).unwrap_err();
        assert!(
            matches!(err, StorageError::LowSpace { free, reserve, .. } if free == 1 << 20 && reserve == 2 << 20),
            "{err:?}"
        );
        assert!(!err.is_invalid_input());
        assert!(err.to_string().contains("--min-free-space"), "{err}");
        assert_eq!(probe.calls.load(Ordering::SeqCst), 1);
        assert_nothing_left(&e);

        // Drops below it mid-way: stopped there, nothing kept.
        let probe = Arc::new(Shrinking {
            calls: AtomicU64::new(0),
            ok_calls: 3,
        });
        let p = IngestPolicy::new(lim.clone(), probe.clone());
        let err = run(&e, &layer[..], &p, &Cancel::new()).unwrap_err();
        assert!(matches!(err, StorageError::LowSpace { .. }), "{err:?}");
        assert_eq!(probe.calls.load(Ordering::SeqCst), 4);
        assert_nothing_left(&e);

        // Enough space: measured every few MiB, not on every write.
        let probe = Arc::new(Shrinking {
            calls: AtomicU64::new(0),
            ok_calls: u64::MAX,
        });
        let p = IngestPolicy::new(lim, probe.clone());
        run(&e, &layer[..], &p, &Cancel::new()).unwrap();
        let calls = probe.calls.load(Ordering::SeqCst);
        // 16 MiB stored and 16 MiB unpacked, measured every 4 MiB, plus the start.
        assert!((2..=12).contains(&calls), "{calls} measurements");
    }

    #[test]
    fn expected_blob_digest_is_checked() {
        if skip_unless_root() {
            return;
        }
        let e = env();
        let layer = tar_bytes(&[E::File("a", b"1")]);
        let wrong = Digest::sha256_of(b"other");
        let p = limits(|_| {});
        let c = Cancel::new();
        let how = LayerIngest {
            policy: &p,
            cancel: &c,
            expected_blob: Some(&wrong),
        };
        let err = import_layer(&e.cs, &e.snaps, &layer[..], None, how).unwrap_err();
        assert!(
            matches!(err, StorageError::DigestMismatch { .. }),
            "{err:?}"
        );
        assert_nothing_left(&e);
        let right = Digest::sha256_of(&layer);
        let how = LayerIngest {
            expected_blob: Some(&right),
            ..how
        };
        let i = import_layer(&e.cs, &e.snaps, &layer[..], None, how).unwrap();
        assert_eq!(i.blob, right);
    }

    /// Bad entries are the layer's fault (400) and their message names the entry, never a
    /// path under the data root.
    #[test]
    fn bad_entries_name_the_entry_not_our_paths() {
        if skip_unless_root() {
            return;
        }
        let e = env();
        let root = e.d.path().to_string_lossy().into_owned();
        let long = "a".repeat(5000);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                tar_bytes(&[E::PaxFile(
                    "bin/ping",
                    b"x",
                    vec![("SCHILY.xattr.security.capability", &b"garbage"[..])],
                )]),
                "bin/ping",
            ),
            (
                tar_bytes(&[E::PaxFile("x", b"x", vec![("path", long.as_bytes())])]),
                "aaaaaaaaaa",
            ),
        ];
        for (layer, name) in cases {
            let err = imp_with(&e, &layer).unwrap_err();
            let m = err.to_string();
            eprintln!("{m}");
            assert!(err.is_invalid_input(), "{err:?}");
            assert!(m.contains(name), "{m}");
            assert!(!m.contains(&root), "{m}");
            assert!(m.len() < 400, "{m}");
            assert_nothing_left(&e);
        }
    }

    fn imp_with(e: &Env, layer: &[u8]) -> Result<LayerImport> {
        import_unlimited(&e.cs, &e.snaps, layer, None)
    }
}
