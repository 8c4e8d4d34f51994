//! `GET /events`: newline-separated JSON messages on a long-lived chunked response.

use crate::{with_query, Client, ClientError, Method, StreamingResponse};
use serde_json::Value;

/// Events as they arrive; ends when the daemon ends the response (`until` reached).
#[derive(Debug)]
pub struct EventStream {
    resp: StreamingResponse,
    buf: Vec<u8>,
    done: bool,
}

impl Client {
    /// `since`/`until` are passed as given (docker sends unix seconds, optionally with
    /// `.nanoseconds`); `filters_json` is the CLI's filter JSON.
    pub async fn events(
        &self,
        since: Option<&str>,
        until: Option<&str>,
        filters_json: Option<&str>,
    ) -> Result<EventStream, ClientError> {
        let mut q = Vec::new();
        if let Some(f) = filters_json {
            q.push(format!("filters={}", crate::encode(f)));
        }
        if let Some(s) = since {
            q.push(format!("since={}", crate::encode(s)));
        }
        if let Some(u) = until {
            q.push(format!("until={}", crate::encode(u)));
        }
        let path = with_query("/events", &q);
        let resp = self.request_streaming(Method::GET, &path, None).await?;
        if !resp.status.is_success() {
            return Err(resp.collect().await?.into_api_error());
        }
        Ok(EventStream {
            resp,
            buf: Vec::new(),
            done: false,
        })
    }
}

impl EventStream {
    /// The next message; `None` at the end of the stream. Messages may span chunks, and one
    /// chunk may carry several.
    pub async fn next(&mut self) -> Option<Result<Value, ClientError>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(decode(&line));
            }
            if self.done {
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    return None;
                }
                let rest = std::mem::take(&mut self.buf);
                return Some(decode(&rest));
            }
            match self.resp.next_chunk().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => return Some(Err(e)),
                None => self.done = true,
            }
        }
    }
}

fn decode(line: &[u8]) -> Result<Value, ClientError> {
    serde_json::from_slice(line).map_err(|source| ClientError::Decode {
        path: "/events".to_string(),
        source,
    })
}
