//! `wharf pull`, `push`, `login`, `logout`, `images --digests` and `run` of a missing image
//! end to end: a real wharfd and a real registry (Debian's distribution 2.8,
//! `/usr/local/lib/wharf/docker-registry`) on 127.0.0.1 with a temp root, test images made
//! here (the busybox rootfs as an OCI layout) and pushed with `skopeo`. The docker CLI's
//! output through the same wharfd is the reference where both can run.
//!
//! These need wharfd's pull, push and `/auth` (issue 14); against a wharfd that still answers
//! 501 to them each test records a skip naming that and returns. Also needs root, a built
//! wharfd, `skopeo`, `sha256sum` and `gzip`; skips otherwise. Run under the shared lock:
//! `flock /tmp/wharf-itest.lock cargo test -p wharf --test registry_e2e`.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REGISTRY_BIN: &str = "/usr/local/lib/wharf/docker-registry";
const DEADLINE: Duration = Duration::from_secs(60);

/// A registry on 127.0.0.1:<free port> over a temp dir, stopped on drop.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// `users`: htpasswd logins (`user`, `password`), none for an open registry.
    fn start(name: &str, users: &[(&str, &str)]) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix(&format!("wharf-e2e-{name}-"))
            .tempdir()
            .unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if !users.is_empty() {
            let mut lines = String::new();
            for (u, p) in users {
                lines.push_str(&format!("{u}:{}\n", bcrypt(p)));
            }
            std::fs::write(dir.path().join("htpasswd"), lines).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: wharf-e2e\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < DEADLINE,
                "registry on port {port} did not listen: {}",
                std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            port,
            _dir: dir,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bcrypt hash for htpasswd, by Python's crypt (no Rust bcrypt in the tree).
fn bcrypt(password: &str) -> String {
    let out = Command::new("python3")
        .arg("-W")
        .arg("ignore")
        .arg("-c")
        .arg("import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))")
        .arg(password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn sha256_file(p: &Path) -> String {
    let out = Command::new("sha256sum").arg(p).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

/// Writes `data` as a blob of the layout; returns its descriptor fields (digest, size).
fn blob(layout: &Path, data: &[u8]) -> (String, usize) {
    let tmp = layout.join("tmp-blob");
    std::fs::write(&tmp, data).unwrap();
    let digest = sha256_file(&tmp);
    let dest = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::rename(&tmp, dest).unwrap();
    (digest, data.len())
}

/// The busybox rootfs as a one-layer OCI image layout tagged `latest`; returns the layout's
/// dir and the manifest's digest.
fn busybox_layout(dir: &Path) -> (PathBuf, String) {
    let layout = dir.join("oci");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let tar = wharf_testkit::busybox_rootfs_tar().unwrap();
    let tar_path = dir.join("layer.tar");
    std::fs::write(&tar_path, &tar).unwrap();
    let diff_id = sha256_file(&tar_path);
    let gz = Command::new("gzip")
        .args(["-n", "-c"])
        .arg(&tar_path)
        .output()
        .unwrap();
    assert!(gz.status.success());
    let (layer_digest, layer_size) = blob(&layout, &gz.stdout);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = json!({
        "architecture": arch, "os": "linux",
        "created": "2000-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2000-01-01T00:00:00Z", "created_by": "wharf registry_e2e"}],
    });
    let (config_digest, config_size) = blob(&layout, config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = blob(&layout, manifest.to_string().as_bytes());
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": manifest_digest, "size": manifest_size,
                       "annotations": {"org.opencontainers.image.ref.name": "latest"}}],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    (layout, manifest_digest)
}

/// `skopeo copy` of the layout to `reference` on the registry (plain HTTP).
fn skopeo_push(layout: &Path, reference: &str, creds: Option<&str>) {
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--dest-tls-verify=false", "--preserve-digests"]);
    if let Some(c) = creds {
        cmd.arg("--dest-creds").arg(c);
    }
    let out = cmd
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy to {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Outcome {
    stdout: String,
    stderr: String,
    code: i32,
}

fn cli(tool: &str, host: &str, config: &Path, args: &[&str], stdin: Option<&str>) -> Outcome {
    let bin = if tool == "docker" {
        "docker".to_string()
    } else {
        env!("CARGO_BIN_EXE_wharf").to_string()
    };
    let mut child = Command::new(bin)
        .args(args)
        .env("DOCKER_HOST", host)
        .env("DOCKER_CONFIG", config)
        .env("WHARF_CONFIG", config.join("wharf"))
        .env_remove("WHARF_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_DEFAULT_PLATFORM")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{tool} {args:?} did not finish in 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Outcome {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// True (after recording the skip) when wharfd does not serve what the test needs yet.
fn not_served_yet(o: &Outcome, what: &str) -> bool {
    if o.code != 0 && o.stderr.contains("is not implemented in Wharf yet") {
        wharf_testkit::skip(format!(
            "wharfd does not serve {what} yet (issue 14): {}",
            o.stderr.trim()
        ));
        return true;
    }
    false
}

fn tools_or_skip() -> bool {
    for tool in ["skopeo", "sha256sum", "gzip", "python3"] {
        if Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            wharf_testkit::skip(format!("{tool} is not installed"));
            return false;
        }
    }
    if !Path::new(REGISTRY_BIN).exists() {
        wharf_testkit::skip(format!("{REGISTRY_BIN} is not installed"));
        return false;
    }
    true
}

fn have_docker() -> bool {
    Command::new("docker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn pull_images_digests_and_run_of_a_missing_image() {
    if !tools_or_skip() {
        return;
    }
    let Some(daemon) = wharf_testkit::start_or_skip("e2e-pull").await else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let reg = Registry::start("pull", &[]);
    let (layout, manifest_digest) = busybox_layout(work.path());
    let repo = format!("{}/e2e/busybox", reg.host());
    skopeo_push(&layout, &format!("{repo}:latest"), None);
    skopeo_push(&layout, &format!("{repo}:v2"), None);
    let host = daemon.host();
    let config = work.path().join("config");

    let first = cli("wharf", &host, &config, &["pull", &repo], None);
    if not_served_yet(&first, "pull") {
        return;
    }
    assert_eq!(first.code, 0, "{}", first.stderr);
    let lines: Vec<&str> = first.stdout.lines().collect();
    assert_eq!(lines[0], "Using default tag: latest");
    assert_eq!(lines[1], "latest: Pulling from e2e/busybox");
    assert!(
        first
            .stdout
            .contains(&format!("\nDigest: {manifest_digest}\n")),
        "{}",
        first.stdout
    );
    assert!(first.stdout.contains(&format!(
        "\nStatus: Downloaded newer image for {repo}:latest\n"
    )));
    assert_eq!(
        lines.last().copied(),
        Some(format!("{repo}:latest").as_str())
    );

    // Pulled again: up to date, in the same words through docker and wharf.
    let again = cli("wharf", &host, &config, &["pull", &repo], None);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again
        .stdout
        .contains(&format!("Status: Image is up to date for {repo}:latest")));
    if have_docker() {
        let d = cli("docker", &host, &config, &["pull", &repo], None);
        assert_eq!((d.code, &d.stdout), (0, &again.stdout), "{}", d.stderr);
        let d = cli(
            "docker",
            &host,
            &config,
            &["pull", &format!("{repo}:nope")],
            None,
        );
        let w = cli(
            "wharf",
            &host,
            &config,
            &["pull", &format!("{repo}:nope")],
            None,
        );
        assert_eq!((d.code, &d.stderr), (w.code, &w.stderr));
        assert_eq!(w.code, 1);
    }
    let quiet = cli("wharf", &host, &config, &["pull", "-q", &repo], None);
    assert_eq!(quiet.stdout, format!("{repo}:latest\n"));

    // The digest the registry gave, shown by `images --digests`.
    let images = cli(
        "wharf",
        &host,
        &config,
        &["images", "--digests", &repo],
        None,
    );
    assert!(
        images.stdout.contains(&manifest_digest),
        "{}",
        images.stdout
    );
    let fmt = cli(
        "wharf",
        &host,
        &config,
        &[
            "images",
            "--format",
            "{{.Repository}} {{.Tag}} {{.Digest}}",
            &repo,
        ],
        None,
    );
    assert_eq!(fmt.stdout, format!("{repo} latest {manifest_digest}\n"));

    // `run` of a tag not pulled yet: docker's message, the pull on stderr, then the run.
    let run = cli(
        "wharf",
        &host,
        &config,
        &["run", "--rm", &format!("{repo}:v2"), "echo", "hi"],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "hi\n");
    assert!(
        run.stderr.starts_with(&format!(
            "Unable to find image '{repo}:v2' locally\nv2: Pulling from e2e/busybox\n"
        )),
        "{}",
        run.stderr
    );
    // `--pull=never` of a missing tag is the daemon's 404, no pull.
    let never = cli(
        "wharf",
        &host,
        &config,
        &["create", "--pull=never", &format!("{repo}:v3"), "true"],
        None,
    );
    assert_eq!(never.code, 1);
    assert!(
        !never.stderr.contains("Unable to find image"),
        "{}",
        never.stderr
    );
    // A pull by digest.
    let by_digest = cli(
        "wharf",
        &host,
        &config,
        &["pull", &format!("{repo}@{manifest_digest}")],
        None,
    );
    assert_eq!(by_digest.code, 0, "{}", by_digest.stderr);
    assert!(by_digest
        .stdout
        .ends_with(&format!("{repo}@{manifest_digest}\n")));
}

#[tokio::test]
async fn login_pull_private_and_logout() {
    if !tools_or_skip() {
        return;
    }
    let Some(daemon) = wharf_testkit::start_or_skip("e2e-login").await else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let reg = Registry::start("login", &[("e2euser", "e2e-pass")]);
    let (layout, _) = busybox_layout(work.path());
    let repo = format!("{}/e2e/private", reg.host());
    skopeo_push(&layout, &format!("{repo}:latest"), Some("e2euser:e2e-pass"));
    let host = daemon.host();
    let config = work.path().join("config");

    let login = cli(
        "wharf",
        &host,
        &config,
        &["login", "-u", "e2euser", "--password-stdin", &reg.host()],
        Some("e2e-pass\n"),
    );
    if not_served_yet(&login, "POST /auth") {
        return;
    }
    assert_eq!(
        (login.code, login.stdout.as_str()),
        (0, "Login Succeeded\n"),
        "{}",
        login.stderr
    );
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(config.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(
        stored["auths"][reg.host()]["auth"],
        "ZTJldXNlcjplMmUtcGFzcw==",
        "{stored}"
    );
    let wrong = cli(
        "wharf",
        &host,
        &config,
        &["login", "-u", "e2euser", "--password-stdin", &reg.host()],
        Some("nope\n"),
    );
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.starts_with("Error response from daemon: "),
        "{}",
        wrong.stderr
    );

    let pull = cli("wharf", &host, &config, &["pull", &repo], None);
    if not_served_yet(&pull, "pull") {
        return;
    }
    assert_eq!(pull.code, 0, "{}", pull.stderr);

    let logout = cli("wharf", &host, &config, &["logout", &reg.host()], None);
    assert_eq!(
        logout.stdout,
        format!("Removing login credentials for {}\n", reg.host())
    );
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(config.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(stored["auths"], json!({}));
    // Without credentials the private repository is refused (wharfd's words); stdin is
    // closed, so a 401 cannot turn into a prompt that waits.
    let _ = cli(
        "wharf",
        &host,
        &config,
        &["rmi", &format!("{repo}:latest")],
        None,
    );
    let refused = cli("wharf", &host, &config, &["pull", &repo], Some(""));
    assert_ne!(refused.code, 0, "{}", refused.stdout);
}

#[tokio::test]
async fn push_then_pull_back() {
    if !tools_or_skip() {
        return;
    }
    let Some(daemon) = wharf_testkit::start_or_skip("e2e-push").await else {
        return;
    };
    let client = daemon.client();
    wharf_testkit::import_busybox(&client, "e2e-push-src:latest")
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let reg = Registry::start("push", &[]);
    let repo = format!("{}/e2e/pushed", reg.host());
    let host = daemon.host();
    let config = work.path().join("config");
    let tag = cli(
        "wharf",
        &host,
        &config,
        &["tag", "e2e-push-src:latest", &format!("{repo}:v1")],
        None,
    );
    assert_eq!(tag.code, 0, "{}", tag.stderr);

    let push = cli(
        "wharf",
        &host,
        &config,
        &["push", &format!("{repo}:v1")],
        None,
    );
    if not_served_yet(&push, "push") {
        return;
    }
    assert_eq!(push.code, 0, "{}", push.stderr);
    let lines: Vec<&str> = push.stdout.lines().collect();
    assert_eq!(lines[0], format!("The push refers to repository [{repo}]"));
    assert!(push.stdout.contains(": Pushed\n"), "{}", push.stdout);
    let last = lines.last().unwrap();
    assert!(last.starts_with("v1: digest: sha256:"), "{}", push.stdout);
    let digest = last.split_whitespace().nth(2).unwrap().to_string();
    // The registry has it, under that digest.
    let inspect = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{repo}:v1"))
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), digest);
    // Again: nothing to upload, and `-q` prints only the reference.
    let again = cli(
        "wharf",
        &host,
        &config,
        &["push", &format!("{repo}:v1")],
        None,
    );
    assert!(
        again.stdout.contains(": Layer already exists\n"),
        "{}",
        again.stdout
    );
    let quiet = cli(
        "wharf",
        &host,
        &config,
        &["push", "-q", &format!("{repo}:v1")],
        None,
    );
    assert_eq!(quiet.stdout, format!("{repo}:v1\n"));
    // Pulled back under another name after removing it here.
    let _ = cli(
        "wharf",
        &host,
        &config,
        &["rmi", &format!("{repo}:v1")],
        None,
    );
    let pull = cli(
        "wharf",
        &host,
        &config,
        &["pull", &format!("{repo}:v1")],
        None,
    );
    assert_eq!(pull.code, 0, "{}", pull.stderr);
    assert!(pull.stdout.contains(&format!("Digest: {digest}\n")));
}
