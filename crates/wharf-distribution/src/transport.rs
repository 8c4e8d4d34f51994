//! The one HTTP/1.1 client every registry call goes through: a pooled hyper client whose
//! connector dials TCP (through an HTTP proxy when the environment names one: CONNECT for
//! https, absolute-form requests for http), then TLS with the registry's settings; timeouts
//! on connecting, on the TLS handshake, on a response that does not come and on a body that
//! stalls. Errors read as Go's (`dial tcp 127.0.0.1:5000: connect: connection refused`).

pub(crate) mod proxy;
pub(crate) mod tls;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use self::proxy::Proxy;
use self::tls::TlsStore;

/// How long to wait before a registry call gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect (Go's dialer: 30 s).
    pub connect: Duration,
    /// The TLS handshake (Go's transport: 10 s).
    pub tls_handshake: Duration,
    /// From a request sent to its response's head. Generous: a registry completing an upload
    /// hashes the whole blob before it answers.
    pub response: Duration,
    /// Between two pieces of a body: a connection that stalls this long is dropped (and a
    /// blob download resumed).
    pub stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(30),
            tls_handshake: Duration::from_secs(10),
            response: Duration::from_secs(300),
            stall: Duration::from_secs(60),
        }
    }
}

pub(crate) type Body = Full<Bytes>;

/// A connection: plain TCP (perhaps to a proxy that forwards absolute-form requests) or TLS.
pub(crate) enum Stream {
    Plain { tcp: TcpStream, proxied: bool },
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Plain { proxied, .. } => Connected::new().proxy(*proxied),
            Stream::Tls(_) => Connected::new(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain { tcp, .. } => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain { tcp, .. } => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain { tcp, .. } => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain { tcp, .. } => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Connector {
    http: HttpConnector,
    tls: Arc<TlsStore>,
    proxy: Arc<Proxy>,
    handshake: Duration,
}

/// Go's words for a failed dial (`dial tcp host:port: connect: connection refused`).
fn dial_error(authority: &str, e: Box<dyn std::error::Error + Send + Sync>) -> io::Error {
    let mut io_kind = None;
    let mut deepest = e.to_string();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
    while let Some(err) = cur {
        if let Some(ioe) = err.downcast_ref::<io::Error>() {
            io_kind = Some(ioe.kind());
        }
        deepest = err.to_string();
        cur = err.source();
    }
    let msg = match io_kind {
        Some(io::ErrorKind::ConnectionRefused) => {
            format!("dial tcp {authority}: connect: connection refused")
        }
        Some(io::ErrorKind::TimedOut) => format!("dial tcp {authority}: i/o timeout"),
        _ if deepest.contains("lookup") || deepest.contains("Name or service not known") => {
            format!(
                "dial tcp: lookup {}: no such host",
                crate::endpoint::host_of(authority)
            )
        }
        _ => format!("dial tcp {authority}: {deepest}"),
    };
    io::Error::new(io_kind.unwrap_or(io::ErrorKind::Other), msg)
}

fn authority_of(uri: &Uri) -> io::Result<String> {
    let host = uri
        .host()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "missing host in URL"))?;
    Ok(match uri.port_u16() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    })
}

impl Connector {
    async fn connect(mut self, dst: Uri) -> io::Result<Stream> {
        use tower_service::Service;
        let https = dst.scheme_str() == Some("https");
        let authority = authority_of(&dst)?;
        let tcp = match self.proxy.intercept(&dst) {
            None => self
                .http
                .call(dst.clone())
                .await
                .map_err(|e| dial_error(&authority, e.into()))?
                .into_inner(),
            Some(via) => {
                if via.uri().scheme_str() != Some("http") {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!(
                            "proxyconnect: proxy scheme of {} is not supported (only http:// \
                             proxies)",
                            via.uri()
                        ),
                    ));
                }
                let proxy_authority = authority_of(via.uri())?;
                if https {
                    let mut tunnel = Tunnel::new(via.uri().clone(), self.http.clone());
                    if let Some(auth) = via.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    tunnel
                        .call(dst.clone())
                        .await
                        .map_err(|e| {
                            io::Error::other(format!(
                                "proxyconnect tcp {proxy_authority}: {}",
                                dial_error(&proxy_authority, Box::new(e))
                            ))
                        })?
                        .into_inner()
                } else {
                    let tcp = self
                        .http
                        .call(via.uri().clone())
                        .await
                        .map_err(|e| dial_error(&proxy_authority, e.into()))?
                        .into_inner();
                    return Ok(Stream::Plain { tcp, proxied: true });
                }
            }
        };
        if !https {
            return Ok(Stream::Plain {
                tcp,
                proxied: false,
            });
        }
        let config = self.tls.config_for(&authority).await?;
        let name = tls::server_name(dst.host().unwrap_or_default())?;
        let handshake = tokio_rustls::TlsConnector::from(config).connect(name, tcp);
        match tokio::time::timeout(self.handshake, handshake).await {
            Ok(Ok(t)) => Ok(Stream::Tls(Box::new(t))),
            Ok(Err(e)) => Err(tls_words(e)),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "net/http: TLS handshake timeout",
            )),
        }
    }
}

/// A plain-HTTP server answering a TLS hello reads to rustls as a corrupt record; Go says it
/// plainly.
fn tls_words(e: io::Error) -> io::Error {
    let text = e.to_string();
    if text.contains("InvalidContentType") || text.contains("corrupt message") {
        io::Error::new(e.kind(), "http: server gave HTTP response to HTTPS client")
    } else {
        io::Error::new(e.kind(), format!("tls: {text}"))
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<Stream>>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect(dst).await.map(TokioIo::new) })
    }
}

/// Why a request got no response: Go's words for the cause, without the `Get "url":` that
/// the caller adds.
#[derive(Debug, Clone)]
pub(crate) struct SendError(pub String);

pub(crate) struct Transport {
    client: Client<Connector, Body>,
    proxy: Arc<Proxy>,
    user_agent: Option<HeaderValue>,
    pub timeouts: Timeouts,
}

/// The deepest cause of an error, which is the one that says what happened.
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        text = err.to_string();
        cur = err.source();
    }
    text
}

impl Transport {
    pub fn new(
        tls: Arc<TlsStore>,
        proxy: Arc<Proxy>,
        user_agent: &str,
        timeouts: Timeouts,
    ) -> Transport {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeouts.connect));
        http.set_keepalive(Some(Duration::from_secs(30)));
        let connector = Connector {
            http,
            tls,
            proxy: proxy.clone(),
            handshake: timeouts.tls_handshake,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Transport {
            client,
            proxy,
            user_agent: HeaderValue::from_str(user_agent)
                .ok()
                .filter(|_| !user_agent.is_empty()),
            timeouts,
        }
    }

    /// Sends one request (no redirects, no authentication) and waits for its head.
    pub async fn send(&self, mut req: Request<Body>) -> Result<Response<Incoming>, SendError> {
        if let Some(ua) = &self.user_agent {
            req.headers_mut()
                .entry(http::header::USER_AGENT)
                .or_insert_with(|| ua.clone());
        }
        if req.uri().scheme_str() == Some("http") {
            if let Some(auth) = self
                .proxy
                .intercept(req.uri())
                .and_then(|i| i.basic_auth().cloned())
            {
                req.headers_mut()
                    .insert(http::header::PROXY_AUTHORIZATION, auth);
            }
        }
        match tokio::time::timeout(self.timeouts.response, self.client.request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(SendError(root_cause(&e))),
            Err(_) => Err(SendError(
                "net/http: timeout awaiting response headers".into(),
            )),
        }
    }

    /// The next piece of a body, or an error when the connection breaks or stalls.
    pub async fn next_chunk(&self, body: &mut Incoming) -> io::Result<Option<Bytes>> {
        loop {
            let frame = tokio::time::timeout(self.timeouts.stall, body.frame())
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no data received for {}s: connection stalled",
                            self.timeouts.stall.as_secs()
                        ),
                    )
                })?;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, root_cause(&e)))
                }
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                }
            }
        }
    }

    /// A whole body, refused past `max` bytes.
    pub async fn read_body(&self, mut body: Incoming, max: u64) -> io::Result<Bytes> {
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = self.next_chunk(&mut body).await? {
            if (buf.len() + chunk.len()) as u64 > max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("response body is larger than {max} bytes"),
                ));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }
}
