//! Signal names and numbers as `docker kill -s` and `StopSignal` accept them.

use crate::error::EngineError;
use nix::sys::signal::Signal;
use std::str::FromStr;

/// `SIGTERM`, `TERM`, `term`, `15`.
pub fn parse_signal(s: &str) -> Result<i32, EngineError> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(EngineError::invalid(format!("Invalid signal: {s}")));
    }
    let upper = t.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if let Some(rt) = name.strip_prefix("SIGRTMIN") {
        let base = libc::SIGRTMIN();
        let off = if rt.is_empty() {
            0
        } else {
            rt.trim_start_matches('+').parse::<i32>().unwrap_or(-1)
        };
        if off >= 0 && base + off <= libc::SIGRTMAX() {
            return Ok(base + off);
        }
    }
    Signal::from_str(&name)
        .map(|sig| sig as i32)
        .map_err(|_| EngineError::invalid(format!("Invalid signal: {s}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert_eq!(parse_signal("USR1").unwrap(), 10);
        assert_eq!(parse_signal("2").unwrap(), 2);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
    }
}
