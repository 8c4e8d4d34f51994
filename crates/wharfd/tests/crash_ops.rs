//! Crash tests of the operations besides start (issue 12 item 1): create, rename, rm, pause,
//! unpause, exec start, image import and rmi, each cut by wharfd's death at a failpoint
//! between two of its steps (wharf-engine's `failpoint.rs` lists them), then wharfd restarted
//! on the same roots. After the restart the object is exactly one visible, consistent thing
//! and nothing is left that no object owns. Also item 2: `rm -f` of a paused container and of
//! one with a running exec leaves nothing.
//!
//! Needs the failpoints: `cargo test -p wharfd --features failpoints --test crash_ops`.
#![cfg(feature = "failpoints")]
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash_support;

use crash_support::*;
use serde_json::json;
use wharf_testkit::{import_busybox, process_alive, start_or_skip, wait_until_true};

#[tokio::test]
async fn a_create_cut_before_its_record_leaves_nothing() {
    let Some(mut d) = start_or_skip("it-crash-create").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let layers = snapshot_count(&d);
    let armed = arm(&d, "create-prepared");
    assert!(
        c.create_container(Some("cut-create"), &cmd(&["true"]))
            .await
            .is_err(),
        "the create is cut by the daemon's death"
    );
    d.kill9().unwrap();
    std::fs::remove_file(armed).unwrap();
    // The window: a writable layer and a data dir that no record owns.
    assert_eq!(
        snapshot_count(&d),
        layers + 1,
        "the cut create made its layer"
    );
    let data: Vec<_> = std::fs::read_dir(d.data_root().join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(data.len(), 1, "the cut create made its data dir: {data:?}");
    d.restart().await.unwrap();

    let c = d.client();
    assert!(c.list_containers(true, None).await.unwrap().is_empty());
    wait_until_true("the cut create's layer and data dir gone", || {
        snapshot_count(&d) == layers && !d.data_root().join("containers").join(&data[0]).exists()
    })
    .await;
    assert!(
        log_says(&d, &["restore:", &data[0], "leftovers"]),
        "restore says what it did; log tail:\n{}",
        d.log_tail(60)
    );
    // The name was never taken.
    let id = c
        .create_container(Some("cut-create"), &cmd(&["true"]))
        .await
        .unwrap()
        .id;
    c.remove(&id, true).await.unwrap();
    d.cleanup().unwrap();
}

#[tokio::test]
async fn a_rename_cut_after_its_commit_has_the_new_name_only() {
    let Some(mut d) = start_or_skip("it-crash-rename").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let id = c
        .create_container(Some("before-rename"), &cmd(&["true"]))
        .await
        .unwrap()
        .id;
    let armed = arm(&d, "rename-saved");
    assert!(c.rename(&id, "after-rename").await.is_err());
    d.kill9().unwrap();
    std::fs::remove_file(armed).unwrap();
    d.restart().await.unwrap();

    let c = d.client();
    let i = c.inspect_container("after-rename").await.unwrap();
    assert_eq!(
        (i.id.as_str(), i.name.as_str()),
        (id.as_str(), "/after-rename")
    );
    assert!(c.inspect_container("before-rename").await.is_err());
    assert_eq!(c.list_containers(true, None).await.unwrap().len(), 1);
    // The old name is free again.
    let other = c
        .create_container(Some("before-rename"), &cmd(&["true"]))
        .await
        .unwrap()
        .id;
    for x in [&id, &other] {
        c.remove(x, true).await.unwrap();
    }
    d.cleanup().unwrap();
}

/// An auto-removed container's exit cut between deleting its record and its teardown: its
/// rootfs is still mounted (auto-remove leaves the unmount to the teardown), its exec dir and
/// writable layer still there. The next start finishes the removal.
#[tokio::test]
async fn a_removal_cut_after_its_record_is_finished_at_next_start() {
    let Some(mut d) = start_or_skip("it-crash-rm").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let layers = snapshot_count(&d);
    let mut req = cmd(&["sleep", "1000"]);
    req.host_config
        .get_or_insert_with(Default::default)
        .auto_remove = true;
    let run = started_run_of(&d, "cut-rm", req).await;
    let armed = arm(&d, "rm-record-deleted");
    // Its exit starts the auto-removal, which the failpoint cuts; the kill's answer may or may
    // not make it out first.
    let _ = c.kill(&run.id, None).await;
    wait_for_failpoint_death(&mut d).await;
    std::fs::remove_file(armed).unwrap();
    let exec_dir = d.exec_root().join("containers").join(&run.id);
    assert!(
        !wharf_testkit::cleanup::mounts_under(&exec_dir).is_empty(),
        "the window: its rootfs still mounted"
    );
    d.restart().await.unwrap();
    assert_removed_whole(&d, &run, layers).await;
    assert!(
        log_says(&d, &["restore:", &run.id, "leftovers"]),
        "restore says what it did; log tail:\n{}",
        d.log_tail(60)
    );
    d.cleanup().unwrap();
}

/// A pause cut after the freeze (the saved state says running) and an unpause cut after the
/// thaw (the saved state says paused): restore takes the cgroup's word, and the container
/// then unpauses, stops and is removed like any other.
#[tokio::test]
async fn pause_and_unpause_cut_by_a_crash_end_as_the_cgroup_says() {
    let Some(mut d) = start_or_skip("it-crash-pause").await else {
        return;
    };
    import_busybox(&d.client(), "busybox:latest").await.unwrap();
    let layers = snapshot_count(&d);
    let run = started_run(&d, "cut-pause").await;

    let armed = arm(&d, "pause-frozen");
    assert!(pause(&d.client(), &run.id, true).await.is_err());
    d.kill9().unwrap();
    std::fs::remove_file(armed).unwrap();
    d.restart().await.unwrap();
    let c = d.client();
    let st = c.inspect_container(&run.id).await.unwrap().state;
    assert_eq!((st.status.as_str(), st.paused), ("paused", true));
    assert!(log_says(&d, &["restore:", &run.id, "marked paused"]));
    pause(&c, &run.id, false).await.unwrap();
    assert!(!c.inspect_container(&run.id).await.unwrap().state.paused);

    pause(&c, &run.id, true).await.unwrap();
    let armed = arm(&d, "unpause-thawed");
    assert!(pause(&c, &run.id, false).await.is_err());
    d.kill9().unwrap();
    std::fs::remove_file(armed).unwrap();
    d.restart().await.unwrap();
    let c = d.client();
    let st = c.inspect_container(&run.id).await.unwrap().state;
    assert_eq!((st.status.as_str(), st.paused), ("running", false));
    assert!(log_says(&d, &["restore:", &run.id, "marked unpaused"]));
    // A frozen process would not take the stop's signal: it must stop at once.
    c.stop(&run.id, Some(1)).await.unwrap();
    assert_eq!(
        c.inspect_container(&run.id).await.unwrap().state.status,
        "exited"
    );
    c.remove(&run.id, false).await.unwrap();
    assert_removed_whole(&d, &run, layers).await;
    d.cleanup().unwrap();
}

/// An exec start cut after the shim started the process: exec records live in memory (as
/// dockerd's), so after the restart the exec is gone from the container's `ExecIDs`, its
/// process file is removed, and its process runs on inside the container until the container
/// goes, taking it along.
#[tokio::test]
async fn an_exec_start_cut_after_the_shim_started_it_leaves_the_container_whole() {
    let Some(mut d) = start_or_skip("it-crash-exec").await else {
        return;
    };
    import_busybox(&d.client(), "busybox:latest").await.unwrap();
    let layers = snapshot_count(&d);
    let run = started_run(&d, "cut-exec").await;
    let c = d.client();
    let exec = c
        .exec_create(&run.id, &json!({"Cmd": ["sleep", "7771"]}))
        .await
        .unwrap();
    let armed = arm(&d, "exec-started");
    assert!(c
        .exec_start_detached(&exec, &json!({"Detach": true}))
        .await
        .is_err());
    d.kill9().unwrap();
    std::fs::remove_file(armed).unwrap();
    let exec_dir = d.exec_root().join("containers").join(&run.id);
    let process_files = || {
        std::fs::read_dir(&exec_dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("exec-"))
            .count()
    };
    assert_eq!(process_files(), 1, "the window: the exec's process file");
    let exec_pids = pids_running(&["sleep", "7771"]);
    assert_eq!(exec_pids.len(), 1, "the exec's process runs");
    d.restart().await.unwrap();

    let c = d.client();
    let i = c.inspect_container(&run.id).await.unwrap();
    assert!(i.state.running);
    assert_eq!(i.exec_ids, None);
    assert!(c.exec_inspect(&exec).await.is_err());
    assert_eq!(process_files(), 0, "the process file is removed");
    assert!(log_says(&d, &["restore:", &run.id, "exec start cut"]));
    assert!(
        process_alive(exec_pids[0]),
        "the exec runs on in its container"
    );
    // A new exec works.
    let again = c
        .exec_create(&run.id, &json!({"Cmd": ["true"]}))
        .await
        .unwrap();
    c.exec_start_detached(&again, &json!({"Detach": true}))
        .await
        .unwrap();
    c.remove(&run.id, true).await.unwrap();
    assert_removed_whole(&d, &run, layers).await;
    wait_until_true("the exec's process gone", || !process_alive(exec_pids[0])).await;
    d.cleanup().unwrap();
}

/// Item 2: `rm -f` of a paused container (a frozen process takes no signal until thawed).
#[tokio::test]
async fn rm_f_of_a_paused_container_leaves_nothing() {
    let Some(mut d) = start_or_skip("it-rm-paused").await else {
        return;
    };
    import_busybox(&d.client(), "busybox:latest").await.unwrap();
    let layers = snapshot_count(&d);
    let run = started_run(&d, "rm-paused").await;
    let c = d.client();
    pause(&c, &run.id, true).await.unwrap();
    c.remove(&run.id, true).await.unwrap();
    assert_removed_whole(&d, &run, layers).await;
    d.cleanup().unwrap();
}

/// Item 2: `rm -f` of a container with a running exec, in the container's own pid namespace
/// (the init's death takes the exec along) and in the host's (it does not: the shim's
/// forced delete kills what is left in the cgroup).
#[tokio::test]
async fn rm_f_of_a_container_with_a_running_exec_leaves_nothing() {
    let Some(mut d) = start_or_skip("it-rm-exec").await else {
        return;
    };
    import_busybox(&d.client(), "busybox:latest").await.unwrap();
    let layers = snapshot_count(&d);
    for (name, pid_mode, secs) in [
        ("rm-exec-own", "", "7772"),
        ("rm-exec-host", "host", "7773"),
    ] {
        let mut req = cmd(&["sleep", "1000"]);
        req.host_config
            .get_or_insert_with(Default::default)
            .pid_mode = pid_mode.to_string();
        let run = started_run_of(&d, name, req).await;
        let c = d.client();
        let exec = c
            .exec_create(&run.id, &json!({"Cmd": ["sleep", secs]}))
            .await
            .unwrap();
        c.exec_start_detached(&exec, &json!({"Detach": true}))
            .await
            .unwrap();
        let mut pids = Vec::new();
        wait_until_true("the exec's process runs", || {
            pids = pids_running(&["sleep", secs]);
            !pids.is_empty()
        })
        .await;
        c.remove(&run.id, true).await.unwrap();
        assert_removed_whole(&d, &run, layers).await;
        wait_until_true("the exec's process gone", || {
            pids.iter().all(|p| !process_alive(*p))
        })
        .await;
    }
    d.cleanup().unwrap();
}

/// An import cut after its layer (blob and committed snapshot) is stored, and one cut after
/// every blob is stored but before the record: after the restart neither image exists, and
/// no blob or layer of theirs is left; the same import then succeeds.
#[tokio::test]
async fn an_import_cut_before_its_record_leaves_no_blob_or_layer() {
    let Some(mut d) = start_or_skip("it-crash-import").await else {
        return;
    };
    import_busybox(&d.client(), "busybox:latest").await.unwrap();
    let (blobs0, layers0) = (blobs(&d), snapshot_count(&d));
    for (i, point) in ["import-layer-stored", "import-blobs-stored"]
        .into_iter()
        .enumerate()
    {
        let tar = one_file_tar("hello.txt", format!("cut import {i}").as_bytes());
        let armed = arm(&d, point);
        let cut = d
            .client()
            .import_image(tar.clone(), "cut-import", Some("v1"))
            .await;
        assert!(
            cut.is_err() && !matches!(cut, Err(wharf_client::ClientError::Api { .. })),
            "{point}: the import is cut by the daemon's death: {cut:?}"
        );
        d.kill9().unwrap();
        std::fs::remove_file(armed).unwrap();
        assert!(blobs(&d).len() > blobs0.len(), "the window: blobs stored");
        assert_eq!(snapshot_count(&d), layers0 + 1, "the window: its layer");
        d.restart().await.unwrap();

        let c = d.client();
        assert!(c.inspect_image("cut-import:v1").await.is_err(), "{point}");
        assert_eq!(c.list_images(true).await.unwrap().len(), 1, "{point}");
        assert_eq!(blobs(&d), blobs0, "{point}: blobs left");
        assert_eq!(snapshot_count(&d), layers0, "{point}: layers left");
        assert!(log_says(&d, &["restore:", "removed a blob"]), "{point}");
        assert!(log_says(&d, &["restore:", "removed a layer"]), "{point}");
        let id = c.import_image(tar, "cut-import", Some("v1")).await.unwrap();
        assert_eq!(c.inspect_image("cut-import:v1").await.unwrap().id, id);
        c.remove_image("cut-import:v1", false).await.unwrap();
        assert_eq!(blobs(&d), blobs0, "{point}: rmi removes its blobs");
    }
    d.cleanup().unwrap();
}

/// An image removal cut after its record (and tags) are deleted: after the restart the image
/// is gone, and its blobs and layer with it; importing it again works.
#[tokio::test]
async fn an_image_removal_cut_after_its_record_is_finished_at_next_start() {
    let Some(mut d) = start_or_skip("it-crash-rmi").await else {
        return;
    };
    import_busybox(&d.client(), "busybox:latest").await.unwrap();
    let (blobs0, layers0) = (blobs(&d), snapshot_count(&d));
    let tar = one_file_tar("bye.txt", b"cut rmi");
    let c = d.client();
    let id = c
        .import_image(tar.clone(), "cut-rmi", Some("v1"))
        .await
        .unwrap();
    c.tag_image("cut-rmi:v1", "cut-rmi", "v2").await.unwrap();
    let armed = arm(&d, "rmi-record-deleted");
    // By ID and forced: both tags go with the record, in one statement.
    assert!(c.remove_image(&id, true).await.is_err());
    d.kill9().unwrap();
    std::fs::remove_file(armed).unwrap();
    d.restart().await.unwrap();

    let c = d.client();
    for r in ["cut-rmi:v1", "cut-rmi:v2"] {
        assert!(
            c.inspect_image(r).await.is_err(),
            "{r} is gone with its image"
        );
    }
    assert_eq!(blobs(&d), blobs0, "blobs left");
    assert_eq!(snapshot_count(&d), layers0, "layers left");
    assert!(log_says(&d, &["restore:", "removed a blob"]));
    c.import_image(tar, "cut-rmi", Some("v1")).await.unwrap();
    c.remove_image("cut-rmi:v1", false).await.unwrap();
    d.cleanup().unwrap();
}

fn volume_dirs(d: &wharf_testkit::TestDaemon) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(d.data_root().join("volumes"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A volume create cut between its directory and its row: after the restart there is no
/// volume and no directory, and the name can be created again.
#[tokio::test]
async fn a_volume_create_cut_before_its_record_leaves_nothing() {
    let Some(mut d) = start_or_skip("it-crash-volume-create").await else {
        return;
    };
    let armed = arm(&d, "volume-dir-made");
    let body = serde_json::to_vec(&json!({"Name": "cut-vol"})).unwrap();
    let c = d.client();
    assert!(
        c.request(http::Method::POST, "/volumes/create", Some(body.clone()))
            .await
            .is_err(),
        "the create is cut by the daemon's death"
    );
    d.kill9().unwrap();
    std::fs::remove_file(armed).unwrap();
    assert_eq!(
        volume_dirs(&d),
        ["cut-vol"],
        "the window: a directory, no row"
    );
    d.restart().await.unwrap();

    let c = d.client();
    assert!(
        volume_dirs(&d).is_empty(),
        "the orphan directory is deleted"
    );
    let r = c
        .request(http::Method::GET, "/volumes/cut-vol", None)
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 404);
    let r = c
        .request(http::Method::POST, "/volumes/create", Some(body))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 201);
    assert_eq!(volume_dirs(&d), ["cut-vol"]);
    d.cleanup().unwrap();
}

/// A volume removal cut after its row is deleted: after the restart the volume is gone and
/// its data with it.
#[tokio::test]
async fn a_volume_removal_cut_after_its_record_is_finished_at_next_start() {
    let Some(mut d) = start_or_skip("it-crash-volume-rm").await else {
        return;
    };
    let c = d.client();
    let body = serde_json::to_vec(&json!({"Name": "cut-rm-vol"})).unwrap();
    let r = c
        .request(http::Method::POST, "/volumes/create", Some(body))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 201);
    std::fs::write(d.data_root().join("volumes/cut-rm-vol/_data/f"), b"data").unwrap();
    let armed = arm(&d, "volume-record-deleted");
    assert!(c
        .request(http::Method::DELETE, "/volumes/cut-rm-vol", None)
        .await
        .is_err());
    d.kill9().unwrap();
    std::fs::remove_file(armed).unwrap();
    assert_eq!(
        volume_dirs(&d),
        ["cut-rm-vol"],
        "the window: a directory, no row"
    );
    d.restart().await.unwrap();

    let c = d.client();
    assert!(volume_dirs(&d).is_empty());
    let r = c
        .request(http::Method::GET, "/volumes/cut-rm-vol", None)
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 404);
    d.cleanup().unwrap();
}
