//! moby's distribution router and `POST /auth`: what a registry holds, and logging in.
//! (Pull and push are image routes: `images.rs`.)

use super::images::registry_auth;
use crate::errors::HttpError;
use crate::routes::read_json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;
use wharf_api::registry::AuthConfig;
use wharf_backend::DistributionBackend;

/// `POST /auth`.
pub async fn login<B: DistributionBackend>(
    State(b): State<Arc<B>>,
    body: Body,
) -> Result<Response, HttpError> {
    let auth: AuthConfig = read_json(body, "missing auth config").await?;
    Ok(Json(b.login(auth).await?).into_response())
}

/// `GET /distribution/{name}/json`: names contain `/`, so the operation is the suffix.
pub async fn inspect<B: DistributionBackend>(
    State(b): State<Arc<B>>,
    method: Method,
    uri: Uri,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    match rest.strip_suffix("/json") {
        Some(name) if !name.is_empty() => Ok(Json(
            b.distribution_inspect(name, &registry_auth(&headers))
                .await?,
        )
        .into_response()),
        _ => Ok(super::not_implemented_response(&method, &uri)),
    }
}
