//! json-file rotation (`max-size`, `max-file`) against a real wharfd, shim and kernel.
//!
//! A container writes 100 MB of numbered lines as fast as it can: the files on disk stay within
//! max-size x max-file while it writes, `logs` reads the files kept in order and gap-free, and a
//! `logs -f` started before the writer sees every line once and in order, except whole files
//! that rotated away while it was behind (a free-running writer outpaces a debug-built reader
//! on a busy host). A second container is fed in bursts that each rotate up to twice, waiting
//! for its readers in between: there `logs -f` and attach must see every line, none twice.
//! The testkit removes everything it made.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wharf_api::container::{ContainerCreateRequest, HostConfig, LogConfig};
use wharf_api::stdcopy::StdStream;
use wharf_client::{payload_of, AttachReader, Client, LogsOptions};
use wharf_testkit::{import_busybox, start_or_skip};

const MAX_SIZE: u64 = 1_000_000; // "1m": go-units' decimal megabyte, as dockerd
const MAX_FILE: u64 = 3;
const LINES: u32 = 100_000;
const LINE_LEN: usize = 1000; // 100 MB in all
/// One line as json-file stores it: 1000 bytes of output plus `{"log":…,"stream":…,"time":…}`.
const STORED_LINE: u64 = LINE_LEN as u64 + 100;

/// Waits for /tmp/go (so that `logs -f` is in place first), then writes LINES numbered lines.
fn opts(kv: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn writer() -> ContainerCreateRequest {
    let script = format!(
        "while [ ! -e /tmp/go ]; do usleep 10000; done; \
         awk 'BEGIN {{ pad = sprintf(\"%{}s\", \"\"); for (i = 1; i <= {LINES}; i++) printf \"%08d %s\\n\", i, pad }}'",
        LINE_LEN - 10
    );
    let mut r = ContainerCreateRequest::default();
    r.config.image = "busybox".into();
    r.config.cmd = Some(vec!["sh".into(), "-c".into(), script]);
    r.host_config = Some(HostConfig {
        log_config: LogConfig {
            r#type: "json-file".into(),
            config: Some(opts(&[("max-size", "1m"), ("max-file", "3")])),
            ..Default::default()
        },
        ..Default::default()
    });
    r
}

/// A line of container output as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    Whole(u32),
    /// The start of one line joined to the end of a later one: where a reader lost files.
    Damaged,
}

fn lines(out: &[u8]) -> Vec<Line> {
    out.split_inclusive(|&b| b == b'\n')
        .map(|l| {
            let whole = l.len() == LINE_LEN && l.ends_with(b"\n");
            match std::str::from_utf8(&l[..8.min(l.len())]).map(str::parse::<u32>) {
                Ok(Ok(n)) if whole && l[8..LINE_LEN - 1].iter().all(|&b| b == b' ') => {
                    Line::Whole(n)
                }
                _ => Line::Damaged,
            }
        })
        .collect()
}

/// Line numbers of what the files kept: all whole and consecutive, but for the first line,
/// of which the oldest file may hold only the end.
fn kept_numbers(out: &[u8]) -> Vec<u32> {
    let mut v = lines(out);
    if v.first() == Some(&Line::Damaged) {
        v.remove(0);
    }
    v.iter()
        .map(|l| match l {
            Line::Whole(n) => *n,
            Line::Damaged => panic!("a damaged line in the middle of what the files keep"),
        })
        .collect()
}

fn assert_consecutive(what: &str, v: &[u32]) {
    for w in v.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "{what}: line {} follows line {}",
            w[1],
            w[0]
        );
    }
}

/// Lines in a file: a follower that falls further behind than the files kept loses whole
/// files, never fewer lines than this at once.
const LINES_PER_FILE: u32 = (MAX_SIZE / STORED_LINE) as u32;

/// Checks what `logs -f` saw: every line in order and once; where the reader fell behind
/// by more than the files kept (the writer is much faster than a debug-built reader on a
/// busy host), whole files' worth of lines are missing, with at most one damaged line at
/// the seam. Returns how many lines were missed that way.
fn check_followed(out: &[u8]) -> u32 {
    let v = lines(out);
    assert_eq!(
        v.first(),
        Some(&Line::Whole(1)),
        "logs -f starts with the first line"
    );
    assert_eq!(
        v.last(),
        Some(&Line::Whole(LINES)),
        "logs -f ends with the last line"
    );
    let (mut prev, mut damaged, mut lost) = (0u32, false, 0u32);
    for l in v {
        match l {
            Line::Damaged => {
                assert!(!damaged, "two damaged lines in a row after line {prev}");
                damaged = true;
            }
            Line::Whole(n) => {
                assert!(n > prev, "logs -f: line {n} after line {prev}");
                let missing = n - prev - 1;
                if missing > 0 || damaged {
                    assert!(
                        missing + 1 >= LINES_PER_FILE,
                        "logs -f lost {missing} lines after line {prev}: less than a file"
                    );
                }
                lost += missing;
                prev = n;
                damaged = false;
            }
        }
    }
    lost
}

/// The container's log files and their sizes.
fn log_files(dir: &Path, id: &str) -> Vec<(String, u64)> {
    let prefix = format!("{id}-json.log");
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let len = e.metadata().ok()?.len();
                    name.starts_with(&prefix).then_some((name, len))
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn follow_all(c: Client, id: String) -> Vec<u8> {
    let opts = LogsOptions {
        follow: true,
        stderr: false,
        ..Default::default()
    };
    let mut s = c.logs_stream(&id, &opts).await.unwrap();
    let mut out = Vec::new();
    while let Some(frame) = s.next().await {
        let (stream, data) = frame.unwrap();
        assert_eq!(stream, StdStream::Stdout);
        out.extend_from_slice(&data);
    }
    out
}

#[tokio::test]
async fn rotation_under_a_100mb_writer() {
    let Some(d) = start_or_skip("it-logrotate").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let id = c
        .create_container(Some("writer"), &writer())
        .await
        .unwrap()
        .id;
    let ins = c.inspect_container(&id).await.unwrap();
    assert_eq!(
        ins.host_config.log_config,
        LogConfig {
            r#type: "json-file".into(),
            config: Some(opts(&[("max-size", "1m"), ("max-file", "3")])),
            ..Default::default()
        }
    );
    c.start(&id).await.unwrap();
    let pid = c.inspect_container(&id).await.unwrap().state.pid;
    let dir: PathBuf = d.data_root().join("containers").join(&id);

    let follower = tokio::spawn(follow_all(c.clone(), id.clone()));
    // The follower's request is answered once its replay is taken; give it that moment.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, dir, id) = (stop.clone(), dir.clone(), id.clone());
        std::thread::spawn(move || {
            let (mut max_total, mut samples, mut names) = (0u64, 0u64, BTreeSet::new());
            while !stop.load(Ordering::Relaxed) {
                let files = log_files(&dir, &id);
                max_total = max_total.max(files.iter().map(|(_, n)| n).sum());
                names.extend(files.into_iter().map(|(n, _)| n));
                samples += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            (max_total, samples, names)
        })
    };

    let t0 = std::time::Instant::now();
    std::fs::write(format!("/proc/{pid}/root/tmp/go"), b"").unwrap();
    let code = c.wait(&id, None).await.unwrap().status_code;
    let wrote = t0.elapsed();
    assert_eq!(code, 0);
    let followed = tokio::time::timeout(Duration::from_secs(120), follower)
        .await
        .expect("logs -f ends when the container exits")
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let (max_total, samples, names) = sampler.join().unwrap();

    // On disk: never more than max-size x max-file, give or take the line being rotated.
    eprintln!(
        "100 MB written in {wrote:?}; {samples} samples of the log dir, largest total {max_total} bytes"
    );
    assert!(samples > 10, "too few samples to mean anything: {samples}");
    assert!(
        max_total <= MAX_SIZE * MAX_FILE + STORED_LINE,
        "the log files held {max_total} bytes at once"
    );
    let want: BTreeSet<String> = ["", ".1", ".2"]
        .iter()
        .map(|s| format!("{id}-json.log{s}"))
        .collect();
    assert_eq!(names, want, "only max-file files ever exist");
    for (name, len) in log_files(&dir, &id) {
        assert!(len <= MAX_SIZE, "{name} is {len} bytes");
    }

    // `logs`: what the three files hold, in order, ending with the last line.
    let frames = c.logs(&id, &LogsOptions::default()).await.unwrap();
    let kept = kept_numbers(&payload_of(&frames, StdStream::Stdout));
    assert_consecutive("logs", &kept);
    assert_eq!(kept.last(), Some(&LINES));
    assert!(
        kept.len() as u32 >= 2 * LINES_PER_FILE,
        "only {} lines kept",
        kept.len()
    );
    eprintln!("logs: lines {}..={} kept", kept[0], LINES);

    let tail = c
        .logs(
            &id,
            &LogsOptions {
                tail: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let tail = kept_numbers(&payload_of(&tail, StdStream::Stdout));
    assert!(tail.len() <= 3 && tail.last() == Some(&LINES), "{tail:?}");

    // `logs -f` from before the first line, across ~100 rotations.
    let lost = check_followed(&followed);
    eprintln!(
        "logs -f: {} of {LINES} lines, {lost} lost to falling behind",
        LINES - lost
    );

    c.remove(&id, true).await.unwrap();
}

/// Counts whole lines as a reader receives them, so the feeder can wait for it.
struct Progress {
    buf: Vec<u8>,
    out: Vec<u8>,
    seen: tokio::sync::watch::Sender<usize>,
}

impl Progress {
    fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if let Some(end) = self.buf.iter().rposition(|&b| b == b'\n') {
            let whole: Vec<u8> = self.buf.drain(..=end).collect();
            self.out.extend_from_slice(&whole);
            self.seen
                .send_modify(|n| *n += whole.iter().filter(|&&b| b == b'\n').count());
        }
    }
}

#[tokio::test]
async fn followers_keep_every_line_across_rotations() {
    let Some(d) = start_or_skip("it-logfollow").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    let mut r = ContainerCreateRequest::default();
    r.config.image = "busybox".into();
    r.config.cmd = Some(vec!["cat".into()]);
    r.config.open_stdin = true;
    r.config.stdin_once = true;
    r.config.attach_stdin = true;
    r.host_config = Some(HostConfig {
        log_config: LogConfig {
            r#type: String::new(),
            config: Some(opts(&[("max-size", "100k"), ("max-file", "3")])),
            ..Default::default()
        },
        ..Default::default()
    });
    let id = c.create_container(Some("cat"), &r).await.unwrap().id;
    let ins = c.inspect_container(&id).await.unwrap();
    assert_eq!(
        ins.host_config.log_config,
        LogConfig {
            r#type: "json-file".into(),
            config: Some(opts(&[("max-size", "100k"), ("max-file", "3")])),
            ..Default::default()
        },
        "an empty Type is json-file, and the options stay"
    );

    let (mut attach_out, mut stdin) = c.attach(&id, true).await.unwrap().split();
    c.start(&id).await.unwrap();
    let mut logs_out = c
        .logs_stream(
            &id,
            &LogsOptions {
                follow: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let (seen_logs, mut logs_rx) = tokio::sync::watch::channel(0usize);
    let (seen_attach, mut attach_rx) = tokio::sync::watch::channel(0usize);
    let logs_task = tokio::spawn(async move {
        let mut p = Progress {
            buf: Vec::new(),
            out: Vec::new(),
            seen: seen_logs,
        };
        while let Some(f) = logs_out.next().await {
            p.feed(&f.unwrap().1);
        }
        p.out
    });
    let attach_task = tokio::spawn(async move {
        let r: &mut AttachReader = &mut attach_out;
        let mut p = Progress {
            buf: Vec::new(),
            out: Vec::new(),
            seen: seen_attach,
        };
        while let Some(f) = r.next_frame().await {
            p.feed(&f.unwrap().1);
        }
        p.out
    });

    // Up to 150 stored lines (~160 kB) per burst: never more than two rotations beyond a
    // reader that has caught up, so nothing it still needs rotates away.
    const TOTAL: u32 = 12_000;
    let pad = " ".repeat(LINE_LEN - 10);
    let (mut next, mut burst) = (1u32, 1u32);
    while next <= TOTAL {
        let last = (next + burst - 1).min(TOTAL);
        let text: String = (next..=last).map(|i| format!("{i:08} {pad}\n")).collect();
        stdin.write_stdin(text.as_bytes()).await.unwrap();
        for rx in [&mut logs_rx, &mut attach_rx] {
            tokio::time::timeout(
                Duration::from_secs(60),
                rx.wait_for(|n| *n >= last as usize),
            )
            .await
            .expect("a reader stopped getting lines")
            .unwrap();
        }
        next = last + 1;
        burst = burst * 7 % 151 + 1;
    }
    stdin.shutdown_write().await.unwrap();
    assert_eq!(c.wait(&id, None).await.unwrap().status_code, 0);
    let want: Vec<u32> = (1..=TOTAL).collect();
    for (what, task) in [("logs -f", logs_task), ("attach", attach_task)] {
        let out = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("the stream ends when the container exits")
            .unwrap();
        assert_eq!(kept_numbers(&out), want, "{what}");
    }
    let rotated = log_files(&d.data_root().join("containers").join(&id), &id);
    assert_eq!(rotated.len(), 3, "{rotated:?}");
    c.remove(&id, true).await.unwrap();
}
