//! Async Engine API client for wharfd (and any Docker-compatible daemon).
//!
//! Owns: talking HTTP/1.1 to a daemon over a unix socket, TCP or TCP+TLS, API version
//! negotiation as the docker CLI does it (`HEAD /_ping`, then `/vX.Y` with
//! `min(server, 1.44)`), Docker's error bodies, stdcopy demultiplexing of logs and attach
//! streams, and hijacked (`101 UPGRADED`) attach connections.
//!
//! Must not touch: the engine, storage or runtime. Wire types come from `wharf-api`; this crate
//! only moves them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), wharf_client::ClientError> {
//! let client = wharf_client::Client::new("unix:///run/wharf.sock")?;
//! let version = client.version().await?;
//! println!("{}", version.api_version);
//! # Ok(()) }
//! ```

mod attach;
mod error;
mod events;
mod exec;
mod stream;
mod tls;
mod transport;

pub use attach::AttachOptions;
pub use error::ClientError;
pub use events::EventStream;
pub use exec::ExecInspect;
/// Re-exported so callers of `request` need no direct `http` dependency.
pub use http::Method;
pub use stream::{payload_of, AttachReader, AttachStream, AttachWriter, LogStream};
pub use tls::TlsOptions;
pub use transport::{Endpoint, RawResponse, StreamingResponse, Trace, TraceEvent};

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::OnceCell;
use wharf_api::container::{
    ContainerCreateRequest, ContainerCreateResponse, ContainerInspect, ContainerSummary,
    WaitResponse,
};
use wharf_api::image::{HistoryItem, ImageDeleteItem, ImageInspect, ImageSummary};
use wharf_api::stdcopy::StdStream;
use wharf_api::system::{Info, Version};
use wharf_api::version::{ApiVersion, API_VERSION};

/// The version a daemon is assumed to speak when its ping carries no `Api-Version`, as the
/// docker CLI assumes.
pub const FALLBACK_API_VERSION: ApiVersion = ApiVersion {
    major: 1,
    minor: 24,
};

/// What `/_ping` told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    pub api_version: Option<String>,
    pub os_type: Option<String>,
}

/// Query options of `GET /containers/{id}/logs`.
#[derive(Debug, Clone)]
pub struct LogsOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub timestamps: bool,
    /// `None` means all lines (`tail=all`).
    pub tail: Option<u64>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// docker's `--details`: the extra attributes the log driver keeps (`details=1`).
    pub details: bool,
    /// Set for a container created with `Tty: true`: its log stream is raw bytes, not stdcopy
    /// frames, and the daemon's content type does not say so (ENDPOINTS.md §3.2).
    pub tty: bool,
}

impl Default for LogsOptions {
    fn default() -> Self {
        LogsOptions {
            follow: false,
            stdout: true,
            stderr: true,
            timestamps: false,
            tail: None,
            since: None,
            until: None,
            details: false,
            tty: false,
        }
    }
}

/// Cheap to clone; clones share the negotiated version.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    transport: transport::Transport,
    version: OnceCell<ApiVersion>,
}

/// How to reach the daemon beyond its address.
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// TLS for `tcp://` endpoints; `None` is plain TCP.
    pub tls: Option<TlsOptions>,
    /// Called after every response head (docker's `-D` debug lines).
    pub trace: Option<Trace>,
    /// A fixed API version instead of negotiating (like `DOCKER_API_VERSION`).
    pub version: Option<ApiVersion>,
}

impl Client {
    /// A client for `unix:///path/to.sock`, `tcp://host:port` or `http://host:port`. No
    /// connection is made until the first call.
    pub fn new(host: &str) -> Result<Client, ClientError> {
        Client::with_options(host, ClientOptions::default())
    }

    /// A client that uses `version` and never pings to negotiate (like `DOCKER_API_VERSION`).
    pub fn with_version(host: &str, version: ApiVersion) -> Result<Client, ClientError> {
        Client::with_options(
            host,
            ClientOptions {
                version: Some(version),
                ..ClientOptions::default()
            },
        )
    }

    /// A client with TLS, a trace or a fixed version. TLS files are read here, so a missing
    /// CA or key fails before any connection.
    pub fn with_options(host: &str, opts: ClientOptions) -> Result<Client, ClientError> {
        let transport =
            transport::Transport::new(Endpoint::parse(host)?, opts.tls.as_ref(), opts.trace)?;
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                version: OnceCell::new_with(opts.version),
            }),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.transport.endpoint
    }

    /// True when calls go over TLS.
    pub fn uses_tls(&self) -> bool {
        self.inner.transport.uses_tls()
    }

    /// The version used in path prefixes; negotiates on first use.
    pub async fn api_version(&self) -> Result<ApiVersion, ClientError> {
        self.inner
            .version
            .get_or_try_init(|| async {
                let ping = self.ping().await?;
                let server = ping
                    .api_version
                    .as_deref()
                    .and_then(ApiVersion::parse)
                    .unwrap_or(FALLBACK_API_VERSION);
                Ok::<_, ClientError>(server.min(API_VERSION))
            })
            .await
            .copied()
    }

    /// `HEAD /_ping`, falling back to `GET /_ping` when HEAD is not routed (as the CLI does).
    pub async fn ping(&self) -> Result<Ping, ClientError> {
        let mut resp = self
            .inner
            .transport
            .send(Method::HEAD, "/_ping", transport::empty_body(), &[])
            .await?;
        if resp.status == StatusCode::NOT_FOUND || resp.status == StatusCode::METHOD_NOT_ALLOWED {
            resp = self
                .inner
                .transport
                .send(Method::GET, "/_ping", transport::empty_body(), &[])
                .await?;
        }
        let raw = resp.collect().await?;
        let raw = raw.error_for_status()?;
        let header = |name: &str| {
            raw.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(Ping {
            api_version: header("api-version"),
            os_type: header("ostype"),
        })
    }

    /// `path_and_query` with the negotiated `/vX.Y` prefix. `/_ping` and paths that already
    /// carry a version are left alone.
    pub async fn versioned(&self, path_and_query: &str) -> Result<String, ClientError> {
        if path_and_query.starts_with("/_ping") || has_version_prefix(path_and_query) {
            return Ok(path_and_query.to_string());
        }
        let v = self.api_version().await?;
        Ok(format!("/v{v}{path_and_query}"))
    }

    /// Any request; a JSON content type is sent when there is a body. Non-2xx statuses are
    /// returned, not turned into errors, so callers can test the daemon's error answers.
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<RawResponse, ClientError> {
        let path = self.versioned(path_and_query).await?;
        let (body, headers): (_, &[(&str, &str)]) = match body {
            Some(b) => (
                transport::full_body(b),
                &[("content-type", "application/json")],
            ),
            None => (transport::empty_body(), &[]),
        };
        self.inner
            .transport
            .send(method, &path, body, headers)
            .await?
            .collect()
            .await
    }

    /// The response head and a body to read as it arrives (`wait`, `logs?follow=1`, `events`).
    pub async fn request_streaming(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<transport::StreamingResponse, ClientError> {
        let path = self.versioned(path_and_query).await?;
        let (body, headers): (_, &[(&str, &str)]) = match body {
            Some(b) => (
                transport::full_body(b),
                &[("content-type", "application/json")],
            ),
            None => (transport::empty_body(), &[]),
        };
        self.inner
            .transport
            .send(method, &path, body, headers)
            .await
    }

    /// A bodyless request with extra headers (`X-Registry-Auth` on pull and push) whose
    /// answer is read as it arrives; a non-2xx answer is read whole and returned as
    /// `ClientError::Api`.
    pub async fn stream_with_headers(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<transport::StreamingResponse, ClientError> {
        let path = self.versioned(path_and_query).await?;
        let resp = self
            .inner
            .transport
            .send(method, &path, transport::empty_body(), headers)
            .await?;
        if !resp.status.is_success() {
            return Err(resp.collect().await?.into_api_error());
        }
        Ok(resp)
    }

    /// Any request with extra headers and a body of unknown length (sent chunked, as the CLI
    /// sends `cp`'s tar and `load`'s), or none. The answer is read as it arrives and is
    /// returned whatever its status, with its headers (`X-Docker-Container-Path-Stat`).
    pub async fn send_stream<S>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<S>,
        headers: &[(&str, &str)],
    ) -> Result<transport::StreamingResponse, ClientError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    {
        let path = self.versioned(path_and_query).await?;
        let body = match body {
            Some(s) => transport::stream_body(s),
            None => transport::empty_body(),
        };
        self.inner
            .transport
            .send(method, &path, body, headers)
            .await
    }

    /// `GET` and decode; non-2xx becomes `ClientError::Api`.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let raw = self.request(Method::GET, path, None).await?;
        raw.error_for_status()?.json(path)
    }

    /// `POST` a JSON body and decode the answer. An empty answer decodes as JSON `null`, so
    /// `T = ()` or `Option<_>` fits 204s.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|source| ClientError::Encode {
            path: path.to_string(),
            source,
        })?;
        let raw = self.request(Method::POST, path, Some(bytes)).await?;
        raw.error_for_status()?.json(path)
    }

    /// A request whose answer carries no body worth keeping; non-2xx is an error.
    async fn call(&self, method: Method, path: &str) -> Result<RawResponse, ClientError> {
        self.request(method, path, None).await?.error_for_status()
    }

    // ---- system ----

    pub async fn version(&self) -> Result<Version, ClientError> {
        self.get_json("/version").await
    }

    pub async fn info(&self) -> Result<Info, ClientError> {
        self.get_json("/info").await
    }

    // ---- containers ----

    pub async fn create_container(
        &self,
        name: Option<&str>,
        body: &ContainerCreateRequest,
    ) -> Result<ContainerCreateResponse, ClientError> {
        let path = match name {
            Some(n) => format!("/containers/create?name={}", encode(n)),
            None => "/containers/create".to_string(),
        };
        self.post_json(&path, body).await
    }

    /// 304 (already started) counts as success, as in the CLI.
    pub async fn start(&self, id: &str) -> Result<(), ClientError> {
        let path = format!("/containers/{}/start", encode(id));
        ok_or_not_modified(self.request(Method::POST, &path, None).await?)
    }

    /// 304 (already stopped) counts as success.
    pub async fn stop(&self, id: &str, timeout: Option<i64>) -> Result<(), ClientError> {
        let mut path = format!("/containers/{}/stop", encode(id));
        if let Some(t) = timeout {
            path.push_str(&format!("?t={t}"));
        }
        ok_or_not_modified(self.request(Method::POST, &path, None).await?)
    }

    pub async fn kill(&self, id: &str, signal: Option<&str>) -> Result<(), ClientError> {
        let mut path = format!("/containers/{}/kill", encode(id));
        if let Some(s) = signal {
            path.push_str(&format!("?signal={}", encode(s)));
        }
        self.call(Method::POST, &path).await.map(drop)
    }

    pub async fn restart(&self, id: &str, timeout: Option<i64>) -> Result<(), ClientError> {
        let mut path = format!("/containers/{}/restart", encode(id));
        if let Some(t) = timeout {
            path.push_str(&format!("?t={t}"));
        }
        self.call(Method::POST, &path).await.map(drop)
    }

    pub async fn remove(&self, id: &str, force: bool) -> Result<(), ClientError> {
        let mut path = format!("/containers/{}", encode(id));
        if force {
            path.push_str("?force=1");
        }
        self.call(Method::DELETE, &path).await.map(drop)
    }

    pub async fn inspect_container(&self, id: &str) -> Result<ContainerInspect, ClientError> {
        self.get_json(&format!("/containers/{}/json", encode(id)))
            .await
    }

    /// `filters_json` is Docker's URL filter JSON, e.g. `{"label":["a=b"]}`.
    pub async fn list_containers(
        &self,
        all: bool,
        filters_json: Option<&str>,
    ) -> Result<Vec<ContainerSummary>, ClientError> {
        let mut q = Vec::new();
        if all {
            q.push("all=1".to_string());
        }
        if let Some(f) = filters_json {
            q.push(format!("filters={}", encode(f)));
        }
        self.get_json(&with_query("/containers/json", &q)).await
    }

    pub async fn rename(&self, id: &str, new_name: &str) -> Result<(), ClientError> {
        let path = format!(
            "/containers/{}/rename?name={}",
            encode(id),
            encode(new_name)
        );
        self.call(Method::POST, &path).await.map(drop)
    }

    /// Blocks until the condition (`not-running` when `None`, `next-exit`, `removed`) holds.
    pub async fn wait(
        &self,
        id: &str,
        condition: Option<&str>,
    ) -> Result<WaitResponse, ClientError> {
        let mut path = format!("/containers/{}/wait", encode(id));
        if let Some(c) = condition {
            path.push_str(&format!("?condition={}", encode(c)));
        }
        let raw = self.request(Method::POST, &path, None).await?;
        raw.error_for_status()?.json(&path)
    }

    /// Starts a wait and returns once the daemon has sent the response head, i.e. once the
    /// wait is registered; await the returned future's body with `WaitHandle::result`.
    pub async fn wait_registered(
        &self,
        id: &str,
        condition: Option<&str>,
    ) -> Result<WaitHandle, ClientError> {
        let mut path = format!("/containers/{}/wait", encode(id));
        if let Some(c) = condition {
            path.push_str(&format!("?condition={}", encode(c)));
        }
        let resp = self.request_streaming(Method::POST, &path, None).await?;
        if !resp.status.is_success() {
            return Err(resp.collect().await?.into_api_error());
        }
        Ok(WaitHandle { path, resp })
    }

    /// Every log frame; returns when the daemon ends the stream (with `follow`, when the
    /// container stops).
    pub async fn logs(
        &self,
        id: &str,
        opts: &LogsOptions,
    ) -> Result<Vec<(StdStream, Vec<u8>)>, ClientError> {
        let mut stream = self.logs_stream(id, opts).await?;
        let mut out = Vec::new();
        while let Some(frame) = stream.next().await {
            out.push(frame?);
        }
        Ok(out)
    }

    /// Log frames as they arrive.
    pub async fn logs_stream(
        &self,
        id: &str,
        opts: &LogsOptions,
    ) -> Result<LogStream, ClientError> {
        let b = |v: bool| if v { "1" } else { "0" };
        let mut q = vec![
            format!("stdout={}", b(opts.stdout)),
            format!("stderr={}", b(opts.stderr)),
            format!(
                "tail={}",
                opts.tail
                    .map_or_else(|| "all".to_string(), |n| n.to_string())
            ),
        ];
        if opts.follow {
            q.push("follow=1".into());
        }
        if opts.timestamps {
            q.push("timestamps=1".into());
        }
        if let Some(s) = opts.since {
            q.push(format!("since={s}"));
        }
        if let Some(u) = opts.until {
            q.push(format!("until={u}"));
        }
        if opts.details {
            q.push("details=1".into());
        }
        let path = with_query(&format!("/containers/{}/logs", encode(id)), &q);
        let resp = self.request_streaming(Method::GET, &path, None).await?;
        if !resp.status.is_success() {
            return Err(resp.collect().await?.into_api_error());
        }
        Ok(LogStream::new(resp.body, opts.tty))
    }

    /// Hijacks a connection to the container's stdio (`stream=1&stdout=1&stderr=1`, plus
    /// `stdin=1` when asked). Without stdin the write side is shut at once, as the CLI does.
    pub async fn attach(&self, id: &str, stdin: bool) -> Result<AttachStream, ClientError> {
        let mut path = format!(
            "/containers/{}/attach?stream=1&stdout=1&stderr=1",
            encode(id)
        );
        if stdin {
            path.push_str("&stdin=1");
        }
        let path = self.versioned(&path).await?;
        let upgraded = self.inner.transport.upgrade(&path, None).await?;
        let mut s = AttachStream::new(upgraded);
        if !stdin {
            s.shutdown_write().await?;
        }
        Ok(s)
    }

    // ---- images ----

    /// `docker import`: the tar is sent chunked; returns the new image ID (`sha256:...`).
    pub async fn import_image(
        &self,
        tar: Vec<u8>,
        repo: &str,
        tag: Option<&str>,
    ) -> Result<String, ClientError> {
        self.import_image_with(tar, repo, tag, &[], None).await
    }

    /// `docker import` with `--change` instructions and a `--message` (commit message).
    pub async fn import_image_with(
        &self,
        tar: Vec<u8>,
        repo: &str,
        tag: Option<&str>,
        changes: &[String],
        message: Option<&str>,
    ) -> Result<String, ClientError> {
        self.import_image_on(tar, repo, tag, changes, message, None)
            .await
    }

    /// As `import_image_with`, for a platform (`--platform linux/arm64`).
    pub async fn import_image_on(
        &self,
        tar: Vec<u8>,
        repo: &str,
        tag: Option<&str>,
        changes: &[String],
        message: Option<&str>,
        platform: Option<&str>,
    ) -> Result<String, ClientError> {
        self.import(chunks(tar), repo, tag, changes, message, platform)
            .await
    }

    /// As `import_image`, with the tar produced by a stream.
    pub async fn import_image_stream<S>(
        &self,
        tar: S,
        repo: &str,
        tag: Option<&str>,
    ) -> Result<String, ClientError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static,
    {
        self.import(tar, repo, tag, &[], None, None).await
    }

    async fn import<S>(
        &self,
        tar: S,
        repo: &str,
        tag: Option<&str>,
        changes: &[String],
        message: Option<&str>,
        platform: Option<&str>,
    ) -> Result<String, ClientError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static,
    {
        let resp = self
            .import_streaming(tar, repo, tag, changes, message, platform)
            .await?;
        let path = resp.path.clone();
        let raw = resp.response.collect().await?;
        parse_import_stream(&raw.body, &path)
    }

    /// `docker import` whose answer, the daemon's JSON message stream, is read as it arrives
    /// (for a display of its own); a non-2xx answer is `ClientError::Api`.
    pub async fn import_streaming<S>(
        &self,
        tar: S,
        repo: &str,
        tag: Option<&str>,
        changes: &[String],
        message: Option<&str>,
        platform: Option<&str>,
    ) -> Result<ImportResponse, ClientError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static,
    {
        let mut q = vec!["fromSrc=-".to_string()];
        if !repo.is_empty() {
            q.push(format!("repo={}", encode(repo)));
        }
        if let Some(t) = tag {
            q.push(format!("tag={}", encode(t)));
        }
        for c in changes {
            q.push(format!("changes={}", encode(c)));
        }
        if let Some(m) = message {
            q.push(format!("message={}", encode(m)));
        }
        if let Some(p) = platform.filter(|p| !p.is_empty()) {
            q.push(format!("platform={}", encode(p)));
        }
        let path = self.versioned(&with_query("/images/create", &q)).await?;
        let response = self
            .inner
            .transport
            .send(
                Method::POST,
                &path,
                transport::stream_body(tar),
                &[("content-type", "text/plain")],
            )
            .await?;
        if !response.status.is_success() {
            return Err(response.collect().await?.into_api_error());
        }
        Ok(ImportResponse { path, response })
    }

    pub async fn list_images(&self, all: bool) -> Result<Vec<ImageSummary>, ClientError> {
        let path = if all {
            "/images/json?all=1"
        } else {
            "/images/json"
        };
        self.get_json(path).await
    }

    pub async fn inspect_image(&self, name: &str) -> Result<ImageInspect, ClientError> {
        self.get_json(&format!("/images/{}/json", encode_name(name)))
            .await
    }

    pub async fn tag_image(&self, name: &str, repo: &str, tag: &str) -> Result<(), ClientError> {
        let path = format!(
            "/images/{}/tag?repo={}&tag={}",
            encode_name(name),
            encode(repo),
            encode(tag)
        );
        self.call(Method::POST, &path).await.map(drop)
    }

    pub async fn remove_image(
        &self,
        name: &str,
        force: bool,
    ) -> Result<Vec<ImageDeleteItem>, ClientError> {
        let mut path = format!("/images/{}", encode_name(name));
        if force {
            path.push_str("?force=1");
        }
        let raw = self.call(Method::DELETE, &path).await?;
        raw.json(&path)
    }

    pub async fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>, ClientError> {
        self.get_json(&format!("/images/{}/history", encode_name(name)))
            .await
    }
}

/// A body held in memory as the stream of 32 KiB chunks a chunked upload sends (as the CLI
/// sends import and load bodies).
pub fn chunks(data: Vec<u8>) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync {
    futures_util::stream::iter(
        data.chunks(32 * 1024)
            .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )
}

/// The body type of a `send_stream` that sends none.
pub type NoBody = futures_util::stream::Empty<Result<Bytes, std::io::Error>>;

/// A blocking reader (a file, stdin, a pipe a tar is written into) as a body stream of
/// 32 KiB chunks; a thread of its own does the reads so the runtime never blocks on them.
pub fn read_body<R>(mut reader: R) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send
where
    R: std::io::Read + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let item = match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => Ok(Bytes::copy_from_slice(&buf[..n])),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            // The receiver is gone when the request ended early: stop reading.
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// An import whose answer is still arriving.
#[derive(Debug)]
pub struct ImportResponse {
    /// The request's path, for error messages.
    pub path: String,
    pub response: transport::StreamingResponse,
}

/// A `wait` whose response head has arrived.
#[derive(Debug)]
pub struct WaitHandle {
    path: String,
    resp: transport::StreamingResponse,
}

impl WaitHandle {
    /// Waits for the body: the exit status.
    pub async fn result(self) -> Result<WaitResponse, ClientError> {
        let raw = self.resp.collect().await?;
        raw.json(&self.path)
    }
}

fn ok_or_not_modified(raw: RawResponse) -> Result<(), ClientError> {
    if raw.status == StatusCode::NOT_MODIFIED {
        return Ok(());
    }
    raw.error_for_status().map(drop)
}

fn has_version_prefix(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/v") else {
        return false;
    };
    let seg = rest.split('/').next().unwrap_or("");
    ApiVersion::parse(seg).is_some()
}

/// `path?k=v&...`, or `path` alone when there is no query.
pub fn with_query<S: AsRef<str>>(path: &str, q: &[S]) -> String {
    if q.is_empty() {
        path.to_string()
    } else {
        let parts: Vec<&str> = q.iter().map(AsRef::as_ref).collect();
        format!("{path}?{}", parts.join("&"))
    }
}

/// Percent-encodes everything outside RFC 3986's unreserved set, for query values and single
/// path segments.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Image references keep `/` and `:` readable in the path (`/images/localhost:5000/x:v1/json`),
/// as the CLI sends them and as routers match them.
fn encode_name(s: &str) -> String {
    s.split('/')
        .map(|seg| encode(seg).replace("%3A", ":"))
        .collect::<Vec<_>>()
        .join("/")
}

/// The last `status` of an import's JSON message stream is the image ID; an `error` message
/// means the import failed although the HTTP status was 200.
fn parse_import_stream(body: &[u8], path: &str) -> Result<String, ClientError> {
    let mut id = None;
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let msg: serde_json::Value =
            serde_json::from_slice(line).map_err(|source| ClientError::Decode {
                path: path.to_string(),
                source,
            })?;
        if let Some(err) = msg.get("error") {
            let message = msg
                .pointer("/errorDetail/message")
                .and_then(|m| m.as_str())
                .or_else(|| err.as_str())
                .unwrap_or("unknown error")
                .to_string();
            return Err(ClientError::Stream { message });
        }
        if let Some(s) = msg.get("status").and_then(|s| s.as_str()) {
            id = Some(s.trim().to_string());
        }
    }
    id.ok_or_else(|| ClientError::Stream {
        message: "import answer carried no image ID".to_string(),
    })
}

/// Response headers as a small helper for callers that only want one value.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests;
