//! Where things live under `--data-root` (see DESIGN §4). Creating the tree is the caller's
//! choice ([`DataRoot::create`]); the stores create their own subdirectories anyway.

use std::path::{Path, PathBuf};

use crate::{IoContext, Result};

#[derive(Debug, Clone)]
pub struct DataRoot {
    root: PathBuf,
}

impl DataRoot {
    pub fn new(root: impl Into<PathBuf>) -> DataRoot {
        DataRoot { root: root.into() }
    }

    /// Creates the top-level directories (mode 0700 for the root would be the caller's policy).
    pub fn create(&self) -> Result<()> {
        for d in [
            self.content(),
            self.snapshots(),
            self.containers(),
            self.volumes(),
        ] {
            std::fs::create_dir_all(&d).ctx("create dir", &d)?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn meta_db(&self) -> PathBuf {
        self.root.join("meta.db")
    }
    /// Root for [`crate::ContentStore::open`].
    pub fn content(&self) -> PathBuf {
        self.root.join("content")
    }
    /// Root for [`crate::Snapshotter::new`] (which adds `snapshots/` itself).
    pub fn snapshotter_root(&self) -> PathBuf {
        self.root.clone()
    }
    pub fn snapshots(&self) -> PathBuf {
        self.root.join("snapshots")
    }
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }
    pub fn container(&self, id: &str) -> PathBuf {
        self.containers().join(id)
    }
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }
}
