//! The one error type of the client.

use std::io;

/// Everything a call can fail with: the daemon's own answer (`Api`) or the way there.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The host string is not `unix:///path`, `tcp://host:port` or `http://host:port`.
    #[error("invalid daemon host {host:?}: {reason}")]
    InvalidHost { host: String, reason: String },

    /// The socket could not be reached (daemon not running, wrong path, refused).
    #[error("cannot connect to the daemon at {addr}: {source}")]
    Connect { addr: String, source: io::Error },

    /// A TLS file (CA, certificate, key) could not be read or used.
    #[error("{reason}")]
    TlsConfig { path: String, reason: String },

    /// The TLS handshake with the daemon failed (untrusted certificate, wrong name, ...).
    #[error("error during connect: {addr}: {source}")]
    Tls { addr: String, source: io::Error },

    /// The daemon answered with a non-success status; `message` comes from its `{"message"}` body.
    #[error("Error response from daemon: {message} (HTTP {status})")]
    Api { status: u16, message: String },

    /// A JSON message stream (import, pull, load) carried an `error` after a 200.
    #[error("daemon reported an error in its stream: {message}")]
    Stream { message: String },

    /// HTTP-level failure (connection reset, malformed response, ...).
    #[error("HTTP error talking to the daemon: {0}")]
    Http(#[from] hyper::Error),

    /// The request could not be built (bad characters in a path or header).
    #[error("cannot build request {path:?}: {source}")]
    Request { path: String, source: http::Error },

    /// A response body was not the JSON we expected.
    #[error("cannot decode the answer to {path}: {source}")]
    Decode {
        path: String,
        source: serde_json::Error,
    },

    /// A request body could not be serialized.
    #[error("cannot encode the request body for {path}: {source}")]
    Encode {
        path: String,
        source: serde_json::Error,
    },

    /// The daemon did not switch protocols when asked to hijack the connection.
    #[error("daemon did not upgrade the connection for {path}: HTTP {status}")]
    NotUpgraded { path: String, status: u16 },

    /// A multiplexed (stdcopy) stream was malformed.
    #[error("malformed stdcopy stream: {0}")]
    Stdcopy(String),

    /// I/O on a hijacked stream.
    #[error("I/O on the daemon connection: {0}")]
    Io(#[from] io::Error),
}

impl ClientError {
    /// The HTTP status of an `Api` error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a 404 from the daemon (`No such container`, `No such image`, ...).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// True for a 409 from the daemon (name in use, removing a running container, ...).
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }
}
