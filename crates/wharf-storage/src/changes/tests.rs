use super::*;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

fn write(p: &Path, data: &[u8]) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

fn whiteout(p: &Path) {
    nix::sys::stat::mknod(
        p,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
}

fn opaque(p: &Path) {
    let cp = CString::new(p.as_os_str().as_bytes()).unwrap();
    let cn = CString::new("trusted.overlay.opaque").unwrap();
    // SAFETY: NUL-terminated strings and a one-byte value that outlive the call.
    let rc = unsafe { libc::lsetxattr(cp.as_ptr(), cn.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    assert_eq!(rc, 0, "{}", io::Error::last_os_error());
}

fn listed(dirs: &[PathBuf], mounts: &[PathBuf]) -> Vec<String> {
    let skip = Skip {
        mounts: mounts.to_vec(),
        mount_points: vec![PathBuf::from("etc/hosts"), PathBuf::from("proc")],
    };
    changes(dirs, &skip)
        .unwrap()
        .into_iter()
        .map(|c| format!("{} {}", ["C", "A", "D"][c.kind as usize], c.path))
        .collect()
}

#[test]
fn lists_added_modified_deleted_and_opaque() {
    if !nix::unistd::geteuid().is_root() {
        crate::test_skip::skip(
            "needs root: whiteouts are device nodes, opaque dirs trusted xattrs",
        );
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (base, mid, upper) = (
        t.path().join("base"),
        t.path().join("mid"),
        t.path().join("up"),
    );
    write(&base.join("etc/passwd"), b"root");
    write(&base.join("etc/group"), b"root");
    write(&base.join("old/a"), b"a");
    write(&base.join("old/b"), b"b");
    write(&base.join("gone/x"), b"x");
    write(&base.join("bin/sh"), b"sh");
    // A middle layer deletes /bin/sh: it is no longer below.
    fs::create_dir_all(mid.join("bin")).unwrap();
    whiteout(&mid.join("bin/sh"));
    // The container's layer.
    fs::create_dir_all(&upper).unwrap();
    fs::create_dir_all(upper.join("etc")).unwrap();
    write(&upper.join("etc/passwd"), b"root,user");
    write(&upper.join("etc/new"), b"new");
    whiteout(&upper.join("gone"));
    fs::create_dir_all(upper.join("old")).unwrap();
    opaque(&upper.join("old"));
    write(&upper.join("old/b"), b"b2");
    write(&upper.join("newdir/f"), b"f");
    write(&upper.join("bin/sh"), b"sh again");
    // A directory copied up unchanged, with nothing changed inside, is not listed.
    fs::create_dir_all(upper.join("empty-copy")).unwrap();
    fs::create_dir_all(base.join("empty-copy")).unwrap();
    fs::set_permissions(base.join("empty-copy"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(upper.join("empty-copy"), fs::Permissions::from_mode(0o755)).unwrap();
    let got = listed(&[upper.clone(), mid, base], &[]);
    assert_eq!(
        got,
        vec![
            "C /bin",
            "A /bin/sh",
            "C /etc",
            "A /etc/new",
            "C /etc/passwd",
            "D /gone",
            "A /newdir",
            "A /newdir/f",
            "C /old",
            "D /old/a",
            "C /old/b",
        ]
    );
}

#[test]
fn mount_destinations_are_not_descended() {
    let t = tempfile::tempdir().unwrap();
    let (base, upper) = (t.path().join("base"), t.path().join("up"));
    fs::create_dir_all(&base).unwrap();
    write(&upper.join("data/in-volume"), b"v");
    write(&upper.join("kept"), b"k");
    // The runtime's empty mount points are not the container's changes; a file with
    // content there is.
    write(&upper.join("etc/hosts"), b"");
    fs::create_dir_all(upper.join("proc")).unwrap();
    let got = listed(&[upper.clone(), base.clone()], &[PathBuf::from("data")]);
    // `etc` is there only to hold the mount point: not listed either.
    assert_eq!(got, vec!["A /data", "A /kept"]);
    write(&upper.join("etc/hosts"), b"127.0.0.1 me");
    let got = listed(&[upper, base], &[PathBuf::from("data")]);
    assert_eq!(got, vec!["A /data", "A /etc", "A /etc/hosts", "A /kept"]);
}

#[test]
fn a_base_layer_lists_everything_as_added() {
    let t = tempfile::tempdir().unwrap();
    write(&t.path().join("a/b"), b"b");
    assert_eq!(
        listed(&[t.path().to_path_buf()], &[]),
        vec!["A /a", "A /a/b"]
    );
}
