#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::os::unix::fs::symlink;

fn lxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let (c, n) = (cpath(p).unwrap(), CString::new(name).unwrap());
    let mut buf = vec![0u8; 256];
    // SAFETY: the buffer is as long as we say.
    let r = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| buf[..r as usize].to_vec())
}

fn set_lxattr(p: &Path, name: &str, v: &[u8]) -> bool {
    let (c, n) = (cpath(p).unwrap(), CString::new(name).unwrap());
    // SAFETY: valid C strings and value.
    unsafe { libc::lsetxattr(c.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), 0) == 0 }
}

struct Fixture {
    _dir: tempfile::TempDir,
    rootfs: PathBuf,
    vol: PathBuf,
    data: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    let img = rootfs.join("srv/app");
    std::fs::create_dir_all(img.join("sub")).unwrap();
    std::fs::write(img.join("file"), b"hello").unwrap();
    std::os::unix::fs::lchown(img.join("file"), Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(img.join("file"), std::fs::Permissions::from_mode(0o4751)).unwrap();
    std::fs::hard_link(img.join("file"), img.join("sub/link")).unwrap();
    symlink("../file", img.join("sub/sym")).unwrap();
    std::os::unix::fs::lchown(img.join("sub/sym"), Some(42), Some(43)).unwrap();
    std::fs::set_permissions(&img, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::lchown(&img, Some(999), Some(998)).unwrap();
    let vol = dir.path().join("volumes/v");
    let data = vol.join("_data");
    std::fs::create_dir_all(&data).unwrap();
    Fixture {
        _dir: dir,
        rootfs,
        vol,
        data,
    }
}

#[test]
fn the_images_content_is_copied_with_owners_modes_links_and_xattrs() {
    let f = fixture();
    let img = f.rootfs.join("srv/app");
    let xattrs = set_lxattr(&img.join("file"), "user.wharf", b"kept");
    let exec = f.vol.join("exec");
    copy_up(&exec, &f.rootfs, "/srv/app", &f.vol, &f.data).unwrap();
    let file = std::fs::symlink_metadata(f.data.join("file")).unwrap();
    assert_eq!(std::fs::read(f.data.join("file")).unwrap(), b"hello");
    assert_eq!(file.mode() & 0o7777, 0o4751);
    assert_eq!((file.uid(), file.gid()), (1234, 5678));
    let src = std::fs::metadata(img.join("file")).unwrap();
    assert_eq!(file.mtime(), src.mtime());
    let link = std::fs::metadata(f.data.join("sub/link")).unwrap();
    assert_eq!(link.ino(), file.ino(), "hard links stay linked");
    let sym = std::fs::symlink_metadata(f.data.join("sub/sym")).unwrap();
    assert!(sym.file_type().is_symlink());
    assert_eq!((sym.uid(), sym.gid()), (42, 43));
    assert_eq!(
        std::fs::read_link(f.data.join("sub/sym")).unwrap(),
        Path::new("../file")
    );
    let root = std::fs::metadata(&f.data).unwrap();
    assert_eq!(
        root.mode() & 0o7777,
        0o700,
        "the volume takes the directory's mode"
    );
    assert_eq!((root.uid(), root.gid()), (999, 998));
    if xattrs {
        assert_eq!(lxattr(&f.data.join("file"), "user.wharf").unwrap(), b"kept");
    }
    assert!(!f.vol.join(MARKER).exists());
}

#[test]
fn a_volume_with_content_or_no_source_is_left_alone() {
    let f = fixture();
    std::fs::write(f.data.join("mine"), b"x").unwrap();
    copy_up(&f.vol, &f.rootfs, "/srv/app", &f.vol, &f.data).unwrap();
    let names: Vec<_> = std::fs::read_dir(&f.data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["mine"]);
    std::fs::remove_file(f.data.join("mine")).unwrap();
    copy_up(&f.vol, &f.rootfs, "/nothing/here", &f.vol, &f.data).unwrap();
    assert_eq!(std::fs::read_dir(&f.data).unwrap().count(), 0);
}

#[test]
fn a_file_at_the_destination_is_refused_in_dockerds_words() {
    let f = fixture();
    let e = copy_up(&f.vol, &f.rootfs, "/srv/app/file", &f.vol, &f.data).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "cannot mount volume over existing file, file exists {}",
            f.rootfs.join("srv/app/file").display()
        )
    );
}

#[test]
fn a_copy_cut_short_is_emptied_and_done_again() {
    let f = fixture();
    // What a crash mid copy leaves: the marker and part of the content.
    std::fs::write(f.vol.join(MARKER), b"").unwrap();
    std::fs::create_dir(f.data.join("sub")).unwrap();
    std::fs::write(f.data.join("sub/half"), b"").unwrap();
    symlink("/nowhere", f.data.join("dangling")).unwrap();
    finish_interrupted(&f.vol, &f.data).unwrap();
    assert_eq!(std::fs::read_dir(&f.data).unwrap().count(), 0);
    assert!(!f.vol.join(MARKER).exists());
    // And the marker is honoured by the copy-up itself too.
    std::fs::write(f.vol.join(MARKER), b"").unwrap();
    std::fs::write(f.data.join("half"), b"").unwrap();
    copy_up(&f.vol, &f.rootfs, "/srv/app", &f.vol, &f.data).unwrap();
    assert!(!f.data.join("half").exists());
    assert_eq!(std::fs::read(f.data.join("file")).unwrap(), b"hello");
}
