//! Every byte of output arrives, in bounded memory, against a real wharfd, shim and the real
//! docker CLI.
//!
//! `run --rm` (attached, no TTY) of a container that prints tens of MB to a reader that reads
//! nothing until the container is gone (removed, log file and all) must still deliver every
//! line, in order, exactly once; so must attach and `logs -f` of a log that rotates (`none`,
//! json-file `max-size`) to a reader that falls many files behind. And `logs` of a big log must not make wharfd hold the log:
//! its peak RSS (VmHWM) grows by a bounded amount, whatever the log's size.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wharf_api::container::ContainerCreateRequest;
use wharf_testkit::{import_busybox, start_or_skip, TestDaemon};

const LINE_LEN: usize = 1000;

/// `n` numbered lines of LINE_LEN bytes each (newline included), as fast as awk can.
fn printer(n: u32) -> String {
    format!(
        "awk 'BEGIN {{ pad = sprintf(\"%{}s\", \"\"); for (i = 1; i <= {n}; i++) printf \"%08d %s\\n\", i, pad }}'",
        LINE_LEN - 10
    )
}

fn docker(d: &TestDaemon, config: &Path) -> Command {
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_CONTEXT");
    cmd
}

fn have_docker_cli() -> bool {
    Command::new("docker")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A wharfd with busybox imported, for a test that drives it with the docker CLI; `None` (the
/// test skipped, saying why) without the CLI or the daemon.
fn daemon_with_busybox(test: &str) -> Option<(tokio::runtime::Runtime, TestDaemon)> {
    if !have_docker_cli() {
        wharf_testkit::skip("no docker CLI on PATH");
        return None;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let d = rt.block_on(start_or_skip(test))?;
    rt.block_on(import_busybox(&d.client(), "busybox:latest"))
        .unwrap();
    Some((rt, d))
}

/// Waits (bounded) until `cond` holds.
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < limit, "{what}: not after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads `run --rm`'s stdout and checks it is lines 1..=n, each once, in order, whole.
fn check_lines(out: impl Read, n: u32) -> u64 {
    let mut r = BufReader::with_capacity(1 << 16, out);
    let mut line = Vec::with_capacity(LINE_LEN);
    let (mut next, mut bytes) = (1u32, 0u64);
    loop {
        line.clear();
        let got = r.read_until(b'\n', &mut line).unwrap();
        if got == 0 {
            break;
        }
        bytes += got as u64;
        let num = std::str::from_utf8(&line[..8.min(line.len())])
            .ok()
            .and_then(|s| s.parse::<u32>().ok());
        assert!(
            line.len() == LINE_LEN && num == Some(next),
            "after {} whole lines ({bytes} bytes): expected line {next}, got {:?}",
            next - 1,
            String::from_utf8_lossy(&line[..40.min(line.len())])
        );
        assert!(line[8..LINE_LEN - 1].iter().all(|&b| b == b' '));
        next += 1;
    }
    assert_eq!(next - 1, n, "lines delivered");
    bytes
}

/// An attached `docker run --rm --name <name> <log_opts> busybox` printing `lines` lines.
fn spawn_run_rm(d: &TestDaemon, config: &Path, name: &str, log_opts: &[&str], lines: u32) -> Child {
    docker(d, config)
        .args(["run", "--rm", "--name", name])
        .args(log_opts)
        .args(["busybox", "sh", "-c"])
        .arg(printer(lines))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a `run` whose stdout has been read, and checks it succeeded.
fn assert_run_succeeded(mut child: Child) {
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "docker run: {status}: {err}");
}

/// Attached `run --rm` of a container printing `lines` lines, read by a reader that reads
/// nothing until the container has exited and been removed (log file and all), `rounds` times.
fn run_rm_rounds(test: &str, log_opts: &[&str], lines: u32, rounds: u32) {
    let Some((rt, d)) = daemon_with_busybox(test) else {
        return;
    };
    let c = d.client();
    let config = d.dir().join("docker-config");
    for round in 0..rounds {
        let name = format!("{test}-{round}");
        let mut child = spawn_run_rm(&d, &config, &name, log_opts, lines);
        let t0 = Instant::now();
        wait_until("container created", Duration::from_secs(30), || {
            rt.block_on(c.inspect_container(&name)).is_ok()
        });
        wait_until("container auto-removed", Duration::from_secs(60), || {
            rt.block_on(c.inspect_container(&name)).is_err()
        });
        let removed_after = t0.elapsed();
        let t1 = Instant::now();
        let bytes = check_lines(child.stdout.take().unwrap(), lines);
        assert_run_succeeded(child);
        assert_eq!(bytes, u64::from(lines) * LINE_LEN as u64);
        eprintln!(
            "round {round}: removed after {removed_after:?}, then {bytes} bytes read in {:?}",
            t1.elapsed()
        );
    }
}

#[test]
fn run_rm_delivers_every_byte_to_a_reader_behind_the_removal() {
    run_rm_rounds("it-output-runrm", &[], 40_000, 3);
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn logs_of_a_big_log_keep_wharfd_memory_bounded() {
    let Some((rt, d)) = daemon_with_busybox("it-output-logsrss") else {
        return;
    };
    let c = d.client();
    const LINES: u32 = 150_000; // 150 MB of output, ~165 MB of json-file
    let mut r = ContainerCreateRequest::default();
    r.config.image = "busybox".into();
    r.config.cmd = Some(vec!["sh".into(), "-c".into(), printer(LINES)]);
    let id = rt
        .block_on(c.create_container(Some("it-output-logsrss"), &r))
        .unwrap()
        .id;
    rt.block_on(c.start(&id)).unwrap();
    assert_eq!(rt.block_on(c.wait(&id, None)).unwrap().status_code, 0);
    let pid = d.pid().unwrap();
    let before = status_kib(pid, "VmHWM:");
    let config = d.dir().join("docker-config");
    // Two readers at once: the whole log, and its tail.
    let mut all = docker(&d, &config)
        .args(["logs", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let tail = docker(&d, &config)
        .args(["logs", "--tail", "3", &id])
        .output()
        .unwrap();
    // The tail counts log entries, and the shim stores a line cut by a pipe read as two
    // (as json-file does): three entries are two or three lines (the first may be the end of
    // a cut one), the last one last.
    let last: Vec<&[u8]> = tail.stdout.split_inclusive(|&b| b == b'\n').collect();
    assert!((2..=3).contains(&last.len()), "{} lines", last.len());
    assert!(last[1..].iter().all(|l| l.len() == LINE_LEN));
    assert!(last[last.len() - 1].starts_with(format!("{LINES:08} ").as_bytes()));
    let bytes = check_lines(all.stdout.take().unwrap(), LINES);
    assert!(all.wait().unwrap().success());
    let after = status_kib(pid, "VmHWM:");
    let rss = status_kib(pid, "VmRSS:");
    eprintln!("logs of {bytes} bytes: wharfd VmHWM {before} -> {after} KiB, VmRSS after {rss} KiB");
    // The old reader held the whole log parsed (several times its size).
    assert!(
        after - before < 48 * 1024,
        "wharfd's peak RSS grew by {} KiB while reading a {bytes}-byte log",
        after - before
    );
    rt.block_on(c.remove(&id, true)).unwrap();
}

/// A reader of `out` that takes its time: nothing for `stall`, then `chunk` bytes every `pause`,
/// so it falls many rotated files behind a container that prints as fast as it can.
struct Slow<R> {
    inner: R,
    stall: Option<Duration>,
    chunk: usize,
    pause: Duration,
}

impl<R: Read> Read for Slow<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(s) = self.stall.take() {
            std::thread::sleep(s);
        }
        std::thread::sleep(self.pause);
        let n = buf.len().min(self.chunk);
        self.inner.read(&mut buf[..n])
    }
}

fn slow(out: impl Read) -> impl Read {
    Slow {
        inner: out,
        stall: Some(Duration::from_secs(2)),
        chunk: 64 * 1024,
        pause: Duration::from_millis(3),
    }
}

/// Attached `run --rm` with a log that rotates (at most two or three small files) and a reader
/// that falls far behind: every line arrives, because the shim does not delete a file the
/// follower has not opened, and the follower opens files ahead of its client.
fn run_rm_rotating(test: &str, log_opts: &[&str], lines: u32) {
    let Some((rt, d)) = daemon_with_busybox(test) else {
        return;
    };
    let c = d.client();
    let config = d.dir().join("docker-config");
    let mut child = spawn_run_rm(&d, &config, test, log_opts, lines);
    let t0 = Instant::now();
    let bytes = check_lines(slow(child.stdout.take().unwrap()), lines);
    assert_run_succeeded(child);
    assert_eq!(bytes, u64::from(lines) * LINE_LEN as u64);
    eprintln!("{log_opts:?}: {bytes} bytes read in {:?}", t0.elapsed());
    wait_until("container auto-removed", Duration::from_secs(30), || {
        rt.block_on(c.inspect_container(test)).is_err()
    });
}

#[test]
fn a_slow_reader_of_a_none_log_gets_every_byte() {
    // `none` keeps two files of 512 KiB for attach: 20 MB is forty rotations.
    run_rm_rotating("it-output-none", &["--log-driver", "none"], 20_000);
}

#[test]
fn a_slow_reader_of_a_rotating_json_file_gets_every_byte() {
    run_rm_rotating(
        "it-output-rotating",
        &["--log-opt", "max-size=1m", "--log-opt", "max-file=2"],
        20_000,
    );
}

#[test]
fn a_slow_logs_follower_of_a_rotating_log_gets_every_byte() {
    let test = "it-output-logsf";
    let Some((rt, d)) = daemon_with_busybox(test) else {
        return;
    };
    let c = d.client();
    let config = d.dir().join("docker-config");
    const LINES: u32 = 20_000;
    // The output starts once the follower is there: the container waits for a file the test
    // creates after starting `logs -f`.
    let ok = docker(&d, &config)
        .args(["run", "-d", "--name", test])
        .args(["--log-opt", "max-size=1m", "--log-opt", "max-file=3"])
        .args(["busybox", "sh", "-c"])
        .arg(format!(
            "while [ ! -e /tmp/go ]; do sleep 0.05; done; {}",
            printer(LINES)
        ))
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut logs = docker(&d, &config)
        .args(["logs", "-f", test])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The follower is attached once `logs -f` has its stream; a moment is plenty, and an
    // early `go` only makes the test stricter (the replay covers what came before).
    std::thread::sleep(Duration::from_millis(500));
    let go = docker(&d, &config)
        .args(["exec", test, "touch", "/tmp/go"])
        .output()
        .unwrap();
    assert!(
        go.status.success(),
        "{}",
        String::from_utf8_lossy(&go.stderr)
    );
    let bytes = check_lines(slow(logs.stdout.take().unwrap()), LINES);
    assert!(logs.wait().unwrap().success());
    assert_eq!(bytes, u64::from(LINES) * LINE_LEN as u64);
    rt.block_on(c.remove(test, true)).unwrap();
}
