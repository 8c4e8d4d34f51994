//! dockerd's mount syntax and validation (`volume/mounts/linux_parser.go`), pure: `-v`
//! strings (`HostConfig.Binds`), `HostConfig.Mounts` entries and `VolumesFrom` entries become
//! a [`Parsed`] mount or dockerd's error, word for word.

use super::MountExtra;
use std::collections::BTreeMap;
use wharf_api::container::{BindOptions, Mount, MountPoint, VolumeOptions};

pub const BIND: &str = "bind";
pub const VOLUME: &str = "volume";
pub const TMPFS: &str = "tmpfs";
pub const DEFAULT_PROPAGATION: &str = "rprivate";
const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "slave", "rslave", "shared", "rshared",
];

/// One mount as the user asked for it, before any volume is claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// For a volume: `name` is what the user named (empty: anonymous) and `source` is
    /// filled when the volume is claimed; `driver` is what was asked (empty: the default).
    pub point: MountPoint,
    pub extra: MountExtra,
    /// `VolumeOptions.Labels`: the labels of a volume this mount creates.
    pub labels: BTreeMap<String, String>,
    /// `VolumeOptions.DriverConfig.Options`: the local driver's options (`type`, `device`,
    /// `o`) of a volume this mount creates; they apply only when the volume is new.
    pub driver_opts: BTreeMap<String, String>,
    /// The propagation the user gave, if any options of a bind (dockerd's `BindOptions`).
    pub propagation_asked: Option<String>,
}

/// Go's `path.Clean`.
pub fn clean(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..");
                }
            }
            x => out.push(x),
        }
    }
    let joined = out.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn is_propagation(o: &str) -> bool {
    PROPAGATIONS.contains(&o)
}

/// dockerd's `linuxValidMountMode`: known words, at most one of each kind.
pub fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0u8; 5];
    for o in mode.split(',') {
        let kind = match o {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            p if is_propagation(p) => 2,
            _ => return false,
        };
        counts[kind] += 1;
    }
    counts.iter().all(|c| *c <= 1)
}

/// dockerd's `ReadWrite`: a valid mode without `ro`.
pub fn read_write(mode: &str) -> bool {
    valid_mode(mode) && !mode.split(',').any(|o| o == "ro")
}

fn propagation_of(mode: &str) -> Option<&str> {
    mode.split(',').find(|o| is_propagation(o))
}

fn invalid_spec(raw: &str) -> String {
    format!("invalid volume specification: '{raw}'")
}

fn invalid_mode(mode: &str) -> String {
    format!("invalid mode: {mode}")
}

fn mount_config(ty: &str, e: impl std::fmt::Display) -> String {
    format!("invalid mount config for type {ty:?}: {e}")
}

fn check_not_root(p: &str) -> Result<(), String> {
    if clean(&p.replace('\\', "/")) == "/" {
        return Err("invalid specification: destination can't be '/'".into());
    }
    Ok(())
}

fn check_absolute(p: &str) -> Result<(), String> {
    let p = p.replace('\\', "/");
    if p.starts_with('/') {
        return Ok(());
    }
    Err(format!(
        "invalid mount path: '{p}' mount path must be absolute"
    ))
}

/// `-v` / `HostConfig.Binds`: `dst`, `src:dst` or `src:dst:mode`. A source that is an
/// absolute path is a bind (created at start if missing), anything else names a volume.
pub fn parse_bind(raw: &str, volume_driver: &str) -> Result<Parsed, String> {
    let parts: Vec<&str> = raw.splitn(4, ':').collect();
    if parts[0].is_empty() {
        return Err(invalid_spec(raw));
    }
    let (source, target, mode) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => {
            // `/foo:rw` is a destination with a mode, which a volume cannot be given.
            if valid_mode(dst) {
                return Err(invalid_spec(raw));
            }
            (*src, *dst, "")
        }
        [src, dst, mode] => (*src, *dst, *mode),
        _ => return Err(invalid_spec(raw)),
    };
    if !valid_mode(mode) {
        return Err(invalid_mode(mode));
    }
    let ty = if source.starts_with('/') {
        BIND
    } else {
        VOLUME
    };
    let mut m = Mount {
        r#type: ty.into(),
        source: source.into(),
        target: target.into(),
        read_only: !read_write(mode),
        ..Default::default()
    };
    if !volume_driver.is_empty() && ty == VOLUME {
        m.volume_options = Some(VolumeOptions {
            driver_config: Some(serde_json::json!({ "Name": volume_driver })),
            ..Default::default()
        });
    }
    if mode.split(',').any(|o| o == "nocopy") {
        m.volume_options
            .get_or_insert_with(Default::default)
            .no_copy = true;
    }
    if let Some(p) = propagation_of(mode) {
        m.bind_options = Some(BindOptions {
            propagation: p.into(),
            ..Default::default()
        });
    }
    let mut parsed = parse_spec(&m, None).map_err(|e| format!("{}: {e}", invalid_spec(raw)))?;
    parsed.point.mode = mode.into();
    // A `-v` bind's missing source is made at start (dockerd's `MountPoint.Setup`).
    parsed.extra.create_source = ty == BIND;
    Ok(parsed)
}

/// `--mount` / `HostConfig.Mounts`; `exists` tells whether a bind's source is there (it
/// must be, unless `BindOptions.CreateMountpoint`).
pub fn parse_mount(m: &Mount, exists: &dyn Fn(&str) -> bool) -> Result<Parsed, String> {
    let mut parsed = parse_spec(m, Some(exists))?;
    parsed.extra.create_source = m.bind_options.as_ref().is_some_and(|b| b.create_mountpoint);
    Ok(parsed)
}

/// dockerd's `validateMountConfigImpl` then `parseMountSpec`.
fn parse_spec(m: &Mount, exists: Option<&dyn Fn(&str) -> bool>) -> Result<Parsed, String> {
    let ty = m.r#type.as_str();
    let err = |e: String| mount_config(ty, e);
    if m.target.is_empty() {
        return Err(err("field Target must not be empty".into()));
    }
    check_not_root(&m.target).map_err(err)?;
    check_absolute(&m.target).map_err(err)?;
    let bind_given = m.bind_options.is_some();
    match ty {
        BIND => {
            if m.source.is_empty() {
                return Err(err("field Source must not be empty".into()));
            }
            if let Some(p) = m.bind_options.as_ref().map(|b| b.propagation.as_str()) {
                if !p.is_empty() && !is_propagation(p) {
                    return Err(err(format!("invalid propagation mode: {p}")));
                }
            }
            if m.volume_options.is_some() {
                return Err(err("field VolumeOptions must not be specified".into()));
            }
            check_absolute(&m.source).map_err(err)?;
            let create = m.bind_options.as_ref().is_some_and(|b| b.create_mountpoint);
            if let Some(exists) = exists {
                if !create && !exists(&m.source) {
                    return Err(err(format!(
                        "bind source path does not exist: {}",
                        m.source
                    )));
                }
            }
        }
        VOLUME => {
            if bind_given {
                return Err(err("field BindOptions must not be specified".into()));
            }
            if m.source.is_empty() && m.read_only {
                return Err(err(
                    "must not set ReadOnly mode when using anonymous volumes".into(),
                ));
            }
        }
        TMPFS => {
            if bind_given {
                return Err(err("field BindOptions must not be specified".into()));
            }
            if !m.source.is_empty() {
                return Err(err("field Source must not be specified".into()));
            }
        }
        _ => return Err(err("mount type unknown".into())),
    }
    let bind = m.bind_options.clone().unwrap_or_default();
    if m.read_only && bind.read_only_non_recursive && bind.read_only_force_recursive {
        return Err(
            "mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive"
                .into(),
        );
    }
    if !m.read_only && bind.read_only_non_recursive {
        return Err("mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive".into());
    }
    if !m.read_only && bind.read_only_force_recursive {
        return Err(
            "mount options conflict: !ReadOnly && BindOptions.ReadOnlyForceRecursive".into(),
        );
    }
    let vol = m.volume_options.clone().unwrap_or_default();
    let mut point = MountPoint {
        r#type: ty.into(),
        destination: clean(&m.target.replace('\\', "/")),
        rw: !m.read_only,
        ..Default::default()
    };
    let mut extra = MountExtra {
        propagation_asked: !bind.propagation.is_empty(),
        ..Default::default()
    };
    match ty {
        VOLUME => {
            point.name = m.source.clone();
            point.driver = vol
                .driver_config
                .as_ref()
                .and_then(|d| d.get("Name"))
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_string();
            extra.anonymous = m.source.is_empty();
            extra.copy_data = !vol.no_copy;
        }
        BIND => {
            point.source = clean(&m.source.replace('\\', "/"));
            point.propagation = if bind.propagation.is_empty() {
                DEFAULT_PROPAGATION.into()
            } else {
                bind.propagation.clone()
            };
            extra.non_recursive = bind.non_recursive;
            extra.readonly_non_recursive = bind.read_only_non_recursive;
        }
        _ => {}
    }
    Ok(Parsed {
        point,
        extra,
        driver_opts: vol
            .driver_config
            .as_ref()
            .and_then(|d| d.get("Options"))
            .and_then(|o| serde_json::from_value(o.clone()).ok())
            .unwrap_or_default(),
        labels: vol.labels.unwrap_or_default(),
        propagation_asked: m.bind_options.as_ref().map(|b| b.propagation.clone()),
    })
}

/// `VolumesFrom` entries: `container[:mode]`; the mode is `rw`/`ro` (and the label modes),
/// never a propagation or copy mode.
pub fn parse_volumes_from(spec: &str) -> Result<(String, String), String> {
    if spec.is_empty() {
        return Err("volumes-from specification cannot be an empty string".into());
    }
    let (id, mode) = spec.split_once(':').unwrap_or((spec, ""));
    if mode.is_empty() {
        return Ok((id.into(), "rw".into()));
    }
    if !valid_mode(mode) || propagation_of(mode).is_some() || mode.split(',').any(|o| o == "nocopy")
    {
        return Err(invalid_mode(mode));
    }
    Ok((id.into(), mode.into()))
}

/// dockerd's `validateBindDaemonRoot`: a bind whose source holds the daemon's root (or lies
/// in it) must not keep private copies of the daemon's mounts. `Ok(true)`: give it `rslave`.
pub fn daemon_root_propagation(p: &Parsed, root: &str) -> Result<bool, String> {
    let src = &p.point.source;
    if p.point.r#type != BIND || !(src.starts_with(root) || root.starts_with(src.as_str())) {
        return Ok(false);
    }
    let given = p.propagation_asked.as_deref().unwrap_or("");
    match given {
        "" => Ok(true),
        "rslave" | "rshared" => Ok(false),
        _ => Err(format!(
            "invalid mount config: must use either propagation mode \"rslave\" or \"rshared\" when mount source is within the daemon root, daemon root: {root:?}, bind mount source: {src:?}, propagation: {given:?}"
        )),
    }
}

#[cfg(test)]
mod tests;
