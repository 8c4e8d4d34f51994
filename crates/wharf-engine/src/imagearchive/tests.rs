//! Save and load against the stores of a temp data root: archives built here (as Docker
//! 20.10 and OCI layouts write them, and broken or hostile ones), loaded, saved and loaded
//! again into another root; every refusal leaves the stores as they were.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{load, save, select};
use crate::ctx::Ctx;
use crate::error::EngineError;
use crate::images::ImageService;
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;
use tokio::sync::mpsc;
use wharf_api::jsonmessage::JsonMessage;
use wharf_storage::{Cancel, Digest};

struct Env {
    _dir: tempfile::TempDir,
    ctx: Arc<Ctx>,
    images: Arc<ImageService>,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Arc::new(Ctx::for_tests(dir.path()));
    let images = Arc::new(ImageService::new(ctx.clone()));
    Env {
        _dir: dir,
        ctx,
        images,
    }
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

/// A plain layer of regular files.
fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(946684800);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn config(layers: &[&[u8]], marker: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2000-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Labels": {"marker": marker}},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| sha(l)).collect::<Vec<_>>()},
    }))
    .unwrap()
}

/// Entries of a tar as written: files and symlinks.
enum Ent {
    File(String, Vec<u8>),
    Symlink(&'static str, &'static str),
}

fn file(p: impl Into<String>, data: impl Into<Vec<u8>>) -> Ent {
    Ent::File(p.into(), data.into())
}

fn tar_of(entries: &[Ent]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            Ent::File(p, data) => {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, p, &data[..]).unwrap();
            }
            Ent::Symlink(p, to) => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, p, to).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Docker 20.10's layout for one image: `<n>/layer.tar`, `<config>.json`, `manifest.json`.
fn docker_archive(files: &[Vec<u8>], cfg: &[u8], tags: &[&str]) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut paths = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let p = format!("l{i}/layer.tar");
        entries.push(file(p.clone(), f.clone()));
        paths.push(p);
    }
    let cfg_name = format!("{}.json", &sha(cfg)[7..]);
    entries.push(file(cfg_name.clone(), cfg));
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": cfg_name, "RepoTags": tags, "Layers": paths}
    ]))
    .unwrap();
    entries.push(file("manifest.json", manifest));
    tar_of(&entries)
}

/// Loads `data`: the messages as lines, or the error.
fn run_load(e: &Env, data: &[u8], quiet: bool) -> Result<Vec<JsonMessage>, EngineError> {
    run_load_from(e, data, quiet, &Cancel::new())
}

fn run_load_from(
    e: &Env,
    r: impl Read,
    quiet: bool,
    cancel: &Cancel,
) -> Result<Vec<JsonMessage>, EngineError> {
    let (tx, mut rx) = mpsc::channel(10_000);
    let out = load::Out { tx, quiet };
    let pins = super::pins::Pins::default();
    load::load(&e.ctx, &pins, r, cancel, &out)?;
    drop(out);
    let mut msgs = Vec::new();
    while let Some(m) = rx.blocking_recv() {
        msgs.push(m.unwrap());
    }
    Ok(msgs)
}

/// The archive of `names`, as the response would carry it.
fn run_save(e: &Env, names: &[&str]) -> Result<Vec<u8>, EngineError> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let sel = select::select(&e.ctx, &e.images, &names)?;
    let plan = save::plan(&e.ctx, &sel)?;
    let (tx, mut rx) = mpsc::channel(4);
    let writer = std::thread::spawn(move || save::write(plan, tx));
    let mut out = Vec::new();
    while let Some(chunk) = rx.blocking_recv() {
        out.extend_from_slice(&chunk.unwrap());
    }
    writer.join().unwrap();
    Ok(out)
}

fn members(tar: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut a = tar::Archive::new(tar);
    let mut m = BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        m.insert(e.path().unwrap().to_string_lossy().into_owned(), data);
    }
    m
}

/// Blobs, snapshots, images and tags.
type Stores = (Vec<Digest>, Vec<String>, Vec<String>, Vec<(String, String)>);

/// What a refused load must leave as it was.
fn stores(e: &Env) -> Stores {
    let mut snaps: Vec<String> = e
        .ctx
        .snaps
        .list()
        .unwrap()
        .into_iter()
        .map(|s| s.key)
        .collect();
    snaps.sort();
    let images = e
        .ctx
        .db
        .list_images()
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    (
        e.ctx.content.list().unwrap(),
        snaps,
        images,
        e.ctx.db.list_tags().unwrap(),
    )
}

fn stream_lines(msgs: &[JsonMessage]) -> Vec<String> {
    msgs.iter()
        .filter(|m| !m.stream.is_empty())
        .map(|m| m.stream.clone())
        .collect()
}

#[test]
fn docker_archive_loads_saves_and_loads_again_elsewhere() {
    let e = env();
    let l1 = layer(&[("bin/a", b"a")]);
    let l2 = layer(&[("etc/b", b"b")]);
    let cfg = config(&[&l1, &l2], "one");
    let id = sha(&cfg);
    let archive = docker_archive(&[l1.clone(), l2.clone()], &cfg, &["one:1", "two:2"]);
    let msgs = run_load(&e, &archive, false).unwrap();
    let bars: Vec<&JsonMessage> = msgs
        .iter()
        .filter(|m| m.status == "Loading layer")
        .collect();
    assert_eq!(
        bars.iter()
            .map(|m| m.id.clone())
            .collect::<std::collections::BTreeSet<_>>(),
        [sha(&l1)[7..19].to_string(), sha(&l2)[7..19].to_string()].into()
    );
    assert_eq!(
        stream_lines(&msgs),
        ["Loaded image: one:1\n", "Loaded image: two:2\n"]
    );
    let img = e.images.resolve("one:1").unwrap();
    assert_eq!(img.record.id, id);
    assert_eq!(img.config.rootfs.diff_ids, vec![sha(&l1), sha(&l2)]);
    // Only the image's blobs are left: the archive's manifest.json went.
    let blobs = e.ctx.content.list().unwrap();
    assert_eq!(blobs.len(), 4, "config, manifest, two layers: {blobs:?}");

    let saved = run_save(&e, &["one:1", "two:2"]).unwrap();
    let m = members(&saved);
    let names: Vec<&str> = m.keys().map(String::as_str).collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| !n.starts_with("blobs/sha256/"))
            .collect::<Vec<_>>(),
        [
            &"blobs/",
            &"index.json",
            &"manifest.json",
            &"oci-layout",
            &"repositories"
        ]
    );
    let manifest: serde_json::Value = serde_json::from_slice(&m["manifest.json"]).unwrap();
    assert_eq!(
        manifest,
        serde_json::json!([{
            "Config": format!("blobs/sha256/{}", &id[7..]),
            "RepoTags": ["one:1", "two:2"],
            "Layers": [format!("blobs/sha256/{}", &sha(&l1)[7..]), format!("blobs/sha256/{}", &sha(&l2)[7..])],
        }])
    );
    assert!(m["manifest.json"].ends_with(b"]\n"));
    assert_eq!(&m["oci-layout"], br#"{"imageLayoutVersion": "1.0.0"}"#);
    // The same bytes every time.
    assert_eq!(run_save(&e, &["one:1", "two:2"]).unwrap(), saved);

    let other = env();
    let msgs = run_load(&other, &saved, true).unwrap();
    assert!(msgs.iter().all(|m| m.status.is_empty()), "quiet: {msgs:?}");
    assert_eq!(other.images.resolve("two:2").unwrap().record.id, id);
    // Saved again from the other root: the same bytes (the same manifests, the same order).
    let index: serde_json::Value = serde_json::from_slice(&m["index.json"]).unwrap();
    let again = run_save(&other, &["one:1", "two:2"]).unwrap();
    assert_eq!(again, saved);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
}

#[test]
fn an_oci_layout_loads_by_its_index_and_picks_this_platform() {
    let e = env();
    let l1 = layer(&[("x", b"x")]);
    let cfg = config(&[&l1], "oci");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&cfg), "size": cfg.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(&l1), "size": l1.len()}],
    }))
    .unwrap();
    let other = b"{}".to_vec();
    let arch = std::env::consts::ARCH
        .replace("x86_64", "amd64")
        .replace("aarch64", "arm64");
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&other), "size": 2,
             "platform": {"os": "linux", "architecture": "s390x"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest), "size": manifest.len(),
             "platform": {"os": "linux", "architecture": arch}},
        ],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(&nested),
                       "size": nested.len(), "annotations": {"org.opencontainers.image.ref.name": "oci/x:1"}}],
    }))
    .unwrap();
    let blob = |b: &[u8]| format!("blobs/sha256/{}", &sha(b)[7..]);
    let (pl, pc, pm, pn, po) = (
        blob(&l1),
        blob(&cfg),
        blob(&manifest),
        blob(&nested),
        blob(&other),
    );
    let archive = tar_of(&[
        file("oci-layout", &br#"{"imageLayoutVersion": "1.0.0"}"#[..]),
        file(pl, l1.clone()),
        file(pc, cfg.clone()),
        file(pm, manifest.clone()),
        file(pn, nested.clone()),
        file(po, other.clone()),
        file("index.json", index),
    ]);
    let msgs = run_load(&e, &archive, true).unwrap();
    assert_eq!(stream_lines(&msgs), ["Loaded image: oci/x:1\n"]);
    let img = e.images.resolve("oci/x:1").unwrap();
    assert_eq!(img.record.id, sha(&cfg));
    assert_eq!(img.record.manifest_digest, sha(&manifest));
    // The other platform's manifest and the index were the archive's only.
    assert!(!e.ctx.content.exists(&sha(&nested).parse().unwrap()));
}

#[test]
fn a_layer_that_is_not_its_diff_id_leaves_nothing() {
    let e = env();
    let base = layer(&[("base", b"base")]);
    run_load(
        &e,
        &docker_archive(
            std::slice::from_ref(&base),
            &config(&[&base], "b"),
            &["base:1"],
        ),
        true,
    )
    .unwrap();
    let before = stores(&e);
    let good = layer(&[("a", b"a")]);
    let evil = layer(&[("a", b"evil")]);
    let third = layer(&[("c", b"c")]);
    let cfg = config(&[&base, &good, &third], "x");
    // The second layer is refused after the first (here) and before the third: nothing stays.
    let archive = docker_archive(&[base.clone(), evil.clone(), third], &cfg, &["x:1"]);
    let err = run_load(&e, &archive, false).unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "invalid diffID for layer 1: expected \"{}\", got \"{}\"",
            sha(&good),
            sha(&evil)
        )
    );
    assert_eq!(err.kind(), wharf_api::ErrorKind::InvalidArgument);
    assert_eq!(stores(&e), before);
    // The right layers after the wrong one load.
    let ok = docker_archive(&[base.clone(), good, layer(&[("c", b"c")])], &cfg, &["x:1"]);
    run_load(&e, &ok, true).unwrap();
    assert_eq!(e.images.resolve("x:1").unwrap().record.id, sha(&cfg));
}

#[test]
fn a_cancelled_load_leaves_nothing() {
    let e = env();
    let big = layer(&[("big", &vec![7u8; 2 << 20])]);
    let cfg = config(&[&big], "big");
    let archive = docker_archive(&[big], &cfg, &["big:1"]);
    let before = stores(&e);
    /// Raises the cancel flag after `after` bytes, as a dropped request does.
    struct CancelAfter<'a> {
        data: &'a [u8],
        pos: usize,
        after: usize,
        cancel: Cancel,
    }
    impl Read for CancelAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(64 << 10).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos >= self.after {
                self.cancel.cancel();
            }
            Ok(n)
        }
    }
    // Mid-way, and as the last file (manifest.json) ends: the end-of-archive blocks follow.
    for after in [100 << 10, archive.len() - 1024] {
        let cancel = Cancel::new();
        let r = CancelAfter {
            data: &archive,
            pos: 0,
            after,
            cancel: cancel.clone(),
        };
        let err = run_load_from(&e, r, true, &cancel).unwrap_err();
        assert!(err.message().contains("cancelled"), "{}", err.message());
        assert_eq!(stores(&e), before);
    }
}

#[test]
fn hostile_and_broken_archives_are_refused() {
    let e = env();
    let before = stores(&e);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            tar_of(&[Ent::Symlink("manifest.json", "/etc/passwd")]),
            "invalid archive: manifest.json is a symlink",
        ),
        (
            tar_of(&[file(
                "manifest.json",
                &br#"[{"Config":"../../../etc/passwd","RepoTags":null,"Layers":[]}]"#[..],
            )]),
            "invalid archive: ../../../etc/passwd is not in the archive",
        ),
        (
            tar_of(&[file("manifest.json", &b"null"[..])]),
            "invalid manifest, manifest cannot be null (but can be [])",
        ),
        (
            tar_of(&[file(format!("blobs/sha256/{}", "0".repeat(64)), &b"x"[..])]),
            "does not match its digest",
        ),
        (vec![0u8; 1024], "neither manifest.json nor index.json"),
        (Vec::new(), "neither manifest.json nor index.json"),
    ];
    for (data, words) in cases {
        let err = run_load(&e, &data, true).unwrap_err();
        assert!(err.message().contains(words), "{} / {words}", err.message());
        assert_eq!(err.kind(), wharf_api::ErrorKind::InvalidArgument, "{words}");
        assert_eq!(stores(&e), before, "{words}");
    }
    // A path with `..` never reaches the tar crate's own checks: the raw header says it.
    let mut raw = tar_of(&[file("xx/evil", &b"x"[..])]);
    raw[..7].copy_from_slice(b"../evil");
    let mut h = tar::Header::from_byte_slice(&raw[..512]).clone();
    h.set_cksum();
    raw[..512].copy_from_slice(h.as_bytes());
    let err = run_load(&e, &raw, true).unwrap_err();
    assert!(
        err.message().contains("'..' in a path"),
        "{}",
        err.message()
    );
    // xz is recognised and refused.
    let err = run_load(&e, &[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2], true).unwrap_err();
    assert_eq!(err.kind(), wharf_api::ErrorKind::NotImplemented);
    assert_eq!(stores(&e), before);
}

#[test]
fn save_names_select_as_dockerd_reads_them() {
    let e = env();
    let l1 = layer(&[("a", b"a")]);
    let cfg = config(&[&l1], "s");
    run_load(
        &e,
        &docker_archive(&[l1], &cfg, &["repo:1", "repo:2", "other:1"]),
        true,
    )
    .unwrap();
    let id = sha(&cfg);
    let sel = |names: &[&str]| {
        let v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        select::select(&e.ctx, &e.images, &v)
            .map(|s| s.into_iter().map(|x| (x.id, x.tags)).collect::<Vec<_>>())
    };
    assert_eq!(
        sel(&["repo"]).unwrap(),
        vec![(id.clone(), vec!["repo:1".to_string(), "repo:2".to_string()])]
    );
    assert_eq!(sel(&[&id[7..19]]).unwrap(), vec![(id.clone(), vec![])]);
    assert_eq!(sel(&[&id]).unwrap(), vec![(id.clone(), vec![])]);
    assert_eq!(
        sel(&["other:1", "repo:1"]).unwrap(),
        vec![(
            id.clone(),
            vec!["other:1".to_string(), "repo:1".to_string()]
        )]
    );
    assert_eq!(
        sel(&["repo:3"]).unwrap_err().message(),
        "reference does not exist"
    );
    assert_eq!(
        sel(&["nosuch"]).unwrap_err().message(),
        "No such image: nosuch"
    );
    assert!(sel(&["Bad Name"]).is_err());
}

#[test]
fn loads_of_one_archive_at_once_all_end_with_the_whole_image() {
    let e = env();
    let l1 = layer(&[("a", &vec![1u8; 1 << 20])]);
    let l2 = layer(&[("b", &vec![2u8; 1 << 20])]);
    let cfg = config(&[&l1, &l2], "race");
    let archive = docker_archive(&[l1, l2], &cfg, &["race:1"]);
    let pins = Arc::new(super::pins::Pins::default());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (ctx, pins, archive) = (e.ctx.clone(), pins.clone(), archive.clone());
            std::thread::spawn(move || {
                let (tx, mut rx) = mpsc::channel(10_000);
                let out = load::Out { tx, quiet: true };
                let r = load::load(&ctx, &pins, &archive[..], &Cancel::new(), &out);
                drop(out);
                while rx.blocking_recv().is_some() {}
                r
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let img = e.images.resolve("race:1").unwrap();
    assert!(e.ctx.snaps.stat(&img.record.chain_id).unwrap().is_some());
    // Every blob the image names is here, and nothing else of the archives.
    assert_eq!(e.ctx.content.list().unwrap().len(), 4);
    assert!(run_save(&e, &["race:1"]).is_ok());
}
