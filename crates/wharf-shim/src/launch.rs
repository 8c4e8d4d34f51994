//! `wharf-shim start`: daemonize, create and start the container, report the [`LaunchResult`].
//!
//! Process tree: the process wharfd spawned (the *launcher*) forks; that child calls `setsid`
//! and forks the *shim*, then exits at once. The shim is therefore in its own session and
//! reparented away from wharfd, so `kill -9 wharfd` touches neither it nor the container. The
//! shim reports over a pipe; the launcher prints the one JSON line and exits.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use anyhow::{Context, Result};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, setsid, ForkResult};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use wharf_runtime::exec_lookup::resolve_executable;
use wharf_runtime::shim_proto::{
    LaunchResult, StartErrorKind, INIT_PID_FILE, SHIM_PID_FILE, SOCKET_FILE,
};

use crate::executor::{wait_exec, ShimExecutor};
use wharf_shim::args::{ExecArgs, MonitorArgs, StartArgs};
use wharf_shim::monitor::{set_nonblocking, Monitor, RuntimeOps};

/// Runs in the process wharfd spawned; returns its exit code.
pub fn start(mut args: StartArgs) -> i32 {
    let result = launch(&mut args);
    let line = serde_json::to_string(&result).unwrap_or_else(|_| {
        r#"{"ok":false,"error":"cannot encode launch result","error_kind":"other"}"#.to_string()
    });
    let mut stdout = std::io::stdout().lock();
    // Nothing useful is left to do if wharfd stopped reading.
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
    if result.ok {
        0
    } else {
        1
    }
}

fn failure(kind: StartErrorKind, message: impl Into<String>) -> LaunchResult {
    LaunchResult {
        ok: false,
        pid: None,
        error: Some(message.into()),
        error_kind: Some(kind),
    }
}

fn launch(args: &mut StartArgs) -> LaunchResult {
    if let Err(e) = absolutize(args) {
        return failure(StartErrorKind::Other, format!("{e:#}"));
    }
    if let Err(e) = fs::create_dir_all(&args.state_dir) {
        return failure(
            StartErrorKind::Other,
            format!("creating state dir {}: {e}", args.state_dir.display()),
        );
    }
    let (report_r, report_w) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return failure(StartErrorKind::Other, format!("pipe: {e}")),
    };

    // SAFETY: the launcher is single-threaded (no threads are ever started before this point),
    // so the child may run arbitrary code after fork.
    match unsafe { fork() } {
        Err(e) => failure(StartErrorKind::Other, format!("fork: {e}")),
        Ok(ForkResult::Parent { child }) => {
            drop(report_w);
            let mut line = String::new();
            let read = BufReader::new(File::from(report_r)).read_line(&mut line);
            // The intermediate child exits right after forking the shim; reap it.
            let _ = waitpid(child, None);
            match read {
                Ok(n) if n > 0 => serde_json::from_str(line.trim_end()).unwrap_or_else(|e| {
                    failure(StartErrorKind::Other, format!("bad report from shim: {e}"))
                }),
                Ok(_) => failure(StartErrorKind::Other, "shim exited before reporting"),
                Err(e) => failure(StartErrorKind::Other, format!("reading shim report: {e}")),
            }
        }
        Ok(ForkResult::Child) => {
            drop(report_r);
            // A new session: no controlling terminal, no signals aimed at wharfd's group.
            let _ = setsid();
            // SAFETY: still single-threaded, see above.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => shim_main(args, report_w),
                // _exit: do not run the launcher's atexit handlers or flush its stdio twice.
                // SAFETY: _exit is always safe to call.
                Ok(ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
                Err(e) => {
                    report(
                        report_w,
                        &failure(StartErrorKind::Other, format!("fork: {e}")),
                    );
                    // SAFETY: as above.
                    unsafe { libc::_exit(1) }
                }
            }
        }
    }
}

fn absolutize(args: &mut StartArgs) -> Result<()> {
    for p in [
        &mut args.bundle,
        &mut args.state_dir,
        &mut args.log.path,
        &mut args.runtime_root,
    ] {
        *p = std::path::absolute(&*p).with_context(|| format!("bad path {}", p.display()))?;
    }
    if let Some(p) = args.log.attrs_file.as_mut() {
        *p = std::path::absolute(&*p).with_context(|| format!("bad path {}", p.display()))?;
    }
    Ok(())
}

fn report(fd: OwnedFd, result: &LaunchResult) {
    let mut f = File::from(fd);
    if let Ok(mut line) = serde_json::to_vec(result) {
        line.push(b'\n');
        // The launcher may be gone (wharfd killed it); the shim carries on regardless.
        let _ = f.write_all(&line);
    }
}

/// The daemonized shim. Never returns.
fn shim_main(args: &StartArgs, report_w: OwnedFd) -> ! {
    match setup(args) {
        Ok(ready) => {
            report(
                report_w,
                &LaunchResult {
                    ok: true,
                    pid: Some(ready.monitor.pid),
                    error: None,
                    error_kind: None,
                },
            );
            let code = match run_monitor(ready) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            std::process::exit(code)
        }
        Err(f) => {
            report(report_w, &f);
            std::process::exit(1)
        }
    }
}

struct Ready {
    monitor: MonitorArgs,
    listener: UnixListener,
    log: File,
    stdout_r: OwnedFd,
    stderr_r: Option<OwnedFd>,
    stdin_w: Option<OwnedFd>,
}

/// The shim's ends of the container's stdio: pipes, or with a TTY the pty master (read for
/// output; a duplicate written for stdin).
struct OurEnds {
    stdout_r: OwnedFd,
    stderr_r: Option<OwnedFd>,
    stdin_w: Option<OwnedFd>,
}

/// The container's ends of the stdio pipes.
struct TheirEnds {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// Name of the socket libcontainer sends a TTY container's pty master on (in the state dir).
const CONSOLE_SOCKET: &str = "console.sock";
/// A runtime that has not sent the master by then is not going to.
const CONSOLE_TIMEOUT_MS: u16 = 10_000;

fn stdio_pipes(stdin: bool) -> Result<(OurEnds, TheirEnds)> {
    let (stdout_r, stdout_w) = pipe2(OFlag::O_CLOEXEC).context("stdout pipe")?;
    let (stderr_r, stderr_w) = pipe2(OFlag::O_CLOEXEC).context("stderr pipe")?;
    let (stdin_r, stdin_w): (OwnedFd, Option<OwnedFd>) = if stdin {
        let (r, w) = pipe2(OFlag::O_CLOEXEC).context("stdin pipe")?;
        (r, Some(w))
    } else {
        let null = File::open("/dev/null").context("opening /dev/null")?;
        (null.into(), None)
    };
    // Only our ends are non-blocking; the container's ends must behave like normal stdio.
    for fd in [Some(&stdout_r), Some(&stderr_r), stdin_w.as_ref()]
        .into_iter()
        .flatten()
    {
        set_nonblocking(fd.as_raw_fd())?;
    }
    Ok((
        OurEnds {
            stdout_r,
            stderr_r: Some(stderr_r),
            stdin_w,
        },
        TheirEnds {
            stdin: stdin_r,
            stdout: stdout_w,
            stderr: stderr_w,
        },
    ))
}

/// Takes the pty master libcontainer sends on the console socket and sizes it before the
/// container's process runs (Docker's `ConsoleSize`).
fn receive_console(listener: &UnixListener, args: &StartArgs) -> Result<OurEnds> {
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut fds, PollTimeout::from(CONSOLE_TIMEOUT_MS)).context("poll console")?;
    if ready == 0 {
        anyhow::bail!("the runtime sent no pty master within 10s");
    }
    let (conn, _) = listener.accept().context("accepting the console socket")?;
    conn.set_nonblocking(false)
        .context("blocking console socket")?;
    let master = wharf_runtime::fdpass::recv_one_fd(&conn).context("receiving the pty master")?;
    if let Some((h, w)) = args.console_size {
        if h > 0 && w > 0 {
            wharf_runtime::fdpass::set_winsize(master.as_raw_fd(), h, w)
                .context("setting the console size")?;
        }
    }
    set_nonblocking(master.as_raw_fd())?;
    let stdin_w = if args.stdin {
        Some(master.try_clone().context("duplicating the pty master")?)
    } else {
        None
    };
    Ok(OurEnds {
        stdout_r: master,
        stderr_r: None,
        stdin_w,
    })
}

fn setup(args: &StartArgs) -> Result<Ready, LaunchResult> {
    let other = |e: anyhow::Error| failure(StartErrorKind::Other, format!("{e:#}"));

    nix::sys::prctl::set_child_subreaper(true)
        .context("PR_SET_CHILD_SUBREAPER")
        .map_err(other)?;
    stdio_to_dev_null().map_err(other)?;
    // Do not pin whatever directory wharfd was started in (it could be a mount point).
    let _ = std::env::set_current_dir("/");

    let sock_path = args.state_dir.join(SOCKET_FILE);
    let listener = bind(&sock_path).map_err(other)?;
    crate::failpoint::hold(&args.state_dir, crate::failpoint::SETUP_BOUND);
    let cleanup_files = || {
        let _ = fs::remove_file(&sock_path);
        let _ = fs::remove_file(args.state_dir.join(SHIM_PID_FILE));
    };
    let result = setup_container(args, listener);
    if result.is_err() {
        cleanup_files();
    }
    result
}

fn setup_container(args: &StartArgs, listener: UnixListener) -> Result<Ready, LaunchResult> {
    let other = |e: anyhow::Error| failure(StartErrorKind::Other, format!("{e:#}"));

    wharf_fs::atomic_write(
        &args.state_dir.join(SHIM_PID_FILE),
        std::process::id().to_string().as_bytes(),
    )
    .context("writing shim.pid")
    .map_err(other)?;

    let log = wharf_shim::log::RotatingFile::open(&args.log.path)
        .with_context(|| format!("opening log file {}", args.log.path.display()))
        .map_err(other)?;
    if let Some(f) = &args.log.attrs_file {
        wharf_shim::log::load_attrs(f).map_err(|e| failure(StartErrorKind::Other, e))?;
    }

    let config_path = args.bundle.join("config.json");
    // rlimits arrive already within what this process may grant (wharf_runtime::spec::rlimits).
    let spec = Spec::load(&config_path)
        .with_context(|| format!("loading {}", config_path.display()))
        .map_err(other)?;
    check_command(&args.bundle, &spec)?;
    let cgroups_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let new_netns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_none())
        });

    // Without a TTY: pipes. With one: libcontainer makes the pty inside the container's
    // devpts and sends us the master on this socket once `build` has run.
    let console = if args.tty {
        let path = args.state_dir.join(CONSOLE_SOCKET);
        let l = bind(&path).map_err(other)?;
        Some((l, path))
    } else {
        None
    };
    let (ours, theirs) = if console.is_none() {
        let (o, t) = stdio_pipes(args.stdin).map_err(other)?;
        (Some(o), Some(t))
    } else {
        (None, None)
    };

    fs::create_dir_all(&args.runtime_root)
        .with_context(|| format!("creating runtime root {}", args.runtime_root.display()))
        .map_err(other)?;
    // The init's execve failure comes back on this (crate::executor).
    let (exec_r, exec_w) = pipe2(OFlag::O_CLOEXEC)
        .context("exec report pipe")
        .map_err(other)?;

    let built = ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .validate_id()
        .and_then(|b| b.with_root_path(&args.runtime_root))
        .map(|b| {
            let b = b
                .with_executor(ShimExecutor {
                    report: Some(exec_w.as_raw_fd()),
                })
                .with_console_socket(console.as_ref().map(|(_, p)| p.clone()));
            let b = match theirs {
                Some(t) => b
                    .with_stdin(t.stdin)
                    .with_stdout(t.stdout)
                    .with_stderr(t.stderr),
                None => b,
            };
            b.as_init(&args.bundle)
                .with_systemd(false)
                .with_detach(true)
        })
        .and_then(|b| b.build());
    // Only the init may hold the write end, so that its execve closes the last one.
    drop(exec_w);
    let mut container = match built {
        Ok(c) => c,
        Err(e) => {
            let msg = error_chain(&e);
            delete_container(&args.runtime_root, &args.id);
            kill_and_reap_children();
            return Err(failure(StartErrorKind::Other, msg));
        }
    };

    let mut ours = ours;
    let mut exec_r = Some(exec_r);
    let started = (|| -> Result<(i32, OurEnds), LaunchResult> {
        let other = |e: anyhow::Error| failure(StartErrorKind::Other, format!("{e:#}"));
        let pid = container
            .pid()
            .context("libcontainer reported no init pid")
            .map_err(other)?
            .as_raw();
        let ours = match (ours.take(), &console) {
            (Some(o), _) => o,
            (None, Some((l, path))) => {
                let got = receive_console(l, args);
                let _ = fs::remove_file(path);
                got.map_err(other)?
            }
            (None, None) => return Err(other(anyhow::anyhow!("no stdio for the container"))),
        };
        if new_netns {
            crate::netns::loopback_up(pid)
                .context("bringing up lo")
                .map_err(other)?;
        }
        if oom_killer_disabled(&spec) {
            disable_oom_killer(&args.runtime_root, &args.id)
                .map_err(|e| anyhow::anyhow!(e))
                .context("disabling the OOM killer")
                .map_err(other)?;
        }
        container
            .start()
            .map_err(|e| failure(StartErrorKind::Other, error_chain(&e)))?;
        if let Some(refused) = exec_r.take().and_then(wait_exec) {
            return Err(refused);
        }
        wharf_fs::atomic_write(
            &args.state_dir.join(INIT_PID_FILE),
            pid.to_string().as_bytes(),
        )
        .context("writing init.pid")
        .map_err(other)?;
        Ok((pid, ours))
    })();
    let (pid, ours) = match started {
        Ok(v) => v,
        Err(e) => {
            let _ = container.delete(true);
            delete_container(&args.runtime_root, &args.id);
            kill_and_reap_children();
            let _ = fs::remove_file(args.state_dir.join(INIT_PID_FILE));
            if let Some((_, path)) = &console {
                let _ = fs::remove_file(path);
            }
            return Err(e);
        }
    };

    Ok(Ready {
        monitor: MonitorArgs {
            id: args.id.clone(),
            shim: None,
            state_dir: args.state_dir.clone(),
            runtime_root: args.runtime_root.clone(),
            cgroups_path,
            pid,
            listen_fd: listener.as_raw_fd(),
            log_fd: log.as_raw_fd(),
            log: args.log.clone(),
            stdout_fd: ours.stdout_r.as_raw_fd(),
            stderr_fd: ours.stderr_r.as_ref().map(|f| f.as_raw_fd()),
            stdin_fd: ours.stdin_w.as_ref().map(|f| f.as_raw_fd()),
            tty: args.tty,
        },
        listener,
        log,
        stdout_r: ours.stdout_r,
        stderr_r: ours.stderr_r,
        stdin_w: ours.stdin_w,
    })
}

/// Docker-worded failure when `process.args[0]` cannot be executed in the rootfs.
fn check_command(bundle: &Path, spec: &Spec) -> Result<(), LaunchResult> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| failure(StartErrorKind::Other, "config.json has no process"))?;
    // The last door before setresuid/setgroups, which read (uid_t)-1 as "unchanged": a spec
    // written by anything but wharfd's `build_spec`/`exec_process` gets the same check here.
    let user = process.user();
    let gids = user.additional_gids().clone().unwrap_or_default();
    for id in [user.uid(), user.gid()].into_iter().chain(gids) {
        wharf_runtime::spec::check_id(id).map_err(|m| failure(StartErrorKind::Other, m))?;
    }
    let arg0 = process
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .ok_or_else(|| failure(StartErrorKind::Other, "no command specified"))?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| failure(StartErrorKind::Other, "config.json has no root"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let path_env = process.env().as_ref().and_then(|env| {
        env.iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .map(str::to_string)
    });
    resolve_executable(
        &rootfs,
        &process.cwd().to_string_lossy(),
        path_env.as_deref(),
        arg0,
    )
    .map(|_| ())
    .map_err(|e| failure(e.kind(), e.to_string()))
}

/// Removes libcontainer's state (and with it the cgroup) after a failed create or start.
pub fn delete_container(runtime_root: &Path, id: &str) {
    let dir = runtime_root.join(id);
    if !dir.exists() {
        return;
    }
    if let Ok(mut c) = Container::load(dir.clone()) {
        if c.delete(true).is_ok() {
            return;
        }
    }
    // State too broken to load: at least do not leave a directory that blocks a retry.
    let _ = fs::remove_dir_all(&dir);
}

/// Joins an error and its sources, skipping repeats (`#[error(transparent)]` layers).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p == &s) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// After a failed create, libcontainer may leave its intermediate and init processes behind
/// (exited but unreaped, or blocked on a channel). Kill and reap them so a failed launch leaves
/// no zombie for an init that might not reap.
fn kill_and_reap_children() {
    let me = std::process::id() as i32;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let children = children_of(me);
        for &pid in &children {
            // SAFETY: kill(2) has no memory-safety preconditions; these are our children, so
            // the pids cannot be reused before we reap them.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid out-pointer.
            let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
            if r <= 0 {
                break;
            }
        }
        if children.is_empty() || std::time::Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn children_of(parent: i32) -> Vec<i32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
                })
                == Some(parent)
        })
        .collect()
}

fn stdio_to_dev_null() -> Result<()> {
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("opening /dev/null")?;
    for fd in 0..=2 {
        nix::unistd::dup2(null.as_raw_fd(), fd).context("dup2 /dev/null")?;
    }
    Ok(())
}

fn bind(path: &Path) -> Result<UnixListener> {
    // A stale socket from a previous shim of the same container would make bind fail.
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
    }
    // sun_path holds 107 bytes and state dirs under deep roots are longer, so bind by a name
    // relative to the state dir (the shim is single-threaded, so the chdir is not racy).
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or(path.as_os_str());
    std::env::set_current_dir(dir).with_context(|| format!("entering {}", dir.display()))?;
    let bound = UnixListener::bind(name);
    let _ = std::env::set_current_dir("/");
    let l = bound.with_context(|| format!("binding {}", path.display()))?;
    l.set_nonblocking(true).context("non-blocking listener")?;
    Ok(l)
}

fn set_cloexec(fd: RawFd, on: bool) -> Result<()> {
    let flags = if on {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    fcntl(fd, FcntlArg::F_SETFD(flags)).context("F_SETFD")?;
    Ok(())
}

/// [`RuntimeOps`] with libcontainer in this process: the in-process monitor, the re-exec
/// fallback, and the `kill-all`/`delete` helper commands.
pub struct InProcessOps;

impl RuntimeOps for InProcessOps {
    fn kill_all(&self, args: &MonitorArgs, signal: i32) -> Result<(), String> {
        kill_all(&args.runtime_root, &args.id, signal)
    }

    fn delete(&self, args: &MonitorArgs) {
        delete_container(&args.runtime_root, &args.id);
    }

    fn shim_binary(&self) -> Option<std::path::PathBuf> {
        std::env::current_exe().ok()
    }

    fn update(
        &self,
        args: &MonitorArgs,
        limits: &wharf_runtime::spec::Limits,
    ) -> Result<(), String> {
        update(&args.runtime_root, &args.id, limits)
    }
}

/// `docker update`: writes the limits into the container's cgroups with libcgroups, the same
/// code that applied them at create.
pub fn update(
    runtime_root: &Path,
    id: &str,
    limits: &wharf_runtime::spec::Limits,
) -> Result<(), String> {
    use libcgroups::common::{create_cgroup_manager, CgroupConfig, CgroupManager, ControllerOpt};
    let c = Container::load(runtime_root.join(id)).map_err(|e| error_chain(&e))?;
    let cgroup_path = c.spec().map_err(|e| error_chain(&e))?.cgroup_path;
    let resources = limits.to_update_resources().map_err(|e| e.to_string())?;
    let manager = create_cgroup_manager(CgroupConfig {
        cgroup_path,
        systemd_cgroup: false,
        container_name: id.to_string(),
    })
    .map_err(|e| error_chain(&e))?;
    manager
        .apply(&ControllerOpt {
            resources: &resources,
            disable_oom_killer: limits.oom_kill_disable.unwrap_or(false),
            oom_score_adj: None,
            freezer_state: None,
        })
        .map_err(|e| error_chain(&e))
}

/// `--oom-kill-disable`: libcontainer's create writes `memory.oom_control` from its own
/// `disable_oom_killer: false`, whatever the spec says, so the shim writes it before the
/// process starts (the same libcgroups call `docker update` uses).
fn oom_killer_disabled(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.disable_oom_killer())
        .unwrap_or(false)
}

fn disable_oom_killer(runtime_root: &Path, id: &str) -> Result<(), String> {
    let limits = wharf_runtime::spec::Limits {
        oom_kill_disable: Some(true),
        ..Default::default()
    };
    update(runtime_root, id, &limits)
}

/// `wharf-shim exec`: starts one process in the running container through libcontainer's
/// tenant builder (joins its namespaces and cgroups, applies the process's user and
/// capabilities), reports on fd 3 and exits. Our parent, the monitor, is a subreaper and
/// inherits the process when libcontainer's intermediate process exits.
pub fn exec(args: ExecArgs) -> i32 {
    let result = match run_exec(&args) {
        Ok(pid) => LaunchResult {
            ok: true,
            pid: Some(pid),
            error: None,
            error_kind: None,
        },
        Err(r) => r,
    };
    // SAFETY: the monitor dup'ed the report pipe to this descriptor for us alone.
    let mut report = unsafe { File::from_raw_fd(wharf_shim::monitor::EXEC_REPORT_FD) };
    if let Ok(line) = serde_json::to_string(&result) {
        let _ = writeln!(report, "{line}");
    }
    if result.ok {
        0
    } else {
        1
    }
}

fn run_exec(args: &ExecArgs) -> Result<i32, LaunchResult> {
    let other = |e: anyhow::Error| failure(StartErrorKind::Other, format!("{e:#}"));
    let _ = std::env::set_current_dir("/");
    let process: oci_spec::runtime::Process = serde_json::from_slice(
        &fs::read(&args.process)
            .with_context(|| format!("reading {}", args.process.display()))
            .map_err(other)?,
    )
    .context("parsing the exec process")
    .map_err(other)?;
    let container = Container::load(args.runtime_root.join(&args.id))
        .map_err(|e| failure(StartErrorKind::Other, error_chain(&e)))?;
    let bundle = container.bundle().to_path_buf();
    let mut spec = Spec::load(bundle.join("config.json"))
        .map_err(|e| failure(StartErrorKind::Other, error_chain(&e)))?;
    spec.set_process(Some(process));
    check_command(&bundle, &spec)?;

    let console = if args.tty {
        // Unique per exec: several may start at once.
        let path = args
            .state_dir
            .join(format!("exec-{}.console", std::process::id()));
        Some((bind(&path).map_err(other)?, path))
    } else {
        None
    };
    let built = ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_root_path(&args.runtime_root)
        .map(|b| {
            b.with_executor(ShimExecutor { report: None })
                .with_console_socket(console.as_ref().map(|(_, p)| p.clone()))
                .as_tenant()
                .with_process(Some(&args.process))
                .with_detach(true)
        })
        .and_then(|b| b.build());
    let result = match built {
        Ok(pid) => {
            let pid = pid.as_raw();
            match &console {
                Some((l, _)) => pass_console(l).map(|()| pid).map_err(|e| {
                    // SAFETY: kill(2) has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    other(e)
                }),
                None => Ok(pid),
            }
        }
        Err(e) => Err(failure(StartErrorKind::Other, error_chain(&e))),
    };
    if let Some((_, path)) = &console {
        let _ = fs::remove_file(path);
    }
    result
}

/// Hands the exec's pty master from libcontainer to wharfd, whose socket is our stdin.
fn pass_console(listener: &UnixListener) -> Result<()> {
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::from(CONSOLE_TIMEOUT_MS)).context("poll console")? == 0 {
        anyhow::bail!("the runtime sent no pty master within 10s");
    }
    let (conn, _) = listener.accept().context("accepting the console socket")?;
    conn.set_nonblocking(false)
        .context("blocking console socket")?;
    let master = wharf_runtime::fdpass::recv_one_fd(&conn).context("receiving the pty master")?;
    wharf_runtime::fdpass::send_with_fds(0, b"m", &[master.as_raw_fd()])
        .context("passing the pty master to wharfd")?;
    Ok(())
}

/// Signals every process of the container through libcontainer (freezer, cgroup pids).
pub fn kill_all(runtime_root: &Path, id: &str, signal: i32) -> Result<(), String> {
    let sig = libcontainer::signal::Signal::try_from(signal)
        .map_err(|e| format!("invalid signal {signal}: {e}"))?;
    let mut c = Container::load(runtime_root.join(id)).map_err(|e| error_chain(&e))?;
    c.kill(sig, true).map_err(|e| error_chain(&e))
}

/// Hands the running container to the event loop: by exec'ing the small `wharf-shim-monitor`
/// next to this binary, else by re-executing ourselves (both drop libcontainer's pages), or
/// in-process when `WHARF_SHIM_NO_REEXEC` is set (for comparison and debugging).
fn run_monitor(ready: Ready) -> Result<()> {
    if std::env::var_os("WHARF_SHIM_NO_REEXEC").is_some() {
        let m = Monitor::new(
            ready.monitor,
            ready.listener,
            ready.log,
            ready.stdout_r,
            ready.stderr_r,
            ready.stdin_w,
            Box::new(InProcessOps),
        )?;
        return m.run();
    }
    let mut margs = ready.monitor.clone();
    // Ownership passes to the exec'd image; keep the descriptors open across execve.
    let fds: Vec<RawFd> = vec![
        ready.listener.into_raw_fd(),
        ready.log.into_raw_fd(),
        ready.stdout_r.into_raw_fd(),
    ]
    .into_iter()
    .chain(ready.stderr_r.map(IntoRawFd::into_raw_fd))
    .chain(ready.stdin_w.map(IntoRawFd::into_raw_fd))
    .collect();
    for fd in &fds {
        set_cloexec(*fd, false)?;
    }
    if let Ok(shim) = std::env::current_exe() {
        // After an upgrade replaced the binary, the new one is at the same path.
        let shim = match shim.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
            Some(s) => std::path::PathBuf::from(s),
            None => shim,
        };
        let monitor = shim.with_file_name(wharf_shim::MONITOR_BIN);
        margs.shim = Some(shim);
        if let (Ok(path), Ok(argv)) = (
            CString::new(monitor.into_os_string().into_encoded_bytes()),
            monitor_argv(wharf_shim::MONITOR_BIN, &margs),
        ) {
            // On success this does not return; ENOENT (an install without the small binary)
            // falls through to the re-exec.
            let _ = nix::unistd::execv(&path, &argv);
        }
        margs.shim = None;
    }
    let exe = CString::new("/proc/self/exe").context("exe path")?;
    let _ = nix::unistd::execv(&exe, &monitor_argv("wharf-shim", &margs)?);
    // exec failed: run the loop here rather than orphan the container.
    for fd in &fds {
        let _ = set_cloexec(*fd, true);
    }
    Monitor::from_args(margs, Box::new(InProcessOps))?.run()
}

fn monitor_argv(argv0: &str, margs: &MonitorArgs) -> Result<Vec<CString>> {
    let mut argv = vec![CString::new(argv0).context("argv0")?];
    for a in margs.to_args() {
        argv.push(CString::new(a).context("argument with NUL")?);
    }
    Ok(argv)
}
