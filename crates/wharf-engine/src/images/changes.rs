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
}
