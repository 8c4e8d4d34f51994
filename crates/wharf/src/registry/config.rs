//! Docker's client config file, `config.json` in the config directory (`--config`, else
//! `$DOCKER_CONFIG`, else `~/.docker`), as far as credentials go: `auths` (`auth` = base64
//! of `user:password`, `identitytoken`, `email`), `credsStore` and `credHelpers`. Logins made
//! with wharf are seen by docker and the other way round.
//!
//! The file is rewritten as docker writes it (its key order, tab indent, Go's escaping), so
//! a login through either tool leaves the same bytes; keys docker does not know are kept
//! (docker drops them).

use super::auth::{convert_to_hostname, AuthConfig};
use super::gojson::{self, Node, Object};
use super::helper::{self, Helper, HelperCreds};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Helpers keep this user name for an identity token.
const TOKEN_USERNAME: &str = "<token>";

/// The top-level keys of docker's `ConfigFile`, in the order docker writes them.
const DOCKER_KEYS: &[&str] = &[
    "auths",
    "HttpHeaders",
    "psFormat",
    "imagesFormat",
    "networksFormat",
    "pluginsFormat",
    "volumesFormat",
    "statsFormat",
    "detachKeys",
    "credsStore",
    "credHelpers",
    "serviceInspectFormat",
    "servicesFormat",
    "tasksFormat",
    "secretFormat",
    "configFormat",
    "nodesFormat",
    "pruneFilters",
    "proxies",
    "currentContext",
    "cliPluginsExtraDirs",
    "plugins",
    "aliases",
    "features",
    "experimental",
];

/// The config directory docker would use: `--config`, `$DOCKER_CONFIG`, `$HOME/.docker`.
pub fn dir(flag: Option<&str>) -> PathBuf {
    if let Some(d) = flag.filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(".docker")
}

/// One config file, read.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub filename: PathBuf,
    /// By registry key; `username`/`password` decoded from `auth`, `server_address` the key.
    auths: BTreeMap<String, AuthConfig>,
    /// Every other top-level key, as read.
    other: Map<String, Value>,
    /// Warned once per run about a password kept in the file, as docker does.
    warned: bool,
}

impl ConfigFile {
    pub fn empty(filename: PathBuf) -> ConfigFile {
        ConfigFile {
            filename,
            auths: BTreeMap::new(),
            other: Map::new(),
            warned: false,
        }
    }

    /// The file in `dir`; a missing file is an empty config. The error is docker's
    /// `parsing config file (...)` text.
    pub fn load(dir: &Path) -> Result<ConfigFile, String> {
        let filename = dir.join("config.json");
        let mut cfg = ConfigFile::empty(filename.clone());
        let bytes = match std::fs::read(&filename) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cfg),
            Err(e) => return Err(format!("loading config file: {e}")),
        };
        let parse_err = |e: String| format!("parsing config file ({}): {e}", filename.display());
        // An empty file is an empty config (Go's decoder stops at EOF).
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(cfg);
        }
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| parse_err(e.to_string()))?;
        let Value::Object(mut top) = v else {
            return Err(parse_err(
                "json: cannot unmarshal non-object into Go value of type configfile.ConfigFile"
                    .into(),
            ));
        };
        match top.remove("auths") {
            None | Some(Value::Null) => {}
            Some(Value::Object(auths)) => {
                for (key, entry) in auths {
                    let ac = decode_entry(&key, &entry).map_err(parse_err)?;
                    cfg.auths.insert(key, ac);
                }
            }
            Some(_) => {
                return Err(parse_err(
                    "json: cannot unmarshal non-object into Go struct field ConfigFile.auths of type map[string]types.AuthConfig".into(),
                ))
            }
        }
        match top.get("credsStore") {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(_) => {
                return Err(parse_err(
                    "json: cannot unmarshal non-string into Go struct field ConfigFile.credsStore of type string".into(),
                ))
            }
        }
        match top.get("credHelpers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) if m.values().all(Value::is_string) => {}
            Some(_) => {
                return Err(parse_err(
                    "json: cannot unmarshal into Go struct field ConfigFile.credHelpers of type map[string]string".into(),
                ))
            }
        }
        cfg.other = top;
        Ok(cfg)
    }

    /// As docker's `LoadDefaultConfigFile` for commands that only read credentials: a file
    /// that cannot be read is reported and counts as empty; with no credentials configured
    /// at all, the platform's default helper is used when it is installed.
    pub fn load_or_warn(dir: &Path, stderr: &mut dyn Write) -> ConfigFile {
        let mut cfg = match ConfigFile::load(dir) {
            Ok(c) => c,
            Err(e) => {
                let _ = writeln!(stderr, "WARNING: Error {e}");
                ConfigFile::empty(dir.join("config.json"))
            }
        };
        cfg.detect_default_store();
        cfg
    }

    /// `DetectDefaultStore` when nothing says where credentials go.
    pub fn detect_default_store(&mut self) {
        if !self.contains_auth() {
            if let Some(store) = helper::default_store() {
                self.other.insert("credsStore".into(), Value::String(store));
            }
        }
    }

    pub fn contains_auth(&self) -> bool {
        !self.creds_store().is_empty() || !self.cred_helpers().is_empty() || !self.auths.is_empty()
    }

    pub fn creds_store(&self) -> String {
        self.other
            .get("credsStore")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    }

    pub fn cred_helpers(&self) -> BTreeMap<String, String> {
        self.other
            .get("credHelpers")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The helper that keeps `server`'s credentials, `None` for the file itself.
    fn helper_for(&self, server: &str) -> Option<Helper> {
        let named = if server.is_empty() {
            None
        } else {
            self.cred_helpers().get(server).cloned()
        };
        named
            .or_else(|| Some(self.creds_store()))
            .filter(|s| !s.is_empty())
            .map(|s| Helper::new(&s))
    }

    /// The credentials for `server` (`GetAuthConfig`); none is an empty config. A helper's
    /// failure is an error (docker then falls back on [`ConfigFile::file_get`] where it
    /// ignores the error).
    pub fn get_auth(&self, server: &str) -> Result<AuthConfig, String> {
        let from_file = self.file_get(server);
        let Some(helper) = self.helper_for(server) else {
            return Ok(from_file);
        };
        match helper.get(server) {
            Ok(found) => {
                let mut ac = from_file;
                ac.username.clear();
                ac.password.clear();
                ac.identity_token.clear();
                ac.server_address.clear();
                if let Some(c) = found {
                    if c.username == TOKEN_USERNAME {
                        ac.identity_token = c.secret;
                    } else {
                        ac.username = c.username;
                        ac.password = c.secret;
                    }
                    ac.server_address = server.to_string();
                }
                Ok(ac)
            }
            Err(e) => Err(e),
        }
    }

    /// Every registry with credentials (`GetAllCredentials`' keys): the file's, or its
    /// helper's list, and each registry that has a helper of its own.
    pub fn credential_keys(&self) -> Result<Vec<String>, String> {
        let mut keys: Vec<String> = match self.helper_for("") {
            Some(h) => h.list()?,
            None => self.auths.keys().cloned().collect(),
        };
        for k in self.cred_helpers().into_keys() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        Ok(keys)
    }

    /// The file's entry: the key itself, else (old files) a key that is a URL of that host.
    pub fn file_get(&self, server: &str) -> AuthConfig {
        if let Some(a) = self.auths.get(server) {
            return a.clone();
        }
        self.auths
            .iter()
            .find(|(k, _)| convert_to_hostname(k) == server)
            .map(|(_, a)| a.clone())
            .unwrap_or_default()
    }

    /// Keeps `ac` under `ac.server_address`, in its helper or in the file (then with docker's
    /// warning on `stderr`, once, when a password lands in the file).
    pub fn store_auth(&mut self, ac: &AuthConfig, stderr: &mut dyn Write) -> Result<(), String> {
        if let Some(helper) = self.helper_for(&ac.server_address) {
            let creds = if ac.identity_token.is_empty() {
                HelperCreds {
                    server_url: ac.server_address.clone(),
                    username: ac.username.clone(),
                    secret: ac.password.clone(),
                }
            } else {
                HelperCreds {
                    server_url: ac.server_address.clone(),
                    username: TOKEN_USERNAME.into(),
                    secret: ac.identity_token.clone(),
                }
            };
            helper.store(&creds)?;
            // The file keeps only what helpers do not (the e-mail of old logins).
            let mut rest = ac.clone();
            rest.username.clear();
            rest.password.clear();
            rest.identity_token.clear();
            return self.file_store(rest, stderr);
        }
        self.file_store(ac.clone(), stderr)
    }

    fn file_store(&mut self, ac: AuthConfig, stderr: &mut dyn Write) -> Result<(), String> {
        if self.auths.get(&ac.server_address) == Some(&ac) {
            return Ok(());
        }
        let has_password = !ac.password.is_empty();
        self.auths.insert(ac.server_address.clone(), ac);
        self.save()?;
        if has_password && !self.warned {
            self.warned = true;
            let _ = writeln!(
                stderr,
                "\nWARNING! Your credentials are stored unencrypted in '{}'.\n\
                 Configure a credential helper to remove this warning. See\n\
                 https://docs.docker.com/go/credential-store/\n",
                self.filename.display()
            );
        }
        Ok(())
    }

    /// Forgets `server`'s credentials: in its helper, then in the file (`Erase`).
    pub fn erase(&mut self, server: &str) -> Result<(), String> {
        if let Some(helper) = self.helper_for(server) {
            helper.erase(server)?;
        }
        if self.auths.remove(server).is_some() {
            self.save()?;
        }
        Ok(())
    }

    /// docker's `Save`: the whole file rewritten through a temporary file in the same
    /// directory, keeping the old file's mode and owner (a new one is 0600), through a
    /// symlink to where it points.
    pub fn save(&self) -> Result<(), String> {
        let dir = self
            .filename
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        create_dir_0700(&dir).map_err(|e| e.to_string())?;
        let target = match std::fs::canonicalize(&self.filename) {
            Ok(p) => p,
            Err(_) => dangling_target(&self.filename),
        };
        let bytes = self.render();
        let tmp = dir.join(format!(
            ".config.json.tmp-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        let result = (|| -> std::io::Result<()> {
            use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(bytes.as_bytes())?;
            f.sync_all()?;
            if let Ok(old) = std::fs::metadata(&target) {
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(old.mode()))?;
                let _ = nix::unistd::chown(
                    &tmp,
                    Some(nix::unistd::Uid::from_raw(old.uid())),
                    Some(nix::unistd::Gid::from_raw(old.gid())),
                );
            }
            std::fs::rename(&tmp, &target)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.to_string());
        }
        Ok(())
    }

    /// The file's text: docker's keys in docker's order (empty ones left out, `auths`
    /// always there), then any other keys, sorted.
    pub fn render(&self) -> String {
        let mut top = Object::default();
        let mut auths = Object::default();
        for (key, ac) in &self.auths {
            let mut entry = Object::default();
            entry
                .str_omitempty("auth", &encode_auth(ac))
                .str_omitempty("email", &ac.email)
                .str_omitempty("identitytoken", &ac.identity_token)
                .str_omitempty("registrytoken", &ac.registry_token);
            auths.node(key, Node::Object(entry));
        }
        top.node("auths", Node::Object(auths));
        for key in &DOCKER_KEYS[1..] {
            let Some(v) = self.other.get(*key) else {
                continue;
            };
            let v = match (*key, v) {
                // The client sets User-Agent itself; docker never stores it.
                ("HttpHeaders", Value::Object(m)) => Value::Object(
                    m.iter()
                        .filter(|(k, _)| !k.eq_ignore_ascii_case("user-agent"))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
                _ => v.clone(),
            };
            if is_empty(&v) {
                continue;
            }
            let node = match (*key, &v) {
                ("proxies", Value::Object(m)) => proxies_node(m),
                _ => gojson::node_of(&v),
            };
            top.node(key, node);
        }
        let mut extra: Vec<&String> = self
            .other
            .keys()
            .filter(|k| !DOCKER_KEYS.contains(&k.as_str()))
            .collect();
        extra.sort();
        for k in extra {
            top.node(k, gojson::node_of(&self.other[k]));
        }
        top.indented()
    }
}

/// An `auths` entry as docker reads it: `auth` decoded into user and password, the key as
/// the server address.
fn decode_entry(key: &str, entry: &Value) -> Result<AuthConfig, String> {
    let Value::Object(o) = entry else {
        return Err(
            "json: cannot unmarshal non-object into Go struct field ConfigFile.auths of type types.AuthConfig"
                .into(),
        );
    };
    let s = |name: &str| -> Result<String, String> {
        match o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            None | Some((_, Value::Null)) => Ok(String::new()),
            Some((_, Value::String(v))) => Ok(v.clone()),
            Some(_) => Err(format!(
                "json: cannot unmarshal non-string into Go struct field AuthConfig.auths.{name} of type string"
            )),
        }
    };
    let mut ac = AuthConfig {
        username: s("username")?,
        password: s("password")?,
        auth: String::new(),
        email: s("email")?,
        server_address: key.to_string(),
        identity_token: s("identitytoken")?,
        registry_token: s("registrytoken")?,
    };
    let auth = s("auth")?;
    if !auth.is_empty() {
        let decoded = gojson::base64_decode(&auth)
            .ok_or_else(|| "illegal base64 data in auth".to_string())?;
        let text = String::from_utf8_lossy(&decoded).into_owned();
        match text.split_once(':') {
            Some((user, pass)) if !user.is_empty() => {
                ac.username = user.to_string();
                ac.password = pass.trim_matches('\0').to_string();
            }
            _ => return Err("Invalid auth configuration file".into()),
        }
    }
    Ok(ac)
}

/// `encodeAuth`: base64 of `user:password`, nothing when both are empty.
fn encode_auth(ac: &AuthConfig) -> String {
    if ac.username.is_empty() && ac.password.is_empty() {
        return String::new();
    }
    gojson::base64(format!("{}:{}", ac.username, ac.password).as_bytes(), false)
}

/// Go's `omitempty`: empty strings, maps, lists, false, zero, null.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

/// `proxies` holds structs, written in their field order rather than sorted.
fn proxies_node(m: &Map<String, Value>) -> Node {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    let mut o = Object::default();
    for k in keys {
        let node = match &m[k] {
            Value::Object(p) => {
                let mut po = Object::default();
                for f in ["httpProxy", "httpsProxy", "noProxy", "ftpProxy", "allProxy"] {
                    po.str_omitempty(f, p.get(f).and_then(Value::as_str).unwrap_or(""));
                }
                Node::Object(po)
            }
            other => gojson::node_of(other),
        };
        o.node(k, node);
    }
    Node::Object(o)
}

fn create_dir_0700(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Where a dangling symlink points (docker saves through it), or the path itself.
fn dangling_target(path: &Path) -> PathBuf {
    match std::fs::read_link(path) {
        Ok(t) if t.is_absolute() => t,
        Ok(t) => path.parent().map(|p| p.join(&t)).unwrap_or(t),
        Err(_) => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests;
