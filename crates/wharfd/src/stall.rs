//! Noticing when the async workers are all blocked (issue 13: `/_ping` unanswered for ~40 s).
//!
//! wharfd runs its API on two async workers. Synchronous work done on one of them (a long
//! computation, a blocking syscall, a lock held by a blocking task) takes that worker away from
//! every other request; when both are taken, nothing answers, not even `/_ping`. A plain thread
//! outside the runtime hands it a no-op task every [`PROBE_EVERY`] and logs, once per episode,
//! when no worker ran it for [`STALLED_AFTER`], and again with the total when one finally did,
//! so such work shows up in the log instead of as a daemon that silently stops answering.

use std::sync::mpsc;
use std::time::{Duration, Instant};

const PROBE_EVERY: Duration = Duration::from_secs(1);
const STALLED_AFTER: Duration = Duration::from_secs(2);

/// Starts the watching thread; it ends with the process.
pub fn watch(handle: tokio::runtime::Handle) {
    let spawned = std::thread::Builder::new()
        .name("stall-watch".into())
        .spawn(move || loop {
            std::thread::sleep(PROBE_EVERY);
            let (tx, rx) = mpsc::sync_channel::<()>(1);
            let asked = Instant::now();
            handle.spawn(async move {
                let _ = tx.send(());
            });
            if rx.recv_timeout(STALLED_AFTER).is_ok() {
                continue;
            }
            tracing::warn!(
                "the async workers have run nothing for {} s: blocking work on an async thread \
                 (requests, /_ping included, wait until it ends)",
                STALLED_AFTER.as_secs()
            );
            if rx.recv().is_err() {
                return; // The runtime is gone.
            }
            tracing::warn!(
                stalled_ms = asked.elapsed().as_millis() as u64,
                "the async workers run again"
            );
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the stall watch");
    }
}
