//! Talking to registries: one shared HTTP client (TLS with the system roots plus
//! `certs.d/<host>/`, plain HTTP for insecure registries and loopback, proxies from the
//! environment, docker.io mirrors), the token cache, and per-repository calls.

use crate::auth::Credentials;
use crate::digest::Digest;
use crate::error::{DistributionError, Result};
use crate::reference::Reference;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use std::path::PathBuf;

/// dockerd's registry flags, and where per-registry certificates live.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `--insecure-registry`: `host[:port]` or a CIDR; plain HTTP (or unverified TLS) is
    /// allowed for them. 127.0.0.0/8 is always insecure, as in Docker.
    pub insecure_registries: Vec<String>,
    /// `--registry-mirror`: URLs tried in order for docker.io before docker.io itself.
    pub mirrors: Vec<String>,
    /// `/etc/wharf/certs.d`: `<host[:port]>/{ca.crt, client.cert, client.key}`.
    pub certs_dir: PathBuf,
    pub user_agent: String,
}

/// The registry client of a daemon: cheap to clone, shared by every pull and push (its
/// connection pool and token cache are shared).
#[derive(Clone)]
pub struct Registries {
    _opts: std::sync::Arc<RegistryOptions>,
}

/// What a login did: Docker's `Status` text, and an identity token when the registry gave one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginOutcome {
    pub status: String,
    pub identity_token: Option<String>,
}

/// A manifest or index as fetched: its bytes are kept exactly, because its digest is theirs.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Bytes,
}

/// A blob's bytes as they arrive. A dropped connection is resumed with a Range request from
/// the byte reached (with backoff, a bounded number of times); the stream ends with an error
/// once that fails. It checks the length; the digest is the reader's to verify.
pub type BlobStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Progress of one blob, for progress bars: bytes so far (including resumed ones) of total.
pub type ProgressFn = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

impl Registries {
    pub fn new(opts: RegistryOptions) -> Result<Registries> {
        Ok(Registries {
            _opts: std::sync::Arc::new(opts),
        })
    }

    /// One repository of one registry, with the credentials of one client request.
    pub fn repository(&self, name: &Reference, creds: Credentials) -> Repository {
        Repository {
            _registries: self.clone(),
            _name: name.clone(),
            _creds: creds,
        }
    }

    /// `POST /auth`: checks the credentials against `server` (`GET /v2/` and, for token
    /// registries, a token request).
    pub async fn login(&self, server: &str, creds: &Credentials) -> Result<LoginOutcome> {
        let _ = (server, creds);
        Err(not_yet("login"))
    }
}

pub struct Repository {
    _registries: Registries,
    _name: Reference,
    _creds: Credentials,
}

fn not_yet(what: &str) -> DistributionError {
    DistributionError::Transport(format!("{what} is not written yet"))
}

impl Repository {
    /// `GET /v2/<name>/manifests/<tag or digest>` with Docker's Accept list. A digest
    /// reference is verified against the bytes.
    pub async fn manifest(&self, reference: &str) -> Result<Fetched> {
        let _ = reference;
        Err(not_yet("manifest"))
    }

    /// A small blob (an image config) whole, verified against `digest`.
    pub async fn blob_bytes(&self, digest: &Digest, max: u64) -> Result<Bytes> {
        let _ = (digest, max);
        Err(not_yet("blob_bytes"))
    }

    /// A layer's bytes from `offset` on (`offset > 0` resumes a partial ingest).
    pub fn blob_stream(&self, digest: &Digest, size: u64, offset: u64) -> BlobStream {
        let _ = (digest, size, offset);
        Box::pin(futures_util::stream::once(async {
            Err(std::io::Error::other("blob_stream is not written yet"))
        }))
    }

    /// `HEAD /v2/<name>/blobs/<digest>`: its size when the registry has it.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<Option<u64>> {
        let _ = digest;
        Err(not_yet("blob_exists"))
    }

    /// Cross-repository mount; false when the registry started an upload instead (the
    /// caller then uploads).
    pub async fn mount_blob(&self, digest: &Digest, from_repository: &str) -> Result<bool> {
        let _ = (digest, from_repository);
        Err(not_yet("mount_blob"))
    }

    /// Uploads a blob (monolithic when small, chunked otherwise); the registry checks the
    /// digest.
    pub async fn upload_blob(&self, digest: &Digest, size: u64, body: BlobStream) -> Result<()> {
        let _ = (digest, size, body);
        Err(not_yet("upload_blob"))
    }

    /// `PUT /v2/<name>/manifests/<reference>`; the digest the registry answers.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest> {
        let _ = (reference, media_type, bytes);
        Err(not_yet("put_manifest"))
    }
}
