//! Real-terminal sessions: `run -it`, detach with ctrl-p ctrl-q, `attach`, `exec -it`, driven
//! through tmux panes (a real pty whose size we control) for `wharf` and for the real `docker`
//! CLI against the same test wharfd. Both must behave the same: output, `stty size` after a
//! resize, what a detach prints and every exit code.
//!
//! Needs root, a built wharfd, `tmux` and `docker` on PATH; skips otherwise. Every wait polls
//! the pane with a generous deadline; nothing asserts on timing.
// The helpers here run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

/// A tmux server on a private socket, killed (with every pane) on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(tag: &str) -> Tmux {
        Tmux {
            socket: format!("wharf-pty-{tag}-{}", std::process::id()),
        }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// A detached session of `width`x`height` running `command` under `sh`; when the command
    /// ends, the pane prints `EXIT=<code>` and stays, so its last screen can be read.
    fn session(&self, name: &str, width: u16, height: u16, command: &str) {
        // The code goes on a line of its own: a detached shell leaves its prompt unfinished.
        // `MODE=` shows whether the CLI gave the terminal back cooked: canonical, echoing
        // (`MODE=icanon echo`), or left it raw (`MODE=-icanon -echo`).
        let script = format!(
            "{command}; rc=$?; echo; echo \"MODE=$(stty -a | tr ' ;' '\\n\\n' | grep -x -e '-\\?icanon' -e '-\\?echo' | tr '\\n' ' ')\"; echo \"EXIT=$rc\"; sleep 3600"
        );
        self.cmd(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "sh",
            "-c",
            &script,
        ]);
    }

    fn screen(&self, name: &str) -> String {
        // `-J` joins wrapped lines; `-S -` includes the history the pane scrolled away.
        let out = self.cmd(&["capture-pane", "-p", "-J", "-S", "-", "-t", name]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` and presses Enter.
    fn type_line(&self, name: &str, text: &str) {
        self.cmd(&["send-keys", "-t", name, "-l", text]);
        self.cmd(&["send-keys", "-t", name, "Enter"]);
    }

    fn key(&self, name: &str, key: &str) {
        self.cmd(&["send-keys", "-t", name, key]);
    }

    fn resize(&self, name: &str, width: u16, height: u16) {
        self.cmd(&[
            "resize-window",
            "-t",
            name,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
    }

    /// Polls the screen until `pred` holds; panics with the screen after the deadline.
    fn wait_for(&self, name: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen(name);
            if pred(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{name}: no {what} within {DEADLINE:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_text(&self, name: &str, text: &str) -> String {
        self.wait_for(name, text, |s| s.contains(text))
    }

    /// Types `line` again every couple of seconds until `text` shows up: for output that is
    /// only right once an asynchronous change (a resize) has landed.
    fn retype_until(&self, name: &str, line: &str, text: &str) -> String {
        let start = Instant::now();
        loop {
            self.type_line(name, line);
            let round = Instant::now();
            while round.elapsed() < Duration::from_secs(2) {
                let screen = self.screen(name);
                if screen.contains(text) {
                    return screen;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{name}: no {text:?} within {DEADLINE:?}; screen:\n{}",
                self.screen(name)
            );
        }
    }

    /// The `EXIT=<code>` the pane printed when the command ended, and the screen text between
    /// `after` and it (what the command printed on its way out).
    fn wait_exit(&self, name: &str) -> (i32, String) {
        let (code, screen) = self.wait_exit_any(name);
        assert!(
            cooked(&screen),
            "{name}: the terminal was not restored; screen:\n{screen}"
        );
        (code, screen)
    }

    /// As `wait_exit`, for a way out where the terminal may stay raw (checked by the caller).
    fn wait_exit_any(&self, name: &str) -> (i32, String) {
        let screen = self.wait_for(name, "EXIT=", |s| exit_code(s).is_some());
        (exit_code(&screen).unwrap_or(-1), screen)
    }

    /// The pid of the CLI the pane runs: the one child of the pane's `sh` (`env` execs it).
    fn cli_pid(&self, name: &str) -> i32 {
        let out = self.cmd(&["display-message", "-p", "-t", name, "#{pane_pid}"]);
        let shell = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let out = Command::new("pgrep").args(["-P", &shell]).output().unwrap();
        let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(
            pids.len(),
            1,
            "{name}: children of the pane's shell: {pids:?}"
        );
        pids[0]
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
        // tmux leaves its socket file behind.
        let dir = std::env::var("TMUX_TMPDIR").unwrap_or_else(|_| "/tmp".to_string());
        let uid = nix::unistd::getuid();
        let _ = std::fs::remove_file(
            Path::new(&dir)
                .join(format!("tmux-{uid}"))
                .join(&self.socket),
        );
    }
}

/// Whether the pane's `MODE=` line says the terminal is cooked (canonical and echoing).
fn cooked(screen: &str) -> bool {
    screen.contains("MODE=icanon echo")
}

fn exit_code(screen: &str) -> Option<i32> {
    screen
        .lines()
        .filter_map(|l| l.trim().strip_prefix("EXIT="))
        .next_back()
        .and_then(|c| c.trim().parse().ok())
}

/// The lines between the last line containing `marker` and the `EXIT=` line: what the CLI
/// printed when the session ended (e.g. after a detach).
fn tail_before_exit(screen: &str, marker: &str) -> String {
    let lines: Vec<&str> = screen.lines().collect();
    let end = lines
        .iter()
        .rposition(|l| l.trim().starts_with("MODE="))
        .unwrap_or(lines.len());
    let start = lines[..end]
        .iter()
        .rposition(|l| l.contains(marker))
        .map_or(0, |i| i + 1);
    lines[start..end]
        .iter()
        .map(|l| l.trim_end())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tool {
    Docker,
    Wharf,
}

impl Tool {
    fn tag(self) -> &'static str {
        match self {
            Tool::Docker => "d",
            Tool::Wharf => "w",
        }
    }

    /// The shell command line that runs this tool against the test daemon.
    fn line(self, host: &str, config: &Path, args: &str) -> String {
        let bin = match self {
            Tool::Docker => "docker".to_string(),
            Tool::Wharf => env!("CARGO_BIN_EXE_wharf").to_string(),
        };
        format!(
            "env DOCKER_HOST={host} DOCKER_CONFIG={dc} WHARF_CONFIG={wc} TZ=UTC {bin} {args}",
            dc = config.join("docker").display(),
            wc = config.join("wharf").display(),
        )
    }
}

/// What one tool did in the scenario, for the docker/wharf comparison.
#[derive(Debug, PartialEq)]
struct Observed {
    detach_exit: i32,
    detach_tail: String,
    running_after_detach: bool,
    attach_detach_exit: i32,
    attach_detach_tail: String,
    attach_exit: i32,
    start_exit: i32,
    exec_exit: i32,
    exec_detach_exit: i32,
    exec_detach_tail: String,
}

fn prompt_seen(screen: &str) -> bool {
    screen.contains("/ # ")
}

async fn scenario(
    tmux: &Tmux,
    client: &wharf_client::Client,
    host: &str,
    config: &Path,
    tool: Tool,
) -> Observed {
    let t = tool.tag();
    let name = format!("pty-{t}");

    // run -it: type, read, resize, detach.
    let s1 = format!("{t}-run");
    tmux.session(
        &s1,
        120,
        40,
        &tool.line(host, config, &format!("run -it --name {name} busybox sh")),
    );
    tmux.wait_for(&s1, "the shell prompt", prompt_seen);
    tmux.type_line(&s1, "echo hello-$((6*7))");
    tmux.wait_text(&s1, "hello-42");
    tmux.type_line(&s1, "echo size-$(stty size | tr ' ' x)");
    tmux.wait_text(&s1, "size-40x120");
    // Raw mode: ctrl-c is a byte for the container's shell, not a signal for the CLI. It goes
    // once sleep runs: a ctrl-c that reaches the shell's line editor first is just input.
    tmux.type_line(&s1, "sleep 1000");
    wait_for_process(client, &name, "sleep 1000").await;
    tmux.key(&s1, "C-c");
    tmux.type_line(&s1, "echo after-$((1+2))-intr");
    tmux.wait_text(&s1, "after-3-intr");
    tmux.resize(&s1, 100, 30);
    tmux.retype_until(&s1, "echo size-$(stty size | tr ' ' x)", "size-30x100");
    // One key at a time: docker's escape proxy only recognizes keys read one by one.
    tmux.type_line(&s1, "echo before-detach");
    tmux.wait_text(&s1, "\nbefore-detach");
    tmux.key(&s1, "C-p");
    tmux.key(&s1, "C-q");
    let (detach_exit, screen) = tmux.wait_exit(&s1);
    let detach_tail = tail_before_exit(&screen, "before-detach");
    let running_after_detach = client
        .inspect_container(&name)
        .await
        .map(|c| c.state.running)
        .unwrap_or(false);

    // attach in a terminal of another size: the container's TTY follows it; detach with
    // custom keys.
    let s2 = format!("{t}-attach");
    tmux.session(
        &s2,
        90,
        25,
        &tool.line(
            host,
            config,
            &format!("attach --detach-keys ctrl-a,d {name}"),
        ),
    );
    tmux.retype_until(&s2, "echo again-$(stty size | tr ' ' x)", "again-25x90");
    tmux.key(&s2, "C-a");
    tmux.key(&s2, "d");
    let (attach_detach_exit, screen) = tmux.wait_exit(&s2);
    let attach_detach_tail = tail_before_exit(&screen, "again-25x90");

    // attach again; `exit 3` ends the container and the CLI with its code.
    let s2 = format!("{t}-attach2");
    tmux.session(
        &s2,
        90,
        25,
        &tool.line(host, config, &format!("attach {name}")),
    );
    tmux.retype_until(&s2, "echo third-$((3*3))", "third-9");
    tmux.type_line(&s2, "exit 3");
    let (attach_exit, _) = tmux.wait_exit(&s2);

    // start -a -i of a container created as `create -it` makes.
    let st = format!("pty-{t}-st");
    client
        .post_json::<serde_json::Value>(
            &format!("/containers/create?name={st}"),
            &json!({"Image": "busybox", "Cmd": ["sh"], "Tty": true, "OpenStdin": true,
                    "StdinOnce": true, "AttachStdin": true, "AttachStdout": true,
                    "AttachStderr": true}),
        )
        .await
        .unwrap();
    let s5 = format!("{t}-start");
    tmux.session(
        &s5,
        100,
        30,
        &tool.line(host, config, &format!("start -a -i {st}")),
    );
    tmux.wait_for(&s5, "the shell prompt", prompt_seen);
    tmux.retype_until(&s5, "echo st-$(stty size | tr ' ' x)", "st-30x100");
    tmux.type_line(&s5, "exit 5");
    let (start_exit, _) = tmux.wait_exit(&s5);
    let _ = client.remove(&st, true).await;

    // exec -it in a running container: type, read, size, exit code; then detach from a
    // second exec.
    let ex = format!("pty-{t}-ex");
    let resp: serde_json::Value = client
        .post_json(
            &format!("/containers/create?name={ex}"),
            &json!({"Image": "busybox", "Cmd": ["sleep", "600"]}),
        )
        .await
        .unwrap();
    client.start(resp["Id"].as_str().unwrap()).await.unwrap();
    let s3 = format!("{t}-exec");
    tmux.session(
        &s3,
        80,
        24,
        &tool.line(host, config, &format!("exec -it {ex} sh")),
    );
    tmux.wait_for(&s3, "the shell prompt", prompt_seen);
    tmux.type_line(&s3, "echo in-exec-$((2*3)) $(stty size | tr ' ' x)");
    tmux.wait_text(&s3, "in-exec-6 24x80");
    tmux.type_line(&s3, "exit 7");
    let (exec_exit, _) = tmux.wait_exit(&s3);

    // This time the detach keys come from each CLI's config file (`detachKeys`).
    for dir in ["docker", "wharf"] {
        std::fs::create_dir_all(config.join(dir)).unwrap();
        std::fs::write(
            config.join(dir).join("config.json"),
            r#"{"detachKeys":"ctrl-e,e"}"#,
        )
        .unwrap();
    }
    let s4 = format!("{t}-exec-detach");
    tmux.session(
        &s4,
        80,
        24,
        &tool.line(host, config, &format!("exec -it {ex} sh")),
    );
    tmux.wait_for(&s4, "the shell prompt", prompt_seen);
    tmux.type_line(&s4, "echo exec-before-detach");
    tmux.wait_text(&s4, "\nexec-before-detach");
    tmux.key(&s4, "C-e");
    tmux.key(&s4, "e");
    let (exec_detach_exit, screen) = tmux.wait_exit(&s4);
    for dir in ["docker", "wharf"] {
        let _ = std::fs::remove_file(config.join(dir).join("config.json"));
    }
    let exec_detach_tail = tail_before_exit(&screen, "exec-before-detach");

    let _ = client.remove(&name, true).await;
    let _ = client.remove(&ex, true).await;
    Observed {
        detach_exit,
        detach_tail,
        running_after_detach,
        attach_detach_exit,
        attach_detach_tail,
        attach_exit,
        start_exit,
        exec_exit,
        exec_detach_exit,
        exec_detach_tail,
    }
}

/// A pass-through proxy in front of the daemon that notes every request line the CLIs send,
/// so the calls of the two CLIs can be compared (resize, `kill?signal=WINCH`, detach keys...).
struct Proxy {
    socket: PathBuf,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    fn start(dir: &Path, upstream: PathBuf) -> Proxy {
        let socket = dir.join("proxy.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::UnixStream::connect(&upstream).await else {
                    continue;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            note_requests(&buf[..n], &log);
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Proxy {
            socket,
            requests,
            task,
        }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The distinct requests since the last call, with ids and our per-tool names normalized.
    fn take(&self, tag: &str) -> BTreeSet<String> {
        let lines = std::mem::take(&mut *self.requests.lock().unwrap());
        lines.iter().map(|l| normalize(l, tag)).collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Request lines (`POST /v1.44/... HTTP/1.1`) in client bytes; stdin typed into a session never
/// looks like one.
fn note_requests(bytes: &[u8], log: &Mutex<Vec<String>>) {
    let text = String::from_utf8_lossy(bytes);
    for line in text.split("\r\n") {
        let mut parts = line.split(' ');
        let (Some(method), Some(path), Some(proto)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if proto == "HTTP/1.1" && ["GET", "POST", "HEAD", "DELETE", "PUT"].contains(&method) {
            log.lock().unwrap().push(format!("{method} {path}"));
        }
    }
}

fn normalize(line: &str, tag: &str) -> String {
    let mut out = String::new();
    for (i, seg) in line.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let is_id = seg.len() >= 64 && seg[..64].bytes().all(|b| b.is_ascii_hexdigit());
        if is_id {
            out.push_str("<ID>");
            out.push_str(&seg[64..]);
        } else if seg.starts_with('v') && seg[1..].contains('.') && i == 1 {
            out.push_str("<V>");
        } else {
            out.push_str(seg);
        }
    }
    out.replace(&format!("pty-{tag}"), "pty-T")
}

fn have(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A terminal test's daemon, with busybox imported, and a docker config dir; `None` (the skip
/// recorded) where tmux, the docker CLI or root is missing.
async fn terminal_test_daemon(
    name: &str,
) -> Option<(wharf_testkit::TestDaemon, tempfile::TempDir)> {
    if !have("tmux", "-V") || !have("docker", "--version") {
        wharf_testkit::skip("needs tmux and docker on PATH (apt-get install tmux)");
        return None;
    }
    let daemon = wharf_testkit::start_or_skip(name).await?;
    wharf_testkit::import_busybox(&daemon.client(), "busybox:latest")
        .await
        .unwrap();
    Some((daemon, tempfile::tempdir().unwrap()))
}

// Multi-threaded: the proxy's tasks must run while the test thread blocks polling tmux.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_sessions_match_docker() {
    let Some((daemon, config)) = terminal_test_daemon("cli-pty").await else {
        return;
    };
    let client = daemon.client();
    let proxy = Proxy::start(config.path(), daemon.socket_path());
    let host = proxy.host();
    let tmux = Tmux::new("sessions");

    let docker = scenario(&tmux, &client, &host, config.path(), Tool::Docker).await;
    let docker_calls = proxy.take("d");
    let wharf = scenario(&tmux, &client, &host, config.path(), Tool::Wharf).await;
    let wharf_calls = proxy.take("w");
    println!("docker: {docker:?}\nwharf:  {wharf:?}");
    println!("docker calls: {docker_calls:#?}");

    assert!(wharf.running_after_detach, "detach must leave it running");
    assert_eq!(wharf.attach_exit, 3);
    assert_eq!(wharf.exec_exit, 7);
    assert_eq!(wharf, docker, "wharf and docker differ in a terminal");
    for want in [
        "POST /<V>/containers/<ID>/resize?h=40&w=120",
        "POST /<V>/containers/<ID>/resize?h=30&w=100",
        "POST /<V>/containers/<ID>/kill?signal=WINCH",
        "POST /<V>/containers/pty-T/attach?detachKeys=ctrl-a%2Cd&stderr=1&stdin=1&stdout=1&stream=1",
        "POST /<V>/exec/<ID>/resize?h=24&w=80",
    ] {
        assert!(wharf_calls.contains(want), "wharf never sent {want}");
    }
    let only_docker: Vec<_> = docker_calls.difference(&wharf_calls).collect();
    let only_wharf: Vec<_> = wharf_calls.difference(&docker_calls).collect();
    assert!(
        only_docker.is_empty() && only_wharf.is_empty(),
        "the CLIs made different calls:\nonly docker: {only_docker:#?}\nonly wharf: {only_wharf:#?}"
    );
}

/// Polls `docker top` until a process of the container runs `cmd`.
async fn wait_for_process(client: &wharf_client::Client, container: &str, cmd: &str) {
    let start = Instant::now();
    loop {
        let top: serde_json::Value = client
            .get_json(&format!("/containers/{container}/top"))
            .await
            .unwrap_or_default();
        let running = top["Processes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p.as_array().and_then(|f| f.last()).and_then(|c| c.as_str()) == Some(cmd));
        if running {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "{container}: {cmd} never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates and starts `name` as `docker run -dit busybox sh` would: a TTY shell with stdin
/// open, for `attach` and `exec -it` sessions.
async fn start_tty_shell(client: &wharf_client::Client, name: &str) {
    let resp: serde_json::Value = client
        .post_json(
            &format!("/containers/create?name={name}"),
            &json!({"Image": "busybox", "Cmd": ["sh"], "Tty": true, "OpenStdin": true,
                    "AttachStdin": false, "AttachStdout": false, "AttachStderr": false}),
        )
        .await
        .unwrap();
    client.start(resp["Id"].as_str().unwrap()).await.unwrap();
}

/// How one session ended: the CLI's exit code, whether it left the terminal cooked, and what
/// it printed after `marker` (its last output while connected).
#[derive(Debug, PartialEq)]
struct WayOut {
    exit: i32,
    cooked: bool,
    tail: String,
}

fn way_out(tmux: &Tmux, pane: &str, marker: &str) -> WayOut {
    let (exit, screen) = tmux.wait_exit_any(pane);
    WayOut {
        exit,
        cooked: cooked(&screen),
        tail: tail_before_exit(&screen, marker),
    }
}

/// Opens a pane running `args` and waits until the shell at the other end answers.
fn open_session(tmux: &Tmux, pane: &str, line: &str, marker: &str) {
    tmux.session(pane, 100, 30, line);
    let (cmd, want) = marker_command(marker);
    tmux.retype_until(pane, &cmd, &want);
}

/// A command whose output (`<marker>-42`) cannot be mistaken for its echo.
fn marker_command(marker: &str) -> (String, String) {
    (format!("echo {marker}-$((6*7))"), format!("{marker}-42"))
}

/// The README's "the local terminal goes raw and is restored on every way out", for the ways
/// out a signal makes: SIGTERM, SIGINT (sent with kill: in raw mode ctrl-c is only a byte) and
/// SIGHUP sent to an `attach` or `exec -it` CLI, which has no signal proxy to catch them. wharf
/// restores the terminal and exits `128+n` at once, silently. docker's CLI is run the same way
/// for the record (printed, not compared): on a first SIGTERM or SIGINT its `attach` restores
/// the terminal but does not exit (it waits on for the container, still forwarding input).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_restored_when_the_cli_is_signalled() {
    let Some((daemon, config)) = terminal_test_daemon("cli-pty-sig").await else {
        return;
    };
    let client = daemon.client();
    let host = daemon.host();
    let tmux = Tmux::new("signals");
    let mut failures = Vec::new();
    for tool in [Tool::Docker, Tool::Wharf] {
        let t = tool.tag();
        let ctr = format!("pty-sig-{t}");
        start_tty_shell(&client, &ctr).await;
        for (sig, num) in [("TERM", 15), ("INT", 2), ("HUP", 1)] {
            for (what, args) in [
                ("attach", format!("attach {ctr}")),
                ("exec", format!("exec -it {ctr} sh")),
            ] {
                let pane = format!("{t}-{what}-{sig}");
                let marker = format!("{what}{sig}");
                open_session(
                    &tmux,
                    &pane,
                    &tool.line(&host, config.path(), &args),
                    &marker,
                );
                let pid = tmux.cli_pid(&pane);
                let st = Command::new("kill")
                    .args([&format!("-{sig}"), &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(st.success());
                let mut continued = false;
                if tool == Tool::Docker {
                    // Either the CLI ends or the session answers: a positive sign both ways.
                    let (cmd, want) = marker_command(&format!("after{sig}"));
                    tmux.type_line(&pane, &cmd);
                    let screen = tmux.wait_for(&pane, "an end or an answer", |s| {
                        exit_code(s).is_some() || s.contains(&want)
                    });
                    if exit_code(&screen).is_none() {
                        // It restored the terminal but waits on (for the container's end).
                        continued = true;
                        let _ = Command::new("kill")
                            .args(["-KILL", &pid.to_string()])
                            .status();
                    }
                }
                let got = way_out(&tmux, &pane, &format!("{marker}-42"));
                println!("{tool:?} {what} SIG{sig}: continued {continued} {got:?}");
                let want = WayOut {
                    exit: 128 + num,
                    cooked: true,
                    // The shell's prompt, then nothing from the CLI.
                    tail: "/ #".to_string(),
                };
                if tool == Tool::Wharf && got != want {
                    failures.push(format!("wharf {what} SIG{sig}: {got:?}, want {want:?}"));
                }
            }
        }
    }
    let _ = client.remove("pty-sig-d", true).await;
    let _ = client.remove("pty-sig-w", true).await;
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The README's two claims about a session whose output ends while its process still runs:
/// wharfd killed with -9 under a `run -it`, an `attach` and an `exec -it` (the shims keep
/// the containers running). The terminal comes back cooked, and wharf's exit code and last
/// words are docker's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_restored_when_wharfd_dies_under_the_session() {
    let Some((mut daemon, config)) = terminal_test_daemon("cli-pty-k9").await else {
        return;
    };
    let client = daemon.client();
    let host = daemon.host();
    let tmux = Tmux::new("kill9");
    let mut panes = Vec::new();
    for tool in [Tool::Docker, Tool::Wharf] {
        let t = tool.tag();
        let ctr = format!("pty-k9-{t}");
        start_tty_shell(&client, &ctr).await;
        for (what, args) in [
            ("run", format!("run -it --name pty-k9-{t}-run busybox sh")),
            ("attach", format!("attach {ctr}")),
            ("exec", format!("exec -it {ctr} sh")),
        ] {
            let pane = format!("{t}-k9-{what}");
            open_session(&tmux, &pane, &tool.line(&host, config.path(), &args), what);
            panes.push((tool, what, pane));
        }
    }
    daemon.kill9().unwrap();
    let mut seen = Vec::new();
    for (tool, what, pane) in &panes {
        let got = way_out(&tmux, pane, &format!("{what}-42"));
        println!("{tool:?} {what} after kill -9: {got:?}");
        seen.push((*tool, *what, got));
    }
    // The premise: the processes outlived the daemon.
    daemon.restart().await.unwrap();
    let client = daemon.client();
    for name in ["pty-k9-w", "pty-k9-w-run"] {
        let running = client
            .inspect_container(name)
            .await
            .map(|c| c.state.running)
            .unwrap_or(false);
        assert!(running, "{name} did not outlive wharfd");
    }
    let mut failures = Vec::new();
    for (tool, what, got) in &seen {
        if !got.cooked {
            failures.push(format!("{tool:?} {what} left the terminal raw: {got:?}"));
        }
    }
    // Not as after a detach (0 silently, or `read escape sequence` and 1): both CLIs report
    // the lost daemon. docker's words are Go's (`unexpected EOF`), wharf's its client's; the
    // exit codes are the same, and `exec` (whose inspect finds no daemon) ends silently, -1.
    let docker: Vec<_> = seen.iter().filter(|s| s.0 == Tool::Docker).collect();
    let wharf: Vec<_> = seen.iter().filter(|s| s.0 == Tool::Wharf).collect();
    for ((_, what, d), (_, _, w)) in docker.iter().zip(&wharf) {
        if d.exit != w.exit {
            failures.push(format!("{what}: docker {d:?}, wharf {w:?}"));
        }
    }
    let exits: Vec<_> = wharf
        .iter()
        .map(|(_, what, got)| (*what, got.exit))
        .collect();
    assert_eq!(exits, [("run", 125), ("attach", 1), ("exec", 255)]);
    assert_eq!(wharf[2].2.tail, "/ #", "exec printed something");
    assert!(failures.is_empty(), "{failures:#?}");
}
