//! The registry calls the service makes, as traits it owns: `wharf_distribution`'s client in
//! the daemon, a map of manifests and blobs in the tests (so a pull's orchestration, its
//! messages and what it stores are tested without a network).

use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use wharf_distribution::error::Result as DResult;
use wharf_distribution::{
    BlobStream, Credentials, Digest, Fetched, LoginOutcome, ManifestHead, Reference,
};

/// A daemon's registries.
pub(crate) trait Registry: Send + Sync {
    /// One repository, with the credentials of one request.
    fn repository(&self, name: &Reference, creds: Credentials) -> Arc<dyn Remote>;
    /// `POST /auth`.
    fn login<'a>(
        &'a self,
        server: &'a str,
        creds: &'a Credentials,
    ) -> BoxFuture<'a, DResult<LoginOutcome>>;
}

/// One repository of one registry.
pub(crate) trait Remote: Send + Sync {
    /// A manifest or index by tag or digest, its bytes as served.
    fn manifest<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, DResult<Fetched>>;
    /// `HEAD` of a tag's manifest: its digest when the registry names one. Nothing by
    /// default (a remote that cannot say), which leaves the pull to `GET` the tag.
    fn resolve_tag<'a>(&'a self, _tag: &'a str) -> BoxFuture<'a, DResult<Option<ManifestHead>>> {
        Box::pin(async { Ok(None) })
    }
    /// A small blob (a config) whole, verified, at most `max` bytes.
    fn blob_bytes<'a>(&'a self, digest: &'a Digest, max: u64) -> BoxFuture<'a, DResult<Bytes>>;
    /// A layer's bytes from `offset` on; the reader verifies the digest.
    fn blob_stream(&self, digest: &Digest, size: u64, offset: u64) -> BlobStream;
    /// Every tag of the repository (`docker pull --all-tags`).
    fn tags(&self) -> BoxFuture<'_, DResult<Vec<String>>>;
    /// `HEAD` of a blob: its size when the registry has it.
    fn blob_exists<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, DResult<Option<u64>>>;
    /// A cross-repository mount from `from` (a path on the same registry); false when the
    /// registry started an upload instead.
    fn mount_blob<'a>(&'a self, digest: &'a Digest, from: &'a str) -> BoxFuture<'a, DResult<bool>>;
    /// Uploads a blob; the registry checks its digest.
    fn upload_blob<'a>(
        &'a self,
        digest: &'a Digest,
        size: u64,
        body: BlobStream,
    ) -> BoxFuture<'a, DResult<()>>;
    /// `PUT` of a manifest under `reference` (a tag).
    fn put_manifest<'a>(
        &'a self,
        reference: &'a str,
        media_type: &'a str,
        bytes: Bytes,
    ) -> BoxFuture<'a, DResult<Digest>>;
}

impl Registry for wharf_distribution::Registries {
    fn repository(&self, name: &Reference, creds: Credentials) -> Arc<dyn Remote> {
        Arc::new(wharf_distribution::Registries::repository(
            self, name, creds,
        ))
    }

    fn login<'a>(
        &'a self,
        server: &'a str,
        creds: &'a Credentials,
    ) -> BoxFuture<'a, DResult<LoginOutcome>> {
        Box::pin(wharf_distribution::Registries::login(self, server, creds))
    }
}

impl Remote for wharf_distribution::Repository {
    fn manifest<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, DResult<Fetched>> {
        Box::pin(wharf_distribution::Repository::manifest(self, reference))
    }

    fn resolve_tag<'a>(&'a self, tag: &'a str) -> BoxFuture<'a, DResult<Option<ManifestHead>>> {
        Box::pin(wharf_distribution::Repository::resolve_tag(self, tag))
    }

    fn blob_bytes<'a>(&'a self, digest: &'a Digest, max: u64) -> BoxFuture<'a, DResult<Bytes>> {
        Box::pin(wharf_distribution::Repository::blob_bytes(
            self, digest, max,
        ))
    }

    fn blob_stream(&self, digest: &Digest, size: u64, offset: u64) -> BlobStream {
        wharf_distribution::Repository::blob_stream(self, digest, size, offset)
    }

    fn blob_exists<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, DResult<Option<u64>>> {
        Box::pin(wharf_distribution::Repository::blob_exists(self, digest))
    }

    fn mount_blob<'a>(&'a self, digest: &'a Digest, from: &'a str) -> BoxFuture<'a, DResult<bool>> {
        Box::pin(wharf_distribution::Repository::mount_blob(
            self, digest, from,
        ))
    }

    fn upload_blob<'a>(
        &'a self,
        digest: &'a Digest,
        size: u64,
        body: BlobStream,
    ) -> BoxFuture<'a, DResult<()>> {
        Box::pin(wharf_distribution::Repository::upload_blob(
            self, digest, size, body,
        ))
    }

    fn put_manifest<'a>(
        &'a self,
        reference: &'a str,
        media_type: &'a str,
        bytes: Bytes,
    ) -> BoxFuture<'a, DResult<Digest>> {
        Box::pin(wharf_distribution::Repository::put_manifest(
            self, reference, media_type, bytes,
        ))
    }

    fn tags(&self) -> BoxFuture<'_, DResult<Vec<String>>> {
        Box::pin(wharf_distribution::Repository::tags(self))
    }
}
