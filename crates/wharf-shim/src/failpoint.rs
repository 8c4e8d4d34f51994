//! Test-only hold points, built only with the `failpoints` cargo feature (a release build has
//! none and `hold` compiles to nothing). wharfd's crash tests use them to keep a launch in a
//! chosen step while they kill and restart wharfd (docs/architecture.md, "Restore").
//!
//! A point is armed by creating `<exec-root>/failpoints/<name>`, the exec root being the
//! state dir's grandparent (`<exec-root>/containers/<id>`). On reaching it the shim writes
//! `<name>.reached` next to it and waits (at most a minute) until the file is removed.

use std::path::Path;

/// The launch's shim has bound `shim.sock` and not yet created the container.
pub(crate) const SETUP_BOUND: &str = "shim-setup-bound";

#[cfg(feature = "failpoints")]
pub(crate) fn hold(state_dir: &Path, name: &str) {
    let Some(dir) = state_dir.parent().and_then(Path::parent) else {
        return;
    };
    let armed = dir.join("failpoints").join(name);
    if !armed.exists() {
        return;
    }
    let _ = std::fs::write(dir.join("failpoints").join(format!("{name}.reached")), "");
    for _ in 0..3000 {
        if !armed.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn hold(_state_dir: &Path, _name: &str) {}
