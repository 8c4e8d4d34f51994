//! wharfd's registry flags as dockerd reads them (moby `registry/config.go`): mirrors and
//! insecure registries validated and normalised in dockerd's words, 127.0.0.0/8 always
//! insecure, and the `RegistryConfig` that `/info` shows.

use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::path::PathBuf;

pub const DEFAULT_CERTS_DIR: &str = "/etc/wharf/certs.d";
pub const DEFAULT_MAX_CONCURRENT_DOWNLOADS: usize = 3;
pub const DEFAULT_MAX_CONCURRENT_UPLOADS: usize = 5;

/// The registry flags as given (`--registry-mirror`, `--insecure-registry`, `--certs-dir`,
/// `--max-concurrent-downloads`, `--max-concurrent-uploads`).
#[derive(Debug, Clone)]
pub struct RegistryFlags {
    pub mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub certs_dir: PathBuf,
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
}

impl Default for RegistryFlags {
    fn default() -> Self {
        RegistryFlags {
            mirrors: Vec::new(),
            insecure_registries: Vec::new(),
            certs_dir: PathBuf::from(DEFAULT_CERTS_DIR),
            max_concurrent_downloads: DEFAULT_MAX_CONCURRENT_DOWNLOADS,
            max_concurrent_uploads: DEFAULT_MAX_CONCURRENT_UPLOADS,
        }
    }
}

/// The flags once validated: what the registry client is given and `/info` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    /// `https://mirror.example/`: scheme and host, one trailing slash, no duplicates.
    pub mirrors: Vec<String>,
    /// Networks whose registries may be reached over HTTP (or TLS without verification),
    /// normalised (`10.0.0.0/8`); 127.0.0.0/8 is always among them.
    pub insecure_cidrs: Vec<String>,
    /// Registries (`host[:port]`) reached that way.
    pub insecure_hosts: Vec<String>,
    pub certs_dir: PathBuf,
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
}

/// Docker Hub's name in `IndexConfigs`.
const INDEX_NAME: &str = "docker.io";

impl RegistrySettings {
    pub fn new(flags: &RegistryFlags) -> Result<RegistrySettings, String> {
        if flags.max_concurrent_downloads == 0 {
            return Err("invalid max concurrent downloads: 0".into());
        }
        if flags.max_concurrent_uploads == 0 {
            return Err("invalid max concurrent uploads: 0".into());
        }
        let mut mirrors: Vec<String> = Vec::new();
        for m in &flags.mirrors {
            let m = validate_mirror(m)?;
            if !mirrors.contains(&m) {
                mirrors.push(m);
            }
        }
        let mut insecure_cidrs: Vec<String> = Vec::new();
        let mut insecure_hosts: Vec<String> = Vec::new();
        // Localhost is always insecure, as dockerd's stop-gap for registries run there.
        let all = flags
            .insecure_registries
            .iter()
            .map(String::as_str)
            .chain(["127.0.0.0/8"]);
        for r in all {
            validate_index_name(r)?;
            let lower = r.to_ascii_lowercase();
            let r = if lower.starts_with("http://") {
                tracing::warn!("insecure registry {r} should not contain 'http://' and 'http://' has been removed from the insecure registry config");
                &r[7..]
            } else if lower.starts_with("https://") {
                tracing::warn!("insecure registry {r} should not contain 'https://' and 'https://' has been removed from the insecure registry config");
                &r[8..]
            } else if r.contains("://") {
                return Err(format!("insecure registry {r} should not contain '://'"));
            } else {
                r
            };
            if let Some(net) = parse_cidr(r) {
                if !insecure_cidrs.contains(&net) {
                    insecure_cidrs.push(net);
                }
            } else {
                validate_host_port(r)
                    .map_err(|e| format!("insecure registry {r} is not valid: {e}"))?;
                if !insecure_hosts.iter().any(|h| h == r) {
                    insecure_hosts.push(r.to_owned());
                }
            }
        }
        Ok(RegistrySettings {
            mirrors,
            insecure_cidrs,
            insecure_hosts,
            certs_dir: flags.certs_dir.clone(),
            max_concurrent_downloads: flags.max_concurrent_downloads,
            max_concurrent_uploads: flags.max_concurrent_uploads,
        })
    }

    /// What the registry client is built with.
    pub fn client_options(&self, user_agent: &str) -> wharf_distribution::RegistryOptions {
        wharf_distribution::RegistryOptions {
            insecure_registries: self
                .insecure_cidrs
                .iter()
                .chain(&self.insecure_hosts)
                .cloned()
                .collect(),
            mirrors: self.mirrors.clone(),
            certs_dir: self.certs_dir.clone(),
            user_agent: user_agent.to_owned(),
        }
    }

    /// `/info`'s `RegistryConfig`, shaped as dockerd's: `IndexConfigs` has Docker Hub (with
    /// the mirrors) and each insecure `host[:port]`; `Mirrors` is null without mirrors.
    pub fn info(&self) -> Value {
        let mut index = Map::new();
        for h in &self.insecure_hosts {
            index.insert(
                h.clone(),
                json!({"Name": h, "Mirrors": [], "Secure": false, "Official": false}),
            );
        }
        index.insert(
            INDEX_NAME.into(),
            json!({"Name": INDEX_NAME, "Mirrors": self.mirrors, "Secure": true, "Official": true}),
        );
        json!({
            "AllowNondistributableArtifactsCIDRs": null,
            "AllowNondistributableArtifactsHostnames": null,
            "InsecureRegistryCIDRs": self.insecure_cidrs,
            "IndexConfigs": index,
            "Mirrors": if self.mirrors.is_empty() { Value::Null } else { json!(self.mirrors) },
        })
    }
}

/// dockerd's `ValidateMirror`: an http(s) URL without query, fragment or credentials; given
/// back with one trailing slash.
pub fn validate_mirror(val: &str) -> Result<String, String> {
    let Some((scheme, rest)) = val.split_once("://") else {
        return Err(format!(
            "invalid mirror: unsupported scheme \"\" in \"{val}\""
        ));
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "invalid mirror: unsupported scheme \"{scheme}\" in \"{val}\""
        ));
    }
    if rest.contains('?') || rest.contains('#') {
        return Err(format!(
            "invalid mirror: query or fragment at end of the URI \"{val}\""
        ));
    }
    let host = rest.split('/').next().unwrap_or("");
    if let Some((userinfo, _)) = host.split_once('@') {
        let user = userinfo.split(':').next().unwrap_or("");
        let after = rest.split_once('@').map_or("", |(_, a)| a);
        return Err(format!(
            "invalid mirror: username/password not allowed in URI \"{scheme}://{user}:xxxxx@{after}\""
        ));
    }
    if host.is_empty() {
        return Err(format!("invalid mirror: \"{val}\" is not a valid URI"));
    }
    Ok(format!("{}/", val.trim_end_matches('/')))
}

/// dockerd's `ValidateIndexName`.
fn validate_index_name(val: &str) -> Result<(), String> {
    if val.starts_with('-') || val.ends_with('-') {
        return Err(format!(
            "invalid index name ({val}). Cannot begin or end with a hyphen"
        ));
    }
    Ok(())
}

/// A CIDR (`10.1.2.3/8`) as its network, the way Go's `IPNet.String()` prints it
/// (`10.0.0.0/8`); `None` when `s` is not one.
fn parse_cidr(s: &str) -> Option<String> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u32 = bits.parse().ok()?;
    match ip {
        IpAddr::V4(v4) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            let net = std::net::Ipv4Addr::from(u32::from(v4) & mask);
            Some(format!("{net}/{bits}"))
        }
        IpAddr::V6(v6) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            let net = std::net::Ipv6Addr::from(u128::from(v6) & mask);
            Some(format!("{net}/{bits}"))
        }
        _ => None,
    }
}

/// dockerd's `validateHostPort`: a registry host (name or IP) and an optional port.
fn validate_host_port(s: &str) -> Result<(), String> {
    let (host, port) = match s.rsplit_once(':') {
        // An IPv6 address without brackets has colons of its own.
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, Some(p)),
        _ => (s, None),
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let is_ip = bare.parse::<IpAddr>().is_ok();
    let is_name = !host.is_empty()
        && host.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        });
    if !is_ip && !is_name {
        return Err(format!("invalid host \"{host}\""));
    }
    if let Some(p) = port {
        match p.parse::<u32>() {
            Ok(v) if v <= 65535 => {}
            Ok(_) => return Err(format!("invalid port \"{p}\"")),
            Err(_) => return Err(format!("strconv.Atoi: parsing \"{p}\": invalid syntax")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(mirrors: &[&str], insecure: &[&str]) -> RegistryFlags {
        RegistryFlags {
            mirrors: mirrors.iter().map(|s| s.to_string()).collect(),
            insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
            ..RegistryFlags::default()
        }
    }

    #[test]
    fn defaults_show_as_dockerds() {
        let s = RegistrySettings::new(&RegistryFlags::default()).unwrap();
        assert_eq!(
            s.info(),
            json!({
                "AllowNondistributableArtifactsCIDRs": null,
                "AllowNondistributableArtifactsHostnames": null,
                "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}},
                "Mirrors": null,
            })
        );
        assert_eq!(s.max_concurrent_downloads, 3);
        assert_eq!(s.max_concurrent_uploads, 5);
    }

    #[test]
    fn mirrors_and_insecure_registries_are_normalised() {
        let s = RegistrySettings::new(&flags(
            &[
                "https://mirror.example",
                "https://mirror.example/",
                "http://m2:5000/",
            ],
            &[
                "myreg:5000",
                "http://other.example",
                "10.1.2.3/8",
                "10.0.0.0/8",
                "fd00::1/8",
            ],
        ))
        .unwrap();
        assert_eq!(s.mirrors, ["https://mirror.example/", "http://m2:5000/"]);
        assert_eq!(s.insecure_cidrs, ["10.0.0.0/8", "fd00::/8", "127.0.0.0/8"]);
        assert_eq!(s.insecure_hosts, ["myreg:5000", "other.example"]);
        let info = s.info();
        assert_eq!(
            info["IndexConfigs"]["myreg:5000"],
            json!({"Name": "myreg:5000", "Mirrors": [], "Secure": false, "Official": false})
        );
        assert_eq!(
            info["IndexConfigs"]["docker.io"]["Mirrors"],
            json!(["https://mirror.example/", "http://m2:5000/"])
        );
        assert_eq!(
            info["Mirrors"],
            json!(["https://mirror.example/", "http://m2:5000/"])
        );
        let opts = s.client_options("wharfd/test");
        assert_eq!(
            opts.insecure_registries,
            [
                "10.0.0.0/8",
                "fd00::/8",
                "127.0.0.0/8",
                "myreg:5000",
                "other.example"
            ]
        );
        assert_eq!(opts.certs_dir, PathBuf::from("/etc/wharf/certs.d"));
    }

    #[test]
    fn bad_flags_are_refused_in_dockerds_words() {
        let bad = |m: &[&str], i: &[&str]| RegistrySettings::new(&flags(m, i)).unwrap_err();
        assert_eq!(
            bad(&["ftp://m"], &[]),
            "invalid mirror: unsupported scheme \"ftp\" in \"ftp://m\""
        );
        assert_eq!(
            bad(&["https://m/?x=1"], &[]),
            "invalid mirror: query or fragment at end of the URI \"https://m/?x=1\""
        );
        assert!(bad(&["https://u:p@m"], &[]).starts_with("invalid mirror: username/password"));
        assert!(
            !bad(&["https://u:p@m"], &[]).contains(":p@"),
            "no password shown"
        );
        assert_eq!(
            bad(&[], &["-reg"]),
            "invalid index name (-reg). Cannot begin or end with a hyphen"
        );
        assert_eq!(
            bad(&[], &["tcp://reg"]),
            "insecure registry tcp://reg should not contain '://'"
        );
        assert_eq!(
            bad(&[], &["reg:99999"]),
            "insecure registry reg:99999 is not valid: invalid port \"99999\""
        );
        assert_eq!(
            bad(&[], &["re g"]),
            "insecure registry re g is not valid: invalid host \"re g\""
        );
        let zero = RegistryFlags {
            max_concurrent_downloads: 0,
            ..RegistryFlags::default()
        };
        assert!(RegistrySettings::new(&zero).is_err());
    }
}
