//! Swarm routes on a node that is in no swarm: dockerd's answers, not 501s.
//!
//! Wharf has no cluster yet, so every node is in moby's "no swarm" state. dockerd then answers
//! the manager routes (`/swarm`, `/nodes`, `/services`, `/tasks`, `/secrets`, `/configs`, and
//! `/swarm/update`, `/swarm/unlockkey`, `/swarm/unlock`) with 503 and the words of
//! `Cluster.errNoManager`, and `/swarm/leave` with 503 `errNoSwarm` (moby v25
//! `daemon/cluster/cluster.go`, `swarm.go`). `docker node ls`, `docker service ls` and friends
//! print those words. `/swarm/init` and `/swarm/join` would make this node a swarm member,
//! which Wharf cannot do yet, so they stay with the 501 fallback. When `wharf-cluster` lands,
//! a swarm backend replaces this module.

use crate::errors::HttpError;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use wharf_api::{ApiError, ErrorKind};

/// `Cluster.errNoManager` for a node with no swarm.
pub const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
/// `errNoSwarm`.
pub const NOT_IN_A_SWARM: &str = "This node is not part of a swarm";

async fn not_a_manager() -> HttpError {
    HttpError(ApiError::new(ErrorKind::Unavailable, NOT_A_MANAGER))
}

async fn not_in_a_swarm() -> HttpError {
    HttpError(ApiError::new(ErrorKind::Unavailable, NOT_IN_A_SWARM))
}

/// The swarm routes, merged into the API's route table.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let read = || -> MethodRouter<S> { get(not_a_manager) };
    let object = || -> MethodRouter<S> { get(not_a_manager).delete(not_a_manager) };
    let write = || -> MethodRouter<S> { post(not_a_manager) };
    let mut r = Router::new()
        .route("/swarm", read())
        .route("/swarm/unlockkey", read())
        .route("/swarm/update", write())
        .route("/swarm/unlock", write())
        .route("/swarm/leave", post(not_in_a_swarm))
        .route("/nodes", read())
        .route("/nodes/{id}", object())
        .route("/nodes/{id}/update", write())
        .route("/tasks", read())
        .route("/tasks/{id}", read())
        .route("/tasks/{id}/logs", read());
    for kind in ["services", "secrets", "configs"] {
        r = r
            .route(&format!("/{kind}"), read())
            .route(&format!("/{kind}/create"), write())
            .route(&format!("/{kind}/{{id}}"), object())
            .route(&format!("/{kind}/{{id}}/update"), write());
    }
    r.route("/services/{id}/logs", read())
}
