use crate::errors::HttpError;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;
use wharf_backend::SystemBackend;

const PING_HEADERS: [(header::HeaderName, HeaderValue); 3] = [
    (
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    ),
    (header::PRAGMA, HeaderValue::from_static("no-cache")),
    (
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    ),
];

pub async fn ping() -> Response {
    (PING_HEADERS, "OK").into_response()
}

pub async fn ping_head() -> Response {
    let mut r = (PING_HEADERS, ()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

pub async fn version<B: SystemBackend>(State(b): State<Arc<B>>) -> Result<Response, HttpError> {
    Ok(Json(b.version().await?).into_response())
}

pub async fn info<B: SystemBackend>(State(b): State<Arc<B>>) -> Result<Response, HttpError> {
    Ok(Json(b.info().await?).into_response())
}

/// `\n`-separated JSON events (unlike pull/build streams, which use `\r\n`), chunked, headers
/// flushed at once; the stream ends at `until` or when the client leaves.
pub async fn events<B: SystemBackend>(
    State(b): State<Arc<B>>,
    q: crate::query::Params,
) -> Result<Response, HttpError> {
    let positive = |v: f64| (v > 0.0).then_some(v);
    let opts = wharf_backend::EventsOptions {
        since: positive(q.unix_time("since")?),
        until: positive(q.unix_time("until")?),
        filters: q.filters()?,
    };
    let events = b.events(opts).await?;
    let body = axum::body::Body::from_stream(futures_util::StreamExt::map(events, |e| {
        Ok::<_, std::convert::Infallible>(crate::stream::json_line(&e, b"\n"))
    }));
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// `GET /system/df`: every part without `type` (or before API 1.42), else the parts named;
/// the build cache only when named (Wharf keeps none, so it is empty).
pub async fn disk_usage<B: SystemBackend>(
    State(b): State<Arc<B>>,
    axum::Extension(version): axum::Extension<crate::versioning::RequestedVersion>,
    q: crate::query::Params,
) -> Result<Response, HttpError> {
    let types = q.all("type");
    let mut opts = wharf_backend::DiskUsageOptions::default();
    if !version.at_least(1, 42) || types.is_empty() {
        opts.containers = true;
        opts.images = true;
        opts.volumes = true;
    } else {
        for t in &types {
            match t.as_str() {
                "container" => opts.containers = true,
                "image" => opts.images = true,
                "volume" => opts.volumes = true,
                "build-cache" => opts.build_cache = true,
                other => {
                    return Err(HttpError::invalid(format!("unknown object type: {other}")));
                }
            }
        }
    }
    Ok(Json(b.disk_usage(opts).await?).into_response())
}
