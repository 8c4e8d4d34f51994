//! The executor libcontainer runs in the container's init (and in an exec's process) once the
//! container is set up: it makes the environment and calls execve.
//!
//! libcontainer's default executor sets the environment one variable at a time, and glibc's
//! `setenv` scans the whole environment on every call: quadratic in the size of `Env` (a
//! 100k-entry `Env` took minutes to start). Here the environment is built once and handed to
//! execve whole, in the order the spec lists it (as runc does), not a hash map's.
//!
//! An execve the kernel refuses (E2BIG for an argv + env too large, ENOMEM, ...) happens after
//! libcontainer's start has already returned, so nothing would tell the shim: the init just
//! exits. The init writes the kernel's reason to `report`, a pipe whose write end execve closes
//! (libcontainer marks every descriptor close-on-exec before it waits for the start), so the
//! shim reads either end-of-file (the program runs) or the reason (see [`wait_exec`]).

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libcontainer::workload::{Executor, ExecutorError, ExecutorSetEnvsError};
use libcontainer::workload::{ExecutorValidationError, EMPTY};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use oci_spec::runtime::Spec;
use wharf_runtime::shim_proto::{LaunchResult, StartErrorKind};

/// What libcontainer decided the environment is (the spec's, plus `HOME` and the
/// socket-activation variables). Set once per process: the init and an exec's process are
/// each a fresh fork that calls `setup_envs` once before `exec`.
static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();

#[derive(Clone)]
pub struct ShimExecutor {
    /// Write end of the exec-failure pipe (see the module's doc), for the init only.
    pub report: Option<RawFd>,
}

impl Executor for ShimExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        reset_signals();
        let (kind, message) = exec_spec(spec);
        if let Some(fd) = self.report {
            // SAFETY: `report` is the pipe's write end, open in this process until execve.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            if let Ok(line) = serde_json::to_vec(&failure(kind, &message)) {
                let _ = nix::unistd::write(fd, &line);
            }
        }
        Err(ExecutorError::Other(message))
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        libcontainer::workload::default::get_executor().validate(spec)
    }

    fn setup_envs(&self, envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        ENV.set(envs)
            .map_err(|_| ExecutorSetEnvsError::Other("environment set twice".into()))
    }
}

/// Undoes what the shim did to its own signal state: the init is cloned from the shim and
/// would otherwise inherit an ignored SIGPIPE (Rust's runtime sets it) into the user's program.
fn reset_signals() {
    // SAFETY: setting a default disposition installs no Rust code as a handler.
    unsafe {
        let _ = nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl);
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Runs the spec's process; returns only on failure, with its kind and runc's words for it.
fn exec_spec(spec: &Spec) -> (StartErrorKind, String) {
    let process = spec.process().as_ref();
    let args = process.and_then(|p| p.args().as_ref()).unwrap_or(&EMPTY);
    let Some(arg0) = args.first() else {
        return (StartErrorKind::Other, "no command specified".into());
    };
    let spec_env = process.and_then(|p| p.env().as_ref()).unwrap_or(&EMPTY);
    let env = match ENV.get() {
        Some(decided) => ordered_env(spec_env, decided),
        None => spec_env.clone(),
    };
    let to_c = |s: &String| CString::new(s.as_bytes());
    let (Ok(file), Ok(argv), Ok(envp)) = (
        to_c(arg0),
        args.iter().map(to_c).collect::<Result<Vec<_>, _>>(),
        env.iter().map(to_c).collect::<Result<Vec<_>, _>>(),
    ) else {
        return (
            StartErrorKind::Other,
            "a NUL byte in the command or the environment".into(),
        );
    };
    // execvpe looks the command up in this process's PATH: make it the container's, and the
    // rest of the host's environment (the shim's) gone, in two calls instead of one per
    // variable.
    // SAFETY: the init is single-threaded; nothing else reads the environment meanwhile.
    unsafe {
        libc::clearenv();
    }
    if let Some(path) = env.iter().rev().find_map(|e| e.strip_prefix("PATH=")) {
        std::env::set_var("PATH", path);
    }
    let err = match nix::unistd::execvpe(&file, &argv, &envp) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    (kind_of(err), exec_error(arg0, err))
}

/// The environment in the spec's order with libcontainer's values (the last of duplicate
/// names), then what libcontainer added (`HOME`, ...) by name. Linear.
pub fn ordered_env(spec_env: &[String], decided: &HashMap<String, String>) -> Vec<String> {
    let mut out = Vec::with_capacity(decided.len());
    let mut done: HashSet<&str> = HashSet::with_capacity(decided.len());
    for e in spec_env {
        let Some((k, _)) = e.split_once('=') else {
            continue;
        };
        if let Some(v) = decided.get(k) {
            if done.insert(k) {
                out.push(format!("{k}={v}"));
            }
        }
    }
    let mut added: Vec<(&String, &String)> = decided
        .iter()
        .filter(|(k, _)| !done.contains(k.as_str()))
        .collect();
    added.sort();
    out.extend(added.into_iter().map(|(k, v)| format!("{k}={v}")));
    out
}

/// runc's words for a failed exec: `exec: "sh": argument list too long`.
pub fn exec_error(arg0: &str, err: Errno) -> String {
    let desc = err.desc();
    let mut chars = desc.chars();
    // Go spells errno strings in lower case ("argument list too long").
    let desc = match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect::<String>(),
        None => format!("{err}"),
    };
    format!("exec: {arg0:?}: {desc}")
}

fn kind_of(err: Errno) -> StartErrorKind {
    match err {
        Errno::ENOENT | Errno::ENOTDIR => StartErrorKind::NotFound,
        Errno::EACCES | Errno::EISDIR | Errno::ENOEXEC => StartErrorKind::NotExecutable,
        _ => StartErrorKind::Refused,
    }
}

fn failure(kind: StartErrorKind, message: &str) -> LaunchResult {
    LaunchResult {
        ok: false,
        pid: None,
        error: Some(message.to_string()),
        error_kind: Some(kind),
    }
}

/// How long the shim waits for the init's execve after the start. Only start hooks (which
/// Wharf never sets) run between the two, so this bounds a wedged init, not a slow one.
const EXEC_WAIT: Duration = Duration::from_secs(30);

/// After libcontainer's start: `None` once the init's execve succeeded (the pipe closed), or
/// the failure the init reported (a [`LaunchResult`]). Waiting longer than [`EXEC_WAIT`] counts as running.
pub fn wait_exec(report: OwnedFd) -> Option<LaunchResult> {
    let deadline = Instant::now() + EXEC_WAIT;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(report.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            // Nothing yet: read only once poll says there is something, never block.
            Ok(0) if left.is_zero() => return None,
            Ok(0) => continue,
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(_) => return None,
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(report.as_raw_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(_) => break,
        }
    }
    if got.is_empty() {
        return None;
    }
    Some(serde_json::from_slice(&got).unwrap_or_else(|e| {
        failure(
            StartErrorKind::Other,
            &format!("bad exec report from the container's init: {e}"),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keeps_the_spec_order_and_adds_the_rest_by_name() {
        let spec: Vec<String> = ["PATH=/bin", "B=1", "A=1", "B=2", "NOEQ"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let decided: HashMap<String, String> = [("PATH", "/bin"), ("B", "2"), ("A", "1")]
            .iter()
            .chain([("HOME", "/root"), ("C", "3")].iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            ordered_env(&spec, &decided),
            ["PATH=/bin", "B=2", "A=1", "C=3", "HOME=/root"]
        );
    }

    #[test]
    fn env_of_100k_entries_is_fast() {
        let spec: Vec<String> = (0..100_000).map(|i| format!("V{i}={i}")).collect();
        let decided: HashMap<String, String> = (0..100_000)
            .map(|i| (format!("V{i}"), i.to_string()))
            .collect();
        assert_eq!(ordered_env(&spec, &decided).len(), 100_000);
    }

    #[test]
    fn exec_errors_in_runcs_words() {
        assert_eq!(
            exec_error("sh", Errno::E2BIG),
            r#"exec: "sh": argument list too long"#
        );
        assert_eq!(kind_of(Errno::E2BIG), StartErrorKind::Refused);
        assert_eq!(kind_of(Errno::ENOMEM), StartErrorKind::Refused);
        assert_eq!(kind_of(Errno::ENOENT), StartErrorKind::NotFound);
    }

    #[test]
    fn a_closed_pipe_means_running_and_a_report_the_failure() {
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(w);
        assert_eq!(wait_exec(r), None);
        let (r, w) = nix::unistd::pipe().unwrap();
        let sent = failure(
            StartErrorKind::Refused,
            r#"exec: "sh": argument list too long"#,
        );
        nix::unistd::write(&w, &serde_json::to_vec(&sent).unwrap()).unwrap();
        drop(w);
        assert_eq!(wait_exec(r), Some(sent));
    }
}
