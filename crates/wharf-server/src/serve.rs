//! Serving a router on a UNIX socket with HTTP/1.1 upgrades and a bounded graceful shutdown.

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How long in-flight requests get to finish after shutdown; long streams (logs -f, wait,
/// events) would otherwise hold the daemon forever.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Back-off after a failed accept (EMFILE and friends) so we do not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `app` until `shutdown` resolves, then stops accepting, asks every connection to finish
/// its current request, waits at most [`SHUTDOWN_GRACE`] and returns. Hijacked connections run
/// in their own tasks and end with the runtime.
pub async fn serve_unix(
    listener: UnixListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve_connection(stream, app.clone(), stop_rx.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
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

async fn serve_connection(
    stream: tokio::net::UnixStream,
    app: Router,
    mut stop: watch::Receiver<bool>,
) {
    let service =
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| app.clone().oneshot(req));
    let conn = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended with an error");
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
