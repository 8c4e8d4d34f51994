//! The registry client of DESIGN.md §3. It knows no other wharf crate: the engine drives it and
//! feeds what it fetches into the content store.

pub mod auth;
pub mod client;
pub mod digest;
pub mod error;
pub mod manifest;
pub mod reference;

pub use auth::{AuthConfig, Credentials};
pub use client::{BlobStream, Fetched, LoginOutcome, Registries, RegistryOptions, Repository};
pub use digest::{Digest, DigestError};
pub use error::DistributionError;
pub use reference::{Reference, ReferenceError};
