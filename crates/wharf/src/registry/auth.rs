//! Docker's `AuthConfig`: what a login stores, what `POST /auth` carries and, base64url
//! encoded, what `X-Registry-Auth` carries on pull and push; and which key credentials are
//! stored under for a registry.

use super::gojson::{self, Object};

/// The key Docker Hub's credentials are stored under (`registry.IndexServer`).
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

/// Credentials for one registry; every field is left out of the JSON when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    pub auth: String,
    pub email: String,
    pub server_address: String,
    pub identity_token: String,
    pub registry_token: String,
}

impl AuthConfig {
    /// Go's `json.Marshal` of the struct: its field order, `omitempty` everywhere.
    pub fn to_json(&self) -> String {
        let mut o = Object::default();
        o.str_omitempty("username", &self.username)
            .str_omitempty("password", &self.password)
            .str_omitempty("auth", &self.auth)
            .str_omitempty("email", &self.email)
            .str_omitempty("serveraddress", &self.server_address)
            .str_omitempty("identitytoken", &self.identity_token)
            .str_omitempty("registrytoken", &self.registry_token);
        o.compact()
    }

    /// The `X-Registry-Auth` value: base64url (padded) of the JSON; `e30=` when empty.
    pub fn header(&self) -> String {
        gojson::base64(self.to_json().as_bytes(), true)
    }
}

/// The key a registry's credentials live under (`getAuthConfigKey`): Docker Hub's index URL
/// for docker.io, else the registry's `host[:port]` as written in the reference.
pub fn config_key(domain: &str) -> String {
    if domain == "docker.io" || domain == "index.docker.io" {
        INDEX_SERVER.to_string()
    } else {
        domain.to_string()
    }
}

/// `ConvertToHostname`: `https://host:5000/v2/` → `host:5000`, `host/path` → `host`.
pub fn convert_to_hostname(maybe_url: &str) -> String {
    if let Some((_, rest)) = maybe_url.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = split_host_port(hostport);
        if !host.is_empty() {
            return match port {
                Some(p) if !p.is_empty() => {
                    if host.contains(':') {
                        format!("[{host}]:{p}")
                    } else {
                        format!("{host}:{p}")
                    }
                }
                _ => host.to_string(),
            };
        }
    }
    maybe_url.split('/').next().unwrap_or("").to_string()
}

/// Go's `URL.Hostname()` and `Port()`: brackets of an IPv6 literal dropped.
fn split_host_port(hostport: &str) -> (&str, Option<&str>) {
    if let Some(rest) = hostport.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => (rest, None),
        };
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (hostport, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_gos_json_in_base64url() {
        assert_eq!(AuthConfig::default().header(), "e30=");
        let a = AuthConfig {
            username: "capuser".into(),
            password: "secretpw".into(),
            server_address: "localhost:5000".into(),
            ..AuthConfig::default()
        };
        // Capture 50: the header docker sent after `login -u capuser`.
        assert_eq!(
            a.to_json(),
            r#"{"username":"capuser","password":"secretpw","serveraddress":"localhost:5000"}"#
        );
        assert!(a
            .header()
            .starts_with("eyJ1c2VybmFtZSI6ImNhcHVzZXIiLCJwYXNzd29yZCI6InNlY3JldHB3Iiwi"));
    }

    #[test]
    fn keys_and_hostnames() {
        assert_eq!(config_key("docker.io"), INDEX_SERVER);
        assert_eq!(config_key("localhost:5000"), "localhost:5000");
        assert_eq!(
            convert_to_hostname("https://localhost:5000/v2/"),
            "localhost:5000"
        );
        assert_eq!(convert_to_hostname("http://u:p@reg.io"), "reg.io");
        assert_eq!(convert_to_hostname("https://[::1]:5000"), "[::1]:5000");
        assert_eq!(convert_to_hostname("reg.io/path"), "reg.io");
        assert_eq!(convert_to_hostname(INDEX_SERVER), "index.docker.io");
    }
}
