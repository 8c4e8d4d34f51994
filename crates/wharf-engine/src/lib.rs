#![recursion_limit = "256"]
//! The daemon core: one service per object (containers, exec, images, distribution, volumes),
//! each owning its state and locks; restore at start; implements the `wharf-backend` traits.
//!
//! Owns: lifecycle policy, naming, image resolution, exec records, reconciliation with running
//! shims; everything wharfd says to a shim is in [`shim`].
//! Must not touch: HTTP types, raw SQL (it goes through `wharf-storage`), the container's
//! processes or cgroup files directly (signals, freezing and exec always go through its shim;
//! reading which processes a cgroup holds, for `top`, is the one exception).

pub mod archive;
pub mod commit;
pub mod containers;
mod ctx;
mod disk_usage;
pub mod distribution;
pub mod error;
pub mod events;
mod exec;
mod failpoint;
pub mod honour;
pub mod host;
pub mod ids;
pub mod imagearchive;
pub mod images;
pub mod mounts;
pub mod names;
mod shim;
mod system;
pub mod timefmt;
pub mod volumes;

pub use ctx::EngineConfig;
use error::Cause;
pub use error::EngineError;
/// The layer ingest limits `EngineConfig` takes, and their parsers (for wharfd's flags).
pub use wharf_storage::ingest;

use containers::ContainerService;
use ctx::Ctx;
use distribution::DistributionService;
use exec::ExecService;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use imagearchive::ImageArchiveService;
use images::ImageService;
use std::sync::Arc;
use volumes::VolumeService;
use wharf_api::container::{
    ContainerCreateRequest, ContainerCreateResponse, ContainerInspect, ContainerSummary,
    WaitResponse,
};
use wharf_api::image::{HistoryItem, ImageDeleteItem, ImageInspect, ImageSummary};
use wharf_api::system::{Info, Version};
use wharf_api::ApiError;
use wharf_backend::*;
use wharf_storage::{ContentStore, Db, Snapshotter};

/// The name Wharf's overlay snapshotter reports where Docker says `overlay2`.
pub const STORAGE_DRIVER: &str = "wharf-overlayfs";

pub struct Engine {
    ctx: Arc<Ctx>,
    containers: Arc<ContainerService>,
    execs: Arc<ExecService>,
    images: Arc<ImageService>,
    distribution: Arc<DistributionService>,
    volumes: Arc<VolumeService>,
    archive: Arc<archive::ArchiveService>,
    archives: Arc<ImageArchiveService>,
    daemon_id: String,
}

fn read_boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl Engine {
    /// Opens the stores on the data root and re-adopts every container.
    pub async fn open(cfg: EngineConfig) -> Result<Arc<Engine>, EngineError> {
        let io = |path: &std::path::Path| {
            let op = format!("preparing {}", path.display());
            move |source| EngineError::io(op, source)
        };
        for d in [
            cfg.data_root.clone(),
            cfg.data_root.join("containers"),
            cfg.exec_root.join("containers"),
            cfg.exec_root.join("runtime"),
        ] {
            std::fs::create_dir_all(&d).map_err(io(&d))?;
        }
        containers::init::install(&cfg.data_root).map_err(io(&cfg.data_root.join("wharf-init")))?;
        let storage = |op: &'static str| move |e| EngineError::storage(op, e);
        let db = Arc::new(
            Db::open(&cfg.data_root.join("meta.db")).map_err(storage("opening the metadata"))?,
        );
        let content = Arc::new(
            ContentStore::open(&cfg.data_root.join("content"))
                .map_err(storage("opening the content store"))?,
        );
        let snaps = Arc::new(
            Snapshotter::new(&cfg.data_root, db.clone())
                .map_err(storage("opening the snapshotter"))?,
        );
        let cleaned = wharf_storage::layer::cleanup_interrupted_imports(&snaps)
            .map_err(storage("removing interrupted imports"))?;
        if cleaned > 0 {
            tracing::info!(cleaned, "removed interrupted image imports");
        }
        let boot_id = read_boot_id();
        let id_file = cfg.data_root.join("engine-id");
        let daemon_id = match std::fs::read_to_string(&id_file) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                let id = ids::new_id().map_err(io(&id_file))?;
                wharf_fs::atomic_write(&id_file, id.as_bytes()).map_err(io(&id_file))?;
                id
            }
        };
        let ingest = wharf_storage::IngestPolicy::statvfs(cfg.ingest_limits, &cfg.data_root);
        let user_agent = format!("wharfd/{}", system::WHARF_VERSION);
        let (registry, registries) =
            distribution::settings::RegistrySettings::new(&cfg.registry, &user_agent)
                .map_err(EngineError::invalid)?;
        images::ingest::log_limits(&ingest);
        let ctx = Arc::new(Ctx {
            ingest,
            data_root: cfg.data_root,
            exec_root: cfg.exec_root,
            shim_path: cfg.shim_path,
            cgroup_parent: cfg.cgroup_parent,
            db,
            content,
            snaps,
            boot_id: boot_id.clone(),
            cgroup_warmer: wharf_runtime::cgroup_lock::CgroupLockKeeper::open().map(Arc::new),
            events: events::EventBus::default(),
            host: host::HostFacts::probe(),
            host_gateway_ip: cfg.host_gateway_ip.or_else(host::default_route_ipv4),
            registries,
            registry,
            volume_refs: Default::default(),
        });
        let boot_file = ctx.exec_root.join("boot-id");
        let previous_boot = std::fs::read_to_string(&boot_file).unwrap_or_default();
        // The exec root is per boot; a different (or missing) boot id there means nothing in
        // it, and no container process, survived.
        let rebooted = previous_boot.trim() != boot_id;
        if rebooted {
            wharf_fs::atomic_write(&boot_file, boot_id.as_bytes()).map_err(io(&boot_file))?;
        }
        let images = Arc::new(ImageService::new(ctx.clone()));
        let distribution = DistributionService::new(ctx.clone());
        let archives = ImageArchiveService::new(ctx.clone(), images.clone());
        // Before any container is restored or request served: nothing may import or remove
        // an image meanwhile.
        images.recover();
        let volumes = Arc::new(VolumeService::new(ctx.clone()));
        let cleaned = volumes.recover()?;
        if cleaned > 0 {
            tracing::info!(cleaned, "removed interrupted volume creates and removes");
        }
        // Health probes are execs: the containers get the exec service's probe hook rather
        // than the service itself, which is built around them.
        let execs = ExecService::new(|me| {
            ContainerService::new(
                ctx.clone(),
                images.clone(),
                volumes.clone(),
                ExecService::probe_hook(me),
            )
        });
        let containers = execs.containers().clone();
        let n = containers
            .restore(rebooted)
            .await
            .map_err(|e| EngineError::storage("restoring containers", e))?;
        // Restore has called `mount` for every running container it adopted: what is still
        // mounted on a volume beyond those was left by a crash.
        let unmounted = volumes.unmount_unused()?;
        if unmounted > 0 {
            tracing::info!(unmounted, "unmounted volumes no running container uses");
        }
        // Every record's claims are known now: an `rm -v` cut after its record finishes here.
        let finished = volumes.finish_pending_removals()?;
        if finished > 0 {
            tracing::info!(
                finished,
                "removed the anonymous volumes of interrupted rm -v"
            );
        }
        tracing::info!(containers = n, "restored state");
        let archive = Arc::new(archive::ArchiveService::new(
            ctx.clone(),
            containers.clone(),
        ));
        Ok(Arc::new(Engine {
            archive,
            ctx,
            containers,
            execs,
            images,
            distribution,
            volumes,
            archives,
            daemon_id,
        }))
    }
}

impl ContainersBackend for Engine {
    async fn create(
        &self,
        name: Option<String>,
        platform: Option<String>,
        req: ContainerCreateRequest,
    ) -> BackendResult<ContainerCreateResponse> {
        Ok(self.containers.create(name, platform, req).await?)
    }
    async fn start(&self, id: &str) -> BackendResult<()> {
        Ok(self.containers.start(id).await?)
    }
    async fn stop(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> BackendResult<()> {
        Ok(self.containers.stop(id, signal, timeout).await?)
    }
    async fn restart(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> BackendResult<()> {
        Ok(self.containers.restart(id, signal, timeout).await?)
    }
    async fn kill(&self, id: &str, signal: Option<String>) -> BackendResult<()> {
        Ok(self.containers.kill(id, signal).await?)
    }
    async fn remove(&self, id: &str, force: bool, remove_volumes: bool) -> BackendResult<()> {
        Ok(self.containers.remove(id, force, remove_volumes).await?)
    }
    async fn list(&self, opts: ListContainersOptions) -> BackendResult<Vec<ContainerSummary>> {
        Ok(self.containers.list(opts).await?)
    }
    async fn inspect(&self, id: &str, size: bool) -> BackendResult<ContainerInspect> {
        let mut c = self.containers.inspect(id, size).await?;
        c.exec_ids = self.execs.ids_of(&c.id);
        Ok(c)
    }
    async fn rename(&self, id: &str, new_name: &str) -> BackendResult<()> {
        Ok(self.containers.rename(id, new_name).await?)
    }
    async fn wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> BackendResult<BoxFuture<'static, WaitResponse>> {
        Ok(self.containers.wait(id, condition).await?)
    }
    async fn logs(&self, id: &str, opts: LogsOptions) -> BackendResult<LogsSession> {
        Ok(self.containers.logs(id, opts).await?)
    }
    async fn attach(&self, id: &str, opts: AttachOptions) -> BackendResult<AttachSession> {
        Ok(self.containers.attach(id, opts).await?)
    }
    async fn top(
        &self,
        id: &str,
        ps_args: &str,
    ) -> BackendResult<wharf_api::container::TopResponse> {
        Ok(self.containers.top(id, ps_args).await?)
    }
    async fn update(
        &self,
        id: &str,
        req: wharf_api::container::ContainerUpdateRequest,
    ) -> BackendResult<wharf_api::container::ContainerUpdateResponse> {
        Ok(self.containers.update(id, req).await?)
    }
    async fn pause(&self, id: &str) -> BackendResult<()> {
        Ok(self.containers.pause(id).await?)
    }
    async fn unpause(&self, id: &str) -> BackendResult<()> {
        Ok(self.containers.unpause(id).await?)
    }
    async fn resize(&self, id: &str, height: u16, width: u16) -> BackendResult<()> {
        Ok(self.containers.resize(id, height, width).await?)
    }
}

impl ExecBackend for Engine {
    async fn exec_create(
        &self,
        id: &str,
        req: wharf_api::exec::ExecCreateRequest,
    ) -> BackendResult<String> {
        Ok(self.execs.create(id, req).await?)
    }
    async fn exec_start(
        &self,
        exec_id: &str,
        req: wharf_api::exec::ExecStartRequest,
    ) -> BackendResult<ExecStarted> {
        Ok(self.execs.start(exec_id, req).await?)
    }
    async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> BackendResult<()> {
        Ok(self.execs.resize(exec_id, height, width).await?)
    }
    async fn exec_inspect(&self, exec_id: &str) -> BackendResult<wharf_api::exec::ExecInspect> {
        Ok(self.execs.inspect(exec_id).await?)
    }
}

impl ImagesBackend for Engine {
    async fn import(&self, opts: ImportOptions, body: BodyStream) -> BackendResult<String> {
        let images = self.images.clone();
        let (mut on_drop, cancel, reader) = images::ingest::cancellable_body(body);
        let imported =
            tokio::task::spawn_blocking(move || images.import_blocking(&opts, reader, &cancel))
                .await
                .map_err(|e| e.during("import task failed"));
        on_drop.disarm();
        Ok(imported??)
    }
    async fn list(&self, opts: ListImagesOptions) -> BackendResult<Vec<ImageSummary>> {
        Ok(self.images.list(&opts)?)
    }
    async fn inspect(&self, name: &str) -> BackendResult<ImageInspect> {
        Ok(self.images.inspect(name)?)
    }
    async fn history(&self, name: &str) -> BackendResult<Vec<HistoryItem>> {
        Ok(self.images.history(name)?)
    }
    async fn tag(&self, name: &str, repo: &str, tag: &str) -> BackendResult<()> {
        Ok(self.images.tag(name, repo, tag)?)
    }
    async fn remove(
        &self,
        name: &str,
        force: bool,
        no_prune: bool,
    ) -> BackendResult<Vec<ImageDeleteItem>> {
        let containers = self.containers.clone();
        Ok(self.images.remove(name, force, no_prune, &move |id| {
            containers.users_of_image(id)
        })?)
    }
}

impl DistributionBackend for Engine {
    async fn pull(&self, opts: PullOptions) -> BackendResult<MessageStream> {
        let stream = self.distribution.pull(opts)?;
        Ok(Box::pin(stream.map(|item| item.map_err(ApiError::from))))
    }
    async fn push(&self, opts: PushOptions) -> BackendResult<MessageStream> {
        let stream = self.distribution.push(&opts)?;
        Ok(Box::pin(stream.map(|item| item.map_err(ApiError::from))))
    }
    async fn login(
        &self,
        auth: wharf_api::registry::AuthConfig,
    ) -> BackendResult<wharf_api::registry::AuthResponse> {
        Ok(self.distribution.login(auth).await?)
    }
    async fn distribution_inspect(
        &self,
        name: &str,
        registry_auth: &str,
    ) -> BackendResult<wharf_api::registry::DistributionInspect> {
        Ok(self.distribution.inspect(name, registry_auth).await?)
    }
}

impl VolumesBackend for Engine {
    async fn volume_create(
        &self,
        req: wharf_api::volume::VolumeCreateRequest,
    ) -> BackendResult<wharf_api::volume::Volume> {
        Ok(self.volumes.create(req)?)
    }
    async fn volume_inspect(&self, name: &str) -> BackendResult<wharf_api::volume::Volume> {
        Ok(self.volumes.inspect(name)?)
    }
    async fn volume_list(
        &self,
        filters: wharf_api::filters::Filters,
    ) -> BackendResult<wharf_api::volume::VolumeListResponse> {
        Ok(wharf_api::volume::VolumeListResponse {
            volumes: self.volumes.list(&filters)?,
            warnings: Vec::new(),
        })
    }
    // Removal deletes whole trees and prune measures them: off the async workers.
    async fn volume_remove(&self, name: &str, force: bool) -> BackendResult<()> {
        let (volumes, name) = (self.volumes.clone(), name.to_string());
        let removed = tokio::task::spawn_blocking(move || volumes.remove(&name, force))
            .await
            .map_err(|e| e.during("volume remove task failed"));
        Ok(removed??)
    }
    async fn volume_prune(
        &self,
        filters: wharf_api::filters::Filters,
    ) -> BackendResult<wharf_api::volume::VolumePruneResponse> {
        let volumes = self.volumes.clone();
        let pruned = tokio::task::spawn_blocking(move || volumes.prune(&filters))
            .await
            .map_err(|e| e.during("volume prune task failed"));
        Ok(pruned??)
    }
}

impl ImageArchiveBackend for Engine {
    async fn save(&self, names: Vec<String>) -> BackendResult<ByteStream> {
        Ok(self.archives.save(names).await?)
    }
    async fn load(&self, body: BodyStream, quiet: bool) -> BackendResult<MessageStream> {
        let stream = self.archives.load(body, quiet);
        Ok(Box::pin(stream.map(|item| item.map_err(ApiError::from))))
    }
}

impl CommitBackend for Engine {
    async fn container_changes(
        &self,
        id: &str,
    ) -> BackendResult<Vec<wharf_api::container::FilesystemChange>> {
        Ok(commit::changes(&self.ctx, &self.containers, id).await?)
    }
    async fn commit(&self, opts: CommitOptions) -> BackendResult<String> {
        Ok(commit::commit(
            self.ctx.clone(),
            self.containers.clone(),
            self.images.clone(),
            opts,
        )
        .await?)
    }
}

impl SystemBackend for Engine {
    async fn version(&self) -> BackendResult<Version> {
        Ok(self.version_info())
    }
    async fn info(&self) -> BackendResult<Info> {
        Ok(self.system_info())
    }
    async fn disk_usage(
        &self,
        opts: wharf_backend::DiskUsageOptions,
    ) -> BackendResult<wharf_api::system::DiskUsage> {
        Ok(self.disk_usage(opts).await?)
    }
    async fn events(&self, opts: EventsOptions) -> BackendResult<EventStream> {
        Ok(self.ctx.events.subscribe(opts)?)
    }
}

impl ArchiveBackend for Engine {
    async fn archive_stat(
        &self,
        id: &str,
        path: &str,
    ) -> BackendResult<wharf_api::archive::ContainerPathStat> {
        Ok(self.archive.stat(id, path).await?)
    }
    async fn archive_get(
        &self,
        id: &str,
        path: &str,
    ) -> BackendResult<(wharf_api::archive::ContainerPathStat, BodyStream)> {
        Ok(self.archive.get(id, path).await?)
    }
    async fn archive_put(
        &self,
        id: &str,
        path: &str,
        opts: ExtractOptions,
        body: BodyStream,
    ) -> BackendResult<()> {
        let opts = archive::PutOptions {
            no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
            copy_uid_gid: opts.copy_uid_gid,
        };
        Ok(self.archive.put(id, path, opts, body).await?)
    }
    async fn export(&self, id: &str) -> BackendResult<BodyStream> {
        Ok(self.archive.export(id).await?)
    }
}
