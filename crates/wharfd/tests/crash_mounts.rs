//! Crash test of a container's mounts (issue 15 item 2, "Never lose data"): the image's
//! content copied into an empty volume at create, cut by wharfd's death after the first entry
//! (failpoint `copy-up-partial`). The half-filled volume must never pass for a used one: the
//! next mount empties it, and a copy-up then fills it whole.
//!
//! Needs the failpoints: `cargo test -p wharfd --features failpoints --test crash_mounts`.
#![cfg(feature = "failpoints")]
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash_support;

use crash_support::*;
use wharf_testkit::cleanup::mounts_under;
use wharf_testkit::{import_busybox, start_or_skip};

fn with_binds(argv: &[&str], binds: &[&str]) -> wharf_api::container::ContainerCreateRequest {
    let mut r = cmd(argv);
    r.host_config = Some(wharf_api::container::HostConfig {
        binds: Some(binds.iter().map(|b| b.to_string()).collect()),
        ..Default::default()
    });
    r
}

#[tokio::test]
async fn a_copy_up_cut_short_is_emptied_then_done_whole() {
    let Some(mut d) = start_or_skip("it-crash-copy-up").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    // What a whole copy of the image's /bin holds.
    let full = c
        .create_container(Some("full"), &with_binds(&["true"], &["full-vol:/bin"]))
        .await
        .unwrap();
    let root = d.data_root().join("volumes");
    let data = |v: &str| root.join(v).join("_data");
    let whole = names(&data("full-vol"));
    assert!(whole.len() > 1, "busybox's /bin has entries: {whole:?}");
    c.remove(&full.id, true).await.unwrap();

    let armed = arm(&d, "copy-up-partial");
    assert!(
        c.create_container(Some("cut"), &with_binds(&["true"], &["cut-vol:/bin"]))
            .await
            .is_err(),
        "the create is cut by the daemon's death"
    );
    d.kill9().unwrap();
    std::fs::remove_file(armed).unwrap();
    // The window: the marker, and a volume that is neither empty nor whole.
    let vol = d.data_root().join("volumes/cut-vol");
    assert!(vol.join("copy-up.partial").exists());
    let half = names(&data("cut-vol"));
    assert!(!half.is_empty() && half.len() < whole.len(), "{half:?}");
    d.restart().await.unwrap();

    let c = d.client();
    // The cut create left no container; its volume (a committed row) stays. The rootfs it
    // had mounted for the copy is unmounted with the rest of its leftovers.
    assert!(c.list_containers(true, None).await.unwrap().is_empty());
    let exec_root = d.exec_root().join("containers");
    wharf_testkit::wait_until_true("no mount left under the exec root", || {
        mounts_under(&exec_root).is_empty()
    })
    .await;
    // A mount that does not copy sees an empty volume, not half of one.
    let nocopy = c
        .create_container(
            Some("nocopy"),
            &with_binds(
                &["sh", "-c", "test -z \"$(ls -A /v)\""],
                &["cut-vol:/v:nocopy"],
            ),
        )
        .await
        .unwrap();
    c.start(&nocopy.id).await.unwrap();
    let code = c.wait(&nocopy.id, Some("not-running")).await.unwrap();
    assert_eq!(
        code.status_code, 0,
        "the half copy was emptied before the mount"
    );
    assert!(!vol.join("copy-up.partial").exists());
    c.remove(&nocopy.id, true).await.unwrap();
    // And the next copy-up fills it whole.
    let again = c
        .create_container(Some("again"), &with_binds(&["true"], &["cut-vol:/bin"]))
        .await
        .unwrap();
    assert_eq!(names(&data("cut-vol")), whole);
    c.remove(&again.id, true).await.unwrap();
    d.cleanup().unwrap();
}

/// `rm -v` cut between deleting the container's record and removing its anonymous volume
/// (failpoint `rm-record-deleted`): the next start removes the volume, which nothing uses any
/// more; a named volume of the same container stays.
#[tokio::test]
async fn rm_v_cut_after_the_record_still_removes_the_anonymous_volume() {
    let Some(mut d) = start_or_skip("it-crash-rm-v").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let mut req = with_binds(&["true"], &["rmv-named:/named"]);
    req.config.volumes = Some([("/anon".to_string(), serde_json::json!({}))].into());
    let made = c.create_container(Some("rmv"), &req).await.unwrap();
    let anon = c
        .inspect_container(&made.id)
        .await
        .unwrap()
        .mounts
        .into_iter()
        .find(|m| m.destination == "/anon")
        .unwrap()
        .name;
    let root = d.data_root().join("volumes");
    assert!(root.join(&anon).exists());

    let armed = arm(&d, "rm-record-deleted");
    let cut = c
        .request(
            http::Method::DELETE,
            &format!("/containers/{}?v=1", made.id),
            None,
        )
        .await;
    assert!(
        cut.is_err(),
        "the rm is cut by the daemon's death: {:?}",
        cut.map(|r| r.status)
    );
    d.kill9().unwrap();
    std::fs::remove_file(armed).unwrap();
    assert!(root.join(&anon).join("remove.pending").exists());
    d.restart().await.unwrap();

    let c = d.client();
    assert!(c.list_containers(true, None).await.unwrap().is_empty());
    assert!(!root.join(&anon).exists(), "the anonymous volume is gone");
    let listed = c
        .request(http::Method::GET, "/volumes", None)
        .await
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.body).unwrap();
    let vols: Vec<&str> = listed["Volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["Name"].as_str().unwrap())
        .collect();
    assert_eq!(vols, ["rmv-named"]);
    c.request(http::Method::DELETE, "/volumes/rmv-named", None)
        .await
        .unwrap();
    d.cleanup().unwrap();
}
