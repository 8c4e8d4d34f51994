//! Real-terminal sessions: `run -it`, detach with ctrl-p ctrl-q, `attach`, `exec -it`, driven
//! through tmux panes (a real pty whose size we control) for `wharf` and for the real `docker`
//! CLI against the same test wharfd. Both must behave the same: output, `stty size` after a
//! resize, what a detach prints and every exit code.
//!
//! Needs root, a built wharfd, `tmux` and `docker` on PATH; skips otherwise. Every wait polls
//! the pane with a generous deadline; nothing asserts on timing.

use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};
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
        // `MODE=` shows whether the CLI gave the terminal back in canonical mode.
        let script = format!(
            "{command}; rc=$?; echo; echo \"MODE=$(stty -a | tr ' ;' '\\n\\n' | grep -x -- '-\\?icanon')\"; echo \"EXIT=$rc\"; sleep 3600"
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
        let screen = self.wait_for(name, "EXIT=", |s| exit_code(s).is_some());
        assert!(
            screen.contains("MODE=icanon"),
            "{name}: the terminal was not restored; screen:\n{screen}"
        );
        (exit_code(&screen).unwrap_or(-1), screen)
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
    // Raw mode: ctrl-c is a byte for the container's shell, not a signal for the CLI.
    tmux.type_line(&s1, "sleep 1000");
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
    tmux.key(&s4, "C-p");
    tmux.key(&s4, "C-q");
    let (exec_detach_exit, screen) = tmux.wait_exit(&s4);
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
        exec_exit,
        exec_detach_exit,
        exec_detach_tail,
    }
}

fn have(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[tokio::test]
async fn terminal_sessions_match_docker() {
    if !have("tmux", "-V") || !have("docker", "--version") {
        println!("SKIP terminal_sessions_match_docker: needs tmux and docker on PATH");
        return;
    }
    let Some(daemon) = wharf_testkit::start_or_skip("cli-pty").await else {
        return;
    };
    let client = daemon.client();
    wharf_testkit::import_busybox(&client, "busybox:latest")
        .await
        .unwrap();
    let config = tempfile::tempdir().unwrap();
    let host = daemon.host();
    let tmux = Tmux::new("sessions");

    let docker = scenario(&tmux, &client, &host, config.path(), Tool::Docker).await;
    let wharf = scenario(&tmux, &client, &host, config.path(), Tool::Wharf).await;
    println!("docker: {docker:?}\nwharf:  {wharf:?}");

    assert!(wharf.running_after_detach, "detach must leave it running");
    assert_eq!(wharf.attach_exit, 3);
    assert_eq!(wharf.exec_exit, 7);
    assert_eq!(wharf, docker, "wharf and docker differ in a terminal");
}
