//! The parts of `wharf-shim` that the long-lived per-container monitor needs, kept free of
//! libcontainer, oci-spec and libseccomp so that the small `wharf-shim-monitor` binary built
//! from them maps little more than libc (one of these processes lives per running container).
//!
//! The `wharf-shim` binary (`main.rs`) adds launching through libcontainer on top.

pub mod args;
pub mod cleanup;
pub mod log;
pub mod monitor;

/// File name of the small monitor image, looked up next to `wharf-shim`.
pub const MONITOR_BIN: &str = "wharf-shim-monitor";
