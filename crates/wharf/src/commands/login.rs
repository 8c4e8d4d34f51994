//! `login` and `logout` as docker 28 runs them: the daemon checks the credentials
//! (`POST /auth`), the CLI keeps them in docker's config file or credential helper (see
//! `registry::config`), under Docker Hub's index address or the registry's `host[:port]`.
//!
//! Two of docker's paths are not taken: Docker Hub's web (device code) login, which needs
//! Docker's OAuth service (wharf asks for a user name and password instead, as docker does
//! with `DOCKER_CLI_DISABLE_OAUTH_LOGIN=1`), and logging in from the client itself when the
//! daemon cannot be reached (wharf reports that it cannot reach the daemon).

use super::prompt::{self, To};
use super::{err_out, out, tty, Ctx, Exit};
use crate::cli::{LoginArgs, LogoutArgs};
use crate::registry::auth::{convert_to_hostname, AuthConfig, INDEX_SERVER};
use crate::registry::config::{self, ConfigFile};
use anyhow::Result;
use serde_json::Value;
use std::io::Read;
use wharf_client::Method;

/// Docker Hub's short name, which `login` takes to mean Docker Hub.
const DEFAULT_NAMESPACE: &str = "docker.io";

/// Where docker keeps the refresh token of a web login (erased at logout).
const REFRESH_TOKEN_KEY: &str = "https://index.docker.io/v1/refresh-token";

/// The daemon's answer to `POST /auth`.
struct LoginAnswer {
    status: String,
    identity_token: String,
}

async fn registry_login(
    ctx: &Ctx,
    auth: &AuthConfig,
) -> Result<LoginAnswer, wharf_client::ClientError> {
    // Go's encoder ends the body with a newline.
    let body = format!("{}\n", auth.to_json()).into_bytes();
    let raw = ctx
        .client
        .request(Method::POST, "/auth", Some(body))
        .await?
        .error_for_status()?;
    let v: Value = raw.json("/auth")?;
    let s = |k: &str| {
        v.as_object()
            .and_then(|o| o.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    Ok(LoginAnswer {
        status: s("Status"),
        identity_token: s("IdentityToken"),
    })
}

/// The config file for writing: one that cannot be read is not overwritten (docker would
/// replace it with what it understood of it).
fn writable_config(ctx: &Ctx) -> Result<ConfigFile> {
    let dir = config::dir(ctx.config_dir.as_deref());
    let mut cfg = ConfigFile::load(&dir).map_err(|e| {
        Exit::error(
            1,
            format!("{e}\nwharf: not writing credentials over a config file it cannot read"),
        )
    })?;
    cfg.detect_default_store();
    Ok(cfg)
}

fn store(cfg: &mut ConfigFile, auth: &AuthConfig) -> Result<()> {
    cfg.store_auth(auth, &mut std::io::stderr())
        .map_err(|e| Exit::error(1, format!("Error saving credentials: {e}")))
}

pub async fn login(ctx: &Ctx, a: &LoginArgs) -> Result<i32> {
    // `verifyLoginFlags`: what a flag given empty or twice means.
    if a.password_stdin {
        if a.password.is_some() {
            return Err(Exit::error(
                1,
                "conflicting options: cannot specify both --password and --password-stdin",
            ));
        }
        if a.username.is_none() {
            return Err(Exit::error(
                1,
                "the --password-stdin option requires --username to be set",
            ));
        }
    }
    if a.username.as_deref() == Some("") {
        return Err(Exit::error(1, "username is empty"));
    }
    if a.password.as_deref() == Some("") {
        return Err(Exit::error(1, "password is empty"));
    }
    let user = a.username.clone().unwrap_or_default();
    let mut password = a.password.clone().unwrap_or_default();
    if !password.is_empty() {
        err_out(b"WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n");
    }
    if a.password_stdin {
        let mut contents = Vec::new();
        std::io::stdin()
            .read_to_end(&mut contents)
            .map_err(|e| Exit::error(1, e.to_string()))?;
        let text = String::from_utf8_lossy(&contents).into_owned();
        let text = text.strip_suffix('\n').unwrap_or(&text);
        password = text.strip_suffix('\r').unwrap_or(text).to_string();
    }
    let server = match a.server.as_deref() {
        Some(s) if !s.is_empty() && s != DEFAULT_NAMESPACE => s.to_string(),
        _ => INDEX_SERVER.to_string(),
    };
    let is_default = server == INDEX_SERVER;
    let mut cfg = writable_config(ctx)?;

    // `GetDefaultAuthConfig`: the stored credentials, looked up only when no flag gave any.
    let server = if is_default {
        server
    } else {
        convert_to_hostname(&server)
    };
    let check_store = user.is_empty() && password.is_empty();
    let (stored, lookup_failed) = if check_store {
        match cfg.get_auth(&server) {
            Ok(a) => (a, false),
            Err(_) => (AuthConfig::default(), true),
        }
    } else {
        (AuthConfig::default(), false)
    };
    let stored = AuthConfig {
        server_address: server.clone(),
        identity_token: String::new(),
        ..stored
    };

    let mut result: Result<String> = Err(Exit::error(1, ""));
    let have_stored = !lookup_failed && !stored.username.is_empty() && !stored.password.is_empty();
    if have_stored {
        result = login_with_stored(ctx, &mut cfg, stored.clone()).await;
    }
    if !have_stored || result.is_err() {
        result = login_user(ctx, &mut cfg, &user, &password, &stored.username, &server).await;
    }
    let msg = result?;
    if !msg.is_empty() {
        out(format!("{msg}\n").as_bytes());
    }
    Ok(0)
}

async fn login_with_stored(
    ctx: &Ctx,
    cfg: &mut ConfigFile,
    mut auth: AuthConfig,
) -> Result<String> {
    let mut intro = "Authenticating with existing credentials...".to_string();
    if !auth.username.is_empty() {
        intro.push_str(&format!(" [Username: {}]", auth.username));
    }
    intro.push('\n');
    err_out(intro.as_bytes());
    prompt::note(
        To::Stderr,
        "To login with a different account, run 'wharf logout' followed by 'wharf login'",
    );
    err_out(b"\n\n");
    let answer = registry_login(ctx, &auth).await;
    let (status, failure) = match answer {
        Ok(a) => {
            if !a.identity_token.is_empty() {
                auth.password.clear();
                auth.identity_token = a.identity_token;
            }
            (a.status, None)
        }
        Err(e) => {
            if e.status() == Some(401) {
                err_out(b"Stored credentials invalid or expired\n");
            } else {
                err_out(format!("Login did not succeed, error: {}\n", ctx.msg(&e)).as_bytes());
            }
            (String::new(), Some(e))
        }
    };
    store(cfg, &auth)?;
    match failure {
        Some(e) => Err(ctx.err(1, &e)),
        None => Ok(status),
    }
}

async fn login_user(
    ctx: &Ctx,
    cfg: &mut ConfigFile,
    user: &str,
    password: &str,
    default_username: &str,
    server: &str,
) -> Result<String> {
    if (user.is_empty() || password.is_empty()) && !tty::stdin_is_terminal() {
        return Err(Exit::error(
            1,
            "Error: Cannot perform an interactive login from a non TTY device",
        ));
    }
    let mut auth = prompt::credentials(user, password, default_username, server)?;
    let answer = registry_login(ctx, &auth)
        .await
        .map_err(|e| ctx.err(1, &e))?;
    if !answer.identity_token.is_empty() {
        auth.password.clear();
        auth.identity_token = answer.identity_token;
    }
    store(cfg, &auth)?;
    Ok(answer.status)
}

pub async fn logout(ctx: &Ctx, a: &LogoutArgs) -> Result<i32> {
    let (server, is_default) = match a.server.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => (s.to_string(), false),
        None => (INDEX_SERVER.to_string(), true),
    };
    let mut regs = vec![server.clone()];
    let mut hostname = server.clone();
    if !is_default {
        hostname = convert_to_hostname(&server);
        // Older CLIs stored the same registry under these spellings.
        regs.push(hostname.clone());
        regs.push(format!("http://{hostname}"));
        regs.push(format!("https://{hostname}"));
    }
    let dir = config::dir(ctx.config_dir.as_deref());
    let mut cfg = ConfigFile::load_or_warn(&dir, &mut std::io::stderr());
    if is_default {
        if let Err(e) = forget_web_login(&mut cfg) {
            err_out(format!("WARNING: {e}\n").as_bytes());
        }
    }
    out(format!("Removing login credentials for {hostname}\n").as_bytes());
    let mut errs = std::collections::BTreeMap::new();
    for r in &regs {
        if let Err(e) = cfg.erase(r) {
            errs.insert(r.clone(), e);
        }
    }
    // Some spellings are the same key: docker counts failures per key against the list, so
    // then the warning never shows. Kept as docker has it.
    if errs.len() == regs.len() {
        let mut text = "WARNING: could not erase credentials:\n".to_string();
        for (k, v) in &errs {
            text.push_str(&format!("{k}: {v}\n"));
        }
        err_out(text.as_bytes());
    }
    Ok(0)
}

/// A web login's refresh token (`<token>..<client id>`), kept by docker beside the access
/// token: erased. Docker also revokes it with Docker's OAuth service, which wharf does not
/// call; it says so.
fn forget_web_login(cfg: &mut ConfigFile) -> Result<(), String> {
    let refresh = cfg.get_auth(REFRESH_TOKEN_KEY)?;
    if refresh.password.is_empty() || refresh.password.split("..").count() != 2 {
        return Ok(());
    }
    let erased = [cfg.erase(INDEX_SERVER), cfg.erase(REFRESH_TOKEN_KEY)];
    if let Some(Err(e)) = erased.into_iter().find(Result::is_err) {
        return Err(format!("failed to erase tokens: {e}"));
    }
    Err("credentials erased successfully, but there was a failure to revoke the OAuth refresh token with the tenant: wharf does not revoke Docker Hub web-login tokens".into())
}
