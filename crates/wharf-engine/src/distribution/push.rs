//! One push, as dockerd's `pushRepository` and `pushTag` make it: `The push refers to
//! repository [<name>]`; for the tag asked (or every tag of the repository), each layer from
//! the top down `Preparing`, then `Layer already exists` (the registry has the blob: `HEAD`),
//! `Mounted from <repo>` (another repository of the same registry has it, as this daemon knows
//! from a pull or a push: a cross-repository mount) or `Pushing` with its bar and `Pushed`, at
//! most `--max-concurrent-uploads` at a time (the rest `Waiting`); the config; the manifest
//! last, `<tag>: digest: <digest> size: <size>` and the `aux` result. The pushed manifest is
//! kept and named as a repository digest of the image, as dockerd adds one.
//!
//! Layers go up as they are stored (dockerd recompresses): an image whose blobs are all gzip
//! gets a Docker schema2 manifest, as dockerd pushes; one with plain or zstd blobs (an
//! import of a plain tar) an OCI manifest with OCI media types.
//!
//! Foreign (non-distributable) layers go up like any other, as dockerd v28 pushes them
//! (v28 removed the skip and made `--allow-nondistributable-artifacts` a no-op): uploaded
//! and described as ordinary layers, without their `urls`.

use super::progress::{short_id, Meter, Out};
use super::remote::Remote;
use super::{registry_error, DistributionService};
use crate::error::{Cause, EngineError};
use crate::images::reference;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use wharf_api::jsonmessage::{Aux, JsonMessage};
use wharf_distribution::manifest::{DOCKER_CONFIG, DOCKER_MANIFEST, OCI_CONFIG, OCI_MANIFEST};
use wharf_distribution::Reference;
use wharf_storage::{Digest, ImageRecord};

/// dockerd's `maxUploadAttempts`: a layer upload is tried this many times in all.
const MAX_UPLOAD_ATTEMPTS: u32 = 5;

const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// One layer to push: its diff id names it in messages, its stored blob goes up.
#[derive(Debug, Clone)]
struct PushLayer {
    id: String,
    blob: Digest,
    size: u64,
    compression: Compression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    Gzip,
    Zstd,
    Plain,
}

impl Compression {
    fn of(media_type: &str) -> Compression {
        if media_type.ends_with("gzip") {
            Compression::Gzip
        } else if media_type.ends_with("zstd") {
            Compression::Zstd
        } else {
            Compression::Plain
        }
    }

    fn oci_type(self) -> String {
        match self {
            Compression::Gzip => format!("{OCI_LAYER}+gzip"),
            Compression::Zstd => format!("{OCI_LAYER}+zstd"),
            Compression::Plain => OCI_LAYER.to_owned(),
        }
    }
}

/// What a stored manifest and config say about their layers.
#[derive(Deserialize)]
struct StoredManifest {
    layers: Vec<StoredDescriptor>,
}

#[derive(Deserialize)]
struct StoredDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
}

#[derive(Deserialize, Default)]
struct ConfigRootFs {
    #[serde(default)]
    rootfs: RootFs,
    #[serde(default)]
    config: Option<ConfigLabels>,
}

#[derive(Deserialize, Default)]
struct ConfigLabels {
    #[serde(default, rename = "Labels")]
    labels: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// A manifest as distribution's schema2 package writes it: Go's `MarshalIndent` with three
/// spaces, its descriptors' fields in Go's order.
#[derive(Serialize)]
struct OutManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    config: OutDescriptor,
    layers: Vec<OutDescriptor>,
}

#[derive(Serialize)]
struct OutDescriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    size: u64,
    digest: String,
}

fn encode_manifest(m: &OutManifest) -> Result<Vec<u8>, EngineError> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    m.serialize(&mut ser)
        .map_err(|e| e.during("encoding the manifest"))?;
    Ok(buf)
}

fn remote_digest(d: &Digest) -> Result<wharf_distribution::Digest, EngineError> {
    wharf_distribution::Digest::parse(d.as_str())
        .map_err(|e| EngineError::internal(format!("digest {d}: {e}")))
}

impl DistributionService {
    /// The push of `r`: its tag, or every tag of its repository.
    pub(super) async fn push_target(
        &self,
        r: &Reference,
        remote: &Arc<dyn Remote>,
        out: &Out,
    ) -> Result<(), EngineError> {
        out.send(JsonMessage::status(
            "",
            format!("The push refers to repository [{}]", r.name()),
        ))
        .await;
        let repo = r.familiar_name();
        let mut tags: Vec<(String, String)> = self
            .ctx
            .db
            .list_tags()
            .map_err(|e| e.during("reading tags"))?
            .into_iter()
            .filter(|(t, _)| reference::repository_of(t) == repo)
            .collect();
        if tags.is_empty() {
            return Err(EngineError::not_found(format!(
                "An image does not exist locally with the tag: {repo}"
            )));
        }
        if r.digest().is_some() {
            return Err(EngineError::invalid("cannot push a digest reference"));
        }
        if let Some(tag) = r.tag() {
            let wanted = reference::familiar_key(r.clone());
            tags.retain(|(t, _)| *t == wanted);
            if tags.is_empty() {
                return Err(EngineError::not_found(format!(
                    "tag does not exist: {}",
                    r.familiar_string()
                )));
            }
            tags.truncate(1);
            let _ = tag;
        }
        let mut labels = None;
        for (name, id) in tags {
            let (_, tag) = reference::split_tag(&name);
            let tagged = r
                .clone()
                .trim()
                .with_tag(tag.unwrap_or(wharf_distribution::reference::DEFAULT_TAG))
                .map_err(|e| EngineError::invalid(e.to_string()))?;
            labels = self.push_tag(&tagged, &id, remote, out).await?;
        }
        // dockerd's `push` event: named by the reference pushed, `name` its repository.
        self.ctx
            .events
            .image("push", &r.familiar_string(), &repo, labels.as_ref());
        Ok(())
    }

    /// Pushes one tag; the image's labels, for the event.
    async fn push_tag(
        &self,
        r: &Reference,
        image_id: &str,
        remote: &Arc<dyn Remote>,
        out: &Out,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, EngineError> {
        let tag = r
            .tag()
            .unwrap_or(wharf_distribution::reference::DEFAULT_TAG)
            .to_owned();
        let rec = self
            .ctx
            .db
            .get_image(image_id)
            .map_err(|e| e.during("reading images"))?
            .ok_or_else(|| {
                EngineError::not_found(format!(
                    "could not find image from tag {}",
                    r.familiar_string()
                ))
            })?;
        let config_digest: Digest = rec
            .config_digest
            .parse()
            .map_err(|e: wharf_storage::StorageError| e.during("the image's config digest"))?;
        let config = self
            .ctx
            .content
            .read(&config_digest)
            .map_err(|e| e.during("reading the image config"))?;
        let layers = self.layers_of(&rec, &config)?;
        let labels = serde_json::from_slice::<ConfigRootFs>(&config)
            .ok()
            .and_then(|c| c.config)
            .and_then(|c| c.labels);

        // Top down, as dockerd walks the layer chain.
        for l in layers.iter().rev() {
            out.send(JsonMessage::action(&l.id, "Preparing")).await;
        }
        let uploads = Semaphore::new(self.ctx.registry.max_concurrent_uploads.max(1));
        let jobs = layers
            .iter()
            .rev()
            .map(|l| self.push_layer(l, r, remote, out, &uploads));
        futures_util::future::try_join_all(jobs).await?;

        // The config, unless the registry has it.
        let config_remote = remote_digest(&config_digest)?;
        if remote
            .blob_exists(&config_remote)
            .await
            .map_err(registry_error)?
            .is_none()
        {
            let size = config.len() as u64;
            let body = futures_util::stream::iter([Ok(bytes::Bytes::from(config.clone()))]);
            remote
                .upload_blob(&config_remote, size, Box::pin(body))
                .await
                .map_err(registry_error)?;
        }

        let docker = layers.iter().all(|l| l.compression == Compression::Gzip);
        let manifest = OutManifest {
            schema_version: 2,
            media_type: if docker {
                DOCKER_MANIFEST
            } else {
                OCI_MANIFEST
            },
            config: OutDescriptor {
                media_type: (if docker { DOCKER_CONFIG } else { OCI_CONFIG }).to_owned(),
                size: config.len() as u64,
                digest: config_digest.to_string(),
            },
            layers: layers
                .iter()
                .map(|l| OutDescriptor {
                    media_type: if docker {
                        DOCKER_LAYER_GZIP.to_owned()
                    } else {
                        l.compression.oci_type()
                    },
                    size: l.size,
                    digest: l.blob.to_string(),
                })
                .collect(),
        };
        let bytes = encode_manifest(&manifest)?;
        let digest = Digest::sha256_of(&bytes);
        remote
            .put_manifest(&tag, manifest.media_type, bytes::Bytes::from(bytes.clone()))
            .await
            .map_err(registry_error)?;
        out.send(JsonMessage::status(
            "",
            format!("{tag}: digest: {digest} size: {}", bytes.len()),
        ))
        .await;

        // Kept and named, as dockerd's addDigestReference: the registry holds it by now.
        let digest_name =
            reference::familiar_key(r.clone().trim().with_digest(remote_digest(&digest)?));
        let ctx = self.ctx.clone();
        let kept = bytes.clone();
        let d = digest.clone();
        tokio::task::spawn_blocking(move || -> Result<(), EngineError> {
            ctx.content
                .ingest(&kept[..], Some(&d))
                .map_err(|e| e.during("keeping the pushed manifest"))?;
            ctx.db
                .put_pulled_image(&rec, false, None, Some(&digest_name), false)
                .map_err(|e| e.during("saving the repository digest"))
        })
        .await
        .map_err(|e| e.during("saving the repository digest"))??;

        out.send(JsonMessage::aux(Aux::Pushed {
            tag,
            digest: digest.to_string(),
            size: bytes.len() as i64,
        }))
        .await;
        Ok(labels)
    }

    /// The image's layers with the blobs that hold them: its own manifest's, or, for a layer
    /// whose blob is not here (pulled as `Already exists`), another image's blob of the same
    /// diff id.
    fn layers_of(&self, rec: &ImageRecord, config: &[u8]) -> Result<Vec<PushLayer>, EngineError> {
        let diff_ids = serde_json::from_slice::<ConfigRootFs>(config)
            .map_err(|e| e.during("parsing the image config"))?
            .rootfs
            .diff_ids;
        let own = self.stored_layers(&rec.manifest_digest);
        let mut others: Option<Vec<(String, StoredDescriptor)>> = None;
        let mut out = Vec::with_capacity(diff_ids.len());
        for (i, diff_id) in diff_ids.iter().enumerate() {
            let mine = own
                .as_ref()
                .and_then(|l| l.get(i))
                .filter(|d| self.stored(&d.digest))
                .map(|d| (d.digest.clone(), d.media_type.clone()));
            let found = match mine {
                Some(f) => Some(f),
                None => {
                    let all = others.get_or_insert_with(|| self.all_stored_layers());
                    all.iter()
                        .find(|(diff, d)| diff == diff_id && self.stored(&d.digest))
                        .map(|(_, d)| (d.digest.clone(), d.media_type.clone()))
                }
            };
            let Some((blob, media_type)) = found else {
                return Err(EngineError::not_implemented(format!(
                    "layer {diff_id} has no stored blob to push: Wharf does not recompress a layer from its files yet"
                )));
            };
            let blob: Digest = blob
                .parse()
                .map_err(|e: wharf_storage::StorageError| e.during("a layer digest"))?;
            let size = self
                .ctx
                .content
                .size(&blob)
                .map_err(|e| e.during("reading a layer blob"))?;
            out.push(PushLayer {
                id: short_id(diff_id),
                blob,
                size,
                compression: Compression::of(&media_type),
            });
        }
        Ok(out)
    }

    fn stored(&self, digest: &str) -> bool {
        digest
            .parse::<Digest>()
            .is_ok_and(|d| self.ctx.content.exists(&d))
    }

    fn stored_layers(&self, manifest_digest: &str) -> Option<Vec<StoredDescriptor>> {
        let d: Digest = manifest_digest.parse().ok()?;
        let bytes = self.ctx.content.read(&d).ok()?;
        serde_json::from_slice::<StoredManifest>(&bytes)
            .ok()
            .map(|m| m.layers)
    }

    /// Every image's layers: (diff id, blob descriptor).
    fn all_stored_layers(&self) -> Vec<(String, StoredDescriptor)> {
        let mut out = Vec::new();
        for img in self.ctx.db.list_images().unwrap_or_default() {
            let config = img
                .config_digest
                .parse::<Digest>()
                .ok()
                .and_then(|d| self.ctx.content.read(&d).ok())
                .and_then(|b| serde_json::from_slice::<ConfigRootFs>(&b).ok());
            let (Some(config), Some(layers)) = (config, self.stored_layers(&img.manifest_digest))
            else {
                continue;
            };
            out.extend(config.rootfs.diff_ids.into_iter().zip(layers));
        }
        out
    }

    /// Repositories of `target`'s registry that hold `blob`, as this daemon knows from its
    /// pulls and pushes (the repository digests of images whose manifests name it).
    fn mount_sources(&self, blob: &Digest, target: &Reference) -> Vec<String> {
        let mut sources = Vec::new();
        let names = self.ctx.db.list_repo_digests().unwrap_or_default();
        for img in self.ctx.db.list_images().unwrap_or_default() {
            let named = self
                .stored_layers(&img.manifest_digest)
                .is_some_and(|l| l.iter().any(|d| d.digest == blob.as_str()));
            if !named {
                continue;
            }
            for (name, _) in names.iter().filter(|(_, id)| *id == img.id) {
                let Some((repo, _)) = name.split_once('@') else {
                    continue;
                };
                let Ok(r) = Reference::parse_normalized_named(repo) else {
                    continue;
                };
                if r.domain() == target.domain()
                    && r.path() != target.path()
                    && !sources.iter().any(|s| s == r.path())
                {
                    sources.push(r.path().to_owned());
                }
            }
        }
        sources
    }

    async fn push_layer(
        &self,
        l: &PushLayer,
        target: &Reference,
        remote: &Arc<dyn Remote>,
        out: &Out,
        uploads: &Semaphore,
    ) -> Result<(), EngineError> {
        let _permit = match uploads.try_acquire() {
            Ok(p) => p,
            Err(_) => {
                out.send(JsonMessage::action(&l.id, "Waiting")).await;
                uploads
                    .acquire()
                    .await
                    .map_err(|e| EngineError::internal(format!("upload slots: {e}")))?
            }
        };
        let blob = remote_digest(&l.blob)?;
        // As dockerd's layerAlreadyExists and its mount attempts, a check or a mount that
        // fails only leaves the upload to do; but a registry that cannot be reached at all
        // fails the push here, as dockerd's ping before the layers does.
        match remote.blob_exists(&blob).await {
            Ok(Some(_)) => {
                out.send(JsonMessage::action(&l.id, "Layer already exists"))
                    .await;
                return Ok(());
            }
            Ok(None) => {}
            Err(e) if e.is_transport() => return Err(registry_error(e)),
            Err(e) => {
                tracing::debug!(layer = %l.blob, error = %e, "push: checking for the layer failed; uploading it");
            }
        }
        for from in self.mount_sources(&l.blob, target) {
            match remote.mount_blob(&blob, &from).await {
                Ok(true) => {
                    out.send(JsonMessage::action(&l.id, format!("Mounted from {from}")))
                        .await;
                    return Ok(());
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::info!(layer = %l.blob, from = %from, error = %e, "push: mounting the layer failed; uploading it");
                }
            }
        }
        // dockerd's upload manager: a retryable failure is tried again after a countdown of
        // 5 s per failure so far, at most MAX_UPLOAD_ATTEMPTS times in all; any other fails
        // the push at once.
        let mut failures = 0;
        loop {
            let err = match self.upload_layer(l, &blob, remote, out).await? {
                Ok(()) => break,
                Err(e) => e,
            };
            failures += 1;
            if !err.is_retryable() || failures == MAX_UPLOAD_ATTEMPTS {
                tracing::error!(layer = %l.blob, error = %err, "push: upload failed");
                // dockerd's retryOnError shows a failed request's cause alone (`no basic
                // auth credentials`, not `Post "…": no basic auth credentials`).
                return Err(registry_error(err.into_cause()));
            }
            tracing::warn!(layer = %l.blob, error = %err, "push: upload failed, retrying");
            for left in (1..=failures * 5).rev() {
                let unit = if left == 1 { "second" } else { "seconds" };
                out.send(JsonMessage::action(
                    &l.id,
                    format!("Retrying in {left} {unit}"),
                ))
                .await;
                tokio::time::sleep(self.retry_tick).await;
            }
        }
        out.send(JsonMessage::action(&l.id, "Pushed")).await;
        Ok(())
    }

    /// One attempt at uploading a layer with its `Pushing` bar: the registry's error inside,
    /// for the caller to retry or not; a local failure outside.
    async fn upload_layer(
        &self,
        l: &PushLayer,
        blob: &wharf_distribution::Digest,
        remote: &Arc<dyn Remote>,
        out: &Out,
    ) -> Result<Result<(), wharf_distribution::DistributionError>, EngineError> {
        let path = self.ctx.content.blob_path(&l.blob);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| e.during("opening a layer blob"))?;
        let whole = Arc::new(AtomicBool::new(false));
        let sent = whole.clone();
        let bars = out.clone();
        let mut meter = Meter::new(&l.id, "Pushing", l.size);
        let body = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(move |r| {
            if let Ok(b) = &r {
                if let Some(bar) = meter.advance(b.len() as u64, Instant::now()) {
                    let is_whole = bar
                        .progress_detail
                        .as_ref()
                        .is_some_and(|d| d.current == d.total);
                    if bars.bar(bar) && is_whole {
                        sent.store(true, Ordering::SeqCst);
                    }
                }
            }
            r
        });
        if let Err(e) = remote.upload_blob(blob, l.size, Box::pin(body)).await {
            return Ok(Err(e));
        }
        if !whole.load(Ordering::SeqCst) {
            let n = l.size as i64;
            out.send(JsonMessage::progress(&l.id, "Pushing", n, n))
                .await;
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
pub(super) fn manifest_bytes_for_test(layers: &[(&str, u64, &str)]) -> Vec<u8> {
    let m = OutManifest {
        schema_version: 2,
        media_type: DOCKER_MANIFEST,
        config: OutDescriptor {
            media_type: DOCKER_CONFIG.into(),
            size: 1,
            digest: "sha256:c".into(),
        },
        layers: layers
            .iter()
            .map(|(mt, size, d)| OutDescriptor {
                media_type: (*mt).into(),
                size: *size,
                digest: (*d).into(),
            })
            .collect(),
    };
    encode_manifest(&m).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::Compression;

    #[test]
    fn foreign_layers_go_up_as_ordinary_layers() {
        let foreign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
        let nondist = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
        assert_eq!(Compression::of(foreign), Compression::Gzip);
        assert_eq!(Compression::of(nondist), Compression::Gzip);
        assert_eq!(
            Compression::of(nondist).oci_type(),
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }

    #[test]
    fn manifests_are_indented_as_distributions() {
        let b = super::manifest_bytes_for_test(&[(super::DOCKER_LAYER_GZIP, 5, "sha256:l")]);
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n   \"config\": {\n      \"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n      \"size\": 1,\n      \"digest\": \"sha256:c\"\n   },\n   \"layers\": [\n      {\n         \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n         \"size\": 5,\n         \"digest\": \"sha256:l\"\n      }\n   ]\n}"
        );
    }
}
