//! Request bodies that may not stall, and answers that keep their connection busy.
//!
//! The body clock runs only while someone waits for the body: it starts when a read finds
//! nothing to deliver and stops at the next frame. A long import that keeps flowing never
//! trips it, and neither does a handler that pauses between reads (that wait is the daemon's,
//! not the client's). A client that stops sending, or sends less than its `Content-Length`,
//! gets an error on the read; the connection is then closed, since its body never ended.

use crate::conn::BusyGuard;
use axum::body::{Body, Bytes, HttpBody};
use hyper::body::{Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error a stalled body ends with.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "request body stalled: no data received for {} s",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body read under the body timeout, keeping its connection busy while it lives.
pub(crate) struct TimedBody<B> {
    inner: B,
    timeout: Option<Duration>,
    stalled: Option<Pin<Box<Sleep>>>,
    expired: bool,
    _busy: Option<BusyGuard>,
}

impl<B> TimedBody<B> {
    pub(crate) fn new(inner: B, timeout: Option<Duration>, busy: Option<BusyGuard>) -> Self {
        TimedBody {
            inner,
            timeout,
            stalled: None,
            expired: false,
            _busy: busy,
        }
    }
}

impl<B> HttpBody for TimedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.expired {
            return Poll::Ready(this.timeout.map(|t| Err(BodyTimeout(t).into())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.stalled = None;
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let Some(timeout) = this.timeout else {
                    return Poll::Pending;
                };
                let sleep = this
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.expired = true;
                    this.stalled = None;
                    tracing::debug!(timeout_s = timeout.as_secs(), "request body stalled");
                    return Poll::Ready(Some(Err(BodyTimeout(timeout).into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.expired && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer whose connection stays busy (no idle clock) until it is sent or dropped.
pub(crate) struct BusyBody {
    inner: Body,
    _busy: BusyGuard,
}

impl BusyBody {
    pub(crate) fn wrap(inner: Body, busy: BusyGuard) -> Body {
        Body::new(BusyBody { inner, _busy: busy })
    }
}

impl HttpBody for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    //! Real time with short bounds; only lower bounds on elapsed time are asserted.
    use super::*;
    use futures_util::StreamExt;
    use http_body_util::BodyExt;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    type Tx = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

    /// A body fed by hand: each `send` is one frame, dropping the sender ends it.
    fn channel_body(timeout: Duration) -> (Tx, TimedBody<Body>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        (
            tx,
            TimedBody::new(Body::from_stream(stream), Some(timeout), None),
        )
    }

    #[tokio::test]
    async fn a_flowing_body_never_times_out() {
        let (tx, body) = channel_body(MS(300));
        let feeder = tokio::spawn(async move {
            // Each gap is well under the timeout; together they are far over it.
            for _ in 0..30 {
                tokio::time::sleep(MS(30)).await;
                tx.send(Ok(Bytes::from_static(b"x"))).await.unwrap();
            }
        });
        let got = body.collect().await.unwrap().to_bytes();
        assert_eq!(got.len(), 30);
        feeder.await.unwrap();
    }

    #[tokio::test]
    async fn a_stalled_body_errors_after_the_timeout_and_stays_failed() {
        let (tx, body) = channel_body(MS(100));
        tx.send(Ok(Bytes::from_static(b"partial"))).await.unwrap();
        let mut data = Body::new(body).into_data_stream();
        assert_eq!(&data.next().await.unwrap().unwrap()[..], b"partial");
        let t0 = tokio::time::Instant::now();
        let err = data.next().await.unwrap().unwrap_err();
        assert!(t0.elapsed() >= MS(100));
        assert!(err.to_string().contains("stalled"), "{err}");
        // A drain that reads on sees the failure again, not a clean end.
        assert!(data.next().await.unwrap().is_err());
        drop(tx);
    }

    #[tokio::test]
    async fn a_paused_reader_is_not_the_clients_fault() {
        let (tx, body) = channel_body(MS(100));
        let mut data = Body::new(body).into_data_stream();
        tx.send(Ok(Bytes::from_static(b"a"))).await.unwrap();
        assert!(data.next().await.unwrap().is_ok());
        // The handler works a long while without reading; the client has sent the rest.
        tx.send(Ok(Bytes::from_static(b"b"))).await.unwrap();
        tokio::time::sleep(MS(500)).await;
        assert_eq!(&data.next().await.unwrap().unwrap()[..], b"b");
        drop(tx);
        assert!(data.next().await.is_none());
    }
}
