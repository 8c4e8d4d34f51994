//! wharfd: flags, wiring, listeners. Everything else lives in the library crates.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::UnixListener;
use tracing_subscriber::EnvFilter;
use wharf_engine::{Engine, EngineConfig};

/// The Wharf container engine daemon (serves the Docker Engine API).
#[derive(Parser, Debug)]
#[command(name = "wharfd", version, about)]
struct Flags {
    /// Socket(s) to listen on, e.g. unix:///run/wharf.sock (repeatable).
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Root of persistent state: images, containers, metadata.
    #[arg(long, default_value = "/var/lib/wharf")]
    data_root: PathBuf,
    /// Root of per-boot runtime state (a tmpfs).
    #[arg(long, default_value = "/run/wharf")]
    exec_root: PathBuf,
    /// trace, debug, info, warn, error or fatal.
    #[arg(short = 'l', long, default_value = "info")]
    log_level: String,
    /// Write the daemon's pid here.
    #[arg(short = 'p', long)]
    pidfile: Option<PathBuf>,
    /// The wharf-shim binary (default: next to wharfd).
    #[arg(long)]
    shim_path: Option<PathBuf>,
    /// Parent cgroup of all containers.
    #[arg(long, default_value = "wharf")]
    cgroup_parent: String,
    /// The address `--add-host name:host-gateway` resolves to (default: this host's address
    /// on its default-route interface).
    #[arg(long)]
    host_gateway_ip: Option<std::net::IpAddr>,
}

fn main() -> Result<()> {
    let flags = Flags::parse();
    let level = match flags.log_level.as_str() {
        "fatal" | "panic" => "error",
        l => l,
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_new(format!("{level},hyper=info,h2=info"))
                .context("parsing --log-level")?,
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run(flags))
}

/// Holds an exclusive flock on the data root for the daemon's lifetime.
struct RootLock(#[allow(dead_code)] std::fs::File);

fn lock_root(data_root: &Path) -> Result<RootLock> {
    std::fs::create_dir_all(data_root)
        .with_context(|| format!("creating data root {}", data_root.display()))?;
    let path = data_root.join("wharfd.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        bail!(
            "another wharfd is already running on data root {} (lock {} held{}); stop it or use another --data-root",
            data_root.display(),
            path.display(),
            if holder.trim().is_empty() { String::new() } else { format!(" by pid {}", holder.trim()) }
        );
    }
    let _ = f.set_len(0);
    let _ = std::io::Write::write_all(&mut &f, std::process::id().to_string().as_bytes());
    Ok(RootLock(f))
}

fn unix_path(host: &str) -> Result<PathBuf> {
    if let Some(p) = host.strip_prefix("unix://") {
        return Ok(PathBuf::from(p));
    }
    if host.starts_with("tcp://") {
        bail!("{host}: TCP listeners (with TLS) are not implemented in Wharf yet; use unix://");
    }
    if host.starts_with('/') {
        return Ok(PathBuf::from(host));
    }
    bail!("invalid --host {host}: expected unix:///path/to/socket")
}

fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // We hold the data-root lock, so a socket file here is a leftover of a dead daemon.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing stale {}", path.display())),
    }
    let l = UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod 0660 {}", path.display()))?;
    Ok(l)
}

fn sibling_shim() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating wharfd's own binary")?;
    let p = exe.with_file_name("wharf-shim");
    if !p.exists() {
        bail!(
            "wharf-shim not found next to wharfd at {}; pass --shim-path",
            p.display()
        );
    }
    Ok(p)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers we can only run until killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down, containers keep running"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down, containers keep running"),
    }
}

async fn run(flags: Flags) -> Result<()> {
    let _lock = lock_root(&flags.data_root)?;
    let shim_path = match flags.shim_path.clone() {
        Some(p) => p,
        None => sibling_shim()?,
    };
    let hosts = if flags.hosts.is_empty() {
        vec!["unix:///run/wharf.sock".to_string()]
    } else {
        flags.hosts.clone()
    };
    let paths: Vec<PathBuf> = hosts.iter().map(|h| unix_path(h)).collect::<Result<_>>()?;
    let started = std::time::Instant::now();
    let engine = Engine::open(EngineConfig {
        data_root: flags.data_root.clone(),
        exec_root: flags.exec_root.clone(),
        shim_path,
        cgroup_parent: flags.cgroup_parent.clone(),
        host_gateway_ip: flags.host_gateway_ip,
    })
    .await
    .context("opening the engine state")?;
    if let Some(p) = &flags.pidfile {
        wharf_fs::atomic_write(p, std::process::id().to_string().as_bytes())
            .with_context(|| format!("writing pidfile {}", p.display()))?;
    }
    wharf_server::errors::hide_paths(&[
        (flags.data_root.as_path(), "<data-root>"),
        (flags.exec_root.as_path(), "<exec-root>"),
    ]);
    let app = wharf_server::router(Arc::clone(&engine));
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut servers = Vec::new();
    for p in &paths {
        let listener = bind(p)?;
        tracing::info!(socket = %p.display(), "API listening");
        let mut rx = stop_tx.subscribe();
        let app = app.clone();
        servers.push(tokio::spawn(async move {
            wharf_server::serve_unix(listener, app, async move {
                let _ = rx.recv().await;
            })
            .await;
        }));
    }
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "wharfd ready"
    );
    shutdown_signal().await;
    let _ = stop_tx.send(());
    for s in servers {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s).await;
    }
    for p in &paths {
        let _ = std::fs::remove_file(p);
    }
    if let Some(p) = &flags.pidfile {
        let _ = std::fs::remove_file(p);
    }
    drop(engine);
    tracing::info!("wharfd stopped");
    Ok(())
}
