//! Connection bounds over a real UNIX socket (`serve_unix_with`): a silent client is dropped
//! after the header timeout, a silent answer keeps its connection past every timeout, and the
//! connection cap holds new clients until a slot frees.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::{Body, Bytes};
use axum::routing::get;
use axum::Router;
use common::read_head;
use std::convert::Infallible;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;
use wharf_server::ConnLimits;

/// Generous bound so a broken server fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(20);
const MS: fn(u64) -> Duration = Duration::from_millis;

struct Server {
    path: std::path::PathBuf,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

fn start(max_connections: usize) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conns-test.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let app = Router::new()
        .route("/ping", get(|| async { "OK" }))
        .route("/echo", axum::routing::post(|b: Bytes| async move { b }))
        // An answer that never ends and never says anything, like a quiet `events`.
        .route(
            "/quiet",
            get(|| async {
                Body::from_stream(futures_util::stream::pending::<Result<Bytes, Infallible>>())
            }),
        );
    let limits = ConnLimits {
        header_timeout: Some(MS(200)),
        idle_timeout: Some(MS(300)),
        body_timeout: Some(MS(200)),
        max_connections: Some(max_connections),
    };
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(wharf_server::serve_unix_with(
        listener,
        app,
        limits,
        async move {
            let _ = rx.await;
        },
    ));
    Server {
        path,
        _stop: tx,
        _dir: dir,
    }
}

async fn request(path: &std::path::Path, target: &str) -> UnixStream {
    let mut s = UnixStream::connect(path).await.unwrap();
    s.write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    s
}

/// Reads until the server closes the connection; panics if it does not within LIMIT.
async fn wait_closed(s: &mut UnixStream) {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(LIMIT, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => panic!("the connection was kept"),
        }
    }
}

#[tokio::test]
async fn silent_clients_and_slow_heads_are_dropped() {
    let srv = start(16);
    let mut silent = UnixStream::connect(&srv.path).await.unwrap();
    wait_closed(&mut silent).await;
    let mut half = UnixStream::connect(&srv.path).await.unwrap();
    half.write_all(b"GET /ping HTTP/1.1\r\nHo").await.unwrap();
    wait_closed(&mut half).await;
}

#[tokio::test]
async fn a_short_body_is_dropped() {
    let srv = start(16);
    let mut s = UnixStream::connect(&srv.path).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .unwrap();
    // The handler's read fails (axum answers 400), and the connection closes: its body never
    // ended.
    assert!(read_head(&mut s, LIMIT).await.starts_with("HTTP/1.1 400"));
    wait_closed(&mut s).await;
}

#[tokio::test]
async fn a_quiet_answer_outlives_every_timeout_and_an_idle_connection_does_not() {
    let srv = start(16);
    let mut quiet = request(&srv.path, "/quiet").await;
    assert!(read_head(&mut quiet, LIMIT)
        .await
        .starts_with("HTTP/1.1 200"));
    let mut idle = request(&srv.path, "/ping").await;
    assert!(read_head(&mut idle, LIMIT)
        .await
        .starts_with("HTTP/1.1 200"));
    wait_closed(&mut idle).await;
    // Well past every bound, the quiet answer's connection is still open.
    tokio::time::sleep(MS(1000)).await;
    let mut byte = [0u8; 1];
    let r = tokio::time::timeout(MS(100), quiet.read(&mut byte)).await;
    assert!(
        r.is_err(),
        "the quiet answer's connection was closed: {r:?}"
    );
}

#[tokio::test]
async fn the_cap_holds_new_clients_until_a_slot_frees() {
    let srv = start(2);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = request(&srv.path, "/quiet").await;
        assert!(read_head(&mut s, LIMIT).await.starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    let mut waiting = request(&srv.path, "/ping").await;
    // Not accepted while both slots are held: nothing can have come back.
    let mut byte = [0u8; 1];
    assert!(tokio::time::timeout(MS(300), waiting.read(&mut byte))
        .await
        .is_err());
    drop(held.pop());
    assert!(read_head(&mut waiting, LIMIT)
        .await
        .starts_with("HTTP/1.1 200"));
}
