//! `wharf-shim`: the per-container monitor between wharfd and one container.
//!
//! Owns: daemonizing away from wharfd, creating and starting the container with youki's
//! libcontainer, the container's stdio (json-file log, stdin), reaping the init and recording
//! its exit, and serving `shim_proto` requests on `shim.sock`.
//! Must not touch: images, networks (beyond bringing `lo` up), the daemon's database.
//! Single-threaded and tokio-free by design: it must stay small and survive wharfd.

mod executor;
mod failpoint;
mod launch;
mod netns;

use nix::mount::MsFlags;
use std::io::Read;
use wharf_shim::args::{self, Command};
use wharf_shim::monitor::{ExecOps, Monitor, RuntimeOps};

fn main() {
    let argv = args::argv_or_exit("wharf-shim");
    let code = match args::parse(&argv) {
        Ok(Command::Start(a)) => launch::start(a),
        Ok(Command::Exec(a)) => launch::exec(a),
        Ok(Command::Monitor(m)) => {
            let ops: Box<dyn RuntimeOps> = match m.shim.clone() {
                Some(shim) => Box::new(ExecOps { shim }),
                None => Box::new(launch::InProcessOps),
            };
            match Monitor::from_args(m, ops).and_then(|m| m.run()) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("wharf-shim monitor: {e:#}");
                    1
                }
            }
        }
        Ok(Command::KillAll(r, signal)) => match launch::kill_all(&r.runtime_root, &r.id, signal) {
            Ok(()) => 0,
            Err(e) => {
                // The monitor relays this line to wharfd as the error text.
                eprintln!("{e}");
                1
            }
        },
        Ok(Command::Update(r, json)) => {
            let done = serde_json::from_str::<wharf_runtime::spec::Limits>(&json)
                .map_err(|e| format!("bad --limits: {e}"))
                .and_then(|l| launch::update(&r.runtime_root, &r.id, &l));
            match done {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("{e}");
                    1
                }
            }
        }
        Ok(Command::Delete(r)) => {
            launch::delete_container(&r.runtime_root, &r.id);
            0
        }
        Ok(Command::Propagate(rootfs, mounts)) => match propagate(&rootfs, &mounts) {
            Ok(()) => 0,
            Err(e) => {
                // libcontainer shows the hook's stderr in the start's error.
                eprintln!("wharf-shim propagate: {e}");
                1
            }
        },
        Err(e) => {
            eprintln!("wharf-shim: {e:#}");
            2
        }
    };
    std::process::exit(code)
}

/// The createContainer hook: each bind, found inside the container's root as the runtime
/// found it, gets the propagation asked (runc's `rprivate`, `rshared`, `rslave`...).
fn propagate(rootfs: &std::path::Path, mounts: &[(String, String)]) -> Result<(), String> {
    // The runtime writes the container's state to our stdin; read it so its write succeeds.
    let mut state = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut state);
    for (prop, dest) in mounts {
        let (rec, kind) = match prop.strip_prefix('r') {
            Some(k) => (MsFlags::MS_REC, k),
            None => (MsFlags::empty(), prop.as_str()),
        };
        let flag = match kind {
            "private" => MsFlags::MS_PRIVATE,
            "shared" => MsFlags::MS_SHARED,
            "slave" => MsFlags::MS_SLAVE,
            other => return Err(format!("unknown propagation {other:?} for {dest}")),
        };
        let path = wharf_fs::resolve_in(rootfs, dest)
            .map_err(|e| format!("resolving {dest} in the container: {e}"))?;
        nix::mount::mount(None::<&str>, &path, None::<&str>, rec | flag, None::<&str>)
            .map_err(|e| format!("setting {prop} on {dest}: {e}"))?;
    }
    Ok(())
}
