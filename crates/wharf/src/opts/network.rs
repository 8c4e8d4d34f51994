//! `--network` (plain and `name=..,alias=..,ip=..`), the per-network flags (`--network-alias`,
//! `--link`, `--ip`, `--ip6`, `--mac-address`, `--link-local-ip`) as docker's
//! `parseNetworkOpts` turns them into `NetworkingConfig.EndpointsConfig`, and `--platform`.

use super::values::{self as v, go_quoted};
use super::BadFlag;
use serde_json::{json, Map, Value};

/// The flags that shape the container's network attachments.
pub struct NetworkFlags<'a> {
    pub networks: &'a [String],
    pub aliases: &'a [String],
    pub links: &'a [String],
    pub ip: &'a Option<String>,
    pub ip6: &'a Option<String>,
    pub mac: &'a Option<String>,
    pub link_local: &'a [String],
}

/// One `--network` value: a name, or docker's advanced `name=..,alias=..,ip=..` form.
#[derive(Debug, Default, Clone)]
struct Attachment {
    target: String,
    aliases: Vec<String>,
    links: Vec<String>,
    ipv4: String,
    ipv6: String,
    mac: String,
    link_local: Vec<String>,
    driver_opts: Map<String, Value>,
    gw_priority: i64,
}

fn parse_attachment(s: &str) -> Result<Attachment, BadFlag> {
    if !s.contains('=') {
        return Ok(Attachment {
            target: s.to_string(),
            ..Default::default()
        });
    }
    let bad = |r: String| BadFlag::value("--network", s, r);
    let mut a = Attachment::default();
    for field in v::csv_fields(s).map_err(bad)? {
        let Some((key, val)) = field.split_once('=') else {
            return Err(bad(format!(
                "invalid field '{field}' must be a key=value pair"
            )));
        };
        match key.to_ascii_lowercase().as_str() {
            "name" => a.target = val.to_string(),
            "alias" => a.aliases.push(val.to_string()),
            "ip" => a.ipv4 = val.to_string(),
            "ip6" => a.ipv6 = val.to_string(),
            "mac-address" => a.mac = val.to_string(),
            "link-local-ip" => a.link_local.push(val.to_string()),
            "driver-opt" => {
                let (k, dv) = val.split_once('=').unwrap_or((val, ""));
                a.driver_opts.insert(k.to_string(), json!(dv));
            }
            "gw-priority" => {
                a.gw_priority = v::parse_i64(val).map_err(bad)?;
            }
            _ => return Err(bad(format!("invalid field key {key}"))),
        }
    }
    Ok(a)
}

/// docker's `IsUserDefined`: anything but the built-in modes.
fn user_defined(mode: &str) -> bool {
    !matches!(mode, "default" | "bridge" | "host" | "none") && !mode.starts_with("container:")
}

fn endpoint_settings(a: &Attachment) -> Result<Value, BadFlag> {
    if a.target.trim().is_empty() {
        return Err(BadFlag::Parse("no name set for network".into()));
    }
    if !user_defined(&a.target) {
        if !a.aliases.is_empty() {
            return Err(BadFlag::Parse(
                "network-scoped aliases are only supported for user-defined networks".into(),
            ));
        }
        if !a.links.is_empty() {
            return Err(BadFlag::Parse(
                "links are only supported for user-defined networks".into(),
            ));
        }
    }
    let ipam = (!a.ipv4.is_empty() || !a.ipv6.is_empty() || !a.link_local.is_empty()).then(|| {
        let mut m = Map::new();
        if !a.ipv4.is_empty() {
            m.insert("IPv4Address".into(), json!(a.ipv4));
        }
        if !a.ipv6.is_empty() {
            m.insert("IPv6Address".into(), json!(a.ipv6));
        }
        if !a.link_local.is_empty() {
            m.insert("LinkLocalIPs".into(), json!(a.link_local));
        }
        Value::Object(m)
    });
    if !a.mac.is_empty() && !v::valid_mac(&a.mac) {
        return Err(BadFlag::Parse(format!(
            "{} is not a valid mac address",
            a.mac
        )));
    }
    Ok(json!({
        "IPAMConfig": ipam,
        "Links": (!a.links.is_empty()).then_some(&a.links),
        "Aliases": (!a.aliases.is_empty()).then_some(&a.aliases),
        "DriverOpts": (!a.driver_opts.is_empty()).then_some(&a.driver_opts),
        "GwPriority": a.gw_priority,
        "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "MacAddress": a.mac, "DNSNames": null,
    }))
}

/// docker's `parseNetworkOpts`: the endpoint settings per network; the "old" flags
/// (`--network-alias`, `--link`, `--ip`, ...) apply to the first network.
pub fn networking(h: &NetworkFlags) -> Result<(String, Map<String, Value>), BadFlag> {
    let mut nets = h
        .networks
        .iter()
        .map(|n| parse_attachment(n))
        .collect::<Result<Vec<_>, _>>()?;
    let given = nets.len();
    if nets.is_empty() {
        nets.push(Attachment {
            target: "default".into(),
            ..Default::default()
        });
    }
    let first = &mut nets[0];
    let conflict = |what: &str| {
        Err(BadFlag::Parse(format!(
            "conflicting options: cannot specify both {what}"
        )))
    };
    if !first.aliases.is_empty() && !h.aliases.is_empty() {
        return conflict("--network-alias and per-network alias");
    }
    if !first.ipv4.is_empty() && h.ip.is_some() {
        return conflict("--ip and per-network IPv4 address");
    }
    if !first.ipv6.is_empty() && h.ip6.is_some() {
        return conflict("--ip6 and per-network IPv6 address");
    }
    if !first.mac.is_empty() && h.mac.is_some() {
        return conflict("--mac-address and per-network MAC address");
    }
    if !first.link_local.is_empty() && !h.link_local.is_empty() {
        return conflict("--link-local-ip and per-network link-local IP addresses");
    }
    if !h.aliases.is_empty() {
        first.aliases = h.aliases.to_vec();
    }
    if user_defined(&first.target) && !h.links.is_empty() {
        first.links = h.links.to_vec();
    }
    if let Some(ip) = h.ip.clone().filter(|s| !s.is_empty()) {
        first.ipv4 = ip;
    }
    if let Some(ip) = h.ip6.clone().filter(|s| !s.is_empty()) {
        first.ipv6 = ip;
    }
    if let Some(mac) = h.mac.clone().filter(|s| !s.is_empty()) {
        first.mac = mac;
    }
    if !h.link_local.is_empty() {
        first.link_local = h.link_local.to_vec();
    }
    let mode = nets[0].target.clone();
    let mut endpoints = Map::new();
    let (mut user, mut builtin) = (false, false);
    for (i, a) in nets.iter().enumerate() {
        if user_defined(&a.target) {
            user = true;
        } else {
            builtin = true;
        }
        let ep = endpoint_settings(a)?;
        if endpoints.contains_key(&a.target) {
            return Err(BadFlag::Parse(format!(
                "network {} is specified multiple times",
                go_quoted(&a.target)
            )));
        }
        // One plain network without options: docker leaves the endpoint out.
        let empty = a.aliases.is_empty()
            && a.links.is_empty()
            && a.ipv4.is_empty()
            && a.ipv6.is_empty()
            && a.mac.is_empty()
            && a.link_local.is_empty()
            && a.driver_opts.is_empty()
            && a.gw_priority == 0;
        if i == 0 && given == 1 && empty {
            continue;
        }
        endpoints.insert(a.target.clone(), ep);
    }
    if user && builtin {
        return Err(BadFlag::Parse("conflicting options: cannot attach both user-defined and non-user-defined network-modes".into()));
    }
    Ok((mode, endpoints))
}

/// docker's `--platform` normalisation (`containerd/platforms`), for the query parameter.
pub fn platform_query(p: &str) -> Result<String, BadFlag> {
    let parts: Vec<String> = p.split('/').map(str::to_ascii_lowercase).collect();
    let arch = |a: &str| -> (String, String) {
        match a {
            "x86_64" | "x86-64" | "amd64" => ("amd64".into(), String::new()),
            "aarch64" | "arm64" => ("arm64".into(), String::new()),
            "armhf" => ("arm".into(), "v7".into()),
            "armel" => ("arm".into(), "v6".into()),
            "i386" | "386" => ("386".into(), String::new()),
            other => (other.to_string(), String::new()),
        }
    };
    let bad = || {
        BadFlag::Parse(format!(
            "error parsing specified platform: {}: unknown operating system or architecture: invalid argument",
            go_quoted(p)
        ))
    };
    let (os, a, var) = match parts.as_slice() {
        [one] if matches!(one.as_str(), "linux" | "windows" | "darwin" | "freebsd") => {
            (one.clone(), "amd64".to_string(), String::new())
        }
        [one] => {
            let (a, var) = arch(one);
            ("linux".to_string(), a, var)
        }
        [os, a] => {
            let (a, var) = arch(a);
            (os.clone(), a, var)
        }
        [os, a, var] => (os.clone(), arch(a).0, var.clone()),
        _ => return Err(bad()),
    };
    if os.is_empty() || a.is_empty() {
        return Err(bad());
    }
    Ok([os, a, var]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/"))
}
