//! The contract between wharfd and `wharf-shim`: command line, files in the state dir, and the
//! request/response messages on the shim's unix socket. Both sides use only these types.
//!
//! # Launch
//! wharfd runs `wharf-shim start --id ID --bundle DIR --state-dir DIR --log FILE
//! [--log-max-size BYTES] [--log-max-file N] [--log-attrs-file FILE] --runtime-root DIR [--stdin]
//! [--tty [--console-size HxW]]`. With `--tty` the container gets a pty whose master the
//! shim holds: its output goes to the log as `stdout`, stdin bytes go to it, and
//! [`Request::Resize`] sets its size. The process wharfd spawned prints exactly one JSON [`LaunchResult`] line on stdout
//! and exits (0 on success, 1 on failure) once the container's init process has been started
//! (its user command exec'd) or has failed to start. By then the daemonized shim (a grandchild,
//! in its own session, subreaper) owns the container and keeps running until it exits. The
//! small monitor image it execs into gets the same `--log*` options (and the open log as
//! `--log-fd`).
//!
//! # State dir (under the exec root, tmpfs)
//! - `shim.sock` ([`SOCKET_FILE`]): the shim's socket, created before the launch result is printed.
//! - `shim.pid` ([`SHIM_PID_FILE`]): the shim's own pid (decimal).
//! - `init.pid` ([`INIT_PID_FILE`]): the container init's pid in the host pid namespace.
//! - `exit.json` ([`EXIT_FILE`]): an [`ExitStatus`], written atomically once the init has been reaped
//!   and stdout/stderr drained into the log. Its presence means the container has exited.
//!
//! # Log file
//! Docker's json-file format: one JSON object per line, [`LogEntry`]. Bytes are written as the
//! container produced them: each read chunk is split after every `\n` and a trailing piece without
//! a newline is written as its own entry, so concatenating `log` fields of one stream gives back
//! the exact output (lossy only for invalid UTF-8). The JSON object of strings in
//! `--log-attrs-file` is written as every line's `attrs` (a file, not an argument: it can hold
//! env values, and command lines are readable by every local user).
//!
//! The shim always drains the container's output, whatever happens to the file. With
//! `--log-max-size` (bytes; absent or 0: never) it rotates like json-file: before a line that
//! would make `FILE` larger than that, `FILE.<N-2>` is renamed onto `FILE.<N-1>`, and so on down
//! to `FILE` onto `FILE.1`, where N is `--log-max-file` (default 1: `FILE` is removed instead),
//! and a new `FILE` is opened. So the files, oldest first, are `FILE.<N-1>` … `FILE.1`, `FILE`;
//! a file is never written again once renamed; a crash between two renames leaves one index
//! missing, never a line in two files. wharfd's `none` driver is a small rotating file in the
//! state dir, so that attach still streams. A rotation never deletes a file a reader has pinned
//! ([`crate::logpin`]): while the container runs, the shim holds the lines back and stops
//! reading its output until the reader has opened that file.
//!
//! # Socket protocol
//! One connection per request. The client writes one [`Request`] as a JSON line; the shim answers
//! with one [`Response`] JSON line. For [`Request::Stdin`] the client then streams raw bytes that go
//! to the container's stdin; the client's EOF (shutdown of its write side) closes the container's
//! stdin. For [`Request::Wait`] the answer comes when the container has exited (after `exit.json`
//! is written); a dropped connection without an answer means "read `exit.json`".
//!
//! # Every action on a running container
//! wharfd never signals a container's processes or writes its cgroup files itself; it asks the
//! shim, which owns them:
//! - [`Request::Kill`]: a signal to the init, or to every process of the container.
//! - [`Request::Freeze`]: `docker pause`/`unpause` through the cgroup freezer (v1
//!   `freezer.state`, rewritten until it reads `FROZEN`; v2 `cgroup.freeze`, confirmed in
//!   `cgroup.events`). Answered once the kernel reports the new state (within 5 s, else an
//!   error); the shim keeps serving everything else meanwhile. The paused state itself is
//!   wharfd's to remember: the freezer outlives both processes.
//! - [`Request::SignalExec`]: a signal to a process the shim started for an [`Request::Exec`]
//!   and has not reaped yet (so its pid cannot have been reused). Any other pid is refused:
//!   this request cannot reach a process outside the container's execs.
//! - [`Request::Resize`] and [`Request::Exec`], below.

use serde::{Deserialize, Serialize};

pub const SOCKET_FILE: &str = "shim.sock";
pub const SHIM_PID_FILE: &str = "shim.pid";
pub const INIT_PID_FILE: &str = "init.pid";
pub const EXIT_FILE: &str = "exit.json";

/// Printed by the launching process on stdout, one line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LaunchResult {
    pub ok: bool,
    /// Container init pid (host namespace) when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Docker-worded start failure when not `ok`, e.g.
    /// `exec: "nosuch": executable file not found in $PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What kind of failure, so the daemon can pick the HTTP status and the CLI its exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<StartErrorKind>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StartErrorKind {
    /// Command not found (docker run exits 127).
    NotFound,
    /// Found but not executable, or a directory (docker run exits 126).
    NotExecutable,
    /// The kernel refused to run it for another reason: E2BIG (argv and env too large),
    /// ENOMEM... (dockerd: exit code 128, a 500).
    Refused,
    /// Anything else (namespaces, mounts, cgroups...).
    Other,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Send `signal` (a number) to the init process, or to every process of the container if `all`.
    Kill {
        signal: i32,
        #[serde(default)]
        all: bool,
    },
    /// Stream raw stdin bytes after the response; EOF closes the container's stdin.
    Stdin,
    /// Answered when the container has exited.
    Wait,
    /// Answered at once.
    State,
    /// Sets the window size of the container's pty (TTY containers only).
    Resize { height: u16, width: u16 },
    /// Freezes (`true`) or thaws (`false`) every process of the container's cgroup; answered
    /// when the kernel says it is done. Asking for the state it already has is not an error.
    Freeze { frozen: bool },
    /// Sends `signal` to the exec process `pid` (the `pid` of an [`Request::Exec`] answer) while
    /// it runs. Refused for any pid that is not a live exec of this shim.
    SignalExec { pid: i32, signal: i32 },
    /// Starts a process inside the running container (`docker exec`). The request line is sent
    /// with `SCM_RIGHTS` descriptors: stdin, stdout, stderr for a non-TTY exec; one unix stream
    /// socket for a TTY exec, on which the pty master is sent back with `SCM_RIGHTS`. The first
    /// answer says whether it started (`pid`, or `error`/`error_kind`); a second line carries
    /// `exit` when the process has been reaped. Closing the connection does not stop the process.
    Exec {
        /// Path of an OCI `process` JSON (args, env, cwd, user, capabilities, terminal).
        process: String,
        #[serde(default)]
        tty: bool,
    },
    /// Writes new cgroup limits for the running container (`docker update`); the limits that
    /// are `None` are left as they are. Answered once they are in the kernel.
    Update { limits: crate::spec::Limits },
}

/// How many descriptors an [`Request::Exec`] carries.
pub const fn exec_fd_count(tty: bool) -> usize {
    if tty {
        1
    } else {
        3
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitStatus>,
    /// With `error`: what kind of start failure (exec requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<StartErrorKind>,
    /// `State` of a running container: whether its cgroup is frozen now, as the kernel says.
    /// A restarted wharfd takes this over its saved `Paused`, which a pause or unpause cut by
    /// a crash leaves wrong. `None` from a shim that cannot tell (or predates the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen: Option<bool>,
}

/// Contents of `exit.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code, or 128 + signal number when killed by a signal (Docker's convention).
    pub exit_code: i32,
    /// RFC 3339 with nanoseconds, UTC.
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
}

/// One line of the json-file log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogEntry {
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// json-file's extra attributes (its `labels`, `env`, `tag` options), shown by
    /// `logs --details`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attrs: std::collections::BTreeMap<String, String>,
    /// RFC 3339 with nanoseconds, UTC, e.g. `2026-11-23T17:50:30.123456789Z`.
    pub time: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_on_the_wire() {
        for (req, line) in [
            (
                Request::Freeze { frozen: true },
                r#"{"op":"freeze","frozen":true}"#,
            ),
            (
                Request::SignalExec { pid: 42, signal: 9 },
                r#"{"op":"signal_exec","pid":42,"signal":9}"#,
            ),
            (
                Request::Kill {
                    signal: 15,
                    all: false,
                },
                r#"{"op":"kill","signal":15,"all":false}"#,
            ),
        ] {
            assert_eq!(serde_json::to_string(&req).unwrap(), line);
            assert_eq!(serde_json::from_str::<Request>(line).unwrap(), req);
        }
    }
}
