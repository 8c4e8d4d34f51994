//! One registry call: authentication (the challenge of a 401 remembered per origin, then a
//! basic header or a bearer token for the call's scopes, fetched again once when a cached
//! token is refused), redirects for GET and HEAD (the registry's Authorization never sent to
//! another host), and the endpoint loop (HTTPS then HTTP for insecure registries, mirrors
//! then docker.io), each endpoint pinged (`GET /v2/`) before a repository's first call to it,
//! as dockerd does.
//!
//! A request that gets no answer fails as Go's `*url.Error` reads (`Head "<url>": …`): a
//! connection refused, a token server's refusal, and distribution's `no basic auth
//! credentials` when the registry asks for basic auth and there are none (the request is
//! then not sent).

use super::{Registries, Repository};
use crate::auth::challenge::{self, Challenge};
use crate::auth::token::{self, TokenKey, TokenRequest};
use crate::auth::{basic_header, Credentials};
use crate::endpoint::Endpoint;
use crate::errcode::{self, Context};
use crate::error::{DistributionError, Result};
use crate::transport::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::sync::atomic::Ordering;

/// Go's http.Client stops after ten redirects.
const MAX_REDIRECTS: usize = 10;
/// The most of an error body read to word the error.
pub(crate) const MAX_ERROR_BODY: u64 = 64 * 1024;

/// A request to send: to a path under an endpoint (`/v2/…`) or to an absolute URL (an
/// upload's Location).
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: Method,
    pub target: Target,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Scopes beyond the repository's own (a mount's source repository).
    pub extra_scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum Target {
    Path(String),
    Url(String),
}

impl Call {
    pub fn new(method: Method, target: Target) -> Call {
        Call {
            method,
            target,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            extra_scopes: Vec::new(),
        }
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> Call {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.append(name, v);
        }
        self
    }

    pub fn body(mut self, body: Bytes) -> Call {
        self.body = body;
        self
    }
}

/// Who is asking, for which scopes.
pub(crate) struct Auth<'a> {
    pub creds: &'a Credentials,
    pub scopes: Vec<String>,
}

/// Go's `url.Error` prefix: `Get "https://…":`.
pub(crate) fn op_prefix(method: &Method, url: &str) -> String {
    let m = method.as_str();
    let mut op = m[..1].to_owned();
    op.push_str(&m[1..].to_ascii_lowercase());
    format!("{op} {url:?}")
}

/// `scheme://authority` of a URL.
pub(crate) fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return String::new();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{authority}")
}

/// A Location header resolved against the URL it answered.
pub(crate) fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    if let Some(rest) = location.strip_prefix("//") {
        let scheme = base.split("://").next().unwrap_or("https");
        return format!("{scheme}://{rest}");
    }
    let origin = origin_of(base);
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    let path = &base[origin.len()..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    format!("{origin}{dir}{location}")
}

/// The header a request carries, and the token in it (to tell the cache which one failed).
#[derive(Clone, PartialEq, Eq)]
struct Authorization {
    value: HeaderValue,
    token: Option<String>,
}

/// Bearer first, then basic, as distribution's authorizer tries its handlers.
fn pick(challenges: Vec<Challenge>) -> Option<Challenge> {
    let mut basic = None;
    for c in challenges {
        match c.scheme.as_str() {
            "bearer" => return Some(c),
            "basic" if basic.is_none() => basic = Some(c),
            _ => {}
        }
    }
    basic
}

impl Registries {
    fn challenge_for(&self, origin: &str) -> Option<Challenge> {
        self.inner
            .challenges
            .lock()
            .ok()
            .and_then(|m| m.get(origin).cloned())
    }

    fn remember_challenge(&self, origin: &str, c: Challenge) {
        if let Ok(mut m) = self.inner.challenges.lock() {
            m.insert(origin.to_owned(), c);
        }
    }

    /// What to send to `origin` given its challenge; `stale` is a token it just refused.
    async fn authorization(
        &self,
        method: &Method,
        url: &str,
        auth: &Auth<'_>,
        stale: Option<&str>,
    ) -> Result<Option<Authorization>> {
        let Some(c) = self.challenge_for(&origin_of(url)) else {
            return Ok(None);
        };
        match c.scheme.as_str() {
            // A registry token is for bearer challenges only: dockerd installs no basic
            // handler beside it, so the request goes out as it is.
            "basic" if matches!(auth.creds, Credentials::RegistryToken(_)) => Ok(None),
            "basic" => match auth.creds.basic() {
                Some((u, p)) => Ok(Some(Authorization {
                    value: HeaderValue::from_str(&basic_header(u, p)).map_err(|_| {
                        DistributionError::of_request(
                            op_prefix(method, url),
                            DistributionError::Invalid("invalid basic auth credentials".into()),
                        )
                    })?,
                    token: None,
                })),
                None => Err(DistributionError::of_request(
                    op_prefix(method, url),
                    DistributionError::NoBasicAuthCredentials,
                )),
            },
            "bearer" => {
                if let Credentials::RegistryToken(t) = auth.creds {
                    return Ok(bearer(t));
                }
                let Some(realm) = c.param("realm") else {
                    return Err(DistributionError::of_request(
                        op_prefix(method, url),
                        DistributionError::Invalid(
                            "no realm specified for token auth challenge".into(),
                        ),
                    ));
                };
                let service = c.param("service");
                let key = TokenKey {
                    realm: realm.to_owned(),
                    service: service.unwrap_or("").to_owned(),
                    scopes: auth.scopes.join(" "),
                    creds: auth.creds.cache_key(),
                };
                let transport = &self.inner.transport;
                let req = TokenRequest {
                    realm,
                    service,
                    scopes: &auth.scopes,
                    creds: auth.creds,
                    offline: false,
                };
                let token = self
                    .inner
                    .tokens
                    .get(key, stale, || token::fetch(transport, &req))
                    .await
                    .map_err(|e| token_failure(method, url, e))?;
                Ok(bearer(&token))
            }
            _ => Ok(None),
        }
    }

    /// A token server's refusal, worded as dockerd shows it: the registry request it was
    /// for, then the token server's words.
    pub(crate) async fn fetch_token_for_login(
        &self,
        challenge: &Challenge,
        url: &str,
        creds: &Credentials,
    ) -> Result<token::Token> {
        let realm = challenge.param("realm").unwrap_or("");
        let req = TokenRequest {
            realm,
            service: challenge.param("service"),
            scopes: &[],
            creds,
            offline: true,
        };
        token::fetch(&self.inner.transport, &req)
            .await
            .map_err(|e| token_failure(&Method::GET, url, e))
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &str,
        call: &Call,
        authz: Option<&Authorization>,
    ) -> Result<Response<Incoming>> {
        let mut b = Request::builder().method(method.clone()).uri(url);
        if let Some(h) = b.headers_mut() {
            for (k, v) in &call.headers {
                h.append(k, v.clone());
            }
            if let Some(a) = authz {
                h.insert(http::header::AUTHORIZATION, a.value.clone());
            }
            if matches!(*method, Method::PUT | Method::POST | Method::PATCH) {
                h.insert(
                    http::header::CONTENT_LENGTH,
                    HeaderValue::from(call.body.len()),
                );
            }
        }
        let req = b.body(Body::new(call.body.clone())).map_err(|e| {
            DistributionError::of_request(
                op_prefix(method, url),
                DistributionError::Invalid(e.to_string()),
            )
        })?;
        self.inner.transport.send(req).await.map_err(|e| {
            DistributionError::of_request(op_prefix(method, url), DistributionError::Transport(e.0))
        })
    }

    /// Sends `call` to `url` as it is: no authentication, no redirects (login's ping).
    pub(crate) async fn send_plain(&self, url: &str, call: &Call) -> Result<Response<Incoming>> {
        self.send_once(&call.method, url, call, None).await
    }

    /// Reads (and drops) a body we will not use, so its connection can be reused.
    pub(crate) async fn drain(&self, resp: Response<Incoming>) {
        let _ = self.read_body(resp, MAX_ERROR_BODY).await;
    }

    /// A response's whole body, refused past `max` bytes.
    pub(crate) async fn read_body(
        &self,
        resp: Response<Incoming>,
        max: u64,
    ) -> std::io::Result<Bytes> {
        self.inner.transport.read_body(resp.into_body(), max).await
    }

    /// The error a registry's error response says, worded for `ctx`.
    pub(crate) async fn error_of(
        &self,
        resp: Response<Incoming>,
        ctx: &Context,
    ) -> DistributionError {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = self
            .read_body(resp, MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        errcode::to_error(status, &headers, &body, ctx)
    }

    /// Sends `call` to `url` with authentication, following redirects of GET and HEAD.
    pub(crate) async fn send_authed(
        &self,
        url: &str,
        call: &Call,
        auth: &Auth<'_>,
    ) -> Result<Response<Incoming>> {
        let mut method = call.method.clone();
        let mut url = url.to_owned();
        let mut same_host = true;
        let first_origin = origin_of(&url);
        for _ in 0..=MAX_REDIRECTS {
            let mut authz = if same_host {
                self.authorization(&method, &url, auth, None).await?
            } else {
                None
            };
            let mut retried = false;
            let resp = loop {
                let resp = self.send_once(&method, &url, call, authz.as_ref()).await?;
                if resp.status() != StatusCode::UNAUTHORIZED || !same_host || retried {
                    break resp;
                }
                retried = true;
                let Some(c) = pick(challenge::parse_headers(resp.headers())) else {
                    break resp;
                };
                self.remember_challenge(&origin_of(&url), c);
                let stale = authz.as_ref().and_then(|a| a.token.clone());
                let fresh = match self
                    .authorization(&method, &url, auth, stale.as_deref())
                    .await
                {
                    Ok(fresh) => fresh,
                    Err(e) => {
                        self.drain(resp).await;
                        return Err(e);
                    }
                };
                if fresh.is_none() || fresh == authz {
                    break resp;
                }
                self.drain(resp).await;
                authz = fresh;
            };
            let redirect = matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308)
                && matches!(method, Method::GET | Method::HEAD);
            if !redirect {
                return Ok(resp);
            }
            let Some(location) = resp
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
            else {
                return Ok(resp);
            };
            self.drain(resp).await;
            url = resolve(&url, &location);
            same_host = same_host && origin_of(&url) == first_origin;
            if method != Method::HEAD {
                method = Method::GET;
            }
        }
        Err(DistributionError::of_request(
            op_prefix(&method, &url),
            DistributionError::Transport(format!("stopped after {MAX_REDIRECTS} redirects")),
        ))
    }

    /// dockerd's `PingV2Registry`: `GET /v2/` without credentials, before a repository's
    /// first request to an endpoint. Its challenge is remembered, so that request goes out
    /// authenticated (or, for basic auth without credentials, is not sent); a registry that
    /// cannot be reached fails here, in the words dockerd has for it (`Get
    /// "http://host/v2/": dial tcp …`). Any answer will do, as for dockerd.
    pub(crate) async fn ping(&self, ep: &Endpoint) -> Result<()> {
        let url = ep.url("/v2/");
        let resp = self
            .send_plain(&url, &Call::new(Method::GET, Target::Url(url.clone())))
            .await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            if let Some(c) = pick(challenge::parse_headers(resp.headers())) {
                self.remember_challenge(&origin_of(&url), c);
            }
        }
        self.drain(resp).await;
        Ok(())
    }
}

fn bearer(token: &str) -> Option<Authorization> {
    Some(Authorization {
        value: HeaderValue::from_str(&format!("Bearer {token}")).ok()?,
        token: Some(token.to_owned()),
    })
}

/// A token the request could not get: the request never went out.
fn token_failure(method: &Method, url: &str, e: DistributionError) -> DistributionError {
    DistributionError::of_request(op_prefix(method, url), e)
}

/// Which answers end the endpoint loop; others on a mirror move on to the next endpoint.
pub(crate) type Accept = fn(StatusCode) -> bool;

pub(crate) fn success(s: StatusCode) -> bool {
    s.is_success()
}

impl Repository {
    /// The scopes of this repository: `pull`, or `pull,push` once the repository has been
    /// written to (a push token also reads).
    pub(crate) fn scopes(&self, write: bool) -> Vec<String> {
        let inner = &self.inner;
        let write = write || inner.pushing.load(Ordering::Relaxed);
        let actions = if write { "pull,push" } else { "pull" };
        vec![format!("repository:{}:{actions}", inner.name.path())]
    }

    /// Sends `call` to this repository's registry: its endpoints in order (from the one
    /// that last answered), each pinged first if this repository has not yet, moving on
    /// after a request that got no answer (as dockerd's `continueOnError`), and on a mirror
    /// after any answer `accept` does not take.
    pub(crate) async fn call(
        &self,
        write: bool,
        call: Call,
        accept: Accept,
        ctx: &Context,
    ) -> Result<Response<Incoming>> {
        let inner = &self.inner;
        let reg = &inner.registries;
        let mut scopes = self.scopes(write);
        scopes.extend(call.extra_scopes.iter().cloned());
        let auth = Auth {
            creds: &inner.creds,
            scopes,
        };
        let path = match &call.target {
            Target::Url(url) => return reg.send_authed(url, &call, &auth).await,
            Target::Path(p) => p.clone(),
        };
        let endpoints = self.endpoints(write).await;
        let start = if write {
            0
        } else {
            inner
                .preferred
                .load(Ordering::Relaxed)
                .min(endpoints.len().saturating_sub(1))
        };
        let mut last_err = None;
        for (i, ep) in endpoints.iter().enumerate().skip(start) {
            if reg.skip_scheme(ep) {
                continue;
            }
            let url = ep.url(&path);
            let sent = match self.ping_once(ep).await {
                Ok(()) => reg.send_authed(&url, &call, &auth).await,
                Err(e) => Err(e),
            };
            match sent {
                Err(e) => {
                    if e.is_transport() {
                        reg.forget_scheme(ep);
                    }
                    let fall_back = matches!(
                        e,
                        DistributionError::Transport(_) | DistributionError::Request { .. }
                    ) || ep.mirror;
                    if !fall_back {
                        return Err(e);
                    }
                    tracing::debug!(endpoint = %url, error = %e, "registry endpoint failed, trying the next");
                    last_err = Some(e);
                }
                Ok(resp) => {
                    reg.remember_scheme(ep);
                    if ep.mirror && !accept(resp.status()) {
                        let e = reg.error_of(resp, ctx).await;
                        tracing::debug!(endpoint = %url, error = %e, "mirror failed, trying the next endpoint");
                        last_err = Some(e);
                        continue;
                    }
                    if !write {
                        inner.preferred.store(i, Ordering::Relaxed);
                    }
                    return Ok(resp);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| {
            DistributionError::Transport(format!("no endpoint for {}", inner.name.domain()))
        }))
    }

    /// Pings `ep` unless this repository already has: one ping at a time, so parallel first
    /// calls wait for it rather than each ping.
    async fn ping_once(&self, ep: &Endpoint) -> Result<()> {
        let mut pinged = self.inner.pinged.lock().await;
        let key = ep.url("/v2/");
        if pinged.contains(&key) {
            return Ok(());
        }
        self.inner.registries.ping(ep).await?;
        pinged.insert(key);
        Ok(())
    }

    /// The error for a response this call did not expect.
    pub(crate) async fn error_of(
        &self,
        resp: Response<Incoming>,
        ctx: &Context,
    ) -> DistributionError {
        self.inner.registries.error_of(resp, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_like_urls() {
        let base = "http://127.0.0.1:5000/v2/a/blobs/uploads/uuid?_state=x";
        assert_eq!(
            resolve(base, "https://s3.example/b?sig=1"),
            "https://s3.example/b?sig=1"
        );
        assert_eq!(resolve(base, "//cdn.example/b"), "http://cdn.example/b");
        assert_eq!(
            resolve(base, "/v2/a/blobs/uploads/u2?_state=y"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/u2?_state=y"
        );
        assert_eq!(
            resolve(base, "u3"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/u3"
        );
        assert_eq!(origin_of(base), "http://127.0.0.1:5000");
        assert_eq!(
            op_prefix(&Method::HEAD, "https://r/v2/"),
            "Head \"https://r/v2/\""
        );
    }

    #[test]
    fn bearer_is_preferred_to_basic() {
        let got = pick(challenge::parse(r#"Basic realm="a", Bearer realm="b""#)).unwrap();
        assert_eq!(got.scheme, "bearer");
        assert!(pick(challenge::parse("Negotiate")).is_none());
    }
}
