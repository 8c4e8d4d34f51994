//! Taking back what a run left behind when no `Running` record owns it: a start cut by a
//! crash of wharfd after the shim had started the process, a removal cut before its teardown,
//! a shim killed without cleaning up.
//!
//! The record is written after the shim reports, so a crash in between leaves a live shim
//! under a record that says `created`/`exited`. What is on disk decides, never the record: a
//! launcher still setting up is waited for, a shim that answers on its socket is asked to kill
//! every process of its container and answers once it has reaped them (removing its cgroups
//! and runtime state, writing `exit.json`); libcontainer's forced delete (`wharf-shim delete`)
//! then takes whatever a dead shim left (processes in the cgroups, the cgroups, the runtime
//! state); only then are the mounts and the exec dir removed. A live shim's dir is never
//! deleted under it.

use super::{blocking, release_run_dir, shim, ContainerService};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use wharf_runtime::shim_proto::{ExitStatus, Request};

/// A shim reached through its socket answers at once once it serves; one still setting up
/// (libcontainer's create) answers when it is done, which takes well under this.
const SHIM_ANSWER: Duration = Duration::from_secs(30);
/// How long a launcher that has not yet bound its socket is waited for.
const LAUNCH_WAIT: Duration = Duration::from_secs(60);

/// What [`ContainerService::reclaim_run`] found and did.
#[derive(Debug)]
pub(super) enum Reclaimed {
    /// Nothing of a run was there.
    Nothing,
    /// A live shim was found and its container stopped through it; its exit, when it wrote one.
    Stopped(Option<ExitStatus>),
    /// What a finished run left (mounts, exec dir, runtime state, cgroups) was removed.
    Cleaned,
    /// A shim answers but its container did not exit after SIGKILL (a process stuck in the
    /// kernel): nothing was removed, the run is still there and reachable through its shim.
    Stuck,
}

impl ContainerService {
    /// Stops whatever runs for container `id` and removes the run's exec dir, mounts, runtime
    /// state and cgroups. The caller makes sure no start of `id` is under way in this daemon
    /// (the op lock, or restore before serving).
    pub(super) async fn reclaim_run(&self, id: &str) -> Reclaimed {
        let exec_dir = self.exec_dir(id);
        let runtime_root = self.ctx.exec_root.join("runtime");
        if !exec_dir.exists() && !runtime_root.join(id).exists() {
            return Reclaimed::Nothing;
        }
        let stopped = if answers(&exec_dir).await {
            // Every process, not only init: nothing of this container may outlive it.
            let _ = shim::request(
                &exec_dir,
                &Request::Kill {
                    signal: libc::SIGKILL,
                    all: true,
                },
            )
            .await;
            let exit = tokio::time::timeout(SHIM_ANSWER, shim::wait_exit(&exec_dir))
                .await
                .ok()
                .flatten();
            // Never delete a live shim's dir: it stays reachable for a later stop or rm.
            if exit.is_none() && answers(&exec_dir).await {
                tracing::warn!(container = %id, "its shim still runs after SIGKILL of every process; left in place");
                return Reclaimed::Stuck;
            }
            Some(exit)
        } else {
            None
        };
        let shim_path = self.ctx.shim_path.clone();
        let id = id.to_string();
        let _ = blocking(move || {
            if runtime_root.join(&id).exists() {
                // The shim removes these when its container exits; a shim that died first
                // leaves them, and maybe processes in the cgroups, to libcontainer's forced
                // delete.
                let done = std::process::Command::new(&shim_path)
                    .arg("delete")
                    .arg("--id")
                    .arg(&id)
                    .arg("--runtime-root")
                    .arg(&runtime_root)
                    .stdin(std::process::Stdio::null())
                    .status();
                if !done.is_ok_and(|s| s.success()) {
                    tracing::warn!(container = %id, "wharf-shim delete failed; runtime state or cgroups may be left");
                }
            }
            release_run_dir(&exec_dir);
        })
        .await;
        match stopped {
            Some(exit) => Reclaimed::Stopped(exit),
            None => Reclaimed::Cleaned,
        }
    }

    /// Waits until no launcher of `id` (`wharf-shim start --id <id>` that has not become the
    /// monitor yet) runs, or its shim answers: a restore must not judge a run that is still
    /// being set up by what it has written so far.
    pub(super) async fn wait_for_launch(&self, id: &str, launching: &HashMap<String, Vec<i32>>) {
        let Some(pids) = launching.get(id) else {
            return;
        };
        tracing::info!(container = %id, ?pids, "restore: waiting for a launch of this container still under way");
        let exec_dir = self.exec_dir(id);
        let deadline = tokio::time::Instant::now() + LAUNCH_WAIT;
        loop {
            let still: Vec<i32> = pids
                .iter()
                .copied()
                .filter(|p| launcher_id(*p).as_deref() == Some(id))
                .collect();
            if still.is_empty() {
                return;
            }
            if exec_dir
                .join(wharf_runtime::shim_proto::SOCKET_FILE)
                .exists()
                && answers(&exec_dir).await
            {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(container = %id, pids = ?still, "a launcher of this container is still running; judging its run as it is now");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Whether a shim serves on the socket in `exec_dir` (waiting for one that is still setting
/// up, which has bound its socket but accepts only once it serves).
async fn answers(exec_dir: &Path) -> bool {
    tokio::time::timeout(SHIM_ANSWER, shim::alive(exec_dir))
        .await
        .unwrap_or(false)
}

/// Launchers running now, by container id: processes whose command line is
/// `wharf-shim start ... --id <id> ...` (the launcher, its intermediate child and the shim
/// until it execs the monitor; they outlive a killed wharfd).
pub(super) fn launchers() -> HashMap<String, Vec<i32>> {
    let mut out: HashMap<String, Vec<i32>> = HashMap::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some(id) = launcher_id(pid) {
            out.entry(id).or_default().push(pid);
        }
    }
    out
}

/// The container id `pid` launches, if it is a shim launcher.
fn launcher_id(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    launcher_id_of(&raw)
}

fn launcher_id_of(cmdline: &[u8]) -> Option<String> {
    let argv: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let prog = Path::new(std::str::from_utf8(argv.first()?).ok()?).file_name()?;
    if !prog.to_str()?.starts_with("wharf-shim") || argv.get(1)? != b"start" {
        return None;
    }
    let mut it = argv.iter().skip(2);
    while let Some(a) = it.next() {
        let a = std::str::from_utf8(a).ok()?;
        if a == "--id" {
            return it
                .next()
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(String::from);
        }
        if let Some(v) = a.strip_prefix("--id=") {
            return Some(v.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::launcher_id_of;

    #[test]
    fn a_launcher_is_known_by_its_command_line() {
        let l = b"/usr/bin/wharf-shim\0start\0--id\0abc\0--bundle\0/b\0";
        assert_eq!(launcher_id_of(l).as_deref(), Some("abc"));
        assert_eq!(
            launcher_id_of(b"wharf-shim\0start\0--id=abc\0").as_deref(),
            Some("abc")
        );
        // The monitor and the other subcommands are not launches.
        assert_eq!(launcher_id_of(b"wharf-shim-monitor\0--id\0abc\0"), None);
        assert_eq!(launcher_id_of(b"/x/wharf-shim\0exec\0--id\0abc\0"), None);
        assert_eq!(launcher_id_of(b"sleep\0start\0--id\0abc\0"), None);
    }
}
