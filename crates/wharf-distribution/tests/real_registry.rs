//! The client against the real registry (distribution 2.8, `/usr/local/lib/wharf/docker-registry`)
//! on 127.0.0.1: a push round trip with its own uploads (monolithic and chunked), mounts and
//! manifests, then manifests, blobs and tags back, a multi-arch index chosen from; and the
//! same behind htpasswd basic auth. Without the binary the tests fail under CI and say SKIP
//! otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::{bytes_of, image, sha256};
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wharf_distribution::manifest::{self, Platform};
use wharf_distribution::{
    BlobStream, Credentials, Digest, DistributionError, Reference, Registries, RegistryOptions,
    Repository,
};

const BINARY: &str = "/usr/local/lib/wharf/docker-registry";

/// A registry process on a temporary root; killed and removed when dropped.
struct RealRegistry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for RealRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary, or None after saying why the test is skipped (only outside CI).
fn binary_or_skip(test: &str) -> Option<PathBuf> {
    let path = PathBuf::from(BINARY);
    if path.exists() {
        return Some(path);
    }
    let reason = format!("{BINARY} is not installed");
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {reason}");
    }
    println!("SKIP {test}: {reason}");
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(binary: &Path, test: &str, auth: Option<&str>) -> RealRegistry {
    let dir = tempfile::Builder::new().prefix(test).tempdir().unwrap();
    let root = dir.path().join("storage");
    std::fs::create_dir(&root).unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cfg = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\nlog:\n  level: error\n",
        root.display()
    );
    if let Some(htpasswd) = auth {
        let file = dir.path().join("htpasswd");
        std::fs::write(&file, htpasswd).unwrap();
        cfg.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
            file.display()
        ));
    }
    let cfg_path = dir.path().join("cfg.yml");
    std::fs::write(&cfg_path, cfg).unwrap();
    // Its log (every 404 a HEAD meets is an "error" to it) goes to a file beside its root.
    let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
    let child = Command::new(binary)
        .arg("serve")
        .arg(&cfg_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let reg = RealRegistry {
        child,
        addr,
        _dir: dir,
    };
    // Ready once it accepts connections; a generous bound for a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(&reg.addr).is_err() {
        assert!(Instant::now() < deadline, "{test}: registry never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    reg
}

fn repo(reg: &Registries, addr: &str, path: &str, creds: Credentials) -> Repository {
    let name = Reference::parse_normalized_named(&format!("{addr}/{path}")).unwrap();
    reg.repository(&name, creds)
}

fn d(s: &str) -> Digest {
    Digest::parse(s).unwrap()
}

/// A body in 1 MiB pieces, as the engine streams one from the content store.
fn body_of(data: &Bytes) -> BlobStream {
    let pieces: Vec<std::io::Result<Bytes>> = (0..data.len())
        .step_by(1 << 20)
        .map(|i| Ok(data.slice(i..(i + (1 << 20)).min(data.len()))))
        .collect();
    futures_util::stream::iter(pieces).boxed()
}

async fn read_all(r: &Repository, digest: &str, size: u64) -> Vec<u8> {
    let mut s = r.blob_stream(&d(digest), size, 0);
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

async fn push_image(r: &Repository, img: &common::Image, tag: &str) -> Digest {
    for blob in std::iter::once(&img.config).chain(&img.layers) {
        let digest = d(&sha256(blob));
        if r.blob_exists(&digest).await.unwrap().is_none() {
            r.upload_blob(&digest, blob.len() as u64, body_of(blob))
                .await
                .unwrap();
        }
        assert_eq!(
            r.blob_exists(&digest).await.unwrap(),
            Some(blob.len() as u64)
        );
    }
    r.put_manifest(tag, manifest::DOCKER_MANIFEST, img.manifest.clone())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_round_trip_against_the_real_registry() {
    let test = "push_round_trip_against_the_real_registry";
    let Some(bin) = binary_or_skip(test) else {
        return;
    };
    let server = start(&bin, test, None);
    let reg = Registries::new(RegistryOptions::default()).unwrap();
    let r = repo(
        &reg,
        &server.addr,
        "wharf-test/round-trip",
        Credentials::Anonymous,
    );

    // A small layer goes in one PUT, a 20 MiB one in 16 MiB PATCHes.
    let img = image(21, &[100_000, 20 << 20]);
    let pushed = push_image(&r, &img, "v1").await;
    assert_eq!(pushed.as_str(), img.manifest_digest);

    let m = r.manifest("v1").await.unwrap();
    assert_eq!(m.bytes, img.manifest);
    assert_eq!(m.media_type, manifest::DOCKER_MANIFEST);
    assert_eq!(m.digest, pushed);
    let parsed = manifest::parse(&m.media_type, &m.bytes).unwrap();
    let manifest::Manifest::Image(parsed) = parsed else {
        panic!("not an image manifest");
    };
    assert_eq!(parsed.layers.len(), 2);
    assert_eq!(
        r.manifest(pushed.as_str()).await.unwrap().bytes,
        img.manifest
    );
    let config = r
        .blob_bytes(&d(&sha256(&img.config)), 1 << 20)
        .await
        .unwrap();
    assert_eq!(config, img.config);
    for l in &img.layers {
        let got = read_all(&r, &sha256(l), l.len() as u64).await;
        assert!(got == l.to_vec(), "layer differs");
    }

    r.put_manifest("v2", manifest::DOCKER_MANIFEST, img.manifest.clone())
        .await
        .unwrap();
    assert_eq!(r.tags().await.unwrap(), ["v1", "v2"]);

    // A cross-repository mount of a blob the source has…
    let other = repo(
        &reg,
        &server.addr,
        "wharf-test/other",
        Credentials::Anonymous,
    );
    let layer0 = d(&sha256(&img.layers[0]));
    assert!(other
        .mount_blob(&layer0, "wharf-test/round-trip")
        .await
        .unwrap());
    assert_eq!(
        other.blob_exists(&layer0).await.unwrap(),
        Some(img.layers[0].len() as u64)
    );
    // …and of one it has not: the upload the registry started is the one used.
    let fresh = bytes_of(99, 5000);
    let fresh_digest = d(&sha256(&fresh));
    assert!(!other
        .mount_blob(&fresh_digest, "wharf-test/round-trip")
        .await
        .unwrap());
    other
        .upload_blob(&fresh_digest, fresh.len() as u64, body_of(&fresh))
        .await
        .unwrap();
    assert_eq!(other.blob_exists(&fresh_digest).await.unwrap(), Some(5000));

    // The registry checks what it was sent.
    let wrong = other
        .upload_blob(
            &d(&sha256(b"something else")),
            fresh.len() as u64,
            body_of(&fresh),
        )
        .await
        .unwrap_err();
    assert_eq!(
        wrong.to_string(),
        "digest invalid: provided digest did not match uploaded content"
    );
    let e = r.manifest("nosuch").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "manifest for {}/wharf-test/round-trip:nosuch not found: manifest unknown: \
             manifest unknown",
            server.addr
        )
    );
    let missing = repo(
        &reg,
        &server.addr,
        "wharf-test/none",
        Credentials::Anonymous,
    );
    let e = missing.tags().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "repository {}/wharf-test/none not found: name unknown: repository name not known \
             to registry",
            server.addr
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_arch_index_is_pushed_and_chosen_from() {
    let test = "a_multi_arch_index_is_pushed_and_chosen_from";
    let Some(bin) = binary_or_skip(test) else {
        return;
    };
    let server = start(&bin, test, None);
    let reg = Registries::new(RegistryOptions::default()).unwrap();
    let r = repo(
        &reg,
        &server.addr,
        "wharf-test/multi",
        Credentials::Anonymous,
    );
    let amd64 = image(31, &[1000]);
    let arm64 = image(32, &[1000]);
    let d_amd64 = push_image(&r, &amd64, "amd64").await;
    let d_arm64 = push_image(&r, &arm64, "arm64").await;
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{d_amd64}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}},{{"mediaType":"{}","digest":"{d_arm64}","size":{},"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#,
        manifest::OCI_INDEX,
        manifest::DOCKER_MANIFEST,
        amd64.manifest.len(),
        manifest::DOCKER_MANIFEST,
        arm64.manifest.len(),
    );
    let index = Bytes::from(index);
    let d_index = r
        .put_manifest("latest", manifest::OCI_INDEX, index.clone())
        .await
        .unwrap();
    let fetched = r.manifest("latest").await.unwrap();
    assert_eq!(fetched.media_type, manifest::OCI_INDEX);
    assert_eq!(fetched.digest, d_index);
    let manifest::Manifest::Index(idx) =
        manifest::parse(&fetched.media_type, &fetched.bytes).unwrap()
    else {
        panic!("not an index");
    };
    let pick = |p: &str| {
        manifest::select(&idx, &Platform::parse(p).unwrap())
            .map(|d| d.digest.clone())
            .map_err(|e| e.to_string())
    };
    assert_eq!(pick("linux/arm64/v8"), Ok(d_arm64.clone()));
    assert_eq!(pick("linux/aarch64"), Ok(d_arm64));
    assert_eq!(pick("linux/amd64"), Ok(d_amd64));
    assert_eq!(
        pick("linux/s390x"),
        Err("no matching manifest for linux/s390x in the manifest list entries".into())
    );
}

fn bcrypt(password: &str) -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-W",
            "ignore",
            "-c",
            &format!(
                "import crypt;print(crypt.crypt({password:?}, crypt.mksalt(crypt.METHOD_BLOWFISH)))"
            ),
        ])
        .output()
        .ok()?;
    let hash = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    hash.starts_with("$2").then_some(hash)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_registries_take_basic_credentials() {
    let test = "htpasswd_registries_take_basic_credentials";
    let Some(bin) = binary_or_skip(test) else {
        return;
    };
    let Some(hash) = bcrypt("pw") else {
        let reason = "python3's crypt module cannot make a bcrypt hash";
        assert!(std::env::var_os("CI").is_none(), "{test}: {reason}");
        println!("SKIP {test}: {reason}");
        return;
    };
    let server = start(&bin, test, Some(&format!("wharf:{hash}\n")));
    let reg = Registries::new(RegistryOptions::default()).unwrap();
    let good = Credentials::Basic {
        username: "wharf".into(),
        password: "pw".into(),
    };
    let bad = Credentials::Basic {
        username: "wharf".into(),
        password: "nope".into(),
    };

    let ok = reg.login(&server.addr, &good).await.unwrap();
    assert_eq!(ok.status, "Login Succeeded");
    assert_eq!(ok.identity_token, None);
    let e = reg.login(&server.addr, &bad).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            server.addr
        )
    );

    let anon = repo(
        &reg,
        &server.addr,
        "wharf-test/private",
        Credentials::Anonymous,
    );
    let img = image(41, &[3000]);
    let e = anon
        .upload_blob(
            &d(&sha256(&img.config)),
            img.config.len() as u64,
            body_of(&img.config),
        )
        .await
        .unwrap_err();
    // Distribution's basic handler refuses to send it (ErrNoBasicAuthCredentials), in Go's
    // url.Error; dockerd's push shows the cause alone.
    assert_eq!(
        e.to_string(),
        format!(
            "Post \"http://{}/v2/wharf-test/private/blobs/uploads/\": no basic auth credentials",
            server.addr
        )
    );
    assert!(matches!(
        e.into_cause(),
        DistributionError::NoBasicAuthCredentials
    ));

    let r = repo(&reg, &server.addr, "wharf-test/private", good);
    let pushed = push_image(&r, &img, "v1").await;
    assert_eq!(r.manifest("v1").await.unwrap().digest, pushed);
    let l = &img.layers[0];
    assert!(read_all(&r, &sha256(l), l.len() as u64).await == l.to_vec());
    let e = repo(
        &reg,
        &server.addr,
        "wharf-test/private",
        Credentials::Anonymous,
    )
    .manifest("v1")
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Head \"http://{}/v2/wharf-test/private/manifests/v1\": no basic auth credentials",
            server.addr
        )
    );
}
