//! Credential helpers (`credsStore`, `credHelpers`): the `docker-credential-<name>` programs
//! docker runs with one action word (`get`, `store`, `erase`) and the request on stdin,
//! reading the answer on stdout; their stderr is the user's. Errors are worded as docker's
//! helper client words them, since docker prints them.

use super::gojson;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a helper's answer means when it says it has nothing.
const NOT_FOUND: &str = "credentials not found in native keychain";
const MISSING_SERVER_URL: &str = "no credentials server URL";
const MISSING_USERNAME: &str = "no credentials username";

/// Credentials as helpers exchange them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HelperCreds {
    pub server_url: String,
    pub username: String,
    pub secret: String,
}

/// One `docker-credential-<suffix>` program.
#[derive(Debug, Clone)]
pub struct Helper {
    program: String,
}

impl Helper {
    pub fn new(suffix: &str) -> Helper {
        Helper {
            program: format!("docker-credential-{suffix}"),
        }
    }

    /// A helper at a path, not looked up on `$PATH`.
    #[cfg(test)]
    pub fn at(path: &Path) -> Helper {
        Helper {
            program: path.display().to_string(),
        }
    }

    /// `Ok(None)` when the helper holds nothing for `server`.
    pub fn get(&self, server: &str) -> Result<Option<HelperCreds>, String> {
        match self.run("get", server.as_bytes()) {
            Ok(out) => {
                let v: Value = serde_json::from_slice(&out).map_err(|e| e.to_string())?;
                let field = |name: &str| {
                    v.as_object()
                        .and_then(|o| {
                            o.iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v)
                        })
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                Ok(Some(HelperCreds {
                    server_url: field("ServerURL").unwrap_or_else(|| server.to_string()),
                    username: field("Username").unwrap_or_default(),
                    secret: field("Secret").unwrap_or_default(),
                }))
            }
            Err(f) if f.out.trim() == NOT_FOUND => Ok(None),
            Err(f) => Err(f.message("getting")),
        }
    }

    pub fn store(&self, c: &HelperCreds) -> Result<(), String> {
        let mut o = gojson::Object::default();
        o.node(
            "ServerURL",
            gojson::Node::Raw(gojson::string(&c.server_url)),
        )
        .node("Username", gojson::Node::Raw(gojson::string(&c.username)))
        .node("Secret", gojson::Node::Raw(gojson::string(&c.secret)));
        // json.Encoder ends what it writes with a newline.
        let input = format!("{}\n", o.compact());
        self.run("store", input.as_bytes())
            .map(drop)
            .map_err(|f| f.message("storing"))
    }

    /// Every server the helper keeps credentials for (`list`).
    pub fn list(&self) -> Result<Vec<String>, String> {
        let out = self
            .run("list", b"unused")
            .map_err(|f| f.message("listing"))?;
        let v: Value = serde_json::from_slice(&out).map_err(|e| e.to_string())?;
        Ok(v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default())
    }

    pub fn erase(&self, server: &str) -> Result<(), String> {
        self.run("erase", server.as_bytes())
            .map(drop)
            .map_err(|f| f.message("erasing"))
    }

    fn run(&self, action: &str, input: &[u8]) -> Result<Vec<u8>, Failure> {
        let Some(path) = look_path(&self.program) else {
            return Err(Failure {
                err: format!(
                    "exec: \"{}\": executable file not found in $PATH",
                    self.program
                ),
                out: String::new(),
            });
        };
        let spawned = Command::new(path)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = spawned.map_err(|e| Failure {
            err: format!("fork/exec {}: {e}", self.program),
            out: String::new(),
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading its input is judged by its exit status.
            let _ = stdin.write_all(input);
        }
        let output = child.wait_with_output().map_err(|e| Failure {
            err: e.to_string(),
            out: String::new(),
        })?;
        if output.status.success() {
            return Ok(output.stdout);
        }
        let err = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => {
                use std::os::unix::process::ExitStatusExt;
                let sig = output.status.signal().unwrap_or(0);
                format!("signal: {}", signal_name(sig))
            }
        };
        Err(Failure {
            err,
            out: String::from_utf8_lossy(&output.stdout).into_owned(),
        })
    }
}

/// A helper run that failed: Go's error for the process, and what it printed.
struct Failure {
    err: String,
    out: String,
}

impl Failure {
    /// `error getting credentials - err: exit status 1, out: `...``, where a helper's own
    /// standard complaint replaces the process error.
    fn message(&self, verb: &str) -> String {
        let out = self.out.trim();
        let err = match out {
            MISSING_SERVER_URL | MISSING_USERNAME => out,
            _ => self.err.as_str(),
        };
        format!("error {verb} credentials - err: {err}, out: `{out}`")
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        9 => "killed".into(),
        15 => "terminated".into(),
        2 => "interrupt".into(),
        6 => "aborted".into(),
        11 => "segmentation fault".into(),
        n => format!("signal {n}"),
    }
}

/// `exec.LookPath`: the first executable file of that name on `$PATH`.
pub fn look_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return is_executable(Path::new(name)).then(|| PathBuf::from(name));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `DetectDefaultStore` on Linux: `pass` when the `pass` tool is installed, else
/// `secretservice`, and only when its helper program is on `$PATH`.
pub fn default_store() -> Option<String> {
    let store = if look_path("pass").is_some() {
        "pass"
    } else {
        "secretservice"
    };
    look_path(&format!("docker-credential-{store}")).map(|_| store.to_string())
}
