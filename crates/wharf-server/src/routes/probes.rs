//! Networks and plugins are not served yet, but `docker inspect <unknown>` walks
//! containers → images → networks → volumes → plugins and prints `No such object` only if every
//! probe is a 404. (Volumes are served: `volumes.rs` answers `get <name>: no such volume`.) So the lookups answer 404 in dockerd's words instead of 501.

use crate::errors::HttpError;
use crate::routes::not_implemented_response;
use axum::extract::Path;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};

pub async fn network(Path(id): Path<String>) -> HttpError {
    HttpError::not_found(format!("network {id} not found"))
}

pub async fn plugin(method: Method, uri: Uri, Path(rest): Path<String>) -> Response {
    match rest.strip_suffix("/json") {
        Some(name) if !name.is_empty() => {
            HttpError::not_found(format!("plugin \"{name}\" not found")).into_response()
        }
        _ => not_implemented_response(&method, &uri),
    }
}
