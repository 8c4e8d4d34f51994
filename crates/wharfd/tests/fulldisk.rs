//! A full disk under the data root (issue 12 item 5): wharfd's data root on a small
//! loop-mounted ext4 filesystem, filled up by a filler file. Create and import then fail with
//! Docker's "no space left on device" and HTTP 500, leave nothing half-written (no record
//! without its layer, no blob or image record, no temp file, also after a restart), wharfd
//! keeps serving, a container whose log writes fail keeps running and stops normally, and once
//! space is freed the same create and import succeed.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash_support;

use crash_support::{cmd, names};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use wharf_client::{Client, ClientError};
use wharf_testkit::{import_busybox, process_alive, start_or_skip, wait_until_true, TestDaemon};

const FS_MIB: u64 = 64;

/// A loop-mounted ext4 image on `mnt`; unmounted and deleted when dropped, panic or not.
struct LoopFs {
    image: PathBuf,
    mnt: PathBuf,
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl LoopFs {
    fn mount(name: &str, mnt: &Path) -> Result<LoopFs, String> {
        let image = PathBuf::from(format!("/tmp/{name}-{}.img", std::process::id()));
        let f = std::fs::File::create(&image).map_err(|e| e.to_string())?;
        f.set_len(FS_MIB << 20).map_err(|e| e.to_string())?;
        drop(f);
        // From here on the guard cleans up whatever is made.
        let fs = LoopFs {
            image,
            mnt: mnt.to_path_buf(),
        };
        // No blocks reserved for root: wharfd runs as root and would use them.
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0"])
            .arg(&fs.image))?;
        std::fs::create_dir_all(mnt).map_err(|e| e.to_string())?;
        // `-o loop` sets autoclear: the loop device goes with the last unmount.
        run(Command::new("mount")
            .args(["-t", "ext4", "-o", "loop"])
            .arg(&fs.image)
            .arg(mnt))?;
        Ok(fs)
    }

    fn mounted(&self) -> bool {
        wharf_testkit::cleanup::mounts_under(&self.mnt).contains(&self.mnt)
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        // Lazily: a daemon or shim still holding files keeps the filesystem (and its loop
        // device) only until it is killed.
        while self.mounted() {
            if run(Command::new("umount").arg("-l").arg(&self.mnt)).is_err() {
                break;
            }
        }
        let _ = std::fs::remove_file(&self.image);
    }
}

/// Writes zeros to `path` until the filesystem refuses (twice, with a sync between, so that
/// delayed allocation has no room left to hand out).
fn fill(path: &Path) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let chunk = vec![0u8; 64 << 10];
    for _ in 0..2 {
        while f.write_all(&chunk).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        let _ = f.sync_all();
    }
}

/// Deletes `path` and commits the journal, so the blocks are free to use at once.
fn free(path: &Path) {
    std::fs::remove_file(path).unwrap();
    let dir = std::fs::File::open(path.parent().unwrap()).unwrap();
    let _ = dir.sync_all();
    let _ = Command::new("sync")
        .arg("-f")
        .arg(path.parent().unwrap())
        .status();
}

fn tiny_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let data: Vec<u8> = (0..(256u32 << 10))
        .map(|i| (i * 7919 % 251) as u8)
        .collect();
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "payload.bin", &data[..]).unwrap();
    b.into_inner().unwrap()
}

/// A refusal for lack of space, in Docker's words, with Docker's status.
fn assert_disk_full<T: std::fmt::Debug>(what: &str, r: Result<T, ClientError>) {
    match r {
        Err(ClientError::Api { status, message }) => {
            eprintln!("{what} on a full disk: {status} {message}");
            assert_eq!(status, 500, "{what}: {message}");
            assert!(
                message.contains("no space left on device"),
                "{what}: Docker's words wanted: {message}"
            );
        }
        other => panic!("{what}: expected a 500 for the full disk, got {other:?}"),
    }
}

/// What the data root holds of containers and images: a create or import that failed must
/// change none of it.
#[derive(Debug, PartialEq)]
struct Stored {
    containers: usize,
    images: usize,
    data_dirs: Vec<String>,
    snapshots: Vec<String>,
    blobs: Vec<String>,
    ingest: Vec<String>,
}

async fn stored(d: &TestDaemon, c: &Client) -> Stored {
    let root = d.data_root();
    Stored {
        containers: c.list_containers(true, None).await.unwrap().len(),
        images: c.list_images(true).await.unwrap().len(),
        data_dirs: names(&root.join("containers")),
        snapshots: names(&root.join("snapshots")),
        blobs: names(&root.join("content/blobs/sha256")),
        ingest: names(&root.join("content/ingest")),
    }
}

#[tokio::test]
async fn a_full_data_root_refuses_create_and_import_cleanly_and_keeps_serving() {
    if Command::new("mkfs.ext4").arg("-V").output().is_err() {
        wharf_testkit::skip("no mkfs.ext4 (e2fsprogs)");
        return;
    }
    let Some(mut d) = start_or_skip("it-fulldisk").await else {
        return;
    };
    // The data root moves onto the small filesystem while wharfd is down.
    d.stop().unwrap();
    let fs = match LoopFs::mount("wharf-it-fulldisk", &d.data_root()) {
        Ok(fs) => fs,
        Err(e) => {
            wharf_testkit::skip(format!("cannot make a loop-mounted ext4: {e}"));
            d.cleanup().unwrap();
            return;
        }
    };
    d.restart().await.unwrap();
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let keeper = c
        .create_container(Some("keeper"), &cmd(&["true"]))
        .await
        .unwrap()
        .id;
    // Writes its log all along: its writes meet the full disk.
    let logger = c
        .create_container(
            Some("logger"),
            &cmd(&[
                "sh",
                "-c",
                "i=0; while true; do echo line $i; i=$((i+1)); usleep 2000; done",
            ]),
        )
        .await
        .unwrap()
        .id;
    c.start(&logger).await.unwrap();
    let sleeper = c
        .create_container(Some("sleeper"), &cmd(&["sleep", "1000"]))
        .await
        .unwrap()
        .id;
    let log_file = d
        .data_root()
        .join("containers")
        .join(&logger)
        .join(format!("{logger}-json.log"));
    wait_until_true("the logger's first lines", || {
        std::fs::metadata(&log_file).is_ok_and(|m| m.len() > 0)
    })
    .await;

    // Small reserves, freed one at a time later: enough room for a create's first steps
    // but not its writable layer, for an import's blob but not its unpacked layer, so that
    // the undo of a half-made object is exercised as well as the first refusal.
    // (An import now meets wharfd's free-space reserve, --min-free-space, before the
    // disk itself: it is refused before it writes, with the same 500 and words. The undo of
    // an ingest stopped mid-way is in wharf-storage's layer.rs tests.)
    let reserve = |name: &str, kib: usize| {
        let p = d.data_root().join(name);
        std::fs::write(&p, vec![1u8; kib << 10]).unwrap();
        p
    };
    let (reserve_create, reserve_import) =
        (reserve("reserve-create", 2), reserve("reserve-import", 384));
    let filler = d.data_root().join("filler");
    fill(&filler);
    let before = stored(&d, &c).await;

    assert_disk_full(
        "create",
        c.create_container(Some("late"), &cmd(&["true"])).await,
    );
    assert_disk_full(
        "import",
        c.import_image(tiny_tar(), "late-import", Some("v1")).await,
    );
    // Nothing half-written.
    assert_eq!(stored(&d, &c).await, before);
    // A little room: each gets further before the disk refuses, and undoes what it made.
    free(&reserve_create);
    assert_disk_full(
        "create with a little room",
        c.create_container(Some("late"), &cmd(&["true"])).await,
    );
    assert_eq!(stored(&d, &c).await, before);
    free(&reserve_import);
    assert_disk_full(
        "import with a little room",
        c.import_image(tiny_tar(), "late-import", Some("v1")).await,
    );
    assert_eq!(stored(&d, &c).await, before);
    assert!(c.inspect_container("late").await.is_err());
    assert!(c.inspect_image("late-import:v1").await.is_err());
    // Still serving: ping, ps, inspect.
    c.ping().await.unwrap();
    assert_eq!(c.list_containers(false, None).await.unwrap().len(), 1);
    assert_eq!(c.inspect_container(&keeper).await.unwrap().name, "/keeper");
    // The logger, whose writes fail, runs on and answers.
    let i = c.inspect_container(&logger).await.unwrap();
    assert!(i.state.running, "the logger runs on: {:?}", i.state.status);
    let shim = std::fs::read_to_string(
        d.exec_root()
            .join("containers")
            .join(&logger)
            .join("shim.pid"),
    )
    .unwrap()
    .trim()
    .parse::<i32>()
    .unwrap();
    assert!(process_alive(shim), "the logger's shim lives");
    let opts = wharf_client::LogsOptions {
        tail: Some(5),
        ..Default::default()
    };
    let logs = c.logs(&logger, &opts).await.unwrap();
    assert!(!logs.is_empty(), "what was logged before stays readable");

    // A start either runs and says so, or fails and runs nothing (its state may not save).
    let started = c.start(&sleeper).await;
    eprintln!("start on a full disk: {started:?}");
    if started.is_ok() {
        assert!(c.inspect_container(&sleeper).await.unwrap().state.running);
        c.kill(&sleeper, None).await.unwrap();
    }
    let mut st = c.inspect_container(&sleeper).await.unwrap().state;
    for _ in 0..300 {
        if !st.running {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        st = c.inspect_container(&sleeper).await.unwrap().state;
    }
    assert!(!st.running, "a failed start runs nothing");

    // Nothing half-written survives a restart either, and wharfd starts on a full disk.
    d.restart().await.unwrap();
    let c = d.client();
    assert_eq!(stored(&d, &c).await, before);
    assert!(c.inspect_container(&logger).await.unwrap().state.running);

    // Space again: the same requests succeed.
    std::fs::remove_file(&filler).unwrap();
    let late = c
        .create_container(Some("late"), &cmd(&["true"]))
        .await
        .unwrap()
        .id;
    c.start(&late).await.unwrap();
    let img = c
        .import_image(tiny_tar(), "late-import", Some("v1"))
        .await
        .unwrap();
    assert_eq!(c.inspect_image("late-import:v1").await.unwrap().id, img);
    c.stop(&logger, Some(1)).await.unwrap();
    assert!(!c.inspect_container(&logger).await.unwrap().state.running);
    assert!(!c.inspect_container(&sleeper).await.unwrap().state.running);
    for id in [&keeper, &logger, &late, &sleeper] {
        c.remove(id, true).await.unwrap();
    }
    d.cleanup().unwrap();
    drop(fs);
}
