//! Manifests and indexes (Docker schema2 and OCI), and choosing one platform from an index.

use crate::digest::Digest;
use crate::error::Result;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// What a pull asks for, in the order Docker sends it.
pub const PULL_ACCEPT: &[&str] = &[
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    OCI_INDEX,
];

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

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this daemon runs, normalised as containerd's platforms package does
    /// (`linux/amd64`, `linux/arm64/v8`).
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            other => other,
        };
        Platform {
            architecture: architecture.to_owned(),
            os: "linux".to_owned(),
            os_version: None,
            variant: None,
        }
    }

    /// Parses `os[/arch[/variant]]` (or just an architecture) as `docker pull --platform`
    /// takes it, normalised like containerd (`x86_64` → amd64, `aarch64` → arm64).
    pub fn parse(s: &str) -> Result<Platform> {
        let _ = s;
        Err(crate::error::DistributionError::Invalid(
            "platform parsing is not written yet".into(),
        ))
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

/// Parses a fetched manifest by its Content-Type (or its own `mediaType` when the registry
/// sends a generic type). Schema1 and unknown types are refused with Docker's words.
pub fn parse(media_type: &str, bytes: &[u8]) -> Result<Manifest> {
    let _ = (media_type, bytes);
    Err(crate::error::DistributionError::InvalidManifest(
        "manifest parsing is not written yet".into(),
    ))
}

/// The index entry for `want`, as containerd's platform matcher picks it (exact variant
/// first, then compatible lower variants; no entry for another OS/arch).
pub fn select<'a>(index: &'a ImageIndex, want: &Platform) -> Result<&'a Descriptor> {
    let _ = (index, want);
    Err(crate::error::DistributionError::NoMatchingPlatform(
        "platform selection is not written yet".into(),
    ))
}
