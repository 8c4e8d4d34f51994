//! Container output from its json-file log: replay with filters, and follow while it runs,
//! across the files the shim rotates (`shim_proto`'s "Log file": `<log>.<N-1>` … `<log>.1`,
//! `<log>`, oldest first).
//!
//! The shim is the only writer; wharfd only reads, so a restarted wharfd, `logs -f` and
//! `attach` all see the same bytes. A reader holds the file it reads open, so a rotation cannot
//! take it away: when the current name stops naming that file, the file is complete (the shim
//! never writes a file again once renamed), and the reader goes on with the files that came
//! after it, found by identity (device, inode), not by name. Following wakes on inotify events
//! of the log's directory (renames and new files included) and on the container's run events.
//!
//! What a reader has not opened yet it pins (`wharf_runtime::logpin`): the shim does not
//! delete a file before every reader has it open, and a follower opens new files as they
//! appear, up to [`OPEN_AHEAD`] files ahead of what its client has taken, whatever the client's
//! speed. So a follower loses nothing to rotation or removal; a client that falls further
//! behind slows the container's output instead, as a slow `docker attach` client does.

use super::Container;
use bytes::Bytes;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use wharf_api::stdcopy::StdStream;
use wharf_backend::{OutputChunk, OutputStream};
use wharf_runtime::logpin::{self, ReaderPin};
use wharf_runtime::shim_proto::LogEntry;

use crate::timefmt::parse_rfc3339;

/// Which entries to keep, and how to show them.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub stdout: bool,
    pub stderr: bool,
    /// Unix seconds; 0 = unset.
    pub since: f64,
    pub until: f64,
    /// `logs --details`: each line after its attrs, as dockerd writes them.
    pub details: bool,
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

    fn chunk(&self, e: LogEntry) -> OutputChunk {
        let data = if self.details {
            let mut line = details_prefix(&e.attrs);
            line.push_str(&e.log);
            line.into_bytes()
        } else {
            e.log.into_bytes()
        };
        OutputChunk {
            stream: if e.stream == "stderr" {
                StdStream::Stderr
            } else {
                StdStream::Stdout
            },
            data: Bytes::from(data),
            timestamp: Some(e.time),
        }
    }
}

/// dockerd's `--details` prefix (`api/server/httputils/write_log_stream.go`): `k=v` pairs
/// sorted by key, each side query-escaped, joined by `,`, then one space, also when there are
/// none.
fn details_prefix(attrs: &std::collections::BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        query_escape(k, &mut out);
        out.push('=');
        query_escape(v, &mut out);
    }
    out.push(' ');
    out
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// A file's identity, stable across renames.
type FileId = (u64, u64);

fn id_of(m: &std::fs::Metadata) -> FileId {
    (m.dev(), m.ino())
}

struct Opened {
    file: File,
    id: FileId,
    /// The shim's number for this file (`logpin`); `None` without xattrs.
    generation: Option<u64>,
}

/// A container's log: `path` is the file being written; `max_file` how many are kept in all;
/// `readers` the file readers pin it by (`logpin`), which exists before the log's first file.
#[derive(Debug, Clone)]
pub struct LogFiles {
    pub path: PathBuf,
    pub max_file: u32,
    pub readers: PathBuf,
}

/// A snapshot that keeps changing under a very fast writer is taken as it is after this many
/// tries; each try is a few syscalls per file, a rotation a few renames.
const SNAPSHOT_TRIES: usize = 100;

impl LogFiles {
    /// Names, oldest first: `.<max_file-1>` … `.1`, then the current file.
    fn paths(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = (1..self.max_file.max(1))
            .rev()
            .map(|n| {
                let mut s = self.path.clone().into_os_string();
                s.push(format!(".{n}"));
                PathBuf::from(s)
            })
            .collect();
        v.push(self.path.clone());
        v
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    fn current_id(&self) -> Option<FileId> {
        std::fs::metadata(&self.path).ok().map(|m| id_of(&m))
    }

    /// The files that exist, oldest first, all as they were at one instant: every name is
    /// opened, then every name is looked at again, and if one no longer names what was opened
    /// (a rotation ran in between) it starts over. A name that kept its file from its open to
    /// its second look named it at the instant between the two passes, so the set is that
    /// instant's; any instant's set is in order and complete but for a crash's gap, because the
    /// shim renames one name at a time.
    fn open_all(&self) -> Vec<Opened> {
        let paths = self.paths();
        let mut last = Vec::new();
        for _ in 0..SNAPSHOT_TRIES {
            let opened: Vec<Option<Opened>> = paths
                .iter()
                .map(|p| {
                    let file = File::open(p).ok()?;
                    let id = id_of(&file.metadata().ok()?);
                    let generation = logpin::generation(&file);
                    Some(Opened {
                        file,
                        id,
                        generation,
                    })
                })
                .collect();
            let stable = paths.iter().zip(&opened).all(|(p, o)| {
                std::fs::metadata(p).ok().map(|m| id_of(&m)) == o.as_ref().map(|o| o.id)
            });
            last = opened.into_iter().flatten().collect();
            if stable {
                break;
            }
        }
        last
    }

    /// The files that came after `id`, oldest first; all of them when `id` is gone (a file
    /// leaves only once everything older has) or unknown.
    fn after(&self, id: Option<FileId>) -> Vec<Opened> {
        let mut all = self.open_all();
        match all.iter().position(|o| Some(o.id) == id) {
            Some(i) => all.split_off(i + 1),
            None => all,
        }
    }

    /// A pin on every file, taken before a reader opens any (narrowed by [`Cursor::pinned`]);
    /// `None` when the log is being removed or its directory does not exist yet.
    fn pin(&self) -> Option<ReaderPin> {
        ReaderPin::all(&self.readers).ok().flatten()
    }

    /// A cursor at the end of what the current file holds (attach without `logs`), at a line
    /// boundary so that a line the shim is still writing is read whole later.
    pub fn end(&self) -> Cursor {
        let pin = self.pin();
        let Ok(file) = File::open(&self.path) else {
            return Cursor::unopened(pin);
        };
        let Ok(meta) = file.metadata() else {
            return Cursor::unopened(pin);
        };
        let len = meta.len();
        const LOOK_BACK: u64 = 64 * 1024;
        let start = len.saturating_sub(LOOK_BACK);
        let mut buf = vec![0; (len - start) as usize];
        let offset = match file.read_exact_at(&mut buf, start) {
            Ok(()) => match buf.iter().rposition(|&b| b == b'\n') {
                Some(p) => start + p as u64 + 1,
                None if start == 0 => 0,
                None => len,
            },
            Err(_) => len,
        };
        let generation = logpin::generation(&file);
        Cursor {
            id: Some(id_of(&meta)),
            file: Some(file),
            offset,
            generation,
            pin: None,
        }
        .pinned(pin)
    }
}

/// Where a reader stands: the file it reads, held open, and the offset after the last whole
/// line read from it. Empty when there was no file yet. A follower's cursor carries its pin on
/// the files after this one.
#[derive(Default)]
pub struct Cursor {
    file: Option<File>,
    id: Option<FileId>,
    offset: u64,
    generation: Option<u64>,
    pin: Option<ReaderPin>,
}

impl Cursor {
    fn at_start(o: Opened) -> Self {
        Cursor {
            file: Some(o.file),
            id: Some(o.id),
            offset: 0,
            generation: o.generation,
            pin: None,
        }
    }

    /// No file yet: the pin stays on every file.
    fn unopened(pin: Option<ReaderPin>) -> Self {
        Cursor {
            pin,
            ..Default::default()
        }
    }

    /// Keeps `pin` on the files after this one only; without generations nothing can be
    /// pinned, and it goes.
    fn pinned(mut self, pin: Option<ReaderPin>) -> Self {
        self.pin = match (pin, self.generation) {
            (Some(mut pin), Some(g)) => pin.need_from(g + 1).is_ok().then_some(pin),
            _ => None,
        };
        self
    }

    /// The next whole lines written since the last read, at most about `READ_CHUNK` bytes of
    /// them (a reader loops until it gets none), so a reader far behind never holds more.
    /// `None` when there is nothing new.
    fn read(&mut self) -> Option<Vec<LogEntry>> {
        let f = self.file.as_ref()?;
        match read_batch(f, self.offset, u64::MAX) {
            Ok((entries, end)) if end > self.offset => {
                self.offset = end;
                Some(entries)
            }
            _ => None,
        }
    }
}

/// How much of a log file is read at a time: the bound on what one reader holds.
const READ_CHUNK: usize = 128 * 1024;

/// Reads `buf.len()` bytes at `offset`, fewer only at the end of the file.
fn read_full_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The whole lines in `[offset, limit)` that fit in about `READ_CHUNK` bytes (one line at least,
/// however long); returns them and the offset after the last one. A partial line at the end is
/// the shim mid-write and is left for the next read.
fn read_batch(f: &File, offset: u64, limit: u64) -> std::io::Result<(Vec<LogEntry>, u64)> {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let want = (limit.saturating_sub(offset)).min(buf.len() as u64) as usize;
        let n = read_full_at(f, &mut buf[..want], offset)?;
        match buf[..n].iter().rposition(|&b| b == b'\n') {
            Some(p) => return Ok((parse_lines(&buf[..=p]), offset + p as u64 + 1)),
            // One line longer than the buffer: read it whole.
            None if n == buf.len() => buf.resize(buf.len() * 2, 0),
            None => return Ok((Vec::new(), offset)),
        }
    }
}

fn parse_lines(data: &[u8]) -> Vec<LogEntry> {
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<LogEntry>(l).ok())
        .collect()
}

/// Where the last `n` lines the filter keeps start in `f`'s first `end` bytes, read from the
/// end backwards a chunk at a time; `Err(count)` when it keeps fewer, `count` of them.
fn tail_start(
    f: &File,
    end: u64,
    n: usize,
    filter: &LogFilter,
) -> std::io::Result<Result<u64, usize>> {
    if n == 0 {
        return Ok(Ok(end));
    }
    // `buf` holds the bytes [lo, lo + buf.len()) not looked at yet.
    let mut buf: Vec<u8> = Vec::new();
    let mut lo = end;
    let mut trimmed = false;
    let mut count = 0;
    loop {
        if !trimmed {
            // What follows the last newline is a line still being written: not part of the log.
            if let Some(p) = buf.iter().rposition(|&b| b == b'\n') {
                buf.truncate(p + 1);
                trimmed = true;
            } else if lo == 0 {
                return Ok(Err(0));
            }
        }
        if trimmed {
            // Lines wholly in `buf`: each after a newline that is not its last byte.
            while buf.len() > 1 {
                let Some(j) = buf[..buf.len() - 1].iter().rposition(|&b| b == b'\n') else {
                    break;
                };
                if keeps(filter, &buf[j + 1..]) {
                    count += 1;
                    if count == n {
                        return Ok(Ok(lo + j as u64 + 1));
                    }
                }
                buf.truncate(j + 1);
            }
            if lo == 0 {
                if !buf.is_empty() && keeps(filter, &buf) {
                    count += 1;
                    if count == n {
                        return Ok(Ok(0));
                    }
                }
                return Ok(Err(count));
            }
        }
        let step = (READ_CHUNK as u64).min(lo);
        let mut chunk = vec![0u8; step as usize];
        let got = read_full_at(f, &mut chunk, lo - step)?;
        if got < chunk.len() {
            // Shorter than it was a moment ago: not a file the shim writes to.
            return Ok(Err(count));
        }
        lo -= step;
        chunk.extend_from_slice(&buf);
        buf = chunk;
    }
}

fn keeps(filter: &LogFilter, line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    serde_json::from_slice::<LogEntry>(line).is_ok_and(|e| filter.keep(&e))
}

/// What was logged when a reader arrived, read lazily a chunk at a time as it is consumed, so
/// a client reading a huge log costs wharfd one chunk, not the log: the files of one snapshot,
/// each up to its length then, starting at a file and offset (the whole log, or its tail).
pub struct Replay {
    files: std::collections::VecDeque<(File, u64)>,
    offset: u64,
    filter: LogFilter,
    batch: std::vec::IntoIter<LogEntry>,
}

impl Replay {
    pub fn empty() -> Self {
        Replay {
            files: Default::default(),
            offset: 0,
            filter: LogFilter::default(),
            batch: Vec::new().into_iter(),
        }
    }
}

impl Iterator for Replay {
    type Item = OutputChunk;

    fn next(&mut self) -> Option<OutputChunk> {
        loop {
            for e in self.batch.by_ref() {
                if self.filter.keep(&e) {
                    return Some(self.filter.chunk(e));
                }
            }
            let (f, end) = self.files.front()?;
            match read_batch(f, self.offset, *end) {
                Ok((entries, next)) if next > self.offset => {
                    self.offset = next;
                    self.batch = entries.into_iter();
                }
                // The end of this file (or an unreadable one): on to the next.
                _ => {
                    self.files.pop_front();
                    self.offset = 0;
                }
            }
        }
    }
}

/// Everything logged so far that passes the filter, the last `tail` of it, and where a follower
/// goes on from. Only the tail's start is looked for here (reading backwards from the end); the
/// lines themselves are read as the replay is consumed.
pub fn replay(files: &LogFiles, filter: &LogFilter, tail: Option<usize>) -> (Replay, Cursor) {
    let pin = files.pin();
    let snapshot = files.open_all();
    let mut sized: Vec<(File, FileId, u64, Option<u64>)> = Vec::new();
    for o in snapshot {
        let Ok(m) = o.file.metadata() else { continue };
        sized.push((o.file, o.id, m.len(), o.generation));
    }
    let Some(newest) = sized.last() else {
        return (Replay::empty(), Cursor::unopened(pin));
    };
    // The follower goes on after the last whole line of the snapshot.
    let cursor_end = match read_last_newline(&newest.0, newest.2) {
        Ok(e) => e,
        Err(_) => newest.2,
    };
    let cursor = match newest.0.try_clone() {
        Ok(file) => Cursor {
            file: Some(file),
            id: Some(newest.1),
            offset: cursor_end,
            generation: newest.3,
            pin: None,
        }
        .pinned(pin),
        Err(_) => Cursor::unopened(pin),
    };
    let last = sized.len() - 1;
    sized[last].2 = cursor_end;
    // Newest first: an older file is looked at only when the newer ones hold too few lines.
    let (mut first, mut offset) = (0, 0);
    if let Some(n) = tail {
        let mut need = n;
        let mut found = false;
        for (i, (f, _, end, _)) in sized.iter().enumerate().rev() {
            match tail_start(f, *end, need, filter) {
                Ok(Ok(at)) => {
                    (first, offset, found) = (i, at, true);
                    break;
                }
                Ok(Err(count)) => need -= count,
                Err(_) => {}
            }
        }
        if !found {
            (first, offset) = (0, 0);
        }
    }
    let replay = Replay {
        files: sized
            .into_iter()
            .skip(first)
            .map(|(f, _, end, _)| (f, end))
            .collect(),
        offset,
        filter: filter.clone(),
        batch: Vec::new().into_iter(),
    };
    (replay, cursor)
}

/// The offset after the last newline in `f`'s first `len` bytes (0 when none).
fn read_last_newline(f: &File, len: u64) -> std::io::Result<u64> {
    let mut hi = len;
    let mut buf = vec![0u8; 64 * 1024];
    while hi > 0 {
        let step = (buf.len() as u64).min(hi);
        let lo = hi - step;
        let got = read_full_at(f, &mut buf[..step as usize], lo)?;
        if let Some(p) = buf[..got].iter().rposition(|&b| b == b'\n') {
            return Ok(lo + p as u64 + 1);
        }
        hi = lo;
    }
    Ok(0)
}

/// Inotify on the log's directory: writes, renames and new files in it.
struct Watch(nix::sys::inotify::Inotify);

/// The follower's watch. Closing an inotify descriptor waits for an SRCU grace period (the
/// kernel frees its marks only after one: 10-15 ms measured on a 2-vCPU VM), so it is closed
/// on the blocking pool: neither an async worker nor the end of the stream (the last step of
/// `docker run`) waits for it.
struct DirWatch(Option<AsyncFd<Watch>>);

impl DirWatch {
    fn replace(&mut self, w: Option<AsyncFd<Watch>>) {
        close_later(std::mem::replace(&mut self.0, w));
    }
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        close_later(self.0.take());
    }
}

fn close_later(w: Option<AsyncFd<Watch>>) {
    let Some(fd) = w else { return };
    // into_inner deregisters from the reactor here; only the close itself is deferred.
    let watch = fd.into_inner();
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn_blocking(move || drop(watch));
        }
        Err(_) => drop(watch),
    }
}

impl AsRawFd for Watch {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

fn watch_dir(dir: &Path) -> Option<AsyncFd<Watch>> {
    use nix::sys::inotify::{AddWatchFlags as F, InitFlags, Inotify};
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
    ino.add_watch(
        dir,
        F::IN_MODIFY
            | F::IN_CLOSE_WRITE
            | F::IN_CREATE
            | F::IN_MOVED_FROM
            | F::IN_MOVED_TO
            | F::IN_DELETE
            | F::IN_DELETE_SELF
            | F::IN_MOVE_SELF,
    )
    .ok()?;
    // SAFETY: the Inotify is moved into the AsyncFd and owns its descriptor, so the fd stays
    // open exactly as long as the registration.
    unsafe { AsyncFd::register(Watch(ino)) }.ok()
}

/// How many files a follower opens ahead of the one its client is reading. Each is a file the
/// shim may then delete (its disk space stays taken until the follower is done with it), so a
/// stalled client holds at most this many files plus `max-file` before it holds back the
/// container's output.
pub const OPEN_AHEAD: usize = 8;

/// How many entries a follower reads ahead of its channel: a bound on what it holds.
const PENDING_MAX: usize = 256;

/// A follower's files: the one being read, the ones opened after it, its pin on the rest.
struct Follower {
    files: LogFiles,
    filter: LogFilter,
    cursor: Cursor,
    ahead: std::collections::VecDeque<Opened>,
    pin: Option<ReaderPin>,
    /// The readers file the pin is on; the log's directory replaced at a start (a `none` log)
    /// brings a new one, and the pin must move there.
    pin_file: Option<FileId>,
    /// Read, filtered and not sent yet.
    pending: std::collections::VecDeque<OutputChunk>,
    /// The cursor moved to a file opened ahead: there is room to open another.
    advanced: bool,
    /// The run is over and its last file is open: nothing more to open or pin (its files may
    /// now be removed, in any order).
    complete: bool,
}

impl Follower {
    fn new(files: LogFiles, filter: LogFilter, mut cursor: Cursor) -> Self {
        let pin = cursor.pin.take();
        let pin_file = pin.as_ref().and_then(|_| readers_file_id(&files));
        Follower {
            files,
            filter,
            cursor,
            ahead: Default::default(),
            pin,
            pin_file,
            pending: Default::default(),
            advanced: false,
            complete: false,
        }
    }

    /// Opens the files that appeared after the last one opened (up to [`OPEN_AHEAD`] ahead of
    /// the cursor until the run is `done`, all of them after), and moves the pin past them.
    /// Once the run is done and its last file is open, nothing more will come: the pin goes.
    fn open_ahead(&mut self, done: bool) {
        if self.complete {
            return;
        }
        if self.pin.is_none() || readers_file_id(&self.files) != self.pin_file {
            // No pin yet (no directory at attach) or a new readers file: pin every file before
            // opening any.
            self.pin = self.files.pin();
            self.pin_file = self.pin.as_ref().and_then(|_| readers_file_id(&self.files));
        }
        let last = self.ahead.back().map(|o| o.id).or(self.cursor.id);
        if self.files.current_id() != last && (done || self.ahead.len() < OPEN_AHEAD) {
            let newest = self
                .ahead
                .back()
                .map_or(self.cursor.generation, |o| o.generation);
            // Generations only go up; a file that does not is one already read.
            self.ahead
                .extend(self.files.after(last).into_iter().filter(|o| {
                    match (newest, o.generation) {
                        (Some(n), Some(g)) => g > n,
                        _ => true,
                    }
                }));
        }
        let current = self.files.current_id();
        let last = self.ahead.back().map(|o| o.id).or(self.cursor.id);
        // The run's last file is open (or the log is being removed, once nobody pinned it).
        if done && (current == last || current.is_none()) {
            self.complete = true;
            self.pin = None;
            return;
        }
        if let Some(pin) = &mut self.pin {
            let newest = self
                .ahead
                .back()
                .map_or(self.cursor.generation, |o| o.generation);
            let kept = match newest {
                Some(g) => pin.need_from(g + 1).is_ok(),
                // Files without generations: nothing to pin by.
                None if last.is_some() => false,
                // No file yet: the pin stays on all of them.
                None => true,
            };
            if !kept {
                self.pin = None;
            }
        }
    }

    /// Reads what is next into `pending`: the replay first, then the cursor's file, then the
    /// files opened after it (the cursor's file is complete once a later one exists: the shim
    /// never writes a file again after renaming it). False when there is nothing to read now.
    fn refill(&mut self, initial: &mut Replay) -> bool {
        while self.pending.len() < PENDING_MAX {
            match initial.next() {
                Some(c) => self.pending.push_back(c),
                None => break,
            }
        }
        if !self.pending.is_empty() {
            return true;
        }
        loop {
            if let Some(batch) = self.cursor.read() {
                for e in batch {
                    if self.filter.keep(&e) {
                        self.pending.push_back(self.filter.chunk(e));
                    }
                }
                if !self.pending.is_empty() {
                    return true;
                }
                continue;
            }
            match self.ahead.pop_front() {
                Some(next) => {
                    self.cursor = Cursor::at_start(next);
                    self.advanced = true;
                }
                None => return false,
            }
        }
    }
}

fn readers_file_id(files: &LogFiles) -> Option<FileId> {
    std::fs::metadata(&files.readers).ok().map(|m| id_of(&m))
}

/// Streams entries written after `cursor` until the run numbered `until_run_finished` has ended
/// (and its last output is read), or the receiver goes away. While the client is slow the
/// follower still wakes on new files and run events, to open files ahead and let go of its pin
/// at the end.
pub fn follow(
    files: LogFiles,
    cursor: Cursor,
    filter: LogFilter,
    container: Arc<Container>,
    until_run_finished: u64,
    mut initial: Replay,
) -> OutputStream {
    let (tx, rx) = mpsc::channel::<OutputChunk>(64);
    tokio::spawn(async move {
        let mut events = container.events.subscribe();
        let mut watch = DirWatch(watch_dir(files.dir()));
        let mut f = Follower::new(files, filter, cursor);
        // Something may have happened in the directory: look for new files.
        let mut dirty = true;
        loop {
            if watch.0.is_none() {
                // The directory did not exist yet (a `none` container's state dir before start)
                // or was replaced. Watching starts before the look below, so nothing that
                // happens after the look goes unnoticed.
                watch.replace(watch_dir(f.files.dir()));
                dirty = true;
            }
            let done = {
                let ev = events.borrow_and_update();
                ev.finished >= until_run_finished
                    || ev.output_ended >= until_run_finished
                    || ev.removed
            };
            if dirty || done || f.advanced || f.pending.is_empty() {
                f.open_ahead(done);
                dirty = false;
                f.advanced = false;
            }
            if f.pending.is_empty() && !f.refill(&mut initial) && done {
                // `done` was seen before this last read found nothing: all is sent.
                return;
            }
            // Send what the channel takes without waiting.
            while let Some(c) = f.pending.pop_front() {
                match tx.try_send(c) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(c)) => {
                        f.pending.push_front(c);
                        break;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
            if f.pending.is_empty() {
                if f.refill(&mut initial) {
                    continue;
                }
                if done && !f.advanced {
                    // `done` was seen before this read found nothing: all is sent.
                    return;
                }
                if f.advanced {
                    // The files opened ahead were used up: look for more before waiting (the
                    // shim may be waiting for this follower's pin, and then nothing else wakes
                    // it).
                    continue;
                }
            }
            let sending = !f.pending.is_empty();
            tokio::select! {
                permit = tx.reserve(), if sending => match permit {
                    Ok(p) => {
                        if let Some(c) = f.pending.pop_front() {
                            p.send(c);
                        }
                    }
                    Err(_) => return,
                },
                _ = tx.closed(), if !sending => return,
                r = events.changed() => {
                    if r.is_err() {
                        return;
                    }
                }
                alive = wait_watch(&watch.0) => {
                    dirty = true;
                    if !alive {
                        watch.replace(None);
                    }
                }
            }
        }
    });
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (c, rx))
    }))
}

/// Waits for something to happen in the directory; false when the watch is gone (the
/// directory was removed or replaced, as a state dir is at each start).
async fn wait_watch(w: &Option<AsyncFd<Watch>>) -> bool {
    use nix::sys::inotify::AddWatchFlags as F;
    match w {
        Some(fd) => {
            let Ok(mut guard) = fd.readable().await else {
                return false;
            };
            // Drain the queued events; only whether the watch survived matters.
            let events = guard.get_inner().0.read_events().unwrap_or_default();
            guard.clear_ready();
            !events.iter().any(|e| {
                e.mask
                    .intersects(F::IN_IGNORED | F::IN_DELETE_SELF | F::IN_MOVE_SELF)
            })
        }
        // Without inotify, fall back to a short poll.
        None => {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Write;

    fn line(i: u32) -> String {
        serde_json::to_string(&LogEntry {
            log: format!("{i}\n"),
            stream: if i % 2 == 0 { "stdout" } else { "stderr" }.into(),
            attrs: BTreeMap::new(),
            time: format!("2024-01-01T00:00:{:02}.000000000Z", i % 60),
        })
        .unwrap()
            + "\n"
    }

    struct Rig {
        _dir: tempfile::TempDir,
        files: LogFiles,
    }

    impl Rig {
        fn new(max_file: u32) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c-json.log");
            let files = LogFiles {
                readers: logpin::readers_path(&path),
                path,
                max_file,
            };
            Rig { _dir: dir, files }
        }
        fn name(&self, n: u32) -> PathBuf {
            if n == 0 {
                self.files.path.clone()
            } else {
                PathBuf::from(format!("{}.{n}", self.files.path.display()))
            }
        }
        fn append(&self, range: std::ops::Range<u32>) {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&self.files.path)
                .unwrap();
            for i in range {
                f.write_all(line(i).as_bytes()).unwrap();
            }
        }
        /// The shim's rotation.
        fn rotate(&self) {
            for i in (2..self.files.max_file).rev() {
                let _ = std::fs::rename(self.name(i - 1), self.name(i));
            }
            if self.files.max_file < 2 {
                std::fs::remove_file(self.name(0)).unwrap();
            } else {
                std::fs::rename(self.name(0), self.name(1)).unwrap();
            }
            File::create(self.name(0)).unwrap();
        }
    }

    fn all() -> LogFilter {
        LogFilter {
            stdout: true,
            stderr: true,
            ..Default::default()
        }
    }

    fn numbers(chunks: &[OutputChunk]) -> Vec<u32> {
        chunks
            .iter()
            .map(|c| String::from_utf8_lossy(&c.data).trim().parse().unwrap())
            .collect()
    }

    fn replayed(files: &LogFiles, f: &LogFilter, tail: Option<usize>) -> Vec<OutputChunk> {
        replay(files, f, tail).0.collect()
    }

    /// Everything a cursor reads from where it stands, batch after batch.
    fn drain(cur: &mut Cursor) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(b) = cur.read() {
            out.extend(numbers_of(b));
        }
        out
    }

    fn numbers_of(entries: Vec<LogEntry>) -> Vec<u32> {
        entries
            .iter()
            .map(|e| e.log.trim().parse().unwrap())
            .collect()
    }

    #[test]
    fn replay_reads_rotated_files_oldest_first() {
        let rig = Rig::new(3);
        rig.append(0..3);
        rig.rotate();
        rig.append(3..6);
        rig.rotate();
        rig.append(6..8);
        let out = replayed(&rig.files, &all(), None);
        assert_eq!(numbers(&out), (0..8).collect::<Vec<_>>());
        rig.rotate(); // 0..3 leaves
        rig.append(8..9);
        let out = replayed(&rig.files, &all(), None);
        assert_eq!(numbers(&out), (3..9).collect::<Vec<_>>());
    }

    #[test]
    fn tail_spans_files_and_skips_the_old_ones() {
        let rig = Rig::new(4);
        rig.append(0..4);
        rig.rotate();
        rig.append(4..8);
        rig.rotate();
        rig.append(8..9);
        let out = replayed(&rig.files, &all(), Some(3));
        assert_eq!(numbers(&out), vec![6, 7, 8]);
        let out = replayed(&rig.files, &all(), Some(0));
        assert!(out.is_empty());
        let out = replayed(&rig.files, &all(), Some(100));
        assert_eq!(numbers(&out), (0..9).collect::<Vec<_>>());
        // The tail counts kept lines only: stderr lines are the odd ones.
        let f = LogFilter {
            stderr: true,
            ..Default::default()
        };
        let out = replayed(&rig.files, &f, Some(3));
        assert_eq!(numbers(&out), vec![3, 5, 7]);
    }

    #[test]
    fn replay_skips_a_gap_left_by_a_crash() {
        let rig = Rig::new(4);
        rig.append(0..2);
        rig.rotate();
        rig.append(2..4);
        // Crashed between `.1 -> .2` and `current -> .1`.
        std::fs::rename(rig.name(1), rig.name(2)).unwrap();
        let out = replayed(&rig.files, &all(), None);
        assert_eq!(numbers(&out), (0..4).collect::<Vec<_>>());
    }

    #[test]
    fn cursor_goes_on_across_rotations() {
        let rig = Rig::new(3);
        rig.append(0..2);
        let (out, mut cur) = replay(&rig.files, &all(), None);
        assert_eq!(numbers(&out.collect::<Vec<_>>()), vec![0, 1]);
        rig.append(2..3);
        rig.rotate();
        rig.append(3..4);
        rig.rotate();
        rig.append(4..5);
        // What follow does: finish the file, then the ones after it.
        let mut got = drain(&mut cur);
        assert_ne!(rig.files.current_id(), cur.id);
        let mut next = rig.files.after(cur.id);
        let newest = next.pop().unwrap();
        for f in next {
            got.extend(drain(&mut Cursor::at_start(f)));
        }
        cur = Cursor::at_start(newest);
        got.extend(drain(&mut cur));
        assert_eq!(got, vec![2, 3, 4]);
        assert_eq!(rig.files.current_id(), cur.id);
    }

    #[test]
    fn a_reader_whose_file_left_reads_all_that_is_kept() {
        let rig = Rig::new(2);
        rig.append(0..1);
        let mut cur = rig.files.end();
        rig.rotate();
        rig.append(1..2);
        rig.rotate(); // the file the cursor holds is gone now
        rig.append(2..3);
        assert!(cur.read().is_none());
        let got: Vec<u32> = rig
            .files
            .after(cur.id)
            .into_iter()
            .flat_map(|f| drain(&mut Cursor::at_start(f)))
            .collect();
        assert_eq!(got, vec![1, 2]);
    }

    #[test]
    fn end_is_at_a_line_boundary() {
        let rig = Rig::new(1);
        assert!(rig.files.end().file.is_none());
        rig.append(0..2);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&rig.files.path)
            .unwrap();
        let l = line(2);
        f.write_all(&l.as_bytes()[..5]).unwrap();
        let mut cur = rig.files.end();
        assert_eq!(cur.offset as usize, line(0).len() + line(1).len());
        f.write_all(&l.as_bytes()[5..]).unwrap();
        assert_eq!(drain(&mut cur), vec![2]);
    }

    /// Lines of about `len` bytes each, numbered, for tests that need many chunks' worth.
    fn append_long(rig: &Rig, range: std::ops::Range<u32>, len: usize) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&rig.files.path)
            .unwrap();
        for i in range {
            let e = LogEntry {
                log: format!("{i} {}\n", "x".repeat(len)),
                stream: "stdout".into(),
                attrs: BTreeMap::new(),
                time: "2024-01-01T00:00:00.000000000Z".into(),
            };
            f.write_all((serde_json::to_string(&e).unwrap() + "\n").as_bytes())
                .unwrap();
        }
    }

    fn first_words(chunks: &[OutputChunk]) -> Vec<u32> {
        chunks
            .iter()
            .map(|c| {
                let s = String::from_utf8_lossy(&c.data);
                s.split_whitespace().next().unwrap().parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn tail_reads_from_the_end_across_rotated_files_and_chunks() {
        // Lines of ~1 KiB and files of several read chunks: the tail's start is found by
        // reading backwards over chunk and file boundaries.
        let rig = Rig::new(3);
        append_long(&rig, 0..300, 1000);
        rig.rotate();
        append_long(&rig, 300..600, 1000);
        rig.rotate();
        append_long(&rig, 600..610, 1000);
        for n in [0usize, 1, 5, 10, 11, 150, 310, 450, 609, 610, 5000] {
            let got = first_words(&replayed(&rig.files, &all(), Some(n)));
            let want: Vec<u32> = (610u32.saturating_sub(n as u32)..610).collect();
            assert_eq!(got, want, "tail {n}");
        }
    }

    #[test]
    fn tail_skips_a_line_being_written_and_counts_kept_lines_only() {
        let rig = Rig::new(2);
        rig.append(0..10);
        rig.rotate();
        rig.append(10..13);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&rig.files.path)
            .unwrap();
        f.write_all(&line(13).as_bytes()[..7]).unwrap();
        assert_eq!(
            numbers(&replayed(&rig.files, &all(), Some(2))),
            vec![11, 12]
        );
        // stderr (odd) only: 11 in the newest file, 9 and 7 in the rotated one.
        let odd = LogFilter {
            stderr: true,
            ..Default::default()
        };
        assert_eq!(
            numbers(&replayed(&rig.files, &odd, Some(3))),
            vec![7, 9, 11]
        );
        // The follower goes on at the partial line, which it reads once whole.
        let (_, mut cur) = replay(&rig.files, &all(), Some(0));
        f.write_all(&line(13).as_bytes()[7..]).unwrap();
        assert_eq!(drain(&mut cur), vec![13]);
    }

    #[test]
    fn a_line_longer_than_a_read_chunk_is_read_whole() {
        let rig = Rig::new(1);
        append_long(&rig, 0..2, 3 * READ_CHUNK);
        append_long(&rig, 2..3, 10);
        assert_eq!(
            first_words(&replayed(&rig.files, &all(), None)),
            vec![0, 1, 2]
        );
        assert_eq!(
            first_words(&replayed(&rig.files, &all(), Some(2))),
            vec![1, 2]
        );
    }

    #[test]
    fn replay_reads_a_chunk_at_a_time() {
        let rig = Rig::new(1);
        append_long(&rig, 0..2000, 1000);
        let (mut r, _) = replay(&rig.files, &all(), None);
        assert_eq!(first_words(&[r.next().unwrap()]), vec![0]);
        // Only the first chunk's lines are held, not the file's.
        assert!(r.batch.len() < READ_CHUNK / 1000);
        assert_eq!(r.count(), 1999);
    }

    #[test]
    fn details_prefix_as_dockerd() {
        assert_eq!(details_prefix(&BTreeMap::new()), " ");
        let attrs: BTreeMap<String, String> = [("b", "x y"), ("a", "1,2=3"), ("tag", "é/~")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(details_prefix(&attrs), "a=1%2C2%3D3,b=x+y,tag=%C3%A9%2F~ ");
        let f = LogFilter {
            stdout: true,
            details: true,
            ..Default::default()
        };
        let e = LogEntry {
            log: "hi\n".into(),
            stream: "stdout".into(),
            attrs,
            time: "2024-01-01T00:00:00Z".into(),
        };
        assert_eq!(
            &f.chunk(e).data[..],
            b"a=1%2C2%3D3,b=x+y,tag=%C3%A9%2F~ hi\n"
        );
    }
}
