//! Platforms as containerd's `platforms` package reads, normalises and matches them (the
//! package dockerd uses for `--platform` and for choosing from a manifest list).

use crate::error::{DistributionError, Result};
use std::fmt;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];

const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

const OS_AND_VERSION_RE: &str = r"^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.-]*)\))?$";
const SPECIFIER_RE: &str = "^[A-Za-z0-9_.-]+$";

fn invalid(msg: String) -> DistributionError {
    DistributionError::Invalid(format!("{msg}: invalid argument"))
}

fn is_specifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// `os` or `os(version)`.
fn split_os_version(part: &str) -> Option<(&str, Option<&str>)> {
    let (os, version) = match part.split_once('(') {
        Some((os, rest)) => (os, Some(rest.strip_suffix(')')?)),
        None => (part, None),
    };
    let os_ok = !os.is_empty()
        && os
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    let version_ok = version.is_none_or(|v| v.chars().all(is_specifier_char));
    (os_ok && version_ok).then_some((os, version))
}

fn normalize_os(os: &str) -> String {
    let os = os.to_ascii_lowercase();
    match os.as_str() {
        "" => std::env::consts::OS.to_owned(),
        "macos" => "darwin".to_owned(),
        _ => os,
    }
}

/// containerd's `normalizeArch`.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = (arch.to_ascii_lowercase(), variant.to_ascii_lowercase());
    match arch.as_str() {
        "i386" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let v = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".into(), v)
        }
        "aarch64" | "arm64" => {
            let v = match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                "9" | "9.0" | "v9.0" => "v9".into(),
                _ => variant,
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => {
            let v = match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".into(), v)
        }
        _ => (arch, variant),
    }
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl Platform {
    /// The platform this daemon runs, as containerd's `DefaultSpec` names it (`linux/amd64`,
    /// `linux/arm64/v8`).
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            other => (other, None),
        };
        Platform {
            architecture: architecture.to_owned(),
            os: "linux".to_owned(),
            os_version: None,
            variant: variant.map(str::to_owned),
        }
    }

    /// Parses `os[/arch[/variant]]` (or just an architecture) as `docker pull --platform`
    /// takes it, normalised like containerd (`x86_64` → amd64, `aarch64` → arm64), with
    /// containerd's error texts.
    pub fn parse(specifier: &str) -> Result<Platform> {
        if specifier.contains('*') {
            return Err(invalid(format!(
                "{specifier:?}: wildcards not yet supported"
            )));
        }
        let parts: Vec<&str> = specifier.splitn(4, '/').collect();
        let mut p = Platform::default();
        for (i, part) in parts.iter().enumerate() {
            if i == 0 {
                let Some((os, version)) = split_os_version(part) else {
                    return Err(invalid(format!(
                        "{part:?} is an invalid OS component of {specifier:?}: OSAndVersion \
                         specifier component must match {OS_AND_VERSION_RE:?}"
                    )));
                };
                p.os = normalize_os(os);
                p.os_version = version.filter(|v| !v.is_empty()).map(str::to_owned);
            } else if part.is_empty() || !part.chars().all(is_specifier_char) {
                return Err(invalid(format!(
                    "{part:?} is an invalid component of {specifier:?}: platform specifier \
                     component must match {SPECIFIER_RE:?}"
                )));
            }
        }
        match parts.len() {
            1 => {
                if KNOWN_OS.contains(&p.os.as_str()) {
                    let host = Platform::host();
                    p.architecture = host.architecture;
                    p.variant = host
                        .variant
                        .filter(|v| p.architecture == "arm" && v != "v7");
                    return Ok(p);
                }
                let (arch, mut variant) = normalize_arch(parts[0], "");
                if arch == "arm" && variant == "v7" {
                    variant.clear();
                }
                if KNOWN_ARCH.contains(&arch.as_str()) {
                    return Ok(Platform {
                        architecture: arch,
                        os: std::env::consts::OS.to_owned(),
                        os_version: None,
                        variant: opt(variant),
                    });
                }
                Err(invalid(format!(
                    "{specifier:?}: unknown operating system or architecture"
                )))
            }
            2 => {
                let (arch, mut variant) = normalize_arch(parts[1], "");
                if arch == "arm" && variant == "v7" {
                    variant.clear();
                }
                p.architecture = arch;
                p.variant = opt(variant);
                Ok(p)
            }
            3 => {
                let (arch, mut variant) = normalize_arch(parts[1], parts[2]);
                if arch == "arm64" && variant.is_empty() {
                    variant = "v8".into();
                }
                p.architecture = arch;
                p.variant = opt(variant);
                Ok(p)
            }
            _ => Err(invalid(format!(
                "{specifier:?}: cannot parse platform specifier"
            ))),
        }
    }

    /// containerd's `Normalize`: the spelling two platforms are compared in.
    pub fn normalized(&self) -> Platform {
        let (architecture, variant) =
            normalize_arch(&self.architecture, self.variant.as_deref().unwrap_or(""));
        Platform {
            architecture,
            os: normalize_os(&self.os),
            os_version: self.os_version.clone(),
            variant: opt(variant),
        }
    }

    fn is_zero(&self) -> bool {
        self.os.is_empty()
            && self.architecture.is_empty()
            && self.variant.as_deref().unwrap_or("").is_empty()
            && self.os_version.as_deref().unwrap_or("").is_empty()
    }

    fn same(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && self.variant == other.variant
    }
}

/// containerd's `FormatAll`: `os[(version)]/arch[/variant]`.
impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.os.is_empty() {
            return f.write_str("unknown");
        }
        let os = match self.os_version.as_deref().filter(|v| !v.is_empty()) {
            Some(v) => format!("{}({v})", self.os),
            None => self.os.clone(),
        };
        let parts: Vec<&str> = [
            os.as_str(),
            self.architecture.as_str(),
            self.variant.as_deref().unwrap_or(""),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
        f.write_str(&parts.join("/"))
    }
}

fn with_variant(p: &Platform, architecture: &str, variant: &str) -> Platform {
    Platform {
        architecture: architecture.to_owned(),
        os: p.os.clone(),
        os_version: p.os_version.clone(),
        variant: opt(variant.to_owned()),
    }
}

/// arm64 variants and the lower ones each runs: (majors, their highest minors).
fn arm64_versions(variant: &str) -> Option<(&'static [u32], Vec<u32>)> {
    let v = variant.strip_prefix('v')?;
    let (major, minor) = match v.split_once('.') {
        Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
        None => (v.parse::<u32>().ok()?, 0),
    };
    match (major, minor) {
        (8, 0..=9) => Some((&[8], vec![minor])),
        (9, 0..=7) => Some((&[9, 8], vec![minor, (minor + 5).min(9)])),
        _ => None,
    }
}

/// containerd's `platformVector`: `p`, then what it can also run, best first.
pub(crate) fn vector(p: &Platform) -> Vec<Platform> {
    let variant = p.variant.as_deref().unwrap_or("");
    let mut out = vec![p.clone()];
    match p.architecture.as_str() {
        "amd64" => {
            if let Some(v) = variant
                .strip_prefix('v')
                .and_then(|v| v.parse::<u32>().ok())
            {
                for lower in (1..v).rev() {
                    out.push(with_variant(p, "amd64", &format!("v{lower}")));
                }
            }
            out.push(with_variant(p, "386", ""));
        }
        "arm" => {
            if let Some(v) = variant
                .strip_prefix('v')
                .and_then(|v| v.parse::<u32>().ok())
            {
                if v > 5 {
                    for lower in (5..v).rev() {
                        out.push(with_variant(p, "arm", &format!("v{lower}")));
                    }
                }
            }
        }
        "arm64" => {
            let variant = if variant.is_empty() { "v8" } else { variant };
            out.clear();
            // An arm64 variant containerd does not know matches nothing at all.
            let Some((majors, minors)) = arm64_versions(variant) else {
                return out;
            };
            {
                for (major, top) in majors.iter().zip(minors) {
                    for minor in (0..=top).rev() {
                        let v = if minor == 0 {
                            format!("v{major}")
                        } else {
                            format!("v{major}.{minor}")
                        };
                        out.push(with_variant(p, "arm64", &v));
                    }
                }
            }
            // Every arm64 runs 32-bit arm up to v8.
            let arm = if variant.starts_with("v8") || variant.starts_with("v9") {
                "v8"
            } else {
                variant
            };
            out.extend(vector(&with_variant(p, "arm", arm)));
        }
        _ => {}
    }
    out
}

/// Where `candidate` ranks for `want` (lower is better), or `None` when it cannot run:
/// containerd's `Only(want)` matcher and its ordering. `want` must be normalised.
pub(crate) fn rank(want_vector: &[Platform], candidate: &Platform) -> Option<usize> {
    let c = candidate.normalized();
    want_vector.iter().position(|m| m.normalized().same(&c))
}

/// What an index entry's platform means: an empty one matches anything (ranked last), as in
/// dockerd's `filterManifests`.
pub(crate) fn entry_rank(want_vector: &[Platform], entry: Option<&Platform>) -> Option<usize> {
    match entry {
        None => Some(usize::MAX),
        Some(p) if p.is_zero() => Some(usize::MAX),
        Some(p) => rank(want_vector, p),
    }
}

/// `want` with the host's OS and architecture where it names none (dockerd's
/// `withDefault`).
pub(crate) fn with_default(want: &Platform) -> Platform {
    let host = Platform::host();
    let mut p = want.clone();
    if p.os.is_empty() {
        p.os = host.os;
    }
    if p.architecture.is_empty() {
        p.architecture = host.architecture;
        p.variant = host.variant;
    }
    p
}

#[cfg(test)]
mod tests;
