//! Crash tests: wharfd killed at a chosen point inside an operation (a test-only failpoint,
//! wharf-engine's `failpoint.rs`), then restarted on the same roots. After the restart every
//! container is exactly one visible thing, and nothing is left that no container owns.
//!
//! Needs the failpoints: `cargo test -p wharfd --features failpoints --test crash`.
#![cfg(feature = "failpoints")]
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash_support;

use crash_support::{arm, assert_no_run_left, cmd, read_pid, snapshot_count, started_run, Cut};
use std::time::Duration;
use wharf_testkit::cleanup::cgroup_dirs_for;
use wharf_testkit::{import_busybox, process_alive, start_or_skip, wait_until_true, TestDaemon};

/// Creates a container, starts it with the `start-launched` failpoint armed (wharfd kills
/// itself right after the shim reported the process started), and restarts wharfd.
async fn start_cut_by_a_crash(d: &mut TestDaemon, name: &str) -> Cut {
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let id = c
        .create_container(Some(name), &cmd(&["sleep", "1000"]))
        .await
        .unwrap()
        .id;
    let armed = arm(d, "start-launched");
    assert!(
        c.start(&id).await.is_err(),
        "the start must be cut by the daemon's death"
    );
    d.kill9().unwrap();
    std::fs::remove_file(armed).unwrap();
    let dir = d.exec_root().join("containers").join(&id);
    let shim = read_pid(&dir.join("shim.pid"));
    let init = read_pid(&dir.join("init.pid"));
    // The window the failpoint reproduces: the process runs, the record says it does not.
    assert!(process_alive(shim), "the shim runs while wharfd is down");
    assert!(
        process_alive(init),
        "the container runs while wharfd is down"
    );
    d.restart().await.unwrap();
    Cut { id, shim, init }
}

#[tokio::test]
async fn a_start_cut_after_the_shim_started_ends_stopped_with_nothing_left() {
    let Some(mut d) = start_or_skip("it-crash-start").await else {
        return;
    };
    let cut = start_cut_by_a_crash(&mut d, "cut-start").await;
    let c = d.client();

    // Exactly one outcome: not running, and nothing of that run left.
    let i = c.inspect_container(&cut.id).await.unwrap();
    assert!(!i.state.running, "state: {:?}", i.state.status);
    assert_eq!(i.state.status, "exited");
    assert_no_run_left(&d, &cut).await;
    let log = d.log_tail(400);
    assert!(
        log.lines()
            .any(|l| l.contains(&cut.id) && l.contains("INFO") && l.contains("stopped")),
        "restore says what it did; log tail:\n{log}"
    );

    // The container is whole: it starts, stops and is removed like any other.
    c.start(&cut.id).await.unwrap();
    assert!(c.inspect_container(&cut.id).await.unwrap().state.running);
    c.remove(&cut.id, true).await.unwrap();
    let cgroups = cgroup_dirs_for(&format!("{}/{}", d.cgroup_parent(), cut.id));
    wait_until_true("the removed container's cgroups gone", || {
        cgroups.iter().all(|p| !p.exists())
    })
    .await;
    d.cleanup().unwrap();
}

#[tokio::test]
async fn rm_f_of_a_container_whose_start_was_cut_leaves_nothing() {
    let Some(mut d) = start_or_skip("it-crash-rmf").await else {
        return;
    };
    let cut = start_cut_by_a_crash(&mut d, "cut-rmf").await;
    let c = d.client();
    c.remove(&cut.id, true).await.unwrap();
    assert!(c.inspect_container(&cut.id).await.is_err());
    assert_no_run_left(&d, &cut).await;
    let data = d.data_root().join("containers").join(&cut.id);
    wait_until_true("the removed container's data dir gone", || !data.exists()).await;
    d.cleanup().unwrap();
}

fn kill9(pid: i32) {
    let st = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -9 {pid}");
}

/// Which process of a run a test kills.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Victim {
    Shim,
    Init,
}

/// Kills `victim` of one run while wharfd runs and of another while it is down: both end
/// exited with `code`, nothing of their runs is left, and they start and are removed again.
async fn killed_while_up_and_down(daemon: &str, victim: Victim, code: i64) {
    let Some(mut d) = start_or_skip(daemon).await else {
        return;
    };
    import_busybox(&d.client(), "busybox:latest").await.unwrap();
    let live = started_run(&d, &format!("{daemon}-live")).await;
    let down = started_run(&d, &format!("{daemon}-down")).await;
    let pid = |run: &Cut| match victim {
        Victim::Shim => run.shim,
        Victim::Init => run.init,
    };

    kill9(pid(&live));
    // A killed shim's init outlives it (it is reparented): only the cgroup knows it.
    let c = d.client();
    let mut state = c.inspect_container(&live.id).await.unwrap().state;
    for _ in 0..300 {
        if !state.running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        state = c.inspect_container(&live.id).await.unwrap().state;
    }
    assert_eq!((state.status.as_str(), state.exit_code), ("exited", code));
    assert_no_run_left(&d, &live).await;

    d.kill9().unwrap();
    kill9(pid(&down));
    wait_until_true("the shim gone", || !process_alive(down.shim)).await;
    if victim == Victim::Shim {
        assert!(process_alive(down.init), "the init outlives its shim");
    }
    d.restart().await.unwrap();
    let c = d.client();
    let i = c.inspect_container(&down.id).await.unwrap();
    assert_eq!(
        (i.state.status.as_str(), i.state.exit_code),
        ("exited", code)
    );
    if victim == Victim::Init {
        assert!(
            !i.state.finished_at.starts_with("0001"),
            "an exit time recorded: {}",
            i.state.finished_at
        );
    }
    assert_no_run_left(&d, &down).await;

    for id in [&live.id, &down.id] {
        c.start(id).await.unwrap();
        c.remove(id, true).await.unwrap();
    }
    d.cleanup().unwrap();
}

/// A shim killed with SIGKILL: its container is reported exited 255 (nobody saw the exit), and
/// its init, which outlives the shim, goes with its cgroup before anything can start it again.
#[tokio::test]
async fn a_killed_shim_leaves_no_process_or_cgroup_behind() {
    killed_while_up_and_down("it-crash-shim", Victim::Shim, 255).await;
}

/// The container's init killed with SIGKILL: the container is reported exited 137 (what the
/// kernel said), with nothing of the run left.
#[tokio::test]
async fn a_killed_init_is_reported_exited_137_with_nothing_left() {
    killed_while_up_and_down("it-crash-init", Victim::Init, 137).await;
}

/// The launch is held (wharf-shim's `shim-setup-bound` hold point: socket bound, container not
/// yet created) while wharfd is killed and restarted: restore must wait for it, not judge the
/// half-made run (nor delete the dir under it), and then end it as a cut start.
#[tokio::test]
async fn a_launch_still_setting_up_at_restore_is_waited_for_then_stopped() {
    let Some(mut d) = start_or_skip("it-crash-setup").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let id = c
        .create_container(Some("held-launch"), &cmd(&["sleep", "1000"]))
        .await
        .unwrap()
        .id;
    let hold = arm(&d, "shim-setup-bound");
    let reached = hold.with_extension("reached");
    let start = tokio::spawn({
        let c = c.clone();
        let id = id.clone();
        async move { c.start(&id).await }
    });
    wait_until_true(
        "the launch held after binding its socket (is wharf-shim built with --features failpoints?)",
        || reached.exists(),
    )
    .await;
    d.kill9().unwrap();
    assert!(start.await.unwrap().is_err(), "the start is cut");

    let log = d.log_path();
    let waiting = "waiting for a launch";
    let (restarted, ()) = tokio::join!(d.restart(), async {
        // Released only once restore says it waits for this launch.
        wait_until_true("restore waiting for the launch", || {
            std::fs::read_to_string(&log)
                .is_ok_and(|l| l.lines().any(|l| l.contains(waiting) && l.contains(&id)))
        })
        .await;
        std::fs::remove_file(&hold).unwrap();
    });
    restarted.unwrap();

    let c = d.client();
    let i = c.inspect_container(&id).await.unwrap();
    assert_eq!(i.state.status, "exited");
    let exec_dir = d.exec_root().join("containers").join(&id);
    assert!(!exec_dir.exists(), "exec dir left");
    assert!(!d.exec_root().join("runtime").join(&id).exists());
    let cgroups = cgroup_dirs_for(&format!("{}/{}", d.cgroup_parent(), id));
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    // Not even the monitor that answered the stop stays behind.
    wait_until_true("no process of the container left", || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .all(|c| !String::from_utf8_lossy(&c).contains(id.as_str()))
    })
    .await;
    c.start(&id).await.unwrap();
    c.remove(&id, true).await.unwrap();
    d.cleanup().unwrap();
}

/// The worst a removal cut by a crash can leave: the record gone while the container still
/// runs (as a removal that deleted the record before its teardown, with the process not yet
/// dead). The next start must stop it through its shim and remove everything it owned.
#[tokio::test]
async fn leftovers_of_a_removed_container_are_stopped_and_removed_at_start() {
    let Some(mut d) = start_or_skip("it-crash-orphan").await else {
        return;
    };
    import_busybox(&d.client(), "busybox:latest").await.unwrap();
    let layers = snapshot_count(&d);
    let run = started_run(&d, "orphan").await;
    d.kill9().unwrap();
    let db = d.data_root().join("meta.db");
    let deleted = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(format!("DELETE FROM containers WHERE id = '{}'", run.id))
        .status();
    match deleted {
        Ok(s) if s.success() => {}
        other => {
            wharf_testkit::skip(format!(
                "cannot edit {} with sqlite3: {other:?}",
                db.display()
            ));
            d.cleanup().unwrap();
            return;
        }
    }
    d.restart().await.unwrap();
    assert!(d.client().inspect_container(&run.id).await.is_err());
    assert_no_run_left(&d, &run).await;
    let data = d.data_root().join("containers").join(&run.id);
    wait_until_true("its data dir and writable layer gone", || {
        !data.exists() && snapshot_count(&d) == layers
    })
    .await;
    let log = d.log_tail(400);
    assert!(
        log.lines()
            .any(|l| l.contains(&run.id) && l.contains("leftovers of a removed container")),
        "restore says what it did; log tail:\n{log}"
    );
    d.cleanup().unwrap();
}
