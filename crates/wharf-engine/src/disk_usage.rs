//! `GET /system/df`: what images, containers and volumes hold on disk, as dockerd's
//! `SystemDiskUsage` answers it.
//!
//! Images: `docker images`' summaries with `Containers` (how many containers use each) and
//! `SharedSize` (the bytes of its layers that another image also uses) filled in;
//! `LayersSize` is every layer of every image, once. Containers: `ps -a --size`. Volumes: the
//! local ones without options, with `UsageData`. Wharf keeps no build cache: `BuildCache` is
//! `[]` when asked for and `null` otherwise, as dockerd without a builder.

use crate::error::EngineError;
use crate::Engine;
use std::collections::{BTreeMap, HashMap};
use wharf_api::system::DiskUsage;
use wharf_backend::{DiskUsageOptions, ListContainersOptions, ListImagesOptions};

impl Engine {
    pub async fn disk_usage(&self, opts: DiskUsageOptions) -> Result<DiskUsage, EngineError> {
        let mut du = DiskUsage::default();
        let mut per_image: HashMap<String, i64> = HashMap::new();
        if opts.containers || opts.images {
            let all = self
                .containers
                .list(ListContainersOptions {
                    all: true,
                    size: opts.containers,
                    ..Default::default()
                })
                .await?;
            for c in &all {
                *per_image.entry(c.image_id.clone()).or_default() += 1;
            }
            if opts.containers {
                du.containers = Some(all);
            }
        }
        if opts.images {
            let images = self.images.clone();
            let ctx = self.ctx.clone();
            let (list, layers_size) = tokio::task::spawn_blocking(move || {
                let mut list = images.list(&ListImagesOptions::default())?;
                let layers = image_layers(&ctx)?;
                let shared = shared_sizes(&layers);
                for img in &mut list {
                    img.shared_size = shared.get(&img.id).copied().unwrap_or(0);
                }
                Ok::<_, EngineError>((list, layers.total))
            })
            .await
            .map_err(|e| EngineError::internal(format!("disk usage task failed: {e}")))??;
            du.images = Some(
                list.into_iter()
                    .map(|mut i| {
                        i.containers = per_image.get(&i.id).copied().unwrap_or(0);
                        i
                    })
                    .collect(),
            );
            du.layers_size = layers_size;
        }
        if opts.volumes {
            let volumes = self.volumes.clone();
            du.volumes = Some(
                tokio::task::spawn_blocking(move || volumes.local_usage())
                    .await
                    .map_err(|e| EngineError::internal(format!("disk usage task failed: {e}")))??,
            );
        }
        if opts.build_cache {
            du.build_cache = Some(Vec::new());
        }
        Ok(du)
    }
}

/// Each image's layer snapshots (its chain, top to base) and each layer's size.
struct Layers {
    chains: BTreeMap<String, Vec<String>>,
    sizes: HashMap<String, i64>,
    /// Every layer some image uses, counted once.
    total: i64,
}

fn image_layers(ctx: &crate::ctx::Ctx) -> Result<Layers, EngineError> {
    let storage = |op: &'static str| move |e| EngineError::storage(op, e);
    let parents: HashMap<String, Option<String>> = ctx
        .snaps
        .list()
        .map_err(storage("listing layers"))?
        .into_iter()
        .map(|s| (s.key, s.parent))
        .collect();
    let mut chains = BTreeMap::new();
    let mut sizes = HashMap::new();
    for img in ctx.db.list_images().map_err(storage("listing images"))? {
        let mut chain = Vec::new();
        let mut key = Some(img.chain_id.clone()).filter(|k| !k.is_empty());
        while let Some(k) = key {
            if !parents.contains_key(&k) || chain.contains(&k) {
                break;
            }
            if !sizes.contains_key(&k) {
                // A layer that cannot be measured counts as empty rather than fail df.
                let n = ctx.snaps.usage(&k).map_or(0, |n| n as i64);
                sizes.insert(k.clone(), n);
            }
            key = parents.get(&k).cloned().flatten();
            chain.push(k);
        }
        chains.insert(img.id, chain);
    }
    let total = sizes.values().sum();
    Ok(Layers {
        chains,
        sizes,
        total,
    })
}

/// dockerd's `SharedSize`: the bytes of an image's layers that more than one image uses.
fn shared_sizes(l: &Layers) -> HashMap<String, i64> {
    let mut users: HashMap<&str, usize> = HashMap::new();
    for chain in l.chains.values() {
        for k in chain {
            *users.entry(k.as_str()).or_default() += 1;
        }
    }
    l.chains
        .iter()
        .map(|(id, chain)| {
            let shared = chain
                .iter()
                .filter(|k| users.get(k.as_str()).is_some_and(|n| *n > 1))
                .map(|k| l.sizes.get(k).copied().unwrap_or(0))
                .sum();
            (id.clone(), shared)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn shared_size_counts_the_layers_another_image_also_uses() {
        let chain = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        let l = Layers {
            chains: [
                ("a".to_string(), chain(&["a2", "base"])),
                ("b".to_string(), chain(&["b2", "base"])),
                ("c".to_string(), chain(&["c1"])),
            ]
            .into(),
            sizes: [("a2", 5), ("b2", 7), ("base", 100), ("c1", 3)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            total: 115,
        };
        let s = shared_sizes(&l);
        assert_eq!((s["a"], s["b"], s["c"]), (100, 100, 0));
    }
}
