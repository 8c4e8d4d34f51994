//! The harness against a fake wharfd (tests/fake-wharfd.py) that leaves stacked mounts, shims,
//! inits and cgroup members behind: after drop, and after a leaked daemon plus
//! `cleanup_stale`, nothing may remain. Its own binary because it sets `WHARFD_BIN`.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use wharf_testkit::cleanup::{cgroup_dirs_for, group_members, is_alive, mounts_under};
use wharf_testkit::{cleanup_stale, is_root, skip, TestDaemon};

fn pids_and_cgroups(dir: &Path) -> (Vec<i32>, Vec<PathBuf>) {
    let mut pids = Vec::new();
    let mut cgroups = Vec::new();
    let read_pid = |p: PathBuf| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
    };
    for e in std::fs::read_dir(dir.join("exec/containers"))
        .unwrap()
        .flatten()
    {
        pids.extend(read_pid(e.path().join("shim.pid")));
        pids.extend(read_pid(e.path().join("init.pid")));
    }
    for e in std::fs::read_dir(dir.join("data")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("stray-") {
            pids.extend(read_pid(e.path()));
        }
        if name.starts_with("cgroups-") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            cgroups.extend(text.lines().filter(|l| !l.is_empty()).map(PathBuf::from));
        }
    }
    (pids, cgroups)
}

fn assert_nothing_left(dir: &Path, pids: &[i32], cgroups: &[PathBuf], parent: &str) {
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(
        mounts_under(dir).is_empty(),
        "mounts left: {:?}",
        mounts_under(dir)
    );
    for p in pids {
        assert!(!is_alive(*p), "pid {p} survived");
        // The fake shim is `sh -c "sleep 1000; ..."`: its forked sleep must go too.
        assert!(group_members(*p).is_empty(), "process group {p} survived");
    }
    for c in cgroups {
        assert!(!c.exists(), "cgroup {} survived", c.display());
    }
    assert!(
        cgroup_dirs_for(parent).is_empty(),
        "{:?}",
        cgroup_dirs_for(parent)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_leaves_nothing_behind() {
    if !is_root() {
        skip("needs root (the harness mounts and makes cgroups)");
        return;
    }
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        skip("no python3 (the fake wharfd is a python script)");
        return;
    }
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-wharfd.py");
    // The only test in this binary, so no other thread reads the environment concurrently.
    std::env::set_var("WHARFD_BIN", &fake);

    // Start, kill -9, restart, stop, restart: every start adds a container's worth of debris.
    let mut d = TestDaemon::start("harness-self").await.unwrap();
    d.client().ping().await.unwrap();
    let parent = d.cgroup_parent();
    assert!(d.socket_path().as_os_str().len() < 108);
    d.kill9().unwrap();
    assert!(d.client().ping().await.is_err());
    d.restart().await.unwrap();
    d.stop().unwrap();
    d.restart().await.unwrap();
    assert!(d.log_tail(5).len() < 10_000);
    let dir = d.dir().to_path_buf();
    let (pids, cgroups) = pids_and_cgroups(&dir);
    assert_eq!(pids.len(), 9, "{pids:?}");
    assert!(pids.iter().all(|p| is_alive(*p)));
    assert!(!mounts_under(&dir).is_empty());
    drop(d);
    assert!(
        !cgroups.is_empty(),
        "the fake made no cgroups; the test proves less"
    );
    assert_nothing_left(&dir, &pids, &cgroups, &parent);

    // A run that "crashed" (its daemon leaked): the next start's stale cleanup takes it all.
    let d = TestDaemon::start("harness-self").await.unwrap();
    let dir = d.dir().to_path_buf();
    let (pids, cgroups) = pids_and_cgroups(&dir);
    std::mem::forget(d);
    cleanup_stale("harness-self").unwrap();
    assert_nothing_left(&dir, &pids, &cgroups, &parent);
}
