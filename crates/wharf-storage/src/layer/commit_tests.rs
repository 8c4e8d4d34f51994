//! A writable layer committed as a new layer: the same files on the same parent, or nothing.

use std::fs;

use super::tests::{env, import_unlimited, limits, skip_unless_root};
use super::*;
use crate::diff::tests::{tar_bytes, E};

fn commit(
    e: &super::tests::Env,
    key: &str,
    parent: &Digest,
    cap: Option<u64>,
) -> Result<LayerImport> {
    let p = limits(|l| {
        if let Some(c) = cap {
            l.max_layer_size = c;
        }
    });
    commit_layer(
        &e.cs,
        &e.snaps,
        key,
        Some(parent),
        &crate::changes::Skip {
            mounts: vec![std::path::PathBuf::from("vol")],
            mount_points: Vec::new(),
        },
        LayerIngest {
            policy: &p,
            cancel: &Cancel::new(),
            expected_blob: None,
        },
    )
}

#[test]
fn a_writable_layer_becomes_a_layer_on_its_parent() {
    if skip_unless_root() {
        return;
    }
    let e = env();
    let base = import_unlimited(
        &e.cs,
        &e.snaps,
        &tar_bytes(&[
            E::Dir("etc"),
            E::File("etc/passwd", b"root"),
            E::File("gone", b"x"),
        ])[..],
        None,
    )
    .unwrap();
    e.snaps
        .prepare("container-x", Some(base.chain_id.as_str()))
        .unwrap();
    let up = e.snaps.upper_dir("container-x").unwrap();
    fs::create_dir_all(up.join("etc")).unwrap();
    fs::write(up.join("etc/new"), b"new file").unwrap();
    nix::sys::stat::mknod(
        &up.join("gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    fs::create_dir_all(up.join("vol")).unwrap();
    fs::write(up.join("vol/data"), b"a volume's").unwrap();

    let layer = commit(&e, "container-x", &base.chain_id, None).unwrap();
    assert_eq!(
        layer.chain_id,
        chain_id_next(Some(&base.chain_id), &layer.diff_id)
    );
    let info = e.snaps.stat(layer.chain_id.as_str()).unwrap().unwrap();
    assert_eq!(info.parent.as_deref(), Some(base.chain_id.as_str()));
    let fs_dir = &e.snaps.fs_dirs(layer.chain_id.as_str()).unwrap()[0];
    assert_eq!(fs::read(fs_dir.join("etc/new")).unwrap(), b"new file");
    assert!(fs_dir.join("vol").is_dir());
    assert!(!fs_dir.join("vol/data").exists());
    // The stored blob is the tar whose digest is the diff id.
    assert_eq!(layer.blob, layer.diff_id);
    assert!(e.cs.exists(&layer.blob));
}

#[test]
fn a_commit_over_the_limit_leaves_nothing() {
    if skip_unless_root() {
        return;
    }
    let e = env();
    let base = import_unlimited(&e.cs, &e.snaps, &tar_bytes(&[E::Dir("etc")])[..], None).unwrap();
    e.snaps
        .prepare("container-y", Some(base.chain_id.as_str()))
        .unwrap();
    let up = e.snaps.upper_dir("container-y").unwrap();
    fs::write(up.join("big"), vec![7u8; 4 << 20]).unwrap();
    let blobs = e.cs.list().unwrap().len();
    let snaps = e.snaps.list().unwrap().len();
    let err = commit(&e, "container-y", &base.chain_id, Some(1 << 20)).unwrap_err();
    assert!(matches!(err, StorageError::LayerTooLarge { .. }), "{err}");
    assert_eq!(e.cs.list().unwrap().len(), blobs);
    assert_eq!(e.snaps.list().unwrap().len(), snaps);
}
