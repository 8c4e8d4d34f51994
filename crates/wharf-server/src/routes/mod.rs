//! The route table. Grouped like Docker's routers; anything not listed answers 501.

mod archive;
mod commit;
mod containers;
mod distribution;
mod exec;
mod image_archive;
mod images;
mod probes;
mod swarm;
mod system;
mod volumes;

use crate::errors::{json_error, not_implemented_message};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{any, delete, get, post};
use axum::Router;
use std::sync::Arc;
use wharf_backend::Backend;

pub fn api_routes<B: Backend>(backend: Arc<B>) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping_head))
        .route("/version", get(system::version::<B>))
        .route("/info", get(system::info::<B>))
        .route("/events", get(system::events::<B>))
        .route("/system/df", get(system::disk_usage::<B>))
        .route("/containers/create", post(containers::create::<B>))
        .route("/containers/json", get(containers::list::<B>))
        .route("/containers/{id}", delete(containers::remove::<B>))
        .route("/containers/{id}/json", get(containers::inspect::<B>))
        .route("/containers/{id}/start", post(containers::start::<B>))
        .route("/containers/{id}/stop", post(containers::stop::<B>))
        .route("/containers/{id}/restart", post(containers::restart::<B>))
        .route("/containers/{id}/kill", post(containers::kill::<B>))
        .route("/containers/{id}/rename", post(containers::rename::<B>))
        .route("/containers/{id}/wait", post(containers::wait::<B>))
        .route("/containers/{id}/logs", get(containers::logs::<B>))
        .route("/containers/{id}/attach", post(containers::attach::<B>))
        .route("/containers/{id}/resize", post(containers::resize::<B>))
        .route("/containers/{id}/exec", post(exec::exec_create::<B>))
        .route("/exec/{id}/start", post(exec::exec_start::<B>))
        .route("/exec/{id}/resize", post(exec::exec_resize::<B>))
        .route("/exec/{id}/json", get(exec::exec_inspect::<B>))
        .route("/containers/{id}/top", get(containers::top::<B>))
        .route("/containers/{id}/update", post(containers::update::<B>))
        .route("/containers/{id}/pause", post(containers::pause::<B>))
        .route("/containers/{id}/unpause", post(containers::unpause::<B>))
        .route(
            "/containers/{id}/archive",
            get(archive::get::<B>)
                .head(archive::head::<B>)
                .put(archive::put::<B>),
        )
        .route("/containers/{id}/export", get(archive::export::<B>))
        .route("/images/get", get(image_archive::save_many::<B>))
        .route("/images/load", post(image_archive::load::<B>))
        .route("/containers/{id}/changes", get(commit::changes::<B>))
        .route("/commit", post(commit::commit::<B>))
        // Image names contain `/` and `:`, so the suffix is matched by hand.
        .route("/images/{*rest}", any(images::dispatch::<B>))
        .route("/auth", post(distribution::login::<B>))
        .route("/distribution/{*rest}", get(distribution::inspect::<B>))
        .route("/networks/{id}", get(probes::network))
        .route("/volumes", get(volumes::list::<B>))
        .route("/volumes/create", post(volumes::create::<B>))
        .route("/volumes/prune", post(volumes::prune::<B>))
        .route(
            "/volumes/{name}",
            get(volumes::inspect::<B>).delete(volumes::remove::<B>),
        )
        .route("/plugins/{*rest}", get(probes::plugin))
        .merge(swarm::routes())
        // After routing, so it knows the endpoint; before the handlers, so nothing runs.
        .route_layer(axum::middleware::from_fn(crate::params::refuse_unserved))
        .fallback(not_implemented)
        .method_not_allowed_fallback(not_implemented)
        .with_state(backend)
}

pub async fn not_implemented(method: Method, uri: Uri) -> Response {
    // dockerd's `{name:.*}`: a name with `/` (an image reference given to `docker inspect`)
    // is no container, and the CLI needs the 404 to try the image next.
    if let Some(r) = containers::no_such_name(&method, &uri) {
        return r;
    }
    not_implemented_response(&method, &uri)
}

pub fn not_implemented_response(method: &Method, uri: &Uri) -> Response {
    json_error(
        StatusCode::NOT_IMPLEMENTED,
        &not_implemented_message(method.as_str(), uri.path()),
    )
}

/// Create bodies are small JSON documents; anything bigger is a client bug.
pub(crate) const JSON_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Parses a JSON body ourselves, so a malformed one is a 400 carrying serde's words (axum's
/// `Json` rejection uses other statuses and text bodies). Field names match case-insensitively
/// as in Go (`wharf_api::wire_keys`): every body type must declare its Docker schema.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned + wharf_api::wire_keys::WireKeys>(
    body: axum::body::Body,
    empty_message: &str,
) -> Result<T, crate::errors::HttpError> {
    use crate::errors::HttpError;
    let bytes = axum::body::to_bytes(body, JSON_BODY_LIMIT)
        .await
        .map_err(|e| HttpError::invalid(format!("cannot read request body: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpError::invalid(empty_message));
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| HttpError::invalid(format!("invalid JSON: {e}")))?;
    wharf_api::wire_keys::decode(value).map_err(HttpError::invalid)
}
