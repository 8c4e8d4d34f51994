//! What the CLI knows about registries without talking to one: image references, the
//! credentials docker keeps in its config file or credential helpers, and the JSON those
//! travel in.

pub mod auth;
pub mod config;
pub mod gojson;
pub mod helper;
pub mod reference;
