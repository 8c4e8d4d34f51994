//! TLS to a `tcp://` daemon, with docker's two modes: `--tlsverify` (verify the server against
//! a CA file, present a client certificate when one is given) and `--tls` alone (encrypt, do
//! not verify the server).

use crate::error::ClientError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// What the caller asks for; paths are read once, when the client is built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Verify the server's certificate against `ca` (docker's `--tlsverify`).
    pub verify: bool,
    /// CA bundle (PEM); required when `verify`.
    pub ca: Option<PathBuf>,
    /// Client certificate and key (PEM), presented when both are given.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// A ready TLS client configuration.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: TlsConnector,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

fn tls_err(path: &Path, reason: impl std::fmt::Display) -> ClientError {
    ClientError::TlsConfig {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Go's words for a file that cannot be read (`open /x/ca.pem: no such file or directory`).
fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> ClientError {
    match e {
        rustls::pki_types::pem::Error::Io(io) => {
            let why = match io.kind() {
                std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                _ => io.to_string(),
            };
            tls_err(path, format!("open {}: {why}", path.display()))
        }
        other => tls_err(path, format!("{other:?}")),
    }
}

// ring's provider is deprecated only for lacking post-quantum key exchange, which needs
// aws-lc-rs (a cmake/NASM build); classic ECDHE is what docker's Go TLS offers a daemon too.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Connector {
    pub(crate) fn new(opts: &TlsOptions) -> Result<Connector, ClientError> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(Path::new(""), e))?;
        // docker reads the CA file whenever one is named, even when it will not verify with it
        // (`--tls` alone): a missing file is an error either way.
        let ca_certs = match opts.ca.as_deref() {
            Some(ca) => {
                let certs = CertificateDer::pem_file_iter(ca)
                    .map_err(|e| pem_error(ca, e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| pem_error(ca, e))?;
                Some((ca, certs))
            }
            None => None,
        };
        let builder = if opts.verify {
            let (ca, certs) = ca_certs.ok_or_else(|| {
                tls_err(Path::new("ca.pem"), "no CA file given to verify the daemon")
            })?;
            if certs.is_empty() {
                return Err(tls_err(ca, "failed to append certificates from PEM file"));
            }
            let mut roots = rustls::RootCertStore::empty();
            for c in certs {
                roots.add(c).map_err(|e| tls_err(ca, e))?;
            }
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
        };
        let config = match (&opts.cert, &opts.key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| pem_error(cert, e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| pem_error(cert, e))?;
                let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| tls_err(cert, e))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Connector {
            inner: TlsConnector::from(Arc::new(config)),
        })
    }

    /// The TLS handshake over a connected socket; `authority` is `host:port`.
    pub(crate) async fn connect(
        &self,
        authority: &str,
        tcp: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let host = match authority.rsplit_once(':') {
            Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
            None => authority,
        };
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        self.inner.connect(name, tcp).await
    }
}

/// `--tls` without `--tlsverify`: docker's `InsecureSkipVerify`. Signatures are still checked,
/// so the handshake proves the peer holds the key of the certificate it showed.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
