//! A fake backend that records every call and answers from a script, and reading an answer's
//! head off a raw socket.
#![allow(dead_code)]

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use wharf_api::container::*;
use wharf_api::image::*;
use wharf_api::jsonmessage::JsonMessage;
use wharf_api::registry::{AuthConfig, AuthResponse, DistributionInspect};
use wharf_api::stdcopy::StdStream;
use wharf_api::system::{Info, Version};
use wharf_api::ApiError;
use wharf_backend::*;

#[derive(Default)]
pub struct Fake {
    pub calls: Mutex<Vec<String>>,
    pub list_opts: Mutex<Option<ListContainersOptions>>,
    pub image_list_opts: Mutex<Option<ListImagesOptions>>,
    pub create_req: Mutex<Option<(Option<String>, ContainerCreateRequest)>>,
    pub update_req: Mutex<Option<ContainerUpdateRequest>>,
    pub exec_req: Mutex<Option<wharf_api::exec::ExecCreateRequest>>,
    pub import_got: Mutex<Option<(ImportOptions, Vec<usize>, usize)>>,
    /// Released by the test to let `wait` finish.
    pub wait_release: Mutex<Option<oneshot::Receiver<WaitResponse>>>,
    /// Output given to logs and attach.
    pub output: Mutex<Vec<OutputChunk>>,
    /// When set, attach output ends only when this sender is dropped/sends.
    pub attach_output: Mutex<Option<mpsc::Receiver<OutputChunk>>>,
    pub tty: Mutex<bool>,
    /// When set, logs stream from this channel (follow) instead of `output`.
    pub logs_output: Mutex<Option<mpsc::Receiver<OutputChunk>>>,
    /// Dropped together with the wait future, so a test can see the server let go of it.
    pub wait_guard: Mutex<Option<oneshot::Sender<()>>>,
    /// Filled with what the hijack wrote to stdin, and `true` once the sender was dropped.
    pub stdin_seen: Arc<Mutex<(Vec<u8>, bool)>>,
    pub pull_opts: Mutex<Option<PullOptions>>,
    /// When set, the pull's messages come from this channel; its stream, dropped by the
    /// server when the client goes away, drops the guard.
    pub pull_messages: Mutex<Option<mpsc::Receiver<Result<JsonMessage, ApiError>>>>,
    pub pull_guard: Mutex<Option<oneshot::Sender<()>>>,
    pub volume_req: Mutex<Option<wharf_api::volume::VolumeCreateRequest>>,
    pub volume_filters: Mutex<Option<wharf_api::filters::Filters>>,
    pub commit_opts: Mutex<Option<CommitOptions>>,
}

pub fn chunk(stream: StdStream, data: &'static [u8], ts: Option<&str>) -> OutputChunk {
    OutputChunk {
        stream,
        data: Bytes::from_static(data),
        timestamp: ts.map(str::to_string),
    }
}

impl Fake {
    fn rec(&self, s: String) {
        self.calls.lock().unwrap().push(s);
    }
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    /// "missing" is unknown, "busy" conflicts, "running" is already started.
    fn lookup(&self, id: &str) -> BackendResult<()> {
        match id {
            "missing" => Err(ApiError::no_such_container(id)),
            "busy" => Err(ApiError::conflict(format!(
                "You cannot remove a running container {id}. Stop the container before attempting removal or force remove"
            ))),
            "running" => Err(ApiError::not_modified()),
            _ => Ok(()),
        }
    }
}

impl ContainersBackend for Fake {
    async fn create(
        &self,
        name: Option<String>,
        _platform: Option<String>,
        req: ContainerCreateRequest,
    ) -> BackendResult<ContainerCreateResponse> {
        self.rec(format!("create {name:?}"));
        *self.create_req.lock().unwrap() = Some((name, req));
        Ok(ContainerCreateResponse {
            id: "abc123".into(),
            warnings: vec![],
        })
    }
    async fn start(&self, id: &str) -> BackendResult<()> {
        self.rec(format!("start {id}"));
        self.lookup(id)
    }
    async fn stop(&self, id: &str, signal: Option<String>, t: Option<i64>) -> BackendResult<()> {
        self.rec(format!("stop {id} {signal:?} {t:?}"));
        self.lookup(id)
    }
    async fn restart(&self, id: &str, signal: Option<String>, t: Option<i64>) -> BackendResult<()> {
        self.rec(format!("restart {id} {signal:?} {t:?}"));
        self.lookup(id)
    }
    async fn kill(&self, id: &str, signal: Option<String>) -> BackendResult<()> {
        self.rec(format!("kill {id} {signal:?}"));
        self.lookup(id)
    }
    async fn remove(&self, id: &str, force: bool, v: bool) -> BackendResult<()> {
        self.rec(format!("remove {id} force={force} v={v}"));
        self.lookup(id)
    }
    async fn list(&self, opts: ListContainersOptions) -> BackendResult<Vec<ContainerSummary>> {
        self.rec(format!(
            "list all={} limit={:?} size={}",
            opts.all, opts.limit, opts.size
        ));
        *self.list_opts.lock().unwrap() = Some(opts);
        Ok(vec![ContainerSummary {
            id: "abc123".into(),
            ..Default::default()
        }])
    }
    async fn inspect(&self, id: &str, size: bool) -> BackendResult<ContainerInspect> {
        self.rec(format!("inspect {id} size={size}"));
        self.lookup(id)?;
        Ok(ContainerInspect {
            id: id.into(),
            ..Default::default()
        })
    }
    async fn rename(&self, id: &str, new_name: &str) -> BackendResult<()> {
        self.rec(format!("rename {id} {new_name}"));
        self.lookup(id)
    }
    async fn wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> BackendResult<BoxFuture<'static, WaitResponse>> {
        self.rec(format!("wait {id} {condition:?}"));
        self.lookup(id)?;
        let rx = self.wait_release.lock().unwrap().take();
        let guard = self.wait_guard.lock().unwrap().take();
        Ok(Box::pin(async move {
            let _guard = guard;
            match rx {
                Some(rx) => rx.await.unwrap_or_default(),
                None => WaitResponse::default(),
            }
        }))
    }
    async fn logs(&self, id: &str, opts: LogsOptions) -> BackendResult<LogsSession> {
        self.rec(format!(
            "logs {id} out={} err={} follow={} tail={:?} ts={}",
            opts.stdout, opts.stderr, opts.follow, opts.tail, opts.timestamps
        ));
        self.lookup(id)?;
        let output = match self.logs_output.lock().unwrap().take() {
            Some(mut rx) => futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed(),
            None => futures_util::stream::iter(self.output.lock().unwrap().clone()).boxed(),
        };
        Ok(LogsSession {
            tty: *self.tty.lock().unwrap(),
            output,
        })
    }
    async fn resize(&self, id: &str, height: u16, width: u16) -> BackendResult<()> {
        self.rec(format!("resize {id} {height}x{width}"));
        self.lookup(id).map(|_| ())
    }
    async fn attach(&self, id: &str, opts: AttachOptions) -> BackendResult<AttachSession> {
        self.rec(format!(
            "attach {id} stdin={} stream={}",
            opts.stdin, opts.stream
        ));
        self.lookup(id)?;
        let output = match self.attach_output.lock().unwrap().take() {
            Some(mut rx) => futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed(),
            None => futures_util::stream::iter(self.output.lock().unwrap().clone()).boxed(),
        };
        let stdin = if opts.stdin {
            let (tx, mut rx) = mpsc::channel::<Bytes>(4);
            let seen = self.stdin_seen.clone();
            tokio::spawn(async move {
                while let Some(b) = rx.recv().await {
                    if b.is_empty() {
                        break; // the close marker
                    }
                    seen.lock().unwrap().0.extend_from_slice(&b);
                }
                seen.lock().unwrap().1 = true;
            });
            Some(StdinSink {
                tx,
                close_on_eof: true,
            })
        } else {
            None
        };
        Ok(AttachSession {
            tty: *self.tty.lock().unwrap(),
            output,
            stdin,
            detach_keys: wharf_api::detach::DEFAULT_DETACH_KEYS.to_vec(),
            on_detach: None,
        })
    }
    async fn top(&self, _id: &str, _ps_args: &str) -> BackendResult<TopResponse> {
        Err(ApiError::not_implemented(
            "GET /containers/{id}/top is not implemented in Wharf yet",
        ))
    }
    async fn pause(&self, _id: &str) -> BackendResult<()> {
        Err(ApiError::not_implemented(
            "POST /containers/{id}/pause is not implemented in Wharf yet",
        ))
    }
    async fn unpause(&self, _id: &str) -> BackendResult<()> {
        Err(ApiError::not_implemented(
            "POST /containers/{id}/unpause is not implemented in Wharf yet",
        ))
    }
    async fn update(
        &self,
        _id: &str,
        req: ContainerUpdateRequest,
    ) -> BackendResult<ContainerUpdateResponse> {
        *self.update_req.lock().unwrap() = Some(req);
        Ok(ContainerUpdateResponse { warnings: vec![] })
    }
}

/// The fake records exec create; the rest answers 501, the way an unbuilt group would.
impl ExecBackend for Fake {
    async fn exec_create(
        &self,
        _id: &str,
        req: wharf_api::exec::ExecCreateRequest,
    ) -> BackendResult<String> {
        *self.exec_req.lock().unwrap() = Some(req);
        Ok("exec1".into())
    }
    async fn exec_start(
        &self,
        _exec_id: &str,
        _req: wharf_api::exec::ExecStartRequest,
    ) -> BackendResult<ExecStarted> {
        Err(ApiError::not_implemented(
            "POST /exec/{id}/start is not implemented in Wharf yet",
        ))
    }
    async fn exec_resize(&self, _exec_id: &str, _height: u16, _width: u16) -> BackendResult<()> {
        Err(ApiError::not_implemented(
            "POST /exec/{id}/resize is not implemented in Wharf yet",
        ))
    }
    async fn exec_inspect(&self, _exec_id: &str) -> BackendResult<wharf_api::exec::ExecInspect> {
        Err(ApiError::not_implemented(
            "GET /exec/{id}/json is not implemented in Wharf yet",
        ))
    }
}

impl ImagesBackend for Fake {
    async fn import(&self, opts: ImportOptions, mut body: BodyStream) -> BackendResult<String> {
        self.rec(format!("import {} {}", opts.repo, opts.tag));
        let mut sizes = Vec::new();
        let mut total = 0;
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| ApiError::internal(e.to_string()))?;
            sizes.push(piece.len());
            total += piece.len();
        }
        *self.import_got.lock().unwrap() = Some((opts, sizes, total));
        Ok("sha256:feed".into())
    }
    async fn list(&self, opts: ListImagesOptions) -> BackendResult<Vec<ImageSummary>> {
        self.rec(format!("images all={} digests={}", opts.all, opts.digests));
        *self.image_list_opts.lock().unwrap() = Some(opts);
        Ok(vec![])
    }
    async fn inspect(&self, name: &str) -> BackendResult<ImageInspect> {
        self.rec(format!("image inspect {name}"));
        if name == "missing" {
            return Err(ApiError::no_such_image(name));
        }
        Ok(ImageInspect {
            size: 42,
            container: Some(String::new()),
            container_config: Some(ContainerConfig::default()),
            ..ImageInspect::default()
        })
    }
    async fn history(&self, name: &str) -> BackendResult<Vec<HistoryItem>> {
        self.rec(format!("history {name}"));
        Ok(vec![HistoryItem::default()])
    }
    async fn tag(&self, name: &str, repo: &str, tag: &str) -> BackendResult<()> {
        self.rec(format!("tag {name} {repo} {tag}"));
        Ok(())
    }
    async fn remove(
        &self,
        name: &str,
        force: bool,
        no_prune: bool,
    ) -> BackendResult<Vec<ImageDeleteItem>> {
        self.rec(format!("rmi {name} force={force} noprune={no_prune}"));
        Ok(vec![
            ImageDeleteItem::Untagged(name.into()),
            ImageDeleteItem::Deleted("sha256:feed".into()),
        ])
    }
}

/// Pull scripts by name: "missing" fails before any message, "broken" after two.
impl DistributionBackend for Fake {
    async fn pull(&self, opts: PullOptions) -> BackendResult<MessageStream> {
        self.rec(format!(
            "pull {} {} {}",
            opts.from_image, opts.tag, opts.platform
        ));
        *self.pull_opts.lock().unwrap() = Some(opts.clone());
        if let Some(mut rx) = self.pull_messages.lock().unwrap().take() {
            let guard = self.pull_guard.lock().unwrap().take();
            return Ok(futures_util::stream::poll_fn(move |cx| {
                let _keep = &guard;
                rx.poll_recv(cx)
            })
            .boxed());
        }
        let items: Vec<Result<JsonMessage, ApiError>> = match opts.from_image.as_str() {
            "missing" => vec![Err(ApiError::not_found(
                "manifest for localhost:5000/nosuch:tag not found: manifest unknown: manifest unknown",
            ))],
            "broken" => vec![
                Ok(JsonMessage::status("v1", "Pulling from broken")),
                Ok(JsonMessage::action("389ed6bbf73b", "Pulling fs layer")),
                Err(ApiError::internal("unexpected EOF")),
                Ok(JsonMessage::status("", "never sent")),
            ],
            _ => vec![
                Ok(JsonMessage::status("latest", "Pulling from x")),
                Ok(JsonMessage::progress("b3da9f41977a", "Downloading", 126, 126)),
                Ok(JsonMessage::status("", "Status: Downloaded newer image for a>b&c")),
            ],
        };
        Ok(futures_util::stream::iter(items).boxed())
    }
    async fn push(&self, opts: PushOptions) -> BackendResult<MessageStream> {
        self.rec(format!("push {} {}", opts.name, opts.tag));
        Err(ApiError::not_implemented(
            "POST /images/{name}/push (docker push) is not implemented in Wharf yet",
        ))
    }
    async fn login(&self, auth: AuthConfig) -> BackendResult<AuthResponse> {
        self.rec(format!("login {} {}", auth.username, auth.serveraddress));
        if auth.password != "right" {
            return Err(ApiError::new(
                wharf_api::ErrorKind::Unauthorized,
                "unauthorized: incorrect username or password",
            ));
        }
        Ok(AuthResponse {
            identity_token: String::new(),
            status: "Login Succeeded".into(),
        })
    }
    async fn distribution_inspect(
        &self,
        name: &str,
        registry_auth: &str,
    ) -> BackendResult<DistributionInspect> {
        self.rec(format!("distribution {name} auth={registry_auth}"));
        Ok(DistributionInspect {
            descriptor: wharf_api::registry::Descriptor {
                media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
                digest: "sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6"
                    .into(),
                size: 527,
                urls: vec![],
            },
            platforms: vec![wharf_api::registry::Platform {
                architecture: "amd64".into(),
                os: "linux".into(),
                ..Default::default()
            }],
        })
    }
}

/// Save: "nope" is unknown, anything else a tiny "tar" naming the images. Load: records
/// the body's length and `quiet`, then says one line.
impl ImageArchiveBackend for Fake {
    async fn save(&self, names: Vec<String>) -> BackendResult<ByteStream> {
        self.rec(format!("save {}", names.join(",")));
        if names.iter().any(|n| n == "nope") {
            return Err(ApiError::not_found("reference does not exist"));
        }
        let body = Bytes::from(names.join("\n"));
        Ok(futures_util::stream::iter(vec![Ok(body)]).boxed())
    }
    async fn load(&self, mut body: BodyStream, quiet: bool) -> BackendResult<MessageStream> {
        let mut n = 0;
        while let Some(chunk) = body.next().await {
            n += chunk.map_err(|e| ApiError::invalid(e.to_string()))?.len();
        }
        self.rec(format!("load {n} quiet={quiet}"));
        if n == 0 {
            return Ok(futures_util::stream::iter(vec![Err(ApiError::invalid(
                "invalid archive: empty stream",
            ))])
            .boxed());
        }
        let line = JsonMessage {
            stream: "Loaded image: a:b\n".into(),
            ..JsonMessage::default()
        };
        Ok(futures_util::stream::iter(vec![Ok(line)]).boxed())
    }
}

fn fake_volume(name: &str) -> wharf_api::volume::Volume {
    wharf_api::volume::Volume {
        name: name.into(),
        driver: "local".into(),
        scope: "local".into(),
        ..Default::default()
    }
}

/// "nope" is unknown; "clean" has no changes.
impl CommitBackend for Fake {
    async fn container_changes(&self, id: &str) -> BackendResult<Vec<FilesystemChange>> {
        self.rec(format!("changes {id}"));
        match id {
            "nope" => Err(ApiError::not_found(format!("No such container: {id}"))),
            "clean" => Ok(Vec::new()),
            _ => Ok(vec![
                FilesystemChange {
                    path: "/etc".into(),
                    kind: 0,
                },
                FilesystemChange {
                    path: "/etc/new".into(),
                    kind: 1,
                },
            ]),
        }
    }
    async fn commit(&self, opts: CommitOptions) -> BackendResult<String> {
        self.rec(format!("commit {}", opts.container));
        *self.commit_opts.lock().unwrap() = Some(opts);
        Ok("sha256:c0ffee".into())
    }
}

/// "nope" is unknown.
impl VolumesBackend for Fake {
    async fn volume_create(
        &self,
        req: wharf_api::volume::VolumeCreateRequest,
    ) -> BackendResult<wharf_api::volume::Volume> {
        self.rec(format!("volume_create {}", req.name));
        let v = fake_volume(&req.name);
        *self.volume_req.lock().unwrap() = Some(req);
        Ok(v)
    }
    async fn volume_inspect(&self, name: &str) -> BackendResult<wharf_api::volume::Volume> {
        self.rec(format!("volume_inspect {name}"));
        match name {
            "nope" => Err(ApiError::not_found(format!("get {name}: no such volume"))),
            _ => Ok(fake_volume(name)),
        }
    }
    async fn volume_list(
        &self,
        filters: wharf_api::filters::Filters,
    ) -> BackendResult<wharf_api::volume::VolumeListResponse> {
        self.rec("volume_list".into());
        *self.volume_filters.lock().unwrap() = Some(filters);
        Ok(wharf_api::volume::VolumeListResponse {
            volumes: vec![fake_volume("data")],
            warnings: vec![],
        })
    }
    async fn volume_remove(&self, name: &str, force: bool) -> BackendResult<()> {
        self.rec(format!("volume_remove {name} force={force}"));
        match (name, force) {
            ("nope", false) => Err(ApiError::not_found(format!("get {name}: no such volume"))),
            _ => Ok(()),
        }
    }
    async fn volume_prune(
        &self,
        filters: wharf_api::filters::Filters,
    ) -> BackendResult<wharf_api::volume::VolumePruneResponse> {
        self.rec("volume_prune".into());
        *self.volume_filters.lock().unwrap() = Some(filters);
        Ok(wharf_api::volume::VolumePruneResponse {
            volumes_deleted: vec!["gone".into()],
            space_reclaimed: 7,
        })
    }
}

/// "nope" is unknown; stats and tars are fixed; a PUT records its options and body size.
impl ArchiveBackend for Fake {
    async fn archive_stat(
        &self,
        id: &str,
        path: &str,
    ) -> BackendResult<wharf_api::archive::ContainerPathStat> {
        self.rec(format!("archive_stat {id} {path}"));
        match id {
            "nope" => Err(ApiError::not_found(format!("No such container: {id}"))),
            _ => Ok(fake_stat(path)),
        }
    }
    async fn archive_get(
        &self,
        id: &str,
        path: &str,
    ) -> BackendResult<(wharf_api::archive::ContainerPathStat, BodyStream)> {
        self.rec(format!("archive_get {id} {path}"));
        let body: BodyStream =
            futures_util::stream::iter(vec![Ok(Bytes::from_static(b"tar"))]).boxed();
        Ok((fake_stat(path), body))
    }
    async fn archive_put(
        &self,
        id: &str,
        path: &str,
        opts: ExtractOptions,
        body: BodyStream,
    ) -> BackendResult<()> {
        let n: usize = body
            .map(|c| c.map(|b| b.len()).unwrap_or(0))
            .collect::<Vec<_>>()
            .await
            .iter()
            .sum();
        self.rec(format!(
            "archive_put {id} {path} no_overwrite={} copy_uid_gid={} bytes={n}",
            opts.no_overwrite_dir_non_dir, opts.copy_uid_gid
        ));
        Ok(())
    }
    async fn export(&self, id: &str) -> BackendResult<BodyStream> {
        self.rec(format!("export {id}"));
        Ok(futures_util::stream::iter(vec![Ok(Bytes::from_static(b"rootfs"))]).boxed())
    }
}

fn fake_stat(path: &str) -> wharf_api::archive::ContainerPathStat {
    wharf_api::archive::ContainerPathStat {
        name: path.rsplit('/').next().unwrap_or("").to_string(),
        size: 5,
        mode: 0o644,
        mtime: "2024-01-02T03:04:05Z".into(),
        link_target: String::new(),
    }
}

impl SystemBackend for Fake {
    async fn version(&self) -> BackendResult<Version> {
        self.rec("version".into());
        Ok(Version::default())
    }
    async fn info(&self) -> BackendResult<Info> {
        self.rec("info".into());
        Ok(serde_json::json!({"ID": "fake"}))
    }
    async fn disk_usage(
        &self,
        opts: wharf_backend::DiskUsageOptions,
    ) -> BackendResult<wharf_api::system::DiskUsage> {
        self.rec(format!(
            "disk_usage containers={} images={} volumes={} build_cache={}",
            opts.containers, opts.images, opts.volumes, opts.build_cache
        ));
        Ok(wharf_api::system::DiskUsage {
            volumes: opts.volumes.then(|| vec![fake_volume("data")]),
            ..Default::default()
        })
    }
    async fn events(&self, _opts: EventsOptions) -> BackendResult<EventStream> {
        Err(ApiError::not_implemented(
            "GET /events is not implemented in Wharf yet",
        ))
    }
}

/// Reads up to the end of a response head, each read bounded by `limit` so a broken server
/// fails the test instead of hanging it.
pub async fn read_head(s: &mut tokio::net::UnixStream, limit: std::time::Duration) -> String {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(limit, s.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            n,
            1,
            "connection closed inside the head: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    String::from_utf8(buf).unwrap()
}
