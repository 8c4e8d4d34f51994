//! End-to-end tests of `wharf-shim` with a busybox rootfs. Root only.
//!
//! Every test names its container, cgroup and directories after itself and removes them in
//! `Drop`, so a failing assertion leaves nothing behind.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use wharf_runtime::shim_proto::{
    ExitStatus, LaunchResult, LogEntry, Request, Response, StartErrorKind, EXIT_FILE,
    INIT_PID_FILE, SHIM_PID_FILE, SOCKET_FILE,
};
use wharf_runtime::spec::{build_spec, RlimitCeiling, SpecInput};

const CGROUP_PARENT: &str = "wharf-test-shim";

// The testkit's skip, included: this crate does not dev-depend on the testkit.
#[path = "../../wharf-testkit/src/skip.rs"]
mod skip;

/// Records the skip (a failure under CI) and says so when the test cannot run here.
fn skip_unless_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip::skip("needs root (namespaces, mounts, cgroups)");
        return true;
    }
    if !Path::new("/bin/busybox").exists() {
        skip::skip("no /bin/busybox (apt-get install busybox-static)");
        return true;
    }
    false
}

struct Fixture {
    name: String,
    id: String,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let id = format!("wharf-test-{name}-{}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("wharf-shim-")
            .tempdir()
            .unwrap();
        let f = Fixture {
            name: name.to_string(),
            id,
            dir,
        };
        f.cleanup_cgroups();
        f.make_rootfs();
        f
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn rootfs(&self) -> PathBuf {
        self.path("rootfs")
    }
    fn bundle(&self) -> PathBuf {
        self.path("bundle")
    }
    fn state(&self) -> PathBuf {
        self.path("state")
    }
    fn runtime_root(&self) -> PathBuf {
        self.path("runtime")
    }
    fn log(&self) -> PathBuf {
        self.path("ctr.log")
    }
    fn cgroups_path(&self) -> String {
        // One top-level cgroup per test: a shared parent would be removed by one test's cleanup
        // while another test's runtime is creating its child in it.
        format!("/{CGROUP_PARENT}-{}", self.name)
    }

    fn make_rootfs(&self) {
        let r = self.rootfs();
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "usr/bin"] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        fs::copy("/bin/busybox", r.join("bin/busybox")).unwrap();
        // Absolute symlinks, as `busybox --install -s` makes them.
        for app in ["sh", "echo", "cat", "sleep", "true", "readlink", "hostname"] {
            symlink("/bin/busybox", r.join("bin").join(app)).unwrap();
        }
        fs::write(
            r.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )
        .unwrap();
        fs::write(r.join("etc/group"), "root:x:0:\n").unwrap();
    }

    fn write_spec(&self, args: &[&str], hostname: &str) {
        let input = SpecInput {
            rootfs: self.rootfs(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                "HOME=/root".into(),
            ],
            cwd: "/".into(),
            hostname: hostname.into(),
            cgroups_path: self.cgroups_path(),
            // What wharfd passes: the test may lack CAP_SYS_RESOURCE, as wharfd may.
            rlimit_ceiling: RlimitCeiling::of_this_process(),
            ..Default::default()
        };
        let spec = build_spec(&input).unwrap();
        fs::create_dir_all(self.bundle()).unwrap();
        fs::write(
            self.bundle().join("config.json"),
            serde_json::to_vec_pretty(&spec).unwrap(),
        )
        .unwrap();
    }

    fn start_with_env(&self, args: &[&str], stdin: bool, env: &[(&str, &str)]) -> LaunchResult {
        self.start_bin(
            Path::new(env!("CARGO_BIN_EXE_wharf-shim")),
            args,
            stdin,
            env,
        )
    }

    fn start_bin(
        &self,
        shim: &Path,
        args: &[&str],
        stdin: bool,
        env: &[(&str, &str)],
    ) -> LaunchResult {
        self.write_spec(args, "wharf-test-host");
        let mut cmd = Command::new(shim);
        cmd.arg("start")
            .arg("--id")
            .arg(&self.id)
            .arg("--bundle")
            .arg(self.bundle())
            .arg("--state-dir")
            .arg(self.state())
            .arg("--log")
            .arg(self.log())
            .arg("--runtime-root")
            .arg(self.runtime_root());
        if stdin {
            cmd.arg("--stdin");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "launcher printed {stdout:?}, stderr {:?}",
            out.stderr
        );
        let result: LaunchResult = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(
            out.status.success(),
            result.ok,
            "exit status vs result: {result:?}"
        );
        result
    }

    fn start(&self, args: &[&str], stdin: bool) -> LaunchResult {
        self.start_with_env(args, stdin, &[])
    }

    fn start_ok(&self, args: &[&str], stdin: bool) -> i32 {
        let r = self.start(args, stdin);
        assert!(r.ok, "launch failed: {r:?}");
        let pid = r.pid.unwrap();
        let written: i32 = fs::read_to_string(self.state().join(INIT_PID_FILE))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(written, pid);
        pid
    }

    fn shim_pid(&self) -> i32 {
        fs::read_to_string(self.state().join(SHIM_PID_FILE))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(self.state().join(SOCKET_FILE)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    fn request(&self, req: &Request) -> Response {
        let mut s = self.connect();
        let mut line = serde_json::to_vec(req).unwrap();
        line.push(b'\n');
        s.write_all(&line).unwrap();
        read_response(&mut s)
    }

    fn wait_exit(&self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        let path = self.state().join(EXIT_FILE);
        while Instant::now() < deadline {
            if let Ok(data) = fs::read(&path) {
                let st: ExitStatus = serde_json::from_slice(&data).unwrap();
                // The shim removes its socket last; then it is really done.
                let sock_gone = wait_until(Duration::from_secs(5), || {
                    !self.state().join(SOCKET_FILE).exists()
                });
                assert!(sock_gone, "shim.sock not removed after exit");
                return st;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("container {} did not exit", self.id);
    }

    fn log_entries(&self) -> Vec<LogEntry> {
        let text = fs::read_to_string(self.log()).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn stream_text(&self, stream: &str) -> String {
        self.log_entries()
            .iter()
            .filter(|e| e.stream == stream)
            .map(|e| e.log.as_str())
            .collect()
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                out.push(e.path().join(format!("{CGROUP_PARENT}-{}", self.name)));
            }
        }
        out.push(Path::new("/sys/fs/cgroup").join(format!("{CGROUP_PARENT}-{}", self.name)));
        out
    }

    fn leaked_cgroups(&self) -> Vec<PathBuf> {
        self.cgroup_dirs()
            .into_iter()
            .filter(|p| p.exists())
            .collect()
    }

    fn assert_cleaned_up(&self) {
        assert!(
            self.leaked_cgroups().is_empty(),
            "cgroups leaked: {:?}",
            self.leaked_cgroups()
        );
        assert!(
            !self.runtime_root().join(&self.id).exists(),
            "libcontainer state left behind"
        );
    }

    fn cleanup_cgroups(&self) {
        for dir in self.cgroup_dirs() {
            if !dir.exists() {
                continue;
            }
            if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: kill has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            // A frozen cgroup would keep its SIGKILLed tasks forever.
            let _ = fs::write(dir.join("freezer.state"), "THAWED");
            wait_until(Duration::from_secs(5), || {
                fs::remove_dir(&dir).is_ok() || !dir.exists()
            });
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Kill the container first (the shim then cleans up), then the shim itself.
        if let Ok(pid) = fs::read_to_string(self.state().join(INIT_PID_FILE)) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                if !self.state().join(EXIT_FILE).exists() {
                    // SAFETY: as above.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        if let Ok(pid) = fs::read_to_string(self.state().join(SHIM_PID_FILE)) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let gone = wait_until(Duration::from_secs(10), || {
                    !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid)
                });
                if !gone {
                    // SAFETY: as above.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        self.cleanup_cgroups();
        let _ = fs::remove_dir_all(self.runtime_root());
    }
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_response(s: &mut UnixStream) -> Response {
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    serde_json::from_str(line.trim_end()).unwrap_or_else(|e| panic!("bad response {line:?}: {e}"))
}

/// What one running container's monitor may keep resident once idle. The README's figure is
/// 0.48 MiB (release, 20 containers); a debug build alone keeps about 1.3 MiB.
const MONITOR_RSS_BOUND_KIB: u64 = 2048;

fn vm_rss_kib(pid: i32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// A `kB` field of /proc/<pid>/status.
fn status_kib(pid: i32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn echo_hi_logs_stdout_and_exits_zero() {
    if skip_unless_root() {
        return;
    }
    let f = Fixture::new("echo");
    f.start_ok(&["echo", "hi"], false);
    let st = f.wait_exit();
    assert_eq!(st.exit_code, 0);
    assert!(!st.oom_killed);
    assert!(st.finished_at.ends_with('Z'));
    let entries = f.log_entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].log, "hi\n");
    assert_eq!(entries[0].stream, "stdout");
    f.assert_cleaned_up();
}

#[test]
fn stderr_and_exit_code() {
    if skip_unless_root() {
        return;
    }
    let f = Fixture::new("stderr");
    f.start_ok(&["sh", "-c", "echo out; echo err >&2; exit 3"], false);
    let st = f.wait_exit();
    assert_eq!(st.exit_code, 3);
    assert_eq!(f.stream_text("stderr"), "err\n");
    assert_eq!(f.stream_text("stdout"), "out\n");
    f.assert_cleaned_up();
}

#[test]
fn wait_request_is_answered_at_exit() {
    if skip_unless_root() {
        return;
    }
    let f = Fixture::new("wait");
    f.start_ok(&["sh", "-c", "sleep 1; exit 7"], false);
    let mut s = f.connect();
    s.write_all(b"{\"op\":\"wait\"}\n").unwrap();
    // Half-close: the shim must keep the waiter.
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let resp = read_response(&mut s);
    assert!(resp.ok, "{resp:?}");
    assert_eq!(resp.running, Some(false));
    let exit = resp.exit.unwrap();
    assert_eq!(exit.exit_code, 7);
    // exit.json is already there when the waiter hears about it.
    let st: ExitStatus =
        serde_json::from_slice(&fs::read(f.state().join(EXIT_FILE)).unwrap()).unwrap();
    assert_eq!(st, exit);
    f.wait_exit();
    f.assert_cleaned_up();
}

#[test]
fn kill_sleep_and_measure_rss() {
    if skip_unless_root() {
        return;
    }
    let f = Fixture::new("kill");
    let pid = f.start_ok(&["sleep", "100"], false);
    let shim = f.shim_pid();

    // The shim is daemonized: its own session, not our child.
    let stat = fs::read_to_string(format!("/proc/{shim}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let (ppid, sid): (i32, i32) = (fields[1].parse().unwrap(), fields[3].parse().unwrap());
    // SAFETY: getsid(0) has no preconditions.
    let our_sid = unsafe { libc::getsid(0) };
    assert_ne!(sid, our_sid, "shim shares the caller's session");
    assert_ne!(ppid, std::process::id() as i32);
    // The init is a child of the shim (which reaps it).
    let init_stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let init_ppid: i32 = init_stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(init_ppid, shim);

    let state = f.request(&Request::State);
    assert!(
        state.ok && state.running == Some(true) && state.pid == Some(pid),
        "{state:?}"
    );

    // The long-lived process is the small monitor image found next to wharf-shim (it execs
    // right after reporting, so give it a moment).
    let monitor = Path::new(env!("CARGO_BIN_EXE_wharf-shim-monitor"));
    let exe = || fs::read_link(format!("/proc/{shim}/exe")).ok();
    assert!(
        wait_until(Duration::from_secs(5), || exe().as_deref() == Some(monitor)),
        "monitor image is {:?}",
        exe()
    );
    // An idle monitor trims its resident code pages after 1 s (about 2.8 MiB down to 1.3 in a
    // debug build here, less in release): wait for that, then bound what it keeps. Without
    // the trim, or without the re-exec into the small monitor (about 6 MiB), this fails.
    let trimmed = wait_until(Duration::from_secs(30), || {
        vm_rss_kib(shim).is_some_and(|kib| kib <= MONITOR_RSS_BOUND_KIB)
    });
    let rss = vm_rss_kib(shim).unwrap();
    eprintln!("wharf-shim-monitor VmRSS: {rss} kB");
    assert!(
        trimmed,
        "monitor VmRSS {rss} kB, above {MONITOR_RSS_BOUND_KIB} kB"
    );
    let anon = status_kib(shim, "RssAnon:").unwrap();
    assert!(anon <= 512, "monitor RssAnon {anon} kB, above 512 kB");
    // Most of VmRSS is shared page cache (glibc, the binary's text); the private part and
    // the proportional share are what one more container really costs.
    for file in ["status", "smaps_rollup"] {
        let text = fs::read_to_string(format!("/proc/{shim}/{file}")).unwrap_or_default();
        for l in text.lines().filter(|l| {
            l.starts_with("RssAnon") || l.starts_with("RssFile") || l.starts_with("Pss:")
        }) {
            eprintln!("  {l}");
        }
    }

    // PID 1 of a pid namespace ignores SIGTERM without a handler, exactly as under Docker.
    let r = f.request(&Request::Kill {
        signal: libc::SIGTERM,
        all: false,
    });
    assert!(r.ok, "{r:?}");
    let state = f.request(&Request::State);
    assert_eq!(state.running, Some(true));

    // The proof that SIGTERM did nothing needs no waiting: a fatal signal fixes the exit
    // status (143) when kill(2) delivers it, before the shim answers, so a SIGKILL sent
    // after that answer can only give 137 if the SIGTERM was dropped.
    let r = f.request(&Request::Kill {
        signal: libc::SIGKILL,
        all: true,
    });
    assert!(r.ok, "{r:?}");
    let st = f.wait_exit();
    assert_eq!(st.exit_code, 137, "sleep as pid 1 must survive SIGTERM");
    f.assert_cleaned_up();
    // After the exit the socket is gone; a kill now cannot reach anything.
    assert!(UnixStream::connect(f.state().join(SOCKET_FILE)).is_err());
}

#[test]
fn sigterm_with_trap_gives_143() {
    if skip_unless_root() {
        return;
    }
    let f = Fixture::new("term");
    f.start_ok(
        &[
            "sh",
            "-c",
            "trap 'exit 143' TERM; echo ready; while true; do sleep 1; done",
        ],
        false,
    );
    assert!(wait_until(Duration::from_secs(10), || f
        .stream_text("stdout")
        == "ready\n"));
    let r = f.request(&Request::Kill {
        signal: libc::SIGTERM,
        all: false,
    });
    assert!(r.ok, "{r:?}");
    assert_eq!(f.wait_exit().exit_code, 143);
    f.assert_cleaned_up();
}

#[test]
fn rss_without_reexec_for_comparison() {
    if skip_unless_root() {
        return;
    }
    let f = Fixture::new("rss");
    f.start_with_env(&["sleep", "100"], false, &[("WHARF_SHIM_NO_REEXEC", "1")]);
    let shim = f.shim_pid();
    let state = f.request(&Request::State);
    assert_eq!(state.running, Some(true), "{state:?}");
    // The knob is honoured: the monitor loop runs inside wharf-shim itself...
    let exe = fs::read_link(format!("/proc/{shim}/exe")).unwrap();
    assert_eq!(exe, Path::new(env!("CARGO_BIN_EXE_wharf-shim")));
    // ...and costs more than the re-exec'd monitor may: the re-exec is what meets the bound.
    let rss = vm_rss_kib(shim).unwrap();
    eprintln!("wharf-shim VmRSS (in-process monitor, no re-exec): {rss} kB");
    assert!(rss > MONITOR_RSS_BOUND_KIB, "{rss} kB");
    let r = f.request(&Request::Kill {
        signal: libc::SIGKILL,
        all: false,
    });
    assert!(r.ok, "{r:?}");
    assert_eq!(f.wait_exit().exit_code, 137);
    f.assert_cleaned_up();
}

/// Without `wharf-shim-monitor` next to it, the shim re-executes itself as the monitor and
/// does `kill --all` in-process.
#[test]
fn without_monitor_binary_the_shim_reexecs_itself() {
    if skip_unless_root() {
        return;
    }
    let f = Fixture::new("reexec");
    let lone = f.path("bin/wharf-shim");
    fs::create_dir_all(lone.parent().unwrap()).unwrap();
    fs::copy(env!("CARGO_BIN_EXE_wharf-shim"), &lone).unwrap();
    let r = f.start_bin(&lone, &["sleep", "100"], false, &[]);
    assert!(r.ok, "{r:?}");
    let shim = f.shim_pid();
    let cmdline = || fs::read(format!("/proc/{shim}/cmdline")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(5), || cmdline()
            .starts_with(b"wharf-shim\0monitor\0")),
        "{:?}",
        String::from_utf8_lossy(&cmdline())
    );
    assert_eq!(fs::read_link(format!("/proc/{shim}/exe")).unwrap(), lone);
    let r = f.request(&Request::Kill {
        signal: libc::SIGKILL,
        all: true,
    });
    assert!(r.ok, "{r:?}");
    assert_eq!(f.wait_exit().exit_code, 137);
    f.assert_cleaned_up();
}

#[test]
fn stdin_is_forwarded_and_eof_ends_cat() {
    if skip_unless_root() {
        return;
    }
    let f = Fixture::new("stdin");
    f.start_ok(&["cat"], true);
    let mut s = f.connect();
    s.write_all(b"{\"op\":\"stdin\"}\n").unwrap();
    let resp = read_response(&mut s);
    assert!(resp.ok, "{resp:?}");

    // A second attach is refused while the first holds stdin.
    let second = f.request(&Request::Stdin);
    assert!(!second.ok);

    s.write_all(b"hello stdin\n").unwrap();
    s.write_all(b"no newline").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let st = f.wait_exit();
    assert_eq!(st.exit_code, 0);
    assert_eq!(f.stream_text("stdout"), "hello stdin\nno newline");
    f.assert_cleaned_up();
}

#[test]
fn missing_command_reports_not_found() {
    if skip_unless_root() {
        return;
    }
    let f = Fixture::new("nosuch");
    let r = f.start(&["nosuch"], false);
    assert!(!r.ok);
    assert_eq!(r.error_kind, Some(StartErrorKind::NotFound));
    assert_eq!(
        r.error.as_deref(),
        Some(r#"exec: "nosuch": executable file not found in $PATH"#)
    );
    assert!(!f.state().join(SOCKET_FILE).exists());
    assert!(!f.state().join(EXIT_FILE).exists());
    f.assert_cleaned_up();

    let r = f.start(&["/etc/passwd"], false);
    assert_eq!(r.error_kind, Some(StartErrorKind::NotExecutable));
    assert!(r.error.unwrap().contains("permission denied"));
    f.assert_cleaned_up();
}

#[test]
fn runtime_failure_is_reported_and_cleaned_up() {
    if skip_unless_root() {
        return;
    }
    let f = Fixture::new("badcwd");
    // A cwd that is a file makes the runtime fail after namespaces and cgroups exist.
    f.write_spec(&["true"], "x");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&fs::read(f.bundle().join("config.json")).unwrap()).unwrap();
    spec["process"]["cwd"] = "/etc/passwd".into();
    fs::write(
        f.bundle().join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wharf-shim"))
        .args(["start", "--id", &f.id])
        .arg("--bundle")
        .arg(f.bundle())
        .arg("--state-dir")
        .arg(f.state())
        .arg("--log")
        .arg(f.log())
        .arg("--runtime-root")
        .arg(f.runtime_root())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let r: LaunchResult = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("runtime failure reported as: {r:?}");
    assert!(!r.ok);
    assert!(r.error.is_some());
    assert!(!f.state().join(SOCKET_FILE).exists());
    f.assert_cleaned_up();
}

#[test]
fn hostname_netns_and_loopback() {
    if skip_unless_root() {
        return;
    }
    let f = Fixture::new("net");
    let pid = f.start_ok(
        &[
            "sh",
            "-c",
            "cat /proc/sys/kernel/hostname; cat /sys/class/net/lo/flags; \
             cat /sys/class/net/lo/operstate; echo done; sleep 100",
        ],
        false,
    );
    let host_ns = fs::read_link("/proc/self/ns/net").unwrap();
    let ctr_ns = fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_ne!(host_ns, ctr_ns, "container shares the host netns");
    assert!(wait_until(Duration::from_secs(10), || f
        .stream_text("stdout")
        .ends_with("done\n")));
    let out = f.stream_text("stdout");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "wharf-test-host");
    let flags = u32::from_str_radix(lines[1].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is not up (flags {})", lines[1]);
    assert_eq!(lines[2], "unknown", "lo operstate");
    f.request(&Request::Kill {
        signal: libc::SIGKILL,
        all: false,
    });
    assert_eq!(f.wait_exit().exit_code, 137);
    f.assert_cleaned_up();
}

#[test]
fn misbehaving_clients_do_not_hurt_the_shim() {
    if skip_unless_root() {
        return;
    }
    let f = Fixture::new("clients");
    f.start_ok(&["sleep", "100"], false);
    // Partial request, then vanish.
    {
        let mut s = f.connect();
        s.write_all(b"{\"op\":\"st").unwrap();
    }
    // Garbage.
    {
        let mut s = f.connect();
        s.write_all(b"not json\n").unwrap();
        let r = read_response(&mut s);
        assert!(!r.ok);
    }
    // A waiter that disconnects.
    {
        let mut s = f.connect();
        s.write_all(b"{\"op\":\"wait\"}\n").unwrap();
    }
    // Request without newline, then EOF: still served.
    {
        let mut s = f.connect();
        s.write_all(b"{\"op\":\"state\"}").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let r: Response = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(r.running, Some(true));
    }
    // Stdin on a container without --stdin.
    let r = f.request(&Request::Stdin);
    assert!(!r.ok);
    // Oversized request.
    {
        let mut s = f.connect();
        let big = vec![b'x'; 10_000];
        let _ = s.write_all(&big);
        let r = read_response(&mut s);
        assert!(!r.ok);
    }
    let state = f.request(&Request::State);
    assert!(state.ok && state.running == Some(true));
    let r = f.request(&Request::Kill {
        signal: libc::SIGKILL,
        all: false,
    });
    assert!(r.ok);
    assert_eq!(f.wait_exit().exit_code, 137);
    f.assert_cleaned_up();
}

/// Starts `args` as an exec in the running container: stdout into a pipe, stdin and stderr
/// `/dev/null`. Returns the connection (the exit is reported on it), the pid and stdout's
/// read end.
fn start_exec(f: &Fixture, args: &[&str]) -> (UnixStream, i32, fs::File) {
    use std::os::fd::AsRawFd;
    let spec = oci_spec::runtime::Spec::load(f.bundle().join("config.json")).unwrap();
    let base = spec.process().clone().unwrap();
    let input = wharf_runtime::spec::ExecInput {
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let process = wharf_runtime::spec::exec_process(&base, &input).unwrap();
    let path = f.path(&format!("exec-{}.json", args.join("-")));
    fs::write(&path, serde_json::to_vec(&process).unwrap()).unwrap();

    let (out_r, out_w) = nix::unistd::pipe().unwrap();
    let null_in = fs::File::open("/dev/null").unwrap();
    let null_err = fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let mut s = f.connect();
    let mut line = serde_json::to_vec(&Request::Exec {
        process: path.display().to_string(),
        tty: false,
    })
    .unwrap();
    line.push(b'\n');
    let fds = [null_in.as_raw_fd(), out_w.as_raw_fd(), null_err.as_raw_fd()];
    let sent = wharf_runtime::fdpass::send_with_fds(s.as_raw_fd(), &line, &fds).unwrap();
    s.write_all(&line[sent..]).unwrap();
    drop(out_w);
    let started = read_response_line(&mut s);
    assert!(started.ok, "exec did not start: {started:?}");
    (s, started.pid.unwrap(), fs::File::from(out_r))
}

/// One response line without a buffered reader, so that later lines stay on the socket.
fn read_response_line(s: &mut UnixStream) -> Response {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while s.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    serde_json::from_slice(&line)
        .unwrap_or_else(|e| panic!("bad response {:?}: {e}", String::from_utf8_lossy(&line)))
}

fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

#[test]
fn freeze_and_thaw_the_cgroup() {
    if skip_unless_root() {
        return;
    }
    let f = Fixture::new("freeze");
    let pid = f.start_ok(
        &["sh", "-c", "while true; do echo tick; sleep 0.05; done"],
        false,
    );
    let frozen = || wharf_runtime::cgroupfs::is_frozen(&f.cgroups_path()).unwrap();
    assert!(!frozen());

    let resp = f.request(&Request::Freeze { frozen: true });
    assert!(resp.ok, "{resp:?}");
    // Answered only once the kernel says so: no waiting needed here.
    assert!(frozen());
    // A frozen container writes nothing, and the shim still answers.
    let ticks = f.stream_text("stdout").len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(f.stream_text("stdout").len(), ticks, "output while frozen");
    let st = f.request(&Request::State);
    assert_eq!((st.ok, st.running), (true, Some(true)));
    // What a restarted wharfd takes over its saved `Paused`.
    assert_eq!(st.frozen, Some(true));
    // Asking again for the state it has is fine.
    assert!(f.request(&Request::Freeze { frozen: true }).ok);

    let resp = f.request(&Request::Freeze { frozen: false });
    assert!(resp.ok, "{resp:?}");
    assert!(!frozen());
    assert_eq!(f.request(&Request::State).frozen, Some(false));
    assert!(
        wait_until(Duration::from_secs(5), || f.stream_text("stdout").len()
            > ticks),
        "no output after the thaw"
    );
    assert!(matches!(proc_state(pid), Some('S' | 'R')));

    // Frozen again, a kill still ends it once thawed (what `docker kill` of a paused
    // container does: signal, then thaw).
    assert!(f.request(&Request::Freeze { frozen: true }).ok);
    assert!(
        f.request(&Request::Kill {
            signal: libc::SIGKILL,
            all: false
        })
        .ok
    );
    assert!(f.request(&Request::Freeze { frozen: false }).ok);
    assert_eq!(f.wait_exit().exit_code, 137);
    f.assert_cleaned_up();
}

#[test]
fn signal_exec_reaches_only_live_execs() {
    if skip_unless_root() {
        return;
    }
    let f = Fixture::new("sigexec");
    let init = f.start_ok(&["sleep", "1000"], false);

    // Not an exec: the container's init, the shim itself, a pid that does not exist.
    for pid in [init, f.shim_pid(), 1, 0, -1, i32::MAX] {
        let resp = f.request(&Request::SignalExec {
            pid,
            signal: libc::SIGKILL,
        });
        assert!(!resp.ok, "signal to pid {pid} was accepted");
        assert!(
            resp.error
                .as_deref()
                .unwrap_or("")
                .contains("no running exec"),
            "{resp:?}"
        );
    }
    let st = f.request(&Request::State);
    assert_eq!(st.running, Some(true), "the init must be untouched");

    let (mut conn, pid, mut out) = start_exec(&f, &["sh", "-c", "echo started; exec sleep 1000"]);
    let mut line = [0u8; 8];
    out.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"started\n");
    let resp = f.request(&Request::SignalExec {
        pid,
        signal: libc::SIGTERM,
    });
    assert!(resp.ok, "{resp:?}");
    let exit = read_response_line(&mut conn);
    assert_eq!(exit.exit.map(|e| e.exit_code), Some(128 + libc::SIGTERM));
    // Reaped: it is nobody's to signal any more.
    let resp = f.request(&Request::SignalExec {
        pid,
        signal: libc::SIGKILL,
    });
    assert!(!resp.ok, "{resp:?}");

    // An exec whose client went away is still the shim's to signal.
    let (conn, pid, _out) = start_exec(&f, &["sleep", "1000"]);
    drop(conn);
    assert!(
        f.request(&Request::SignalExec {
            pid,
            signal: libc::SIGKILL
        })
        .ok
    );
    assert!(wait_until(Duration::from_secs(5), || proc_state(pid).is_none()));
    assert_eq!(f.request(&Request::State).running, Some(true));

    f.request(&Request::Kill {
        signal: libc::SIGKILL,
        all: false,
    });
    f.wait_exit();
    f.assert_cleaned_up();
}
