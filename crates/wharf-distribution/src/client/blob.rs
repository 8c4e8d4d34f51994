//! Blob downloads that survive a dropped connection: the stream asks again with
//! `Range: bytes=<reached>-` (a registry that answers 200 instead has the prefix already
//! seen skipped), after 0.5 s, 1 s, 2 s… at most five times in a row without progress;
//! registries' redirects to storage URLs are followed without the registry's credentials.

use super::request::{Call, Target};
use super::{BlobStream, Repository};
use crate::digest::Digest;
use crate::errcode::Context;
use crate::error::{DistributionError, Result};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, StatusCode};
use hyper::body::Incoming;
use sha2::Digest as _;
use std::io;
use std::time::Duration;

/// Attempts in a row that may fail before the stream gives up.
const MAX_ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// A running hash for any algorithm a [`Digest`] may name.
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: &str) -> Hasher {
        match algorithm {
            "sha384" => Hasher::Sha384(sha2::Sha384::new()),
            "sha512" => Hasher::Sha512(sha2::Sha512::new()),
            _ => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => ("sha256", hex::encode(h.finalize())),
            Hasher::Sha384(h) => ("sha384", hex::encode(h.finalize())),
            Hasher::Sha512(h) => ("sha512", hex::encode(h.finalize())),
        };
        Digest::from_hash(algorithm, &hex)
    }
}

fn wrap(e: DistributionError) -> io::Error {
    io::Error::other(e)
}

/// Why an attempt failed, and whether another may succeed.
enum Failure {
    Retry(io::Error),
    Fatal(io::Error),
}

struct Fetch {
    repo: Repository,
    digest: Digest,
    /// The blob's whole size when the caller knows it.
    size: Option<u64>,
    /// A bound on the whole blob when the size is unknown.
    limit: Option<u64>,
    /// Bytes of the blob delivered so far (as an offset into the blob).
    reached: u64,
    /// Bytes at the start of the current body already delivered before.
    skip: u64,
    /// Where the current body ends, from its headers.
    end: Option<u64>,
    body: Option<Incoming>,
    failures: u32,
    done: bool,
}

impl Fetch {
    fn ctx(&self) -> Context {
        Context::Blob {
            name: self.repo.inner.name.familiar_name(),
            digest: self.digest.clone(),
        }
    }

    /// Asks for the rest of the blob.
    async fn open(&mut self) -> std::result::Result<(), Failure> {
        let mut call = Call::new(
            Method::GET,
            Target::Path(self.repo.api_path(&format!("blobs/{}", self.digest))),
        );
        if self.reached > 0 {
            call = call.header(http::header::RANGE, &format!("bytes={}-", self.reached));
        }
        let ctx = self.ctx();
        let resp = match self
            .repo
            .call(
                false,
                call,
                |s| s == StatusCode::OK || s == StatusCode::PARTIAL_CONTENT,
                &ctx,
            )
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_transport() => return Err(Failure::Retry(wrap(e))),
            Err(e) => return Err(Failure::Fatal(wrap(e))),
        };
        let status = resp.status();
        let length = resp
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match status {
            StatusCode::OK => {
                self.skip = self.reached;
                self.end = length;
            }
            StatusCode::PARTIAL_CONTENT => {
                let range = resp
                    .headers()
                    .get(http::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_content_range);
                let Some((start, total)) = range else {
                    return Err(Failure::Fatal(io::Error::other(
                        "registry answered a range request without a usable Content-Range",
                    )));
                };
                if start > self.reached {
                    return Err(Failure::Fatal(io::Error::other(format!(
                        "registry resumed blob {} at byte {start}, not {}",
                        self.digest, self.reached
                    ))));
                }
                self.skip = self.reached - start;
                self.end = total.or(length.map(|l| start + l));
            }
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                let e = self.repo.error_of(resp, &ctx).await;
                return Err(Failure::Retry(wrap(e)));
            }
            StatusCode::NOT_FOUND => {
                self.repo.inner.registries.drain(resp).await;
                return Err(Failure::Fatal(wrap(DistributionError::BlobUnknown(
                    self.digest.clone(),
                ))));
            }
            _ => {
                let e = self.repo.error_of(resp, &ctx).await;
                return Err(Failure::Fatal(wrap(e)));
            }
        }
        if let (Some(size), Some(end)) = (self.size, self.end) {
            if end > size {
                return Err(Failure::Fatal(self.too_long()));
            }
        }
        self.body = Some(resp.into_body());
        Ok(())
    }

    fn too_long(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "blob {} is longer than the {} bytes its descriptor says",
                self.digest,
                self.size.unwrap_or_default()
            ),
        )
    }

    /// Waits before the next attempt, or gives up with `e`.
    async fn backoff(&mut self, e: io::Error) -> std::result::Result<(), io::Error> {
        self.failures += 1;
        if self.failures >= MAX_ATTEMPTS {
            return Err(e);
        }
        let wait = FIRST_BACKOFF * 2u32.pow(self.failures - 1);
        tracing::debug!(digest = %self.digest, reached = self.reached, error = %e, ?wait, "blob download interrupted, resuming");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    async fn next(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            if self.done {
                return None;
            }
            let Some(body) = self.body.as_mut() else {
                if self.size.is_some_and(|s| self.reached >= s) {
                    self.done = true;
                    return None;
                }
                match self.open().await {
                    Ok(()) => continue,
                    Err(Failure::Retry(e)) => match self.backoff(e).await {
                        Ok(()) => continue,
                        Err(e) => return self.fail(e),
                    },
                    Err(Failure::Fatal(e)) => return self.fail(e),
                }
            };
            let transport = &self.repo.inner.registries.inner.transport;
            match transport.next_chunk(body).await {
                Ok(Some(mut chunk)) => {
                    if self.skip > 0 {
                        let drop = self.skip.min(chunk.len() as u64);
                        self.skip -= drop;
                        let _ = chunk.split_to(drop as usize);
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    let after = self.reached + chunk.len() as u64;
                    if self.size.is_some_and(|s| after > s) {
                        return self.fail(self.too_long());
                    }
                    if let Some(limit) = self.limit {
                        if after > limit {
                            return self.fail(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("blob {} is larger than {limit} bytes", self.digest),
                            ));
                        }
                    }
                    self.reached = after;
                    self.failures = 0;
                    return Some(Ok(chunk));
                }
                Ok(None) => {
                    self.body = None;
                    let expected = self.size.or(self.end);
                    match expected {
                        Some(end) if self.reached < end => {
                            let e = io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!(
                                    "blob {}: connection closed at byte {} of {end}",
                                    self.digest, self.reached
                                ),
                            );
                            if let Err(e) = self.backoff(e).await {
                                return self.fail(e);
                            }
                        }
                        _ => {
                            self.done = true;
                            return None;
                        }
                    }
                }
                Err(e) => {
                    self.body = None;
                    if let Err(e) = self.backoff(e).await {
                        return self.fail(e);
                    }
                }
            }
        }
    }

    fn fail(&mut self, e: io::Error) -> Option<io::Result<Bytes>> {
        self.done = true;
        self.body = None;
        Some(Err(e))
    }
}

/// `bytes <start>-<end>/<total or *>`: the start, and the total when known.
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start.trim().parse().ok()?, total))
}

pub(crate) fn stream(
    repo: Repository,
    digest: Digest,
    size: Option<u64>,
    offset: u64,
    limit: Option<u64>,
) -> BlobStream {
    let fetch = Fetch {
        repo,
        digest,
        size,
        limit,
        reached: offset,
        skip: 0,
        end: None,
        body: None,
        failures: 0,
        done: false,
    };
    futures_util::stream::unfold(fetch, |mut f| async move {
        let item = f.next().await?;
        Some((item, f))
    })
    .boxed()
}

/// A whole small blob, verified.
pub(crate) async fn fetch_whole(repo: Repository, digest: Digest, max: u64) -> Result<Bytes> {
    let mut s = stream(repo, digest.clone(), None, 0, Some(max));
    let mut buf = bytes::BytesMut::new();
    let mut hasher = Hasher::new(digest.algorithm());
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| match e.downcast::<DistributionError>() {
            Ok(d) => d,
            Err(e) => DistributionError::Transport(format!("fetching blob {digest}: {e}")),
        })?;
        hasher.update(&chunk);
        buf.extend_from_slice(&chunk);
    }
    let actual = hasher.finish();
    if actual != digest {
        return Err(DistributionError::DigestMismatch {
            expected: digest,
            actual: actual.to_string(),
        });
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
        assert_eq!(parse_content_range("bytes x-2/3"), None);
    }

    #[test]
    fn hashers_name_their_algorithm() {
        let mut h = Hasher::new("sha256");
        h.update(b"abc");
        assert_eq!(
            h.finish().as_str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Hasher::new("sha512").finish().algorithm(), "sha512");
    }
}
