//! moby's archive routes: `HEAD`/`GET`/`PUT /containers/{id}/archive` (`docker cp`) and
//! `GET /containers/{id}/export`. Tars are streamed both ways, never held whole.

use crate::errors::HttpError;
use crate::query::Params;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures_util::TryStreamExt;
use std::sync::Arc;
use wharf_api::archive::{ContainerPathStat, PATH_STAT_HEADER};
use wharf_backend::{ArchiveBackend, BodyStream, ExtractOptions};

type Res = Result<Response, HttpError>;

/// dockerd's `ArchiveFormValues`: `path` is required (its words, missing space included).
fn path_param(q: &Params) -> Result<String, HttpError> {
    match q.non_empty("path") {
        Some(p) => Ok(p.to_string()),
        None => Err(HttpError::invalid("bad parameter: pathcannot be empty")),
    }
}

/// The stat as dockerd sends it: JSON, base64 (standard alphabet, padded).
fn stat_header(stat: &ContainerPathStat) -> Result<HeaderValue, HttpError> {
    let json = serde_json::to_vec(stat)
        .map_err(|e| HttpError::from(wharf_api::ApiError::internal(e.to_string())))?;
    HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(json))
        .map_err(|e| HttpError::from(wharf_api::ApiError::internal(e.to_string())))
}

pub async fn head<B: ArchiveBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    q: Params,
) -> Res {
    let path = path_param(&q)?;
    let stat = b.archive_stat(&id, &path).await?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert(PATH_STAT_HEADER, stat_header(&stat)?);
    Ok(r)
}

fn tar_response(body: BodyStream) -> Response {
    let mut r = Body::from_stream(body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    r
}

/// The tar is not compressed whatever `Accept-Encoding` offers: an identity answer is
/// always acceptable in HTTP, and over a local socket gzip only costs time.
pub async fn get<B: ArchiveBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    q: Params,
) -> Res {
    let path = path_param(&q)?;
    let (stat, body) = b.archive_get(&id, &path).await?;
    let mut r = tar_response(body);
    r.headers_mut()
        .insert(PATH_STAT_HEADER, stat_header(&stat)?);
    Ok(r)
}

pub async fn put<B: ArchiveBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    q: Params,
    body: Body,
) -> Res {
    let path = path_param(&q)?;
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: q.bool("noOverwriteDirNonDir"),
        copy_uid_gid: q.bool("copyUIDGID"),
    };
    let stream: BodyStream = Box::pin(body.into_data_stream().map_err(std::io::Error::other));
    match b.archive_put(&id, &path, opts, stream).await {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(e) => {
            // A refused extraction may leave the body unread: close the connection rather
            // than let the client's next request queue behind it.
            let mut r = HttpError::from(e).into_response();
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            Ok(r)
        }
    }
}

pub async fn export<B: ArchiveBackend>(State(b): State<Arc<B>>, Path(id): Path<String>) -> Res {
    Ok(tar_response(b.export(&id).await?))
}
