//! `wharf` against a TLS daemon on 127.0.0.1 (a small rustls server answering the Engine API
//! calls `version` makes): `--tlsverify`/`DOCKER_TLS_VERIFY` verify the server and present a
//! client certificate, `--tls` encrypts without verifying, and TLS asked for never becomes
//! plain TCP. Certificates come from the `openssl` binary; the test skips without it.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, in `dir`; a second,
/// unrelated CA in `dir/other`.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "1", "-subj", "/CN=wharf-test-ca"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca-key.pem", "-out", "ca.pem"]);
    openssl(dir, &ca);
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let mut req = vec!["req", "-subj", "/CN=wharf-test"];
        req.extend(ec);
        let key = format!("{name}-key.pem");
        let csr = format!("{name}.csr");
        let crt = format!("{name}-cert.pem");
        let extf = format!("{name}.ext");
        req.extend(["-keyout", key.as_str(), "-out", csr.as_str()]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-days",
                "1",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-out",
                &crt,
                "-extfile",
                &extf,
            ],
        );
    }
    // docker's file names for the client side.
    std::fs::copy(dir.join("client-cert.pem"), dir.join("cert.pem")).unwrap();
    std::fs::copy(dir.join("client-key.pem"), dir.join("key.pem")).unwrap();
    let other = dir.join("other");
    std::fs::create_dir(&other).unwrap();
    let mut ca = vec!["req", "-x509", "-days", "1", "-subj", "/CN=other-ca"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca-key.pem", "-out", "ca.pem"]);
    openssl(&other, &ca);
}

const VERSION: &str = r#"{"Version":"99.0-tls","ApiVersion":"1.44","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64","KernelVersion":"x","GoVersion":"x","GitCommit":"x","Components":[]}"#;

/// Answers `/_ping` and `/version` over TLS (or plain HTTP when `tls` is `None`); counts the
/// requests it could read.
async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    seen: Arc<AtomicUsize>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let tls = tls.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut stream: Box<dyn Io> = match tls {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(s) => Box::new(s),
                    Err(_) => return,
                },
                None => Box::new(tcp),
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                // A TLS ClientHello on the plain server: hang up, as an HTTP server would.
                if buf.first() == Some(&0x16) {
                    return;
                }
            }
            seen.fetch_add(1, Ordering::SeqCst);
            let head = String::from_utf8_lossy(&buf);
            let line = head.lines().next().unwrap_or("");
            let body = if line.contains("/version") {
                VERSION
            } else {
                "OK"
            };
            let resp = format!(
                "HTTP/1.1 200 OK\r\nApi-Version: 1.44\r\nOstype: linux\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                body.len(),
                if line.starts_with("HEAD") { "" } else { body }
            );
            let _ = stream.write_all(resp.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

// ring's provider is deprecated only for lacking post-quantum key exchange.
#[allow(deprecated)]
fn acceptor(dir: &Path, require_client_cert: bool) -> tokio_rustls::TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(dir.join("server-cert.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server-key.pem")).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder.with_single_cert(certs, key).unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn wharf(args: &[&str], envs: &[(&str, &str)], home: &Path) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("WHARF_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_TLS")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_CONFIG")
        .env("HOME", home)
        .env("WHARF_CONFIG", home.join("wharf-config"));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), cmd.output())
        .await
        .expect("wharf finished")
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn wharf_speaks_tls_like_docker() {
    if Command::new("openssl").arg("version").output().is_err() {
        wharf_testkit::skip("no openssl binary (apt-get install openssl)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_certs(d);
    let fmt = "{{.Server.Version}}";
    let dstr = d.to_str().unwrap();

    // Mutual TLS: the server wants our client certificate.
    let mtls = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mtls_host = format!("tcp://{}", mtls.local_addr().unwrap());
    let mtls_seen = Arc::new(AtomicUsize::new(0));
    tokio::spawn(serve(mtls, Some(acceptor(d, true)), mtls_seen.clone()));

    // DOCKER_TLS_VERIFY + DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem from the directory.
    let r = wharf(
        &["version", "--format", fmt],
        &[
            ("DOCKER_HOST", &mtls_host),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", dstr),
        ],
        d,
    )
    .await;
    assert_eq!((r.code, r.stdout.trim()), (0, "99.0-tls"), "{}", r.stderr);

    // The same with flags, and the default cert path ~/.docker.
    let home = tempfile::tempdir().unwrap();
    let dot = home.path().join(".docker");
    std::fs::create_dir(&dot).unwrap();
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::copy(d.join(f), dot.join(f)).unwrap();
    }
    let r = wharf(
        &["-H", &mtls_host, "--tlsverify", "version", "--format", fmt],
        &[],
        home.path(),
    )
    .await;
    assert_eq!((r.code, r.stdout.trim()), (0, "99.0-tls"), "{}", r.stderr);
    let ca = d.join("ca.pem");
    let cert = d.join("cert.pem");
    let key = d.join("key.pem");
    let r = wharf(
        &[
            "-H",
            &mtls_host,
            "--tlsverify",
            "--tlscacert",
            ca.to_str().unwrap(),
            "--tlscert",
            cert.to_str().unwrap(),
            "--tlskey",
            key.to_str().unwrap(),
            "version",
            "--format",
            fmt,
        ],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!((r.code, r.stdout.trim()), (0, "99.0-tls"), "{}", r.stderr);

    // A context's TLS material: ca, cert and key stored with the endpoint.
    let spec = format!(
        "host={mtls_host},ca={},cert={},key={}",
        ca.display(),
        cert.display(),
        key.display()
    );
    let r = wharf(&["context", "create", "tlsctx", "--docker", &spec], &[], d).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = wharf(&["--context", "tlsctx", "version", "--format", fmt], &[], d).await;
    assert_eq!((r.code, r.stdout.trim()), (0, "99.0-tls"), "{}", r.stderr);

    // A server signed by another CA is refused under --tlsverify.
    let other = d.join("other");
    let r = wharf(
        &["version", "--format", fmt],
        &[
            ("DOCKER_HOST", &mtls_host),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", other.to_str().unwrap()),
        ],
        d,
    )
    .await;
    assert_ne!(r.code, 0, "an untrusted server was accepted: {}", r.stdout);
    assert!(r.stderr.contains("certificate"), "{}", r.stderr);

    // A missing CA file: docker's words, before any connection.
    let none = d.join("nothing-here");
    let r = wharf(
        &["version"],
        &[
            ("DOCKER_HOST", &mtls_host),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", none.to_str().unwrap()),
        ],
        d,
    )
    .await;
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        format!(
            "Failed to initialize: unable to resolve docker endpoint: open {}/ca.pem: no such file or directory",
            none.display()
        )
    );

    // --tls alone: encrypted, the server's certificate not checked. docker still reads the CA
    // file (here one that did not sign the server), and fails when it is missing.
    let tls_only = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_host = format!("tcp://{}", tls_only.local_addr().unwrap());
    tokio::spawn(serve(tls_only, Some(acceptor(d, false)), Arc::default()));
    let r = wharf(
        &["-H", &tls_host, "--tls", "version", "--format", fmt],
        &[("DOCKER_CERT_PATH", other.to_str().unwrap())],
        d,
    )
    .await;
    assert_eq!((r.code, r.stdout.trim()), (0, "99.0-tls"), "{}", r.stderr);
    let empty_home = tempfile::tempdir().unwrap();
    let r = wharf(
        &["-H", &tls_host, "--tls", "version"],
        &[],
        empty_home.path(),
    )
    .await;
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        format!(
            "Failed to initialize: unable to resolve docker endpoint: open {}/.docker/ca.pem: no such file or directory",
            empty_home.path().display()
        )
    );

    // TLS asked for against a plain-HTTP server: an error, never a plain request.
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_host = format!("tcp://{}", plain.local_addr().unwrap());
    let plain_seen = Arc::new(AtomicUsize::new(0));
    tokio::spawn(serve(plain, None, plain_seen.clone()));
    let r = wharf(
        &["-H", &plain_host, "--tls", "version"],
        &[("DOCKER_CERT_PATH", other.to_str().unwrap())],
        d,
    )
    .await;
    assert_ne!(r.code, 0);
    assert_eq!(
        plain_seen.load(Ordering::SeqCst),
        0,
        "a plain HTTP request reached the server"
    );
    // Without TLS the same server answers: the refusal above came from TLS, not the server.
    let r = wharf(
        &["-H", &plain_host, "version", "--format", fmt],
        &[],
        empty_home.path(),
    )
    .await;
    assert_eq!((r.code, r.stdout.trim()), (0, "99.0-tls"), "{}", r.stderr);
    assert!(mtls_seen.load(Ordering::SeqCst) >= 3);
}
