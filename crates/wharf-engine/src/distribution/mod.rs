//! The distribution service: pull, push, login and distribution inspect (moby's distribution
//! router and the image router's pull and push), between the registries
//! (`wharf_distribution`, behind [`remote::Registry`]) and the stores.
//!
//! Owns: what a pull and a push do and say (the JSON message streams of dockerd), the names
//! they record (tag, repository digest), and wharfd's registry settings.
//! Must not touch: the registry protocol (the client crate's), layer unpacking (storage's).

mod layers;
pub(crate) mod progress;
mod pull;
mod push;
mod remote;
mod request;
pub mod settings;
#[cfg(test)]
mod tests;

use crate::ctx::Ctx;
use crate::error::EngineError;
use futures_util::stream::BoxStream;
use progress::{Item, Out, CHANNEL};
use remote::Registry;
use std::sync::Arc;
use tokio::sync::mpsc;
use wharf_api::registry::{AuthConfig, AuthResponse, DistributionInspect, Platform};
use wharf_backend::{PullOptions, PushOptions};
use wharf_distribution::manifest::{self, Manifest};
use wharf_distribution::{DistributionError, Reference};

pub struct DistributionService {
    ctx: Arc<Ctx>,
    registry: Arc<dyn Registry>,
    /// One second of a failed upload's `Retrying in N seconds` countdown (dockerd's
    /// `waitDuration`); shorter in tests.
    retry_tick: std::time::Duration,
}

/// The largest image config a pull reads (they are JSON documents of a few KiB; the biggest
/// seen, with long histories, are well under 1 MiB).
const MAX_CONFIG: u64 = 8 << 20;

/// A registry's failure as a client hears it: what the registry does not have is 404, as in
/// dockerd (`manifest unknown`, `pull access denied ...`); what Wharf cannot read is 400.
pub(crate) fn registry_error(e: DistributionError) -> EngineError {
    use DistributionError as D;
    let message = e.to_string();
    match e {
        D::ManifestUnknown { .. } | D::Denied(_) | D::NoMatchingPlatform(_) => {
            EngineError::not_found(message)
        }
        D::Registry { status: 404, .. } => EngineError::not_found(message),
        D::Registry { status: 501, .. } => EngineError::not_implemented(message),
        D::InvalidManifest(_) | D::Invalid(_) => EngineError::invalid(message),
        _ => EngineError::internal(message),
    }
}

/// Aborts a pull's or a push's task when its stream is dropped (the client went away).
struct AbortOnDrop(tokio::task::JoinHandle<()>, &'static str);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if !self.0.is_finished() {
            tracing::info!("{}: the client went away; cancelling", self.1);
            self.0.abort();
        }
    }
}

impl DistributionService {
    pub fn new(ctx: Arc<Ctx>) -> Arc<DistributionService> {
        let registry = Arc::new(ctx.registries.clone());
        Self::with_registry(ctx, registry)
    }

    pub(crate) fn with_registry(
        ctx: Arc<Ctx>,
        registry: Arc<dyn Registry>,
    ) -> Arc<DistributionService> {
        Arc::new(DistributionService {
            ctx,
            registry,
            retry_tick: std::time::Duration::from_secs(1),
        })
    }

    /// `POST /images/create?fromImage=`: checks the request, then pulls on a task of its own
    /// whose messages the stream carries. Dropping the stream aborts the pull: every layer
    /// ingest stops and removes what it made, and no image record is written without all
    /// its layers.
    pub fn pull(
        self: &Arc<Self>,
        opts: PullOptions,
    ) -> Result<BoxStream<'static, Item>, EngineError> {
        let target = request::target(&opts.from_image, &opts.tag)?;
        let platform = request::platform(&opts.platform)?;
        let creds = request::credentials(&opts.registry_auth);
        let r = match &target {
            request::Target::One(r) | request::Target::AllTags(r) => r.clone(),
        };
        Ok(
            self.spawn("pull", &r, creds, move |me, remote, out| async move {
                me.pull_target(&target, platform.as_ref(), &remote, &out)
                    .await
            }),
        )
    }

    /// `POST /images/{name}/push`: as a pull, on a task of its own that a dropped stream
    /// aborts.
    pub fn push(
        self: &Arc<Self>,
        opts: &PushOptions,
    ) -> Result<BoxStream<'static, Item>, EngineError> {
        let invalid = |e: wharf_distribution::ReferenceError| EngineError::invalid(e.to_string());
        let mut r = Reference::parse_normalized_named(&opts.name).map_err(invalid)?;
        if !opts.tag.is_empty() {
            r = r.with_tag(&opts.tag).map_err(invalid)?;
        }
        let creds = request::credentials(&opts.registry_auth);
        let target = r.clone();
        Ok(
            self.spawn("push", &r, creds, move |me, remote, out| async move {
                me.push_target(&target, &remote, &out).await
            }),
        )
    }

    /// Runs `work` on a task of its own with `r`'s repository; its messages (and its error,
    /// last) are the stream, and dropping the stream aborts the task.
    fn spawn<F, Fut>(
        self: &Arc<Self>,
        what: &'static str,
        r: &Reference,
        creds: wharf_distribution::Credentials,
        work: F,
    ) -> BoxStream<'static, Item>
    where
        F: FnOnce(Arc<Self>, Arc<dyn remote::Remote>, Out) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), EngineError>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let me = self.clone();
        let remote = self.registry.repository(r, creds);
        let name = r.to_string();
        let task = tokio::spawn(async move {
            let out = Out::new(tx);
            if let Err(e) = work(me, remote, out.clone()).await {
                tracing::info!(image = %name, error = %e, "{what} failed");
                out.fail(e).await;
            }
        });
        let guard = AbortOnDrop(task, what);
        let stream = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
            rx.recv().await.map(|item| (item, (rx, guard)))
        });
        Box::pin(stream)
    }

    /// `POST /auth`: the credentials checked against their registry (Docker Hub when the
    /// body names none).
    pub async fn login(&self, auth: AuthConfig) -> Result<AuthResponse, EngineError> {
        // Empty means Docker Hub; the client knows its names.
        let server = auth.serveraddress.clone();
        let creds =
            wharf_distribution::Credentials::from_auth_config(&wharf_distribution::AuthConfig {
                username: auth.username,
                password: auth.password,
                auth: auth.auth,
                server_address: server.clone(),
                identity_token: auth.identitytoken,
                registry_token: auth.registrytoken,
            })
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        let outcome = self.registry.login(&server, &creds).await.map_err(|e| {
            // dockerd answers a refused login with 401, in the registry's words: the
            // registry's refusal, or a token server's behind the login's request
            // (translateV2AuthError).
            let refused = match &e {
                DistributionError::Unauthorized(_) | DistributionError::Denied(_) => true,
                DistributionError::Request { cause, .. } => matches!(
                    **cause,
                    DistributionError::Unauthorized(_)
                        | DistributionError::Registry { status: 401, .. }
                ),
                _ => false,
            };
            if refused {
                EngineError::Unauthorized(e.to_string())
            } else {
                registry_error(e)
            }
        })?;
        Ok(AuthResponse {
            identity_token: outcome.identity_token.unwrap_or_default(),
            status: outcome.status,
        })
    }

    /// `GET /distribution/{name}/json`: the registry's descriptor for a name and the
    /// platforms behind it (an index's entries, or a manifest's config), nothing pulled.
    pub async fn inspect(
        &self,
        name: &str,
        registry_auth: &str,
    ) -> Result<DistributionInspect, EngineError> {
        let r = Reference::parse_normalized_named(name)
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        let wanted = r.tag_or_digest();
        let remote = self
            .registry
            .repository(&r, request::credentials(registry_auth));
        let fetched = remote.manifest(&wanted).await.map_err(registry_error)?;
        let parsed =
            manifest::parse(&fetched.media_type, &fetched.bytes).map_err(registry_error)?;
        let platforms = match parsed {
            Manifest::Index(ix) => ix
                .manifests
                .iter()
                .filter_map(|m| m.platform.as_ref())
                .map(api_platform)
                .collect(),
            Manifest::Image(m) => {
                let config = remote
                    .blob_bytes(&m.config.digest, MAX_CONFIG)
                    .await
                    .map_err(registry_error)?;
                let p: pull::ConfigPlatform = serde_json::from_slice(&config).unwrap_or_default();
                if p.os.is_empty() && p.architecture.is_empty() {
                    Vec::new()
                } else {
                    vec![Platform {
                        architecture: p.architecture,
                        os: p.os,
                        os_version: p.os_version.unwrap_or_default(),
                        os_features: Vec::new(),
                        variant: p.variant.unwrap_or_default(),
                    }]
                }
            }
        };
        Ok(DistributionInspect {
            descriptor: wharf_api::registry::Descriptor {
                media_type: fetched.media_type.clone(),
                digest: fetched.digest.to_string(),
                size: fetched.bytes.len() as i64,
                urls: Vec::new(),
            },
            platforms,
        })
    }
}

fn api_platform(p: &manifest::Platform) -> Platform {
    Platform {
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        os_version: p.os_version.clone().unwrap_or_default(),
        os_features: Vec::new(),
        variant: p.variant.clone().unwrap_or_default(),
    }
}
