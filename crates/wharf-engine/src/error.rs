//! The engine's one error type: what went wrong, with its operands, in Docker's words where
//! Docker has them, and the [`ErrorKind`] the server turns into a status (in one place,
//! `wharf-server`'s `errors.rs`). The backend impls in `lib.rs` are the only place it becomes a
//! wire [`ApiError`].

use std::io;
use wharf_api::{ApiError, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("Container {0} is not running")]
    NotRunning(String),
    /// The request cannot be done as asked (dockerd's validation words, Wharf's refusals).
    #[error("{0}")]
    Invalid(String),
    /// The object's state forbids it now (running, paused, in use...).
    #[error("{0}")]
    Conflict(String),
    /// Something else named in the request does not exist (a network, a donor container...).
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NotImplemented(String),
    /// Not allowed, whatever the state (`'scratch' is a reserved name`).
    #[error("{0}")]
    Forbidden(String),
    /// A registry refused the credentials (`POST /auth`).
    #[error("{0}")]
    Unauthorized(String),
    /// Nothing to do (already started, already stopped): HTTP 304, no body.
    #[error("not modified")]
    NotModified,
    /// The host failed us: a file, a mount, a socket.
    #[error("{op}: {}", io_words(source))]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("{op}: {}", storage_words(source))]
    Storage {
        op: String,
        #[source]
        source: wharf_storage::StorageError,
    },
    /// Talking to a container's shim failed.
    #[error("{op} (container {id}): {source}")]
    Shim {
        id: String,
        op: String,
        #[source]
        source: io::Error,
    },
    /// A bug or an impossible state, with what was being done.
    #[error("{0}")]
    Internal(String),
}

/// Docker's (Go's) words for a full disk, which clients and scripts look for.
const DISK_FULL: &str = "no space left on device";

fn is_enospc(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

fn io_words(e: &io::Error) -> String {
    if is_enospc(e) {
        DISK_FULL.to_string()
    } else {
        e.to_string()
    }
}

/// A storage error as a client may read it: never a path under the data root (issue 13), and
/// a full disk (a file's `ENOSPC`, SQLite's "database or disk is full") in Docker's words.
fn storage_words(e: &wharf_storage::StorageError) -> String {
    use wharf_storage::StorageError;
    if !e.is_disk_full() {
        return e.public_message();
    }
    match e {
        StorageError::Io { op, .. } => format!("{op}: {DISK_FULL}"),
        StorageError::Db(_) => format!("metadata database: {DISK_FULL}"),
        _ => DISK_FULL.to_string(),
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// A failure of the host or of a store, and the operation it interrupted; the source error is
/// kept (an I/O error stays an I/O error, with its errno), not flattened into a string.
pub trait Cause {
    fn during(self, op: &str) -> EngineError;
}

impl Cause for io::Error {
    fn during(self, op: &str) -> EngineError {
        EngineError::io(op, self)
    }
}

impl Cause for wharf_storage::StorageError {
    fn during(self, op: &str) -> EngineError {
        EngineError::storage(op, self)
    }
}

/// Encoding or decoding Wharf's own documents: a bug or a damaged file, not the user's input.
impl Cause for serde_json::Error {
    fn during(self, op: &str) -> EngineError {
        EngineError::Internal(format!("{op}: {self}"))
    }
}

/// Errors whose text is all there is to say: a background task that died, a spec that could
/// not be read or built.
macro_rules! cause_by_text {
    ($($t:ty),*) => {$(
        impl Cause for $t {
            fn during(self, op: &str) -> EngineError {
                EngineError::Internal(format!("{op}: {self}"))
            }
        }
    )*};
}
cause_by_text!(
    tokio::task::JoinError,
    oci_spec::OciSpecError,
    wharf_runtime::spec::SpecError
);

impl Cause for EngineError {
    fn during(self, op: &str) -> EngineError {
        match self {
            EngineError::Internal(m) => EngineError::Internal(format!("{op}: {m}")),
            other => other,
        }
    }
}

impl EngineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::NoSuchContainer(_)
            | EngineError::NoSuchImage(_)
            | EngineError::NoSuchExec(_)
            | EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::NameInUse { .. }
            | EngineError::NotRunning(_)
            | EngineError::Conflict(_) => ErrorKind::Conflict,
            EngineError::Invalid(_) => ErrorKind::InvalidArgument,
            EngineError::NotImplemented(_) => ErrorKind::NotImplemented,
            EngineError::Forbidden(_) => ErrorKind::Forbidden,
            EngineError::Unauthorized(_) => ErrorKind::Unauthorized,
            EngineError::NotModified => ErrorKind::NotModified,
            EngineError::Io { .. }
            | EngineError::Storage { .. }
            | EngineError::Shim { .. }
            | EngineError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The user-facing words (what the API sends as `message`).
    pub fn message(&self) -> String {
        self.to_string()
    }

    pub fn invalid(m: impl Into<String>) -> Self {
        EngineError::Invalid(m.into())
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        EngineError::Conflict(m.into())
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        EngineError::NotFound(m.into())
    }
    pub fn not_implemented(m: impl Into<String>) -> Self {
        EngineError::NotImplemented(m.into())
    }
    pub fn not_modified() -> Self {
        EngineError::NotModified
    }
    pub fn internal(m: impl Into<String>) -> Self {
        EngineError::Internal(m.into())
    }
    pub fn no_such_container(name: &str) -> Self {
        EngineError::NoSuchContainer(name.to_string())
    }
    pub fn no_such_image(name: &str) -> Self {
        EngineError::NoSuchImage(name.to_string())
    }
    pub fn io(op: impl Into<String>, source: io::Error) -> Self {
        EngineError::Io {
            op: op.into(),
            source,
        }
    }
    pub fn storage(op: impl Into<String>, source: wharf_storage::StorageError) -> Self {
        EngineError::Storage {
            op: op.into(),
            source,
        }
    }
    pub fn shim(id: &str, op: impl Into<String>, source: io::Error) -> Self {
        EngineError::Shim {
            id: id.to_string(),
            op: op.into(),
            source,
        }
    }
}

/// `wharf-api`'s pure helpers (filters, detach keys) answer in Docker's words with a kind;
/// the engine passes those on unchanged.
impl From<ApiError> for EngineError {
    fn from(e: ApiError) -> EngineError {
        match e.kind {
            ErrorKind::NotFound => EngineError::NotFound(e.message),
            ErrorKind::InvalidArgument => EngineError::Invalid(e.message),
            ErrorKind::Conflict => EngineError::Conflict(e.message),
            ErrorKind::NotModified => EngineError::NotModified,
            ErrorKind::NotImplemented => EngineError::NotImplemented(e.message),
            ErrorKind::Forbidden => EngineError::Forbidden(e.message),
            ErrorKind::Unauthorized => EngineError::Unauthorized(e.message),
            ErrorKind::Unavailable | ErrorKind::Internal => EngineError::Internal(e.message),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        ApiError::new(e.kind(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_words() {
        let e = EngineError::NameInUse {
            name: "web".into(),
            id: "abc".into(),
        };
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(e
            .to_string()
            .starts_with("Conflict. The container name \"/web\""));
        let api: ApiError = EngineError::no_such_container("x").into();
        assert_eq!(
            (api.kind, api.message.as_str()),
            (ErrorKind::NotFound, "No such container: x")
        );
        let e = EngineError::io("writing hosts", io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            e.to_string(),
            "writing hosts: no space left on device",
            "Docker's words for a full disk"
        );
        assert_eq!(
            ApiError::from(EngineError::NotModified).kind,
            ErrorKind::NotModified
        );
    }
}
