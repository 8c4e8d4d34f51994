//! Docker json-file log writer: one [`LogEntry`] JSON object per line.

use std::fs::File;
use std::io::{self, Write};

use serde::Serialize;

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

/// Same wire shape as `wharf_runtime::shim_proto::LogEntry`, borrowed to avoid a copy per line.
#[derive(Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

/// RFC 3339 UTC with nanoseconds, Docker's log and exit timestamp format.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

pub struct LogWriter<W: Write> {
    out: W,
    /// Reused serialisation buffer, so steady-state logging does not allocate.
    line: Vec<u8>,
    /// Bytes of a UTF-8 character cut by a read boundary, per stream, held for the next chunk.
    carry: [Vec<u8>; 2],
    /// First write error; later writes are dropped so a full disk never blocks the container.
    pub failed: Option<io::Error>,
}

impl<W: Write> LogWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            line: Vec::with_capacity(256),
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
    }

    /// Writes whatever is held back for `stream` (at EOF).
    pub fn flush_stream(&mut self, stream: Stream) {
        let held = std::mem::take(&mut self.carry[stream as usize]);
        if !held.is_empty() {
            self.entry(stream, &held, &now_rfc3339());
        }
    }

    fn entry(&mut self, stream: Stream, piece: &[u8], time: &str) {
        if self.failed.is_some() {
            return;
        }
        let text = String::from_utf8_lossy(piece);
        self.line.clear();
        let entry = Entry {
            log: &text,
            stream: stream.name(),
            time,
        };
        if let Err(e) = serde_json::to_writer(&mut self.line, &entry) {
            self.failed = Some(io::Error::other(e));
            return;
        }
        self.line.push(b'\n');
        if let Err(e) = self.out.write_all(&self.line) {
            self.failed = Some(e);
        }
    }

    #[cfg(test)]
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

impl LogWriter<File> {
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.sync_all()
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
        let mut w = LogWriter::new(Vec::new());
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
        let mut w = LogWriter::new(Vec::new());
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
        let mut w = LogWriter::new(Vec::new());
        w.write_chunk(Stream::Stdout, &s[..2]); // "h" + first byte of "é"
        w.write_chunk(Stream::Stdout, &s[2..]);
        let e = entries(w.get_mut());
        let joined: String = e.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(joined, "héllo\n");
    }

    #[test]
    fn held_bytes_flushed_at_eof_and_invalid_utf8_is_lossy() {
        let mut w = LogWriter::new(Vec::new());
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
        let mut w = LogWriter::new(Vec::new());
        w.write_chunk(Stream::Stdout, b"\"q\"\t\\\n");
        let e = entries(w.get_mut());
        assert_eq!(e[0].log, "\"q\"\t\\\n");
    }

    #[test]
    fn incomplete_suffix() {
        assert_eq!(incomplete_utf8_suffix(b"abc"), 0);
        assert_eq!(incomplete_utf8_suffix(&[b'a', 0xE2, 0x82]), 2);
        assert_eq!(incomplete_utf8_suffix(&[0xFF, b'a', 0xC3]), 1);
        assert_eq!(incomplete_utf8_suffix(&[b'a', 0xFF]), 0);
    }
}
