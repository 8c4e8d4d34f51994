//! Create time: the container's mounts from every place a client can ask for them, in
//! dockerd's order (`registerMountPoints`, then the config's volumes): `VolumesFrom`, then
//! `Binds`, then `Mounts`, each replacing what an earlier one put at the same destination,
//! then an anonymous volume for each of `Config.Volumes` (the image's `VOLUME`s included)
//! that nothing covers. Volumes are claimed only for the final list, so a replaced mount
//! holds no volume.

use super::parse::{self, Parsed, BIND, TMPFS, VOLUME};
use super::MountExtra;
use crate::error::EngineError;
use crate::volumes::refs::VolumeRefs;
use crate::volumes::VolumeService;
use std::collections::{BTreeMap, BTreeSet};
use wharf_api::container::{HostConfig, MountPoint};

/// Another container's mounts, for `VolumesFrom`.
pub struct Donor {
    pub mounts: Vec<MountPoint>,
    pub extras: BTreeMap<String, MountExtra>,
}

/// What a container mounts: what inspect shows, and the rest, keyed by destination.
#[derive(Debug, Default, Clone)]
pub struct Resolved {
    pub mounts: Vec<MountPoint>,
    pub extras: BTreeMap<String, MountExtra>,
}

/// Where a mount came from: decides dockerd's `Mode` for a volume.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Origin {
    VolumesFrom,
    /// `Binds` or `Mounts`: a local volume without a mode shows `z`.
    Request,
    ConfigVolume,
}

struct Planned {
    parsed: Parsed,
    origin: Origin,
}

fn duplicate(dest: &str) -> EngineError {
    EngineError::invalid(format!("Duplicate mount point: {dest}"))
}

/// Everything but the claims: pure but for `exists` (a bind source) and `donor`.
fn plan(
    hc: &HostConfig,
    config_volumes: &[String],
    data_root: &str,
    exists: &dyn Fn(&str) -> bool,
    donor: &dyn Fn(&str) -> Result<Donor, EngineError>,
) -> Result<BTreeMap<String, Planned>, EngineError> {
    let mut points: BTreeMap<String, Planned> = BTreeMap::new();
    for spec in hc.volumes_from.iter().flatten() {
        let (name, mode) = parse::parse_volumes_from(spec).map_err(EngineError::invalid)?;
        let d = donor(&name).map_err(|e| EngineError::invalid(e.message()))?;
        for m in d.mounts.iter().filter(|m| m.r#type != TMPFS) {
            let mut point = m.clone();
            point.rw = m.rw && parse::read_write(&mode);
            let mut extra = d.extras.get(&m.destination).cloned().unwrap_or_default();
            extra.copy_data = false;
            let parsed = Parsed {
                point,
                extra,
                labels: BTreeMap::new(),
                driver_opts: BTreeMap::new(),
                propagation_asked: None,
            };
            points.insert(
                m.destination.clone(),
                Planned {
                    parsed,
                    origin: Origin::VolumesFrom,
                },
            );
        }
    }
    let root_slave = |p: &mut Parsed| -> Result<(), EngineError> {
        if parse::daemon_root_propagation(p, data_root).map_err(EngineError::invalid)? {
            p.point.propagation = "rslave".into();
        }
        Ok(())
    };
    let tmpfs: BTreeSet<&String> = hc.tmpfs.iter().flatten().map(|(d, _)| d).collect();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for raw in hc.binds.iter().flatten() {
        let mut p = parse::parse_bind(raw, &hc.volume_driver).map_err(EngineError::invalid)?;
        root_slave(&mut p)?;
        let dest = p.point.destination.clone();
        if taken.contains(&dest) || tmpfs.contains(&dest) {
            return Err(duplicate(&dest));
        }
        taken.insert(dest.clone());
        points.insert(
            dest,
            Planned {
                parsed: p,
                origin: Origin::Request,
            },
        );
    }
    for m in hc.mounts.iter().flatten() {
        let mut p = parse::parse_mount(m, exists).map_err(EngineError::invalid)?;
        root_slave(&mut p)?;
        let dest = p.point.destination.clone();
        if taken.contains(&dest) {
            return Err(duplicate(&m.target));
        }
        taken.insert(dest.clone());
        points.insert(
            dest,
            Planned {
                parsed: p,
                origin: Origin::Request,
            },
        );
    }
    for v in config_volumes {
        let dest = parse::clean(v);
        if points.contains_key(&dest) || tmpfs.contains(&dest) {
            continue;
        }
        let parsed = Parsed {
            point: MountPoint {
                r#type: VOLUME.into(),
                destination: dest.clone(),
                driver: hc.volume_driver.clone(),
                rw: true,
                ..Default::default()
            },
            extra: MountExtra {
                anonymous: true,
                copy_data: true,
                ..Default::default()
            },
            labels: BTreeMap::new(),
            driver_opts: BTreeMap::new(),
            propagation_asked: None,
        };
        points.insert(
            dest,
            Planned {
                parsed,
                origin: Origin::ConfigVolume,
            },
        );
    }
    Ok(points)
}

/// Resolves and claims: every volume is created if needed and `id` recorded as its user.
/// On an error nothing stays claimed and the anonymous volumes made are removed.
pub fn resolve(
    volumes: &VolumeService,
    refs: &VolumeRefs,
    id: &str,
    hc: &HostConfig,
    config_volumes: &[String],
    data_root: &str,
    donor: &dyn Fn(&str) -> Result<Donor, EngineError>,
) -> Result<Resolved, EngineError> {
    let exists = |p: &str| std::path::Path::new(p).exists();
    let planned = plan(hc, config_volumes, data_root, &exists, donor)?;
    let mut out = Resolved::default();
    for (dest, Planned { parsed, origin }) in planned {
        let Parsed {
            mut point,
            extra,
            labels,
            driver_opts,
            ..
        } = parsed;
        if point.r#type == VOLUME {
            let claimed = volumes.use_volume_with(
                &point.name,
                &point.driver,
                (!labels.is_empty()).then_some(labels),
                (!driver_opts.is_empty()).then_some(driver_opts),
                id,
            );
            let v = match claimed {
                Ok(v) => v,
                Err(e) => {
                    release(volumes, refs, id, &out, true);
                    return Err(e);
                }
            };
            point.name = v.name;
            point.source = v.mountpoint;
            point.driver = v.driver;
            if origin == Origin::Request && point.mode.is_empty() && point.driver == "local" {
                point.mode = "z".into();
            }
        }
        debug_assert!(point.r#type != BIND || !point.source.is_empty());
        out.extras.insert(dest, extra);
        out.mounts.push(point);
    }
    Ok(out)
}

/// Forgets `id` as a user of its volumes (its record is gone or never was); with
/// `remove_anonymous` (`rm -v`, `--rm`, a failed create) also removes its anonymous volumes
/// that no other container uses, as dockerd does.
pub fn release(
    volumes: &VolumeService,
    refs: &VolumeRefs,
    id: &str,
    r: &Resolved,
    remove_anonymous: bool,
) {
    refs.remove_container(id);
    if !remove_anonymous {
        return;
    }
    for m in r.mounts.iter().filter(|m| m.r#type == VOLUME) {
        if !r.extras.get(&m.destination).is_some_and(|e| e.anonymous) {
            continue;
        }
        match volumes.remove(&m.name, true) {
            Ok(()) => {}
            // Another container still uses it (`--volumes-from`): not an error, as dockerd.
            Err(e) if e.kind() == wharf_api::ErrorKind::Conflict => volumes.unmark_removal(&m.name),
            Err(e) => {
                tracing::warn!(container = %id, volume = %m.name, error = %e, "removing an anonymous volume")
            }
        }
    }
}

/// Whether creating the container copies the image's content into a volume (then the
/// create mounts the container's rootfs for [`populate`]).
pub fn needs_copy(r: &Resolved) -> bool {
    r.mounts
        .iter()
        .any(|m| m.r#type == VOLUME && r.extras.get(&m.destination).is_some_and(|e| e.copy_data))
}

/// dockerd's `populateVolumes`: each volume that copies data gets the image's content at
/// its destination (from the container's mounted `rootfs`) if it is empty.
pub fn populate(
    volumes: &VolumeService,
    id: &str,
    r: &Resolved,
    rootfs: &std::path::Path,
    exec_root: &std::path::Path,
) -> Result<(), EngineError> {
    for m in r.mounts.iter().filter(|m| m.r#type == VOLUME) {
        if !r.extras.get(&m.destination).is_some_and(|e| e.copy_data) {
            continue;
        }
        let data = volumes.mount(&m.name, id)?;
        let vol_dir = volumes.data_path(&m.name);
        let vol_dir = vol_dir.parent().unwrap_or(&data);
        let copied = super::copyup::copy_up(exec_root, rootfs, &m.destination, vol_dir, &data);
        if let Err(e) = volumes.unmount(&m.name, id) {
            tracing::warn!(container = %id, volume = %m.name, error = %e, "unmounting a volume after its copy-up");
        }
        copied.map_err(|e| match e {
            super::copyup::CopyUpError::NotADirectory(_) => EngineError::invalid(e.to_string()),
            super::copyup::CopyUpError::Io { .. } => EngineError::internal(e.to_string()),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
