//! A container's use of a volume while it runs: what its mount binds, from start to stop.

use super::{Result, VolumeService};
use std::path::PathBuf;

impl VolumeService {
    /// Called at each start of `container` for every volume it mounts: the host directory to
    /// bind at the mount's destination. A volume of the local driver without options is its
    /// `_data` directory, always there; volumes with mount options (`type`, `device`, `o`)
    /// are refused at create, so nothing needs mounting yet.
    pub fn mount(&self, name: &str, container: &str) -> Result<PathBuf> {
        let _ = container;
        self.inspect(name)?;
        Ok(self.data_path(name))
    }

    /// Called when `container` stops (or its start fails) for every volume `mount` gave it.
    pub fn unmount(&self, name: &str, container: &str) -> Result<()> {
        let _ = (name, container);
        Ok(())
    }
}
