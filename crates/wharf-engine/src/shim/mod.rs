//! wharfd's side of the shim contract (`wharf_runtime::shim_proto`): launching a shim and
//! everything said on its socket afterwards. Every action on a running container (signals,
//! stdin, resize, pause, exec, killing an exec) is a request here; nothing else in the engine
//! signals a container's processes or writes its cgroup files.

pub(crate) mod exec;
pub(crate) mod stdio;

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use wharf_runtime::shim_proto::{
    ExitStatus, LaunchResult, Request, Response, EXIT_FILE, SOCKET_FILE,
};

pub struct LaunchArgs<'a> {
    pub shim_path: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub state_dir: &'a Path,
    pub log: &'a Path,
    /// Rotate the log before a line that would make it larger; 0 = never.
    pub log_max_size: u64,
    /// Log files kept in all (at least 1).
    pub log_max_file: u32,
    /// A file holding the JSON object written as every line's `attrs`.
    pub log_attrs_file: Option<&'a Path>,
    pub runtime_root: &'a Path,
    pub stdin: bool,
    pub tty: bool,
    /// `(height, width)` for the pty.
    pub console_size: Option<(u16, u16)>,
}

/// Runs `wharf-shim start ...` and returns its launch result once the container's process
/// has started or failed to: as soon as the launcher prints it, not when the launcher has
/// exited (a short-lived container may be gone by then, and its exit waits for this answer).
pub async fn launch(a: LaunchArgs<'_>) -> io::Result<LaunchResult> {
    let mut cmd = tokio::process::Command::new(a.shim_path);
    cmd.arg("start")
        .arg("--id")
        .arg(a.id)
        .arg("--bundle")
        .arg(a.bundle)
        .arg("--state-dir")
        .arg(a.state_dir)
        .arg("--log")
        .arg(a.log)
        .arg("--runtime-root")
        .arg(a.runtime_root);
    if a.log_max_size > 0 {
        cmd.arg("--log-max-size").arg(a.log_max_size.to_string());
    }
    if a.log_max_file > 1 {
        cmd.arg("--log-max-file").arg(a.log_max_file.to_string());
    }
    if let Some(f) = a.log_attrs_file {
        cmd.arg("--log-attrs-file").arg(f);
    }
    if a.stdin {
        cmd.arg("--stdin");
    }
    if a.tty {
        cmd.arg("--tty");
        if let Some((h, w)) = a.console_size {
            cmd.arg("--console-size").arg(format!("{h}x{w}"));
        }
    }
    // Its own process group: a signal aimed at the launcher's group (or a Ctrl-C at a
    // foreground wharfd) must never reach the daemon, and vice versa.
    cmd.process_group(0);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(io::Error::other("the shim's output pipes are missing"));
    };
    let mut lines = BufReader::new(stdout).lines();
    let mut report = None;
    while let Some(l) = lines.next_line().await? {
        if l.trim_start().starts_with('{') {
            report = Some(l);
            break;
        }
    }
    let Some(line) = report else {
        // No result: the launcher failed; what it said on stderr is the reason.
        let mut err = Vec::new();
        let _ = stderr.read_to_end(&mut err).await;
        let status = child.wait().await?;
        return Err(io::Error::other(format!(
            "shim exited with {status} without a launch result: {}",
            String::from_utf8_lossy(&err).trim()
        )));
    };
    // The launcher exits right after printing; reap it off this path.
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        let _ = child.wait().await;
    });
    serde_json::from_str(&line).map_err(|e| {
        io::Error::other(format!(
            "shim printed an unreadable launch result ({e}): {line}"
        ))
    })
}

/// Connects through `/proc/self/fd/<dir>/shim.sock`: a socket path is limited to 107 bytes and
/// state dirs under deep roots are longer than that.
pub(crate) async fn connect(state_dir: &Path) -> io::Result<UnixStream> {
    let dir = std::fs::File::open(state_dir)?;
    let short = format!("/proc/self/fd/{}/{SOCKET_FILE}", dir.as_raw_fd());
    let s = UnixStream::connect(&short).await;
    drop(dir);
    s
}

async fn send(state_dir: &Path, req: &Request) -> io::Result<BufReader<UnixStream>> {
    let mut s = connect(state_dir).await?;
    let mut line = serde_json::to_vec(req).map_err(io::Error::other)?;
    line.push(b'\n');
    s.write_all(&line).await?;
    Ok(BufReader::new(s))
}

pub(crate) async fn read_response(r: &mut BufReader<UnixStream>) -> io::Result<Option<Response>> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    serde_json::from_str(&line)
        .map(Some)
        .map_err(|e| io::Error::other(format!("bad shim response ({e}): {line}")))
}

/// One request, one answer.
pub async fn request(state_dir: &Path, req: &Request) -> io::Result<Response> {
    let mut r = send(state_dir, req).await?;
    match read_response(&mut r).await? {
        Some(resp) if resp.ok => Ok(resp),
        Some(resp) => Err(io::Error::other(
            resp.error
                .unwrap_or_else(|| "shim refused the request".into()),
        )),
        None => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "shim closed the connection",
        )),
    }
}

/// Waits for the container to exit. Returns the exit status from `exit.json`, which is the
/// record of truth; `None` if the shim vanished without writing one.
pub async fn wait_exit(state_dir: &Path) -> Option<ExitStatus> {
    if let Ok(mut r) = send(state_dir, &Request::Wait).await {
        // Either an answer or EOF: both mean "look at exit.json now".
        let _ = read_response(&mut r).await;
    }
    read_exit(state_dir)
}

pub fn read_exit(state_dir: &Path) -> Option<ExitStatus> {
    let data = std::fs::read(state_dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&data).ok()
}

/// A connection whose write side is the container's stdin.
pub async fn open_stdin(state_dir: &Path) -> io::Result<UnixStream> {
    let mut r = send(state_dir, &Request::Stdin).await?;
    match read_response(&mut r).await? {
        Some(resp) if resp.ok => Ok(r.into_inner()),
        Some(resp) => Err(io::Error::other(
            resp.error.unwrap_or_else(|| "shim refused stdin".into()),
        )),
        None => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "shim closed the connection",
        )),
    }
}

/// `docker pause` (`true`) and `unpause`: the shim freezes or thaws the container's cgroup and
/// answers once the kernel says it is done.
pub async fn freeze(state_dir: &Path, frozen: bool) -> io::Result<()> {
    request(state_dir, &Request::Freeze { frozen })
        .await
        .map(drop)
}

/// Signals a running exec's process (by the pid the shim reported when it started it); the
/// shim refuses any pid that is not one of its live execs.
pub async fn signal_exec(state_dir: &Path, pid: i32, signal: i32) -> io::Result<()> {
    request(state_dir, &Request::SignalExec { pid, signal })
        .await
        .map(drop)
}

/// Whether a shim answers on its socket.
pub async fn alive(state_dir: &Path) -> bool {
    state(state_dir).await.is_ok()
}

/// The shim's `State` answer: running, the init's pid, whether the cgroup is frozen.
pub async fn state(state_dir: &Path) -> io::Result<Response> {
    request(state_dir, &Request::State).await
}
