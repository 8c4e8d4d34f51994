//! The `--change` dialect of `docker commit` and `docker import`: Dockerfile lines limited to
//! the instructions that only touch an image's config, applied as dockerd's
//! `dockerfile.BuildFromConfig` applies them (BuildKit's parser, then moby's dispatchers).
//!
//! As dockerd does: the lines are parsed first (a malformed `ENV` fails before anything
//! else), then every instruction is checked against the allowed set (`RUN is not a valid
//! change command`, in the case it was typed), then each is applied in order. `ENV`, `LABEL`,
//! `EXPOSE`, `VOLUME`, `USER`, `WORKDIR` and `STOPSIGNAL` expand `$VAR` from the config's `Env`
//! as it stands at that line; `CMD` and `ENTRYPOINT` do not. `ENTRYPOINT` clears `Cmd` unless a
//! `CMD` came before it in the same changes.

use super::words::{parse_words, process_word};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use wharf_api::container::{ContainerConfig, HealthConfig};

const VALID: &[&str] = &[
    "cmd",
    "entrypoint",
    "healthcheck",
    "env",
    "expose",
    "label",
    "onbuild",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// Applies `changes` (each one or more lines) to `config`. The error is dockerd's words.
pub fn apply(config: &mut ContainerConfig, changes: &[String]) -> Result<(), String> {
    let lines = logical_lines(changes);
    let mut parsed = Vec::with_capacity(lines.len());
    for line in &lines {
        parsed.push(parse_line(line)?);
    }
    for p in &parsed {
        if !VALID.contains(&p.name.to_ascii_lowercase().as_str()) {
            return Err(format!("{} is not a valid change command", p.name));
        }
    }
    let mut cmd_set = false;
    for p in &parsed {
        dispatch(config, p, &mut cmd_set)?;
    }
    Ok(())
}

/// The lines of the joined changes: `\` at a line's end continues it, blank lines and `#`
/// comments go.
fn logical_lines(changes: &[String]) -> Vec<String> {
    let joined = changes.join("\n");
    let mut out = Vec::new();
    let mut cur = String::new();
    for raw in joined.lines() {
        let t = raw.trim_start();
        if t.starts_with('#') {
            continue;
        }
        let t = t.trim_end();
        if let Some(head) = t.strip_suffix('\\') {
            cur.push_str(head);
            continue;
        }
        cur.push_str(t);
        if !cur.trim().is_empty() {
            out.push(cur.trim().to_string());
        }
        cur.clear();
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// One line: its instruction as typed and what follows. Line-level checks of BuildKit's
/// parser run here, before any instruction is judged.
struct Line {
    name: String,
    rest: String,
}

fn split_instruction(line: &str) -> (&str, &str) {
    match line.split_once(char::is_whitespace) {
        Some((a, b)) => (a, b.trim()),
        None => (line, ""),
    }
}

fn parse_line(line: &str) -> Result<Line, String> {
    let (name, rest) = split_instruction(line);
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "env" | "label" => {
            name_values(rest, &name.to_ascii_uppercase())?;
        }
        "cmd" | "entrypoint" | "volume" => {
            json_or_shell(rest)?;
        }
        "onbuild" if !rest.is_empty() => {
            parse_line(rest)?;
        }
        _ => {}
    }
    Ok(Line {
        name: name.to_string(),
        rest: rest.to_string(),
    })
}

/// `KEY=value ...` (quotes kept, removed at expansion) or the legacy `KEY value`.
fn name_values(rest: &str, inst: &str) -> Result<Vec<(String, String)>, String> {
    let words = parse_words(rest);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let mut parts = rest.splitn(2, [' ', '\t', '\x0b', '\x0c', '\r']);
        let key = parts.next().unwrap_or_default();
        let value = parts
            .next()
            .map(|v| v.trim_start_matches([' ', '\t', '\x0b', '\x0c', '\r']));
        return match value {
            Some(v) => Ok(vec![(key.to_string(), v.to_string())]),
            None => Err(format!("{inst} must have two arguments")),
        };
    }
    words
        .iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value")
                })
        })
        .collect()
}

/// A JSON array of strings (`Some`), or `None` for the shell form.
fn json_or_shell(rest: &str) -> Result<Option<Vec<String>>, String> {
    if !rest.starts_with('[') {
        return Ok(None);
    }
    match serde_json::from_str::<Vec<Value>>(rest) {
        Ok(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(
                    "when using JSON array syntax, arrays must be comprised of strings only"
                        .to_string(),
                ),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Err(_) => Ok(None),
    }
}

fn at_least_one(inst: &str) -> String {
    format!("{inst} requires at least one argument")
}

fn exactly_one(inst: &str) -> String {
    format!("{inst} requires exactly one argument")
}

fn env_of(config: &ContainerConfig) -> Vec<String> {
    config.env.clone().unwrap_or_default()
}

/// The single argument of USER, WORKDIR and STOPSIGNAL, expanded.
fn single(config: &ContainerConfig, rest: &str, inst: &str) -> Result<String, String> {
    if rest.is_empty() {
        return Err(exactly_one(inst));
    }
    process_word(rest, &env_of(config))
}

fn dispatch(config: &mut ContainerConfig, line: &Line, cmd_set: &mut bool) -> Result<(), String> {
    let rest = line.rest.as_str();
    match line.name.to_ascii_lowercase().as_str() {
        "cmd" => {
            config.cmd = Some(command_line(config, rest)?);
            *cmd_set = true;
        }
        "entrypoint" => {
            config.entrypoint = Some(command_line(config, rest)?);
            if !*cmd_set {
                config.cmd = None;
            }
        }
        "env" => {
            let pairs = name_values(rest, "ENV")?;
            if pairs.is_empty() {
                return Err(at_least_one("ENV"));
            }
            for (k, v) in pairs {
                if k.is_empty() {
                    return Err("ENV names can not be blank".into());
                }
                let env = env_of(config);
                let (k, v) = (process_word(&k, &env)?, process_word(&v, &env)?);
                set_env(config, &k, &v);
            }
        }
        "label" => {
            let pairs = name_values(rest, "LABEL")?;
            if pairs.is_empty() {
                return Err(at_least_one("LABEL"));
            }
            let env = env_of(config);
            for (k, v) in pairs {
                if k.is_empty() {
                    return Err("LABEL names can not be blank".into());
                }
                let (k, v) = (process_word(&k, &env)?, process_word(&v, &env)?);
                config.labels.get_or_insert_with(BTreeMap::new).insert(k, v);
            }
        }
        "expose" => {
            let words: Vec<&str> = rest.split_whitespace().collect();
            if words.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            let env = env_of(config);
            for w in words {
                for port in port_specs(&process_word(w, &env)?)? {
                    config
                        .exposed_ports
                        .get_or_insert_with(BTreeMap::new)
                        .insert(port, Value::Object(Map::new()));
                }
            }
        }
        "volume" => {
            let list = match json_or_shell(rest)? {
                Some(l) => l,
                None => rest.split_whitespace().map(String::from).collect(),
            };
            if list.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            let env = env_of(config);
            for v in list {
                let v = process_word(v.trim(), &env)?;
                if v.trim().is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                config
                    .volumes
                    .get_or_insert_with(BTreeMap::new)
                    .insert(v, Value::Object(Map::new()));
            }
        }
        "user" => config.user = single(config, rest, "USER")?,
        "workdir" => {
            let requested = single(config, rest, "WORKDIR")?;
            config.working_dir = normalize_workdir(&config.working_dir, &requested)?;
        }
        "stopsignal" => {
            let sig = single(config, rest, "STOPSIGNAL")?;
            crate::containers::signals::parse_signal(&sig).map_err(|e| e.message())?;
            config.stop_signal = Some(sig);
        }
        "onbuild" => {
            if rest.is_empty() {
                return Err(at_least_one("ONBUILD"));
            }
            let (trigger, _) = split_instruction(rest);
            match trigger.to_ascii_uppercase().as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into())
                }
                "MAINTAINER" | "FROM" => {
                    return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"))
                }
                _ => {}
            }
            config
                .on_build
                .get_or_insert_with(Vec::new)
                .push(rest.to_string());
        }
        "healthcheck" => {
            if rest.is_empty() {
                return Err(at_least_one("HEALTHCHECK"));
            }
            let h = super::healthcheck::parse(rest)?;
            config.healthcheck = Some(
                serde_json::from_value::<HealthConfig>(h)
                    .map_err(|e| format!("HEALTHCHECK: {e}"))?,
            );
        }
        other => return Err(format!("{other} is not a valid change command")),
    }
    Ok(())
}

/// CMD and ENTRYPOINT: the JSON form as is, the shell form behind the config's shell.
fn command_line(config: &ContainerConfig, rest: &str) -> Result<Vec<String>, String> {
    if let Some(argv) = json_or_shell(rest)? {
        return Ok(argv);
    }
    let mut argv = match &config.shell {
        Some(s) if !s.is_empty() => s.clone(),
        _ => vec!["/bin/sh".to_string(), "-c".to_string()],
    };
    argv.push(rest.to_string());
    Ok(argv)
}

/// Replaces `KEY=...` in place, or appends it.
fn set_env(config: &mut ContainerConfig, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    let env = config.env.get_or_insert_with(Vec::new);
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

/// moby's `normalizeWorkdir`: a relative path goes under the current one; the result is clean.
fn normalize_workdir(current: &str, requested: &str) -> Result<String, String> {
    if requested.is_empty() {
        return Err("cannot normalize nothing".into());
    }
    let joined = if requested.starts_with('/') {
        requested.to_string()
    } else {
        format!("/{current}/{requested}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// go-connections' `nat.ParsePortSpecs` for EXPOSE: `port[-end][/proto]`, tcp by default.
fn port_specs(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let bad = || format!("invalid containerPort: {ports}");
    let num = |s: &str| s.parse::<u16>().map_err(|_| bad());
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(ports)?, num(ports)?),
    };
    if end < start {
        return Err(format!(
            "invalid range specified for containerPort: {ports}"
        ));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(changes: &[&str]) -> Result<ContainerConfig, String> {
        let mut c = ContainerConfig::default();
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply(&mut c, &changes).map(|_| c)
    }

    #[test]
    fn each_instruction_sets_its_field() {
        let c = applied(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            r#"ENV A=1 B="two words""#,
            "ENV A 3",
            "WORKDIR /tmp",
            "WORKDIR sub/../x",
            "LABEL x=y \"z z\"=w",
            "EXPOSE 80 53/udp 8000-8001",
            "USER nobody",
            "VOLUME /data /logs",
            r#"VOLUME ["/json"]"#,
            "STOPSIGNAL SIGUSR1",
            "ONBUILD RUN echo built",
            "HEALTHCHECK --interval=5s CMD true",
        ])
        .unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["sh", "-c", "echo hi"]);
        assert_eq!(c.env.unwrap(), vec!["A=3", "B=two words"]);
        assert_eq!(c.working_dir, "/tmp/x");
        let labels = c.labels.unwrap();
        assert_eq!((labels["x"].as_str(), labels["z z"].as_str()), ("y", "w"));
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        assert_eq!(c.user, "nobody");
        let vols: Vec<_> = c.volumes.unwrap().into_keys().collect();
        assert_eq!(vols, vec!["/data", "/json", "/logs"]);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGUSR1"));
        assert_eq!(c.on_build.unwrap(), vec!["RUN echo built"]);
        let h = c.healthcheck.unwrap();
        assert_eq!(h.test, vec!["CMD-SHELL", "true"]);
        assert_eq!(h.interval, 5_000_000_000);
    }

    #[test]
    fn shell_forms_use_the_configs_shell() {
        let c = applied(&["CMD echo $HOME"]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "echo $HOME"]);
        let mut c = ContainerConfig {
            shell: Some(vec!["/bin/bash".into(), "-xc".into()]),
            ..Default::default()
        };
        apply(&mut c, &["ENTRYPOINT top -b".into()]).unwrap();
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/bash", "-xc", "top -b"]);
    }

    #[test]
    fn entrypoint_clears_cmd_unless_set_before() {
        let mut c = ContainerConfig {
            cmd: Some(vec!["old".into()]),
            ..Default::default()
        };
        apply(&mut c, &[r#"ENTRYPOINT ["e"]"#.into()]).unwrap();
        assert_eq!(c.cmd, None);
        apply(
            &mut c,
            &[r#"CMD ["c"]"#.into(), r#"ENTRYPOINT ["e"]"#.into()],
        )
        .unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["c"]);
    }

    #[test]
    fn variables_expand_from_the_env_so_far() {
        let mut c = ContainerConfig {
            env: Some(vec!["BASE=/srv".into()]),
            ..Default::default()
        };
        apply(
            &mut c,
            &[
                "ENV APP=$BASE/app".into(),
                "WORKDIR ${APP}".into(),
                "LABEL where=\"$APP\" literal='$APP'".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.env.unwrap(), vec!["BASE=/srv", "APP=/srv/app"]);
        assert_eq!(c.working_dir, "/srv/app");
        let l = c.labels.unwrap();
        assert_eq!(l["where"], "/srv/app");
        assert_eq!(l["literal"], "$APP");
    }

    #[test]
    fn lines_continue_and_comments_go() {
        let c = applied(&["# a comment\nENV A=1 \\", "  B=2", "", "USER u"]).unwrap();
        assert_eq!(c.env.unwrap(), vec!["A=1", "B=2"]);
        assert_eq!(c.user, "u");
    }

    #[test]
    fn errors_in_dockerds_words() {
        let e = |c: &[&str]| applied(c).unwrap_err();
        assert_eq!(e(&["FOO bar"]), "FOO is not a valid change command");
        assert_eq!(e(&["run echo"]), "run is not a valid change command");
        assert_eq!(e(&["COPY a b"]), "COPY is not a valid change command");
        // Parse errors come first, whatever the line.
        assert_eq!(e(&["FROM x", "ENV onlyone"]), "ENV must have two arguments");
        assert_eq!(
            e(&["ENV A=1 B"]),
            "Syntax error - can't find = in \"B\". Must be of the form: name=value"
        );
        assert_eq!(e(&["ENV"]), "ENV requires at least one argument");
        assert_eq!(e(&["USER"]), "USER requires exactly one argument");
        assert_eq!(e(&["EXPOSE"]), "EXPOSE requires at least one argument");
        assert_eq!(e(&["EXPOSE abc"]), "invalid containerPort: abc");
        assert_eq!(e(&["EXPOSE 80/xyz"]), "invalid proto: xyz");
        assert_eq!(e(&["STOPSIGNAL NOPE"]), "Invalid signal: NOPE");
        assert_eq!(
            e(&[r#"CMD ["a", 1]"#]),
            "when using JSON array syntax, arrays must be comprised of strings only"
        );
        assert_eq!(
            e(&["ONBUILD ONBUILD RUN x"]),
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
        );
        assert_eq!(
            e(&["ONBUILD FROM x"]),
            "FROM isn't allowed as an ONBUILD trigger"
        );
        assert_eq!(
            e(&[r#"VOLUME [""]"#]),
            "VOLUME specified can not be an empty string"
        );
        assert!(e(&["HEALTHCHECK --interval=x CMD true"]).contains("interval"));
    }

    #[test]
    fn invalid_json_is_the_shell_form() {
        let c = applied(&["CMD [not json"]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "[not json"]);
    }
}
