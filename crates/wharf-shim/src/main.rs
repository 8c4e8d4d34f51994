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
        Err(e) => {
            eprintln!("wharf-shim: {e:#}");
            2
        }
    };
    std::process::exit(code)
}
