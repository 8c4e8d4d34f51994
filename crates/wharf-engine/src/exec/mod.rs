//! `docker exec`, a service beside the containers: create, start (hijacked or detached),
//! resize, inspect, and the exec records, kept after the process exits so that its exit code
//! can be read. Health probes run through it too ([`probe`]).
//!
//! wharfd builds the process (`wharf_runtime::spec::exec_process` on the container's own OCI
//! process, with the user resolved in its rootfs), makes the stdio (pipes, or a socket on which
//! the pty master comes back) and hands both to the container's shim (`crate::shim::exec`). The
//! shim runs `wharf-shim exec` (libcontainer joins the container's namespaces and cgroups),
//! reaps the process and reports its exit on the same connection. wharfd keeps its ends of the
//! stdio and streams them like an attach, framed as the start request's `Tty` says (dockerd's
//! rule: the framing follows the start, the process's terminal follows the create).

pub(crate) mod files;
mod probe;

use crate::containers::{blocking, lock, Container, ContainerService};
use crate::error::{Cause, EngineError};
use crate::ids;
use crate::shim::{self, exec::ExecConn, stdio::OurEnds, stdio::Stdio};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use wharf_api::exec::{ExecCreateRequest, ExecInspect, ExecProcessConfig, ExecStartRequest};
use wharf_api::stdcopy::StdStream;
use wharf_backend::{AttachSession, ExecStarted, OutputChunk, StdinSink};
use wharf_runtime::fdpass;
use wharf_runtime::shim_proto::{Response, StartErrorKind};
use wharf_runtime::spec::{exec_process, ExecInput, ExecUser};

/// dockerd's wait for an exec to start before a resize gives up.
const RESIZE_WAIT: Duration = Duration::from_secs(10);
/// Exited execs are forgotten after this long (Docker keeps them while the container lives;
/// a bound keeps a long-lived container with many execs from growing the daemon).
const KEEP_EXITED: Duration = Duration::from_secs(600);

pub struct ExecService {
    me: Weak<ExecService>,
    containers: Arc<ContainerService>,
    /// `docker exec` instances by ID, kept after they exit so their exit code can be read.
    execs: RwLock<HashMap<String, Arc<Exec>>>,
}

struct Exec {
    id: String,
    container: Arc<Container>,
    /// The container run it belongs to (`RunEvents::started` at create): like dockerd, which
    /// drops a container's execs when it stops, it is not one of a later run's `ExecIDs`.
    run: u64,
    created: Instant,
    req: ExecCreateRequest,
    cmd: Vec<String>,
    detach_keys: Vec<u8>,
    state: Mutex<ExecState>,
    progress: watch::Sender<Progress>,
}

#[derive(Default)]
struct ExecState {
    started: bool,
    running: bool,
    exit_code: Option<i64>,
    pid: i64,
    /// A duplicate of the pty master, for resizes, while the process runs.
    pty: Option<Arc<OwnedFd>>,
    exited_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Progress {
    #[default]
    Created,
    Running,
    Exited,
}

impl ExecService {
    /// The service and, made by `make_containers` (which may keep a weak handle to this
    /// service, e.g. for the health probe hook), the containers service it serves.
    pub fn new(
        make_containers: impl FnOnce(&Weak<ExecService>) -> Arc<ContainerService>,
    ) -> Arc<ExecService> {
        Arc::new_cyclic(|me| ExecService {
            me: me.clone(),
            containers: make_containers(me),
            execs: RwLock::new(HashMap::new()),
        })
    }

    pub fn containers(&self) -> &Arc<ContainerService> {
        &self.containers
    }

    pub async fn create(&self, name: &str, req: ExecCreateRequest) -> Result<String, EngineError> {
        let body = serde_json::to_value(&req).map_err(|e| e.during("reading the request"))?;
        crate::honour::check(crate::honour::exec::CREATE_TABLE, "", &body)?;
        crate::honour::values::exec(&req, &body)?;
        let c = self.containers.resolve(name)?;
        can_exec(&c)?;
        // Its start joins the container's cgroups: see `warm_cgroup_lock`.
        self.containers.warm_cgroup_lock();
        let cmd = req.cmd.clone().unwrap_or_default();
        if cmd.is_empty() {
            return Err(EngineError::invalid("No exec command specified"));
        }
        let mut detach_keys = crate::containers::stdin::detach_keys(Some(&req.detach_keys))?;
        if !req.tty {
            // dockerd looks for the keys only on a terminal; piped data passes untouched.
            detach_keys.clear();
        }
        let id = ids::new_id().map_err(|e| e.during("generating an id"))?;
        self.prune();
        let (progress, _) = watch::channel(Progress::Created);
        let e = Arc::new(Exec {
            id: id.clone(),
            container: c.clone(),
            run: c.events.borrow().started,
            created: Instant::now(),
            req,
            cmd,
            detach_keys,
            state: Mutex::new(ExecState::default()),
            progress,
        });
        self.execs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), e.clone());
        self.containers.emit(
            &c,
            &format!("exec_create: {}", e.cmd.join(" ")),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    fn lookup(&self, id: &str) -> Result<Arc<Exec>, EngineError> {
        self.execs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NoSuchExec(id.to_string()))
    }

    /// Forgets execs of removed containers and execs that exited long ago.
    fn prune(&self) {
        self.execs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, e| {
                !e.container.events.borrow().removed
                    && lock(&e.state)
                        .exited_at
                        .is_none_or(|t| t.elapsed() < KEEP_EXITED)
            });
    }

    /// Drops an exec nobody will inspect again (a finished health probe).
    fn forget(&self, id: &str) {
        self.execs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Container inspect's `ExecIDs`, as dockerd's `container.ExecCommands`: the execs of the
    /// container's current run that have not exited (created or running), oldest first; `None`
    /// (JSON null) when there are none.
    pub fn ids_of(&self, container_id: &str) -> Option<Vec<String>> {
        let mut live: Vec<(Instant, String)> = self
            .execs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|e| {
                let c = &e.container;
                c.id() == container_id
                    && c.is_running()
                    && c.events.borrow().started == e.run
                    && *e.progress.borrow() != Progress::Exited
            })
            .map(|e| (e.created, e.id.clone()))
            .collect();
        live.sort();
        (!live.is_empty()).then(|| live.into_iter().map(|(_, id)| id).collect())
    }

    pub async fn inspect(&self, id: &str) -> Result<ExecInspect, EngineError> {
        let e = self.lookup(id)?;
        let st = lock(&e.state);
        let (entrypoint, arguments) = e
            .cmd
            .split_first()
            .map(|(a, b)| (a.clone(), b.to_vec()))
            .unwrap_or_default();
        Ok(ExecInspect {
            id: e.id.clone(),
            running: st.running,
            exit_code: st.exit_code,
            process_config: ExecProcessConfig {
                tty: e.req.tty,
                entrypoint,
                arguments,
                privileged: e.req.privileged,
                user: e.req.user.clone(),
            },
            open_stdin: e.req.attach_stdin,
            open_stderr: e.req.attach_stderr,
            open_stdout: e.req.attach_stdout,
            can_remove: !st.running,
            container_id: e.container.id().to_string(),
            detach_keys: e.req.detach_keys.clone(),
            pid: st.pid,
        })
    }

    pub async fn resize(&self, id: &str, height: u16, width: u16) -> Result<(), EngineError> {
        let e = self.lookup(id)?;
        // The CLI resizes right after the hijack, while the start may still be under way.
        let mut rx = e.progress.subscribe();
        let started =
            tokio::time::timeout(RESIZE_WAIT, rx.wait_for(|p| *p != Progress::Created)).await;
        if !matches!(started, Ok(Ok(_))) {
            return Err(EngineError::internal(
                "timeout waiting for exec session ready",
            ));
        }
        let pty = lock(&e.state).pty.clone();
        match pty {
            Some(m) => fdpass::set_winsize(m.as_raw_fd(), height, width)
                .map_err(|err| err.during("resizing the exec's tty")),
            // containerd answers a resize without a console (or after the exit) with success.
            None => Ok(()),
        }
    }

    pub async fn start(
        &self,
        id: &str,
        start: ExecStartRequest,
    ) -> Result<ExecStarted, EngineError> {
        let body = serde_json::to_value(&start).map_err(|e| e.during("reading the request"))?;
        crate::honour::check(crate::honour::exec::START_TABLE, "", &body)?;
        let e = self.lookup(id)?;
        {
            let mut st = lock(&e.state);
            if st.started {
                return Err(EngineError::conflict(format!(
                    "Error: Exec command {} is already running",
                    e.id
                )));
            }
            st.started = true;
        }
        can_exec(&e.container)?;
        if start.detach {
            return match self.launch(&e, &start, true).await? {
                Ok(_) => Ok(ExecStarted::Detached),
                Err(text) => Err(EngineError::internal(text)),
            };
        }
        // The process starts only when the client reads the stream, that is after the 101 is
        // on the wire: docker-py reads the 101 through a buffered reader and then the raw
        // socket, so output sent right behind the headers would be lost in its buffer.
        let (stdin_tx, stdin_rx) = if e.req.attach_stdin {
            let (tx, rx) = mpsc::channel::<Bytes>(64);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let svc = self.me.clone();
        let lazy = e.clone();
        // dockerd frames by the start request's Tty: raw when it is set, stdcopy when not,
        // whatever the create said (the process's terminal follows the create).
        let raw = start.tty;
        let output = stream::once(async move {
            let Some(svc) = svc.upgrade() else {
                return stream::empty().boxed();
            };
            match svc.launch(&lazy, &start, false).await {
                Ok(Ok(ours)) => match exec_output(&lazy, ours, stdin_rx) {
                    Ok(s) => s,
                    Err(err) => {
                        tracing::warn!(error = %err, "streaming an exec");
                        stream::empty().boxed()
                    }
                },
                failed => {
                    let text = match failed {
                        Ok(Err(text)) => text,
                        Err(e) => e.message(),
                        Ok(Ok(_)) => String::new(),
                    };
                    stream::iter(vec![OutputChunk {
                        stream: StdStream::Stdout,
                        data: Bytes::from(format!("{text}\r\n")),
                        timestamp: None,
                    }])
                    .boxed()
                }
            }
        })
        .flatten()
        .boxed();
        Ok(ExecStarted::Attached(AttachSession {
            tty: raw,
            output,
            stdin: stdin_tx.map(|tx| StdinSink {
                tx,
                close_on_eof: !e.req.tty,
            }),
            detach_keys: e.detach_keys.clone(),
            on_detach: Some(self.containers.detach_event(&e.container)),
        }))
    }

    /// Starts the process through the shim. `Ok(Err(text))` is a start failure in Docker's
    /// words (the exit code is recorded); `Err` is wharfd's own trouble.
    async fn launch(
        &self,
        e: &Arc<Exec>,
        start: &ExecStartRequest,
        detach: bool,
    ) -> Result<Result<OurEnds, String>, EngineError> {
        let c = e.container.clone();
        let tty = e.req.tty;
        let exec_dir = self.containers.exec_dir(c.id());
        let process_path = files::process_file(&exec_dir, &e.id);
        {
            let (bundle, rootfs, req, cmd, path) = (
                exec_dir.join("bundle"),
                self.containers.rootfs_dir(c.id()),
                e.req.clone(),
                e.cmd.clone(),
                process_path.clone(),
            );
            let group_add = c.spec.host_config.group_add.clone().unwrap_or_default();
            blocking(move || write_process(&bundle, &rootfs, &req, &group_add, cmd, &path))
                .await??;
        }

        let wants = |attach: bool| attach && !detach;
        // A non-TTY exec started with `Tty` has its stderr dropped: dockerd gives it no writer.
        let stdio = Stdio::new(
            tty,
            wants(e.req.attach_stdin),
            wants(e.req.attach_stdout),
            wants(e.req.attach_stderr) && !start.tty,
        )
        .map_err(|err| err.during("creating the exec's stdio"))?;
        let (mut ours, theirs) = (stdio.ours, stdio.theirs);
        let process_arg = process_path.to_string_lossy().into_owned();
        let started = shim::exec::request_exec(&exec_dir, &process_arg, tty, &theirs).await;
        drop(theirs);
        if started.as_ref().is_ok_and(|(_, r)| r.ok) {
            crate::failpoint::hit(self.containers.exec_root(), crate::failpoint::EXEC_STARTED);
        }
        let _ = std::fs::remove_file(&process_path);
        let (conn, resp) = started.map_err(|err| err.during("starting the exec in the shim"))?;
        if !resp.ok {
            return Ok(Err(self.failed_start(e, resp)));
        }
        let pid = resp.pid.unwrap_or(0);
        if tty {
            ours.receive_pty()
                .await
                .map_err(|err| err.during("receiving the exec's pty"))?;
            // The start's size counts only when the start asks for a TTY (dockerd: "no console
            // without tty"); otherwise the create's.
            let size = start
                .console_size
                .as_deref()
                .filter(|_| start.tty)
                .or(e.req.console_size.as_deref())
                .and_then(|v| Some((*v.first()?, *v.get(1)?)));
            if let (Some((h, w)), Some(m)) = (size.filter(|(h, w)| *h > 0 && *w > 0), &ours.pty) {
                let _ = fdpass::set_winsize(m.as_raw_fd(), h, w);
            }
        }
        {
            let mut st = lock(&e.state);
            st.running = true;
            st.pid = i64::from(pid);
            st.pty = match &ours.pty {
                Some(m) => m.try_clone().ok().map(Arc::new),
                None => None,
            };
        }
        e.progress.send_replace(Progress::Running);
        self.containers.emit(
            &c,
            &format!("exec_start: {}", e.cmd.join(" ")),
            &[("execID", e.id.clone())],
        );
        // Detached with a TTY, the master must stay open (closing it hangs up the process).
        let keep_pty = if detach { ours.pty.take() } else { None };
        self.spawn_exit_waiter(e.clone(), conn, keep_pty);
        Ok(Ok(ours))
    }

    /// Records Docker's exit code for a process that could not start (126, or 127 when the
    /// command does not exist) and returns the OCI error text the client is shown.
    fn failed_start(&self, e: &Arc<Exec>, resp: Response) -> String {
        let msg = resp.error.unwrap_or_else(|| "unknown error".into());
        let code = match resp.error_kind {
            Some(StartErrorKind::NotFound) => 127,
            _ => 126,
        };
        {
            let mut st = lock(&e.state);
            st.exit_code = Some(code);
            st.exited_at = Some(Instant::now());
        }
        e.progress.send_replace(Progress::Exited);
        format!(
            "OCI runtime exec failed: exec failed: unable to start container process: {msg}: unknown"
        )
    }

    /// Reads the shim's second answer (the exit), records it and emits `exec_die`.
    fn spawn_exit_waiter(&self, e: Arc<Exec>, conn: ExecConn, keep_pty: Option<OwnedFd>) {
        let svc = self.me.clone();
        tokio::spawn(async move {
            let code = conn.exit_code().await;
            drop(keep_pty);
            {
                let mut st = lock(&e.state);
                st.running = false;
                st.exit_code = Some(code);
                st.pty = None;
                st.exited_at = Some(Instant::now());
            }
            e.progress.send_replace(Progress::Exited);
            if let Some(svc) = svc.upgrade() {
                svc.containers.emit(
                    &e.container,
                    "exec_die",
                    &[("execID", e.id.clone()), ("exitCode", code.to_string())],
                );
            }
        });
    }

    /// SIGKILLs a running exec's process through its container's shim, as dockerd does when a
    /// health probe times out.
    async fn kill(&self, id: &str) {
        let Ok(e) = self.lookup(id) else { return };
        let pid = {
            let st = lock(&e.state);
            match i32::try_from(st.pid) {
                Ok(pid) if st.running && pid > 0 => pid,
                _ => return,
            }
        };
        let dir = self.containers.exec_dir(e.container.id());
        if let Err(err) = shim::signal_exec(&dir, pid, libc::SIGKILL).await {
            tracing::debug!(exec = %id, error = %err, "killing an exec");
        }
    }
}

/// The exec's output until it has exited; its stdin writer fed from `stdin`.
fn exec_output(
    e: &Arc<Exec>,
    ours: OurEnds,
    stdin: Option<mpsc::Receiver<Bytes>>,
) -> std::io::Result<futures_util::stream::BoxStream<'static, OutputChunk>> {
    use crate::shim::stdio::{read_stream, spawn_stdin_writer};
    let OurEnds {
        stdin: stdin_fd,
        stdout,
        stderr,
        pty,
        console: _,
    } = ours;
    let (out, input): (Option<OwnedFd>, Option<OwnedFd>) = match pty {
        Some(m) => {
            let w = if stdin.is_some() {
                Some(m.try_clone()?)
            } else {
                None
            };
            (Some(m), w)
        }
        None => (stdout, stdin_fd),
    };
    let mut streams = Vec::new();
    if let Some(fd) = out {
        streams.push(read_stream(fd, StdStream::Stdout)?);
    }
    if let Some(fd) = stderr {
        streams.push(read_stream(fd, StdStream::Stderr)?);
    }
    if let (Some(fd), Some(rx)) = (input, stdin) {
        spawn_stdin_writer(fd, rx)?;
    }
    let mut exited = e.progress.subscribe();
    // The stream ends only once the exit code is recorded, so the client's exec inspect
    // right after it sees the final ExitCode.
    let until_exit = stream::once(async move {
        let _ = exited.wait_for(|p| *p == Progress::Exited).await;
    })
    .filter_map(|()| async { None::<OutputChunk> });
    Ok(stream::select_all(streams).chain(until_exit).boxed())
}

/// Docker's checks and words for exec into a container that cannot take one (409).
fn can_exec(c: &Container) -> Result<(), EngineError> {
    let st = c.state();
    if !c.is_running() {
        return Err(EngineError::NotRunning(c.id().to_string()));
    }
    if st.paused {
        return Err(EngineError::conflict(format!(
            "Container {} is paused, unpause the container before exec",
            c.id()
        )));
    }
    Ok(())
}

/// Writes the exec's OCI process (`wharf_runtime::spec::exec_process`) next to the bundle:
/// the container's own process, read back from its `config.json`, with the exec's command,
/// env, working dir, user (resolved in the container's rootfs) and TTY.
fn write_process(
    bundle: &Path,
    rootfs: &Path,
    req: &ExecCreateRequest,
    group_add: &[String],
    cmd: Vec<String>,
    out: &Path,
) -> Result<(), EngineError> {
    let spec = oci_spec::runtime::Spec::load(bundle.join("config.json"))
        .map_err(|e| e.during("reading the container's spec"))?;
    let base = spec
        .process()
        .as_ref()
        .ok_or_else(|| EngineError::internal("the container's spec has no process"))?;
    let user = if req.user.is_empty() {
        None
    } else {
        let u = crate::containers::rootfs::resolve_user(rootfs, &req.user)
            .map_err(EngineError::invalid)?;
        // dockerd gives an exec's user the container's `--group-add` groups too, and lists
        // the primary group among the supplementary ones, as for the container's process.
        let mut gids = vec![u.gid];
        let extra = crate::containers::rootfs::resolve_groups(rootfs, group_add)
            .map_err(EngineError::invalid)?;
        for g in u.additional_gids.into_iter().chain(extra) {
            if !gids.contains(&g) {
                gids.push(g);
            }
        }
        Some(ExecUser {
            uid: u.uid,
            gid: u.gid,
            additional_gids: gids,
        })
    };
    let input = ExecInput {
        args: cmd,
        env: req.env.clone().unwrap_or_default(),
        cwd: req.working_dir.clone(),
        user,
        terminal: req.tty,
        privileged: req.privileged,
    };
    let p = exec_process(base, &input).map_err(|e| e.during("building the exec process"))?;
    let json = serde_json::to_vec(&p).map_err(|e| e.during("encoding the exec process"))?;
    wharf_fs::atomic_write(out, &json).map_err(|e| e.during("writing the exec process"))
}
