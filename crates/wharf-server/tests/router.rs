// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use common::{chunk, Fake};
use futures_util::{FutureExt, StreamExt};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;
use wharf_api::stdcopy::StdStream;

fn app() -> (Arc<Fake>, Router) {
    let fake = Arc::new(Fake::default());
    (fake.clone(), wharf_server::router(fake))
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    body: Body,
) -> (StatusCode, HeaderMap, Bytes) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(body)
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, HeaderMap, Bytes) {
    call(app, Method::GET, uri, Body::empty()).await
}

async fn post(app: &Router, uri: &str) -> (StatusCode, HeaderMap, Bytes) {
    call(app, Method::POST, uri, Body::empty()).await
}

fn message(body: &Bytes) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn ping_headers() {
    let (_, app) = app();
    for uri in ["/_ping", "/v1.41/_ping"] {
        let (s, h, b) = get(&app, uri).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(&b[..], b"OK");
        assert_eq!(h["api-version"], "1.44");
        assert_eq!(h["docker-experimental"], "false");
        assert_eq!(h["ostype"], "linux");
        assert!(h["server"].to_str().unwrap().starts_with("Wharf/"));
        assert_eq!(h["cache-control"], "no-cache, no-store, must-revalidate");
        assert_eq!(h["pragma"], "no-cache");
        assert_eq!(h["content-type"], "text/plain; charset=utf-8");
    }
    let (s, h, b) = call(&app, Method::HEAD, "/_ping", Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.is_empty());
    assert_eq!(h["content-length"], "0");
    assert_eq!(h["api-version"], "1.44");
}

#[tokio::test]
async fn version_prefixes() {
    let (fake, app) = app();
    let (s, h, _) = get(&app, "/version").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/json");
    let (s, _, _) = get(&app, "/v1.41/version").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, b) = get(&app, "/v1.44/info").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(&b[..], br#"{"ID":"fake"}"#);
    assert_eq!(fake.calls(), ["version", "version", "info"]);

    let (s, h, b) = get(&app, "/v1.99/version").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(
        message(&b),
        "client version 1.99 is too new. Maximum supported API version is 1.44"
    );
    assert_eq!(h["api-version"], "1.44");

    let (s, h, b) = get(&app, "/v1.11/version").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(h["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        String::from_utf8_lossy(&b).trim_end(),
        "client version 1.11 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
    );
    assert_eq!(
        fake.calls().len(),
        3,
        "rejected versions never reach the backend"
    );
}

#[tokio::test]
async fn python_booleans_and_container_verbs() {
    let (fake, app) = app();
    let (s, _, _) = call(
        &app,
        Method::DELETE,
        "/v1.44/containers/web?v=False&link=False&force=True",
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = call(
        &app,
        Method::DELETE,
        "/containers/web?force=1&v=1",
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        post(&app, "/v1.41/containers/web/start").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post(&app, "/v1.41/containers/web/stop?t=10").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post(&app, "/v1.41/containers/web/stop").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post(&app, "/v1.41/containers/web/restart?t=3&signal=SIGINT")
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post(&app, "/v1.41/containers/web/kill?signal=WINCH")
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post(&app, "/v1.41/containers/web/rename?name=new").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post(&app, "/v1.41/containers/web/resize?h=40&w=120")
            .await
            .0,
        StatusCode::OK
    );
    let (s, _, b) = get(&app, "/v1.41/containers/web/json?size=True").await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8_lossy(&b).contains("\"Id\":\"web\""));
    assert_eq!(
        fake.calls(),
        [
            "remove web force=true v=false",
            "remove web force=true v=true",
            "start web",
            "stop web None Some(10)",
            "stop web None None",
            "restart web Some(\"SIGINT\") Some(3)",
            "kill web Some(\"WINCH\")",
            "rename web new",
            "resize web 40x120",
            "inspect web size=true",
        ]
    );
    let (s, _, b) = post(&app, "/containers/web/stop?t=soon").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(message(&b).contains("soon"));
}

#[tokio::test]
async fn both_filter_dialects() {
    let (fake, app) = app();
    // The CLI's map of booleans.
    let (s, _, _) = get(
        &app,
        "/v1.41/containers/json?all=1&filters=%7B%22status%22%3A%7B%22paused%22%3Atrue%7D%7D",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let o = fake.list_opts.lock().unwrap().take().unwrap();
    assert!(o.all);
    assert_eq!(o.filters.get("status"), ["paused"]);
    // compose's list form, with Python booleans and limit=-1.
    let (s, _, _) = get(&app, "/v1.41/containers/json?limit=-1&all=False&size=0&trunc_cmd=0&filters=%7B%22label%22%3A+%5B%22com.docker.compose.project%3Dcap%22%2C+%22com.docker.compose.oneoff%3DFalse%22%5D%7D").await;
    assert_eq!(s, StatusCode::OK);
    let o = fake.list_opts.lock().unwrap().take().unwrap();
    assert!(!o.all);
    assert_eq!(o.limit, None);
    assert_eq!(
        o.filters.get("label"),
        [
            "com.docker.compose.project=cap",
            "com.docker.compose.oneoff=False"
        ]
    );
    // Images too.
    let (s, _, _) = get(&app, "/v1.41/images/json?filters=%7B%22reference%22%3A%7B%22busybox%22%3Atrue%7D%7D&only_ids=0&all=0").await;
    assert_eq!(s, StatusCode::OK);
    let o = fake.image_list_opts.lock().unwrap().take().unwrap();
    assert_eq!(o.filters.get("reference"), ["busybox"]);
    // Bad JSON in filters is a 400.
    let (s, _, b) = get(&app, "/containers/json?filters=%7Bnope").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(message(&b).contains("invalid filter"));
}

#[tokio::test]
async fn create_parses_json_itself() {
    let (fake, app) = app();
    let body = r#"{"Image":"busybox","Cmd":["echo","hi"],"HostConfig":{"AutoRemove":true}}"#;
    let (s, h, b) = call(
        &app,
        Method::POST,
        "/v1.44/containers/create?name=web",
        Body::from(body),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(&b[..], br#"{"Id":"abc123","Warnings":[]}"#);
    let (name, req) = fake.create_req.lock().unwrap().take().unwrap();
    assert_eq!(name.as_deref(), Some("web"));
    assert_eq!(req.config.image, "busybox");

    let (s, _, b) = call(
        &app,
        Method::POST,
        "/containers/create",
        Body::from("{\"Image\":"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        message(&b).starts_with("invalid JSON: EOF"),
        "{}",
        message(&b)
    );
    let (s, _, b) = call(
        &app,
        Method::POST,
        "/containers/create",
        Body::from("{\"Cmd\":7}"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Go's words, naming the field (dockerd 20.10 answers this with a 500).
    assert_eq!(
        message(&b),
        "json: cannot unmarshal number 7 into Go struct field ContainerConfigWrapper.Cmd of type strslice.StrSlice"
    );
    let (s, _, b) = post(&app, "/containers/create").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        message(&b),
        "Config cannot be empty in order to create a container"
    );
}

#[tokio::test]
async fn error_kinds_map_to_statuses() {
    let (_, app) = app();
    let (s, h, b) = get(&app, "/v1.41/containers/missing/json").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(message(&b), "No such container: missing");
    let (s, _, b) = call(
        &app,
        Method::DELETE,
        "/v1.41/containers/busy",
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(message(&b).starts_with("You cannot remove a running container"));
    let (s, _, b) = post(&app, "/v1.41/containers/running/start").await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    assert!(b.is_empty());
    let (s, _, b) = get(&app, "/v1.41/images/missing/json").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(message(&b), "No such image: missing");
    for kind in [
        (wharf_api::ErrorKind::Unavailable, 503),
        (wharf_api::ErrorKind::Forbidden, 403),
        (wharf_api::ErrorKind::Unauthorized, 401),
        (wharf_api::ErrorKind::NotImplemented, 501),
        (wharf_api::ErrorKind::Internal, 500),
        (wharf_api::ErrorKind::InvalidArgument, 400),
    ] {
        assert_eq!(wharf_server::status_for(kind.0).as_u16(), kind.1);
    }
}

#[tokio::test]
async fn unknown_routes_are_501_and_inspect_probes_are_404() {
    let (_, app) = app();
    let (s, h, b) = post(&app, "/v1.44/build").await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(h["api-version"], "1.44");
    assert_eq!(message(&b), "POST /build is not implemented in Wharf yet");
    let (s, _, b) = post(&app, "/v1.44/containers/prune").await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        message(&b),
        "POST /containers/prune is not implemented in Wharf yet"
    );
    // A backend without exec (the fake) answers 501.
    let (s, _, b) = post(&app, "/v1.44/exec/abc/start").await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        message(&b),
        "POST /exec/{id}/start is not implemented in Wharf yet"
    );
    // Resize needs numeric h and w, as in dockerd.
    let (s, _, b) = post(&app, "/v1.44/containers/web/resize?h=x&w=1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(message(&b).contains("invalid syntax"), "{}", message(&b));
    // A known path with another method is still a 501, not axum's bare 405.
    let (s, _, b) = get(&app, "/v1.44/containers/web/start").await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        message(&b),
        "GET /containers/web/start is not implemented in Wharf yet"
    );
    let (s, _, _) = post(&app, "/v1.44/images/localhost:5000/a/b/push?tag=v1").await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    let (s, _, _) = get(&app, "/v1.44/networks").await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);

    let (s, _, b) = get(&app, "/v1.44/networks/nope").await;
    assert_eq!(
        (s, message(&b).as_str()),
        (StatusCode::NOT_FOUND, "network nope not found")
    );
    let (s, _, b) = get(&app, "/v1.44/volumes/nope").await;
    assert_eq!(
        (s, message(&b).as_str()),
        (StatusCode::NOT_FOUND, "get nope: no such volume")
    );
    let (s, _, b) = get(&app, "/v1.44/plugins/vieux/sshfs:latest/json").await;
    assert_eq!(
        (s, message(&b).as_str()),
        (
            StatusCode::NOT_FOUND,
            "plugin \"vieux/sshfs:latest\" not found"
        )
    );
}

#[tokio::test]
async fn volume_routes_parse_and_answer_as_dockerd() {
    let (fake, app) = app();
    let body = r#"{"name":"data","Labels":{"a":"b"},"DriverOpts":null}"#;
    let (s, _, b) = call(
        &app,
        Method::POST,
        "/v1.44/volumes/create",
        Body::from(body),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["Name"], "data");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Options"], serde_json::Value::Null);
    let req = fake.volume_req.lock().unwrap().clone().unwrap();
    assert_eq!(req.name, "data");
    assert_eq!(req.labels.unwrap()["a"], "b");
    // An empty body is an anonymous volume, as dockerd.
    let (s, _, _) = post(&app, "/v1.44/volumes/create").await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(fake.volume_req.lock().unwrap().clone().unwrap().name, "");
    // Swarm's cluster volumes are refused by name, not dropped.
    let body = r#"{"Name":"c","ClusterVolumeSpec":{"Group":"g"}}"#;
    let (s, _, b) = call(
        &app,
        Method::POST,
        "/v1.44/volumes/create",
        Body::from(body),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    assert!(message(&b).contains("ClusterVolumeSpec"), "{}", message(&b));

    let (s, _, b) = get(
        &app,
        "/v1.44/volumes?filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["Volumes"][0]["Name"], "data");
    assert_eq!(v["Warnings"], serde_json::json!([]));
    let f = fake.volume_filters.lock().unwrap().clone().unwrap();
    assert_eq!(f.get("label"), ["a=b"]);

    let (s, _, b) = get(&app, "/v1.44/volumes/data").await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["Driver"], "local");
    let (s, _, _) = call(
        &app,
        Method::DELETE,
        "/v1.44/volumes/data?force=1",
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, b) = call(&app, Method::DELETE, "/v1.44/volumes/nope", Body::empty()).await;
    assert_eq!(
        (s, message(&b).as_str()),
        (StatusCode::NOT_FOUND, "get nope: no such volume")
    );
    let (s, _, b) = post(
        &app,
        "/v1.44/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%7D",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["VolumesDeleted"], serde_json::json!(["gone"]));
    assert_eq!(v["SpaceReclaimed"], 7);
    // Cluster volume update is swarm's.
    let (s, _, _) = call(
        &app,
        Method::PUT,
        "/v1.44/volumes/data?version=1",
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    assert!(fake
        .calls()
        .contains(&"volume_remove data force=true".to_string()));
}

#[tokio::test]
async fn image_names_with_slashes_and_ports() {
    let (fake, app) = app();
    assert_eq!(
        get(&app, "/v1.41/images/localhost:5000/a/b:tag/json")
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(get(&app, "/v1.41/images/json/json").await.0, StatusCode::OK);
    assert_eq!(
        get(&app, "/v1.41/images/busybox/history").await.0,
        StatusCode::OK
    );
    let (s, _, b) = post(
        &app,
        "/v1.41/images/localhost:5000/a/b:tag/tag?repo=docker.io%2Flibrary%2Fcaptest&tag=v2",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(b.is_empty());
    let (s, _, b) = call(
        &app,
        Method::DELETE,
        "/v1.41/images/localhost:5000/a/b:tag?force=False&noprune=1",
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        &b[..],
        br#"[{"Untagged":"localhost:5000/a/b:tag"},{"Deleted":"sha256:feed"}]"#
    );
    assert_eq!(
        get(&app, "/images/json?all=True&digests=1").await.0,
        StatusCode::OK
    );
    assert_eq!(
        fake.calls(),
        [
            "image inspect localhost:5000/a/b:tag",
            "image inspect json",
            "history busybox",
            "tag localhost:5000/a/b:tag docker.io/library/captest v2",
            "rmi localhost:5000/a/b:tag force=false noprune=true",
            "images all=true digests=true",
        ]
    );
}

#[tokio::test]
async fn import_streams_the_body() {
    let (fake, app) = app();
    let pieces: Vec<Result<Bytes, std::io::Error>> = (0..5)
        .map(|i| Ok(Bytes::from(vec![i as u8; 32 * 1024])))
        .collect();
    let body = Body::from_stream(futures_util::stream::iter(pieces));
    let uri = "/v1.41/images/create?changes=CMD+%5B%22sh%22%5D&changes=ENV+A%3D1&fromSrc=-&message=imported&repo=capimport%3Av1";
    let (s, h, b) = call(&app, Method::POST, uri, body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(&b[..], b"{\"status\":\"sha256:feed\"}\r\n");
    let (opts, sizes, total) = fake.import_got.lock().unwrap().take().unwrap();
    assert_eq!(opts.repo, "capimport:v1");
    assert_eq!(opts.message, "imported");
    assert_eq!(opts.changes, ["CMD [\"sh\"]", "ENV A=1"]);
    assert_eq!(total, 5 * 32 * 1024);
    assert!(
        sizes.len() >= 5,
        "the body arrived in pieces, not buffered: {sizes:?}"
    );
}

#[tokio::test]
async fn logs_stdcopy_and_timestamps() {
    let (fake, app) = app();
    let ts = "2024-05-01T10:00:00.000000001Z";
    *fake.output.lock().unwrap() = vec![
        chunk(StdStream::Stdout, b"out\n", Some(ts)),
        chunk(StdStream::Stderr, b"err\n", Some(ts)),
    ];
    let req = Request::get("/v1.41/containers/web/logs?stdout=1&stderr=1&tail=all")
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers().get("content-type").is_none(),
        "1.41 sends none"
    );
    // One stdcopy frame per chunk.
    let mut frames = Vec::new();
    let mut body = resp.into_body().into_data_stream();
    while let Some(f) = body.next().await {
        frames.push(f.unwrap());
    }
    assert_eq!(
        frames,
        [
            Bytes::from_static(b"\x01\0\0\0\0\0\0\x04out\n"),
            Bytes::from_static(b"\x02\0\0\0\0\0\0\x04err\n"),
        ]
    );

    let (s, h, b) = get(
        &app,
        "/v1.44/containers/web/logs?stdout=True&stderr=False&timestamps=1&tail=5",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        h["content-type"],
        "application/vnd.docker.multiplexed-stream"
    );
    let mut want = vec![1u8, 0, 0, 0, 0, 0, 0, (ts.len() + 1 + 4) as u8];
    want.extend_from_slice(format!("{ts} out\n").as_bytes());
    assert!(b.starts_with(&want));

    *fake.tty.lock().unwrap() = true;
    let (_, h, b) = get(&app, "/containers/web/logs?stdout=1").await;
    assert_eq!(h["content-type"], "application/vnd.docker.raw-stream");
    assert_eq!(&b[..], b"out\nerr\n");

    let (s, _, b) = get(&app, "/containers/web/logs?stdout=0&stderr=False").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(message(&b), "You must choose at least one stream");
    let calls = fake.calls();
    assert_eq!(
        calls[0],
        "logs web out=true err=true follow=false tail=None ts=false"
    );
    assert_eq!(
        calls[1],
        "logs web out=true err=false follow=false tail=Some(5) ts=true"
    );
    assert_eq!(calls.len(), 3, "the 400 never reaches the backend");
}

#[tokio::test]
async fn wait_is_a_pending_stream_until_exit() {
    let (fake, app) = app();
    let (tx, rx) = tokio::sync::oneshot::channel();
    *fake.wait_release.lock().unwrap() = Some(rx);
    let req = Request::post("/v1.41/containers/web/wait?condition=next-exit")
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body().into_data_stream();
    // The backend was asked (it holds the only way to release the wait), and anything the
    // server could have set going has had its turn on this single-threaded runtime: a body
    // that did not wait for the exit would be ready now.
    assert_eq!(fake.calls(), ["wait web NextExit"]);
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(
        body.next().now_or_never().is_none(),
        "the body must still be pending"
    );
    tx.send(wharf_api::container::WaitResponse {
        error: None,
        status_code: 4,
    })
    .unwrap();
    let got = body.next().await.unwrap().unwrap();
    assert_eq!(&got[..], b"{\"Error\":null,\"StatusCode\":4}\n");
    assert_eq!(fake.calls(), ["wait web NextExit"]);

    let (s, _, _) = post(&app, "/containers/missing/wait").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = post(&app, "/containers/web/wait?condition=bogus").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn attach_without_upgrade_streams() {
    let (fake, app) = app();
    *fake.output.lock().unwrap() = vec![chunk(StdStream::Stdout, b"hi\n", None)];
    let (s, h, b) = post(&app, "/v1.41/containers/web/attach?stream=1&stdout=1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/vnd.docker.raw-stream");
    assert_eq!(&b[..], b"\x01\0\0\0\0\0\0\x03hi\n");
    let (s, _, b) = post(&app, "/v1.41/containers/missing/attach?stream=1&stdout=1").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(message(&b), "No such container: missing");
}

#[tokio::test]
async fn swarm_routes_answer_as_a_node_outside_a_swarm() {
    let (_, app) = app();
    let manager = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
    for (method, uri) in [
        (Method::GET, "/v1.44/swarm"),
        (Method::GET, "/v1.44/swarm/unlockkey"),
        (Method::POST, "/v1.44/swarm/update?version=1"),
        (Method::POST, "/v1.44/swarm/unlock"),
        (Method::GET, "/v1.44/nodes"),
        (Method::GET, "/v1.44/nodes/n1"),
        (Method::DELETE, "/v1.44/nodes/n1"),
        (Method::POST, "/v1.44/nodes/n1/update?version=1"),
        (Method::GET, "/v1.44/services?status=true"),
        (Method::POST, "/v1.44/services/create"),
        (Method::GET, "/v1.44/services/web"),
        (Method::DELETE, "/v1.44/services/web"),
        (Method::POST, "/v1.44/services/web/update?version=1"),
        (Method::GET, "/v1.44/services/web/logs?stdout=1"),
        (Method::GET, "/v1.44/tasks"),
        (Method::GET, "/v1.44/tasks/t1"),
        (Method::GET, "/v1.44/tasks/t1/logs?stdout=1"),
        (Method::GET, "/v1.44/secrets"),
        (Method::POST, "/v1.44/secrets/create"),
        (Method::GET, "/v1.44/secrets/s1"),
        (Method::POST, "/v1.44/secrets/s1/update?version=1"),
        (Method::DELETE, "/v1.44/configs/c1"),
        (Method::GET, "/configs"),
    ] {
        let (s, _, b) = call(&app, method.clone(), uri, Body::from("{}")).await;
        assert_eq!(
            (s, message(&b).as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, manager),
            "{method} {uri}"
        );
    }
    let (s, _, b) = post(&app, "/v1.44/swarm/leave?force=1").await;
    assert_eq!(
        (s, message(&b).as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "This node is not part of a swarm"
        )
    );
    // Joining a swarm is something Wharf cannot do yet.
    let (s, _, _) = post(&app, "/v1.44/swarm/init").await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
}

/// Go's encoding/json matches field names case-insensitively; clients rely on it (docker-py
/// sends `detachKeys` in the exec body).
#[tokio::test]
async fn body_field_names_match_case_insensitively() {
    let (fake, app) = app();
    let body = r#"{"AttachStdout":true,"Cmd":["true"],"detachKeys":"ctrl-x,x","tty":true}"#;
    let (s, _, b) = call(
        &app,
        Method::POST,
        "/v1.44/containers/web/exec",
        Body::from(body),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b:?}");
    let req = fake.exec_req.lock().unwrap().clone().unwrap();
    assert_eq!(req.detach_keys, "ctrl-x,x");
    assert!(req.tty && req.attach_stdout);

    let body = r#"{"image":"busybox","cmd":["true"],"Labels":{"memory":"x"},
        "hostconfig":{"memory":16777216,"RestartPolicy":{"name":"always"}}}"#;
    let (s, _, b) = call(
        &app,
        Method::POST,
        "/v1.44/containers/create",
        Body::from(body),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b:?}");
    let (_, req) = fake.create_req.lock().unwrap().clone().unwrap();
    assert_eq!(req.config.image, "busybox");
    assert_eq!(
        req.config.labels.unwrap()["memory"],
        "x",
        "label keys are data"
    );
    let hc = req.host_config.unwrap();
    assert_eq!(hc.resources.memory, 16777216);
    assert_eq!(hc.restart_policy.name, "always");

    let body = r#"{"memory":1024,"restartpolicy":{"Name":"no"}}"#;
    let (s, _, _) = call(
        &app,
        Method::POST,
        "/v1.44/containers/web/update",
        Body::from(body),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let req = fake.update_req.lock().unwrap().clone().unwrap();
    assert_eq!(req.resources.memory, 1024);
    assert_eq!(req.restart_policy.unwrap().name, "no");
}

/// moby v25: `Container` and `ContainerConfig` until 1.45, `VirtualSize` only before 1.44.
#[tokio::test]
async fn image_inspect_shape_follows_the_requested_version() {
    let (_, app) = app();
    let json = |b: &Bytes| serde_json::from_slice::<serde_json::Value>(b).unwrap();
    let (s, _, b) = get(&app, "/v1.44/images/busybox/json").await;
    assert_eq!(s, StatusCode::OK);
    let v = json(&b);
    assert_eq!(v["Container"], "");
    assert_eq!(v["ContainerConfig"]["Cmd"], serde_json::Value::Null);
    assert_eq!(v["ContainerConfig"]["Hostname"], "");
    assert!(v.get("VirtualSize").is_none());
    let (_, _, b) = get(&app, "/v1.41/images/busybox/json").await;
    let v = json(&b);
    assert_eq!(v["VirtualSize"], 42);
    assert!(v.get("ContainerConfig").is_some());
}

/// Every query parameter is applied or refused: one Wharf cannot serve yet is a 400 naming it
/// when it asks for something, and accepted at its default.
#[tokio::test]
async fn unserved_query_parameters_are_refused_by_name() {
    let (fake, app) = app();
    for (method, uri, name) in [
        (
            Method::GET,
            "/v1.44/images/json?shared-size=1",
            "shared-size",
        ),
        (Method::DELETE, "/v1.44/containers/web?link=1", "link"),
    ] {
        let (s, _, b) = call(&app, method.clone(), uri, Body::from("{}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}");
        assert!(
            message(&b).contains(&format!("'{name}' parameter")),
            "{}",
            message(&b)
        );
    }
    assert!(fake.calls().is_empty(), "nothing reached the backend");
    let (s, _, _) = get(&app, "/v1.44/images/json?shared-size=False&manifests=1").await;
    assert_eq!(s, StatusCode::OK, "defaults and non-1.44 parameters pass");
    let (s, _, _) = call(
        &app,
        Method::DELETE,
        "/containers/web?link=0",
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

async fn call_with(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

#[tokio::test]
async fn pull_streams_messages_as_dockerd_does() {
    let (fake, app) = app();
    let (s, h, b) = call_with(
        &app,
        Method::POST,
        "/v1.41/images/create?fromImage=localhost%3A5000%2Fx&tag=latest&platform=linux%2Farm64",
        &[("X-Registry-Auth", "e30=")],
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(
        std::str::from_utf8(&b).unwrap(),
        concat!(
            "{\"status\":\"Pulling from x\",\"id\":\"latest\"}\r\n",
            "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":126,\"total\":126},\"progress\":\"[==================================================\\u003e]     126B/126B\",\"id\":\"b3da9f41977a\"}\r\n",
            "{\"status\":\"Status: Downloaded newer image for a\\u003eb\\u0026c\"}\r\n",
        )
    );
    let o = fake.pull_opts.lock().unwrap().clone().unwrap();
    assert_eq!(
        (
            o.from_image.as_str(),
            o.tag.as_str(),
            o.platform.as_str(),
            o.registry_auth.as_str()
        ),
        ("localhost:5000/x", "latest", "linux/arm64", "e30=")
    );
}

#[tokio::test]
async fn pull_errors_before_the_first_message_are_ordinary_answers() {
    let (_, app) = app();
    let (s, h, b) = post(&app, "/v1.41/images/create?fromImage=missing&tag=tag").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(
        message(&b),
        "manifest for localhost:5000/nosuch:tag not found: manifest unknown: manifest unknown"
    );
    // After it, an errorDetail line under the 200 already sent, and nothing more.
    let (s, _, b) = post(&app, "/v1.41/images/create?fromImage=broken&tag=v1").await;
    assert_eq!(s, StatusCode::OK);
    let lines: Vec<&str> = std::str::from_utf8(&b)
        .unwrap()
        .split_terminator("\r\n")
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines[2],
        "{\"errorDetail\":{\"message\":\"unexpected EOF\"},\"error\":\"unexpected EOF\"}"
    );
}

#[tokio::test]
async fn a_pull_whose_client_goes_away_is_dropped() {
    let (fake, app) = app();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let (guard_tx, mut guard_rx) = tokio::sync::oneshot::channel();
    *fake.pull_messages.lock().unwrap() = Some(rx);
    *fake.pull_guard.lock().unwrap() = Some(guard_tx);
    tx.send(Ok(wharf_api::jsonmessage::JsonMessage::status(
        "v1",
        "Pulling from x",
    )))
    .await
    .unwrap();
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1.44/images/create?fromImage=x&tag=v1")
        .body(Body::empty())
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(
        &first[..],
        b"{\"status\":\"Pulling from x\",\"id\":\"v1\"}\r\n"
    );
    assert!(guard_rx
        .try_recv()
        .is_err_and(|e| e == tokio::sync::oneshot::error::TryRecvError::Empty));
    drop(body);
    // The engine's stream went with the body.
    assert!(guard_rx.await.is_err());
}

#[tokio::test]
async fn auth_and_distribution_inspect() {
    let (fake, app) = app();
    let body = r#"{"Username":"u","password":"right","serveraddress":"localhost:5000"}"#;
    let (s, _, b) = call(&app, Method::POST, "/v1.44/auth", Body::from(body)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&b).unwrap(),
        serde_json::json!({"IdentityToken": "", "Status": "Login Succeeded"})
    );
    let wrong = r#"{"username":"u","password":"no","serveraddress":"localhost:5000"}"#;
    let (s, _, b) = call(&app, Method::POST, "/v1.44/auth", Body::from(wrong)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(message(&b), "unauthorized: incorrect username or password");
    let (s, _, _) = call(&app, Method::POST, "/v1.44/auth", Body::empty()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, _, b) = call_with(
        &app,
        Method::GET,
        "/v1.44/distribution/localhost:5000/x:latest/json",
        &[("X-Registry-Auth", "e30=")],
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&b).unwrap(),
        serde_json::json!({
            "Descriptor": {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": "sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6",
                "size": 527
            },
            "Platforms": [{"architecture": "amd64", "os": "linux"}]
        })
    );
    assert!(fake
        .calls()
        .contains(&"distribution localhost:5000/x:latest auth=e30=".to_string()));
    let (s, _, b) = post(&app, "/v1.44/images/localhost:5000/x/push?tag=v1").await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    assert!(message(&b).contains("push"), "{}", message(&b));
}

#[tokio::test]
async fn a_pull_refuses_what_only_an_import_reads() {
    let (_, app) = app();
    let (s, _, b) = post(
        &app,
        "/v1.41/images/create?fromImage=x&tag=v1&message=hi&changes=CMD%20sh",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        message(&b),
        "message, changes only apply to an import (fromSrc), not to a pull (fromImage)"
    );
}

#[tokio::test]
async fn system_df_computes_the_parts_asked_for_as_dockerd() {
    let (fake, app) = app();
    let (s, _, b) = get(&app, "/v1.44/system/df").await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["Volumes"][0]["Name"], "data");
    // `BuilderSize` is omitted when zero, `null` marks a part not computed.
    assert!(v.get("BuilderSize").is_none(), "{v}");
    assert_eq!(v["BuildCache"], serde_json::Value::Null);
    let (s, _, b) = get(&app, "/v1.44/system/df?type=volume&type=build-cache").await;
    assert_eq!(s, StatusCode::OK, "{}", message(&b));
    // Before 1.42 `type` is not read.
    let (s, _, _) = get(&app, "/v1.41/system/df?type=bogus").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, b) = get(&app, "/v1.44/system/df?type=volume&type=bogus").await;
    assert_eq!(
        (s, message(&b).as_str()),
        (StatusCode::BAD_REQUEST, "unknown object type: bogus")
    );
    assert_eq!(
        fake.calls(),
        [
            "disk_usage containers=true images=true volumes=true build_cache=false",
            "disk_usage containers=false images=false volumes=true build_cache=true",
            "disk_usage containers=true images=true volumes=true build_cache=false",
        ]
    );
}

#[tokio::test]
async fn archive_routes_carry_the_stat_header_and_stream_tars() {
    let (fake, app) = app();
    let (s, h, b) = call(
        &app,
        Method::HEAD,
        "/v1.44/containers/c1/archive?path=/etc/hosts",
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.is_empty());
    let header = h["x-docker-container-path-stat"].to_str().unwrap();
    use base64::Engine as _;
    let json = base64::engine::general_purpose::STANDARD
        .decode(header)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"name": "hosts", "size": 5, "mode": 420,
            "mtime": "2024-01-02T03:04:05Z", "linkTarget": ""})
    );

    let (s, h, b) = get(&app, "/containers/c1/archive?path=/etc/hosts").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/x-tar");
    assert!(h.contains_key("x-docker-container-path-stat"));
    assert_eq!(&b[..], b"tar");

    let (s, _, _) = call(
        &app,
        Method::PUT,
        "/v1.44/containers/c1/archive?path=/tmp&noOverwriteDirNonDir=1&copyUIDGID=True",
        Body::from(vec![0u8; 1024]),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(fake.calls().contains(
        &"archive_put c1 /tmp no_overwrite=true copy_uid_gid=true bytes=1024".to_string()
    ));

    // dockerd's words (its missing space too) for a missing path.
    let (s, _, b) = get(&app, "/v1.44/containers/c1/archive").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&b).unwrap()["message"],
        "bad parameter: pathcannot be empty"
    );
    let (s, _, _) = call(
        &app,
        Method::HEAD,
        "/v1.44/containers/nope/archive?path=/x",
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, h, b) = get(&app, "/v1.44/containers/c1/export").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/x-tar");
    assert_eq!(&b[..], b"rootfs");
}

#[tokio::test]
async fn changes_answer_a_list_or_null() {
    let (_, app) = app();
    let (s, _, b) = get(&app, "/containers/c1/changes").await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{"Path": "/etc", "Kind": 0}, {"Path": "/etc/new", "Kind": 1}])
    );
    let (s, _, b) = get(&app, "/containers/clean/changes").await;
    assert_eq!((s, &b[..]), (StatusCode::OK, &b"null"[..]));
    let (s, _, b) = get(&app, "/v1.44/containers/nope/changes").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(message(&b), "No such container: nope");
}

#[tokio::test]
async fn commit_reads_its_parameters_and_body() {
    let (fake, app) = app();
    let uri = "/v1.44/commit?container=c1&repo=img&tag=v1&comment=msg&author=me\
               &changes=CMD%20%5B%22x%22%5D&changes=ENV%20A%3D1";
    let body = Body::from(r#"{"Env":["B=2"],"Labels":{"l":"v"}}"#);
    let (s, _, b) = call(&app, Method::POST, uri, body).await;
    assert_eq!(s, StatusCode::CREATED);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v, serde_json::json!({"Id": "sha256:c0ffee"}));
    let o = fake.commit_opts.lock().unwrap().take().unwrap();
    assert_eq!(
        (o.container.as_str(), o.repo.as_str(), o.tag.as_str()),
        ("c1", "img", "v1")
    );
    assert_eq!((o.comment.as_str(), o.author.as_str()), ("msg", "me"));
    assert_eq!(o.changes, vec![r#"CMD ["x"]"#, "ENV A=1"]);
    assert!(o.pause, "pause defaults to true");
    let cfg = o.config.unwrap();
    assert_eq!(cfg.env.unwrap(), vec!["B=2"]);

    // No body, no config; pause=0 honoured; before 1.13 the default was no pause.
    let (s, _, _) = post(&app, "/commit?container=c2&pause=0").await;
    assert_eq!(s, StatusCode::CREATED);
    let o = fake.commit_opts.lock().unwrap().take().unwrap();
    assert!(!o.pause && o.config.is_none());
    let (s, _, _) = post(&app, "/v1.12/commit?container=c2").await;
    // 1.12 is below what Wharf serves: refused before the handler.
    assert_ne!(s, StatusCode::CREATED);
    let (s, _, _) = call(
        &app,
        Method::POST,
        "/commit?container=c3",
        Body::from("null"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(fake
        .commit_opts
        .lock()
        .unwrap()
        .take()
        .unwrap()
        .config
        .is_none());
}

#[tokio::test]
async fn a_container_name_with_slashes_is_no_such_container() {
    let (_, app) = app();
    // `docker inspect localhost:5000/a/b:1` asks for a container first, then the image.
    let (s, _, b) = get(&app, "/v1.44/containers/localhost:5000/a/b:1/json").await;
    assert_eq!(
        (s, message(&b).as_str()),
        (
            StatusCode::NOT_FOUND,
            "No such container: localhost:5000/a/b:1"
        )
    );
    let (s, _, b) = call(&app, Method::DELETE, "/containers/a/b", Body::empty()).await;
    assert_eq!(
        (s, message(&b).as_str()),
        (StatusCode::NOT_FOUND, "No such container: a/b")
    );
    let (s, _, _) = get(&app, "/v1.44/containers/a/b/frob").await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    // Plain names still reach their routes.
    let (s, _, _) = get(&app, "/v1.44/containers/c1/json").await;
    assert_ne!(s, StatusCode::NOT_IMPLEMENTED);
}
