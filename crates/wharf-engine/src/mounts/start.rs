//! Start time: what the runtime binds for each of a container's volume and bind mounts.
//! Every volume goes through `VolumeService::mount` (and `unmount` when the run ends or the
//! start fails), which gives the host path to bind; a bind's missing source is made when the
//! mount allows it. Propagation is checked against the host as dockerd does: a shared mount
//! needs a shared source, a slave one a shared or slave source.

use super::parse::{BIND, VOLUME};
use super::{copyup, MountExtra};
use crate::error::{Cause, EngineError};
use crate::volumes::VolumeService;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wharf_api::container::MountPoint;
use wharf_runtime::spec::BindMount;

/// The runtime's part of a start's mounts.
#[derive(Debug, Default)]
pub struct Prepared {
    pub binds: Vec<BindMount>,
    /// `shared` or `slave` when a mount needs the container's root to propagate so.
    pub rootfs_propagation: Option<String>,
    /// (propagation, destination) of the binds whose source has peers on the host: the
    /// runtime's hook sets theirs (a private source gives a private bind by itself).
    pub propagation_fixes: Vec<(String, String)>,
}

/// Mounts the volumes and prepares the binds. On an error, what was mounted is unmounted.
pub fn prepare(
    volumes: &VolumeService,
    events: &crate::events::EventBus,
    id: &str,
    mounts: &[MountPoint],
    extras: &BTreeMap<String, MountExtra>,
    data_root: &Path,
) -> Result<Prepared, EngineError> {
    let mut mounted: Vec<&str> = Vec::new();
    let out = prepare_inner(volumes, id, mounts, extras, data_root, &mut mounted);
    match &out {
        Err(_) => {
            for name in mounted {
                unmount_one(volumes, id, name);
            }
        }
        // dockerd's `mount` events, once the start's mounts are all set up.
        Ok(_) => {
            for m in mounts.iter().filter(|m| m.r#type == VOLUME) {
                let attrs = [
                    ("driver", m.driver.clone()),
                    ("container", id.to_string()),
                    ("destination", m.destination.clone()),
                    ("read/write", m.rw.to_string()),
                    ("propagation", m.propagation.clone()),
                ];
                events.volume_with("mount", &m.name, attrs.map(|(k, v)| (k.into(), v)).into());
            }
        }
    }
    out
}

fn prepare_inner<'a>(
    volumes: &VolumeService,
    id: &str,
    mounts: &'a [MountPoint],
    extras: &BTreeMap<String, MountExtra>,
    data_root: &Path,
    mounted: &mut Vec<&'a str>,
) -> Result<Prepared, EngineError> {
    let mut out = Prepared::default();
    let mut shared = false;
    let mut slave = false;
    for m in mounts {
        let extra = extras.get(&m.destination).cloned().unwrap_or_default();
        let source = match m.r#type.as_str() {
            VOLUME => {
                let path = volumes.mount(&m.name, id).map_err(|e| {
                    EngineError::internal(format!(
                        "error while mounting volume '{}': {}",
                        m.source,
                        e.message()
                    ))
                })?;
                mounted.push(&m.name);
                if let Some(vol_dir) = volumes.data_path(&m.name).parent() {
                    copyup::finish_interrupted(vol_dir, &path).map_err(|e| {
                        e.during(&format!("finishing an interrupted copy-up into {}", m.name))
                    })?;
                }
                path
            }
            BIND => {
                let src = PathBuf::from(&m.source);
                if extra.create_source {
                    make_source(&src)?;
                }
                src
            }
            _ => continue,
        };
        let peers =
            if m.r#type == BIND && !m.propagation.is_empty() {
                Some(mount_of(&source).map_err(|e| {
                    e.during(&format!("reading the mounts of {}", source.display()))
                })?)
            } else {
                None
            };
        let ensure = |any_of: &[Peer], words: &str| -> Result<(), EngineError> {
            let Some((point, peers)) = &peers else {
                return Ok(());
            };
            if peers.iter().any(|p| any_of.contains(p)) {
                return Ok(());
            }
            // An untyped error in dockerd: a 500.
            Err(EngineError::internal(format!(
                "path {} is mounted on {point} but it is not a {words} mount",
                source.display()
            )))
        };
        match m.propagation.as_str() {
            "shared" | "rshared" => {
                ensure(&[Peer::Shared], "shared")?;
                shared = true;
            }
            "slave" | "rslave" => {
                let ok = ensure(&[Peer::Shared, Peer::Slave], "shared or slave");
                let in_root = source.starts_with(data_root) || data_root.starts_with(&source);
                match ok {
                    Ok(()) => slave = true,
                    // dockerd's fallback: a bind of the daemon's root that the daemon made
                    // rslave (not the user) stays private where the host cannot share it.
                    Err(_) if in_root && !extra.propagation_asked => {
                        tracing::warn!(container = %id, source = %source.display(), "falling back to default propagation for bind source in daemon root");
                    }
                    Err(e) => return Err(e),
                }
            }
            _ => {}
        }
        if peers.as_ref().is_some_and(|(_, p)| !p.is_empty()) {
            out.propagation_fixes
                .push((m.propagation.clone(), m.destination.clone()));
        }
        out.binds.push(BindMount {
            source,
            destination: m.destination.clone(),
            readonly: !m.rw,
            recursive_readonly: !m.rw && !extra.readonly_non_recursive,
            non_recursive: extra.non_recursive,
            propagation: m.propagation.clone(),
        });
    }
    out.rootfs_propagation = if shared {
        Some("shared".into())
    } else if slave {
        Some("slave".into())
    } else {
        None
    };
    Ok(out)
}

/// dockerd's `MkdirAllAndChownNew(source, 0755)`: a source that exists as a file is fine
/// (it is bound as a file).
fn make_source(src: &Path) -> Result<(), EngineError> {
    if src.exists() {
        return Ok(());
    }
    match std::fs::create_dir_all(src) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(()),
        Err(e) => Err(EngineError::internal(format!(
            "error while creating mount source path '{}': {e}",
            src.display()
        ))),
    }
}

/// Called when a run ends (or its start failed after [`prepare`]) for each of its volumes;
/// dockerd's `unmount` events.
pub fn unmount_all(
    volumes: &VolumeService,
    events: &crate::events::EventBus,
    id: &str,
    mounts: &[MountPoint],
) {
    for m in mounts.iter().filter(|m| m.r#type == VOLUME) {
        unmount_one(volumes, id, &m.name);
        let attrs = [("driver", m.driver.clone()), ("container", id.to_string())];
        events.volume_with("unmount", &m.name, attrs.map(|(k, v)| (k.into(), v)).into());
    }
}

fn unmount_one(volumes: &VolumeService, id: &str, name: &str) {
    if let Err(e) = volumes.unmount(name, id) {
        tracing::warn!(container = %id, volume = %name, error = %e, "unmounting a volume");
    }
}

/// At daemon start, for a container adopted as running: its volumes are in use again.
pub fn remount(volumes: &VolumeService, id: &str, mounts: &[MountPoint]) {
    for m in mounts.iter().filter(|m| m.r#type == VOLUME) {
        if let Err(e) = volumes.mount(&m.name, id) {
            tracing::warn!(container = %id, volume = %m.name, error = %e, "mounting a volume of a running container again");
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Peer {
    Shared,
    Slave,
}

/// The mount `path` is on, from `/proc/self/mountinfo`: its mount point and whether it is
/// shared or a slave.
fn mount_of(path: &Path) -> std::io::Result<(String, Vec<Peer>)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let path = path.canonicalize()?;
    Ok(mount_of_in(&info, &path))
}

/// `info` in `/proc/self/mountinfo`'s format; the last entry on the longest matching mount
/// point wins (the one on top).
fn mount_of_in(info: &str, path: &Path) -> (String, Vec<Peer>) {
    let mut best: Option<(String, Vec<Peer>)> = None;
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 7 {
            continue;
        }
        let point = unescape(f[4]);
        if !path.starts_with(&point) {
            continue;
        }
        let mut peers = Vec::new();
        for opt in f[6..].iter().take_while(|o| **o != "-") {
            if opt.starts_with("shared:") {
                peers.push(Peer::Shared);
            } else if opt.starts_with("master:") {
                peers.push(Peer::Slave);
            }
        }
        if best.as_ref().is_none_or(|(b, _)| {
            Path::new(&point).components().count() >= Path::new(b).components().count()
        }) {
            best = Some((point, peers));
        }
    }
    best.unwrap_or_else(|| ("/".into(), Vec::new()))
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn volumes_are_mounted_binds_made_and_options_passed_on() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = std::sync::Arc::new(crate::ctx::Ctx::for_tests(dir.path()));
        let volumes = VolumeService::new(ctx.clone());
        volumes.recover().unwrap();
        let v = volumes
            .use_volume("data", "local", Default::default(), "c1")
            .unwrap();
        let missing = dir.path().join("made/by/start");
        let mounts = vec![
            MountPoint {
                r#type: "volume".into(),
                name: "data".into(),
                source: v.mountpoint.clone(),
                destination: "/data".into(),
                driver: "local".into(),
                mode: "z".into(),
                rw: false,
                ..Default::default()
            },
            MountPoint {
                r#type: "bind".into(),
                source: missing.to_string_lossy().into_owned(),
                destination: "/b".into(),
                rw: true,
                propagation: "rprivate".into(),
                ..Default::default()
            },
            MountPoint {
                r#type: "tmpfs".into(),
                destination: "/t".into(),
                rw: true,
                ..Default::default()
            },
        ];
        let extras = BTreeMap::from([(
            "/b".to_string(),
            MountExtra {
                create_source: true,
                non_recursive: true,
                ..Default::default()
            },
        )]);
        let p = prepare(&volumes, &ctx.events, "c1", &mounts, &extras, dir.path()).unwrap();
        assert!(missing.is_dir(), "a -v bind's missing source is made");
        assert_eq!(
            p.binds,
            [
                BindMount {
                    source: volumes.data_path("data"),
                    destination: "/data".into(),
                    readonly: true,
                    recursive_readonly: true,
                    non_recursive: false,
                    propagation: String::new(),
                },
                BindMount {
                    source: missing.clone(),
                    destination: "/b".into(),
                    readonly: false,
                    recursive_readonly: false,
                    non_recursive: true,
                    propagation: "rprivate".into(),
                },
            ]
        );
        assert_eq!(p.rootfs_propagation, None);
        // A copy-up cut short is emptied by the mount.
        std::fs::write(volumes.data_path("data").join("half"), b"").unwrap();
        std::fs::write(dir.path().join("volumes/data").join(copyup::MARKER), b"").unwrap();
        prepare(
            &volumes,
            &ctx.events,
            "c1",
            &mounts[..1],
            &extras,
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_dir(volumes.data_path("data"))
                .unwrap()
                .count(),
            0
        );
        // A volume that is gone fails the start in dockerd's words.
        let gone = vec![MountPoint {
            r#type: "volume".into(),
            name: "gone".into(),
            source: "/x".into(),
            destination: "/g".into(),
            ..Default::default()
        }];
        let e = prepare(&volumes, &ctx.events, "c1", &gone, &extras, dir.path()).unwrap_err();
        assert_eq!(
            e.message(),
            "error while mounting volume '/x': get gone: no such volume"
        );
    }

    #[test]
    fn the_mount_a_path_is_on_and_its_peers() {
        let info = "22 1 0:21 / / rw - ext4 /dev/vda rw\n\
                    30 22 0:27 / /mnt/a rw shared:5 - tmpfs t rw\n\
                    31 30 0:28 / /mnt/a/b rw master:5 - tmpfs t rw\n\
                    32 22 0:29 / /mnt/with\\040space rw shared:7 master:2 - tmpfs t rw\n";
        assert_eq!(mount_of_in(info, Path::new("/etc")), ("/".into(), vec![]));
        assert_eq!(
            mount_of_in(info, Path::new("/mnt/a/x")),
            ("/mnt/a".into(), vec![Peer::Shared])
        );
        assert_eq!(
            mount_of_in(info, Path::new("/mnt/a/b/c")),
            ("/mnt/a/b".into(), vec![Peer::Slave])
        );
        assert_eq!(
            mount_of_in(info, Path::new("/mnt/with space/d")),
            ("/mnt/with space".into(), vec![Peer::Shared, Peer::Slave])
        );
        // Not a prefix by characters: /mnt/ab is not on /mnt/a.
        assert_eq!(mount_of_in(info, Path::new("/mnt/ab")).0, "/");
    }
}
