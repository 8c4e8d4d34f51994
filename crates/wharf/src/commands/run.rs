//! `run`, `create` and `start`, following the docker CLI's call sequence for a foreground run:
//! create → attach (hijacked, before start so no output is lost) → wait (registered before
//! start so a fast exit is not missed) → start → stream until the daemon closes → exit code.

use super::{create_body, err_out, out, streams, tty, Ctx, Exit};
use crate::cli::{ContainerOpts, RunArgs, StartArgs};
use crate::registry::reference::Reference;
use anyhow::Result;
use serde_json::{json, Value};
use wharf_client::{encode, with_query, AttachOptions, ClientError};

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

/// `--env-file`: one `NAME=value` (or `NAME`, taken from our environment) per line.
pub fn read_env_file(file: &str) -> Result<Vec<String>> {
    create_body::read_kv_file(file, true)
}

pub use create_body::expand_env;

/// docker's `--cidfile`: refused when the file exists, written once the container exists.
/// `create` reports it as is (exit 1), `run` with its usage hint (125), as docker does.
fn claim_cidfile(path: &str, command: &str) -> Result<()> {
    if std::path::Path::new(path).exists() {
        let msg = format!(
            "container ID file found, make sure the other container isn't running or delete {path}"
        );
        if command == "create" {
            return Err(Exit::error(1, msg));
        }
        return Err(Exit::error(
            125,
            format!("wharf: {msg}\n\nRun 'wharf {command} --help' for more information"),
        ));
    }
    Ok(())
}

async fn create_container(
    ctx: &Ctx,
    o: &ContainerOpts,
    detach: bool,
    command: &str,
) -> Result<String> {
    let usage = |msg: String| {
        Exit::error(
            125,
            format!("wharf: {msg}\n\nRun 'wharf {command} --help' for more information"),
        )
    };
    let h = &o.host;
    match h.pull.as_str() {
        "missing" | "never" | "always" | "" => {}
        other => {
            return Err(usage(format!(
            "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
        )))
        }
    }
    if super::distribution::content_trust(h.disable_content_trust) {
        return Err(usage(super::distribution::NO_CONTENT_TRUST.into()));
    }
    // docker asks the daemon's OS (from the ping) before accepting Windows-only flags.
    let windows_only: Vec<&str> = [
        ("--cpu-count", h.cpu_count.is_some()),
        ("--cpu-percent", h.cpu_percent.is_some()),
        ("--io-maxbandwidth", h.io_maxbandwidth.is_some()),
        ("--io-maxiops", h.io_maxiops.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect();
    if !windows_only.is_empty() {
        let os = ctx
            .client
            .ping()
            .await
            .map_err(|e| Exit::error(1, ctx.msg(&e)))?
            .os_type
            .unwrap_or_default();
        if os != "windows" {
            let lines: Vec<String> = windows_only
                .iter()
                .map(|f| format!("\"{f}\" is only supported on a Docker daemon running on windows, but the Docker daemon is running on {os}"))
                .collect();
            return Err(Exit::error(1, lines.join("\n")));
        }
    }
    let inputs = create_body::Inputs {
        opts: o,
        detach,
        console: tty::size(),
    };
    let mut req = create_body::build(&inputs, command)?;
    if h.use_api_socket {
        let Some(path) = ctx.host.strip_prefix("unix://") else {
            return Err(usage(format!("flag --use-api-socket can only be used with unix sockets: docker endpoint {} incompatible", ctx.host)));
        };
        if let Some(Value::Array(m)) = req.body.pointer_mut("/HostConfig/Mounts") {
            m.push(json!({"Type": "bind", "Source": path, "Target": "/var/run/docker.sock", "BindOptions": {}}));
        }
    }
    if let Some(cid) = h.cidfile.as_deref().filter(|c| !c.is_empty()) {
        claim_cidfile(cid, command)?;
    }
    // docker's `create` returns its errors as they are (exit 1); `run` reports them with the
    // usage hint and an exit code chosen from their words.
    let fail = |msg: String| {
        if command == "create" {
            Exit::error(1, msg)
        } else {
            Exit::error(
                run_exit_code(&msg),
                format!("wharf: {msg}\n\nRun 'wharf {command} --help' for more information"),
            )
        }
    };
    // A bare image id names no repository: it is never pulled.
    let named = Reference::parse_any(&req.image).map_err(|e| fail(e.to_string()))?;
    if h.use_api_socket
        && !req.body["Env"].as_array().is_some_and(|env| {
            env.iter()
                .filter_map(Value::as_str)
                .any(|e| e.starts_with("DOCKER_CONFIG="))
        })
    {
        // docker copies the stored registry credentials into the container after creating
        // it (through the archive API, which wharfd does not serve): refused rather than
        // left out.
        let keys = super::distribution::read_config(ctx)
            .credential_keys()
            .map_err(|e| fail(format!("resolving credentials failed: {e}")))?;
        if !keys.is_empty() {
            return Err(usage(
                "--use-api-socket with stored registry credentials is not supported yet: wharf cannot copy them into the container".into(),
            ));
        }
    }
    let platform = h.platform.clone().unwrap_or_default();
    if h.pull == "always" {
        super::distribution::pull_for_create(ctx, &req.image, &platform, h.quiet)
            .await
            .map_err(fail)?;
    }
    let path = with_query("/containers/create", &req.query);
    let resp = match ctx.client.post_json::<Value>(&path, &req.body).await {
        Ok(v) => v,
        Err(e) => match &named {
            // Any 404, as docker: the image is the likely thing missing.
            Some(r) if e.is_not_found() && h.pull == "missing" => {
                if !h.quiet {
                    let shown = r.clone().with_default_tag().familiar_string();
                    err_out(format!("Unable to find image '{shown}' locally\n").as_bytes());
                }
                super::distribution::pull_for_create(ctx, &req.image, &platform, h.quiet)
                    .await
                    .map_err(fail)?;
                ctx.client
                    .post_json::<Value>(&path, &req.body)
                    .await
                    .map_err(|e| fail(ctx.msg(&e)))?
            }
            _ => return Err(fail(ctx.msg(&e))),
        },
    };
    if let Some(warnings) = resp.get("Warnings").and_then(Value::as_array) {
        for w in warnings.iter().filter_map(Value::as_str) {
            err_out(format!("WARNING: {w}\n").as_bytes());
        }
    }
    let id = resp
        .get("Id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Exit::error(125, "wharf: the daemon's create answer carried no Id"))?;
    if let Some(cid) = h.cidfile.as_deref().filter(|c| !c.is_empty()) {
        std::fs::write(cid, &id).map_err(|e| {
            Exit::error(
                125,
                format!("wharf: failed to write the container ID to the file: {e}"),
            )
        })?;
    }
    Ok(id)
}

pub async fn create(ctx: &Ctx, o: &ContainerOpts) -> Result<i32> {
    let id = create_container(ctx, o, false, "create").await?;
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
    if a.detach && !a.opts.host.attach.is_empty() {
        return Err(Exit::error(
            1,
            "conflicting options: cannot specify both --attach and --detach",
        ));
    }
    let id = create_container(ctx, &a.opts, a.detach, "run").await?;
    let start_path = format!("/containers/{}/start", encode(&id));
    if a.detach {
        if let Err(e) = ctx
            .call(wharf_client::Method::POST, &start_path, None, true)
            .await
        {
            if a.opts.rm {
                // As below: a container that never started is not auto-removed by the daemon.
                remove_quietly(ctx, &id).await;
            }
            return Err(with_help(ctx, &e, "run"));
        }
        out(format!("{id}\n").as_bytes());
        return Ok(0);
    }
    let condition = if a.opts.rm { "removed" } else { "next-exit" };
    let att = |s: &str| {
        a.opts.host.attach.is_empty()
            || a.opts.host.attach.iter().any(|x| x.eq_ignore_ascii_case(s))
    };
    let plan = Plan {
        stdin: a.opts.interactive
            || a.opts
                .host
                .attach
                .iter()
                .any(|x| x.eq_ignore_ascii_case("stdin")),
        stdout: att("stdout"),
        stderr: att("stderr"),
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
        remove_quietly(ctx, &id).await;
    }
    result
}

async fn remove_quietly(ctx: &Ctx, id: &str) {
    let path = format!("/containers/{}?force=1", encode(id));
    let _ = ctx
        .call(wharf_client::Method::DELETE, &path, None, false)
        .await;
}

/// What `attach_start_wait` does for `run` and `start -a`.
struct Plan {
    stdin: bool,
    stdout: bool,
    stderr: bool,
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
        stdout: p.stdout,
        stderr: p.stderr,
        detach_keys: p.detach_keys.clone(),
    };
    // Both must be registered before the start (no output lost, a fast exit not missed); they
    // do not depend on each other, so they travel together: one round trip instead of two.
    let (stream, waiter) = tokio::join!(
        ctx.client.attach_with(id, &opts),
        ctx.client.wait_registered(id, Some(p.condition))
    );
    let stream = stream.map_err(|e| fail(&e))?;
    let waiter = waiter.map_err(|e| fail(&e))?;
    // The pump runs from before the start, as docker's streamer does: piped stdin is written
    // at once (the daemon buffers it until the process exists) and no output is missed.
    let session = streams::Session {
        tty: p.tty,
        stdin: p.stdin,
        detach_keys: p.detach_keys.clone(),
        signals_end: !p.sig_proxy,
    };
    let pump = tokio::spawn(streams::pump(stream, session));
    let proxy = p
        .sig_proxy
        .then(|| streams::proxy_signals(ctx.client.clone(), id.to_string()));
    let start_path = format!("/containers/{}/start", encode(id));
    let started = std::time::Instant::now();
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
    crate::log::log(
        crate::log::Level::Debug,
        &format!(
            "[hijack] End of stdout ({:.1}ms after start was sent)",
            started.elapsed().as_secs_f64() * 1000.0
        ),
    );
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
    let status = waiter.result().await;
    crate::log::log(
        crate::log::Level::Debug,
        &format!(
            "wait ({}) answered {:.1}ms after start was sent",
            p.condition,
            started.elapsed().as_secs_f64() * 1000.0
        ),
    );
    match status {
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
            stdout: true,
            stderr: true,
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
}
