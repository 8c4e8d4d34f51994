//! `--change` instructions of `docker import`: a subset of Dockerfile syntax applied to the
//! new image's config.

use serde_json::{Map, Value};

fn json_or_shell(rest: &str) -> Value {
    if let Ok(Value::Array(a)) = serde_json::from_str::<Value>(rest) {
        if a.iter().all(Value::is_string) {
            return Value::Array(a);
        }
    }
    Value::Array(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

fn key_values(rest: &str) -> Vec<(String, String)> {
    // `KEY=value ...` or the legacy `KEY value`.
    if !rest.contains('=') {
        return match rest.split_once(char::is_whitespace) {
            Some((k, v)) => vec![(k.to_string(), v.trim().to_string())],
            None => vec![(rest.to_string(), String::new())],
        };
    }
    let mut out = Vec::new();
    for tok in shell_words(rest) {
        if let Some((k, v)) = tok.split_once('=') {
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

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
fn healthcheck(rest: &str) -> Result<Value, String> {
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

/// Applies each instruction to `config` (the image config's `config` object).
pub fn apply(config: &mut Map<String, Value>, changes: &[String]) -> Result<(), String> {
    for change in changes {
        let change = change.trim();
        if change.is_empty() {
            continue;
        }
        let (inst, rest) = change
            .split_once(char::is_whitespace)
            .map(|(a, b)| (a, b.trim()))
            .unwrap_or((change, ""));
        match inst.to_ascii_uppercase().as_str() {
            "CMD" => {
                config.insert("Cmd".into(), json_or_shell(rest));
            }
            "ENTRYPOINT" => {
                config.insert("Entrypoint".into(), json_or_shell(rest));
            }
            "WORKDIR" => {
                config.insert("WorkingDir".into(), rest.into());
            }
            "USER" => {
                config.insert("User".into(), rest.into());
            }
            "STOPSIGNAL" => {
                config.insert("StopSignal".into(), rest.into());
            }
            "ENV" => {
                let env = config
                    .entry("Env")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = env {
                    for (k, v) in key_values(rest) {
                        let entry = Value::String(format!("{k}={v}"));
                        let prefix = format!("{k}=");
                        match list
                            .iter_mut()
                            .find(|e| e.as_str().is_some_and(|s| s.starts_with(&prefix)))
                        {
                            Some(slot) => *slot = entry,
                            None => list.push(entry),
                        }
                    }
                }
            }
            "LABEL" => {
                let labels = config
                    .entry("Labels")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = labels {
                    for (k, v) in key_values(rest) {
                        m.insert(k, Value::String(v));
                    }
                }
            }
            "EXPOSE" => {
                let ports = config
                    .entry("ExposedPorts")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = ports {
                    for p in rest.split_whitespace() {
                        let p = if p.contains('/') {
                            p.to_string()
                        } else {
                            format!("{p}/tcp")
                        };
                        m.insert(p, Value::Object(Map::new()));
                    }
                }
            }
            "VOLUME" => {
                let vols = config
                    .entry("Volumes")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = vols {
                    let list = match serde_json::from_str::<Vec<String>>(rest) {
                        Ok(v) => v,
                        Err(_) => rest.split_whitespace().map(String::from).collect(),
                    };
                    for v in list {
                        m.insert(v, Value::Object(Map::new()));
                    }
                }
            }
            "ONBUILD" => {}
            "HEALTHCHECK" => {
                config.insert("Healthcheck".into(), healthcheck(rest)?);
            }
            other => {
                return Err(format!("{other} is not a valid change command"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_changes() {
        let mut m = Map::new();
        apply(
            &mut m,
            &[
                r#"CMD ["sh"]"#.into(),
                "ENV A=1 B=\"two words\"".into(),
                "ENV A 3".into(),
                "WORKDIR /tmp".into(),
                "LABEL x=y".into(),
                "EXPOSE 80".into(),
                "ENTRYPOINT echo hi".into(),
            ],
        )
        .unwrap();
        assert_eq!(m["Cmd"], serde_json::json!(["sh"]));
        assert_eq!(m["Env"], serde_json::json!(["A=3", "B=two words"]));
        assert_eq!(
            m["Entrypoint"],
            serde_json::json!(["/bin/sh", "-c", "echo hi"])
        );
        assert_eq!(m["Labels"]["x"], "y");
        assert!(m["ExposedPorts"].get("80/tcp").is_some());
        assert!(apply(&mut m, &["RUN x".into()]).is_err());
    }

    #[test]
    fn healthcheck_changes() {
        let mut m = Map::new();
        apply(
            &mut m,
            &["HEALTHCHECK --interval=1m30s --timeout=200ms --retries=2 CMD test -f /ok".into()],
        )
        .unwrap();
        assert_eq!(
            m["Healthcheck"],
            serde_json::json!({"Test": ["CMD-SHELL", "test -f /ok"], "Interval": 90_000_000_000i64,
                "Timeout": 200_000_000, "Retries": 2})
        );
        apply(&mut m, &[r#"HEALTHCHECK CMD ["true", "x"]"#.into()]).unwrap();
        assert_eq!(
            m["Healthcheck"],
            serde_json::json!({"Test": ["CMD", "true", "x"]})
        );
        apply(&mut m, &["HEALTHCHECK NONE".into()]).unwrap();
        assert_eq!(m["Healthcheck"], serde_json::json!({"Test": ["NONE"]}));
        assert!(apply(&mut m, &["HEALTHCHECK --interval=x CMD true".into()]).is_err());
        assert!(apply(&mut m, &["HEALTHCHECK RUN true".into()]).is_err());
        assert_eq!(go_duration("1.5s"), Some(1_500_000_000));
    }
}
