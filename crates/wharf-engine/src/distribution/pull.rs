//! One pull, as dockerd's `pullTag` does it: the manifest (through an index, for this
//! daemon's platform or the one asked for), the config, the layers, then what is kept: the
//! manifest's and index's bytes exactly, the config, the image record, the tag and the
//! repository digest, all names in one transaction with the record.
//!
//! Messages, in dockerd's order: `<tag>: Pulling from <path>`, the layers' steps
//! ([`super::layers`]), `Digest: <what was asked for>` (the index's digest for a multi-arch
//! tag); for every tag of a repository (`pull -a`) that much per tag; then `Status:
//! Downloaded newer image for <ref>` or `Status: Image is up to date for <ref>`, and
//! dockerd's warning when a single-platform image is not of the platform asked for. Nothing is
//! said before the (first) manifest is fetched, so a missing one is an ordinary 404.

use super::layers::{self, Fetcher};
use super::progress::Out;
use super::remote::Remote;
use super::request::{format_platform, Target};
use super::{registry_error, DistributionService, MAX_CONFIG};
use crate::error::{Cause, EngineError};
use crate::images::reference;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use wharf_api::jsonmessage::JsonMessage;
use wharf_distribution::manifest::{self, ImageManifest, Manifest, Platform};
use wharf_distribution::{Fetched, Reference};
use wharf_storage::{Digest, ImageRecord, SnapshotKind};

/// The platform fields of an image config.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct ConfigPlatform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default, rename = "os.version")]
    pub os_version: Option<String>,
}

/// What a pull reads from an image config.
#[derive(Debug, Clone, Default, Deserialize)]
struct ConfigDoc {
    #[serde(flatten)]
    platform: ConfigPlatform,
    #[serde(default)]
    rootfs: RootFs,
    #[serde(default)]
    config: Option<Inner>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Inner {
    #[serde(default, rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
}

/// The image manifest a pull settled on, and the index it came through.
struct Resolved {
    image: Fetched,
    manifest: ImageManifest,
    index: Option<Fetched>,
}

/// What is written once the layers are in.
struct Made {
    record: ImageRecord,
    config: Vec<u8>,
}

/// dockerd's config media types (and the odd ones old registries send).
fn image_config_type(mt: &str) -> bool {
    matches!(
        mt,
        manifest::DOCKER_CONFIG
            | manifest::OCI_CONFIG
            | "application/octet-stream"
            | "application/json"
            | "text/html"
            | ""
    )
}

/// dockerd's check of an image's OS: only Linux runs here.
fn check_os(os: &str) -> Result<(), EngineError> {
    if os.is_empty() || os.eq_ignore_ascii_case("linux") {
        Ok(())
    } else {
        Err(EngineError::invalid("operating system is not supported"))
    }
}

/// What one tag's pull did, for the lines and the event that follow it.
pub(super) struct Pulled {
    /// The name now points at an image it did not point at before.
    updated: bool,
    labels: Option<BTreeMap<String, String>>,
    /// dockerd's warning for a single-platform image of another platform than asked.
    warning: Option<String>,
}

impl DistributionService {
    /// A pull as dockerd's `pullRepository` and `PullImage` make it: each tag, then the
    /// `Status` line, the `pull` event and any platform warning.
    pub(super) async fn pull_target(
        &self,
        target: &Target,
        want: Option<&Platform>,
        remote: &Arc<dyn Remote>,
        out: &Out,
    ) -> Result<(), EngineError> {
        let (r, pulled) = match target {
            Target::One(r) => (r, vec![self.pull_tag(r, want, remote, out).await?]),
            Target::AllTags(r) => {
                // Nothing said yet: a repository that cannot be listed is an ordinary error.
                let tags = remote.tags().await.map_err(registry_error)?;
                let mut pulled = Vec::with_capacity(tags.len());
                for t in &tags {
                    let tagged = r
                        .clone()
                        .with_tag(t)
                        .map_err(|e| EngineError::invalid(e.to_string()))?;
                    let mut p = self.pull_tag(&tagged, want, remote, out).await?;
                    // The event names the repository: the default tag's labels, if pulled.
                    if t != wharf_distribution::reference::DEFAULT_TAG {
                        p.labels = None;
                    }
                    p.warning = None;
                    pulled.push(p);
                }
                (r, pulled)
            }
        };
        let shown = r.familiar_string();
        let status = if pulled.iter().any(|p| p.updated) {
            format!("Status: Downloaded newer image for {shown}")
        } else {
            format!("Status: Image is up to date for {shown}")
        };
        out.send(JsonMessage::status("", status)).await;
        let labels = pulled.iter().find_map(|p| p.labels.as_ref());
        self.ctx
            .events
            .image("pull", &shown, &r.familiar_name(), labels);
        for w in pulled.iter().filter_map(|p| p.warning.as_ref()) {
            out.send(JsonMessage::status("", w)).await;
        }
        Ok(())
    }

    /// Pulls one tag or digest; the messages go to `out`.
    async fn pull_tag(
        &self,
        r: &Reference,
        want: Option<&Platform>,
        remote: &Arc<dyn Remote>,
        out: &Out,
    ) -> Result<Pulled, EngineError> {
        let by_digest = r.digest().is_some();
        let wanted = r.tag_or_digest();
        let top = self.manifest(remote, &wanted).await?;
        // From here on, what goes wrong is said in the stream.
        let tag_or_digest = if by_digest { r.to_string() } else { wanted };
        out.send(JsonMessage::status(
            tag_or_digest,
            format!("Pulling from {}", r.path()),
        ))
        .await;
        if let Some(p) = want {
            check_os(&p.os)?;
        }
        let resolved = self.resolve(top, want, remote).await?;
        let m = &resolved.manifest;
        if !image_config_type(&m.config.media_type) {
            let class = if m.config.media_type == "application/vnd.docker.plugin.v1+json" {
                "plugin"
            } else {
                "unknown"
            };
            return Err(EngineError::invalid(format!(
                "Encountered remote \"{}\"({class}) when fetching",
                m.config.media_type
            )));
        }
        let config_digest = layers::store_digest(&m.config.digest)?;
        let image_id = config_digest.to_string();

        let (made, config_bytes) = match self.existing(&image_id)? {
            // As dockerd: an image already here is not pulled again, layer by layer.
            Some(config) => (None, config),
            None => {
                let made = self
                    .fetch_image(&resolved, &config_digest, want, remote, out)
                    .await?;
                let config = made.config.clone();
                (Some(made), config)
            }
        };
        let doc: ConfigDoc = serde_json::from_slice(&config_bytes)
            .map_err(|e| EngineError::internal(format!("parsing the image config: {e}")))?;

        // The digest the repository digest names: what was asked for, the index's for a
        // multi-arch tag.
        let asked = resolved.index.as_ref().unwrap_or(&resolved.image);
        out.send(JsonMessage::status("", format!("Digest: {}", asked.digest)))
            .await;
        let updated = self
            .record(r, &image_id, made, &resolved, by_digest)
            .await?;
        // A single-platform image is kept whatever its platform, with dockerd's warning.
        let mut warning = None;
        if let (Some(p), None) = (want, &resolved.index) {
            let got = &doc.platform;
            let variant_differs = p
                .variant
                .as_deref()
                .is_some_and(|v| !v.is_empty() && Some(v) != got.variant.as_deref());
            if p.os != got.os || p.architecture != got.architecture || variant_differs {
                let actual = Platform {
                    architecture: got.architecture.clone(),
                    os: got.os.clone(),
                    os_version: None,
                    variant: got.variant.clone(),
                };
                warning = Some(format!(
                    "WARNING: image with reference {r} was found but does not match the specified platform: wanted {}, actual: {}",
                    format_platform(p),
                    format_platform(&actual)
                ));
            }
        }
        Ok(Pulled {
            updated,
            labels: doc.config.and_then(|c| c.labels),
            warning,
        })
    }

    /// A manifest or index by tag or digest, as dockerd's manifest store gets one: a tag's
    /// digest from a `HEAD`, then the bytes this daemon keeps under that digest (from an
    /// earlier pull or push), else a `GET` by digest. A repeat pull costs one `HEAD`.
    async fn manifest(
        &self,
        remote: &Arc<dyn Remote>,
        reference: &str,
    ) -> Result<Fetched, EngineError> {
        let known = match wharf_distribution::Digest::parse(reference) {
            Ok(d) => Some((d, String::new())),
            Err(_) => remote
                .resolve_tag(reference)
                .await
                .map_err(registry_error)?
                .map(|h| (h.digest, h.media_type)),
        };
        let Some((digest, media_type)) = known else {
            // No digest named: the registry's own answer to a `GET` of the tag.
            return remote.manifest(reference).await.map_err(registry_error);
        };
        let kept = digest
            .as_str()
            .parse::<Digest>()
            .ok()
            .filter(|d| self.ctx.content.exists(d))
            .and_then(|d| self.ctx.content.read(&d).ok());
        match kept {
            Some(bytes) => Ok(Fetched {
                media_type: manifest::media_type_of(&media_type, &bytes),
                digest,
                bytes: bytes.into(),
            }),
            None => remote
                .manifest(digest.as_str())
                .await
                .map_err(registry_error),
        }
    }

    /// The image manifest for this pull: the one fetched, or the index's entry for the
    /// platform.
    async fn resolve(
        &self,
        top: Fetched,
        want: Option<&Platform>,
        remote: &Arc<dyn Remote>,
    ) -> Result<Resolved, EngineError> {
        match manifest::parse(&top.media_type, &top.bytes).map_err(registry_error)? {
            Manifest::Image(m) => Ok(Resolved {
                image: top,
                manifest: *m,
                index: None,
            }),
            Manifest::Index(ix) => {
                let host = Platform::host();
                let want = want.unwrap_or(&host);
                let entry = manifest::select(&ix, want).map_err(registry_error)?;
                let child = self.manifest(remote, entry.digest.as_str()).await?;
                match manifest::parse(&child.media_type, &child.bytes).map_err(registry_error)? {
                    Manifest::Image(m) => Ok(Resolved {
                        image: child,
                        manifest: *m,
                        index: Some(top),
                    }),
                    Manifest::Index(_) => Err(EngineError::invalid("unsupported manifest format")),
                }
            }
        }
    }

    /// The config of an image that is already here, whole (record and top layer).
    fn existing(&self, image_id: &str) -> Result<Option<Vec<u8>>, EngineError> {
        let Some(rec) = self
            .ctx
            .db
            .get_image(image_id)
            .map_err(|e| e.during("reading images"))?
        else {
            return Ok(None);
        };
        let whole = self
            .ctx
            .snaps
            .stat(&rec.chain_id)
            .map_err(|e| e.during("reading layers"))?
            .is_some_and(|s| s.kind == SnapshotKind::Committed);
        let config = rec
            .config_digest
            .parse::<Digest>()
            .ok()
            .and_then(|d| self.ctx.content.read(&d).ok());
        Ok(config.filter(|_| whole))
    }

    /// Config, layers, and the blobs to keep: everything but the names.
    async fn fetch_image(
        &self,
        resolved: &Resolved,
        config_digest: &Digest,
        want: Option<&Platform>,
        remote: &Arc<dyn Remote>,
        out: &Out,
    ) -> Result<Made, EngineError> {
        let m = &resolved.manifest;
        let config = remote
            .blob_bytes(&m.config.digest, MAX_CONFIG)
            .await
            .map_err(registry_error)?;
        let doc: ConfigDoc = serde_json::from_slice(&config).map_err(|e| {
            EngineError::invalid(format!("invalid image config {}: {e}", m.config.digest))
        })?;
        check_os(&doc.platform.os)?;
        if let Some(p) = want {
            check_os(&p.os)?;
        }
        let plans = layers::plans(m, &doc.rootfs.diff_ids)?;
        let Some(top) = plans.last() else {
            return Err(EngineError::not_implemented(
                "images without layers are not supported in Wharf",
            ));
        };
        let chain_id = top.chain.to_string();
        let fetched = Fetcher {
            ctx: self.ctx.clone(),
            remote: remote.clone(),
            out: out.clone(),
            max_downloads: self.ctx.registry.max_concurrent_downloads,
        }
        .fetch(&plans)
        .await?;
        tracing::debug!(downloaded = fetched.downloaded, "pull: layers in");
        // The blobs (verified against their digests) before the record that names them: a
        // crash in between leaves blobs no image names, removed at the next start.
        let ctx = self.ctx.clone();
        let image = resolved.image.clone();
        let index = resolved.index.clone();
        let (cfg, cfg_digest) = (config.clone(), config_digest.clone());
        let manifest_digest = layers::store_digest(&image.digest)?;
        let index_digest = index
            .as_ref()
            .map(|i| layers::store_digest(&i.digest))
            .transpose()?;
        let md = manifest_digest.clone();
        tokio::task::spawn_blocking(move || -> Result<(), wharf_storage::StorageError> {
            ctx.content.ingest(&cfg[..], Some(&cfg_digest))?;
            ctx.content.ingest(&image.bytes[..], Some(&md))?;
            if let (Some(i), Some(d)) = (index, index_digest) {
                ctx.content.ingest(&i.bytes[..], Some(&d))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| e.during("storing the image"))?
        .map_err(|e| e.during("storing the image"))?;
        Ok(Made {
            record: ImageRecord {
                id: config_digest.to_string(),
                manifest_digest: manifest_digest.to_string(),
                config_digest: config_digest.to_string(),
                chain_id,
                size: fetched.size as i64,
                created: crate::timefmt::now_rfc3339(),
            },
            config: config.to_vec(),
        })
    }

    /// The record (when the pull made the image) and its names, in one transaction, as
    /// dockerd's `pullTag` names it; whether the name now points somewhere new.
    async fn record(
        &self,
        r: &Reference,
        image_id: &str,
        made: Option<Made>,
        resolved: &Resolved,
        by_digest: bool,
    ) -> Result<bool, EngineError> {
        let asked = resolved.index.as_ref().unwrap_or(&resolved.image);
        let digest_name =
            reference::familiar_key(r.clone().trim().with_digest(asked.digest.clone()));
        let tag_name = (!by_digest).then(|| reference::familiar_key(r.clone()));
        let db = self.ctx.db.clone();
        let id = image_id.to_owned();
        tokio::task::spawn_blocking(move || -> Result<bool, EngineError> {
            let old = match &tag_name {
                Some(t) => db.resolve_tag(t),
                None => db.resolve_repo_digest(&digest_name),
            }
            .map_err(|e| e.during("reading image names"))?;
            let updated = old.as_deref() != Some(id.as_str());
            let (record, save) = match &made {
                Some(m) => (m.record.clone(), true),
                None => (
                    ImageRecord {
                        id: id.clone(),
                        manifest_digest: String::new(),
                        config_digest: String::new(),
                        chain_id: String::new(),
                        size: 0,
                        created: String::new(),
                    },
                    false,
                ),
            };
            // Up to date: only a digest it did not have yet. Otherwise the tag moves here; a
            // digest asked for by name moves too, one met through a tag is added if new.
            let tag = if updated { tag_name.as_deref() } else { None };
            db.put_pulled_image(&record, save, tag, Some(&digest_name), updated && by_digest)
                .map_err(|e| e.during("saving the image"))?;
            Ok(updated)
        })
        .await
        .map_err(|e| e.during("saving the image"))?
    }
}
