//! certs.d against a TLS server on 127.0.0.1 with certificates openssl makes for the test.

use super::*;
use std::process::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by it.
fn make_pki(dir: &Path) {
    let days = ["-days", "2"];
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=wharf-test-ca",
            days[0],
            days[1],
        ],
    );
    // Extensions make them X.509 v3, the only version webpki accepts.
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for who in ["server", "client"] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{who}.key"),
                "-out",
                &format!("{who}.csr"),
                "-subj",
                &format!("/CN=wharf-test-{who}"),
            ],
        );
        let mut args = vec!["x509", "-req", "-in", &format!("{who}.csr")]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        args.extend(
            [
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
            ]
            .map(str::to_owned),
        );
        args.push(format!("{who}.pem"));
        args.extend(days.map(str::to_owned));
        args.push("-extfile".to_owned());
        args.push(format!("{who}.ext"));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl(dir, &refs);
    }
}

/// A server that wants a client certificate from the test CA and says "hello".
async fn tls_server(dir: &Path) -> std::net::SocketAddr {
    let chain = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(
        CertificateDer::pem_file_iter(dir.join("ca.crt"))
            .unwrap()
            .filter_map(|c| c.ok()),
    );
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(b"hello").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

async fn talk(store: &TlsStore, addr: std::net::SocketAddr) -> io::Result<String> {
    let authority = addr.to_string();
    let config = store.config_for(&authority).await?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(server_name("127.0.0.1")?, tcp)
        .await?;
    let mut got = String::new();
    tls.read_to_string(&mut got).await?;
    Ok(got)
}

#[tokio::test]
async fn certs_d_gives_the_ca_and_the_client_certificate() {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl is needed to make test certificates"
        );
        println!("SKIP certs_d_gives_the_ca_and_the_client_certificate: no openssl");
        return;
    }
    let pki = tempfile::Builder::new()
        .prefix("certs_d_gives_the_ca")
        .tempdir()
        .unwrap();
    make_pki(pki.path());
    let addr = tls_server(pki.path()).await;
    let certs_d = pki.path().join("certs.d");
    let host_dir = certs_d.join(addr.to_string());
    std::fs::create_dir_all(&host_dir).unwrap();
    let secure = Arc::new(Security::none());

    // No CA for the host yet: the server's certificate is not trusted.
    let store = TlsStore::new(certs_d.clone(), secure.clone()).unwrap();
    let e = talk(&store, addr).await.unwrap_err().to_string();
    assert!(e.contains("UnknownIssuer"), "{e}");

    // The CA, but no client certificate: the server refuses.
    std::fs::copy(pki.path().join("ca.crt"), host_dir.join("ca.crt")).unwrap();
    let store = TlsStore::new(certs_d.clone(), secure.clone()).unwrap();
    assert!(talk(&store, addr).await.is_err());

    // A certificate without its key is refused in dockerd's words.
    std::fs::copy(pki.path().join("client.pem"), host_dir.join("client.cert")).unwrap();
    let store = TlsStore::new(certs_d.clone(), secure.clone()).unwrap();
    let e = talk(&store, addr).await.unwrap_err().to_string();
    assert_eq!(
        e,
        "missing key client.key for client certificate client.cert. CA certificates must use the extension .crt"
    );

    std::fs::copy(pki.path().join("client.key"), host_dir.join("client.key")).unwrap();
    let store = TlsStore::new(certs_d.clone(), secure).unwrap();
    assert_eq!(talk(&store, addr).await.unwrap(), "hello");

    // Loopback is insecure by default: nothing is verified (the server still wants a client
    // certificate, which an insecure registry's settings do not present).
    let insecure = Arc::new(Security::new(&[]).unwrap());
    let store = TlsStore::new(certs_d, insecure).unwrap();
    let e = talk(&store, addr).await.unwrap_err().to_string();
    assert!(!e.contains("UnknownIssuer"), "{e}");
}
