use crate::errors::HttpError;
use crate::hijack;
use crate::query::Params;
use crate::routes::read_json;
use crate::stream::{output_body, wait_body};
use crate::versioning::RequestedVersion;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hyper::upgrade::OnUpgrade;
use std::sync::Arc;
use wharf_api::container::ContainerCreateRequest;
use wharf_backend::{
    AttachOptions, AttachSession, ContainersBackend, ListContainersOptions, LogsOptions,
    WaitCondition,
};

type Res = Result<Response, HttpError>;

fn no_content() -> Res {
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn create<B: ContainersBackend>(State(b): State<Arc<B>>, q: Params, body: Body) -> Res {
    let req: ContainerCreateRequest = read_json(
        body,
        "Config cannot be empty in order to create a container",
    )
    .await?;
    let name = q.non_empty("name").map(str::to_string);
    let platform = q.non_empty("platform").map(str::to_string);
    let created = b.create(name, platform, req).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn list<B: ContainersBackend>(State(b): State<Arc<B>>, q: Params) -> Res {
    let opts = ListContainersOptions {
        all: q.bool("all"),
        // compose sends `limit=-1`: only a positive limit means anything.
        limit: q.int("limit")?.filter(|n| *n > 0),
        size: q.bool("size"),
        filters: q.filters()?,
    };
    Ok(Json(b.list(opts).await?).into_response())
}

pub async fn inspect<B: ContainersBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    q: Params,
) -> Res {
    Ok(Json(b.inspect(&id, q.bool("size")).await?).into_response())
}

pub async fn start<B: ContainersBackend>(State(b): State<Arc<B>>, Path(id): Path<String>) -> Res {
    b.start(&id).await?;
    no_content()
}

pub async fn stop<B: ContainersBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    q: Params,
) -> Res {
    b.stop(&id, signal(&q), q.int("t")?).await?;
    no_content()
}

pub async fn restart<B: ContainersBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    q: Params,
) -> Res {
    b.restart(&id, signal(&q), q.int("t")?).await?;
    no_content()
}

pub async fn kill<B: ContainersBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    q: Params,
) -> Res {
    b.kill(&id, signal(&q)).await?;
    no_content()
}

fn signal(q: &Params) -> Option<String> {
    q.non_empty("signal").map(str::to_string)
}

pub async fn remove<B: ContainersBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    q: Params,
) -> Res {
    // `link` is refused by `params` (links are not Wharf's yet).
    b.remove(&id, q.bool("force"), q.bool("v")).await?;
    no_content()
}

pub async fn top<B: ContainersBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    q: Params,
) -> Res {
    let ps_args = q.get("ps_args").unwrap_or("");
    Ok(Json(b.top(&id, ps_args).await?).into_response())
}

pub async fn update<B: ContainersBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    body: Body,
) -> Res {
    let req = read_json(body, "update body cannot be empty").await?;
    Ok(Json(b.update(&id, req).await?).into_response())
}

pub async fn pause<B: ContainersBackend>(State(b): State<Arc<B>>, Path(id): Path<String>) -> Res {
    b.pause(&id).await?;
    no_content()
}

pub async fn unpause<B: ContainersBackend>(State(b): State<Arc<B>>, Path(id): Path<String>) -> Res {
    b.unpause(&id).await?;
    no_content()
}

pub async fn rename<B: ContainersBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    q: Params,
) -> Res {
    b.rename(&id, q.get("name").unwrap_or("")).await?;
    no_content()
}

pub async fn wait<B: ContainersBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    q: Params,
) -> Res {
    let condition = match q.get("condition").unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => return Err(HttpError::invalid(format!("invalid condition: {other:?}"))),
    };
    // Validation happens here, so a missing container is a real 404 and not a 200 with an
    // error inside the body.
    let fut = b.wait(&id, condition).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        wait_body(fut),
    )
        .into_response())
}

pub async fn logs<B: ContainersBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Extension(version): Extension<RequestedVersion>,
    q: Params,
) -> Res {
    let opts = LogsOptions {
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        follow: q.bool("follow"),
        tail: q.get("tail").and_then(|t| t.trim().parse::<usize>().ok()),
        since: q.unix_time("since")?,
        until: q.unix_time("until")?,
        timestamps: q.bool("timestamps"),
        details: q.bool("details"),
    };
    if !opts.stdout && !opts.stderr {
        return Err(HttpError::invalid("You must choose at least one stream"));
    }
    let timestamps = opts.timestamps;
    let session = b.logs(&id, opts).await?;
    let mut resp = output_body(session.output, session.tty, timestamps).into_response();
    if let Some(ct) = stream_content_type(version, session.tty) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    Ok(resp)
}

/// dockerd's rule: from 1.42 a non-TTY stream says it is multiplexed; before, logs carry no
/// content type at all.
fn stream_content_type(version: RequestedVersion, tty: bool) -> Option<HeaderValue> {
    if !version.at_least(1, 42) {
        return None;
    }
    Some(attach_content_type(version, tty))
}

fn attach_content_type(version: RequestedVersion, tty: bool) -> HeaderValue {
    if !tty && version.at_least(1, 42) {
        HeaderValue::from_static("application/vnd.docker.multiplexed-stream")
    } else {
        HeaderValue::from_static("application/vnd.docker.raw-stream")
    }
}

pub async fn attach<B: ContainersBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Extension(version): Extension<RequestedVersion>,
    q: Params,
    mut req: Request,
) -> Res {
    let opts = AttachOptions {
        stream: q.bool("stream"),
        stdin: q.bool("stdin"),
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        logs: q.bool("logs"),
        detach_keys: q.non_empty("detachKeys").map(str::to_string),
    };
    // The backend goes first so that an unknown container is an ordinary 404, not a 101.
    let session = b.attach(&id, opts).await?;
    let wants_upgrade = req.headers().contains_key(header::UPGRADE);
    let on_upgrade = req.extensions_mut().remove::<OnUpgrade>();
    Ok(hijacked(session, version, wants_upgrade, on_upgrade))
}

/// Answers an attach or exec start: `101 UPGRADED` and the session pumped over the raw
/// connection, or, without an upgrade, the output as a plain streamed body.
pub(super) fn hijacked(
    session: AttachSession,
    version: RequestedVersion,
    wants_upgrade: bool,
    on_upgrade: Option<OnUpgrade>,
) -> Response {
    let content_type = attach_content_type(version, session.tty);
    match (wants_upgrade, on_upgrade) {
        (true, Some(on_upgrade)) => {
            tokio::spawn(hijack::run_upgraded(on_upgrade, session));
            (
                StatusCode::SWITCHING_PROTOCOLS,
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CONNECTION, HeaderValue::from_static("Upgrade")),
                    (header::UPGRADE, HeaderValue::from_static("tcp")),
                ],
            )
                .into_response()
        }
        _ => streamed_attach(session, content_type),
    }
}

/// Without an upgrade the output still streams, as a plain chunked body; stdin is closed.
fn streamed_attach(session: AttachSession, content_type: HeaderValue) -> Response {
    let AttachSession { tty, output, .. } = session;
    (
        [(header::CONTENT_TYPE, content_type)],
        output_body(output, tty, false),
    )
        .into_response()
}

/// `h` and `w` as dockerd reads them: both required, numbers.
pub(super) fn size(q: &Params) -> Result<(u16, u16), HttpError> {
    let get = |k: &str| -> Result<u16, HttpError> {
        let v = q.get(k).unwrap_or("");
        v.parse::<u16>()
            .map_err(|_| HttpError::invalid(format!("strconv.Atoi: parsing {v:?}: invalid syntax")))
    };
    Ok((get("h")?, get("w")?))
}

pub async fn resize<B: ContainersBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    q: Params,
) -> Res {
    let (h, w) = size(&q)?;
    b.resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

/// The operations a container path ends with (those Wharf routes by `{id}`).
const CONTAINER_OPS: &[&str] = &[
    "json", "start", "stop", "restart", "kill", "rename", "wait", "logs", "attach", "resize",
    "exec", "top", "update", "pause", "unpause", "archive", "export", "changes", "stats",
];

/// `/containers/<name with slashes>/<op>` (no route matches it): container names never
/// contain `/`, so dockerd (whose routes match `{name:.*}`) answers `No such container` (404).
/// `None` for any other path: an endpoint Wharf does not serve.
pub fn no_such_name(method: &axum::http::Method, uri: &axum::http::Uri) -> Option<Response> {
    let rest = uri.path().strip_prefix("/containers/")?;
    let name = match rest.rsplit_once('/') {
        Some((name, op)) if CONTAINER_OPS.contains(&op) => name,
        Some(_) if method == axum::http::Method::DELETE => rest,
        _ => return None,
    };
    (!name.is_empty() && name.contains('/'))
        .then(|| HttpError::not_found(format!("No such container: {name}")).into_response())
}
