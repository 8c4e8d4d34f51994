//! `docker save` and `docker load` (moby's `image/tarexport`): images out as one tar, and in
//! from one.
//!
//! Out, the format dockerd ≥ 25 writes: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`) carrying the legacy `manifest.json` and `repositories` too, so that
//! Docker of any version since 1.10, containerd, skopeo and podman read it ([`save`]). In,
//! what real Docker 20.10+ writes (`manifest.json`, layers as `<id>/layer.tar` or in
//! `blobs/`), and OCI layouts as skopeo and podman write them (`oci-archive:`), plain, gzip or
//! zstd ([`load`]).
//!
//! Owns: which images a save names ([`select`]), the archive's layout ([`save`]), reading an
//! archive without trusting it ([`spool`], [`spoolfiles`]), telling its formats apart ([`formats`]), and a
//! load's all-or-nothing storing ([`load`]).
//! Must not touch: layer unpacking and its limits (storage's `import_layer_detached`, through
//! the same bounded ingest as import and pull), images' records beyond the one transaction a
//! load ends with.

mod formats;
mod load;
mod pins;
mod save;
mod select;
mod spool;
mod spoolfiles;
#[cfg(test)]
mod tests;

use crate::ctx::Ctx;
use crate::error::{Cause, EngineError};
use crate::images::{ingest, ImageService};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use std::sync::Arc;
use tokio::sync::mpsc;
use wharf_api::jsonmessage::JsonMessage;
use wharf_backend::BodyStream;

pub struct ImageArchiveService {
    ctx: Arc<Ctx>,
    images: Arc<ImageService>,
    /// Blobs the loads in progress count on.
    pins: Arc<pins::Pins>,
}

/// A storage failure of a load, as the client hears it (the layer ingest's mapping: the
/// archive's faults are 400, the daemon's 500, no path of the data root shown).
pub(crate) fn storage_error(
    what: &str,
    e: wharf_storage::StorageError,
    started: std::time::Instant,
) -> EngineError {
    ingest::layer_error(what, e, started)
}

/// How many chunks of a save wait for a slow client (256 KiB each).
const SAVE_CHUNKS: usize = 8;
/// dockerd's progress channel: 100 messages before the load waits for its client.
const LOAD_MESSAGES: usize = 100;

impl ImageArchiveService {
    pub fn new(ctx: Arc<Ctx>, images: Arc<ImageService>) -> Arc<ImageArchiveService> {
        Arc::new(ImageArchiveService {
            ctx,
            images,
            pins: Arc::default(),
        })
    }

    /// The archive of the images `names` select. Every name is resolved and every file
    /// opened before this returns, so an unknown image is an ordinary error (dockerd's
    /// `reference does not exist`, `No such image: x`); the tar then streams, and a failure
    /// after that cuts it short.
    pub async fn save(
        &self,
        names: Vec<String>,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, EngineError> {
        let (ctx, images) = (self.ctx.clone(), self.images.clone());
        let plan = tokio::task::spawn_blocking(move || {
            let selected = select::select(&ctx, &images, &names)?;
            let plan = save::plan(&ctx, &selected)?;
            for id in &plan.ids {
                let labels = images.resolve(id).ok().and_then(|i| i.config.config.labels);
                ctx.events.image("save", id, id, labels.as_ref());
            }
            Ok::<_, EngineError>(plan)
        })
        .await
        .map_err(|e| e.during("save task failed"))??;
        let (tx, rx) = mpsc::channel(SAVE_CHUNKS);
        tokio::task::spawn_blocking(move || save::write(plan, tx));
        Ok(Box::pin(futures_util::stream::unfold(rx, |mut rx| async {
            rx.recv().await.map(|chunk| (chunk, rx))
        })))
    }

    /// Loads the archive the body carries. The messages come as the load goes; an error is
    /// the stream's last item (its first, with `quiet` or when nothing was said yet). Dropping
    /// the stream (the client went away) stops the load, which then leaves nothing.
    pub fn load(
        &self,
        body: BodyStream,
        quiet: bool,
    ) -> BoxStream<'static, Result<JsonMessage, EngineError>> {
        let (guard, cancel, reader) = ingest::cancellable_body(body);
        let (tx, rx) = mpsc::channel(LOAD_MESSAGES);
        let (ctx, pins) = (self.ctx.clone(), self.pins.clone());
        tokio::task::spawn_blocking(move || {
            let out = load::Out {
                tx: tx.clone(),
                quiet,
            };
            let started = std::time::Instant::now();
            match load::load(&ctx, &pins, reader, &cancel, &out) {
                Ok(()) => {
                    tracing::info!(elapsed_s = started.elapsed().as_secs_f64(), "load: done")
                }
                Err(e) => {
                    tracing::info!(error = %e.message(), "load: failed; nothing of it is kept");
                    let _ = tx.blocking_send(Err(e));
                }
            }
        });
        // The guard lives as long as the stream: dropped with it, it stops the load.
        Box::pin(futures_util::stream::unfold(
            (rx, guard),
            |(mut rx, guard)| async move { rx.recv().await.map(|m| (m, (rx, guard))) },
        ))
    }
}
