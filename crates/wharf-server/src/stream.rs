//! Response bodies that are streams: container output (stdcopy or raw), the late `wait` answer
//! and `\r\n`-separated JSON messages. Every one is chunked, and hyper flushes the headers as
//! soon as the body is pending, which is what `docker run` waits for before it sends `start`.

use axum::body::Body;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use serde::Serialize;
use std::convert::Infallible;
use wharf_api::container::WaitResponse;
use wharf_api::jsonmessage::JsonMessage;
use wharf_api::stdcopy::encode_frame;
use wharf_backend::{MessageStream, OutputChunk, OutputStream};

/// The bytes a chunk of output becomes on the wire: one stdcopy frame unless the container has a
/// TTY, with the chunk's timestamp and a space inside the payload when asked for.
pub fn encode_output(chunk: &OutputChunk, tty: bool, timestamps: bool) -> Bytes {
    let payload: Bytes = match (&chunk.timestamp, timestamps) {
        (Some(ts), true) => {
            let mut p = Vec::with_capacity(ts.len() + 1 + chunk.data.len());
            p.extend_from_slice(ts.as_bytes());
            p.push(b' ');
            p.extend_from_slice(&chunk.data);
            p.into()
        }
        _ => chunk.data.clone(),
    };
    if tty {
        payload
    } else {
        encode_frame(chunk.stream, &payload).into()
    }
}

/// One HTTP chunk per output chunk. When the client goes away hyper drops the body, and with it
/// the engine's stream.
pub fn output_body(output: OutputStream, tty: bool, timestamps: bool) -> Body {
    Body::from_stream(
        output.map(move |c| Ok::<Bytes, Infallible>(encode_output(&c, tty, timestamps))),
    )
}

/// The `wait` answer, sent when the engine's future resolves; dropping the body (client gone)
/// drops the future.
pub fn wait_body(fut: BoxFuture<'static, WaitResponse>) -> Body {
    Body::from_stream(futures_util::stream::once(async move {
        Ok::<Bytes, Infallible>(json_line(&fut.await, b"\n"))
    }))
}

/// A pull's or a push's progress as dockerd answers it: nothing is sent until the first
/// message, so an error before it is an ordinary answer (status and `{"message"}`); after it,
/// a 200 with `\r\n`-separated messages, and an error as a last `errorDetail` line. The
/// body owns the stream: a client that goes away drops it, and with it the operation.
pub async fn message_body(
    mut messages: MessageStream,
) -> Result<axum::response::Response, crate::errors::HttpError> {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    let first = match messages.next().await {
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(m)) => Some(m),
        None => None,
    };
    let lines = futures_util::stream::iter(first.map(Ok))
        .chain(messages)
        .scan(false, |failed, item| {
            // Nothing follows an error.
            if *failed {
                return futures_util::future::ready(None);
            }
            let line = match item {
                Ok(m) => m.to_line(),
                Err(e) => {
                    *failed = true;
                    let words = crate::errors::redact(&e.message).into_owned();
                    JsonMessage::error(words).to_line()
                }
            };
            futures_util::future::ready(Some(Ok::<Bytes, Infallible>(Bytes::from(line))))
        });
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from_stream(lines),
    )
        .into_response())
}

/// One JSON message as Go's encoder writes it (`<`, `>` and `&` escaped...), then `sep`.
pub fn json_line<T: Serialize>(v: &T, sep: &[u8]) -> Bytes {
    let mut out = wharf_api::jsonmessage::go_json(v);
    out.extend_from_slice(sep);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_api::stdcopy::StdStream;

    #[test]
    fn frames_and_timestamps() {
        let c = OutputChunk {
            stream: StdStream::Stderr,
            data: Bytes::from_static(b"hi\n"),
            timestamp: Some("2024-01-01T00:00:00.123456789Z".into()),
        };
        assert_eq!(
            &encode_output(&c, false, false)[..],
            b"\x02\0\0\0\0\0\0\x03hi\n"
        );
        assert_eq!(
            &encode_output(&c, true, true)[..],
            b"2024-01-01T00:00:00.123456789Z hi\n"
        );
        let framed = encode_output(&c, false, true);
        assert_eq!(framed[7] as usize, 31 + 3);
    }

    #[test]
    fn go_style_json() {
        let v = serde_json::json!({"status": "a>b&c"});
        assert_eq!(
            &json_line(&v, b"\r\n")[..],
            b"{\"status\":\"a\\u003eb\\u0026c\"}\r\n"
        );
    }
}
