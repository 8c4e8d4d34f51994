//! One HTTP/1.1 connection per request, over a unix socket, TCP or TCP+TLS.
//!
//! A connection whose response was read to the end goes back to a one-slot idle pool and
//! carries the next request (as Go's transport reuses keep-alive connections for the docker
//! CLI); everything else gets a fresh connection, so hijacked and long-lived streams (attach,
//! wait, logs -f) never block other calls.

use crate::error::ClientError;
use crate::tls::{Connector, TlsOptions};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};

pub(crate) type ReqBody = UnsyncBoxBody<Bytes, io::Error>;

pub(crate) fn empty_body() -> ReqBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn full_body(b: Vec<u8>) -> ReqBody {
    Full::new(Bytes::from(b))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body of unknown length, which hyper sends chunked, as the CLI sends import and load.
pub(crate) fn stream_body<S>(s: S) -> ReqBody
where
    S: Stream<Item = Result<Bytes, io::Error>> + Send + 'static,
{
    StreamBody::new(s.map(|r| r.map(Frame::data))).boxed_unsync()
}

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    /// `host:port`, plain HTTP.
    Tcp(String),
}

impl Endpoint {
    pub fn parse(host: &str) -> Result<Endpoint, ClientError> {
        let bad = |reason: &str| ClientError::InvalidHost {
            host: host.to_string(),
            reason: reason.to_string(),
        };
        if let Some(path) = host.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(bad("a unix socket path must be absolute (unix:///path)"));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        let rest = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"));
        if let Some(rest) = rest {
            let authority = rest.trim_end_matches('/');
            if authority.is_empty() || authority.contains('/') {
                return Err(bad("expected tcp://host:port"));
            }
            let has_port = authority
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !has_port {
                return Err(bad("a TCP host needs a port (tcp://host:port)"));
            }
            return Ok(Endpoint::Tcp(authority.to_string()));
        }
        if host.starts_with("https://") || host.starts_with("ssh://") {
            return Err(bad("TLS and ssh are not supported yet"));
        }
        Err(bad("expected unix:///path or tcp://host:port"))
    }

    pub(crate) fn display(&self) -> String {
        match self {
            Endpoint::Unix(p) => format!("unix://{}", p.display()),
            Endpoint::Tcp(a) => format!("tcp://{a}"),
        }
    }

    /// The Host header: the CLI sends a fixed name on unix sockets.
    fn host_header(&self) -> &str {
        match self {
            Endpoint::Unix(_) => "api.moby.localhost",
            Endpoint::Tcp(a) => a,
        }
    }
}

/// One finished exchange, for `Trace` (docker's `-D` prints these).
#[derive(Debug)]
pub struct TraceEvent<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    /// The response status, or `None` when the exchange failed.
    pub status: Option<u16>,
    pub elapsed: Duration,
}

/// Called after each response head (or failure).
pub type Trace = Arc<dyn Fn(&TraceEvent<'_>) + Send + Sync>;

type Sender = hyper::client::conn::http1::SendRequest<ReqBody>;

/// How long an idle connection is trusted to still be open: long enough for one CLI command's
/// calls, short enough that a long-lived client (tests, tools) reconnects after pauses in
/// which the daemon may have restarted.
const IDLE_REUSE: Duration = Duration::from_secs(5);

/// The idle connection, if any, and when it went idle.
type IdleSlot = Arc<std::sync::Mutex<Option<(Sender, Instant)>>>;

/// A connection that can go back to the pool once its response body is fully read.
pub(crate) struct Reuse {
    slot: IdleSlot,
    sender: Sender,
}

impl Reuse {
    fn release(self) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some((self.sender, Instant::now()));
        }
    }
}

impl std::fmt::Debug for Reuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reuse")
    }
}

/// The endpoint plus how to reach it: TLS, an optional trace and the idle connection.
#[derive(Clone)]
pub(crate) struct Transport {
    pub(crate) endpoint: Endpoint,
    tls: Option<Connector>,
    trace: Option<Trace>,
    idle: IdleSlot,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("endpoint", &self.endpoint)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Transport {
    /// TLS applies to TCP endpoints only: a unix socket is local and never encrypted, as with
    /// docker.
    pub(crate) fn new(
        endpoint: Endpoint,
        tls: Option<&TlsOptions>,
        trace: Option<Trace>,
    ) -> Result<Transport, ClientError> {
        let tls = match tls {
            Some(o) => Some(Connector::new(o)?),
            None => None,
        };
        Ok(Transport {
            endpoint,
            tls,
            trace,
            idle: IdleSlot::default(),
        })
    }

    pub(crate) fn uses_tls(&self) -> bool {
        self.tls.is_some() && matches!(self.endpoint, Endpoint::Tcp(_))
    }

    fn traced(&self, method: &Method, path: &str, status: Option<u16>, start: Instant) {
        if let Some(t) = &self.trace {
            t(&TraceEvent {
                method,
                path,
                status,
                elapsed: start.elapsed(),
            });
        }
    }

    async fn connect(
        &self,
    ) -> Result<hyper::client::conn::http1::SendRequest<ReqBody>, ClientError> {
        let connect_err = |source| ClientError::Connect {
            addr: self.endpoint.display(),
            source,
        };
        match &self.endpoint {
            Endpoint::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(connect_err)?;
                handshake(s).await
            }
            Endpoint::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a.as_str())
                    .await
                    .map_err(connect_err)?;
                // Small request/response exchanges: don't let Nagle add latency.
                let _ = s.set_nodelay(true);
                match &self.tls {
                    Some(tls) => {
                        let s = tls.connect(a, s).await.map_err(|source| ClientError::Tls {
                            addr: self.endpoint.display(),
                            source,
                        })?;
                        handshake(s).await
                    }
                    None => handshake(s).await,
                }
            }
        }
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        headers: &[(&str, &str)],
    ) -> Result<Request<ReqBody>, ClientError> {
        let mut b = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("host", self.endpoint.host_header())
            .header(
                "user-agent",
                concat!("wharf-client/", env!("CARGO_PKG_VERSION")),
            );
        let sized_empty = hyper::body::Body::size_hint(&body).exact() == Some(0);
        if sized_empty && matches!(method, Method::POST | Method::PUT) {
            // The CLI sends `Content-Length: 0` on body-less POSTs; some servers require it.
            b = b.header("content-length", "0");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(body).map_err(|source| ClientError::Request {
            path: path.to_string(),
            source,
        })
    }

    /// Sends a request and returns once the response head has arrived.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        headers: &[(&str, &str)],
    ) -> Result<StreamingResponse, ClientError> {
        let start = Instant::now();
        let req = self.build(method.clone(), path, body, headers)?;
        let resp = self.exchange(req).await;
        self.traced(
            &method,
            path,
            resp.as_ref().ok().map(|(r, _)| r.status().as_u16()),
            start,
        );
        let (resp, sender) = resp?;
        let (parts, body) = resp.into_parts();
        Ok(StreamingResponse {
            status: parts.status,
            headers: parts.headers,
            body,
            reuse: Some(Reuse {
                slot: self.idle.clone(),
                sender,
            }),
        })
    }

    /// The idle connection when it is recent and ready, else `None`.
    async fn checkout(&self) -> Option<Sender> {
        let idle = self.idle.lock().ok()?.take();
        let (mut sender, since) = idle?;
        if since.elapsed() > IDLE_REUSE || sender.is_closed() {
            return None;
        }
        sender.ready().await.ok()?;
        Some(sender)
    }

    /// Sends on the idle connection when there is one; a request the pooled connection could
    /// not even take (closed meanwhile) goes out again on a fresh connection. A request already
    /// written is never sent twice.
    async fn exchange(
        &self,
        req: Request<ReqBody>,
    ) -> Result<(hyper::Response<Incoming>, Sender), ClientError> {
        let req = match self.checkout().await {
            Some(mut sender) => match sender.try_send_request(req).await {
                Ok(resp) => return Ok((resp, sender)),
                Err(mut e) => match e.take_message() {
                    Some(req) => req,
                    None => return Err(e.into_error().into()),
                },
            },
            None => req,
        };
        let mut sender = self.connect().await?;
        let resp = sender.send_request(req).await?;
        Ok((resp, sender))
    }

    /// `POST path` with `Connection: Upgrade` / `Upgrade: tcp`; returns the raw duplex stream
    /// after `101`. A JSON body (exec start) is sent as `application/json`, as the CLI does.
    pub(crate) async fn upgrade(
        &self,
        path: &str,
        json: Option<Vec<u8>>,
    ) -> Result<Upgraded, ClientError> {
        let (body, content_type) = match json {
            Some(b) => (full_body(b), "application/json"),
            None => (empty_body(), "text/plain"),
        };
        let req = self.build(
            Method::POST,
            path,
            body,
            &[
                ("connection", "Upgrade"),
                ("upgrade", "tcp"),
                ("content-type", content_type),
            ],
        )?;
        let start = Instant::now();
        let resp = async {
            let mut sender = self.connect().await?;
            Ok::<_, ClientError>(sender.send_request(req).await?)
        }
        .await;
        self.traced(
            &Method::POST,
            path,
            resp.as_ref().ok().map(|r| r.status().as_u16()),
            start,
        );
        let resp = resp?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            let status = resp.status();
            let (parts, body) = resp.into_parts();
            let raw = StreamingResponse {
                status,
                headers: parts.headers,
                body,
                reuse: None,
            }
            .collect()
            .await?;
            if !status.is_success() {
                return Err(raw.into_api_error());
            }
            return Err(ClientError::NotUpgraded {
                path: path.to_string(),
                status: status.as_u16(),
            });
        }
        Ok(hyper::upgrade::on(resp).await?)
    }
}

async fn handshake<S>(s: S) -> Result<hyper::client::conn::http1::SendRequest<ReqBody>, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s)).await?;
    tokio::spawn(async move {
        // Any connection error also fails the pending request, which reports it to the
        // caller; nothing more to do here.
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

/// A response whose body has not been read yet.
#[derive(Debug)]
pub struct StreamingResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Incoming,
    /// The connection, returned to the idle pool once the body has been read to the end.
    pub(crate) reuse: Option<Reuse>,
}

impl StreamingResponse {
    /// Reads the whole body; the connection is then free for the next request.
    pub async fn collect(self) -> Result<RawResponse, ClientError> {
        let body = self.body.collect().await?.to_bytes().to_vec();
        if let Some(r) = self.reuse {
            r.release();
        }
        Ok(RawResponse {
            status: self.status,
            headers: self.headers,
            body,
        })
    }

    /// The next body chunk, `None` at the end.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, ClientError>> {
        next_data(&mut self.body).await
    }
}

pub(crate) async fn next_data(body: &mut Incoming) -> Option<Result<Bytes, ClientError>> {
    loop {
        match body.frame().await? {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    return Some(Ok(data));
                }
                // Trailers carry nothing we use.
            }
            Err(e) => return Some(Err(e.into())),
        }
    }
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Decodes the body; an empty body is read as `null`.
    pub fn json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &self.body
        };
        serde_json::from_slice(body).map_err(|source| ClientError::Decode {
            path: path.to_string(),
            source,
        })
    }

    /// `Ok(self)` for 1xx/2xx, else `ClientError::Api` with the daemon's message.
    pub fn error_for_status(self) -> Result<RawResponse, ClientError> {
        if self.status.is_success() || self.status.is_informational() {
            Ok(self)
        } else {
            Err(self.into_api_error())
        }
    }

    /// The daemon's `{"message"}`, or the plain-text body (version errors are text/plain), or
    /// the status reason when there is no body.
    pub fn into_api_error(self) -> ClientError {
        let status = self.status.as_u16();
        let from_json = serde_json::from_slice::<wharf_api::ErrorBody>(&self.body)
            .ok()
            .map(|b| b.message);
        let message = from_json.unwrap_or_else(|| {
            let t = self.text().trim().to_string();
            if t.is_empty() {
                self.status
                    .canonical_reason()
                    .unwrap_or("unknown error")
                    .to_string()
            } else {
                t
            }
        });
        ClientError::Api { status, message }
    }
}
