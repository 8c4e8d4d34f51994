//! Which images a save writes, and under which tags, as dockerd's `parseNames` reads the names:
//! an ID (full or a unique prefix) or a digest reference names the image alone; `repo:tag`
//! names the image with that tag; a bare repository names every image of it, each with its
//! tags in that repository.

use crate::ctx::Ctx;
use crate::error::{Cause, EngineError};
use crate::images::{reference, ImageService};
use wharf_distribution::Reference;

/// One image of a save, with the tags it is written under (`busybox:latest`, familiar form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Selected {
    pub id: String,
    pub tags: Vec<String>,
}

/// dockerd's answer for a `repo:tag` or `repo@digest` nobody has.
pub(super) const NO_REFERENCE: &str = "reference does not exist";

fn is_full_id(name: &str) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    hex.len() == 64
        && hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

/// The images `names` select, in the order first named, each once.
pub(super) fn select(
    ctx: &Ctx,
    images: &ImageService,
    names: &[String],
) -> Result<Vec<Selected>, EngineError> {
    let mut out: Vec<Selected> = Vec::new();
    let mut add = |id: String, tag: Option<String>| {
        let i = match out.iter().position(|s| s.id == id) {
            Some(i) => i,
            None => {
                out.push(Selected {
                    id,
                    tags: Vec::new(),
                });
                out.len() - 1
            }
        };
        if let Some(t) = tag {
            if !out[i].tags.contains(&t) {
                out[i].tags.push(t);
            }
        }
    };
    for name in names {
        let name = name.trim();
        if is_full_id(name) {
            add(images.resolve(name)?.record.id, None);
            continue;
        }
        let r = Reference::parse_normalized_named(name)
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        // `sha256:abc` reads as the repository `sha256` with the tag `abc`: an ID prefix.
        if r.familiar_name() == "sha256" {
            add(images.resolve(name)?.record.id, None);
            continue;
        }
        if r.tag().is_none() && r.digest().is_none() {
            let repo = r.familiar_name();
            let mut found = false;
            for (tag, id) in ctx.db.list_tags().map_err(|e| e.during("reading tags"))? {
                if reference::repository_of(&tag) == repo {
                    found = true;
                    add(id, Some(tag));
                }
            }
            for (digest_name, id) in ctx
                .db
                .list_repo_digests()
                .map_err(|e| e.during("reading repository digests"))?
            {
                if reference::repository_of(&digest_name) == repo {
                    found = true;
                    add(id, None);
                }
            }
            if !found {
                // No such repository: dockerd then looks the name up as an ID prefix, and
                // names it as given when that fails too.
                let id = images.resolve(name).map_err(|e| match e.kind() {
                    wharf_api::ErrorKind::NotFound => EngineError::no_such_image(name),
                    _ => e,
                })?;
                add(id.record.id, None);
            }
            continue;
        }
        let key = reference::familiar_key(r.clone());
        let id = if r.digest().is_some() {
            ctx.db.resolve_repo_digest(&key)
        } else {
            ctx.db.resolve_tag(&key)
        }
        .map_err(|e| e.during("reading image names"))?
        .ok_or_else(|| EngineError::not_found(NO_REFERENCE))?;
        add(id, r.digest().is_none().then_some(key));
    }
    Ok(out)
}
