//! The one file an exec start writes: its OCI process, `exec-<id12>.json` in the container's
//! exec dir, read by `wharf-shim exec` and removed once the shim answered. A crash in between
//! leaves it; restore removes it when it re-adopts the container
//! ([`remove_stale`]). The exec's record is in memory only (as dockerd's): a process started
//! by a cut exec start runs on in the container, stops with it and is listed by `top`.

use std::path::{Path, PathBuf};

const PREFIX: &str = "exec-";
const SUFFIX: &str = ".json";

/// Where the process of exec `exec_id` is written.
pub(super) fn process_file(exec_dir: &Path, exec_id: &str) -> PathBuf {
    let short = exec_id.get(..12).unwrap_or(exec_id);
    exec_dir.join(format!("{PREFIX}{short}{SUFFIX}"))
}

/// Removes the process files of exec starts cut by a crash (no exec is under way at restore).
pub(crate) fn remove_stale(container_id: &str, exec_dir: &Path) {
    let Ok(rd) = std::fs::read_dir(exec_dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(PREFIX)
            && name.ends_with(SUFFIX)
            && std::fs::remove_file(e.path()).is_ok()
        {
            tracing::info!(container = %container_id, file = %name, "restore: removed the process file of an exec start cut by the daemon's crash");
        }
    }
}
