//! The registry client of DESIGN.md §3. It knows no other wharf crate: the engine drives it and
//! feeds what it fetches into the content store.
//!
//! Layout: `reference` and `digest` (Docker's names), `manifest` (kinds, platforms),
//! `auth` (credentials, challenges, tokens), `transport` (the one HTTP client: TLS, proxies,
//! timeouts), `endpoint` (insecure registries, mirrors), `errcode` (registry errors in
//! dockerd's words) and `client` (the calls a pull or push makes).

pub mod auth;
pub mod client;
pub mod digest;
mod endpoint;
mod errcode;
pub mod error;
pub mod manifest;
pub mod reference;
mod transport;

pub use auth::{AuthConfig, Credentials};
pub use client::{
    BlobStream, Fetched, IndexInfo, LoginOutcome, ManifestHead, Registries, RegistryOptions,
    Repository, ServiceConfig, Timeouts,
};
pub use digest::{Digest, DigestError};
pub use error::DistributionError;
pub use reference::{Reference, ReferenceError};
