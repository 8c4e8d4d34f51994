//! `docker save` and `docker load` routes against the fake backend: which names reach the
//! engine, content types, `quiet` as dockerd reads it, errors before the body.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use common::Fake;
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;

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
    let (status, headers) = (resp.status(), resp.headers().clone());
    (
        status,
        headers,
        resp.into_body().collect().await.unwrap().to_bytes(),
    )
}

fn message(body: &Bytes) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn save_sends_every_name_and_a_tar() {
    let (fake, app) = app();
    let (s, h, b) = call(
        &app,
        Method::GET,
        "/v1.44/images/get?names=busybox&names=localhost%3A5000%2Fa%2Fb%3A1",
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/x-tar");
    assert_eq!(&b[..], b"busybox\nlocalhost:5000/a/b:1");
    // One image by a name with slashes and a port: the suffix route.
    let (s, h, _) = call(
        &app,
        Method::GET,
        "/images/localhost:5000/a/b:1/get",
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/x-tar");
    assert_eq!(
        fake.calls(),
        [
            "save busybox,localhost:5000/a/b:1",
            "save localhost:5000/a/b:1"
        ]
    );
}

#[tokio::test]
async fn save_errors_come_before_the_tar() {
    let (_, app) = app();
    let (s, h, b) = call(&app, Method::GET, "/v1.44/images/nope/get", Body::empty()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(message(&b), "reference does not exist");
    let (s, _, b) = call(
        &app,
        Method::GET,
        "/v1.44/images/get?names=a&platform=%7B%22os%22%3A%22linux%22%7D",
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(message(&b).contains("'platform'"), "{b:?}");
}

#[tokio::test]
async fn load_reads_quiet_as_dockerd_and_streams_json() {
    let (fake, app) = app();
    for (q, quiet) in [
        ("", true),
        ("?quiet=1", true),
        ("?quiet=0", false),
        ("?quiet=false", false),
        ("?quiet=", true),
    ] {
        let (s, h, b) = call(
            &app,
            Method::POST,
            &format!("/v1.44/images/load{q}"),
            Body::from(vec![1u8; 1000]),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{q}");
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(&b[..], b"{\"stream\":\"Loaded image: a:b\\n\"}\r\n");
        assert_eq!(
            fake.calls().last().unwrap(),
            &format!("load 1000 quiet={quiet}"),
            "{q}"
        );
    }
}

#[tokio::test]
async fn a_refused_load_is_an_ordinary_error_that_closes_the_connection() {
    let (_, app) = app();
    let (s, h, b) = call(&app, Method::POST, "/images/load?quiet=1", Body::empty()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(h["connection"], "close");
    assert_eq!(message(&b), "invalid archive: empty stream");
}
