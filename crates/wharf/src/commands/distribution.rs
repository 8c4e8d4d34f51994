//! `pull` and `push` as docker 28 runs them (content trust off): the reference parsed and
//! normalised in docker's words, the registry's stored credentials sent as `X-Registry-Auth`,
//! the daemon's JSON message stream drawn by `jsonmessage`, and on a 401 from the daemon
//! docker's "Login prior to pull:" prompt and one retry. Also the pull `run`/`create` make
//! for an image that is not there.

use super::prompt::{self, To};
use super::{err_out, out, Ctx, Exit};
use crate::cli::{PullArgs, PushArgs};
use crate::jsonmessage::{decode, Decoder, Display, Term};
use crate::registry::auth::{config_key, convert_to_hostname, AuthConfig, INDEX_SERVER};
use crate::registry::config::{self, ConfigFile};
use crate::registry::reference::Reference;
use anyhow::Result;
use serde_json::Value;
use wharf_client::{encode, with_query, ClientError, Method, StreamingResponse};

/// Where a stream is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
    /// `-q`: read to the end (errors still count), shown nowhere.
    Discard,
}

/// Draws the daemon's stream until it ends; the error is the text docker prints.
pub async fn show(
    mut resp: StreamingResponse,
    sink: Sink,
    aux: &mut dyn FnMut(&Value),
) -> Result<(), String> {
    let (writer, term): (Box<dyn std::io::Write>, Term) = match sink {
        Sink::Stdout => (Box::new(std::io::stdout()), Term::for_fd(1)),
        Sink::Stderr => (Box::new(std::io::stderr()), Term::for_fd(2)),
        Sink::Discard => (Box::new(std::io::sink()), Term::nowhere()),
    };
    let mut display = Display::new(writer, term);
    let mut dec = Decoder::default();
    while let Some(chunk) = resp.next_chunk().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        dec.feed(&chunk);
        while let Some(v) = dec.next_value() {
            let m = decode(&v.map_err(|e| e.0)?).map_err(|e| e.0)?;
            display.show(&m, aux).map_err(|e| e.0)?;
        }
    }
    dec.finish().map_err(|e| e.0)
}

/// The credentials docker sends for `r`'s registry (`ResolveAuthConfig`): a helper that
/// fails is passed over, as docker passes over it.
fn resolve_auth(cfg: &ConfigFile, r: &Reference) -> AuthConfig {
    let key = config_key(r.domain());
    cfg.get_auth(&key).unwrap_or_else(|_| cfg.file_get(&key))
}

/// The config file as docker reads it at start, warning on stderr when it is unreadable.
pub fn read_config(ctx: &Ctx) -> ConfigFile {
    let dir = config::dir(ctx.config_dir.as_deref());
    ConfigFile::load_or_warn(&dir, &mut std::io::stderr())
}

/// `RegistryAuthenticationPrivilegedFunc`: after a 401, docker asks for credentials and
/// retries once with them. (docker names Docker Hub's address in the retry whatever the
/// registry; so does this.)
fn request_privilege(cfg: &ConfigFile, r: &Reference, command: &str) -> Result<String> {
    let key = config_key(r.domain());
    let is_default = key == INDEX_SERVER;
    out(format!("\nLogin prior to {command}:\n").as_bytes());
    let server = if is_default {
        key.clone()
    } else {
        convert_to_hostname(&key)
    };
    let username = match cfg.get_auth(&server) {
        Ok(a) => a.username,
        Err(e) => {
            err_out(
                format!("Unable to retrieve stored credentials for {INDEX_SERVER}, error: {e}.\n")
                    .as_bytes(),
            );
            String::new()
        }
    };
    let auth = prompt::credentials("", "", &username, INDEX_SERVER)?;
    Ok(auth.header())
}

/// Sends a pull or push with `header`; a 401 gets docker's prompt and one more try.
async fn send_privileged(
    ctx: &Ctx,
    path: &str,
    header: String,
    cfg: &ConfigFile,
    r: &Reference,
    command: &str,
) -> Result<StreamingResponse> {
    let send = |h: String| async move {
        ctx.client
            .stream_with_headers(Method::POST, path, &[("X-Registry-Auth", h.as_str())])
            .await
    };
    let mut resp = send(header).await;
    if matches!(&resp, Err(e) if e.status() == Some(401)) {
        let header = request_privilege(cfg, r, command)?;
        resp = send(header).await;
    }
    resp.map_err(|e| {
        let mut msg = ctx.msg(&e);
        if command == "pull" && msg.contains("when fetching 'plugin'") {
            msg.push_str(" - Use `wharf plugin install`");
        }
        Exit::error(1, msg)
    })
}

/// Whether docker would verify or sign (`ContentTrustEnabled`): `--disable-content-trust=false`,
/// or without the flag a `DOCKER_CONTENT_TRUST` that is set and not false.
pub fn content_trust(flag: Option<bool>) -> bool {
    match flag {
        Some(disable) => !disable,
        None => match std::env::var("DOCKER_CONTENT_TRUST") {
            Ok(v) if !v.is_empty() => {
                !matches!(v.as_str(), "0" | "f" | "F" | "false" | "FALSE" | "False")
            }
            _ => false,
        },
    }
}

/// The words for asking for content trust, which wharf does not have.
pub const NO_CONTENT_TRUST: &str = "content trust (image signature verification, --disable-content-trust=false or DOCKER_CONTENT_TRUST) is not supported";

fn refuse_trust(flag: Option<bool>) -> Result<()> {
    if content_trust(flag) {
        return Err(Exit::error(1, NO_CONTENT_TRUST));
    }
    Ok(())
}

/// `--platform`, else `DOCKER_DEFAULT_PLATFORM`, as docker's platform flag defaults.
fn platform_or_default(flag: &Option<String>) -> String {
    match flag {
        Some(p) => p.clone(),
        None => std::env::var("DOCKER_DEFAULT_PLATFORM").unwrap_or_default(),
    }
}

fn parse(name: &str) -> Result<Reference> {
    Reference::parse_normalized_named(name).map_err(|e| Exit::error(1, e.to_string()))
}

/// `fromImage`, `platform`, `tag` in Go's sorted query order.
fn create_query(r: &Reference, with_tag: bool, platform: &str) -> String {
    let mut q = vec![format!("fromImage={}", encode(&r.name()))];
    if !platform.is_empty() {
        q.push(format!("platform={}", encode(&platform.to_lowercase())));
    }
    if with_tag {
        q.push(format!("tag={}", encode(&r.api_tag())));
    }
    with_query("/images/create", &q)
}

pub async fn pull(ctx: &Ctx, a: &PullArgs) -> Result<i32> {
    refuse_trust(a.disable_content_trust)?;
    let mut r = parse(&a.name)?;
    if a.all_tags && !r.is_name_only() {
        return Err(Exit::error(1, "tag can't be used with --all-tags/-a"));
    }
    if !a.all_tags && r.is_name_only() {
        r = r.with_default_tag();
        if !a.quiet {
            out(b"Using default tag: latest\n");
        }
    }
    let cfg = read_config(ctx);
    let header = resolve_auth(&cfg, &r).header();
    let path = create_query(&r, !a.all_tags, &platform_or_default(&a.platform));
    let resp = send_privileged(ctx, &path, header, &cfg, &r, "pull").await?;
    let sink = if a.quiet { Sink::Discard } else { Sink::Stdout };
    show(resp, sink, &mut |_| {})
        .await
        .map_err(|e| Exit::error(1, e))?;
    out(format!("{r}\n").as_bytes());
    Ok(0)
}

/// What `run` and `create` do for an image that is not there (docker's `pullImage`): the
/// stream on stderr (nowhere with `-q`), credentials for the image's registry, no retry on
/// a 401. The error is the text docker reports.
pub async fn pull_for_create(
    ctx: &Ctx,
    image: &str,
    platform: &str,
    quiet: bool,
) -> Result<(), String> {
    let r = Reference::parse_normalized_named(image).map_err(|e| e.to_string())?;
    let cfg = read_config(ctx);
    let auth = cfg.get_auth(&config_key(r.domain()))?;
    let path = create_query(&r, true, platform);
    let resp = ctx
        .client
        .stream_with_headers(
            Method::POST,
            &path,
            &[("X-Registry-Auth", auth.header().as_str())],
        )
        .await
        .map_err(|e: ClientError| ctx.msg(&e))?;
    let sink = if quiet { Sink::Discard } else { Sink::Stderr };
    show(resp, sink, &mut |_| {}).await
}

pub async fn push(ctx: &Ctx, a: &PushArgs) -> Result<i32> {
    refuse_trust(a.disable_content_trust)?;
    if a.platform.is_some() {
        // docker checks a flag's API version before the command runs: `--platform` needs
        // 1.46, and wharf-client negotiates 1.44 at most.
        let version = ctx.client.api_version().await.map_err(|e| ctx.err(1, &e))?;
        return Err(Exit::error(
            1,
            format!(
                "\"--platform\" requires API version 1.46, but the Docker daemon API version is {version}"
            ),
        ));
    }
    let mut r = parse(&a.name)?;
    if a.all_tags && !r.is_name_only() {
        return Err(Exit::error(1, "tag can't be used with --all-tags/-a"));
    }
    if !a.all_tags && r.is_name_only() {
        r = r.with_default_tag();
        if !a.quiet {
            out(b"Using default tag: latest\n");
        }
    }
    let cfg = read_config(ctx);
    let header = resolve_auth(&cfg, &r).header();
    if r.digest().is_some() {
        return Err(Exit::error(1, "cannot push a digest reference"));
    }
    let mut path = format!("/images/{}/push", r.name());
    if !a.all_tags {
        if let Some(tag) = r.tag() {
            path.push_str(&format!("?tag={}", encode(tag)));
        }
    }
    let resp = send_privileged(ctx, &path, header, &cfg, &r, "push").await?;
    let mut notes = Vec::new();
    let sink = if a.quiet { Sink::Discard } else { Sink::Stdout };
    let shown = show(resp, sink, &mut |aux| push_notes(aux, &mut notes)).await;
    if shown.is_ok() && a.quiet {
        out(format!("{r}\n").as_bytes());
    }
    for n in &notes {
        prompt::note(To::Stdout, n);
    }
    shown.map_err(|e| Exit::error(1, e))?;
    Ok(0)
}

/// docker's push `aux` handling: the digest record is for content trust (off), two kinds of
/// note are for the user once the push is over.
fn push_notes(aux: &Value, notes: &mut Vec<String>) {
    let get = |k: &str| {
        aux.as_object().and_then(|o| {
            o.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        })
    };
    let digest_of = |k: &str| {
        get(k)
            .and_then(|d| d.get("digest"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if get("manifestPushedInsteadOfIndex").and_then(Value::as_bool) == Some(true) {
        notes.push(format!(
            "Not all multiplatform-content is present and only the available single-platform image was pushed\n\x1b[31m{}\x1b[0m -> \x1b[32m{}\x1b[0m",
            digest_of("originalIndex"),
            digest_of("selectedManifest"),
        ));
    }
    if get("contentMissing").and_then(Value::as_bool) == Some(true) {
        notes.push(
            "You're trying to push a manifest list/index which \n\t\t\t\treferences multiple platform specific manifests, but not all of them are available locally\n\t\t\t\tor available to the remote repository.\n\n\t\t\t\tMake sure you have all the referenced content and try again.\n\n\t\t\t\tYou can also push only a single platform specific manifest directly by specifying the platform you want to push with the --platform flag."
                .to_string(),
        );
    }
}
