//! `wharf-shim`: the per-container monitor between wharfd and one container.
//!
//! Owns: daemonizing away from wharfd, creating and starting the container with youki's
//! libcontainer, the container's stdio (json-file log, stdin), reaping the init and recording
//! its exit, and serving `shim_proto` requests on `shim.sock`.
//! Must not touch: images, networks (beyond bringing `lo` up), the daemon's database.
//! Single-threaded and tokio-free by design: it must stay small and survive wharfd.

mod args;
mod launch;
mod log;
mod monitor;
mod netns;

use args::Command;

fn main() {
    let argv: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect();
    let Ok(argv) = argv else {
        eprintln!("wharf-shim: arguments must be valid UTF-8");
        std::process::exit(2)
    };
    let code = match args::parse(&argv) {
        Ok(Command::Start(a)) => launch::start(a),
        Ok(Command::Monitor(m)) => match monitor::Monitor::from_args(m).and_then(|m| m.run()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("wharf-shim monitor: {e:#}");
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
