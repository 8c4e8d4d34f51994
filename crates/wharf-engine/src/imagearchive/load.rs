//! `docker load`: an archive in, its images stored whole, or nothing.
//!
//! The steps, as dockerd's `tarexport.Load` but for the whole archive at once: the archive is
//! read into temp files ([`super::spool`]), its images are listed ([`super::formats`]), each
//! image's config is checked (OS, one layer per diff id) and its layers unpacked in order onto
//! their parents, each from its temp file through the same bounded ingest as an import or a
//! pull, which stores its blob; a layer whose chain is already here is not unpacked again (a
//! compressed blob of it is still checked against its diff id, and stored, as the image's
//! manifest names it). Every layer must hash to the diff id its config names. Configs and
//! manifests are stored as blobs; the archive's other files never are. Then all records and
//! tags are saved in one transaction. Anything failing before that removes the snapshots and
//! blobs this load made: no image, tag, layer or blob is left of it.
//!
//! Messages, as dockerd's: `Loading layer` bars (not with `quiet`), one per layer unpacked;
//! `The image x already exists, renaming the old one with ID ... to empty string` when a tag
//! moves; `Loaded image: x` per tag; `Loaded image ID: sha256:...` for every image when the
//! archive's last image has no tag (dockerd's rule).

use super::formats::{self, ToLoad};
use super::pins::Pins;
use super::spool::{self, Spooled};
use crate::ctx::Ctx;
use crate::distribution::progress::{short_id, Meter};
use crate::error::{Cause, EngineError};
use crate::images::ingest;
use crate::images::ImageConfigDoc;
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::time::Instant;
use tokio::sync::mpsc;
use wharf_api::jsonmessage::JsonMessage;
use wharf_storage::{
    chain_id_next, Cancel, Compression, Digest, ImageRecord, LayerIngest, Resume, SnapshotKind,
};

pub(super) type Item = Result<JsonMessage, EngineError>;

/// Where a load's messages go, from its blocking thread.
pub(super) struct Out {
    pub tx: mpsc::Sender<Item>,
    pub quiet: bool,
}

impl Out {
    fn send(&self, m: JsonMessage) {
        // A closed channel: the client went away, and the cancel flag stops the load.
        let _ = self.tx.blocking_send(Ok(m));
    }

    fn stream(&self, line: String) {
        self.send(JsonMessage {
            stream: line,
            ..JsonMessage::default()
        });
    }
}

/// What this load made, to be removed if it fails.
#[derive(Default)]
struct Undo {
    /// Committed snapshots, in the order they were made.
    snapshots: Vec<String>,
    blobs: Vec<Digest>,
}

impl Undo {
    fn run(self, ctx: &Ctx, pins: &Pins) {
        for key in self.snapshots.iter().rev() {
            if key.parse::<Digest>().is_ok_and(|d| pins.shared(&d)) {
                continue;
            }
            match ctx.snaps.remove(key) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                // Another image took it meanwhile (it has children now): it stays, used.
                Err(e) => {
                    tracing::info!(snapshot = %key, error = %e, "load: a layer it made stays")
                }
            }
        }
        pins.remove_blobs(ctx, &self.blobs);
    }
}

/// One image made or found, and what the end of the load says and records about it.
struct Loaded {
    id: String,
    /// `None` when the image was here already.
    record: Option<ImageRecord>,
    tags: Vec<String>,
    labels: Option<BTreeMap<String, String>>,
    /// Its tags that named another image before, and that image.
    renamed: Vec<(String, String)>,
}

/// Loads the archive read from `body`; the messages go to `out`. An error is returned, not
/// sent: the caller makes it the stream's last item.
pub(super) fn load(
    ctx: &Ctx,
    pins: &Pins,
    body: impl Read,
    cancel: &Cancel,
    out: &Out,
) -> Result<(), EngineError> {
    // The content store's own temp directory: what a crash leaves there goes at its open.
    let ingest_dir = ctx.content.root().join("ingest");
    let mut sp = spool::spool(ctx, ingest_dir, body, cancel)?;
    let mut undo = Undo::default();
    let done = match store(ctx, &mut sp, pins, cancel, out, &mut undo) {
        Ok(loaded) => {
            finish(ctx, loaded, out);
            Ok(())
        }
        Err(e) => {
            undo.run(ctx, pins);
            Err(e)
        }
    };
    pins.unpin_all(ctx, &sp.pinned);
    done
}

fn bad(what: impl std::fmt::Display) -> EngineError {
    EngineError::invalid(format!("invalid archive: {what}"))
}

fn committed(ctx: &Ctx, chain: &Digest) -> Result<bool, EngineError> {
    Ok(ctx
        .snaps
        .stat(chain.as_str())
        .map_err(|e| e.during("reading layers"))?
        .is_some_and(|s| s.kind == SnapshotKind::Committed))
}

/// Every image's layers and blobs, then the records and tags in one transaction.
fn store(
    ctx: &Ctx,
    sp: &mut Spooled,
    pins: &Pins,
    cancel: &Cancel,
    out: &Out,
    undo: &mut Undo,
) -> Result<Vec<Loaded>, EngineError> {
    let mut wanted = formats::images(sp)?;
    // One image named twice (two items of `manifest.json`): once, with every tag.
    let mut merged: Vec<ToLoad> = Vec::new();
    for t in wanted.drain(..) {
        match merged.iter_mut().find(|m| m.config == t.config) {
            Some(m) => {
                for tag in t.tags {
                    if !m.tags.contains(&tag) {
                        m.tags.push(tag);
                    }
                }
            }
            None => merged.push(t),
        }
    }
    let mut loaded = Vec::with_capacity(merged.len());
    for t in &merged {
        loaded.push(image(ctx, t, sp, pins, cancel, out, undo)?);
    }
    let records: Vec<ImageRecord> = loaded.iter().filter_map(|l| l.record.clone()).collect();
    let tags: Vec<(String, String)> = loaded
        .iter()
        .flat_map(|l| l.tags.iter().map(|t| (t.clone(), l.id.clone())))
        .collect();
    if cancel.is_cancelled() {
        return Err(EngineError::internal(
            "load: cancelled, the client went away",
        ));
    }
    // dockerd's line for a tag that moves, said before its `Loaded image`.
    for l in &mut loaded {
        for tag in &l.tags {
            let old = ctx
                .db
                .resolve_tag(tag)
                .map_err(|e| e.during("reading image names"))?;
            if let Some(old) = old.filter(|o| *o != l.id) {
                l.renamed.push((tag.clone(), old));
            }
        }
    }
    ctx.db
        .put_loaded_images(&records, &tags)
        .map_err(|e| e.during("saving the images"))?;
    Ok(loaded)
}

/// One image: its config checked, its layers here, its manifest stored.
fn image(
    ctx: &Ctx,
    t: &ToLoad,
    sp: &mut Spooled,
    pins: &Pins,
    cancel: &Cancel,
    out: &Out,
    undo: &mut Undo,
) -> Result<Loaded, EngineError> {
    let size = sp
        .nodes
        .values()
        .find_map(|n| match n {
            spool::Node::File { digest, size } if *digest == t.config => Some(*size),
            _ => None,
        })
        .unwrap_or(0);
    let config = sp.document(&t.config, size, "an image config")?;
    let doc: ImageConfigDoc = serde_json::from_slice(&config)
        .map_err(|e| bad(format!("image config {}: {e}", t.config)))?;
    if !(doc.os.is_empty() || doc.os.eq_ignore_ascii_case("linux")) {
        return Err(EngineError::invalid(format!(
            "cannot load {} image on linux",
            doc.os
        )));
    }
    let diff_ids = doc
        .rootfs
        .diff_ids
        .iter()
        .map(|d| {
            d.parse::<Digest>()
                .map_err(|_| bad(format!("image config {}: diff id {d:?}", t.config)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if t.layers.len() != diff_ids.len() {
        return Err(EngineError::invalid(format!(
            "invalid manifest, layers length mismatch: expected {}, got {}",
            t.layers.len(),
            diff_ids.len()
        )));
    }
    if diff_ids.is_empty() {
        return Err(EngineError::not_implemented(
            "images without layers are not supported in Wharf",
        ));
    }
    let id = t.config.to_string();
    let labels = doc.config.labels.clone();
    let top = wharf_storage::chain_id(&diff_ids);
    for d in std::iter::once(&t.config)
        .chain(&t.layers)
        .chain(&t.manifest)
    {
        pins.pin(d);
        sp.pinned.push(d.clone());
    }
    let here = ctx
        .db
        .get_image(&id)
        .map_err(|e| e.during("reading images"))?
        .is_some();
    if here && committed(ctx, &top)? {
        // As dockerd: an image already here is not stored again; only its tags move.
        return Ok(Loaded {
            id,
            record: None,
            tags: t.tags.clone(),
            labels,
            renamed: Vec::new(),
        });
    }
    let mut parent: Option<Digest> = None;
    let mut size: u64 = 0;
    for (i, (blob, diff_id)) in t.layers.iter().zip(&diff_ids).enumerate() {
        let chain = chain_id_next(parent.as_ref(), diff_id);
        pins.pin(&chain);
        sp.pinned.push(chain.clone());
        if committed(ctx, &chain)? {
            // Not unpacked again; a blob that is not the plain tar is still checked, as the
            // image's manifest names it, and stored if it is not here.
            if blob != diff_id {
                let actual = diff_id_of(sp, blob, cancel)?;
                if &actual != diff_id {
                    return Err(mismatch(i, diff_id, &actual));
                }
            }
            store_blob(ctx, sp, blob, undo)?;
            size += ctx.snaps.usage(chain.as_str()).unwrap_or(0);
        } else {
            size += layer(
                ctx,
                sp,
                blob,
                diff_id,
                i,
                parent.as_ref(),
                cancel,
                out,
                undo,
            )?;
        }
        parent = Some(chain);
    }
    store_blob(ctx, sp, &t.config, undo)?;
    let manifest = match &t.manifest {
        Some(d) => {
            store_blob(ctx, sp, d, undo)?;
            d.clone()
        }
        None => {
            let (d, created) = make_manifest(ctx, sp, &t.config, config.len() as u64, &t.layers)?;
            pins.pin(&d);
            sp.pinned.push(d.clone());
            if created {
                undo.blobs.push(d.clone());
            }
            d
        }
    };
    Ok(Loaded {
        record: Some(ImageRecord {
            id: id.clone(),
            manifest_digest: manifest.to_string(),
            config_digest: id.clone(),
            chain_id: top.to_string(),
            size: size as i64,
            created: crate::timefmt::now_rfc3339(),
        }),
        id,
        tags: t.tags.clone(),
        labels,
        renamed: Vec::new(),
    })
}

fn mismatch(i: usize, expected: &Digest, actual: &Digest) -> EngineError {
    EngineError::invalid(format!(
        "invalid diffID for layer {i}: expected \"{expected}\", got \"{actual}\""
    ))
}

/// Stores a file of the archive as a blob, unless it is stored already.
fn store_blob(ctx: &Ctx, sp: &Spooled, d: &Digest, undo: &mut Undo) -> Result<(), EngineError> {
    if ctx.content.exists(d) {
        return Ok(());
    }
    let f = sp
        .files
        .open(d)
        .map_err(|e| e.during("reading the archive"))?;
    let got = ctx
        .content
        .ingest_reporting(io::BufReader::with_capacity(256 * 1024, f), Some(d))
        .map_err(|e| super::storage_error("loading", e, Instant::now()))?;
    if got.created {
        undo.blobs.push(got.digest);
    }
    Ok(())
}

/// The diff id of a layer of the archive: sha256 of its plain tar.
fn diff_id_of(sp: &Spooled, blob: &Digest, cancel: &Cancel) -> Result<Digest, EngineError> {
    let f = sp
        .files
        .open(blob)
        .map_err(|e| e.during("reading a layer"))?;
    let (_, mut plain) = wharf_storage::decompressed(io::BufReader::with_capacity(256 * 1024, f))
        .map_err(|e| bad(format!("layer {blob}: {}", e.public_message())))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        if cancel.is_cancelled() {
            return Err(EngineError::internal(
                "load: cancelled, the client went away",
            ));
        }
        let n = match plain.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(bad(format!("layer {blob}: {e}"))),
        };
        h.update(&buf[..n]);
    }
    Ok(Digest::from_sha256_bytes(&h.finalize().into()))
}

/// Counts a layer's bytes into `Loading layer` bars, dropped when the client is behind.
struct Metered<'a, R> {
    inner: R,
    meter: Meter,
    out: &'a Out,
    whole_sent: bool,
    total: u64,
    read: u64,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if let Some(bar) = self.meter.advance(n as u64, Instant::now()) {
            if self.out.tx.try_send(Ok(bar)).is_ok() && self.read == self.total {
                self.whole_sent = true;
            }
        }
        Ok(n)
    }
}

/// Unpacks one layer from its stored blob onto `parent`; the bytes of its files.
#[allow(clippy::too_many_arguments)]
fn layer(
    ctx: &Ctx,
    sp: &Spooled,
    blob: &Digest,
    diff_id: &Digest,
    i: usize,
    parent: Option<&Digest>,
    cancel: &Cancel,
    out: &Out,
    undo: &mut Undo,
) -> Result<u64, EngineError> {
    let started = Instant::now();
    let what = format!("loading layer {}", short_id(diff_id.as_str()));
    let f = sp
        .files
        .open(blob)
        .map_err(|e| e.during("reading a layer"))?;
    let total = f.metadata().map_err(|e| e.during("reading a layer"))?.len();
    let blob_was_here = ctx.content.exists(blob);
    let how = LayerIngest {
        policy: &ctx.ingest,
        cancel,
        expected_blob: Some(blob),
    };
    let detached = if out.quiet {
        wharf_storage::import_layer_detached(&ctx.content, &ctx.snaps, f, how, Resume::No)
    } else {
        let mut r = Metered {
            inner: f,
            meter: Meter::new(&short_id(diff_id.as_str()), "Loading layer", total),
            out,
            whole_sent: false,
            total,
            read: 0,
        };
        let d =
            wharf_storage::import_layer_detached(&ctx.content, &ctx.snaps, &mut r, how, Resume::No);
        if d.is_ok() && !r.whole_sent {
            out.send(r.meter.bar());
        }
        d
    }
    .map_err(|e| ingest::layer_error(&what, e, started))?;
    // The ingest stored the blob (synced); the undo removes it if this load made it.
    if !blob_was_here {
        undo.blobs.push(blob.clone());
    }
    if detached.diff_id() != diff_id {
        let actual = detached.diff_id().clone();
        if let Err(e) = detached.discard(&ctx.content, &ctx.snaps) {
            tracing::warn!(error = %e, "load: cannot remove a refused layer");
        }
        return Err(mismatch(i, diff_id, &actual));
    }
    let imported = detached
        .commit_onto(&ctx.content, &ctx.snaps, parent)
        .map_err(|e| ingest::layer_error(&what, e, started))?;
    undo.snapshots.push(imported.chain_id.to_string());
    Ok(imported.size)
}

/// An OCI manifest for an image of a `manifest.json` archive, naming its blobs as stored;
/// whether this call stored it.
fn make_manifest(
    ctx: &Ctx,
    sp: &Spooled,
    config: &Digest,
    config_size: u64,
    layers: &[Digest],
) -> Result<(Digest, bool), EngineError> {
    let mut descs = Vec::with_capacity(layers.len());
    for l in layers {
        let mut f = sp.files.open(l).map_err(|e| e.during("reading a layer"))?;
        let size = f.metadata().map_err(|e| e.during("reading a layer"))?.len();
        let mut head = [0u8; 6];
        let n = f.read(&mut head).map_err(|e| e.during("reading a layer"))?;
        let media_type = match Compression::detect(&head[..n]) {
            Compression::Gzip => wharf_storage::MEDIA_TYPE_LAYER_TAR_GZIP,
            Compression::Zstd => wharf_storage::MEDIA_TYPE_LAYER_TAR_ZSTD,
            _ => wharf_storage::MEDIA_TYPE_LAYER_TAR,
        };
        descs.push(serde_json::json!({
            "mediaType": media_type,
            "digest": l.to_string(),
            "size": size,
        }));
    }
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": super::save::OCI_MANIFEST,
        "config": {
            "mediaType": super::save::OCI_CONFIG,
            "digest": config.to_string(),
            "size": config_size,
        },
        "layers": descs,
    });
    let bytes = serde_json::to_vec(&m).map_err(|e| e.during("encoding a manifest"))?;
    let got = ctx
        .content
        .ingest_reporting(&bytes[..], None)
        .map_err(|e| e.during("storing a manifest"))?;
    Ok((got.digest, got.created))
}

/// After the records: the lines and events.
fn finish(ctx: &Ctx, loaded: Vec<Loaded>, out: &Out) {
    let mut ids = String::new();
    let mut last_tagged = false;
    for l in &loaded {
        ids.push_str(&format!("Loaded image ID: {}\n", l.id));
        for tag in &l.tags {
            if let Some((_, old)) = l.renamed.iter().find(|(t, _)| t == tag) {
                out.stream(format!(
                    "The image {tag} already exists, renaming the old one with ID {old} to empty string\n"
                ));
            }
            out.stream(format!("Loaded image: {tag}\n"));
        }
        last_tagged = !l.tags.is_empty();
        ctx.events.image("load", &l.id, &l.id, l.labels.as_ref());
    }
    if !last_tagged && !ids.is_empty() {
        out.stream(ids);
    }
}
