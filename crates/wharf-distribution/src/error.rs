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
