//! Wharf's storage layer: everything the daemon keeps on disk except container runtime state.
//!
//! Owns:
//! - [`content`]: immutable blobs addressed by sha256, verified on ingest before they become visible;
//! - [`snapshot`]: an overlayfs snapshotter (containerd-style) that hands out [`Mount`]s and never sees tar;
//! - [`diff`]: applying layer tars (plain or gzip) into an overlay upper dir, with whiteouts;
//! - [`layer`]: the glue "blob in, committed snapshot out" used by pull and load;
//! - [`meta`]: the SQLite metadata database (schema, migrations, typed records);
//! - [`layout`]: where each of those lives under the data root.
//!
//! Must not touch: containers' lifecycle (it stores their records as opaque JSON and nothing more),
//! networks, HTTP, the runtime. It decides no policy: "may this image be deleted?" is the engine's call.
//!
//! Every type here is `Send + Sync` and every method takes `&self`, so the daemon can share one instance
//! behind an `Arc` and call it from `spawn_blocking`.

pub mod content;
pub mod diff;
pub mod digest;
pub mod layer;
pub mod layout;
pub mod meta;
pub mod snapshot;
// The testkit's skip for the unit tests that need root (the testkit is not a dependency here).
#[cfg(test)]
#[path = "../../wharf-testkit/src/skip.rs"]
mod test_skip;

use std::path::PathBuf;

pub use content::{ContentStore, Ingested};
pub use diff::{apply_layer, ApplyStats, Compression};
pub use digest::{chain_id, chain_id_next, Digest};
pub use layer::{
    cleanup_interrupted_imports, import_layer, LayerImport, MEDIA_TYPE_LAYER_TAR,
    MEDIA_TYPE_LAYER_TAR_GZIP, MEDIA_TYPE_LAYER_TAR_ZSTD,
};
pub use layout::DataRoot;
pub use meta::{ContainerRecord, Db, ImageRecord, SnapshotKind, SnapshotRecord};
pub use snapshot::{mount_all, unmount, Mount, SnapshotInfo, Snapshotter};

/// Every failure of this crate. Variants carry the operand the caller needs to build a message.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metadata database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(
        "metadata database schema version {found} is newer than this binary supports ({supported})"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex>")]
    InvalidDigest(String),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        expected: digest::Digest,
        actual: digest::Digest,
    },
    #[error("blob not found: {0}")]
    BlobNotFound(digest::Digest),
    #[error("snapshot not found: {0}")]
    SnapshotNotFound(String),
    #[error("snapshot already exists: {0}")]
    SnapshotExists(String),
    #[error("snapshot {key} is {actual}, expected {expected}")]
    SnapshotWrongKind {
        key: String,
        expected: meta::SnapshotKind,
        actual: meta::SnapshotKind,
    },
    #[error("snapshot {key} has children: {children:?}")]
    SnapshotHasChildren { key: String, children: Vec<String> },
    #[error("invalid layer: {0}")]
    InvalidLayer(String),
    #[error("unsafe path in layer: {path:?}: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    #[error("mount {kind} {source_path} on {target}: {errno}")]
    Mount {
        kind: String,
        source_path: String,
        target: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("unmount {target}: {errno}")]
    Unmount {
        target: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("image not found: {0}")]
    ImageNotFound(String),
    #[error("tag not found: {0}")]
    TagNotFound(String),
    #[error("container not found: {0}")]
    ContainerNotFound(String),
    #[error("container already exists: {0}")]
    ContainerExists(String),
    #[error("the container name \"{name}\" is already in use by container \"{existing_id}\"")]
    NameConflict { name: String, existing_id: String },
}

impl StorageError {
    /// True when the operand simply does not exist (the engine maps this to 404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StorageError::BlobNotFound(_)
                | StorageError::SnapshotNotFound(_)
                | StorageError::ImageNotFound(_)
                | StorageError::TagNotFound(_)
                | StorageError::ContainerNotFound(_)
        )
    }

    /// True when the operation clashed with existing state (the engine maps this to 409).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            StorageError::SnapshotExists(_)
                | StorageError::SnapshotHasChildren { .. }
                | StorageError::ContainerExists(_)
                | StorageError::NameConflict { .. }
        )
    }

    /// True when the caller's input was at fault (bad digest, bad layer), not the host.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            StorageError::InvalidDigest(_)
                | StorageError::DigestMismatch { .. }
                | StorageError::InvalidLayer(_)
                | StorageError::UnsafePath { .. }
        )
    }

    /// True when the filesystem under the data root is full: an `ENOSPC` (or `EDQUOT`) from a
    /// file operation, or SQLite's "database or disk is full".
    pub fn is_disk_full(&self) -> bool {
        match self {
            StorageError::Io { source, .. } => {
                matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
            }
            StorageError::Db(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            _ => false,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// Attaches the operation and path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| StorageError::io(op, path, e))
    }
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    // Uniqueness is also enforced by create_new / rename checks, so a failure here is not fatal.
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}
    #[test]
    fn public_types_are_send_sync() {
        assert_send_sync::<super::ContentStore>();
        assert_send_sync::<super::Snapshotter>();
        assert_send_sync::<super::Db>();
        assert_send_sync::<super::StorageError>();
        assert_send_sync::<super::Digest>();
    }
}
