//! Talking to registries: one shared HTTP client (TLS with the system roots plus
//! `certs.d/<host>/`, plain HTTP for insecure registries and loopback, proxies from the
//! environment, docker.io mirrors), the token cache, and per-repository calls.

mod blob;
mod request;
mod upload;

use crate::auth::challenge::{self, Challenge};
use crate::auth::Credentials;
use crate::digest::Digest;
use crate::endpoint::{self, Endpoint, Mirror, Security};
use crate::errcode::Context;
use crate::error::{DistributionError, Result};
use crate::manifest;
use crate::reference::Reference;
use crate::transport::proxy::Proxy;
use crate::transport::tls::TlsStore;
use crate::transport::Transport;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use http::{Method, StatusCode};
use request::{success, Call, Target};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

pub use crate::transport::Timeouts;

/// The largest manifest or index read (the OCI distribution spec asks registries to accept
/// at least 4 MiB; twice that leaves room).
pub const MAX_MANIFEST_SIZE: u64 = 8 << 20;

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
    inner: Arc<Inner>,
}

struct Inner {
    security: Arc<Security>,
    mirrors: Vec<Mirror>,
    transport: Transport,
    /// The last challenge each origin (`scheme://host:port`) answered with.
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: crate::auth::token::TokenCache,
    /// For insecure registries: the scheme that answered last, tried first next time.
    schemes: Mutex<HashMap<String, &'static str>>,
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

/// A manifest as a `HEAD` of its tag describes it: its digest, and the `Content-Type` as
/// served (possibly empty; [`manifest::media_type_of`] settles it with the bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub digest: Digest,
    pub media_type: String,
}

/// One registry as `/info`'s `RegistryConfig.IndexConfigs` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInfo {
    pub name: String,
    pub mirrors: Vec<String>,
    pub secure: bool,
    pub official: bool,
}

/// `/info`'s `RegistryConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub insecure_registry_cidrs: Vec<String>,
    pub index_configs: BTreeMap<String, IndexInfo>,
    pub mirrors: Vec<String>,
}

/// A blob's bytes as they arrive. A dropped connection is resumed with a Range request from
/// the byte reached (with backoff, a bounded number of times); the stream ends with an error
/// once that fails. It checks the length; the digest is the reader's to verify. An error
/// from the registry itself is an `io::Error` wrapping a [`DistributionError`]
/// (`e.get_ref()?.downcast_ref::<DistributionError>()`).
pub type BlobStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Progress of one blob, for progress bars: bytes so far (including resumed ones) of total.
pub type ProgressFn = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

impl Registries {
    pub fn new(opts: RegistryOptions) -> Result<Registries> {
        Registries::with_timeouts(opts, Timeouts::default())
    }

    /// As [`Registries::new`], with other timeouts. Proxies are read from the environment
    /// here, once.
    pub fn with_timeouts(opts: RegistryOptions, timeouts: Timeouts) -> Result<Registries> {
        let security = Arc::new(Security::new(&opts.insecure_registries)?);
        let mirrors = endpoint::parse_mirrors(&opts.mirrors)?;
        let tls = TlsStore::new(opts.certs_dir.clone(), security.clone())
            .map_err(|e| DistributionError::Invalid(format!("TLS settings: {e}")))?;
        let transport = Transport::new(
            Arc::new(tls),
            Arc::new(Proxy::from_env()),
            &opts.user_agent,
            timeouts,
        );
        Ok(Registries {
            inner: Arc::new(Inner {
                security,
                mirrors,
                transport,
                challenges: Mutex::new(HashMap::new()),
                tokens: Default::default(),
                schemes: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// One repository of one registry, with the credentials of one client request.
    pub fn repository(&self, name: &Reference, creds: Credentials) -> Repository {
        Repository {
            inner: Arc::new(RepoInner {
                registries: self.clone(),
                name: name.clone(),
                creds,
                pull_endpoints: OnceCell::new(),
                push_endpoints: OnceCell::new(),
                preferred: AtomicUsize::new(0),
                pushing: AtomicBool::new(false),
                uploads: Mutex::new(HashMap::new()),
                pinged: tokio::sync::Mutex::new(HashSet::new()),
            }),
        }
    }

    /// How dockerd describes a registry (`docker.io` and `index.docker.io` are Docker Hub).
    /// Names are not looked up here; a name whose address is in an insecure CIDR shows as
    /// secure, though a pull treats it as insecure.
    pub fn index_info(&self, domain: &str) -> IndexInfo {
        if endpoint::is_docker_hub(domain) {
            return IndexInfo {
                name: "docker.io".into(),
                mirrors: self.inner.mirrors.iter().map(|m| m.url.clone()).collect(),
                secure: true,
                official: true,
            };
        }
        IndexInfo {
            name: domain.to_owned(),
            mirrors: Vec::new(),
            secure: !self.inner.security.insecure_now(domain).unwrap_or(false),
            official: false,
        }
    }

    /// `/info`'s `RegistryConfig`.
    pub fn service_config(&self) -> ServiceConfig {
        let mut index_configs = BTreeMap::new();
        for h in self.inner.security.hosts() {
            index_configs.insert(
                h.clone(),
                IndexInfo {
                    name: h.clone(),
                    mirrors: Vec::new(),
                    secure: false,
                    official: false,
                },
            );
        }
        index_configs.insert("docker.io".to_owned(), self.index_info("docker.io"));
        ServiceConfig {
            insecure_registry_cidrs: self
                .inner
                .security
                .cidrs()
                .iter()
                .map(|c| c.to_string())
                .collect(),
            index_configs,
            mirrors: self.inner.mirrors.iter().map(|m| m.url.clone()).collect(),
        }
    }

    fn skip_scheme(&self, ep: &Endpoint) -> bool {
        self.inner
            .schemes
            .lock()
            .ok()
            .and_then(|m| m.get(&ep.authority).copied())
            .is_some_and(|s| s != ep.scheme && !ep.mirror)
    }

    fn remember_scheme(&self, ep: &Endpoint) {
        if let Ok(mut m) = self.inner.schemes.lock() {
            m.insert(ep.authority.clone(), ep.scheme);
        }
    }

    fn forget_scheme(&self, ep: &Endpoint) {
        if let Ok(mut m) = self.inner.schemes.lock() {
            if m.get(&ep.authority) == Some(&ep.scheme) {
                m.remove(&ep.authority);
            }
        }
    }

    /// `POST /auth`: checks the credentials against `server` (`GET /v2/` and, for token
    /// registries, a token request). `server` is what the client sent as `serveraddress`
    /// (empty for Docker Hub). Mirrors are never asked: they must not see Hub credentials.
    pub async fn login(&self, server: &str, creds: &Credentials) -> Result<LoginOutcome> {
        let host = login_host(server)?;
        let endpoints = endpoint::endpoints(&host, &[], false, &self.inner.security).await;
        let mut last = None;
        for ep in &endpoints {
            match self.login_at(ep, creds).await {
                Ok(outcome) => {
                    self.remember_scheme(ep);
                    return Ok(outcome);
                }
                // A token server's refusal is final; anything else tries the next endpoint
                // (plain HTTP after HTTPS), as dockerd does.
                Err(LoginError::Refused(e)) => return Err(e),
                Err(LoginError::Other(e)) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| DistributionError::Transport(format!("no endpoint for {host}"))))
    }

    async fn login_at(
        &self,
        ep: &Endpoint,
        creds: &Credentials,
    ) -> Result<LoginOutcome, LoginError> {
        let url = ep.url("/v2/");
        let ping = Call::new(Method::GET, Target::Url(url.clone()));
        // The ping, as dockerd's PingV2Registry: the challenge, learnt without credentials.
        let resp = self.send_plain(&url, &ping).await?;
        let status = resp.status();
        let chosen = challenge::parse_headers(resp.headers())
            .into_iter()
            .find(|c| c.scheme == "bearer")
            .or_else(|| {
                challenge::parse_headers(resp.headers())
                    .into_iter()
                    .find(|c| c.scheme == "basic")
            });
        self.drain(resp).await;
        if status == StatusCode::OK {
            return Ok(succeeded(None));
        }
        let mut identity_token = match creds {
            Credentials::IdentityToken(t) => Some(t.clone()),
            _ => None,
        };
        let mut retry = Call::new(Method::GET, Target::Url(url.clone()));
        match chosen {
            Some(c) if c.scheme == "bearer" => {
                let t = match creds {
                    Credentials::RegistryToken(t) => t.clone(),
                    _ => {
                        let t = self
                            .fetch_token_for_login(&c, &url, creds)
                            .await
                            .map_err(|e| match &e {
                                DistributionError::Request { cause, .. }
                                    if matches!(
                                        **cause,
                                        DistributionError::Registry { status: 401, .. }
                                    ) =>
                                {
                                    LoginError::Refused(e)
                                }
                                _ => LoginError::Other(e),
                            })?;
                        if let Some(r) = t.refresh_token {
                            identity_token = Some(r);
                        }
                        t.token
                    }
                };
                retry = retry.header(http::header::AUTHORIZATION, &format!("Bearer {t}"));
            }
            Some(_) => {
                let Some((u, p)) = creds.basic() else {
                    return Err(LoginError::Other(DistributionError::of_request(
                        request::op_prefix(&Method::GET, &url),
                        DistributionError::NoBasicAuthCredentials,
                    )));
                };
                retry = retry.header(
                    http::header::AUTHORIZATION,
                    &crate::auth::basic_header(u, p),
                );
            }
            None => {}
        }
        let resp = self.send_plain(&url, &retry).await?;
        let status = resp.status();
        self.drain(resp).await;
        if status == StatusCode::OK {
            return Ok(succeeded(identity_token));
        }
        Err(LoginError::Other(DistributionError::Registry {
            status: status.as_u16(),
            message: format!(
                "login attempt to {url} failed with status: {}",
                crate::errcode::status_text(status)
            ),
        }))
    }
}

enum LoginError {
    /// The token server refused the credentials: no other endpoint is tried.
    Refused(DistributionError),
    Other(DistributionError),
}

impl From<DistributionError> for LoginError {
    fn from(e: DistributionError) -> LoginError {
        LoginError::Other(e)
    }
}

fn succeeded(identity_token: Option<String>) -> LoginOutcome {
    LoginOutcome {
        status: "Login Succeeded".into(),
        identity_token,
    }
}

/// The registry host of a login's `serveraddress` (`https://index.docker.io/v1/` is Docker
/// Hub), as dockerd's `Service.Auth` reads it.
fn login_host(server: &str) -> Result<String> {
    if server.is_empty() {
        return Ok(endpoint::INDEX_HOSTNAME.into());
    }
    let lower = server.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &server[8..]
    } else if lower.starts_with("http://") {
        &server[7..]
    } else {
        server
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err(DistributionError::Invalid(format!(
            "unable to parse server address: {server}"
        )));
    }
    Ok(host.to_owned())
}

/// One repository of one registry, with one client's credentials. Cheap to clone; clones
/// share the endpoint that answered and the uploads a mount started.
#[derive(Clone)]
pub struct Repository {
    inner: Arc<RepoInner>,
}

struct RepoInner {
    registries: Registries,
    name: Reference,
    creds: Credentials,
    pull_endpoints: OnceCell<Vec<Endpoint>>,
    push_endpoints: OnceCell<Vec<Endpoint>>,
    /// The pull endpoint that last answered; later reads start there.
    preferred: AtomicUsize,
    /// Set by the first write: from then on tokens carry `pull,push`.
    pushing: AtomicBool,
    /// Uploads a mount attempt started (202), used by the next upload of that blob.
    uploads: Mutex<HashMap<Digest, String>>,
    /// The endpoints (their `/v2/` URLs) this repository has pinged.
    pinged: tokio::sync::Mutex<HashSet<String>>,
}

/// The `Docker-Content-Digest` a registry answered, when it is a digest.
pub(crate) fn content_digest(headers: &http::HeaderMap) -> Option<Digest> {
    headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Digest::parse(v.trim()).ok())
}

/// The hash of some bytes under `algorithm` (sha256 when it is not one Docker knows).
pub(crate) fn digest_of(algorithm: &str, bytes: &[u8]) -> Digest {
    let mut h = crate::client::blob::Hasher::new(algorithm);
    h.update(bytes);
    h.finish()
}

impl Repository {
    /// The repository's name as dockerd's messages show it (`busybox`, `localhost:5000/a`).
    fn familiar_name(&self) -> String {
        self.inner.name.familiar_name()
    }

    fn pull_ctx(&self) -> Context {
        Context::Pull {
            name: self.familiar_name(),
        }
    }

    async fn endpoints(&self, write: bool) -> Vec<Endpoint> {
        let inner = &self.inner;
        let reg = &inner.registries.inner;
        let cell = if write {
            &inner.push_endpoints
        } else {
            &inner.pull_endpoints
        };
        cell.get_or_init(|| {
            endpoint::endpoints(inner.name.domain(), &reg.mirrors, !write, &reg.security)
        })
        .await
        .clone()
    }

    /// `path` at the push endpoint in use (HTTP once an insecure registry answered so).
    async fn push_url(&self, path: &str) -> String {
        let eps = self.endpoints(true).await;
        let reg = &self.inner.registries;
        eps.iter()
            .find(|e| !reg.skip_scheme(e))
            .or(eps.first())
            .map(|e| e.url(path))
            .unwrap_or_default()
    }

    /// `path` at the pull endpoint that answered last.
    async fn current_url(&self, path: &str) -> String {
        let eps = self.endpoints(false).await;
        let i = self
            .inner
            .preferred
            .load(Ordering::Relaxed)
            .min(eps.len().saturating_sub(1));
        eps.get(i).map(|e| e.url(path)).unwrap_or_default()
    }

    fn api_path(&self, rest: &str) -> String {
        format!("/v2/{}/{rest}", self.inner.name.path())
    }

    fn mark_pushing(&self) {
        self.inner.pushing.store(true, Ordering::Relaxed);
    }

    /// A manifest or index by tag or digest, with Docker's Accept list. A tag is resolved
    /// as dockerd's tag service does: `HEAD` for its digest, then `GET` by that digest
    /// (`GET` by tag when the `HEAD` fails or names no digest, for the registry's own
    /// error). A digest is verified against the bytes, and the registry's
    /// `Docker-Content-Digest` must agree with them.
    pub async fn manifest(&self, reference: &str) -> Result<Fetched> {
        let pinned = Digest::parse(reference).ok();
        let ctx = self.manifest_ctx(reference, pinned.as_ref());
        if pinned.is_none() {
            if let Some(h) = self.head_manifest(reference, &ctx).await? {
                return self
                    .get_manifest(&h.digest.to_string(), Some(&h.digest), &ctx)
                    .await;
            }
        }
        self.get_manifest(reference, pinned.as_ref(), &ctx).await
    }

    /// What a `HEAD` of a tag's manifest answers (dockerd's tag service `Get`): its digest and
    /// media type, or nothing when the registry names no digest. A daemon that already holds
    /// that digest need not `GET` it, as dockerd's manifest store does not.
    pub async fn resolve_tag(&self, tag: &str) -> Result<Option<ManifestHead>> {
        let ctx = self.manifest_ctx(tag, None);
        self.head_manifest(tag, &ctx).await
    }

    fn manifest_ctx(&self, reference: &str, pinned: Option<&Digest>) -> Context {
        let familiar = match pinned {
            Some(d) => self
                .inner
                .name
                .clone()
                .trim()
                .with_digest(d.clone())
                .familiar_string(),
            None => match self.inner.name.clone().trim().with_tag(reference) {
                Ok(r) => r.familiar_string(),
                Err(_) => format!("{}:{reference}", self.familiar_name()),
            },
        };
        Context::Manifest {
            name: self.familiar_name(),
            reference: familiar,
        }
    }

    fn manifest_call(&self, method: Method, reference: &str) -> Call {
        let mut call = Call::new(
            method,
            Target::Path(self.api_path(&format!("manifests/{reference}"))),
        );
        for t in manifest::PULL_ACCEPT {
            call = call.header(http::header::ACCEPT, t);
        }
        call
    }

    /// The digest (and media type) a `HEAD` of a tag answers, when it answers one.
    async fn head_manifest(&self, tag: &str, ctx: &Context) -> Result<Option<ManifestHead>> {
        let call = self.manifest_call(Method::HEAD, tag);
        let resp = self.call(false, call, success, ctx).await?;
        let media_type = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let head = content_digest(resp.headers())
            .filter(|_| resp.status().is_success())
            .map(|digest| ManifestHead { digest, media_type });
        self.inner.registries.drain(resp).await;
        Ok(head)
    }

    async fn get_manifest(
        &self,
        reference: &str,
        pinned: Option<&Digest>,
        ctx: &Context,
    ) -> Result<Fetched> {
        let call = self.manifest_call(Method::GET, reference);
        let resp = self.call(false, call, success, ctx).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            let e = self.error_of(resp, ctx).await;
            // A 404 without an error body still means the manifest is not there.
            return Err(match (e, ctx) {
                (
                    DistributionError::Registry { status: 404, .. },
                    Context::Manifest { reference, .. },
                ) => DistributionError::ManifestUnknown {
                    reference: reference.clone(),
                    detail: "manifest unknown: manifest unknown".into(),
                },
                (e, _) => e,
            });
        }
        if !resp.status().is_success() {
            return Err(self.error_of(resp, ctx).await);
        }
        let content_type = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let header_digest = content_digest(resp.headers());
        let bytes = self
            .inner
            .registries
            .read_body(resp, MAX_MANIFEST_SIZE)
            .await
            .map_err(|e| {
                DistributionError::Transport(format!("reading manifest {reference}: {e}"))
            })?;
        let algorithm = pinned.map_or("sha256", |d| d.algorithm());
        let digest = digest_of(algorithm, &bytes);
        if let Some(want) = pinned {
            if *want != digest {
                return Err(DistributionError::DigestMismatch {
                    expected: want.clone(),
                    actual: digest.to_string(),
                });
            }
        }
        if let Some(h) = header_digest {
            if h.algorithm() == digest.algorithm() && h != digest {
                return Err(DistributionError::DigestMismatch {
                    expected: h,
                    actual: digest.to_string(),
                });
            }
        }
        let media_type = manifest::media_type_of(&content_type, &bytes);
        Ok(Fetched {
            media_type,
            digest,
            bytes,
        })
    }

    /// A small blob (an image config) whole, verified against `digest`; refused past `max`
    /// bytes.
    pub async fn blob_bytes(&self, digest: &Digest, max: u64) -> Result<Bytes> {
        blob::fetch_whole(self.clone(), digest.clone(), max).await
    }

    /// A layer's bytes from `offset` on (`offset > 0` resumes a partial ingest).
    pub fn blob_stream(&self, digest: &Digest, size: u64, offset: u64) -> BlobStream {
        blob::stream(self.clone(), digest.clone(), Some(size), offset, None)
    }

    /// `HEAD /v2/<name>/blobs/<digest>`: its size when the registry has it. Asked before a
    /// push, so with the push scope.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<Option<u64>> {
        self.mark_pushing();
        let call = Call::new(
            Method::HEAD,
            Target::Path(self.api_path(&format!("blobs/{digest}"))),
        );
        let resp = self.call(true, call, success, &Context::Push).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => {
                self.inner.registries.drain(resp).await;
                Ok(None)
            }
            s if s.is_success() => {
                let size = resp
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                self.inner.registries.drain(resp).await;
                Ok(Some(size))
            }
            _ => Err(self.error_of(resp, &Context::Push).await),
        }
    }

    /// Cross-repository mount; false when the registry started an upload instead (the
    /// caller then uploads, and [`Repository::upload_blob`] continues that upload).
    pub async fn mount_blob(&self, digest: &Digest, from_repository: &str) -> Result<bool> {
        upload::mount(self, digest, from_repository).await
    }

    /// Uploads a blob (monolithic when small, chunked otherwise); the registry checks the
    /// digest.
    pub async fn upload_blob(&self, digest: &Digest, size: u64, body: BlobStream) -> Result<()> {
        upload::upload(self, digest, size, body).await
    }

    /// `PUT /v2/<name>/manifests/<reference>`; the digest the registry answers.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest> {
        upload::put_manifest(self, reference, media_type, bytes).await
    }

    /// Every tag of the repository (`GET /v2/<name>/tags/list`, following `Link` pages), as
    /// `docker pull --all-tags` needs them.
    pub async fn tags(&self) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let ctx = self.pull_ctx();
        let mut tags = Vec::new();
        let mut target = Target::Path(self.api_path("tags/list"));
        // A bound on pages, so a registry whose Link loops cannot hold a pull forever.
        for _ in 0..10_000 {
            let resp = self
                .call(false, Call::new(Method::GET, target.clone()), success, &ctx)
                .await?;
            if !resp.status().is_success() {
                return Err(self.error_of(resp, &ctx).await);
            }
            let next = resp
                .headers()
                .get(http::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let body = self
                .inner
                .registries
                .read_body(resp, MAX_MANIFEST_SIZE)
                .await
                .map_err(|e| DistributionError::Transport(format!("reading tags: {e}")))?;
            let page: Page =
                serde_json::from_slice(&body).map_err(|e| DistributionError::Registry {
                    status: 200,
                    message: format!("invalid tags list: {e}"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(link) => {
                    let base = match &target {
                        Target::Url(u) => u.clone(),
                        Target::Path(p) => self.current_url(p).await,
                    };
                    target = Target::Url(request::resolve(&base, &link));
                }
                None => return Ok(tags),
            }
        }
        Ok(tags)
    }
}

/// The `rel="next"` URL of a `Link` header (`</v2/a/tags/list?last=x&n=100>; rel="next"`).
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| url.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_name_the_next_page() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(next_link(r#"<http://x/y>; rel="prev""#), None);
        assert_eq!(
            next_link(r#"<http://x/p>; rel="prev", <http://x/n>; rel=next"#).as_deref(),
            Some("http://x/n")
        );
    }

    #[test]
    fn login_hosts_read_like_dockerd() {
        assert_eq!(login_host("").unwrap(), "index.docker.io");
        assert_eq!(
            login_host("https://index.docker.io/v1/").unwrap(),
            "index.docker.io"
        );
        assert_eq!(login_host("127.0.0.1:5000").unwrap(), "127.0.0.1:5000");
        assert_eq!(
            login_host("http://reg.example:5000/x").unwrap(),
            "reg.example:5000"
        );
    }

    #[test]
    fn index_info_and_service_config() {
        let r = Registries::new(RegistryOptions {
            insecure_registries: vec!["myreg:5000".into(), "10.0.0.0/8".into()],
            mirrors: vec!["https://mirror.example".into()],
            ..Default::default()
        })
        .unwrap();
        let hub = r.index_info("docker.io");
        assert!(hub.official && hub.secure);
        assert_eq!(hub.mirrors, ["https://mirror.example/"]);
        assert!(!r.index_info("myreg:5000").secure);
        assert!(!r.index_info("127.0.0.1:5000").secure);
        assert!(r.index_info("other.example").secure);
        let sc = r.service_config();
        // dockerd's order: the flags', then its defaults.
        assert_eq!(
            sc.insecure_registry_cidrs,
            ["10.0.0.0/8", "::1/128", "127.0.0.0/8"]
        );
        assert_eq!(
            sc.index_configs["myreg:5000"],
            IndexInfo {
                name: "myreg:5000".into(),
                mirrors: vec![],
                secure: false,
                official: false
            }
        );
        assert_eq!(sc.index_configs["docker.io"], hub);
        assert_eq!(sc.index_configs.len(), 2);
        assert_eq!(sc.mirrors, ["https://mirror.example/"]);
    }
}
