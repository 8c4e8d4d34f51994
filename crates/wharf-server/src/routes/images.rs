use crate::errors::HttpError;
use crate::query::Params;
use crate::routes::not_implemented_response;
use crate::stream::{json_line, message_body};
use crate::versioning::RequestedVersion;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::TryStreamExt;
use std::sync::Arc;
use wharf_backend::{
    BodyStream, DistributionBackend, ImageArchiveBackend, ImagesBackend, ImportOptions,
    ListImagesOptions, PullOptions, PushOptions,
};

type Res = Result<Response, HttpError>;

/// `/images/{*rest}`: names like `localhost:5000/a/b:tag` contain slashes, so the operation is
/// the suffix, not a path segment.
#[allow(clippy::too_many_arguments)]
pub async fn dispatch<B: ImagesBackend + DistributionBackend + ImageArchiveBackend>(
    State(b): State<Arc<B>>,
    Extension(version): Extension<RequestedVersion>,
    method: Method,
    uri: Uri,
    Path(rest): Path<String>,
    q: Params,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = match method {
        Method::GET if rest == "json" => list(&*b, &q).await,
        Method::POST if rest == "create" => match q.non_empty("fromImage") {
            Some(image) => pull(&*b, image, &q, &headers).await,
            None => create(&*b, &method, &uri, &q, body).await,
        },
        Method::GET if rest.strip_suffix("/get").is_some_and(|n| !n.is_empty()) => {
            let name = rest.strip_suffix("/get").unwrap_or_default();
            super::image_archive::save_one(&*b, name, &q).await
        }
        Method::GET => match (rest.strip_suffix("/json"), rest.strip_suffix("/history")) {
            (Some(name), _) if !name.is_empty() => b
                .inspect(name)
                .await
                .map(|i| {
                    let v = version.0;
                    Json(i.for_version(v.major, v.minor)).into_response()
                })
                .map_err(Into::into),
            (_, Some(name)) if !name.is_empty() => b
                .history(name)
                .await
                .map(|h| Json(h).into_response())
                .map_err(Into::into),
            _ => Ok(not_implemented_response(&method, &uri)),
        },
        Method::POST => match (rest.strip_suffix("/tag"), rest.strip_suffix("/push")) {
            (Some(name), _) if !name.is_empty() => tag(&*b, name, &q).await,
            (_, Some(name)) if !name.is_empty() => push(&*b, name, &q, &headers).await,
            _ => Ok(not_implemented_response(&method, &uri)),
        },
        Method::DELETE => b
            .remove(&rest, q.bool("force"), q.bool("noprune"))
            .await
            .map(|items| Json(items).into_response())
            .map_err(Into::into),
        _ => Ok(not_implemented_response(&method, &uri)),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn list<B: ImagesBackend>(b: &B, q: &Params) -> Res {
    let opts = ListImagesOptions {
        all: q.bool("all"),
        digests: q.bool("digests"),
        filters: q.filters()?,
    };
    Ok(Json(b.list(opts).await?).into_response())
}

async fn tag<B: ImagesBackend>(b: &B, name: &str, q: &Params) -> Res {
    b.tag(
        name,
        q.get("repo").unwrap_or(""),
        q.get("tag").unwrap_or(""),
    )
    .await?;
    Ok(StatusCode::CREATED.into_response())
}

/// The `X-Registry-Auth` header as sent (base64url JSON), empty when absent.
pub(crate) fn registry_auth(headers: &HeaderMap) -> String {
    headers
        .get("X-Registry-Auth")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// `POST /images/create?fromImage=`: the pull's messages as they come.
async fn pull<B: DistributionBackend>(b: &B, image: &str, q: &Params, headers: &HeaderMap) -> Res {
    // dockerd reads these only for an import and drops them on a pull; taken silently they
    // would look applied.
    let import_only: Vec<&str> = ["fromSrc", "repo", "message", "changes"]
        .into_iter()
        .filter(|k| q.non_empty(k).is_some())
        .collect();
    if !import_only.is_empty() {
        return Err(HttpError::invalid(format!(
            "{} only apply to an import (fromSrc), not to a pull (fromImage)",
            import_only.join(", ")
        )));
    }
    let opts = PullOptions {
        from_image: image.to_string(),
        tag: q.get("tag").unwrap_or("").to_string(),
        platform: q.get("platform").unwrap_or("").to_string(),
        registry_auth: registry_auth(headers),
    };
    message_body(b.pull(opts).await?).await
}

/// `POST /images/{name}/push`.
async fn push<B: DistributionBackend>(b: &B, name: &str, q: &Params, headers: &HeaderMap) -> Res {
    let opts = PushOptions {
        name: name.to_string(),
        tag: q.get("tag").unwrap_or("").to_string(),
        registry_auth: registry_auth(headers),
    };
    message_body(b.push(opts).await?).await
}

/// `POST /images/create?fromSrc=`: import (`fromSrc=-`) is served, a URL not yet.
async fn create<B: ImagesBackend>(
    b: &B,
    method: &Method,
    uri: &Uri,
    q: &Params,
    body: Body,
) -> Res {
    match q.non_empty("fromSrc") {
        Some("-") => {}
        Some(_) => {
            return Err(HttpError::not_implemented(format!(
                "{method} {}?fromSrc=<url> is not implemented in Wharf yet",
                uri.path()
            )))
        }
        None => return Err(HttpError::invalid("fromImage or fromSrc is required")),
    }
    let opts = ImportOptions {
        repo: q.get("repo").unwrap_or("").to_string(),
        tag: q.get("tag").unwrap_or("").to_string(),
        changes: q.all("changes"),
        message: q.get("message").unwrap_or("").to_string(),
        platform: q.get("platform").unwrap_or("").to_string(),
    };
    // Streamed, never buffered: an import can be gigabytes.
    let stream: BodyStream = Box::pin(body.into_data_stream().map_err(std::io::Error::other));
    let id = match b.import(opts, stream).await {
        Ok(id) => id,
        Err(e) => {
            // A refused import may leave its body unread (refused before the first byte, or
            // mid-way); the connection cannot serve another request after it, so say so and
            // close it rather than let a client queue its next request behind the unread body.
            let mut refused = HttpError::from(e).into_response();
            refused
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(refused);
        }
    };
    let line = json_line(&serde_json::json!({ "status": id }), b"\r\n");
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from_stream(futures_util::stream::once(async move {
            Ok::<_, std::convert::Infallible>(line)
        })),
    )
        .into_response())
}
