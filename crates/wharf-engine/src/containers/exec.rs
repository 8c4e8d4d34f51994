//! `docker exec`: create, start (hijacked or detached), resize, inspect.
//!
//! wharfd builds the process (the container's own OCI process with the exec's command, env,
//! user, working dir, TTY and capabilities), makes the stdio (pipes, or a socket on which the
//! pty master comes back) and hands it to the container's shim with `SCM_RIGHTS`. The shim runs
//! `wharf-shim exec` (libcontainer joins the container's namespaces and cgroups), reaps the
//! process and reports its exit on the same connection. wharfd keeps its ends of the stdio and
//! streams them like an attach.

use super::rootfs::resolve_user;
use super::{blocking, lock, Container, ContainerService};
use crate::ids;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, watch};
use wharf_api::exec::{ExecCreateRequest, ExecInspect, ExecProcessConfig, ExecStartRequest};
use wharf_api::stdcopy::StdStream;
use wharf_api::ApiError;
use wharf_backend::{AttachSession, ExecStarted, OutputChunk, StdinSink};
use wharf_runtime::fdpass;
use wharf_runtime::shim_proto::{Request, Response, StartErrorKind, SOCKET_FILE};

/// How long the shim may take to say whether the process started.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// dockerd's wait for an exec to start before a resize gives up.
const RESIZE_WAIT: Duration = Duration::from_secs(10);
/// Exited execs are forgotten after this long (Docker keeps them while the container lives;
/// a bound keeps a long-lived container with many execs from growing the daemon).
const KEEP_EXITED: Duration = Duration::from_secs(600);
const READ_CHUNK: usize = 32 * 1024;

pub(crate) struct Exec {
    id: String,
    container: Arc<Container>,
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

impl ContainerService {
    pub async fn exec_create(
        &self,
        name: &str,
        req: ExecCreateRequest,
    ) -> Result<String, ApiError> {
        let c = self.resolve(name)?;
        can_exec(&c)?;
        let cmd = req.cmd.clone().unwrap_or_default();
        if cmd.is_empty() {
            return Err(ApiError::invalid("No exec command specified"));
        }
        let mut detach_keys = super::stdin::detach_keys(Some(&req.detach_keys))?;
        if !req.tty {
            // dockerd looks for the keys only on a terminal; piped data passes untouched.
            detach_keys.clear();
        }
        let id = ids::new_id().map_err(|e| ApiError::internal(format!("generating an id: {e}")))?;
        self.prune_execs();
        let (progress, _) = watch::channel(Progress::Created);
        let e = Arc::new(Exec {
            id: id.clone(),
            container: c.clone(),
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
        self.emit(
            &c,
            &format!("exec_create: {}", e.cmd.join(" ")),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    fn lookup_exec(&self, id: &str) -> Result<Arc<Exec>, ApiError> {
        self.execs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
    }

    /// Forgets execs of removed containers and execs that exited long ago.
    fn prune_execs(&self) {
        let known: std::collections::HashSet<String> =
            self.all().iter().map(|c| c.id().to_string()).collect();
        self.execs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, e| {
                known.contains(e.container.id())
                    && lock(&e.state)
                        .exited_at
                        .is_none_or(|t| t.elapsed() < KEEP_EXITED)
            });
    }

    /// The IDs of a container's execs, for inspect's `ExecIDs`.
    pub fn exec_ids(&self, container_id: &str) -> Vec<String> {
        self.execs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|e| e.container.id() == container_id && lock(&e.state).running)
            .map(|e| e.id.clone())
            .collect()
    }

    pub async fn exec_inspect(&self, id: &str) -> Result<ExecInspect, ApiError> {
        let e = self.lookup_exec(id)?;
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

    pub async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<(), ApiError> {
        let e = self.lookup_exec(id)?;
        // The CLI resizes right after the hijack, while the start may still be under way.
        let mut rx = e.progress.subscribe();
        let started =
            tokio::time::timeout(RESIZE_WAIT, rx.wait_for(|p| *p != Progress::Created)).await;
        if !matches!(started, Ok(Ok(_))) {
            return Err(ApiError::internal("timeout waiting for exec session ready"));
        }
        let pty = lock(&e.state).pty.clone();
        match pty {
            Some(m) => fdpass::set_winsize(m.as_raw_fd(), height, width)
                .map_err(|err| ApiError::internal(format!("resizing the exec's tty: {err}"))),
            // containerd answers a resize without a console (or after the exit) with success.
            None => Ok(()),
        }
    }

    pub async fn exec_start(
        &self,
        id: &str,
        start: ExecStartRequest,
    ) -> Result<ExecStarted, ApiError> {
        let e = self.lookup_exec(id)?;
        {
            let mut st = lock(&e.state);
            if st.started {
                return Err(ApiError::conflict(format!(
                    "Error: Exec command {} is already running",
                    e.id
                )));
            }
            st.started = true;
        }
        can_exec(&e.container)?;
        if start.detach {
            return match self.launch_exec(&e, &start, true).await? {
                Ok(_) => Ok(ExecStarted::Detached),
                Err(text) => Err(ApiError::internal(text)),
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
        let svc = self.handle();
        let lazy = e.clone();
        let output = stream::once(async move {
            let Some(svc) = svc.upgrade() else {
                return stream::empty().boxed();
            };
            match svc.launch_exec(&lazy, &start, false).await {
                Ok(Ok(ours)) => match exec_output(&lazy, ours, stdin_rx) {
                    Ok(s) => s,
                    Err(err) => {
                        tracing::warn!(error = %err, "streaming an exec");
                        stream::empty().boxed()
                    }
                },
                Ok(Err(text)) | Err(ApiError { message: text, .. }) => {
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
            tty: e.req.tty,
            output,
            stdin: stdin_tx.map(|tx| StdinSink {
                tx,
                close_on_eof: !e.req.tty,
            }),
            detach_keys: e.detach_keys.clone(),
            on_detach: Some(self.detach_event(&e.container)),
        }))
    }

    /// Starts the process through the shim. `Ok(Err(text))` is a start failure in Docker's
    /// words (the exit code is recorded); `Err` is wharfd's own trouble.
    async fn launch_exec(
        &self,
        e: &Arc<Exec>,
        start: &ExecStartRequest,
        detach: bool,
    ) -> Result<Result<OurEnds, String>, ApiError> {
        let c = e.container.clone();
        let tty = e.req.tty;
        let exec_dir = self.exec_dir(c.id());
        let process_path = exec_dir.join(format!("exec-{}.json", &e.id[..12]));
        {
            let (bundle, rootfs, req, cmd, path) = (
                exec_dir.join("bundle"),
                self.rootfs_dir(c.id()),
                e.req.clone(),
                e.cmd.clone(),
                process_path.clone(),
            );
            blocking(move || write_process(&bundle, &rootfs, &req, cmd, &path)).await??;
        }

        let stdio = Stdio::new(&e.req, tty, detach)
            .map_err(|err| ApiError::internal(format!("creating the exec's stdio: {err}")))?;
        let (mut ours, theirs) = (stdio.ours, stdio.theirs);
        let process_arg = process_path.to_string_lossy().into_owned();
        let started = blocking(move || {
            let r = request_exec(&exec_dir, &process_arg, tty, &theirs);
            drop(theirs);
            r
        })
        .await?;
        let _ = std::fs::remove_file(&process_path);
        let (conn, resp) = started
            .map_err(|err| ApiError::internal(format!("starting the exec in the shim: {err}")))?;
        if !resp.ok {
            return Ok(Err(self.failed_start(e, resp)));
        }
        let pid = resp.pid.unwrap_or(0);
        if tty {
            let sock = ours.console.take();
            let master = blocking(move || -> std::io::Result<OwnedFd> {
                let sock = sock.ok_or_else(|| std::io::Error::other("no console socket"))?;
                sock.set_read_timeout(Some(START_TIMEOUT))?;
                fdpass::recv_one_fd(&sock)
            })
            .await?
            .map_err(|err| ApiError::internal(format!("receiving the exec's pty: {err}")))?;
            let size = start
                .console_size
                .as_deref()
                .or(e.req.console_size.as_deref())
                .and_then(|v| Some((*v.first()?, *v.get(1)?)));
            if let Some((h, w)) = size.filter(|(h, w)| *h > 0 && *w > 0) {
                let _ = fdpass::set_winsize(master.as_raw_fd(), h, w);
            }
            ours.pty = Some(master);
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
        self.emit(
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
    fn spawn_exit_waiter(&self, e: Arc<Exec>, conn: StdUnixStream, keep_pty: Option<OwnedFd>) {
        let svc = self.handle();
        tokio::spawn(async move {
            let code = wait_exit_line(conn).await;
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
                svc.emit(
                    &e.container,
                    "exec_die",
                    &[("execID", e.id.clone()), ("exitCode", code.to_string())],
                );
            }
        });
    }
}

/// The exec's output until it has exited; its stdin writer fed from `stdin`.
fn exec_output(
    e: &Arc<Exec>,
    ours: OurEnds,
    stdin: Option<mpsc::Receiver<Bytes>>,
) -> std::io::Result<futures_util::stream::BoxStream<'static, OutputChunk>> {
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
fn can_exec(c: &Container) -> Result<(), ApiError> {
    let st = c.state();
    if !c.is_running() {
        return Err(ApiError::conflict(format!(
            "Container {} is not running",
            c.id()
        )));
    }
    if st.paused {
        return Err(ApiError::conflict(format!(
            "Container {} is paused, unpause the container before exec",
            c.id()
        )));
    }
    Ok(())
}

/// The exec's OCI process: the container's (rlimits, capabilities, env) with the exec's
/// command, env additions, working dir, user and TTY.
fn write_process(
    bundle: &Path,
    rootfs: &Path,
    req: &ExecCreateRequest,
    cmd: Vec<String>,
    out: &Path,
) -> Result<(), ApiError> {
    let spec = oci_spec::runtime::Spec::load(bundle.join("config.json"))
        .map_err(|e| ApiError::internal(format!("reading the container's spec: {e}")))?;
    let mut p = spec
        .process()
        .clone()
        .ok_or_else(|| ApiError::internal("the container's spec has no process"))?;
    p.set_args(Some(cmd));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in req.env.iter().flatten() {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if !req.working_dir.is_empty() {
        p.set_cwd(PathBuf::from(&req.working_dir));
    }
    if !req.user.is_empty() {
        let u = resolve_user(rootfs, &req.user).map_err(ApiError::invalid)?;
        let mut user = p.user().clone();
        user.set_uid(u.uid);
        user.set_gid(u.gid);
        user.set_additional_gids(Some(u.additional_gids));
        p.set_user(user);
    }
    p.set_terminal(Some(req.tty));
    if req.privileged {
        let all = wharf_runtime::spec::privileged_capabilities();
        let mut caps = p.capabilities().clone().unwrap_or_default();
        caps.set_bounding(Some(all.clone()));
        caps.set_effective(Some(all.clone()));
        caps.set_permitted(Some(all));
        p.set_capabilities(Some(caps));
    }
    let json = serde_json::to_vec(&p)
        .map_err(|e| ApiError::internal(format!("encoding the exec process: {e}")))?;
    wharf_fs::atomic_write(out, &json)
        .map_err(|e| ApiError::internal(format!("writing the exec process: {e}")))
}

/// wharfd's ends of an exec's stdio.
#[derive(Default)]
struct OurEnds {
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    /// TTY: where the pty master arrives.
    console: Option<StdUnixStream>,
    pty: Option<OwnedFd>,
}

struct Stdio {
    ours: OurEnds,
    /// Sent to the shim: stdin, stdout, stderr; or the console socket.
    theirs: Vec<OwnedFd>,
}

impl Stdio {
    fn new(req: &ExecCreateRequest, tty: bool, detach: bool) -> std::io::Result<Stdio> {
        let mut ours = OurEnds::default();
        if tty {
            let (a, b) = StdUnixStream::pair()?;
            ours.console = Some(a);
            return Ok(Stdio {
                ours,
                theirs: vec![b.into()],
            });
        }
        let null = |write: bool| -> std::io::Result<OwnedFd> {
            Ok(std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .open("/dev/null")?
                .into())
        };
        let pipe = || -> std::io::Result<(OwnedFd, OwnedFd)> {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
        };
        let stdin = if req.attach_stdin && !detach {
            let (r, w) = pipe()?;
            ours.stdin = Some(w);
            r
        } else {
            null(false)?
        };
        let out = |attach: bool, slot: &mut Option<OwnedFd>| -> std::io::Result<OwnedFd> {
            if attach && !detach {
                let (r, w) = pipe()?;
                *slot = Some(r);
                Ok(w)
            } else {
                null(true)
            }
        };
        let stdout = out(req.attach_stdout, &mut ours.stdout)?;
        let stderr = out(req.attach_stderr, &mut ours.stderr)?;
        Ok(Stdio {
            ours,
            theirs: vec![stdin, stdout, stderr],
        })
    }
}

/// Sends the exec request with its descriptors and reads the first answer (started or not).
fn request_exec(
    state_dir: &Path,
    process: &str,
    tty: bool,
    fds: &[OwnedFd],
) -> std::io::Result<(StdUnixStream, Response)> {
    let dir = std::fs::File::open(state_dir)?;
    // A socket path is limited to 107 bytes; state dirs under deep roots are longer.
    let path = format!("/proc/self/fd/{}/{SOCKET_FILE}", dir.as_raw_fd());
    let mut s = StdUnixStream::connect(&path)?;
    drop(dir);
    let mut line = serde_json::to_vec(&Request::Exec {
        process: process.to_string(),
        tty,
    })
    .map_err(std::io::Error::other)?;
    line.push(b'\n');
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let sent = fdpass::send_with_fds(s.as_raw_fd(), &line, &raw)?;
    s.write_all(&line[sent..])?;
    s.set_read_timeout(Some(START_TIMEOUT))?;
    // Byte by byte: the rest of the connection (the exit line) is read later, elsewhere.
    let mut resp = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b)? {
            0 => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "shim closed the connection",
                ))
            }
            _ if b[0] == b'\n' => break,
            _ => resp.push(b[0]),
        }
    }
    let resp: Response = serde_json::from_slice(&resp).map_err(std::io::Error::other)?;
    s.set_read_timeout(None)?;
    Ok((s, resp))
}

/// The exit code from the shim's second line; 255 if the shim went away without one (wharfd
/// cannot know, and Docker reports the same for an exec whose shim died).
async fn wait_exit_line(conn: StdUnixStream) -> i64 {
    let Ok(()) = conn.set_nonblocking(true) else {
        return 255;
    };
    let Ok(conn) = tokio::net::UnixStream::from_std(conn) else {
        return 255;
    };
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    match r.read_line(&mut line).await {
        Ok(n) if n > 0 => serde_json::from_str::<Response>(&line)
            .ok()
            .and_then(|resp| resp.exit)
            .map_or(255, |x| i64::from(x.exit_code)),
        _ => 255,
    }
}

fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).map_err(std::io::Error::from)?;
    fcntl(
        fd.as_raw_fd(),
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(std::io::Error::from)?;
    Ok(())
}

fn register(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    set_nonblocking(&fd)?;
    // SAFETY: an OwnedFd keeps its descriptor open and unchanged until the AsyncFd drops it.
    unsafe { AsyncFd::register(fd) }.map_err(|e| std::io::Error::other(e.to_string()))
}

/// Output chunks from a pipe or pty master until EOF (a pty master says EIO once the process
/// side is gone, which is its EOF).
fn read_stream(
    fd: OwnedFd,
    which: StdStream,
) -> std::io::Result<futures_util::stream::BoxStream<'static, OutputChunk>> {
    let afd = register(fd)?;
    Ok(stream::unfold(Some(afd), move |afd| async move {
        let afd = afd?;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let mut guard = afd.readable().await.ok()?;
            match guard.try_io(|inner| {
                nix::unistd::read(inner.get_ref().as_raw_fd(), &mut buf)
                    .map_err(std::io::Error::from)
            }) {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(n)) => {
                    buf.truncate(n);
                    let chunk = OutputChunk {
                        stream: which,
                        data: Bytes::from(buf),
                        timestamp: None,
                    };
                    return Some((chunk, Some(afd)));
                }
                Err(_would_block) => continue,
            }
        }
    })
    .boxed())
}

/// Writes the channel's bytes to the exec's stdin; an empty `Bytes` closes it.
fn spawn_stdin_writer(fd: OwnedFd, mut rx: mpsc::Receiver<Bytes>) -> std::io::Result<()> {
    let afd = register(fd)?;
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if chunk.is_empty() {
                return; // dropping the descriptor is the close
            }
            let mut rest: &[u8] = &chunk;
            while !rest.is_empty() {
                let Ok(mut guard) = afd.writable().await else {
                    return;
                };
                match guard.try_io(|inner| {
                    nix::unistd::write(inner.get_ref(), rest).map_err(std::io::Error::from)
                }) {
                    Ok(Ok(n)) => rest = &rest[n..],
                    Ok(Err(_)) => return,
                    Err(_would_block) => continue,
                }
            }
        }
    });
    Ok(())
}

impl ContainerService {
    /// SIGKILLs a running exec's process, as dockerd does when a health probe times out.
    pub(super) fn kill_exec(&self, id: &str) {
        let Ok(e) = self.lookup_exec(id) else { return };
        let st = lock(&e.state);
        if let (true, Ok(pid)) = (st.running, i32::try_from(st.pid)) {
            if pid > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }

    /// Drops an exec nobody will inspect again (a finished health probe).
    pub(super) fn forget_exec(&self, id: &str) {
        self.execs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}
