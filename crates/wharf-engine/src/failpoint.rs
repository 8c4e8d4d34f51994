//! Test-only crash points. Built only with the `failpoints` cargo feature (`cargo test -p
//! wharfd --features failpoints`); a release build has none and `hit` compiles to nothing.
//!
//! A point is armed by creating `<exec-root>/failpoints/<name>`; when wharfd reaches an armed
//! point it SIGKILLs itself, which is exactly a `kill -9` at that instant: the crash tests use
//! it to cut an operation between two of its steps deterministically.

use std::path::Path;

/// Between "the shim started the container's process" and "the start's `Running` is saved".
pub(crate) const START_LAUNCHED: &str = "start-launched";

#[cfg(feature = "failpoints")]
pub(crate) fn hit(exec_root: &Path, name: &str) {
    if exec_root.join("failpoints").join(name).exists() {
        tracing::warn!(failpoint = name, "failpoint reached: killing wharfd");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
        // SIGKILL cannot be caught; this only waits for it to land.
        loop {
            std::thread::park();
        }
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn hit(_exec_root: &Path, _name: &str) {}
