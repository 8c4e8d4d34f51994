//! The Engine API over HTTP: axum routers grouped like Docker's, version middleware, hijacked
//! streams, and the one place where an [`wharf_api::ErrorKind`] becomes an HTTP status.
//!
//! Owns: routing, query/body parsing, response framing (JSON, chunked streams, stdcopy, 101
//! upgrades).
//! Must not touch: storage, runtime, syscalls; it never decides policy — backends do.
//!
//! Wiring: `serve_unix(listener, router(Arc::new(engine)), shutdown).await`.

mod conn;
mod drain;
pub mod errors;
mod hijack;
pub mod params;
pub mod query;
mod routes;
mod serve;
mod stream;
mod timed_body;
pub mod versioning;

pub use conn::ConnLimits;
pub use errors::status_for;
pub use serve::{serve_unix, serve_unix_with};
pub use timed_body::BodyTimeout;

use axum::middleware::from_fn;
use axum::Router;
use std::sync::Arc;
use wharf_backend::Backend;

/// The whole Engine API for one backend. The version prefix is stripped before routing: the
/// outer router sends everything to its fallback, behind the version middleware, and the inner
/// router then routes the rewritten path.
pub fn router<B: Backend>(backend: Arc<B>) -> Router {
    let api = routes::api_routes(backend);
    Router::new()
        .fallback_service(api)
        .layer(from_fn(versioning::version_middleware))
        .layer(from_fn(versioning::common_headers))
        // Outermost, so the version check's refusals are drained too.
        .layer(from_fn(drain::drain_unread_body))
}
