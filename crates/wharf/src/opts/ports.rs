//! `-p/--publish` and `--expose` as docker's `nat.ParsePortSpecs` reads them:
//! `[ip:][hostPort:]containerPort[/proto]`, ranges allowed, plus the long
//! `published=..,target=..,protocol=..` form.

use serde_json::{json, Map, Value};

/// `ExposedPorts` and `PortBindings`, keyed `80/tcp`.
#[derive(Debug, Default)]
pub struct Ports {
    pub exposed: Map<String, Value>,
    pub bindings: Map<String, Value>,
}

fn port_range(s: &str) -> Result<(u64, u64), ()> {
    let parse = |p: &str| p.parse::<u16>().map(u64::from).map_err(|_| ());
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if b < a {
                return Err(());
            }
            Ok((a, b))
        }
        None => {
            let a = parse(s)?;
            Ok((a, a))
        }
    }
}

fn split_proto(s: &str) -> (&str, &str) {
    match s.split_once('/') {
        Some((port, proto)) if !proto.is_empty() => (port, proto),
        Some((port, _)) => (port, "tcp"),
        None => (s, "tcp"),
    }
}

/// `ip:host:container`, with `[v6]` addresses, split as go-connections does.
fn split_parts(raw: &str) -> (String, String, String) {
    let parts: Vec<&str> = raw.split(':').collect();
    match parts.len() {
        1 => (String::new(), String::new(), parts[0].to_string()),
        2 => (String::new(), parts[0].to_string(), parts[1].to_string()),
        3 => (
            parts[0].to_string(),
            parts[1].to_string(),
            parts[2].to_string(),
        ),
        n => (
            parts[..n - 2].join(":"),
            parts[n - 2].to_string(),
            parts[n - 1].to_string(),
        ),
    }
}

/// The long syntax (`published=8080,target=80,protocol=udp`) in the short notation.
fn standard_notation(spec: &str) -> Result<String, String> {
    if !spec.contains('=') {
        return Ok(spec.to_string());
    }
    let mut params = std::collections::HashMap::from([("protocol", "tcp".to_string())]);
    let mut known = std::collections::HashMap::new();
    for param in spec.split(',') {
        match param.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                known.insert(k.to_string(), v.to_string());
            }
            _ => {
                return Err(format!(
                    "invalid publish opts format (should be name=value but got '{param}')"
                ))
            }
        }
    }
    for k in ["published", "target", "protocol"] {
        if let Some(v) = known.get(k) {
            params.insert(k, v.clone());
        }
    }
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    Ok(format!(
        "{}:{}/{}",
        get("published"),
        get("target"),
        get("protocol")
    ))
}

impl Ports {
    /// Adds one `-p` value.
    pub fn publish(&mut self, spec: &str) -> Result<(), String> {
        let spec = standard_notation(spec)?;
        let (raw_ip, host_port, container) = split_parts(&spec);
        let (container, proto) = split_proto(&container);
        let mut ip = raw_ip.clone();
        if ip.len() > 2 && ip.starts_with('[') && ip.ends_with(']') {
            ip = ip[1..ip.len() - 1].to_string();
        }
        if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("invalid IP address: {raw_ip}"));
        }
        if container.is_empty() {
            return Err(format!("no port specified: {spec}<empty>"));
        }
        let (start, end) =
            port_range(container).map_err(|_| format!("Invalid containerPort: {container}"))?;
        let (hstart, hend) = if host_port.is_empty() {
            (0, 0)
        } else {
            port_range(&host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?
        };
        if !host_port.is_empty() && (end - start) != (hend - hstart) && end != start {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container} and {host_port}"
            ));
        }
        if !matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!("invalid proto: {proto}"));
        }
        for i in 0..=(end - start) {
            let key = format!("{}/{}", start + i, proto.to_ascii_lowercase());
            let host = if host_port.is_empty() {
                String::new()
            } else if end == start && hend != hstart {
                format!("{hstart}-{hend}")
            } else {
                (hstart + i).to_string()
            };
            self.exposed.insert(key.clone(), json!({}));
            let list = self
                .bindings
                .entry(key)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = list {
                a.push(json!({"HostIp": ip, "HostPort": host}));
            }
        }
        Ok(())
    }

    /// Adds one `--expose` value (`port[/proto]` or `start-end[/proto]`).
    pub fn expose(&mut self, spec: &str) -> Result<(), String> {
        if spec.contains(':') {
            return Err(format!("invalid port format for --expose: {spec}"));
        }
        let (port, proto) = split_proto(spec);
        let (start, end) = port_range(port).map_err(|_| {
            format!("invalid range format for --expose: {spec}, error: invalid syntax")
        })?;
        for p in start..=end {
            self.exposed
                .entry(format!("{p}/{}", proto.to_ascii_lowercase()))
                .or_insert_with(|| json!({}));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_matches_docker() {
        let mut p = Ports::default();
        for s in [
            "8080:80",
            "127.0.0.1:9000:9000/udp",
            "7000-7001:7000-7001",
            "5000",
        ] {
            p.publish(s).unwrap();
        }
        p.expose("3000").unwrap();
        p.expose("4000-4001/udp").unwrap();
        assert_eq!(
            Value::Object(p.bindings),
            json!({"5000/tcp": [{"HostIp": "", "HostPort": ""}],
                   "7000/tcp": [{"HostIp": "", "HostPort": "7000"}],
                   "7001/tcp": [{"HostIp": "", "HostPort": "7001"}],
                   "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                   "9000/udp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}]})
        );
        let mut keys: Vec<_> = p.exposed.keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "3000/tcp", "4000/udp", "4001/udp", "5000/tcp", "7000/tcp", "7001/tcp", "80/tcp",
                "9000/udp"
            ]
        );
        let mut p = Ports::default();
        assert_eq!(
            p.publish("80:abc").unwrap_err(),
            "Invalid containerPort: abc"
        );
        assert_eq!(
            p.expose("1:2").unwrap_err(),
            "invalid port format for --expose: 1:2"
        );
        p.publish("published=8080,target=80,protocol=udp").unwrap();
        assert_eq!(
            p.bindings["80/udp"],
            json!([{"HostIp": "", "HostPort": "8080"}])
        );
    }
}
