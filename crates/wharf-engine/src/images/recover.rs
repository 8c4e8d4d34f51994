//! Finishing, at daemon start, what an image operation cut by a crash left.
//!
//! An image is its record (with its tags, saved in one transaction): an import writes its blobs
//! and its layer snapshot first and the record last, and a removal deletes the record first and
//! its files after. So a crash in either leaves only files no record names: blobs and committed
//! layer snapshots that no image (and, for snapshots, no container's writable layer) uses. They
//! are removed here, before anything is served, one `restore:` line each. Half-written files
//! (an ingest's temp file, a half-unpacked `import-tmp-` snapshot, a snapshot dir without its
//! row) are removed earlier, when the stores open.

use super::ImageService;
use std::collections::HashSet;
use wharf_storage::{Digest, SnapshotInfo, SnapshotKind};

impl ImageService {
    /// Removes the blobs and layer snapshots that no image and no container uses. Call once
    /// at start, before serving (no import or removal may run meanwhile).
    pub fn recover(&self) {
        match self.ctx.db.list_images() {
            Ok(images) => {
                self.remove_unused_snapshots(&images);
                self.remove_unused_blobs(&images);
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading images to finish interrupted image operations")
            }
        }
    }

    fn remove_unused_snapshots(&self, images: &[wharf_storage::ImageRecord]) {
        let snaps = &self.ctx.snaps;
        let all = match snaps.list() {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "listing snapshots to finish interrupted image operations");
                return;
            }
        };
        // Every image's top layer and every writable layer (a container's, whatever its
        // record) keeps its whole chain of parents.
        let parent_of = |key: &str| -> Option<String> {
            all.iter()
                .find(|s| s.key == key)
                .and_then(|s| s.parent.clone())
        };
        let mut keep: HashSet<String> = HashSet::new();
        let roots = images.iter().map(|i| i.chain_id.clone()).chain(
            all.iter()
                .filter(|s| s.kind == SnapshotKind::Active)
                .map(|s| s.key.clone()),
        );
        for root in roots {
            let mut next = Some(root);
            while let Some(k) = next {
                if !keep.insert(k.clone()) {
                    break;
                }
                next = parent_of(&k);
            }
        }
        let mut doomed: Vec<&SnapshotInfo> =
            all.iter().filter(|s| !keep.contains(&s.key)).collect();
        // Children before parents: a snapshot with children cannot go.
        while !doomed.is_empty() {
            let leaves: Vec<&SnapshotInfo> = doomed
                .iter()
                .copied()
                .filter(|s| !doomed.iter().any(|c| c.parent.as_deref() == Some(&s.key)))
                .collect();
            if leaves.is_empty() {
                break;
            }
            for s in &leaves {
                match snaps.remove(&s.key) {
                    Ok(()) => {
                        tracing::info!(snapshot = %s.key, "restore: removed a layer no image uses (an image import or removal cut by a crash)")
                    }
                    Err(e) => {
                        tracing::warn!(snapshot = %s.key, error = %e, "removing a layer no image uses")
                    }
                }
            }
            doomed.retain(|s| !leaves.iter().any(|l| l.key == s.key));
        }
    }

    fn remove_unused_blobs(&self, images: &[wharf_storage::ImageRecord]) {
        let content = &self.ctx.content;
        let mut wanted: HashSet<Digest> = HashSet::new();
        for img in images {
            let (Ok(manifest), Ok(config)) = (
                img.manifest_digest.parse::<Digest>(),
                img.config_digest.parse::<Digest>(),
            ) else {
                tracing::warn!(image = %img.id, "an image with an unreadable digest; no blob is removed");
                return;
            };
            // Without its manifest we cannot tell which layer blobs it needs: remove nothing.
            let layers = content
                .read(&manifest)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| {
                    v["layers"].as_array().map(|ls| {
                        ls.iter()
                            .filter_map(|l| l["digest"].as_str()?.parse::<Digest>().ok())
                            .collect::<Vec<_>>()
                    })
                });
            let Some(layers) = layers else {
                tracing::warn!(image = %img.id, "an image whose manifest cannot be read; no blob is removed");
                return;
            };
            wanted.insert(manifest);
            wanted.insert(config);
            wanted.extend(layers);
        }
        // What pulls recorded: a repository digest names the manifest or index the registry
        // served, kept byte for byte for the digest to stay true.
        match self.ctx.db.list_repo_digests() {
            Ok(names) => wanted.extend(
                names
                    .iter()
                    .filter_map(|(n, _)| n.split_once('@')?.1.parse::<Digest>().ok()),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "reading repository digests; no blob is removed");
                return;
            }
        }
        let stored = match content.list() {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "listing blobs to finish interrupted image operations");
                return;
            }
        };
        for d in stored.into_iter().filter(|d| !wanted.contains(d)) {
            match content.delete(&d) {
                Ok(()) => {
                    tracing::info!(blob = %d, "restore: removed a blob no image references (an image import or removal cut by a crash)")
                }
                Err(e) => {
                    tracing::warn!(blob = %d, error = %e, "removing a blob no image references")
                }
            }
        }
    }
}
