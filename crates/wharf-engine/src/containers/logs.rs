//! Container output from its json-file log: replay with filters, and follow while it runs.
//!
//! The shim is the only writer; wharfd only reads, so a restarted wharfd, `logs -f` and
//! `attach` all see the same bytes. Following uses inotify on the log file plus the container's
//! run events, so a follower wakes as soon as output or an exit happens.

use super::Container;
use bytes::Bytes;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use wharf_api::stdcopy::StdStream;
use wharf_backend::{OutputChunk, OutputStream};
use wharf_runtime::shim_proto::LogEntry;

use crate::timefmt::parse_rfc3339;

/// Which entries to keep.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub stdout: bool,
    pub stderr: bool,
    /// Unix seconds; 0 = unset.
    pub since: f64,
    pub until: f64,
}

impl LogFilter {
    fn keep(&self, e: &LogEntry) -> bool {
        let stream_ok = match e.stream.as_str() {
            "stdout" => self.stdout,
            "stderr" => self.stderr,
            _ => false,
        };
        if !stream_ok {
            return false;
        }
        if self.since > 0.0 || self.until > 0.0 {
            let t = parse_rfc3339(&e.time)
                .map(|t| t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9)
                .unwrap_or(0.0);
            if self.since > 0.0 && t < self.since {
                return false;
            }
            if self.until > 0.0 && t > self.until {
                return false;
            }
        }
        true
    }
}

fn to_chunk(e: LogEntry) -> OutputChunk {
    OutputChunk {
        stream: if e.stream == "stderr" {
            StdStream::Stderr
        } else {
            StdStream::Stdout
        },
        data: Bytes::from(e.log.into_bytes()),
        timestamp: Some(e.time),
    }
}

/// Reads whole lines from `offset`; returns the entries and the offset after the last whole line.
fn read_from(path: &Path, offset: u64) -> std::io::Result<(Vec<LogEntry>, u64)> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(e),
    };
    let mut r = BufReader::new(f);
    r.seek(SeekFrom::Start(offset))?;
    let mut out = Vec::new();
    let mut pos = offset;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            // A partial line is the shim mid-write: leave it for the next read.
            break;
        }
        pos += n as u64;
        if let Ok(e) = serde_json::from_slice::<LogEntry>(&line) {
            out.push(e);
        }
    }
    Ok((out, pos))
}

pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Everything logged so far that passes the filter, the last `tail` of it.
pub fn replay(path: &Path, filter: &LogFilter, tail: Option<usize>) -> (Vec<OutputChunk>, u64) {
    let (entries, end) = read_from(path, 0).unwrap_or_default();
    let mut kept: Vec<LogEntry> = entries.into_iter().filter(|e| filter.keep(e)).collect();
    if let Some(n) = tail {
        if kept.len() > n {
            kept.drain(..kept.len() - n);
        }
    }
    (kept.into_iter().map(to_chunk).collect(), end)
}

struct Watch(nix::sys::inotify::Inotify);

impl AsRawFd for Watch {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

fn watch_file(path: &Path) -> Option<AsyncFd<Watch>> {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
    ino.add_watch(
        path,
        AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CLOSE_WRITE,
    )
    .ok()?;
    // SAFETY: the Inotify is moved into the AsyncFd and owns its descriptor, so the fd stays
    // open exactly as long as the registration.
    unsafe { AsyncFd::register(Watch(ino)) }.ok()
}

/// Streams entries written after `offset` until the run numbered `until_run_finished` has ended
/// (and its last output is read), or the receiver goes away.
pub fn follow(
    path: PathBuf,
    offset: u64,
    filter: LogFilter,
    container: Arc<Container>,
    until_run_finished: u64,
    initial: Vec<OutputChunk>,
) -> OutputStream {
    let (tx, rx) = mpsc::channel::<OutputChunk>(64);
    tokio::spawn(async move {
        for c in initial {
            if tx.send(c).await.is_err() {
                return;
            }
        }
        let mut events = container.events.subscribe();
        let watch = watch_file(&path);
        let mut pos = offset;
        loop {
            let done = {
                let ev = events.borrow_and_update();
                ev.finished >= until_run_finished || ev.removed
            };
            let (entries, next) = match read_from(&path, pos) {
                Ok(x) => x,
                Err(_) => return,
            };
            pos = next;
            for e in entries {
                if filter.keep(&e) && tx.send(to_chunk(e)).await.is_err() {
                    return;
                }
            }
            if done {
                return;
            }
            tokio::select! {
                _ = tx.closed() => return,
                r = events.changed() => { if r.is_err() { return; } }
                _ = wait_watch(&watch) => {}
            }
        }
    });
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (c, rx))
    }))
}

async fn wait_watch(w: &Option<AsyncFd<Watch>>) {
    match w {
        Some(fd) => {
            if let Ok(mut guard) = fd.readable().await {
                // Drain the queued events; we only need to know that something changed.
                let _ = guard.get_inner().0.read_events();
                guard.clear_ready();
            }
        }
        // Without inotify (file missing at start), fall back to a short poll.
        None => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
    }
}
