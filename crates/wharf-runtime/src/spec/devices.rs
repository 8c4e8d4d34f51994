//! Devices a container gets besides Docker's defaults (`--device`), and device cgroup rules
//! (`--device-cgroup-rule`), in Docker's syntax and words.

use super::SpecError;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType};

/// A host device node to create in the container, as the daemon found it on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Absolute path inside the container.
    pub path: String,
    /// `c`, `b` or `p`.
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Cgroup access: a non-empty subset of `rwm`.
    pub access: String,
}

/// Docker accepts any non-empty combination of r, w and m.
pub fn valid_device_mode(mode: &str) -> bool {
    !mode.is_empty() && mode.len() <= 3 && mode.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
}

pub(super) fn device_type(kind: char) -> Result<LinuxDeviceType, SpecError> {
    match kind {
        'c' | 'u' => Ok(LinuxDeviceType::C),
        'b' => Ok(LinuxDeviceType::B),
        'p' => Ok(LinuxDeviceType::P),
        'a' => Ok(LinuxDeviceType::A),
        other => Err(SpecError::Device(format!("unknown device type {other:?}"))),
    }
}

/// Parses `--device-cgroup-rule` (`c 1:3 rwm`, `a *:* m`, `b 8:* r`).
pub fn parse_device_cgroup_rule(rule: &str) -> Result<LinuxDeviceCgroup, SpecError> {
    let bad = || SpecError::Device(format!("invalid device cgroup rule format: '{rule}'"));
    let mut parts = rule.split(' ');
    let (Some(kind), Some(numbers), Some(access), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let kind = match kind {
        "a" | "b" | "c" => device_type(kind.chars().next().ok_or_else(bad)?)?,
        _ => return Err(bad()),
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let number = |s: &str| -> Result<Option<i64>, SpecError> {
        if s == "*" {
            Ok(None)
        } else {
            s.parse::<i64>().map(Some).map_err(|_| bad())
        }
    };
    if !valid_device_mode(access) {
        return Err(bad());
    }
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(kind)
        .access(access);
    if let Some(m) = number(major)? {
        b = b.major(m);
    }
    if let Some(m) = number(minor)? {
        b = b.minor(m);
    }
    Ok(b.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_rules() {
        let r = parse_device_cgroup_rule("c 1:3 rwm").unwrap();
        assert!(r.allow());
        assert_eq!(
            (r.typ(), r.major(), r.minor()),
            (Some(LinuxDeviceType::C), Some(1), Some(3))
        );
        let r = parse_device_cgroup_rule("a *:* m").unwrap();
        assert_eq!((r.major(), r.minor()), (None, None));
        for bad in ["c 1:3", "x 1:3 rwm", "c 1-3 rwm", "c 1:3 rwx", "c a:3 r"] {
            assert_eq!(
                parse_device_cgroup_rule(bad).unwrap_err().to_string(),
                format!("invalid device cgroup rule format: '{bad}'")
            );
        }
        assert!(valid_device_mode("rw") && !valid_device_mode("") && !valid_device_mode("rwx"));
    }
}
