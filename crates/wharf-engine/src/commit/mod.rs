//! `docker commit` and `docker diff`: a container's writable layer as a list of changes and
//! as a new image, and the `--change` dialect that commit and import share.
//!
//! Both read the container's overlay upper dir, which is there whether the container runs
//! or not. A commit freezes a running container first (`pause`, dockerd's default) through
//! the containers service's own pause and unpause, so the freeze is recorded, evented and
//! undone as a `docker pause` is; the whole commit runs on a task of its own, so a client
//! that hangs up cannot leave the container frozen.

pub mod dialect;
mod healthcheck;
mod image;
pub mod merge;
mod words;

use crate::containers::model::Status;
use crate::containers::ContainerService;
use crate::ctx::Ctx;
use crate::error::{Cause, EngineError};
use crate::images::{reference, ImageService};
use std::path::PathBuf;
use std::sync::Arc;
use wharf_api::container::FilesystemChange;
use wharf_backend::CommitOptions;
use wharf_storage::changes::Skip;

/// Where the runtime mounts its own files and filesystems in every container: the mount
/// points it makes for them in the writable layer are not the container's changes (dockerd
/// keeps them in its init layer).
const RUNTIME_MOUNT_POINTS: &[&str] = &[
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "proc",
    "sys",
    "dev",
    "sbin/docker-init",
    ".dockerenv",
];

/// What of the container's writable layer is not its own: below its mounts' destinations
/// (volumes, binds, tmpfs) is the mounts', and the runtime's empty mount points.
fn skip_of(spec: &crate::containers::model::ContainerSpec) -> Skip {
    let rel = |d: &str| PathBuf::from(d.trim_start_matches('/'));
    let mut mounts: Vec<PathBuf> = spec.mounts.iter().map(|m| rel(&m.destination)).collect();
    mounts.extend(spec.host_config.tmpfs.iter().flatten().map(|(d, _)| rel(d)));
    mounts.retain(|p| !p.as_os_str().is_empty());
    Skip {
        mounts,
        mount_points: RUNTIME_MOUNT_POINTS.iter().map(PathBuf::from).collect(),
    }
}

/// `docker diff`.
pub(crate) async fn changes(
    ctx: &Arc<Ctx>,
    containers: &ContainerService,
    name: &str,
) -> Result<Vec<FilesystemChange>, EngineError> {
    let c = containers.resolve(name)?;
    let key = c.spec.snapshot_key.clone();
    let skip = skip_of(&c.spec);
    let ctx = ctx.clone();
    let found = tokio::task::spawn_blocking(move || {
        let dirs = ctx.snaps.fs_dirs(&key)?;
        wharf_storage::changes::changes(&dirs, &skip)
    })
    .await
    .map_err(|e| e.during("diff task failed"))?;
    match found {
        Ok(list) => Ok(list
            .into_iter()
            .map(|ch| FilesystemChange {
                path: ch.path,
                kind: ch.kind as u8,
            })
            .collect()),
        // Removed meanwhile: its layer went with it.
        Err(e) if e.is_not_found() && containers.resolve(c.id()).is_err() => {
            Err(EngineError::no_such_container(name))
        }
        Err(e) => Err(EngineError::storage("reading the container's changes", e)),
    }
}

/// `docker commit`: the new image's ID.
pub(crate) async fn commit(
    ctx: Arc<Ctx>,
    containers: Arc<ContainerService>,
    images: Arc<ImageService>,
    opts: CommitOptions,
) -> Result<String, EngineError> {
    // Checked before the container is looked up, as dockerd's handler does.
    let tag = if opts.repo.is_empty() {
        None
    } else {
        let full = if opts.tag.is_empty() {
            opts.repo.clone()
        } else {
            format!("{}:{}", opts.repo, opts.tag)
        };
        Some(
            reference::tag_reference(&full, "cannot import digest reference")
                .map_err(EngineError::invalid)?,
        )
    };
    let c = containers.resolve(&opts.container)?;
    // On a task of its own: the unpause must happen whatever becomes of the request.
    tokio::spawn(async move {
        let st = c.state();
        match st.status {
            Status::Dead => {
                return Err(EngineError::conflict(format!(
                    "You cannot commit container {} which is Dead",
                    c.id()
                )))
            }
            Status::Removing => {
                return Err(EngineError::conflict(format!(
                    "You cannot commit container {} which is being removed",
                    c.id()
                )))
            }
            _ => {}
        }
        let mut config = opts
            .config
            .clone()
            .unwrap_or_else(|| c.spec.config.clone());
        dialect::apply(&mut config, &opts.changes).map_err(EngineError::invalid)?;
        merge::merge(&mut config, &c.spec.config);
        let plan = image::Plan {
            container_id: c.id().to_string(),
            snapshot_key: c.spec.snapshot_key.clone(),
            image_id: c.spec.image_id.clone(),
            container_config: c.spec.config.clone(),
            config,
            comment: opts.comment.clone(),
            author: opts.author.clone(),
            tag: tag.clone(),
            skip: skip_of(&c.spec),
        };
        // dockerd's: a pause that fails (the container is not running) is no error.
        let paused = opts.pause && !st.paused && containers.pause(c.id()).await.is_ok();
        let (bctx, bimages) = (ctx.clone(), images.clone());
        let built = tokio::task::spawn_blocking(move || image::build(&bctx, &bimages, &plan))
            .await
            .map_err(|e| e.during("commit task failed"));
        // dockerd's order: the tag and commit events, then the unpause (a deferred call).
        if let Ok(Ok(id)) = &built {
            let labels = images
                .resolve(id)
                .ok()
                .and_then(|i| i.config.config.labels.clone());
            if let Some(r) = &tag {
                ctx.events.image("tag", id, r, labels.as_ref());
            }
            containers.emit(
                &c,
                "commit",
                &[
                    ("comment", opts.comment.clone()),
                    ("imageID", id.clone()),
                    ("imageRef", tag.clone().unwrap_or_default()),
                ],
            );
        }
        if paused {
            if let Err(e) = containers.unpause(c.id()).await {
                tracing::warn!(container = %c.id(), error = %e, "commit: cannot unpause the container");
            }
        }
        built?
    })
    .await
    .map_err(|e| e.during("commit task failed"))?
}
