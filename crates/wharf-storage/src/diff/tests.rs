use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::*;

/// Test tar entries. Paths are written raw into the header, so `..` and absolute paths survive
/// (tar::Builder refuses them).
pub(crate) enum E<'a> {
    File(&'a str, &'a [u8]),
    FileAttrs {
        path: &'a str,
        data: &'a [u8],
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
    },
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Fifo(&'a str),
    Char(&'a str, u32, u32),
    /// PAX records followed by a file.
    PaxFile(&'a str, &'a [u8], Vec<(&'a str, &'a [u8])>),
}

fn raw_header(path: &str, kind: EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let name = path.as_bytes();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h
}

fn set_link(h: &mut tar::Header, target: &str) {
    let t = target.as_bytes();
    h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
}

fn pax_body(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let rest = 1 + k.len() + 1 + v.len() + 1; // ' ' key '=' value '\n'
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {k}=").as_bytes());
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

pub(crate) fn tar_bytes(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut append = |mut h: tar::Header, data: &[u8]| {
            h.set_cksum();
            b.append(&h, data).unwrap();
        };
        match e {
            E::File(p, d) => append(raw_header(p, EntryType::Regular, d.len() as u64, 0o644), d),
            E::FileAttrs {
                path,
                data,
                mode,
                uid,
                gid,
                mtime,
            } => {
                let mut h = raw_header(path, EntryType::Regular, data.len() as u64, *mode);
                h.set_uid(*uid);
                h.set_gid(*gid);
                h.set_mtime(*mtime);
                append(h, data)
            }
            E::Dir(p) => append(raw_header(p, EntryType::Directory, 0, 0o755), b""),
            E::Symlink(p, t) => {
                let mut h = raw_header(p, EntryType::Symlink, 0, 0o777);
                set_link(&mut h, t);
                append(h, b"")
            }
            E::Hardlink(p, t) => {
                let mut h = raw_header(p, EntryType::Link, 0, 0o644);
                set_link(&mut h, t);
                append(h, b"")
            }
            E::Fifo(p) => append(raw_header(p, EntryType::Fifo, 0, 0o600), b""),
            E::Char(p, ma, mi) => {
                let mut h = raw_header(p, EntryType::Char, 0, 0o666);
                h.set_device_major(*ma).unwrap();
                h.set_device_minor(*mi).unwrap();
                append(h, b"")
            }
            E::PaxFile(p, d, recs) => {
                let body = pax_body(recs);
                append(
                    raw_header("PaxHeader", EntryType::XHeader, body.len() as u64, 0o644),
                    &body,
                );
                append(raw_header(p, EntryType::Regular, d.len() as u64, 0o644), d)
            }
        }
    }
    b.into_inner().unwrap()
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    // Level 6: zlib-rs's level 1 (deflate_quick) shrinks runs of zeros ~10x less than
    // zlib's, and the bomb tests need zeros to compress ~1000:1.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub(crate) fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Shadows the crate's: without root (no CAP_CHOWN) the layer's owners cannot be given, so the
/// files stay the runner's and the tests that check owners record a skip.
fn apply_layer(r: impl Read, dest: &Path) -> Result<ApplyStats> {
    let owners = if is_root() {
        Owners::FromLayer
    } else {
        Owners::Caller
    };
    super::apply(r, dest, owners, None)
}

pub(crate) fn getxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let cp = CString::new(p.as_os_str().as_bytes()).unwrap();
    let cn = CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated and outlive the call; the kernel writes at most
    // `buf.len()` bytes into `buf`.
    let n =
        unsafe { libc::lgetxattr(cp.as_ptr(), cn.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

#[test]
fn applies_all_entry_kinds() {
    let d = tempfile::tempdir().unwrap();
    let mut entries = vec![
        E::Dir("./"),
        E::Dir("etc/"),
        E::FileAttrs {
            path: "etc/conf",
            data: b"hello",
            mode: 0o4751,
            uid: 1234,
            gid: 5678,
            mtime: 1_000_000,
        },
        E::File("/abs/file", b"abs"),
        E::File("./dot/./file", b"dot"),
        E::Symlink("etc/link", "/etc/conf"),
        E::Hardlink("etc/hard", "etc/conf"),
        E::Hardlink("etc/hardlink-to-symlink", "/etc/link"),
        E::Fifo("fifo"),
        E::File("a/../b", b"b"),
    ];
    // Device nodes need CAP_MKNOD; wharfd has it, an unprivileged test run does not.
    if is_root() {
        entries.push(E::Char("null", 1, 3));
    }
    let layer = tar_bytes(&entries);
    let st = apply_layer(&layer[..], d.path()).unwrap();
    assert_eq!(st.diff_id, Digest::sha256_of(&layer));
    assert_eq!(st.size, layer.len() as u64);
    assert_eq!(st.file_bytes, 5 + 3 + 3 + 1);
    let p = d.path();
    assert_eq!(fs::read(p.join("etc/conf")).unwrap(), b"hello");
    assert_eq!(fs::read(p.join("abs/file")).unwrap(), b"abs");
    assert_eq!(fs::read(p.join("dot/file")).unwrap(), b"dot");
    assert_eq!(fs::read(p.join("b")).unwrap(), b"b");
    assert_eq!(
        fs::read_link(p.join("etc/link")).unwrap(),
        Path::new("/etc/conf")
    );
    let m = fs::metadata(p.join("etc/conf")).unwrap();
    assert_eq!(m.mtime(), 1_000_000);
    assert_eq!(fs::metadata(p.join("etc/hard")).unwrap().ino(), m.ino());
    assert!(fs::symlink_metadata(p.join("etc/hardlink-to-symlink"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::symlink_metadata(p.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    if is_root() {
        assert_eq!((m.uid(), m.gid()), (1234, 5678));
        assert_eq!(m.mode() & 0o7777, 0o4751);
        let n = fs::symlink_metadata(p.join("null")).unwrap();
        assert!(n.file_type().is_char_device());
        assert_eq!(n.rdev(), nix::sys::stat::makedev(1, 3));
    }
    assert_eq!(fs::metadata(p.join("etc")).unwrap().mtime(), 1_600_000_000);
    if !is_root() {
        crate::test_skip::skip("ran without root: device nodes, owners and setuid bits unchecked");
    }
}

#[test]
fn whiteouts_and_opaque_dirs() {
    if !is_root() {
        crate::test_skip::skip("needs root: whiteouts are char devices (CAP_MKNOD)");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("gone"), b"old").unwrap();
    let layer = tar_bytes(&[
        E::File(".wh.gone", b""),
        E::File("dir/.wh.sub", b""),
        E::Dir("opq/"),
        E::File("opq/.wh..wh..opq", b""),
        E::File("opq/kept", b"k"),
        E::File("x/.wh..wh.plnk", b""),
    ]);
    apply_layer(&layer[..], d.path()).unwrap();
    let gone = fs::symlink_metadata(d.path().join("gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    let sub = fs::symlink_metadata(d.path().join("dir/sub")).unwrap();
    assert!(sub.file_type().is_char_device());
    assert!(!d.path().join("dir/.wh.sub").exists());
    assert!(!d.path().join("x/.wh..wh.plnk").exists());
    assert_eq!(fs::read(d.path().join("opq/kept")).unwrap(), b"k");
    assert_eq!(
        getxattr(&d.path().join("opq"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    let bad = tar_bytes(&[E::File("a/.wh..", b"")]);
    assert!(apply_layer(&bad[..], d.path()).is_err());
}

#[test]
fn rejects_traversal() {
    let outer = tempfile::tempdir().unwrap();
    let dest = outer.path().join("dest");
    fs::create_dir(&dest).unwrap();
    for path in ["../evil", "a/../../evil", "./../evil", "/../evil"] {
        let layer = tar_bytes(&[E::File(path, b"x")]);
        let err = apply_layer(&layer[..], &dest).unwrap_err();
        assert!(
            matches!(err, StorageError::UnsafePath { .. }),
            "{path}: {err:?}"
        );
        assert!(err.is_invalid_input());
    }
    let layer = tar_bytes(&[E::File("f", b"x"), E::Hardlink("h", "../../etc/passwd")]);
    assert!(matches!(
        apply_layer(&layer[..], &dest).unwrap_err(),
        StorageError::UnsafePath { .. }
    ));
    assert_eq!(fs::read_dir(outer.path()).unwrap().count(), 1);
}

#[test]
fn never_follows_symlinks_in_dest() {
    // Same shape as `x -> /etc` + `x/passwd`, aimed at a scratch dir so a bug cannot hurt the host.
    let outer = tempfile::tempdir().unwrap();
    let victim = outer.path().join("victim");
    fs::create_dir(&victim).unwrap();
    fs::write(victim.join("passwd"), b"root:x:0:0").unwrap();
    let dest = outer.path().join("dest");
    let v = victim.to_str().unwrap();
    let cases: Vec<Vec<E<'_>>> = vec![
        vec![E::Symlink("x", v), E::File("x/passwd", b"pwned")],
        vec![E::Symlink("x", "../victim"), E::File("x/passwd", b"pwned")],
        vec![E::Symlink("x", v), E::Dir("x/sub/")],
        vec![E::Symlink("x", v), E::File("x/.wh.passwd", b"")],
        vec![E::Symlink("x", v), E::Hardlink("y", "x/passwd")],
        vec![E::Symlink("x", v), E::Symlink("x/passwd", "/nothing")],
        vec![E::Symlink("x", v), E::File("x/.wh..wh..opq", b"")],
        vec![E::Symlink("x", "/etc"), E::File("x/passwd", b"pwned")],
    ];
    for (i, entries) in cases.iter().enumerate() {
        let _ = fs::remove_dir_all(&dest);
        fs::create_dir(&dest).unwrap();
        let layer = tar_bytes(entries);
        let err = apply_layer(&layer[..], &dest).unwrap_err();
        assert!(err.is_invalid_input(), "case {i}: {err:?}");
        assert_eq!(
            fs::read(victim.join("passwd")).unwrap(),
            b"root:x:0:0",
            "case {i}"
        );
        assert_eq!(fs::read_dir(&victim).unwrap().count(), 1, "case {i}");
    }
    // A file entry replacing a symlink replaces the link itself, not its target.
    let _ = fs::remove_dir_all(&dest);
    fs::create_dir(&dest).unwrap();
    std::os::unix::fs::symlink(victim.join("passwd"), dest.join("p")).unwrap();
    apply_layer(&tar_bytes(&[E::File("p", b"new")])[..], &dest).unwrap();
    assert_eq!(fs::read(victim.join("passwd")).unwrap(), b"root:x:0:0");
    assert_eq!(fs::read(dest.join("p")).unwrap(), b"new");
    // And a directory entry over a symlink replaces it with a real dir.
    std::os::unix::fs::symlink(&victim, dest.join("dl")).unwrap();
    apply_layer(
        &tar_bytes(&[E::Dir("dl/"), E::File("dl/f", b"1")])[..],
        &dest,
    )
    .unwrap();
    assert!(fs::symlink_metadata(dest.join("dl")).unwrap().is_dir());
    assert_eq!(fs::read_dir(&victim).unwrap().count(), 1);
}

#[test]
fn hardlinks_must_be_inside_layer() {
    let d = tempfile::tempdir().unwrap();
    let layer = tar_bytes(&[E::Hardlink("h", "/nope")]);
    assert!(matches!(
        apply_layer(&layer[..], d.path()).unwrap_err(),
        StorageError::InvalidLayer(_)
    ));
    let layer = tar_bytes(&[E::Dir("d/"), E::Hardlink("h", "d")]);
    assert!(apply_layer(&layer[..], d.path()).is_err());
}

#[test]
fn garbage_and_empty_are_invalid() {
    let d = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8 | 1).collect();
    let short = b"hello".to_vec();
    let one_zero_block = vec![0u8; 512];
    let gz_garbage = gzip(&garbage);
    let truncated_gz = gzip(&tar_bytes(&[E::File("f", &[7u8; 10000])]))[..40].to_vec();
    for (name, body) in [
        ("empty", Vec::new()),
        ("garbage", garbage),
        ("short", short),
        ("one zero block", one_zero_block),
        ("gzip garbage", gz_garbage),
        ("truncated gzip", truncated_gz),
        ("bad gzip header", vec![0x1f, 0x8b, 0, 0, 0]),
        ("zstd", vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]),
        (
            "truncated zstd",
            zstd(&tar_bytes(&[E::File("f", &[7u8; 10000])]))[..40].to_vec(),
        ),
    ] {
        let err = apply_layer(&body[..], d.path()).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::InvalidLayer(_) | StorageError::NotATar(_)
            ),
            "{name}: {err:?}"
        );
        assert!(err.is_invalid_input(), "{name}: {err:?}");
    }
}

#[test]
fn canonical_empty_layer_is_accepted() {
    // Docker's well-known empty layer (1024 zero bytes) appears in real images.
    let d = tempfile::tempdir().unwrap();
    let st = apply_layer(&[0u8; 1024][..], d.path()).unwrap();
    assert_eq!(
        st.diff_id.to_string(),
        "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
    );
    assert_eq!(st.entries, 0);
}

#[test]
fn gzip_zstd_and_trailing_bytes() {
    let mut plain = tar_bytes(&[E::File("f", b"gz")]);
    plain.extend_from_slice(&[0u8; 4096]);
    for compress in [gzip, zstd] {
        let d = tempfile::tempdir().unwrap();
        let st = apply_layer(&compress(&plain)[..], d.path()).unwrap();
        assert_eq!(st.diff_id, Digest::sha256_of(&plain));
        assert_eq!(st.size, plain.len() as u64);
        assert_eq!(fs::read(d.path().join("f")).unwrap(), b"gz");
    }
}

#[test]
fn pax_xattrs_times_and_overlay_xattrs_dropped() {
    let d = tempfile::tempdir().unwrap();
    let layer = tar_bytes(&[E::PaxFile(
        "x",
        b"data",
        vec![
            ("SCHILY.xattr.user.wharf", b"v1"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            ("mtime", b"1234567890.5"),
            ("uid", b"4000000"),
        ],
    )]);
    apply_layer(&layer[..], d.path()).unwrap();
    let p = d.path().join("x");
    assert_eq!(getxattr(&p, "user.wharf").as_deref(), Some(&b"v1"[..]));
    assert_eq!(getxattr(&p, "trusted.overlay.redirect"), None);
    let m = fs::metadata(&p).unwrap();
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_234_567_890, 500_000_000));
    if is_root() {
        assert_eq!(m.uid(), 4_000_000);
    } else {
        crate::test_skip::skip("ran without root: the pax uid unchecked");
    }
}

#[test]
fn pax_time_parsing() {
    assert_eq!(parse_pax_time("12"), Some(TimeSpec::new(12, 0)));
    assert_eq!(
        parse_pax_time("12.25"),
        Some(TimeSpec::new(12, 250_000_000))
    );
    assert_eq!(parse_pax_time("-1.5"), Some(TimeSpec::new(-2, 500_000_000)));
    assert_eq!(parse_pax_time("x"), None);
}

#[test]
fn decompressed_reads_plain_gzip_and_zstd_and_refuses_xz() {
    use std::io::Read;
    let data = tar_bytes(&[E::File("a", b"hello")]);
    for input in [data.clone(), gzip(&data)] {
        let (_, mut r) = super::decompressed(&input[..]).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }
    let xz = [0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2, 3];
    let err = super::decompressed(&xz[..]).err().unwrap();
    assert!(
        matches!(err, StorageError::UnsupportedCompression(ref c) if c == "Xz"),
        "{err:?}"
    );
    assert!(err.is_invalid_input());
}

/// Go's `archive/tar` reads a numeric field without digits as 0, and so does the applier:
/// bollard's tests build headers that never set mode, owner or time.
#[test]
fn blank_numeric_fields_read_as_zero() {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..5].copy_from_slice(b"blank");
    h.set_entry_type(EntryType::Regular);
    h.set_size(2);
    let old = h.as_old_mut();
    old.mode = [0; 8];
    old.uid = *b"        ";
    old.gid = [b' ', 0, 0, 0, 0, 0, 0, 0];
    old.mtime = [0; 12];
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"hi"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let d = tempfile::tempdir().unwrap();
    apply_layer(&tar[..], d.path()).unwrap();
    let m = fs::symlink_metadata(d.path().join("blank")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0);
    assert_eq!(m.mtime(), 0);
    if is_root() {
        assert_eq!((m.uid(), m.gid()), (0, 0));
    }
    assert_eq!(fs::read(d.path().join("blank")).unwrap(), b"hi");
}

#[test]
fn numeric_fields_as_go_reads_them() {
    assert_eq!(numeric("mode", b"0000644\0").unwrap(), 0o644);
    assert_eq!(numeric("mode", b"  644   ").unwrap(), 0o644);
    assert_eq!(numeric("mode", b"\0\0\0\0\0\0\0\0").unwrap(), 0);
    assert_eq!(
        numeric("uid", &[0x80, 0, 0, 0, 0, 0, 0x01, 0x00]).unwrap(),
        256
    );
    assert!(numeric("uid", &[0xff, 0xff, 0, 0, 0, 0, 0, 0]).is_err());
    let e = numeric("mode", b"12x4\0\0\0\0").unwrap_err().to_string();
    assert!(e.contains("mode"), "{e}");
}

#[test]
fn zero_runs_become_holes() {
    // 8 MiB of zeros, a byte, 8 MiB of zeros: content and length as in the tar, almost no disk.
    let mut data = vec![0u8; 16 << 20];
    data[8 << 20] = b'x';
    let mut head = vec![0u8; 4 << 20];
    head[0] = b'y';
    let d = tempfile::tempdir().unwrap();
    apply_layer(
        &tar_bytes(&[E::File("sparse", &data), E::File("dense", &head)])[..],
        d.path(),
    )
    .unwrap();
    let p = d.path().join("sparse");
    assert_eq!(fs::read(&p).unwrap(), data);
    let m = fs::metadata(&p).unwrap();
    assert_eq!(m.len(), 16 << 20);
    assert!(m.blocks() * 512 < 1 << 20, "{} blocks", m.blocks());
    // A file whose data comes first and then zeros up to its end keeps its length too.
    assert_eq!(fs::read(d.path().join("dense")).unwrap(), head);
}
