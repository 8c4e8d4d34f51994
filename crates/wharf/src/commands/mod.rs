//! Command implementations and what they share: the daemon connection, docker's error
//! wording and exit codes, filters.

pub mod archive;
pub mod arity;
pub mod atomic;
pub mod container;
pub mod context;
pub mod cp;
pub mod create_body;
pub mod distribution;
pub mod events;
pub mod exec;
pub mod image;
pub mod login;
pub mod prompt;
pub mod run;
pub mod streams;
pub mod system;
pub mod transfer;
pub mod tty;
pub mod volume;

use crate::cli::{Cli, Cmd, ContainerCmd, ImageCmd, VolumeCmd};
use crate::host::{self, HostInputs};
use anyhow::{bail, Result};
use serde_json::{Map, Value};
use wharf_client::{
    Client, ClientError, ClientOptions, Method, RawResponse, TlsOptions, Trace, TraceEvent,
};

pub use crate::exit::{err_out, out, Exit};

/// docker's text for a failed call: the daemon's own message behind docker's prefix, or the
/// "cannot connect" hint.
pub fn client_message(e: &ClientError, host: Option<&str>) -> String {
    match e {
        ClientError::Api { message, .. } => format!("Error response from daemon: {message}"),
        ClientError::Connect { addr, .. } => format!(
            "Cannot connect to the wharf daemon at {}. Is the wharf daemon running?",
            host.unwrap_or(addr)
        ),
        other => other.to_string(),
    }
}

pub struct Ctx {
    pub client: Client,
    pub host: String,
    pub context: String,
    /// `--config`: where credentials are kept, over `$DOCKER_CONFIG` and `~/.docker`.
    pub config_dir: Option<String>,
}

impl Ctx {
    pub fn connect(cli: &Cli) -> Result<Ctx> {
        let env = |k: &str| std::env::var(k).ok();
        let inputs = HostInputs {
            flag_hosts: cli.hosts.clone(),
            flag_context: cli.context.clone(),
            env_wharf_host: env("WHARF_HOST"),
            env_docker_host: env("DOCKER_HOST"),
            env_wharf_context: env("WHARF_CONTEXT"),
        };
        let flag_tls = host::flag_tls(&host::TlsFlags {
            tls: cli.tls,
            verify: cli.tlsverify,
            ca: cli.tlscacert.clone(),
            cert: cli.tlscert.clone(),
            key: cli.tlskey.clone(),
            env_tls: env("DOCKER_TLS"),
            env_verify: env("DOCKER_TLS_VERIFY"),
            env_cert_path: env("DOCKER_CERT_PATH"),
            env_docker_config: env("DOCKER_CONFIG"),
            home: env("HOME"),
        });
        let target = host::resolve(&inputs, &host::Store::from_env(), &flag_tls)?;
        let tls = target.tls.enabled().then(|| TlsOptions {
            verify: target.tls.verify,
            ca: target.tls.ca.as_ref().map(Into::into),
            cert: target.tls.cert.as_ref().map(Into::into),
            key: target.tls.key.as_ref().map(Into::into),
        });
        let trace: Option<Trace> = crate::log::enabled(crate::log::Level::Debug).then(|| {
            std::sync::Arc::new(|ev: &TraceEvent<'_>| {
                let status = ev
                    .status
                    .map_or_else(|| "failed".to_string(), |s| s.to_string());
                crate::log::log(
                    crate::log::Level::Debug,
                    &format!(
                        "{} {} -> {status} ({:.1}ms)",
                        ev.method,
                        ev.path,
                        ev.elapsed.as_secs_f64() * 1000.0
                    ),
                );
            }) as Trace
        });
        let options = ClientOptions {
            tls,
            trace,
            version: None,
        };
        let client = Client::with_options(&target.host, options).map_err(|e| match e {
            ClientError::TlsConfig { reason, .. } => Exit::error(
                1,
                format!("Failed to initialize: unable to resolve docker endpoint: {reason}"),
            ),
            other => anyhow::Error::new(other),
        })?;
        if target.tls.enabled() && !client.uses_tls() && !target.host.starts_with("unix://") {
            // Never fall back to plain TCP when TLS was asked for.
            bail!(
                "TLS was requested but {} is not a TCP endpoint",
                target.host
            );
        }
        crate::log::log(
            crate::log::Level::Debug,
            &format!(
                "daemon endpoint {} (context {}, TLS {})",
                target.host,
                target.context,
                if client.uses_tls() {
                    if target.tls.verify {
                        "verified"
                    } else {
                        "unverified"
                    }
                } else {
                    "off"
                }
            ),
        );
        Ok(Ctx {
            client,
            host: target.host,
            context: target.context,
            config_dir: cli.config.clone(),
        })
    }

    /// A failed call as docker prints it.
    pub fn msg(&self, e: &ClientError) -> String {
        client_message(e, Some(&self.host))
    }

    pub fn err(&self, code: i32, e: &ClientError) -> anyhow::Error {
        Exit::error(code, self.msg(e))
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.client.get_json::<Value>(path).await
    }

    /// A request whose non-2xx answer is an error; 304 counts as success when `ok_304`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        ok_304: bool,
    ) -> Result<RawResponse, ClientError> {
        let body = body.map(|b| b.to_string().into_bytes());
        let raw = self.client.request(method, path, body).await?;
        if ok_304 && raw.status.as_u16() == 304 {
            return Ok(raw);
        }
        raw.error_for_status()
    }
}

pub async fn dispatch(ctx: &Ctx, cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::Run(a) => run::run(ctx, &a).await,
        Cmd::Create(a) => run::create(ctx, &a.opts).await,
        Cmd::Start(a) => run::start(ctx, &a).await,
        Cmd::Attach(a) => exec::attach(ctx, &a).await,
        Cmd::Exec(a) => exec::exec(ctx, &a).await,
        Cmd::Events(a) => events::events(ctx, &a).await,
        Cmd::Stop(a) => container::stop(ctx, &a, false).await,
        Cmd::Restart(a) => container::stop(ctx, &a, true).await,
        Cmd::Kill(a) => container::kill(ctx, &a).await,
        Cmd::Rm(a) => container::rm(ctx, &a).await,
        Cmd::Rename(a) => container::rename(ctx, &a).await,
        Cmd::Top(a) => container::top(ctx, &a).await,
        Cmd::Pause(a) => container::pause(ctx, &a.containers, "pause").await,
        Cmd::Unpause(a) => container::pause(ctx, &a.containers, "unpause").await,
        Cmd::Update(a) => container::update(ctx, &a).await,
        Cmd::Wait(a) => container::wait(ctx, &a.containers).await,
        Cmd::Ps(a) => container::ps(ctx, &a).await,
        Cmd::Logs(a) => container::logs(ctx, &a).await,
        Cmd::Inspect(a) => {
            system::inspect(
                ctx,
                &a.names,
                a.format.as_deref(),
                a.kind.as_deref(),
                a.size,
            )
            .await
        }
        Cmd::Images(a) => image::images(ctx, &a).await,
        Cmd::Import(a) => image::import(ctx, &a).await,
        Cmd::Pull(a) => distribution::pull(ctx, &a).await,
        Cmd::Push(a) => distribution::push(ctx, &a).await,
        Cmd::Login(a) => login::login(ctx, &a).await,
        Cmd::Logout(a) => login::logout(ctx, &a).await,
        Cmd::Tag(a) => image::tag(ctx, &a).await,
        Cmd::Rmi(a) => image::rmi(ctx, &a).await,
        Cmd::History(a) => image::history(ctx, &a).await,
        Cmd::Cp(a) => cp::cp(ctx, &a).await,
        Cmd::Diff(a) => transfer::diff(ctx, &a.args).await,
        Cmd::Export(a) => transfer::export(ctx, &a).await,
        Cmd::Commit(a) => transfer::commit(ctx, &a).await,
        Cmd::Save(a) => transfer::save(ctx, &a).await,
        Cmd::Load(a) => transfer::load(ctx, &a).await,
        Cmd::Volume(c) => match c {
            VolumeCmd::Create(a) => volume::create(ctx, &a).await,
            VolumeCmd::Ls(a) => volume::ls(ctx, &a).await,
            VolumeCmd::Inspect(a) => volume::inspect(ctx, &a).await,
            VolumeCmd::Rm(a) => volume::rm(ctx, &a).await,
            VolumeCmd::Prune(a) => volume::prune(ctx, &a).await,
        },
        Cmd::Version(a) => system::version(ctx, a.format.as_deref()).await,
        Cmd::Info(a) => system::info(ctx, a.format.as_deref()).await,
        Cmd::Container(c) => match c {
            ContainerCmd::Ls(a) => container::ps(ctx, &a).await,
            ContainerCmd::Run(a) => run::run(ctx, &a).await,
            ContainerCmd::Create(a) => run::create(ctx, &a.opts).await,
            ContainerCmd::Start(a) => run::start(ctx, &a).await,
            ContainerCmd::Attach(a) => exec::attach(ctx, &a).await,
            ContainerCmd::Exec(a) => exec::exec(ctx, &a).await,
            ContainerCmd::Stop(a) => container::stop(ctx, &a, false).await,
            ContainerCmd::Restart(a) => container::stop(ctx, &a, true).await,
            ContainerCmd::Kill(a) => container::kill(ctx, &a).await,
            ContainerCmd::Rm(a) => container::rm(ctx, &a).await,
            ContainerCmd::Rename(a) => container::rename(ctx, &a).await,
            ContainerCmd::Top(a) => container::top(ctx, &a).await,
            ContainerCmd::Pause(a) => container::pause(ctx, &a.containers, "pause").await,
            ContainerCmd::Unpause(a) => container::pause(ctx, &a.containers, "unpause").await,
            ContainerCmd::Update(a) => container::update(ctx, &a).await,
            ContainerCmd::Wait(a) => container::wait(ctx, &a.containers).await,
            ContainerCmd::Logs(a) => container::logs(ctx, &a).await,
            ContainerCmd::Inspect(a) => {
                system::inspect(
                    ctx,
                    &a.names,
                    a.format.as_deref(),
                    Some("container"),
                    a.size,
                )
                .await
            }
            ContainerCmd::Cp(a) => cp::cp(ctx, &a).await,
            ContainerCmd::Diff(a) => transfer::diff(ctx, &a.args).await,
            ContainerCmd::Export(a) => transfer::export(ctx, &a).await,
            ContainerCmd::Commit(a) => transfer::commit(ctx, &a).await,
        },
        Cmd::Image(c) => match c {
            ImageCmd::Ls(a) => image::images(ctx, &a).await,
            ImageCmd::Inspect(a) => {
                system::inspect(ctx, &a.names, a.format.as_deref(), Some("image"), false).await
            }
            ImageCmd::Rm(a) => image::rmi(ctx, &a).await,
            ImageCmd::Tag(a) => image::tag(ctx, &a).await,
            ImageCmd::History(a) => image::history(ctx, &a).await,
            ImageCmd::Import(a) => image::import(ctx, &a).await,
            ImageCmd::Pull(a) => distribution::pull(ctx, &a).await,
            ImageCmd::Push(a) => distribution::push(ctx, &a).await,
            ImageCmd::Save(a) => transfer::save(ctx, &a).await,
            ImageCmd::Load(a) => transfer::load(ctx, &a).await,
        },
        Cmd::Context(_) | Cmd::Completion { .. } => Ok(0),
    }
}

/// `key=value` flags as the Engine API's filter JSON (`{"key":{"value":true}}`).
pub fn filters_json(filters: &[String], extra: &[(&str, &str)]) -> Result<Option<String>> {
    let mut map: Map<String, Value> = Map::new();
    let mut add = |k: &str, v: &str| {
        let entry = map
            .entry(k.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(v.to_string(), Value::Bool(true));
        }
    };
    for f in filters {
        let Some((k, v)) = f.split_once('=') else {
            return Err(Exit::error(
                125,
                format!(
                    "invalid argument \"{f}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)"
                ),
            ));
        };
        add(k.trim().to_lowercase().as_str(), v);
    }
    for (k, v) in extra {
        add(k, v);
    }
    if map.is_empty() {
        Ok(None)
    } else {
        Ok(Some(Value::Object(map).to_string()))
    }
}

/// `--detach-keys`, else `detachKeys` from the client config, as docker chooses them.
pub fn detach_keys(flag: &Option<String>) -> Option<String> {
    flag.clone()
        .filter(|k| !k.is_empty())
        .or_else(|| host::Store::from_env().detach_keys())
}

/// Runs `op` on each name in order, printing the name on success like docker's multi-target
/// commands; the errors are reported together, exit 1.
pub async fn for_each<'a, F, Fut>(ctx: &Ctx, names: &'a [String], mut op: F) -> Result<i32>
where
    F: FnMut(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    let mut errors = Vec::new();
    for name in names {
        match op(name).await {
            Ok(()) => out(format!("{name}\n").as_bytes()),
            Err(e) => errors.push(ctx.msg(&e)),
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Exit::error(1, errors.join("\n")))
    }
}
