//! What the crash tests share: arming failpoints, reading a run's pids, and checking that
//! nothing of a run (or of an image) is left.
// Each test file uses a part of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use wharf_api::container::ContainerCreateRequest;
use wharf_testkit::cleanup::{cgroup_dirs_for, mounts_under};
use wharf_testkit::{process_alive, wait_until_true, TestDaemon};

pub fn cmd(argv: &[&str]) -> ContainerCreateRequest {
    let mut r = ContainerCreateRequest::default();
    r.config.image = "busybox".to_string();
    r.config.cmd = Some(argv.iter().map(|s| s.to_string()).collect());
    r
}

pub fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

/// Arms failpoint `point` (wharf-engine's `failpoint.rs`): wharfd SIGKILLs itself on reaching
/// it. Returns the file, to be removed before the restart.
pub fn arm(d: &TestDaemon, point: &str) -> PathBuf {
    let dir = d.exec_root().join("failpoints");
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(point);
    std::fs::write(&f, "").unwrap();
    f
}

/// After an armed point fired on a path no request waits for (an auto-remove): waits for
/// wharfd to be gone, then reaps it.
pub async fn wait_for_failpoint_death(d: &mut TestDaemon) {
    let pid = d.pid().expect("wharfd runs") as i32;
    wait_until_true("wharfd killed by its failpoint", || !process_alive(pid)).await;
    d.kill9().unwrap();
}

/// A run's ids: the container, its shim and its init.
pub struct Cut {
    pub id: String,
    pub shim: i32,
    pub init: i32,
}

/// A started container's shim and init pids.
pub async fn started_run(d: &TestDaemon, name: &str) -> Cut {
    started_run_of(d, name, cmd(&["sleep", "1000"])).await
}

pub async fn started_run_of(d: &TestDaemon, name: &str, req: ContainerCreateRequest) -> Cut {
    let c = d.client();
    let id = c.create_container(Some(name), &req).await.unwrap().id;
    c.start(&id).await.unwrap();
    let dir = d.exec_root().join("containers").join(&id);
    Cut {
        shim: read_pid(&dir.join("shim.pid")),
        init: read_pid(&dir.join("init.pid")),
        id,
    }
}

/// Nothing of the container's run is left: processes, exec dir, mounts, runtime state, cgroups.
pub async fn assert_no_run_left(d: &TestDaemon, cut: &Cut) {
    wait_until_true("the run's shim and process gone", || {
        !process_alive(cut.shim) && !process_alive(cut.init)
    })
    .await;
    let exec_dir = d.exec_root().join("containers").join(&cut.id);
    wait_until_true("the run's exec dir gone", || !exec_dir.exists()).await;
    assert!(
        mounts_under(&exec_dir).is_empty(),
        "mounts left under {}",
        exec_dir.display()
    );
    let runtime = d.exec_root().join("runtime").join(&cut.id);
    assert!(
        !runtime.exists(),
        "runtime state {} left",
        runtime.display()
    );
    let cgroups = cgroup_dirs_for(&format!("{}/{}", d.cgroup_parent(), cut.id));
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
}

/// Nothing a removed container owned is left (its run, data dir and writable layer), waiting
/// for the background teardown; `layers` is the snapshot count of the images alone.
pub async fn assert_removed_whole(d: &TestDaemon, cut: &Cut, layers: usize) {
    assert!(d.client().inspect_container(&cut.id).await.is_err());
    assert_no_run_left(d, cut).await;
    let data = d.data_root().join("containers").join(&cut.id);
    wait_until_true("its data dir and writable layer gone", || {
        !data.exists() && snapshot_count(d) == layers
    })
    .await;
}

pub fn snapshot_count(d: &TestDaemon) -> usize {
    std::fs::read_dir(d.data_root().join("snapshots"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

/// The blobs in the content store, by file name.
pub fn blobs(d: &TestDaemon) -> Vec<String> {
    names(&d.data_root().join("content/blobs/sha256"))
}

/// The names in a directory, sorted (none when it is missing).
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Whether the daemon's log has a line naming all of `words`.
pub fn log_says(d: &TestDaemon, words: &[&str]) -> bool {
    d.log_tail(2000)
        .lines()
        .any(|l| words.iter().all(|w| l.contains(w)))
}

/// A tar with one regular file: a small layer of its own for image tests.
pub fn one_file_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append_data(&mut h, name, data).unwrap();
    b.into_inner().unwrap()
}

/// Pids of processes whose command line is exactly `argv`.
pub fn pids_running(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            (cmd == want && process_alive(pid)).then_some(pid)
        })
        .collect()
}

/// `docker pause` (`true`) or `unpause`.
pub async fn pause(
    c: &wharf_client::Client,
    id: &str,
    frozen: bool,
) -> Result<(), wharf_client::ClientError> {
    let path = format!(
        "/containers/{id}/{}",
        if frozen { "pause" } else { "unpause" }
    );
    c.request(http::Method::POST, &path, None)
        .await?
        .error_for_status()
        .map(drop)
}
