use super::*;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    crate::test_skip::skip("needs root: whiteouts are device nodes, opaque dirs trusted xattrs");
    false
}

fn set_opaque(p: &Path) {
    let cp = CString::new(p.as_os_str().as_bytes()).unwrap();
    let cn = CString::new("trusted.overlay.opaque").unwrap();
    // SAFETY: NUL-terminated strings and a one-byte value that outlive the call.
    let rc = unsafe { libc::lsetxattr(cp.as_ptr(), cn.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    assert_eq!(rc, 0);
}

fn names(tar: &[u8]) -> Vec<(String, EntryType)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let p = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            (p, e.header().entry_type())
        })
        .collect()
}

#[test]
fn whiteouts_become_aufs_and_round_trip() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let up = t.path().join("up");
    fs::create_dir_all(up.join("etc")).unwrap();
    fs::write(up.join("etc/a"), b"hello").unwrap();
    fs::set_permissions(up.join("etc/a"), fs::Permissions::from_mode(0o4750)).unwrap();
    fs::hard_link(up.join("etc/a"), up.join("etc/b")).unwrap();
    std::os::unix::fs::symlink("/etc/a", up.join("link")).unwrap();
    nix::sys::stat::mknod(
        &up.join("gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    fs::create_dir_all(up.join("opq/in")).unwrap();
    set_opaque(&up.join("opq"));
    let long = "d".repeat(120);
    fs::create_dir_all(up.join(&long)).unwrap();
    fs::write(up.join(&long).join("f"), b"x").unwrap();
    fs::create_dir_all(up.join("vol")).unwrap();
    fs::write(up.join("vol/data"), b"not in the layer").unwrap();

    let mut tar = Vec::new();
    let skip = Skip {
        mounts: vec![PathBuf::from("vol")],
        mount_points: vec![PathBuf::from("etc/hosts")],
    };
    fs::write(up.join("etc/hosts"), b"").unwrap();
    assert!(!layer_is_empty(&up, &skip).unwrap());
    let stats = write_layer_tar(&up, &skip, &mut tar).unwrap();
    let got = names(&tar);
    let listed: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    let f = format!("{long}/f");
    assert_eq!(
        listed,
        vec![
            long.as_str(),
            f.as_str(),
            "etc",
            "etc/a",
            "etc/b",
            // Siblings in the order of their names in the upper dir.
            ".wh.gone",
            "link",
            "opq",
            "opq/.wh..wh..opq",
            "opq/in",
            "vol",
        ]
    );
    assert_eq!(got[4].1, EntryType::Link);
    assert_eq!(stats.entries, 11);

    // Applied again, it makes the same upper dir.
    let back = t.path().join("back");
    fs::create_dir_all(&back).unwrap();
    crate::diff::apply_layer(&tar[..], &back).unwrap();
    let m = fs::symlink_metadata(back.join("gone")).unwrap();
    assert!(m.file_type().is_char_device() && m.rdev() == 0);
    assert!(is_opaque(&back.join("opq")).unwrap());
    assert_eq!(fs::read(back.join("etc/a")).unwrap(), b"hello");
    let a = fs::symlink_metadata(back.join("etc/a")).unwrap();
    assert_eq!(a.mode() & 0o7777, 0o4750);
    assert_eq!(
        a.ino(),
        fs::symlink_metadata(back.join("etc/b")).unwrap().ino()
    );
    assert_eq!(
        fs::read_link(back.join("link")).unwrap(),
        Path::new("/etc/a")
    );
    assert!(!back.join("vol/data").exists());
}

#[test]
fn an_empty_upper_dir_is_the_empty_layer() {
    let t = tempfile::tempdir().unwrap();
    let skip = Skip {
        mounts: Vec::new(),
        mount_points: vec![PathBuf::from("etc/hosts"), PathBuf::from("proc")],
    };
    assert!(layer_is_empty(t.path(), &skip).unwrap());
    // Only the runtime's empty mount points: nothing of the container's.
    fs::create_dir_all(t.path().join("proc")).unwrap();
    assert!(layer_is_empty(t.path(), &skip).unwrap());
    let mut tar = Vec::new();
    write_layer_tar(t.path(), &skip, &mut tar).unwrap();
    assert_eq!(tar, vec![0u8; 1024]);
    fs::write(t.path().join("x"), b"").unwrap();
    assert!(!layer_is_empty(t.path(), &skip).unwrap());
}
