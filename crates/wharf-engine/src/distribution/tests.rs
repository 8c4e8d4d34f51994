//! The distribution service against a fake registry (manifests and blobs in maps): a pull's
//! messages, what it stores and names, its failures and its cancellation, without a network.

use super::remote::{Registry, Remote};
use super::DistributionService;
use crate::ctx::Ctx;
use crate::error::EngineError;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use wharf_api::jsonmessage::JsonMessage;
use wharf_backend::PullOptions;
use wharf_distribution::error::Result as DResult;
use wharf_distribution::manifest::{DOCKER_CONFIG, DOCKER_MANIFEST, OCI_INDEX};
use wharf_distribution::{
    BlobStream, Credentials, DistributionError, Fetched, LoginOutcome, Reference,
};
use wharf_storage::SnapshotKind;

const LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

fn sha(b: &[u8]) -> String {
    wharf_storage::Digest::sha256_of(b).to_string()
}

fn digest(s: &str) -> wharf_distribution::Digest {
    wharf_distribution::Digest::parse(s).unwrap()
}

/// A gzipped tar of `files`, and the digest of the tar (its diff id).
fn layer(files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let diff_id = sha(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

#[derive(Clone)]
struct Image {
    manifest: Vec<u8>,
    config: Vec<u8>,
    layers: Vec<Vec<u8>>,
    diff_ids: Vec<String>,
}

impl Image {
    fn new(layers: &[(Vec<u8>, String)], arch: &str) -> Image {
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Labels": {"made.by": "the test"}, "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.1).collect::<Vec<_>>()},
            "history": [],
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "digest": sha(&config), "size": config.len()},
            "layers": layers.iter().map(|(b, _)| serde_json::json!({
                "mediaType": LAYER_GZIP, "digest": sha(b), "size": b.len()
            })).collect::<Vec<_>>(),
        }))
        .unwrap();
        Image {
            manifest,
            config,
            layers: layers.iter().map(|l| l.0.clone()).collect(),
            diff_ids: layers.iter().map(|l| l.1.clone()).collect(),
        }
    }

    fn id(&self) -> String {
        sha(&self.config)
    }

    fn digest(&self) -> String {
        sha(&self.manifest)
    }

    fn layer_id(&self, i: usize) -> String {
        sha(&self.layers[i])[7..19].to_string()
    }
}

/// One repository of the fake registry: manifests by tag and digest; its blobs are in
/// [`Shared`], with which repository holds which.
struct FakeRepo {
    /// `localhost:5000/x`.
    name: String,
    shared: Arc<Shared>,
    manifests: Mutex<HashMap<String, (String, Vec<u8>)>>,
    /// Blobs served as their first half and then nothing, until the stream is dropped.
    stall: Mutex<Vec<String>>,
    /// Blob digests streamed, in order.
    streamed: Mutex<Vec<String>>,
    /// Blobs whose next stream breaks with an error after this many bytes of the blob (as
    /// the registry client's stream does once its own retries are spent).
    cut: Mutex<HashMap<String, usize>>,
    /// Bytes of each blob served, and the offsets asked for.
    served: Mutex<HashMap<String, usize>>,
    offsets: Mutex<Vec<(String, u64)>>,
    /// Blobs whose next stream holds back its last byte until the gate is opened.
    gates: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
}

/// What the fake registry's repositories share.
#[derive(Default)]
struct Shared {
    /// Blob bytes by digest.
    blobs: Mutex<HashMap<String, Vec<u8>>>,
    /// (repository, digest): which repository holds which blob.
    held: Mutex<HashSet<(String, String)>>,
    /// (repository, digest) uploaded, and (repository, digest, from) mounted.
    uploads: Mutex<Vec<(String, String)>>,
    mounts: Mutex<Vec<(String, String, String)>>,
    repos: Mutex<HashMap<String, Arc<FakeRepo>>>,
    /// How pushes fail, when they do.
    refusal: Mutex<Option<Refusal>>,
}

/// A push's failures as the registry client reports them.
#[derive(Clone, Copy)]
enum Refusal {
    /// Basic auth asked, no credentials: every request fails before it is sent.
    NoCredentials,
    /// Nothing listens: the client's ping fails.
    Unreachable,
}

impl Refusal {
    fn error(self, method: &str, path: &str) -> DistributionError {
        let (op, cause) = match self {
            Refusal::NoCredentials => (
                format!("{method} \"http://localhost:5000{path}\""),
                DistributionError::NoBasicAuthCredentials,
            ),
            Refusal::Unreachable => (
                "Get \"http://localhost:5000/v2/\"".to_owned(),
                DistributionError::Transport(
                    "dial tcp 127.0.0.1:5000: connect: connection refused".into(),
                ),
            ),
        };
        DistributionError::Request {
            op,
            cause: Box::new(cause),
        }
    }
}

impl Shared {
    fn repo(self: &Arc<Self>, name: &str) -> Arc<FakeRepo> {
        self.repos
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(FakeRepo {
                    name: name.to_owned(),
                    shared: self.clone(),
                    manifests: Mutex::default(),
                    stall: Mutex::default(),
                    streamed: Mutex::default(),
                    cut: Mutex::default(),
                    served: Mutex::default(),
                    offsets: Mutex::default(),
                    gates: Mutex::default(),
                })
            })
            .clone()
    }
}

impl FakeRepo {
    fn put_manifest(&self, tag: &str, media_type: &str, bytes: &[u8]) {
        let mut m = self.manifests.lock().unwrap();
        m.insert(tag.into(), (media_type.into(), bytes.to_vec()));
        m.insert(sha(bytes), (media_type.into(), bytes.to_vec()));
    }

    fn hold(&self, bytes: &[u8]) {
        let d = sha(bytes);
        self.shared
            .blobs
            .lock()
            .unwrap()
            .insert(d.clone(), bytes.to_vec());
        self.shared
            .held
            .lock()
            .unwrap()
            .insert((self.name.clone(), d));
    }

    fn add(&self, tag: &str, img: &Image) {
        self.put_manifest(tag, DOCKER_MANIFEST, &img.manifest);
        self.hold(&img.config);
        for l in &img.layers {
            self.hold(l);
        }
    }

    fn add_index(&self, tag: &str, images: &[(&Image, &str)]) -> String {
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": images.iter().map(|(img, arch)| serde_json::json!({
                "mediaType": DOCKER_MANIFEST, "digest": img.digest(), "size": img.manifest.len(),
                "platform": {"architecture": arch, "os": "linux"},
            })).collect::<Vec<_>>(),
        }))
        .unwrap();
        for (img, _) in images {
            self.add(&img.digest(), img);
        }
        self.put_manifest(tag, OCI_INDEX, &index);
        sha(&index)
    }

    fn holds(&self, digest: &str) -> bool {
        self.shared
            .held
            .lock()
            .unwrap()
            .contains(&(self.name.clone(), digest.to_owned()))
    }
}

struct FakeRegistry(Arc<Shared>);

impl Registry for FakeRegistry {
    fn repository(&self, name: &Reference, _creds: Credentials) -> Arc<dyn Remote> {
        self.0.repo(&name.name())
    }
    fn login<'a>(
        &'a self,
        _server: &'a str,
        creds: &'a Credentials,
    ) -> BoxFuture<'a, DResult<LoginOutcome>> {
        Box::pin(async move {
            match creds {
                Credentials::Basic { password, .. } if password == "right" => Ok(LoginOutcome {
                    status: "Login Succeeded".into(),
                    identity_token: None,
                }),
                _ => Err(DistributionError::Unauthorized(
                    "incorrect username or password".into(),
                )),
            }
        })
    }
}

impl Remote for FakeRepo {
    fn manifest<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, DResult<Fetched>> {
        Box::pin(async move {
            let found = self.manifests.lock().unwrap().get(reference).cloned();
            match found {
                Some((media_type, bytes)) => Ok(Fetched {
                    media_type,
                    digest: digest(&sha(&bytes)),
                    bytes: Bytes::from(bytes),
                }),
                None => Err(DistributionError::ManifestUnknown {
                    reference: format!("{}:{reference}", self.name),
                    detail: "manifest unknown: manifest unknown".into(),
                }),
            }
        })
    }

    fn blob_bytes<'a>(
        &'a self,
        d: &'a wharf_distribution::Digest,
        _max: u64,
    ) -> BoxFuture<'a, DResult<Bytes>> {
        Box::pin(async move {
            self.shared
                .blobs
                .lock()
                .unwrap()
                .get(d.as_str())
                .map(|b| Bytes::from(b.clone()))
                .ok_or_else(|| DistributionError::BlobUnknown(d.clone()))
        })
    }

    fn blob_stream(&self, d: &wharf_distribution::Digest, _size: u64, offset: u64) -> BlobStream {
        let key = d.to_string();
        self.streamed.lock().unwrap().push(key.clone());
        self.offsets.lock().unwrap().push((key.clone(), offset));
        let Some(bytes) = self.shared.blobs.lock().unwrap().get(d.as_str()).cloned() else {
            let e = std::io::Error::other(DistributionError::BlobUnknown(d.clone()));
            return Box::pin(futures_util::stream::iter([Err(e)]));
        };
        let from = (offset as usize).min(bytes.len());
        let cut = self.cut.lock().unwrap().remove(&key);
        let stall = self.stall.lock().unwrap().contains(&key);
        let end = match (cut, stall) {
            (Some(at), _) => at.max(from),
            (None, true) => (bytes.len() / 2).max(from),
            (None, false) => bytes.len(),
        };
        *self.served.lock().unwrap().entry(key.clone()).or_default() += end - from;
        let mut chunks: Vec<std::io::Result<Bytes>> = bytes[from..end]
            .chunks(64 << 10)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        if cut.is_some() {
            chunks.push(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "read tcp 127.0.0.1:40000->127.0.0.1:5000: read: connection reset by peer",
            )));
        }
        if let Some(gate) = self.gates.lock().unwrap().remove(&key) {
            let last = bytes[end - 1..end].to_vec();
            let mut head: Vec<std::io::Result<Bytes>> = bytes[from..end - 1]
                .chunks(64 << 10)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            head.retain(|c| c.as_ref().map_or(true, |b| !b.is_empty()));
            let tail = futures_util::stream::once(async move {
                gate.notified().await;
                Ok(Bytes::from(last))
            });
            return Box::pin(futures_util::stream::iter(head).chain(tail));
        }
        let stream = futures_util::stream::iter(chunks);
        if stall {
            return Box::pin(stream.chain(futures_util::stream::pending()));
        }
        Box::pin(stream)
    }

    fn blob_exists<'a>(
        &'a self,
        d: &'a wharf_distribution::Digest,
    ) -> BoxFuture<'a, DResult<Option<u64>>> {
        if let Some(r) = *self.shared.refusal.lock().unwrap() {
            let e = r.error("Head", &format!("/v2/copy/blobs/{d}"));
            return Box::pin(async move { Err(e) });
        }
        let size = self
            .holds(d.as_str())
            .then(|| self.shared.blobs.lock().unwrap()[d.as_str()].len() as u64);
        Box::pin(async move { Ok(size) })
    }

    fn mount_blob<'a>(
        &'a self,
        d: &'a wharf_distribution::Digest,
        from: &'a str,
    ) -> BoxFuture<'a, DResult<bool>> {
        if let Some(r) = *self.shared.refusal.lock().unwrap() {
            let e = r.error("Post", "/v2/copy/blobs/uploads/");
            return Box::pin(async move { Err(e) });
        }
        let source = self.name.split_once('/').map_or("", |(domain, _)| domain);
        let from_repo = format!("{source}/{from}");
        let there = self
            .shared
            .held
            .lock()
            .unwrap()
            .contains(&(from_repo, d.to_string()));
        if there {
            self.shared
                .held
                .lock()
                .unwrap()
                .insert((self.name.clone(), d.to_string()));
            self.shared.mounts.lock().unwrap().push((
                self.name.clone(),
                d.to_string(),
                from.to_owned(),
            ));
        }
        Box::pin(async move { Ok(there) })
    }

    fn upload_blob<'a>(
        &'a self,
        d: &'a wharf_distribution::Digest,
        size: u64,
        body: BlobStream,
    ) -> BoxFuture<'a, DResult<()>> {
        if let Some(r) = *self.shared.refusal.lock().unwrap() {
            let e = r.error("Post", "/v2/copy/blobs/uploads/");
            return Box::pin(async move { Err(e) });
        }
        Box::pin(async move {
            let chunks: Vec<_> = body.collect().await;
            let mut bytes = Vec::new();
            for c in chunks {
                bytes.extend_from_slice(
                    &c.map_err(|e| DistributionError::Transport(e.to_string()))?,
                );
            }
            if sha(&bytes) != d.as_str() || bytes.len() as u64 != size {
                return Err(DistributionError::Registry {
                    status: 400,
                    message: "digest invalid: provided digest did not match uploaded content"
                        .into(),
                });
            }
            self.hold(&bytes);
            self.shared
                .uploads
                .lock()
                .unwrap()
                .push((self.name.clone(), d.to_string()));
            Ok(())
        })
    }

    fn put_manifest<'a>(
        &'a self,
        reference: &'a str,
        media_type: &'a str,
        bytes: Bytes,
    ) -> BoxFuture<'a, DResult<wharf_distribution::Digest>> {
        Box::pin(async move {
            let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let named = std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap());
            for d in named {
                let d = d["digest"].as_str().unwrap();
                if !self.holds(d) {
                    return Err(DistributionError::Registry {
                        status: 400,
                        message: format!("manifest blob unknown: {d}"),
                    });
                }
            }
            FakeRepo::put_manifest(self, reference, media_type, &bytes);
            Ok(digest(&sha(&bytes)))
        })
    }

    fn tags(&self) -> BoxFuture<'_, DResult<Vec<String>>> {
        let mut tags: Vec<String> = self
            .manifests
            .lock()
            .unwrap()
            .keys()
            .filter(|k| !k.starts_with("sha256:"))
            .cloned()
            .collect();
        tags.sort();
        Box::pin(async move { Ok(tags) })
    }
}

struct Env {
    _dir: tempfile::TempDir,
    ctx: Arc<Ctx>,
    registry: Arc<Shared>,
    /// `localhost:5000/x`.
    repo: Arc<FakeRepo>,
    svc: Arc<DistributionService>,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Arc::new(Ctx::for_tests(dir.path()));
    let registry = Arc::new(Shared::default());
    let repo = registry.repo("localhost:5000/x");
    let svc =
        DistributionService::with_registry(ctx.clone(), Arc::new(FakeRegistry(registry.clone())));
    Env {
        _dir: dir,
        ctx,
        registry,
        repo,
        svc,
    }
}

fn opts(from: &str, tag: &str) -> PullOptions {
    PullOptions {
        from_image: from.into(),
        tag: tag.into(),
        ..PullOptions::default()
    }
}

/// Each message as its line (without `\r\n`), an error as `ERROR <kind> <message>`.
async fn pull(e: &Env, o: PullOptions) -> Vec<String> {
    let stream = e.svc.pull(o).unwrap();
    stream
        .map(|item| match item {
            Ok(m) => String::from_utf8(m.to_line())
                .unwrap()
                .trim_end()
                .to_string(),
            Err(err) => format!("ERROR {:?} {err}", err.kind()),
        })
        .collect()
        .await
}

fn status(s: &str) -> String {
    String::from_utf8(JsonMessage::status("", s).to_line())
        .unwrap()
        .trim_end()
        .to_string()
}

fn step(id: &str, s: &str) -> String {
    String::from_utf8(JsonMessage::action(id, s).to_line())
        .unwrap()
        .trim_end()
        .to_string()
}

fn bar(id: &str, action: &str, n: usize) -> String {
    String::from_utf8(JsonMessage::progress(id, action, n as i64, n as i64).to_line())
        .unwrap()
        .trim_end()
        .to_string()
}

fn two_layers() -> Image {
    Image::new(
        &[
            layer(&[("etc/one", b"1")]),
            layer(&[("etc/two", b"22"), ("bin/x", b"#!/bin/sh\n")]),
        ],
        &wharf_distribution::manifest::Platform::host().architecture,
    )
}

/// The messages of one layer, in order.
fn of(lines: &[String], id: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.contains(&format!("\"id\":\"{id}\"")))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_layer_pull_says_what_dockerd_says_and_records_the_image() {
    let e = env();
    let img = two_layers();
    e.repo.add("v1", &img);
    let lines = pull(&e, opts("localhost:5000/x", "v1")).await;
    println!("{}", lines.join("\n"));
    let (l0, l1) = (img.layer_id(0), img.layer_id(1));
    let (n0, n1) = (img.layers[0].len(), img.layers[1].len());
    assert_eq!(lines[0], r#"{"status":"Pulling from x","id":"v1"}"#);
    assert_eq!(lines[1], step(&l0, "Pulling fs layer"));
    assert_eq!(lines[2], step(&l1, "Pulling fs layer"));
    let n = lines.len();
    assert_eq!(lines[n - 2], status(&format!("Digest: {}", img.digest())));
    assert_eq!(
        lines[n - 1],
        status("Status: Downloaded newer image for localhost:5000/x:v1")
    );
    // Every layer streams: downloaded and unpacked in one pass, side by side, then put on its
    // parent in order.
    assert_eq!(
        of(&lines, &l0)[1..],
        [
            bar(&l0, "Downloading", n0),
            step(&l0, "Verifying Checksum"),
            step(&l0, "Download complete"),
            bar(&l0, "Extracting", n0),
            bar(&l0, "Extracting", n0),
            step(&l0, "Pull complete"),
        ]
    );
    // The second, unpacked beside the first, is committed once the first is.
    assert_eq!(
        of(&lines, &l1)[1..],
        [
            bar(&l1, "Downloading", n1),
            step(&l1, "Verifying Checksum"),
            step(&l1, "Download complete"),
            bar(&l1, "Extracting", n1),
            bar(&l1, "Extracting", n1),
            step(&l1, "Pull complete"),
        ]
    );
    let pos = |s: &String| lines.iter().position(|l| l == s).unwrap();
    assert!(pos(&step(&l0, "Pull complete")) < pos(&bar(&l1, "Extracting", n1)));

    // The image, its names, its blobs and its layers.
    let db = &e.ctx.db;
    let rec = db.get_image(&img.id()).unwrap().unwrap();
    assert_eq!(rec.manifest_digest, img.digest());
    assert_eq!(
        db.resolve_tag("localhost:5000/x:v1").unwrap(),
        Some(img.id())
    );
    assert_eq!(
        db.repo_digests_for(&img.id()).unwrap(),
        [format!("localhost:5000/x@{}", img.digest())]
    );
    let stored = |d: &str| e.ctx.content.read(&d.parse().unwrap()).unwrap();
    assert_eq!(
        stored(&img.digest()),
        img.manifest,
        "the manifest's bytes, exactly"
    );
    assert_eq!(stored(&img.id()), img.config);
    for l in &img.layers {
        assert_eq!(&stored(&sha(l)), l);
    }
    // One `pull` event, named as dockerd names it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let events: Vec<_> = e
        .ctx
        .events
        .subscribe(wharf_backend::EventsOptions {
            since: Some(0.0),
            until: Some(now + 1.0),
            ..Default::default()
        })
        .unwrap()
        .collect()
        .await;
    let pulls: Vec<_> = events.iter().filter(|ev| ev.action == "pull").collect();
    assert_eq!(pulls.len(), 1, "{events:?}");
    assert_eq!(pulls[0].actor.id, "localhost:5000/x:v1");
    assert_eq!(pulls[0].actor.attributes["name"], "localhost:5000/x");
    assert_eq!(pulls[0].actor.attributes["made.by"], "the test");
    let top = e.ctx.snaps.stat(&rec.chain_id).unwrap().unwrap();
    assert_eq!(top.kind, SnapshotKind::Committed);
    assert!(rec.size > 0);
    assert!(e
        .ctx
        .snaps
        .list()
        .unwrap()
        .iter()
        .all(|s| s.kind == SnapshotKind::Committed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulling_again_is_up_to_date_and_downloads_nothing() {
    let e = env();
    let img = two_layers();
    e.repo.add("latest", &img);
    pull(&e, opts("localhost:5000/x", "latest")).await;
    let streamed = e.repo.streamed.lock().unwrap().len();
    let lines = pull(&e, opts("localhost:5000/x", "latest")).await;
    assert_eq!(
        lines,
        [
            r#"{"status":"Pulling from x","id":"latest"}"#.to_string(),
            status(&format!("Digest: {}", img.digest())),
            status("Status: Image is up to date for localhost:5000/x:latest"),
        ]
    );
    assert_eq!(e.repo.streamed.lock().unwrap().len(), streamed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_base_layer_already_exists() {
    let e = env();
    let base = layer(&[("base", b"b")]);
    let a = Image::new(&[base.clone(), layer(&[("a", b"a")])], "amd64");
    let b = Image::new(&[base, layer(&[("b", b"bb")])], "amd64");
    e.repo.add("a", &a);
    e.repo.add("b", &b);
    pull(&e, opts("localhost:5000/x", "a")).await;
    let lines = pull(&e, opts("localhost:5000/x", "b")).await;
    assert_eq!(lines[1], step(&b.layer_id(0), "Already exists"));
    assert_eq!(lines[2], step(&b.layer_id(1), "Pulling fs layer"));
    assert_eq!(
        lines.last().unwrap(),
        &status("Status: Downloaded newer image for localhost:5000/x:b")
    );
    assert_eq!(e.ctx.db.list_images().unwrap().len(), 2);

    // rmi releases a chain down to what something else stands on, as dockerd's layer store.
    let base_only = Image::new(&[layer(&[("base", b"b")])], "amd64");
    e.repo.add("base", &base_only);
    pull(&e, opts("localhost:5000/x", "base")).await;
    let images = crate::images::ImageService::new(e.ctx.clone());
    let none = |_: &str| Vec::new();
    let keys = || -> Vec<String> {
        let mut k: Vec<String> = e
            .ctx
            .snaps
            .list()
            .unwrap()
            .into_iter()
            .map(|s| s.key)
            .collect();
        k.sort();
        k
    };
    let base_chain = b.diff_ids[0].clone();
    assert_eq!(keys().len(), 3);
    images
        .remove("localhost:5000/x:a", false, false, &none)
        .unwrap();
    assert_eq!(
        keys().len(),
        2,
        "a's top goes, the base that b stands on stays"
    );
    images
        .remove("localhost:5000/x:b", false, false, &none)
        .unwrap();
    assert_eq!(keys(), [base_chain], "the base is the top of another image");
    images
        .remove("localhost:5000/x:base", false, false, &none)
        .unwrap();
    assert!(keys().is_empty());
    // Alone, an image takes its whole chain with it: the next pull is cold.
    pull(&e, opts("localhost:5000/x", "a")).await;
    assert_eq!(keys().len(), 2);
    images
        .remove("localhost:5000/x:a", false, false, &none)
        .unwrap();
    assert!(keys().is_empty());
    for l in a.layers.iter().chain(&b.layers) {
        assert!(!e.ctx.content.exists(&sha(l).parse().unwrap()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_removed_while_its_child_unpacks_is_pulled_again() {
    let e = env();
    let base = layer(&[("base", b"b")]);
    let a = Image::new(std::slice::from_ref(&base), "amd64");
    let b = Image::new(&[base, layer(&[("b", &noisy(300 << 10))])], "amd64");
    e.repo.add("a", &a);
    e.repo.add("b", &b);
    pull(&e, opts("localhost:5000/x", "a")).await;
    let top = sha(&b.layers[1]);
    let gate = Arc::new(tokio::sync::Notify::new());
    e.repo
        .gates
        .lock()
        .unwrap()
        .insert(top.clone(), gate.clone());
    let svc = e.svc.clone();
    let pulling = tokio::spawn(async move {
        svc.pull(opts("localhost:5000/x", "b"))
            .unwrap()
            .map(|m| m.map(|m| String::from_utf8(m.to_line()).unwrap()))
            .collect::<Vec<_>>()
            .await
    });
    // The top layer is coming, unpacked apart; its parent (the base, here as image a) goes.
    assert!(eventually(|| e.repo.streamed.lock().unwrap().contains(&top)).await);
    let images = crate::images::ImageService::new(e.ctx.clone());
    images
        .remove("localhost:5000/x:a", false, false, &|_: &str| Vec::new())
        .unwrap();
    assert!(e.ctx.snaps.stat(&b.diff_ids[0]).unwrap().is_none());
    gate.notify_one();
    let lines = pulling.await.unwrap();
    let last = lines.last().unwrap().as_ref().unwrap();
    assert!(
        last.contains("Status: Downloaded newer image for localhost:5000/x:b"),
        "{lines:#?}"
    );
    // Looked at again: the base is pulled this time, and the top a second time.
    let said = |id: &str, what: &str| {
        lines
            .iter()
            .filter(|l| {
                let l = l.as_ref().unwrap();
                l.contains(&format!("\"id\":\"{id}\"")) && l.contains(what)
            })
            .count()
    };
    assert_eq!(said(&b.layer_id(0), "Already exists"), 1);
    assert_eq!(said(&b.layer_id(0), "Pull complete"), 1);
    assert_eq!(said(&b.layer_id(1), "Pull complete"), 1);
    let top_streams = e
        .repo
        .streamed
        .lock()
        .unwrap()
        .iter()
        .filter(|d| **d == top)
        .count();
    assert_eq!(
        top_streams, 2,
        "its commit failed and took its blob: downloaded again"
    );
    let rec = e.ctx.db.get_image(&b.id()).unwrap().unwrap();
    let top_snap = e.ctx.snaps.stat(&rec.chain_id).unwrap().unwrap();
    assert_eq!(top_snap.parent.as_deref(), Some(b.diff_ids[0].as_str()));
    assert!(e
        .ctx
        .snaps
        .list()
        .unwrap()
        .iter()
        .all(|s| s.kind == SnapshotKind::Committed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_manifest_is_an_ordinary_404() {
    let e = env();
    let lines = pull(&e, opts("localhost:5000/nosuch", "tag")).await;
    assert_eq!(
        lines,
        ["ERROR NotFound manifest for localhost:5000/nosuch:tag not found: manifest unknown: manifest unknown"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_gives_this_platform_and_records_the_index_digest() {
    let e = env();
    let host = wharf_distribution::manifest::Platform::host().architecture;
    let mine = two_layers();
    let other = Image::new(&[layer(&[("other", b"o")])], "s390x");
    let index = e
        .repo
        .add_index("multi", &[(&other, "s390x"), (&mine, &host)]);
    let lines = pull(&e, opts("localhost:5000/x", "multi")).await;
    assert_eq!(
        lines[lines.len() - 2],
        status(&format!("Digest: {index}")),
        "the digest of what was asked for: {lines:?}"
    );
    let rec = e.ctx.db.get_image(&mine.id()).unwrap().unwrap();
    assert_eq!(rec.manifest_digest, mine.digest());
    assert!(e.ctx.db.get_image(&other.id()).unwrap().is_none());
    assert_eq!(
        e.ctx.db.repo_digests_for(&mine.id()).unwrap(),
        [format!("localhost:5000/x@{index}")]
    );
    // Kept byte for byte, so that the digest stays true.
    let kept = e.ctx.content.read(&index.parse().unwrap()).unwrap();
    assert_eq!(sha(&kept), index);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_by_digest_names_the_digest_not_a_tag() {
    let e = env();
    let img = two_layers();
    e.repo.add("v1", &img);
    let d = img.digest();
    let lines = pull(&e, opts("localhost:5000/x", &d)).await;
    assert_eq!(
        lines[0],
        format!(r#"{{"status":"Pulling from x","id":"localhost:5000/x@{d}"}}"#)
    );
    assert_eq!(
        lines.last().unwrap(),
        &status(&format!(
            "Status: Downloaded newer image for localhost:5000/x@{d}"
        ))
    );
    assert!(e.ctx.db.tags_for(&img.id()).unwrap().is_empty());
    assert_eq!(
        e.ctx
            .db
            .resolve_repo_digest(&format!("localhost:5000/x@{d}"))
            .unwrap(),
        Some(img.id())
    );
    let again = pull(&e, opts(&format!("localhost:5000/x@{d}"), "")).await;
    assert_eq!(
        again.last().unwrap(),
        &status(&format!(
            "Status: Image is up to date for localhost:5000/x@{d}"
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_that_is_not_its_digest_fails_the_pull_and_leaves_nothing() {
    let e = env();
    let img = two_layers();
    e.repo.add("v1", &img);
    // The registry serves other bytes under the second layer's digest.
    let wrong = layer(&[("evil", b"x")]).0;
    e.repo
        .shared
        .blobs
        .lock()
        .unwrap()
        .insert(sha(&img.layers[1]), wrong);
    let lines = pull(&e, opts("localhost:5000/x", "v1")).await;
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "ERROR Internal filesystem layer verification failed for digest {}",
            sha(&img.layers[1])
        )
    );
    assert!(e.ctx.db.list_images().unwrap().is_empty());
    assert!(e
        .ctx
        .db
        .resolve_tag("localhost:5000/x:v1")
        .unwrap()
        .is_none());
    assert!(!e.ctx.content.exists(&sha(&img.layers[1]).parse().unwrap()));
    // No half-unpacked layer: only committed snapshots (the base's) may remain.
    assert!(no_layer_half_made(&e).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_that_is_not_the_one_its_config_names_fails_the_pull() {
    let e = env();
    let good = layer(&[("etc/one", b"1")]);
    let (blob, _) = layer(&[("etc/two", b"2")]);
    // The config names another diff id for the second layer than its blob unpacks to.
    let img = Image::new(&[good, (blob.clone(), sha(b"not this layer"))], "amd64");
    e.repo.add("v1", &img);
    let lines = pull(&e, opts("localhost:5000/x", "v1")).await;
    assert_eq!(
        lines.last().unwrap(),
        "ERROR Internal layers from manifest don't match image configuration"
    );
    assert!(e.ctx.db.list_images().unwrap().is_empty());
    assert!(no_layer_half_made(&e).await);
    assert!(!e.ctx.content.exists(&sha(&blob).parse().unwrap()));
}

/// Waits (boundedly) until no temporary snapshot is left: a cancelled ingest removes its own
/// within a read, on its blocking thread.
async fn no_layer_half_made(e: &Env) -> bool {
    for _ in 0..500 {
        let snaps = e.ctx.snaps.list().unwrap();
        if snaps.iter().all(|s| s.kind == SnapshotKind::Committed) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// Bytes gzip cannot shrink, so that a layer is long enough to be cut in the middle.
fn noisy(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A base layer of 1 MiB of noise under a small one.
fn big_base() -> Image {
    let big = noisy(1 << 20);
    Image::new(
        &[
            layer(&[("big", &big)]),
            layer(&[("etc/two", b"22"), ("bin/x", b"#!/bin/sh\n")]),
        ],
        &wharf_distribution::manifest::Platform::host().architecture,
    )
}

/// Waits (boundedly) until `f` holds.
async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if f() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_cancels_the_pull_and_the_next_resumes() {
    let e = env();
    let img = big_base();
    let (l0, l1) = (img.layer_id(0), img.layer_id(1));
    let (b0, b1) = (sha(&img.layers[0]), sha(&img.layers[1]));
    e.repo.add("v1", &img);
    e.repo.stall.lock().unwrap().push(b0.clone());
    let mut stream = e.svc.pull(opts("localhost:5000/x", "v1")).unwrap();
    // Read until the stalled base layer is downloading and the top one, unpacked beside it,
    // waits for it.
    let (mut base_seen, mut top_in) = (0, false);
    while let Some(m) = stream.next().await {
        let m = m.unwrap();
        if m.status == "Downloading" && m.id == l0 {
            base_seen = m.progress_detail.map_or(0, |d| d.current as u64);
        }
        top_in |= m.status == "Download complete" && m.id == l1;
        if base_seen > 0 && top_in {
            break;
        }
    }
    assert!(base_seen > 0 && top_in);
    assert!(e
        .ctx
        .snaps
        .list()
        .unwrap()
        .iter()
        .any(|s| s.kind == SnapshotKind::Active));
    drop(stream);
    let clean = no_layer_half_made(&e).await;
    assert!(clean, "a half-unpacked layer was left");
    assert!(e.ctx.db.list_images().unwrap().is_empty());
    assert!(
        e.ctx.snaps.list().unwrap().is_empty(),
        "nothing was committed"
    );
    // What came is kept: the top layer's blob, whole, and what the base's ingest had read
    // of its first half when it stopped (at least what its bar showed: counted as it is read).
    let half = img.layers[0].len() / 2;
    let d0: wharf_storage::Digest = b0.parse().unwrap();
    let kept = e.ctx.content.partial_len(&d0);
    assert!((base_seen..=half as u64).contains(&kept), "{kept}");
    assert!(e.ctx.content.exists(&b1.parse().unwrap()));
    assert!(!e.ctx.content.exists(&d0));

    // The next pull asks only for the rest of the base and unpacks the top from the store.
    e.repo.stall.lock().unwrap().clear();
    e.repo.served.lock().unwrap().clear();
    e.repo.offsets.lock().unwrap().clear();
    let lines = pull(&e, opts("localhost:5000/x", "v1")).await;
    assert_eq!(
        lines.last().unwrap(),
        &status("Status: Downloaded newer image for localhost:5000/x:v1"),
        "{lines:#?}"
    );
    assert_eq!(*e.repo.offsets.lock().unwrap(), [(b0.clone(), kept)]);
    assert_eq!(
        e.repo.served.lock().unwrap()[&b0] as u64,
        img.layers[0].len() as u64 - kept
    );
    // Each layer's lines in dockerd's order; the base's bar goes on from where it was.
    let n0 = img.layers[0].len();
    let base = of(&lines, &l0);
    assert_eq!(base[0], step(&l0, "Pulling fs layer"));
    assert!(base[1..base.len() - 5]
        .iter()
        .all(|l| l.contains("\"Downloading\"")));
    let first_bar: serde_json::Value = serde_json::from_str(&base[1]).unwrap();
    assert!(first_bar["progressDetail"]["current"].as_u64().unwrap() > kept);
    assert_eq!(
        base[base.len() - 5..],
        [
            step(&l0, "Verifying Checksum"),
            step(&l0, "Download complete"),
            bar(&l0, "Extracting", n0),
            bar(&l0, "Extracting", n0),
            step(&l0, "Pull complete"),
        ]
    );
    let n1 = img.layers[1].len();
    assert_eq!(
        of(&lines, &l1),
        [
            step(&l1, "Pulling fs layer"),
            step(&l1, "Verifying Checksum"),
            step(&l1, "Download complete"),
            bar(&l1, "Extracting", n1),
            bar(&l1, "Extracting", n1),
            step(&l1, "Pull complete"),
        ]
    );
    let rec = e.ctx.db.get_image(&img.id()).unwrap().unwrap();
    assert_eq!(e.ctx.content.partial_len(&d0), 0);
    assert_eq!(e.ctx.content.read(&d0).unwrap(), img.layers[0]);
    assert!(e.ctx.snaps.stat(&rec.chain_id).unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_breaks_fails_the_pull_and_the_next_fetches_only_the_rest() {
    let e = env();
    let img = big_base();
    let b0 = sha(&img.layers[0]);
    let n0 = img.layers[0].len();
    e.repo.add("v1", &img);
    let at = n0 * 9 / 10;
    e.repo.cut.lock().unwrap().insert(b0.clone(), at);
    let lines = pull(&e, opts("localhost:5000/x", "v1")).await;
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "ERROR Internal pulling layer {}: read tcp 127.0.0.1:40000->127.0.0.1:5000: read: connection reset by peer",
            img.layer_id(0)
        )
    );
    assert!(e.ctx.db.list_images().unwrap().is_empty());
    assert!(no_layer_half_made(&e).await);
    let d0: wharf_storage::Digest = b0.parse().unwrap();
    assert!(eventually(|| e.ctx.content.partial_len(&d0) == at as u64).await);

    e.repo.served.lock().unwrap().clear();
    let lines = pull(&e, opts("localhost:5000/x", "v1")).await;
    assert_eq!(
        lines.last().unwrap(),
        &status("Status: Downloaded newer image for localhost:5000/x:v1"),
        "{lines:#?}"
    );
    let again = e.repo.served.lock().unwrap()[&b0];
    assert_eq!(again, n0 - at, "fetched again after the cut");
    assert!(again <= n0 / 10 + 1);
    assert!(e.ctx.db.get_image(&img.id()).unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_layers_than_download_slots_wait_their_turn() {
    let e = env();
    let layers: Vec<_> = (0..5)
        .map(|i| layer(&[(&format!("f{i}"), format!("{i}").as_bytes())]))
        .collect();
    let img = Image::new(&layers, "amd64");
    e.repo.add("v1", &img);
    let lines = pull(&e, opts("localhost:5000/x", "v1")).await;
    let waiting: Vec<_> = lines.iter().filter(|l| l.contains("Waiting")).collect();
    assert_eq!(
        waiting,
        [
            &step(&img.layer_id(3), "Waiting"),
            &step(&img.layer_id(4), "Waiting")
        ]
    );
    let complete: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("Pull complete"))
        .cloned()
        .collect();
    let want: Vec<_> = (0..5)
        .map(|i| step(&img.layer_id(i), "Pull complete"))
        .collect();
    assert_eq!(complete, want, "applied in order");
    assert!(e.ctx.db.get_image(&img.id()).unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_named_twice_is_downloaded_once() {
    let e = env();
    let same = layer(&[("same", b"s")]);
    let img = Image::new(&[same.clone(), layer(&[("mid", b"m")]), same], "amd64");
    e.repo.add("v1", &img);
    let lines = pull(&e, opts("localhost:5000/x", "v1")).await;
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("Pulling fs layer"))
            .count(),
        2
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains("Pull complete")).count(),
        3
    );
    assert_eq!(e.repo.streamed.lock().unwrap().len(), 2);
    assert!(
        e.ctx.db.get_image(&img.id()).unwrap().is_some(),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_name_pulls_every_tag() {
    let e = env();
    let one = two_layers();
    let two = Image::new(&[layer(&[("two", b"2")])], "amd64");
    e.repo.add("v1", &one);
    e.repo.add("v2", &two);
    let lines = pull(&e, opts("localhost:5000/x", "")).await;
    let heads: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("Pulling from"))
        .cloned()
        .collect();
    assert_eq!(
        heads,
        [
            r#"{"status":"Pulling from x","id":"v1"}"#,
            r#"{"status":"Pulling from x","id":"v2"}"#
        ]
    );
    assert_eq!(
        lines.last().unwrap(),
        &status("Status: Downloaded newer image for localhost:5000/x")
    );
    assert_eq!(
        e.ctx.db.resolve_tag("localhost:5000/x:v2").unwrap(),
        Some(two.id())
    );
    assert_eq!(
        e.ctx.db.resolve_tag("localhost:5000/x:v1").unwrap(),
        Some(one.id())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_anything_is_fetched() {
    let e = env();
    let err = |o| e.svc.pull(o).err().unwrap();
    assert!(matches!(
        err(opts("scratch", "latest")),
        EngineError::Forbidden(_)
    ));
    assert!(matches!(err(opts("UPPER", "x")), EngineError::Invalid(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_distribution_inspect() {
    let e = env();
    let ok = e
        .svc
        .login(wharf_api::registry::AuthConfig {
            username: "u".into(),
            password: "right".into(),
            serveraddress: "localhost:5000".into(),
            ..Default::default()
        })
        .await;
    // Credentials decoding is the client's; before it is written this is a 400.
    if let Ok(r) = ok {
        assert_eq!(r.status, "Login Succeeded");
        let bad = e
            .svc
            .login(wharf_api::registry::AuthConfig {
                username: "u".into(),
                password: "wrong".into(),
                serveraddress: "localhost:5000".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(bad, EngineError::Unauthorized(_)), "{bad:?}");
    }
    let img = two_layers();
    e.repo.add("v1", &img);
    let i = e.svc.inspect("localhost:5000/x:v1", "").await.unwrap();
    assert_eq!(i.descriptor.digest, img.digest());
    assert_eq!(i.descriptor.media_type, DOCKER_MANIFEST);
    assert_eq!(i.descriptor.size, img.manifest.len() as i64);
    assert_eq!(i.platforms.len(), 1);
    assert_eq!(i.platforms[0].os, "linux");
    let missing = e
        .svc
        .inspect("localhost:5000/x:nope", "")
        .await
        .unwrap_err();
    assert!(matches!(missing, EngineError::NotFound(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_digests_resolve_list_and_untag_as_dockers_do() {
    use wharf_api::image::ImageDeleteItem::{Deleted, Untagged};
    let e = env();
    let img = two_layers();
    e.repo.add("v1", &img);
    pull(&e, opts("localhost:5000/x", "v1")).await;
    let images = crate::images::ImageService::new(e.ctx.clone());
    let by_digest = format!("localhost:5000/x@{}", img.digest());
    assert_eq!(images.inspect(&by_digest).unwrap().id, img.id());
    let shown = images.inspect("localhost:5000/x:v1").unwrap();
    assert_eq!(shown.repo_digests, std::slice::from_ref(&by_digest));
    assert_eq!(shown.repo_tags, ["localhost:5000/x:v1"]);
    let listed = images
        .list(&wharf_backend::ListImagesOptions::default())
        .unwrap();
    assert_eq!(listed[0].repo_digests, std::slice::from_ref(&by_digest));

    // `rmi repo@digest` removes that name only.
    let none = |_: &str| Vec::new();
    assert_eq!(
        images.remove(&by_digest, false, false, &none).unwrap(),
        [Untagged(by_digest.clone())]
    );
    assert!(images
        .inspect("localhost:5000/x:v1")
        .unwrap()
        .repo_digests
        .is_empty());
    // Pulled again: up to date, and the digest is back.
    let again = pull(&e, opts("localhost:5000/x", "v1")).await;
    assert_eq!(
        again.last().unwrap(),
        &status("Status: Image is up to date for localhost:5000/x:v1")
    );
    // A repository's last tag takes its digests along, then the image goes.
    assert_eq!(
        images
            .remove("localhost:5000/x:v1", false, false, &none)
            .unwrap(),
        [
            Untagged("localhost:5000/x:v1".into()),
            Untagged(by_digest.clone()),
            Deleted(img.id())
        ]
    );
    assert!(!e.ctx.content.exists(&img.digest().parse().unwrap()));
    assert!(images.inspect(&by_digest).is_err());
}

async fn push(e: &Env, name: &str, tag: &str) -> Vec<String> {
    let stream = e
        .svc
        .push(&wharf_backend::PushOptions {
            name: name.into(),
            tag: tag.into(),
            ..Default::default()
        })
        .unwrap();
    stream
        .map(|item| match item {
            Ok(m) => String::from_utf8(m.to_line())
                .unwrap()
                .trim_end()
                .to_string(),
            Err(err) => format!("ERROR {:?} {err}", err.kind()),
        })
        .collect()
        .await
}

/// The digest and size of the push's `<tag>: digest: ... size: ...` line.
fn pushed(lines: &[String], tag: &str) -> (String, usize) {
    let prefix = format!("{{\"status\":\"{tag}: digest: ");
    let line = lines.iter().find(|l| l.starts_with(&prefix)).unwrap();
    let rest = &line[prefix.len()..line.len() - 2];
    let (d, size) = rest.split_once(" size: ").unwrap();
    (d.to_owned(), size.parse().unwrap())
}

fn tag(e: &Env, from: &str, repo: &str, tag: &str) {
    crate::images::ImageService::new(e.ctx.clone())
        .tag(from, repo, tag)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pulled_image_pushed_to_another_repository_is_mounted_then_found() {
    let e = env();
    let img = two_layers();
    e.repo.add("v1", &img);
    pull(&e, opts("localhost:5000/x", "v1")).await;
    tag(&e, "localhost:5000/x:v1", "localhost:5000/copy", "v1");
    let lines = push(&e, "localhost:5000/copy", "v1").await;
    let (d0, d1) = (&img.diff_ids[0][7..19], &img.diff_ids[1][7..19]);
    assert_eq!(
        lines[..3],
        [
            status("The push refers to repository [localhost:5000/copy]"),
            step(d1, "Preparing"),
            step(d0, "Preparing"),
        ]
    );
    let mut mounted = lines[3..5].to_vec();
    mounted.sort();
    let mut want = vec![step(d0, "Mounted from x"), step(d1, "Mounted from x")];
    want.sort();
    assert_eq!(mounted, want, "{lines:?}");
    let (digest, size) = pushed(&lines, "v1");
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            r#"{{"progressDetail":{{}},"aux":{{"Tag":"v1","Digest":"{digest}","Size":{size}}}}}"#
        )
    );
    assert_eq!(lines.len(), 7, "{lines:?}");
    // The registry holds the manifest pushed, naming the same blobs and config.
    let copy = e.registry.repo("localhost:5000/copy");
    let (mt, bytes) = copy.manifests.lock().unwrap()["v1"].clone();
    assert_eq!(
        (mt.as_str(), sha(&bytes), bytes.len()),
        (DOCKER_MANIFEST, digest.clone(), size)
    );
    let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(m["config"]["digest"], img.id());
    let layers: Vec<_> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        layers,
        img.layers.iter().map(|l| sha(l)).collect::<Vec<_>>()
    );
    assert_eq!(e.registry.mounts.lock().unwrap().len(), 2);
    assert_eq!(
        *e.registry.uploads.lock().unwrap(),
        [("localhost:5000/copy".to_string(), img.id())],
        "only the config went up"
    );
    // Named as dockerd names a pushed image.
    assert!(e
        .ctx
        .db
        .repo_digests_for(&img.id())
        .unwrap()
        .contains(&format!("localhost:5000/copy@{digest}")));

    // Again: everything is there.
    let again = push(&e, "localhost:5000/copy", "v1").await;
    assert_eq!(
        again[3..5]
            .iter()
            .filter(|l| l.contains("Layer already exists"))
            .count(),
        2,
        "{again:?}"
    );
    assert_eq!(pushed(&again, "v1"), (digest, size));
    assert_eq!(e.registry.uploads.lock().unwrap().len(), 1);
    assert_eq!(e.registry.mounts.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_to_another_registry_uploads_every_blob_with_its_bar() {
    let e = env();
    let img = two_layers();
    e.repo.add("v1", &img);
    pull(&e, opts("localhost:5000/x", "v1")).await;
    tag(&e, "localhost:5000/x:v1", "other.example:5000/y", "");
    // No tag: every tag of the repository (here latest).
    let lines = push(&e, "other.example:5000/y", "").await;
    for (i, l) in img.layers.iter().enumerate() {
        let id = &img.diff_ids[i][7..19];
        assert_eq!(
            of(&lines, id),
            [
                step(id, "Preparing"),
                bar(id, "Pushing", l.len()),
                step(id, "Pushed"),
            ]
        );
    }
    assert!(pushed(&lines, "latest").1 > 0);
    let up: Vec<_> = e
        .registry
        .uploads
        .lock()
        .unwrap()
        .iter()
        .map(|(_, d)| d.clone())
        .collect();
    assert_eq!(up.len(), 3, "two layers and the config: {up:?}");
    assert!(up.contains(&img.id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushing_what_is_not_here_says_so_after_the_first_line() {
    let e = env();
    assert_eq!(
        push(&e, "localhost:5000/nosuch", "v1").await,
        [
            status("The push refers to repository [localhost:5000/nosuch]"),
            "ERROR NotFound An image does not exist locally with the tag: localhost:5000/nosuch"
                .to_string()
        ]
    );
    let img = two_layers();
    e.repo.add("v1", &img);
    pull(&e, opts("localhost:5000/x", "v1")).await;
    assert_eq!(
        push(&e, "localhost:5000/x", "v9").await.last().unwrap(),
        "ERROR NotFound tag does not exist: localhost:5000/x:v9"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_push_says_what_dockerd_says() {
    let e = env();
    let img = two_layers();
    e.repo.add("v1", &img);
    pull(&e, opts("localhost:5000/x", "v1")).await;
    tag(&e, "localhost:5000/x:v1", "localhost:5000/copy", "v1");
    // Checks and mounts that fail leave the upload to do (dockerd's layerAlreadyExists and
    // mount attempts); the upload's error is its cause alone (dockerd's retryOnError).
    *e.registry.refusal.lock().unwrap() = Some(Refusal::NoCredentials);
    let lines = push(&e, "localhost:5000/copy", "v1").await;
    assert_eq!(
        lines.last().unwrap(),
        "ERROR Internal no basic auth credentials",
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("Mounted")), "{lines:?}");
    // A registry that cannot be reached fails the push as dockerd's ping does: the request
    // named.
    *e.registry.refusal.lock().unwrap() = Some(Refusal::Unreachable);
    let lines = push(&e, "localhost:5000/copy", "v1").await;
    assert_eq!(
        lines.last().unwrap(),
        "ERROR Internal Get \"http://localhost:5000/v2/\": dial tcp 127.0.0.1:5000: connect: \
         connection refused",
        "{lines:?}"
    );
    assert!(e.registry.uploads.lock().unwrap().is_empty());
}

/// One failed upload, as the registry client reports it.
type Failure = fn() -> DistributionError;

/// The fake registry seen through a client that answers a tag's `HEAD` (with its digest) and
/// counts manifest `GET`s, and whose blob uploads fail as told.
struct Flaky {
    shared: Arc<Shared>,
    /// Failures still to come for each blob's uploads, first first.
    failures: Mutex<HashMap<String, Vec<Failure>>>,
    /// Manifest references asked for with `GET`, and tags asked for with `HEAD`.
    gets: Mutex<Vec<String>>,
    heads: Mutex<Vec<String>>,
}

struct FlakyRepo {
    inner: Arc<FakeRepo>,
    flaky: Arc<Flaky>,
}

struct FlakyRegistry(Arc<Flaky>);

impl Registry for FlakyRegistry {
    fn repository(&self, name: &Reference, _creds: Credentials) -> Arc<dyn Remote> {
        Arc::new(FlakyRepo {
            inner: self.0.shared.repo(&name.name()),
            flaky: self.0.clone(),
        })
    }
    fn login<'a>(
        &'a self,
        _server: &'a str,
        _creds: &'a Credentials,
    ) -> BoxFuture<'a, DResult<LoginOutcome>> {
        Box::pin(async { Err(DistributionError::Invalid("no logins here".into())) })
    }
}

impl Remote for FlakyRepo {
    fn manifest<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, DResult<Fetched>> {
        self.flaky.gets.lock().unwrap().push(reference.to_owned());
        self.inner.manifest(reference)
    }
    fn resolve_tag<'a>(
        &'a self,
        tag: &'a str,
    ) -> BoxFuture<'a, DResult<Option<wharf_distribution::ManifestHead>>> {
        self.flaky.heads.lock().unwrap().push(tag.to_owned());
        let head = self
            .inner
            .manifests
            .lock()
            .unwrap()
            .get(tag)
            .map(|(mt, b)| wharf_distribution::ManifestHead {
                digest: digest(&sha(b)),
                media_type: mt.clone(),
            });
        Box::pin(async move { Ok(head) })
    }
    fn blob_bytes<'a>(
        &'a self,
        d: &'a wharf_distribution::Digest,
        max: u64,
    ) -> BoxFuture<'a, DResult<Bytes>> {
        self.inner.blob_bytes(d, max)
    }
    fn blob_stream(&self, d: &wharf_distribution::Digest, size: u64, offset: u64) -> BlobStream {
        self.inner.blob_stream(d, size, offset)
    }
    fn tags(&self) -> BoxFuture<'_, DResult<Vec<String>>> {
        self.inner.tags()
    }
    fn blob_exists<'a>(
        &'a self,
        d: &'a wharf_distribution::Digest,
    ) -> BoxFuture<'a, DResult<Option<u64>>> {
        self.inner.blob_exists(d)
    }
    fn mount_blob<'a>(
        &'a self,
        d: &'a wharf_distribution::Digest,
        from: &'a str,
    ) -> BoxFuture<'a, DResult<bool>> {
        self.inner.mount_blob(d, from)
    }
    fn upload_blob<'a>(
        &'a self,
        d: &'a wharf_distribution::Digest,
        size: u64,
        body: BlobStream,
    ) -> BoxFuture<'a, DResult<()>> {
        let failure = self
            .flaky
            .failures
            .lock()
            .unwrap()
            .get_mut(d.as_str())
            .filter(|f| !f.is_empty())
            .map(|f| f.remove(0));
        match failure {
            Some(f) => Box::pin(async move { Err(f()) }),
            None => self.inner.upload_blob(d, size, body),
        }
    }
    fn put_manifest<'a>(
        &'a self,
        reference: &'a str,
        media_type: &'a str,
        bytes: Bytes,
    ) -> BoxFuture<'a, DResult<wharf_distribution::Digest>> {
        Remote::put_manifest(&*self.inner, reference, media_type, bytes)
    }
}

/// An environment whose service talks to the fake registry through [`Flaky`], with a
/// countdown of a millisecond per second.
fn flaky_env() -> (Env, Arc<Flaky>) {
    let mut e = env();
    let flaky = Arc::new(Flaky {
        shared: e.registry.clone(),
        failures: Mutex::default(),
        gets: Mutex::default(),
        heads: Mutex::default(),
    });
    e.svc = Arc::new(DistributionService {
        ctx: e.ctx.clone(),
        registry: Arc::new(FlakyRegistry(flaky.clone())),
        retry_tick: std::time::Duration::from_millis(1),
    });
    (e, flaky)
}

fn unavailable() -> DistributionError {
    DistributionError::Registry {
        status: 503,
        message: "received unexpected HTTP status: 503 Service Unavailable".into(),
    }
}

fn reset() -> DistributionError {
    DistributionError::Request {
        op: "Put \"http://other.example:5000/v2/y/blobs/uploads/1\"".into(),
        cause: Box::new(DistributionError::Transport(
            "read tcp 127.0.0.1:40000->127.0.0.1:5000: read: connection reset by peer".into(),
        )),
    }
}

fn unauthorized() -> DistributionError {
    DistributionError::Unauthorized("authentication required".into())
}

/// dockerd's countdown after the `n`th failure: `Retrying in 5n seconds` … `in 1 second`.
fn countdown(id: &str, n: u32) -> Vec<String> {
    (1..=n * 5)
        .rev()
        .map(|s| {
            let unit = if s == 1 { "second" } else { "seconds" };
            step(id, &format!("Retrying in {s} {unit}"))
        })
        .collect()
}

/// A pulled image tagged for a registry that has none of its blobs.
async fn ready_to_push(e: &Env) -> Image {
    let img = two_layers();
    e.repo.add("v1", &img);
    pull(e, opts("localhost:5000/x", "v1")).await;
    tag(e, "localhost:5000/x:v1", "other.example:5000/y", "v1");
    img
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_counts_down_and_pushes_again() {
    let (e, flaky) = flaky_env();
    let img = ready_to_push(&e).await;
    {
        let mut f = flaky.failures.lock().unwrap();
        f.insert(sha(&img.layers[0]), vec![unavailable]);
        f.insert(sha(&img.layers[1]), vec![reset, unavailable]);
    }
    let lines = push(&e, "other.example:5000/y", "v1").await;
    let (d0, d1) = (&img.diff_ids[0][7..19], &img.diff_ids[1][7..19]);
    let mut want0 = vec![step(d0, "Preparing")];
    want0.extend(countdown(d0, 1));
    want0.extend([bar(d0, "Pushing", img.layers[0].len()), step(d0, "Pushed")]);
    assert_eq!(of(&lines, d0), want0);
    let mut want1 = vec![step(d1, "Preparing")];
    want1.extend(countdown(d1, 1));
    want1.extend(countdown(d1, 2));
    want1.extend([bar(d1, "Pushing", img.layers[1].len()), step(d1, "Pushed")]);
    assert_eq!(of(&lines, d1), want1);
    assert!(pushed(&lines, "v1").1 > 0, "{lines:?}");
    assert_eq!(e.registry.uploads.lock().unwrap().len(), 3, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_fails_for_good_after_five_attempts() {
    let (e, flaky) = flaky_env();
    let img = ready_to_push(&e).await;
    flaky
        .failures
        .lock()
        .unwrap()
        .insert(sha(&img.layers[0]), vec![unavailable; 6]);
    let lines = push(&e, "other.example:5000/y", "v1").await;
    let d0 = &img.diff_ids[0][7..19];
    let mut want = vec![step(d0, "Preparing")];
    for n in 1..=4 {
        want.extend(countdown(d0, n));
    }
    assert_eq!(of(&lines, d0), want);
    assert_eq!(
        lines.last().unwrap(),
        "ERROR Internal received unexpected HTTP status: 503 Service Unavailable"
    );
    assert_eq!(
        flaky.failures.lock().unwrap()[&sha(&img.layers[0])].len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_is_not_retried() {
    let (e, flaky) = flaky_env();
    let img = ready_to_push(&e).await;
    flaky
        .failures
        .lock()
        .unwrap()
        .insert(sha(&img.layers[0]), vec![unauthorized; 2]);
    let lines = push(&e, "other.example:5000/y", "v1").await;
    assert!(!lines.iter().any(|l| l.contains("Retrying")), "{lines:?}");
    assert_eq!(
        lines.last().unwrap(),
        "ERROR Internal unauthorized: authentication required"
    );
    assert_eq!(
        flaky.failures.lock().unwrap()[&sha(&img.layers[0])].len(),
        1
    );
    assert!(!e
        .registry
        .repo("other.example:5000/y")
        .holds(&sha(&img.layers[0])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_pull_heads_the_tag_and_gets_no_manifest() {
    let (e, flaky) = flaky_env();
    let img = two_layers();
    e.repo.add("latest", &img);
    pull(&e, opts("localhost:5000/x", "latest")).await;
    assert_eq!(*flaky.gets.lock().unwrap(), [img.digest()]);
    let lines = pull(&e, opts("localhost:5000/x", "latest")).await;
    assert_eq!(
        lines,
        [
            r#"{"status":"Pulling from x","id":"latest"}"#.to_string(),
            status(&format!("Digest: {}", img.digest())),
            status("Status: Image is up to date for localhost:5000/x:latest"),
        ]
    );
    assert_eq!(flaky.gets.lock().unwrap().len(), 1, "no second GET");
    assert_eq!(*flaky.heads.lock().unwrap(), ["latest", "latest"]);

    // A multi-arch tag of an image not here yet: the index and this platform's manifest
    // are both kept by the first pull.
    let arch = wharf_distribution::manifest::Platform::host().architecture;
    let other = Image::new(&[layer(&[("etc/three", b"333")])], &arch);
    let index = e.repo.add_index("multi", &[(&other, &arch)]);
    pull(&e, opts("localhost:5000/x", "multi")).await;
    let gets = flaky.gets.lock().unwrap().len();
    let lines = pull(&e, opts("localhost:5000/x", "multi")).await;
    assert_eq!(
        lines.last().unwrap(),
        &status("Status: Image is up to date for localhost:5000/x:multi")
    );
    assert!(
        lines.contains(&status(&format!("Digest: {index}"))),
        "{lines:?}"
    );
    assert_eq!(
        flaky.gets.lock().unwrap().len(),
        gets,
        "no GET of a kept index"
    );
}

/// dockerd v28 on Linux fetches a foreign (non-distributable) layer from the registry by its
/// digest like any other, ignoring its `urls`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_layer_is_fetched_from_the_registry_like_any_other() {
    let e = env();
    let mut img = two_layers();
    let foreign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    img.manifest = String::from_utf8(img.manifest.clone())
        .unwrap()
        .replacen(LAYER_GZIP, foreign, 1)
        .into_bytes();
    assert!(String::from_utf8_lossy(&img.manifest).contains(foreign));
    e.repo.add("v1", &img);
    let lines = pull(&e, opts("localhost:5000/x", "v1")).await;
    assert_eq!(
        lines.last().unwrap(),
        &status("Status: Downloaded newer image for localhost:5000/x:v1")
    );
    assert_eq!(
        of(&lines, &img.layer_id(0)).last().unwrap(),
        &step(&img.layer_id(0), "Pull complete")
    );
}
