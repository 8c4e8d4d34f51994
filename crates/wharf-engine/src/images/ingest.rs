//! What every layer source (import and pull today; load, build, commit and cp later) shares
//! around `wharf_storage::import_layer`: a request body as a cancellable blocking reader, the
//! mapping of a failed ingest to the client's error, and the limits as `docker info` and the
//! start log show them.
//!
//! A new source does, in its async backend method:
//! `let (mut guard, cancel, reader) = cancellable_body(body);`, then in `spawn_blocking`
//! `import_layer(.., reader, parent, LayerIngest { policy: &ctx.ingest, cancel: &cancel,
//! expected_blob })` mapping errors with [`layer_error`], and after the await
//! `guard.disarm()`. A dropped request then stops the ingest and leaves nothing.

use crate::error::EngineError;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};
use wharf_backend::BodyStream;

/// Cancels an ingest when dropped unless disarmed: the request future that owns it is dropped
/// when its client goes away, and the blocking task must then stop and undo.
pub(crate) struct CancelOnDrop {
    cancel: wharf_storage::Cancel,
    armed: bool,
    /// Dropping it ends the body stream the blocking task may be waiting on.
    _wake: tokio::sync::oneshot::Sender<()>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.cancel.cancel();
        }
    }
}

/// A request body as a blocking reader for an ingest: it ends when `cancel_rx` fires (the
/// request was dropped), so the reading thread never waits on a body nobody will send; the
/// ingest then sees the cancel flag rather than a clean end.
fn reader(
    body: BodyStream,
    cancel_rx: tokio::sync::oneshot::Receiver<()>,
) -> SyncIoBridge<impl tokio::io::AsyncRead + Unpin> {
    let body = body
        .map(|r: Result<Bytes, std::io::Error>| r)
        .take_until(cancel_rx);
    SyncIoBridge::new(StreamReader::new(body))
}

impl CancelOnDrop {
    /// The request finished: dropping the guard now must not cancel anything.
    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

/// A request body as a blocking reader that a dropped request cancels: the guard (keep it in
/// the request's future), the flag to pass to the ingest, the reader.
pub(crate) fn cancellable_body(
    body: BodyStream,
) -> (
    CancelOnDrop,
    wharf_storage::Cancel,
    SyncIoBridge<impl tokio::io::AsyncRead + Unpin>,
) {
    let (wake_tx, wake_rx) = tokio::sync::oneshot::channel();
    let cancel = wharf_storage::Cancel::new();
    let guard = CancelOnDrop {
        cancel: cancel.clone(),
        armed: true,
        _wake: wake_tx,
    };
    (guard, cancel, reader(body, wake_rx))
}

/// A guard and its flag for an ingest that reads no request body (a stored blob, a pull's
/// download): dropping the guard, with the request future holding it, cancels the ingest.
pub(crate) fn cancel_guard() -> (CancelOnDrop, wharf_storage::Cancel) {
    let (wake_tx, _) = tokio::sync::oneshot::channel();
    let cancel = wharf_storage::Cancel::new();
    let guard = CancelOnDrop {
        cancel: cancel.clone(),
        armed: true,
        _wake: wake_tx,
    };
    (guard, cancel)
}

/// A failed layer ingest as the client sees it: the layer's faults (not a tar, unsafe or
/// invalid entries, past a size or ratio limit) are 400 and say what is wrong with the layer;
/// the daemon's (no space, I/O) are 500. No message names a path under the data root: the
/// log line has the full error.
pub(crate) fn layer_error(
    what: &str,
    e: wharf_storage::StorageError,
    started: std::time::Instant,
) -> EngineError {
    use wharf_storage::StorageError as S;
    let secs = started.elapsed().as_secs_f64();
    match &e {
        S::Cancelled(why) => {
            tracing::warn!(reason = %why, elapsed_s = secs, "{what}: cancelled, the client went away; removed the partial layer");
            EngineError::internal(format!("{what}: {}", e.public_message()))
        }
        S::InvalidLayer(_) | S::NotATar(_) => {
            tracing::info!(error = %e, "{what}: refused");
            // Parser errors can quote the garbage they choked on: control characters are
            // escaped so the answer stays printable, nothing else (quotes stay as they are).
            let detail: String = e
                .to_string()
                .chars()
                .take(200)
                .flat_map(|c| {
                    let escaped: Vec<char> = if c.is_control() {
                        c.escape_default().collect()
                    } else {
                        vec![c]
                    };
                    escaped
                })
                .collect();
            EngineError::invalid(format!("{what}: {detail}"))
        }
        _ if e.is_invalid_input() => {
            tracing::info!(error = %e, elapsed_s = secs, "{what}: refused");
            EngineError::invalid(format!("{what}: {}", e.public_message()))
        }
        _ => {
            tracing::warn!(error = %e, elapsed_s = secs, "{what}: failed");
            EngineError::internal(format!("{what}: {}", public_words(&e)))
        }
    }
}

/// [`wharf_storage::StorageError::public_message`], with a full disk in Docker's words.
fn public_words(e: &wharf_storage::StorageError) -> String {
    if e.is_disk_full() {
        "no space left on device".to_string()
    } else {
        e.public_message()
    }
}

/// The ingest limits in force, as `docker info` shows them under the storage driver (and
/// the start log line): what each flag resolved to.
pub(crate) fn status(p: &wharf_storage::IngestPolicy) -> [(&'static str, String); 3] {
    use wharf_storage::ingest::human_bytes;
    let l = p.limits();
    let size = if l.max_layer_size == 0 {
        "none".to_string()
    } else {
        human_bytes(l.max_layer_size)
    };
    let ratio = if l.max_ratio == 0 {
        "off".to_string()
    } else {
        format!("{}x past {}", l.max_ratio, human_bytes(l.ratio_floor))
    };
    let reserve = match p.reserve_bytes() {
        Ok(b) => format!("{} ({})", human_bytes(b), l.min_free),
        Err(e) => format!("{} (cannot measure the data root: {e})", l.min_free),
    };
    [
        ("Max Layer Size", size),
        ("Max Layer Ratio", ratio),
        ("Min Free Space", reserve),
    ]
}

pub(crate) fn log_limits(p: &wharf_storage::IngestPolicy) {
    let [(_, size), (_, ratio), (_, reserve)] = status(p);
    tracing::info!(
        max_layer_size = %size,
        max_layer_ratio = %ratio,
        min_free_space = %reserve,
        "layer ingest limits"
    );
}
