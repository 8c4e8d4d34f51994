//! The `/vX.Y` prefix, the version range check and the headers every response carries.
//!
//! The prefix is stripped before routing so one route table serves `/v1.41/containers/json` and
//! `/containers/json` alike.

use crate::errors::json_error;
use axum::extract::Request;
use axum::http::uri::PathAndQuery;
use axum::http::{header, HeaderName, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::cmp::Ordering;
use std::time::Instant;
use wharf_api::version::{check_version, ApiVersion, API_VERSION, MIN_API_VERSION};

/// The version the client asked for (the advertised one when the path has no prefix); handlers
/// use it where the wire format changed between versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestedVersion(pub ApiVersion);

impl RequestedVersion {
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self.0 >= ApiVersion { major, minor }
    }
}

/// Splits `/v1.41/rest` into `("1.41", "/rest")`. Only a first segment of `v` + digits and dots
/// counts, as in dockerd's `/v{version:[0-9.]+}` route.
pub fn split_version(path: &str) -> Option<(&str, &str)> {
    let after = path.strip_prefix("/v")?;
    let end = after.find('/').unwrap_or(after.len());
    let ver = &after[..end];
    if ver.is_empty() || !ver.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let rest = &after[end..];
    Some((ver, if rest.is_empty() { "/" } else { rest }))
}

pub async fn version_middleware(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let Some((ver, rest)) = split_version(&path) else {
        req.extensions_mut().insert(RequestedVersion(API_VERSION));
        return next.run(req).await;
    };
    let v = match ApiVersion::parse(ver) {
        Some(v) => match check_version(v) {
            Ok(()) => v,
            Err(msg) => return out_of_range(v < MIN_API_VERSION, &msg),
        },
        // dockerd's route takes any run of digits and dots and compares it as Go's
        // `versions.Compare` does, so `999` is too new and `1.2.3` too old, in its words.
        None if go_compare(ver, &API_VERSION.to_string()) == Ordering::Greater => {
            return out_of_range(
                false,
                &format!(
                    "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
                ),
            )
        }
        None if go_compare(ver, &MIN_API_VERSION.to_string()) == Ordering::Less => {
            return out_of_range(
                true,
                &format!(
                    "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
                ),
            )
        }
        None => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("invalid API version {ver:?}"),
            )
        }
    };
    let pq = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = match PathAndQuery::try_from(pq) {
        Ok(pq) => Some(pq),
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &format!("invalid path: {e}")),
    };
    match Uri::from_parts(parts) {
        Ok(uri) => *req.uri_mut() = uri,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &format!("invalid path: {e}")),
    }
    req.extensions_mut().insert(RequestedVersion(v));
    next.run(req).await
}

/// dockerd answers "too old" in plain text and "too new" as JSON; clients print both.
fn out_of_range(too_old: bool, msg: &str) -> Response {
    if too_old {
        return (
            StatusCode::BAD_REQUEST,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            format!("{msg}\n"),
        )
            .into_response();
    }
    json_error(StatusCode::BAD_REQUEST, msg)
}

/// Go's `versions.Compare`: dot-separated parts compared as numbers, a missing part is 0, a
/// part that is not a number is 0 and one too big for an int is the largest int (`Atoi`).
fn go_compare(a: &str, b: &str) -> Ordering {
    let part = |p: Option<&str>| -> u64 {
        match p {
            None | Some("") => 0,
            Some(p) if p.bytes().all(|c| c.is_ascii_digit()) => {
                p.parse().unwrap_or(i64::MAX as u64)
            }
            Some(_) => 0,
        }
    };
    let (mut x, mut y) = (a.split('.'), b.split('.'));
    loop {
        let (p, q) = (x.next(), y.next());
        if p.is_none() && q.is_none() {
            return Ordering::Equal;
        }
        match part(p).cmp(&part(q)) {
            Ordering::Equal => {}
            o => return o,
        }
    }
}

const SERVER: &str = concat!("Wharf/", env!("CARGO_PKG_VERSION"), " (linux)");

/// Adds dockerd's identity headers and logs one line per request (never bodies).
pub async fn common_headers(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("api-version"),
        HeaderValue::from_static(API_VERSION_STR),
    );
    h.insert(
        HeaderName::from_static("docker-experimental"),
        HeaderValue::from_static("false"),
    );
    h.insert(
        HeaderName::from_static("ostype"),
        HeaderValue::from_static("linux"),
    );
    h.insert(header::SERVER, HeaderValue::from_static(SERVER));
    tracing::debug!(
        %method,
        %path,
        status = resp.status().as_u16(),
        duration_ms = start.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    resp
}

/// `API_VERSION` as a static string for the header; a unit test keeps the two in step.
const API_VERSION_STR: &str = "1.44";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_advertised_version() {
        assert_eq!(API_VERSION_STR, API_VERSION.to_string());
    }

    #[test]
    fn splits_prefix() {
        assert_eq!(
            split_version("/v1.41/containers/json"),
            Some(("1.41", "/containers/json"))
        );
        assert_eq!(split_version("/v1.41"), Some(("1.41", "/")));
        assert_eq!(split_version("/version"), None);
        assert_eq!(split_version("/volumes/x"), None);
        assert_eq!(split_version("/_ping"), None);
    }

    #[test]
    fn compares_versions_as_go_does() {
        assert_eq!(go_compare("999", "1.44"), Ordering::Greater);
        assert_eq!(go_compare("1.2.3", "1.24"), Ordering::Less);
        assert_eq!(go_compare("1.", "1.24"), Ordering::Less);
        assert_eq!(go_compare("1.44.0", "1.44"), Ordering::Equal);
        assert_eq!(
            go_compare("99999999999999999999.1", "1.44"),
            Ordering::Greater
        );
        assert_eq!(go_compare("1.24", "1.24"), Ordering::Equal);
    }
}
