//! Dev-only test harness: a real wharfd on a temp root and socket, image fixtures, cleanup.
//!
//! Owns: starting, restarting and killing test daemons; building fixture rootfs tars; removing
//! everything a test made (processes, mounts, cgroups, files), even after a panic, and the
//! leftovers of an earlier crashed run.
//!
//! Must not touch: shipped code. Nothing outside `dev-dependencies` may depend on this crate.
//!
//! Layout of one daemon (paths kept short: a unix socket path must be under 108 bytes):
//! `/tmp/wharf-test-<name>-<pid>/{data,exec,wharf.sock,wharfd.log,wharfd.pid,owner}`, cgroup
//! parent `wharf-test-<name>`. Names must be unique per test.

pub mod cleanup;
pub mod fixtures;
pub mod skip;
pub mod wait;

pub use cleanup::cleanup_stale;
pub use fixtures::{busybox_rootfs_tar, import_busybox};
pub use skip::skip;
pub use wait::{process_alive, wait_until_true};

use anyhow::{anyhow, bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wharf_client::Client;

/// How long a daemon gets to answer its first ping.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `stop()` waits after SIGTERM before it SIGKILLs.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_SOCKET_PATH: usize = 107;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// For tests that need root and a built wharfd: when either is missing, records the skip
/// ([`skip()`], which fails the test under CI) and returns `None`; any other start failure
/// panics with its cause.
pub async fn start_or_skip(name: &str) -> Option<TestDaemon> {
    if !is_root() {
        skip("needs root (wharfd makes namespaces, mounts and cgroups)");
        return None;
    }
    if let Err(e) = wharfd_bin() {
        skip(format!("{e:#}"));
        return None;
    }
    match TestDaemon::start(name).await {
        Ok(d) => Some(d),
        Err(e) => panic!("starting test daemon {name}: {e:#}"),
    }
}

/// `WHARFD_BIN`, or `wharfd` in the target dir the test executable was built in
/// (`target/<profile>/deps/<test>-<hash>` → `target/<profile>/wharfd`).
pub fn wharfd_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("WHARFD_BIN") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("WHARFD_BIN={} is not a file", p.display());
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().context("locating the test executable")?;
    let mut candidates = Vec::new();
    if let Some(dir) = exe.parent() {
        candidates.push(dir.join("wharfd"));
        if let Some(up) = dir.parent() {
            candidates.push(up.join("wharfd"));
        }
    }
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .ok_or_else(|| {
            // Cargo builds another package's binaries only for the whole workspace.
            anyhow!(
                "wharfd is not built (looked at {candidates:?}): `cargo test -p <crate>` does not \
                 build it; run `cargo build -p wharfd` first, or set WHARFD_BIN"
            )
        })
}

/// A wharfd on its own roots, socket and cgroup parent. Dropping it removes everything.
#[derive(Debug)]
pub struct TestDaemon {
    name: String,
    dir: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
    client: Client,
    cleaned: bool,
}

impl TestDaemon {
    /// Cleans leftovers of a crashed earlier run, then starts wharfd and waits for its ping.
    /// Fails when not root, when wharfd is missing, or when it does not answer in 10 s (the
    /// error carries the tail of its log).
    pub async fn start(name: &str) -> Result<TestDaemon> {
        if !is_root() {
            bail!("TestDaemon needs root");
        }
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            bail!("test daemon name {name:?} must be [A-Za-z0-9_-]+ (it names dirs and cgroups)");
        }
        let bin = wharfd_bin()?;
        if let Err(e) = cleanup::cleanup_stale(name) {
            // Leftovers we cannot remove should not hide the test's own result.
            eprintln!("warning: {e:#}");
        }
        let dir = PathBuf::from(cleanup::TEST_DIR_BASE).join(format!(
            "{}{}",
            cleanup::test_dir_prefix(name),
            std::process::id()
        ));
        let socket = dir.join("wharf.sock");
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "socket path {} is too long for a unix socket",
                socket.display()
            );
        }
        // A previous daemon of the same name in this process that was leaked (mem::forget).
        cleanup::cleanup_dir(&dir)?;
        fs::create_dir_all(dir.join("data"))
            .with_context(|| format!("creating {}", dir.display()))?;
        fs::create_dir_all(dir.join("exec"))?;
        fs::write(dir.join(cleanup::OWNER_FILE), cleanup::owner_stamp())?;
        let client = Client::new(&format!("unix://{}", socket.display()))?;
        let mut d = TestDaemon {
            name: name.to_string(),
            dir,
            bin,
            child: None,
            client,
            cleaned: false,
        };
        d.spawn_and_wait().await?;
        Ok(d)
    }

    fn spawn(&mut self) -> Result<()> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .with_context(|| format!("opening {}", self.log_path().display()))?;
        let log2 = log.try_clone()?;
        let _ = fs::remove_file(self.socket_path());
        let child = Command::new(&self.bin)
            .arg("-H")
            .arg(self.host())
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("--pidfile")
            .arg(self.dir.join("wharfd.pid"))
            .arg("--log-level")
            .arg("debug")
            .arg("--cgroup-parent")
            .arg(self.cgroup_parent())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .with_context(|| format!("spawning {}", self.bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    async fn spawn_and_wait(&mut self) -> Result<()> {
        self.spawn()?;
        // A fresh client: a restarted daemon may advertise another version.
        self.client = Client::new(&self.host())?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    self.child = None;
                    bail!(
                        "wharfd exited during start ({status}); log tail:\n{}",
                        self.log_tail(40)
                    );
                }
            }
            let ping = tokio::time::timeout(Duration::from_secs(1), self.client.ping()).await;
            if let Ok(Ok(_)) = ping {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let last = match ping {
                    Ok(Err(e)) => e.to_string(),
                    _ => "ping timed out".to_string(),
                };
                bail!(
                    "wharfd did not answer a ping within {START_TIMEOUT:?} ({last}); log tail:\n{}",
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("wharf.sock")
    }

    /// `unix:///tmp/wharf-test-<name>-<pid>/wharf.sock`, for `DOCKER_HOST` too.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket_path().display())
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn exec_root(&self) -> PathBuf {
        self.dir.join("exec")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("wharfd.log")
    }

    pub fn cgroup_parent(&self) -> String {
        cleanup::cgroup_parent(&self.name)
    }

    /// The running daemon's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last `lines` lines of the daemon's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log_path().display()));
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGKILLs wharfd and reaps it; containers (their shims) keep running.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            // Already exited is fine: we only want it gone.
            let _ = c.kill();
            c.wait().context("reaping wharfd")?;
        }
        Ok(())
    }

    /// SIGTERM, then waits for a clean exit (SIGKILL after `STOP_TIMEOUT`). Errors if the daemon
    /// did not exit by itself or exited non-zero.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = c.try_wait()? {
                if !status.success() {
                    bail!(
                        "wharfd exited with {status} on SIGTERM; log tail:\n{}",
                        self.log_tail(20)
                    );
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = c.kill();
                let _ = c.wait();
                bail!("wharfd did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed it");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts wharfd again on the same roots (stopping it first if it still runs).
    pub async fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.stop()?;
        }
        self.spawn_and_wait().await
    }

    /// Kills wharfd, shims and container inits, unmounts, removes cgroups and the directory.
    /// Safe to call twice; `Drop` calls it.
    pub fn cleanup(&mut self) -> Result<()> {
        if self.cleaned {
            return Ok(());
        }
        self.cleaned = true;
        let mut errors = Vec::new();
        if let Err(e) = self.kill9() {
            errors.push(format!("{e:#}"));
        }
        if let Err(e) = cleanup::cleanup_dir(&self.dir) {
            errors.push(format!("{e:#}"));
        }
        if let Err(e) = cleanup::remove_cgroups(&self.cgroup_parent()) {
            errors.push(format!("{e:#}"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(anyhow!(
                "cleanup of test daemon {}: {}",
                self.name,
                errors.join("; ")
            ))
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.cleaned {
            // The failing test's message is more useful with what the daemon said.
            eprintln!(
                "--- wharfd log tail ({}) ---\n{}",
                self.name,
                self.log_tail(30)
            );
        }
        if let Err(e) = self.cleanup() {
            eprintln!("warning: {e:#}");
        }
    }
}
