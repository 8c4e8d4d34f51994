//! Actions on running containers that go through the shim, against a real wharfd: `docker
//! exec` (the output framing follows the start request's `Tty`, as dockerd's; container
//! inspect's `ExecIDs` lists the live execs) and pause, which outlives a `kill -9` of wharfd.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use wharf_api::container::ContainerCreateRequest;
use wharf_client::{Client, LogsOptions};
use wharf_testkit::{import_busybox, start_or_skip, TestDaemon};

async fn sleeper(c: &Client, name: &str) -> String {
    let mut r = ContainerCreateRequest::default();
    r.config.image = "busybox".into();
    r.config.cmd = Some(vec!["sleep".into(), "300".into()]);
    let id = c.create_container(Some(name), &r).await.unwrap().id;
    c.start(&id).await.unwrap();
    id
}

/// `POST {path}` with `Upgrade: tcp` on a raw connection: the response head and everything
/// after it until the daemon closes the stream.
async fn hijack(d: &TestDaemon, path: &str, body: &Value) -> (String, Vec<u8>) {
    let mut s = UnixStream::connect(d.socket_path()).await.unwrap();
    let body = serde_json::to_vec(body).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut all))
        .await
        .expect("the exec stream did not end")
        .unwrap();
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no response head");
    let head = String::from_utf8_lossy(&all[..end]).to_lowercase();
    (head, all[end + 4..].to_vec())
}

/// The stdcopy frames of `body` as (stream, payload); panics if it is not framed.
fn frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !body.is_empty() {
        assert!(body.len() >= 8, "truncated frame header: {body:?}");
        assert!(
            matches!(body[0], 1 | 2) && body[1..4] == [0, 0, 0],
            "not a frame: {body:?}"
        );
        let n = u32::from_be_bytes([body[4], body[5], body[6], body[7]]) as usize;
        out.push((body[0], body[8..8 + n].to_vec()));
        body = &body[8 + n..];
    }
    out
}

fn joined(frames: &[(u8, Vec<u8>)], stream: u8) -> String {
    let bytes: Vec<u8> = frames
        .iter()
        .filter(|(s, _)| *s == stream)
        .flat_map(|(_, p)| p.clone())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn exec(c: &Client, container: &str, tty: bool) -> String {
    c.exec_create(
        container,
        &json!({
            "Cmd": ["sh", "-c", "echo out; echo err >&2"],
            "Tty": tty, "AttachStdout": true, "AttachStderr": true,
        }),
    )
    .await
    .unwrap()
}

const RAW: &str = "content-type: application/vnd.docker.raw-stream";
const MUX: &str = "content-type: application/vnd.docker.multiplexed-stream";

#[tokio::test]
async fn framing_follows_the_start_tty() {
    let Some(d) = start_or_skip("it-exec-framing").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    sleeper(&c, "framing").await;

    // Both without a TTY: stdcopy, both streams.
    let id = exec(&c, "framing", false).await;
    let (head, body) = hijack(&d, &format!("/v1.44/exec/{id}/start"), &json!({})).await;
    assert!(
        head.starts_with("http/1.1 101") && head.contains(MUX),
        "{head}"
    );
    let f = frames(&body);
    assert_eq!(
        (joined(&f, 1), joined(&f, 2)),
        ("out\n".into(), "err\n".into())
    );

    // Created without a TTY, started with one: raw stdout, and stderr is dropped (dockerd
    // gives it no writer).
    let id = exec(&c, "framing", false).await;
    let (head, body) = hijack(
        &d,
        &format!("/v1.44/exec/{id}/start"),
        &json!({"Tty": true}),
    )
    .await;
    assert!(head.contains(RAW), "{head}");
    assert_eq!(String::from_utf8_lossy(&body), "out\n");

    // Created with a TTY, started without: the terminal's output in stdcopy stdout frames.
    let id = exec(&c, "framing", true).await;
    let (head, body) = hijack(
        &d,
        &format!("/v1.44/exec/{id}/start"),
        &json!({"Tty": false}),
    )
    .await;
    assert!(head.contains(MUX), "{head}");
    let f = frames(&body);
    assert!(f.iter().all(|(s, _)| *s == 1), "{f:?}");
    assert_eq!(joined(&f, 1), "out\r\nerr\r\n");

    // Both with a TTY: raw terminal output.
    let id = exec(&c, "framing", true).await;
    let (head, body) = hijack(
        &d,
        &format!("/v1.44/exec/{id}/start"),
        &json!({"Tty": true}),
    )
    .await;
    assert!(head.contains(RAW), "{head}");
    assert_eq!(String::from_utf8_lossy(&body), "out\r\nerr\r\n");

    // Before API 1.42 the content type is always the raw one, the framing still stdcopy.
    let id = exec(&c, "framing", false).await;
    let (head, body) = hijack(&d, &format!("/v1.41/exec/{id}/start"), &json!({})).await;
    assert!(head.contains(RAW), "{head}");
    assert_eq!(joined(&frames(&body), 1), "out\n");
}

async fn exec_ids(c: &Client, container: &str) -> Value {
    let v: Value = c
        .get_json(&format!("/containers/{container}/json"))
        .await
        .unwrap();
    v["ExecIDs"].clone()
}

#[tokio::test]
async fn inspect_lists_live_execs() {
    let Some(d) = start_or_skip("it-exec-ids").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    sleeper(&c, "ids").await;
    assert_eq!(exec_ids(&c, "ids").await, Value::Null);

    // Created and running execs count; exited ones do not.
    let created = c
        .exec_create("ids", &json!({"Cmd": ["true"]}))
        .await
        .unwrap();
    let running = c
        .exec_create("ids", &json!({"Cmd": ["sleep", "300"]}))
        .await
        .unwrap();
    c.exec_start_detached(&running, &json!({"Detach": true}))
        .await
        .unwrap();
    assert_eq!(exec_ids(&c, "ids").await, json!([created, running]));
    c.exec_start_detached(&created, &json!({"Detach": true}))
        .await
        .unwrap();
    let mut ids = Value::Null;
    for _ in 0..200 {
        ids = exec_ids(&c, "ids").await;
        if ids == json!([running]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(ids, json!([running]));

    // A stopped container has none (dockerd drops them at the exit), and the next run starts
    // without the old ones.
    let pending = c
        .exec_create("ids", &json!({"Cmd": ["true"]}))
        .await
        .unwrap();
    c.kill("ids", None).await.unwrap();
    assert_eq!(exec_ids(&c, "ids").await, Value::Null);
    c.start("ids").await.unwrap();
    assert_eq!(
        exec_ids(&c, "ids").await,
        Value::Null,
        "{pending} came back"
    );
}

#[tokio::test]
async fn pause_outlives_a_kill_9_of_the_daemon() {
    let Some(mut d) = start_or_skip("it-exec-pause-kill9").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let mut r = ContainerCreateRequest::default();
    r.config.image = "busybox".into();
    r.config.cmd = Some(
        ["sh", "-c", "while true; do echo t; sleep 0.05; done"]
            .map(String::from)
            .to_vec(),
    );
    let id = c.create_container(Some("ticks"), &r).await.unwrap().id;
    c.start(&id).await.unwrap();
    let post = |c: &Client, path: String| {
        let c = c.clone();
        async move {
            let r = c.request(http::Method::POST, &path, None).await.unwrap();
            r.status.as_u16()
        }
    };
    let ticks = |c: &Client| {
        let (c, id) = (c.clone(), id.clone());
        async move { c.logs(&id, &LogsOptions::default()).await.unwrap().len() }
    };
    assert_eq!(post(&c, format!("/containers/{id}/pause")).await, 204);
    let frozen_at = ticks(&c).await;

    d.kill9().unwrap();
    d.restart().await.unwrap();
    let c = d.client();
    let ins = c.inspect_container(&id).await.unwrap();
    assert_eq!(
        (ins.state.status.as_str(), ins.state.paused),
        ("paused", true)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ticks(&c).await, frozen_at, "output while paused");
    let e = c
        .exec_create(&id, &json!({"Cmd": ["true"]}))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409));
    assert_eq!(post(&c, format!("/containers/{id}/pause")).await, 409);

    assert_eq!(post(&c, format!("/containers/{id}/unpause")).await, 204);
    let mut now = frozen_at;
    for _ in 0..100 {
        now = ticks(&c).await;
        if now > frozen_at {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(now > frozen_at, "no output after unpause");

    // Paused again, a kill still ends it: the signal goes in, then the shim thaws.
    assert_eq!(post(&c, format!("/containers/{id}/pause")).await, 204);
    c.kill(&id, None).await.unwrap();
    let ins = c.inspect_container(&id).await.unwrap();
    assert_eq!(
        (ins.state.status.as_str(), ins.state.paused),
        ("exited", false)
    );
    assert_eq!(ins.state.exit_code, 137);
}
