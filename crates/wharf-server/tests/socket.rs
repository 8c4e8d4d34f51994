//! Tests over a real UNIX socket: things only a real hyper connection shows (flushed headers,
//! 101 upgrades, half-close, shutdown).
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{chunk, read_head, Fake};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use wharf_api::stdcopy::StdStream;

/// Generous bound so a broken server fails the test instead of hanging it; never a timing check.
const LIMIT: Duration = Duration::from_secs(10);

struct Server {
    path: std::path::PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

fn start(fake: Arc<Fake>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wharf-server-test.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(wharf_server::serve_unix(
        listener,
        wharf_server::router(fake),
        async move {
            let _ = rx.await;
        },
    ));
    Server {
        path,
        stop: Some(tx),
        task,
        _dir: dir,
    }
}

async fn read_exact(s: &mut UnixStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(LIMIT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf
}

const ATTACH: &str = "POST /v1.44/containers/web/attach?stderr=1&stdout=1&stream=1{STDIN} HTTP/1.1\r\n\
Host: api.moby.localhost\r\nContent-Length: 0\r\nConnection: Upgrade\r\nContent-Type: text/plain\r\nUpgrade: tcp\r\n\r\n";

#[tokio::test]
async fn attach_hijack_half_close_then_output_then_close() {
    let fake = Arc::new(Fake::default());
    let (out_tx, out_rx) = mpsc::channel(4);
    *fake.attach_output.lock().unwrap() = Some(out_rx);
    let srv = start(fake.clone());

    let mut s = UnixStream::connect(&srv.path).await.unwrap();
    s.write_all(ATTACH.replace("{STDIN}", "&stdin=1").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut s, LIMIT).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/vnd.docker.multiplexed-stream"),
        "{head}"
    );
    assert!(lower.contains("upgrade: tcp"), "{head}");
    assert!(lower.contains("connection: upgrade"), "{head}");

    // Like the CLI with piped stdin: send bytes, then half-close at once.
    s.write_all(b"hello").await.unwrap();
    s.shutdown().await.unwrap();
    out_tx
        .send(chunk(StdStream::Stdout, b"hi\n", None))
        .await
        .unwrap();
    assert_eq!(read_exact(&mut s, 11).await, b"\x01\0\0\0\0\0\0\x03hi\n");

    // Client EOF became stdin EOF...
    tokio::time::timeout(LIMIT, async {
        while !fake.stdin_seen.lock().unwrap().1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(fake.stdin_seen.lock().unwrap().0, b"hello");

    // ...and output keeps flowing after it.
    out_tx
        .send(chunk(StdStream::Stderr, b"bye", None))
        .await
        .unwrap();
    assert_eq!(read_exact(&mut s, 11).await, b"\x02\0\0\0\0\0\0\x03bye");

    // The output ends (container exited): the server closes the socket.
    drop(out_tx);
    let mut rest = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty());
    drop(srv.stop);
    tokio::time::timeout(LIMIT, srv.task)
        .await
        .unwrap()
        .unwrap();
}

/// docker-py reads the 101 with a buffered reader and then the raw socket: output that arrives
/// together with the headers is lost in that buffer. The first output therefore waits until
/// the client has read the headers. A client that waits before reading anything must find only
/// the headers in its first read, however long it waits.
#[tokio::test]
async fn first_output_waits_until_the_client_read_the_headers() {
    let fake = Arc::new(Fake::default());
    *fake.tty.lock().unwrap() = true;
    *fake.output.lock().unwrap() = vec![chunk(StdStream::Stdout, b"ready\r\n", None)];
    let srv = start(fake.clone());

    let mut s = UnixStream::connect(&srv.path).await.unwrap();
    s.write_all(ATTACH.replace("{STDIN}", "").as_bytes())
        .await
        .unwrap();
    // Long enough for any fixed delay to have passed; the output is ready at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut buf = vec![0u8; 64 * 1024];
    let n = tokio::time::timeout(LIMIT, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(first.starts_with("HTTP/1.1 101"), "{first}");
    assert!(
        first.ends_with("\r\n\r\n"),
        "output arrived together with the headers: {first:?}"
    );
    let mut rest = Vec::new();
    s.shutdown().await.unwrap();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest, b"ready\r\n");
    drop(srv.stop);
    tokio::time::timeout(LIMIT, srv.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn attach_hijack_without_stdin_and_404() {
    let fake = Arc::new(Fake::default());
    *fake.tty.lock().unwrap() = true;
    *fake.output.lock().unwrap() = vec![chunk(StdStream::Stdout, b"tty-out\r\n", None)];
    let srv = start(fake.clone());

    let mut s = UnixStream::connect(&srv.path).await.unwrap();
    s.write_all(ATTACH.replace("{STDIN}", "").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut s, LIMIT).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains("application/vnd.docker.raw-stream"));
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest, b"tty-out\r\n", "raw TTY bytes, then close");

    let mut s = UnixStream::connect(&srv.path).await.unwrap();
    let req = ATTACH.replace("{STDIN}", "").replace("/web/", "/missing/");
    s.write_all(req.as_bytes()).await.unwrap();
    let head = read_head(&mut s, LIMIT).await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    drop(srv.stop);
    tokio::time::timeout(LIMIT, srv.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn wait_flushes_headers_before_the_body() {
    let fake = Arc::new(Fake::default());
    let (tx, rx) = oneshot::channel();
    *fake.wait_release.lock().unwrap() = Some(rx);
    let srv = start(fake.clone());

    let mut s = UnixStream::connect(&srv.path).await.unwrap();
    s.write_all(b"POST /v1.41/containers/web/wait?condition=removed HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    // The head arrives while the container is still running.
    let head = read_head(&mut s, LIMIT).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    assert!(
        head.contains("Api-Version: 1.44")
            || head.to_ascii_lowercase().contains("api-version: 1.44")
    );

    tx.send(wharf_api::container::WaitResponse {
        error: None,
        status_code: 0,
    })
    .unwrap();
    let want = b"1e\r\n{\"Error\":null,\"StatusCode\":0}\n\r\n0\r\n\r\n";
    // Chunk sizes are hex in either case (hyper writes `1E`).
    assert_eq!(
        read_exact(&mut s, want.len()).await.to_ascii_lowercase(),
        want.to_ascii_lowercase()
    );
    drop(srv.stop);
    tokio::time::timeout(LIMIT, srv.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_does_not_wait_for_long_streams() {
    let fake = Arc::new(Fake::default());
    let (_never, rx) = oneshot::channel();
    *fake.wait_release.lock().unwrap() = Some(rx);
    let mut srv = start(fake.clone());

    let mut s = UnixStream::connect(&srv.path).await.unwrap();
    s.write_all(b"POST /containers/web/wait HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    read_head(&mut s, LIMIT).await;
    // An idle keep-alive connection must not hold shutdown either.
    let mut idle = UnixStream::connect(&srv.path).await.unwrap();
    idle.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_head(&mut idle, LIMIT).await;

    let _ = srv.stop.take().unwrap().send(());
    tokio::time::timeout(LIMIT, srv.task)
        .await
        .unwrap()
        .unwrap();
    assert!(
        UnixStream::connect(&srv.path).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn client_disconnect_ends_logs_follow_and_wait() {
    let fake = Arc::new(Fake::default());
    let (out_tx, out_rx) = mpsc::channel(4);
    *fake.logs_output.lock().unwrap() = Some(out_rx);
    let (_never, rx) = oneshot::channel();
    *fake.wait_release.lock().unwrap() = Some(rx);
    let (guard_tx, guard_rx) = oneshot::channel::<()>();
    *fake.wait_guard.lock().unwrap() = Some(guard_tx);
    let srv = start(fake.clone());

    let mut logs = UnixStream::connect(&srv.path).await.unwrap();
    logs.write_all(
        b"GET /v1.41/containers/web/logs?stdout=1&stderr=1&follow=1 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_head(&mut logs, LIMIT).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    out_tx
        .send(chunk(StdStream::Stdout, b"a\n", None))
        .await
        .unwrap();
    // chunk-size line, 10-byte frame, CRLF
    assert_eq!(
        read_exact(&mut logs, 3 + 10 + 2).await,
        b"A\r\n\x01\0\0\0\0\0\0\x02a\n\r\n"
    );
    drop(logs);
    // The server drops the engine's stream once it sees the client gone.
    tokio::time::timeout(LIMIT, out_tx.closed()).await.unwrap();

    let mut wait = UnixStream::connect(&srv.path).await.unwrap();
    wait.write_all(b"POST /containers/web/wait HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    read_head(&mut wait, LIMIT).await;
    drop(wait);
    let dropped = tokio::time::timeout(LIMIT, guard_rx).await.unwrap();
    assert!(dropped.is_err(), "the wait future was dropped");

    drop(srv.stop);
    tokio::time::timeout(LIMIT, srv.task)
        .await
        .unwrap()
        .unwrap();
}

/// Reads one response with a `Content-Length` body: (head, body).
async fn read_response(s: &mut UnixStream) -> (String, String) {
    let head = read_head(s, LIMIT).await;
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or_else(|| panic!("no content-length: {head}"));
    let body = read_exact(s, len).await;
    (head, String::from_utf8(body).unwrap())
}

/// docker-py and urllib3 write the whole body before they read the answer; the server must read
/// (drain) it, or the client dies of EPIPE instead of printing the message. The connection
/// stays usable afterwards.
#[tokio::test]
async fn refusals_drain_a_large_body_before_the_client_reads() {
    let fake = Arc::new(Fake::default());
    let srv = start(fake.clone());
    let body = vec![b'x'; 8 * 1024 * 1024];
    let cases = [
        // unserved route: the 501 fallback
        (
            "POST /v1.44/build?t=x",
            "501",
            "POST /build is not implemented in Wharf yet",
        ),
        // the version middleware refuses before routing
        ("POST /v1.99/build", "400", "client version 1.99 is too new"),
        // a handler that refuses before it reads its body
        (
            "POST /v1.44/images/create?fromImage=missing&tag=tag",
            "404",
            "manifest unknown",
        ),
    ];
    for (line, status, words) in cases {
        let mut s = UnixStream::connect(&srv.path).await.unwrap();
        let head = format!(
            "{line} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        tokio::time::timeout(LIMIT, s.write_all(&body))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{line}: writing the body failed: {e}"));
        let (head, msg) = read_response(&mut s).await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{line}: {head}"
        );
        assert!(msg.contains(words), "{line}: {msg}");
        // Keep-alive: the next request on the same connection is served.
        s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (head, ok) = read_response(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(ok, "OK");
    }
    drop(srv.stop);
    tokio::time::timeout(LIMIT, srv.task)
        .await
        .unwrap()
        .unwrap();
}

/// Go's transport sends a build context chunked, reading the answer while it writes; and
/// urllib3 sends a small JSON body in a write of its own after the head. Both get the message.
#[tokio::test]
async fn refusals_drain_chunked_and_late_bodies() {
    let fake = Arc::new(Fake::default());
    let srv = start(fake.clone());

    let mut s = UnixStream::connect(&srv.path).await.unwrap();
    s.write_all(b"POST /v1.44/build HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    let chunk = vec![b'y'; 64 * 1024];
    for _ in 0..64 {
        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        s.write_all(&chunk).await.unwrap();
        s.write_all(b"\r\n").await.unwrap();
    }
    s.write_all(b"0\r\n\r\n").await.unwrap();
    let (head, msg) = read_response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 501"), "{head}");
    assert!(msg.contains("POST /build is not implemented"), "{msg}");

    let mut s = UnixStream::connect(&srv.path).await.unwrap();
    let json = br#"{"Name":"n1","Driver":"bridge","Options":{},"Labels":{}}"#;
    s.write_all(
        format!(
            "POST /v1.44/networks/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            json.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(json).await.unwrap();
    let (head, msg) = read_response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 501"), "{head}");
    assert!(msg.contains("/networks/create"), "{msg}");
    drop(srv.stop);
    tokio::time::timeout(LIMIT, srv.task)
        .await
        .unwrap()
        .unwrap();
}
