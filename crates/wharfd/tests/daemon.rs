//! Integration tests: a real wharfd on temporary roots, driven through wharf-client.
//! Each test names its daemon after itself; the testkit cleans up processes, mounts and
//! cgroups before and after, also when a test fails.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use wharf_api::container::ContainerCreateRequest;
use wharf_api::stdcopy::StdStream;
use wharf_client::{payload_of, Client, LogsOptions};
use wharf_engine::timefmt::{now_rfc3339, parse_rfc3339};
use wharf_testkit::{import_busybox, process_alive, start_or_skip, wait_until_true};

fn cmd(image: &str, argv: &[&str]) -> ContainerCreateRequest {
    let mut r = ContainerCreateRequest::default();
    r.config.image = image.to_string();
    r.config.cmd = Some(argv.iter().map(|s| s.to_string()).collect());
    r
}

/// Creates and starts a container; its id.
async fn started(c: &Client, name: &str, req: ContainerCreateRequest) -> String {
    let id = c.create_container(Some(name), &req).await.unwrap().id;
    c.start(&id).await.unwrap();
    id
}

async fn run_to_exit(c: &Client, name: &str, argv: &[&str]) -> (String, i64) {
    let id = started(c, name, cmd("busybox", argv)).await;
    let code = c.wait(&id, None).await.unwrap().status_code;
    (id, code)
}

async fn stdout_of(c: &Client, id: &str) -> String {
    let frames = c.logs(id, &LogsOptions::default()).await.unwrap();
    String::from_utf8_lossy(&payload_of(&frames, StdStream::Stdout)).into_owned()
}

/// The next event of `events` for which `pred` holds (up to 30 s); fails naming `what`.
async fn next_event(
    events: &mut wharf_client::EventStream,
    what: &str,
    mut pred: impl FnMut(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ev = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for the event: {what}"))
            .unwrap_or_else(|| panic!("event stream ended before: {what}"))
            .unwrap();
        if pred(&ev) {
            return ev;
        }
    }
}

#[tokio::test]
async fn lifecycle_logs_exit_codes_and_inspect() {
    let Some(d) = start_or_skip("it-lifecycle").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();

    let (id, code) = run_to_exit(&c, "hello", &["sh", "-c", "echo hi; echo err >&2; exit 3"]).await;
    assert_eq!(code, 3);
    let frames = c.logs(&id, &LogsOptions::default()).await.unwrap();
    assert_eq!(payload_of(&frames, StdStream::Stdout), b"hi\n");
    assert_eq!(payload_of(&frames, StdStream::Stderr), b"err\n");

    let ins = c.inspect_container("hello").await.unwrap();
    assert_eq!(ins.id, id);
    assert_eq!(ins.name, "/hello");
    assert_eq!(ins.state.status, "exited");
    assert_eq!(ins.state.exit_code, 3);
    assert_eq!(ins.config.hostname, &id[..12]);
    // A unique prefix finds it too.
    assert_eq!(c.inspect_container(&id[..8]).await.unwrap().id, id);

    // Hostname, default PATH, user from the image's passwd, lo up in its own netns.
    let (id2, _) = run_to_exit(
        &c,
        "env",
        &[
            "sh",
            "-c",
            "hostname; echo $PATH; cat /sys/class/net/lo/operstate; ls /sys/class/net | wc -l",
        ],
    )
    .await;
    let out = stdout_of(&c, &id2).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], &id2[..12]);
    assert!(lines[1].contains("/usr/bin"), "{out}");
    assert_eq!(lines[2].trim(), "unknown"); // lo reports "unknown" when up
    assert_eq!(
        lines[3].trim(),
        "1",
        "only lo in a new network namespace: {out}"
    );

    let mut user = cmd("busybox", &["id", "-u"]);
    user.config.user = "wharfuser".into();
    let uid = c.create_container(Some("user"), &user).await.unwrap().id;
    c.start(&uid).await.unwrap();
    c.wait(&uid, None).await.unwrap();
    assert_eq!(stdout_of(&c, &uid).await.trim(), "1000");

    // Missing and non-executable commands fail at start with Docker's words.
    let bad = c
        .create_container(Some("bad"), &cmd("busybox", &["nosuch"]))
        .await
        .unwrap()
        .id;
    let err = c.start(&bad).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(
        err.to_string()
            .contains("executable file not found in $PATH"),
        "{err}"
    );
    assert_eq!(
        c.inspect_container(&bad).await.unwrap().state.exit_code,
        127
    );

    // ps shows running ones by default, all with all=1, and filters work.
    let sleeper = started(&c, "sleeper", cmd("busybox", &["sleep", "1000"])).await;
    let running = c.list_containers(false, None).await.unwrap();
    assert_eq!(running.len(), 1);
    assert!(
        running[0].status.starts_with("Up "),
        "{}",
        running[0].status
    );
    let exited = c
        .list_containers(true, Some(r#"{"status":{"exited":true}}"#))
        .await
        .unwrap();
    assert!(exited
        .iter()
        .any(|s| s.id == id && s.status.starts_with("Exited (3) ")));

    // rm of a running container needs force; stop escalates to SIGKILL after the timeout.
    let err = c.remove(&sleeper, false).await.unwrap_err();
    assert_eq!(err.status(), Some(409));
    c.stop(&sleeper, Some(1)).await.unwrap();
    assert_eq!(
        c.inspect_container(&sleeper).await.unwrap().state.exit_code,
        137
    );
    c.rename("sleeper", "renamed").await.unwrap();
    c.remove("renamed", false).await.unwrap();
    assert!(c
        .inspect_container(&sleeper)
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn bad_input_gets_clear_answers_and_changes_nothing() {
    let Some(d) = start_or_skip("it-badinput").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let raw = c
        .request(
            http::Method::POST,
            "/containers/create",
            Some(b"{not json".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(raw.status.as_u16(), 400);

    let e = c.inspect_container("nope").await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert!(e.to_string().contains("No such container: nope"));
    let e = c
        .create_container(None, &cmd("nosuchimage", &["true"]))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("No such image: nosuchimage:latest"),
        "{e}"
    );
    let e = c
        .create_container(Some("bad name"), &cmd("busybox", &["true"]))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    c.create_container(Some("dup"), &cmd("busybox", &["true"]))
        .await
        .unwrap();
    let e = c
        .create_container(Some("dup"), &cmd("busybox", &["true"]))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409));
    assert!(e.to_string().contains("is already in use"));

    let blobs = std::fs::read_dir(d.data_root().join("content/blobs/sha256"))
        .unwrap()
        .count();
    let e = c
        .import_image(b"this is not a tar archive at all".repeat(40), "junk", None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    let after = std::fs::read_dir(d.data_root().join("content/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, after, "a failed import leaves no blob");
    assert!(c.inspect_image("junk").await.unwrap_err().is_not_found());

    // Two containers whose ids share a prefix: an ambiguous prefix is a 400.
    let ids: Vec<String> = c
        .list_containers(true, None)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    let mut amb = None;
    for n in 0..200 {
        let id = c
            .create_container(Some(&format!("p{n}")), &cmd("busybox", &["true"]))
            .await
            .unwrap()
            .id;
        if let Some(other) = ids.iter().find(|o| o.as_bytes()[0] == id.as_bytes()[0]) {
            let _ = other;
            amb = Some(id[..1].to_string());
            break;
        }
    }
    let prefix = amb.expect("two ids sharing a first hex digit");
    let e = c.inspect_container(&prefix).await.unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
}

#[tokio::test]
async fn containers_survive_kill_9_of_the_daemon() {
    let Some(mut d) = start_or_skip("it-kill9").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let ticker = c
        .create_container(
            Some("ticker"),
            &cmd(
                "busybox",
                &["sh", "-c", "while true; do echo tick; sleep 0.2; done"],
            ),
        )
        .await
        .unwrap()
        .id;
    c.start(&ticker).await.unwrap();
    let quitter = started(
        &c,
        "quitter",
        // Exits (7) only once the test says so, which it does after the kill -9.
        cmd(
            "busybox",
            &[
                "sh",
                "-c",
                "until test -f /tmp/go; do sleep 0.05; done; exit 7",
            ],
        ),
    )
    .await;
    let pid = c.inspect_container(&ticker).await.unwrap().state.pid;
    let q_pid = c.inspect_container(&quitter).await.unwrap().state.pid;
    let q_dir = d.exec_root().join("containers").join(&quitter);
    let q_shim: i32 = std::fs::read_to_string(q_dir.join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    d.kill9().unwrap();
    let killed_at = parse_rfc3339(&now_rfc3339()).unwrap();
    std::fs::write(format!("/proc/{q_pid}/root/tmp/go"), "").unwrap();
    // quitter exits while the daemon is down: its shim records the exit and goes away.
    wait_until_true("quitter's exit.json and its shim gone", || {
        q_dir.join("exit.json").exists() && !process_alive(q_shim)
    })
    .await;
    let restarted_at = parse_rfc3339(&now_rfc3339()).unwrap();
    d.restart().await.unwrap();
    let c = d.client();

    let t = c.inspect_container(&ticker).await.unwrap();
    assert!(t.state.running, "ticker still running after kill -9");
    assert_eq!(t.state.pid, pid);
    let q = c.inspect_container(&quitter).await.unwrap();
    assert_eq!(q.state.status, "exited");
    assert_eq!(q.state.exit_code, 7);
    // The real exit time: while the daemon was down, not when it came back and found out.
    let finished = parse_rfc3339(&q.state.finished_at).expect("FinishedAt");
    assert!(
        killed_at < finished && finished < restarted_at,
        "kill -9 {killed_at:?} < FinishedAt {} < daemon restart {restarted_at:?}",
        q.state.finished_at
    );

    // Fully controllable: logs -f streams, stop works, wait reports the code.
    let mut follow = LogsOptions {
        follow: true,
        tail: Some(1),
        ..Default::default()
    };
    follow.stderr = false;
    let mut s = c.logs_stream(&ticker, &follow).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.1, b"tick\n");
    let waiter = c.wait_registered(&ticker, None).await.unwrap();
    c.stop(&ticker, Some(1)).await.unwrap();
    assert_eq!(waiter.result().await.unwrap().status_code, 137);
    c.remove(&ticker, false).await.unwrap();
    c.remove(&quitter, false).await.unwrap();
    // Teardown after rm runs in the background; it must finish promptly.
    let mut left = wharf_testkit::cleanup::mounts_under(&d.exec_root());
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = wharf_testkit::cleanup::mounts_under(&d.exec_root());
    }
    assert!(left.is_empty(), "no orphaned mounts after rm: {left:?}");
}

#[tokio::test]
async fn a_reboot_marks_running_containers_exited() {
    let Some(mut d) = start_or_skip("it-reboot").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let id = started(&c, "sleeper", cmd("busybox", &["sleep", "1000"])).await;
    d.kill9().unwrap();
    // A reboot: every process and mount of the old boot is gone and the boot id changed.
    wharf_testkit::cleanup::kill_container_processes(d.dir(), &d.exec_root());
    wharf_testkit::cleanup::unmount_all_under(&d.exec_root()).unwrap();
    std::fs::write(d.exec_root().join("boot-id"), "an-earlier-boot").unwrap();
    d.restart().await.unwrap();
    let ins = d.client().inspect_container(&id).await.unwrap();
    assert_eq!(ins.state.status, "exited");
    assert_eq!(ins.state.exit_code, 255);
    d.client().start(&id).await.unwrap();
    d.client().kill(&id, None).await.unwrap();
}

#[tokio::test]
async fn a_second_daemon_on_the_same_root_refuses_to_start() {
    let Some(d) = start_or_skip("it-lock").await else {
        return;
    };
    let out = std::process::Command::new(wharf_testkit::wharfd_bin().unwrap())
        .arg("-H")
        .arg(format!("unix://{}/second.sock", d.dir().display()))
        .arg("--data-root")
        .arg(d.data_root())
        .arg("--exec-root")
        .arg(d.exec_root())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running"), "{err}");
    // The first one still answers.
    d.client().ping().await.unwrap();
}

#[tokio::test]
async fn sigterm_stops_the_daemon_and_leaves_containers_running() {
    let Some(mut d) = start_or_skip("it-sigterm").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let id = started(&c, "stays", cmd("busybox", &["sleep", "1000"])).await;
    let pid = c.inspect_container(&id).await.unwrap().state.pid;
    d.stop().unwrap();
    assert!(!d.socket_path().exists(), "socket removed at shutdown");
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "container survives SIGTERM of the daemon"
    );
    d.restart().await.unwrap();
    let ins = d.client().inspect_container(&id).await.unwrap();
    assert!(ins.state.running);
    d.client().remove(&id, true).await.unwrap();
}

#[tokio::test]
async fn kill_gets_through_while_a_stop_waits() {
    let Some(d) = start_or_skip("it-killstop").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    // PID 1 ignores SIGTERM without a handler, so this stop would wait its full 30 s.
    let id = started(&c, "slow", cmd("busybox", &["sleep", "1000"])).await;
    let filter = serde_json::json!({"container": [id.clone()], "type": ["container"]}).to_string();
    let mut events = c.events(None, None, Some(&filter)).await.unwrap();
    let stopper = {
        let c = c.clone();
        let id = id.clone();
        tokio::spawn(async move { c.stop(&id, Some(30)).await })
    };
    // The stop is in flight once it has sent its SIGTERM: the `kill` event with signal 15.
    next_event(&mut events, "the stop's SIGTERM", |e| {
        e["Action"] == "kill" && e["Actor"]["Attributes"]["signal"] == "15"
    })
    .await;
    assert!(!stopper.is_finished(), "the stop returned before the kill");
    c.kill(&id, None).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), stopper)
        .await
        .expect("stop returns once the kill ended the container")
        .unwrap()
        .unwrap();
    assert_eq!(c.inspect_container(&id).await.unwrap().state.exit_code, 137);
    // ...and it was the stop that finished (a 304 for a stop that came late emits nothing).
    next_event(&mut events, "the stop's `stop` event", |e| {
        e["Action"] == "stop"
    })
    .await;
}

#[tokio::test]
async fn restart_removes_leftovers_of_an_unfinished_removal() {
    let Some(mut d) = start_or_skip("it-orphans").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let id = c
        .create_container(Some("gone"), &cmd("busybox", &["true"]))
        .await
        .unwrap()
        .id;
    d.kill9().unwrap();
    // The state a crash between "record deleted" and "files removed" leaves behind.
    let db = d.data_root().join("meta.db");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect('{}'); c.execute(\"DELETE FROM containers WHERE id = '{id}'\"); c.commit()",
            db.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data_dir = d.data_root().join("containers").join(&id);
    assert!(data_dir.exists());
    d.restart().await.unwrap();
    for _ in 0..50 {
        if !data_dir.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !data_dir.exists(),
        "leftovers of a removed container are collected at start"
    );
    assert!(d
        .client()
        .inspect_container(&id)
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn top_lists_processes_and_pause_freezes_them() {
    let Some(d) = start_or_skip("it-toppause").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let id = c
        .create_container(
            Some("busy"),
            &cmd(
                "busybox",
                &["sh", "-c", "while true; do echo t; sleep 0.1; done"],
            ),
        )
        .await
        .unwrap()
        .id;
    c.start(&id).await.unwrap();
    let pid = c.inspect_container(&id).await.unwrap().state.pid;
    let top: wharf_api::container::TopResponse =
        c.get_json(&format!("/containers/{id}/top")).await.unwrap();
    assert_eq!(top.titles[1], "PID");
    assert!(top
        .processes
        .iter()
        .any(|p| p[1] == pid.to_string() && p[7].starts_with("sh -c while true")));

    let post = |path: String| {
        let c = c.clone();
        async move { c.request(http::Method::POST, &path, None).await.unwrap() }
    };
    assert_eq!(
        post(format!("/containers/{id}/pause"))
            .await
            .status
            .as_u16(),
        204
    );
    assert_eq!(
        post(format!("/containers/{id}/pause"))
            .await
            .status
            .as_u16(),
        409
    );
    let ins = c.inspect_container(&id).await.unwrap();
    assert_eq!(
        (ins.state.status.as_str(), ins.state.paused),
        ("paused", true)
    );
    let paused = c
        .list_containers(false, Some(r#"{"status":["paused"]}"#))
        .await
        .unwrap();
    assert!(
        paused[0].status.ends_with("(Paused)"),
        "{}",
        paused[0].status
    );
    let lines = |c: Client, id: String| async move {
        c.logs(&id, &LogsOptions::default()).await.unwrap().len()
    };
    // The clock for "it would have printed by now": an unpaused twin printing at the same
    // pace. Output the frozen one wrote just before the freeze may still be on its way to the
    // log, so the count is taken only after the twin has printed twice more.
    let twin = started(
        &c,
        "busy-twin",
        cmd(
            "busybox",
            &["sh", "-c", "while true; do echo t; sleep 0.1; done"],
        ),
    )
    .await;
    let twin_after = |n: usize| {
        let (c, twin) = (c.clone(), twin.clone());
        async move {
            let start = lines(c.clone(), twin.clone()).await;
            wait_for_lines(&c, &twin, start + n).await;
        }
    };
    twin_after(2).await;
    let before = lines(c.clone(), id.clone()).await;
    twin_after(10).await;
    assert_eq!(
        lines(c.clone(), id.clone()).await,
        before,
        "no output while frozen"
    );
    c.remove(&twin, true).await.unwrap();
    assert_eq!(
        post(format!("/containers/{id}/unpause"))
            .await
            .status
            .as_u16(),
        204
    );
    assert_eq!(
        post(format!("/containers/{id}/unpause"))
            .await
            .status
            .as_u16(),
        409
    );

    // A paused container can still be stopped: the signal is delivered, then it is thawed.
    assert_eq!(
        post(format!("/containers/{id}/pause"))
            .await
            .status
            .as_u16(),
        204
    );
    c.stop(&id, Some(1)).await.unwrap();
    let ins = c.inspect_container(&id).await.unwrap();
    assert_eq!(ins.state.status, "exited");
    assert!(!ins.state.paused);
    let e = c
        .get_json::<serde_json::Value>(&format!("/containers/{id}/top"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409));
}

/// Polls (up to 30 s) until the container's log holds at least `n` entries.
async fn wait_for_lines(c: &Client, id: &str, n: usize) {
    for _ in 0..300 {
        if c.logs(id, &LogsOptions::default()).await.unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} did not print {n} lines");
}

fn with_policy(argv: &[&str], name: &str, max: i64) -> ContainerCreateRequest {
    let mut r = cmd("busybox", argv);
    let mut hc = wharf_api::container::HostConfig::default();
    hc.restart_policy.name = name.into();
    hc.restart_policy.maximum_retry_count = max;
    r.host_config = Some(hc);
    r
}

async fn wait_for(
    c: &Client,
    id: &str,
    pred: impl Fn(&wharf_api::container::ContainerInspect) -> bool,
) -> wharf_api::container::ContainerInspect {
    for _ in 0..300 {
        let ins = c.inspect_container(id).await.unwrap();
        if pred(&ins) {
            return ins;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("condition not reached for {id}");
}

#[tokio::test]
async fn restart_policies() {
    let Some(mut d) = start_or_skip("it-restart").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();

    // "No further restart" is checked against a twin that does restart: started just after,
    // with the same command and backoff schedule, so once the twin has made one more restart
    // (and then a further, doubled backoff) the one under test would have restarted too.

    // on-failure:2 restarts twice (100 ms, then 200 ms backoff) and then stays exited.
    let f = started(
        &c,
        "fails",
        with_policy(&["sh", "-c", "exit 3"], "on-failure", 2),
    )
    .await;
    let f_twin = started(
        &c,
        "fails-twin",
        with_policy(&["sh", "-c", "exit 3"], "on-failure", 4),
    )
    .await;
    let ins = wait_for(&c, &f, |i| {
        i.restart_count == 2 && i.state.status == "exited"
    })
    .await;
    assert_eq!(ins.state.exit_code, 3);
    wait_for(&c, &f_twin, |i| {
        i.restart_count == 4 && i.state.status == "exited"
    })
    .await;
    assert_eq!(c.inspect_container(&f).await.unwrap().restart_count, 2);

    // on-failure does not restart a clean exit.
    let ok = started(&c, "clean", with_policy(&["true"], "on-failure", 0)).await;
    let ok_twin = started(&c, "clean-twin", with_policy(&["true"], "always", 0)).await;
    c.wait(&ok, None).await.unwrap();
    wait_for(&c, &ok_twin, |i| i.restart_count >= 2).await;
    let ins = c.inspect_container(&ok).await.unwrap();
    assert_eq!(
        (ins.restart_count, ins.state.status.as_str()),
        (0, "exited")
    );

    // always: restarted after each exit; stop cancels it, even during the backoff.
    let a = started(
        &c,
        "always",
        with_policy(&["sh", "-c", "sleep 0.2"], "always", 0),
    )
    .await;
    let a_twin = started(
        &c,
        "always-twin",
        with_policy(&["sh", "-c", "sleep 0.2"], "always", 0),
    )
    .await;
    wait_for(&c, &a, |i| i.restart_count >= 2).await;
    c.stop(&a, Some(1)).await.unwrap();
    let n = c.inspect_container(&a).await.unwrap().restart_count;
    wait_for(&c, &a_twin, |i| i.restart_count >= n + 2).await;
    let ins = c.inspect_container(&a).await.unwrap();
    assert_eq!(ins.restart_count, n, "no restart after a user stop");
    assert_eq!(ins.state.status, "exited");
    for twin in [&f_twin, &ok_twin, &a_twin] {
        c.remove(twin, true).await.unwrap();
    }

    // unless-stopped, stopped by the user, stays down across a daemon restart; always comes back.
    let u = started(
        &c,
        "unless",
        with_policy(&["sleep", "1000"], "unless-stopped", 0),
    )
    .await;
    c.kill(&u, None).await.unwrap();
    d.kill9().unwrap();
    d.restart().await.unwrap();
    let c = d.client();
    wait_for(&c, &a, |i| i.state.running).await;
    assert_eq!(
        c.inspect_container(&u).await.unwrap().state.status,
        "exited"
    );
    c.remove(&a, true).await.unwrap();

    // Bad policies are refused at create.
    let e = c
        .create_container(None, &with_policy(&["true"], "sometimes", 0))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
}

#[tokio::test]
async fn a_daemon_killed_during_a_restart_backoff_restarts_the_container_when_back() {
    let Some(mut d) = start_or_skip("it-backoff").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    // Exits at once, so after a few runs the backoff is long enough (0.1+0.2+0.4+0.8 s...) to
    // kill the daemon in the middle of one.
    let id = started(
        &c,
        "flappy",
        with_policy(&["sh", "-c", "exit 1"], "always", 0),
    )
    .await;
    let before = wait_for(&c, &id, |i| i.restart_count >= 4 && !i.state.running).await;
    d.kill9().unwrap();
    d.restart().await.unwrap();
    let c = d.client();
    // Back up, the daemon starts `always` containers that are not running: a new run begins.
    wait_for(&c, &id, |i| i.state.started_at != before.state.started_at).await;
    c.remove(&id, true).await.unwrap();
}

/// `(controllers, path)` of every hierarchy a process is in, from `/proc/<pid>/cgroup`; named
/// hierarchies (`name=systemd`) left out, and on a hybrid host the controller-less unified one.
fn cgroups_of(pid: i64) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let all: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrls, path) = (p.next()?, p.next()?, p.next()?);
            Some((ctrls.to_string(), path.to_string()))
        })
        .filter(|(c, _)| !c.starts_with("name="))
        .collect();
    let v1: Vec<_> = all.iter().filter(|(c, _)| !c.is_empty()).cloned().collect();
    if v1.is_empty() {
        all
    } else {
        v1
    }
}

fn cgroup_file(ctrls: &str, path: &str, file: &str) -> String {
    let root = if ctrls.is_empty() {
        "/sys/fs/cgroup".to_string()
    } else {
        format!("/sys/fs/cgroup/{ctrls}")
    };
    std::fs::read_to_string(format!("{root}{path}/{file}"))
        .unwrap_or_else(|e| panic!("{root}{path}/{file}: {e}"))
        .trim()
        .to_string()
}

/// A container joins its own cgroup in every controller the host mounts, limits or not: pause
/// (freezer), top and kill-all (the cgroup's processes), device rules (devices), OOM detection
/// (memory) and `docker update` of a limit the container started without all rely on it. The
/// limits it asks for land in those cgroups.
#[tokio::test]
async fn containers_join_every_controller_with_and_without_limits() {
    let Some(d) = start_or_skip("it-cgjoin").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let plain = started(&c, "plain", cmd("busybox", &["sleep", "100"])).await;
    let mut req = cmd("busybox", &["sleep", "100"]);
    let hc = req.host_config.get_or_insert_with(Default::default);
    hc.resources.memory = 32 << 20;
    hc.resources.pids_limit = Some(100);
    hc.resources.nano_cpus = 500_000_000;
    let limited = started(&c, "limited", req).await;

    for id in [&plain, &limited] {
        let pid = c.inspect_container(id).await.unwrap().state.pid;
        let cgs = cgroups_of(pid);
        assert!(!cgs.is_empty());
        for (ctrls, path) in &cgs {
            assert!(
                path.ends_with(&format!("/{id}")),
                "{id} is not in its own cgroup for {ctrls:?}: {path}"
            );
        }
        if cgs.len() > 1 {
            for want in [
                "memory", "pids", "freezer", "devices", "cpu", "cpuacct", "cpuset",
            ] {
                assert!(
                    cgs.iter().any(|(c, _)| c.split(',').any(|x| x == want)),
                    "{id} joined no {want} hierarchy: {cgs:?}"
                );
            }
        }
    }

    let pid = c.inspect_container(&limited).await.unwrap().state.pid;
    let cgs = cgroups_of(pid);
    let find = |ctrl: &str| {
        cgs.iter()
            .find(|(c, _)| c.is_empty() || c.split(',').any(|x| x == ctrl))
            .unwrap()
            .clone()
    };
    if cgs.len() > 1 {
        let (m, p) = find("memory");
        assert_eq!(cgroup_file(&m, &p, "memory.limit_in_bytes"), "33554432");
        let (m, p) = find("pids");
        assert_eq!(cgroup_file(&m, &p, "pids.max"), "100");
        let (m, p) = find("cpu");
        assert_eq!(cgroup_file(&m, &p, "cpu.cfs_quota_us"), "50000");
    } else {
        let (m, p) = find("");
        assert_eq!(cgroup_file(&m, &p, "memory.max"), "33554432");
        assert_eq!(cgroup_file(&m, &p, "pids.max"), "100");
        assert!(cgroup_file(&m, &p, "cpu.max").starts_with("50000 "));
    }
    for id in [&plain, &limited] {
        c.remove(id, true).await.unwrap();
    }
}
