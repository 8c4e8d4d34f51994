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

pub fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::to_vec(&ErrorBody {
        message: message.to_string(),
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
