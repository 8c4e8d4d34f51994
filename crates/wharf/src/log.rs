//! The CLI's own log level (`-l/--log-level`, `-D`), as the docker CLI sets logrus: the same
//! level names, the same refusal of an unknown one, and at `debug` a line per API exchange on
//! stderr in logrus' text format.

use std::sync::atomic::{AtomicU8, Ordering};

/// logrus' levels, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Panic = 0,
    Fatal,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// logrus' `ParseLevel`, with docker's wording for an unknown level.
pub fn parse_level(s: &str) -> Result<Level, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "panic" => Level::Panic,
        "fatal" => Level::Fatal,
        "error" => Level::Error,
        "warn" | "warning" => Level::Warn,
        "info" => Level::Info,
        "debug" => Level::Debug,
        "trace" => Level::Trace,
        _ => return Err(format!("Unable to parse logging level: {s}")),
    })
}

/// docker's order: `--log-level` first, then `-D` forces debug.
pub fn configure(log_level: Option<&str>, debug: bool) -> Result<Level, String> {
    let mut level = match log_level {
        Some(l) => parse_level(l)?,
        None => Level::Info,
    };
    if debug {
        level = Level::Debug;
    }
    LEVEL.store(level as u8, Ordering::Relaxed);
    Ok(level)
}

pub fn enabled(level: Level) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level as u8
}

/// One logrus text line: `DEBU[0000] msg` for a terminal logrus can see, `time=".."
/// level=debug msg=".."` otherwise (docker's case, always: see `log`).
pub fn format_line(level: Level, msg: &str, terminal: bool, now: &str) -> String {
    let name = match level {
        Level::Panic => "panic",
        Level::Fatal => "fatal",
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    };
    if terminal {
        let short: String = name.to_ascii_uppercase().chars().take(4).collect();
        format!("{short}[0000] {msg}\n")
    } else {
        format!(
            "time={} level={name} msg={}\n",
            crate::opts::values::go_quoted(now),
            crate::opts::values::go_quoted(msg)
        )
    }
}

pub fn log(level: Level, msg: &str) {
    if !enabled(level) {
        return;
    }
    let now = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // docker 28 hands logrus its stderr wrapper, not the file: logrus never sees a terminal
    // there and always writes `time=.. level=..` lines (seen on a pty with `docker cp`).
    let line = format_line(level, msg, false, &now);
    crate::exit::err_out(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_logrus_and_docker() {
        assert_eq!(parse_level("DEBUG"), Ok(Level::Debug));
        assert_eq!(parse_level("warning"), Ok(Level::Warn));
        assert_eq!(
            parse_level("x"),
            Err("Unable to parse logging level: x".to_string())
        );
        assert_eq!(configure(Some("error"), true), Ok(Level::Debug));
        assert!(enabled(Level::Debug));
        assert_eq!(configure(Some("error"), false), Ok(Level::Error));
        assert!(!enabled(Level::Info));
        configure(None, false).unwrap();
        assert_eq!(
            format_line(Level::Debug, "GET /_ping", false, "2025-01-01T00:00:00Z"),
            "time=\"2025-01-01T00:00:00Z\" level=debug msg=\"GET /_ping\"\n"
        );
        assert_eq!(format_line(Level::Debug, "x", true, ""), "DEBU[0000] x\n");
    }
}
