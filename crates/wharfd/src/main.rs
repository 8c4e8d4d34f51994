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

mod memory;
mod stall;

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

    // Layer ingest limits (docs/architecture.md, "Ingesting a layer").
    /// Largest layer accepted, counted uncompressed: 100g, 512m, 4096 (bytes); 0 = no limit.
    #[arg(long, default_value = "100g", value_parser = wharf_engine::ingest::parse_size)]
    max_layer_size: u64,
    /// Refuse a layer that expands more than this many times its compressed size once it
    /// passes --layer-ratio-floor uncompressed (a decompression bomb); 0 = off.
    #[arg(long, default_value_t = wharf_engine::ingest::DEFAULT_MAX_LAYER_RATIO)]
    max_layer_ratio: u64,
    /// Uncompressed size past which --max-layer-ratio applies (below it any ratio is fine).
    #[arg(long, default_value = "1g", value_parser = wharf_engine::ingest::parse_size)]
    layer_ratio_floor: u64,
    /// Free space to keep on the data root's filesystem: a size (2g) or a percentage (5%);
    /// an ingest is refused, or stopped, below it. Default: the smaller of 5% and 2 GiB;
    /// 0 = off.
    #[arg(long, value_parser = wharf_engine::ingest::MinFree::parse)]
    min_free_space: Option<wharf_engine::ingest::MinFree>,

    // Connection bounds of every API socket (docs/architecture.md, "Connections and memory").
    // Durations are `90`, `90s`, `5m` or `1h`; 0 turns a bound off.
    /// Longest wait for a request's head, from the connection's accept or the first byte of
    /// its next request. 0: none.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    header_timeout: std::time::Duration,
    /// Longest wait between requests on a kept-alive connection. 0: none.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    idle_timeout: std::time::Duration,
    /// Longest stall of a request body being read (a body shorter than its Content-Length
    /// stalls); a slow body that keeps flowing is not cut. 0: none.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    body_timeout: std::time::Duration,
    /// Connections served at once per socket (hijacked attach/exec sessions included); more
    /// wait to be accepted. 0: no cap.
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
    /// Threads for blocking work (file system, image layers, store); more requests wait.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    max_blocking_threads: u16,

    // Registries (docs/architecture.md, "Pulling an image"), dockerd's flags.
    /// A mirror of Docker Hub, tried before it (repeatable): https://mirror.example.
    #[arg(long = "registry-mirror", value_name = "URL")]
    registry_mirrors: Vec<String>,
    /// A registry (host[:port]) or network (CIDR) that may be reached over plain HTTP or
    /// TLS without verification (repeatable); 127.0.0.0/8 always is.
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    insecure_registries: Vec<String>,
    /// Layers one pull downloads at once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_downloads: u32,
    /// Layers one push uploads at once.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_uploads: u32,
    /// Per-registry TLS files: <dir>/<host[:port]>/{ca.crt, client.cert, client.key}.
    #[arg(long, default_value = wharf_engine::distribution::settings::DEFAULT_CERTS_DIR)]
    certs_dir: PathBuf,
}

/// `90`, `90s`, `5m`, `1h` (whole seconds, minutes, hours).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 30s, 5m, 1h or 0"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    };
    secs.map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("invalid duration {s:?}: expected e.g. 30s, 5m, 1h or 0"))
}

impl Flags {
    fn ingest_limits(&self) -> wharf_engine::ingest::IngestLimits {
        wharf_engine::ingest::IngestLimits {
            max_layer_size: self.max_layer_size,
            max_ratio: self.max_layer_ratio,
            ratio_floor: self.layer_ratio_floor,
            min_free: self
                .min_free_space
                .unwrap_or(wharf_engine::ingest::MinFree::Default),
        }
    }

    fn registry(&self) -> wharf_engine::distribution::settings::RegistryFlags {
        wharf_engine::distribution::settings::RegistryFlags {
            mirrors: self.registry_mirrors.clone(),
            insecure_registries: self.insecure_registries.clone(),
            certs_dir: self.certs_dir.clone(),
            max_concurrent_downloads: self.max_concurrent_downloads as usize,
            max_concurrent_uploads: self.max_concurrent_uploads as usize,
        }
    }

    fn conn_limits(&self) -> wharf_server::ConnLimits {
        let on = |d: std::time::Duration| (!d.is_zero()).then_some(d);
        wharf_server::ConnLimits {
            header_timeout: on(self.header_timeout),
            idle_timeout: on(self.idle_timeout),
            body_timeout: on(self.body_timeout),
            max_connections: (self.max_connections > 0).then_some(self.max_connections),
        }
    }
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
    memory::tune_allocator();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(usize::from(flags.max_blocking_threads))
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
        ingest_limits: flags.ingest_limits(),
        registry: flags.registry(),
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
    let limits = flags.conn_limits();
    tokio::spawn(memory::trim_freed_memory());
    stall::watch(tokio::runtime::Handle::current());
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut servers = Vec::new();
    for p in &paths {
        let listener = bind(p)?;
        tracing::info!(socket = %p.display(), "API listening");
        let mut rx = stop_tx.subscribe();
        let app = app.clone();
        servers.push(tokio::spawn(async move {
            wharf_server::serve_unix_with(listener, app, limits, async move {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_in_seconds_minutes_and_hours() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "5x", "m", "-1s", "1.5s", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn zero_turns_a_bound_off() {
        let f = Flags::parse_from(["wharfd", "--idle-timeout", "0", "--max-connections", "0"]);
        let l = f.conn_limits();
        assert_eq!(l.idle_timeout, None);
        assert_eq!(l.max_connections, None);
        assert_eq!(l.header_timeout, Some(Duration::from_secs(60)));
    }

    #[test]
    fn registry_flags_repeat_and_default_as_dockerds() {
        let f = Flags::parse_from([
            "wharfd",
            "--registry-mirror",
            "https://m1",
            "--registry-mirror=https://m2",
            "--insecure-registry",
            "myreg:5000",
            "--max-concurrent-downloads",
            "8",
        ]);
        let r = f.registry();
        assert_eq!(r.mirrors, ["https://m1", "https://m2"]);
        assert_eq!(r.insecure_registries, ["myreg:5000"]);
        assert_eq!(r.max_concurrent_downloads, 8);
        assert_eq!(r.max_concurrent_uploads, 5);
        assert_eq!(r.certs_dir, PathBuf::from("/etc/wharf/certs.d"));
        assert_eq!(
            Flags::parse_from(["wharfd"])
                .registry()
                .max_concurrent_downloads,
            3
        );
        assert!(Flags::try_parse_from(["wharfd", "--max-concurrent-downloads", "0"]).is_err());
    }

    #[test]
    fn flag_defaults_are_the_servers_defaults() {
        let f = Flags::parse_from(["wharfd"]);
        assert_eq!(f.conn_limits(), wharf_server::ConnLimits::default());
    }
}
