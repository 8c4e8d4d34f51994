//! Registry wire types: `POST /auth` and `GET /distribution/{name}/json` (moby v25
//! `api/types/registry`).

use serde::{Deserialize, Serialize};

/// `POST /auth`'s body (`registry.AuthConfig`); keys match case-insensitively as in Go (see
/// [`crate::wire_keys`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuthConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// base64 of `user:password`, sent by older clients instead of the two fields.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    /// Deprecated by Docker and ignored by dockerd.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registrytoken: String,
}

/// `POST /auth`'s answer (`registry.AuthenticateOKBody`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuthResponse {
    #[serde(rename = "IdentityToken", default)]
    pub identity_token: String,
    #[serde(rename = "Status")]
    pub status: String,
}

/// An OCI descriptor as dockerd answers it (`ocispec.Descriptor`, empty fields omitted).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

/// `ocispec.Platform`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(default, rename = "os.features", skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

/// `GET /distribution/{name}/json` (`registry.DistributionInspect`): what the registry holds
/// under a name, without pulling it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DistributionInspect {
    #[serde(rename = "Descriptor")]
    pub descriptor: Descriptor,
    #[serde(rename = "Platforms")]
    pub platforms: Vec<Platform>,
}
