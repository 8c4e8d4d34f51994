//! The local driver's options (`docker volume create -o type=… -o device=… -o o=…`), checked
//! and turned into a mount(2) call the way dockerd's local driver does: `type` is the
//! filesystem type, `device` the source, `o` the comma-separated options of mount(8) (flags
//! such as `ro`, `bind`, `nosuid` become mount flags, the rest is the filesystem's data
//! string), and `size` a quota dockerd sets only on XFS project quotas, which Wharf does not
//! build: a size above zero is refused in dockerd's words for a host without quota support.

use std::collections::BTreeMap;

const VALID: [&str; 4] = ["device", "o", "size", "type"];
/// An option and the options it needs, checked in this order (dockerd walks a Go map, so its
/// order is random; this one is fixed so that the same request always gets the same answer).
const MANDATORY: [(&str, &[&str]); 3] = [
    ("device", &["type"]),
    ("o", &["device", "type"]),
    ("type", &["device"]),
];

/// The options of a volume that needs mounting (`type` or `device` given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOpts {
    pub fs_type: String,
    pub device: String,
    pub options: String,
}

/// Checks a create's options in dockerd's order and words (the caller prefixes `create
/// <name>: `). Returns the mount they ask for, if any.
pub fn validate(opts: &BTreeMap<String, String>) -> Result<Option<MountOpts>, String> {
    if opts.is_empty() {
        return Ok(None);
    }
    if let Some(bad) = opts.keys().find(|k| !VALID.contains(&k.as_str())) {
        return Err(format!("invalid option: {bad:?}"));
    }
    if let (Some("cifs"), Some(device)) = (
        opts.get("type").map(String::as_str),
        opts.get("device").filter(|d| !d.is_empty()),
    ) {
        if url_host(device).is_some_and(|h| split_port(h).1.is_some()) {
            return Err("port not allowed in CIFS device URL, include 'port' in 'o='".into());
        }
    }
    if let Some(size) = opts.get("size") {
        if ram_in_bytes(size)? > 0 {
            return Err("quota size requested but no quota support".into());
        }
    }
    for (opt, needs) in MANDATORY {
        if opts.contains_key(opt) {
            if let Some(missing) = needs.iter().find(|n| !opts.contains_key(**n)) {
                return Err(format!("missing required option: {missing:?}"));
            }
        }
    }
    Ok(needs_mount(opts))
}

/// What a stored volume mounts: `Some` when `type` or `device` is set (even empty strings
/// count only when non-empty, as dockerd's `needsMount`).
pub fn needs_mount(opts: &BTreeMap<String, String>) -> Option<MountOpts> {
    let get = |k: &str| opts.get(k).cloned().unwrap_or_default();
    let m = MountOpts {
        fs_type: get("type"),
        device: get("device"),
        options: get("o"),
    };
    (!m.fs_type.is_empty() || !m.device.is_empty()).then_some(m)
}

/// go-units' `RAMInBytes`: a number, an optional space, an optional binary unit letter
/// (k, m, g, t, p) and optional `i`/`b`.
pub fn ram_in_bytes(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size: '{s}'");
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(digits_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.contains("..") {
        return Err(bad());
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars().peekable();
    let mult: u64 = match chars.peek().map(|c| c.to_ascii_lowercase()) {
        Some('k') => 1 << 10,
        Some('m') => 1 << 20,
        Some('g') => 1 << 30,
        Some('t') => 1 << 40,
        Some('p') => 1 << 50,
        _ => 1,
    };
    if mult > 1 {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    // Go truncates the float product to int64.
    Ok((n * mult as f64) as u64)
}

/// The host part of a URL-style device (`//host/share`, `smb://user@host:445/share`), as Go's
/// `url.Parse(...).Host`; `None` when the device has no authority.
fn url_host(device: &str) -> Option<&str> {
    let after_scheme = match device.find("://") {
        Some(i) if is_scheme(&device[..i]) => &device[i + 1..],
        _ => device,
    };
    let auth = after_scheme.strip_prefix("//")?;
    let end = auth.find(['/', '?', '#']).unwrap_or(auth.len());
    let auth = &auth[..end];
    Some(auth.rsplit_once('@').map_or(auth, |(_, h)| h))
}

fn is_scheme(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|x| x.is_ascii_alphanumeric() || matches!(x, '+' | '-' | '.'))
}

/// `host[:port]` or `[v6]:port` into its host and port.
fn split_port(hostport: &str) -> (&str, Option<&str>) {
    if let Some(rest) = hostport.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':').filter(|p| !p.is_empty())),
            None => (hostport, None),
        };
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() => (h, Some(p)),
        Some((h, _)) => (h, None),
        None => (hostport, None),
    }
}

/// The `addr=` value of an `o` string (nfs's server address).
fn addr_option(options: &str) -> Option<&str> {
    options
        .split(',')
        .find_map(|o| o.strip_prefix("addr="))
        .filter(|a| !a.is_empty())
}

/// dockerd resolves a name in nfs's `addr=` (anything but an IPv4 literal) and, for cifs, the
/// host of the device URL before mounting, since the kernel cannot. `resolve` answers a
/// name's address (an IPv4 one first, as Go's resolver for "ip"); the error text is dockerd's.
pub fn resolve_addresses(
    m: &MountOpts,
    resolve: impl Fn(&str) -> std::io::Result<std::net::IpAddr>,
) -> Result<MountOpts, String> {
    let mut out = m.clone();
    let failed =
        |e: std::io::Error| format!("error resolving passed in network volume address: {e}");
    match m.fs_type.as_str() {
        "nfs" => {
            if let Some(addr) = addr_option(&m.options) {
                if addr.parse::<std::net::Ipv4Addr>().is_err() {
                    let ip = resolve(addr).map_err(failed)?;
                    out.options =
                        m.options
                            .replacen(&format!("addr={addr}"), &format!("addr={ip}"), 1);
                }
            }
        }
        "cifs" => {
            if let Some(hostport) = url_host(&m.device) {
                let (host, _) = split_port(hostport);
                if !host.is_empty() && host.parse::<std::net::IpAddr>().is_err() {
                    let ip = resolve(host).map_err(failed)?;
                    let ip = match ip {
                        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                        v4 => v4.to_string(),
                    };
                    out.device = m.device.replacen(host, &ip, 1);
                }
            }
        }
        _ => {}
    }
    Ok(out)
}

/// The system resolver, preferring an IPv4 address as Go's `ResolveIPAddr("ip", …)` does.
pub fn resolve_host(host: &str) -> std::io::Result<std::net::IpAddr> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<std::net::IpAddr> = (host, 0)
        .to_socket_addrs()
        .map_err(|e| std::io::Error::new(e.kind(), format!("lookup {host}: {e}")))?
        .map(|a| a.ip())
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("lookup {host}: no such host"),
            )
        })
}

/// mount(8)'s flag words: (word, clears the flag, flag bits).
const FLAGS: &[(&str, bool, libc::c_ulong)] = &[
    ("defaults", false, 0),
    ("ro", false, libc::MS_RDONLY),
    ("rw", true, libc::MS_RDONLY),
    ("suid", true, libc::MS_NOSUID),
    ("nosuid", false, libc::MS_NOSUID),
    ("dev", true, libc::MS_NODEV),
    ("nodev", false, libc::MS_NODEV),
    ("exec", true, libc::MS_NOEXEC),
    ("noexec", false, libc::MS_NOEXEC),
    ("sync", false, libc::MS_SYNCHRONOUS),
    ("async", true, libc::MS_SYNCHRONOUS),
    ("dirsync", false, libc::MS_DIRSYNC),
    ("remount", false, libc::MS_REMOUNT),
    ("mand", false, libc::MS_MANDLOCK),
    ("nomand", true, libc::MS_MANDLOCK),
    ("atime", true, libc::MS_NOATIME),
    ("noatime", false, libc::MS_NOATIME),
    ("diratime", true, libc::MS_NODIRATIME),
    ("nodiratime", false, libc::MS_NODIRATIME),
    ("bind", false, libc::MS_BIND),
    ("rbind", false, libc::MS_BIND | libc::MS_REC),
    ("unbindable", false, libc::MS_UNBINDABLE),
    ("runbindable", false, libc::MS_UNBINDABLE | libc::MS_REC),
    ("private", false, libc::MS_PRIVATE),
    ("rprivate", false, libc::MS_PRIVATE | libc::MS_REC),
    ("shared", false, libc::MS_SHARED),
    ("rshared", false, libc::MS_SHARED | libc::MS_REC),
    ("slave", false, libc::MS_SLAVE),
    ("rslave", false, libc::MS_SLAVE | libc::MS_REC),
    ("relatime", false, libc::MS_RELATIME),
    ("norelatime", true, libc::MS_RELATIME),
    ("strictatime", false, libc::MS_STRICTATIME),
    ("nostrictatime", true, libc::MS_STRICTATIME),
];

pub const PROPAGATION: libc::c_ulong =
    libc::MS_SHARED | libc::MS_PRIVATE | libc::MS_SLAVE | libc::MS_UNBINDABLE;

/// `o` split into mount flags and the filesystem's data string, as moby's `parseOptions`:
/// a word that is not a flag (`size=64m`, `uid=1000`, `addr=…`) goes to the data.
pub fn parse_flags(options: &str) -> (libc::c_ulong, String) {
    let mut flags: libc::c_ulong = 0;
    let mut data = Vec::new();
    for word in options.split(',') {
        match FLAGS.iter().find(|(w, _, f)| *w == word && *f != 0) {
            Some((_, true, f)) => flags &= !f,
            Some((_, false, f)) => flags |= f,
            None => data.push(word),
        }
    }
    (flags, data.join(","))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_are_checked_in_dockerds_words() {
        let err = |kv: &[(&str, &str)]| validate(&map(kv)).unwrap_err();
        assert_eq!(
            err(&[("x", "1"), ("type", "tmpfs")]),
            r#"invalid option: "x""#
        );
        assert_eq!(
            err(&[("type", "tmpfs")]),
            r#"missing required option: "device""#
        );
        assert_eq!(
            err(&[("device", "tmpfs")]),
            r#"missing required option: "type""#
        );
        assert_eq!(
            err(&[("o", "size=1m")]),
            r#"missing required option: "device""#
        );
        assert_eq!(
            err(&[("size", "10m")]),
            "quota size requested but no quota support"
        );
        assert_eq!(err(&[("size", "lots")]), "invalid size: 'lots'");
        assert_eq!(
            err(&[("type", "cifs"), ("device", "//srv:445/share")]),
            "port not allowed in CIFS device URL, include 'port' in 'o='"
        );
        assert_eq!(validate(&map(&[])).unwrap(), None);
        // A zero quota is no quota: accepted, nothing to mount.
        assert_eq!(validate(&map(&[("size", "0")])).unwrap(), None);
        let m = validate(&map(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=64m,uid=1000"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            (m.fs_type.as_str(), m.device.as_str(), m.options.as_str()),
            ("tmpfs", "tmpfs", "size=64m,uid=1000")
        );
        validate(&map(&[("type", "cifs"), ("device", "//srv/share")])).unwrap();
    }

    #[test]
    fn sizes_parse_like_go_units() {
        assert_eq!(ram_in_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("1.5 GiB").unwrap(), 3 << 29);
        assert_eq!(ram_in_bytes("10").unwrap(), 10);
        assert_eq!(ram_in_bytes("2kb").unwrap(), 2048);
        for bad in ["", "m", "1x", "1.", ".5", "1mm", "-1"] {
            assert!(ram_in_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_and_data_split_like_mount8() {
        let (f, d) = parse_flags("size=64m,uid=1000");
        assert_eq!((f, d.as_str()), (0, "size=64m,uid=1000"));
        let (f, d) = parse_flags("bind,ro,rprivate");
        assert_eq!(
            f,
            libc::MS_BIND | libc::MS_RDONLY | libc::MS_PRIVATE | libc::MS_REC
        );
        assert_eq!(d, "");
        let (f, _) = parse_flags("ro,rw,nosuid");
        assert_eq!(f, libc::MS_NOSUID);
        let (f, d) = parse_flags("defaults,addr=10.0.0.1,nfsvers=4");
        // moby hands `defaults` (flag 0) to the filesystem too.
        assert_eq!((f, d.as_str()), (0, "defaults,addr=10.0.0.1,nfsvers=4"));
    }

    #[test]
    fn network_addresses_are_resolved_before_mounting_as_dockerd_does() {
        let fake = |h: &str| -> std::io::Result<std::net::IpAddr> {
            match h {
                "nfs.example" => Ok("192.0.2.7".parse().unwrap()),
                "v6.example" => Ok("2001:db8::1".parse().unwrap()),
                _ => Err(std::io::Error::other(format!("lookup {h}: no such host"))),
            }
        };
        let m = |t: &str, d: &str, o: &str| MountOpts {
            fs_type: t.into(),
            device: d.into(),
            options: o.into(),
        };
        let r = resolve_addresses(&m("nfs", ":/export", "addr=nfs.example,rw"), fake).unwrap();
        assert_eq!(r.options, "addr=192.0.2.7,rw");
        // An IPv4 literal is left as is; other types are not touched.
        let same = m("nfs", ":/export", "addr=10.1.2.3");
        assert_eq!(resolve_addresses(&same, fake).unwrap(), same);
        let tmp = m("tmpfs", "tmpfs", "addr=nfs.example");
        assert_eq!(resolve_addresses(&tmp, fake).unwrap(), tmp);
        let r = resolve_addresses(&m("cifs", "//v6.example/share", ""), fake).unwrap();
        assert_eq!(r.device, "//[2001:db8::1]/share");
        let e = resolve_addresses(&m("nfs", ":/x", "addr=nowhere.invalid"), fake).unwrap_err();
        assert_eq!(
            e,
            "error resolving passed in network volume address: lookup nowhere.invalid: no such host"
        );
        // The system resolver knows localhost.
        assert!(resolve_host("localhost").unwrap().is_loopback());
    }
}
