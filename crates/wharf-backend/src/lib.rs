//! The seam between the Engine API server and the engine: one backend trait per API group,
//! like moby's `api/server/router/*/backend.go`, in terms of `wharf-api` types.
//!
//! Owns: the traits (`ContainersBackend`, `ExecBackend`, `ImagesBackend`, `DistributionBackend`,
//! `VolumesBackend`, `SystemBackend`, `ArchiveBackend`,
//! `ImageArchiveBackend`, `CommitBackend`), the
//! options and session types they exchange, and [`BackendResult`] (an [`ApiError`] carries the
//! engine's error kind; the server maps the kind to a status in one place).
//! Must not touch: HTTP types, I/O. The server parses, calls one of these, and formats the
//! answer; the engine implements them and decides policy.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use std::future::Future;
use wharf_api::container::{
    ContainerCreateRequest, ContainerCreateResponse, ContainerInspect, ContainerSummary,
    ContainerUpdateRequest, ContainerUpdateResponse, TopResponse, WaitResponse,
};
use wharf_api::exec::{ExecCreateRequest, ExecInspect, ExecStartRequest};
use wharf_api::filters::Filters;
use wharf_api::image::{HistoryItem, ImageDeleteItem, ImageInspect, ImageSummary};
use wharf_api::jsonmessage::JsonMessage;
use wharf_api::registry::{AuthConfig, AuthResponse, DistributionInspect};
use wharf_api::stdcopy::StdStream;
use wharf_api::system::{Info, Version};
use wharf_api::ApiError;

pub type BackendResult<T> = Result<T, ApiError>;

/// A piece of container output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    pub stream: StdStream,
    pub data: Bytes,
    /// RFC 3339 with nanoseconds, when the engine knows it (logs do, attach may not).
    pub timestamp: Option<String>,
}

pub type OutputStream = BoxStream<'static, OutputChunk>;

/// A request body as a stream of bytes, so the engine never sees HTTP types.
pub type BodyStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

#[derive(Debug, Clone, Default)]
pub struct ListContainersOptions {
    pub all: bool,
    /// `limit` > 0 returns the newest N (and implies all).
    pub limit: Option<i64>,
    pub size: bool,
    pub filters: Filters,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    #[default]
    NotRunning,
    NextExit,
    Removed,
}

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    /// `None` = all.
    pub tail: Option<usize>,
    /// Unix seconds (fractional allowed); 0 = unset.
    pub since: f64,
    pub until: f64,
    pub timestamps: bool,
    /// Each line after the attributes its log driver recorded (`k=v,k2=v2 `), as dockerd.
    pub details: bool,
}

#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stream: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub logs: bool,
    pub detach_keys: Option<String>,
}

/// What an attach (or an exec start) gives the server once the target is known to exist; the
/// server then upgrades the connection and pumps bytes both ways.
pub struct AttachSession {
    pub tty: bool,
    /// Ends when the container (or exec) exits, after its last output.
    pub output: OutputStream,
    /// Present when stdin was asked for and is open.
    pub stdin: Option<StdinSink>,
    /// The parsed detach sequence (Docker's default ctrl-p,ctrl-q unless overridden); seeing
    /// it on stdin ends this attachment and leaves the process running.
    pub detach_keys: Vec<u8>,
    /// Called once if the client detached with the keys (the `detach` event).
    pub on_detach: Option<Box<dyn FnOnce() + Send>>,
}

/// Where an attacher's stdin bytes go. Each `Bytes` is written in order; an empty `Bytes`
/// closes the process's stdin for everybody.
pub struct StdinSink {
    pub tx: tokio::sync::mpsc::Sender<Bytes>,
    /// Whether this attacher's stdin EOF closes the process's stdin (Docker: `StdinOnce`
    /// without a TTY, and non-TTY exec). Otherwise EOF only ends this attacher's input.
    pub close_on_eof: bool,
}

/// What `POST /exec/{id}/start` leads to.
pub enum ExecStarted {
    /// `Detach: true`: it runs; the answer is an empty 200.
    Detached,
    /// Streams like an attach; the session ends when the process has exited.
    Attached(AttachSession),
}

/// Logs: whether the container has a TTY (raw bytes, no stdcopy) and the chunks.
pub struct LogsSession {
    pub tty: bool,
    pub output: OutputStream,
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub repo: String,
    pub tag: String,
    pub changes: Vec<String>,
    pub message: String,
    pub platform: String,
}

#[derive(Debug, Clone, Default)]
pub struct ListImagesOptions {
    pub all: bool,
    pub digests: bool,
    pub filters: Filters,
}

pub trait ContainersBackend: Send + Sync + 'static {
    /// `platform` is the `?platform=` query (`os[/arch[/variant]]`), empty when not given.
    fn create(
        &self,
        name: Option<String>,
        platform: Option<String>,
        req: ContainerCreateRequest,
    ) -> impl Future<Output = BackendResult<ContainerCreateResponse>> + Send;
    /// Already running → `ApiError::not_modified()` (HTTP 304).
    fn start(&self, id: &str) -> impl Future<Output = BackendResult<()>> + Send;
    /// Not running → `ApiError::not_modified()`.
    fn stop(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> impl Future<Output = BackendResult<()>> + Send;
    fn restart(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> impl Future<Output = BackendResult<()>> + Send;
    fn kill(
        &self,
        id: &str,
        signal: Option<String>,
    ) -> impl Future<Output = BackendResult<()>> + Send;
    fn remove(
        &self,
        id: &str,
        force: bool,
        remove_volumes: bool,
    ) -> impl Future<Output = BackendResult<()>> + Send;
    fn list(
        &self,
        opts: ListContainersOptions,
    ) -> impl Future<Output = BackendResult<Vec<ContainerSummary>>> + Send;
    fn inspect(
        &self,
        id: &str,
        size: bool,
    ) -> impl Future<Output = BackendResult<ContainerInspect>> + Send;
    fn rename(&self, id: &str, new_name: &str) -> impl Future<Output = BackendResult<()>> + Send;
    /// Validates at once (404 etc.); the returned future resolves when the condition is met.
    /// The server flushes headers between the two.
    fn wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> impl Future<Output = BackendResult<BoxFuture<'static, WaitResponse>>> + Send;
    fn logs(
        &self,
        id: &str,
        opts: LogsOptions,
    ) -> impl Future<Output = BackendResult<LogsSession>> + Send;
    fn attach(
        &self,
        id: &str,
        opts: AttachOptions,
    ) -> impl Future<Output = BackendResult<AttachSession>> + Send;
    /// The container's processes; `ps_args` as `docker top` passes them (empty = `-ef`).
    fn top(
        &self,
        id: &str,
        ps_args: &str,
    ) -> impl Future<Output = BackendResult<TopResponse>> + Send;
    /// Already paused or not running → Conflict.
    fn pause(&self, id: &str) -> impl Future<Output = BackendResult<()>> + Send;
    fn update(
        &self,
        id: &str,
        req: ContainerUpdateRequest,
    ) -> impl Future<Output = BackendResult<ContainerUpdateResponse>> + Send;
    fn unpause(&self, id: &str) -> impl Future<Output = BackendResult<()>> + Send;
    /// Sets the pty size of a TTY container; no TTY or not running → Conflict.
    fn resize(
        &self,
        id: &str,
        height: u16,
        width: u16,
    ) -> impl Future<Output = BackendResult<()>> + Send;
}

/// `docker exec`: moby's exec router. A container's execs are their own objects, with IDs.
pub trait ExecBackend: Send + Sync + 'static {
    /// Returns the new exec's ID.
    fn exec_create(
        &self,
        id: &str,
        req: ExecCreateRequest,
    ) -> impl Future<Output = BackendResult<String>> + Send;
    fn exec_start(
        &self,
        exec_id: &str,
        req: ExecStartRequest,
    ) -> impl Future<Output = BackendResult<ExecStarted>> + Send;
    fn exec_resize(
        &self,
        exec_id: &str,
        height: u16,
        width: u16,
    ) -> impl Future<Output = BackendResult<()>> + Send;
    fn exec_inspect(
        &self,
        exec_id: &str,
    ) -> impl Future<Output = BackendResult<ExecInspect>> + Send;
}

pub trait ImagesBackend: Send + Sync + 'static {
    /// Imports a tar (plain or gzip) as a one-layer image; returns the image ID (`sha256:...`).
    fn import(
        &self,
        opts: ImportOptions,
        body: BodyStream,
    ) -> impl Future<Output = BackendResult<String>> + Send;
    fn list(
        &self,
        opts: ListImagesOptions,
    ) -> impl Future<Output = BackendResult<Vec<ImageSummary>>> + Send;
    fn inspect(&self, name: &str) -> impl Future<Output = BackendResult<ImageInspect>> + Send;
    fn history(&self, name: &str) -> impl Future<Output = BackendResult<Vec<HistoryItem>>> + Send;
    fn tag(
        &self,
        name: &str,
        repo: &str,
        tag: &str,
    ) -> impl Future<Output = BackendResult<()>> + Send;
    fn remove(
        &self,
        name: &str,
        force: bool,
        no_prune: bool,
    ) -> impl Future<Output = BackendResult<Vec<ImageDeleteItem>>> + Send;
}

/// The progress of a pull or a push, one message at a time.
///
/// An error as the stream's *first* item means nothing a client must hear about happened yet
/// (a bad reference, an unknown manifest): the server answers it as an ordinary error, status
/// and `{"message"}`, as dockerd does before its first write. A later error is the stream's
/// last item and goes out as an `errorDetail` line under the 200 already sent. Dropping the
/// stream (the client went away) cancels the operation.
pub type MessageStream = BoxStream<'static, Result<JsonMessage, ApiError>>;

/// `POST /images/create?fromImage=`.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `fromImage`: a name, perhaps with a tag or digest.
    pub from_image: String,
    /// `tag`: a tag or a digest. Empty with a bare name means every tag (`docker pull -a`).
    pub tag: String,
    /// `platform`: `os[/arch[/variant]]`; empty means the daemon's own.
    pub platform: String,
    /// The `X-Registry-Auth` header as sent (base64url JSON); empty when absent.
    pub registry_auth: String,
}

/// `POST /images/{name}/push`.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub name: String,
    /// Empty: every tag of the repository.
    pub tag: String,
    pub registry_auth: String,
}

/// Registries: moby's distribution router plus the image router's pull and push.
pub trait DistributionBackend: Send + Sync + 'static {
    fn pull(&self, opts: PullOptions) -> impl Future<Output = BackendResult<MessageStream>> + Send;
    fn push(&self, opts: PushOptions) -> impl Future<Output = BackendResult<MessageStream>> + Send;
    /// `POST /auth`: checks the credentials against their registry.
    fn login(&self, auth: AuthConfig) -> impl Future<Output = BackendResult<AuthResponse>> + Send;
    /// `GET /distribution/{name}/json`.
    fn distribution_inspect(
        &self,
        name: &str,
        registry_auth: &str,
    ) -> impl Future<Output = BackendResult<DistributionInspect>> + Send;
}

/// moby's volume router: named volumes.
pub trait VolumesBackend: Send + Sync + 'static {
    /// An existing name answers the volume that exists.
    fn volume_create(
        &self,
        req: wharf_api::volume::VolumeCreateRequest,
    ) -> impl Future<Output = BackendResult<wharf_api::volume::Volume>> + Send;
    fn volume_inspect(
        &self,
        name: &str,
    ) -> impl Future<Output = BackendResult<wharf_api::volume::Volume>> + Send;
    fn volume_list(
        &self,
        filters: Filters,
    ) -> impl Future<Output = BackendResult<wharf_api::volume::VolumeListResponse>> + Send;
    /// `force`: an unknown name is no error.
    fn volume_remove(
        &self,
        name: &str,
        force: bool,
    ) -> impl Future<Output = BackendResult<()>> + Send;
    fn volume_prune(
        &self,
        filters: Filters,
    ) -> impl Future<Output = BackendResult<wharf_api::volume::VolumePruneResponse>> + Send;
}

/// A response body the engine writes as it goes (an image archive); an error ends it short.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// `docker save` and `docker load`: moby's image router's `get` and `load`.
pub trait ImageArchiveBackend: Send + Sync + 'static {
    /// `GET /images/get?names=` and `GET /images/{name}/get`: the images as one tar. Every
    /// name is resolved before the stream is returned (an unknown one is an ordinary error).
    fn save(&self, names: Vec<String>) -> impl Future<Output = BackendResult<ByteStream>> + Send;
    /// `POST /images/load`: the body is the archive (plain, gzip or zstd). `quiet`: only the
    /// `Loaded image` lines, no progress.
    fn load(
        &self,
        body: BodyStream,
        quiet: bool,
    ) -> impl Future<Output = BackendResult<MessageStream>> + Send;
}

/// `GET /events` parameters: unix seconds (fractions allowed); `until` = None streams forever.
#[derive(Debug, Clone, Default)]
pub struct EventsOptions {
    pub since: Option<f64>,
    pub until: Option<f64>,
    pub filters: Filters,
}

pub type EventStream = BoxStream<'static, wharf_api::event::Event>;

/// Which parts of `GET /system/df` to compute (`?type=`; all but the build cache without it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsageOptions {
    pub containers: bool,
    pub images: bool,
    pub volumes: bool,
    pub build_cache: bool,
}

pub trait SystemBackend: Send + Sync + 'static {
    fn version(&self) -> impl Future<Output = BackendResult<Version>> + Send;
    fn info(&self) -> impl Future<Output = BackendResult<Info>> + Send;
    fn disk_usage(
        &self,
        opts: DiskUsageOptions,
    ) -> impl Future<Output = BackendResult<wharf_api::system::DiskUsage>> + Send;
    /// Past events from `since`, then live ones until `until` or the client leaves.
    fn events(
        &self,
        opts: EventsOptions,
    ) -> impl Future<Output = BackendResult<EventStream>> + Send;
}

/// `POST /commit`.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub container: String,
    /// `repo` and `tag`: the new image's name; an empty repo names nothing.
    pub repo: String,
    pub tag: String,
    pub comment: String,
    pub author: String,
    /// `--change` lines, the dialect `import` reads too.
    pub changes: Vec<String>,
    /// Freeze a running container while its layer is read.
    pub pause: bool,
    /// The body: a config to start from instead of the container's (dockerd's order: the
    /// changes go on this one, then the container's fills what it leaves empty).
    pub config: Option<wharf_api::container::ContainerConfig>,
}

/// A container's writable layer: what changed in it, and it as a new image.
pub trait CommitBackend: Send + Sync + 'static {
    /// `GET /containers/{id}/changes`; empty when nothing changed.
    fn container_changes(
        &self,
        id: &str,
    ) -> impl Future<Output = BackendResult<Vec<wharf_api::container::FilesystemChange>>> + Send;
    /// The new image's ID (`sha256:...`).
    fn commit(&self, opts: CommitOptions) -> impl Future<Output = BackendResult<String>> + Send;
}

/// Everything a full daemon implements.
pub trait Backend:
    ContainersBackend
    + ExecBackend
    + ImagesBackend
    + DistributionBackend
    + VolumesBackend
    + SystemBackend
    + ArchiveBackend
    + ImageArchiveBackend
    + CommitBackend
{
}
impl<
        T: ContainersBackend
            + ExecBackend
            + ImagesBackend
            + DistributionBackend
            + VolumesBackend
            + SystemBackend
            + ArchiveBackend
            + ImageArchiveBackend
            + CommitBackend,
    > Backend for T
{
}

/// `PUT /containers/{id}/archive`'s switches.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// `noOverwriteDirNonDir`: never replace a directory by a non-directory or back.
    pub no_overwrite_dir_non_dir: bool,
    /// `copyUIDGID`: entries owned by the container's `User` (when it has one).
    pub copy_uid_gid: bool,
}

/// moby's archive routes: `docker cp` and `docker export`. A tar going out is a
/// [`BodyStream`] made as the client reads it; one coming in is the request body.
pub trait ArchiveBackend: Send + Sync + 'static {
    /// `HEAD /containers/{id}/archive?path=`.
    fn archive_stat(
        &self,
        id: &str,
        path: &str,
    ) -> impl Future<Output = BackendResult<wharf_api::archive::ContainerPathStat>> + Send;
    /// `GET /containers/{id}/archive?path=`: the stat (for the header) and the tar.
    fn archive_get(
        &self,
        id: &str,
        path: &str,
    ) -> impl Future<Output = BackendResult<(wharf_api::archive::ContainerPathStat, BodyStream)>> + Send;
    /// `PUT /containers/{id}/archive?path=`: extracts `body` (a tar) into the directory.
    fn archive_put(
        &self,
        id: &str,
        path: &str,
        opts: ExtractOptions,
        body: BodyStream,
    ) -> impl Future<Output = BackendResult<()>> + Send;
    /// `GET /containers/{id}/export`.
    fn export(&self, id: &str) -> impl Future<Output = BackendResult<BodyStream>> + Send;
}
