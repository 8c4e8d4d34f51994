//! Real mounts (the tests run as root): every test unmounts what it made through a guard
//! declared after its temporary directories, so it drops first and no temporary directory is
//! ever deleted through a mount.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::os::unix::fs::MetadataExt;
use wharf_api::ErrorKind;

struct Cleanup {
    dirs: Vec<PathBuf>,
    loops: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = mountinfo::unmount_all(d);
        }
        for l in &self.loops {
            let _ = std::process::Command::new("losetup")
                .args(["-d", l])
                .status();
        }
    }
}

fn cleanup(dirs: &[&Path]) -> Cleanup {
    Cleanup {
        dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
        loops: Vec::new(),
    }
}

fn service(root: &Path) -> VolumeService {
    let s = VolumeService::new(Arc::new(Ctx::for_tests(root)));
    s.recover().unwrap();
    s
}

/// A second service on the same data root and database: wharfd after a restart.
fn restarted(s: &VolumeService) -> VolumeService {
    VolumeService::new(s.ctx.clone())
}

fn create(s: &VolumeService, name: &str, opts: &[(&str, &str)]) -> Volume {
    s.create(VolumeCreateRequest {
        name: name.into(),
        driver_opts: Some(
            opts.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    })
    .unwrap()
}

fn mounts(p: &Path) -> usize {
    mountinfo::mounts_under(p).len()
}

#[test]
fn a_tmpfs_volume_is_mounted_by_its_first_user_and_unmounted_after_its_last() {
    let d = tempfile::tempdir().unwrap();
    let _c = cleanup(&[d.path()]);
    let s = service(d.path());
    let v = create(
        &s,
        "mnt_tmpfs",
        &[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=64m,uid=1000"),
        ],
    );
    let opts = v.options.as_ref().unwrap();
    assert_eq!(opts["o"], "size=64m,uid=1000");
    assert_eq!(v.labels, None);
    let data = s.data_path("mnt_tmpfs");
    assert_eq!(mounts(&data), 0, "create mounts nothing");

    assert_eq!(s.mount("mnt_tmpfs", "c1").unwrap(), data);
    assert_eq!(s.mount("mnt_tmpfs", "c1").unwrap(), data);
    assert_eq!(
        mounts(&data),
        1,
        "a second mount for the same container counts once"
    );
    assert_eq!(std::fs::metadata(&data).unwrap().uid(), 1000);
    let st = nix::sys::statvfs::statvfs(&data).unwrap();
    assert_eq!(st.blocks() * st.fragment_size(), 64 << 20);
    std::fs::write(data.join("f"), b"x").unwrap();

    s.mount("mnt_tmpfs", "c2").unwrap();
    assert_eq!(s.mounted_by("mnt_tmpfs"), ["c1", "c2"]);
    s.unmount_all_of("c1").unwrap();
    assert_eq!(s.mounted_by("mnt_tmpfs"), ["c2"]);
    assert_eq!(mounts(&data), 1, "c2 still runs");
    s.unmount("mnt_tmpfs", "c2").unwrap();
    assert_eq!(mounts(&data), 0);
    assert!(
        !data.join("f").exists(),
        "the tmpfs is gone with its last user"
    );
    s.unmount("mnt_tmpfs", "c2").unwrap();
    s.remove("mnt_tmpfs", false).unwrap();
}

#[test]
fn removing_a_bind_volume_unmounts_it_and_never_deletes_the_host_directory() {
    let d = tempfile::tempdir().unwrap();
    let host = tempfile::tempdir().unwrap();
    let _c = cleanup(&[d.path()]);
    std::fs::write(host.path().join("precious"), b"keep me").unwrap();
    let s = service(d.path());
    let dev = host.path().to_str().unwrap();
    create(
        &s,
        "mnt_bind",
        &[("type", "none"), ("o", "bind"), ("device", dev)],
    );
    let data = s.mount("mnt_bind", "c1").unwrap();
    assert_eq!(std::fs::read(data.join("precious")).unwrap(), b"keep me");
    std::fs::write(data.join("written"), b"through the bind").unwrap();

    let (k, m) = {
        let e = s.remove("mnt_bind", false).unwrap_err();
        (e.kind(), e.message())
    };
    assert_eq!(k, ErrorKind::Conflict);
    assert_eq!(m, "remove mnt_bind: volume is in use - [c1]");

    // wharfd killed while c1 ran, c1 gone meanwhile: the mount is there, nobody uses it.
    let s = restarted(&s);
    assert_eq!(mounts(&data), 1);
    s.remove("mnt_bind", false).unwrap();
    assert_eq!(mounts(&d.path().join("volumes")), 0);
    assert!(!d.path().join("volumes/mnt_bind").exists());
    assert_eq!(
        std::fs::read(host.path().join("precious")).unwrap(),
        b"keep me"
    );
    assert!(host.path().join("written").exists());
}

#[test]
fn after_a_restart_adopted_mounts_stay_and_the_rest_come_off() {
    let d = tempfile::tempdir().unwrap();
    let _c = cleanup(&[d.path()]);
    let s = service(d.path());
    let tmpfs = [("type", "tmpfs"), ("device", "tmpfs")];
    create(&s, "mnt_kept", &tmpfs);
    create(&s, "mnt_orphan", &tmpfs);
    create(&s, "mnt_plain", &[]);
    s.mount("mnt_kept", "c1").unwrap();
    s.mount("mnt_orphan", "c2").unwrap();
    std::fs::write(s.data_path("mnt_kept").join("f"), b"x").unwrap();
    // An administrator's mount on a plain volume is not Wharf's to take off.
    let plain = s.data_path("mnt_plain");
    nix::mount::mount(
        Some("tmpfs"),
        &plain,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();

    let s = restarted(&s);
    // Restore adopts c1, which still runs.
    s.mount("mnt_kept", "c1").unwrap();
    assert_eq!(s.unmount_unused().unwrap(), 1);
    assert_eq!(mounts(&s.data_path("mnt_kept")), 1, "adopted, not stacked");
    assert!(s.data_path("mnt_kept").join("f").exists());
    assert_eq!(mounts(&s.data_path("mnt_orphan")), 0);
    assert_eq!(mounts(&plain), 1);

    // rm of a plain volume with a foreign mount below refuses rather than delete through it;
    // prune skips it and goes on.
    let e = s.remove("mnt_plain", false).unwrap_err();
    assert!(e.message().contains("is still mounted"), "{}", e.message());
    let pruned = s
        .prune(&Filters::parse(r#"{"all":["1"]}"#).unwrap())
        .unwrap();
    assert!(pruned.volumes_deleted.is_empty());
    s.inspect("mnt_plain").unwrap();
    assert_eq!(mounts(&plain), 1);
    mountinfo::unmount_all(&plain).unwrap();
    s.unmount("mnt_kept", "c1").unwrap();
    assert_eq!(mounts(&d.path().join("volumes")), 0);
}

#[test]
fn recover_unmounts_a_leftover_directory_before_deleting_it() {
    let d = tempfile::tempdir().unwrap();
    let host = tempfile::tempdir().unwrap();
    let _c = cleanup(&[d.path()]);
    std::fs::write(host.path().join("precious"), b"keep me").unwrap();
    let ghost = d.path().join("volumes/mnt_ghost/_data");
    std::fs::create_dir_all(&ghost).unwrap();
    nix::mount::mount(
        Some(host.path()),
        &ghost,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let s = VolumeService::new(Arc::new(Ctx::for_tests(d.path())));
    assert_eq!(s.recover().unwrap(), 1);
    assert!(!d.path().join("volumes/mnt_ghost").exists());
    assert_eq!(
        std::fs::read(host.path().join("precious")).unwrap(),
        b"keep me"
    );
}

#[test]
fn bind_ro_is_read_only_and_a_failed_mount_records_no_user() {
    let d = tempfile::tempdir().unwrap();
    let host = tempfile::tempdir().unwrap();
    let _c = cleanup(&[d.path()]);
    let s = service(d.path());
    let dev = host.path().to_str().unwrap();
    create(
        &s,
        "mnt_ro",
        &[("type", "none"), ("o", "bind,ro"), ("device", dev)],
    );
    let data = s.mount("mnt_ro", "c1").unwrap();
    let e = std::fs::write(data.join("f"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    s.unmount("mnt_ro", "c1").unwrap();

    let missing = d.path().join("nowhere");
    let missing = missing.to_str().unwrap();
    create(
        &s,
        "mnt_bad",
        &[("type", "none"), ("o", "bind"), ("device", missing)],
    );
    let e = s.mount("mnt_bad", "c1").unwrap_err();
    let want = format!(
        "failed to mount local volume: mount {missing}:{}, flags: 0x1000: no such file or directory",
        s.data_path("mnt_bad").display()
    );
    assert_eq!(e.message(), want);
    assert!(s.mounted_by("mnt_bad").is_empty());
    s.remove("mnt_bad", false).unwrap();
    assert_eq!(mounts(&d.path().join("volumes")), 0);
}

#[test]
fn an_ext4_volume_on_a_loop_device_keeps_its_data_across_mounts() {
    let d = tempfile::tempdir().unwrap();
    let mut c = cleanup(&[d.path()]);
    let img = d.path().join("disk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let ok = std::process::Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&img)
        .status()
        .is_ok_and(|s| s.success());
    let out = std::process::Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&img)
        .output();
    let Some(dev) = out
        .ok()
        .filter(|o| ok && o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    else {
        eprintln!("skipped: mkfs.ext4 or a loop device is not available");
        return;
    };
    c.loops.push(dev.clone());
    let s = service(d.path());
    create(&s, "mnt_ext4", &[("type", "ext4"), ("device", &dev)]);
    let data = s.mount("mnt_ext4", "c1").unwrap();
    assert!(data.join("lost+found").is_dir());
    std::fs::write(data.join("f"), b"on disk").unwrap();
    s.unmount("mnt_ext4", "c1").unwrap();
    assert!(!data.join("f").exists());
    s.mount("mnt_ext4", "c2").unwrap();
    assert_eq!(std::fs::read(data.join("f")).unwrap(), b"on disk");
    s.remove("mnt_ext4", true).unwrap_err();
    s.unmount("mnt_ext4", "c2").unwrap();
    s.remove("mnt_ext4", false).unwrap();
    assert_eq!(mounts(d.path()), 0);
}

#[test]
fn a_mount_in_progress_holds_up_only_its_own_volume() {
    let d = tempfile::tempdir().unwrap();
    let _c = cleanup(&[d.path()]);
    let s = Arc::new(service(d.path()));
    let tmpfs = [("type", "tmpfs"), ("device", "tmpfs")];
    create(&s, "mnt_slow", &tmpfs);
    create(&s, "mnt_other", &tmpfs);
    // What a mount(2) that hangs (an unreachable nfs server) holds for its whole length.
    let slow = s.volume_lock("mnt_slow");
    let held = slow.lock().unwrap();
    s.mount("mnt_other", "c1").unwrap();
    create(&s, "mnt_new", &[]);
    s.list(&Filters::default()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = s.clone();
    let rm = std::thread::spawn(move || {
        let r = s2.remove("mnt_slow", false);
        tx.send(()).unwrap();
        r
    });
    // rm of the volume being mounted waits for the mount. Under load this check can only
    // pass more easily, never fail spuriously: the rm cannot finish while the lock is held.
    assert!(rx
        .recv_timeout(std::time::Duration::from_millis(200))
        .is_err());
    drop(held);
    rm.join().unwrap().unwrap();
    s.unmount("mnt_other", "c1").unwrap();
    assert_eq!(mounts(&d.path().join("volumes")), 0);
}
