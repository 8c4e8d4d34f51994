//! A container's use of a volume while it runs: what its mount binds, from start to stop.
//!
//! A volume of the local driver with `type`/`device` options is mounted on its `_data` when
//! its first running user arrives and unmounted when its last one leaves, as dockerd's local
//! driver does. The users are a set of container ids per volume (in the service's lock), so a
//! second `mount` for the same container (restore adopting a running container) counts once.
//! The mount itself is the truth for "mounted": `mount` checks mountinfo, so a mount left by
//! a wharfd killed while its container ran is adopted, not stacked. After restore,
//! [`VolumeService::unmount_unused`] takes off every volume mount nobody adopted.

use super::{opts, parse_opt_map, Active, Result, VolumeService};
use crate::error::EngineError;
use std::path::{Path, PathBuf};
use wharf_storage::mountinfo;

impl VolumeService {
    /// Called at each start of `container` for every volume it mounts, before the container's
    /// process exists: the host directory to bind at the mount's destination. Mounts the
    /// volume's filesystem if it has mount options and is not mounted yet. Idempotent per
    /// container; blocks for as long as mount(2) does (an unreachable nfs server: long).
    pub fn mount(&self, name: &str, container: &str) -> Result<PathBuf> {
        // The volume's own lock keeps rm out until the user is recorded; the service's is not
        // held across mount(2).
        let vl = self.volume_lock(name);
        let _v = vl.lock().unwrap_or_else(|p| p.into_inner());
        let rec = {
            let _g = self.guard();
            self.record(name)?
        };
        let data = self.data_path(name);
        if let Some(m) = opts::needs_mount(&parse_opt_map(&rec.options)?.unwrap_or_default()) {
            if !mountinfo::is_mount_point(&data) {
                mount_local(&m, &data).map_err(EngineError::internal)?;
            }
            self.guard()
                .entry(name.to_string())
                .or_default()
                .insert(container.to_string());
        }
        Ok(data)
    }

    /// Called when `container` stops (or its start fails after `mount`) for every volume
    /// `mount` gave it; unmounts when no running user is left. Forgiving: a volume or a
    /// container it does not know is nothing to do.
    pub fn unmount(&self, name: &str, container: &str) -> Result<()> {
        let vl = self.volume_lock(name);
        let _v = vl.lock().unwrap_or_else(|p| p.into_inner());
        let rec = {
            let mut active = self.guard();
            if let Some(users) = active.get_mut(name) {
                users.remove(container);
                if !users.is_empty() {
                    return Ok(());
                }
                active.remove(name);
            }
            self.ctx
                .db
                .get_volume(name)
                .map_err(super::storage("reading a volume"))?
        };
        let Some(rec) = rec else {
            return Ok(());
        };
        if opts::needs_mount(&parse_opt_map(&rec.options)?.unwrap_or_default()).is_some() {
            mountinfo::unmount_all(&self.data_path(name)).map_err(EngineError::internal)?;
        }
        Ok(())
    }

    /// [`unmount`](Self::unmount) of every volume `container` mounted: for a stop path that
    /// does not keep the list (a failed start, a container found exited at restore). Returns
    /// the first error after trying them all.
    pub fn unmount_all_of(&self, container: &str) -> Result<()> {
        let names: Vec<String> = self
            .guard()
            .iter()
            .filter(|(_, users)| users.contains(container))
            .map(|(name, _)| name.clone())
            .collect();
        let mut first = None;
        for name in names {
            if let Err(e) = self.unmount(&name, container) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The containers whose start mounted `name` and that have not stopped since.
    pub fn mounted_by(&self, name: &str) -> Vec<String> {
        self.guard()
            .get(name)
            .map(|u| u.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Unmounts what a crash left: every mount on a volume's `_data` (and below it) that no
    /// running container adopted through [`mount`](Self::mount). Only volumes with mount
    /// options are looked at, since only they are ever mounted by Wharf; a mount an
    /// administrator put on a plain volume is left alone. Call after the containers' restore,
    /// before any request.
    pub fn unmount_unused(&self) -> Result<usize> {
        let active = self.guard();
        let mut done = 0;
        for rec in self
            .ctx
            .db
            .list_volumes()
            .map_err(super::storage("listing volumes"))?
        {
            if is_used(&active, &rec.name) {
                continue;
            }
            let opts = parse_opt_map(&rec.options)?.unwrap_or_default();
            if opts::needs_mount(&opts).is_none() {
                continue;
            }
            let data = self.data_path(&rec.name);
            if mountinfo::mounts_under(&data).is_empty() {
                continue;
            }
            match mountinfo::unmount_all(&data) {
                Ok(()) => done += 1,
                Err(e) => tracing::warn!(volume = %rec.name, error = %e, "volume left mounted"),
            }
        }
        Ok(done)
    }

    /// For `rm`: a volume with mount options is unmounted first (dockerd only unmounts: the
    /// data of a bind or an nfs export is not the volume's to delete). Fails, keeping the
    /// volume, while anything is still mounted under it.
    pub(super) fn unmount_for_remove(&self, name: &str, options: &str) -> Result<()> {
        let dir = self.root().join(name);
        if opts::needs_mount(&parse_opt_map(options)?.unwrap_or_default()).is_some() {
            mountinfo::unmount_all(&self.data_path(name)).map_err(EngineError::internal)?;
        }
        if let Some(m) = mountinfo::mounts_under(&dir).first() {
            return Err(EngineError::internal(format!(
                "remove {name}: {} is still mounted; unmount it first",
                m.display()
            )));
        }
        Ok(())
    }
}

pub(super) fn is_used(active: &Active, name: &str) -> bool {
    active.get(name).is_some_and(|u| !u.is_empty())
}

/// moby's `mount.Mount(device, target, type, o)` for a volume's options: addresses resolved,
/// flags parsed here; the mount(2) steps are wharf-storage's. Errors in dockerd's words, with
/// any password masked.
fn mount_local(m: &opts::MountOpts, target: &Path) -> std::result::Result<(), String> {
    let m = opts::resolve_addresses(m, opts::resolve_host)?;
    if m.device.is_empty() {
        return Err("missing device in volume options".into());
    }
    let (flags, data) = opts::parse_flags(&m.options);
    let req = mountinfo::OptionMount {
        device: &m.device,
        fs_type: &m.fs_type,
        flags,
        propagation_mask: opts::PROPAGATION,
        data: &data,
    };
    if let Err(e) = mountinfo::mount_with_options(&req, target) {
        let e = match password(&m.options) {
            Some(p) => e.replacen(&format!("password={p}"), "password=********", 1),
            None => e,
        };
        return Err(format!("failed to mount local volume: {e}"));
    }
    Ok(())
}

fn password(options: &str) -> Option<&str> {
    options
        .split(',')
        .find_map(|o| o.strip_prefix("password="))
        .filter(|p| !p.is_empty())
}
