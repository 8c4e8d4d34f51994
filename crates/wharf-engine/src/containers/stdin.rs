//! A container's (or exec's) stdin between attachers and the process.
//!
//! Attachers send `Bytes` on a channel; an empty `Bytes` means "close stdin". The pump holds the
//! shim's stdin connection: on close it half-closes the connection and waits for the shim to
//! hang up, because the shim tells a deliberate close (half-close) from a vanished wharfd (full
//! hang-up, which leaves the container's stdin open for the next wharfd).

use crate::error::EngineError;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use wharf_api::detach::{parse_detach_keys, DEFAULT_DETACH_KEYS};

/// Copies the channel into the shim's stdin connection until a close or the end of the run.
pub(super) async fn pump_to_shim(rx: &mut mpsc::Receiver<Bytes>, conn: &mut UnixStream) {
    while let Some(chunk) = rx.recv().await {
        if chunk.is_empty() {
            let _ = conn.shutdown().await;
            // The shim closes its end once the container's stdin is closed.
            let mut sink = [0u8; 64];
            while matches!(conn.read(&mut sink).await, Ok(n) if n > 0) {}
            return;
        }
        if conn.write_all(&chunk).await.is_err() {
            return;
        }
    }
}

/// The detach sequence for an attach or exec: the request's, else Docker's default. A spec
/// that does not parse is the client's error (400), in Docker's words.
pub(crate) fn detach_keys(spec: Option<&str>) -> Result<Vec<u8>, EngineError> {
    match spec.filter(|s| !s.is_empty()) {
        None => Ok(DEFAULT_DETACH_KEYS.to_vec()),
        Some(s) => parse_detach_keys(s)
            .map_err(|_| EngineError::invalid(format!("Invalid detach keys ({s}) provided"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_key_errors_are_400() {
        assert_eq!(detach_keys(None).unwrap(), DEFAULT_DETACH_KEYS);
        assert_eq!(detach_keys(Some("")).unwrap(), DEFAULT_DETACH_KEYS);
        assert_eq!(detach_keys(Some("ctrl-x")).unwrap(), vec![24]);
        let e = detach_keys(Some("ctrl-")).unwrap_err();
        assert_eq!(e.kind(), wharf_api::ErrorKind::InvalidArgument);
    }
}
