//! The registry client of DESIGN.md §3. It knows no other wharf crate: the engine drives it and
//! feeds what it fetches into the content store.

pub mod digest;
pub mod reference;

pub use digest::{Digest, DigestError};
pub use reference::{Reference, ReferenceError};
