//! Hand-written command line parsing (the shim's CLI is tiny and fixed by `shim_proto`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// `wharf-shim start ...`, the public entry point used by wharfd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub log: PathBuf,
    pub runtime_root: PathBuf,
    pub stdin: bool,
}

/// `wharf-shim monitor ...`, internal: the shim re-executes itself into this once the container
/// runs, so the long-lived process does not carry libcontainer's touched pages (RSS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorArgs {
    pub id: String,
    pub state_dir: PathBuf,
    pub runtime_root: PathBuf,
    pub cgroups_path: String,
    pub pid: i32,
    pub listen_fd: i32,
    pub log_fd: i32,
    pub stdout_fd: i32,
    pub stderr_fd: i32,
    pub stdin_fd: Option<i32>,
}

impl MonitorArgs {
    pub fn to_args(&self) -> Vec<String> {
        let mut v = vec![
            "monitor".to_string(),
            "--id".into(),
            self.id.clone(),
            "--state-dir".into(),
            self.state_dir.to_string_lossy().into_owned(),
            "--runtime-root".into(),
            self.runtime_root.to_string_lossy().into_owned(),
            "--cgroups-path".into(),
            self.cgroups_path.clone(),
            "--pid".into(),
            self.pid.to_string(),
            "--listen-fd".into(),
            self.listen_fd.to_string(),
            "--log-fd".into(),
            self.log_fd.to_string(),
            "--stdout-fd".into(),
            self.stdout_fd.to_string(),
            "--stderr-fd".into(),
            self.stderr_fd.to_string(),
        ];
        if let Some(fd) = self.stdin_fd {
            v.push("--stdin-fd".into());
            v.push(fd.to_string());
        }
        v
    }
}

pub enum Command {
    Start(StartArgs),
    Monitor(MonitorArgs),
}

pub const USAGE: &str = "usage: wharf-shim start --id ID --bundle DIR --state-dir DIR --log FILE \
--runtime-root DIR [--stdin]";

/// Splits `--key value` / `--key=value` pairs; `flags` take no value.
fn pairs(args: &[String], flags: &[&str]) -> Result<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(key) = a.strip_prefix("--") else {
            bail!("unexpected argument {a:?}");
        };
        if let Some((k, v)) = key.split_once('=') {
            out.push((k.to_string(), Some(v.to_string())));
        } else if flags.contains(&key) {
            out.push((key.to_string(), None));
        } else {
            let v = it
                .next()
                .with_context(|| format!("--{key} needs a value"))?;
            out.push((key.to_string(), Some(v.clone())));
        }
    }
    Ok(out)
}

fn take(p: &[(String, Option<String>)], key: &str) -> Option<String> {
    p.iter()
        .rev()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.clone())
}

fn need(p: &[(String, Option<String>)], key: &str) -> Result<String> {
    match take(p, key) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => bail!("missing --{key}"),
    }
}

fn need_i32(p: &[(String, Option<String>)], key: &str) -> Result<i32> {
    need(p, key)?
        .parse()
        .with_context(|| format!("--{key} must be a number"))
}

fn check_known(p: &[(String, Option<String>)], known: &[&str]) -> Result<()> {
    if let Some((k, _)) = p.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        bail!("unknown option --{k}");
    }
    Ok(())
}

pub fn parse(args: &[String]) -> Result<Command> {
    let Some((cmd, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    match cmd.as_str() {
        "start" => {
            let p = pairs(rest, &["stdin"])?;
            check_known(
                &p,
                &["id", "bundle", "state-dir", "log", "runtime-root", "stdin"],
            )?;
            Ok(Command::Start(StartArgs {
                id: need(&p, "id")?,
                bundle: need(&p, "bundle")?.into(),
                state_dir: need(&p, "state-dir")?.into(),
                log: need(&p, "log")?.into(),
                runtime_root: need(&p, "runtime-root")?.into(),
                stdin: p.iter().any(|(k, v)| {
                    k == "stdin" && v.as_deref().is_none_or(|v| v == "true" || v == "1")
                }),
            }))
        }
        "monitor" => {
            let p = pairs(rest, &[])?;
            Ok(Command::Monitor(MonitorArgs {
                id: need(&p, "id")?,
                state_dir: need(&p, "state-dir")?.into(),
                runtime_root: need(&p, "runtime-root")?.into(),
                cgroups_path: take(&p, "cgroups-path").unwrap_or_default(),
                pid: need_i32(&p, "pid")?,
                listen_fd: need_i32(&p, "listen-fd")?,
                log_fd: need_i32(&p, "log-fd")?,
                stdout_fd: need_i32(&p, "stdout-fd")?,
                stderr_fd: need_i32(&p, "stderr-fd")?,
                stdin_fd: match take(&p, "stdin-fd") {
                    Some(v) => Some(v.parse().context("--stdin-fd must be a number")?),
                    None => None,
                },
            }))
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn start_args() {
        let Command::Start(a) = parse(&s(&[
            "start",
            "--id",
            "abc",
            "--bundle=/b",
            "--state-dir",
            "/s",
            "--log",
            "/l.log",
            "--runtime-root",
            "/r",
            "--stdin",
        ]))
        .unwrap() else {
            panic!("not start")
        };
        assert_eq!(a.id, "abc");
        assert_eq!(a.bundle, PathBuf::from("/b"));
        assert_eq!(a.state_dir, PathBuf::from("/s"));
        assert_eq!(a.log, PathBuf::from("/l.log"));
        assert_eq!(a.runtime_root, PathBuf::from("/r"));
        assert!(a.stdin);
    }

    #[test]
    fn start_errors() {
        assert!(parse(&s(&["start", "--id", "x"])).is_err());
        assert!(parse(&s(&["start", "--id"])).is_err());
        assert!(parse(&s(&["start", "--bogus", "1"])).is_err());
        assert!(parse(&s(&["frobnicate"])).is_err());
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn monitor_round_trip() {
        let m = MonitorArgs {
            id: "abc".into(),
            state_dir: "/s".into(),
            runtime_root: "/r".into(),
            cgroups_path: "/wharf/abc".into(),
            pid: 42,
            listen_fd: 3,
            log_fd: 4,
            stdout_fd: 5,
            stderr_fd: 6,
            stdin_fd: Some(7),
        };
        let Command::Monitor(back) = parse(&m.to_args()).unwrap() else {
            panic!("not monitor")
        };
        assert_eq!(back, m);
    }
}
