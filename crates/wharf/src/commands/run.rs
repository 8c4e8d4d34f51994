//! `run`, `create` and `start`, following the docker CLI's call sequence for a foreground run:
//! create → attach (hijacked, before start so no output is lost) → wait (registered before
//! start so a fast exit is not missed) → start → stream until the daemon closes → exit code.

use super::{err_out, out, Ctx, Exit};
use crate::cli::{ContainerOpts, RunArgs, StartArgs};
use anyhow::{Context as _, Result};
use serde_json::{json, Map, Value};
use wharf_api::stdcopy::StdStream;
use wharf_client::{encode, AttachReader, AttachWriter, ClientError};

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

/// The create body docker's `run`/`create` flags produce.
pub fn create_body(o: &ContainerOpts, attach: bool) -> Result<(String, Value)> {
    let (image, cmd) = o
        .image_and_cmd
        .split_first()
        .context("\"run\" requires at least 1 argument")?;
    let mut env = Vec::new();
    for file in &o.env_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Exit::error(125, format!("wharf: open {file}: {e}")))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            env.push(expand_env(line));
        }
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
        },
    });
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

/// `-e NAME` takes NAME's value from our environment, as docker does.
fn expand_env(e: &str) -> String {
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
    if o.tty {
        return Err(Exit::error(
            125,
            "wharf: a TTY (-t) is not supported yet; run without -t",
        ));
    }
    let (image, body) = create_body(o, attach)?;
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

pub async fn run(ctx: &Ctx, a: &RunArgs) -> Result<i32> {
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
    let result = attach_start_wait(ctx, &id, a.opts.interactive, condition, "run").await;
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

/// Attach, register the wait, start, then pump output (and stdin) until the daemon closes the
/// stream; the container's exit code is the result.
async fn attach_start_wait(
    ctx: &Ctx,
    id: &str,
    stdin: bool,
    condition: &str,
    command: &str,
) -> Result<i32> {
    let is_run = command == "run";
    let fail = |e: &ClientError| {
        if is_run {
            with_help(ctx, e, command)
        } else {
            ctx.err(1, e)
        }
    };
    let stream = ctx.client.attach(id, stdin).await.map_err(|e| fail(&e))?;
    let waiter = ctx
        .client
        .wait_registered(id, Some(condition))
        .await
        .map_err(|e| fail(&e))?;
    let (reader, writer) = stream.split();
    let start_path = format!("/containers/{}/start", encode(id));
    if let Err(e) = ctx
        .call(wharf_client::Method::POST, &start_path, None, true)
        .await
    {
        return Err(fail(&e));
    }
    let pump_stdin = if stdin {
        Some(tokio::spawn(forward_stdin(writer)))
    } else {
        drop(writer);
        None
    };
    let proxy = tokio::spawn(proxy_signals(ctx.client.clone(), id.to_string()));
    pump_output(reader).await;
    proxy.abort();
    if let Some(task) = pump_stdin {
        task.abort();
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

async fn pump_output(mut reader: AttachReader) {
    while let Some(frame) = reader.next_frame().await {
        match frame {
            Ok((StdStream::Stderr, data)) => err_out(&data),
            Ok((_, data)) => out(&data),
            Err(e) => {
                err_out(format!("wharf: reading the container's output: {e}\n").as_bytes());
                break;
            }
        }
    }
}

/// docker's `--sig-proxy` (on by default without a TTY): Ctrl-C or a SIGTERM sent to the CLI
/// goes to the container, whose exit then ends the run.
async fn proxy_signals(client: wharf_client::Client, id: String) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    loop {
        let sig = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        let _ = client.kill(&id, Some(sig)).await;
    }
}

/// Piped stdin goes to the container; at EOF the write side is half-closed so the container
/// sees EOF while its output keeps streaming.
async fn forward_stdin(mut writer: AttachWriter) {
    use tokio::io::AsyncReadExt;
    let mut input = tokio::io::stdin();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match input.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if writer.write_stdin(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = writer.shutdown_write().await;
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
        let condition = if auto_remove { "removed" } else { "next-exit" };
        return attach_start_wait(ctx, &id, a.interactive, condition, "start").await;
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
