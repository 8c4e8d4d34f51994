//! `diff`, `export`, `commit`, `save` and `load`: a container's changes and filesystem, and
//! images, in and out as tars, with the docker CLI 28's requests, output and refusals.

use super::archive::go_err;
use super::arity::{check, Arity};
use super::atomic::AtomicFile;
use super::distribution::{show, Sink};
use super::{out, tty, Ctx, Exit};
use crate::cli::{CommitArgs, ExportArgs, LoadArgs, SaveArgs};
use crate::registry::reference::Reference;
use anyhow::Result;
use serde_json::Value;
use std::io::Write;
use wharf_client::{encode, header_str, read_body, ClientError, Method, NoBody, StreamingResponse};

const TERMINAL_REFUSAL: &str =
    "cowardly refusing to save to a terminal. Use the -o flag or redirect";

/// Go's `url.QueryEscape`: like `encode`, but a space is `+`.
pub fn query_escape(s: &str) -> String {
    encode(s).replace("%20", "+")
}

/// The client library refuses an empty (or all-blank) id before any request.
fn trim_id<'a>(kind: &str, id: &'a str) -> Result<&'a str> {
    let t = id.trim();
    if t.is_empty() {
        return Err(Exit::error(
            1,
            format!("invalid {kind} name or ID: value is empty"),
        ));
    }
    Ok(t)
}

/// The answer of a request whose body is streamed; a non-2xx status is the daemon's error.
async fn checked(
    ctx: &Ctx,
    resp: Result<StreamingResponse, ClientError>,
) -> Result<StreamingResponse> {
    let resp = resp.map_err(|e| ctx.err(1, &e))?;
    if !resp.status.is_success() {
        let raw = resp.collect().await.map_err(|e| ctx.err(1, &e))?;
        return Err(ctx.err(1, &raw.into_api_error()));
    }
    Ok(resp)
}

const CONTAINER: &[&str] = &["container"];
const IMAGE: &[&str] = &["image"];

pub async fn diff(ctx: &Ctx, args: &[String]) -> Result<i32> {
    check("diff", CONTAINER, "CONTAINER", Arity::Exact(1), args.len())?;
    let container = args[0].as_str();
    if container.is_empty() {
        return Err(Exit::error(1, "Container name cannot be empty"));
    }
    let id = trim_id("container", container)?;
    let changes = ctx
        .get(&format!("/containers/{}/changes", encode(id)))
        .await
        .map_err(|e| ctx.err(1, &e))?;
    let mut text = String::new();
    for c in changes.as_array().map(Vec::as_slice).unwrap_or_default() {
        let kind = match c.get("Kind").and_then(Value::as_u64) {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "",
        };
        let path = c.get("Path").and_then(Value::as_str).unwrap_or("");
        text.push_str(&format!("{kind} {path}\n"));
    }
    out(text.as_bytes());
    Ok(0)
}

/// Where a streamed tar goes: stdout (refused when it is a terminal) or `-o FILE`, written
/// aside and renamed into place at the end as docker's atomic writer does.
enum Output {
    Stdout,
    File(AtomicFile),
}

impl Output {
    fn open(path: Option<&str>, what: &str) -> Result<Output> {
        match path.filter(|p| !p.is_empty()) {
            None => {
                if tty::stdout_is_terminal() {
                    return Err(Exit::error(1, TERMINAL_REFUSAL));
                }
                Ok(Output::Stdout)
            }
            Some(p) => AtomicFile::create(p, 0o600)
                .map(Output::File)
                .map_err(|e| Exit::error(1, format!("failed to {what}: {e}"))),
        }
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Output::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(data)?;
                o.flush()
            }
            Output::File(f) => f.write(data),
        }
    }

    /// docker's deferred `Close`: the file is put in place even after a failed request.
    fn close(self) -> Result<()> {
        match self {
            Output::Stdout => Ok(()),
            Output::File(f) => f.commit().map_err(|e| Exit::error(1, go_err(&e))),
        }
    }
}

/// Copies a streamed answer into `output`; `output` is closed whatever happens, as docker's
/// deferred close does.
async fn stream_to(ctx: &Ctx, path: &str, mut output: Output) -> Result<i32> {
    let resp = ctx
        .client
        .send_stream::<NoBody>(Method::GET, path, None, &[])
        .await;
    let result = async {
        let mut resp = checked(ctx, resp).await?;
        while let Some(chunk) = resp.next_chunk().await {
            let chunk = chunk.map_err(|e| Exit::error(1, e.to_string()))?;
            output
                .write(&chunk)
                .map_err(|e| Exit::error(1, go_err(&e)))?;
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    let closed = output.close();
    result?;
    closed?;
    Ok(0)
}

pub async fn export(ctx: &Ctx, a: &ExportArgs) -> Result<i32> {
    check(
        "export",
        CONTAINER,
        "[OPTIONS] CONTAINER",
        Arity::Exact(1),
        a.args.len(),
    )?;
    let output = Output::open(a.output.as_deref(), "export container")?;
    let id = match trim_id("container", &a.args[0]) {
        Ok(id) => id,
        Err(e) => {
            output.close()?;
            return Err(e);
        }
    };
    stream_to(ctx, &format!("/containers/{}/export", encode(id)), output).await
}

/// `--platform` needs API 1.48, above the 1.44 this client speaks: refused by name, as the
/// docker CLI refuses it against a daemon that old.
fn refuse_platform(platform: Option<&str>) -> Result<()> {
    if platform.is_some_and(|p| !p.is_empty()) {
        return Err(Exit::error(
            1,
            format!(
                "\"--platform\" requires API version 1.48, but the Docker daemon API version is {}",
                wharf_api::version::API_VERSION
            ),
        ));
    }
    Ok(())
}

pub async fn save(ctx: &Ctx, a: &SaveArgs) -> Result<i32> {
    check(
        "save",
        IMAGE,
        "[OPTIONS] IMAGE [IMAGE...]",
        Arity::Min(1),
        a.images.len(),
    )?;
    let output = Output::open(a.output.as_deref(), "save image")?;
    if let Err(e) = refuse_platform(a.platform.as_deref()) {
        output.close()?;
        return Err(e);
    }
    let q: Vec<String> = a
        .images
        .iter()
        .map(|n| format!("names={}", query_escape(n)))
        .collect();
    stream_to(ctx, &format!("/images/get?{}", q.join("&")), output).await
}

pub async fn load(ctx: &Ctx, a: &LoadArgs) -> Result<i32> {
    check("load", IMAGE, "[OPTIONS]", Arity::None, a.args.len())?;
    let input: Box<dyn std::io::Read + Send> = match a.input.as_deref().filter(|i| !i.is_empty()) {
        None => {
            if tty::stdin_is_terminal() {
                return Err(Exit::error(
                    1,
                    "requested load from stdin, but stdin is empty",
                ));
            }
            Box::new(std::io::stdin())
        }
        Some(p) => Box::new(
            std::fs::File::open(p)
                .map_err(|e| Exit::error(1, format!("open {p}: {}", go_err(&e))))?,
        ),
    };
    refuse_platform(a.platform.as_deref())?;
    let quiet = a.quiet || !tty::stdout_is_terminal();
    let path = format!("/images/load?quiet={}", if quiet { 1 } else { 0 });
    let resp = ctx
        .client
        .send_stream(
            Method::POST,
            &path,
            Some(read_body(input)),
            &[("content-type", "application/x-tar")],
        )
        .await;
    let mut resp = checked(ctx, resp).await?;
    if header_str(&resp.headers, "content-type") == Some("application/json") {
        show(resp, Sink::Stdout, &mut |_| {})
            .await
            .map_err(|e| Exit::error(1, e))?;
    } else {
        while let Some(chunk) = resp.next_chunk().await {
            let chunk = chunk.map_err(|e| Exit::error(1, e.to_string()))?;
            out(&chunk);
        }
    }
    Ok(0)
}

pub async fn commit(ctx: &Ctx, a: &CommitArgs) -> Result<i32> {
    check(
        "commit",
        CONTAINER,
        "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
        Arity::Range(1, 2),
        a.args.len(),
    )?;
    let id = trim_id("container", &a.args[0])?;
    let (mut repo, mut tag) = (String::new(), String::new());
    if let Some(r) = a.args.get(1).filter(|r| !r.is_empty()) {
        let parsed =
            Reference::parse_normalized_named(r).map_err(|e| Exit::error(1, e.to_string()))?;
        if parsed.digest().is_some() {
            return Err(Exit::error(
                1,
                "refusing to create a tag with a digest reference",
            ));
        }
        let parsed = parsed.with_default_tag();
        tag = parsed.tag().unwrap_or("").to_string();
        repo = parsed.name();
    }
    // Go's `url.Values.Encode`: keys sorted, values query-escaped.
    let mut q = vec![format!(
        "author={}",
        query_escape(a.author.as_deref().unwrap_or(""))
    )];
    for c in &a.change {
        q.push(format!("changes={}", query_escape(c)));
    }
    q.push(format!(
        "comment={}",
        query_escape(a.message.as_deref().unwrap_or(""))
    ));
    q.push(format!("container={}", query_escape(id)));
    if !a.pause {
        q.push("pause=0".to_string());
    }
    q.push(format!("repo={}", query_escape(&repo)));
    q.push(format!("tag={}", query_escape(&tag)));
    let path = format!("/commit?{}", q.join("&"));
    let raw = ctx
        .call(Method::POST, &path, None, false)
        .await
        .map_err(|e| ctx.err(1, &e))?;
    let resp: Value = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
    let id = resp.get("Id").and_then(Value::as_str).unwrap_or("");
    out(format!("{id}\n").as_bytes());
    Ok(0)
}
