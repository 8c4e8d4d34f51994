//! Serving a router on a UNIX socket with HTTP/1.1 upgrades, bounded connections
//! ([`crate::conn`]) and a bounded graceful shutdown.

use crate::conn::{Activity, ConnIo, ConnLimits, Expired};
use crate::timed_body::{BusyBody, TimedBody};
use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

/// How long in-flight requests get to finish after shutdown; long streams (logs -f, wait,
/// events) would otherwise hold the daemon forever.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Back-off after a failed accept (EMFILE and friends) so we do not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// The "connection limit reached" and "accept failed" lines are logged at most this often per
/// socket.
const FULL_LOG_EVERY: Duration = Duration::from_secs(60);

/// [`serve_unix_with`] without any connection bounds.
pub async fn serve_unix(
    listener: UnixListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    serve_unix_with(listener, app, ConnLimits::UNBOUNDED, shutdown).await
}

/// Serves `app` until `shutdown` resolves, then stops accepting, asks every connection to finish
/// its current request, waits at most [`SHUTDOWN_GRACE`] and returns. Hijacked connections run
/// in their own tasks and end with the runtime.
///
/// At the connection cap the socket is simply not accepted from: new clients wait in the
/// kernel's listen backlog, at no cost to the daemon, until a connection closes (the timeouts
/// close stuck ones), and are then served, rather than being accepted only to be refused.
pub async fn serve_unix_with(
    listener: UnixListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let name = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
        .unwrap_or_default();
    let slots = limits.max_connections.map(|n| Arc::new(Semaphore::new(n)));
    let mut full_logged: Option<Instant> = None;
    let mut accept_logged: Option<Instant> = None;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    'serve: loop {
        let permit = match &slots {
            None => None,
            Some(slots) => {
                let acquire = take_slot(slots, &limits, &name, &mut full_logged);
                let mut acquire = std::pin::pin!(acquire);
                loop {
                    tokio::select! {
                        _ = &mut shutdown => break 'serve,
                        Some(_) = conns.join_next(), if !conns.is_empty() => {}
                        p = &mut acquire => break p,
                    }
                }
            }
        };
        let stream = loop {
            tokio::select! {
                _ = &mut shutdown => break 'serve,
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => break stream,
                    Err(e) => {
                        // Out of descriptors (EMFILE) repeats every back-off; say it now and then.
                        if accept_logged.is_none_or(|t| t.elapsed() >= FULL_LOG_EVERY) {
                            accept_logged = Some(Instant::now());
                            tracing::warn!(socket = name, error = %e, "accept failed; retrying");
                        }
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        };
        conns.spawn(serve_connection(
            stream,
            app.clone(),
            stop_rx.clone(),
            limits,
            permit,
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            open = conns.len(),
            "closing connections still busy after grace"
        );
        conns.abort_all();
    }
}

/// A slot under the cap, waiting for one when all are taken (and saying so, now and then).
async fn take_slot(
    slots: &Arc<Semaphore>,
    limits: &ConnLimits,
    name: &str,
    full_logged: &mut Option<Instant>,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = Arc::clone(slots).try_acquire_owned() {
        return Some(p);
    }
    if full_logged.is_none_or(|t| t.elapsed() >= FULL_LOG_EVERY) {
        *full_logged = Some(Instant::now());
        tracing::warn!(
            socket = name,
            max_connections = limits.max_connections.unwrap_or_default(),
            "connection limit reached: new connections wait until one closes (--max-connections)"
        );
    }
    Arc::clone(slots).acquire_owned().await.ok()
}

async fn serve_connection(
    stream: tokio::net::UnixStream,
    app: Router,
    mut stop: watch::Receiver<bool>,
    limits: ConnLimits,
    permit: Option<OwnedSemaphorePermit>,
) {
    let activity = Activity::new();
    let io = ConnIo::new(stream, Arc::clone(&activity), permit);
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let answering = activity.busy();
            let body_busy = activity.busy();
            let req =
                req.map(|b| Body::new(TimedBody::new(b, limits.body_timeout, Some(body_busy))));
            let app = app.clone();
            async move {
                let resp = app.oneshot(req).await?;
                Ok::<_, std::convert::Infallible>(resp.map(|b| BusyBody::wrap(b, answering)))
            }
        })
    };
    let conn = http1::Builder::new()
        // Timed here (conn.rs), where the idle wait and the head's arrival can be told apart.
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        why = activity.expired(&limits) => {
            match why {
                Expired::Header => tracing::debug!("closing a connection: request head not received in time"),
                Expired::Idle => tracing::debug!("closing an idle connection"),
            }
            return;
        }
        _ = stop.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error during shutdown");
    }
}
