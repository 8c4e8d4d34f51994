//! A pull's messages on their way to the client: a bounded channel, as dockerd's (100
//! messages), and the byte meters behind `Downloading` and `Extracting`, throttled as
//! dockerd's `progress.Reader` throttles them.

use crate::error::EngineError;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use wharf_api::jsonmessage::JsonMessage;

pub(crate) type Item = Result<JsonMessage, EngineError>;

/// Where a pull writes its messages.
#[derive(Clone)]
pub(crate) struct Out {
    tx: mpsc::Sender<Item>,
}

/// dockerd's progress channel holds 100 messages before the pull waits for its client.
pub(crate) const CHANNEL: usize = 100;

impl Out {
    pub(crate) fn new(tx: mpsc::Sender<Item>) -> Out {
        Out { tx }
    }

    /// A message that must arrive (a step, a status): waits while the client is behind.
    pub(crate) async fn send(&self, m: JsonMessage) {
        // A closed channel means the client went away; the pull is being dropped anyway.
        let _ = self.tx.send(Ok(m)).await;
    }

    /// A bar, from any thread: dropped when the client is behind, as the next one says more;
    /// whether it went.
    pub(crate) fn bar(&self, m: JsonMessage) -> bool {
        self.tx.try_send(Ok(m)).is_ok()
    }

    /// The pull failed: the stream's last item.
    pub(crate) async fn fail(&self, e: EngineError) {
        let _ = self.tx.send(Err(e)).await;
    }
}

/// The short id a layer goes by in messages: 12 hex digits of its digest.
pub(crate) fn short_id(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// Counts the bytes of one blob and says when dockerd would send a bar: after more than
/// 512 KiB (or 1% of the total, if smaller) since the last count, at most every 100 ms
/// unless the count reached the total.
pub(crate) struct Meter {
    id: String,
    action: &'static str,
    total: u64,
    current: u64,
    last_update: u64,
    last_sent: Option<Instant>,
}

const UPDATE_EVERY: u64 = 512 * 1024;
const MIN_INTERVAL: Duration = Duration::from_millis(100);

impl Meter {
    pub(crate) fn new(id: &str, action: &'static str, total: u64) -> Meter {
        Meter::starting_at(id, action, total, 0)
    }

    /// A meter that has counted `start` bytes already (a download resumed there).
    pub(crate) fn starting_at(id: &str, action: &'static str, total: u64, start: u64) -> Meter {
        Meter {
            id: id.to_owned(),
            action,
            total,
            current: start,
            last_update: start,
            last_sent: None,
        }
    }

    /// `n` more bytes at `now`: the bar to send, if one is due.
    pub(crate) fn advance(&mut self, n: u64, now: Instant) -> Option<JsonMessage> {
        self.current += n;
        let mut every = UPDATE_EVERY;
        if self.total > 0 {
            every = every.min((0.01 * self.total as f64) as u64);
        }
        if self.current - self.last_update <= every {
            return None;
        }
        self.last_update = self.current;
        let due = self.current == self.total
            || match self.last_sent {
                Some(t) if now.duration_since(t) < MIN_INTERVAL => false,
                _ => {
                    self.last_sent = Some(now);
                    true
                }
            };
        due.then(|| self.bar())
    }

    /// The bar as it stands.
    pub(crate) fn bar(&self) -> JsonMessage {
        JsonMessage::progress(
            self.id.clone(),
            self.action,
            self.current as i64,
            self.total as i64,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_blob_gets_one_bar_when_it_is_whole() {
        let t = Instant::now();
        let mut m = Meter::new("b3da9f41977a", "Downloading", 126);
        let bar = m.advance(126, t).unwrap();
        assert_eq!(
            String::from_utf8(bar.to_line()).unwrap(),
            "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":126,\"total\":126},\"progress\":\"[==================================================\\u003e]     126B/126B\",\"id\":\"b3da9f41977a\"}\r\n"
        );
        assert!(m.advance(0, t).is_none());
    }

    #[test]
    fn bars_come_every_512k_and_100ms_at_most() {
        let t0 = Instant::now();
        let total = 100 << 20;
        let mut m = Meter::new("x", "Downloading", total);
        // Below the step: nothing.
        assert!(m.advance(512 * 1024, t0).is_none());
        // Past it: the first bar.
        assert!(m.advance(1, t0).is_some());
        // Past it again within 100 ms: counted, not sent.
        assert!(m
            .advance(600 * 1024, t0 + Duration::from_millis(50))
            .is_none());
        assert!(m
            .advance(600 * 1024, t0 + Duration::from_millis(150))
            .is_some());
        // The end is always sent.
        let rest = total - m.current;
        let end = m.advance(rest, t0 + Duration::from_millis(151)).unwrap();
        assert_eq!(end.progress_detail.unwrap().current, total as i64);
    }

    #[test]
    fn short_ids() {
        assert_eq!(
            short_id("sha256:680518934dcd0a6a1d2f27c0d8e9a1b8"),
            "680518934dcd"
        );
    }
}
