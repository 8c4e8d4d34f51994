//! Engine API wire types: Docker's JSON field names, API versions, error bodies, filters,
//! stdcopy framing and the JSON message streams of pull and push.
//!
//! Owns: what goes over the wire between Engine API clients and wharfd.
//! Must not touch: any I/O. Everything here is plain data and pure functions.

pub mod archive;
pub mod container;
pub mod detach;
pub mod error;
pub mod event;
pub mod exec;
pub mod filters;
pub mod image;
pub mod jsonmessage;
pub mod query;
pub mod registry;
pub mod stdcopy;
pub mod system;
pub mod units;
pub mod version;
pub mod volume;
pub mod wire_keys;

pub use error::{ApiError, ErrorBody, ErrorKind};
