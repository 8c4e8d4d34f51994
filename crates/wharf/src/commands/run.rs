//! `run`, `create` and `start`, following the docker CLI's call sequence for a foreground run:
//! create → attach (hijacked, before start so no output is lost) → wait (registered before
//! start so a fast exit is not missed) → start → stream until the daemon closes → exit code.

use super::{err_out, out, streams, tty, Ctx, Exit};
use crate::cli::{ContainerOpts, RunArgs, StartArgs};
use crate::format::units;
use anyhow::{Context as _, Result};
use serde_json::{json, Map, Value};
use wharf_client::{encode, AttachOptions, ClientError};

/// docker's `toStatusError`: the exit code follows the words of the start error.
pub fn run_exit_code(message: &str) -> i32 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
        || message.contains("system cannot find the file specified")
    {
        127
    } else if message.contains("permission denied") || message.contains("is a directory") {
        126
    } else {
        125
    }
}

fn with_help(ctx: &Ctx, e: &ClientError, command: &str) -> anyhow::Error {
    let msg = ctx.msg(e);
    Exit::error(
        run_exit_code(&msg),
        format!("wharf: {msg}\n\nRun 'wharf {command} --help' for more information"),
    )
}

/// The create body docker's `run`/`create` flags produce. `console` is the terminal's
/// `(height, width)`, which docker always sends as `HostConfig.ConsoleSize`.
pub fn create_body(
    o: &ContainerOpts,
    attach: bool,
    console: (u16, u16),
    command: &str,
) -> Result<(String, Value)> {
    let (image, cmd) = o
        .image_and_cmd
        .split_first()
        .context("\"run\" requires at least 1 argument")?;
    let usage = |msg: String| {
        Exit::error(
            125,
            format!("wharf: {msg}\n\nRun 'wharf {command} --help' for more information"),
        )
    };
    let healthcheck = healthcheck(o).map_err(usage)?;
    let restart = restart_policy(&o.restart).map_err(usage)?;
    if o.rm && !matches!(restart["Name"].as_str(), Some("no") | Some("")) {
        return Err(usage(
            "conflicting options: cannot specify both --restart and --rm".to_string(),
        ));
    }
    let mut env = Vec::new();
    for file in &o.env_file {
        env.extend(read_env_file(file)?);
    }
    env.extend(o.env.iter().map(|e| expand_env(e)));
    let mut labels = Map::new();
    for l in &o.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), Value::String(v.to_string()));
    }
    let mut cfg = json!({
        "Image": image,
        "AttachStdin": o.interactive && attach,
        "AttachStdout": attach,
        "AttachStderr": attach,
        "OpenStdin": o.interactive,
        "StdinOnce": o.interactive && attach,
        "Tty": o.tty,
        "Env": env,
        "Labels": labels,
        "HostConfig": {
            "AutoRemove": o.rm,
            "NetworkMode": o.network.clone().unwrap_or_else(|| "default".to_string()),
            "RestartPolicy": restart,
            "ConsoleSize": [console.0, console.1],
        },
    });
    if let Some(init) = o.init {
        cfg["HostConfig"]["Init"] = json!(init);
    }
    if let Some(h) = healthcheck {
        cfg["Healthcheck"] = h;
    }
    if !cmd.is_empty() {
        cfg["Cmd"] = json!(cmd);
    }
    if let Some(ep) = &o.entrypoint {
        // docker: `--entrypoint ""` resets the image's entrypoint.
        cfg["Entrypoint"] = json!([ep]);
    }
    let mut set = |key: &str, v: &Option<String>| {
        if let Some(v) = v {
            cfg[key] = Value::String(v.clone());
        }
    };
    set("WorkingDir", &o.workdir);
    set("User", &o.user);
    set("Hostname", &o.hostname);
    set("StopSignal", &o.stop_signal);
    if let Some(t) = o.stop_timeout {
        cfg["StopTimeout"] = json!(t);
    }
    Ok((image.clone(), cfg))
}

/// `--env-file`: one `NAME=value` (or `NAME`, taken from our environment) per line; blank
/// lines and `#` comments are skipped.
pub fn read_env_file(file: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Exit::error(125, format!("wharf: open {file}: {e}")))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(expand_env)
        .collect())
}

/// docker's `--restart` parsing (`opts.ParseRestartPolicy`).
fn restart_policy(policy: &str) -> Result<Value, String> {
    let (name, count) = match policy.split_once(':') {
        Some(("", _)) => {
            return Err(
                "invalid restart policy format: no policy provided before colon".to_string(),
            )
        }
        Some((name, count)) => (name, count),
        None => (policy, ""),
    };
    let count: i64 = if count.is_empty() {
        0
    } else {
        count.parse().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?
    };
    Ok(json!({"Name": name, "MaximumRetryCount": count}))
}

/// A Go duration flag (`30s`, `1m30s`) in nanoseconds; `None` when not given.
fn duration_flag(flag: &str, v: &Option<String>) -> Result<Option<i64>, String> {
    let Some(v) = v else {
        return Ok(None);
    };
    let (neg, digits) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let nanos = if digits == "0" {
        0
    } else {
        match units::parse_go_duration(digits) {
            Some(d) => d.as_nanos() as i64,
            None if digits.chars().all(|c| c.is_ascii_digit() || c == '.') => {
                return Err(format!(
                    "invalid argument \"{v}\" for \"--{flag}\" flag: time: missing unit in duration \"{v}\""
                ))
            }
            None => {
                return Err(format!(
                    "invalid argument \"{v}\" for \"--{flag}\" flag: time: invalid duration \"{v}\""
                ))
            }
        }
    };
    if neg && nanos != 0 {
        return Err(format!("--{flag} cannot be negative"));
    }
    Ok(Some(nanos))
}

/// `Config.Healthcheck` from the `--health-*` flags, as docker's `parse` builds it: zero
/// values are left out, `--no-healthcheck` is `{"Test":["NONE"]}`.
fn healthcheck(o: &ContainerOpts) -> Result<Option<Value>, String> {
    let interval = duration_flag("health-interval", &o.health_interval)?;
    let timeout = duration_flag("health-timeout", &o.health_timeout)?;
    let start_period = duration_flag("health-start-period", &o.health_start_period)?;
    let start_interval = duration_flag("health-start-interval", &o.health_start_interval)?;
    let retries = o.health_retries.unwrap_or(0);
    let nonzero = |d: Option<i64>| d.unwrap_or(0) != 0;
    let have = o.health_cmd.as_deref().is_some_and(|c| !c.is_empty())
        || nonzero(interval)
        || nonzero(timeout)
        || nonzero(start_period)
        || nonzero(start_interval)
        || retries != 0;
    if o.no_healthcheck {
        if have {
            return Err("--no-healthcheck conflicts with --health-* options".to_string());
        }
        return Ok(Some(json!({"Test": ["NONE"]})));
    }
    if !have {
        return Ok(None);
    }
    if retries < 0 {
        return Err("--health-retries cannot be negative".to_string());
    }
    let mut h = Map::new();
    if let Some(cmd) = o.health_cmd.as_deref().filter(|c| !c.is_empty()) {
        h.insert("Test".into(), json!(["CMD-SHELL", cmd]));
    }
    for (key, v) in [
        ("Interval", interval),
        ("Timeout", timeout),
        ("StartPeriod", start_period),
        ("StartInterval", start_interval),
    ] {
        if let Some(n) = v.filter(|n| *n != 0) {
            h.insert(key.into(), json!(n));
        }
    }
    if retries != 0 {
        h.insert("Retries".into(), json!(retries));
    }
    Ok(Some(Value::Object(h)))
}

/// `-e NAME` takes NAME's value from our environment, as docker does.
pub fn expand_env(e: &str) -> String {
    if e.contains('=') {
        return e.to_string();
    }
    match std::env::var(e) {
        Ok(v) => format!("{e}={v}"),
        Err(_) => e.to_string(),
    }
}

async fn create_container(
    ctx: &Ctx,
    o: &ContainerOpts,
    attach: bool,
    command: &str,
) -> Result<String> {
    let (image, body) = create_body(o, attach, tty::size(), command)?;
    let path = match &o.name {
        Some(n) => format!("/containers/create?name={}", encode(n)),
        None => "/containers/create".to_string(),
    };
    let resp = match ctx.client.post_json::<Value>(&path, &body).await {
        Ok(v) => v,
        Err(e) => {
            if e.is_not_found() && ctx.msg(&e).contains("No such image") {
                err_out(format!("Unable to find image '{image}' locally\n").as_bytes());
            }
            let msg = ctx.msg(&e);
            // docker's `create` returns the daemon's error as is (exit 1); `run` reports it
            // with the usage hint and 125.
            if command == "create" {
                return Err(Exit::error(1, msg));
            }
            return Err(Exit::error(
                125,
                format!("wharf: {msg}\n\nRun 'wharf {command} --help' for more information"),
            ));
        }
    };
    if let Some(warnings) = resp.get("Warnings").and_then(Value::as_array) {
        for w in warnings.iter().filter_map(Value::as_str) {
            err_out(format!("WARNING: {w}\n").as_bytes());
        }
    }
    resp.get("Id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Exit::error(125, "wharf: the daemon's create answer carried no Id"))
}

pub async fn create(ctx: &Ctx, o: &ContainerOpts) -> Result<i32> {
    let id = create_container(ctx, o, true, "create").await?;
    out(format!("{id}\n").as_bytes());
    Ok(0)
}

/// docker's `CheckTty`: a TTY session that reads stdin needs a terminal on stdin.
pub fn check_tty(attach_stdin: bool, tty_mode: bool) -> Result<()> {
    if tty_mode && attach_stdin && !tty::stdin_is_terminal() {
        return Err(Exit::error(1, "the input device is not a TTY"));
    }
    Ok(())
}

pub async fn run(ctx: &Ctx, a: &RunArgs) -> Result<i32> {
    if !a.detach {
        check_tty(a.opts.interactive, a.opts.tty)?;
    }
    let id = create_container(ctx, &a.opts, !a.detach, "run").await?;
    let start_path = format!("/containers/{}/start", encode(&id));
    if a.detach {
        if let Err(e) = ctx
            .call(wharf_client::Method::POST, &start_path, None, true)
            .await
        {
            return Err(with_help(ctx, &e, "run"));
        }
        out(format!("{id}\n").as_bytes());
        return Ok(0);
    }
    let condition = if a.opts.rm { "removed" } else { "next-exit" };
    let plan = Plan {
        stdin: a.opts.interactive,
        tty: a.opts.tty,
        detach_keys: super::detach_keys(&a.detach_keys),
        sig_proxy: a.sig_proxy,
        condition,
        command: "run",
    };
    let result = attach_start_wait(ctx, &id, &plan).await;
    if a.opts.rm && result.is_err() {
        // The daemon does not auto-remove a container that never started; docker would wait
        // for that removal forever, we remove it ourselves.
        let path = format!("/containers/{}?force=1", encode(&id));
        let _ = ctx
            .call(wharf_client::Method::DELETE, &path, None, false)
            .await;
    }
    result
}

/// What `attach_start_wait` does for `run` and `start -a`.
struct Plan {
    stdin: bool,
    tty: bool,
    detach_keys: Option<String>,
    sig_proxy: bool,
    condition: &'static str,
    command: &'static str,
}

/// Attach, register the wait, start, then pump output (and stdin) until the daemon closes the
/// stream; the container's exit code is the result. Detaching (the detach keys on a TTY)
/// ends with 0 and leaves the container running, as docker's `run` and `start -a` do.
async fn attach_start_wait(ctx: &Ctx, id: &str, p: &Plan) -> Result<i32> {
    let is_run = p.command == "run";
    let fail = |e: &ClientError| {
        if is_run {
            with_help(ctx, e, p.command)
        } else {
            ctx.err(1, e)
        }
    };
    let opts = AttachOptions {
        stdin: p.stdin,
        stdout: true,
        stderr: true,
        detach_keys: p.detach_keys.clone(),
    };
    let stream = ctx
        .client
        .attach_with(id, &opts)
        .await
        .map_err(|e| fail(&e))?;
    let waiter = ctx
        .client
        .wait_registered(id, Some(p.condition))
        .await
        .map_err(|e| fail(&e))?;
    // The pump runs from before the start, as docker's streamer does: piped stdin is written
    // at once (the daemon buffers it until the process exists) and no output is missed.
    let session = streams::Session {
        tty: p.tty,
        stdin: p.stdin,
        detach_keys: p.detach_keys.clone(),
    };
    let pump = tokio::spawn(streams::pump(stream, session));
    let proxy = p
        .sig_proxy
        .then(|| streams::proxy_signals(ctx.client.clone(), id.to_string()));
    let start_path = format!("/containers/{}/start", encode(id));
    if let Err(e) = ctx
        .call(wharf_client::Method::POST, &start_path, None, true)
        .await
    {
        pump.abort();
        tty::restore_terminal();
        if let Some(t) = proxy {
            t.abort();
        }
        return Err(fail(&e));
    }
    let monitor = (p.tty && tty::stdout_is_terminal()).then(|| {
        streams::monitor_tty_size(
            ctx.client.clone(),
            streams::ResizeTarget::Container(id.to_string()),
        )
    });
    let end = pump.await.unwrap_or(streams::End::Output);
    tty::restore_terminal();
    if let Some(t) = monitor {
        t.abort();
    }
    if let Some(t) = proxy {
        t.abort();
    }
    if end == streams::End::Detached
        || (end == streams::End::OutputAfterKeys && still_running(ctx, id).await)
    {
        return Ok(0);
    }
    match waiter.result().await {
        Ok(status) => {
            if let Some(msg) = status.error.as_ref().map(|e| e.message.as_str()) {
                if !msg.is_empty() {
                    err_out(format!("wharf: {msg}\n").as_bytes());
                }
            }
            Ok(status.status_code as i32)
        }
        Err(e) => Err(Exit::error(125, ctx.msg(&e))),
    }
}

/// After piped input carried the detach keys and the output ended: a container that still
/// runs was detached from (by wharfd), one that stopped simply ended.
pub async fn still_running(ctx: &Ctx, id: &str) -> bool {
    ctx.get(&format!("/containers/{}/json", encode(id)))
        .await
        .ok()
        .and_then(|v| v.pointer("/State/Running").and_then(Value::as_bool))
        .unwrap_or(false)
}

pub async fn start(ctx: &Ctx, a: &StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(Exit::error(
                1,
                "you cannot start and attach multiple containers at once",
            ));
        }
        let name = &a.containers[0];
        let info = ctx
            .get(&format!("/containers/{}/json", encode(name)))
            .await
            .map_err(|e| ctx.err(1, &e))?;
        let id = info
            .get("Id")
            .and_then(Value::as_str)
            .unwrap_or(name)
            .to_string();
        let auto_remove = info
            .pointer("/HostConfig/AutoRemove")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let tty = info
            .pointer("/Config/Tty")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let open_stdin = info
            .pointer("/Config/OpenStdin")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        // docker attaches stdin only when the container was created with it open.
        let stdin = a.interactive && open_stdin;
        check_tty(stdin, tty)?;
        let plan = Plan {
            stdin,
            tty,
            detach_keys: super::detach_keys(&a.detach_keys),
            // docker's `start` proxies signals only without a TTY.
            sig_proxy: !tty,
            condition: if auto_remove { "removed" } else { "next-exit" },
            command: "start",
        };
        return attach_start_wait(ctx, &id, &plan).await;
    }
    let mut failed = Vec::new();
    let mut errors = Vec::new();
    for name in &a.containers {
        let path = format!("/containers/{}/start", encode(name));
        match ctx
            .call(wharf_client::Method::POST, &path, None, true)
            .await
        {
            Ok(_) => out(format!("{name}\n").as_bytes()),
            Err(e) => {
                errors.push(ctx.msg(&e));
                failed.push(name.clone());
            }
        }
    }
    if errors.is_empty() {
        return Ok(0);
    }
    errors.push(format!(
        "Error: failed to start containers: {}",
        failed.join(", ")
    ));
    Err(Exit::error(1, errors.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_docker() {
        assert_eq!(
            run_exit_code("exec: \"nosuch\": executable file not found in $PATH"),
            127
        );
        assert_eq!(run_exit_code("stat /x: no such file or directory"), 127);
        assert_eq!(run_exit_code("exec /etc: permission denied"), 126);
        assert_eq!(run_exit_code("read /etc: is a directory"), 126);
        assert_eq!(run_exit_code("No such image: x"), 125);
    }

    fn parse_run(args: &[&str]) -> RunArgs {
        use clap::Parser;
        let mut argv = vec!["wharf", "run"];
        argv.extend_from_slice(args);
        match crate::cli::Cli::try_parse_from(argv).map(|c| c.cmd) {
            Ok(Some(crate::cli::Cmd::Run(a))) => a,
            other => panic!("not a run: {other:?}"),
        }
    }

    fn body(args: &[&str]) -> Value {
        let a = parse_run(args);
        create_body(&a.opts, !a.detach, (40, 120), "run").unwrap().1
    }

    fn body_err(args: &[&str]) -> String {
        let a = parse_run(args);
        let e = create_body(&a.opts, !a.detach, (0, 0), "run").unwrap_err();
        let exit = e.downcast_ref::<Exit>().expect("an Exit");
        assert_eq!(exit.code, 125);
        exit.message.clone()
    }

    #[test]
    fn tty_flags_match_docker_run_it() {
        let b = body(&["-it", "--rm", "busybox", "sh"]);
        for k in [
            "Tty",
            "OpenStdin",
            "StdinOnce",
            "AttachStdin",
            "AttachStdout",
        ] {
            assert_eq!(b[k], json!(true), "{k}");
        }
        assert_eq!(b["HostConfig"]["ConsoleSize"], json!([40, 120]));
        assert_eq!(b["Cmd"], json!(["sh"]));
        // `-t` alone: a TTY without stdin.
        let b = body(&["-t", "busybox"]);
        assert_eq!(b["Tty"], json!(true));
        assert_eq!(b["OpenStdin"], json!(false));
        assert_eq!(b["AttachStdin"], json!(false));
        // `-d -i`: stdin open but not attached.
        let b = body(&["-d", "-i", "busybox"]);
        assert_eq!(b["OpenStdin"], json!(true));
        assert_eq!(b["StdinOnce"], json!(false));
        assert_eq!(b["AttachStdout"], json!(false));
        let a = parse_run(&["--detach-keys", "ctrl-a,x", "--sig-proxy=false", "busybox"]);
        assert_eq!(a.detach_keys.as_deref(), Some("ctrl-a,x"));
        assert!(!a.sig_proxy);
        assert!(parse_run(&["busybox"]).sig_proxy);
    }

    #[test]
    fn health_init_restart_match_docker() {
        // The values docker 28 sent for the same flags (captured against a fake daemon).
        let b = body(&[
            "--health-cmd",
            "curl x",
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
            "--init",
            "--restart",
            "on-failure:3",
            "busybox",
            "true",
        ]);
        assert_eq!(
            b["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "curl x"], "Interval": 30_000_000_000i64,
                   "Timeout": 90_000_000_000i64, "StartPeriod": 5_000_000_000i64,
                   "StartInterval": 2_000_000_000i64, "Retries": 3})
        );
        assert_eq!(b["HostConfig"]["Init"], json!(true));
        assert_eq!(
            b["HostConfig"]["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        let b = body(&["--no-healthcheck", "--restart", "always", "busybox"]);
        assert_eq!(b["Healthcheck"], json!({"Test": ["NONE"]}));
        assert_eq!(b["HostConfig"].get("Init"), None);
        assert_eq!(
            b["HostConfig"]["RestartPolicy"],
            json!({"Name": "always", "MaximumRetryCount": 0})
        );
        let b = body(&["--init=false", "busybox"]);
        assert_eq!(b["HostConfig"]["Init"], json!(false));
        assert_eq!(b.get("Healthcheck"), None);
        assert_eq!(
            b["HostConfig"]["RestartPolicy"],
            json!({"Name": "no", "MaximumRetryCount": 0})
        );
        // Only the interval: no Test, as docker leaves it to the image.
        let b = body(&["--health-interval", "1m", "busybox"]);
        assert_eq!(b["Healthcheck"], json!({"Interval": 60_000_000_000i64}));
    }

    #[test]
    fn flag_errors_use_docker_words() {
        assert!(
            body_err(&["--no-healthcheck", "--health-retries", "2", "busybox"])
                .starts_with("wharf: --no-healthcheck conflicts with --health-* options\n")
        );
        assert!(body_err(&["--rm", "--restart", "always", "busybox"])
            .contains("conflicting options: cannot specify both --restart and --rm"));
        assert!(body_err(&["--health-retries", "-1", "busybox"])
            .contains("--health-retries cannot be negative"));
        assert!(body_err(&["--health-interval", "-5s", "busybox"])
            .contains("--health-interval cannot be negative"));
        assert!(body_err(&["--health-interval", "5", "busybox"])
            .contains("time: missing unit in duration \"5\""));
        assert!(
            body_err(&["--restart", ":3", "busybox"]).contains("no policy provided before colon")
        );
        assert!(body_err(&["--restart", "on-failure:x", "busybox"])
            .contains("maximum retry count must be an integer"));
    }
}
