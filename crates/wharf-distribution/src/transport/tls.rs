//! TLS settings per registry, as dockerd's `newTLSConfig`: the system roots; for a secure
//! registry also `certs.d/<host[:port]>/` (`*.crt` added as CAs, one `*.cert`/`*.key` pair
//! presented as client certificate); for an insecure one no verification at all.

use crate::endpoint::Security;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Where Go's `SystemCertPool` looks on Linux, in its order.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

// ring's provider is deprecated only for lacking post-quantum key exchange, which needs
// aws-lc-rs (a cmake/NASM build); classic ECDHE is what dockerd's Go TLS offers too.
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// The system's trusted roots (`SSL_CERT_FILE` first, as Go reads it); none found is an
/// empty store, so only certs.d CAs verify.
pub(crate) fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let named = std::env::var("SSL_CERT_FILE")
        .ok()
        .filter(|v| !v.is_empty());
    let candidates: Vec<String> = match named {
        Some(f) => vec![f],
        None => SYSTEM_BUNDLES.iter().map(|s| (*s).to_owned()).collect(),
    };
    for file in candidates {
        let Ok(iter) = CertificateDer::pem_file_iter(&file) else {
            continue;
        };
        let certs: Vec<CertificateDer<'static>> = iter.filter_map(|c| c.ok()).collect();
        if !certs.is_empty() {
            roots.add_parsable_certificates(certs);
            break;
        }
    }
    roots
}

fn builder() -> io::Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)
}

struct Loaded {
    stamp: Option<SystemTime>,
    config: Arc<ClientConfig>,
}

pub(crate) struct TlsStore {
    certs_dir: PathBuf,
    security: Arc<Security>,
    roots: Arc<RootCertStore>,
    verified: Arc<ClientConfig>,
    unverified: Arc<ClientConfig>,
    /// certs.d configurations, read again when the host's directory changes.
    per_host: Mutex<HashMap<String, Loaded>>,
}

impl TlsStore {
    pub fn new(certs_dir: PathBuf, security: Arc<Security>) -> io::Result<TlsStore> {
        let roots = Arc::new(system_roots());
        let verified = Arc::new(
            builder()?
                .with_root_certificates(roots.clone())
                .with_no_client_auth(),
        );
        let unverified = Arc::new(
            builder()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
                .with_no_client_auth(),
        );
        Ok(TlsStore {
            certs_dir,
            security,
            roots,
            verified,
            unverified,
            per_host: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration for a connection to `authority` (`host[:port]` as in the URL).
    pub async fn config_for(&self, authority: &str) -> io::Result<Arc<ClientConfig>> {
        if self.security.is_insecure(authority).await {
            return Ok(self.unverified.clone());
        }
        if self.certs_dir.as_os_str().is_empty() {
            return Ok(self.verified.clone());
        }
        let dir = self.certs_dir.join(authority);
        let stamp = std::fs::metadata(&dir).and_then(|m| m.modified()).ok();
        if stamp.is_none() {
            return Ok(self.verified.clone());
        }
        if let Ok(cache) = self.per_host.lock() {
            if let Some(l) = cache.get(authority) {
                if l.stamp == stamp {
                    return Ok(l.config.clone());
                }
            }
        }
        let config = Arc::new(self.read_dir(&dir)?);
        if let Ok(mut cache) = self.per_host.lock() {
            cache.insert(
                authority.to_owned(),
                Loaded {
                    stamp,
                    config: config.clone(),
                },
            );
        }
        Ok(config)
    }

    /// dockerd's `ReadCertsDirectory`.
    fn read_dir(&self, dir: &Path) -> io::Result<ClientConfig> {
        let mut names: Vec<String> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        names.sort();
        let mut roots = (*self.roots).clone();
        let mut pairs = Vec::new();
        for name in &names {
            let path = dir.join(name);
            if name.ends_with(".crt") {
                let certs = CertificateDer::pem_file_iter(&path)
                    .map_err(|e| pem_error(&path, e))?
                    .filter_map(|c| c.ok());
                roots.add_parsable_certificates(certs);
            } else if let Some(stem) = name.strip_suffix(".cert") {
                let key = format!("{stem}.key");
                if !names.contains(&key) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "missing key {key} for client certificate {name}. CA certificates \
                             must use the extension .crt"
                        ),
                    ));
                }
                pairs.push((path, dir.join(key)));
            } else if let Some(stem) = name.strip_suffix(".key") {
                let cert = format!("{stem}.cert");
                if !names.contains(&cert) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("missing client certificate {cert} for key {name}"),
                    ));
                }
            }
        }
        let with_roots = builder()?.with_root_certificates(roots);
        match pairs.as_slice() {
            [] => Ok(with_roots.with_no_client_auth()),
            [(cert, key)] => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| pem_error(cert, e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| pem_error(cert, e))?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
                with_roots
                    .with_client_auth_cert(chain, key)
                    .map_err(tls_error)
            }
            // Go offers the server whichever pair fits its CA list; Wharf presents one, so
            // more are refused rather than some silently never used.
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: more than one client certificate (*.cert); Wharf presents only one",
                    dir.display()
                ),
            )),
        }
    }
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> io::Error {
    match e {
        rustls::pki_types::pem::Error::Io(io) => {
            io::Error::new(io.kind(), format!("open {}: {io}", path.display()))
        }
        other => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {other:?}", path.display()),
        ),
    }
}

/// The TLS server name for a host (an address is matched against the certificate's IP SANs).
pub(crate) fn server_name(host: &str) -> io::Result<ServerName<'static>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// An insecure registry: dockerd's `InsecureSkipVerify`. Signatures are still checked, so
/// the handshake proves the peer holds the key of the certificate it showed.
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

#[cfg(test)]
mod tests;
