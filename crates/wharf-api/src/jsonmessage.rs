//! The JSON message streams of pull, push, load, import and build (moby's `pkg/jsonmessage`
//! and `pkg/streamformatter`): one object per message, encoded as Go's `encoding/json` encodes
//! it, each followed by `\r\n`, with the `progress` bar text dockerd renders for clients that
//! do not draw their own.
//!
//! Field order, omitted zero values and escapes are Go's, so a stream is byte-for-byte what a
//! dockerd would send for the same events (the captures in `../shared/api/captures/46-48`
//! are the unit tests).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What `progressDetail` carries (`JSONProgress`). Go omits every zero field, so an update
/// without counts is `{}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProgressDetail {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: i64,
    /// Unix seconds the operation began; dockerd's streams never set it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidecounts: bool,
    /// What is counted when not bytes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub units: String,
}

/// `errorDetail`: what failed once a stream has begun (the HTTP status is already 200).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorDetail {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub code: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// One message (`JSONMessage`), fields in Go's order.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct JsonMessage {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stream: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(
        default,
        rename = "progressDetail",
        skip_serializing_if = "Option::is_none"
    )]
    pub progress_detail: Option<ProgressDetail>,
    /// The bar as text (deprecated by Docker, still what non-terminal clients show).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub progress: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub time: i64,
    #[serde(default, rename = "timeNano", skip_serializing_if = "is_zero")]
    pub time_nano: i64,
    #[serde(
        default,
        rename = "errorDetail",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_detail: Option<ErrorDetail>,
    /// The error's text again (deprecated by Docker, read by older clients).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<Aux>,
}

/// Out-of-band data of a stream, typed where Go's field order matters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Aux {
    /// The end of a push (`PushResult`).
    Pushed {
        #[serde(rename = "Tag")]
        tag: String,
        #[serde(rename = "Digest")]
        digest: String,
        #[serde(rename = "Size")]
        size: i64,
    },
    Other(Value),
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl JsonMessage {
    /// A message line (`progress.Message`): `{"status":"Pulling from x","id":"latest"}`.
    pub fn status(id: impl Into<String>, status: impl Into<String>) -> JsonMessage {
        JsonMessage {
            status: status.into(),
            id: id.into(),
            ..JsonMessage::default()
        }
    }

    /// A step of one item without counts (`progress.Update`):
    /// `{"status":"Pull complete","progressDetail":{},"id":"680518934dcd"}`.
    pub fn action(id: impl Into<String>, action: impl Into<String>) -> JsonMessage {
        JsonMessage {
            status: action.into(),
            progress_detail: Some(ProgressDetail::default()),
            id: id.into(),
            ..JsonMessage::default()
        }
    }

    /// A step with byte counts and its bar: `Downloading`, `Extracting`, `Pushing`.
    pub fn progress(
        id: impl Into<String>,
        action: impl Into<String>,
        current: i64,
        total: i64,
    ) -> JsonMessage {
        let detail = ProgressDetail {
            current,
            total,
            ..ProgressDetail::default()
        };
        JsonMessage {
            status: action.into(),
            progress: detail.bar(),
            progress_detail: Some(detail),
            id: id.into(),
            ..JsonMessage::default()
        }
    }

    /// A failure after the stream began (`streamformatter.FormatError`).
    pub fn error(message: impl Into<String>) -> JsonMessage {
        let message = message.into();
        JsonMessage {
            error_detail: Some(ErrorDetail {
                code: 0,
                message: message.clone(),
            }),
            error: message,
            ..JsonMessage::default()
        }
    }

    /// Out-of-band data (push's final `{"Tag","Digest","Size"}`), as dockerd's progress
    /// formatter writes it: with an empty `progressDetail`.
    pub fn aux(value: Aux) -> JsonMessage {
        JsonMessage {
            progress_detail: Some(ProgressDetail::default()),
            aux: Some(value),
            ..JsonMessage::default()
        }
    }

    /// The message as one line of a stream: Go's JSON and `\r\n`.
    pub fn to_line(&self) -> Vec<u8> {
        let mut out = go_json(self);
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// The width dockerd's `JSONProgress.String` assumes when it has no terminal (always, in the
/// daemon): wide enough for the bar.
const NO_TERMINAL_WIDTH: usize = 200;

impl ProgressDetail {
    /// `JSONProgress.String()` as dockerd renders it: a 50-column bar when there is a total,
    /// then `current/total` in go-units' sizes (or counts in `units`). No time left: dockerd's
    /// streams never set `start`.
    pub fn bar(&self) -> String {
        let (current, total) = (self.current, self.total);
        if current <= 0 && total <= 0 {
            return String::new();
        }
        if total <= 0 {
            return if self.units.is_empty() {
                format!("{:>8}", human_size(current as f64))
            } else {
                format!("{current} {}", self.units)
            };
        }
        let percentage = (((current as f64 / total as f64) * 100.0) as i64 / 2).min(50);
        let mut out = String::new();
        if NO_TERMINAL_WIDTH > 110 {
            let done = percentage.max(0) as usize;
            out.push('[');
            out.push_str(&"=".repeat(done));
            out.push('>');
            out.push_str(&" ".repeat(50 - done));
            out.push_str("] ");
        }
        if self.hidecounts {
        } else if self.units.is_empty() {
            let cur = human_size(current as f64);
            if current > total {
                out.push_str(&format!("{cur:>8}"));
            } else {
                out.push_str(&format!("{cur:>8}/{}", human_size(total as f64)));
            }
        } else if current > total {
            out.push_str(&format!("{current} {}", self.units));
        } else {
            out.push_str(&format!("{current}/{total} {}", self.units));
        }
        out
    }
}

/// go-units `HumanSize`: decimal units (`kB`, `MB`...) and four significant digits, as
/// Go's `%.4g` prints them (`37.38kB`, `1.982MB`, `126B`, `2MB`).
pub fn human_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = size;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_format_g(size, 4), UNITS[i])
}

/// Go's `%.<prec>g`: `prec` significant digits, trailing zeros dropped, exponent form only
/// when the exponent is below -4 or at least the precision.
fn go_format_g(x: f64, prec: usize) -> String {
    if x == 0.0 || !x.is_finite() {
        return if x == 0.0 {
            "0".to_owned()
        } else {
            x.to_string()
        };
    }
    let prec = prec.max(1);
    let sign = if x < 0.0 { "-" } else { "" };
    // Rust's exponent form rounds exactly (half to even), as Go's strconv does.
    let e = format!("{:.*e}", prec - 1, x.abs());
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let all: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = all.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let nd = digits.len() as i32;
    let dp = exp + 1;
    let mut eprec = prec as i32;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if exp < -4 || exp >= eprec {
        let m = if nd > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.to_owned()
        };
        let es = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{es}{:02}", exp.abs());
    }
    let body = if dp <= 0 {
        format!("0.{}{digits}", "0".repeat((-dp) as usize))
    } else if dp >= nd {
        format!("{digits}{}", "0".repeat((dp - nd) as usize))
    } else {
        format!("{}.{}", &digits[..dp as usize], &digits[dp as usize..])
    };
    format!("{sign}{body}")
}

/// Go's `json.Marshal` of `v`: serde's JSON with Go's escapes, `<`, `>` and `&` as `\u003c`,
/// `\u003e` and `\u0026`, U+2028/U+2029 escaped, and control characters other than `\n`,
/// `\r` and `\t` as `\u00XX` (Go has no `\b` or `\f`).
pub fn go_json<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    match v.serialize(&mut ser) {
        Ok(()) => out,
        Err(e) => {
            let mut fallback = Vec::new();
            let mut ser = serde_json::Serializer::with_formatter(&mut fallback, GoFormatter);
            // A map of one string cannot fail to serialize.
            let _ =
                serde_json::json!({ "error": format!("format error: {e}") }).serialize(&mut ser);
            fallback
        }
    }
}

struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        use serde_json::ser::CharEscape;
        let s: Vec<u8> = match char_escape {
            CharEscape::Quote => b"\\\"".to_vec(),
            CharEscape::ReverseSolidus => b"\\\\".to_vec(),
            CharEscape::Solidus => b"/".to_vec(),
            CharEscape::LineFeed => b"\\n".to_vec(),
            CharEscape::CarriageReturn => b"\\r".to_vec(),
            CharEscape::Tab => b"\\t".to_vec(),
            CharEscape::Backspace => b"\\u0008".to_vec(),
            CharEscape::FormFeed => b"\\u000c".to_vec(),
            CharEscape::AsciiControl(b) => format!("\\u{b:04x}").into_bytes(),
        };
        writer.write_all(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(m: &JsonMessage) -> String {
        String::from_utf8(m.to_line()).unwrap()
    }

    /// Every line of captures 46 (push) and 47 (pull) of a real dockerd, rebuilt from its
    /// parts: the encoding and the bar text must be the same bytes.
    #[test]
    fn pull_lines_are_dockerds_bytes() {
        let cases = [
            (
                JsonMessage::status("v1", "Pulling from multi"),
                r#"{"status":"Pulling from multi","id":"v1"}"#,
            ),
            (
                JsonMessage::action("389ed6bbf73b", "Already exists"),
                r#"{"status":"Already exists","progressDetail":{},"id":"389ed6bbf73b"}"#,
            ),
            (
                JsonMessage::action("680518934dcd", "Pulling fs layer"),
                r#"{"status":"Pulling fs layer","progressDetail":{},"id":"680518934dcd"}"#,
            ),
            (
                JsonMessage::progress("b3da9f41977a", "Downloading", 126, 126),
                r#"{"status":"Downloading","progressDetail":{"current":126,"total":126},"progress":"[==================================================\u003e]     126B/126B","id":"b3da9f41977a"}"#,
            ),
            (
                JsonMessage::action("b3da9f41977a", "Verifying Checksum"),
                r#"{"status":"Verifying Checksum","progressDetail":{},"id":"b3da9f41977a"}"#,
            ),
            (
                JsonMessage::progress("680518934dcd", "Extracting", 113, 113),
                r#"{"status":"Extracting","progressDetail":{"current":113,"total":113},"progress":"[==================================================\u003e]     113B/113B","id":"680518934dcd"}"#,
            ),
            (
                JsonMessage::status("", "Digest: sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94"),
                r#"{"status":"Digest: sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94"}"#,
            ),
            (
                JsonMessage::status("", "Status: Downloaded newer image for localhost:5000/multi:v1"),
                r#"{"status":"Status: Downloaded newer image for localhost:5000/multi:v1"}"#,
            ),
        ];
        for (m, want) in cases {
            assert_eq!(line(&m), format!("{want}\r\n"));
        }
    }

    #[test]
    fn push_lines_are_dockerds_bytes() {
        let cases = [
            (
                JsonMessage::progress("80e0452609cc", "Pushing", 37376, 1982354),
                r#"{"status":"Pushing","progressDetail":{"current":37376,"total":1982354},"progress":"[\u003e                                                  ]  37.38kB/1.982MB","id":"80e0452609cc"}"#,
            ),
            (
                JsonMessage::progress("80e0452609cc", "Pushing", 1544704, 1982354),
                r#"{"status":"Pushing","progressDetail":{"current":1544704,"total":1982354},"progress":"[======================================\u003e            ]  1.545MB/1.982MB","id":"80e0452609cc"}"#,
            ),
            (
                JsonMessage::progress("80e0452609cc", "Pushing", 1996800, 1982354),
                r#"{"status":"Pushing","progressDetail":{"current":1996800,"total":1982354},"progress":"[==================================================\u003e]  1.997MB","id":"80e0452609cc"}"#,
            ),
            (
                JsonMessage::progress("c8cffd6ed0e6", "Pushing", 512, 19),
                r#"{"status":"Pushing","progressDetail":{"current":512,"total":19},"progress":"[==================================================\u003e]     512B","id":"c8cffd6ed0e6"}"#,
            ),
            (
                JsonMessage::progress("c8cffd6ed0e6", "Pushing", 2048, 19),
                r#"{"status":"Pushing","progressDetail":{"current":2048,"total":19},"progress":"[==================================================\u003e]  2.048kB","id":"c8cffd6ed0e6"}"#,
            ),
            (
                JsonMessage::action("80e0452609cc", "Mounted from x"),
                r#"{"status":"Mounted from x","progressDetail":{},"id":"80e0452609cc"}"#,
            ),
            (
                JsonMessage::status("", "The push refers to repository [localhost:5000/x]"),
                r#"{"status":"The push refers to repository [localhost:5000/x]"}"#,
            ),
            (
                JsonMessage::aux(Aux::Pushed {
                    tag: "latest".into(),
                    digest:
                        "sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6"
                            .into(),
                    size: 527,
                }),
                r#"{"progressDetail":{},"aux":{"Tag":"latest","Digest":"sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6","Size":527}}"#,
            ),
        ];
        for (m, want) in cases {
            assert_eq!(line(&m), format!("{want}\r\n"));
        }
    }

    #[test]
    fn errors_mid_stream() {
        assert_eq!(
            line(&JsonMessage::error("unexpected EOF")),
            "{\"errorDetail\":{\"message\":\"unexpected EOF\"},\"error\":\"unexpected EOF\"}\r\n"
        );
    }

    #[test]
    fn sizes_as_go_units_prints_them() {
        let cases = [
            (0.0, "0B"),
            (1.0, "1B"),
            (999.0, "999B"),
            (1000.0, "1kB"),
            (1024.0, "1.024kB"),
            (37376.0, "37.38kB"),
            (999_950.0, "1000kB"),
            (1_982_354.0, "1.982MB"),
            (2_000_000.0, "2MB"),
            (123_456_789.0, "123.5MB"),
            (5.5e9, "5.5GB"),
            (1e27, "1000YB"),
            (1.5e28, "1.5e+04YB"),
        ];
        for (n, want) in cases {
            assert_eq!(human_size(n), want, "{n}");
        }
    }

    #[test]
    fn bars_at_the_edges() {
        let p = |c, t| {
            ProgressDetail {
                current: c,
                total: t,
                ..Default::default()
            }
            .bar()
        };
        assert_eq!(p(0, 0), "");
        assert_eq!(p(5000, 0), "     5kB");
        assert_eq!(p(1, 100), format!("[>{}]       1B/100B", " ".repeat(50)));
        assert_eq!(
            p(50, 100),
            format!("[{}>{}]      50B/100B", "=".repeat(25), " ".repeat(25))
        );
        let counted = ProgressDetail {
            current: 3,
            total: 10,
            units: "files".into(),
            ..Default::default()
        };
        assert_eq!(
            counted.bar(),
            format!("[{}>{}] 3/10 files", "=".repeat(15), " ".repeat(35))
        );
    }

    #[test]
    fn go_escapes() {
        let m = JsonMessage::status("", "a<b>&\u{2028}\u{8}\u{c}\u{1}\"\\\n");
        assert_eq!(
            line(&m),
            "{\"status\":\"a\\u003cb\\u003e\\u0026\\u2028\\u0008\\u000c\\u0001\\\"\\\\\\n\"}\r\n"
        );
    }

    #[test]
    fn round_trips() {
        let m = JsonMessage::progress("x", "Downloading", 1, 2);
        let back: JsonMessage = serde_json::from_slice(&go_json(&m)).unwrap();
        assert_eq!(back, m);
    }
}
