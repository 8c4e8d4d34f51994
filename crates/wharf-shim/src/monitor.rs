//! The shim's event loop: logs, socket requests, reaping, and the orderly end.
//!
//! One `poll(2)` over: a signalfd for SIGCHLD, the listening socket, each client, the
//! container's stdout/stderr pipes and (when a client has bytes queued) its stdin pipe. Every
//! descriptor the loop touches is non-blocking, so a slow or vanished client can delay nothing
//! but itself. Every action wharfd takes on the running container (signals, stdin, resize,
//! exec, freezing its cgroup, signalling an exec) is a request served here.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use wharf_runtime::shim_proto::{
    exec_fd_count, ExitStatus, LaunchResult, Request, Response, EXIT_FILE, SOCKET_FILE,
};

use crate::args::MonitorArgs;
use crate::cleanup;
use crate::log::{now_rfc3339, LogWriter, RotatingFile, Stream};
use wharf_runtime::spec::Limits;

/// What the monitor needs from the OCI runtime (libcontainer). The full shim does it in-process;
/// the small `wharf-shim-monitor` runs `wharf-shim kill-all|delete` as a short-lived child, so
/// that the image which stays resident for the container's lifetime does not map libcontainer.
pub trait RuntimeOps {
    /// Sends `signal` to every process of the container.
    fn kill_all(&self, args: &MonitorArgs, signal: i32) -> Result<(), String>;
    /// Removes the runtime's state and the container's cgroups after the init was reaped.
    fn delete(&self, args: &MonitorArgs);
    /// The full `wharf-shim` binary, run as `wharf-shim exec` for [`Request::Exec`].
    fn shim_binary(&self) -> Option<std::path::PathBuf>;
    /// Writes new cgroup limits (`docker update`).
    fn update(&self, args: &MonitorArgs, limits: &Limits) -> Result<(), String>;
}

/// [`RuntimeOps`] by running the full shim binary.
pub struct ExecOps {
    pub shim: std::path::PathBuf,
}

impl ExecOps {
    fn command(&self, op: &str, args: &MonitorArgs) -> std::process::Command {
        let mut c = std::process::Command::new(&self.shim);
        c.arg(op)
            .arg("--id")
            .arg(&args.id)
            .arg("--runtime-root")
            .arg(&args.runtime_root)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        c
    }
}

impl RuntimeOps for ExecOps {
    fn kill_all(&self, args: &MonitorArgs, signal: i32) -> Result<(), String> {
        // Blocking is acceptable: libcontainer's kill is quick, and the answer is owed anyway.
        let mut c = self.command("kill-all", args);
        c.arg("--signal").arg(signal.to_string());
        self.run(c)
    }

    fn update(&self, args: &MonitorArgs, limits: &Limits) -> Result<(), String> {
        let json = serde_json::to_string(limits).map_err(|e| e.to_string())?;
        let mut c = self.command("update", args);
        c.arg("--limits").arg(json);
        self.run(c)
    }

    fn delete(&self, args: &MonitorArgs) {
        let _ = self
            .command("delete", args)
            .stderr(std::process::Stdio::null())
            .status();
    }

    fn shim_binary(&self) -> Option<std::path::PathBuf> {
        Some(self.shim.clone())
    }
}

impl ExecOps {
    /// Runs a helper command to completion; its stderr line is the error text.
    fn run(&self, mut c: std::process::Command) -> Result<(), String> {
        let out = c
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(|e| format!("running {}: {e}", self.shim.display()))?;
        if out.status.success() {
            return Ok(());
        }
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(msg
            .strip_prefix("wharf-shim: ")
            .map(str::to_string)
            .unwrap_or(if msg.is_empty() {
                format!("wharf-shim helper failed: {}", out.status)
            } else {
                msg
            }))
    }
}

/// Longest request line accepted; real requests are a few dozen bytes.
const MAX_REQUEST: usize = 4096;
/// Clients beyond this are accepted and closed at once, so a flood cannot exhaust fds.
const MAX_CLIENTS: usize = 64;
/// Read size for pipes and stdin streaming (one buffer, reused).
const CHUNK: usize = 16 * 1024;
/// A monitor idle this long after start trims its resident code pages, once; short-lived
/// containers exit before and never pay for it.
const TRIM_AFTER_IDLE_MS: libc::c_int = 1000;
/// After the init died, how long to wait for stdout/stderr EOF. The pid namespace teardown
/// kills every other holder of the pipes, so this only guards against a leaked descriptor.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the request line.
    Request,
    /// Answer queued; close once written.
    Respond,
    /// Parked until the container exits.
    Wait,
    /// Copying the client's bytes to the container's stdin.
    Stdin,
    /// An exec is being started (`wharf-shim exec` runs) or runs; answered at each step.
    Exec,
    /// The cgroup is being frozen or thawed; answered once the kernel says it is done.
    Freeze,
}

/// A `Freeze` request the kernel has not finished yet.
struct FreezeTrack {
    frozen: bool,
    deadline: Instant,
}

/// How long a freeze may take before it is given up (and, for a freeze, undone), as runc does.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a pending freeze is looked at again.
const FREEZE_POLL_MS: libc::c_int = 1;
/// How often a rotation held back by a log reader is tried again (a reader's pin moves
/// without telling the shim).
const LOG_WAIT_POLL_MS: libc::c_int = 5;

/// An exec a client waits on: first its launcher, then the process itself.
struct ExecTrack {
    launcher: i32,
    /// Read end of the pipe the launcher reports its `LaunchResult` on.
    report: File,
    /// Set once the launcher reported the process started.
    pid: Option<i32>,
}

/// Exits of processes we did not know yet (an exec can end before its launcher's report is
/// read); only a few are kept, so orphans reparented to us cannot grow this.
const EARLY_EXITS: usize = 64;

struct Client {
    stream: UnixStream,
    /// Request bytes, then (in [`Phase::Stdin`]) bytes not yet accepted by the stdin pipe.
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    phase: Phase,
    read_eof: bool,
    /// The peer closed its socket entirely (hang-up), as opposed to shutting down its write
    /// side. On a stdin stream only the latter closes the container's stdin: wharfd half-closes
    /// on purpose, and a wharfd that died must not close stdin under a running container.
    hung_up: bool,
    dead: bool,
    /// Descriptors that came with the request line (`SCM_RIGHTS`).
    fds: Vec<OwnedFd>,
    exec: Option<ExecTrack>,
    freeze: Option<FreezeTrack>,
}

pub struct Monitor {
    args: MonitorArgs,
    ops: Box<dyn RuntimeOps>,
    listener: UnixListener,
    log: LogWriter<RotatingFile>,
    stdout: Option<File>,
    stderr: Option<File>,
    stdin: Option<File>,
    stdin_attached: bool,
    sigfd: SignalFd,
    clients: Vec<Client>,
    /// Exit code and time, once the init has been reaped.
    exited: Option<(i32, String)>,
    drain_deadline: Option<Instant>,
    scratch: Vec<u8>,
    /// Whether the one-time trim of clean code pages (see [`trim_clean_file_pages`]) is done.
    trimmed: bool,
    early_exits: std::collections::VecDeque<(i32, i32)>,
    /// Exec processes that started and are not reaped yet: the only pids `SignalExec` reaches.
    /// They are our children (reparented to us, the subreaper) until we reap them, so none of
    /// them can be a reused pid. Kept apart from the clients: an exec outlives its connection.
    live_execs: Vec<i32>,
}

impl Monitor {
    pub fn new(
        args: MonitorArgs,
        listener: UnixListener,
        log: File,
        stdout: OwnedFd,
        stderr: Option<OwnedFd>,
        stdin: Option<OwnedFd>,
        ops: Box<dyn RuntimeOps>,
    ) -> Result<Self> {
        // SIGCHLD must be blocked to be read from a signalfd. Doing it only now keeps the mask
        // out of the container init, which was cloned from us earlier.
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None).context("blocking SIGCHLD")?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .context("signalfd")?;
        // SAFETY: SIG_IGN installs no handler code.
        unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigIgn) }
            .context("ignoring SIGPIPE")?;
        // Survives execve in practice, but re-asserting it is free.
        nix::sys::prctl::set_child_subreaper(true).context("PR_SET_CHILD_SUBREAPER")?;
        listener
            .set_nonblocking(true)
            .context("non-blocking listener")?;
        for fd in [Some(&stdout), stderr.as_ref(), stdin.as_ref()]
            .into_iter()
            .flatten()
        {
            set_nonblocking(fd.as_raw_fd())?;
        }
        let log = RotatingFile::new(
            args.log.path.clone(),
            log,
            args.log.max_size,
            args.log.max_file,
        )
        .context("the log file")?;
        // Checked by the launcher already; should it be gone now, lines go without attrs
        // rather than the container without its monitor.
        let attrs = args
            .log
            .attrs_file
            .as_deref()
            .and_then(|f| crate::log::load_attrs(f).ok().flatten());
        let log = LogWriter::new(log, attrs);
        Ok(Self {
            args,
            ops,
            listener,
            log,
            stdout: Some(File::from(stdout)),
            stderr: stderr.map(File::from),
            stdin: stdin.map(File::from),
            stdin_attached: false,
            sigfd,
            clients: Vec::new(),
            exited: None,
            drain_deadline: None,
            scratch: vec![0; CHUNK],
            trimmed: false,
            early_exits: std::collections::VecDeque::new(),
            live_execs: Vec::new(),
        })
    }

    /// Adopts the descriptors named on the command line of `wharf-shim monitor`.
    pub fn from_args(args: MonitorArgs, ops: Box<dyn RuntimeOps>) -> Result<Self> {
        let take = |fd: RawFd| -> Result<OwnedFd> {
            // F_GETFD both validates the number and sets close-on-exec back.
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .with_context(|| format!("inherited fd {fd}"))?;
            // SAFETY: the launching image handed these descriptors to us alone via execve.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        };
        let listener = UnixListener::from(take(args.listen_fd)?);
        let log = File::from(take(args.log_fd)?);
        let stdout = take(args.stdout_fd)?;
        let stderr = args.stderr_fd.map(take).transpose()?;
        let stdin = args.stdin_fd.map(take).transpose()?;
        Self::new(args, listener, log, stdout, stderr, stdin, ops)
    }

    pub fn run(mut self) -> Result<()> {
        // The init may have died while we were exec'ing; its SIGCHLD stays pending, but a
        // sweep costs nothing.
        self.reap();
        loop {
            if self.exited.is_some() {
                let drained = self.stdout.is_none() && self.stderr.is_none();
                let late = self.drain_deadline.is_some_and(|d| Instant::now() >= d);
                if drained || late {
                    break;
                }
            }
            self.poll_once();
        }
        self.finish();
        Ok(())
    }

    fn poll_once(&mut self) {
        if self.log.holding() {
            self.log.retry();
        }
        // Lines wait for a log reader: the output stays in the pipes (the container blocks on
        // a full one) until the reader has opened the file the rotation deletes.
        let log_waits = self.log.holding();
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(5 + self.clients.len());
        let pfd = |fd: RawFd, events: libc::c_short| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        fds.push(pfd(self.sigfd.as_raw_fd(), libc::POLLIN));
        fds.push(pfd(self.listener.as_raw_fd(), libc::POLLIN));
        // A negative fd is ignored by poll(2); it keeps indices fixed.
        let output_fd = |f: &Option<File>| match f {
            Some(f) if !log_waits => f.as_raw_fd(),
            _ => -1,
        };
        fds.push(pfd(output_fd(&self.stdout), libc::POLLIN));
        fds.push(pfd(output_fd(&self.stderr), libc::POLLIN));
        let stdin_backlog = self
            .clients
            .iter()
            .any(|c| c.phase == Phase::Stdin && !c.inbuf.is_empty());
        fds.push(pfd(
            match (&self.stdin, stdin_backlog) {
                (Some(f), true) => f.as_raw_fd(),
                _ => -1,
            },
            libc::POLLOUT,
        ));
        for c in &self.clients {
            let mut ev: libc::c_short = 0;
            if !c.outbuf.is_empty() {
                ev |= libc::POLLOUT;
            }
            let wants_read = !c.read_eof
                && match c.phase {
                    Phase::Request | Phase::Wait | Phase::Exec | Phase::Freeze => true,
                    Phase::Stdin => c.inbuf.is_empty(),
                    Phase::Respond => false,
                };
            if wants_read {
                ev |= libc::POLLIN;
            }
            // With no events, POLLHUP/POLLERR still report a vanished peer.
            fds.push(pfd(c.stream.as_raw_fd(), ev));
        }

        let mut timeout = match self.drain_deadline {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .as_millis()
                .min(i32::MAX as u128) as libc::c_int,
            None if !self.trimmed => TRIM_AFTER_IDLE_MS,
            None => -1,
        };
        if log_waits {
            timeout = if timeout < 0 {
                LOG_WAIT_POLL_MS
            } else {
                timeout.min(LOG_WAIT_POLL_MS)
            };
        }
        let freezing = self.clients.iter().any(|c| c.freeze.is_some());
        if freezing {
            // A negative timeout is "forever".
            timeout = if timeout < 0 {
                FREEZE_POLL_MS
            } else {
                timeout.min(FREEZE_POLL_MS)
            };
        }
        // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if freezing {
            self.step_freezes();
        }
        if n == 0 && !self.trimmed && self.exited.is_none() {
            self.trimmed = true;
            trim_clean_file_pages();
        }
        if n <= 0 {
            // Timeout or EINTR: the caller re-checks the deadline.
            return;
        }

        if fds[0].revents != 0 {
            while let Ok(Some(_)) = self.sigfd.read_signal() {}
            self.reap();
        }
        if fds[2].revents != 0 {
            self.pump(Stream::Stdout);
        }
        if fds[3].revents != 0 {
            self.pump(Stream::Stderr);
        }
        if fds[4].revents != 0 {
            self.flush_stdin_backlog();
            if let Some(i) = self.clients.iter().position(|c| c.phase == Phase::Stdin) {
                self.maybe_close_stdin(i);
            }
        }
        for (i, f) in fds[5..].iter().enumerate() {
            if f.revents != 0 && i < self.clients.len() {
                self.service_client(i, f.revents);
            }
        }
        self.clients.retain(|c| !c.dead);
        if fds[1].revents != 0 {
            self.accept();
        }
    }

    fn reap(&mut self) {
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: waitpid with a valid out-pointer. __WALL also covers children cloned
            // without SIGCHLD as exit signal, which libcontainer may create.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
            if pid <= 0 {
                // 0: children remain but none exited; -1: ECHILD (or EINTR, retried next wake).
                return;
            }
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                continue;
            };
            if pid != self.args.pid || self.exited.is_some() {
                // An exec's launcher or process, or an orphan reparented to us as subreaper.
                self.reaped_other(pid, code);
                continue;
            }
            self.exited = Some((code, now_rfc3339()));
            self.drain_deadline = Some(Instant::now() + DRAIN_GRACE);
            // What is left in the pipes goes to the log without waiting for readers.
            self.log.stop_waiting();
            // Nobody can consume stdin any more.
            self.stdin = None;
        }
    }

    fn pump(&mut self, stream: Stream) {
        let file = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        let Some(f) = file.as_mut() else { return };
        // A few reads per wake-up keep syscalls low without starving the other fds.
        for _ in 0..4 {
            match f.read(&mut self.scratch) {
                Ok(0) => {
                    *file = None;
                    self.log.flush_stream(stream);
                    return;
                }
                Ok(n) => self.log.write_chunk(stream, &self.scratch[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    *file = None;
                    self.log.flush_stream(stream);
                    return;
                }
            }
        }
    }

    fn accept(&mut self) {
        for _ in 0..16 {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if self.clients.len() >= MAX_CLIENTS || stream.set_nonblocking(true).is_err() {
                        continue; // dropped: closed at once
                    }
                    self.clients.push(Client {
                        stream,
                        inbuf: Vec::new(),
                        outbuf: Vec::new(),
                        phase: Phase::Request,
                        read_eof: false,
                        hung_up: false,
                        dead: false,
                        fds: Vec::new(),
                        exec: None,
                        freeze: None,
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    fn service_client(&mut self, i: usize, revents: libc::c_short) {
        if revents & libc::POLLERR != 0 {
            self.drop_client(i);
            return;
        }
        if revents & libc::POLLOUT != 0 {
            self.write_out(i);
        }
        if self.clients[i].dead {
            return;
        }
        if revents & (libc::POLLIN | libc::POLLHUP) != 0 {
            match self.clients[i].phase {
                Phase::Request => self.read_request(i),
                Phase::Wait | Phase::Exec | Phase::Freeze => self.read_discard(i, revents),
                Phase::Stdin => self.read_stdin(i, revents),
                Phase::Respond => {
                    if revents & libc::POLLHUP != 0 {
                        self.drop_client(i);
                    }
                }
            }
        }
    }

    fn drop_client(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if c.phase == Phase::Stdin && !c.dead {
            // A vanished wharfd is not a close: stdin stays open for the next one (see
            // `maybe_close_stdin`).
            self.stdin_attached = false;
        }
        if let Some(track) = c.freeze.take() {
            // A freeze still under way when its requester vanished (wharfd killed) is undone:
            // nobody will record the container as paused, and a half-frozen container would
            // take no signal. (A freeze that finished stays; a restarted wharfd reads it back
            // from `State`.)
            if track.frozen {
                let _ = wharf_runtime::cgroupfs::freeze_step(&self.args.cgroups_path, false);
            }
        }
        self.clients[i].dead = true;
    }

    fn read_request(&mut self, i: usize) {
        let mut buf = [0u8; 512];
        loop {
            let c = &mut self.clients[i];
            match wharf_runtime::fdpass::recv_with_fds(c.stream.as_raw_fd(), &mut buf) {
                Ok((0, _)) => {
                    c.read_eof = true;
                    break;
                }
                Ok((n, fds)) => {
                    c.fds.extend(fds);
                    c.inbuf.extend_from_slice(&buf[..n]);
                    if c.inbuf.contains(&b'\n') || c.inbuf.len() > MAX_REQUEST {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.drop_client(i);
                    return;
                }
            }
        }
        let c = &mut self.clients[i];
        let line_end = c.inbuf.iter().position(|&b| b == b'\n');
        let line: Vec<u8> = match line_end {
            Some(pos) => {
                let rest = c.inbuf.split_off(pos + 1);
                let mut line = std::mem::replace(&mut c.inbuf, rest);
                line.pop();
                line
            }
            None if c.inbuf.len() > MAX_REQUEST => {
                self.respond(i, error_response("request too long"), Phase::Respond);
                return;
            }
            // A request without newline followed by EOF is still a request.
            None if c.read_eof && !c.inbuf.is_empty() => std::mem::take(&mut c.inbuf),
            None if c.read_eof => {
                self.drop_client(i);
                return;
            }
            None => return,
        };
        match serde_json::from_slice::<Request>(&line) {
            Ok(req) => self.dispatch(i, req),
            Err(e) => self.respond(
                i,
                error_response(&format!("bad request: {e}")),
                Phase::Respond,
            ),
        }
    }

    fn dispatch(&mut self, i: usize, req: Request) {
        match req {
            Request::State => {
                let resp = self.state_response();
                self.respond(i, resp, Phase::Respond);
            }
            Request::Kill { signal, all } => {
                let resp = match self.kill(signal, all) {
                    Ok(()) => ok_response(self.args.pid),
                    Err(e) => error_response(&e),
                };
                self.respond(i, resp, Phase::Respond);
            }
            Request::Resize { height, width } => {
                let resp = if !self.args.tty {
                    error_response("the container has no TTY")
                } else if self.exited.is_some() {
                    error_response("container is not running")
                } else {
                    match wharf_runtime::fdpass::set_winsize(self.args.stdout_fd, height, width) {
                        Ok(()) => ok_response(self.args.pid),
                        Err(e) => error_response(&format!("resizing the pty: {e}")),
                    }
                };
                self.respond(i, resp, Phase::Respond);
            }
            Request::Exec { process, tty } => {
                let fds = std::mem::take(&mut self.clients[i].fds);
                let started = if self.exited.is_some() {
                    Err("container is not running".to_string())
                } else if fds.len() != exec_fd_count(tty) {
                    Err(format!(
                        "exec needs {} descriptors, got {}",
                        exec_fd_count(tty),
                        fds.len()
                    ))
                } else {
                    self.spawn_exec(&process, tty, fds)
                };
                match started {
                    Ok(track) => {
                        let c = &mut self.clients[i];
                        c.inbuf.clear();
                        c.exec = Some(track);
                        c.phase = Phase::Exec;
                    }
                    Err(e) => self.respond(i, error_response(&e), Phase::Respond),
                }
            }
            Request::Update { limits } => {
                let resp = if self.exited.is_some() {
                    error_response("container is not running")
                } else {
                    match self.ops.update(&self.args, &limits) {
                        Ok(()) => ok_response(self.args.pid),
                        Err(e) => error_response(&e),
                    }
                };
                self.respond(i, resp, Phase::Respond);
            }
            Request::Freeze { frozen } => self.start_freeze(i, frozen),
            Request::SignalExec { pid, signal } => {
                let resp = match self.signal_exec(pid, signal) {
                    Ok(()) => ok_response(pid),
                    Err(e) => error_response(&e),
                };
                self.respond(i, resp, Phase::Respond);
            }
            Request::Wait => {
                // The loop ends right after the exit is final, so this is never too late.
                self.clients[i].inbuf.clear();
                self.clients[i].phase = Phase::Wait;
            }
            Request::Stdin => {
                let refusal = if self.stdin_attached {
                    Some("stdin is already attached")
                } else if self.stdin.is_none() {
                    Some(if self.args.stdin_fd.is_some() {
                        "stdin is closed"
                    } else {
                        "container was not started with stdin open"
                    })
                } else {
                    None
                };
                if let Some(msg) = refusal {
                    self.respond(i, error_response(msg), Phase::Respond);
                    return;
                }
                self.stdin_attached = true;
                let ok = Response {
                    ok: true,
                    pid: Some(self.args.pid),
                    ..Default::default()
                };
                self.respond(i, ok, Phase::Stdin);
                // Bytes sent right behind the request line are already stdin data.
                self.flush_stdin_backlog();
                self.maybe_close_stdin(i);
            }
        }
    }

    /// Runs `wharf-shim exec` as our child with the client's descriptors as its stdio; the
    /// process it starts is reparented to us (subreaper) when its intermediate parent exits.
    fn spawn_exec(
        &self,
        process: &str,
        tty: bool,
        mut fds: Vec<OwnedFd>,
    ) -> Result<ExecTrack, String> {
        let shim = self
            .ops
            .shim_binary()
            .ok_or_else(|| "no wharf-shim binary to run exec with".to_string())?;
        let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| format!("report pipe: {e}"))?;
        let args = crate::args::ExecArgs {
            id: self.args.id.clone(),
            runtime_root: self.args.runtime_root.clone(),
            state_dir: self.args.state_dir.clone(),
            process: process.into(),
            tty,
        };
        let mut cmd = std::process::Command::new(&shim);
        cmd.args(args.to_args());
        if tty {
            let sock = fds.remove(0);
            cmd.stdin(std::process::Stdio::from(sock))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        } else {
            let mut it = fds.into_iter();
            let (Some(i), Some(o), Some(e)) = (it.next(), it.next(), it.next()) else {
                return Err("exec needs three descriptors".into());
            };
            cmd.stdin(std::process::Stdio::from(i))
                .stdout(std::process::Stdio::from(o))
                .stderr(std::process::Stdio::from(e));
        }
        let report_fd = report_w.as_raw_fd();
        // SAFETY: between fork and exec only async-signal-safe dup2 runs.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                if libc::dup2(report_fd, EXEC_REPORT_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("running {}: {e}", shim.display()))?;
        drop(report_w);
        set_nonblocking(report_r.as_raw_fd()).map_err(|e| format!("{e:#}"))?;
        Ok(ExecTrack {
            launcher: child.id() as i32,
            report: File::from(report_r),
            pid: None,
        })
    }

    /// A reaped child that is not the init: an exec's launcher (its report says whether the
    /// process started) or an exec's process (its client gets the exit code).
    fn reaped_other(&mut self, pid: i32, code: i32) {
        self.live_execs.retain(|p| *p != pid);
        if let Some(i) = self.clients.iter().position(|c| {
            c.exec
                .as_ref()
                .is_some_and(|e| e.launcher == pid && e.pid.is_none())
        }) {
            let result = self.clients[i]
                .exec
                .as_mut()
                .map(|e| read_report(&mut e.report))
                .unwrap_or_else(|| launch_failure("no exec"));
            match (result.ok, result.pid) {
                (true, Some(exec_pid)) => {
                    if let Some(e) = self.clients[i].exec.as_mut() {
                        e.pid = Some(exec_pid);
                    }
                    if !self.early_exits.iter().any(|(p, _)| *p == exec_pid) {
                        self.live_execs.push(exec_pid);
                    }
                    self.respond(i, ok_response(exec_pid), Phase::Exec);
                    if let Some(pos) = self.early_exits.iter().position(|(p, _)| *p == exec_pid) {
                        let (_, exit) = self.early_exits.remove(pos).unwrap_or((exec_pid, 255));
                        self.exec_exited(i, exec_pid, exit);
                    }
                }
                _ => {
                    let mut resp =
                        error_response(result.error.as_deref().unwrap_or("exec failed to start"));
                    resp.error_kind = result.error_kind;
                    self.respond(i, resp, Phase::Respond);
                }
            }
            return;
        }
        if let Some(i) = self
            .clients
            .iter()
            .position(|c| c.exec.as_ref().is_some_and(|e| e.pid == Some(pid)))
        {
            self.exec_exited(i, pid, code);
            return;
        }
        if self
            .clients
            .iter()
            .any(|c| c.exec.as_ref().is_some_and(|e| e.pid.is_none()))
        {
            if self.early_exits.len() >= EARLY_EXITS {
                self.early_exits.pop_front();
            }
            self.early_exits.push_back((pid, code));
        }
    }

    fn exec_exited(&mut self, i: usize, pid: i32, code: i32) {
        self.clients[i].exec = None;
        let resp = Response {
            ok: true,
            pid: Some(pid),
            running: Some(false),
            exit: Some(ExitStatus {
                exit_code: code,
                finished_at: now_rfc3339(),
                oom_killed: false,
            }),
            ..Default::default()
        };
        self.respond(i, resp, Phase::Respond);
    }

    fn state_response(&self) -> Response {
        Response {
            ok: true,
            pid: Some(self.args.pid),
            running: Some(self.exited.is_none()),
            exit: self.exited.as_ref().map(|(code, at)| ExitStatus {
                exit_code: *code,
                finished_at: at.clone(),
                oom_killed: false,
            }),
            frozen: if self.exited.is_none() && !self.args.cgroups_path.is_empty() {
                wharf_runtime::cgroupfs::is_frozen(&self.args.cgroups_path).ok()
            } else {
                None
            },
            ..Default::default()
        }
    }

    fn kill(&self, signal: i32, all: bool) -> Result<(), String> {
        if self.exited.is_some() {
            return Err("container is not running".into());
        }
        if all {
            return self.ops.kill_all(&self.args, signal);
        }
        // The init is our unreaped child, so its pid cannot have been reused.
        // SAFETY: kill(2) has no memory-safety preconditions.
        if unsafe { libc::kill(self.args.pid, signal) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(format!("kill {} with signal {signal}: {e}", self.args.pid));
            }
        }
        Ok(())
    }

    /// `Freeze`: one step at once (a freeze is usually immediate); otherwise the client is
    /// parked and [`Self::step_freezes`] finishes it from the loop.
    fn start_freeze(&mut self, i: usize, frozen: bool) {
        let refusal = if self.exited.is_some() {
            Some("container is not running")
        } else if self.args.cgroups_path.is_empty() {
            Some("the container has no cgroup")
        } else {
            None
        };
        if let Some(msg) = refusal {
            self.respond(i, error_response(msg), Phase::Respond);
            return;
        }
        match wharf_runtime::cgroupfs::freeze_step(&self.args.cgroups_path, frozen) {
            Ok(true) => self.respond(i, ok_response(self.args.pid), Phase::Respond),
            Ok(false) => {
                let c = &mut self.clients[i];
                c.inbuf.clear();
                c.freeze = Some(FreezeTrack {
                    frozen,
                    deadline: Instant::now() + FREEZE_TIMEOUT,
                });
                c.phase = Phase::Freeze;
            }
            Err(e) => self.respond(i, error_response(&freeze_error(frozen, &e)), Phase::Respond),
        }
    }

    /// Repeats the step of every pending freeze; answers those that are done or out of time.
    fn step_freezes(&mut self) {
        for i in 0..self.clients.len() {
            let Some(track) = self.clients[i].freeze.as_ref() else {
                continue;
            };
            if self.clients[i].dead {
                continue;
            }
            let (frozen, late) = (track.frozen, Instant::now() >= track.deadline);
            let path = &self.args.cgroups_path;
            let resp = match wharf_runtime::cgroupfs::freeze_step(path, frozen) {
                Ok(true) => ok_response(self.args.pid),
                Ok(false) if !late => continue,
                Ok(false) => {
                    if frozen {
                        // A half-frozen container is worse than a running one: undo, as runc.
                        let _ = wharf_runtime::cgroupfs::freeze_step(path, false);
                    }
                    let e = std::io::Error::new(ErrorKind::TimedOut, "timed out");
                    error_response(&freeze_error(frozen, &e))
                }
                Err(e) => error_response(&freeze_error(frozen, &e)),
            };
            self.clients[i].freeze = None;
            self.respond(i, resp, Phase::Respond);
        }
    }

    /// `SignalExec`: only a live exec of ours; see [`Monitor::live_execs`].
    fn signal_exec(&self, pid: i32, signal: i32) -> Result<(), String> {
        if pid <= 0 || !self.live_execs.contains(&pid) {
            return Err(format!("no running exec process with pid {pid}"));
        }
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our unreaped child.
        if unsafe { libc::kill(pid, signal) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(format!("kill {pid} with signal {signal}: {e}"));
            }
        }
        Ok(())
    }

    fn respond(&mut self, i: usize, resp: Response, next: Phase) {
        let c = &mut self.clients[i];
        if let Ok(mut line) = serde_json::to_vec(&resp) {
            line.push(b'\n');
            c.outbuf.extend_from_slice(&line);
        }
        c.phase = next;
        if next != Phase::Stdin {
            c.inbuf.clear();
        }
        self.write_out(i);
    }

    fn write_out(&mut self, i: usize) {
        let c = &mut self.clients[i];
        while !c.outbuf.is_empty() {
            match c.stream.write(&c.outbuf) {
                Ok(0) => break,
                Ok(n) => {
                    c.outbuf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.drop_client(i);
                    return;
                }
            }
        }
        let c = &mut self.clients[i];
        if c.outbuf.is_empty() && c.phase == Phase::Respond {
            c.dead = true;
        }
    }

    fn read_discard(&mut self, i: usize, revents: libc::c_short) {
        let mut buf = [0u8; 256];
        let c = &mut self.clients[i];
        if c.read_eof {
            // Half-closed clients still wait; only a full hang-up ends the wait.
            if revents & libc::POLLHUP != 0 {
                self.drop_client(i);
            }
            return;
        }
        loop {
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    c.read_eof = true;
                    return;
                }
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.drop_client(i);
                    return;
                }
            }
        }
    }

    fn read_stdin(&mut self, i: usize, revents: libc::c_short) {
        let c = &mut self.clients[i];
        if !c.inbuf.is_empty() {
            return; // backpressure: wait for the pipe to take what we hold
        }
        match c.stream.read(&mut self.scratch) {
            Ok(0) => {
                c.read_eof = true;
                c.hung_up = revents & libc::POLLHUP != 0;
            }
            Ok(n) => c.inbuf.extend_from_slice(&self.scratch[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted || e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => {
                self.drop_client(i);
                return;
            }
        }
        self.flush_stdin_backlog();
        self.maybe_close_stdin(i);
    }

    /// Moves queued client bytes into the stdin pipe as far as it accepts them.
    fn flush_stdin_backlog(&mut self) {
        let Some(idx) = self
            .clients
            .iter()
            .position(|c| c.phase == Phase::Stdin && !c.dead)
        else {
            return;
        };
        let Some(pipe) = self.stdin.as_mut() else {
            // The container is gone or closed stdin: discard what the client sends.
            self.clients[idx].inbuf.clear();
            return;
        };
        let c = &mut self.clients[idx];
        while !c.inbuf.is_empty() {
            match pipe.write(&c.inbuf) {
                Ok(0) => break,
                Ok(n) => {
                    c.inbuf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    // EPIPE: the reader is gone; stdin is over for everyone.
                    c.inbuf.clear();
                    self.stdin = None;
                    return;
                }
            }
        }
    }

    /// At client EOF with nothing left to forward, close the container's stdin.
    fn maybe_close_stdin(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if c.phase == Phase::Stdin && c.read_eof && c.inbuf.is_empty() {
            if !c.hung_up {
                self.stdin = None;
            }
            self.stdin_attached = false;
            c.phase = Phase::Respond;
            if c.outbuf.is_empty() {
                c.dead = true;
            }
        }
    }

    fn finish(mut self) {
        let (exit_code, finished_at) = self.exited.clone().unwrap_or_else(|| (255, now_rfc3339()));
        self.log.flush_stream(Stream::Stdout);
        self.log.flush_stream(Stream::Stderr);

        let oom_killed = oom_killed(&self.args.cgroups_path);
        // Before exit.json: once wharfd sees the exit, the id must be free for a restart. The
        // direct removal takes well under a millisecond; libcontainer (or a child running it)
        // is only needed for what that cannot handle (hooks, leftover processes).
        if !cleanup::remove_stopped(&self.args.runtime_root, &self.args.id) {
            self.ops.delete(&self.args);
        }

        let status = ExitStatus {
            exit_code,
            finished_at,
            oom_killed,
        };
        if let Ok(json) = serde_json::to_vec(&status) {
            let _ = wharf_fs::atomic_write(&self.args.state_dir.join(EXIT_FILE), &json);
        }

        let resp = Response {
            ok: true,
            pid: Some(self.args.pid),
            running: Some(false),
            exit: Some(status),
            ..Default::default()
        };
        if let Ok(mut line) = serde_json::to_vec(&resp) {
            line.push(b'\n');
            for c in self.clients.iter_mut().filter(|c| c.phase == Phase::Wait) {
                // A fresh socket buffer takes a few hundred bytes; if not, the client reads
                // exit.json, as the protocol says.
                let _ = c.stream.write(&line);
            }
        }
        let _ = std::fs::remove_file(self.args.state_dir.join(SOCKET_FILE));
        // Only now, off the path `docker run` waits on: exit.json lives on the exec root (tmpfs,
        // gone after a reboot), so syncing the log before it bought no ordering guarantee.
        let _ = self.log.sync();
    }
}

pub fn set_nonblocking(fd: RawFd) -> Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd, FcntlArg::F_GETFL).context("F_GETFL")?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).context("F_SETFL")?;
    Ok(())
}

/// Drops from our page tables the pages of read-only file mappings (code and constants of
/// libc, ld.so, libgcc_s and this binary) that start-up touched, so that the one process per
/// running container keeps resident only what its poll loop uses again (about 1 MiB less
/// VmRSS; the pages stay in the page cache, shared).
///
/// Only mappings without a single private or anonymous page are touched: MADV_DONTNEED on
/// them discards nothing that could not be read back from the file, and a read-only mapping
/// cannot gain such pages between the check and the call. Best effort.
fn trim_clean_file_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut current: Option<(usize, usize)> = None;
    let mut clean = false;
    let flush = |range: Option<(usize, usize)>, clean: bool| {
        if let (Some((start, end)), true) = (range, clean) {
            // SAFETY: the range is one of our own mappings, read-only and file-backed with
            // no private pages (see above); dropping its PTEs changes no memory contents.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    };
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                flush(current.take(), clean);
                let perms = fields.next().unwrap_or("");
                let _offset = fields.next();
                let _dev = fields.next();
                let inode = fields.next().unwrap_or("0");
                let path = fields.next().unwrap_or("");
                let read_only = perms.starts_with('r') && perms.as_bytes().get(1) == Some(&b'-');
                clean = read_only && inode != "0" && path.starts_with('/');
                current = Some((start, end));
                continue;
            }
        }
        if let Some(rest) = line
            .strip_prefix("Private_Dirty:")
            .or_else(|| line.strip_prefix("Anonymous:"))
        {
            if rest.split_whitespace().next() != Some("0") {
                clean = false;
            }
        }
    }
    flush(current, clean);
}

/// The launcher's report descriptor in `wharf-shim exec` (after stdin, stdout, stderr).
pub const EXEC_REPORT_FD: RawFd = 3;

fn read_report(f: &mut File) -> LaunchResult {
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| launch_failure("wharf-shim exec exited without a report"))
}

fn launch_failure(msg: &str) -> LaunchResult {
    LaunchResult {
        ok: false,
        pid: None,
        error: Some(msg.into()),
        error_kind: None,
    }
}

fn freeze_error(frozen: bool, e: &std::io::Error) -> String {
    format!(
        "{} the container's cgroup: {e}",
        if frozen { "freezing" } else { "thawing" }
    )
}

fn ok_response(pid: i32) -> Response {
    Response {
        ok: true,
        pid: Some(pid),
        ..Default::default()
    }
}

fn error_response(msg: &str) -> Response {
    Response {
        ok: false,
        error: Some(msg.to_string()),
        ..Default::default()
    }
}

/// Whether the kernel OOM-killed anything in the container's memory cgroup (v1 or v2).
fn oom_killed(cgroups_path: &str) -> bool {
    if cgroups_path.is_empty() {
        return false;
    }
    let rel = cgroups_path.trim_start_matches('/');
    for file in [
        format!("/sys/fs/cgroup/memory/{rel}/memory.oom_control"),
        format!("/sys/fs/cgroup/{rel}/memory.events"),
    ] {
        if let Ok(text) = std::fs::read_to_string(&file) {
            return text
                .lines()
                .filter_map(|l| l.strip_prefix("oom_kill "))
                .any(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0));
        }
    }
    false
}
