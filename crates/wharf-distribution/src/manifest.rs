//! Manifests and indexes (Docker schema2 and OCI), and choosing one platform from an index.

mod platform;

pub use platform::Platform;

use crate::digest::Digest;
use crate::error::{DistributionError, Result};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker's retired schema 1, refused with dockerd's words.
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// What a pull asks for, in the order Docker sends it.
pub const PULL_ACCEPT: &[&str] = &[
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    OCI_INDEX,
];

/// dockerd's refusal of schema 1 (`DeprecatedSchema1ImageError` without a reference).
pub const SCHEMA1_REMOVED: &str = "Docker Image Format v1 and Docker Image manifest version 2, \
schema 1 support has been removed. More information at \
https://docs.docker.com/go/deprecated-image-specs/";

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

impl Descriptor {
    /// Foreign (Windows base) and non-distributable layers: Docker does not download them.
    pub fn is_foreign(&self) -> bool {
        self.media_type.contains("foreign") || self.media_type.contains("nondistributable")
    }
}

/// One image: config and layers, base first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    Index(ImageIndex),
}

/// The fields that tell the kinds apart (dockerd's `detectManifestBlobMediaType`).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
    #[serde(default)]
    fs_layers: Option<serde_json::Value>,
}

fn is_known(media_type: &str) -> bool {
    matches!(
        media_type,
        DOCKER_MANIFEST
            | DOCKER_MANIFEST_LIST
            | OCI_MANIFEST
            | OCI_INDEX
            | DOCKER_SCHEMA1
            | DOCKER_SCHEMA1_SIGNED
    )
}

/// The media type of a fetched manifest: its `Content-Type` when that names a manifest
/// kind, otherwise (`application/json`, `text/plain`, none) the document's own `mediaType`,
/// otherwise what its fields say, as dockerd detects it.
pub fn media_type_of(content_type: &str, bytes: &[u8]) -> String {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    if is_known(ct) {
        return ct.to_owned();
    }
    let Ok(shape) = serde_json::from_slice::<Shape>(bytes) else {
        return ct.to_owned();
    };
    if let Some(mt) = shape.media_type.filter(|m| !m.is_empty()) {
        return mt;
    }
    let (m, c, l, f) = (
        shape.manifests.is_some(),
        shape.config.is_some(),
        shape.layers.is_some(),
        shape.fs_layers.is_some(),
    );
    if f && !m && !l && !c {
        DOCKER_SCHEMA1_SIGNED.to_owned()
    } else if (c || l) && !m && !f {
        OCI_MANIFEST.to_owned()
    } else if !c && !l && !f {
        OCI_INDEX.to_owned()
    } else {
        ct.to_owned()
    }
}

fn invalid(msg: String) -> DistributionError {
    DistributionError::InvalidManifest(msg)
}

/// distribution's check that a document is the kind its media type says.
fn check_inner_type(media_type: &str, inner: Option<&str>) -> Result<()> {
    match (media_type, inner) {
        (DOCKER_MANIFEST | DOCKER_MANIFEST_LIST, Some(i)) if i != media_type => Err(invalid(
            format!("mediaType in manifest should be '{media_type}' not '{i}'"),
        )),
        (OCI_MANIFEST | OCI_INDEX, Some(i)) if !i.is_empty() && i != media_type => Err(invalid(
            format!("if present, mediaType in manifest should be '{media_type}' not '{i}'"),
        )),
        _ => Ok(()),
    }
}

/// Parses a fetched manifest by its Content-Type (or its own `mediaType` when the registry
/// sends a generic type). Schema1 and unknown types are refused with Docker's words.
pub fn parse(media_type: &str, bytes: &[u8]) -> Result<Manifest> {
    let mt = media_type_of(media_type, bytes);
    match mt.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let m: ImageManifest = serde_json::from_slice(bytes)
                .map_err(|e| invalid(format!("invalid manifest: {e}")))?;
            check_inner_type(&mt, m.media_type.as_deref())?;
            if m.schema_version != 2 {
                return Err(invalid(format!(
                    "unsupported manifest schema version {}",
                    m.schema_version
                )));
            }
            Ok(Manifest::Image(Box::new(m)))
        }
        DOCKER_MANIFEST_LIST | OCI_INDEX => {
            let i: ImageIndex = serde_json::from_slice(bytes)
                .map_err(|e| invalid(format!("invalid manifest list: {e}")))?;
            check_inner_type(&mt, i.media_type.as_deref())?;
            Ok(Manifest::Index(i))
        }
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Err(invalid(SCHEMA1_REMOVED.to_owned())),
        other => Err(invalid(format!(
            "unsupported manifest media type and no default available: {other}"
        ))),
    }
}

/// The index entry for `want`, as containerd's platform matcher picks it (exact variant
/// first, then compatible lower variants; no entry for another OS/arch). An entry without a
/// platform matches anything, after every entry that names one.
pub fn select<'a>(index: &'a ImageIndex, want: &Platform) -> Result<&'a Descriptor> {
    let target = platform::with_default(want).normalized();
    let vector = platform::vector(&target);
    let mut best: Option<(usize, &Descriptor)> = None;
    for d in &index.manifests {
        let Some(r) = platform::entry_rank(&vector, d.platform.as_ref()) else {
            continue;
        };
        // Strictly better only: the first of equals wins, as a stable sort keeps it first.
        if best.is_none_or(|(b, _)| r < b) {
            best = Some((r, d));
        }
    }
    best.map(|(_, d)| d).ok_or_else(|| {
        let shown = if want.os.is_empty() {
            Platform::host()
        } else {
            want.clone()
        };
        DistributionError::NoMatchingPlatform(shown.to_string())
    })
}

#[cfg(test)]
mod tests;
