//! The new image of a commit: the writable layer stored as a layer on the container's image,
//! a config (dockerd's `NewChildImage`), a manifest, then the record with its parent and tag
//! in one transaction, the commit point. What an error leaves behind is removed before it is
//! answered; what a crash leaves is named by no record, and the next start removes it
//! (`images/recover.rs`).

use crate::ctx::Ctx;
use crate::error::{Cause, EngineError};
use crate::images::ImageService;
use crate::timefmt;
use serde_json::{json, Value};
use wharf_api::container::ContainerConfig;
use wharf_storage::{Digest, ImageRecord, LayerImport};

/// Everything a commit needs to know of its container, read before the layer is.
pub(crate) struct Plan {
    pub container_id: String,
    pub snapshot_key: String,
    /// The image the container was created from: the new image's parent.
    pub image_id: String,
    /// The container's config, dockerd's `container_config`.
    pub container_config: ContainerConfig,
    /// The new image's config.
    pub config: ContainerConfig,
    pub comment: String,
    pub author: String,
    pub tag: Option<String>,
    /// What of the writable layer is not the container's own.
    pub skip: wharf_storage::changes::Skip,
}

fn internal(what: &str, e: impl Cause) -> EngineError {
    e.during(what)
}

fn read_json(ctx: &Ctx, digest: &str, what: &str) -> Result<Value, EngineError> {
    let d: Digest = digest.parse().map_err(|e| internal(what, e))?;
    let bytes = ctx.content.read(&d).map_err(|e| internal(what, e))?;
    serde_json::from_slice(&bytes).map_err(|e| internal(what, e))
}

/// Stores the image; its ID.
pub(crate) fn build(ctx: &Ctx, images: &ImageService, plan: &Plan) -> Result<String, EngineError> {
    let parent = images.resolve(&plan.image_id)?;
    let parent_config = read_json(
        ctx,
        &parent.record.config_digest,
        "reading the image config",
    )?;
    let parent_manifest = read_json(
        ctx,
        &parent.record.manifest_digest,
        "reading the image manifest",
    )?;
    let parent_chain: Option<Digest> = if parent.record.chain_id.is_empty() {
        None
    } else {
        Some(
            parent
                .record
                .chain_id
                .parse()
                .map_err(|e| internal("the image's layers", e))?,
        )
    };
    let upper = ctx
        .snaps
        .upper_dir(&plan.snapshot_key)
        .map_err(|e| EngineError::storage("reading the container's writable layer", e))?;
    let empty = wharf_storage::diff::create::layer_is_empty(&upper, &plan.skip)
        .map_err(|e| EngineError::storage("reading the container's writable layer", e))?;
    let layer = if empty {
        None
    } else {
        let started = std::time::Instant::now();
        let cancel = wharf_storage::Cancel::new();
        let how = wharf_storage::LayerIngest {
            policy: &ctx.ingest,
            cancel: &cancel,
            expected_blob: None,
        };
        let l = wharf_storage::commit_layer(
            &ctx.content,
            &ctx.snaps,
            &plan.snapshot_key,
            parent_chain.as_ref(),
            &plan.skip,
            how,
        )
        .map_err(|e| crate::images::ingest::layer_error("committing the container", e, started))?;
        Some(l)
    };
    // Reached by an empty layer too (nothing stored then), so that every commit passes it.
    crate::failpoint::hit(&ctx.exec_root, crate::failpoint::COMMIT_LAYER_STORED);
    let stored = store(
        ctx,
        plan,
        &parent,
        &parent_config,
        &parent_manifest,
        layer.as_ref(),
    );
    if stored.is_err() {
        if let Some(l) = &layer {
            discard(ctx, l);
        }
    }
    stored
}

fn store(
    ctx: &Ctx,
    plan: &Plan,
    parent: &crate::images::ResolvedImage,
    parent_config: &Value,
    parent_manifest: &Value,
    layer: Option<&LayerImport>,
) -> Result<String, EngineError> {
    let now = timefmt::now_rfc3339();
    let mut diff_ids: Vec<Value> = parent_config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut history: Vec<Value> = parent_config
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut entry = serde_json::Map::new();
    entry.insert("created".into(), json!(now));
    if !plan.author.is_empty() {
        entry.insert("author".into(), json!(plan.author));
    }
    // dockerd's `created_by`: the container's command, as it was given.
    let created_by = plan
        .container_config
        .cmd
        .clone()
        .unwrap_or_default()
        .join(" ");
    if !created_by.is_empty() {
        entry.insert("created_by".into(), json!(created_by));
    }
    if !plan.comment.is_empty() {
        entry.insert("comment".into(), json!(plan.comment));
    }
    match layer {
        Some(l) => diff_ids.push(json!(l.diff_id.to_string())),
        None => {
            entry.insert("empty_layer".into(), json!(true));
        }
    }
    history.push(Value::Object(entry));
    let mut config = json!({
        "architecture": parent.config.architecture,
        "os": parent.config.os,
        "created": now,
        "container": plan.container_id,
        "container_config": plan.container_config,
        "config": plan.config,
        "docker_version": crate::system::WHARF_VERSION,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    if let Some(obj) = config.as_object_mut() {
        if let Some(v) = &parent.config.variant {
            obj.insert("variant".into(), json!(v));
        }
        if !plan.author.is_empty() {
            obj.insert("author".into(), json!(plan.author));
        }
        for k in ["os.version", "os.features"] {
            if let Some(v) = parent_config.get(k) {
                obj.insert(k.into(), v.clone());
            }
        }
    }
    let config_bytes =
        serde_json::to_vec(&config).map_err(|e| internal("encoding image config", e))?;
    let config_digest = ctx
        .content
        .put_bytes(&config_bytes)
        .map_err(|e| internal("storing image config", e))?;
    let mut layers: Vec<Value> = parent_manifest
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(l) = layer {
        layers.push(json!({
            "mediaType": l.media_type,
            "digest": l.blob.to_string(),
            "size": l.blob_size,
        }));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config_bytes.len(),
        },
        "layers": layers,
    });
    let manifest_bytes =
        serde_json::to_vec(&manifest).map_err(|e| internal("encoding manifest", e))?;
    let manifest_digest = ctx
        .content
        .put_bytes(&manifest_bytes)
        .map_err(|e| internal("storing manifest", e))?;
    let id = config_digest.to_string();
    let record = ImageRecord {
        id: id.clone(),
        manifest_digest: manifest_digest.to_string(),
        config_digest: id.clone(),
        chain_id: layer.map_or_else(
            || parent.record.chain_id.clone(),
            |l| l.chain_id.to_string(),
        ),
        size: parent.record.size + layer.map_or(0, |l| l.size as i64),
        created: now,
    };
    crate::failpoint::hit(&ctx.exec_root, crate::failpoint::COMMIT_BLOBS_STORED);
    ctx.db
        .put_child_image(&record, &parent.record.id, plan.tag.as_deref())
        .map_err(|e| internal("saving the image", e))?;
    Ok(id)
}

/// Undoes a stored layer that no image came to name: its snapshot unless an image stands on
/// it (or a layer on it: the snapshotter refuses), its blob unless a manifest names it.
fn discard(ctx: &Ctx, l: &LayerImport) {
    let records = ctx.db.list_images().unwrap_or_default();
    let chain = l.chain_id.to_string();
    if !records.iter().any(|r| r.chain_id == chain) {
        let _ = ctx.snaps.remove(&chain);
    }
    let blob = l.blob.to_string();
    let named = records.iter().any(|r| {
        read_json(ctx, &r.manifest_digest, "reading a manifest")
            .ok()
            .and_then(|m| m.get("layers").and_then(Value::as_array).cloned())
            .is_some_and(|ls| ls.iter().any(|d| d["digest"] == json!(blob)))
    });
    if !named {
        let _ = ctx.content.delete(&l.blob);
    }
}
