//! Which daemon to talk to, decided as docker decides it, and the context store
//! (`~/.wharf/`, or `$WHARF_CONFIG`).
//!
//! Precedence: `-H` (conflicts with `--context`), `--context`, `WHARF_HOST`, `DOCKER_HOST`,
//! `WHARF_CONTEXT`, the current context in `config.json`, then `unix:///run/wharf.sock`.

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const DEFAULT_HOST: &str = "unix:///run/wharf.sock";
pub const DEFAULT_CONTEXT: &str = "default";

/// TLS settings as given on the command line or stored in a context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    pub tls: bool,
    pub verify: bool,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

impl Tls {
    pub fn enabled(&self) -> bool {
        self.tls || self.verify
    }
}

/// The global TLS flags and the environment docker reads for them.
#[derive(Debug, Default, Clone)]
pub struct TlsFlags {
    pub tls: bool,
    pub verify: bool,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub env_tls: Option<String>,
    pub env_verify: Option<String>,
    pub env_cert_path: Option<String>,
    pub env_docker_config: Option<String>,
    pub home: Option<String>,
}

/// docker's client TLS settings: `--tlsverify` (or a non-empty `DOCKER_TLS_VERIFY`) implies
/// `--tls` (or `DOCKER_TLS`); files default to `ca.pem`, `cert.pem`, `key.pem` in
/// `DOCKER_CERT_PATH`, else the docker config dir (`DOCKER_CONFIG`, `~/.docker`). A default
/// client certificate or key that does not exist is left out; one named by a flag must exist.
pub fn flag_tls(f: &TlsFlags) -> Tls {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    let verify = f.verify || set(&f.env_verify);
    let tls = f.tls || set(&f.env_tls) || verify;
    if !tls {
        return Tls::default();
    }
    let dir = f
        .env_cert_path
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| f.env_docker_config.clone().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| format!("{}/.docker", f.home.as_deref().unwrap_or("/root")));
    let default = |name: &str| format!("{}/{name}", dir.trim_end_matches('/'));
    let optional = |flag: &Option<String>, name: &str| match flag {
        Some(p) => Some(p.clone()),
        None => Some(default(name)).filter(|p| Path::new(p).exists()),
    };
    Tls {
        tls: true,
        verify,
        ca: Some(f.ca.clone().unwrap_or_else(|| default("ca.pem"))),
        cert: optional(&f.cert, "cert.pem"),
        key: optional(&f.key, "key.pem"),
    }
}

/// Everything host selection looks at, so the decision is a pure function.
#[derive(Debug, Default, Clone)]
pub struct HostInputs {
    pub flag_hosts: Vec<String>,
    pub flag_context: Option<String>,
    pub env_wharf_host: Option<String>,
    pub env_docker_host: Option<String>,
    pub env_wharf_context: Option<String>,
}

/// The daemon endpoint chosen and the context it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub context: String,
    pub tls: Tls,
}

pub fn resolve(inputs: &HostInputs, store: &Store, flag_tls: &Tls) -> Result<Target> {
    if inputs.flag_hosts.len() > 1 {
        bail!("specify only one -H");
    }
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let direct = |host: String| Target {
        host,
        context: DEFAULT_CONTEXT.to_string(),
        tls: flag_tls.clone(),
    };
    if let Some(h) = inputs.flag_hosts.first() {
        if inputs.flag_context.is_some() {
            bail!("conflicting options: cannot specify both --host and --context");
        }
        return Ok(direct(h.clone()));
    }
    let context = match nonempty(&inputs.flag_context) {
        Some(c) => Some(c),
        None => {
            if let Some(h) = nonempty(&inputs.env_wharf_host) {
                return Ok(direct(h));
            }
            if let Some(h) = nonempty(&inputs.env_docker_host) {
                return Ok(direct(h));
            }
            match nonempty(&inputs.env_wharf_context) {
                Some(c) => Some(c),
                None => store.current()?,
            }
        }
    };
    match context {
        Some(name) if name != DEFAULT_CONTEXT => {
            let ctx = store.get(&name)?;
            let mut tls = ctx.tls.clone();
            if flag_tls.enabled() {
                tls = flag_tls.clone();
            }
            Ok(Target {
                host: ctx.host,
                context: name,
                tls,
            })
        }
        _ => Ok(direct(DEFAULT_HOST.to_string())),
    }
}

/// One stored context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    pub name: String,
    pub description: String,
    pub host: String,
    pub tls: Tls,
}

impl ContextEntry {
    /// Docker's `context inspect` shape.
    pub fn to_json(&self) -> Value {
        json!({
            "Name": self.name,
            "Metadata": {"Description": self.description},
            "Endpoints": {"docker": {
                "Host": self.host,
                "SkipTLSVerify": self.tls.enabled() && !self.tls.verify,
            }},
            "TLSMaterial": {"docker": {
                "ca": self.tls.ca, "cert": self.tls.cert, "key": self.tls.key,
                "tls": self.tls.tls, "verify": self.tls.verify,
            }},
            "Storage": {"MetadataPath": "", "TLSPath": ""},
        })
    }

    fn from_json(v: &Value) -> Option<ContextEntry> {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        let b = |p: &str| v.pointer(p).and_then(Value::as_bool).unwrap_or(false);
        Some(ContextEntry {
            name: s("/Name")?,
            description: s("/Metadata/Description").unwrap_or_default(),
            host: s("/Endpoints/docker/Host")?,
            tls: Tls {
                tls: b("/TLSMaterial/docker/tls"),
                verify: b("/TLSMaterial/docker/verify"),
                ca: s("/TLSMaterial/docker/ca"),
                cert: s("/TLSMaterial/docker/cert"),
                key: s("/TLSMaterial/docker/key"),
            },
        })
    }
}

/// `<dir>/config.json` (`{"currentContext": ...}`) and `<dir>/contexts/<name>.json`.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// `$WHARF_CONFIG`, else `$HOME/.wharf`.
    pub fn from_env() -> Store {
        let dir = match std::env::var_os("WHARF_CONFIG").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/root"))
                .join(".wharf"),
        };
        Store { dir }
    }

    #[cfg(test)]
    pub fn at(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    fn context_path(&self, name: &str) -> PathBuf {
        self.dir.join("contexts").join(format!("{name}.json"))
    }

    fn read_config(&self) -> Result<Value> {
        match fs::read(self.config_path()) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("parsing {}", self.config_path().display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.config_path().display())),
        }
    }

    pub fn current(&self) -> Result<Option<String>> {
        Ok(self
            .read_config()?
            .get("currentContext")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string))
    }

    /// docker's `detachKeys` in `config.json`: the detach sequence when no `--detach-keys` is
    /// given. An unreadable config counts as none.
    pub fn detach_keys(&self) -> Option<String> {
        self.read_config()
            .ok()?
            .get("detachKeys")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    pub fn set_current(&self, name: &str) -> Result<()> {
        if name != DEFAULT_CONTEXT {
            self.get(name)?;
        }
        let mut cfg = self.read_config()?;
        if !cfg.is_object() {
            cfg = json!({});
        }
        cfg["currentContext"] = if name == DEFAULT_CONTEXT {
            Value::String(String::new())
        } else {
            Value::String(name.to_string())
        };
        atomic_write(
            &self.config_path(),
            serde_json::to_string_pretty(&cfg)?.as_bytes(),
        )
    }

    pub fn get(&self, name: &str) -> Result<ContextEntry> {
        let path = self.context_path(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("context {name:?} does not exist")
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let v: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("parsing {}", path.display()))?;
        ContextEntry::from_json(&v).with_context(|| format!("{} is not a context", path.display()))
    }

    pub fn list(&self) -> Result<Vec<ContextEntry>> {
        let mut out = Vec::new();
        let dir = self.dir.join("contexts");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(n) = name.strip_suffix(".json") {
                out.push(self.get(n)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn create(&self, entry: &ContextEntry) -> Result<()> {
        validate_name(&entry.name)?;
        if self.context_path(&entry.name).exists() {
            bail!("context {:?} already exists", entry.name);
        }
        let body = serde_json::to_string_pretty(&entry.to_json())?;
        atomic_write(&self.context_path(&entry.name), body.as_bytes())
    }

    pub fn remove(&self, name: &str) -> Result<()> {
        if name == DEFAULT_CONTEXT {
            bail!("default: context \"default\" cannot be removed");
        }
        self.get(name)?;
        if self.current()?.as_deref() == Some(name) {
            self.set_current(DEFAULT_CONTEXT)?;
        }
        fs::remove_file(self.context_path(name))
            .with_context(|| format!("removing context {name:?}"))
    }
}

/// Docker's rule; it also keeps names safe as file names.
pub fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c));
    if !first_ok || !rest_ok || name.len() < 2 {
        bail!("context name {name:?} is invalid, names are validated against regexp \"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$\"");
    }
    if name == DEFAULT_CONTEXT {
        bail!("\"default\" is a reserved context name");
    }
    Ok(())
}

/// Temp file, fsync, rename, fsync the directory: a crash leaves the old or the new file,
/// never a torn one.
pub fn atomic_write(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{nanos}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, host: &str) -> ContextEntry {
        ContextEntry {
            name: name.into(),
            description: String::new(),
            host: host.into(),
            tls: Tls::default(),
        }
    }

    #[test]
    fn detach_keys_from_config() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        assert_eq!(store.detach_keys(), None);
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"detachKeys":"ctrl-x,x","currentContext":""}"#,
        )
        .unwrap();
        assert_eq!(store.detach_keys().as_deref(), Some("ctrl-x,x"));
        // Switching contexts keeps the other settings.
        store.set_current("default").unwrap();
        assert_eq!(store.detach_keys().as_deref(), Some("ctrl-x,x"));
    }

    #[test]
    fn precedence() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        store.create(&entry("ctx1", "unix:///ctx1.sock")).unwrap();
        store.create(&entry("ctx2", "unix:///ctx2.sock")).unwrap();
        let tls = Tls::default();
        let base = HostInputs::default();
        assert_eq!(resolve(&base, &store, &tls).unwrap().host, DEFAULT_HOST);

        store.set_current("ctx2").unwrap();
        assert_eq!(
            resolve(&base, &store, &tls).unwrap().host,
            "unix:///ctx2.sock"
        );

        let mut i = base.clone();
        i.env_wharf_context = Some("ctx1".into());
        assert_eq!(resolve(&i, &store, &tls).unwrap().host, "unix:///ctx1.sock");
        i.env_docker_host = Some("unix:///docker.sock".into());
        assert_eq!(
            resolve(&i, &store, &tls).unwrap().host,
            "unix:///docker.sock"
        );
        i.env_wharf_host = Some("unix:///wharf.sock".into());
        assert_eq!(
            resolve(&i, &store, &tls).unwrap().host,
            "unix:///wharf.sock"
        );
        i.flag_context = Some("ctx1".into());
        let t = resolve(&i, &store, &tls).unwrap();
        assert_eq!(
            (t.host.as_str(), t.context.as_str()),
            ("unix:///ctx1.sock", "ctx1")
        );
        i.flag_context = Some("default".into());
        assert_eq!(resolve(&i, &store, &tls).unwrap().host, DEFAULT_HOST);
        i.flag_context = None;
        i.flag_hosts = vec!["unix:///flag.sock".into()];
        assert_eq!(resolve(&i, &store, &tls).unwrap().host, "unix:///flag.sock");
        i.flag_context = Some("ctx1".into());
        assert!(resolve(&i, &store, &tls).is_err());
    }

    #[test]
    fn tls_defaults_follow_docker() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        let none = flag_tls(&TlsFlags::default());
        assert!(!none.enabled());
        // DOCKER_TLS_VERIFY alone: TLS on, verified, files from DOCKER_CERT_PATH.
        std::fs::write(dir.path().join("cert.pem"), "").unwrap();
        let t = flag_tls(&TlsFlags {
            env_verify: Some("1".into()),
            env_cert_path: Some(d.clone()),
            ..Default::default()
        });
        assert!(t.tls && t.verify);
        assert_eq!(t.ca, Some(format!("{d}/ca.pem")));
        assert_eq!(t.cert, Some(format!("{d}/cert.pem")));
        // No key.pem in the dir: no client key (docker drops a missing default).
        assert_eq!(t.key, None);
        // --tls alone: encrypted, not verified; the default dir is ~/.docker.
        let t = flag_tls(&TlsFlags {
            tls: true,
            home: Some("/home/u".into()),
            ..Default::default()
        });
        assert!(t.tls && !t.verify);
        assert_eq!(t.ca.as_deref(), Some("/home/u/.docker/ca.pem"));
        // An empty DOCKER_TLS_VERIFY does not turn TLS on.
        assert!(!flag_tls(&TlsFlags {
            env_verify: Some(String::new()),
            ..Default::default()
        })
        .enabled());
    }

    #[test]
    fn store_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        assert!(store.list().unwrap().is_empty());
        let mut e = entry("remote", "tcp://10.0.0.1:2376");
        e.description = "lab".into();
        e.tls = Tls {
            tls: true,
            verify: true,
            ca: Some("/ca.pem".into()),
            cert: None,
            key: None,
        };
        store.create(&e).unwrap();
        assert!(store.create(&e).is_err());
        assert_eq!(store.get("remote").unwrap(), e);
        assert_eq!(store.list().unwrap(), vec![e]);
        store.set_current("remote").unwrap();
        assert_eq!(store.current().unwrap().as_deref(), Some("remote"));
        assert!(store.set_current("nope").is_err());
        store.remove("remote").unwrap();
        assert_eq!(store.current().unwrap(), None);
        assert!(store.get("remote").is_err());
        assert!(store.remove("default").is_err());
        assert!(validate_name("../x").is_err());
        assert!(validate_name("default").is_err());
        // No temp files left behind.
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("contexts"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
