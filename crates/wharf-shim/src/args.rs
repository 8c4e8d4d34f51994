//! Hand-written command line parsing (the shim's CLI is tiny and fixed by `shim_proto`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// `wharf-shim start ...`, the public entry point used by wharfd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub log: LogArgs,
    pub runtime_root: PathBuf,
    pub stdin: bool,
    /// Give the container a pty (its master stays with the shim).
    pub tty: bool,
    /// Initial pty size, `(height, width)`.
    pub console_size: Option<(u16, u16)>,
}

/// Where the container's output goes and how that file rotates (`--log FILE [--log-max-size
/// BYTES] [--log-max-file N] [--log-attrs-file FILE]`), as `shim_proto`'s launch section says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogArgs {
    pub path: PathBuf,
    /// Rotate before a line that would make the file larger than this; 0 = never rotate.
    pub max_size: u64,
    /// Files kept in all, the one being written included (at least 1).
    pub max_file: u32,
    /// A JSON object of strings written as `attrs` on every line (json-file's labels/env/tag).
    /// A file rather than an argument: env values can be secrets, and a command line is
    /// readable by every local user.
    pub attrs_file: Option<PathBuf>,
}

impl LogArgs {
    fn push_args(&self, v: &mut Vec<String>) {
        v.push("--log".into());
        v.push(self.path.to_string_lossy().into_owned());
        if self.max_size > 0 {
            v.push("--log-max-size".into());
            v.push(self.max_size.to_string());
        }
        if self.max_file != 1 {
            v.push("--log-max-file".into());
            v.push(self.max_file.to_string());
        }
        if let Some(f) = &self.attrs_file {
            v.push("--log-attrs-file".into());
            v.push(f.to_string_lossy().into_owned());
        }
    }

    fn parse(p: &[(String, Option<String>)]) -> Result<Self> {
        let max_size = match take(p, "log-max-size") {
            Some(v) => v
                .parse()
                .context("--log-max-size must be a number of bytes")?,
            None => 0,
        };
        let max_file = match take(p, "log-max-file") {
            Some(v) => v.parse().context("--log-max-file must be a number")?,
            None => 1,
        };
        if max_file < 1 {
            bail!("--log-max-file must be at least 1");
        }
        Ok(Self {
            path: need(p, "log")?.into(),
            max_size,
            max_file,
            attrs_file: take(p, "log-attrs-file")
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
        })
    }
}

/// `wharf-shim monitor ...` or `wharf-shim-monitor monitor ...`, internal: once the container
/// runs, the shim execs the small `wharf-shim-monitor` image (or, if that is missing, itself)
/// into this, so the long-lived process does not carry libcontainer's pages (RSS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorArgs {
    pub id: String,
    /// The full `wharf-shim`, run as a short-lived child for what needs libcontainer
    /// (`kill-all`, `delete`). Absent: the monitor is the full shim and does it in-process.
    pub shim: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub runtime_root: PathBuf,
    pub cgroups_path: String,
    pub pid: i32,
    pub listen_fd: i32,
    /// The log file, open for appending; [`LogArgs::path`] names it for rotation.
    pub log_fd: i32,
    pub log: LogArgs,
    /// With `tty`, the pty master (read for output, written for stdin, resized).
    pub stdout_fd: i32,
    /// Absent with `tty`: a pty merges both streams.
    pub stderr_fd: Option<i32>,
    pub stdin_fd: Option<i32>,
    pub tty: bool,
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
        ];
        self.log.push_args(&mut v);
        if let Some(fd) = self.stderr_fd {
            v.push("--stderr-fd".into());
            v.push(fd.to_string());
        }
        if self.tty {
            v.push("--tty".into());
        }
        if let Some(fd) = self.stdin_fd {
            v.push("--stdin-fd".into());
            v.push(fd.to_string());
        }
        if let Some(shim) = &self.shim {
            v.push("--shim".into());
            v.push(shim.to_string_lossy().into_owned());
        }
        v
    }
}

/// `wharf-shim kill-all|delete --id ID --runtime-root DIR [--signal N]`, internal: what the
/// small monitor cannot do without libcontainer, run as a short-lived child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeArgs {
    pub id: String,
    pub runtime_root: PathBuf,
}

/// `wharf-shim exec --id ID --runtime-root DIR --state-dir DIR --process FILE [--tty]`,
/// internal: run by the monitor (which reaps what it starts) for [`Request::Exec`]. Its stdio
/// are the exec's (non-TTY) or, with `--tty`, fd 0 is the socket the pty master is sent on. It
/// prints one JSON `LaunchResult` on fd 3 and exits once the process runs.
///
/// [`Request::Exec`]: wharf_runtime::shim_proto::Request::Exec
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecArgs {
    pub id: String,
    pub runtime_root: PathBuf,
    pub state_dir: PathBuf,
    pub process: PathBuf,
    pub tty: bool,
}

impl ExecArgs {
    pub fn to_args(&self) -> Vec<String> {
        let mut v = vec![
            "exec".to_string(),
            "--id".into(),
            self.id.clone(),
            "--runtime-root".into(),
            self.runtime_root.to_string_lossy().into_owned(),
            "--state-dir".into(),
            self.state_dir.to_string_lossy().into_owned(),
            "--process".into(),
            self.process.to_string_lossy().into_owned(),
        ];
        if self.tty {
            v.push("--tty".into());
        }
        v
    }
}

pub enum Command {
    Start(StartArgs),
    Exec(ExecArgs),
    Monitor(MonitorArgs),
    KillAll(RuntimeArgs, i32),
    Delete(RuntimeArgs),
    /// `wharf-shim update --id ID --runtime-root DIR --limits JSON`: writes a
    /// `wharf_runtime::spec::Limits` into the container's cgroups.
    Update(RuntimeArgs, String),
    /// `wharf-shim propagate ROOTFS PROPAGATION=DEST...`: the container's createContainer
    /// hook (`wharf_runtime::spec::PropagationHook`), run in its mount namespace before
    /// pivot_root: sets each bind mount's propagation, which libcontainer does not.
    Propagate(std::path::PathBuf, Vec<(String, String)>),
}

pub const USAGE: &str = "usage: wharf-shim start --id ID --bundle DIR --state-dir DIR --log FILE \
[--log-max-size BYTES] [--log-max-file N] [--log-attrs-file FILE] --runtime-root DIR [--stdin] \
[--tty [--console-size HxW]]";

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

fn flag(p: &[(String, Option<String>)], key: &str) -> bool {
    p.iter()
        .any(|(k, v)| k == key && v.as_deref().is_none_or(|v| v == "true" || v == "1"))
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

/// This process's arguments after the program name; exits with 2 (usage) on non-UTF-8, naming
/// `prog`, since every argument here is a path or id we pass on as text.
pub fn argv_or_exit(prog: &str) -> Vec<String> {
    let argv: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect();
    match argv {
        Ok(a) => a,
        Err(_) => {
            eprintln!("{prog}: arguments must be valid UTF-8");
            std::process::exit(2)
        }
    }
}

pub fn parse(args: &[String]) -> Result<Command> {
    let Some((cmd, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    match cmd.as_str() {
        "start" => {
            let p = pairs(rest, &["stdin", "tty"])?;
            check_known(
                &p,
                &[
                    "id",
                    "bundle",
                    "state-dir",
                    "log",
                    "log-max-size",
                    "log-max-file",
                    "log-attrs-file",
                    "runtime-root",
                    "stdin",
                    "tty",
                    "console-size",
                ],
            )?;
            let console_size = match take(&p, "console-size") {
                Some(v) => Some(
                    v.split_once('x')
                        .and_then(|(h, w)| Some((h.parse().ok()?, w.parse().ok()?)))
                        .context("--console-size must be HEIGHTxWIDTH")?,
                ),
                None => None,
            };
            Ok(Command::Start(StartArgs {
                id: need(&p, "id")?,
                bundle: need(&p, "bundle")?.into(),
                state_dir: need(&p, "state-dir")?.into(),
                log: LogArgs::parse(&p)?,
                runtime_root: need(&p, "runtime-root")?.into(),
                stdin: flag(&p, "stdin"),
                tty: flag(&p, "tty"),
                console_size,
            }))
        }
        "exec" => {
            let p = pairs(rest, &["tty"])?;
            check_known(&p, &["id", "runtime-root", "state-dir", "process", "tty"])?;
            Ok(Command::Exec(ExecArgs {
                id: need(&p, "id")?,
                runtime_root: need(&p, "runtime-root")?.into(),
                state_dir: need(&p, "state-dir")?.into(),
                process: need(&p, "process")?.into(),
                tty: flag(&p, "tty"),
            }))
        }
        "monitor" => {
            let p = pairs(rest, &["tty"])?;
            Ok(Command::Monitor(MonitorArgs {
                id: need(&p, "id")?,
                shim: take(&p, "shim")
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from),
                state_dir: need(&p, "state-dir")?.into(),
                runtime_root: need(&p, "runtime-root")?.into(),
                cgroups_path: take(&p, "cgroups-path").unwrap_or_default(),
                pid: need_i32(&p, "pid")?,
                listen_fd: need_i32(&p, "listen-fd")?,
                log_fd: need_i32(&p, "log-fd")?,
                log: LogArgs::parse(&p)?,
                stdout_fd: need_i32(&p, "stdout-fd")?,
                stderr_fd: match take(&p, "stderr-fd") {
                    Some(v) => Some(v.parse().context("--stderr-fd must be a number")?),
                    None => None,
                },
                stdin_fd: match take(&p, "stdin-fd") {
                    Some(v) => Some(v.parse().context("--stdin-fd must be a number")?),
                    None => None,
                },
                tty: flag(&p, "tty"),
            }))
        }
        "update" => {
            let p = pairs(rest, &[])?;
            check_known(&p, &["id", "runtime-root", "limits"])?;
            let r = RuntimeArgs {
                id: need(&p, "id")?,
                runtime_root: need(&p, "runtime-root")?.into(),
            };
            Ok(Command::Update(r, need(&p, "limits")?))
        }
        "kill-all" | "delete" => {
            let p = pairs(rest, &[])?;
            let known: &[&str] = if cmd == "kill-all" {
                &["id", "runtime-root", "signal"]
            } else {
                &["id", "runtime-root"]
            };
            check_known(&p, known)?;
            let r = RuntimeArgs {
                id: need(&p, "id")?,
                runtime_root: need(&p, "runtime-root")?.into(),
            };
            Ok(if cmd == "kill-all" {
                Command::KillAll(r, need_i32(&p, "signal")?)
            } else {
                Command::Delete(r)
            })
        }
        "propagate" => {
            let Some((rootfs, mounts)) = rest.split_first() else {
                bail!("usage: wharf-shim propagate ROOTFS PROPAGATION=DEST...");
            };
            let mounts = mounts
                .iter()
                .map(|m| {
                    m.split_once('=')
                        .map(|(p, d)| (p.to_string(), d.to_string()))
                        .with_context(|| format!("bad mount {m:?}: want PROPAGATION=DEST"))
                })
                .collect::<Result<_>>()?;
            Ok(Command::Propagate(rootfs.into(), mounts))
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
        assert_eq!(a.log.path, PathBuf::from("/l.log"));
        assert_eq!(
            (a.log.max_size, a.log.max_file, &a.log.attrs_file),
            (0, 1, &None)
        );
        assert_eq!(a.runtime_root, PathBuf::from("/r"));
        assert!(a.stdin);
        assert!(!a.tty);
        let Command::Start(a) = parse(&s(&[
            "start",
            "--id=a",
            "--bundle=/b",
            "--state-dir=/s",
            "--log=/l",
            "--runtime-root=/r",
            "--tty",
            "--console-size",
            "40x120",
        ]))
        .unwrap() else {
            panic!("not start")
        };
        assert!(a.tty);
        assert_eq!(a.console_size, Some((40, 120)));
    }

    #[test]
    fn log_args() {
        let base = [
            "start",
            "--id=a",
            "--bundle=/b",
            "--state-dir=/s",
            "--log=/l",
            "--runtime-root=/r",
        ];
        let with = |extra: &[&str]| {
            let mut v = s(&base);
            v.extend(s(extra));
            parse(&v)
        };
        let Command::Start(a) = with(&[
            "--log-max-size",
            "1000000",
            "--log-max-file=3",
            "--log-attrs-file",
            "/s/log-attrs.json",
        ])
        .unwrap() else {
            panic!("not start")
        };
        assert_eq!(a.log.max_size, 1_000_000);
        assert_eq!(a.log.max_file, 3);
        assert_eq!(a.log.attrs_file, Some(PathBuf::from("/s/log-attrs.json")));
        assert!(with(&["--log-max-file", "0"]).is_err());
        assert!(with(&["--log-max-size", "1m"]).is_err());
        assert!(with(&["--log-attrs", "{}"]).is_err());
    }

    #[test]
    fn exec_round_trip() {
        let e = ExecArgs {
            id: "a".into(),
            runtime_root: "/r".into(),
            state_dir: "/s".into(),
            process: "/s/exec-1.json".into(),
            tty: true,
        };
        let Command::Exec(back) = parse(&e.to_args()).unwrap() else {
            panic!("not exec")
        };
        assert_eq!(back, e);
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
        let mut m = MonitorArgs {
            id: "abc".into(),
            shim: Some("/usr/bin/wharf-shim".into()),
            state_dir: "/s".into(),
            runtime_root: "/r".into(),
            cgroups_path: "/wharf/abc".into(),
            pid: 42,
            listen_fd: 3,
            log_fd: 4,
            log: LogArgs {
                path: "/d/abc-json.log".into(),
                max_size: 1_000_000,
                max_file: 3,
                attrs_file: Some("/s/log-attrs.json".into()),
            },
            stdout_fd: 5,
            stderr_fd: Some(6),
            stdin_fd: Some(7),
            tty: false,
        };
        let Command::Monitor(back) = parse(&m.to_args()).unwrap() else {
            panic!("not monitor")
        };
        assert_eq!(back, m);
        m.shim = None;
        m.log.max_size = 0;
        m.log.max_file = 1;
        m.log.attrs_file = None;
        m.stdin_fd = None;
        m.stderr_fd = None;
        m.tty = true;
        let Command::Monitor(back) = parse(&m.to_args()).unwrap() else {
            panic!("not monitor")
        };
        assert_eq!(back, m);
    }

    #[test]
    fn runtime_helpers() {
        let Command::KillAll(r, sig) = parse(&s(&[
            "kill-all",
            "--id",
            "a",
            "--runtime-root",
            "/r",
            "--signal",
            "9",
        ]))
        .unwrap() else {
            panic!("not kill-all")
        };
        assert_eq!(
            (r.id.as_str(), r.runtime_root.as_path(), sig),
            ("a", Path::new("/r"), 9)
        );
        assert!(matches!(
            parse(&s(&["delete", "--id", "a", "--runtime-root", "/r"])).unwrap(),
            Command::Delete(_)
        ));
        assert!(parse(&s(&["kill-all", "--id", "a", "--runtime-root", "/r"])).is_err());
        assert!(parse(&s(&[
            "delete",
            "--id",
            "a",
            "--runtime-root",
            "/r",
            "--x",
            "1"
        ]))
        .is_err());
    }
}
