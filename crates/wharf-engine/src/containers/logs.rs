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

use super::Container;
use bytes::Bytes;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use wharf_api::stdcopy::StdStream;
use wharf_backend::{OutputChunk, OutputStream};
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
}

/// A container's log: `path` is the file being written; `max_file` how many are kept in all.
#[derive(Debug, Clone)]
pub struct LogFiles {
    pub path: PathBuf,
    pub max_file: u32,
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
                    Some(Opened { file, id })
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

    /// A cursor at the end of what the current file holds (attach without `logs`), at a line
    /// boundary so that a line the shim is still writing is read whole later.
    pub fn end(&self) -> Cursor {
        let Ok(file) = File::open(&self.path) else {
            return Cursor::default();
        };
        let Ok(meta) = file.metadata() else {
            return Cursor::default();
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
        Cursor {
            id: Some(id_of(&meta)),
            file: Some(file),
            offset,
        }
    }
}

/// Where a reader stands: the file it reads, held open, and the offset after the last whole
/// line read from it. Empty when there was no file yet.
#[derive(Default)]
pub struct Cursor {
    file: Option<File>,
    id: Option<FileId>,
    offset: u64,
}

impl Cursor {
    fn at_start(o: Opened) -> Self {
        Cursor {
            file: Some(o.file),
            id: Some(o.id),
            offset: 0,
        }
    }

    /// Every whole line written since the last read.
    fn read(&mut self) -> Vec<LogEntry> {
        let Some(f) = &self.file else {
            return Vec::new();
        };
        match read_lines(f, self.offset) {
            Ok((entries, end)) => {
                self.offset = end;
                entries
            }
            Err(_) => Vec::new(),
        }
    }
}

/// Reads whole lines from `offset`; returns the entries and the offset after the last whole line.
fn read_lines(f: &File, offset: u64) -> std::io::Result<(Vec<LogEntry>, u64)> {
    let mut r = BufReader::with_capacity(64 * 1024, f);
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

/// Everything logged so far that passes the filter, the last `tail` of it, and where a follower
/// goes on from.
pub fn replay(
    files: &LogFiles,
    filter: &LogFilter,
    tail: Option<usize>,
) -> (Vec<OutputChunk>, Cursor) {
    let mut snapshot = files.open_all();
    let Some(newest) = snapshot.pop() else {
        return (Vec::new(), Cursor::default());
    };
    let (entries, end) = read_lines(&newest.file, 0).unwrap_or_default();
    let mut kept: Vec<Vec<LogEntry>> =
        vec![entries.into_iter().filter(|e| filter.keep(e)).collect()];
    let mut count = kept[0].len();
    // Newest first: an older file is read only when the newer ones hold too few lines.
    for older in snapshot.iter().rev() {
        if tail.is_some_and(|n| count >= n) {
            break;
        }
        let (entries, _) = read_lines(&older.file, 0).unwrap_or_default();
        let e: Vec<LogEntry> = entries.into_iter().filter(|e| filter.keep(e)).collect();
        count += e.len();
        kept.push(e);
    }
    let mut all: Vec<LogEntry> = kept.into_iter().rev().flatten().collect();
    if let Some(n) = tail {
        if all.len() > n {
            all.drain(..all.len() - n);
        }
    }
    let cursor = Cursor {
        file: Some(newest.file),
        id: Some(newest.id),
        offset: end,
    };
    (all.into_iter().map(|e| filter.chunk(e)).collect(), cursor)
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

/// Streams entries written after `cursor` until the run numbered `until_run_finished` has ended
/// (and its last output is read), or the receiver goes away.
pub fn follow(
    files: LogFiles,
    mut cursor: Cursor,
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
        let mut watch = DirWatch(watch_dir(files.dir()));
        loop {
            let done = {
                let ev = events.borrow_and_update();
                ev.finished >= until_run_finished || ev.removed
            };
            loop {
                for e in cursor.read() {
                    if filter.keep(&e) && tx.send(filter.chunk(e)).await.is_err() {
                        return;
                    }
                }
                if files.current_id() == cursor.id {
                    break;
                }
                // Rotated away (or there was no file): what it holds now is all it will hold.
                for e in cursor.read() {
                    if filter.keep(&e) && tx.send(filter.chunk(e)).await.is_err() {
                        return;
                    }
                }
                let mut next = files.after(cursor.id);
                let Some(newest) = next.pop() else {
                    // Mid-rotation: the new file is not there yet; its creation wakes us.
                    break;
                };
                for f in next {
                    let mut c = Cursor::at_start(f);
                    for e in c.read() {
                        if filter.keep(&e) && tx.send(filter.chunk(e)).await.is_err() {
                            return;
                        }
                    }
                }
                cursor = Cursor::at_start(newest);
            }
            if done {
                return;
            }
            if watch.0.is_none() {
                // The directory did not exist yet (a `none` container's state dir before start).
                watch.replace(watch_dir(files.dir()));
            }
            tokio::select! {
                _ = tx.closed() => return,
                r = events.changed() => { if r.is_err() { return; } }
                alive = wait_watch(&watch.0) => {
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
            let files = LogFiles {
                path: dir.path().join("c-json.log"),
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
        let (out, _) = replay(&rig.files, &all(), None);
        assert_eq!(numbers(&out), (0..8).collect::<Vec<_>>());
        rig.rotate(); // 0..3 leaves
        rig.append(8..9);
        let (out, _) = replay(&rig.files, &all(), None);
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
        let (out, _) = replay(&rig.files, &all(), Some(3));
        assert_eq!(numbers(&out), vec![6, 7, 8]);
        let (out, _) = replay(&rig.files, &all(), Some(0));
        assert!(out.is_empty());
        let (out, _) = replay(&rig.files, &all(), Some(100));
        assert_eq!(numbers(&out), (0..9).collect::<Vec<_>>());
        // The tail counts kept lines only: stderr lines are the odd ones.
        let f = LogFilter {
            stderr: true,
            ..Default::default()
        };
        let (out, _) = replay(&rig.files, &f, Some(3));
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
        let (out, _) = replay(&rig.files, &all(), None);
        assert_eq!(numbers(&out), (0..4).collect::<Vec<_>>());
    }

    #[test]
    fn cursor_goes_on_across_rotations() {
        let rig = Rig::new(3);
        rig.append(0..2);
        let (out, mut cur) = replay(&rig.files, &all(), None);
        assert_eq!(numbers(&out), vec![0, 1]);
        rig.append(2..3);
        rig.rotate();
        rig.append(3..4);
        rig.rotate();
        rig.append(4..5);
        // What follow does: finish the file, then the ones after it.
        let mut got = numbers_of(cur.read());
        assert_ne!(rig.files.current_id(), cur.id);
        let mut next = rig.files.after(cur.id);
        let newest = next.pop().unwrap();
        for f in next {
            got.extend(numbers_of(Cursor::at_start(f).read()));
        }
        cur = Cursor::at_start(newest);
        got.extend(numbers_of(cur.read()));
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
        assert!(cur.read().is_empty());
        let got: Vec<u32> = rig
            .files
            .after(cur.id)
            .into_iter()
            .flat_map(|f| numbers_of(Cursor::at_start(f).read()))
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
        assert_eq!(numbers_of(cur.read()), vec![2]);
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
