//! `exec` and `attach`, following the docker CLI's call sequences:
//! exec: inspect → `POST /containers/{c}/exec` → `POST /exec/{id}/start` (hijacked, or
//! `{"Detach":true}` for `-d`) → [TTY: `POST /exec/{id}/resize`] → `GET /exec/{id}/json`.
//! attach: wait (registered first, so the exit is not missed) → inspect → attach → inspect.

use super::run::{check_tty, expand_env, read_env_file};
use super::{err_out, streams, tty, Ctx, Exit};
use crate::cli::{AttachArgs, ExecArgs};
use anyhow::Result;
use serde_json::{json, Value};
use wharf_client::{AttachOptions, ClientError};

/// The exec create body docker sends (`container.ExecOptions`).
pub fn exec_body(a: &ExecArgs, detach_keys: Option<&str>, console: (u16, u16)) -> Result<Value> {
    let mut env = Vec::new();
    for file in &a.env_file {
        env.extend(read_env_file(file)?);
    }
    env.extend(a.env.iter().map(|e| expand_env(e)));
    let attach = !a.detach;
    let mut body = json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": attach && a.interactive,
        "AttachStderr": attach,
        "AttachStdout": attach,
        "Detach": a.detach,
        "DetachKeys": detach_keys.unwrap_or_default(),
        "Env": if env.is_empty() { Value::Null } else { json!(env) },
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": a.command,
    });
    if a.tty {
        body["ConsoleSize"] = json!([console.0, console.1]);
    }
    Ok(body)
}

/// The exec start body (`container.ExecStartOptions`).
pub fn exec_start_body(detach: bool, tty: bool, console: (u16, u16)) -> Value {
    let mut body = json!({"Detach": detach, "Tty": tty});
    if tty {
        body["ConsoleSize"] = json!([console.0, console.1]);
    }
    body
}

/// docker's hijack error: a start that did not switch protocols is reported by its status.
fn hijack_error(ctx: &Ctx, e: &ClientError) -> anyhow::Error {
    match e {
        ClientError::Api { status, .. } => {
            Exit::error(1, format!("unable to upgrade to tcp, received {status}"))
        }
        ClientError::NotUpgraded { status, .. } => {
            Exit::error(1, format!("unable to upgrade to tcp, received {status}"))
        }
        other => ctx.err(1, other),
    }
}

pub async fn exec(ctx: &Ctx, a: &ExecArgs) -> Result<i32> {
    let container = a.container.as_str();
    let detach_keys = super::detach_keys(&a.detach_keys);
    // Inspect first, as docker does, so "No such container" wins over any other error.
    ctx.get(&format!(
        "/containers/{}/json",
        wharf_client::encode(container)
    ))
    .await
    .map_err(|e| ctx.err(1, &e))?;
    let stdin = !a.detach && a.interactive;
    if !a.detach {
        check_tty(stdin, a.tty)?;
    }
    let console = tty::size();
    let body = exec_body(a, detach_keys.as_deref(), console)?;
    let id = ctx
        .client
        .exec_create(container, &body)
        .await
        .map_err(|e| ctx.err(1, &e))?;
    let start = exec_start_body(a.detach, a.tty, console);
    if a.detach {
        ctx.client
            .exec_start_detached(&id, &start)
            .await
            .map_err(|e| ctx.err(1, &e))?;
        return Ok(0);
    }
    let stream = ctx
        .client
        .exec_start(&id, &start, stdin)
        .await
        .map_err(|e| hijack_error(ctx, &e))?;
    let session = streams::Session {
        tty: a.tty,
        stdin,
        detach_keys: detach_keys.clone(),
        // exec has no signal proxy.
        signals_end: true,
    };
    let pump = tokio::spawn(streams::pump(stream, session));
    // docker resizes an exec only when its stdin is a terminal.
    let monitor = (a.tty && tty::stdin_is_terminal()).then(|| {
        streams::monitor_tty_size(ctx.client.clone(), streams::ResizeTarget::Exec(id.clone()))
    });
    let end = pump.await.unwrap_or(streams::End::Output);
    tty::restore_terminal();
    if let Some(t) = monitor {
        t.abort();
    }
    let info = ctx.client.exec_inspect(&id).await;
    let detached = match (end, &info) {
        (streams::End::Detached, _) => true,
        (streams::End::OutputAfterKeys, Ok(i)) => i.running,
        _ => false,
    };
    if detached {
        return Err(Exit::error(1, streams::ESCAPE_MESSAGE));
    }
    match info {
        Ok(info) => Ok(info.exit_code.unwrap_or(0) as i32),
        // The daemon went away under the session (docker's `IsErrConnectionFailed`): a new
        // connection is refused, a pooled one fails mid-request.
        Err(ClientError::Connect { .. } | ClientError::Http(_)) => Ok(-1),
        Err(e) => Err(ctx.err(1, &e)),
    }
}

/// docker's `inspectContainerAndCheckState`.
async fn running_container(ctx: &Ctx, name: &str) -> Result<Value> {
    let info = ctx
        .get(&format!("/containers/{}/json", wharf_client::encode(name)))
        .await
        .map_err(|e| ctx.err(1, &e))?;
    let state = |k: &str| {
        info.pointer(&format!("/State/{k}"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    if !state("Running") {
        return Err(Exit::error(
            1,
            "You cannot attach to a stopped container, start it first",
        ));
    }
    if state("Paused") {
        return Err(Exit::error(
            1,
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    if state("Restarting") {
        return Err(Exit::error(
            1,
            "You cannot attach to a restarting container, wait until it is running",
        ));
    }
    Ok(info)
}

pub async fn attach(ctx: &Ctx, a: &AttachArgs) -> Result<i32> {
    let name = a.container.as_str();
    let detach_keys = super::detach_keys(&a.detach_keys);
    let waiter = ctx
        .client
        .wait_registered(name, None)
        .await
        .map_err(|e| ctx.err(1, &e))?;
    let info = running_container(ctx, name).await?;
    let flag = |p: &str| info.pointer(p).and_then(Value::as_bool).unwrap_or(false);
    let tty_mode = flag("/Config/Tty");
    check_tty(!a.no_stdin, tty_mode)?;
    let stdin = !a.no_stdin && flag("/Config/OpenStdin");
    let proxy = (a.sig_proxy && !tty_mode)
        .then(|| streams::proxy_signals(ctx.client.clone(), name.to_string()));
    let opts = AttachOptions {
        stdin,
        stdout: true,
        stderr: true,
        detach_keys: detach_keys.clone(),
    };
    let stream = ctx
        .client
        .attach_with(name, &opts)
        .await
        .map_err(|e| ctx.err(1, &e))?;
    // The container may have stopped between the first inspect and the attach; an attach to
    // a stopped container would never end.
    running_container(ctx, name).await?;
    let monitor = if tty_mode && tty::stdout_is_terminal() {
        // docker's `resizeTTY`: one size off first, then the real one, so a shell that is
        // re-attached in an unchanged terminal still gets a SIGWINCH and redraws its prompt.
        let (h, w) = tty::size();
        if h != 0 || w != 0 {
            let _ = ctx
                .client
                .resize(name, h.saturating_add(1), w.saturating_add(1))
                .await;
        }
        Some(streams::monitor_tty_size(
            ctx.client.clone(),
            streams::ResizeTarget::Container(name.to_string()),
        ))
    } else {
        None
    };
    let session = streams::Session {
        tty: tty_mode,
        stdin,
        detach_keys: detach_keys.clone(),
        signals_end: proxy.is_none(),
    };
    let end = streams::pump(stream, session).await;
    tty::restore_terminal();
    if let Some(t) = monitor {
        t.abort();
    }
    if let Some(t) = proxy {
        t.abort();
    }
    if end == streams::End::Detached
        || (end == streams::End::OutputAfterKeys && super::run::still_running(ctx, name).await)
    {
        return Err(Exit::error(1, streams::ESCAPE_MESSAGE));
    }
    match waiter.result().await {
        Ok(status) => {
            if let Some(msg) = status.error.as_ref().map(|e| e.message.clone()) {
                if !msg.is_empty() {
                    return Err(Exit::error(1, msg));
                }
            }
            Ok(status.status_code as i32)
        }
        Err(e) => {
            err_out(format!("{}\n", ctx.msg(&e)).as_bytes());
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse_exec(args: &[&str]) -> ExecArgs {
        let mut argv = vec!["wharf", "exec"];
        argv.extend_from_slice(args);
        match crate::cli::Cli::try_parse_from(argv).map(|c| c.cmd) {
            Ok(Some(crate::cli::Cmd::Exec(a))) => a,
            other => panic!("not an exec: {other:?}"),
        }
    }

    #[test]
    fn exec_bodies_match_docker() {
        // What docker 28 sent for the same command lines (captured against a fake daemon).
        let a = parse_exec(&[
            "-it",
            "-e",
            "A=1",
            "-u",
            "1000",
            "-w",
            "/tmp",
            "--privileged",
            "x",
            "sh",
        ]);
        assert_eq!(a.container, "x");
        assert_eq!(
            exec_body(&a, None, (33, 77)).unwrap(),
            json!({"User": "1000", "Privileged": true, "Tty": true, "ConsoleSize": [33, 77],
                   "AttachStdin": true, "AttachStderr": true, "AttachStdout": true,
                   "Detach": false, "DetachKeys": "", "Env": ["A=1"], "WorkingDir": "/tmp",
                   "Cmd": ["sh"]})
        );
        assert_eq!(
            exec_start_body(false, true, (33, 77)),
            json!({"Detach": false, "Tty": true, "ConsoleSize": [33, 77]})
        );
        let a = parse_exec(&["-d", "x", "sleep", "1"]);
        assert_eq!(
            exec_body(&a, None, (0, 0)).unwrap(),
            json!({"User": "", "Privileged": false, "Tty": false, "AttachStdin": false,
                   "AttachStderr": false, "AttachStdout": false, "Detach": true,
                   "DetachKeys": "", "Env": null, "WorkingDir": "", "Cmd": ["sleep", "1"]})
        );
        assert_eq!(
            exec_start_body(true, false, (0, 0)),
            json!({"Detach": true, "Tty": false})
        );
        // Flags after the command belong to the command.
        let a = parse_exec(&["--detach-keys", "ctrl-a,x", "x", "sh", "-c", "ls -l"]);
        assert_eq!(a.command, vec!["sh", "-c", "ls -l"]);
        assert_eq!(
            exec_body(&a, a.detach_keys.as_deref(), (0, 0)).unwrap()["DetachKeys"],
            json!("ctrl-a,x")
        );
    }

    #[test]
    fn attach_and_events_flags_parse() {
        let argv = [
            "wharf",
            "attach",
            "--no-stdin",
            "--sig-proxy=false",
            "--detach-keys",
            "ctrl-x",
            "c",
        ];
        match crate::cli::Cli::try_parse_from(argv).map(|c| c.cmd) {
            Ok(Some(crate::cli::Cmd::Attach(a))) => {
                assert!(a.no_stdin && !a.sig_proxy);
                assert_eq!(a.detach_keys.as_deref(), Some("ctrl-x"));
                assert_eq!(a.container, "c");
            }
            other => panic!("not an attach: {other:?}"),
        }
        let argv = [
            "wharf",
            "events",
            "-f",
            "type=container",
            "--filter",
            "event=start",
            "--since",
            "5m",
            "--format",
            "json",
        ];
        match crate::cli::Cli::try_parse_from(argv).map(|c| c.cmd) {
            Ok(Some(crate::cli::Cmd::Events(a))) => {
                assert_eq!(a.filter, vec!["type=container", "event=start"]);
                assert_eq!(a.since.as_deref(), Some("5m"));
                assert_eq!(a.format.as_deref(), Some("json"));
            }
            other => panic!("not events: {other:?}"),
        }
    }
}
