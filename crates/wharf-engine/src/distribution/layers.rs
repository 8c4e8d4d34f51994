//! A pull's layers: which are already here, which to download, and each applied onto its
//! parent's committed snapshot, with dockerd's messages.
//!
//! Layers present as committed snapshots (by chain id) are `Already exists`. The others are
//! fetched at most `--max-concurrent-downloads` at a time, each the first moment it can be:
//!
//! * a layer whose parent is committed when its download starts goes in one pass: the
//!   registry's stream is hashed, stored, decompressed and unpacked as it arrives
//!   (`wharf_storage::import_layer`), so the first layer is unpacked while it downloads;
//! * a layer whose parent is still on its way is downloaded into the content store (verified
//!   by digest; memory stays bounded whatever the layer's size), and unpacked from there once
//!   its parent is committed, while later downloads go on. A blob already in the store (an
//!   earlier, interrupted pull) is not downloaded again.
//!
//! Unpacking needs the parent committed because `import_layer` applies onto it; with a
//! detached import (unpack apart, commit onto the parent later) every layer could take the
//! first path, and only [`Fetcher::layer`] would change.
//!
//! Cancellation: every blocking ingest holds a guard owned by the pull's future, so a pull
//! that is dropped (its client went away, or another layer failed) stops them within a read,
//! and each removes what it made.

use super::progress::{short_id, Meter, Out};
use super::remote::Remote;
use crate::ctx::Ctx;
use crate::error::{Cause, EngineError};
use crate::images::ingest;
use futures_util::StreamExt;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{watch, Semaphore};
use wharf_api::jsonmessage::JsonMessage;
use wharf_distribution::manifest::{Descriptor, ImageManifest};
use wharf_storage::{chain_id_next, Digest, LayerImport, LayerIngest, SnapshotKind, StorageError};

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

impl Fetcher {
    pub(super) async fn fetch(&self, plans: &[Plan]) -> Result<Fetched, EngineError> {
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
        // Non-distributable layers (Windows bases) come from elsewhere than the registry; only
        // Windows images have them, and dockerd on Linux cannot run those either.
        if let Some(p) = missing.iter().find(|p| p.desc.is_foreign()) {
            return Err(EngineError::not_implemented(format!(
                "layer {} is a foreign (non-distributable) layer ({}): Wharf does not download those",
                p.desc.digest, p.desc.media_type
            )));
        }
        // A blob named twice is downloaded once; the second layer waits for the first.
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
        let done: Vec<watch::Sender<bool>> =
            missing.iter().map(|_| watch::channel(false).0).collect();
        let downloads = Semaphore::new(self.max_downloads.max(1));
        let jobs = missing.iter().enumerate().map(|(k, p)| Job {
            fetcher: self,
            k,
            plan: p,
            first_of: first_of[k],
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
    done: &'a [watch::Sender<bool>],
    downloads: &'a Semaphore,
}

impl Job<'_> {
    async fn run(self) -> Result<u64, EngineError> {
        let f = self.fetcher;
        let p = self.plan;
        let imported = if let Some(j) = self.first_of {
            self.wait(j).await;
            self.wait_parent().await;
            f.import_stored(p).await?
        } else if f.ctx.content.exists(&p.blob) {
            // Kept by an earlier, interrupted pull; verified again as it is unpacked.
            f.downloaded(p).await;
            self.wait_parent().await;
            f.import_stored(p).await?
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
            if self.parent_done() {
                let layer = f.import_streamed(p).await?;
                drop(permit);
                f.downloaded(p).await;
                // Unpacked with the download: the bar is whole at once.
                let n = p.desc.size as i64;
                for _ in 0..2 {
                    f.out
                        .send(JsonMessage::progress(&p.id, "Extracting", n, n))
                        .await;
                }
                layer
            } else {
                f.download(p).await?;
                drop(permit);
                f.downloaded(p).await;
                self.wait_parent().await;
                f.import_stored(p).await?
            }
        };
        if imported.diff_id != p.diff_id {
            tracing::warn!(layer = %p.desc.digest, expected = %p.diff_id, actual = %imported.diff_id, "pull: a layer is not the one its image config names");
            return Err(EngineError::internal(ROOTFS_MISMATCH));
        }
        f.out
            .send(JsonMessage::action(&p.id, "Pull complete"))
            .await;
        self.done[self.k].send_replace(true);
        Ok(imported.size)
    }

    fn parent_done(&self) -> bool {
        self.k == 0 || *self.done[self.k - 1].borrow()
    }

    async fn wait(&self, j: usize) {
        let mut rx = self.done[j].subscribe();
        // The senders live as long as the pull: an error only if it is being dropped.
        let _ = rx.wait_for(|d| *d).await;
    }

    async fn wait_parent(&self) {
        if self.k > 0 {
            self.wait(self.k - 1).await;
        }
    }
}

/// A layer's bytes as they arrive, counted into `Downloading` bars; the stream's own error,
/// if it breaks, is kept for the message (the ingest only sees a broken stream).
fn metered_stream(f: &Fetcher, p: &Plan) -> (wharf_distribution::BlobStream, Counted) {
    let counted = Counted::default();
    let seen = counted.broke.clone();
    let whole = counted.whole_bar_sent.clone();
    let out = f.out.clone();
    let mut meter = Meter::new(&p.id, "Downloading", p.desc.size);
    let stream = f
        .remote
        .blob_stream(&p.desc.digest, p.desc.size, 0)
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

/// Counts a stored blob's bytes into `Extracting` bars as they are unpacked.
struct Metered<R> {
    inner: R,
    meter: Meter,
    out: Out,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(bar) = self.meter.advance(n as u64, Instant::now()) {
            let _ = self.out.bar(bar);
        }
        Ok(n)
    }
}

impl Fetcher {
    async fn downloaded(&self, p: &Plan) {
        for step in ["Verifying Checksum", "Download complete"] {
            self.out.send(JsonMessage::action(&p.id, step)).await;
        }
    }

    /// Network to committed snapshot in one pass, onto the committed parent.
    async fn import_streamed(&self, p: &Plan) -> Result<LayerImport, EngineError> {
        let (stream, counted) = metered_stream(self, p);
        let (mut guard, cancel, reader) = ingest::cancellable_body(stream);
        let ctx = self.ctx.clone();
        let (parent, blob) = (p.parent.clone(), p.blob.clone());
        let started = Instant::now();
        let res = tokio::task::spawn_blocking(move || {
            let how = LayerIngest {
                policy: &ctx.ingest,
                cancel: &cancel,
                expected_blob: Some(&blob),
            };
            wharf_storage::import_layer(&ctx.content, &ctx.snaps, reader, parent.as_ref(), how)
        })
        .await;
        guard.disarm();
        let layer = res
            .map_err(|e| e.during("pulling a layer"))?
            .map_err(|e| layer_failed(p, e, &counted.broke, started))?;
        counted.finish(self, p).await;
        Ok(layer)
    }

    /// Network to the content store, verified, for a layer whose parent is not there yet.
    async fn download(&self, p: &Plan) -> Result<(), EngineError> {
        let (stream, counted) = metered_stream(self, p);
        let (mut guard, cancel, reader) = ingest::cancellable_body(stream);
        let ctx = self.ctx.clone();
        let blob = p.blob.clone();
        // One byte past the size the manifest gives is enough to refuse a longer blob.
        let limit = p.desc.size.saturating_add(1);
        let started = Instant::now();
        let res = tokio::task::spawn_blocking(move || {
            // Refused at once below the daemon's free-space reserve; the unpack that follows
            // counts every limit.
            drop(ctx.ingest.guard(&cancel)?);
            ctx.content
                .ingest_reporting(reader.take(limit), Some(&blob))
                .map(|_| ())
        })
        .await;
        guard.disarm();
        res.map_err(|e| e.during("pulling a layer"))?
            .map_err(|e| layer_failed(p, e, &counted.broke, started))?;
        counted.finish(self, p).await;
        Ok(())
    }

    /// A blob of the content store unpacked onto the committed parent, with `Extracting`
    /// bars and, once done, the whole bar.
    async fn import_stored(&self, p: &Plan) -> Result<LayerImport, EngineError> {
        let (mut guard, cancel) = ingest::cancel_guard();
        let ctx = self.ctx.clone();
        let out = self.out.clone();
        let (parent, blob, id) = (p.parent.clone(), p.blob.clone(), p.id.clone());
        let size = p.desc.size;
        let started = Instant::now();
        let res = tokio::task::spawn_blocking(move || {
            let file = ctx.content.open_blob(&blob)?;
            let reader = Metered {
                inner: file,
                meter: Meter::new(&id, "Extracting", size),
                out,
            };
            let how = LayerIngest {
                policy: &ctx.ingest,
                cancel: &cancel,
                expected_blob: Some(&blob),
            };
            wharf_storage::import_layer(&ctx.content, &ctx.snaps, reader, parent.as_ref(), how)
        })
        .await;
        guard.disarm();
        let layer = res
            .map_err(|e| e.during("pulling a layer"))?
            .map_err(|e| layer_failed(p, e, &Mutex::new(None), started))?;
        let n = p.desc.size as i64;
        self.out
            .send(JsonMessage::progress(&p.id, "Extracting", n, n))
            .await;
        Ok(layer)
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
