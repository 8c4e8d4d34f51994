//! The daemon's JSON message streams (pull, push, import) drawn as the docker CLI draws them
//! (moby's `pkg/jsonmessage`, `DisplayJSONMessagesStream`): on a terminal one line per layer
//! id, redrawn in place with cursor moves and a progress bar; elsewhere each message on a line
//! of its own and no progress lines at all. An `errorDetail` ends the stream with its message.
//!
//! Messages are decoded with Go's rules, since docker's decoder decides what is shown: keys
//! match in any case, `null` leaves a field unset, and a value of the wrong type is an error.

use crate::format::units;
use serde_json::{Deserializer, Map, Value};
use std::collections::HashMap;
use std::io::Write;

/// Why a stream ended badly: the text docker prints (exit status 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError(pub String);

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StreamError {}

/// `progressDetail`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub current: i64,
    pub total: i64,
    pub start: i64,
    pub hide_counts: bool,
    pub units: String,
}

/// One message, with the fields docker's display reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    pub stream: String,
    pub status: String,
    pub progress: Option<Progress>,
    /// The daemon's own rendering of `progress` (`progress`), shown only where no detail is.
    pub progress_message: String,
    pub id: String,
    pub from: String,
    pub time: i64,
    pub time_nano: i64,
    /// `errorDetail.message` when `errorDetail` is present.
    pub error: Option<String>,
    pub aux: Option<Value>,
}

/// What the display needs to know about where it draws.
pub struct Term {
    pub is_terminal: bool,
    /// The terminal's width, asked each time a bar is drawn (it may change); docker assumes
    /// 200 when it cannot ask.
    pub width: Box<dyn Fn() -> u16>,
    /// Seconds since the epoch, for the time-left estimate.
    pub now: Box<dyn Fn() -> f64>,
}

impl Term {
    /// Nowhere: not a terminal, docker's default width.
    pub fn nowhere() -> Term {
        Term {
            is_terminal: false,
            width: Box::new(|| 200),
            now: Box::new(|| 0.0),
        }
    }

    /// The terminal (or not) behind `fd`, as docker's `streams.Out` sees it.
    pub fn for_fd(fd: i32) -> Term {
        Term {
            is_terminal: crate::commands::tty::fd_is_terminal(fd),
            width: Box::new(move || crate::commands::tty::fd_width(fd).unwrap_or(200)),
            now: Box::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0)
            }),
        }
    }
}

/// Splits a byte stream into JSON values as Go's `json.Decoder` does: any whitespace (the
/// daemon's `\r\n`) between values, values split across chunks.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete value, `None` when more bytes are needed.
    pub fn next_value(&mut self) -> Option<Result<Value, StreamError>> {
        let mut iter = Deserializer::from_slice(&self.buf).into_iter::<Value>();
        let result = match iter.next()? {
            Ok(v) => Ok(v),
            Err(e) if e.is_eof() => return None,
            Err(e) => Err(StreamError(go_syntax_error(&e))),
        };
        let used = iter.byte_offset();
        self.buf.drain(..used);
        Some(result)
    }

    /// At the end of the stream: a value cut short is Go's `unexpected EOF`.
    pub fn finish(&self) -> Result<(), StreamError> {
        if self.buf.iter().all(u8::is_ascii_whitespace) {
            Ok(())
        } else {
            Err(StreamError("unexpected EOF".into()))
        }
    }
}

/// serde's syntax errors carry a line and column Go's do not; the words before them are close
/// enough to Go's for a stream that is not JSON at all.
fn go_syntax_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((words, _)) => words.to_string(),
        None => text,
    }
}

/// A decoded value as Go decodes it into a `JSONMessage`.
pub fn decode(v: &Value) -> Result<Message, StreamError> {
    let obj = match v {
        Value::Null => return Ok(Message::default()),
        Value::Object(o) => o,
        other => {
            return Err(StreamError(format!(
                "json: cannot unmarshal {} into Go value of type jsonmessage.JSONMessage",
                json_kind(other)
            )))
        }
    };
    let mut m = Message {
        stream: string_field(obj, "stream", "JSONMessage")?,
        status: string_field(obj, "status", "JSONMessage")?,
        progress_message: string_field(obj, "progress", "JSONMessage")?,
        id: string_field(obj, "id", "JSONMessage")?,
        from: string_field(obj, "from", "JSONMessage")?,
        time: int_field(obj, "time", "JSONMessage")?,
        time_nano: int_field(obj, "timeNano", "JSONMessage")?,
        ..Message::default()
    };
    match field(obj, "progressDetail") {
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) => {
            let at = "JSONMessage.progressDetail";
            m.progress = Some(Progress {
                current: int_field(p, "current", at)?,
                total: int_field(p, "total", at)?,
                start: int_field(p, "start", at)?,
                hide_counts: bool_field(p, "hidecounts", at)?,
                units: string_field(p, "units", at)?,
            });
        }
        Some(other) => {
            return Err(type_error(
                other,
                "JSONMessage.progressDetail",
                "jsonmessage.JSONProgress",
            ))
        }
    }
    match field(obj, "errorDetail") {
        None | Some(Value::Null) => {}
        Some(Value::Object(e)) => {
            let at = "JSONMessage.errorDetail";
            int_field(e, "code", at)?;
            m.error = Some(string_field(e, "message", at)?);
        }
        Some(other) => {
            return Err(type_error(
                other,
                "JSONMessage.errorDetail",
                "jsonmessage.JSONError",
            ))
        }
    }
    // The deprecated `error` string is decoded (and type-checked) but never shown: docker
    // reads only `errorDetail`.
    string_field(obj, "error", "JSONMessage")?;
    m.aux = match field(obj, "aux") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.clone()),
    };
    Ok(m)
}

/// Go matches a key exactly first, else ignoring case.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_error(v: &Value, at: &str, go_type: &str) -> StreamError {
    let kind = match v {
        // Go names the number itself when it does not fit the integer type.
        Value::Number(n) if go_type == "int64" => format!("number {n}"),
        other => json_kind(other).to_string(),
    };
    StreamError(format!(
        "json: cannot unmarshal {kind} into Go struct field {at} of type {go_type}"
    ))
}

fn string_field(obj: &Map<String, Value>, name: &str, at: &str) -> Result<String, StreamError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(type_error(other, &format!("{at}.{name}"), "string")),
    }
}

fn int_field(obj: &Map<String, Value>, name: &str, at: &str) -> Result<i64, StreamError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(0)),
        Some(other) => Err(type_error(other, &format!("{at}.{name}"), "int64")),
    }
}

fn bool_field(obj: &Map<String, Value>, name: &str, at: &str) -> Result<bool, StreamError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(type_error(other, &format!("{at}.{name}"), "bool")),
    }
}

impl Progress {
    /// `JSONProgress.String()`: bar (on terminals wider than 110 columns), sizes, time left.
    pub fn render(&self, width: u16, now: f64) -> String {
        if self.current <= 0 && self.total <= 0 {
            return String::new();
        }
        if self.total <= 0 {
            return if self.units.is_empty() {
                format!("{:>8}", human(self.current))
            } else {
                format!("{} {}", self.current, self.units)
            };
        }
        let percentage = ((self.current as f64 / self.total as f64 * 100.0) as i64 / 2).min(50);
        let mut bar = String::new();
        if width > 110 {
            let spaces = (50 - percentage).max(0) as usize;
            bar = format!(
                "[{}>{}] ",
                "=".repeat(percentage.max(0) as usize),
                " ".repeat(spaces)
            );
        }
        let numbers = if self.hide_counts {
            String::new()
        } else if self.units.is_empty() {
            if self.current > self.total {
                format!("{:>8}", human(self.current))
            } else {
                format!("{:>8}/{}", human(self.current), human(self.total))
            }
        } else if self.current > self.total {
            format!("{} {}", self.current, self.units)
        } else {
            format!("{}/{} {}", self.current, self.total, self.units)
        };
        let mut left = String::new();
        if width > 50 && self.current > 0 && self.start > 0 && percentage < 50 {
            // Go's integer nanosecond arithmetic, overflow and all.
            let from_start = ((now - self.start as f64) * 1e9) as i64;
            let per_entry = from_start / self.current;
            let remaining = (self.total - self.current).wrapping_mul(per_entry);
            left = format!(" {}", go_duration_seconds(round_to_second(remaining)));
        }
        format!("{bar}{numbers}{left}")
    }
}

fn human(n: i64) -> String {
    units::human_size_precision(n as f64, 4)
}

/// `Duration.Round(time.Second)`: halves away from zero.
fn round_to_second(ns: i64) -> i64 {
    const S: i64 = 1_000_000_000;
    let r = ns % S;
    if ns < 0 {
        let r = -r;
        if r + r < S {
            ns + r
        } else {
            ns + r - S
        }
    } else if r + r < S {
        ns - r
    } else {
        ns - r + S
    }
}

/// Go's `Duration.String()` of a whole number of seconds: `0s`, `45s`, `1m0s`, `2h3m4s`.
fn go_duration_seconds(ns: i64) -> String {
    let neg = ns < 0;
    let secs = (ns / 1_000_000_000).unsigned_abs();
    let text = if secs == 0 {
        "0s".to_string()
    } else if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else {
        format!("{}h{}m{}s", secs / 3600, secs % 3600 / 60, secs % 60)
    };
    if neg {
        format!("-{text}")
    } else {
        text
    }
}

/// `RFC3339NanoFixed` in local time, for the (old) `time`/`timeNano` fields.
fn fixed_time(secs: i64, nanos: u32) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(secs, nanos).single() {
        Some(t) => {
            let offset = t.format("%:z").to_string();
            let zone = if offset == "+00:00" {
                "Z".to_string()
            } else {
                offset
            };
            format!("{}{zone}", t.format("%Y-%m-%dT%H:%M:%S%.9f"))
        }
        None => String::new(),
    }
}

/// Draws messages one after another, remembering which line each layer id is on.
pub struct Display<W: Write> {
    out: W,
    term: Term,
    ids: HashMap<String, usize>,
}

impl<W: Write> Display<W> {
    pub fn new(out: W, term: Term) -> Display<W> {
        Display {
            out,
            term,
            ids: HashMap::new(),
        }
    }

    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }

    /// One message: drawn, handed to `aux` (then not drawn), or its error returned.
    pub fn show(&mut self, m: &Message, aux: &mut dyn FnMut(&Value)) -> Result<(), StreamError> {
        if let Some(a) = &m.aux {
            aux(a);
            return Ok(());
        }
        let terminal = self.term.is_terminal;
        let mut diff = 0;
        if !m.id.is_empty() && (m.progress.is_some() || !m.progress_message.is_empty()) {
            let count = self.ids.len();
            let line = *self.ids.entry(m.id.clone()).or_insert_with(|| {
                if terminal {
                    let _ = self.out.write_all(b"\n");
                }
                count
            });
            diff = self.ids.len() - line;
            if terminal {
                self.cursor(b'A', diff);
            }
        } else {
            // Anything else ends the block of lines being redrawn: a later `pull -a` tag
            // draws its layers below, not over the previous tag's.
            self.ids.clear();
        }
        let result = self.draw(m);
        if !m.id.is_empty() && terminal {
            self.cursor(b'B', diff);
        }
        let _ = self.out.flush();
        result
    }

    fn cursor(&mut self, dir: u8, n: usize) {
        if n > 0 {
            let _ = write!(self.out, "\x1b[{n}{}", dir as char);
        }
    }

    /// `JSONMessage.Display`.
    fn draw(&mut self, m: &Message) -> Result<(), StreamError> {
        if let Some(e) = &m.error {
            return Err(StreamError(e.clone()));
        }
        let terminal = self.term.is_terminal;
        let bar = |p: &Progress, term: &Term| p.render((term.width)(), (term.now)());
        let mut endl = "";
        if terminal && m.stream.is_empty() && m.progress.is_some() {
            let _ = self.out.write_all(b"\x1b[2K\r");
            endl = "\r";
        } else if let Some(p) = &m.progress {
            // Without a terminal, progress is not shown at all.
            if !bar(p, &self.term).is_empty() {
                return Ok(());
            }
        }
        let mut line = String::new();
        if m.time_nano != 0 {
            line.push_str(&fixed_time(
                m.time_nano.div_euclid(1_000_000_000),
                m.time_nano.rem_euclid(1_000_000_000) as u32,
            ));
            line.push(' ');
        } else if m.time != 0 {
            line.push_str(&fixed_time(m.time, 0));
            line.push(' ');
        }
        if !m.id.is_empty() {
            line.push_str(&m.id);
            line.push_str(": ");
        }
        if !m.from.is_empty() {
            line.push_str(&format!("(from {}) ", m.from));
        }
        match &m.progress {
            Some(p) if terminal => {
                line.push_str(&format!("{} {}{endl}", m.status, bar(p, &self.term)));
            }
            _ if !m.progress_message.is_empty() => {
                line.push_str(&format!("{} {}{endl}", m.status, m.progress_message));
            }
            _ if !m.stream.is_empty() => {
                line.push_str(&format!("{}{endl}", m.stream));
            }
            _ => line.push_str(&format!("{}{endl}\n", m.status)),
        }
        let _ = self.out.write_all(line.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
