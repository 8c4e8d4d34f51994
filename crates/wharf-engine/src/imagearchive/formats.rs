//! What a loaded archive holds, whichever way it was written: a `manifest.json` (`docker
//! save` of any version ≥ 1.10, skopeo's and podman's `docker-archive`) is read as dockerd
//! reads it; without one, an OCI image layout's `index.json` (skopeo's and podman's
//! `oci-archive`, containerd's export). Both end as the same list of images to store.

use super::save::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use super::spool::Spooled;
use crate::error::EngineError;
use crate::images::reference;
use serde::Deserialize;
use wharf_distribution::manifest::{self, Manifest, Platform};
use wharf_distribution::Reference;
use wharf_storage::Digest;

/// The largest JSON document (manifest, index, config) a load reads into memory.
pub(super) const MAX_DOCUMENT: u64 = 8 << 20;

/// One image of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ToLoad {
    pub config: Digest,
    /// The layers' blobs, base first.
    pub layers: Vec<Digest>,
    /// Tags to point at it (`busybox:latest`).
    pub tags: Vec<String>,
    /// The archive's own manifest (an OCI layout's), kept as the image's.
    pub manifest: Option<Digest>,
}

/// One entry of `manifest.json` (moby's `manifestItem`).
#[derive(Debug, Deserialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

fn bad(what: impl std::fmt::Display) -> EngineError {
    EngineError::invalid(format!("invalid archive: {what}"))
}

/// The images of the archive.
pub(super) fn images(sp: &Spooled) -> Result<Vec<ToLoad>, EngineError> {
    if let Some((d, size)) = sp.top_file("manifest.json")? {
        let bytes = sp.document(&d, size, "manifest.json")?;
        return docker_archive(sp, &bytes);
    }
    if let Some((d, size)) = sp.top_file("index.json")? {
        let bytes = sp.document(&d, size, "index.json")?;
        return oci_layout(sp, &bytes);
    }
    if sp.top_file("repositories")?.is_some() {
        return Err(EngineError::not_implemented(
            "Wharf cannot load archives in the format of Docker before 1.10 (no manifest.json)",
        ));
    }
    Err(bad(
        "neither manifest.json nor index.json found: not an image archive",
    ))
}

/// A `repo:tag` of `manifest.json` as stored (`busybox:latest`), in dockerd's words when
/// it is not one.
fn tag_of(repo_tag: &str) -> Result<String, EngineError> {
    let r = Reference::parse_normalized_named(repo_tag)
        .map_err(|e| EngineError::invalid(e.to_string()))?;
    if r.tag().is_none() || r.digest().is_some() {
        return Err(EngineError::invalid(format!("invalid tag {repo_tag:?}")));
    }
    Ok(reference::familiar_key(r))
}

fn docker_archive(sp: &Spooled, bytes: &[u8]) -> Result<Vec<ToLoad>, EngineError> {
    let items: Option<Vec<ManifestItem>> =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("manifest.json: {e}")))?;
    let items = items.ok_or_else(|| {
        EngineError::invalid("invalid manifest, manifest cannot be null (but can be [])")
    })?;
    items
        .iter()
        .map(|m| {
            let layers = m
                .layers
                .iter()
                .map(|l| sp.file(l).map(|(d, _)| d))
                .collect::<Result<Vec<_>, _>>()?;
            let tags = m
                .repo_tags
                .iter()
                .flatten()
                .map(|t| tag_of(t))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ToLoad {
                config: sp.file(&m.config)?.0,
                layers,
                tags,
                manifest: None,
            })
        })
        .collect()
}

/// The blob a descriptor names in the layout, checked to be that blob.
fn blob_of(sp: &Spooled, digest: &str) -> Result<(Digest, u64), EngineError> {
    let d: Digest = digest.parse().map_err(|_| {
        EngineError::not_implemented(format!(
            "{digest}: only sha256 digests are supported in Wharf"
        ))
    })?;
    let (got, size) = sp.file(&format!("blobs/sha256/{}", d.hex()))?;
    // Named blobs were checked as they were stored; this is the same check, for a path
    // reached through a symlink.
    if got != d {
        return Err(bad(format!("blob {d} does not match its digest")));
    }
    Ok((got, size))
}

/// The name an index entry gives its image, as containerd reads it: the full name, else a
/// reference name that is a whole reference (a bare tag like `latest` names no repository).
fn name_of(desc: &manifest::Descriptor) -> Result<Option<String>, EngineError> {
    let ann = desc.annotations.as_ref();
    let get = |k: &str| ann.and_then(|a| a.get(k)).filter(|v| !v.is_empty());
    let name = match (get(ANNOTATION_IMAGE_NAME), get(ANNOTATION_REF_NAME)) {
        (Some(n), _) => n,
        (None, Some(r)) if r.contains(':') || r.contains('/') => r,
        _ => return Ok(None),
    };
    let r = Reference::parse_normalized_named(name)
        .map_err(|e| bad(format!("image name {name:?}: {e}")))?;
    if r.digest().is_some() {
        return Ok(None);
    }
    Ok(Some(reference::familiar_key(r.with_default_tag())))
}

fn oci_layout(sp: &Spooled, bytes: &[u8]) -> Result<Vec<ToLoad>, EngineError> {
    let index = match manifest::parse(manifest::OCI_INDEX, bytes)
        .map_err(|e| bad(format!("index.json: {e}")))?
    {
        Manifest::Index(ix) => ix,
        Manifest::Image(_) => return Err(bad("index.json is not an index")),
    };
    let mut out: Vec<ToLoad> = Vec::new();
    for desc in &index.manifests {
        let name = name_of(desc)?;
        let (mut d, mut size) = blob_of(sp, desc.digest.as_str())?;
        let mut media_type = desc.media_type.clone();
        // An index inside (a multi-platform image): this daemon's platform, as a pull picks it.
        let m = loop {
            let bytes = sp.document(&d, size, "a manifest")?;
            let mt = manifest::media_type_of(&media_type, &bytes);
            match manifest::parse(&mt, &bytes).map_err(|e| bad(format!("manifest {d}: {e}")))? {
                Manifest::Image(m) => break m,
                Manifest::Index(ix) => {
                    let child = manifest::select(&ix, &Platform::host())
                        .map_err(|e| EngineError::not_found(e.to_string()))?;
                    (d, size) = blob_of(sp, child.digest.as_str())?;
                    media_type = child.media_type.clone();
                }
            }
        };
        let config = blob_of(sp, m.config.digest.as_str())?.0;
        let layers = m
            .layers
            .iter()
            .map(|l| blob_of(sp, l.digest.as_str()).map(|(d, _)| d))
            .collect::<Result<Vec<_>, _>>()?;
        // One image named by several entries: one image with every name.
        match out.iter_mut().find(|t| t.config == config) {
            Some(t) => t.tags.extend(name.filter(|n| !t.tags.contains(n))),
            None => out.push(ToLoad {
                config,
                layers,
                tags: name.into_iter().collect(),
                manifest: Some(d),
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::BTreeMap;

    fn desc(ann: &[(&str, &str)]) -> manifest::Descriptor {
        let a: BTreeMap<String, String> = ann
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        serde_json::from_value(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", "a".repeat(64)),
            "size": 1,
            "annotations": a,
        }))
        .unwrap()
    }

    #[test]
    fn index_names_as_containerd_reads_them() {
        let n = |a: &[(&str, &str)]| name_of(&desc(a)).unwrap();
        assert_eq!(
            n(&[
                (ANNOTATION_IMAGE_NAME, "docker.io/library/busybox:latest"),
                (ANNOTATION_REF_NAME, "latest")
            ]),
            Some("busybox:latest".into())
        );
        assert_eq!(n(&[(ANNOTATION_REF_NAME, "latest")]), None);
        assert_eq!(
            n(&[(ANNOTATION_REF_NAME, "localhost/x:1")]),
            Some("localhost/x:1".into())
        );
        assert_eq!(
            n(&[(ANNOTATION_REF_NAME, "busybox:1.36")]),
            Some("busybox:1.36".into())
        );
        assert_eq!(n(&[]), None);
        assert!(name_of(&desc(&[(ANNOTATION_IMAGE_NAME, "Bad Name")])).is_err());
    }

    #[test]
    fn repo_tags_must_be_tags() {
        assert_eq!(tag_of("busybox:latest").unwrap(), "busybox:latest");
        assert_eq!(tag_of("docker.io/library/a:1").unwrap(), "a:1");
        assert_eq!(
            tag_of("busybox").unwrap_err().message(),
            "invalid tag \"busybox\""
        );
    }

    #[test]
    fn a_null_manifest_is_refused_in_dockerds_words() {
        let sp = Spooled::default();
        assert_eq!(
            docker_archive(&sp, b"null").unwrap_err().message(),
            "invalid manifest, manifest cannot be null (but can be [])"
        );
        assert_eq!(docker_archive(&sp, b"[]").unwrap(), vec![]);
        assert!(docker_archive(&sp, b"{")
            .unwrap_err()
            .message()
            .starts_with("invalid archive: manifest.json"));
        // A path that is not in the archive.
        let e = docker_archive(&sp, br#"[{"Config":"x.json","RepoTags":null,"Layers":[]}]"#)
            .unwrap_err()
            .message();
        assert!(e.contains("x.json is not in the archive"), "{e}");
    }
}
