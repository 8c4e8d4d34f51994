//! Drives a real wharfd through the client: the harness's own end-to-end check, and the first
//! thing to run when the daemon starts working. Skips (with a printed line) when not root or
//! when wharfd is not built.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use wharf_api::container::{ContainerCreateRequest, HostConfig};
use wharf_api::stdcopy::StdStream;
use wharf_client::{payload_of, LogsOptions};
use wharf_testkit::{import_busybox, start_or_skip};

fn cmd(args: &[&str]) -> ContainerCreateRequest {
    let mut req = ContainerCreateRequest::default();
    req.config.image = "busybox".into();
    req.config.cmd = Some(args.iter().map(|s| s.to_string()).collect());
    req.config.attach_stdout = true;
    req.config.attach_stderr = true;
    req.host_config = Some(HostConfig {
        network_mode: "none".into(),
        ..HostConfig::default()
    });
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_run_logs_wait_remove() {
    let Some(d) = start_or_skip("smoke-run").await else {
        return;
    };
    let c = d.client();
    let v = c.version().await.unwrap();
    assert_eq!(v.api_version, "1.44");
    import_busybox(&c, "busybox:latest").await.unwrap();
    let img = c.inspect_image("busybox").await.unwrap();
    assert!(img.id.starts_with("sha256:"), "{img:?}");

    let id = c
        .create_container(
            Some("smoke1"),
            &cmd(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
        )
        .await
        .unwrap()
        .id;
    let wait = c.wait_registered(&id, Some("next-exit")).await.unwrap();
    c.start(&id).await.unwrap();
    assert_eq!(wait.result().await.unwrap().status_code, 3);
    let frames = c.logs("smoke1", &LogsOptions::default()).await.unwrap();
    assert_eq!(payload_of(&frames, StdStream::Stdout), b"out\n");
    assert_eq!(payload_of(&frames, StdStream::Stderr), b"err\n");
    let st = c.inspect_container(&id).await.unwrap().state;
    assert_eq!((st.status.as_str(), st.exit_code), ("exited", 3));
    c.remove(&id, false).await.unwrap();
    assert!(c.inspect_container(&id).await.unwrap_err().is_not_found());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_attach_stdin() {
    let Some(d) = start_or_skip("smoke-attach").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox").await.unwrap();
    let mut req = cmd(&["cat"]);
    req.config.open_stdin = true;
    req.config.stdin_once = true;
    req.config.attach_stdin = true;
    let id = c.create_container(None, &req).await.unwrap().id;
    let mut a = c.attach(&id, true).await.unwrap();
    c.start(&id).await.unwrap();
    a.write_stdin(b"through stdin\n").await.unwrap();
    a.shutdown_write().await.unwrap();
    let frames = a.collect_frames().await.unwrap();
    assert_eq!(payload_of(&frames, StdStream::Stdout), b"through stdin\n");
    assert_eq!(c.wait(&id, None).await.unwrap().status_code, 0);
    c.remove(&id, true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_container_survives_daemon_kill9() {
    let Some(mut d) = start_or_skip("smoke-restore").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox").await.unwrap();
    let id = c
        .create_container(Some("survivor"), &cmd(&["sleep", "1000"]))
        .await
        .unwrap()
        .id;
    c.start(&id).await.unwrap();
    let pid = c.inspect_container(&id).await.unwrap().state.pid;
    assert!(pid > 0);
    d.kill9().unwrap();
    assert!(
        wharf_testkit::cleanup::is_alive(pid as i32),
        "container died with the daemon"
    );
    d.restart().await.unwrap();
    let c = d.client();
    let st = c.inspect_container("survivor").await.unwrap().state;
    assert!(st.running, "{st:?}");
    assert_eq!(st.pid, pid);
    c.kill(&id, None).await.unwrap();
    assert_eq!(c.wait(&id, None).await.unwrap().status_code, 137);
    c.remove(&id, false).await.unwrap();
}
