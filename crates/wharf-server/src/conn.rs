//! Bounds on one API connection: how long a client may take to send a request's head, how long
//! a kept-alive connection may sit idle between requests, and (with [`crate::timed_body`]) how
//! long a request body may stall.
//!
//! Only the reading of requests is timed. Once a request's head is in, the connection is busy
//! until its request body is dropped and its answer is sent, however long that takes: `logs -f`,
//! `events` and `wait` answers may be silent for hours. A hijacked connection (attach, exec
//! start) leaves hyper, and these bounds, for good.
//!
//! hyper's own `header_read_timeout` is not used: its clock starts when the previous answer
//! ends, so it is also the idle timeout and the two could not differ. Here a fresh connection
//! gets the header timeout from its accept, a kept-alive one gets the idle timeout until the
//! first byte of its next request, then the header timeout from that byte (as Go's net/http
//! does with `ReadHeaderTimeout` and `IdleTimeout`).

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::Instant;

/// The bounds every connection of one listener gets; `None` turns one off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// From accept (or from the first byte of a kept-alive connection's next request) to the
    /// end of the request's head.
    pub header_timeout: Option<Duration>,
    /// Between the end of an answer and the first byte of the next request.
    pub idle_timeout: Option<Duration>,
    /// The longest a request body may go without delivering a byte while it is being read.
    pub body_timeout: Option<Duration>,
    /// Connections served at once on one socket, hijacked ones included; more wait in the
    /// listen backlog until one closes.
    pub max_connections: Option<usize>,
}

/// Defaults for a local daemon socket. dockerd sets only `ReadHeaderTimeout` (5 minutes, to
/// quiet a linter) and no idle, body or connection bounds; a well-behaved client sends its head
/// in one write, so a minute is generous, and an idle connection is closed after dockerd's five
/// minutes (longer than the clients' own idle timeouts, so they close first: Go's transport
/// after 90 s). Bodies that stall two minutes are dropped; a slow but flowing import is not.
/// The connection cap is far above what `docker compose` attached to hundreds of containers
/// holds, and below the descriptors a daemon usually may open.
impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_timeout: Some(Duration::from_secs(60)),
            idle_timeout: Some(Duration::from_secs(300)),
            body_timeout: Some(Duration::from_secs(120)),
            max_connections: Some(4096),
        }
    }
}

impl ConnLimits {
    /// No bounds at all (tests, embedders that bound connections themselves).
    pub const UNBOUNDED: ConnLimits = ConnLimits {
        header_timeout: None,
        idle_timeout: None,
        body_timeout: None,
        max_connections: None,
    };
}

/// Where a connection is between requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Accepted, no request yet: the header timeout runs from the accept.
    Fresh,
    /// An answer ended and nothing has been read since: the idle timeout runs.
    Idle,
    /// Bytes of the next request's head arrived: the header timeout runs from the first.
    Head,
}

#[derive(Debug)]
struct State {
    /// Live request bodies and unfinished answers; the clocks stop while any is.
    busy: usize,
    phase: Phase,
    since: Instant,
}

/// What a connection is doing, shared by its socket wrapper, its requests and its watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

/// Why a connection was closed by its watchdog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expired {
    Header,
    Idle,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            state: Mutex::new(State {
                busy: 0,
                phase: Phase::Fresh,
                since: Instant::now(),
            }),
            changed: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the connection busy until the guard drops (a request body or an answer).
    pub(crate) fn busy(self: &Arc<Self>) -> BusyGuard {
        self.state().busy += 1;
        BusyGuard(Arc::clone(self))
    }

    fn bytes_read(&self) {
        let mut s = self.state();
        if s.busy == 0 && s.phase == Phase::Idle {
            s.phase = Phase::Head;
            s.since = Instant::now();
            drop(s);
            self.changed.notify_one();
        }
    }

    /// When the connection is to be closed if nothing changes, and why; `None` while busy or
    /// when the phase's bound is off.
    fn deadline(&self, limits: &ConnLimits) -> Option<(Instant, Expired)> {
        let s = self.state();
        if s.busy > 0 {
            return None;
        }
        match s.phase {
            Phase::Fresh | Phase::Head => limits
                .header_timeout
                .map(|d| (s.since + d, Expired::Header)),
            Phase::Idle => limits.idle_timeout.map(|d| (s.since + d, Expired::Idle)),
        }
    }

    /// Resolves when the connection has been waiting for a request (head) longer than allowed.
    pub(crate) async fn expired(&self, limits: &ConnLimits) -> Expired {
        loop {
            match self.deadline(limits) {
                None => self.changed.notified().await,
                Some((at, why)) => {
                    if Instant::now() >= at {
                        return why;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = self.changed.notified() => {}
                    }
                }
            }
        }
    }
}

/// One reason a connection is busy; dropping the last one starts the idle clock.
#[derive(Debug)]
pub(crate) struct BusyGuard(Arc<Activity>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.busy = s.busy.saturating_sub(1);
        if s.busy == 0 {
            s.phase = Phase::Idle;
            s.since = Instant::now();
            drop(s);
            self.0.changed.notify_one();
        }
    }
}

/// A served socket: reads are reported to the connection's [`Activity`], and the connection's
/// slot under the socket's cap lives as long as the socket does, through a hijack too.
pub struct ConnIo {
    inner: UnixStream,
    activity: Arc<Activity>,
    permit: Option<OwnedSemaphorePermit>,
}

/// What a hijacked connection keeps: its socket, and its slot under the cap until it closes.
pub struct ConnSlot(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl ConnIo {
    pub(crate) fn new(
        inner: UnixStream,
        activity: Arc<Activity>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> ConnIo {
        ConnIo {
            inner,
            activity,
            permit,
        }
    }

    pub fn into_parts(self) -> (UnixStream, ConnSlot) {
        (self.inner, ConnSlot(self.permit))
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        r
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    //! Real time with short bounds (tokio's paused clock needs its test-util feature, which
    //! would rebuild the workspace's tests); only lower bounds on elapsed time are asserted.
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;
    const GENEROUS: Duration = Duration::from_secs(30);

    fn limits(header: u64, idle: u64) -> ConnLimits {
        ConnLimits {
            header_timeout: Some(MS(header)),
            idle_timeout: Some(MS(idle)),
            body_timeout: None,
            max_connections: None,
        }
    }

    #[tokio::test]
    async fn a_fresh_connection_gets_the_header_timeout() {
        let a = Activity::new();
        let t0 = Instant::now();
        let why = tokio::time::timeout(GENEROUS, a.expired(&limits(50, 3_600_000))).await;
        assert_eq!(why.unwrap(), Expired::Header);
        assert!(t0.elapsed() >= MS(50));
    }

    #[tokio::test]
    async fn a_busy_connection_has_no_clock_then_idles() {
        let a = Activity::new();
        let answering = a.busy();
        let watch = {
            let a = Arc::clone(&a);
            tokio::spawn(async move { a.expired(&limits(20, 100)).await })
        };
        // Far past both bounds while an answer is still being sent (a silent `logs -f`).
        tokio::time::sleep(MS(500)).await;
        assert!(!watch.is_finished());
        let t0 = Instant::now();
        drop(answering);
        let why = tokio::time::timeout(GENEROUS, watch)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(why, Expired::Idle);
        assert!(t0.elapsed() >= MS(100));
    }

    #[tokio::test]
    async fn a_slow_head_after_idle_gets_the_header_timeout() {
        let a = Activity::new();
        drop(a.busy());
        // The next request's first byte: the (short) header clock replaces the (long) idle one.
        a.bytes_read();
        let t0 = Instant::now();
        let why = tokio::time::timeout(GENEROUS, a.expired(&limits(50, 3_600_000))).await;
        assert_eq!(why.unwrap(), Expired::Header);
        assert!(t0.elapsed() >= MS(50));
    }

    #[tokio::test]
    async fn an_idle_connection_gets_the_idle_timeout_not_the_header_one() {
        let a = Activity::new();
        drop(a.busy());
        let t0 = Instant::now();
        let why = tokio::time::timeout(GENEROUS, a.expired(&limits(10, 300))).await;
        assert_eq!(why.unwrap(), Expired::Idle);
        assert!(t0.elapsed() >= MS(300));
    }

    #[tokio::test]
    async fn bounds_that_are_off_never_fire() {
        let a = Activity::new();
        let r = tokio::time::timeout(MS(300), a.expired(&ConnLimits::UNBOUNDED)).await;
        assert!(r.is_err());
    }
}
