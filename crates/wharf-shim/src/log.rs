//! Docker json-file log writer: one JSON object per line (`log`, `stream`, `attrs` when the
//! container has any, `time`), into a file that rotates as json-file's `max-size`/`max-file`.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use wharf_runtime::logpin;

/// Which container stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// RFC 3339 UTC with nanoseconds, Docker's log and exit timestamp format.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Where encoded lines go.
pub trait LineSink {
    /// Appends `lines`: whole lines, each ending in `\n` (encoded entries hold no other `\n`).
    fn write_lines(&mut self, lines: &[u8]) -> io::Result<()>;
}

impl LineSink for Vec<u8> {
    fn write_lines(&mut self, lines: &[u8]) -> io::Result<()> {
        self.extend_from_slice(lines);
        Ok(())
    }
}

pub struct LogWriter<S: LineSink> {
    out: S,
    /// The compact JSON object written as `attrs` on every line, if any.
    attrs: Option<String>,
    /// The lines of one chunk, written with one call, so a busy container costs one write(2)
    /// per read rather than one per line. Reused, so steady-state logging does not allocate.
    batch: Vec<u8>,
    /// Bytes of a UTF-8 character cut by a read boundary, per stream, held for the next chunk.
    carry: [Vec<u8>; 2],
    /// The last write error, until a write succeeds again: while writes fail (a full disk)
    /// lines are dropped, never retried, so the container is never blocked; each new batch
    /// tries again, as json-file does message by message.
    pub failed: Option<io::Error>,
}

impl<S: LineSink> LogWriter<S> {
    pub fn new(out: S, attrs: Option<String>) -> Self {
        Self {
            out,
            attrs,
            batch: Vec::with_capacity(256),
            carry: [Vec::new(), Vec::new()],
            failed: None,
        }
    }

    /// Logs one chunk read from `stream`, split after each `\n`; a trailing piece without a
    /// newline becomes its own entry (minus an incomplete UTF-8 character, kept for later).
    pub fn write_chunk(&mut self, stream: Stream, chunk: &[u8]) {
        let idx = stream as usize;
        let mut data = std::mem::take(&mut self.carry[idx]);
        data.extend_from_slice(chunk);
        let time = now_rfc3339();

        let mut rest: &[u8] = &data;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (piece, tail) = rest.split_at(pos + 1);
            self.entry(stream, piece, &time);
            rest = tail;
        }
        if !rest.is_empty() {
            let keep = incomplete_utf8_suffix(rest);
            let (piece, held) = rest.split_at(rest.len() - keep);
            if !piece.is_empty() {
                self.entry(stream, piece, &time);
            }
            self.carry[idx] = held.to_vec();
        }
        self.flush_batch();
    }

    /// Writes whatever is held back for `stream` (at EOF).
    pub fn flush_stream(&mut self, stream: Stream) {
        let held = std::mem::take(&mut self.carry[stream as usize]);
        if !held.is_empty() {
            self.entry(stream, &held, &now_rfc3339());
            self.flush_batch();
        }
    }

    /// Encodes one entry into the batch, fields in json-file's order.
    fn entry(&mut self, stream: Stream, piece: &[u8], time: &str) {
        let text = String::from_utf8_lossy(piece);
        let b = &mut self.batch;
        b.extend_from_slice(b"{\"log\":");
        if let Err(e) = serde_json::to_writer(&mut *b, &*text) {
            self.failed.get_or_insert(io::Error::other(e));
            return;
        }
        b.extend_from_slice(b",\"stream\":\"");
        b.extend_from_slice(stream.name().as_bytes());
        b.push(b'"');
        if let Some(attrs) = &self.attrs {
            b.extend_from_slice(b",\"attrs\":");
            b.extend_from_slice(attrs.as_bytes());
        }
        b.extend_from_slice(b",\"time\":\"");
        b.extend_from_slice(time.as_bytes());
        b.extend_from_slice(b"\"}\n");
    }

    fn flush_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        if self.failed.is_some() {
            // A write cut short may have left half a line: end it, so that the next line
            // starts clean (readers skip the fragment, and the empty line).
            if self.out.write_lines(b"\n").is_ok() {
                self.failed = None;
            }
        }
        if self.failed.is_none() {
            if let Err(e) = self.out.write_lines(&self.batch) {
                self.failed = Some(e);
            }
        }
        self.batch.clear();
    }

    #[cfg(test)]
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.out
    }
}

impl LogWriter<RotatingFile> {
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.file.sync_all()
    }

    /// Whether lines wait for a reader (see [`RotatingFile::holding`]): the caller stops
    /// reading the container's output until [`LogWriter::retry`] has written them.
    pub fn holding(&self) -> bool {
        self.out.holding()
    }

    /// Tries again to write the lines held back for a reader.
    pub fn retry(&mut self) {
        if let Err(e) = self.out.retry() {
            self.failed.get_or_insert(e);
        }
    }

    /// The container has exited: from now on nothing waits for readers (see
    /// [`RotatingFile::stop_waiting`]).
    pub fn stop_waiting(&mut self) {
        if let Err(e) = self.out.stop_waiting() {
            self.failed.get_or_insert(e);
        }
    }
}

/// The container's log file, rotated like Docker's json-file driver: `<path>` is written,
/// `<path>.1` is the newest rotated file, and at most `max_file` files exist in all.
///
/// A rotation never deletes a file a reader has not opened yet (`wharf_runtime::logpin`):
/// while one would, the lines wait in `held` and the monitor stops reading the container's
/// output, so a slow reader slows the container, as a slow `docker attach` does, instead of
/// losing output. Once the container has exited nothing waits: the last lines go past
/// `max_size` into the current file rather than hold up the exit.
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    /// Bytes in the current file (what rotation decisions need; not re-read from the disk).
    size: u64,
    /// 0: never rotate.
    max_size: u64,
    max_file: u32,
    /// The current file's generation; `None` where files cannot carry one (no xattrs), and
    /// then readers have no pins to honour.
    generation: Option<u64>,
    pins: Option<logpin::Retirer>,
    /// Whole lines not written yet because a rotation waits for a reader.
    held: Vec<u8>,
    may_wait: bool,
}

impl RotatingFile {
    /// `file` is `path` opened for appending; its length counts towards `max_size`.
    pub fn new(path: PathBuf, file: File, max_size: u64, max_file: u32) -> io::Result<Self> {
        let size = file.metadata()?.len();
        let generation = match logpin::generation(&file) {
            Some(g) => Some(g),
            // A new file (first start, or a crash took the current name mid-rotation): newer
            // than every rotated one.
            None => {
                let g = newest_rotated_generation(&path).map_or(0, |g| g + 1);
                logpin::set_generation(&file, g).ok().map(|()| g)
            }
        };
        let pins = match (generation, max_size) {
            (Some(_), 1..) => logpin::Retirer::open(&path).ok(),
            _ => None,
        };
        Ok(Self {
            path,
            file,
            size,
            max_size,
            max_file: max_file.max(1),
            generation,
            pins,
            held: Vec::new(),
            may_wait: true,
        })
    }

    /// Whether lines are held back because a rotation waits for a reader.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Writes the held lines if the reader has moved on (they stay held otherwise).
    pub fn retry(&mut self) -> io::Result<()> {
        let held = std::mem::take(&mut self.held);
        self.write_through(&held)
    }

    /// Stops waiting for readers, and writes what was held.
    pub fn stop_waiting(&mut self) -> io::Result<()> {
        self.may_wait = false;
        self.retry()
    }

    /// Opens (creating) `path` for appending, as the log file is opened at start.
    pub fn open(path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(path)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Moves the current file out of the way and opens a new one. Each step is one rename
    /// that replaces its target atomically (`.N-2` onto `.N-1` first, the current file onto
    /// `.1` last), so a crash between two steps leaves one index missing and no line in two
    /// files; readers skip the gap. A reader holding the old file open can still finish it.
    ///
    /// `WouldBlock` when a reader has not opened the file the rotation would delete.
    fn rotate(&mut self) -> io::Result<()> {
        let victim = if self.max_file < 2 {
            self.path.clone()
        } else {
            rotated(&self.path, self.max_file - 1)
        };
        if let (Some(pins), Ok(f)) = (&self.pins, File::open(&victim)) {
            if let Some(v) = logpin::generation(&f) {
                if !pins.may_delete(v)? {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
            }
        }
        // The next file has its generation before it takes the log's name, so no reader finds
        // the log without one.
        let next = self
            .generation
            .and_then(|g| Some((g + 1, self.prepare_next(g + 1).ok()?)));
        if self.max_file < 2 {
            // No history kept, as json-file with max-file=1.
            match std::fs::remove_file(&self.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        } else {
            for i in (2..self.max_file).rev() {
                match std::fs::rename(rotated(&self.path, i - 1), rotated(&self.path, i)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        let file = match next {
            Some((g, file)) => {
                std::fs::rename(logpin::next_path(&self.path), &self.path)?;
                self.generation = Some(g);
                file
            }
            None => {
                self.generation = None;
                Self::open(&self.path)?
            }
        };
        self.size = file.metadata()?.len();
        self.file = file;
        Ok(())
    }

    fn prepare_next(&self, generation: u64) -> io::Result<File> {
        let next = logpin::next_path(&self.path);
        // A crash's leftover, never read: readers look only at the log's own names.
        match std::fs::remove_file(&next) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o640)
            .open(&next)?;
        logpin::set_generation(&file, generation)?;
        Ok(file)
    }
}

/// The attrs of every line from `--log-attrs-file`: a JSON object of strings, re-encoded
/// compactly with sorted keys; `None` when it has none.
pub fn load_attrs(path: &Path) -> Result<Option<String>, String> {
    let text = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let map: std::collections::BTreeMap<String, String> = serde_json::from_slice(&text)
        .map_err(|e| format!("{} is not a JSON object of strings: {e}", path.display()))?;
    if map.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(&map)
        .map(Some)
        .map_err(|e| format!("encoding log attrs: {e}"))
}

/// `<path>.<n>`: the n-th newest rotated file.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The highest generation among the rotated files next to `path`, oldest names last. A crash
/// mid-rotation leaves one name missing (the next rotation closes the gap), so the scan ends at
/// the second missing name in a row.
fn newest_rotated_generation(path: &Path) -> Option<u64> {
    let mut newest = None;
    let mut missing = 0;
    for n in 1.. {
        match File::open(rotated(path, n)) {
            Ok(f) => {
                missing = 0;
                newest = newest.max(logpin::generation(&f));
            }
            Err(_) if missing == 0 => missing += 1,
            Err(_) => break,
        }
    }
    newest
}

impl LineSink for RotatingFile {
    fn write_lines(&mut self, lines: &[u8]) -> io::Result<()> {
        if self.holding() {
            // Behind lines already waiting: order is kept.
            self.held.extend_from_slice(lines);
            return Ok(());
        }
        self.write_through(lines)
    }
}

impl RotatingFile {
    /// Rotates at line boundaries: before a line that would make the file larger than
    /// `max_size`. A single line longer than that gets a file to itself.
    fn write_through(&mut self, mut lines: &[u8]) -> io::Result<()> {
        while !lines.is_empty() {
            let room = self.max_size.saturating_sub(self.size);
            if self.max_size == 0 || lines.len() as u64 <= room {
                return self.write(lines);
            }
            let fits = &lines[..(room as usize).min(lines.len())];
            let cut = match fits.iter().rposition(|&b| b == b'\n') {
                Some(p) => p + 1,
                None if self.size == 0 => lines
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(lines.len(), |p| p + 1),
                None => 0,
            };
            if cut > 0 {
                self.write(&lines[..cut])?;
                lines = &lines[cut..];
                if lines.is_empty() {
                    return Ok(());
                }
            }
            match self.rotate() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.may_wait => {
                    self.held.extend_from_slice(lines);
                    return Ok(());
                }
                Err(_) => {
                    // Keep appending to the file we have rather than lose output; count from
                    // zero so the next attempt comes after another `max_size` bytes, not at
                    // every line.
                    self.size = 0;
                    return self.write(lines);
                }
            }
        }
        Ok(())
    }
}

/// Length of a trailing, possibly valid but unfinished UTF-8 sequence (0..=3 bytes).
fn incomplete_utf8_suffix(b: &[u8]) -> usize {
    match std::str::from_utf8(b) {
        Ok(_) => 0,
        Err(e) if e.error_len().is_none() => b.len() - e.valid_up_to(),
        Err(_) => {
            // Invalid bytes somewhere; only the tail matters for holding back.
            let start = b.len().saturating_sub(3);
            for i in start..b.len() {
                if let Err(e) = std::str::from_utf8(&b[i..]) {
                    if e.error_len().is_none() && e.valid_up_to() == 0 {
                        return b.len() - i;
                    }
                }
            }
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_runtime::shim_proto::LogEntry;

    fn entries(buf: &[u8]) -> Vec<LogEntry> {
        buf.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    #[test]
    fn splits_after_each_newline_and_keeps_tail() {
        let mut w = LogWriter::new(Vec::new(), None);
        w.write_chunk(Stream::Stdout, b"a\nbc\n\nd");
        let e = entries(w.get_mut());
        let logs: Vec<_> = e.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(logs, vec!["a\n", "bc\n", "\n", "d"]);
        assert!(e.iter().all(|e| e.stream == "stdout"));
        let t = &e[0].time;
        assert!(t.ends_with('Z') && t.len() == "2026-11-23T17:50:30.123456789Z".len());
    }

    #[test]
    fn concatenation_gives_back_output() {
        let mut w = LogWriter::new(Vec::new(), None);
        w.write_chunk(Stream::Stderr, b"par");
        w.write_chunk(Stream::Stderr, b"tial\nline\n");
        let e = entries(w.get_mut());
        let joined: String = e.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(joined, "partial\nline\n");
        assert_eq!(e[0].stream, "stderr");
    }

    #[test]
    fn utf8_character_split_across_reads_is_not_mangled() {
        let s = "héllo\n".as_bytes();
        let mut w = LogWriter::new(Vec::new(), None);
        w.write_chunk(Stream::Stdout, &s[..2]); // "h" + first byte of "é"
        w.write_chunk(Stream::Stdout, &s[2..]);
        let e = entries(w.get_mut());
        let joined: String = e.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(joined, "héllo\n");
    }

    #[test]
    fn held_bytes_flushed_at_eof_and_invalid_utf8_is_lossy() {
        let mut w = LogWriter::new(Vec::new(), None);
        w.write_chunk(Stream::Stdout, &[b'x', 0xE2, 0x82]);
        w.flush_stream(Stream::Stdout);
        w.write_chunk(Stream::Stdout, &[0xFF, b'\n']);
        let e = entries(w.get_mut());
        assert_eq!(e[0].log, "x");
        assert!(e[1].log.contains('\u{FFFD}'));
        assert_eq!(e[2].log, "\u{FFFD}\n");
    }

    #[test]
    fn escapes_json() {
        let mut w = LogWriter::new(Vec::new(), None);
        w.write_chunk(Stream::Stdout, b"\"q\"\t\\\n");
        let e = entries(w.get_mut());
        assert_eq!(e[0].log, "\"q\"\t\\\n");
    }

    #[test]
    fn attrs_on_every_line_in_json_file_order() {
        let mut w = LogWriter::new(Vec::new(), Some(r#"{"a":"1","tag":"t"}"#.into()));
        w.write_chunk(Stream::Stdout, b"x\ny\n");
        let text = String::from_utf8(w.get_mut().clone()).unwrap();
        for line in text.lines() {
            assert!(line.starts_with(r#"{"log":""#), "{line}");
            assert!(
                line.contains(r#","stream":"stdout","attrs":{"a":"1","tag":"t"},"time":""#),
                "{line}"
            );
        }
        let e = entries(w.get_mut());
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].attrs.get("tag").map(String::as_str), Some("t"));
    }

    #[test]
    fn attrs_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.json");
        std::fs::write(&f, r#"{ "b": "2", "a": "1" }"#).unwrap();
        assert_eq!(
            load_attrs(&f).unwrap().as_deref(),
            Some(r#"{"a":"1","b":"2"}"#)
        );
        std::fs::write(&f, "{}").unwrap();
        assert_eq!(load_attrs(&f).unwrap(), None);
        for bad in [r#"{"a":1}"#, "[]", "x"] {
            std::fs::write(&f, bad).unwrap();
            assert!(load_attrs(&f).is_err(), "{bad}");
        }
        assert!(load_attrs(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn one_write_per_chunk() {
        struct Count(Vec<usize>);
        impl LineSink for Count {
            fn write_lines(&mut self, lines: &[u8]) -> io::Result<()> {
                assert_eq!(lines.last(), Some(&b'\n'));
                self.0.push(lines.iter().filter(|&&b| b == b'\n').count());
                Ok(())
            }
        }
        let mut w = LogWriter::new(Count(Vec::new()), None);
        w.write_chunk(Stream::Stdout, b"1\n2\n3\n4");
        w.write_chunk(Stream::Stdout, &[0xE2]);
        w.flush_stream(Stream::Stdout);
        assert_eq!(w.get_mut().0, vec![4, 1]);
    }

    /// A log in a temp dir, written through the rotating sink.
    struct Rig {
        _dir: tempfile::TempDir,
        path: PathBuf,
    }

    impl Rig {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c-json.log");
            Rig { _dir: dir, path }
        }
        fn sink(&self, max_size: u64, max_file: u32) -> RotatingFile {
            let f = RotatingFile::open(&self.path).unwrap();
            RotatingFile::new(self.path.clone(), f, max_size, max_file).unwrap()
        }
        fn read(&self, n: u32) -> Option<String> {
            let p = if n == 0 {
                self.path.clone()
            } else {
                rotated(&self.path, n)
            };
            std::fs::read_to_string(p).ok()
        }
        /// Every file, oldest first, concatenated.
        fn all(&self, max_file: u32) -> String {
            (0..max_file).rev().filter_map(|n| self.read(n)).collect()
        }
    }

    fn lines(range: std::ops::Range<u32>) -> String {
        range.map(|i| format!("line {i:04}\n")).collect()
    }

    #[test]
    fn rotates_at_line_boundaries_and_keeps_max_file() {
        let rig = Rig::new();
        let mut s = rig.sink(30, 3); // ten-byte lines: three per file
        for i in 0..10 {
            s.write_lines(lines(i..i + 1).as_bytes()).unwrap();
        }
        assert_eq!(rig.read(0).unwrap(), lines(9..10));
        assert_eq!(rig.read(1).unwrap(), lines(6..9));
        assert_eq!(rig.read(2).unwrap(), lines(3..6));
        assert_eq!(rig.read(3), None);
        // Never a line twice, never one lost among the files kept.
        assert_eq!(rig.all(3), lines(3..10));
    }

    #[test]
    fn a_batch_is_cut_where_it_would_overflow() {
        let rig = Rig::new();
        let mut s = rig.sink(25, 4);
        s.write_lines(lines(0..7).as_bytes()).unwrap();
        for n in 0..4 {
            let f = rig.read(n).unwrap_or_default();
            assert!(f.len() <= 25, "{n}: {f:?}");
        }
        assert_eq!(rig.all(4), lines(0..7));
        assert_eq!(rig.read(0).unwrap(), lines(6..7));
    }

    #[test]
    fn a_line_longer_than_max_size_gets_a_file_of_its_own() {
        let rig = Rig::new();
        let mut s = rig.sink(15, 3);
        let long = format!("{}\n", "x".repeat(40));
        s.write_lines(b"a\n").unwrap();
        s.write_lines(format!("{long}b\n").as_bytes()).unwrap();
        assert_eq!(rig.read(2).unwrap(), "a\n");
        assert_eq!(rig.read(1).unwrap(), long);
        assert_eq!(rig.read(0).unwrap(), "b\n");
    }

    #[test]
    fn max_file_one_keeps_only_the_current_file() {
        let rig = Rig::new();
        let mut s = rig.sink(20, 1);
        s.write_lines(lines(0..5).as_bytes()).unwrap();
        assert_eq!(rig.read(0).unwrap(), lines(4..5));
        assert_eq!(rig.read(1), None);
    }

    #[test]
    fn no_max_size_never_rotates() {
        let rig = Rig::new();
        let mut s = rig.sink(0, 3);
        s.write_lines(lines(0..50).as_bytes()).unwrap();
        assert_eq!(rig.read(0).unwrap(), lines(0..50));
        assert_eq!(rig.read(1), None);
    }

    #[test]
    fn an_existing_file_counts_and_a_restart_continues_it() {
        let rig = Rig::new();
        rig.sink(0, 1).write_lines(lines(0..2).as_bytes()).unwrap();
        // The next run of the same container: same file, now with a limit.
        let mut s = rig.sink(30, 2);
        s.write_lines(lines(2..4).as_bytes()).unwrap();
        assert_eq!(rig.read(1).unwrap(), lines(0..3));
        assert_eq!(rig.read(0).unwrap(), lines(3..4));
    }

    #[test]
    fn a_gap_left_by_a_crash_is_closed_by_the_next_rotation() {
        let rig = Rig::new();
        let mut s = rig.sink(10, 4);
        s.write_lines(lines(0..3).as_bytes()).unwrap();
        // The shim dies during the next rotation, between `.1 -> .2` and `current -> .1`.
        std::fs::rename(rotated(&rig.path, 2), rotated(&rig.path, 3)).unwrap();
        std::fs::rename(rotated(&rig.path, 1), rotated(&rig.path, 2)).unwrap();
        assert_eq!(
            rig.all(4),
            lines(0..3),
            "readable, in order, across the gap"
        );
        let mut s = rig.sink(10, 4);
        s.write_lines(lines(3..4).as_bytes()).unwrap();
        assert_eq!(rig.read(3).unwrap(), lines(1..2));
        assert_eq!(rig.read(2), None);
        assert_eq!(rig.read(1).unwrap(), lines(2..3));
        assert_eq!(rig.read(0).unwrap(), lines(3..4));
    }

    #[test]
    fn a_failed_rotation_keeps_every_line() {
        let rig = Rig::new();
        let mut s = rig.sink(10, 2);
        s.write_lines(lines(0..1).as_bytes()).unwrap();
        // `.1` cannot be replaced by a file: it is a non-empty directory.
        std::fs::create_dir(rotated(&rig.path, 1)).unwrap();
        std::fs::write(rotated(&rig.path, 1).join("x"), "").unwrap();
        s.write_lines(lines(1..3).as_bytes()).unwrap();
        assert_eq!(rig.read(0).unwrap(), lines(0..3));
    }

    fn generation_of(rig: &Rig, n: u32) -> Option<u64> {
        let p = if n == 0 {
            rig.path.clone()
        } else {
            rotated(&rig.path, n)
        };
        logpin::generation(&File::open(p).ok()?)
    }

    #[test]
    fn every_file_has_the_next_generation() {
        let rig = Rig::new();
        let mut s = rig.sink(10, 3);
        assert_eq!(generation_of(&rig, 0), Some(0));
        s.write_lines(lines(0..3).as_bytes()).unwrap();
        assert_eq!(
            (0..3).map(|n| generation_of(&rig, n)).collect::<Vec<_>>(),
            [Some(2), Some(1), Some(0)]
        );
        // The shim died mid-rotation after `current -> .1`: the next start's new file comes
        // after the newest rotated one.
        drop(s);
        std::fs::rename(&rig.path, rotated(&rig.path, 1)).unwrap();
        let _s = rig.sink(10, 3);
        assert_eq!(generation_of(&rig, 0), Some(3));
    }

    #[test]
    fn a_rotation_waits_for_a_reader_that_has_not_opened_the_oldest_file() {
        let rig = Rig::new();
        let mut s = rig.sink(10, 2);
        s.write_lines(lines(0..2).as_bytes()).unwrap(); // generations 0 (.1) and 1 (current)
        let mut reader = logpin::ReaderPin::all(&logpin::readers_path(&rig.path))
            .unwrap()
            .unwrap();
        reader.need_from(0).unwrap();
        // Rotating now would delete generation 0.
        s.write_lines(lines(2..4).as_bytes()).unwrap();
        assert!(s.holding());
        assert_eq!(rig.all(2), lines(0..2), "nothing written, nothing deleted");
        s.retry().unwrap();
        assert!(s.holding(), "still pinned");
        reader.need_from(1).unwrap();
        s.retry().unwrap();
        // Generation 1 is pinned now: one rotation went through, the next waits.
        assert!(s.holding());
        assert_eq!(rig.all(2), lines(1..3));
        drop(reader);
        s.retry().unwrap();
        assert!(!s.holding());
        assert_eq!(rig.all(2), lines(2..4));
    }

    #[test]
    fn after_the_exit_nothing_waits_and_nothing_is_lost() {
        let rig = Rig::new();
        let mut s = rig.sink(10, 2);
        s.write_lines(lines(0..2).as_bytes()).unwrap();
        let mut reader = logpin::ReaderPin::all(&logpin::readers_path(&rig.path))
            .unwrap()
            .unwrap();
        reader.need_from(0).unwrap();
        s.write_lines(lines(2..4).as_bytes()).unwrap();
        assert!(s.holding());
        s.stop_waiting().unwrap();
        assert!(!s.holding());
        assert_eq!(rig.read(1).unwrap(), lines(0..1), "the pinned file stays");
        assert_eq!(rig.read(0).unwrap(), lines(1..4), "past max-size instead");
    }

    #[test]
    fn logging_resumes_after_failed_writes_with_a_clean_line() {
        /// Fails while `full`, after writing half of what it was given.
        struct Disk {
            data: Vec<u8>,
            full: bool,
        }
        impl LineSink for Disk {
            fn write_lines(&mut self, lines: &[u8]) -> io::Result<()> {
                if self.full {
                    self.data.extend_from_slice(&lines[..lines.len() / 2]);
                    return Err(io::Error::from_raw_os_error(libc::ENOSPC));
                }
                self.data.extend_from_slice(lines);
                Ok(())
            }
        }
        let mut w = LogWriter::new(
            Disk {
                data: Vec::new(),
                full: false,
            },
            None,
        );
        w.write_chunk(Stream::Stdout, b"before\n");
        w.get_mut().full = true;
        w.write_chunk(Stream::Stdout, b"lost while full\n");
        w.write_chunk(Stream::Stdout, b"lost too\n");
        assert!(w.failed.is_some());
        w.get_mut().full = false;
        w.write_chunk(Stream::Stdout, b"after\n");
        assert!(w.failed.is_none());
        // What readers parse: whole lines only (a fragment and an empty line are skipped).
        let parsed: Vec<String> = w
            .get_mut()
            .data
            .split(|&b| b == b'\n')
            .filter_map(|l| serde_json::from_slice::<LogEntry>(l).ok())
            .map(|e| e.log)
            .collect();
        assert_eq!(parsed, ["before\n", "after\n"]);
    }

    #[test]
    fn incomplete_suffix() {
        assert_eq!(incomplete_utf8_suffix(b"abc"), 0);
        assert_eq!(incomplete_utf8_suffix(&[b'a', 0xE2, 0x82]), 2);
        assert_eq!(incomplete_utf8_suffix(&[0xFF, b'a', 0xC3]), 1);
        assert_eq!(incomplete_utf8_suffix(&[b'a', 0xFF]), 0);
    }
}
