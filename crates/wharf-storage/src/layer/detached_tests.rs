//! Detached imports: unpacked side by side on no parent, stacked as they are committed.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::tests::{
    assert_nothing_left, count, env, import_unlimited, limits, skip_unless_root, CancelAfter, Env,
};
use super::*;
use crate::diff::tests::{getxattr, gzip, tar_bytes, zstd, E};

pub(crate) fn detached(e: &Env, r: impl Read) -> Result<DetachedLayer> {
    let p = limits(|_| {});
    import_layer_detached(
        &e.cs,
        &e.snaps,
        r,
        LayerIngest {
            policy: &p,
            cancel: &Cancel::new(),
            expected_blob: None,
        },
        Resume::No,
    )
}

/// Every entry under `root` with what a container would see of it: type, mode, owner,
/// times, device numbers, content, link target, overlay xattrs, link count.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let what = if ft.is_dir() {
                stack.push(p.clone());
                let opaque = getxattr(&p, "trusted.overlay.opaque");
                format!("dir opaque={opaque:?}")
            } else if ft.is_symlink() {
                format!("symlink -> {:?}", fs::read_link(&p).unwrap())
            } else if ft.is_char_device() {
                format!("char {}", m.rdev())
            } else if ft.is_fifo() {
                "fifo".to_owned()
            } else {
                format!("file {:?}", fs::read(&p).unwrap())
            };
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let attrs = format!(
                "mode={:o} uid={} gid={} mtime={} nlink={}",
                m.mode(),
                m.uid(),
                m.gid(),
                m.mtime(),
                m.nlink()
            );
            out.insert(rel, format!("{what} {attrs}"));
        }
    }
    out
}

/// Three layers that use what a layer can say about the ones below: whiteouts, an opaque
/// dir, files replaced, owners, hard links and symlinks (gzip and plain). Every directory has
/// its entry: one made implicitly gets the time of the unpack.
fn three_layers() -> Vec<Vec<u8>> {
    let big = vec![7u8; 300 << 10];
    vec![
        tar_bytes(&[
            E::Dir("etc/"),
            E::File("etc/a", b"1"),
            E::File("etc/b", b"2"),
            E::Dir("d/"),
            E::File("d/x", b"X"),
            E::Dir("home/"),
            E::Dir("home/u/"),
            E::FileAttrs {
                path: "home/u/f",
                data: b"mine",
                mode: 0o600,
                uid: 1000,
                gid: 1000,
                mtime: 1_700_000_000,
            },
            E::Symlink("lnk", "/etc/a"),
            E::Hardlink("etc/h", "etc/a"),
        ]),
        gzip(&tar_bytes(&[
            E::Dir("etc/"),
            E::File("etc/.wh.b", b""),
            E::Dir("d/"),
            E::File("d/.wh..wh..opq", b""),
            E::File("d/y", &big),
            E::Char("dev-null", 1, 3),
        ])),
        gzip(&tar_bytes(&[
            E::Dir("etc/"),
            E::File("etc/a", b"3"),
            E::Hardlink("etc/a2", "etc/a"),
            E::File(".wh.lnk", b""),
            E::Fifo("pipe"),
        ])),
    ]
}

#[test]
fn parallel_detached_imports_equal_sequential_ones() {
    if skip_unless_root() {
        return;
    }
    let layers = three_layers();
    let seq = env();
    let mut parent: Option<Digest> = None;
    let mut want = Vec::new();
    for l in &layers {
        let i = import_unlimited(&seq.cs, &seq.snaps, &l[..], parent.as_ref()).unwrap();
        parent = Some(i.chain_id.clone());
        want.push(i);
    }

    let par = env();
    let unpacked: Vec<DetachedLayer> = std::thread::scope(|s| {
        let hs: Vec<_> = layers
            .iter()
            .map(|l| s.spawn(|| detached(&par, &l[..]).unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // All three are unpacked before any is committed.
    assert_eq!(par.snaps.list().unwrap().len(), 3);
    let mut parent: Option<Digest> = None;
    let mut got = Vec::new();
    for (u, w) in unpacked.into_iter().zip(&want) {
        assert_eq!(
            (u.blob(), u.diff_id(), u.media_type()),
            (&w.blob, &w.diff_id, &w.media_type[..])
        );
        let i = u.commit_onto(&par.cs, &par.snaps, parent.as_ref()).unwrap();
        parent = Some(i.chain_id.clone());
        got.push(i);
    }
    assert_eq!(got, want);

    let (ls, lp) = (seq.snaps.list().unwrap(), par.snaps.list().unwrap());
    let shape = |l: &[crate::SnapshotInfo]| -> Vec<_> {
        let mut v: Vec<_> = l
            .iter()
            .map(|i| (i.key.clone(), i.parent.clone(), i.kind.as_str()))
            .collect();
        // Listed by directory id, which the parallel unpack hands out in any order.
        v.sort();
        v
    };
    assert_eq!(shape(&ls), shape(&lp));
    assert_eq!(seq.cs.list().unwrap(), par.cs.list().unwrap());
    for i in &want {
        let k = i.chain_id.as_str();
        let (a, b) = (fs_dir(&seq, k), fs_dir(&par, k));
        let (ta, tb) = (tree(&a), tree(&b));
        assert!(!ta.is_empty());
        assert_eq!(ta, tb, "layer {k}");
        assert_eq!(seq.snaps.usage(k).unwrap(), par.snaps.usage(k).unwrap());
    }
    assert_eq!(count(&par.d.path().join("content/ingest")), 0);
}

/// The `fs` dir of a committed snapshot.
fn fs_dir(e: &Env, key: &str) -> std::path::PathBuf {
    let id = e.snaps.stat(key).unwrap().unwrap().id;
    e.d.path().join("snapshots").join(id.to_string()).join("fs")
}

#[test]
fn commit_onto_an_existing_chain_keeps_it() {
    if skip_unless_root() {
        return;
    }
    let e = env();
    let l1 = tar_bytes(&[E::File("a", b"1")]);
    let l2 = gzip(&tar_bytes(&[E::File("b", b"2")]));
    let i1 = import_unlimited(&e.cs, &e.snaps, &l1[..], None).unwrap();
    let i2 = import_unlimited(&e.cs, &e.snaps, &l2[..], Some(&i1.chain_id)).unwrap();
    let before = e.snaps.list().unwrap();

    // The same layers again, detached: they come back as the chains already there.
    let d1 = detached(&e, &l1[..]).unwrap();
    let d2 = detached(&e, &l2[..]).unwrap();
    assert_eq!(e.snaps.list().unwrap().len(), 4);
    assert_eq!(d1.commit_onto(&e.cs, &e.snaps, None).unwrap(), i1);
    assert_eq!(
        d2.commit_onto(&e.cs, &e.snaps, Some(&i1.chain_id)).unwrap(),
        i2
    );
    assert_eq!(e.snaps.list().unwrap(), before);
    // The blobs were there before: still there.
    assert!(e.cs.exists(&i1.blob) && e.cs.exists(&i2.blob));

    // The same layer on another parent is another chain.
    let d = detached(&e, &l1[..]).unwrap();
    let on_top = d.commit_onto(&e.cs, &e.snaps, Some(&i2.chain_id)).unwrap();
    assert_eq!(
        on_top.chain_id,
        crate::chain_id(&[i1.diff_id.clone(), i2.diff_id.clone(), i1.diff_id.clone()])
    );
    let info = e.snaps.stat(on_top.chain_id.as_str()).unwrap().unwrap();
    assert_eq!(info.parent.as_deref(), Some(i2.chain_id.as_str()));
}

#[test]
fn discard_and_failed_commit_leave_nothing() {
    if skip_unless_root() {
        return;
    }
    let e = env();
    let l = gzip(&tar_bytes(&[E::File("a", b"1"), E::Dir("d/")]));
    let d = detached(&e, &l[..]).unwrap();
    assert!(e.cs.exists(d.blob()));
    assert_eq!(e.snaps.list().unwrap().len(), 1);
    d.discard(&e.cs, &e.snaps).unwrap();
    assert_nothing_left(&e);

    // Set aside: the snapshot goes, the verified blob stays for a later unpack from the store.
    let d = detached(&e, &l[..]).unwrap();
    let blob = d.blob().clone();
    d.discard_keeping_blob(&e.snaps).unwrap();
    assert!(e.snaps.list().unwrap().is_empty());
    assert_eq!(count(&e.d.path().join("snapshots")), 0);
    assert!(e.cs.exists(&blob));
    e.cs.delete(&blob).unwrap();
    assert_nothing_left(&e);

    // A parent that is not there: refused at commit, and the layer is gone.
    let d = detached(&e, &l[..]).unwrap();
    let missing = Digest::sha256_of(b"nope");
    let err = d.commit_onto(&e.cs, &e.snaps, Some(&missing)).unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_nothing_left(&e);

    // A bad layer and a cancelled one never become detached layers, and leave nothing.
    let evil = tar_bytes(&[E::File("ok", b"x"), E::File("../evil", b"x")]);
    assert!(matches!(
        detached(&e, &evil[..]),
        Err(StorageError::UnsafePath { .. })
    ));
    assert_nothing_left(&e);
    let p = limits(|_| {});
    let mut r = CancelAfter::new(&l, l.len() / 2);
    let cancel = r.cancel.clone();
    let how = LayerIngest {
        policy: &p,
        cancel: &cancel,
        expected_blob: None,
    };
    let err = import_layer_detached(&e.cs, &e.snaps, &mut r, how, Resume::No).unwrap_err();
    assert!(matches!(err, StorageError::Cancelled(_)), "{err:?}");
    assert_nothing_left(&e);
}

#[test]
fn zstd_layers_import_like_gzip_ones() {
    if skip_unless_root() {
        return;
    }
    let e = env();
    let plain = tar_bytes(&[E::Dir("etc/"), E::File("etc/z", &[5u8; 200 << 10])]);
    let (gz, zs) = (gzip(&plain), zstd(&plain));
    let g = import_unlimited(&e.cs, &e.snaps, &gz[..], None).unwrap();
    let z = detached(&e, &zs[..]).unwrap();
    assert_eq!(z.media_type(), MEDIA_TYPE_LAYER_TAR_ZSTD);
    assert_eq!(z.blob(), &Digest::sha256_of(&zs));
    assert_eq!(z.diff_id(), &g.diff_id);
    assert_eq!(z.file_bytes(), 200 << 10);
    // Same diff id on the same parent: the gzip import's chain stands.
    let zi = z.commit_onto(&e.cs, &e.snaps, None).unwrap();
    assert_eq!(zi.chain_id, g.chain_id);
    assert_eq!(e.snaps.list().unwrap().len(), 1);
    // Through import_layer too, on top of it.
    let top = zstd(&tar_bytes(&[E::File("etc/.wh.z", b"")]));
    let t = import_unlimited(&e.cs, &e.snaps, &top[..], Some(&g.chain_id)).unwrap();
    assert_eq!(t.media_type, MEDIA_TYPE_LAYER_TAR_ZSTD);
    let up = fs_dir(&e, t.chain_id.as_str());
    assert!(fs::symlink_metadata(up.join("etc/z"))
        .unwrap()
        .file_type()
        .is_char_device());
}
