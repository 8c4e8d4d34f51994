//! `wharf context create|ls|use|rm|inspect|show`: no daemon needed.

use super::{err_out, out, Exit};
use crate::cli::ContextCmd;
use crate::format::{indent_json, template::Template, Format};
use crate::host::{ContextEntry, Store, Tls, DEFAULT_CONTEXT, DEFAULT_HOST};
use anyhow::Result;
use serde_json::{json, Value};

/// `--docker host=unix:///x.sock,ca=...,cert=...,key=...,skip-tls-verify=true`.
pub fn parse_docker_endpoint(spec: &str) -> Result<(String, Tls)> {
    let mut host = None;
    let mut tls = Tls::default();
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| Exit::error(1, format!("invalid docker endpoint option {part:?}")))?;
        match k {
            "host" => host = Some(v.to_string()),
            "ca" => tls.ca = Some(v.to_string()),
            "cert" => tls.cert = Some(v.to_string()),
            "key" => tls.key = Some(v.to_string()),
            "skip-tls-verify" => {
                let skip: bool = v
                    .parse()
                    .map_err(|_| Exit::error(1, format!("invalid skip-tls-verify value {v:?}")))?;
                tls.tls = true;
                tls.verify = !skip;
            }
            other => return Err(Exit::error(1, format!("unrecognized config key: {other}"))),
        }
    }
    if tls.ca.is_some() || tls.cert.is_some() {
        tls.tls = true;
        if !tls.verify && !spec.contains("skip-tls-verify") {
            tls.verify = true;
        }
    }
    let host = host.unwrap_or_else(|| DEFAULT_HOST.to_string());
    if !(host.starts_with("unix://") || host.starts_with("tcp://") || host.starts_with("http://")) {
        return Err(Exit::error(
            1,
            format!("unable to parse docker host `{host}`"),
        ));
    }
    Ok((host, tls))
}

pub fn run(cmd: &ContextCmd, store: &Store) -> Result<i32> {
    let fail = |e: anyhow::Error| {
        if e.downcast_ref::<Exit>().is_some() {
            e
        } else {
            Exit::error(1, format!("{e:#}"))
        }
    };
    match cmd {
        ContextCmd::Create(a) => {
            let (host, tls) = parse_docker_endpoint(a.docker.as_deref().unwrap_or(""))?;
            store
                .create(&ContextEntry {
                    name: a.name.clone(),
                    description: a.description.clone(),
                    host,
                    tls,
                })
                .map_err(fail)?;
            out(format!("{}\n", a.name).as_bytes());
            err_out(format!("Successfully created context \"{}\"\n", a.name).as_bytes());
        }
        ContextCmd::Ls { quiet, format } => {
            let current = current_name(store)?;
            let mut rows = vec![json!({
                "Name": DEFAULT_CONTEXT,
                "Description": "Current WHARF_HOST based configuration",
                "DockerEndpoint": std::env::var("WHARF_HOST")
                    .or_else(|_| std::env::var("DOCKER_HOST"))
                    .unwrap_or_else(|_| DEFAULT_HOST.to_string()),
                "Current": current == DEFAULT_CONTEXT,
                "Error": "",
            })];
            for c in store.list().map_err(fail)? {
                rows.push(json!({
                    "Name": c.name,
                    "Description": c.description,
                    "DockerEndpoint": c.host,
                    "Current": c.name == current,
                    "Error": "",
                }));
            }
            if *quiet {
                for r in &rows {
                    out(format!("{}\n", r["Name"].as_str().unwrap_or("")).as_bytes());
                }
                return Ok(0);
            }
            for r in &mut rows {
                if r["Current"] == Value::Bool(true) && format.is_none() {
                    let marked = format!("{} *", r["Name"].as_str().unwrap_or(""));
                    r["Name"] = Value::String(marked);
                }
            }
            let f = Format::new(
                format.as_deref().unwrap_or(""),
                "table {{.Name}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}",
            )
            .map_err(|e| Exit::error(1, format!("{e:#}")))?;
            let headers = json!({"Name": "NAME", "Description": "DESCRIPTION",
                "DockerEndpoint": "DOCKER ENDPOINT", "Error": "ERROR", "Current": "CURRENT"});
            out(f.render(&rows, &headers)?.as_bytes());
        }
        ContextCmd::Use { name } => {
            store.set_current(name).map_err(fail)?;
            out(format!("{name}\n").as_bytes());
            err_out(format!("Current context is now \"{name}\"\n").as_bytes());
        }
        ContextCmd::Rm { names, force } => {
            let current = current_name(store)?;
            let mut errors = Vec::new();
            for n in names {
                if n == &current && !force && n != DEFAULT_CONTEXT {
                    errors.push(format!(
                        "context \"{n}\" is in use, set -f flag to force remove"
                    ));
                    continue;
                }
                match store.remove(n) {
                    Ok(()) => out(format!("{n}\n").as_bytes()),
                    Err(e) => errors.push(format!("{e:#}")),
                }
            }
            if !errors.is_empty() {
                return Err(Exit::error(1, errors.join("\n")));
            }
        }
        ContextCmd::Inspect { names, format } => {
            let names = if names.is_empty() {
                vec![current_name(store)?]
            } else {
                names.clone()
            };
            let mut found = Vec::new();
            for n in &names {
                if n == DEFAULT_CONTEXT {
                    found.push(
                        ContextEntry {
                            name: DEFAULT_CONTEXT.into(),
                            description: "Current WHARF_HOST based configuration".into(),
                            host: DEFAULT_HOST.into(),
                            tls: Tls::default(),
                        }
                        .to_json(),
                    );
                } else {
                    found.push(store.get(n).map_err(fail)?.to_json());
                }
            }
            match format.as_deref() {
                Some(f) if !f.is_empty() => {
                    let t = Template::parse(f)
                        .map_err(|e| Exit::error(1, format!("template parsing error: {e:#}")))?;
                    for v in &found {
                        out(format!("{}\n", t.render(v)?).as_bytes());
                    }
                }
                _ => out(format!("{}\n", indent_json(&Value::Array(found))).as_bytes()),
            }
        }
        ContextCmd::Show => out(format!("{}\n", current_name(store)?).as_bytes()),
    }
    Ok(0)
}

fn current_name(store: &Store) -> Result<String> {
    if let Ok(c) = std::env::var("WHARF_CONTEXT") {
        if !c.is_empty() {
            return Ok(c);
        }
    }
    Ok(store
        .current()
        .map_err(|e| Exit::error(1, format!("{e:#}")))?
        .unwrap_or_else(|| DEFAULT_CONTEXT.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_spec() {
        let (h, t) = parse_docker_endpoint("host=unix:///tmp/x.sock").unwrap();
        assert_eq!(h, "unix:///tmp/x.sock");
        assert!(!t.enabled());
        let (h, t) =
            parse_docker_endpoint("host=tcp://1.2.3.4:2376,ca=/ca.pem,cert=/c.pem,key=/k.pem")
                .unwrap();
        assert_eq!(h, "tcp://1.2.3.4:2376");
        assert!(t.tls && t.verify);
        assert_eq!(t.ca.as_deref(), Some("/ca.pem"));
        assert!(parse_docker_endpoint("host=ftp://x").is_err());
        assert!(parse_docker_endpoint("bogus=1").is_err());
    }
}
