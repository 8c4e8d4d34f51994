//! The images service: import, resolve, list, inspect, history, tag, remove.
//!
//! An image is an OCI manifest and config in the content store, one committed snapshot per
//! layer chain, a row in `images` keyed by the config digest (the image ID, as in Docker) and
//! any number of names: rows in `tags` (`busybox:latest`) and, for a pulled image, in
//! `repo_digests` (`busybox@sha256:...`, what the registry served; the crate `distribution`
//! writes them).

pub mod filters;
pub(crate) mod ingest;
mod recover;
pub mod reference;

use crate::ctx::Ctx;
use crate::error::{Cause, EngineError};
use crate::{ids, timefmt};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use wharf_api::container::{ContainerConfig, GraphDriver};
use wharf_api::image::{HistoryItem, ImageDeleteItem, ImageInspect, ImageSummary, RootFs};
use wharf_backend::{ImportOptions, ListImagesOptions};
use wharf_storage::{Digest, ImageRecord};

/// The parts of an OCI image config Wharf reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfigDoc {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: ContainerConfig,
    /// The container a commit was made from; absent from other images.
    #[serde(default)]
    pub container: Option<String>,
    /// Docker's legacy `container_config`; absent from imported and OCI images.
    #[serde(default)]
    pub container_config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: RootFsDoc,
    #[serde(default)]
    pub history: Vec<HistoryDoc>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootFsDoc {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryDoc {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

pub struct ResolvedImage {
    pub record: ImageRecord,
    pub config: ImageConfigDoc,
}

pub struct ImageService {
    ctx: Arc<Ctx>,
}

fn internal(what: &str, e: impl Cause) -> EngineError {
    e.during(what)
}

fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

impl ImageService {
    pub fn new(ctx: Arc<Ctx>) -> ImageService {
        ImageService { ctx }
    }

    fn load(&self, record: ImageRecord) -> Result<ResolvedImage, EngineError> {
        let digest: Digest = record
            .config_digest
            .parse()
            .map_err(|e| internal("image config digest", e))?;
        let bytes = self
            .ctx
            .content
            .read(&digest)
            .map_err(|e| internal("reading image config", e))?;
        let config: ImageConfigDoc =
            serde_json::from_slice(&bytes).map_err(|e| internal("parsing image config", e))?;
        Ok(ResolvedImage { record, config })
    }

    fn record_for(&self, name: &str) -> Result<Option<ImageRecord>, EngineError> {
        let db = &self.ctx.db;
        if let Ok(r) = reference::normalize(name) {
            let id = if reference::is_digest_name(&r) {
                db.resolve_repo_digest(&r)
            } else {
                db.resolve_tag(&r)
            };
            if let Some(id) = id.map_err(|e| internal("reading image names", e))? {
                return db.get_image(&id).map_err(|e| internal("reading images", e));
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if is_hex(hex) {
            let hits = db
                .find_images_by_prefix(&format!("sha256:{hex}"))
                .map_err(|e| internal("reading images", e))?;
            match hits.len() {
                0 => {}
                1 => return Ok(hits.into_iter().next()),
                _ => {
                    return Err(EngineError::invalid(format!(
                        "Multiple IDs found with provided prefix: {name}"
                    )))
                }
            }
        }
        Ok(None)
    }

    fn not_found(name: &str) -> EngineError {
        let shown = if is_hex(name.strip_prefix("sha256:").unwrap_or(name)) {
            name.to_string()
        } else {
            reference::normalize(name).unwrap_or_else(|_| name.to_string())
        };
        EngineError::no_such_image(&shown)
    }

    /// Tag, full ID, or unique ID prefix → the image.
    pub fn resolve(&self, name: &str) -> Result<ResolvedImage, EngineError> {
        match self.record_for(name)? {
            Some(r) => self.load(r),
            None => Err(Self::not_found(name)),
        }
    }

    /// The image's repository digests (`busybox@sha256:...`), Docker's `RepoDigests`.
    pub fn repo_digests(&self, id: &str) -> Result<Vec<String>, EngineError> {
        self.ctx
            .db
            .repo_digests_for(id)
            .map_err(|e| internal("reading repository digests", e))
    }

    /// Every name of an image, as dockerd's reference store lists them: tags, then digests.
    fn names_of(&self, id: &str) -> Result<Vec<String>, EngineError> {
        let mut names = self
            .ctx
            .db
            .tags_for(id)
            .map_err(|e| internal("reading tags", e))?;
        names.extend(self.repo_digests(id)?);
        Ok(names)
    }

    /// The image `id` was committed from (dockerd's `Parent`), empty for any other.
    pub fn parent_of(&self, id: &str) -> String {
        self.ctx.db.parent_of(id).ok().flatten().unwrap_or_default()
    }

    pub fn size_of(&self, id: &str) -> i64 {
        self.ctx
            .db
            .get_image(id)
            .ok()
            .flatten()
            .map(|r| r.size)
            .unwrap_or(0)
    }

    pub fn count(&self) -> usize {
        self.ctx.db.list_images().map(|l| l.len()).unwrap_or(0)
    }

    /// Imports a tar as a one-layer image. Runs on a blocking thread: it is all disk I/O.
    /// `cancel` is raised when the client goes away: the import then stops within a read,
    /// removes what it made and tags nothing.
    pub fn import_blocking(
        &self,
        opts: &ImportOptions,
        body: impl std::io::Read,
        cancel: &wharf_storage::Cancel,
    ) -> Result<String, EngineError> {
        let tag_ref = if opts.repo.is_empty() {
            None
        } else {
            let full = if opts.tag.is_empty() {
                opts.repo.clone()
            } else {
                format!("{}:{}", opts.repo, opts.tag)
            };
            Some(
                reference::tag_reference(&full, "cannot import digest reference")
                    .map_err(EngineError::invalid)?,
            )
        };
        let (os, arch, variant) = import_platform(&opts.platform)?;
        // dockerd's: the changes applied to an empty config, every field of it written.
        let mut cfg = ContainerConfig::default();
        crate::commit::dialect::apply(&mut cfg, &opts.changes).map_err(EngineError::invalid)?;
        let cfg = serde_json::to_value(&cfg).map_err(|e| internal("encoding image config", e))?;

        let started = std::time::Instant::now();
        let how = wharf_storage::LayerIngest {
            policy: &self.ctx.ingest,
            cancel,
            expected_blob: None,
        };
        let layer =
            wharf_storage::import_layer(&self.ctx.content, &self.ctx.snaps, body, None, how)
                .map_err(|e| ingest::layer_error("importing the image", e, started))?;
        crate::failpoint::hit(&self.ctx.exec_root, crate::failpoint::IMPORT_LAYER_STORED);
        let now = timefmt::now_rfc3339();
        let comment = if opts.message.is_empty() {
            "Imported from -".to_string()
        } else {
            opts.message.clone()
        };
        let mut config = json!({
            "architecture": arch,
            "os": os,
            "created": now,
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]},
            "history": [{"created": now, "created_by": "", "comment": comment}],
        });
        if let (Some(v), Some(obj)) = (variant, config.as_object_mut()) {
            obj.insert("variant".into(), json!(v));
        }
        let config_bytes =
            serde_json::to_vec(&config).map_err(|e| internal("encoding image config", e))?;
        let config_digest = self
            .ctx
            .content
            .put_bytes(&config_bytes)
            .map_err(|e| internal("storing image config", e))?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.to_string(),
                "size": config_bytes.len(),
            },
            "layers": [{
                "mediaType": layer.media_type,
                "digest": layer.blob.to_string(),
                "size": layer.blob_size,
            }],
        });
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|e| internal("encoding manifest", e))?;
        let manifest_digest = self
            .ctx
            .content
            .put_bytes(&manifest_bytes)
            .map_err(|e| internal("storing manifest", e))?;
        let id = config_digest.to_string();
        let record = ImageRecord {
            id: id.clone(),
            manifest_digest: manifest_digest.to_string(),
            config_digest: id.clone(),
            chain_id: layer.chain_id.to_string(),
            size: layer.size as i64,
            created: now,
        };
        crate::failpoint::hit(&self.ctx.exec_root, crate::failpoint::IMPORT_BLOBS_STORED);
        // The record and its tag in one transaction: a crash leaves the tagged image or
        // nothing (the blobs and the layer without a record are removed at the next start,
        // `recover`).
        self.ctx
            .db
            .put_image_tagged(&record, tag_ref.as_deref())
            .map_err(|e| internal("saving the image", e))?;
        let labels: Option<BTreeMap<String, String>> = config
            .pointer("/config/Labels")
            .and_then(|l| serde_json::from_value(l.clone()).ok());
        // dockerd's order and names: the tag (named by it), then the import (named by the ID).
        if let Some(r) = tag_ref {
            self.ctx.events.image("tag", &id, &r, labels.as_ref());
        }
        self.ctx.events.image("import", &id, &id, labels.as_ref());
        Ok(id)
    }

    fn labels(cfg: &ImageConfigDoc) -> Option<BTreeMap<String, String>> {
        cfg.config.labels.clone()
    }

    fn created_unix(img: &ResolvedImage) -> i64 {
        img.config
            .created
            .as_deref()
            .map(timefmt::unix_seconds)
            .unwrap_or_else(|| timefmt::unix_seconds(&img.record.created))
    }

    /// The creation time to the nanosecond: `before`/`since` compare it whole, as dockerd does,
    /// so two images made within one second still have an order.
    fn created_nanos(img: &ResolvedImage) -> i128 {
        let t = img.config.created.as_deref().unwrap_or(&img.record.created);
        timefmt::parse_rfc3339(t)
            .and_then(|t| t.timestamp_nanos_opt())
            .map_or(0, i128::from)
    }

    pub fn list(&self, opts: &ListImagesOptions) -> Result<Vec<ImageSummary>, EngineError> {
        let f = &opts.filters;
        f.check(&filters::LIST_FILTERS)?;
        // moby folds every `before` and `until` into the oldest bound and every `since` into
        // the newest.
        let mut before: Option<i128> = None;
        for n in f.get("before") {
            let t = Self::created_nanos(&self.resolve(n)?);
            before = Some(before.map_or(t, |b| b.min(t)));
        }
        for v in f.get("until") {
            let t = filters::until_seconds(v, chrono::Utc::now()).map_err(EngineError::invalid)?;
            let t = (t * 1e9) as i128;
            before = Some(before.map_or(t, |b| b.min(t)));
        }
        let mut since: Option<i128> = None;
        for n in f.get("since") {
            let t = Self::created_nanos(&self.resolve(n)?);
            since = Some(since.map_or(t, |s| s.max(t)));
        }
        let dangling = if f.contains("dangling") {
            Some(f.bool_or_default("dangling", false)?)
        } else {
            None
        };
        let records = self
            .ctx
            .db
            .list_images()
            .map_err(|e| internal("reading images", e))?;
        let mut out = Vec::new();
        for rec in records {
            let tags = self
                .ctx
                .db
                .tags_for(&rec.id)
                .map_err(|e| internal("reading tags", e))?;
            let digests = self.repo_digests(&rec.id)?;
            let img = self.load(rec)?;
            let created = Self::created_unix(&img);
            // dockerd's: dangling means untagged (a pulled image may keep its digests);
            // `dangling=false` drops only images without any name.
            match dangling {
                Some(true) if !tags.is_empty() => continue,
                Some(false) if tags.is_empty() && digests.is_empty() => continue,
                _ => {}
            }
            let exact = Self::created_nanos(&img);
            if before.is_some_and(|b| exact >= b) || since.is_some_and(|s| exact <= s) {
                continue;
            }
            let labels = Self::labels(&img.config).unwrap_or_default();
            if !f.match_labels(&labels) {
                continue;
            }
            let refs = f.get("reference");
            let matching = |names: &[String]| -> Vec<String> {
                names
                    .iter()
                    .filter(|t| {
                        refs.is_empty()
                            || refs.iter().any(|p| {
                                reference::glob_match(p, t)
                                    || reference::glob_match(p, reference::repository_of(t))
                            })
                    })
                    .cloned()
                    .collect()
            };
            let shown_tags = matching(&tags);
            let shown_digests = matching(&digests);
            if !refs.is_empty() && shown_tags.is_empty() && shown_digests.is_empty() {
                continue;
            }
            out.push(ImageSummary {
                containers: -1,
                created,
                id: img.record.id.clone(),
                labels: Self::labels(&img.config),
                parent_id: self.parent_of(&img.record.id),
                repo_digests: shown_digests,
                repo_tags: shown_tags,
                shared_size: -1,
                size: img.record.size,
                virtual_size: img.record.size,
            });
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.created));
        Ok(out)
    }

    pub fn inspect(&self, name: &str) -> Result<ImageInspect, EngineError> {
        let img = self.resolve(name)?;
        let tags = self
            .ctx
            .db
            .tags_for(&img.record.id)
            .map_err(|e| internal("reading tags", e))?;
        let comment = img
            .config
            .history
            .last()
            .and_then(|h| h.comment.clone())
            .unwrap_or_default();
        let upper = self
            .ctx
            .snaps
            .upper_dir(&img.record.chain_id)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut gd = BTreeMap::new();
        gd.insert("UpperDir".to_string(), upper);
        Ok(ImageInspect {
            id: img.record.id.clone(),
            repo_tags: tags,
            repo_digests: self.repo_digests(&img.record.id)?,
            parent: self.parent_of(&img.record.id),
            comment,
            created: img
                .config
                .created
                .clone()
                .unwrap_or_else(|| img.record.created.clone()),
            // dockerd gives an imported image an empty Container and a zero ContainerConfig.
            container: Some(img.config.container.clone().unwrap_or_default()),
            container_config: Some(img.config.container_config.clone().unwrap_or_default()),
            docker_version: String::new(),
            author: img.config.author.clone().unwrap_or_default(),
            config: img.config.config.clone(),
            architecture: img.config.architecture.clone(),
            variant: img.config.variant.clone().unwrap_or_default(),
            os: img.config.os.clone(),
            size: img.record.size,
            virtual_size: None,
            graph_driver: GraphDriver {
                data: gd,
                name: crate::STORAGE_DRIVER.to_string(),
            },
            root_fs: RootFs {
                kind: "layers".into(),
                layers: img.config.rootfs.diff_ids.clone(),
            },
            metadata: json!({"LastTagTime": timefmt::ZERO_TIME}),
        })
    }

    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>, EngineError> {
        let img = self.resolve(name)?;
        let n = img.config.history.len();
        // dockerd names the entries from the newest down by walking the image's parents, one
        // image per entry (a committed image's second entry is its parent's, with its tags);
        // the rest are `<missing>`.
        let mut named: Vec<(String, Vec<String>)> = Vec::new();
        let mut next = Some(img.record.clone());
        while let Some(rec) = next.take() {
            if named.len() == n {
                break;
            }
            let tags = self
                .ctx
                .db
                .tags_for(&rec.id)
                .map_err(|e| internal("reading tags", e))?;
            let parent = self.parent_of(&rec.id);
            named.push((rec.id, tags));
            if !parent.is_empty() {
                next = self.ctx.db.get_image(&parent).ok().flatten();
            }
        }
        // The top entry's layer is the image's own: all of it, or what it adds to its parent.
        let parent_size = match self.parent_of(&img.record.id) {
            p if p.is_empty() => 0,
            p => self.size_of(&p),
        };
        let own_size = (img.record.size - parent_size).max(0);
        let mut out = Vec::new();
        for (i, h) in img.config.history.iter().enumerate().rev() {
            let from_top = n - 1 - i;
            let (id, tags) = match named.get(from_top) {
                Some((id, tags)) => (id.clone(), (!tags.is_empty()).then(|| tags.clone())),
                None => ("<missing>".to_string(), None),
            };
            out.push(HistoryItem {
                id,
                created: h.created.as_deref().map(timefmt::unix_seconds).unwrap_or(0),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags,
                size: if h.empty_layer || from_top != 0 {
                    0
                } else {
                    own_size
                },
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        Ok(out)
    }

    pub fn tag(&self, name: &str, repo: &str, tag: &str) -> Result<(), EngineError> {
        let img = self.resolve(name)?;
        let full = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        let r = reference::tag_reference(&full, "refusing to create a tag with a digest reference")
            .map_err(EngineError::invalid)?;
        self.ctx
            .db
            .set_tag(&r, &img.record.id)
            .map_err(|e| internal("tagging", e))?;
        self.ctx.events.image(
            "tag",
            &img.record.id,
            &r,
            Self::labels(&img.config).as_ref(),
        );
        Ok(())
    }

    /// `users`: containers created from each image, (id, running).
    ///
    /// Without `no_prune`, a deleted image's parent (the image a commit was made from) goes
    /// too when nothing names or uses it and it has no other child, and so on up, as
    /// dockerd's prune of parent images.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        no_prune: bool,
        users: &dyn Fn(&str) -> Vec<(String, bool)>,
    ) -> Result<Vec<ImageDeleteItem>, EngineError> {
        let id = self.record_for(name)?.map(|r| r.id).unwrap_or_default();
        let labels = self.resolve(&id).ok().and_then(|i| Self::labels(&i.config));
        let parent = self.parent_of(&id);
        let mut items = self.remove_inner(name, force, users)?;
        let deleted = items
            .iter()
            .any(|i| matches!(i, ImageDeleteItem::Deleted(d) if *d == id));
        if deleted && !no_prune {
            self.prune_parents(parent, users, &mut items);
        }
        // dockerd names both by the image ID; a deleted image has no labels left to show.
        for item in &items {
            match item {
                ImageDeleteItem::Untagged(_) => {
                    self.ctx.events.image("untag", &id, &id, labels.as_ref())
                }
                ImageDeleteItem::Deleted(d) => self.ctx.events.image("delete", d, d, None),
            }
        }
        Ok(items)
    }

    /// Deletes `parent` and its own parents while each is unnamed, unused and childless;
    /// stops quietly at the first that is not (dockerd's quiet prune).
    fn prune_parents(
        &self,
        mut parent: String,
        users: &dyn Fn(&str) -> Vec<(String, bool)>,
        items: &mut Vec<ImageDeleteItem>,
    ) {
        while !parent.is_empty() {
            let Ok(Some(rec)) = self.ctx.db.get_image(&parent) else {
                return;
            };
            let unnamed = self.names_of(&rec.id).is_ok_and(|n| n.is_empty());
            let childless = self.ctx.db.children_of(&rec.id).is_ok_and(|c| c.is_empty());
            if !unnamed || !childless || !users(&rec.id).is_empty() {
                return;
            }
            let next = self.parent_of(&rec.id);
            if self.delete_image(&rec).is_err() {
                return;
            }
            items.push(ImageDeleteItem::Deleted(rec.id.clone()));
            parent = next;
        }
    }

    fn remove_inner(
        &self,
        name: &str,
        force: bool,
        users: &dyn Fn(&str) -> Vec<(String, bool)>,
    ) -> Result<Vec<ImageDeleteItem>, EngineError> {
        let db = &self.ctx.db;
        let rec = self
            .record_for(name)?
            .ok_or_else(|| Self::not_found(name))?;
        // Tags and repository digests are names alike: `rmi busybox@sha256:...` removes that
        // digest as `rmi busybox:1` removes that tag.
        let names = self.names_of(&rec.id)?;
        let by_name = reference::normalize(name)
            .ok()
            .filter(|r| names.contains(r));
        let mut out = Vec::new();
        let using = users(&rec.id);
        let short = ids::short(&rec.id).to_string();
        let untagged = |names: &[String]| -> Vec<ImageDeleteItem> {
            names
                .iter()
                .cloned()
                .map(ImageDeleteItem::Untagged)
                .collect()
        };

        if let Some(r) = by_name {
            if !force && is_single_reference(&names) {
                if let Some((cid, _)) = using.first() {
                    return Err(EngineError::conflict(format!(
                        "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {short}",
                        ids::short(cid)
                    )));
                }
            }
            // dockerd's rule: a repository's last tag takes that repository's digests along.
            let mut gone = vec![r.clone()];
            if !reference::is_digest_name(&r) {
                let repo = reference::repository_of(&r);
                let tag_left = names.iter().any(|n| {
                    *n != r && !reference::is_digest_name(n) && reference::repository_of(n) == repo
                });
                if !tag_left {
                    gone.extend(
                        names
                            .iter()
                            .filter(|n| {
                                reference::is_digest_name(n) && reference::repository_of(n) == repo
                            })
                            .cloned(),
                    );
                }
            }
            // Other names left, or (forced) containers still using it: only these names go,
            // as dockerd keeps an image a running container uses. (dockerd deletes it when the
            // users are all stopped, its layer store keeping their layers; ours would delete
            // them.)
            // An image with children stays too (dockerd's quiet conflict): only the name goes.
            let has_children = !db
                .children_of(&rec.id)
                .map_err(|e| internal("reading images", e))?
                .is_empty();
            if names.iter().any(|n| !gone.contains(n)) || !using.is_empty() || has_children {
                db.remove_references(&gone)
                    .map_err(|e| internal("untagging", e))?;
                return Ok(untagged(&gone));
            }
            // Its last names: deleting the record below removes them in the same statement,
            // so a crash cannot leave the image unnamed but not deleted.
            out.extend(untagged(&gone));
        } else {
            if !db
                .children_of(&rec.id)
                .map_err(|e| internal("reading images", e))?
                .is_empty()
            {
                return Err(EngineError::conflict(format!(
                    "conflict: unable to delete {short} (cannot be forced) - image has dependent child images"
                )));
            }
            if let Some((cid, running)) = using.first() {
                let how = if *running {
                    "cannot be forced"
                } else {
                    "must be forced"
                };
                let state = if *running { "running" } else { "stopped" };
                if *running || !force {
                    return Err(EngineError::conflict(format!(
                        "conflict: unable to delete {short} ({how}) - image is being used by {state} container {}",
                        ids::short(cid)
                    )));
                }
            }
            if names.len() > 1 && !is_single_reference(&names) && !force {
                return Err(EngineError::conflict(format!(
                    "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                )));
            }
            out.extend(untagged(&names));
            if !using.is_empty() {
                // Kept for its containers: only the names go, all of them or none.
                db.remove_references(&names)
                    .map_err(|e| internal("untagging", e))?;
                return Ok(out);
            }
            // Deleting the record takes its names with it, in the same statement.
        }
        self.delete_image(&rec)?;
        out.push(ImageDeleteItem::Deleted(rec.id.clone()));
        Ok(out)
    }

    fn delete_image(&self, rec: &ImageRecord) -> Result<(), EngineError> {
        let db = &self.ctx.db;
        // The manifests and indexes its repository digests name (kept since its pull).
        let pulled: Vec<String> = self
            .repo_digests(&rec.id)
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.split_once('@').map(|(_, d)| d.to_string()))
            .collect();
        db.delete_image(&rec.id)
            .map_err(|e| internal("deleting the image", e))?;
        // The record was the image: what follows only frees space, and what a crash keeps
        // from it is removed at the next start (`recover`).
        crate::failpoint::hit(&self.ctx.exec_root, crate::failpoint::RMI_RECORD_DELETED);
        let image_tops: Option<std::collections::HashSet<String>> = db
            .list_images()
            .ok()
            .map(|l| l.into_iter().map(|i| i.chain_id).collect());
        let others_share_chain = image_tops
            .as_ref()
            .is_none_or(|tops| tops.contains(&rec.chain_id));
        let layer_blobs = self.layer_blobs(&rec.manifest_digest);
        if let Ok(m) = rec.manifest_digest.parse::<Digest>() {
            let _ = self.ctx.content.delete(&m);
        }
        if let Ok(c) = rec.config_digest.parse::<Digest>() {
            let _ = self.ctx.content.delete(&c);
        }
        // An index another image's digest still names stays (two platforms of one index).
        let still_named: Vec<String> = db
            .list_repo_digests()
            .map(|l| l.into_iter().map(|(n, _)| n).collect())
            .unwrap_or_default();
        for d in pulled {
            let named = still_named.iter().any(|n| n.ends_with(&format!("@{d}")));
            if let (false, Ok(d)) = (named, d.parse::<Digest>()) {
                let _ = self.ctx.content.delete(&d);
            }
        }
        if !others_share_chain {
            // Fails harmlessly while a container's writable layer still sits on it.
            if self.remove_chain(&rec.chain_id, image_tops.unwrap_or_default()) {
                // A blob another image's manifest names stays: a pull that found its layer
                // already here named the same blob, which its push needs.
                let kept: std::collections::HashSet<Digest> = db
                    .list_images()
                    .unwrap_or_default()
                    .iter()
                    .flat_map(|i| self.layer_blobs(&i.manifest_digest))
                    .collect();
                for b in layer_blobs.into_iter().filter(|b| !kept.contains(b)) {
                    let _ = self.ctx.content.delete(&b);
                }
            }
        }
        Ok(())
    }

    /// Removes the layer `top` and then each parent that nothing else stands on: no other
    /// layer or container's writable layer (the snapshotter refuses a snapshot with
    /// children) and no image whose top layer it is, as dockerd's layer store releases a
    /// chain. Whether `top` went.
    fn remove_chain(&self, top: &str, image_tops: std::collections::HashSet<String>) -> bool {
        let snaps = &self.ctx.snaps;
        let mut next = Some(top.to_owned());
        let mut first = true;
        while let Some(key) = next.take() {
            if !first && image_tops.contains(&key) {
                break;
            }
            let parent = match snaps.stat(&key) {
                Ok(Some(i)) => i.parent,
                _ => break,
            };
            if snaps.remove(&key).is_err() {
                break;
            }
            first = false;
            next = parent;
        }
        !first
    }

    /// The layer blobs a stored manifest names.
    fn layer_blobs(&self, manifest_digest: &str) -> Vec<Digest> {
        let Ok(m) = manifest_digest.parse::<Digest>() else {
            return Vec::new();
        };
        let Some(v) = self
            .ctx
            .content
            .read(&m)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            return Vec::new();
        };
        v["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["digest"].as_str()?.parse::<Digest>().ok())
            .collect()
    }
}

/// dockerd's `isSingleReference`: all names of one repository, at most one of them a tag.
fn is_single_reference(names: &[String]) -> bool {
    if names.len() <= 1 {
        return names.len() == 1;
    }
    let mut tag: Option<&String> = None;
    let mut digest_repos = std::collections::BTreeSet::new();
    for n in names {
        if reference::is_digest_name(n) {
            digest_repos.insert(reference::repository_of(n));
        } else if tag.is_none() {
            tag = Some(n);
        } else {
            return false;
        }
    }
    let single = tag.unwrap_or(&names[0]);
    digest_repos.len() == 1 && digest_repos.contains(reference::repository_of(single))
}

/// The platform an import is labelled with, as dockerd's `ImportImage` does: the `platform`
/// parameter (containerd's `platforms.Parse` forms: `os`, `arch`, `os/arch`, `os/arch/variant`)
/// or the daemon's own; only Linux is supported.
fn import_platform(p: &str) -> Result<(String, String, Option<String>), EngineError> {
    let host_arch = std::env::consts::ARCH
        .replace("x86_64", "amd64")
        .replace("aarch64", "arm64");
    if p.trim().is_empty() {
        return Ok(("linux".into(), host_arch, None));
    }
    let bad = || {
        EngineError::invalid(format!(
            "{p:?}: unknown operating system or architecture: invalid argument"
        ))
    };
    let lower = p.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    const OSES: &[&str] = &[
        "linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix",
        "android", "ios", "js", "wasip1",
    ];
    let (os, arch, variant) = match parts.as_slice() {
        [one] if OSES.contains(one) => (one.to_string(), host_arch, None),
        [one] => ("linux".to_string(), one.to_string(), None),
        [os, arch] => (os.to_string(), arch.to_string(), None),
        [os, arch, variant] => (os.to_string(), arch.to_string(), Some(variant.to_string())),
        _ => return Err(bad()),
    };
    if arch.is_empty() || os.is_empty() || variant.as_deref() == Some("") {
        return Err(bad());
    }
    // containerd's normalisation of architecture names.
    let (arch, variant) = match (arch.as_str(), variant) {
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64".to_string(), v.filter(|v| v != "v1")),
        ("aarch64" | "arm64", v) => ("arm64".to_string(), v.filter(|v| v != "v8")),
        ("armhf", _) => ("arm".to_string(), Some("v7".to_string())),
        ("armel", _) => ("arm".to_string(), Some("v6".to_string())),
        ("arm", v) => (
            "arm".to_string(),
            Some(v.unwrap_or_else(|| "v7".to_string())),
        ),
        ("i386" | "386", v) => ("386".to_string(), v),
        (a, v) => (a.to_string(), v),
    };
    if !OSES.contains(&os.as_str()) {
        return Err(bad());
    }
    if os != "linux" {
        return Err(EngineError::invalid("operating system is not supported"));
    }
    Ok((os, arch, variant))
}

#[cfg(test)]
mod tests {
    use super::{import_platform, is_single_reference};

    #[test]
    fn single_references_as_dockerd_counts_them() {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(!is_single_reference(&[]));
        assert!(is_single_reference(&v(&["a:1"])));
        assert!(is_single_reference(&v(&["a@sha256:1"])));
        assert!(is_single_reference(&v(&[
            "a:1",
            "a@sha256:1",
            "a@sha256:2"
        ])));
        assert!(!is_single_reference(&v(&["a:1", "a:2"])));
        assert!(!is_single_reference(&v(&["a:1", "b@sha256:1"])));
        assert!(!is_single_reference(&v(&["a@sha256:1", "b@sha256:1"])));
    }

    #[test]
    fn import_platforms_as_containerd_parses_them() {
        let p = |s: &str| import_platform(s).map_err(|e| e.message());
        assert_eq!(
            p("linux/arm64").unwrap(),
            ("linux".into(), "arm64".into(), None)
        );
        assert_eq!(
            p("linux/arm/v6").unwrap(),
            ("linux".into(), "arm".into(), Some("v6".into()))
        );
        assert_eq!(p("x86_64").unwrap().1, "amd64");
        assert_eq!(p("linux").unwrap().0, "linux");
        assert_eq!(p("").unwrap().0, "linux");
        assert_eq!(
            p("windows/amd64").unwrap_err(),
            "operating system is not supported"
        );
        assert!(p("plan9/amd64").is_err());
        assert!(p("linux/").is_err());
    }
}
