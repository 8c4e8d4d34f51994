//! `wharf-shim-monitor`: the image the shim execs once its container runs. It holds the
//! container's stdio and socket for the container's whole life, so it links no libcontainer;
//! what needs libcontainer runs as a short-lived `wharf-shim kill-all|delete` child.

use wharf_shim::args::{self, Command};
use wharf_shim::monitor::{ExecOps, Monitor};

fn main() {
    let argv = args::argv_or_exit("wharf-shim-monitor");
    let m = match args::parse(&argv) {
        Ok(Command::Monitor(m)) => m,
        Ok(_) => {
            eprintln!("wharf-shim-monitor: only `monitor` is supported");
            std::process::exit(2)
        }
        Err(e) => {
            eprintln!("wharf-shim-monitor: {e:#}");
            std::process::exit(2)
        }
    };
    let Some(shim) = m.shim.clone() else {
        eprintln!("wharf-shim-monitor: --shim is required");
        std::process::exit(2)
    };
    let code = match Monitor::from_args(m, Box::new(ExecOps { shim })).and_then(|m| m.run()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("wharf-shim-monitor: {e:#}");
            1
        }
    };
    std::process::exit(code)
}
