//! Healthchecks against a real wharfd: probes run as execs, State.Health, ps status and
//! filter, events, an image's HEALTHCHECK and --no-healthcheck, a daemon restart.
//! Intervals are short (200 ms) and every wait is a generous poll, never a timed assertion.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::time::Duration;
use wharf_api::container::{ContainerCreateRequest, ContainerInspect, Health, HealthConfig};
use wharf_client::Client;
use wharf_engine::timefmt::parse_rfc3339;
use wharf_testkit::{busybox_rootfs_tar, import_busybox, start_or_skip};

const MS: i64 = 1_000_000;

fn with_check(image: &str, test: &[&str], retries: i64, timeout_ms: i64) -> ContainerCreateRequest {
    let mut r = ContainerCreateRequest::default();
    r.config.image = image.to_string();
    r.config.cmd = Some(vec!["sleep".into(), "1000".into()]);
    r.config.healthcheck = Some(HealthConfig {
        test: test.iter().map(|s| s.to_string()).collect(),
        interval: 200 * MS,
        timeout: timeout_ms * MS,
        retries,
        ..Default::default()
    });
    r
}

async fn started(c: &Client, name: &str, req: ContainerCreateRequest) -> String {
    let id = c.create_container(Some(name), &req).await.unwrap().id;
    c.start(&id).await.unwrap();
    id
}

/// Polls inspect (up to 30 s) until the container's health satisfies `pred`.
async fn wait_health(c: &Client, id: &str, pred: impl Fn(&Health) -> bool) -> ContainerInspect {
    for _ in 0..300 {
        let ins = c.inspect_container(id).await.unwrap();
        if ins.state.health.as_ref().is_some_and(&pred) {
            return ins;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ins = c.inspect_container(id).await.unwrap();
    panic!(
        "health condition not reached for {id}: {:?}",
        ins.state.health
    );
}

async fn names_with(c: &Client, filter: &str) -> Vec<String> {
    c.list_containers(true, Some(filter))
        .await
        .unwrap()
        .into_iter()
        .flat_map(|s| s.names)
        .collect()
}

async fn status_of(c: &Client, name: &str) -> String {
    let f = json!({"name": [name]}).to_string();
    let list = c.list_containers(true, Some(&f)).await.unwrap();
    list.iter()
        .find(|s| s.names.iter().any(|n| n == &format!("/{name}")))
        .map(|s| s.status.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn probes_states_filters_and_events() {
    let Some(d) = start_or_skip("it-health").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    // Subscribed first: every probe is three exec events, which soon push older ones out of
    // the daemon's bounded history.
    let filter = json!({"event": ["health_status"], "container": ["hc-ok"]}).to_string();
    let mut events = c.events(None, None, Some(&filter)).await.unwrap();

    // Healthy: exit 0.
    let ok = started(&c, "hc-ok", with_check("busybox", &["CMD", "true"], 0, 0)).await;
    let ins = wait_health(&c, &ok, |h| h.status == "healthy").await;
    let h = ins.state.health.unwrap();
    assert_eq!(h.failing_streak, 0);
    let last = h.log.last().unwrap();
    assert_eq!(last.exit_code, 0);
    assert!(!last.start.is_empty() && !last.end.is_empty());
    assert_eq!(
        ins.config.healthcheck.as_ref().unwrap().test,
        vec!["CMD", "true"]
    );
    assert!(status_of(&c, "hc-ok").await.ends_with(" (healthy)"));

    // Unhealthy after `retries` consecutive failures; output is recorded; the log keeps 5.
    let bad = started(
        &c,
        "hc-bad",
        with_check("busybox", &["CMD-SHELL", "echo bad; exit 2"], 2, 0),
    )
    .await;
    let ins = wait_health(&c, &bad, |h| h.status == "unhealthy").await;
    let h = ins.state.health.unwrap();
    assert!(h.failing_streak >= 2, "{h:?}");
    assert_eq!(h.log.last().unwrap().exit_code, 2);
    assert_eq!(h.log.last().unwrap().output, "bad\n");
    wait_health(&c, &bad, |h| h.failing_streak >= 6).await;
    let h = c
        .inspect_container(&bad)
        .await
        .unwrap()
        .state
        .health
        .unwrap();
    assert_eq!(h.log.len(), 5);
    assert!(status_of(&c, "hc-bad").await.ends_with(" (unhealthy)"));

    // A probe over its timeout is killed and fails with -1 and dockerd's message.
    let slow = started(
        &c,
        "hc-slow",
        with_check("busybox", &["CMD", "sleep", "30"], 1, 300),
    )
    .await;
    let ins = wait_health(&c, &slow, |h| h.status == "unhealthy").await;
    let last = ins.state.health.unwrap().log.last().cloned().unwrap();
    assert_eq!(last.exit_code, -1);
    assert_eq!(last.output, "Health check exceeded timeout (300ms)");

    // A command that does not exist fails the probe, it does not break the monitor.
    let missing = started(
        &c,
        "hc-missing",
        with_check("busybox", &["CMD", "nosuch"], 1, 0),
    )
    .await;
    let ins = wait_health(&c, &missing, |h| h.status == "unhealthy").await;
    assert_ne!(ins.state.health.unwrap().log.last().unwrap().exit_code, 0);

    // No healthcheck: no Health key, filter value `none`.
    let plain = started(
        &c,
        "hc-none",
        ContainerCreateRequest {
            config: wharf_api::container::ContainerConfig {
                image: "busybox".into(),
                cmd: Some(vec!["sleep".into(), "1000".into()]),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    let raw: Value = c
        .get_json(&format!("/containers/{plain}/json"))
        .await
        .unwrap();
    assert!(raw["State"].get("Health").is_none(), "{}", raw["State"]);
    assert!(!status_of(&c, "hc-none").await.contains('('));

    // ps --filter health=...
    let healthy = names_with(&c, r#"{"health":["healthy"]}"#).await;
    assert_eq!(healthy, vec!["/hc-ok"]);
    let mut unhealthy = names_with(&c, r#"{"health":["unhealthy"]}"#).await;
    unhealthy.sort();
    assert_eq!(unhealthy, vec!["/hc-bad", "/hc-missing", "/hc-slow"]);
    assert_eq!(
        names_with(&c, r#"{"health":["none"]}"#).await,
        vec!["/hc-none"]
    );
    let e = c
        .list_containers(true, Some(r#"{"health":["sick"]}"#))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));

    // The status change was an event, with Docker's action text.
    let ev = tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("a health_status event")
        .unwrap()
        .unwrap();
    assert_eq!(ev["Action"], "health_status: healthy");
    assert_eq!(ev["Actor"]["Attributes"]["name"], "hc-ok");

    // A stopped container keeps its last Health; a start resets it to starting.
    c.stop(&bad, Some(1)).await.unwrap();
    let ins = c.inspect_container(&bad).await.unwrap();
    assert_eq!(ins.state.health.unwrap().status, "unhealthy");
    let st = status_of(&c, "hc-bad").await;
    assert!(st.starts_with("Exited") && !st.contains("health"), "{st}");

    // Bad settings are refused at create, in dockerd's words.
    let mut r = with_check("busybox", &["CMD", "true"], 0, 0);
    r.config.healthcheck.as_mut().unwrap().interval = 1000;
    let e = c.create_container(None, &r).await.unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(
        e.to_string()
            .contains("Interval in Healthcheck cannot be less than 1ms"),
        "{e}"
    );

    for id in [&ok, &bad, &slow, &missing, &plain] {
        c.remove(id, true).await.unwrap();
    }
}

#[tokio::test]
async fn image_healthcheck_and_no_healthcheck() {
    let Some(d) = start_or_skip("it-health-img").await else {
        return;
    };
    let c = d.client();
    c.import_image_with(
        busybox_rootfs_tar().unwrap(),
        "hcimg",
        Some("latest"),
        &["HEALTHCHECK --interval=200ms --retries=1 CMD test -f /tmp/ok".into()],
        None,
    )
    .await
    .unwrap();
    let img = c.inspect_image("hcimg").await.unwrap();
    assert_eq!(
        img.config.healthcheck.as_ref().unwrap().test,
        vec!["CMD-SHELL", "test -f /tmp/ok"]
    );

    let base = || {
        let mut r = ContainerCreateRequest::default();
        r.config.image = "hcimg".into();
        r.config.cmd = Some(vec!["sleep".into(), "1000".into()]);
        r
    };
    // The image's check runs; the container overrides one field (retries) and keeps the rest.
    let mut r = base();
    r.config.healthcheck = Some(HealthConfig {
        retries: 2,
        ..Default::default()
    });
    let inherited = started(&c, "hc-img", r).await;
    let ins = wait_health(&c, &inherited, |h| h.status == "unhealthy").await;
    let hc = ins.config.healthcheck.unwrap();
    assert_eq!(hc.test, vec!["CMD-SHELL", "test -f /tmp/ok"]);
    assert_eq!((hc.interval, hc.retries), (200 * MS, 2));
    // ...and turns healthy once the probe succeeds.
    let exec = c
        .exec_create(&inherited, &json!({"Cmd": ["touch", "/tmp/ok"]}))
        .await
        .unwrap();
    c.exec_start_detached(&exec, &json!({"Detach": true}))
        .await
        .unwrap();
    wait_health(&c, &inherited, |h| h.status == "healthy").await;

    // --no-healthcheck: Test ["NONE"] disables the image's check.
    let mut r = base();
    r.config.healthcheck = Some(HealthConfig {
        test: vec!["NONE".into()],
        ..Default::default()
    });
    let off = started(&c, "hc-off", r).await;
    // By the time the image's check has run three times on hc-img since hc-off started, it
    // would have run on hc-off too, had it not been disabled.
    let off_started =
        parse_rfc3339(&c.inspect_container(&off).await.unwrap().state.started_at).unwrap();
    wait_health(&c, &inherited, |h| {
        h.log
            .iter()
            .filter(|p| parse_rfc3339(&p.start).is_some_and(|t| t > off_started))
            .count()
            >= 3
    })
    .await;
    let raw: Value = c
        .get_json(&format!("/containers/{off}/json"))
        .await
        .unwrap();
    assert!(raw["State"].get("Health").is_none(), "{}", raw["State"]);
    // dockerd merges field by field even then: the image's interval and retries show too.
    assert_eq!(
        raw["Config"]["Healthcheck"],
        json!({"Test": ["NONE"], "Interval": 200 * MS, "Retries": 1})
    );

    for id in [&inherited, &off] {
        c.remove(id, true).await.unwrap();
    }
}

#[tokio::test]
async fn health_survives_a_daemon_restart_and_checking_resumes() {
    let Some(mut d) = start_or_skip("it-health-restart").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    // While /tmp/hold exists a probe waits (up to its 60 s timeout) instead of finishing, so
    // the status can be looked at before any probe of a new run lands.
    let id = started(
        &c,
        "hc-restart",
        with_check(
            "busybox",
            &[
                "CMD-SHELL",
                "while test -f /tmp/hold; do sleep 0.1; done; test -f /tmp/ok",
            ],
            1,
            60_000,
        ),
    )
    .await;
    wait_health(&c, &id, |h| h.status == "unhealthy").await;

    d.kill9().unwrap();
    d.restart().await.unwrap();
    let c = d.client();
    let ins = c.inspect_container(&id).await.unwrap();
    assert!(ins.state.running);
    let h = ins.state.health.expect("Health kept across the restart");
    assert_eq!(h.status, "unhealthy");
    assert!(!h.log.is_empty());

    // Probes resume: making the check pass turns it healthy.
    exec_in(&c, &id, &["touch", "/tmp/ok"]).await;
    wait_health(&c, &id, |h| h.status == "healthy").await;

    // A restart of the container starts over at `starting`, keeping the log. It was healthy,
    // and no probe of the new run can finish while /tmp/hold exists (the rootfs, and so the
    // file, outlives the restart), so `starting` can only come from the reset, which the
    // start does before the restart request returns.
    exec_in(&c, &id, &["touch", "/tmp/hold"]).await;
    c.restart(&id, Some(1)).await.unwrap();
    let ins = c.inspect_container(&id).await.unwrap();
    let h = ins.state.health.unwrap();
    assert_eq!(h.status, "starting", "{h:?}");
    assert_eq!(h.failing_streak, 0);
    // The log kept is the previous run's: every probe in it started before this run.
    let run_started = parse_rfc3339(&ins.state.started_at).unwrap();
    assert!(!h.log.is_empty());
    assert!(
        h.log
            .iter()
            .all(|p| parse_rfc3339(&p.start).is_some_and(|t| t < run_started)),
        "{h:?}"
    );
    // Let the probes finish: the new run's first result makes it healthy again.
    exec_in(&c, &id, &["rm", "/tmp/hold"]).await;
    wait_health(&c, &id, |h| h.status == "healthy").await;
    c.remove(&id, true).await.unwrap();
}

/// Runs `cmd` in the container and waits (up to 30 s) until it exited 0.
async fn exec_in(c: &Client, id: &str, cmd: &[&str]) {
    let exec = c.exec_create(id, &json!({ "Cmd": cmd })).await.unwrap();
    c.exec_start_detached(&exec, &json!({"Detach": true}))
        .await
        .unwrap();
    for _ in 0..300 {
        let ins = c.exec_inspect(&exec).await.unwrap();
        if !ins.running && ins.exit_code.is_some() {
            assert_eq!(ins.exit_code, Some(0), "{cmd:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{cmd:?} did not finish");
}
