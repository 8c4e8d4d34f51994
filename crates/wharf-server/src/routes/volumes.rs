//! moby's volume router: `/volumes`, `/volumes/create`, `/volumes/prune`, `/volumes/{name}`.

use crate::errors::HttpError;
use crate::query::Params;
use crate::routes::read_json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;
use wharf_api::volume::VolumeCreateRequest;
use wharf_backend::VolumesBackend;

type Res = Result<Response, HttpError>;

/// `POST /volumes/create`: 201 with the volume (the existing one for a known name).
/// An empty body is an anonymous volume, as dockerd's `ReadJSON` allows.
pub async fn create<B: VolumesBackend>(State(b): State<Arc<B>>, body: Body) -> Res {
    let bytes = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .map_err(|e| HttpError::invalid(format!("cannot read request body: {e}")))?;
    let req: VolumeCreateRequest = if bytes.is_empty() {
        VolumeCreateRequest::default()
    } else {
        read_json(
            Body::from(bytes),
            "invalid JSON: got EOF while reading request body",
        )
        .await?
    };
    if req
        .cluster_volume_spec
        .as_ref()
        .is_some_and(|v| !v.is_null())
    {
        return Err(HttpError::from(wharf_api::ApiError::not_implemented(
            "Wharf does not support ClusterVolumeSpec: cluster volumes are swarm's",
        )));
    }
    Ok((StatusCode::CREATED, Json(b.volume_create(req).await?)).into_response())
}

pub async fn list<B: VolumesBackend>(State(b): State<Arc<B>>, q: Params) -> Res {
    Ok(Json(b.volume_list(q.filters()?).await?).into_response())
}

pub async fn inspect<B: VolumesBackend>(State(b): State<Arc<B>>, Path(name): Path<String>) -> Res {
    Ok(Json(b.volume_inspect(&name).await?).into_response())
}

pub async fn remove<B: VolumesBackend>(
    State(b): State<Arc<B>>,
    Path(name): Path<String>,
    q: Params,
) -> Res {
    b.volume_remove(&name, q.bool("force")).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn prune<B: VolumesBackend>(State(b): State<Arc<B>>, q: Params) -> Res {
    Ok(Json(b.volume_prune(q.filters()?).await?).into_response())
}
