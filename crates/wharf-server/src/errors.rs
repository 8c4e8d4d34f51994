//! The one place where an [`ErrorKind`] becomes an HTTP status, and the `{"message": ...}` body
//! every error carries.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use wharf_api::{ApiError, ErrorBody, ErrorKind};

/// The HTTP status Docker uses for each kind of failure.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An [`ApiError`] on its way out as a response (a local type, so it can implement
/// `IntoResponse`).
#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        HttpError(e)
    }
}

impl HttpError {
    pub fn invalid(m: impl Into<String>) -> Self {
        HttpError(ApiError::invalid(m))
    }
    pub fn not_implemented(m: impl Into<String>) -> Self {
        HttpError(ApiError::not_implemented(m))
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        HttpError(ApiError::not_found(m))
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}

pub fn error_response(e: &ApiError) -> Response {
    let status = status_for(e.kind);
    // A 304 must not carry a body; clients (docker start on a running container) expect none.
    if status == StatusCode::NOT_MODIFIED {
        return status.into_response();
    }
    json_error(status, &e.message)
}

/// The daemon's own directories, as messages name them instead (`<data-root>`, `<exec-root>`):
/// a client learns what failed, not where the daemon keeps its state. Set once at start by
/// [`hide_paths`]; the engine's messages should not carry these paths in the first place, and
/// this is the last line behind them, for every error answer.
static HIDDEN: std::sync::OnceLock<Vec<(String, &'static str)>> = std::sync::OnceLock::new();

/// Registers the roots error messages must not show (both as given and canonical); the
/// longest is rewritten first, so a root inside another keeps its own name.
pub fn hide_paths(roots: &[(&std::path::Path, &'static str)]) {
    let mut all = Vec::new();
    for (p, name) in roots {
        let given = p.display().to_string();
        let canonical = std::fs::canonicalize(p).map(|c| c.display().to_string());
        for s in std::iter::once(given).chain(canonical) {
            let s = s.trim_end_matches('/').to_string();
            if !s.is_empty() && !all.iter().any(|(x, _)| *x == s) {
                all.push((s, *name));
            }
        }
    }
    all.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
    let _ = HIDDEN.set(all);
}

/// `message` with every registered root replaced by its name.
pub fn redact(message: &str) -> std::borrow::Cow<'_, str> {
    redact_with(HIDDEN.get().map(Vec::as_slice).unwrap_or(&[]), message)
}

fn redact_with<'a>(
    roots: &[(String, &'static str)],
    message: &'a str,
) -> std::borrow::Cow<'a, str> {
    let mut out = std::borrow::Cow::Borrowed(message);
    for (root, name) in roots {
        if out.contains(root.as_str()) {
            out = std::borrow::Cow::Owned(out.replace(root.as_str(), name));
        }
    }
    out
}

pub fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::to_vec(&ErrorBody {
        message: redact(message).into_owned(),
    })
    .unwrap_or_else(|_| b"{\"message\":\"internal error\"}".to_vec());
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Every Engine API route Wharf does not serve yet: a loud 501 rather than a silent 404, so a
/// client's error says what is missing.
pub fn not_implemented_message(method: &str, path: &str) -> String {
    format!("{method} {path} is not implemented in Wharf yet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_named_not_shown() {
        let roots = vec![
            ("/var/lib/wharf/exec".to_string(), "<exec-root>"),
            ("/var/lib/wharf".to_string(), "<data-root>"),
        ];
        assert_eq!(
            redact_with(
                &roots,
                "creating /var/lib/wharf/containers/abc: no space left on device"
            ),
            "creating <data-root>/containers/abc: no space left on device"
        );
        assert_eq!(
            redact_with(
                &roots,
                "mount /var/lib/wharf/exec/containers/x/rootfs and /var/lib/wharf/y"
            ),
            "mount <exec-root>/containers/x/rootfs and <data-root>/y"
        );
        assert!(matches!(
            redact_with(&roots, "No such container: x"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
