//! `docker save`: the images, their configs and layers as one tar, laid out as dockerd ≥ 25
//! writes it (moby's `image/tarexport/save.go`): an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/<hex>`) that also carries the legacy `manifest.json` and
//! `repositories`, whose paths point into `blobs/`.
//!
//! Layers go out as the content store holds them (a pulled layer compressed, an imported or
//! loaded one as it came), each blob once however many images share it. Every file is opened
//! before the first byte is sent, so an image removed meanwhile cannot cut the archive short,
//! and the tar is then written on a blocking thread into a small channel the response reads:
//! memory stays bounded whatever the images weigh. Times are the epoch and owners root, as
//! dockerd ≥ 25.0.4 writes them, so that saving the same images twice gives the same bytes.

use super::select::Selected;
use crate::ctx::Ctx;
use crate::error::{Cause, EngineError};
use crate::images::{reference, ImageConfigDoc};
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use tokio::sync::mpsc;
use wharf_storage::Digest;

pub(super) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(super) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(super) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// containerd's annotation for an image's full name, which dockerd ≥ 25 writes.
pub(super) const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
pub(super) const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The `oci-layout` file, byte for byte as dockerd writes it.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion": "1.0.0"}"#;

#[derive(Debug, Clone, Serialize)]
pub(super) struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Serialize)]
struct OciManifest<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Serialize)]
struct OciIndex<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    manifests: Vec<Descriptor>,
}

/// One entry of `manifest.json` (moby's `manifestItem`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestItem {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// What a file of the archive holds.
enum Body {
    Bytes(Vec<u8>),
    /// A blob of the content store, opened before streaming starts, and its size.
    File(File, u64),
}

/// The archive, ready to be written: every entry in the order it goes out.
pub(super) struct Plan {
    entries: Vec<(String, Option<Body>)>,
    /// The images it holds, for the `save` events.
    pub ids: Vec<String>,
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// An OCI manifest's type for a layer whose stored manifest gave it `mt`: Docker's names
/// become the OCI ones, as containerd reads both.
fn oci_layer_type(mt: &str) -> String {
    match mt {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip".into()
        }
        "application/vnd.docker.image.rootfs.diff.tar" => {
            "application/vnd.oci.image.layer.v1.tar".into()
        }
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip".into()
        }
        "" => wharf_storage::MEDIA_TYPE_LAYER_TAR.into(),
        other => other.into(),
    }
}

/// A layer of a stored image: its blob, type and size, from the image's manifest.
#[derive(Debug, Clone)]
struct StoredLayer {
    blob: Digest,
    media_type: String,
}

fn stored_layers(ctx: &Ctx, manifest_digest: &str) -> Result<Vec<StoredLayer>, EngineError> {
    let d: Digest = manifest_digest
        .parse()
        .map_err(|e| EngineError::internal(format!("image manifest digest: {e}")))?;
    let bytes = ctx
        .content
        .read(&d)
        .map_err(|e| e.during("reading the image manifest"))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| e.during("parsing the manifest"))?;
    v["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let blob = l["digest"]
                .as_str()
                .unwrap_or_default()
                .parse::<Digest>()
                .map_err(|e| EngineError::internal(format!("layer digest in a manifest: {e}")))?;
            Ok(StoredLayer {
                blob,
                media_type: l["mediaType"].as_str().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// A stored blob for the layer `diff_id` when the image's own is not here (a pull that found
/// the layer already here names the registry's blob, which it did not download): any other
/// image's blob of the same layer does, since an archive's reader checks diff ids.
fn other_blob_for(ctx: &Ctx, diff_id: &str) -> Option<StoredLayer> {
    for rec in ctx.db.list_images().ok()? {
        let Ok(cfg) = rec.config_digest.parse::<Digest>() else {
            continue;
        };
        let Some(doc) = ctx
            .content
            .read(&cfg)
            .ok()
            .and_then(|b| serde_json::from_slice::<ImageConfigDoc>(&b).ok())
        else {
            continue;
        };
        let Ok(layers) = stored_layers(ctx, &rec.manifest_digest) else {
            continue;
        };
        for (d, l) in doc.rootfs.diff_ids.iter().zip(layers) {
            if d == diff_id && ctx.content.exists(&l.blob) {
                return Some(l);
            }
        }
    }
    None
}

/// Builds the archive of `selected`: reads every config and manifest and opens every blob.
pub(super) fn plan(ctx: &Ctx, selected: &[Selected]) -> Result<Plan, EngineError> {
    let mut blobs: BTreeMap<String, Body> = BTreeMap::new();
    let mut items = Vec::new();
    let mut index = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for sel in selected {
        let rec = ctx
            .db
            .get_image(&sel.id)
            .map_err(|e| e.during("reading images"))?
            .ok_or_else(|| EngineError::no_such_image(&sel.id))?;
        let config_digest: Digest = rec
            .config_digest
            .parse()
            .map_err(|e| EngineError::internal(format!("image config digest: {e}")))?;
        let config = ctx
            .content
            .read(&config_digest)
            .map_err(|e| e.during("reading the image config"))?;
        let doc: ImageConfigDoc =
            serde_json::from_slice(&config).map_err(|e| e.during("parsing the image config"))?;
        if !(doc.os.is_empty() || doc.os == "linux") {
            return Err(EngineError::invalid(format!(
                "os {:?} is not supported",
                doc.os
            )));
        }
        let layers = stored_layers(ctx, &rec.manifest_digest)?;
        if layers.is_empty() || layers.len() != doc.rootfs.diff_ids.len() {
            return Err(EngineError::internal(format!(
                "image {}: its manifest names {} layers and its config {}",
                sel.id,
                layers.len(),
                doc.rootfs.diff_ids.len()
            )));
        }
        let mut descs = Vec::with_capacity(layers.len());
        let mut paths = Vec::with_capacity(layers.len());
        for (layer, diff_id) in layers.into_iter().zip(&doc.rootfs.diff_ids) {
            let layer = if ctx.content.exists(&layer.blob) {
                layer
            } else {
                other_blob_for(ctx, diff_id).ok_or_else(|| {
                    EngineError::internal(format!(
                        "image {}: the content of layer {diff_id} is not here (pull the image again)",
                        sel.id
                    ))
                })?
            };
            let hex = layer.blob.hex().to_string();
            let size = match blobs.get(&hex) {
                Some(Body::File(_, size)) => *size,
                _ => {
                    let f = ctx
                        .content
                        .open_blob(&layer.blob)
                        .map_err(|e| e.during("opening a layer"))?;
                    let size = f
                        .metadata()
                        .map_err(|e| e.during("reading a layer's size"))?
                        .len();
                    blobs.insert(hex, Body::File(f, size));
                    size
                }
            };
            paths.push(blob_path(&layer.blob));
            descs.push(Descriptor {
                media_type: oci_layer_type(&layer.media_type),
                digest: layer.blob.to_string(),
                size,
                annotations: None,
            });
        }
        let top_hex = descs
            .last()
            .map(|d| d.digest.trim_start_matches("sha256:").to_string())
            .unwrap_or_default();
        let manifest = wharf_api::jsonmessage::go_json(&OciManifest {
            schema_version: 2,
            media_type: OCI_MANIFEST,
            config: Descriptor {
                media_type: OCI_CONFIG.into(),
                digest: config_digest.to_string(),
                size: config.len() as u64,
                annotations: None,
            },
            layers: descs,
        });
        let manifest_digest = Digest::sha256_of(&manifest);
        let manifest_desc = Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: manifest_digest.to_string(),
            size: manifest.len() as u64,
            annotations: None,
        };
        blobs.insert(manifest_digest.hex().to_string(), Body::Bytes(manifest));
        blobs.insert(config_digest.hex().to_string(), Body::Bytes(config));
        for tag in &sel.tags {
            let r = wharf_distribution::Reference::parse_normalized_named(tag)
                .map_err(|e| EngineError::internal(format!("stored tag {tag}: {e}")))?;
            let t = r.tag().unwrap_or("latest").to_string();
            repositories
                .entry(r.familiar_name())
                .or_default()
                .insert(t.clone(), top_hex.clone());
            let mut annotations = BTreeMap::new();
            annotations.insert(
                ANNOTATION_IMAGE_NAME.to_string(),
                format!("{}:{t}", r.name()),
            );
            annotations.insert(ANNOTATION_REF_NAME.to_string(), t);
            index.push(Descriptor {
                annotations: Some(annotations),
                ..manifest_desc.clone()
            });
        }
        if sel.tags.is_empty() {
            index.push(manifest_desc);
        }
        items.push(ManifestItem {
            config: blob_path(&config_digest),
            repo_tags: (!sel.tags.is_empty())
                .then(|| sel.tags.iter().map(|t| familiar(t)).collect()),
            layers: paths,
        });
    }
    let mut entries: Vec<(String, Option<Body>)> =
        vec![("blobs/".into(), None), ("blobs/sha256/".into(), None)];
    entries.extend(
        blobs
            .into_iter()
            .map(|(hex, b)| (format!("blobs/sha256/{hex}"), Some(b))),
    );
    let index = wharf_api::jsonmessage::go_json(&OciIndex {
        schema_version: 2,
        media_type: OCI_INDEX,
        manifests: index,
    });
    entries.push(("index.json".into(), Some(Body::Bytes(index))));
    // Go's json.Encoder, as dockerd writes these two: a newline after the document.
    let mut manifest_json = wharf_api::jsonmessage::go_json(&items);
    manifest_json.push(b'\n');
    entries.push(("manifest.json".into(), Some(Body::Bytes(manifest_json))));
    entries.push(("oci-layout".into(), Some(Body::Bytes(OCI_LAYOUT.to_vec()))));
    if !repositories.is_empty() {
        let mut r = wharf_api::jsonmessage::go_json(&repositories);
        r.push(b'\n');
        entries.push(("repositories".into(), Some(Body::Bytes(r))));
    }
    Ok(Plan {
        entries,
        ids: selected.iter().map(|s| s.id.clone()).collect(),
    })
}

/// A stored tag as `manifest.json` names it (`busybox:latest`, the CLI's short form).
fn familiar(tag: &str) -> String {
    reference::normalize(tag).unwrap_or_else(|_| tag.to_string())
}

/// Writes into the response's channel in chunks; a closed channel (the client went away)
/// fails the write, which stops the tar writer.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

fn header(path: &str, size: u64, dir: bool) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)?;
    h.set_size(size);
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    Ok(h)
}

/// Writes the archive into `tx`, chunk by chunk; a failure is the stream's last item (the
/// response is then cut short, which a client sees as an error, not as a whole archive).
pub(super) fn write(plan: Plan, tx: mpsc::Sender<io::Result<Bytes>>) {
    let err_tx = tx.clone();
    let mut w = ChannelWriter {
        tx,
        buf: Vec::with_capacity(CHUNK),
    };
    let res = (|| -> io::Result<()> {
        let mut b = tar::Builder::new(&mut w);
        for (path, body) in plan.entries {
            match body {
                None => b.append(&header(&path, 0, true)?, io::empty())?,
                Some(Body::Bytes(bytes)) => {
                    b.append(&header(&path, bytes.len() as u64, false)?, &bytes[..])?
                }
                Some(Body::File(f, size)) => {
                    // Exactly the size announced: a blob is immutable, but a short read must
                    // not shift every entry after it.
                    let mut r = Exact {
                        inner: f.take(size),
                        left: size,
                    };
                    b.append(&header(&path, size, false)?, &mut r)?
                }
            }
        }
        b.into_inner()?.flush()
    })();
    if let Err(e) = res {
        if e.kind() != io::ErrorKind::BrokenPipe {
            tracing::warn!(error = %e, "save: writing the archive failed");
            let _ = err_tx.blocking_send(Err(e));
        }
    }
}

/// A reader that fails instead of ending before `left` bytes.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a blob is shorter than its size",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
