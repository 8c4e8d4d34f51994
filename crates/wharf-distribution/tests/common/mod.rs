//! A small registry served in-process on 127.0.0.1 for the client's tests: manifests, blobs
//! (with Range), tags pages, basic or bearer auth with its own token endpoint, and faults on
//! demand (a connection dropped or stalled mid-blob, a registry that ignores Range, wrong
//! bytes, blobs redirected to a second "storage" server).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, Method, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use sha2::Digest as _;
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

pub type Body = BoxBody<Bytes, io::Error>;

pub struct Req {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub type Handler = Arc<dyn Fn(Req) -> Response<Body> + Send + Sync>;

/// A server on 127.0.0.1; stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve(handler: Handler) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let handler = handler.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let r = Req {
                                method: parts.method,
                                uri: parts.uri,
                                headers: parts.headers,
                                body,
                            };
                            Ok::<_, io::Error>(handler(r))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Server { addr, task }
}

pub fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()).map_err(|e| match e {}).boxed())
        .unwrap()
}

pub fn json(status: StatusCode, body: &str) -> Response<Body> {
    let mut r = full(status, body.to_owned());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    r
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Deterministic bytes that differ from one seed to another.
pub fn bytes_of(seed: u64, len: usize) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthMode {
    None,
    Basic {
        user: String,
        pass: String,
    },
    Bearer {
        user: String,
        pass: String,
        refresh: String,
    },
}

/// One request as the fake registry saw it.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
    pub user_agent: Option<String>,
    pub accept: Vec<String>,
    /// Body bytes the server meant to send (before any fault cut it short).
    pub sent: u64,
    pub form: String,
}

pub struct State {
    pub addr: Option<SocketAddr>,
    pub blobs: HashMap<String, Bytes>,
    /// By tag and by digest: (media type, bytes).
    pub manifests: HashMap<String, (String, Bytes)>,
    pub tags: Vec<String>,
    /// Tags per page (a `Link` to the next), or all at once.
    pub tags_page: Option<usize>,
    pub auth: AuthMode,
    pub log: Vec<Logged>,
    pub storage_log: Vec<Logged>,
    pub tokens_issued: usize,
    pub valid_tokens: HashSet<String>,
    pub scopes_asked: Vec<Vec<String>>,
    /// digest → drop the connection after this many bytes of the blob (once).
    pub drop_once: HashMap<String, u64>,
    /// digest → stall (send nothing more) after this many bytes (once).
    pub stall_once: HashMap<String, u64>,
    pub ignore_range: bool,
    /// Digests served with a flipped byte.
    pub corrupt: HashSet<String>,
    /// Blob GETs answered with a redirect to this base URL.
    pub redirect_blobs_to: Option<String>,
    /// Served instead of the real Docker-Content-Digest of manifests.
    pub fake_content_digest: Option<String>,
}

impl Default for State {
    fn default() -> State {
        State {
            addr: None,
            blobs: HashMap::new(),
            manifests: HashMap::new(),
            tags: Vec::new(),
            tags_page: None,
            auth: AuthMode::None,
            log: Vec::new(),
            storage_log: Vec::new(),
            tokens_issued: 0,
            valid_tokens: HashSet::new(),
            scopes_asked: Vec::new(),
            drop_once: HashMap::new(),
            stall_once: HashMap::new(),
            ignore_range: false,
            corrupt: HashSet::new(),
            redirect_blobs_to: None,
            fake_content_digest: None,
        }
    }
}

pub type Shared = Arc<Mutex<State>>;

fn log_of(req: &Req) -> Logged {
    let h = |n: http::header::HeaderName| {
        req.headers
            .get(n)
            .map(|v| v.to_str().unwrap_or_default().to_owned())
    };
    Logged {
        method: req.method.clone(),
        path: req.uri.path().to_owned(),
        query: req.uri.query().unwrap_or_default().to_owned(),
        authorization: h(http::header::AUTHORIZATION),
        range: h(http::header::RANGE),
        user_agent: h(http::header::USER_AGENT),
        accept: req
            .headers
            .get_all(http::header::ACCEPT)
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .collect(),
        sent: 0,
        form: String::from_utf8_lossy(&req.body).into_owned(),
    }
}

fn errors(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json(
        status,
        &format!(r#"{{"errors":[{{"code":"{code}","message":"{message}","detail":null}}]}}"#),
    )
}

fn basic_of(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// The registry's answer when the request is not authorised, or None when it is.
fn check_auth(st: &State, req: &Req, name: &str) -> Option<Response<Body>> {
    let given = req
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match &st.auth {
        AuthMode::None => None,
        AuthMode::Basic { user, pass } => {
            if given == basic_of(user, pass) {
                return None;
            }
            let mut r = errors(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                "Basic realm=\"fake\"".parse().unwrap(),
            );
            Some(r)
        }
        AuthMode::Bearer { .. } => {
            if let Some(t) = given.strip_prefix("Bearer ") {
                if st.valid_tokens.contains(t) {
                    return None;
                }
            }
            let addr = st.addr.unwrap();
            let scope = if name.is_empty() {
                String::new()
            } else {
                format!(",scope=\"repository:{name}:pull\"")
            };
            let mut r = errors(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                format!("Bearer realm=\"http://{addr}/token\",service=\"fake\"{scope}")
                    .parse()
                    .unwrap(),
            );
            Some(r)
        }
    }
}

fn token_endpoint(st: &mut State, req: &Req) -> Response<Body> {
    let AuthMode::Bearer {
        user,
        pass,
        refresh,
    } = st.auth.clone()
    else {
        return full(StatusCode::NOT_FOUND, "");
    };
    let pairs: Vec<(String, String)> = if req.method == Method::POST {
        serde_urlencoded::from_bytes(&req.body).unwrap_or_default()
    } else {
        serde_urlencoded::from_str(req.uri.query().unwrap_or("")).unwrap_or_default()
    };
    let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let mut scopes: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    scopes.retain(|s| !s.is_empty());
    st.scopes_asked.push(scopes);
    let ok = if req.method == Method::POST {
        get("grant_type").as_deref() == Some("refresh_token")
            && get("refresh_token").as_deref() == Some(refresh.as_str())
    } else {
        req.headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some(basic_of(&user, &pass).as_str())
    };
    if !ok {
        return json(
            StatusCode::UNAUTHORIZED,
            r#"{"details":"incorrect username or password"}"#,
        );
    }
    st.tokens_issued += 1;
    let token = format!("tok-{}", st.tokens_issued);
    st.valid_tokens.insert(token.clone());
    let refresh_part = if get("offline_token").as_deref() == Some("true") {
        format!(r#","refresh_token":"{refresh}""#)
    } else {
        String::new()
    };
    if req.method == Method::POST {
        json(
            StatusCode::OK,
            &format!(r#"{{"access_token":"{token}","expires_in":300{refresh_part}}}"#),
        )
    } else {
        json(
            StatusCode::OK,
            &format!(r#"{{"token":"{token}","expires_in":300{refresh_part}}}"#),
        )
    }
}

/// The body of a blob from `start`, with the faults asked for.
fn blob_body(st: &mut State, digest: &str, data: Bytes, start: u64) -> (Body, u64) {
    let data = if st.corrupt.contains(digest) {
        let mut v = data.to_vec();
        if let Some(b) = v.last_mut() {
            *b ^= 0xff;
        }
        Bytes::from(v)
    } else {
        data
    };
    let rest = data.slice(start as usize..);
    let sent = rest.len() as u64;
    if let Some(cut) = st.drop_once.remove(digest) {
        let first = rest.slice(..(cut - start) as usize);
        // A pause lets the server flush what it sent before it drops the connection.
        let s = futures_util::stream::iter(vec![Ok(Frame::data(first))]).chain(
            futures_util::stream::once(async {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "dropped by the test",
                ))
            }),
        );
        return (BodyExt::boxed(StreamBody::new(s)), sent);
    }
    if let Some(cut) = st.stall_once.remove(digest) {
        let first = rest.slice(..(cut - start) as usize);
        let s = futures_util::stream::iter(vec![Ok(Frame::data(first))])
            .chain(futures_util::stream::pending());
        return (BodyExt::boxed(StreamBody::new(s)), sent);
    }
    (Full::new(rest).map_err(|e| match e {}).boxed(), sent)
}

fn serve_blob(st: &mut State, req: &Req, digest: &str, logged: &mut Logged) -> Response<Body> {
    let Some(data) = st.blobs.get(digest).cloned() else {
        return errors(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
        );
    };
    let len = data.len() as u64;
    let start = req
        .headers
        .get(http::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|_| !st.ignore_range)
        .unwrap_or(0);
    if req.method == Method::HEAD {
        let mut r = full(StatusCode::OK, "");
        r.headers_mut()
            .insert(http::header::CONTENT_LENGTH, len.into());
        return r;
    }
    let (body, sent) = blob_body(st, digest, data, start);
    logged.sent = sent;
    let mut b = Response::builder()
        .header(http::header::CONTENT_LENGTH, sent)
        .header(http::header::CONTENT_TYPE, "application/octet-stream");
    if start > 0 {
        b = b.status(StatusCode::PARTIAL_CONTENT).header(
            http::header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", len - 1),
        );
    }
    b.body(body).unwrap()
}

/// The fake registry's handler.
pub fn registry(state: Shared) -> Handler {
    Arc::new(move |req: Req| {
        let mut st = state.lock().unwrap();
        let mut logged = log_of(&req);
        let path = req.uri.path().to_owned();
        let resp = route(&mut st, &req, &path, &mut logged);
        st.log.push(logged);
        resp
    })
}

fn route(st: &mut State, req: &Req, path: &str, logged: &mut Logged) -> Response<Body> {
    if path == "/token" {
        return token_endpoint(st, req);
    }
    if path == "/v2/" {
        return check_auth(st, req, "").unwrap_or_else(|| json(StatusCode::OK, "{}"));
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return full(StatusCode::NOT_FOUND, "404 page not found");
    };
    for marker in ["/manifests/", "/blobs/", "/tags/list"] {
        let Some(i) = rest.find(marker) else {
            continue;
        };
        let name = &rest[..i];
        let arg = &rest[i + marker.len()..];
        if let Some(denied) = check_auth(st, req, name) {
            return denied;
        }
        return match marker {
            "/manifests/" => match st.manifests.get(arg).cloned() {
                Some((mt, bytes)) => {
                    let digest = st
                        .fake_content_digest
                        .clone()
                        .unwrap_or_else(|| sha256(&bytes));
                    let mut r = full(StatusCode::OK, bytes);
                    r.headers_mut()
                        .insert(http::header::CONTENT_TYPE, mt.parse().unwrap());
                    r.headers_mut()
                        .insert("docker-content-digest", digest.parse().unwrap());
                    r
                }
                None => errors(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    "manifest unknown",
                ),
            },
            "/blobs/" => {
                if let (Some(base), true) = (&st.redirect_blobs_to, req.method == Method::GET) {
                    let mut r = full(StatusCode::TEMPORARY_REDIRECT, "");
                    r.headers_mut().insert(
                        http::header::LOCATION,
                        format!("{base}/storage/{arg}?sig=abc").parse().unwrap(),
                    );
                    return r;
                }
                serve_blob(st, req, arg, logged)
            }
            _ => tags_page(st, name, req.uri.query().unwrap_or("")),
        };
    }
    full(StatusCode::NOT_FOUND, "404 page not found")
}

fn tags_page(st: &State, name: &str, query: &str) -> Response<Body> {
    let last: Option<String> = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap_or_default()
        .into_iter()
        .find(|(k, _)| k == "last")
        .map(|(_, v)| v);
    let from = match &last {
        Some(l) => st.tags.iter().position(|t| t == l).map_or(0, |i| i + 1),
        None => 0,
    };
    let size = st.tags_page.unwrap_or(usize::MAX);
    let page: Vec<&String> = st.tags.iter().skip(from).take(size).collect();
    let mut r = json(
        StatusCode::OK,
        &serde_json::json!({"name": name, "tags": page}).to_string(),
    );
    if from + page.len() < st.tags.len() {
        let last = page.last().map(|s| s.as_str()).unwrap_or("");
        r.headers_mut().insert(
            http::header::LINK,
            format!("</v2/{name}/tags/list?last={last}&n={size}>; rel=\"next\"")
                .parse()
                .unwrap(),
        );
    }
    r
}

/// A storage server blobs are redirected to: serves the same blobs, logs what it saw.
pub fn storage(state: Shared) -> Handler {
    Arc::new(move |req: Req| {
        let mut st = state.lock().unwrap();
        let mut logged = log_of(&req);
        let digest = req
            .uri
            .path()
            .strip_prefix("/storage/")
            .unwrap_or_default()
            .to_owned();
        let resp = serve_blob(&mut st, &req, &digest, &mut logged);
        st.storage_log.push(logged);
        resp
    })
}

/// A fake registry with its state, and its address.
pub async fn start(state: State) -> (Shared, Server) {
    let shared = Arc::new(Mutex::new(state));
    let server = serve(registry(shared.clone())).await;
    shared.lock().unwrap().addr = Some(server.addr);
    (shared, server)
}

/// A docker image's pieces: config, layers and the manifest naming them.
pub struct Image {
    pub config: Bytes,
    pub layers: Vec<Bytes>,
    pub manifest: Bytes,
    pub manifest_digest: String,
}

pub fn image(seed: u64, layer_sizes: &[usize]) -> Image {
    let layers: Vec<Bytes> = layer_sizes
        .iter()
        .enumerate()
        .map(|(i, n)| bytes_of(seed * 100 + i as u64, *n))
        .collect();
    let config = Bytes::from(format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"seed":{seed}}}"#
    ));
    let layer_descs: Vec<String> = layers
        .iter()
        .map(|l| {
            format!(
                r#"{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{}","size":{}}}"#,
                sha256(l),
                l.len()
            )
        })
        .collect();
    let manifest = Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
        sha256(&config),
        config.len(),
        layer_descs.join(",")
    ));
    let manifest_digest = sha256(&manifest);
    Image {
        config,
        layers,
        manifest,
        manifest_digest,
    }
}

impl Image {
    /// Puts the image into a fake registry's state under `tag`.
    pub fn install(&self, st: &mut State, tag: &str) {
        let mt = "application/vnd.docker.distribution.manifest.v2+json".to_owned();
        st.manifests
            .insert(tag.to_owned(), (mt.clone(), self.manifest.clone()));
        st.manifests
            .insert(self.manifest_digest.clone(), (mt, self.manifest.clone()));
        st.blobs.insert(sha256(&self.config), self.config.clone());
        for l in &self.layers {
            st.blobs.insert(sha256(l), l.clone());
        }
    }
}
