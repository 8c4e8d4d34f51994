//! Where a registry is reached: dockerd's `--insecure-registry` and `--registry-mirror`
//! (validated with its words), and the ordered endpoints a repository is tried at (mirrors
//! then registry-1.docker.io for docker.io; HTTPS, then plain HTTP for insecure registries).

use crate::error::{DistributionError, Result};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Where docker.io's images are served (`DefaultRegistryHost`).
pub(crate) const DEFAULT_REGISTRY_HOST: &str = "registry-1.docker.io";
/// Docker Hub's index name, which login normalises to docker.io.
pub(crate) const INDEX_HOSTNAME: &str = "index.docker.io";
/// Always insecure in Docker, after the ones given (dockerd's `loadInsecureRegistries`).
const DEFAULT_INSECURE: &[&str] = &["::1/128", "127.0.0.0/8"];

/// The docker.io names a client may use for Docker Hub.
pub(crate) fn is_docker_hub(domain: &str) -> bool {
    matches!(domain, "" | "docker.io" | INDEX_HOSTNAME)
}

fn invalid(msg: String) -> DistributionError {
    DistributionError::Invalid(msg)
}

/// Which registries may be reached without verified TLS.
pub(crate) struct Security {
    hosts: Vec<String>,
    cidrs: Vec<IpNet>,
    /// Names resolved once to match them against the CIDRs, as dockerd does on each lookup.
    resolved: Mutex<HashMap<String, bool>>,
}

impl Security {
    /// Validates `--insecure-registry` values as dockerd's `loadInsecureRegistries` does.
    pub fn new(list: &[String]) -> Result<Security> {
        let mut hosts = Vec::new();
        let mut cidrs: Vec<IpNet> = Vec::new();
        let all = list
            .iter()
            .map(String::as_str)
            .chain(DEFAULT_INSECURE.iter().copied());
        for raw in all {
            validate_index_name(raw)?;
            let lower = raw.to_ascii_lowercase();
            let r = if lower.starts_with("http://") {
                tracing::warn!("insecure registry {raw} should not contain 'http://' and 'http://' has been removed from the insecure registry config");
                &raw[7..]
            } else if lower.starts_with("https://") {
                tracing::warn!("insecure registry {raw} should not contain 'https://' and 'https://' has been removed from the insecure registry config");
                &raw[8..]
            } else if raw.contains("://") {
                return Err(invalid(format!(
                    "insecure registry {raw} should not contain '://'"
                )));
            } else {
                raw
            };
            // As Go's ParseCIDR: anything else is read as a host.
            match r.parse::<IpNet>() {
                Ok(net) => {
                    let net = net.trunc();
                    if !cidrs.contains(&net) {
                        cidrs.push(net);
                    }
                }
                Err(_) => {
                    validate_host_port(r)
                        .map_err(|e| invalid(format!("insecure registry {r} is not valid: {e}")))?;
                    if !hosts.iter().any(|h| h == r) {
                        hosts.push(r.to_owned());
                    }
                }
            }
        }
        Ok(Security {
            hosts,
            cidrs,
            resolved: Mutex::new(HashMap::new()),
        })
    }

    /// No insecure registry at all, not even loopback: for tests of verified TLS on 127.0.0.1.
    #[cfg(test)]
    pub fn none() -> Security {
        Security {
            hosts: Vec::new(),
            cidrs: Vec::new(),
            resolved: Mutex::new(HashMap::new()),
        }
    }

    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    pub fn cidrs(&self) -> &[IpNet] {
        &self.cidrs
    }

    /// The answer when it needs no name lookup: a listed host, an address, `localhost`.
    pub fn insecure_now(&self, authority: &str) -> Option<bool> {
        if self.hosts.iter().any(|h| h == authority) {
            return Some(true);
        }
        let host = host_of(authority);
        if host.eq_ignore_ascii_case("localhost") {
            return Some(self.matches(&"127.0.0.1".parse().ok()?));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(self.matches(&ip));
        }
        if let Ok(cache) = self.resolved.lock() {
            if let Some(v) = cache.get(host) {
                return Some(*v);
            }
        }
        None
    }

    fn matches(&self, ip: &IpAddr) -> bool {
        self.cidrs.iter().any(|n| n.contains(ip))
    }

    /// dockerd's `isSecureIndex`, negated: a listed `host[:port]`, or a host whose address
    /// falls in a listed CIDR (a name that does not resolve is secure).
    pub async fn is_insecure(&self, authority: &str) -> bool {
        if let Some(v) = self.insecure_now(authority) {
            return v;
        }
        let host = host_of(authority).to_owned();
        let answer = match tokio::net::lookup_host((host.as_str(), 0)).await {
            Ok(addrs) => addrs.into_iter().any(|a| self.matches(&a.ip())),
            Err(_) => false,
        };
        if let Ok(mut cache) = self.resolved.lock() {
            cache.insert(host, answer);
        }
        answer
    }
}

/// The host of `host[:port]` (brackets of an IPv6 address removed).
pub(crate) fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    }
}

fn validate_index_name(val: &str) -> Result<()> {
    if val.starts_with('-') || val.ends_with('-') {
        return Err(invalid(format!(
            "invalid index name ({val}). Cannot begin or end with a hyphen"
        )));
    }
    Ok(())
}

fn is_domain_component(c: &str) -> bool {
    !c.is_empty()
        && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !c.starts_with('-')
        && !c.ends_with('-')
}

/// Go's `net.SplitHostPort`: `host:port` or `[v6]:port`; `None` without a port or with a
/// host of too many colons.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return Some((host, after.strip_prefix(':')?));
    }
    let (host, port) = s.rsplit_once(':')?;
    (!host.contains(':')).then_some((host, port))
}

/// distribution's `DomainRegexp`, anchored: a domain name or a bracketed IPv6 address, and
/// an optional `:digits`.
fn is_domain_and_port(s: &str) -> bool {
    let port = if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        after
    } else {
        let (host, port) = s.find(':').map_or((s, ""), |i| s.split_at(i));
        if !host.split('.').all(is_domain_component) {
            return false;
        }
        port
    };
    port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// dockerd's `validateHostPort`: a domain or an address, and an optional port.
fn validate_host_port(s: &str) -> std::result::Result<(), String> {
    let (host, port) = split_host_port(s).unwrap_or((s, ""));
    if !is_domain_and_port(s) && host.parse::<IpAddr>().is_err() {
        return Err(format!("invalid host {host:?}"));
    }
    if !port.is_empty() {
        match port.parse::<i64>() {
            Ok(v) if (0..=65535).contains(&v) => {}
            Ok(_) => return Err(format!("invalid port {port:?}")),
            Err(_) => return Err(format!("strconv.Atoi: parsing {port:?}: invalid syntax")),
        }
    }
    Ok(())
}

/// A registry mirror: `http[s]://host[:port][/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mirror {
    pub url: String,
    pub endpoint: Endpoint,
}

/// Validates `--registry-mirror` values as dockerd's `ValidateMirror` does (duplicates
/// dropped, order kept).
pub(crate) fn parse_mirrors(list: &[String]) -> Result<Vec<Mirror>> {
    let mut out: Vec<Mirror> = Vec::new();
    for raw in list {
        let mirror = parse_mirror(raw)?;
        if !out.iter().any(|m| m.url == mirror.url) {
            out.push(mirror);
        }
    }
    Ok(out)
}

const MIRROR_SCHEMES: &str = "must use either 'https://' or 'http://'";

fn parse_mirror(raw: &str) -> Result<Mirror> {
    let (scheme, rest) = match raw.split_once("://") {
        Some((s, r)) if !s.is_empty() => (s.to_ascii_lowercase(), r),
        _ => {
            return Err(invalid(format!(
                "invalid mirror: no scheme specified for {raw:?}: {MIRROR_SCHEMES}"
            )))
        }
    };
    // Go's URL as it prints itself: the scheme in lower case.
    let shown = format!("{scheme}://{rest}");
    let scheme = match scheme.as_str() {
        "http" => "http",
        "https" => "https",
        other => {
            return Err(invalid(format!(
                "invalid mirror: unsupported scheme {other:?} in {shown:?}: {MIRROR_SCHEMES}"
            )))
        }
    };
    if rest.contains('?') || rest.contains('#') {
        return Err(invalid(format!(
            "invalid mirror: query or fragment at end of the URI {shown:?}"
        )));
    }
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    if let Some((userinfo, host)) = authority.rsplit_once('@') {
        // The password is not shown (dockerd puts xxxxx in its place).
        let user = userinfo.split(':').next().unwrap_or("");
        return Err(invalid(format!(
            "invalid mirror: username/password not allowed in URI \"{scheme}://{user}:xxxxx@{host}{path}\""
        )));
    }
    // dockerd would take a mirror without a host, and then never reach it.
    if authority.is_empty() {
        return Err(invalid(format!(
            "invalid mirror: {raw:?} is not a valid URI: missing host"
        )));
    }
    Ok(Mirror {
        url: format!("{}/", raw.trim_end_matches('/')),
        endpoint: Endpoint {
            scheme,
            authority: authority.to_owned(),
            prefix: path.trim_end_matches('/').to_owned(),
            mirror: true,
        },
    })
}

/// One base URL a registry's API is served at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub scheme: &'static str,
    pub authority: String,
    /// A mirror's path prefix (`/prefix`, or empty).
    pub prefix: String,
    pub mirror: bool,
}

impl Endpoint {
    pub fn new(scheme: &'static str, authority: &str) -> Endpoint {
        Endpoint {
            scheme,
            authority: authority.to_owned(),
            prefix: String::new(),
            mirror: false,
        }
    }

    /// `path` starts with `/v2/`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}://{}{}{}",
            self.scheme, self.authority, self.prefix, path
        )
    }
}

/// The endpoints of `domain`, best first: docker.io's mirrors (when `with_mirrors`) then
/// registry-1.docker.io; any other registry over HTTPS, and then over HTTP when insecure.
pub(crate) async fn endpoints(
    domain: &str,
    mirrors: &[Mirror],
    with_mirrors: bool,
    security: &Security,
) -> Vec<Endpoint> {
    if is_docker_hub(domain) {
        let mut out: Vec<Endpoint> = if with_mirrors {
            mirrors.iter().map(|m| m.endpoint.clone()).collect()
        } else {
            Vec::new()
        };
        out.push(Endpoint::new("https", DEFAULT_REGISTRY_HOST));
        return out;
    }
    let mut out = vec![Endpoint::new("https", domain)];
    if security.is_insecure(domain).await {
        out.push(Endpoint::new("http", domain));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(list: &[&str]) -> Security {
        Security::new(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn insecure_registries_are_validated_with_dockers_words() {
        let err = |v: &str| match Security::new(&[v.to_owned()]) {
            Err(e) => e.to_string(),
            Ok(_) => "ok".to_owned(),
        };
        assert_eq!(err("myreg:5000"), "ok");
        assert_eq!(err("http://myreg:5000"), "ok");
        assert_eq!(err("10.0.0.0/8"), "ok");
        assert_eq!(err("[::1]:5000"), "ok");
        assert_eq!(
            err("ftp://myreg"),
            "insecure registry ftp://myreg should not contain '://'"
        );
        assert_eq!(
            err("-myreg"),
            "invalid index name (-myreg). Cannot begin or end with a hyphen"
        );
        assert_eq!(
            err("my_reg"),
            "insecure registry my_reg is not valid: invalid host \"my_reg\""
        );
        assert_eq!(
            err("myreg:99999"),
            "insecure registry myreg:99999 is not valid: invalid port \"99999\""
        );
        // Not a CIDR, so read as a host, as Go's ParseCIDR then validateHostPort do.
        assert_eq!(
            err("10.0.0.0/99"),
            "insecure registry 10.0.0.0/99 is not valid: invalid host \"10.0.0.0/99\""
        );
        assert_eq!(
            err("myreg:x"),
            "insecure registry myreg:x is not valid: invalid host \"myreg\""
        );
        assert_eq!(
            err("10.0.0.1:x"),
            "insecure registry 10.0.0.1:x is not valid: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(err("::1"), "ok");
        assert_eq!(err("[fd00::1]:5000"), "ok");
        let s = sec(&[
            "10.1.2.3/8",
            "10.0.0.0/8",
            "fd00::1/8",
            "myreg:5000",
            "myreg:5000",
        ]);
        let cidrs: Vec<String> = s.cidrs().iter().map(|c| c.to_string()).collect();
        assert_eq!(cidrs, ["10.0.0.0/8", "fd00::/8", "::1/128", "127.0.0.0/8"]);
        assert_eq!(s.hosts(), ["myreg:5000"]);
    }

    #[tokio::test]
    async fn loopback_and_listed_registries_are_insecure() {
        let s = sec(&["myreg:5000", "192.168.0.0/16"]);
        for (authority, want) in [
            ("127.0.0.1:5000", true),
            ("127.8.9.1", true),
            ("[::1]:5000", true),
            ("localhost:5000", true),
            ("myreg:5000", true),
            ("192.168.3.4:443", true),
            ("10.1.1.1:5000", false),
        ] {
            assert_eq!(s.is_insecure(authority).await, want, "{authority}");
        }
        // A name is looked up (not here: tests reach only loopback).
        assert_eq!(s.insecure_now("myreg"), None);
    }

    #[test]
    fn mirrors_are_validated_with_dockers_words() {
        let one = |v: &str| parse_mirrors(&[v.to_owned()]).map_err(|e| e.to_string());
        let m = one("https://mirror.example:5000/prefix/").unwrap();
        assert_eq!(m[0].url, "https://mirror.example:5000/prefix/");
        assert_eq!(
            m[0].endpoint.url("/v2/library/busybox/manifests/latest"),
            "https://mirror.example:5000/prefix/v2/library/busybox/manifests/latest"
        );
        assert_eq!(
            one("mirror.example").unwrap_err(),
            "invalid mirror: no scheme specified for \"mirror.example\": must use either \
             'https://' or 'http://'"
        );
        assert_eq!(
            one("FTP://m").unwrap_err(),
            "invalid mirror: unsupported scheme \"ftp\" in \"ftp://m\": must use either \
             'https://' or 'http://'"
        );
        assert_eq!(
            one("https://m.example/?a=b").unwrap_err(),
            "invalid mirror: query or fragment at end of the URI \"https://m.example/?a=b\""
        );
        assert_eq!(
            one("https://u:p@m.example/x").unwrap_err(),
            "invalid mirror: username/password not allowed in URI \"https://u:xxxxx@m.example/x\""
        );
        let two = parse_mirrors(&["http://a:1".into(), "http://a:1/".into()]).unwrap();
        assert_eq!(two.len(), 1);
    }

    #[tokio::test]
    async fn docker_hub_goes_through_mirrors_first() {
        let s = sec(&[]);
        let mirrors = parse_mirrors(&["http://127.0.0.1:1".into()]).unwrap();
        let got = endpoints("docker.io", &mirrors, true, &s).await;
        let urls: Vec<String> = got.iter().map(|e| e.url("/v2/")).collect();
        assert_eq!(
            urls,
            ["http://127.0.0.1:1/v2/", "https://registry-1.docker.io/v2/"]
        );
        let push = endpoints("docker.io", &mirrors, false, &s).await;
        assert_eq!(push.len(), 1);
        let local = endpoints("127.0.0.1:5000", &mirrors, true, &s).await;
        let urls: Vec<String> = local.iter().map(|e| e.url("/v2/")).collect();
        assert_eq!(
            urls,
            ["https://127.0.0.1:5000/v2/", "http://127.0.0.1:5000/v2/"]
        );
        assert_eq!(host_of("[::1]:5000"), "::1");
        assert_eq!(host_of("reg:5000"), "reg");
        assert_eq!(host_of("reg"), "reg");
    }
}
