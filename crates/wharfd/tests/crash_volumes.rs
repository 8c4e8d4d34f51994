//! Crash tests of volumes with mount options (issue 15 item 1, "Never lose data"): a removal
//! of a bind volume cut by wharfd's death never deletes the bound host directory, and the next
//! start leaves no volume mount behind.
//!
//! Needs the failpoints: `cargo test -p wharfd --features failpoints --test crash_volumes`.
#![cfg(feature = "failpoints")]
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash_support;

use crash_support::*;
use serde_json::json;
use std::path::Path;
use wharf_testkit::cleanup::mounts_under;
use wharf_testkit::start_or_skip;

fn sh(args: &[&str]) {
    let st = std::process::Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap();
    assert!(st.success(), "{args:?}");
}

/// The bind of `host` on the volume's `_data` that a container running with it holds; taken
/// off by the test whatever happens.
struct HandMount(std::path::PathBuf);

impl Drop for HandMount {
    fn drop(&mut self) {
        for m in mounts_under(&self.0) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&m)
                .status();
        }
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// `volume rm` of a `type=none,o=bind` volume that a crash left mounted, cut after its row:
/// the rm unmounted before deleting the row, so the next start deletes only the volume's own
/// directory and the host directory keeps every file.
#[tokio::test]
async fn a_bind_volume_removal_cut_after_its_record_keeps_the_host_data() {
    let Some(mut d) = start_or_skip("it-crash-volume-bind-rm").await else {
        return;
    };
    // Outside the daemon's directory, so that no cleanup of it can reach the host data.
    let host_dir = std::env::temp_dir().join("it-crash-volume-bind-rm-host");
    let _ = std::fs::remove_dir_all(&host_dir);
    std::fs::create_dir_all(&host_dir).unwrap();
    let host = host_dir.as_path();
    std::fs::write(host.join("precious"), "keep me").unwrap();
    let c = d.client();
    let body = json!({"Name": "cut-bind", "DriverOpts": {
        "type": "none", "o": "bind", "device": host.to_str().unwrap()}});
    let r = c
        .request(
            http::Method::POST,
            "/volumes/create",
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 201);
    let volumes = d.data_root().join("volumes");
    let data = volumes.join("cut-bind/_data");
    let _m = HandMount(volumes.clone());
    sh(&[
        "mount",
        "--bind",
        host.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    std::fs::write(data.join("written"), "through the bind").unwrap();

    let armed = arm(&d, "volume-record-deleted");
    assert!(c
        .request(http::Method::DELETE, "/volumes/cut-bind", None)
        .await
        .is_err());
    d.kill9().unwrap();
    std::fs::remove_file(armed).unwrap();
    assert!(
        mounts_under(&volumes).is_empty(),
        "rm unmounts before the row goes"
    );
    assert!(data.is_dir(), "the window: a directory, no row");
    d.restart().await.unwrap();

    assert!(!volumes.join("cut-bind").exists());
    let r = d
        .client()
        .request(http::Method::GET, "/volumes/cut-bind", None)
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 404);
    assert_eq!(read(&host.join("precious")), "keep me");
    assert_eq!(read(&host.join("written")), "through the bind");
    d.cleanup().unwrap();
    std::fs::remove_dir_all(host).unwrap();
}

/// A tmpfs volume left mounted by a killed wharfd with no container using it: the next start
/// takes the mount off and keeps the volume.
#[tokio::test]
async fn a_volume_mount_no_container_uses_comes_off_at_the_next_start() {
    let Some(mut d) = start_or_skip("it-crash-volume-sweep").await else {
        return;
    };
    let c = d.client();
    let body = json!({"Name": "swept", "DriverOpts": {"type": "tmpfs", "device": "tmpfs"}});
    let r = c
        .request(
            http::Method::POST,
            "/volumes/create",
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 201);
    let volumes = d.data_root().join("volumes");
    let _m = HandMount(volumes.clone());
    sh(&[
        "mount",
        "-t",
        "tmpfs",
        "tmpfs",
        volumes.join("swept/_data").to_str().unwrap(),
    ]);
    d.kill9().unwrap();
    d.restart().await.unwrap();
    assert!(mounts_under(&volumes).is_empty());
    let r = d
        .client()
        .request(http::Method::GET, "/volumes/swept", None)
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);
    d.cleanup().unwrap();
}
