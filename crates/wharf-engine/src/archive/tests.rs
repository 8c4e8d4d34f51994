//! Path resolution inside a root and extraction of hostile archives: a temp dir plays the
//! container's root, a sibling dir plays the host, and every test checks the host is left
//! exactly as it was.

use super::unpack::{UnpackError, UnpackOptions, Unpacker};
use super::{pack_resolved, stat_path};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wharf_fs::root::{display, Root};

struct Fixture {
    _tmp: tempfile::TempDir,
    root_dir: PathBuf,
    host: PathBuf,
    root: Root,
}

/// `<tmp>/host/marker` (the host), `<tmp>/root` (the container) with a few hostile links.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path().join("host");
    fs::create_dir_all(host.join("etc")).unwrap();
    fs::write(host.join("marker"), "host").unwrap();
    fs::write(host.join("etc/passwd"), "host-passwd").unwrap();
    let root_dir = tmp.path().join("root");
    fs::create_dir_all(root_dir.join("etc")).unwrap();
    fs::create_dir_all(root_dir.join("dest/sub")).unwrap();
    fs::write(root_dir.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::write(root_dir.join("dest/file"), "inside").unwrap();
    // Each would reach the host if followed from the host's point of view.
    symlink("/", root_dir.join("slash")).unwrap();
    symlink("../../../../../../..", root_dir.join("up")).unwrap();
    symlink(&host, root_dir.join("hostabs")).unwrap();
    symlink("../host", root_dir.join("dest/sibling")).unwrap();
    symlink("/etc", root_dir.join("dest/etclink")).unwrap();
    symlink("loop2", root_dir.join("loop1")).unwrap();
    symlink("loop1", root_dir.join("loop2")).unwrap();
    let root = Root::open(&root_dir).unwrap();
    Fixture {
        _tmp: tmp,
        root_dir,
        host,
        root,
    }
}

/// Every path and its contents under `dir`, to compare before and after.
fn snapshot(dir: &Path) -> BTreeSet<(PathBuf, Vec<u8>, u32)> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let data = if m.is_file() {
                fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            out.insert((p.clone(), data, m.mode()));
            if m.is_dir() {
                todo.push(p);
            }
        }
    }
    out
}

fn resolve(f: &Fixture, path: &str, follow: bool) -> String {
    let r = f.root.resolve(path.as_bytes(), follow).unwrap();
    display(&r.comps)
}

#[test]
fn symlinks_resolve_inside_the_root() {
    let f = fixture();
    assert_eq!(resolve(&f, "/slash/etc/passwd", true), "/etc/passwd");
    assert_eq!(resolve(&f, "up/etc/passwd", true), "/etc/passwd");
    assert_eq!(resolve(&f, "/../../../etc/passwd", true), "/etc/passwd");
    assert_eq!(resolve(&f, "/dest/etclink/passwd", true), "/etc/passwd");
    // The host path, taken inside the root, names nothing that exists.
    let r = f.root.resolve(b"/hostabs/marker", true).unwrap();
    assert!(!r.exists());
    assert_eq!(display(&r.comps), format!("{}/marker", f.host.display()));
    assert_eq!(resolve(&f, "/dest/sibling", true), "/host");
    // A final symlink is itself unless asked (or a trailing slash asks).
    assert_eq!(resolve(&f, "/slash", false), "/slash");
    assert_eq!(resolve(&f, "/slash/", false), "/");
    assert_eq!(resolve(&f, "/dest/missing/../file", true), "/dest/file");
    let e = f.root.resolve(b"/loop1/x", true).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    let e = f.root.resolve(b"/dest/file/x", true).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
}

#[test]
fn stat_reports_go_modes_and_link_targets_in_the_container() {
    let f = fixture();
    let (_, s) = stat_path(&f.root, "/hostabs").unwrap();
    assert_eq!(s.name, "hostabs");
    assert_eq!(
        s.mode & wharf_api::archive::file_mode::SYMLINK,
        wharf_api::archive::file_mode::SYMLINK
    );
    assert_eq!(s.link_target, f.host.display().to_string());
    let (_, s) = stat_path(&f.root, "/up").unwrap();
    assert_eq!(s.link_target, "/");
    let (_, s) = stat_path(&f.root, "/dest/").unwrap();
    assert_eq!(s.name, "dest");
    assert_eq!(
        s.mode & wharf_api::archive::file_mode::DIR,
        wharf_api::archive::file_mode::DIR
    );
    let (_, s) = stat_path(&f.root, "/etc/passwd").unwrap();
    assert_eq!(s.size, 26);
    assert_eq!(s.mode, 0o644);
    let e = stat_path(&f.root, "/hostabs/marker").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
}

fn tar_names(data: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(data);
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

#[test]
fn get_through_hostile_links_reads_the_container_only() {
    let f = fixture();
    for (path, want) in [
        ("/slash/etc/", "etc/passwd"),
        ("/up/etc/passwd", "passwd"),
        ("/dest/etclink/", "etclink/passwd"),
    ] {
        let (r, _) = stat_path(&f.root, path).unwrap();
        let mut out = Vec::new();
        let name = super::base_name(path);
        pack_resolved(&f.root, &r, &name, &mut out).unwrap();
        let names = tar_names(&out);
        assert!(names.iter().any(|n| n == want), "{path}: {names:?}");
        let mut ar = tar::Archive::new(&out[..]);
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            assert!(!s.contains("host"), "{path}: read the host's file");
        }
    }
    // A symlink is archived as itself, never followed.
    let (r, _) = stat_path(&f.root, "/hostabs").unwrap();
    let mut out = Vec::new();
    pack_resolved(&f.root, &r, "hostabs", &mut out).unwrap();
    let mut ar = tar::Archive::new(&out[..]);
    let e = ar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.header().entry_type(), tar::EntryType::Symlink);
}

#[test]
fn a_directory_tar_keeps_modes_hardlinks_and_order() {
    let f = fixture();
    let d = f.root_dir.join("tree");
    fs::create_dir_all(d.join("b")).unwrap();
    fs::write(d.join("a"), "a").unwrap();
    fs::set_permissions(d.join("a"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(d.join("a"), d.join("b/hl")).unwrap();
    let (r, _) = stat_path(&f.root, "/tree").unwrap();
    let mut out = Vec::new();
    pack_resolved(&f.root, &r, "tree", &mut out).unwrap();
    assert_eq!(tar_names(&out), ["tree/", "tree/a", "tree/b/", "tree/b/hl"]);
    // `tree/.`: the contents, as moby names them.
    let (r, _) = stat_path(&f.root, "/tree/.").unwrap();
    let mut dot = Vec::new();
    pack_resolved(&f.root, &r, &super::base_name("/tree/."), &mut dot).unwrap();
    assert_eq!(tar_names(&dot), ["./", "./a", "./b/", "./b/hl"]);
    let mut ar = tar::Archive::new(&out[..]);
    let es: Vec<_> = ar
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.header().entry_type(), e.header().mode().unwrap())
        })
        .collect();
    assert_eq!(es[1], (tar::EntryType::Regular, 0o4755));
    assert_eq!(es[3].0, tar::EntryType::Link);
    // Long names and link targets survive whole.
    let long = "n".repeat(150);
    fs::write(d.join(&long), "l").unwrap();
    symlink("t".repeat(120), d.join("longlink")).unwrap();
    let mut out = Vec::new();
    pack_resolved(&f.root, &r, "tree", &mut out).unwrap();
    let mut ar = tar::Archive::new(&out[..]);
    let mut seen = 0;
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        if p == format!("tree/{long}") {
            seen += 1;
        }
        if p == "tree/longlink" {
            assert_eq!(
                e.link_name().unwrap().unwrap().display().to_string(),
                "t".repeat(120)
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 2);
}

/// A tar entry with any name and link name, as a hostile client would write it.
fn raw(out: &mut Vec<u8>, name: &str, kind: tar::EntryType, link: &str, data: &[u8], mode: u32) {
    let mut h = tar::Header::new_gnu();
    {
        let g = h.as_gnu_mut().unwrap();
        g.name[..name.len()].copy_from_slice(name.as_bytes());
        g.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
    }
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0, pad));
}

fn end(mut out: Vec<u8>) -> Vec<u8> {
    out.extend(std::iter::repeat_n(0, 1024));
    out
}

fn unpack_into(
    f: &Fixture,
    dest: &str,
    tar: Vec<u8>,
    opts: UnpackOptions,
) -> Result<(), UnpackError> {
    let r = f.root.resolve(dest.as_bytes(), true).unwrap();
    Unpacker::new(&f.root, r.comps, opts).unpack(&tar[..])
}

use tar::EntryType as T;

#[test]
fn hostile_archives_are_refused_and_write_nothing_outside() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dot-dot",
            {
                let mut t = Vec::new();
                raw(&mut t, "../evil", T::Regular, "", b"x", 0o644);
                t
            },
            "is outside of",
        ),
        (
            "deep dot-dot",
            {
                let mut t = Vec::new();
                raw(&mut t, "a/../../evil", T::Regular, "", b"x", 0o644);
                t
            },
            "is outside of",
        ),
        (
            "absolute",
            {
                let mut t = Vec::new();
                raw(&mut t, "/evil", T::Regular, "", b"x", 0o644);
                t
            },
            "is outside of",
        ),
        (
            "symlink out",
            {
                let mut t = Vec::new();
                raw(&mut t, "l", T::Symlink, "../../../../..", b"", 0o777);
                t
            },
            "invalid symlink",
        ),
        (
            "symlink then file",
            {
                let mut t = Vec::new();
                raw(&mut t, "l", T::Symlink, "/", b"", 0o777);
                raw(&mut t, "l/evil", T::Regular, "", b"x", 0o644);
                t
            },
            "is outside of",
        ),
        (
            "existing symlink then file",
            {
                let mut t = Vec::new();
                raw(&mut t, "sibling/evil", T::Regular, "", b"x", 0o644);
                t
            },
            "is outside of",
        ),
        (
            "existing abs symlink then file",
            {
                let mut t = Vec::new();
                raw(&mut t, "etclink/passwd", T::Regular, "", b"x", 0o644);
                t
            },
            "is outside of",
        ),
        (
            "hardlink out",
            {
                let mut t = Vec::new();
                raw(&mut t, "hl", T::Link, "../etc/passwd", b"", 0o644);
                t
            },
            "invalid hardlink",
        ),
        (
            "hardlink absolute",
            {
                let mut t = Vec::new();
                raw(&mut t, "hl", T::Link, "/etc/passwd", b"", 0o644);
                t
            },
            "invalid hardlink",
        ),
        (
            "hardlink through symlink",
            {
                let mut t = Vec::new();
                raw(&mut t, "hl", T::Link, "etclink/passwd", b"", 0o644);
                t
            },
            "invalid hardlink",
        ),
        (
            "char device",
            {
                let mut t = Vec::new();
                raw(&mut t, "null", T::Char, "", b"", 0o666);
                t
            },
            "device nodes",
        ),
        (
            "block device",
            {
                let mut t = Vec::new();
                raw(&mut t, "sda", T::Block, "", b"", 0o660);
                t
            },
            "device nodes",
        ),
    ];
    for (what, tar, words) in cases {
        let f = fixture();
        let host_before = snapshot(&f.host);
        let root_before = snapshot(&f.root_dir);
        let err = unpack_into(&f, "/dest", end(tar), UnpackOptions::default()).unwrap_err();
        assert!(matches!(err, UnpackError::Refused(_)), "{what}: {err:?}");
        assert!(err.to_string().contains(words), "{what}: {err}");
        assert_eq!(snapshot(&f.host), host_before, "{what}: the host changed");
        // Nothing outside the target changed either (a refused symlink-then-file case
        // leaves its symlink, inside the target).
        let outside = |s: &BTreeSet<(PathBuf, Vec<u8>, u32)>| -> BTreeSet<_> {
            s.iter()
                .filter(|(p, _, _)| !p.starts_with(f.root_dir.join("dest")))
                .cloned()
                .collect()
        };
        assert_eq!(
            outside(&snapshot(&f.root_dir)),
            outside(&root_before),
            "{what}"
        );
        assert_eq!(
            fs::read(f.root_dir.join("etc/passwd")).unwrap(),
            b"root:x:0:0::/root:/bin/sh\n"
        );
        assert!(
            !f.root_dir.join("evil").exists() && !f.host.join("evil").exists(),
            "{what}"
        );
    }
}

#[test]
fn a_good_archive_lands_with_modes_owners_links_and_times() {
    let f = fixture();
    let mut t = Vec::new();
    raw(&mut t, "new/", T::Directory, "", b"", 0o750);
    raw(&mut t, "new/suid", T::Regular, "", b"#!/bin/sh\n", 0o4755);
    raw(&mut t, "new/rel", T::Symlink, "suid", b"", 0o777);
    raw(&mut t, "new/abs", T::Symlink, "/etc/passwd", b"", 0o777);
    raw(&mut t, "new/hl", T::Link, "new/suid", b"", 0o644);
    raw(&mut t, "new/fifo", T::Fifo, "", b"", 0o640);
    raw(&mut t, "deep/er/file", T::Regular, "", b"d", 0o600);
    // Replaces a file by a directory, merges into an existing one.
    raw(&mut t, "file/", T::Directory, "", b"", 0o755);
    raw(&mut t, "sub/x", T::Regular, "", b"x", 0o644);
    unpack_into(&f, "/dest", end(t), UnpackOptions::default()).unwrap();
    let d = f.root_dir.join("dest");
    let m = fs::metadata(d.join("new/suid")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4755);
    assert_eq!(m.nlink(), 2);
    assert_eq!(
        fs::read_link(d.join("new/abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(fs::read_link(d.join("new/rel")).unwrap(), Path::new("suid"));
    assert!(fs::symlink_metadata(d.join("new/fifo"))
        .unwrap()
        .file_type()
        .is_fifo_like());
    assert_eq!(fs::metadata(d.join("new")).unwrap().mode() & 0o7777, 0o750);
    assert_eq!(fs::metadata(d.join("new")).unwrap().mtime(), 1_600_000_000);
    assert_eq!(fs::read(d.join("deep/er/file")).unwrap(), b"d");
    assert!(fs::metadata(d.join("file")).unwrap().is_dir());
    assert_eq!(fs::read(d.join("sub/x")).unwrap(), b"x");
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}
impl FifoLike for fs::FileType {
    fn is_fifo_like(&self) -> bool {
        std::os::unix::fs::FileTypeExt::is_fifo(self)
    }
}

#[test]
fn copy_uid_gid_and_no_overwrite() {
    let f = fixture();
    let mut t = Vec::new();
    raw(&mut t, "owned", T::Regular, "", b"o", 0o644);
    let opts = UnpackOptions {
        chown: Some((1234, 5678)),
        ..Default::default()
    };
    unpack_into(&f, "/dest", end(t), opts).unwrap();
    let m = fs::metadata(f.root_dir.join("dest/owned")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678));

    let mut t = Vec::new();
    raw(&mut t, "sub", T::Regular, "", b"o", 0o644);
    let opts = UnpackOptions {
        no_overwrite_dir_non_dir: true,
        ..Default::default()
    };
    let e = unpack_into(&f, "/dest", end(t), opts).unwrap_err();
    assert!(e.to_string().contains("cannot overwrite directory"), "{e}");
    assert!(f.root_dir.join("dest/sub").is_dir());
}

#[test]
fn a_cut_archive_is_a_bad_archive() {
    let f = fixture();
    let mut t = Vec::new();
    raw(&mut t, "big", T::Regular, "", &[7u8; 4096], 0o644);
    t.truncate(1500);
    let e = unpack_into(&f, "/dest", t, UnpackOptions::default()).unwrap_err();
    assert!(matches!(e, UnpackError::BadArchive(_)), "{e:?}");
}

fn mountinfo_has(path: &Path) -> bool {
    // The calling thread's namespace (`/proc/self` is the main thread's).
    fs::read_to_string("/proc/thread-self/mountinfo")
        .unwrap()
        .contains(&path.display().to_string())
}

/// A stopped container's view: its layer (a bind here, an overlay in wharfd) and its volume
/// and bind mounts exist in the helper thread's namespace only, read-only ones refuse writes,
/// and nothing is left mounted on the host afterwards.
#[tokio::test]
async fn a_stopped_view_mounts_in_a_private_namespace_only() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mounting needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (layer, vol, ro, mnt) = (
        tmp.path().join("layer"),
        tmp.path().join("vol"),
        tmp.path().join("ro"),
        tmp.path().join("mnt"),
    );
    for d in [&layer, &vol, &ro, &mnt] {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(vol.join("v.txt"), "volume").unwrap();
    fs::write(ro.join("r.txt"), "read-only").unwrap();
    let mp = |t: &str, s: &Path, d: &str, rw: bool| wharf_api::container::MountPoint {
        r#type: t.into(),
        source: s.display().to_string(),
        destination: d.into(),
        rw,
        ..Default::default()
    };
    let view = super::view::Stopped {
        layer: vec![wharf_storage::Mount {
            kind: "bind".into(),
            source: layer.display().to_string(),
            options: vec!["rbind".into(), "rw".into()],
        }],
        binds: vec![
            mp("volume", &vol, "/data", true),
            mp("bind", &ro, "/ro/deep", false),
        ],
        mount_dir: mnt.clone(),
    };
    let seen = super::view::with_stopped(view, {
        let mnt = mnt.clone();
        move |root: &Root| {
            let read = |p: &str| {
                let r = root.resolve(p.as_bytes(), true).unwrap();
                let fd = root.open_resolved(&r.comps, libc::O_RDONLY).unwrap();
                std::io::read_to_string(fs::File::from(fd)).unwrap()
            };
            let mut t = Vec::new();
            raw(&mut t, "new.txt", T::Regular, "", b"n", 0o644);
            let to_data = unpack_into_root(root, "/data", end(t.clone()));
            let to_ro = unpack_into_root(root, "/ro/deep", end(t));
            (
                read("/data/v.txt"),
                read("/ro/deep/r.txt"),
                to_data.is_ok(),
                to_ro.map_err(|e| e.to_string()),
                mountinfo_has(&mnt),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(seen.0, "volume");
    assert_eq!(seen.1, "read-only");
    assert!(seen.2);
    assert!(seen.3.unwrap_err().contains("Read-only file system"));
    assert!(seen.4, "the helper thread saw its own mounts");
    assert!(!mountinfo_has(&mnt), "a mount leaked to the host");
    assert_eq!(fs::read(vol.join("new.txt")).unwrap(), b"n");
    // The bind's destination was made in the layer, as dockerd makes missing ones.
    assert!(layer.join("ro/deep").is_dir());
    assert!(!layer.join("data/new.txt").exists());
}

fn unpack_into_root(root: &Root, dest: &str, tar: Vec<u8>) -> Result<(), UnpackError> {
    let r = root.resolve(dest.as_bytes(), true).unwrap();
    Unpacker::new(root, r.comps, UnpackOptions::default()).unpack(&tar[..])
}

/// File capabilities go out as moby writes them (PAX `SCHILY.xattr.security.capability`)
/// and come back in on extraction.
#[test]
fn file_capabilities_round_trip() {
    let f = fixture();
    let file = f.root_dir.join("ping");
    fs::write(&file, "elf").unwrap();
    // VFS_CAP_REVISION_2 | effective, permitted = CAP_NET_RAW.
    let cap: Vec<u8> = [0x0200_0001u32, 1 << 13, 0, 0, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    let fd = fs::File::open(&file).unwrap();
    use std::os::fd::AsFd;
    wharf_fs::xattr::set(fd.as_fd(), wharf_fs::xattr::CAPABILITY, &cap).unwrap();
    let (r, _) = stat_path(&f.root, "/ping").unwrap();
    let mut out = Vec::new();
    pack_resolved(&f.root, &r, "ping", &mut out).unwrap();
    let mut ar = tar::Archive::new(&out[..]);
    let mut e = ar.entries().unwrap().next().unwrap().unwrap();
    let exts: Vec<_> = e
        .pax_extensions()
        .unwrap()
        .unwrap()
        .map(|x| {
            let x = x.unwrap();
            (x.key().unwrap().to_string(), x.value_bytes().to_vec())
        })
        .collect();
    assert_eq!(
        exts,
        [("SCHILY.xattr.security.capability".to_string(), cap.clone())]
    );
    Unpacker::new(
        &f.root,
        f.root.resolve(b"/dest", true).unwrap().comps,
        UnpackOptions::default(),
    )
    .unpack(&out[..])
    .unwrap();
    let back = fs::File::open(f.root_dir.join("dest/ping")).unwrap();
    assert_eq!(
        wharf_fs::xattr::get(back.as_fd(), wharf_fs::xattr::CAPABILITY).unwrap(),
        Some(cap)
    );
}
