//! Client tests against a tiny in-process hyper server on a temp unix socket (and 127.0.0.1).

use super::*;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wharf_api::stdcopy::encode_frame;

type RespBody = UnsyncBoxBody<Bytes, Infallible>;

fn full(status: u16, body: &str) -> Response<RespBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed_unsync())
        .unwrap()
}

struct Server {
    _dir: Option<tempfile::TempDir>,
    host: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct Cfg {
    api_version: Option<&'static str>,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn handle(cfg: Cfg, mut req: Request<Incoming>) -> Result<Response<RespBody>, Infallible> {
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let te = req
        .headers()
        .get("transfer-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    cfg.seen.lock().unwrap().push(format!(
        "{} {}{}",
        req.method(),
        pq,
        if te.is_empty() {
            "".into()
        } else {
            format!(" te={te}")
        }
    ));
    let path = req.uri().path().to_string();
    let stripped = match path.strip_prefix("/v") {
        Some(rest) => rest
            .split_once('/')
            .map(|(_, p)| format!("/{p}"))
            .unwrap_or_default(),
        None => path.clone(),
    };
    let resp = match stripped.as_str() {
        "/_ping" => {
            let mut b = Response::builder().status(200).header("ostype", "linux");
            if let Some(v) = cfg.api_version {
                b = b.header("api-version", v);
            }
            b.body(Full::new(Bytes::from_static(b"OK")).boxed_unsync())
                .unwrap()
        }
        "/version" => full(
            200,
            r#"{"Platform":{"Name":"Wharf"},"Components":[],"Version":"0.1.0","ApiVersion":"1.44",
                "MinAPIVersion":"1.24","GitCommit":"x","GoVersion":"","Os":"linux","Arch":"amd64",
                "KernelVersion":"6","BuildTime":""}"#,
        ),
        "/containers/nosuch/json" => full(404, r#"{"message":"No such container: nosuch"}"#),
        "/containers/running" => full(
            409,
            r#"{"message":"You cannot remove a running container abc. Stop the container before attempting removal or force remove"}"#,
        ),
        "/containers/text/start" => Response::builder()
            .status(400)
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from_static(b"client version 1.99 is too new\n")).boxed_unsync())
            .unwrap(),
        "/containers/create" => full(201, r#"{"Id":"abc123","Warnings":[]}"#),
        "/containers/c1/start" => full(204, ""),
        "/containers/c1/stop" => full(304, ""),
        "/containers/c1/wait" => full(200, r#"{"Error":null,"StatusCode":3}"#),
        "/containers/json" => full(200, "[]"),
        "/containers/c1/logs" => {
            // Frames cut at awkward places: inside a header and inside a payload.
            let mut all = encode_frame(StdStream::Stdout, b"out 1\n");
            all.extend(encode_frame(StdStream::Stderr, b"err 1\n"));
            all.extend(encode_frame(StdStream::Stdout, b"out 2\n"));
            let pieces: Vec<Bytes> = vec![
                Bytes::copy_from_slice(&all[..3]),
                Bytes::copy_from_slice(&all[3..11]),
                Bytes::copy_from_slice(&all[11..20]),
                Bytes::copy_from_slice(&all[20..]),
            ];
            let s = futures_util::stream::iter(pieces.into_iter().map(|b| Ok(Frame::data(b))));
            Response::builder()
                .status(200)
                .body(StreamBody::new(s).boxed_unsync())
                .unwrap()
        }
        "/containers/c1/attach" => {
            let on_up = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(up) = on_up.await else { return };
                let mut io = TokioIo::new(up);
                let mut stdin = Vec::new();
                // Echo stdin back as one stdout frame, only after the client's EOF: this
                // proves shutdown_write half-closes without closing the read side.
                let _ = io.read_to_end(&mut stdin).await;
                let mut out = encode_frame(StdStream::Stdout, &stdin);
                out.extend(encode_frame(StdStream::Stderr, b"bye\n"));
                let _ = io.write_all(&out).await;
                let _ = io.shutdown().await;
            });
            Response::builder()
                .status(101)
                .header("connection", "Upgrade")
                .header("upgrade", "tcp")
                .header("content-type", "application/vnd.docker.raw-stream")
                .body(Full::new(Bytes::new()).boxed_unsync())
                .unwrap()
        }
        "/containers/gone/attach" => full(404, r#"{"message":"No such container: gone"}"#),
        "/images/localhost:5000/x/push" => {
            let auth = req
                .headers()
                .get("x-registry-auth")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string();
            let pieces: Vec<Bytes> = vec![
                Bytes::from(format!("{{\"status\":\"{auth}\"}}\r\n{{\"sta")),
                Bytes::from_static(b"tus\":\"done\"}\r\n"),
            ];
            let s = futures_util::stream::iter(pieces.into_iter().map(|b| Ok(Frame::data(b))));
            Response::builder()
                .status(200)
                .body(StreamBody::new(s).boxed_unsync())
                .unwrap()
        }
        "/images/denied/push" => full(401, r#"{"message":"authentication required"}"#),
        "/images/create" => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if body.starts_with(b"bad") {
                full(
                    200,
                    "{\"errorDetail\":{\"message\":\"archive/tar: invalid tar header\"},\"error\":\"archive/tar: invalid tar header\"}\r\n",
                )
            } else {
                full(
                    200,
                    &format!("{{\"status\":\"sha256:{:064x}\"}}\r\n", body.len()),
                )
            }
        }
        "/images/localhost:5000/x:v1/json" => {
            full(404, r#"{"message":"No such image: localhost:5000/x:v1"}"#)
        }
        "/images/busybox" => full(
            200,
            r#"[{"Untagged":"busybox:latest"},{"Deleted":"sha256:aa"}]"#,
        ),
        _ => full(404, r#"{"message":"page not found"}"#),
    };
    Ok(resp)
}

fn serve_conn<S>(s: S, cfg: Cfg)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = service_fn(move |req| handle(cfg.clone(), req));
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(s), svc)
            .with_upgrades()
            .await;
    });
}

async fn serve_unix(api_version: Option<&'static str>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let cfg = Cfg {
        api_version,
        seen: seen.clone(),
    };
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            serve_conn(s, cfg.clone());
        }
    });
    Server {
        host: format!("unix://{}", sock.display()),
        _dir: Some(dir),
        seen,
    }
}

#[test]
fn parses_hosts() {
    assert_eq!(
        Endpoint::parse("unix:///run/wharf.sock").unwrap(),
        Endpoint::Unix("/run/wharf.sock".into())
    );
    assert_eq!(
        Endpoint::parse("tcp://127.0.0.1:2375").unwrap(),
        Endpoint::Tcp("127.0.0.1:2375".into())
    );
    assert_eq!(
        Endpoint::parse("http://localhost:80/").unwrap(),
        Endpoint::Tcp("localhost:80".into())
    );
    for bad in [
        "unix://rel.sock",
        "tcp://host",
        "tcp://:80",
        "ftp://x",
        "https://h:1",
        "",
    ] {
        assert!(
            matches!(Endpoint::parse(bad), Err(ClientError::InvalidHost { .. })),
            "{bad}"
        );
    }
}

#[test]
fn encodes_query_values_and_names() {
    assert_eq!(
        encode(r#"{"label":["a=b"]}"#),
        "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D"
    );
    assert_eq!(encode("my-name_1.x"), "my-name_1.x");
    assert_eq!(encode_name("localhost:5000/x:v1"), "localhost:5000/x:v1");
    assert!(has_version_prefix("/v1.41/containers/json"));
    assert!(!has_version_prefix("/volumes"));
}

#[test]
fn import_stream_parsing() {
    let ok = b"{\"status\":\"sha256:abc\"}\r\n";
    assert_eq!(parse_import_stream(ok, "/p").unwrap(), "sha256:abc");
    let err = b"{\"errorDetail\":{\"message\":\"boom\"},\"error\":\"boom\"}\r\n";
    assert!(matches!(
        parse_import_stream(err, "/p"),
        Err(ClientError::Stream { message }) if message == "boom"
    ));
    assert!(parse_import_stream(b"", "/p").is_err());
}

#[tokio::test]
async fn negotiates_min_of_server_and_ours() {
    for (server, want) in [
        (Some("1.41"), "/v1.41/"),
        (Some("1.50"), "/v1.44/"),
        (None, "/v1.24/"),
    ] {
        let srv = serve_unix(server).await;
        let c = Client::new(&srv.host).unwrap();
        c.list_containers(false, None).await.unwrap();
        c.list_containers(true, None).await.unwrap();
        let seen = srv.seen();
        assert_eq!(seen[0], "HEAD /_ping", "{seen:?}");
        // Negotiation happens once per client.
        assert_eq!(
            seen.iter().filter(|s| s.contains("_ping")).count(),
            1,
            "{seen:?}"
        );
        assert!(
            seen[1].starts_with(&format!("GET {want}containers/json")),
            "{seen:?}"
        );
        assert!(seen[2].ends_with("containers/json?all=1"), "{seen:?}");
    }
}

#[tokio::test]
async fn pinned_version_skips_ping() {
    let srv = serve_unix(Some("1.44")).await;
    let c = Client::with_version(
        &srv.host,
        ApiVersion {
            major: 1,
            minor: 41,
        },
    )
    .unwrap();
    let v = c.version().await.unwrap();
    assert_eq!(v.platform.name, "Wharf");
    assert_eq!(srv.seen(), vec!["GET /v1.41/version".to_string()]);
}

#[tokio::test]
async fn api_errors_carry_status_and_message() {
    let srv = serve_unix(Some("1.44")).await;
    let c = Client::new(&srv.host).unwrap();
    let e = c.inspect_container("nosuch").await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(
        matches!(&e, ClientError::Api { status: 404, message } if message == "No such container: nosuch")
    );
    assert!(e.to_string().contains("No such container: nosuch"));

    let e = c.remove("running", false).await.unwrap_err();
    assert!(e.is_conflict());

    let e = c.start("text").await.unwrap_err();
    assert!(
        matches!(&e, ClientError::Api { status: 400, message } if message == "client version 1.99 is too new")
    );

    // Raw requests return error statuses instead of failing.
    let raw = c
        .request(Method::GET, "/containers/nosuch/json", None)
        .await
        .unwrap();
    assert_eq!(raw.status, 404);
    assert!(raw.text().contains("No such container"));
}

#[tokio::test]
async fn container_calls() {
    let srv = serve_unix(Some("1.44")).await;
    let c = Client::new(&srv.host).unwrap();
    let req = ContainerCreateRequest::default();
    let created = c.create_container(Some("web one"), &req).await.unwrap();
    assert_eq!(created.id, "abc123");
    c.start("c1").await.unwrap();
    // 304: already stopped is not an error.
    c.stop("c1", Some(1)).await.unwrap();
    let w = c.wait("c1", Some("next-exit")).await.unwrap();
    assert_eq!(w.status_code, 3);
    let h = c.wait_registered("c1", None).await.unwrap();
    assert_eq!(h.result().await.unwrap().status_code, 3);
    let filtered = c
        .list_containers(true, Some(r#"{"label":["a=b"]}"#))
        .await
        .unwrap();
    assert!(filtered.is_empty());
    let seen = srv.seen();
    assert!(
        seen.contains(&"POST /v1.44/containers/create?name=web%20one".to_string()),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"POST /v1.44/containers/c1/stop?t=1".to_string()),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"POST /v1.44/containers/c1/wait?condition=next-exit".to_string()),
        "{seen:?}"
    );
    assert!(
        seen.contains(
            &"GET /v1.44/containers/json?all=1&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D"
                .to_string()
        ),
        "{seen:?}"
    );
}

#[tokio::test]
async fn logs_are_demuxed_across_chunk_boundaries() {
    let srv = serve_unix(Some("1.44")).await;
    let c = Client::new(&srv.host).unwrap();
    let frames = c.logs("c1", &LogsOptions::default()).await.unwrap();
    assert_eq!(
        frames,
        vec![
            (StdStream::Stdout, b"out 1\n".to_vec()),
            (StdStream::Stderr, b"err 1\n".to_vec()),
            (StdStream::Stdout, b"out 2\n".to_vec()),
        ]
    );
    assert_eq!(payload_of(&frames, StdStream::Stdout), b"out 1\nout 2\n");
    let opts = LogsOptions {
        follow: true,
        timestamps: true,
        tail: Some(2),
        ..LogsOptions::default()
    };
    let mut s = c.logs_stream("c1", &opts).await.unwrap();
    let mut n = 0;
    while let Some(f) = s.next().await {
        f.unwrap();
        n += 1;
    }
    assert_eq!(n, 3);
    // Raw mode (TTY containers) hands chunks through untouched.
    let raw = c
        .logs(
            "c1",
            &LogsOptions {
                tty: true,
                ..LogsOptions::default()
            },
        )
        .await
        .unwrap();
    let joined: Vec<u8> = raw.into_iter().flat_map(|(_, p)| p).collect();
    assert_eq!(joined.len(), 3 * 8 + 18);
    let seen = srv.seen();
    assert!(
        seen.contains(
            &"GET /v1.44/containers/c1/logs?stdout=1&stderr=1&tail=2&follow=1&timestamps=1"
                .to_string()
        ),
        "{seen:?}"
    );
}

#[tokio::test]
async fn attach_hijacks_and_half_closes() {
    let srv = serve_unix(Some("1.44")).await;
    let c = Client::new(&srv.host).unwrap();
    let mut a = c.attach("c1", true).await.unwrap();
    a.write_stdin(b"hello ").await.unwrap();
    a.write_stdin(b"world\n").await.unwrap();
    a.shutdown_write().await.unwrap();
    a.shutdown_write().await.unwrap();
    let frames = a.collect_frames().await.unwrap();
    assert_eq!(
        frames,
        vec![
            (StdStream::Stdout, b"hello world\n".to_vec()),
            (StdStream::Stderr, b"bye\n".to_vec())
        ]
    );
    // Without stdin the write side is closed at once, so the server's read_to_end returns.
    let a = c.attach("c1", false).await.unwrap();
    let (mut r, _w) = a.split();
    let f = r.next_frame().await.unwrap().unwrap();
    assert_eq!(f, (StdStream::Stdout, Vec::new()));

    let e = c.attach("gone", false).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let seen = srv.seen();
    assert!(
        seen.contains(
            &"POST /v1.44/containers/c1/attach?stream=1&stdout=1&stderr=1&stdin=1".to_string()
        ),
        "{seen:?}"
    );
}

#[tokio::test]
async fn import_sends_chunked_and_reads_the_id() {
    let srv = serve_unix(Some("1.44")).await;
    let c = Client::new(&srv.host).unwrap();
    let id = c
        .import_image(vec![7u8; 100_000], "busybox", Some("latest"))
        .await
        .unwrap();
    assert_eq!(id, format!("sha256:{:064x}", 100_000));
    let e = c
        .import_image(b"bad tar".to_vec(), "x", None)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Stream { .. }), "{e}");
    let seen = srv.seen();
    assert!(
        seen.contains(
            &"POST /v1.44/images/create?fromSrc=-&repo=busybox&tag=latest te=chunked".to_string()
        ),
        "{seen:?}"
    );
}

#[tokio::test]
async fn image_calls() {
    let srv = serve_unix(Some("1.44")).await;
    let c = Client::new(&srv.host).unwrap();
    let e = c.inspect_image("localhost:5000/x:v1").await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let items = c.remove_image("busybox", false).await.unwrap();
    assert_eq!(
        items,
        vec![
            ImageDeleteItem::Untagged("busybox:latest".into()),
            ImageDeleteItem::Deleted("sha256:aa".into())
        ]
    );
}

#[tokio::test]
async fn tcp_on_loopback() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let cfg = Cfg {
        api_version: Some("1.43"),
        seen: seen.clone(),
    };
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            serve_conn(s, cfg.clone());
        }
    });
    let c = Client::new(&format!("tcp://{addr}")).unwrap();
    let ping = c.ping().await.unwrap();
    assert_eq!(ping.api_version.as_deref(), Some("1.43"));
    assert_eq!(ping.os_type.as_deref(), Some("linux"));
    assert_eq!(c.api_version().await.unwrap().to_string(), "1.43");
}

#[tokio::test]
async fn connect_failure_is_a_transport_error() {
    let dir = tempfile::tempdir().unwrap();
    let c = Client::new(&format!("unix://{}/none.sock", dir.path().display())).unwrap();
    let e = c.ping().await.unwrap_err();
    assert!(matches!(e, ClientError::Connect { .. }), "{e}");
    assert!(!e.is_not_found());
}

/// A unix server that counts the connections it accepts; `keep_alive: false` closes each
/// connection after one response, as a daemon that went away between two calls would.
async fn serve_counting(keep_alive: bool) -> (Server, Arc<std::sync::atomic::AtomicUsize>) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let conns = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cfg = Cfg {
        api_version: Some("1.44"),
        seen: seen.clone(),
    };
    let counter = conns.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let cfg = cfg.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(cfg.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(keep_alive)
                    .serve_connection(TokioIo::new(s), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    let server = Server {
        host: format!("unix://{}", sock.display()),
        _dir: Some(dir),
        seen,
    };
    (server, conns)
}

#[tokio::test]
async fn finished_exchanges_reuse_one_connection() {
    use std::sync::atomic::Ordering;
    let (s, conns) = serve_counting(true).await;
    let c = Client::new(&s.host).unwrap();
    c.version().await.unwrap();
    c.version().await.unwrap();
    c.ping().await.unwrap();
    // ping, version, version, ping: one connection.
    assert_eq!(conns.load(Ordering::SeqCst), 1, "{:?}", s.seen());
    // A response still being read keeps its connection; the next call opens another.
    let held = c
        .request_streaming(Method::GET, "/version", None)
        .await
        .unwrap();
    c.version().await.unwrap();
    assert_eq!(conns.load(Ordering::SeqCst), 2);
    drop(held);

    // A server that closes after each answer: every call still succeeds, on a new connection.
    let (s, conns) = serve_counting(false).await;
    let c = Client::new(&s.host).unwrap();
    for _ in 0..3 {
        c.version().await.unwrap();
    }
    assert_eq!(conns.load(Ordering::SeqCst), 4, "{:?}", s.seen());
}

#[tokio::test]
async fn streams_carry_extra_headers_and_refuse_errors() {
    let srv = serve_unix(Some("1.44")).await;
    let c = Client::new(&srv.host).unwrap();
    let mut resp = c
        .stream_with_headers(
            Method::POST,
            "/images/localhost:5000/x/push?tag=v1",
            &[("X-Registry-Auth", "e30=")],
        )
        .await
        .unwrap();
    let mut body = Vec::new();
    while let Some(chunk) = resp.next_chunk().await {
        body.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(body, b"{\"status\":\"e30=\"}\r\n{\"status\":\"done\"}\r\n");
    let err = c
        .stream_with_headers(Method::POST, "/images/denied/push", &[])
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(
        err.to_string(),
        "Error response from daemon: authentication required (HTTP 401)"
    );
    assert!(srv
        .seen()
        .contains(&"POST /v1.44/images/localhost:5000/x/push?tag=v1".to_string()));
}
