//! Test-only crash points. Built only with the `failpoints` cargo feature (`cargo test -p
//! wharfd --features failpoints`); a release build has none and `hit` compiles to nothing.
//!
//! A point is armed by creating `<exec-root>/failpoints/<name>`; when wharfd reaches an armed
//! point it SIGKILLs itself, which is exactly a `kill -9` at that instant: the crash tests use
//! it to cut an operation between two of its steps deterministically. The names are a contract
//! with the crash tests (`crates/wharfd/tests/crash*.rs`) and the fault-injection suite
//! (`tests/crash/`): every point, the operation that reaches it and the steps it falls between:
//!
//! | name | operation | after | before |
//! |---|---|---|---|
//! | `start-launched` | container start | the shim reported the process started | `Running` saved |
//! | `create-prepared` | container create | data dir, log file and writable layer made | the record saved |
//! | `rename-saved` | container rename | the new name committed | the in-memory name and the `rename` event |
//! | `rm-record-deleted` | container rm (also auto-remove) | the record deleted | the teardown (processes, mounts, exec dir, runtime state, cgroups, writable layer, data dir) |
//! | `pause-frozen` | pause | the shim froze the cgroup | `Paused` saved |
//! | `unpause-thawed` | unpause | the shim thawed the cgroup | `Paused=false` saved |
//! | `exec-started` | exec start | the shim reported the exec's process started | its process file removed and the exec recorded running |
//! | `import-layer-stored` | image import | layer blob stored and its snapshot committed | config and manifest blobs stored |
//! | `import-blobs-stored` | image import | config and manifest blobs stored | the image record and its tag saved (one transaction) |
//! | `volume-dir-made` | volume create | `volumes/<name>/_data` made | the volume's row saved |
//! | `volume-record-deleted` | volume rm and prune | the volume's row deleted | its directory removed |
//! | `commit-layer-stored` | commit | the writable layer's blob stored and its snapshot committed (nothing, for an empty layer) | config and manifest blobs stored |
//! | `commit-blobs-stored` | commit | config and manifest blobs stored | the image record, its parent and its tag saved (one transaction) |
//! | `copy-up-partial` | container create with a volume to fill from the image | the copy-up's marker made durable and the first entry copied | the rest copied, synced and the marker removed |
//! | `rmi-record-deleted` | image rm | the image record and its tags deleted (one transaction) | its manifest, config and layer blobs and its layer snapshot removed |
//!
//! Tag is one SQL statement (no point); what each crash leaves and how the next start finishes
//! it is in docs/architecture.md, "Restore".

use std::path::Path;

/// Between "the shim started the container's process" and "the start's `Running` is saved".
pub(crate) const START_LAUNCHED: &str = "start-launched";
/// Between "the writable layer (and data dir, log file) made" and "the record saved".
pub(crate) const CREATE_PREPARED: &str = "create-prepared";
/// Between "the new name committed" and "the name in memory, the event".
pub(crate) const RENAME_SAVED: &str = "rename-saved";
/// Between "the container's record deleted" and "its teardown".
pub(crate) const RM_RECORD_DELETED: &str = "rm-record-deleted";
/// Between "the volume's directory made" and "its row saved".
pub(crate) const VOLUME_DIR_MADE: &str = "volume-dir-made";
/// Between "the volume's row deleted" and "its directory removed".
pub(crate) const VOLUME_RECORD_DELETED: &str = "volume-record-deleted";
/// Between "the cgroup frozen" and "`Paused` saved".
pub(crate) const PAUSE_FROZEN: &str = "pause-frozen";
/// Between "the cgroup thawed" and "`Paused=false` saved".
pub(crate) const UNPAUSE_THAWED: &str = "unpause-thawed";
/// Between "the shim started the exec's process" and "the exec recorded running".
pub(crate) const EXEC_STARTED: &str = "exec-started";
/// Between "the layer's blob and committed snapshot stored" and "config and manifest stored".
pub(crate) const IMPORT_LAYER_STORED: &str = "import-layer-stored";
/// Between "every blob of the image stored" and "its record and tag saved".
pub(crate) const IMPORT_BLOBS_STORED: &str = "import-blobs-stored";
/// Between "the committed layer's blob and snapshot stored" and "config and manifest stored".
pub(crate) const COMMIT_LAYER_STORED: &str = "commit-layer-stored";
/// Between "every blob of the committed image stored" and "its record, parent and tag saved".
pub(crate) const COMMIT_BLOBS_STORED: &str = "commit-blobs-stored";
/// Between "a copy-up's marker and first entry written" and "the rest copied, the marker gone".
pub(crate) const COPY_UP_PARTIAL: &str = "copy-up-partial";
/// Between "the image's record and tags deleted" and "its blobs and layer snapshot removed".
pub(crate) const RMI_RECORD_DELETED: &str = "rmi-record-deleted";

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
