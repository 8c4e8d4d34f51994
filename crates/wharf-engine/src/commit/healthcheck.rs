//! `HEALTHCHECK [--interval=D --timeout=D --start-period=D --start-interval=D --retries=N]
//! CMD command|["exe", ...]` or `HEALTHCHECK NONE`, as the image config's `Healthcheck`.

use serde_json::{Map, Value};

/// Go's `time.ParseDuration` (`1m30s`, `200ms`, `1.5s`), in nanoseconds.
fn go_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Some(total as i64)
}

/// `HEALTHCHECK [--interval=D --timeout=D --start-period=D --start-interval=D --retries=N]
/// CMD command|["exe", ...]`, or `HEALTHCHECK NONE`.
pub fn parse(rest: &str) -> Result<Value, String> {
    let mut h = Map::new();
    let mut rest = rest.trim();
    while let Some(opt) = rest.strip_prefix("--") {
        let (flag, tail) = opt.split_once(char::is_whitespace).unwrap_or((opt, ""));
        let (name, value) = flag
            .split_once('=')
            .ok_or_else(|| format!("missing a value on flag: --{flag}"))?;
        let key = match name {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => "Retries",
            _ => return Err(format!("Unknown flag: {name}")),
        };
        let n = if key == "Retries" {
            value.parse::<i64>().ok()
        } else {
            go_duration(value)
        }
        .ok_or_else(|| format!("invalid value for --{name}: {value}"))?;
        h.insert(key.into(), n.into());
        rest = tail.trim_start();
    }
    let (kind, cmd) = rest
        .split_once(char::is_whitespace)
        .map(|(a, b)| (a, b.trim()))
        .unwrap_or((rest, ""));
    match kind.to_ascii_uppercase().as_str() {
        "NONE" if cmd.is_empty() && h.is_empty() => {
            h.insert("Test".into(), serde_json::json!(["NONE"]));
        }
        "NONE" => return Err("HEALTHCHECK NONE takes no arguments".into()),
        "CMD" if !cmd.is_empty() => {
            let test = match serde_json::from_str::<Vec<String>>(cmd) {
                Ok(argv) => std::iter::once("CMD".to_string()).chain(argv).collect(),
                Err(_) => vec!["CMD-SHELL".to_string(), cmd.to_string()],
            };
            h.insert("Test".into(), test.into());
        }
        _ => return Err(format!("Unknown type \"{kind}\" in HEALTHCHECK (try CMD)")),
    }
    Ok(Value::Object(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthcheck_forms() {
        assert_eq!(
            parse("--interval=1m30s --timeout=200ms --retries=2 CMD test -f /ok").unwrap(),
            serde_json::json!({"Test": ["CMD-SHELL", "test -f /ok"], "Interval": 90_000_000_000i64,
                "Timeout": 200_000_000, "Retries": 2})
        );
        assert_eq!(
            parse(r#"CMD ["true", "x"]"#).unwrap(),
            serde_json::json!({"Test": ["CMD", "true", "x"]})
        );
        assert_eq!(
            parse("NONE").unwrap(),
            serde_json::json!({"Test": ["NONE"]})
        );
        assert!(parse("--interval=x CMD true").is_err());
        assert!(parse("RUN true").is_err());
        assert_eq!(go_duration("1.5s"), Some(1_500_000_000));
    }
}
