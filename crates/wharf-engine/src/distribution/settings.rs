//! wharfd's registry flags as dockerd reads them. The registry client is the one judge of
//! mirrors and insecure registries: it refuses bad ones in dockerd's words and says what
//! `/info`'s `RegistryConfig` shows ([`wharf_distribution::Registries::service_config`]);
//! here are the engine's own settings (layers moved at once) and that config in the API's
//! shape.

use serde_json::{json, Map, Value};
use std::path::PathBuf;
use wharf_distribution::{Registries, RegistryOptions, ServiceConfig};

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

/// What the engine keeps of the flags once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
}

impl RegistrySettings {
    /// Validates the flags: the engine's settings, and the registry client built from the
    /// rest (which refuses a bad mirror or insecure registry in dockerd's words).
    pub fn new(
        flags: &RegistryFlags,
        user_agent: &str,
    ) -> Result<(RegistrySettings, Registries), String> {
        if flags.max_concurrent_downloads == 0 {
            return Err("invalid max concurrent downloads: 0".into());
        }
        if flags.max_concurrent_uploads == 0 {
            return Err("invalid max concurrent uploads: 0".into());
        }
        let registries = Registries::new(RegistryOptions {
            insecure_registries: flags.insecure_registries.clone(),
            mirrors: flags.mirrors.clone(),
            certs_dir: flags.certs_dir.clone(),
            user_agent: user_agent.to_owned(),
        })
        .map_err(|e| e.to_string())?;
        let settings = RegistrySettings {
            max_concurrent_downloads: flags.max_concurrent_downloads,
            max_concurrent_uploads: flags.max_concurrent_uploads,
        };
        Ok((settings, registries))
    }
}

/// `/info`'s `RegistryConfig` in dockerd's shape: `Mirrors` is null without mirrors, and the
/// deprecated non-distributable fields are null, as API versions below 1.47 have them.
pub fn info(c: &ServiceConfig) -> Value {
    let index: Map<String, Value> = c
        .index_configs
        .iter()
        .map(|(k, i)| {
            let v = json!({
                "Name": i.name, "Mirrors": i.mirrors, "Secure": i.secure, "Official": i.official,
            });
            (k.clone(), v)
        })
        .collect();
    json!({
        "AllowNondistributableArtifactsCIDRs": null,
        "AllowNondistributableArtifactsHostnames": null,
        "InsecureRegistryCIDRs": c.insecure_registry_cidrs,
        "IndexConfigs": index,
        "Mirrors": if c.mirrors.is_empty() { Value::Null } else { json!(c.mirrors) },
    })
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

    fn open(f: &RegistryFlags) -> Result<(RegistrySettings, Registries), String> {
        RegistrySettings::new(f, "wharfd/test")
    }

    #[test]
    fn defaults_show_as_dockerds() {
        let (s, r) = open(&RegistryFlags::default()).unwrap();
        assert_eq!(
            info(&r.service_config()),
            json!({
                "AllowNondistributableArtifactsCIDRs": null,
                "AllowNondistributableArtifactsHostnames": null,
                "InsecureRegistryCIDRs": ["::1/128", "127.0.0.0/8"],
                "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}},
                "Mirrors": null,
            })
        );
        assert_eq!(s.max_concurrent_downloads, 3);
        assert_eq!(s.max_concurrent_uploads, 5);
    }

    #[test]
    fn mirrors_and_insecure_registries_show_normalised() {
        let (_, r) = open(&flags(
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
        let info = info(&r.service_config());
        assert_eq!(
            info["InsecureRegistryCIDRs"],
            json!(["10.0.0.0/8", "fd00::/8", "::1/128", "127.0.0.0/8"])
        );
        assert_eq!(
            info["IndexConfigs"]["myreg:5000"],
            json!({"Name": "myreg:5000", "Mirrors": [], "Secure": false, "Official": false})
        );
        assert_eq!(
            info["IndexConfigs"]["other.example"]["Secure"],
            json!(false)
        );
        assert_eq!(
            info["IndexConfigs"]["docker.io"]["Mirrors"],
            json!(["https://mirror.example/", "http://m2:5000/"])
        );
        assert_eq!(
            info["Mirrors"],
            json!(["https://mirror.example/", "http://m2:5000/"])
        );
    }

    #[test]
    fn bad_flags_are_refused_in_dockerds_words() {
        let bad = |m: &[&str], i: &[&str]| open(&flags(m, i)).map(|_| ()).unwrap_err();
        assert_eq!(
            bad(&["ftp://m"], &[]),
            "invalid mirror: unsupported scheme \"ftp\" in \"ftp://m\": must use either \
             'https://' or 'http://'"
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
        assert!(open(&zero).is_err());
    }
}
