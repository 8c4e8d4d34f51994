//! `UsageData` for `GET /system/df`: how much each local volume holds and how many containers
//! reference it, as dockerd's `LocalVolumesSize`.

use super::{parse_opt_map, Result, VolumeService, LOCAL_DRIVER};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use wharf_api::volume::{UsageData, Volume};

impl VolumeService {
    /// Volumes of the local driver without options, with their `UsageData`. A volume with
    /// options is left out, as dockerd leaves it: its data is not local (a bind, an nfs
    /// export, a tmpfs) and measuring it could walk someone else's tree.
    pub fn local_usage(&self) -> Result<Vec<Volume>> {
        let mut out = Vec::new();
        for rec in self
            .ctx
            .db
            .list_volumes()
            .map_err(super::storage("listing volumes"))?
        {
            if rec.driver != LOCAL_DRIVER
                || !parse_opt_map(&rec.options)?.unwrap_or_default().is_empty()
            {
                continue;
            }
            let refs = self.ctx.volume_refs.users(&rec.name).len();
            let size = dir_size(&self.data_path(&rec.name)).map_or(-1, |s| s as i64);
            let mut v = self.to_api(rec)?;
            v.usage_data = Some(UsageData {
                size,
                ref_count: refs as i64,
            });
            out.push(v);
        }
        Ok(out)
    }
}

/// Bytes under `p` as moby's `directory.Size`: every non-directory's size (a symlink's own),
/// a hard-linked inode once; an entry that vanishes meanwhile is skipped, a missing `p` fails.
pub(super) fn dir_size(p: &Path) -> std::io::Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    std::fs::symlink_metadata(p)?;
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && d != p => continue,
            Err(e) => return Err(e),
        };
        for e in entries {
            let e = e?;
            let m = match e.path().symlink_metadata() {
                Ok(m) => m,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.len() > 0 && seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    Ok(total)
}
