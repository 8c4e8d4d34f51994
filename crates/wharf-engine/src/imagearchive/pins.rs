//! What loads in progress count on, so that one load's clean-up never takes what another
//! relies on (two loads of one archive at once find each other's blobs and layers).

use crate::ctx::Ctx;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use wharf_storage::Digest;

/// The blobs and layers (by chain id) loads in progress stored or count on, and how many
/// loads do. A load that fails removes a blob or layer it made only when no other load counts
/// on it: two loads of one archive at once find each other's blobs and layers. A blob it could not remove then is removed
/// when the last load counting on it ends, unless an image names it by then.
#[derive(Debug, Default)]
pub(crate) struct Pins(Mutex<PinsInner>);

#[derive(Debug, Default)]
struct PinsInner {
    counts: HashMap<Digest, usize>,
    /// Blobs a load wanted gone while another counted on them.
    doomed: HashSet<Digest>,
}

impl Pins {
    fn inner(&self) -> std::sync::MutexGuard<'_, PinsInner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn pin(&self, d: &Digest) {
        *self.inner().counts.entry(d.clone()).or_default() += 1;
    }

    /// Whether another load than the caller (who pins it once) counts on `d`.
    pub(super) fn shared(&self, d: &Digest) -> bool {
        self.inner().counts.get(d).is_some_and(|n| *n > 1)
    }

    /// Ends this load's claims; a doomed blob nobody counts on any more goes, unless an image
    /// names it.
    pub(super) fn unpin_all(&self, ctx: &Ctx, ds: &[Digest]) {
        let mut m = self.inner();
        let mut last = Vec::new();
        for d in ds {
            if let Some(n) = m.counts.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    m.counts.remove(d);
                    if m.doomed.remove(d) {
                        last.push(d.clone());
                    }
                }
            }
        }
        if last.is_empty() {
            return;
        }
        // Rare (loads of one archive at once): what images name, read under the lock so that
        // no load pins a doomed blob meanwhile.
        let named = named_blobs(ctx);
        for d in last.iter().filter(|d| !named.contains(*d)) {
            delete(ctx, d);
        }
    }

    /// Deletes each blob no other load pins (this load pins it once); one that another load
    /// counts on is doomed instead.
    pub(super) fn remove_blobs(&self, ctx: &Ctx, blobs: &[Digest]) {
        let mut m = self.inner();
        for d in blobs {
            if m.counts.get(d).is_some_and(|n| *n > 1) {
                m.doomed.insert(d.clone());
                continue;
            }
            delete(ctx, d);
        }
    }
}

fn delete(ctx: &Ctx, d: &Digest) {
    match ctx.content.delete(d) {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => tracing::warn!(blob = %d, error = %e, "load: cannot remove a blob"),
    }
}

/// Every blob an image names: manifests, configs, layers (as `images::recover` counts them).
fn named_blobs(ctx: &Ctx) -> HashSet<Digest> {
    let mut out = HashSet::new();
    for img in ctx.db.list_images().unwrap_or_default() {
        for d in [&img.manifest_digest, &img.config_digest] {
            out.extend(d.parse::<Digest>().ok());
        }
        let layers = img
            .manifest_digest
            .parse::<Digest>()
            .ok()
            .and_then(|m| ctx.content.read(&m).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        if let Some(v) = layers {
            out.extend(
                v["layers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l["digest"].as_str()?.parse::<Digest>().ok()),
            );
        }
    }
    out
}
