//! Registry error responses read as docker/distribution's client reads them
//! (`HandleErrorResponse`), then worded as dockerd words them to its clients
//! (`translatePullError`, `notFoundError`): the texts reach the docker CLI unchanged.

use crate::auth::challenge;
use crate::digest::Digest;
use crate::error::DistributionError;
use http::{HeaderMap, StatusCode};

/// One entry of a registry's `{"errors": [...]}`, its code already folded to the codes
/// docker/distribution registers (an unknown code reads as `UNKNOWN`, as Go's decoder does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorEntry {
    pub code: &'static str,
    pub message: String,
}

impl ErrorEntry {
    /// errcode's `Error()`: the code in lower case with spaces, then the message.
    pub fn text(&self) -> String {
        format!(
            "{}: {}",
            self.code.to_lowercase().replace('_', " "),
            self.message
        )
    }
}

/// What an error response said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    Errors(Vec<ErrorEntry>),
    /// A JSON body that is not an error list.
    Unexpected {
        reason: String,
        body: String,
    },
    /// Not a 4xx: distribution reads no body then.
    Status,
}

/// The codes distribution registers, with the message each carries when a registry sends
/// none.
const CODES: &[(&str, &str)] = &[
    ("UNKNOWN", "unknown error"),
    ("UNSUPPORTED", "The operation is unsupported."),
    ("UNAUTHORIZED", "authentication required"),
    ("DENIED", "requested access to the resource is denied"),
    ("UNAVAILABLE", "service unavailable"),
    ("TOOMANYREQUESTS", "too many requests"),
    (
        "DIGEST_INVALID",
        "provided digest did not match uploaded content",
    ),
    (
        "SIZE_INVALID",
        "provided length did not match content length",
    ),
    ("NAME_INVALID", "invalid repository name"),
    ("TAG_INVALID", "manifest tag did not match URI"),
    ("NAME_UNKNOWN", "repository name not known to registry"),
    ("MANIFEST_UNKNOWN", "manifest unknown"),
    ("MANIFEST_INVALID", "manifest invalid"),
    (
        "MANIFEST_UNVERIFIED",
        "manifest failed signature verification",
    ),
    ("MANIFEST_BLOB_UNKNOWN", "blob unknown to registry"),
    ("BLOB_UNKNOWN", "blob unknown to registry"),
    ("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry"),
    ("BLOB_UPLOAD_INVALID", "blob upload invalid"),
    (
        "PAGINATION_NUMBER_INVALID",
        "invalid number of results requested",
    ),
];

fn entry(code: &str, message: &str) -> ErrorEntry {
    let (code, default) = CODES
        .iter()
        .find(|(c, _)| *c == code)
        .copied()
        .unwrap_or(CODES[0]);
    let message = if message.is_empty() {
        default.to_owned()
    } else {
        message.to_owned()
    };
    ErrorEntry { code, message }
}

#[derive(serde::Deserialize)]
struct Body {
    #[serde(default)]
    errors: Option<Vec<RawEntry>>,
    #[serde(default)]
    details: Option<String>,
}

#[derive(serde::Deserialize)]
struct RawEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// distribution's `makeError`: a status alone (or a non-JSON body) chooses the code.
fn from_status(status: StatusCode, details: &str) -> Parsed {
    let code = match status.as_u16() {
        401 => "UNAUTHORIZED",
        403 => "DENIED",
        429 => "TOOMANYREQUESTS",
        _ => "UNKNOWN",
    };
    // makeError keeps an empty message; the code's own words read better and say the same.
    Parsed::Errors(vec![entry(code, details)])
}

/// Reads an error response as distribution's `HandleErrorResponse` does: bearer challenge
/// errors (`invalid_token`, `insufficient_scope`) first, then the body.
pub(crate) fn parse(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Parsed {
    if !status.is_client_error() {
        return Parsed::Status;
    }
    let mut found = Vec::new();
    for c in challenge::parse_headers(headers) {
        if c.scheme != "bearer" {
            continue;
        }
        let code = match c.param("error") {
            Some("invalid_token") => "UNAUTHORIZED",
            Some("insufficient_scope") => "DENIED",
            _ => continue,
        };
        found.push(entry(code, c.param("error_description").unwrap_or("")));
        break;
    }
    let from_body = parse_body(status, headers, body);
    match (found.is_empty(), from_body) {
        (true, Parsed::Unexpected { .. }) if status == StatusCode::UNAUTHORIZED => {
            Parsed::Errors(vec![entry("UNAUTHORIZED", "")])
        }
        (true, parsed) => parsed,
        (false, Parsed::Errors(more)) => {
            found.extend(more);
            Parsed::Errors(found)
        }
        (false, _) => Parsed::Errors(found),
    }
}

fn parse_body(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Parsed {
    let text = String::from_utf8_lossy(body);
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" && mime != "application/vnd.api+json" {
        return from_status(status, &text);
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(Body {
            details: Some(d), ..
        }) if !d.is_empty() => from_status(status, &d),
        Ok(Body {
            errors: Some(list), ..
        }) if !list.is_empty() => {
            Parsed::Errors(list.iter().map(|e| entry(&e.code, &e.message)).collect())
        }
        Ok(_) => Parsed::Unexpected {
            reason: "no error details found in HTTP response body".into(),
            body: text.into_owned(),
        },
        Err(e) => Parsed::Unexpected {
            reason: e.to_string(),
            body: text.into_owned(),
        },
    }
}

/// What the failed request was doing: dockerd words the same registry error differently
/// for a pull and a push.
#[derive(Debug, Clone)]
pub(crate) enum Context {
    /// Fetching a manifest: `reference` is the familiar `name:tag` or `name@digest`.
    Manifest {
        name: String,
        reference: String,
    },
    /// Any other read (tags, blobs' metadata); `name` is the familiar repository name.
    Pull {
        name: String,
    },
    Blob {
        name: String,
        digest: Digest,
    },
    Push,
}

/// The error a client sees for a registry's error response.
pub(crate) fn to_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    ctx: &Context,
) -> DistributionError {
    match parse(status, headers, body) {
        Parsed::Status => DistributionError::Registry {
            status: status.as_u16(),
            message: format!("received unexpected HTTP status: {}", status_text(status)),
        },
        Parsed::Unexpected { reason, body } => DistributionError::Registry {
            status: status.as_u16(),
            message: format!(
                "error parsing HTTP {} response body: {reason}: {body:?}",
                status.as_u16()
            ),
        },
        Parsed::Errors(list) => match list.first() {
            Some(first) => from_entry(status, first, ctx),
            None => DistributionError::Registry {
                status: status.as_u16(),
                message: format!("received unexpected HTTP status: {}", status_text(status)),
            },
        },
    }
}

fn from_entry(status: StatusCode, e: &ErrorEntry, ctx: &Context) -> DistributionError {
    let pull_name = match ctx {
        Context::Manifest { name, .. } | Context::Pull { name } | Context::Blob { name, .. } => {
            Some(name.as_str())
        }
        Context::Push => None,
    };
    match (e.code, ctx) {
        ("UNAUTHORIZED", _) => DistributionError::Unauthorized(e.message.clone()),
        ("DENIED", _) => match pull_name {
            Some(name) => DistributionError::Denied(format!(
                "pull access denied for {name}, repository does not exist or may require \
                 'docker login': {}",
                e.text()
            )),
            None => DistributionError::Denied(e.text()),
        },
        ("MANIFEST_UNKNOWN", Context::Manifest { reference, .. }) => {
            DistributionError::ManifestUnknown {
                reference: reference.clone(),
                detail: e.text(),
            }
        }
        ("BLOB_UNKNOWN", Context::Blob { digest, .. }) => {
            DistributionError::BlobUnknown(digest.clone())
        }
        ("NAME_UNKNOWN", _) if pull_name.is_some() => DistributionError::Registry {
            status: status.as_u16(),
            message: format!(
                "repository {} not found: {}",
                pull_name.unwrap_or_default(),
                e.text()
            ),
        },
        _ => DistributionError::Registry {
            status: status.as_u16(),
            message: e.text(),
        },
    }
}

/// Go's `resp.Status`: `500 Internal Server Error`.
pub(crate) fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

#[cfg(test)]
mod tests;
