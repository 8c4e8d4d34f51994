//! What can go wrong talking to a registry, worded as dockerd words it to its clients.

use crate::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    /// The registry answered 401 even with the credentials given (or none were given).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403, or 401/404 on a repository the credentials cannot see: Docker's
    /// `pull access denied for <name>, repository does not exist or may require 'docker login'`.
    #[error("{0}")]
    Denied(String),
    /// The tag or digest is not in the repository (`manifest unknown`).
    #[error("manifest for {reference} not found: {detail}")]
    ManifestUnknown { reference: String, detail: String },
    #[error("blob {0} not found in the registry")]
    BlobUnknown(Digest),
    /// Content that hashes to something other than what it was asked for.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: String },
    /// A manifest or index Wharf cannot use (unknown media type, bad JSON, schema1).
    #[error("{0}")]
    InvalidManifest(String),
    /// No manifest in an index for the asked platform: Docker's words.
    #[error("no matching manifest for {0} in the manifest list entries")]
    NoMatchingPlatform(String),
    /// Any other registry error response: status and the registry's own error text.
    #[error("{message}")]
    Registry { status: u16, message: String },
    /// A request that got no answer to read, as Go's `*url.Error` words it: the request
    /// (`Head "<url>"`), then why (`dial tcp …`, `no basic auth credentials`, a token
    /// server's refusal). dockerd shows a layer upload's or download's without the request
    /// (its `retryOnError` unwraps it): [`DistributionError::into_cause`].
    #[error("{op}: {cause}")]
    Request {
        op: String,
        cause: Box<DistributionError>,
    },
    /// The registry asks for basic auth and there are no credentials, so the request is
    /// not sent: distribution's `ErrNoBasicAuthCredentials`.
    #[error("no basic auth credentials")]
    NoBasicAuthCredentials,
    /// The token server answered without a token: distribution's `ErrNoToken`.
    #[error("authorization server did not include a token in the response")]
    NoToken,
    /// Connecting, TLS, a broken stream after every retry.
    #[error("{0}")]
    Transport(String),
    /// A setting or request Wharf refuses (bad `X-Registry-Auth`, a bad platform string).
    #[error("{0}")]
    Invalid(String),
}

impl DistributionError {
    /// The error wrapped in the request that met it (Go's `*url.Error`).
    pub(crate) fn of_request(op: String, cause: DistributionError) -> DistributionError {
        DistributionError::Request {
            op,
            cause: Box::new(cause),
        }
    }

    /// What dockerd's `retryOnError` leaves of a layer transfer's error: a failed request's
    /// cause without the request; any other error as it is.
    pub fn into_cause(self) -> DistributionError {
        match self {
            DistributionError::Request { cause, .. } => *cause,
            other => other,
        }
    }

    /// Worth another attempt of a layer upload, as dockerd's `retryOnError` leaves it
    /// retryable: no answer (a connection, TLS or stream failure) or a 5xx (distribution's
    /// `UnexpectedHTTPStatusError`). Never missing credentials, a refused token, or any
    /// other answer the registry gave (401, 403, 404, 429, an invalid digest).
    pub fn is_retryable(&self) -> bool {
        match self {
            DistributionError::Transport(_) => true,
            DistributionError::Registry { status, .. } => *status >= 500,
            DistributionError::Request { cause, .. } => cause.is_retryable(),
            _ => false,
        }
    }

    /// No answer came from the registry (a connection or TLS failure, a cut stream): worth
    /// another attempt, at the same endpoint or the next.
    pub fn is_transport(&self) -> bool {
        match self {
            DistributionError::Transport(_) => true,
            DistributionError::Request { cause, .. } => cause.is_transport(),
            _ => false,
        }
    }
}

pub type Result<T, E = DistributionError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::DistributionError as E;

    #[test]
    fn only_no_answer_and_5xx_are_retried() {
        let req = |cause| E::of_request("Put \"http://r/v2/x/blobs/uploads/1\"".into(), cause);
        assert!(E::Transport("connection reset by peer".into()).is_retryable());
        assert!(req(E::Transport("connection refused".into())).is_retryable());
        assert!(E::Registry {
            status: 503,
            message: String::new()
        }
        .is_retryable());
        assert!(!E::Registry {
            status: 400,
            message: String::new()
        }
        .is_retryable());
        assert!(!E::Registry {
            status: 429,
            message: String::new()
        }
        .is_retryable());
        assert!(!E::Unauthorized("authentication required".into()).is_retryable());
        assert!(
            !E::Denied("denied: requested access to the resource is denied".into()).is_retryable()
        );
        assert!(!req(E::NoBasicAuthCredentials).is_retryable());
        assert!(!req(E::NoToken).is_retryable());
    }
}
