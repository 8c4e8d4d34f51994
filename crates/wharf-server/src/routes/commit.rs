//! `POST /commit` and `GET /containers/{id}/changes`: a container's writable layer as a new
//! image and as a list of changes.

use crate::errors::HttpError;
use crate::query::Params;
use crate::routes::read_json;
use crate::versioning::RequestedVersion;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use std::sync::Arc;
use wharf_api::container::ContainerCreateRequest;
use wharf_api::exec::IdResponse;
use wharf_backend::{CommitBackend, CommitOptions};

type Res = Result<Response, HttpError>;

/// `GET /containers/{id}/changes`: `null` when nothing changed, as dockerd's nil slice.
pub async fn changes<B: CommitBackend>(State(b): State<Arc<B>>, Path(id): Path<String>) -> Res {
    let list = b.container_changes(&id).await?;
    if list.is_empty() {
        return Ok(Json(serde_json::Value::Null).into_response());
    }
    Ok(Json(list).into_response())
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&changes=&pause=`, with an optional
/// config as the body (dockerd decodes it as a create body and keeps its Config).
pub async fn commit<B: CommitBackend>(
    State(b): State<Arc<B>>,
    Extension(version): Extension<RequestedVersion>,
    q: Params,
    body: Body,
) -> Res {
    let bytes = axum::body::to_bytes(body, super::JSON_BODY_LIMIT)
        .await
        .map_err(|e| HttpError::invalid(format!("cannot read request body: {e}")))?;
    let text = String::from_utf8_lossy(&bytes);
    let config = if text.trim().is_empty() || text.trim() == "null" {
        None
    } else {
        let req: ContainerCreateRequest = read_json(
            Body::from(bytes),
            "invalid JSON: got EOF while reading request body",
        )
        .await?;
        // Go's decoder drops keys it does not know: they must not end up in the image.
        let mut config = req.config;
        config.extra.clear();
        Some(config)
    };
    // dockerd's default since API 1.13: pause unless told otherwise.
    let pause = match q.get("pause") {
        None | Some("") => version.at_least(1, 13),
        Some(_) => q.bool("pause"),
    };
    let opts = CommitOptions {
        container: q.get("container").unwrap_or("").to_string(),
        repo: q.get("repo").unwrap_or("").to_string(),
        tag: q.get("tag").unwrap_or("").to_string(),
        comment: q.get("comment").unwrap_or("").to_string(),
        author: q.get("author").unwrap_or("").to_string(),
        changes: q.all("changes"),
        pause,
        config,
    };
    let id = b.commit(opts).await?;
    Ok((StatusCode::CREATED, Json(IdResponse { id })).into_response())
}
