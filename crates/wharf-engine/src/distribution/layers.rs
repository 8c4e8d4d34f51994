//! A pull's layers: which are already here, which to download, each unpacked as it arrives
//! and stacked onto its parent in order, with dockerd's messages.
//!
//! Layers present as committed snapshots (by chain id) are `Already exists`. The others are
//! downloaded at most `--max-concurrent-downloads` at a time, and every download goes in one
//! pass: the registry's stream is hashed, stored, decompressed and unpacked as it arrives
//! (`wharf_storage::import_layer_detached`) into a temporary snapshot of its own, so all
//! layers unpack side by side while they download. Each then waits for its parent and is put
//! on it (`DetachedLayer::commit_onto`), in layer order. A blob already in the store (another
//! image's, or an interrupted pull's) is unpacked from there; a download cut off after the
//! client's retries keeps its bytes, and the next pull resumes it (`Range`, `Resume::From`).
//!
//! Cancellation: every blocking ingest holds a guard owned by the pull's future, so a pull
//! that is dropped (its client went away, or another layer failed) stops them within a read;
//! a layer unpacked but not yet committed is set aside when dropped (its temporary snapshot
//! removed, its verified blob kept for the next pull).

use super::progress::{short_id, Meter, Out};
use super::remote::Remote;
use crate::ctx::Ctx;
use crate::error::{Cause, EngineError};
use crate::images::ingest;
use futures_util::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{watch, Semaphore};
use wharf_api::jsonmessage::JsonMessage;
use wharf_distribution::manifest::{Descriptor, ImageManifest};
use wharf_storage::{
    chain_id_next, DetachedLayer, Digest, LayerImport, LayerIngest, Resume, SnapshotKind,
    StorageError,
};

/// One layer of the image, as the manifest and the config name it.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// The 12 hex digits messages name it by.
    pub id: String,
    pub desc: Descriptor,
    pub blob: Digest,
    pub diff_id: Digest,
    pub chain: Digest,
    pub parent: Option<Digest>,
}

/// dockerd's words when the config's layers are not the manifest's.
pub(super) const ROOTFS_MISMATCH: &str = "layers from manifest don't match image configuration";

/// The prefixes (and old registries' odd types) dockerd accepts for layers and configs.
pub(super) fn supported_media_type(mt: &str) -> bool {
    let mt = mt.to_ascii_lowercase();
    ["application/vnd.oci.image", "application/vnd.docker"]
        .iter()
        .any(|p| mt == *p || mt.starts_with(&format!("{p}.")))
        || matches!(
            mt.as_str(),
            "application/octet-stream" | "application/json" | "text/html" | ""
        )
}

/// A registry digest as the stores spell it: Wharf's stores are sha256 only.
pub(super) fn store_digest(d: &wharf_distribution::Digest) -> Result<Digest, EngineError> {
    d.as_str().parse().map_err(|_| {
        EngineError::not_implemented(format!("{d}: only sha256 digests are supported in Wharf"))
    })
}

/// The layers of `m`, with their chain ids from the config's `diff_ids`.
pub(super) fn plans(m: &ImageManifest, diff_ids: &[String]) -> Result<Vec<Plan>, EngineError> {
    if m.layers.len() != diff_ids.len() {
        return Err(EngineError::internal(ROOTFS_MISMATCH));
    }
    let mut out = Vec::with_capacity(m.layers.len());
    let mut parent: Option<Digest> = None;
    for (l, d) in m.layers.iter().zip(diff_ids) {
        if !supported_media_type(&l.media_type) {
            return Err(EngineError::invalid(format!(
                "unsupported media type {}",
                l.media_type
            )));
        }
        let diff_id: Digest = d.parse().map_err(|_| {
            EngineError::internal(format!("invalid diff id {d:?} in the image config"))
        })?;
        let chain = chain_id_next(parent.as_ref(), &diff_id);
        out.push(Plan {
            id: short_id(l.digest.as_str()),
            desc: l.clone(),
            blob: store_digest(&l.digest)?,
            diff_id,
            chain: chain.clone(),
            parent: parent.replace(chain),
        });
    }
    Ok(out)
}

/// Fetches and applies one image's layers.
pub(super) struct Fetcher {
    pub ctx: Arc<Ctx>,
    pub remote: Arc<dyn Remote>,
    pub out: Out,
    pub max_downloads: usize,
}

/// What came of the layers.
pub(super) struct Fetched {
    /// Bytes of the layers' files, Docker's image size.
    pub size: u64,
    /// Whether any layer was missing here.
    pub downloaded: bool,
}

fn committed(ctx: &Ctx, chain: &Digest) -> Result<bool, EngineError> {
    Ok(ctx
        .snaps
        .stat(chain.as_str())
        .map_err(|e| e.during("reading layers"))?
        .is_some_and(|s| s.kind == SnapshotKind::Committed))
}

/// How many times a pull looks at its layers again when a parent it counted on was removed
/// meanwhile (a concurrent `rmi`).
const PARENT_GONE_RETRIES: usize = 2;

/// Why a layer's job stopped.
enum JobError {
    /// Its parent snapshot was removed after it was found here or committed: look again.
    ParentGone(String),
    Engine(EngineError),
}

impl From<EngineError> for JobError {
    fn from(e: EngineError) -> JobError {
        JobError::Engine(e)
    }
}

impl Fetcher {
    pub(super) async fn fetch(&self, plans: &[Plan]) -> Result<Fetched, EngineError> {
        let mut tries = 0;
        loop {
            match self.fetch_once(plans).await {
                Ok(f) => return Ok(f),
                Err(JobError::Engine(e)) => return Err(e),
                Err(JobError::ParentGone(parent)) => {
                    // The layers unpacked meanwhile kept their blobs: the next look unpacks
                    // them from the store.
                    tracing::warn!(%parent, "pull: a parent layer was removed while its child was pulled; looking at the layers again");
                    tries += 1;
                    if tries > PARENT_GONE_RETRIES {
                        return Err(EngineError::internal(format!(
                            "layer {parent} was removed while the image was pulled; pull it again"
                        )));
                    }
                }
            }
        }
    }

    async fn fetch_once(&self, plans: &[Plan]) -> Result<Fetched, JobError> {
        let mut size = 0;
        let mut first_missing = plans.len();
        for (i, p) in plans.iter().enumerate() {
            if !committed(&self.ctx, &p.chain)? {
                first_missing = i;
                break;
            }
            self.out
                .send(JsonMessage::action(&p.id, "Already exists"))
                .await;
            size += self.ctx.snaps.usage(p.chain.as_str()).unwrap_or(0);
        }
        let missing = &plans[first_missing..];
        if missing.is_empty() {
            return Ok(Fetched {
                size,
                downloaded: false,
            });
        }
        // A blob named twice is downloaded once; the second layer unpacks it from the store.
        let first_of: Vec<Option<usize>> = missing
            .iter()
            .enumerate()
            .map(|(k, p)| missing[..k].iter().position(|q| q.blob == p.blob))
            .collect();
        for (p, dup) in missing.iter().zip(&first_of) {
            if dup.is_none() {
                self.out
                    .send(JsonMessage::action(&p.id, "Pulling fs layer"))
                    .await;
            }
        }
        let flags = || -> Vec<watch::Sender<bool>> {
            missing.iter().map(|_| watch::channel(false).0).collect()
        };
        let (stored, done) = (flags(), flags());
        let downloads = Semaphore::new(self.max_downloads.max(1));
        let jobs = missing.iter().enumerate().map(|(k, p)| Job {
            fetcher: self,
            k,
            plan: p,
            first_of: first_of[k],
            stored: &stored,
            done: &done,
            downloads: &downloads,
        });
        let sizes = futures_util::future::try_join_all(jobs.map(Job::run)).await?;
        Ok(Fetched {
            size: size + sizes.iter().sum::<u64>(),
            downloaded: true,
        })
    }
}

/// One missing layer, `k`-th of the missing ones (its parent is `k - 1`, or committed).
struct Job<'a> {
    fetcher: &'a Fetcher,
    k: usize,
    plan: &'a Plan,
    /// The earlier missing layer with the same blob.
    first_of: Option<usize>,
    /// Per missing layer: its blob is stored, whole and verified.
    stored: &'a [watch::Sender<bool>],
    /// Per missing layer: committed onto its parent.
    done: &'a [watch::Sender<bool>],
    downloads: &'a Semaphore,
}

impl Job<'_> {
    async fn run(self) -> Result<u64, JobError> {
        let f = self.fetcher;
        let p = self.plan;
        let unpacked = if let Some(j) = self.first_of {
            wait(&self.stored[j]).await;
            f.unpack_stored(p).await?
        } else if f.ctx.content.exists(&p.blob) {
            // Another image's, or kept by an earlier, interrupted pull; verified again as it
            // is unpacked.
            f.downloaded(p).await;
            f.unpack_stored(p).await?
        } else {
            let permit = match self.downloads.try_acquire() {
                Ok(permit) => permit,
                Err(_) => {
                    f.out.send(JsonMessage::action(&p.id, "Waiting")).await;
                    self.downloads
                        .acquire()
                        .await
                        .map_err(|e| EngineError::internal(format!("download slots: {e}")))?
                }
            };
            // Downloaded and unpacked in one pass, side by side with the other layers.
            let unpacked = f.unpack_streamed(p).await?;
            drop(permit);
            f.downloaded(p).await;
            unpacked
        };
        if unpacked.diff_id() != Some(&p.diff_id) {
            tracing::warn!(layer = %p.desc.digest, expected = %p.diff_id, actual = ?unpacked.diff_id(), "pull: a layer is not the one its image config names");
            f.discard(unpacked).await;
            return Err(EngineError::internal(ROOTFS_MISMATCH).into());
        }
        self.stored[self.k].send_replace(true);
        if self.k > 0 {
            wait(&self.done[self.k - 1]).await;
        }
        let imported = f.commit(p, unpacked).await?;
        // Unpacked with the download: the bar is whole at once, and twice, as dockerd's file
        // reader yields it (full read, then EOF).
        let n = p.desc.size as i64;
        for _ in 0..2 {
            f.out
                .send(JsonMessage::progress(&p.id, "Extracting", n, n))
                .await;
        }
        f.out
            .send(JsonMessage::action(&p.id, "Pull complete"))
            .await;
        self.done[self.k].send_replace(true);
        Ok(imported.size)
    }
}

async fn wait(flag: &watch::Sender<bool>) {
    let mut rx = flag.subscribe();
    // The senders live as long as the pull: an error only if it is being dropped.
    let _ = rx.wait_for(|d| *d).await;
}

/// A layer unpacked into a temporary snapshot, until it is committed onto its parent. Dropped
/// instead (the pull failed or was cancelled), it is set aside: its snapshot is removed on a
/// blocking thread and its blob, whole and verified, stays for the next pull.
struct Unpacked {
    layer: Option<DetachedLayer>,
    ctx: Arc<Ctx>,
}

impl Unpacked {
    fn new(layer: DetachedLayer, ctx: Arc<Ctx>) -> Unpacked {
        Unpacked {
            layer: Some(layer),
            ctx,
        }
    }

    fn diff_id(&self) -> Option<&Digest> {
        self.layer.as_ref().map(DetachedLayer::diff_id)
    }

    /// The layer, now the caller's to commit or discard.
    fn take(mut self) -> Option<DetachedLayer> {
        self.layer.take()
    }
}

impl Drop for Unpacked {
    fn drop(&mut self) {
        let Some(layer) = self.layer.take() else {
            return;
        };
        let ctx = self.ctx.clone();
        let set_aside = move || {
            if let Err(e) = layer.discard_keeping_blob(&ctx.snaps) {
                tracing::warn!(error = %e, "pull: cannot remove the unpacked layer of a pull that stopped");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(set_aside)),
            Err(_) => set_aside(),
        }
    }
}

/// A layer's bytes as they arrive from byte `from` on, counted into `Downloading` bars; the
/// stream's own error, if it breaks, is kept for the message (the ingest only sees a broken
/// stream).
fn metered_stream(f: &Fetcher, p: &Plan, from: u64) -> (wharf_distribution::BlobStream, Counted) {
    let counted = Counted::default();
    let seen = counted.broke.clone();
    let whole = counted.whole_bar_sent.clone();
    let out = f.out.clone();
    let mut meter = Meter::starting_at(&p.id, "Downloading", p.desc.size, from);
    let stream = f
        .remote
        .blob_stream(&p.desc.digest, p.desc.size, from)
        .map(move |r| {
            match &r {
                Ok(b) => {
                    if let Some(bar) = meter.advance(b.len() as u64, Instant::now()) {
                        let is_whole = bar
                            .progress_detail
                            .as_ref()
                            .is_some_and(|d| d.current == d.total);
                        if out.bar(bar) && is_whole {
                            whole.store(true, Ordering::SeqCst);
                        }
                    }
                }
                Err(e) => {
                    *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                }
            }
            r
        });
    (Box::pin(stream), counted)
}

/// What the count of a download saw: the stream's own error, and whether the client was sent
/// the whole bar (bars are dropped when it reads slowly; the last one must arrive).
#[derive(Default, Clone)]
struct Counted {
    broke: Arc<Mutex<Option<String>>>,
    whole_bar_sent: Arc<AtomicBool>,
}

impl Counted {
    async fn finish(&self, f: &Fetcher, p: &Plan) {
        if !self.whole_bar_sent.load(Ordering::SeqCst) {
            let n = p.desc.size as i64;
            f.out
                .send(JsonMessage::progress(&p.id, "Downloading", n, n))
                .await;
        }
    }
}

impl Fetcher {
    async fn downloaded(&self, p: &Plan) {
        for step in ["Verifying Checksum", "Download complete"] {
            self.out.send(JsonMessage::action(&p.id, step)).await;
        }
    }

    /// Network to a temporary snapshot in one pass, from where an earlier, cut-off pull of
    /// the blob stopped.
    async fn unpack_streamed(&self, p: &Plan) -> Result<Unpacked, EngineError> {
        let mut from = self.ctx.content.partial_len(&p.blob);
        loop {
            let (stream, counted) = metered_stream(self, p, from);
            let (mut guard, cancel, reader) = ingest::cancellable_body(stream);
            let ctx = self.ctx.clone();
            let blob = p.blob.clone();
            let started = Instant::now();
            let res = tokio::task::spawn_blocking(move || {
                let how = LayerIngest {
                    policy: &ctx.ingest,
                    cancel: &cancel,
                    expected_blob: Some(&blob),
                };
                // The registry's stream starts at `from` (a registry that ignores the range
                // has the prefix skipped by the client), after the bytes kept.
                let layer = wharf_storage::import_layer_detached(
                    &ctx.content,
                    &ctx.snaps,
                    reader,
                    how,
                    Resume::From(from),
                )?;
                // Made here, so that a result nobody awaits any more is set aside too.
                Ok(Unpacked::new(layer, ctx.clone()))
            })
            .await;
            guard.disarm();
            match res.map_err(|e| e.during("pulling a layer"))? {
                Ok(u) => {
                    counted.finish(self, p).await;
                    return Ok(u);
                }
                Err(StorageError::ResumeUnavailable { reason, .. }) if from > 0 => {
                    tracing::info!(layer = %p.desc.digest, offset = from, %reason, "pull: cannot resume the layer's download; starting over");
                    from = 0;
                }
                Err(e) => return Err(layer_failed(p, e, &counted.broke, started)),
            }
        }
    }

    /// A blob of the content store unpacked into a temporary snapshot.
    async fn unpack_stored(&self, p: &Plan) -> Result<Unpacked, EngineError> {
        let (mut guard, cancel) = ingest::cancel_guard();
        let ctx = self.ctx.clone();
        let blob = p.blob.clone();
        let started = Instant::now();
        let res = tokio::task::spawn_blocking(move || {
            let file = ctx.content.open_blob(&blob)?;
            let how = LayerIngest {
                policy: &ctx.ingest,
                cancel: &cancel,
                expected_blob: Some(&blob),
            };
            let layer = wharf_storage::import_layer_detached(
                &ctx.content,
                &ctx.snaps,
                file,
                how,
                Resume::No,
            )?;
            Ok(Unpacked::new(layer, ctx.clone()))
        })
        .await;
        guard.disarm();
        res.map_err(|e| e.during("pulling a layer"))?
            .map_err(|e| layer_failed(p, e, &Mutex::new(None), started))
    }

    /// Puts the layer on its committed parent.
    async fn commit(&self, p: &Plan, u: Unpacked) -> Result<LayerImport, JobError> {
        let ctx = self.ctx.clone();
        let parent = p.parent.clone();
        let started = Instant::now();
        let res = tokio::task::spawn_blocking(move || {
            let Some(layer) = u.take() else {
                return Ok(None);
            };
            layer
                .commit_onto(&ctx.content, &ctx.snaps, parent.as_ref())
                .map(Some)
        })
        .await
        .map_err(|e| e.during("pulling a layer"))?;
        match res {
            Ok(Some(l)) => Ok(l),
            Ok(None) => Err(EngineError::internal(format!(
                "pulling layer {}: the layer was set aside",
                p.id
            ))
            .into()),
            // The only snapshot a commit looks up is the parent.
            Err(StorageError::SnapshotNotFound(key))
                if p.parent.as_ref().is_some_and(|d| d.as_str() == key) =>
            {
                Err(JobError::ParentGone(key))
            }
            Err(e) => Err(layer_failed(p, e, &Mutex::new(None), started).into()),
        }
    }

    /// Removes a layer that is not the one its image needs, snapshot and blob.
    async fn discard(&self, u: Unpacked) {
        let ctx = self.ctx.clone();
        let done = tokio::task::spawn_blocking(move || match u.take() {
            Some(l) => l.discard(&ctx.content, &ctx.snaps),
            None => Ok(()),
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "pull: cannot remove a refused layer"),
            Err(e) => tracing::warn!(error = %e, "pull: cannot remove a refused layer"),
        }
    }
}

/// A layer that could not be stored or unpacked, in dockerd's words where it has them.
fn layer_failed(
    p: &Plan,
    e: StorageError,
    broke: &Mutex<Option<String>>,
    started: Instant,
) -> EngineError {
    if matches!(e, StorageError::DigestMismatch { .. }) {
        tracing::warn!(layer = %p.desc.digest, error = %e, "pull: a layer is not what the registry said");
        return EngineError::internal(format!(
            "filesystem layer verification failed for digest {}",
            p.desc.digest
        ));
    }
    let network = broke.lock().unwrap_or_else(|p| p.into_inner()).take();
    match network {
        Some(why) if matches!(e, StorageError::Cancelled(_)) => {
            tracing::warn!(layer = %p.desc.digest, error = %why, "pull: the layer's download failed");
            EngineError::internal(format!("pulling layer {}: {why}", p.id))
        }
        _ => ingest::layer_error(&format!("pulling layer {}", p.id), e, started),
    }
}
