//! Wharf's storage layer: everything the daemon keeps on disk except container runtime state.
//!
//! Owns:
//! - [`content`]: immutable blobs addressed by sha256, verified on ingest before they become visible,
//!   and what cut-off downloads received, for the next to resume;
//! - [`snapshot`]: an overlayfs snapshotter (containerd-style) that hands out [`Mount`]s and never sees tar;
//! - [`diff`]: applying layer tars (plain, gzip or zstd) into an overlay upper dir, with whiteouts;
//! - [`layer`]: the glue "blob in, committed snapshot out" used by every layer source, whole or in
//!   two halves (unpacked on no parent, then committed onto its parent) for layers unpacked side by side;
//! - [`ingest`]: the limits and cancellation every layer ingest runs under;
//! - [`meta`]: the SQLite metadata database (schema, migrations, typed records);
//! - [`layout`]: where each of those lives under the data root.
//!
//! Must not touch: containers' lifecycle (it stores their records as opaque JSON and nothing more),
//! networks, HTTP, the runtime. It decides no policy: "may this image be deleted?" is the engine's call.
//!
//! Every type here is `Send + Sync` and every method takes `&self`, so the daemon can share one instance
//! behind an `Arc` and call it from `spawn_blocking`.

pub mod changes;
pub mod content;
pub mod diff;
pub mod digest;
pub mod ingest;
pub mod layer;
pub mod layout;
pub mod meta;
pub mod mountinfo;
pub mod snapshot;
// The testkit's skip for the unit tests that need root (the testkit is not a dependency here).
#[cfg(test)]
#[path = "../../wharf-testkit/src/skip.rs"]
mod test_skip;

use std::path::PathBuf;

pub use content::{BlobWriter, ContentStore, Ingested};
pub use diff::{apply_layer, decompressed, ApplyStats, Compression};
pub use digest::{chain_id, chain_id_next, Digest};
pub use ingest::{Cancel, IngestLimits, IngestPolicy, MinFree, Space, SpaceProbe};
pub use layer::{
    cleanup_interrupted_imports, commit_layer, import_layer, import_layer_detached, DetachedLayer,
    LayerImport, LayerIngest, Resume, MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_LAYER_TAR_GZIP,
    MEDIA_TYPE_LAYER_TAR_ZSTD,
};
pub use layout::DataRoot;
pub use meta::{ContainerRecord, Db, ImageRecord, SnapshotKind, SnapshotRecord, VolumeRecord};
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
    /// The stream is not a tar archive at all (or is cut short), as opposed to a tar with a
    /// bad entry.
    #[error("not a tar archive (plain, gzip or zstd): {0}")]
    NotATar(String),
    /// A stream compressed in a way this build cannot read (xz, bzip2).
    #[error("unsupported compression {0}: only plain, gzip and zstd streams can be read")]
    UnsupportedCompression(String),
    #[error("unsafe path in layer: {path:?}: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    /// A file operation failed on one entry of a layer. Names the entry as the layer spells
    /// it, never the path under the data root.
    #[error("{op} \"{entry}\" in the layer: {}", errno_words(source))]
    LayerEntry {
        entry: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("layer too large: it expands to more than {}, the daemon's maximum layer size (wharfd --max-layer-size)", ingest::human_bytes(*limit))]
    LayerTooLarge { limit: u64 },
    #[error("layer refused as a decompression bomb: {} of compressed data expanded to more than {}, over {ratio} times its size (wharfd --max-layer-ratio, counted past {})", ingest::human_bytes(*compressed), ingest::human_bytes(*expanded), ingest::human_bytes(*floor))]
    LayerRatio {
        ratio: u64,
        floor: u64,
        compressed: u64,
        expanded: u64,
    },
    /// Docker's words for a full disk first: clients and scripts look for them.
    #[error("no space left on device: the data root's filesystem has {} free, below the {} the daemon keeps free (wharfd --min-free-space={setting})", ingest::human_bytes(*free), ingest::human_bytes(*reserve))]
    LowSpace {
        free: u64,
        reserve: u64,
        setting: ingest::MinFree,
    },
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// A download cannot go on from where its caller asked: start it over from byte 0.
    #[error("cannot resume the download of {digest} at byte {offset}: {reason}")]
    ResumeUnavailable {
        digest: digest::Digest,
        offset: u64,
        reason: String,
    },
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
                | StorageError::NotATar(_)
                | StorageError::UnsupportedCompression(_)
                | StorageError::UnsafePath { .. }
                | StorageError::LayerTooLarge { .. }
                | StorageError::LayerRatio { .. }
        ) || matches!(self, StorageError::LayerEntry { op, source, .. } if !is_host_fault(op, source))
    }

    /// The message for a client: like `Display`, but an I/O error does not show the path
    /// under the data root it happened on (the daemon's log has it).
    pub fn public_message(&self) -> String {
        match self {
            StorageError::Io { op, source, .. } => format!("{op}: {}", errno_words(source)),
            StorageError::Mount { kind, errno, .. } => format!("mount {kind}: {}", errno.desc()),
            StorageError::Unmount { errno, .. } => format!("unmount: {}", errno.desc()),
            other => other.to_string(),
        }
    }

    /// An I/O error on a layer entry's file, as [`StorageError::LayerEntry`] naming `entry`.
    pub(crate) fn in_layer_entry(self, entry: &str) -> StorageError {
        match self {
            StorageError::Io { op, source, .. } => StorageError::LayerEntry {
                entry: entry.to_owned(),
                op,
                source,
            },
            other => other,
        }
    }

    /// True when the filesystem under the data root is full: an `ENOSPC` (or `EDQUOT`) from a
    /// file operation, or SQLite's "database or disk is full".
    pub fn is_disk_full(&self) -> bool {
        match self {
            StorageError::Io { source, .. } | StorageError::LayerEntry { source, .. } => {
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

/// Errors that say the host is in trouble (full, read-only, out of memory or descriptors,
/// failing hardware, missing privileges) whatever the entry: the daemon's fault, never the
/// layer's. Every other errno on a layer entry (an invalid xattr, a name too long, too many
/// links...) is the layer's. `EPERM` from setting an xattr is the layer's too: `user.*` on a
/// symlink, for one.
fn is_host_fault(op: &str, e: &std::io::Error) -> bool {
    if op == "set xattr on" && e.raw_os_error() == Some(libc::EPERM) {
        return false;
    }
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENOSPC
                | libc::EDQUOT
                | libc::EROFS
                | libc::EIO
                | libc::ENOMEM
                | libc::EMFILE
                | libc::ENFILE
                | libc::EPERM
                | libc::EACCES
        ) | None
    )
}

/// An I/O error in Go's words ("invalid argument", "file name too long"), without Rust's
/// "(os error N)".
fn errno_words(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let d = nix::errno::Errno::from_raw(n).desc();
            let mut c = d.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => e.to_string(),
            }
        }
        None => e.to_string(),
    }
}

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
        assert_send_sync::<super::DetachedLayer>();
    }
}
