//! The same scenarios through `wharf` and the real `docker` CLI against one wharfd: stdout
//! (after normalizing ids, our own names and times) and exit codes must be identical.
//!
//! Needs root, a built wharfd (`cargo build -p wharfd`) and `docker` on PATH; skips otherwise.

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
    cmd.args(args)
        .env("DOCKER_HOST", host)
        .env("DOCKER_CONFIG", config.join("docker"))
        .env("WHARF_CONFIG", config.join("wharf"))
        .env_remove("WHARF_HOST")
        .env_remove("WHARF_CONTEXT")
        .env_remove("DOCKER_CONTEXT")
        .env("TZ", "UTC")
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
        pipe.write_all(input.as_bytes()).unwrap();
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
}

const fn case(args: &'static [&'static str]) -> Case {
    Case {
        args,
        stdin: None,
        same_stderr: false,
        exact: false,
    }
}

const fn exact(args: &'static [&'static str]) -> Case {
    Case {
        args,
        stdin: None,
        same_stderr: false,
        exact: true,
    }
}

const fn err_case(args: &'static [&'static str]) -> Case {
    Case {
        args,
        stdin: None,
        same_stderr: true,
        exact: true,
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
    case(&["version", "--format", "{{.Server.APIVersion}}"]),
    case(&[
        "version",
        "--format",
        "{{.Server.Version}} {{.Server.Os}} {{.Server.Arch}}",
    ]),
    err_case(&["stop", "nosuch"]),
    err_case(&["kill", "nosuch"]),
    err_case(&["rm", "nosuch"]),
    err_case(&["rm", "-f", "nosuch"]),
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
];

/// Scenarios each tool runs on its own objects (`{t}` is the tool's tag), in order.
const OWN: &[Case] = &[
    case(&["run", "--rm", "busybox", "echo", "hi"]),
    case(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]),
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
    case(&["run", "--name", "eq-{t}-nosuch", "busybox", "nosuchcmd"]),
    case(&["rm", "eq-{t}-nosuch"]),
    case(&["run", "--name", "eq-{t}-dir", "busybox", "/etc"]),
    case(&["rm", "eq-{t}-dir"]),
    Case {
        args: &["run", "--rm", "-i", "busybox", "cat"],
        stdin: Some("hello\nworld\n"),
        same_stderr: false,
        exact: true,
    },
    Case {
        args: &["run", "--rm", "-i", "busybox", "sh", "-c", "wc -l; exit 5"],
        stdin: Some("1\n2\n3\n"),
        same_stderr: false,
        exact: true,
    },
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
    case(&["start", "-a", "eq-{t}-c"]),
    case(&["logs", "eq-{t}-c"]),
    case(&["container", "rm", "eq-{t}-c"]),
    case(&["tag", "busybox", "eq-{t}-tag:v1"]),
    case(&[
        "images",
        "eq-{t}-tag",
        "--format",
        "{{.Repository}} {{.Tag}}",
    ]),
    case(&["rmi", "eq-{t}-tag:v1"]),
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
    let (ds, ws) = (normalize(&d.stdout), normalize(&w.stdout));
    let mut problems = Vec::new();
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
    if case.same_stderr && normalize(&d.stderr) != normalize(&w.stderr) {
        problems.push(format!(
            "stderr differs:\n--- docker\n{}\n--- wharf\n{}",
            d.stderr, w.stderr
        ));
    }
    if problems.is_empty() {
        println!("same (exit {}): {:?}", d.code, case.args);
    } else {
        failures.push(format!(
            "{:?}: {}\n(docker stderr: {}; wharf stderr: {})",
            case.args,
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
        println!("SKIP wharf_matches_docker_cli: no docker CLI on PATH");
        return;
    }
    let Some(daemon) = wharf_testkit::start_or_skip("cli-equiv").await else {
        return;
    };
    let client = daemon.client();
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

    let config = tempfile::tempdir().unwrap();
    let host = daemon.host();
    let mut failures = Vec::new();
    for case in SHARED.iter().chain(OWN) {
        compare(&host, config.path(), case, &mut failures);
    }
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
