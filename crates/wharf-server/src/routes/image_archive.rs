//! moby's image router's `get` and `load`: `GET /images/get?names=`, `GET /images/{name}/get`
//! (matched by hand in [`super::images::dispatch`], names contain `/`) and `POST /images/load`.

use crate::errors::HttpError;
use crate::query::Params;
use crate::stream::message_body;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use std::sync::Arc;
use wharf_backend::{BodyStream, ImageArchiveBackend};

type Res = Result<Response, HttpError>;

/// `platform` came with API 1.48, which Wharf does not serve: a client that sends it anyway
/// asks for a selection Wharf would not make.
fn refuse_platform(q: &Params, endpoint: &str) -> Result<(), HttpError> {
    match q.non_empty("platform") {
        Some(_) => Err(HttpError::invalid(format!(
            "Wharf does not support the 'platform' parameter of {endpoint} (API 1.48) yet"
        ))),
        None => Ok(()),
    }
}

/// `GET /images/get?names=a&names=b`.
pub async fn save_many<B: ImageArchiveBackend>(State(b): State<Arc<B>>, q: Params) -> Response {
    save(&*b, q.all("names"), &q, "GET /images/get")
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /images/{name}/get`.
pub(crate) async fn save_one<B: ImageArchiveBackend>(b: &B, name: &str, q: &Params) -> Res {
    save(b, vec![name.to_string()], q, "GET /images/{name}/get").await
}

async fn save<B: ImageArchiveBackend>(b: &B, names: Vec<String>, q: &Params, ep: &str) -> Res {
    refuse_platform(q, ep)?;
    let tar = b.save(names).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-tar"),
        )],
        Body::from_stream(tar),
    )
        .into_response())
}

/// `POST /images/load?quiet=`: the archive is the body, streamed (it can be gigabytes).
/// `quiet` is true when absent, as dockerd's `BoolValueOrDefault(r, "quiet", true)` reads it
/// (the docker CLI always sends it; docker-py only when asked).
pub async fn load<B: ImageArchiveBackend>(
    State(b): State<Arc<B>>,
    q: Params,
    body: Body,
) -> Response {
    let quiet = match q.get("quiet") {
        None | Some("") => true,
        Some(_) => q.bool("quiet"),
    };
    let run = async {
        refuse_platform(&q, "POST /images/load")?;
        let stream: BodyStream = Box::pin(body.into_data_stream().map_err(std::io::Error::other));
        message_body(b.load(stream, quiet).await?).await
    };
    match run.await {
        Ok(r) => r,
        Err(e) => {
            // A refused load may leave its body unread: the connection cannot serve another
            // request after it, so it is closed rather than left to a client's next request.
            let mut refused = e.into_response();
            refused
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            refused
        }
    }
}
