//! Pushing: blob uploads as distribution expects them (POST to start, then one PUT with the
//! digest for a small blob, or PATCH chunks with `Content-Range` then an empty PUT, each
//! step sent to the Location the previous one answered), cross-repository mounts, and
//! manifests.

use super::request::{success, Call, Target};
use super::{digest_of, BlobStream, Repository};
use crate::digest::Digest;
use crate::errcode::Context;
use crate::error::{DistributionError, Result};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::{Method, StatusCode};

/// Blobs up to this size go in one PUT.
pub(crate) const MONOLITHIC_MAX: u64 = 8 << 20;
/// The size of each PATCH of a chunked upload.
pub(crate) const CHUNK: usize = 16 << 20;

const OCTET_STREAM: &str = "application/octet-stream";

enum Started {
    Mounted,
    /// The upload's URL.
    Upload(String),
}

fn location(resp: &http::Response<hyper::body::Incoming>, base: &str) -> Result<String> {
    let loc = resp
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| DistributionError::Registry {
            status: resp.status().as_u16(),
            message: "registry started an upload without a Location".into(),
        })?;
    Ok(super::request::resolve(base, loc))
}

/// `POST /v2/<name>/blobs/uploads/`, with `?mount=&from=` for a mount.
async fn start(repo: &Repository, mount: Option<(&Digest, &str)>) -> Result<Started> {
    let mut path = repo.api_path("blobs/uploads/");
    let mut extra = Vec::new();
    if let Some((digest, from)) = mount {
        let query = serde_urlencoded::to_string([("mount", digest.as_str()), ("from", from)])
            .map_err(|e| DistributionError::Invalid(e.to_string()))?;
        path.push('?');
        path.push_str(&query);
        extra.push(format!("repository:{from}:pull"));
    }
    let mut call = Call::new(Method::POST, Target::Path(path.clone()));
    call.extra_scopes = extra;
    let resp = repo.call(true, call, success, &Context::Push).await?;
    match resp.status() {
        StatusCode::CREATED if mount.is_some() => {
            repo.inner.registries.drain(resp).await;
            Ok(Started::Mounted)
        }
        StatusCode::ACCEPTED => {
            let base = repo.push_url(&path).await;
            let loc = location(&resp, &base)?;
            repo.inner.registries.drain(resp).await;
            Ok(Started::Upload(loc))
        }
        _ => Err(repo.error_of(resp, &Context::Push).await),
    }
}

pub(crate) async fn mount(repo: &Repository, digest: &Digest, from: &str) -> Result<bool> {
    repo.mark_pushing();
    match start(repo, Some((digest, from))).await? {
        Started::Mounted => Ok(true),
        Started::Upload(url) => {
            if let Ok(mut m) = repo.inner.uploads.lock() {
                m.insert(digest.clone(), url);
            }
            Ok(false)
        }
    }
}

fn body_error(digest: &Digest, e: std::io::Error) -> DistributionError {
    match e.downcast::<DistributionError>() {
        Ok(d) => d,
        Err(e) => DistributionError::Transport(format!("reading blob {digest} to upload: {e}")),
    }
}

fn wrong_size(digest: &Digest, size: u64, got: u64) -> DistributionError {
    DistributionError::Invalid(format!(
        "blob {digest} to upload has {got} bytes or more, not the {size} its descriptor says"
    ))
}

/// Fills `buf` from `body` up to `want` bytes; false at the end of the body.
async fn fill(
    body: &mut BlobStream,
    buf: &mut BytesMut,
    want: usize,
    digest: &Digest,
) -> Result<bool> {
    while buf.len() < want {
        match body.next().await {
            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
            Some(Err(e)) => return Err(body_error(digest, e)),
            None => return Ok(false),
        }
    }
    Ok(true)
}

fn with_digest(url: &str, digest: &Digest) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}digest={digest}")
}

pub(crate) async fn upload(
    repo: &Repository,
    digest: &Digest,
    size: u64,
    mut body: BlobStream,
) -> Result<()> {
    repo.mark_pushing();
    let pending = repo
        .inner
        .uploads
        .lock()
        .ok()
        .and_then(|mut m| m.remove(digest));
    let mut url = match pending {
        Some(u) => u,
        None => match start(repo, None).await? {
            Started::Upload(u) => u,
            Started::Mounted => {
                return Err(DistributionError::Registry {
                    status: 201,
                    message: "registry answered an upload as if it were a mount".into(),
                })
            }
        },
    };
    let mut buf = BytesMut::new();
    if size <= MONOLITHIC_MAX {
        // One byte more than the size is read, to notice a body longer than it says.
        fill(&mut body, &mut buf, size as usize + 1, digest).await?;
        if buf.len() as u64 != size {
            return Err(wrong_size(digest, size, buf.len() as u64));
        }
        return finish(repo, &url, digest, buf.freeze()).await;
    }
    let mut offset: u64 = 0;
    loop {
        let more = fill(&mut body, &mut buf, CHUNK, digest).await?;
        if buf.is_empty() {
            break;
        }
        let chunk = buf.split_to(buf.len().min(CHUNK)).freeze();
        let len = chunk.len() as u64;
        if offset + len > size {
            return Err(wrong_size(digest, size, offset + len));
        }
        let call = Call::new(Method::PATCH, Target::Url(url.clone()))
            .header(http::header::CONTENT_TYPE, OCTET_STREAM)
            .header(
                http::header::CONTENT_RANGE,
                &format!("{offset}-{}", offset + len - 1),
            )
            .body(chunk);
        let resp = repo.call(true, call, success, &Context::Push).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(repo.error_of(resp, &Context::Push).await);
        }
        url = location(&resp, &url)?;
        repo.inner.registries.drain(resp).await;
        offset += len;
        if !more && buf.is_empty() {
            break;
        }
    }
    if offset != size {
        return Err(wrong_size(digest, size, offset));
    }
    finish(repo, &url, digest, Bytes::new()).await
}

/// The closing `PUT <location>?digest=`, with the last bytes (or all of a small blob).
async fn finish(repo: &Repository, url: &str, digest: &Digest, data: Bytes) -> Result<()> {
    let call = Call::new(Method::PUT, Target::Url(with_digest(url, digest)))
        .header(http::header::CONTENT_TYPE, OCTET_STREAM)
        .body(data);
    let resp = repo.call(true, call, success, &Context::Push).await?;
    if !resp.status().is_success() {
        return Err(repo.error_of(resp, &Context::Push).await);
    }
    repo.inner.registries.drain(resp).await;
    Ok(())
}

pub(crate) async fn put_manifest(
    repo: &Repository,
    reference: &str,
    media_type: &str,
    bytes: Bytes,
) -> Result<Digest> {
    repo.mark_pushing();
    let computed = digest_of("sha256", &bytes);
    let call = Call::new(
        Method::PUT,
        Target::Path(repo.api_path(&format!("manifests/{reference}"))),
    )
    .header(http::header::CONTENT_TYPE, media_type)
    .body(bytes);
    let resp = repo.call(true, call, success, &Context::Push).await?;
    if !resp.status().is_success() {
        return Err(repo.error_of(resp, &Context::Push).await);
    }
    let answered = super::content_digest(resp.headers());
    repo.inner.registries.drain(resp).await;
    match answered {
        Some(d) if d.algorithm() == "sha256" && d != computed => {
            Err(DistributionError::DigestMismatch {
                expected: computed,
                actual: d.to_string(),
            })
        }
        Some(d) if d.algorithm() != "sha256" => Ok(d),
        _ => Ok(computed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_joins_the_upload_url() {
        let d = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        assert_eq!(
            with_digest("http://r/v2/a/blobs/uploads/u?_state=x", &d),
            format!("http://r/v2/a/blobs/uploads/u?_state=x&digest={d}")
        );
        assert_eq!(
            with_digest("http://r/v2/a/blobs/uploads/u", &d),
            format!("http://r/v2/a/blobs/uploads/u?digest={d}")
        );
    }
}
