//! Credentials: what a client sends in `X-Registry-Auth` / `POST /auth`, and how they are
//! used against a registry (basic, or the bearer token flow of WWW-Authenticate).

pub(crate) mod challenge;
pub(crate) mod token;

use crate::error::{DistributionError, Result};
use base64::Engine as _;

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

/// Base64 as clients send it: URL-safe (what the docker CLI and docker-py send) or standard,
/// padded or not.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let lenient =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let url = GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient);
    let std = GeneralPurpose::new(&base64::alphabet::STANDARD, lenient);
    url.decode(s).ok().or_else(|| std.decode(s).ok())
}

impl Credentials {
    /// Decodes an `X-Registry-Auth` header; an empty header (or `{}`) is anonymous.
    ///
    /// A header that does not decode is an error here; dockerd ignores it for pull and push
    /// ("to increase compatibility with the existing API") and goes on anonymously, so the
    /// engine should do `unwrap_or_default()` there.
    pub fn from_x_registry_auth(header: &str) -> Result<Credentials> {
        let header = header.trim();
        if header.is_empty() {
            return Ok(Credentials::Anonymous);
        }
        let invalid = |why: &str| {
            DistributionError::Invalid(format!("invalid X-Registry-Auth header: {why}"))
        };
        let json = decode_base64(header).ok_or_else(|| invalid("illegal base64 data"))?;
        // Go's decoder reads one JSON value and ignores what follows it.
        let config: AuthConfig = serde_json::Deserializer::from_slice(&json)
            .into_iter()
            .next()
            .ok_or_else(|| invalid("EOF"))?
            .map_err(|e| invalid(&e.to_string()))?;
        Credentials::from_auth_config(&config)
    }

    /// The credentials an `AuthConfig` carries, in dockerd's order of preference: a registry
    /// token is sent as is, an identity token is traded for access tokens, then username and
    /// password (or `auth`, their base64).
    pub fn from_auth_config(c: &AuthConfig) -> Result<Credentials> {
        if !c.registry_token.is_empty() {
            return Ok(Credentials::RegistryToken(c.registry_token.clone()));
        }
        if !c.identity_token.is_empty() {
            return Ok(Credentials::IdentityToken(c.identity_token.clone()));
        }
        if !c.username.is_empty() || !c.password.is_empty() {
            return Ok(Credentials::Basic {
                username: c.username.clone(),
                password: c.password.clone(),
            });
        }
        if !c.auth.is_empty() {
            let invalid = || {
                DistributionError::Invalid(
                    "invalid auth configuration: auth is not base64 of username:password".into(),
                )
            };
            let raw = decode_base64(c.auth.trim()).ok_or_else(invalid)?;
            let text = String::from_utf8(raw).map_err(|_| invalid())?;
            let (username, password) = text.split_once(':').ok_or_else(invalid)?;
            return Ok(Credentials::Basic {
                username: username.to_owned(),
                password: password.trim_end_matches('\n').to_owned(),
            });
        }
        Ok(Credentials::Anonymous)
    }

    /// Username and password, when both are set: distribution's basic handler sends nothing
    /// otherwise.
    pub(crate) fn basic(&self) -> Option<(&str, &str)> {
        match self {
            Credentials::Basic { username, password }
                if !username.is_empty() && !password.is_empty() =>
            {
                Some((username, password))
            }
            _ => None,
        }
    }

    /// A key that tells credentials apart in the token cache without keeping them readable.
    pub(crate) fn cache_key(&self) -> String {
        use sha2::{Digest as _, Sha256};
        let mut h = Sha256::new();
        match self {
            Credentials::Anonymous => h.update(b"anonymous"),
            Credentials::Basic { username, password } => {
                h.update(b"basic\0");
                h.update(username.as_bytes());
                h.update(b"\0");
                h.update(password.as_bytes());
            }
            Credentials::IdentityToken(t) => {
                h.update(b"identity\0");
                h.update(t.as_bytes());
            }
            Credentials::RegistryToken(t) => {
                h.update(b"registry\0");
                h.update(t.as_bytes());
            }
        }
        hex::encode(&h.finalize()[..16])
    }
}

/// `Authorization: Basic …`.
pub(crate) fn basic_header(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[cfg(test)]
mod tests;
