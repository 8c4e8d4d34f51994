//! `docker commit` cut by wharfd's death (issue 15, "Never lose data"): after its layer is
//! stored, and after every blob is stored but before the record. After the restart there is
//! no image, no blob and no layer of it; the container is untouched and the same commit then
//! works. A running container frozen by the commit's pause is found paused (the kernel's
//! word, as after a cut `docker pause`) and unpauses.
//!
//! Needs the failpoints: `cargo test -p wharfd --features failpoints --test crash_commit`.
#![cfg(feature = "failpoints")]
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash_support;

use crash_support::*;
use wharf_testkit::{import_busybox, start_or_skip};

async fn commit(
    c: &wharf_client::Client,
    id: &str,
    repo: &str,
) -> Result<String, wharf_client::ClientError> {
    let raw = c
        .request(
            http::Method::POST,
            &format!("/commit?container={id}&repo={repo}&tag=v1"),
            None,
        )
        .await?
        .error_for_status()?;
    let v: serde_json::Value = raw.json("/commit")?;
    Ok(v["Id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_commit_cut_before_its_record_leaves_no_image_blob_or_layer() {
    let Some(mut d) = start_or_skip("it-crash-commit").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let id = c
        .create_container(
            Some("cut-commit-src"),
            &cmd(&["sh", "-c", "echo kept > /data.txt"]),
        )
        .await
        .unwrap()
        .id;
    c.start(&id).await.unwrap();
    c.wait(&id, None).await.unwrap();
    let (blobs0, layers0) = (blobs(&d), snapshot_count(&d));
    for point in ["commit-layer-stored", "commit-blobs-stored"] {
        let armed = arm(&d, point);
        let cut = commit(&d.client(), &id, "cut-commit").await;
        assert!(
            cut.is_err() && !matches!(cut, Err(wharf_client::ClientError::Api { .. })),
            "{point}: the commit is cut by the daemon's death: {cut:?}"
        );
        d.kill9().unwrap();
        std::fs::remove_file(armed).unwrap();
        assert!(
            blobs(&d).len() > blobs0.len(),
            "{point}: the window: blobs stored"
        );
        assert_eq!(
            snapshot_count(&d),
            layers0 + 1,
            "{point}: the window: its layer"
        );
        d.restart().await.unwrap();

        let c = d.client();
        assert!(c.inspect_image("cut-commit:v1").await.is_err(), "{point}");
        assert_eq!(c.list_images(true).await.unwrap().len(), 1, "{point}");
        assert_eq!(blobs(&d), blobs0, "{point}: blobs left");
        assert_eq!(snapshot_count(&d), layers0, "{point}: layers left");
        assert!(log_says(&d, &["restore:", "removed a layer"]), "{point}");
        // The container is as it was, and the commit works now.
        assert_eq!(c.inspect_container(&id).await.unwrap().id, id);
        let image = commit(&c, &id, "cut-commit").await.unwrap();
        assert_eq!(c.inspect_image("cut-commit:v1").await.unwrap().id, image);
        c.remove_image("cut-commit:v1", false).await.unwrap();
        assert_eq!(blobs(&d), blobs0, "{point}: rmi removes its blobs");
        assert_eq!(
            snapshot_count(&d),
            layers0,
            "{point}: rmi removes its layer"
        );
    }
    d.cleanup().unwrap();
}

#[tokio::test]
async fn a_running_container_frozen_by_a_cut_commit_is_found_paused() {
    let Some(mut d) = start_or_skip("it-crash-commit-paused").await else {
        return;
    };
    import_busybox(&d.client(), "busybox:latest").await.unwrap();
    let run = started_run(&d, "cut-commit-running").await;
    let armed = arm(&d, "commit-blobs-stored");
    assert!(commit(&d.client(), &run.id, "cut-running").await.is_err());
    d.kill9().unwrap();
    std::fs::remove_file(armed).unwrap();
    d.restart().await.unwrap();

    let c = d.client();
    let st = c.inspect_container(&run.id).await.unwrap().state;
    assert!(
        st.running && st.paused,
        "restore takes the freezer's word: {st:?}"
    );
    pause(&c, &run.id, false).await.unwrap();
    let st = c.inspect_container(&run.id).await.unwrap().state;
    assert!(st.running && !st.paused);
    assert!(c.inspect_image("cut-running:v1").await.is_err());
    c.remove(&run.id, true).await.unwrap();
    d.cleanup().unwrap();
}
