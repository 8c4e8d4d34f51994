//! Request bodies a handler left unread are drained after the answer, so the client always gets
//! to read it.
//!
//! Without this, an answer that comes before the body is read (a 501 for an unserved route, a 400
//! from the version check, a handler that fails before it reads) makes hyper read at most what is
//! already buffered and then close the connection. A client still writing its body then fails
//! with `EPIPE` before it reads the answer: the docker CLI prints `write: broken pipe` on a legacy
//! build, docker-py raises `BrokenPipeError` (it writes the whole body before reading), compose
//! dies of SIGPIPE.
//!
//! Go's net/http, which dockerd uses, flushes the answer and then discards up to 256 KiB of unread
//! body before it closes. Wharf does the same with a larger bound: the answer is sent at once, and
//! the rest of the body is read and thrown away in the background (never buffered) up to
//! [`DRAIN_LIMIT`] bytes or [`DRAIN_DEADLINE`], whichever comes first. A client that writes the
//! whole body before reading (docker-py, urllib3) then reads the message; one that reads while it
//! writes (Go's transport, the docker CLI) reads it at once. A body that ends within the bounds
//! keeps the connection alive; past them the body is dropped and hyper closes the connection.
//!
//! How the body is kept: the layer hands the handler a wrapper ([`Tracked`]) that, when dropped,
//! gives the underlying body back instead of dropping it (dropping it would tell hyper nobody
//! wants the rest). A handler that keeps the body (a stream it is still reading) is left alone.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

/// The most unread body that is drained; a build context of a few hundred MB still fits, and
/// draining costs no memory, only the time to read it.
pub const DRAIN_LIMIT: u64 = 256 * 1024 * 1024;
/// How long a drain may take in all; a client that writes slower than this loses the connection.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

type Slot = Arc<Mutex<Option<Body>>>;

/// The outermost layer: every answer, from every route, fallback and middleware, goes through it.
pub async fn drain_unread_body(req: Request, next: Next) -> Response {
    // A client waiting for `100 Continue` has not sent its body; hyper answers it with the
    // final status and no 100, as Go does, so there is nothing to drain.
    let expects_continue = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let slot: Slot = Arc::new(Mutex::new(None));
    let req = req.map(|body| {
        Body::new(Tracked {
            inner: Some(body),
            slot: slot.clone(),
        })
    });
    let resp = next.run(req).await;
    let leftover = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(body) = leftover {
        // After a 101 the connection belongs to the hijacked session.
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS
            && !expects_continue
            && !body.is_end_stream()
        {
            tokio::spawn(drain(body));
        }
    }
    resp
}

/// Reads and discards `body` within the bounds; returns how many bytes it read and whether the
/// body ended.
pub async fn drain(body: Body) -> (u64, bool) {
    let mut data = body.into_data_stream();
    let deadline = tokio::time::Instant::now() + DRAIN_DEADLINE;
    let mut read = 0u64;
    loop {
        match tokio::time::timeout_at(deadline, data.next()).await {
            Ok(None) => return (read, true),
            Ok(Some(Ok(chunk))) => {
                read += chunk.len() as u64;
                if read > DRAIN_LIMIT {
                    tracing::debug!(read, "unread request body over the drain limit; closing");
                    return (read, false);
                }
            }
            Ok(Some(Err(e))) => {
                tracing::debug!(error = %e, read, "unread request body ended with an error");
                return (read, false);
            }
            Err(_) => {
                tracing::debug!(read, "unread request body not drained in time; closing");
                return (read, false);
            }
        }
    }
}

/// The body a handler sees. Reads pass through; dropping it puts the rest back in the slot.
struct Tracked {
    inner: Option<Body>,
    slot: Slot,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, axum::Error>>> {
        match self.inner.as_mut() {
            Some(b) => Pin::new(b).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner
            .as_ref()
            .map(HttpBody::size_hint)
            .unwrap_or_default()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(body) = self.inner.take() {
            *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drains_a_body_to_its_end() {
        let body = Body::from(vec![7u8; 3 * 1024 * 1024]);
        assert_eq!(drain(body).await, (3 * 1024 * 1024, true));
    }

    #[tokio::test]
    async fn gives_up_past_the_limit() {
        let chunk = Bytes::from(vec![0u8; 1024 * 1024]);
        let endless = futures_util::stream::repeat(chunk).map(Ok::<_, std::io::Error>);
        let (read, ended) = drain(Body::from_stream(endless)).await;
        assert!(!ended);
        assert!(read > DRAIN_LIMIT && read <= DRAIN_LIMIT + 1024 * 1024);
    }
}
