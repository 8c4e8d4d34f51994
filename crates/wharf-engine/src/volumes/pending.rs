//! `rm -v` as one step: a container's anonymous volumes go with its record even when a crash
//! falls between deleting the record and removing the volumes.
//!
//! Before the record is deleted, each anonymous volume gets a durable marker
//! (`volumes/<name>/remove.pending`). The removal right after the record takes the volume's
//! whole directory, marker included. A crash in between leaves the marker, and the next start
//! ([`VolumeService::finish_pending_removals`], after the containers' restore so that every
//! record's claims are known) removes the volume unless a container still uses it; a crash
//! before the record was deleted leaves a container that still uses its volume, so only the
//! marker goes.

use super::{Result, VolumeService};
use crate::error::EngineError;

pub const MARKER: &str = "remove.pending";

impl VolumeService {
    /// Marks `name` for removal by a container's `rm -v`; durable before it returns.
    /// A volume whose directory is already gone has nothing to mark.
    pub fn mark_for_removal(&self, name: &str) -> Result<()> {
        let dir = self.root().join(name);
        if !dir.is_dir() {
            return Ok(());
        }
        let marker = dir.join(MARKER);
        wharf_fs::atomic_write(&marker, b"")
            .map_err(|e| EngineError::io(format!("marking {} for removal", marker.display()), e))
    }

    /// The marker off again: the volume stays (another container still uses it).
    pub fn unmark_removal(&self, name: &str) {
        let _ = std::fs::remove_file(self.root().join(name).join(MARKER));
    }

    /// Finishes the `rm -v`s a crash cut: every marked volume no container uses is removed; a
    /// used one keeps its data and loses the marker. Run after the containers' restore.
    pub fn finish_pending_removals(&self) -> Result<usize> {
        let root = self.root();
        let entries = std::fs::read_dir(&root)
            .map_err(|e| EngineError::io(format!("reading {}", root.display()), e))?;
        let mut removed = 0;
        for entry in entries.flatten() {
            if !entry.path().join(MARKER).exists() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if self.ctx.volume_refs.in_use(&name) {
                self.unmark_removal(&name);
                continue;
            }
            match self.remove(&name, true) {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(volume = %name, error = %e, "finishing an interrupted rm -v")
                }
            }
        }
        Ok(removed)
    }
}
