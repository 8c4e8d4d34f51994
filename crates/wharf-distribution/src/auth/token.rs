//! The bearer token flow of docker/distribution's token handler: GET the challenge's realm
//! with `service` and `scope` (basic auth when there are credentials), or POST a
//! `refresh_token` grant for an identity token; `token` or `access_token` back, kept until
//! `expires_in` (at least 60 s) is nearly over.

use crate::auth::{basic_header, Credentials};
use crate::errcode;
use crate::error::DistributionError;
use crate::transport::{Body, Transport};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// distribution's `minimumTokenLifetimeSeconds`, also the lifetime of a token that names none.
const MIN_LIFETIME: u64 = 60;
/// The largest token response read.
const MAX_RESPONSE: u64 = 1 << 20;
/// docker's `AuthClientID`.
const CLIENT_ID: &str = "docker";

/// A token request: the challenge's realm and service, the scopes wanted.
pub(crate) struct TokenRequest<'a> {
    pub realm: &'a str,
    pub service: Option<&'a str>,
    pub scopes: &'a [String],
    pub creds: &'a Credentials,
    /// Ask for a refresh token too (login does, to hand the client an identity token).
    pub offline: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub token: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct Response {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: i64,
    #[serde(default)]
    refresh_token: String,
}

fn with_query(realm: &str, query: &str) -> String {
    if query.is_empty() {
        realm.to_owned()
    } else if realm.contains('?') {
        format!("{realm}&{query}")
    } else {
        format!("{realm}?{query}")
    }
}

fn build(req: &TokenRequest<'_>) -> Result<Request<Body>, DistributionError> {
    let bad = |e: &dyn std::fmt::Display| {
        DistributionError::Invalid(format!("invalid token auth challenge realm: {e}"))
    };
    if let Credentials::IdentityToken(refresh) = req.creds {
        let scope = req.scopes.join(" ");
        let mut form: Vec<(&str, &str)> = vec![("scope", &scope)];
        form.push(("service", req.service.unwrap_or("")));
        form.push(("client_id", CLIENT_ID));
        form.push(("grant_type", "refresh_token"));
        form.push(("refresh_token", refresh));
        let body = serde_urlencoded::to_string(&form).map_err(|e| bad(&e))?;
        return Request::builder()
            .method(Method::POST)
            .uri(req.realm)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(Body::new(Bytes::from(body)))
            .map_err(|e| bad(&e));
    }
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = req.service.filter(|s| !s.is_empty()) {
        query.push(("service", s));
    }
    for s in req.scopes {
        query.push(("scope", s));
    }
    if req.offline {
        query.push(("offline_token", "true"));
        query.push(("client_id", CLIENT_ID));
    }
    let basic = req.creds.basic();
    if let Some((user, _)) = basic {
        query.push(("account", user));
    }
    let query = serde_urlencoded::to_string(&query).map_err(|e| bad(&e))?;
    let mut b = Request::builder()
        .method(Method::GET)
        .uri(with_query(req.realm, &query));
    if let Some((user, pass)) = basic {
        b = b.header(http::header::AUTHORIZATION, basic_header(user, pass));
    }
    b.body(Body::default()).map_err(|e| bad(&e))
}

/// Asks the token server once. Why no token came back is worded as dockerd shows it
/// (`unauthorized: incorrect username or password`), with the token server's status when it
/// answered; the caller names the registry request it was for.
pub(crate) async fn fetch(
    transport: &Transport,
    req: &TokenRequest<'_>,
) -> Result<Token, DistributionError> {
    let request = build(req)?;
    let resp = transport
        .send(request)
        .await
        .map_err(|e| DistributionError::Transport(e.0))?;
    let status = resp.status();
    let (parts, body) = resp.into_parts();
    let body = transport
        .read_body(body, MAX_RESPONSE)
        .await
        .map_err(|e| DistributionError::Transport(e.to_string()))?;
    if !(status.is_success() || status.is_redirection()) {
        return Err(DistributionError::Registry {
            status: status.as_u16(),
            message: token_server_error(status, &parts.headers, &body),
        });
    }
    let r: Response = serde_json::from_slice(&body).map_err(|e| {
        DistributionError::Transport(format!("unable to decode token response: {e}"))
    })?;
    let token = if r.access_token.is_empty() {
        r.token
    } else {
        r.access_token
    };
    if token.is_empty() {
        return Err(DistributionError::NoToken);
    }
    Ok(Token {
        token,
        expires_in: u64::try_from(r.expires_in).unwrap_or(0).max(MIN_LIFETIME),
        refresh_token: Some(r.refresh_token).filter(|t| !t.is_empty()),
    })
}

/// A token server's refusal, read like a registry's (`unauthorized: …`).
fn token_server_error(status: StatusCode, headers: &http::HeaderMap, body: &[u8]) -> String {
    match errcode::parse(status, headers, body) {
        errcode::Parsed::Errors(list) => list
            .first()
            .map(|e| e.text())
            .unwrap_or_else(|| errcode::status_text(status)),
        errcode::Parsed::Unexpected { reason, body } => format!(
            "error parsing HTTP {} response body: {reason}: {body:?}",
            status.as_u16()
        ),
        errcode::Parsed::Status => format!(
            "received unexpected HTTP status: {}",
            errcode::status_text(status)
        ),
    }
}

/// Tokens by (realm, service, scopes, credentials).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    pub realm: String,
    pub service: String,
    pub scopes: String,
    pub creds: String,
}

struct Cached {
    token: String,
    valid_until: Instant,
}

/// How long before its stated end a token stops being used: a tenth of its life (6 s for
/// the usual 60 s), so a request sent near the end still carries a live one.
fn usable_for(expires_in: u64) -> Duration {
    Duration::from_secs(expires_in) - Duration::from_secs(expires_in) / 10
}

/// The token cache. One lock per key, so parallel requests that all meet the same 401 ask
/// the token server once.
#[derive(Default)]
pub(crate) struct TokenCache {
    slots: Mutex<HashMap<TokenKey, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

impl TokenCache {
    /// A live token for `key`, fetched with `fetch` when there is none, or when the cached
    /// one is `stale` (a registry just refused it).
    pub async fn get<F, Fut>(
        &self,
        key: TokenKey,
        stale: Option<&str>,
        fetch: F,
    ) -> Result<String, DistributionError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Token, DistributionError>>,
    {
        let slot = {
            let mut slots = self
                .slots
                .lock()
                .map_err(|_| DistributionError::Transport("token cache poisoned".into()))?;
            slots.entry(key).or_default().clone()
        };
        let mut cached = slot.lock().await;
        if let Some(c) = cached.as_ref() {
            if c.valid_until > Instant::now() && Some(c.token.as_str()) != stale {
                return Ok(c.token.clone());
            }
        }
        let fresh = fetch().await?;
        *cached = Some(Cached {
            token: fresh.token.clone(),
            valid_until: Instant::now() + usable_for(fresh.expires_in),
        });
        Ok(fresh.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri_of(req: &TokenRequest<'_>) -> (Method, String, Option<String>) {
        let r = build(req).unwrap();
        let auth = r
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_owned());
        (r.method().clone(), r.uri().to_string(), auth)
    }

    #[test]
    fn token_requests_look_like_dockers() {
        let scopes = vec!["repository:library/busybox:pull".to_owned()];
        let anon = Credentials::Anonymous;
        let (m, u, a) = uri_of(&TokenRequest {
            realm: "https://auth.example/token",
            service: Some("registry.example"),
            scopes: &scopes,
            creds: &anon,
            offline: false,
        });
        assert_eq!(m, Method::GET);
        assert_eq!(
            u,
            "https://auth.example/token?service=registry.example&scope=repository%3Alibrary%2Fbusybox%3Apull"
        );
        assert_eq!(a, None);

        let basic = Credentials::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        let (_, u, a) = uri_of(&TokenRequest {
            realm: "https://auth.example/token?x=1",
            service: None,
            scopes: &[],
            creds: &basic,
            offline: true,
        });
        assert_eq!(
            u,
            "https://auth.example/token?x=1&offline_token=true&client_id=docker&account=u"
        );
        assert_eq!(a.as_deref(), Some("Basic dTpw"));

        let id = Credentials::IdentityToken("rt".into());
        let r = build(&TokenRequest {
            realm: "https://auth.example/token",
            service: Some("svc"),
            scopes: &["a".to_owned(), "b".to_owned()],
            creds: &id,
            offline: false,
        })
        .unwrap();
        assert_eq!(r.method(), Method::POST);
        assert_eq!(
            r.headers()[http::header::CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
    }

    #[tokio::test]
    async fn cached_tokens_are_reused_until_refused() {
        let cache = TokenCache::default();
        let key = TokenKey {
            realm: "r".into(),
            service: "s".into(),
            scopes: "x".into(),
            creds: "c".into(),
        };
        let mk = |t: &str| {
            let t = t.to_owned();
            move || async move {
                Ok(Token {
                    token: t,
                    expires_in: 60,
                    refresh_token: None,
                })
            }
        };
        assert_eq!(
            cache.get(key.clone(), None, mk("one")).await.unwrap(),
            "one"
        );
        assert_eq!(
            cache.get(key.clone(), None, mk("two")).await.unwrap(),
            "one"
        );
        assert_eq!(
            cache
                .get(key.clone(), Some("one"), mk("two"))
                .await
                .unwrap(),
            "two"
        );
        // Another request that saw "one" refused finds "two" already there.
        assert_eq!(
            cache
                .get(key.clone(), Some("one"), mk("three"))
                .await
                .unwrap(),
            "two"
        );
        assert_eq!(usable_for(60), Duration::from_secs(54));
    }
}
