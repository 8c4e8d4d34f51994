//! `docker exec`: create, start (hijacked like an attach, or detached), resize, inspect.

use super::containers::{hijacked, size};
use crate::errors::HttpError;
use crate::query::Params;
use crate::routes::read_json;
use crate::versioning::RequestedVersion;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hyper::upgrade::OnUpgrade;
use std::sync::Arc;
use wharf_api::exec::{ExecCreateRequest, ExecStartRequest, IdResponse};
use wharf_backend::{ExecBackend, ExecStarted};

type Res = Result<Response, HttpError>;

pub async fn exec_create<B: ExecBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    body: Body,
) -> Res {
    let req: ExecCreateRequest = read_json(body, "No exec command specified").await?;
    let exec_id = b.exec_create(&id, req).await?;
    Ok((StatusCode::CREATED, Json(IdResponse { id: exec_id })).into_response())
}

pub async fn exec_start<B: ExecBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Extension(version): Extension<RequestedVersion>,
    mut req: Request,
) -> Res {
    let wants_upgrade = req.headers().contains_key(header::UPGRADE);
    let on_upgrade = req.extensions_mut().remove::<OnUpgrade>();
    let body = std::mem::take(req.body_mut());
    let mut start: ExecStartRequest = match read_json(body, "").await {
        Ok(s) => s,
        Err(_) if !wants_upgrade => ExecStartRequest::default(),
        Err(e) => return Err(e),
    };
    // dockerd ignores a start's ConsoleSize before API 1.42. The start's `Tty` decides the
    // framing (the session's `tty`), whatever the create said.
    if !version.at_least(1, 42) {
        start.console_size = None;
    }
    let session = match b.exec_start(&id, start).await? {
        ExecStarted::Detached => return Ok(StatusCode::OK.into_response()),
        ExecStarted::Attached(session) => session,
    };
    Ok(hijacked(session, version, wants_upgrade, on_upgrade))
}

pub async fn exec_resize<B: ExecBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    q: Params,
) -> Res {
    let (h, w) = size(&q)?;
    b.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn exec_inspect<B: ExecBackend>(State(b): State<Arc<B>>, Path(id): Path<String>) -> Res {
    Ok(Json(b.exec_inspect(&id).await?).into_response())
}
