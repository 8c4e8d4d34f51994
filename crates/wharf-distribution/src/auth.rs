//! Credentials: what a client sends in `X-Registry-Auth` / `POST /auth`, and how they are
//! used against a registry (basic, or the bearer token flow of WWW-Authenticate).

use crate::error::{DistributionError, Result};

/// Docker's `AuthConfig` as clients send it (base64url JSON in `X-Registry-Auth`, plain JSON
/// in `POST /auth`). Field names match in any case, as Go's decoder does.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct AuthConfig {
    #[serde(default, alias = "Username")]
    pub username: String,
    #[serde(default, alias = "Password")]
    pub password: String,
    /// base64 of `user:password`, which older clients send instead of the two fields.
    #[serde(default, alias = "Auth")]
    pub auth: String,
    #[serde(default, alias = "ServerAddress", rename = "serveraddress")]
    pub server_address: String,
    #[serde(default, alias = "IdentityToken", rename = "identitytoken")]
    pub identity_token: String,
    #[serde(default, alias = "RegistryToken", rename = "registrytoken")]
    pub registry_token: String,
}

/// How to authenticate to one registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth refresh token (from a previous login) traded for access tokens.
    IdentityToken(String),
    /// A bearer token used as is.
    RegistryToken(String),
}

impl Credentials {
    /// Decodes an `X-Registry-Auth` header; an empty header is anonymous.
    pub fn from_x_registry_auth(header: &str) -> Result<Credentials> {
        let _ = header;
        Err(DistributionError::Invalid(
            "X-Registry-Auth is not decoded yet".into(),
        ))
    }

    pub fn from_auth_config(c: &AuthConfig) -> Result<Credentials> {
        let _ = c;
        Err(DistributionError::Invalid(
            "AuthConfig is not decoded yet".into(),
        ))
    }
}
