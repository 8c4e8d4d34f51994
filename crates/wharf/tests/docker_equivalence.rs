//! The same scenarios through `wharf` and the real `docker` CLI against one wharfd: stdout
//! (after normalizing ids, our own names and times) and exit codes must be identical.
//!
//! Needs root, a built wharfd (`cargo build -p wharfd`) and `docker` on PATH; skips otherwise.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    Docker,
    Wharf,
}

impl Tool {
    /// What `{t}` in a scenario's arguments becomes, so each tool makes its own objects.
    fn tag(self) -> &'static str {
        match self {
            Tool::Docker => "d",
            Tool::Wharf => "w",
        }
    }
}

struct Outcome {
    stdout: String,
    stderr: String,
    code: i32,
}

fn run_tool(
    tool: Tool,
    host: &str,
    config: &Path,
    args: &[String],
    stdin: Option<&str>,
) -> Outcome {
    let mut cmd = match tool {
        Tool::Docker => Command::new("docker"),
        Tool::Wharf => Command::new(env!("CARGO_BIN_EXE_wharf")),
    };
    // A leading `TZ=<zone>` pseudo-argument runs the tool in that zone (times print local).
    let (tz, args) = match args.split_first() {
        Some((first, rest)) if first.starts_with("TZ=") => (&first[3..], rest),
        _ => ("UTC", args),
    };
    cmd.args(args)
        .env("DOCKER_HOST", host)
        .env("DOCKER_CONFIG", config.join("docker"))
        .env("WHARF_CONFIG", config.join("wharf"))
        .env_remove("WHARF_HOST")
        .env_remove("WHARF_CONTEXT")
        .env_remove("DOCKER_CONTEXT")
        .env("TZ", tz)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // A CLI may end (an error, a container that exits) before it reads its input: the
        // outcome is compared below, a closed pipe is not a failure of its own.
        if let Err(e) = pipe.write_all(input.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        // Dropping the pipe is the EOF the container must see.
    }
    let deadline = Instant::now() + TOOL_TIMEOUT;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{:?} {args:?} did not finish in {TOOL_TIMEOUT:?}",
                tool.tag()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Outcome {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Ids become `<ID>` and our per-tool names `eq-T-`; spacing is kept, so table alignment is
/// compared byte for byte.
fn normalize_strict(text: &str) -> String {
    let mut ids = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let is_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if is_hex(chars[i]) && (i == 0 || !chars[i - 1].is_ascii_alphanumeric()) {
            let mut j = i;
            while j < chars.len() && is_hex(chars[j]) {
                j += 1;
            }
            let bounded = j == chars.len() || !chars[j].is_ascii_alphanumeric();
            if bounded && (j - i == 64 || j - i == 12) {
                ids.push_str("<ID>");
                i = j;
                continue;
            }
        }
        ids.push(chars[i]);
        i += 1;
    }
    ids.replace("eq-d-", "eq-T-").replace("eq-w-", "eq-T-")
}

/// As `normalize_strict`, and durations become `<DUR>` and runs of spaces one space (a
/// duration's width changes a table's padding between two runs).
fn normalize(text: &str) -> String {
    let ids = normalize_strict(text);
    let units = [
        "second", "seconds", "minute", "minutes", "hours", "days", "weeks", "months", "years",
    ];
    ids.lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let mut out = Vec::new();
            let mut k = 0;
            while k < words.len() {
                let rest = &words[k..];
                if rest.starts_with(&["Less", "than", "a", "second"]) {
                    out.push("<DUR>");
                    k += 4;
                } else if rest.starts_with(&["About", "a", "minute"])
                    || rest.starts_with(&["About", "an", "hour"])
                {
                    out.push("<DUR>");
                    k += 3;
                } else if rest.len() >= 2
                    && rest[0].chars().all(|c| c.is_ascii_digit())
                    && units.contains(&rest[1].trim_end_matches(['"', ',']))
                {
                    out.push("<DUR>");
                    k += 2;
                } else {
                    out.push(words[k]);
                    k += 1;
                }
            }
            out.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

struct Case {
    args: &'static [&'static str],
    stdin: Option<&'static str>,
    /// The daemon's error text is the same words through both tools.
    same_stderr: bool,
    /// No times in the output: compare spacing too (docker's tabwriter layout).
    exact: bool,
    /// The exit code the scenario must end with, through docker and so through wharf: two
    /// tools failing alike is a pass only where failing is what the scenario is about.
    /// `None` only where wharfd's decision may go either way (honour or refuse a flag).
    code: Option<i32>,
}

impl Case {
    /// Expects exit code `code` instead of 0 (or, for an `err_case`, 1).
    const fn code(mut self, code: i32) -> Case {
        self.code = Some(code);
        self
    }

    /// Either outcome of a flag wharfd may honour or refuse: the two tools must agree.
    const fn any_code(mut self) -> Case {
        self.code = None;
        self
    }

    /// stderr is not compared (each use says why).
    const fn any_stderr(mut self) -> Case {
        self.same_stderr = false;
        self
    }

    const fn stdin(mut self, stdin: &'static str) -> Case {
        self.stdin = Some(stdin);
        self
    }
}

/// Succeeds (exit 0); stdout and stderr the same through both tools.
const fn case(args: &'static [&'static str]) -> Case {
    Case {
        args,
        stdin: None,
        same_stderr: true,
        exact: false,
        code: Some(0),
    }
}

/// As `case`, with the spacing of stdout compared too.
const fn exact(args: &'static [&'static str]) -> Case {
    Case {
        exact: true,
        ..case(args)
    }
}

/// Fails (exit 1 unless `.code` says otherwise) in the same words through both tools.
const fn err_case(args: &'static [&'static str]) -> Case {
    Case {
        code: Some(1),
        ..exact(args)
    }
}

/// Read-only scenarios over containers made once for both tools.
const SHARED: &[Case] = &[
    case(&["ps"]),
    case(&["ps", "-a"]),
    case(&["ps", "-q"]),
    case(&["ps", "-a", "-q"]),
    case(&["container", "ls", "-a"]),
    case(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}} {{.Status}} {{.Command}} {{.State}}",
    ]),
    exact(&[
        "ps",
        "-a",
        "--format",
        "table {{.ID}}\\t{{.Names}}\\t{{.Labels}}\\t{{.Image}}",
    ]),
    exact(&[
        "ps",
        "-a",
        "--format",
        "table {{.Names}}\\t{{.State}}\\t{{.Command}}\\t{{.Ports}}",
    ]),
    case(&[
        "ps",
        "-a",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Command}} {{.Image}}",
    ]),
    case(&[
        "ps",
        "--filter",
        "name=eq-running",
        "--format",
        "{{.Names}}",
    ]),
    case(&["ps", "-a", "--filter", "status=exited", "-q"]),
    case(&[
        "ps",
        "-a",
        "--format",
        "{{json .Names}} {{.Networks}} {{.Ports}}",
    ]),
    case(&["ps", "-n", "1", "--format", "{{.Names}}"]),
    case(&["ps", "-l", "-q"]),
    case(&["images"]),
    case(&["images", "-q"]),
    case(&["images", "--no-trunc", "-q"]),
    case(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}",
    ]),
    exact(&[
        "images",
        "--format",
        "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.Size}}",
    ]),
    case(&["images", "busybox"]),
    case(&["images", "--digests"]),
    // Registry commands against a registry that is not there (127.0.0.1:1 refuses at once, so
    // nothing leaves the machine): before wharfd pulls, both tools show its 501; after, its
    // error. `run` and `create` first say the image is missing, then try to pull it.
    err_case(&["pull", "127.0.0.1:1/eq-nosuch"]),
    err_case(&["pull", "-q", "127.0.0.1:1/eq-nosuch:v1"]),
    err_case(&["run", "--rm", "127.0.0.1:1/eq-nosuch", "true"]).code(125),
    err_case(&["create", "127.0.0.1:1/eq-nosuch", "true"]),
    err_case(&["create", "--pull=never", "127.0.0.1:1/eq-nosuch", "true"]),
    // stderr not compared: wharfd's words for a push it cannot make may name `docker push`,
    // which the comparison would read as `wharf push` in docker's output only.
    err_case(&["push", "127.0.0.1:1/eq-nosuch"]).any_stderr(),
    err_case(&["login", "-u", "eq", "--password-stdin", "127.0.0.1:1"]).stdin("pw\n"),
    case(&["logout", "127.0.0.1:1"]),
    case(&["image", "ls", "nosuchrepo"]),
    case(&["history", "-q", "busybox"]),
    case(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Running}} {{.Config.Cmd}} {{.Name}} {{.State.ExitCode}}",
        "eq-exited",
    ]),
    case(&[
        "inspect",
        "-f",
        "{{.Id}} {{json .Config.Cmd}}",
        "eq-running",
    ]),
    case(&[
        "container",
        "inspect",
        "-f",
        "{{.Config.Labels}}",
        "eq-running",
    ]),
    case(&["inspect", "-f", "{{.Os}} {{.Architecture}}", "busybox"]),
    case(&["image", "inspect", "-f", "{{.RepoTags}}", "busybox"]),
    err_case(&["inspect", "nosuch"]),
    case(&["logs", "eq-exited"]),
    case(&["logs", "--tail", "1", "eq-exited"]),
    case(&["logs", "-n", "2", "eq-exited"]),
    case(&["logs", "--since", "10m", "eq-exited"]),
    // `details=1` is sent by both; whatever wharfd answers, both print it alike.
    err_case(&["logs", "--details", "eq-exited"]).any_code(),
    case(&["version", "--format", "{{.Server.APIVersion}}"]),
    case(&[
        "version",
        "--format",
        "{{.Server.Version}} {{.Server.Os}} {{.Server.Arch}}",
    ]),
    err_case(&["stop", "nosuch"]),
    err_case(&["kill", "nosuch"]),
    err_case(&["rm", "nosuch"]),
    // -f: docker prints the daemon's words but does not fail.
    err_case(&["rm", "-f", "nosuch"]).code(0),
    err_case(&["restart", "nosuch"]),
    err_case(&["wait", "nosuch"]),
    err_case(&["logs", "nosuch"]),
    err_case(&["rmi", "nosuch"]),
    err_case(&["tag", "nosuch", "other"]),
    err_case(&["rename", "nosuch", "other"]),
    err_case(&["kill", "eq-exited"]),
    exact(&["top", "eq-running"]),
    case(&["top", "eq-running", "-o", "pid,comm"]),
    err_case(&["top", "eq-exited"]),
    err_case(&["pause", "nosuch"]),
    err_case(&["unpause", "eq-running"]),
    err_case(&["update", "--restart", "sometimes", "eq-exited"]),
    err_case(&["events", "--format", "{{.Foo}}", "--until", "1"]).code(64),
    err_case(&["events", "--format", "{{.Actor.Foo}}", "--until", "1"]).code(64),
    err_case(&["events", "--since", "yesterday"]),
    // Known gap, not compared: docker follows the words with its usage block ("Usage:  docker
    // events [OPTIONS]", "Run 'docker events --help' ..."); wharf's shared filter parser does not.
    case(&["events", "--filter", "foo"]).code(125).any_stderr(),
    err_case(&["exec", "nosuch", "echo", "hi"]),
    err_case(&["exec", "eq-exited", "echo", "hi"]),
    err_case(&["attach", "nosuch"]),
    err_case(&["attach", "eq-exited"]),
    // A TTY with stdin needs a terminal on stdin (here /dev/null): refused before any call.
    err_case(&["run", "-it", "--rm", "busybox", "true"]),
    err_case(&["exec", "-it", "eq-running", "sh"]),
    err_case(&["attach", "eq-running-tty"]),
    exact(&["exec", "eq-running", "echo", "hi"]),
    exact(&[
        "exec",
        "eq-running",
        "sh",
        "-c",
        "echo out; echo to-stderr >&2; exit 5",
    ])
    .code(5),
    exact(&[
        "exec",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "1000",
        "eq-running",
        "sh",
        "-c",
        "echo $A $(pwd) $(id -u)",
    ]),
    exact(&["exec", "-i", "eq-running", "cat"]).stdin("line1\nline2\n"),
    exact(&["exec", "-i", "eq-running", "sh", "-c", "wc -l; exit 4"])
        .stdin("1\n2\n3\n")
        .code(4),
    exact(&["exec", "-d", "eq-running", "sleep", "1"]),
    // Missing / not executable: docker's words come from the daemon, 127 / 126 from exec inspect.
    exact(&["exec", "eq-running", "nosuchcmd"]).code(127),
    exact(&["exec", "eq-running", "/etc"]).code(126),
    // A TTY without stdin: raw bytes (CRLF from the pty), no stdcopy framing.
    exact(&["exec", "-t", "eq-running", "echo", "tty-out"]),
];

/// Scenarios each tool runs on its own objects (`{t}` is the tool's tag), in order.
const OWN: &[Case] = &[
    case(&["run", "--rm", "busybox", "echo", "hi"]),
    case(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]).code(3),
    case(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]),
    // Not --rm: wharfd does not auto-remove a container whose start failed, and docker would
    // wait for that removal forever.
    case(&["run", "--name", "eq-{t}-nosuch", "busybox", "nosuchcmd"]).code(127),
    case(&["rm", "eq-{t}-nosuch"]),
    case(&["run", "--name", "eq-{t}-dir", "busybox", "/etc"]).code(126),
    case(&["rm", "eq-{t}-dir"]),
    exact(&["run", "--rm", "-i", "busybox", "cat"]).stdin("hello\nworld\n"),
    exact(&["run", "--rm", "-i", "busybox", "sh", "-c", "wc -l; exit 5"])
        .stdin("1\n2\n3\n")
        .code(5),
    case(&[
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "1000",
        "busybox",
        "sh",
        "-c",
        "echo $FOO $(pwd) $(id -u)",
    ]),
    case(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        "busybox",
        "from",
        "entrypoint",
    ]),
    case(&["run", "--rm", "--hostname", "eqhost", "busybox", "hostname"]),
    case(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-l",
        "a=b",
        "busybox",
        "true",
    ]),
    case(&[
        "run",
        "-d",
        "--name",
        "eq-{t}-bg",
        "busybox",
        "sleep",
        "300",
    ]),
    case(&[
        "ps",
        "--filter",
        "name=eq-{t}-bg",
        "--format",
        "{{.Names}} {{.State}}",
    ]),
    case(&["stop", "-t", "1", "eq-{t}-bg"]),
    case(&["start", "eq-{t}-bg"]),
    case(&["kill", "-s", "KILL", "eq-{t}-bg"]),
    case(&["wait", "eq-{t}-bg"]),
    case(&["rename", "eq-{t}-bg", "eq-{t}-bg2"]),
    case(&["rm", "eq-{t}-bg2"]),
    case(&[
        "create",
        "--name",
        "eq-{t}-c",
        "busybox",
        "sh",
        "-c",
        "echo created; exit 2",
    ]),
    case(&["start", "-a", "eq-{t}-c"]).code(2),
    case(&["logs", "eq-{t}-c"]),
    case(&["container", "rm", "eq-{t}-c"]),
    exact(&["run", "--rm", "-t", "busybox", "echo", "tty-run"]),
    exact(&[
        "run",
        "--name",
        "eq-{t}-ttylog",
        "-t",
        "busybox",
        "sh",
        "-c",
        "echo tty-out; echo tty-err >&2",
    ]),
    exact(&["logs", "eq-{t}-ttylog"]),
    exact(&["logs", "--tail", "1", "eq-{t}-ttylog"]),
    case(&["rm", "eq-{t}-ttylog"]),
    // Stdin is a pipe, not a terminal: the CLI refuses `-t` with `-i`.
    exact(&["run", "--rm", "-i", "-t", "--name", "eq-{t}-pipe", "busybox", "cat"])
        .stdin("x\n")
        .code(1),
    case(&[
        "create",
        "--name",
        "eq-{t}-h",
        "--init",
        "--restart",
        "on-failure:3",
        "--health-cmd",
        "true",
        "--health-interval",
        "30s",
        "--health-timeout",
        "1m30s",
        "--health-retries",
        "3",
        "--health-start-period",
        "5s",
        "--health-start-interval",
        "2s",
        "busybox",
        "sleep",
        "1",
    ]),
    exact(&[
        "inspect",
        "-f",
        // Field by field: `json` of a whole object prints Go's field order in docker.
        "{{json .Config.Healthcheck.Test}} {{json .Config.Healthcheck.Interval}} {{json .Config.Healthcheck.Timeout}} {{json .Config.Healthcheck.StartPeriod}} {{json .Config.Healthcheck.StartInterval}} {{.Config.Healthcheck.Retries}} {{.HostConfig.Init}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}",
        "eq-{t}-h",
    ]),
    case(&["rm", "eq-{t}-h"]),
    case(&["create", "--name", "eq-{t}-nh", "--no-healthcheck", "busybox", "true"]),
    // No command: the daemon refuses; docker's create prints its words and exits 1.
    err_case(&["create", "busybox"]),
    exact(&["inspect", "-f", "{{json .Config.Healthcheck}}", "eq-{t}-nh"]),
    case(&["rm", "eq-{t}-nh"]),
    case(&["run", "--no-healthcheck", "--health-retries", "2", "busybox", "true"]).code(125),
    case(&["run", "--rm", "--restart", "always", "busybox", "true"]).code(125),
    case(&["run", "--health-retries", "-1", "busybox", "true"]).code(125),
    case(&["run", "--restart", ":3", "busybox", "true"]).code(125),
    case(&["tag", "busybox", "eq-{t}-tag:v1"]),
    case(&[
        "images",
        "eq-{t}-tag",
        "--format",
        "{{.Repository}} {{.Tag}}",
    ]),
    case(&["rmi", "eq-{t}-tag:v1"]),
    // Resource and security flags: both CLIs send docker's body, so whatever wharfd decides
    // (honour, or refuse naming the field: exit 125), both print the same and exit the same;
    // which of the two is not pinned here (the honour tests are where it is).
    err_case(&[
        "run", "--rm", "-m", "32m", "--memory-swap", "64m", "--cpus", "1", "-c", "512",
        "--pids-limit", "50", "--cpuset-cpus", "0", "busybox", "true",
    ]).any_code(),
    err_case(&[
        "run", "--rm", "--cap-drop", "ALL", "--cap-add", "chown", "--security-opt",
        "no-new-privileges", "--ulimit", "nofile=512:1024", "--shm-size", "8m", "busybox",
        "true",
    ]).any_code(),
    err_case(&[
        "run", "--rm", "--add-host", "a:1.2.3.4", "--dns", "1.1.1.1", "--dns-search", "x.org",
        "--group-add", "10", "--sysctl", "net.ipv4.ip_forward=1", "busybox", "true",
    ]).any_code(),
    err_case(&["run", "--rm", "--tmpfs", "/t", "--mount", "type=tmpfs,dst=/m", "busybox", "true"]).any_code(),
    err_case(&["run", "--rm", "-p", "18080:80", "busybox", "true"]).any_code(),
    err_case(&["run", "--rm", "-v", "/tmp:/host", "busybox", "true"]).any_code(),
    err_case(&["run", "--rm", "-v", "eq-{t}-vol:/data", "busybox", "true"]).any_code(),
    err_case(&["run", "--rm", "--pid", "host", "--ipc", "host", "--uts", "host", "busybox", "true"]).any_code(),
    err_case(&["run", "--rm", "--log-driver", "none", "busybox", "true"]).any_code(),
    err_case(&["run", "--rm", "--privileged", "--read-only", "busybox", "true"]).any_code(),
    err_case(&["run", "--rm", "--device", "/dev/null:/dev/n2", "busybox", "true"]).any_code(),
    err_case(&["create", "--name", "eq-{t}-res", "-m", "32m", "busybox", "sleep", "1"]).any_code(),
    err_case(&["update", "--cpus", "0.5", "--memory", "64m", "eq-{t}-res"]).any_code(),
    err_case(&["update", "--restart", "on-failure:2", "eq-{t}-res"]).code(0),
    case(&["rm", "-f", "eq-{t}-res"]),
    // -a picks the streams attached: only stdout (or only stderr) comes back.
    exact(&["run", "--rm", "-a", "stdout", "busybox", "sh", "-c", "echo out; echo err >&2"]),
    exact(&["run", "--rm", "-a", "stderr", "busybox", "sh", "-c", "echo out; echo err >&2"]),
    // Refused by the CLI before any call: docker's words.
    err_case(&["run", "-m", "abc", "busybox", "true"]).code(125),
    err_case(&["run", "--ulimit", "nofile", "busybox", "true"]).code(125),
    err_case(&["run", "--mount", "src=/x", "busybox", "true"]).code(125),
    err_case(&["update", "-m", "abc", "eq-{t}-res"]).code(125),
];

fn args_for(case: &Case, tool: Tool) -> Vec<String> {
    case.args
        .iter()
        .map(|a| a.replace("{t}", tool.tag()))
        .collect()
}

fn compare(host: &str, config: &Path, case: &Case, failures: &mut Vec<String>) {
    let d = run_tool(
        Tool::Docker,
        host,
        config,
        &args_for(case, Tool::Docker),
        case.stdin,
    );
    let w = run_tool(
        Tool::Wharf,
        host,
        config,
        &args_for(case, Tool::Wharf),
        case.stdin,
    );
    judge(&format!("{:?}", case.args), case, &d, &w, failures);
}

/// A scenario whose arguments are only known at run time (times, ids).
fn compare_dynamic(
    host: &str,
    config: &Path,
    args: &[String],
    case: &Case,
    failures: &mut Vec<String>,
) {
    let d = run_tool(Tool::Docker, host, config, args, case.stdin);
    let w = run_tool(Tool::Wharf, host, config, args, case.stdin);
    judge(&format!("{args:?}"), case, &d, &w, failures);
}

fn judge(label: &str, case: &Case, d: &Outcome, w: &Outcome, failures: &mut Vec<String>) {
    let (ds, ws) = (normalize(&d.stdout), normalize(&w.stdout));
    let mut problems = Vec::new();
    // Docker is the reference, but agreeing is not enough: both failing where the scenario
    // should succeed (a broken daemon answers both alike) is a failure.
    if let Some(want) = case.code {
        if d.code != want {
            problems.push(format!("docker exit code {} (want {want})", d.code));
        }
    }
    if d.code != w.code {
        problems.push(format!("exit code docker={} wharf={}", d.code, w.code));
    }
    if ds != ws {
        problems.push(format!(
            "stdout differs:\n--- docker\n{ds}\n--- wharf\n{ws}"
        ));
    } else if case.exact && normalize_strict(&d.stdout) != normalize_strict(&w.stdout) {
        problems.push(format!(
            "layout differs:\n--- docker\n{}\n--- wharf\n{}",
            d.stdout, w.stdout
        ));
    }
    // docker names itself in its prefixes and hints (`docker: ...`, `Run 'docker run
    // --help'`); wharf says `wharf` there.
    if case.same_stderr && normalize(&d.stderr.replace("docker", "wharf")) != normalize(&w.stderr) {
        problems.push(format!(
            "stderr differs:\n--- docker\n{}\n--- wharf\n{}",
            d.stderr, w.stderr
        ));
    }
    if problems.is_empty() {
        println!("same (exit {}): {label}", d.code);
    } else {
        failures.push(format!(
            "{label}: {}\n(docker stderr: {}; wharf stderr: {})",
            problems.join("; "),
            d.stderr.trim(),
            w.stderr.trim()
        ));
    }
}

async fn make_container(client: &wharf_client::Client, name: &str, body: Value) {
    let path = format!("/containers/create?name={name}");
    let resp: Value = client.post_json(&path, &body).await.unwrap();
    let id = resp["Id"].as_str().unwrap().to_string();
    client.start(&id).await.unwrap();
}

#[tokio::test]
async fn wharf_matches_docker_cli() {
    if Command::new("docker")
        .arg("--version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        wharf_testkit::skip("no docker CLI on PATH");
        return;
    }
    let Some(daemon) = wharf_testkit::start_or_skip("cli-equiv").await else {
        return;
    };
    let client = daemon.client();
    let setup_start = now_unix() - 1;
    wharf_testkit::import_busybox(&client, "busybox:latest")
        .await
        .unwrap();
    make_container(
        &client,
        "eq-exited",
        json!({"Image": "busybox", "Cmd": ["sh", "-c", "echo one; echo two; echo three >&2"]}),
    )
    .await;
    client.wait("eq-exited", None).await.unwrap();
    make_container(
        &client,
        "eq-running",
        json!({"Image": "busybox", "Cmd": ["sleep", "600"], "Labels": {"tier": "web", "a": "1"}}),
    )
    .await;

    make_container(
        &client,
        "eq-running-tty",
        json!({"Image": "busybox", "Cmd": ["sleep", "600"], "Tty": true, "OpenStdin": true}),
    )
    .await;
    let setup_end = now_unix() + 1;

    let config = tempfile::tempdir().unwrap();
    let host = daemon.host();
    let mut failures = Vec::new();
    for case in SHARED.iter().chain(OWN) {
        compare(&host, config.path(), case, &mut failures);
    }
    // Events of the setup's containers: the same events (same times) through both tools.
    let window = |extra: &[&str]| {
        let mut a: Vec<String> = vec![
            "events".into(),
            "--since".into(),
            setup_start.to_string(),
            "--until".into(),
            setup_end.to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    for extra in [
        &["--filter", "container=eq-exited"][..],
        &[
            "--filter",
            "container=eq-running",
            "--filter",
            "event=start",
        ],
        &["--filter", "container=eq-exited", "--format", "{{json .}}"],
        &["--filter", "container=eq-exited", "--format", "json"],
        &[
            "-f",
            "type=container",
            "-f",
            "container=eq-running",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.image}}",
        ],
        &["--filter", "image=busybox", "--filter", "event=die"],
    ] {
        compare_dynamic(
            &host,
            config.path(),
            &window(extra),
            &exact(&[]),
            &mut failures,
        );
    }
    // The window really holds the setup's events (an empty answer would compare equal).
    let mut args = vec!["TZ=Asia/Kolkata".to_string()];
    args.extend(window(&["--filter", "container=eq-exited"]));
    let seen = run_tool(Tool::Wharf, &host, config.path(), &args, None).stdout;
    assert!(
        seen.contains("+05:30 container create ") && seen.contains(" container die "),
        "events of the setup window: {seen:?}"
    );
    for zone in ["TZ=Asia/Kolkata", "TZ=America/New_York"] {
        let mut args = vec![zone.to_string()];
        args.extend(window(&["--filter", "container=eq-exited"]));
        compare_dynamic(&host, config.path(), &args, &exact(&[]), &mut failures);
    }
    compare_dynamic(
        &host,
        config.path(),
        &[
            "events".to_string(),
            "--since".to_string(),
            "10m".to_string(),
            "--until".to_string(),
            "0s".to_string(),
            "--filter".to_string(),
            "container=eq-exited".to_string(),
        ],
        &exact(&[]),
        &mut failures,
    );
    for tool in [Tool::Docker, Tool::Wharf] {
        attach_scenario(&client, &host, config.path(), tool, &mut failures).await;
    }
    live_events(&client, &host, config.path(), &mut failures).await;
    let d = run_sigint(&host, config.path(), Tool::Docker);
    let w = run_sigint(&host, config.path(), Tool::Wharf);
    if d != w {
        failures.push(format!("run + SIGINT: docker {d:?}, wharf {w:?}"));
    } else {
        println!("run + SIGINT same: {d:?}");
    }
    daemon_detach(&client, &host, config.path(), &mut failures).await;
    let _ = client.remove("eq-running-tty", true).await;
    // Containers this test made are killed and removed with the daemon's directory.
    let _ = client.remove("eq-running", true).await;
    assert!(
        failures.is_empty(),
        "{} of {} scenarios differ:\n\n{}",
        failures.len(),
        SHARED.len() + OWN.len(),
        failures.join("\n\n")
    );
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn spawn_tool(tool: Tool, host: &str, config: &Path, args: &[&str]) -> std::process::Child {
    let mut cmd = match tool {
        Tool::Docker => Command::new("docker"),
        Tool::Wharf => Command::new(env!("CARGO_BIN_EXE_wharf")),
    };
    cmd.args(args)
        .env("DOCKER_HOST", host)
        .env("DOCKER_CONFIG", config.join("docker"))
        .env("WHARF_CONFIG", config.join("wharf"))
        .env_remove("WHARF_HOST")
        .env_remove("WHARF_CONTEXT")
        .env_remove("DOCKER_CONTEXT")
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a spawned tool with the usual timeout; kills it on the way out.
fn finish(mut child: std::process::Child, what: &str) -> Outcome {
    let deadline = Instant::now() + TOOL_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} did not finish in {TOOL_TIMEOUT:?}; stdout so far: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Outcome {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Polls the daemon's event history until `action` was seen for `name`.
async fn wait_for_event(client: &wharf_client::Client, name: &str, action: &str, since: i64) {
    let deadline = Instant::now() + TOOL_TIMEOUT;
    loop {
        let filters = format!(r#"{{"container":{{"{name}":true}},"event":{{"{action}":true}}}}"#);
        let mut stream = client
            .events(
                Some(&since.to_string()),
                Some(&(now_unix() + 1).to_string()),
                Some(&filters),
            )
            .await
            .unwrap();
        if let Some(ev) = stream.next().await {
            ev.unwrap();
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {action} event for {name} within {TOOL_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `attach` to a running container, with `--sig-proxy` at work: the USR1 sent to the CLI must
/// reach the container (whose trap then prints and exits 3); the CLI prints what the container
/// wrote after the attach and exits with its code.
async fn attach_scenario(
    client: &wharf_client::Client,
    host: &str,
    config: &Path,
    tool: Tool,
    failures: &mut Vec<String>,
) {
    let name = format!("eq-{}-att", tool.tag());
    let since = now_unix() - 1;
    make_container(
        client,
        &name,
        json!({"Image": "busybox", "Cmd": ["sh", "-c",
            "trap 'echo attached-out; echo attached-err >&2; exit 3' USR1; echo before; while true; do sleep 0.1; done"]}),
    )
    .await;
    // Attach gives only what is written after it: wait for "before", or it may land after the
    // attach and be (rightly) part of the output.
    let deadline = Instant::now() + TOOL_TIMEOUT;
    loop {
        let opts = wharf_client::LogsOptions {
            stdout: true,
            ..Default::default()
        };
        let logs = client.logs(&name, &opts).await.unwrap();
        if logs.iter().any(|(_, b)| b.starts_with(b"before")) {
            break;
        }
        assert!(Instant::now() < deadline, "{name}: no \"before\" line");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let child = spawn_tool(tool, host, config, &["attach", &name]);
    let pid = child.id() as i32;
    wait_for_event(client, &name, "attach", since).await;
    // The CLI subscribes to signals before it attaches, so after the attach event a USR1 is
    // forwarded, never fatal.
    unsafe_kill(pid, "USR1");
    let got = finish(child, &format!("{} attach", tool.tag()));
    let _ = client.remove(&name, true).await;
    if got.stdout != "attached-out\n" || got.code != 3 || !got.stderr.contains("attached-err") {
        failures.push(format!(
            "{} attach: stdout {:?} stderr {:?} exit {} (want \"attached-out\\n\", attached-err, 3)",
            tool.tag(),
            got.stdout,
            got.stderr,
            got.code
        ));
    } else {
        println!("attach ok for {}", tool.tag());
    }
}

/// Ctrl-C to a foreground `run` (sig-proxy on): the container gets the SIGINT (its trap prints
/// and exits 4) and the CLI ends as docker's does.
fn run_sigint(host: &str, config: &Path, tool: Tool) -> (String, i32) {
    let name = format!("eq-{}-sig", tool.tag());
    let mut child = spawn_tool(
        tool,
        host,
        config,
        &[
            "run",
            "--rm",
            "--name",
            &name,
            "busybox",
            "sh",
            "-c",
            "trap 'echo got-int; exit 4' INT; echo ready; while true; do sleep 0.1; done",
        ],
    );
    let mut stdout = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        })
    };
    let deadline = Instant::now() + TOOL_TIMEOUT;
    // "ready" comes after the trap is set, so the signal cannot be lost.
    while !seen.lock().unwrap().contains("ready") {
        assert!(Instant::now() < deadline, "{name}: no ready line");
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe_kill(child.id() as i32, "INT");
    let code = finish(child, &format!("{} run (SIGINT)", tool.tag())).code;
    let _ = reader.join();
    let text = seen.lock().unwrap().clone();
    (text, code)
}

fn unsafe_kill(pid: i32, sig: &str) {
    let st = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -s {sig} {pid}");
}

/// Live `events` streams through both tools see the same actions for a container made after
/// they subscribed.
async fn live_events(
    client: &wharf_client::Client,
    host: &str,
    config: &Path,
    failures: &mut Vec<String>,
) {
    // `--since` before the container exists: whenever each CLI's subscription lands, the
    // daemon replays what it missed, so no pause is needed before making the container.
    let since = (now_unix() - 1).to_string();
    let args = [
        "events",
        "--since",
        since.as_str(),
        "--filter",
        "container=eq-live",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ];
    let mut children = Vec::new();
    for tool in [Tool::Docker, Tool::Wharf] {
        children.push((tool, spawn_tool(tool, host, config, &args)));
    }
    make_container(
        client,
        "eq-live",
        json!({"Image": "busybox", "Cmd": ["true"]}),
    )
    .await;
    client.wait("eq-live", None).await.unwrap();
    client.remove("eq-live", true).await.unwrap();
    let mut outputs = Vec::new();
    for (tool, mut child) in children {
        let deadline = Instant::now() + TOOL_TIMEOUT;
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
            }
        });
        let mut text = String::new();
        while !text.contains("container destroy eq-live") && Instant::now() < deadline {
            if let Ok(t) = rx.recv_timeout(Duration::from_millis(200)) {
                text = t;
            }
        }
        // Ctrl-C ends a live `events`; the exit status must be docker's.
        unsafe_kill(child.id() as i32, "INT");
        let code = finish(child, &format!("{} events", tool.tag())).code;
        outputs.push((tool, text, code));
    }
    let (d, w) = (&outputs[0].1, &outputs[1].1);
    let (dc, wc) = (outputs[0].2, outputs[1].2);
    if d != w || !d.contains("container start eq-live") || dc != wc {
        failures.push(format!(
            "live events differ or incomplete (exit docker={dc} wharf={wc}):\n--- docker\n{d}\n--- wharf\n{w}"
        ));
    } else {
        println!("live events same:\n{d}");
    }
}

/// Wharf only: like dockerd, wharfd watches for the detach keys only on a TTY, so piped input
/// that carries ctrl-p ctrl-q reaches a non-TTY `run -i` untouched and the run ends normally
/// (exit 0, the input echoed back, nothing on stderr).
async fn daemon_detach(
    _client: &wharf_client::Client,
    host: &str,
    config: &Path,
    failures: &mut Vec<String>,
) {
    // Like dockerd, wharfd looks for detach keys only on a TTY: piped bytes that happen to
    // be ctrl-p ctrl-q reach the container untouched and the run ends normally.
    let args: Vec<String> = ["run", "-i", "--rm", "busybox", "cat"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let input = "a\n\u{10}\u{11}b\n";
    let got = run_tool(Tool::Wharf, host, config, &args, Some(input));
    if got.code != 0 || !got.stderr.is_empty() || got.stdout != input {
        failures.push(format!(
            "piped detach keys: exit {} stdout {:?} stderr {:?} (want 0, the input, nothing)",
            got.code, got.stdout, got.stderr
        ));
    } else {
        println!("piped detach keys pass through ok");
    }
}

#[test]
fn normalize_hides_ids_names_and_times() {
    let a = "0123456789ab   busybox   \"sleep 1\"   2 seconds ago   Up About a minute   eq-d-x";
    let b = "fedcba987654   busybox   \"sleep 1\"   Less than a second ago   Up 3 minutes   eq-w-x";
    assert_eq!(normalize(a), normalize(b));
    assert_eq!(
        normalize(a),
        "<ID> busybox \"sleep 1\" <DUR> ago Up <DUR> eq-T-x"
    );
}

/// Polls `GET /containers/{name}/json` until `.State.Health.Status` is `want`.
async fn wait_health(client: &wharf_client::Client, name: &str, want: &str) {
    let deadline = Instant::now() + TOOL_TIMEOUT;
    loop {
        let info: Value = client
            .get_json(&format!("/containers/{name}/json"))
            .await
            .unwrap();
        let status = info
            .pointer("/State/Health/Status")
            .and_then(Value::as_str)
            .unwrap_or("");
        if status == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: health never became {want:?} within {TOOL_TIMEOUT:?} (State: {})",
            info["State"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `--health-*` through both CLIs: the containers they create get the same checks, and what
/// the CLIs print about health once the daemon has judged them is the same.
#[tokio::test]
async fn health_matches_docker_cli() {
    if Command::new("docker")
        .arg("--version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        wharf_testkit::skip("no docker CLI on PATH");
        return;
    }
    let Some(daemon) = wharf_testkit::start_or_skip("cli-health").await else {
        return;
    };
    let client = daemon.client();
    wharf_testkit::import_busybox(&client, "busybox:latest")
        .await
        .unwrap();
    let config = tempfile::tempdir().unwrap();
    let host = daemon.host();
    let mut failures = Vec::new();
    let since = (now_unix() - 1).to_string();
    const MAKE: &[Case] = &[
        case(&[
            "run",
            "-d",
            "--name",
            "eq-{t}-ok",
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
            "busybox",
            "sleep",
            "300",
        ]),
        case(&[
            "run",
            "-d",
            "--name",
            "eq-{t}-bad",
            "--health-cmd",
            "echo failing; exit 1",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            "busybox",
            "sleep",
            "300",
        ]),
        case(&[
            "run",
            "-d",
            "--name",
            "eq-{t}-none",
            "--no-healthcheck",
            "busybox",
            "sleep",
            "300",
        ]),
    ];
    for c in MAKE {
        compare(&host, config.path(), c, &mut failures);
    }
    for t in ["d", "w"] {
        wait_health(&client, &format!("eq-{t}-ok"), "healthy").await;
        wait_health(&client, &format!("eq-{t}-bad"), "unhealthy").await;
    }
    const LOOK: &[Case] = &[
        case(&[
            "ps",
            "--filter",
            "name=eq-{t}-",
            "--format",
            "{{.Names}} {{.Status}}",
        ]),
        exact(&[
            "inspect",
            "-f",
            "{{.State.Health.Status}} {{json .Config.Healthcheck.Test}}",
            "eq-{t}-ok",
        ]),
        exact(&["inspect", "-f", "{{.State.Health.Status}}", "eq-{t}-bad"]),
        exact(&["inspect", "-f", "{{json .State.Health}}", "eq-{t}-none"]),
        exact(&[
            "ps",
            "--filter",
            "health=unhealthy",
            "--filter",
            "name=eq-{t}-",
            "--format",
            "{{.Names}}",
        ]),
    ];
    for c in LOOK {
        compare(&host, config.path(), c, &mut failures);
    }
    // The health transitions as events, each tool seeing its own containers.
    let until = (now_unix() + 1).to_string();
    for which in ["ok", "bad"] {
        let for_tool = |t: &str| -> Vec<String> {
            [
                "events",
                "--since",
                &since,
                "--until",
                &until,
                "--filter",
                &format!("container=eq-{t}-{which}"),
                "--filter",
                "event=health_status",
                "--format",
                "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        };
        let d = run_tool(Tool::Docker, &host, config.path(), &for_tool("d"), None);
        let w = run_tool(Tool::Wharf, &host, config.path(), &for_tool("w"), None);
        judge(
            &format!("health_status events of eq-T-{which}"),
            &exact(&[]),
            &d,
            &w,
            &mut failures,
        );
        if !d.stdout.contains("health_status") {
            failures.push(format!(
                "no health_status event for eq-d-{which}: {:?}",
                d.stdout
            ));
        }
    }
    for t in ["d", "w"] {
        for n in ["ok", "bad", "none"] {
            let _ = client.remove(&format!("eq-{t}-{n}"), true).await;
        }
    }
    assert!(
        failures.is_empty(),
        "{} health scenarios differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
