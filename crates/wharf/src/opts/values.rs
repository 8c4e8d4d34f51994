//! Docker's flag value syntaxes (sizes, CPUs, integers, ulimits, device limits, GPUs, hosts,
//! sysctls, capabilities), each returning docker's own words when the value is bad.

use serde_json::{json, Map, Value};

/// Go's `strconv` wording for a bad integer (`strconv.ParseInt: parsing "x": invalid syntax`).
fn go_int_error(func: &str, v: &str, range: bool) -> String {
    let why = if range {
        "value out of range"
    } else {
        "invalid syntax"
    };
    format!("strconv.{func}: parsing {}: {why}", go_quoted(v))
}

/// Go's `%q` of a string (enough for flag values: quotes and backslashes escaped).
pub fn go_quoted(v: &str) -> String {
    let mut s = String::from('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Splits Go's integer prefixes (`0x`, `0o`, `0b`, a leading `0` is octal) as `ParseInt(s, 0, _)`.
fn radix_digits(s: &str) -> (u32, &str) {
    let lower = s.get(..2).map(str::to_ascii_lowercase);
    match lower.as_deref() {
        Some("0x") => (16, &s[2..]),
        Some("0o") => (8, &s[2..]),
        Some("0b") => (2, &s[2..]),
        _ if s.len() > 1 && s.starts_with('0') => (8, &s[1..]),
        _ => (10, s),
    }
}

/// pflag's `Int64`/`Int` flag (`strconv.ParseInt(s, 0, 64)`).
pub fn parse_i64(v: &str) -> Result<i64, String> {
    let (neg, body) = match v.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let (radix, digits) = radix_digits(body);
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(go_int_error("ParseInt", v, false));
    }
    let signed = if neg {
        format!("-{digits}")
    } else {
        digits.to_string()
    };
    i64::from_str_radix(&signed, radix).map_err(|_| go_int_error("ParseInt", v, true))
}

/// pflag's `Uint16`/`Uint64` flags (`strconv.ParseUint(s, 0, bits)`).
pub fn parse_uint(v: &str, max: u64) -> Result<u64, String> {
    let (radix, digits) = radix_digits(v);
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(go_int_error("ParseUint", v, false));
    }
    match u64::from_str_radix(digits, radix) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(go_int_error("ParseUint", v, true)),
    }
}

/// `strconv.ParseInt(s, 10, 64)` as go-units and the throttle parsers call it.
fn parse_decimal_i64(v: &str) -> Result<i64, String> {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(go_int_error("ParseInt", v, false));
    }
    v.parse::<i64>()
        .map_err(|_| go_int_error("ParseInt", v, true))
}

/// go-units' `RAMInBytes` (binary units: `16m` = 16 MiB) or `FromHumanSize` (decimal).
pub fn parse_size(v: &str, binary: bool) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{v}'");
    let Some(sep) = v.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(invalid());
    };
    let (num, sfx) = if v.as_bytes()[sep] == b' ' {
        (&v[..sep], &v[sep + 1..])
    } else {
        (&v[..=sep], &v[sep + 1..])
    };
    let size: f64 = num.parse().map_err(|_| {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quoted(num)
        )
    })?;
    if size < 0.0 {
        return Err(invalid());
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || format!("invalid suffix: '{}'", sfx.to_ascii_lowercase());
    if sfx.len() > 3 {
        return Err(format!("invalid suffix: '{sfx}'"));
    }
    let sfx_l = sfx.to_ascii_lowercase();
    let b = sfx_l.as_bytes();
    if b[0] == b'b' {
        return if b.len() > 1 {
            Err(bad())
        } else {
            Ok(size as i64)
        };
    }
    let base: f64 = if binary { 1024.0 } else { 1000.0 };
    let exp = match b[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return Err(bad()),
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &sfx_l[1..] != "ib") {
        return Err(bad());
    }
    Ok((size * base.powi(exp)) as i64)
}

/// `--memory-swap`: a size, or `-1` for unlimited swap.
pub fn parse_swap(v: &str) -> Result<i64, String> {
    if v == "-1" {
        return Ok(-1);
    }
    parse_size(v, true)
}

/// `--cpus` as nano CPUs: an exact decimal or fraction (`1.5`, `3/2`), docker's `ParseCPUs`.
pub fn parse_cpus(v: &str) -> Result<i64, String> {
    let not_rational = || format!("failed to parse {v} as a rational number");
    let (num, den) = match v.split_once('/') {
        Some((n, d)) => {
            let n: i128 = n.parse().map_err(|_| not_rational())?;
            let d: i128 = d.parse().map_err(|_| not_rational())?;
            if d == 0 {
                return Err(not_rational());
            }
            (n.checked_mul(1_000_000_000).ok_or_else(not_rational)?, d)
        }
        None => {
            let (neg, body) = match v.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, v.strip_prefix('+').unwrap_or(v)),
            };
            let (int, frac) = body.split_once('.').unwrap_or((body, ""));
            let ok = |s: &str| s.chars().all(|c| c.is_ascii_digit());
            if (int.is_empty() && frac.is_empty()) || !ok(int) || !ok(frac) {
                return Err(not_rational());
            }
            let digits = format!("{int}{frac}");
            let n: i128 = digits.parse().map_err(|_| not_rational())?;
            let den = 10i128
                .checked_pow(frac.len() as u32)
                .ok_or_else(not_rational)?;
            let n = if neg { -n } else { n };
            (n.checked_mul(1_000_000_000).ok_or_else(not_rational)?, den)
        }
    };
    if num % den != 0 {
        return Err("value is too precise".to_string());
    }
    i64::try_from(num / den).map_err(|_| not_rational())
}

/// `--ulimit name=soft[:hard]` (go-units' `ParseUlimit`).
pub fn parse_ulimit(v: &str) -> Result<(String, i64, i64), String> {
    let Some((name, limits)) = v.split_once('=') else {
        return Err(format!("invalid ulimit argument: {v}"));
    };
    const NAMES: &[&str] = &[
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    if !NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let parts: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [s] => {
            let s = parse_decimal_i64(s)?;
            (s, s)
        }
        [s, h] => {
            let h = parse_decimal_i64(h)?;
            (parse_decimal_i64(s)?, h)
        }
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ))
        }
    };
    if hard != -1 {
        if soft == -1 {
            return Err(format!("ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: {hard}"));
        }
        if soft > hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
    }
    Ok((name.to_string(), soft, hard))
}

fn device_and_value(v: &str) -> Result<(&str, &str), String> {
    match v.split_once(':') {
        Some((k, val)) if !k.is_empty() => {
            if !k.starts_with("/dev/") {
                return Err(format!("bad format for device path: {v}"));
            }
            Ok((k, val))
        }
        _ => Err(format!("bad format: {v}")),
    }
}

/// `--device-read-bps /dev/sda:1mb` → `{"Path","Rate"}`.
pub fn parse_throttle_bps(v: &str) -> Result<Value, String> {
    let (path, rate) = device_and_value(v)?;
    let rate = parse_size(rate, true).map_err(|_| {
        format!("invalid rate for device: {v}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb")
    })?;
    Ok(json!({"Path": path, "Rate": rate}))
}

/// `--device-read-iops /dev/sda:100` → `{"Path","Rate"}`.
pub fn parse_throttle_iops(v: &str) -> Result<Value, String> {
    let (path, rate) = device_and_value(v)?;
    let rate = rate.parse::<u64>().map_err(|_| {
        format!("invalid rate for device: {v}. The correct format is <device-path>:<number>. Number must be a positive integer")
    })?;
    Ok(json!({"Path": path, "Rate": rate}))
}

/// `--blkio-weight-device /dev/sda:200` → `{"Path","Weight"}` (10..=1000, or 0).
pub fn parse_weight_device(v: &str) -> Result<Value, String> {
    let (path, weight) = device_and_value(v)?;
    let bad = || format!("invalid weight for device: {v}");
    let w = weight.parse::<u16>().map_err(|_| bad())?;
    if w > 0 && !(10..=1000).contains(&w) {
        return Err(bad());
    }
    Ok(json!({"Path": path, "Weight": w}))
}

/// One CSV record as Go's `encoding/csv` reads it (quotes allowed around fields).
pub fn csv_fields(v: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = v.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            '"' => {
                return Err(format!(
                    "parse error on line 1, column {}: bare \" in non-quoted-field",
                    fields.iter().map(|f: &String| f.len() + 1).sum::<usize>() + cur.len() + 1
                ))
            }
            ',' => {
                fields.push(std::mem::take(&mut cur));
                at_start = true;
            }
            c => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("extraneous or missing \" in quoted-field".to_string());
    }
    fields.push(cur);
    Ok(fields)
}

/// `key=value` strings as a map (docker's `ConvertKVStringsToMap`: a bare key maps to "").
pub fn kv_map(items: &[String]) -> Map<String, Value> {
    let mut m = Map::new();
    for item in items {
        let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    m
}

fn gpu_count(s: &str) -> Result<i64, String> {
    if s == "all" {
        return Ok(-1);
    }
    s.parse::<i64>().map_err(|_| {
        format!("invalid count ({s}): value must be either \"all\" or an integer: invalid syntax")
    })
}

/// `--gpus all|N|device=..,capabilities=..,driver=..,options=..` → one `DeviceRequest`.
pub fn parse_gpus(v: &str) -> Result<Value, String> {
    let fields = csv_fields(v)?;
    let mut seen = std::collections::HashSet::new();
    let mut driver = String::new();
    let mut count: Option<i64> = None;
    let mut ids: Option<Vec<String>> = None;
    let mut caps: Option<Vec<String>> = None;
    let mut options = Map::new();
    for field in &fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field.as_str(), None),
        };
        if !seen.insert(key.to_string()) {
            return Err(format!(
                "gpu request key '{key}' can be specified only once"
            ));
        }
        let Some(val) = val else {
            seen.insert("count".to_string());
            count = Some(gpu_count(key)?);
            continue;
        };
        match key {
            "driver" => driver = val.to_string(),
            "count" => count = Some(gpu_count(val)?),
            "device" => ids = Some(val.split(',').map(str::to_string).collect()),
            "capabilities" => {
                let mut c: Vec<String> = val.split(',').map(str::to_string).collect();
                c.push("gpu".to_string());
                caps = Some(c);
            }
            "options" => {
                let opts =
                    csv_fields(val).map_err(|e| format!("failed to read gpu options: {e}"))?;
                options = kv_map(&opts);
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    let count = match count {
        Some(c) => c,
        None if ids.is_none() => 1,
        None => 0,
    };
    Ok(json!({
        "Driver": driver,
        "Count": count,
        "DeviceIDs": ids,
        "Capabilities": [caps.unwrap_or_else(|| vec!["gpu".to_string()])],
        "Options": options,
    }))
}

fn valid_ip(v: &str) -> bool {
    v.parse::<std::net::IpAddr>().is_ok()
}

/// `--add-host name:ip` or `name=ip` (IPv6 may be bracketed); sent as `name:ip`.
pub fn parse_extra_host(v: &str) -> Result<String, String> {
    let (k, ip) = v
        .split_once('=')
        .or_else(|| v.split_once(':'))
        .filter(|(k, _)| !k.is_empty() && !k.contains(':'))
        .ok_or_else(|| format!("bad format for add-host: {}", go_quoted(v)))?;
    if ip != "host-gateway" {
        let bare = if ip.len() > 2 && ip.starts_with('[') && ip.ends_with(']') {
            &ip[1..ip.len() - 1]
        } else {
            ip
        };
        if !valid_ip(bare) {
            return Err(format!(
                "invalid IP address in add-host: {}",
                go_quoted(bare)
            ));
        }
        return Ok(format!("{k}:{bare}"));
    }
    Ok(format!("{k}:{ip}"))
}

/// `--dns`: an IP address (docker's `ValidateIPAddress`).
pub fn parse_ip(v: &str) -> Result<String, String> {
    let t = v.trim();
    t.parse::<std::net::IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| format!("IP address is not correctly formatted: {v}"))
}

/// `--sysctl`: only namespaced sysctls (docker's `ValidateSysctl`).
pub fn validate_sysctl(v: &str) -> Result<(), String> {
    const EXACT: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let not_allowed = || format!("sysctl '{v}' is not allowed");
    let (k, _) = v.split_once('=').ok_or_else(not_allowed)?;
    if k.is_empty() {
        return Err(not_allowed());
    }
    if EXACT.contains(&k) || k.starts_with("net.") || k.starts_with("fs.mqueue.") {
        Ok(())
    } else {
        Err(not_allowed())
    }
}

/// A MAC address as Go's `net.ParseMAC` accepts it (6, 8 or 20 octets, `:` or `-`).
pub fn valid_mac(v: &str) -> bool {
    let sep = if v.contains('-') { '-' } else { ':' };
    let parts: Vec<&str> = v.split(sep).collect();
    matches!(parts.len(), 6 | 8 | 20)
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `--device-cgroup-rule 'c 1:3 mr'` (docker's regexp `^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`).
pub fn validate_device_cgroup_rule(v: &str) -> Result<(), String> {
    let bad = || format!("invalid device cgroup format '{v}'");
    let parts: Vec<&str> = v.split(' ').collect();
    let [kind, nums, mode] = parts.as_slice() else {
        return Err(bad());
    };
    let num_ok = |s: &str| s == "*" || (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit()));
    let nums_ok = nums
        .split_once(':')
        .is_some_and(|(a, b)| num_ok(a) && num_ok(b));
    let mode_ok = (1..=3).contains(&mode.len()) && mode.chars().all(|c| "rwm".contains(c));
    if matches!(*kind, "a" | "b" | "c") && nums_ok && mode_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// docker's `validDeviceMode`: each of r, w, m at most once.
fn valid_device_mode(mode: &str) -> bool {
    !mode.is_empty()
        && mode.chars().all(|c| "rwm".contains(c))
        && mode.chars().collect::<std::collections::HashSet<_>>().len() == mode.len()
}

/// `--device host[:container][:mode]` → `{"PathOnHost","PathInContainer","CgroupPermissions"}`.
pub fn parse_device(v: &str) -> Result<Value, String> {
    if v.matches(':').count() > 2 || v.starts_with(':') || v.is_empty() {
        return Err(format!("bad format for path: {v}"));
    }
    let parts: Vec<&str> = v.splitn(3, ':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [s] => (*s, *s, "rwm"),
        [s, x] if valid_device_mode(x) => (*s, *s, *x),
        [s, d] => (*s, *d, "rwm"),
        [s, d, m] => {
            if !valid_device_mode(m) {
                return Err(format!("bad mode specified: {m}"));
            }
            (*s, *d, *m)
        }
        _ => return Err(format!("bad format for path: {v}")),
    };
    if !dst.starts_with('/') {
        return Err(format!("{dst} is not an absolute path"));
    }
    let clean = |p: &str| clean_path(p);
    let (src, dst) = if parts.len() == 1 || (parts.len() == 2 && dst == src) {
        (clean(src), clean(dst))
    } else if parts.len() == 2 {
        (src.to_string(), clean(dst))
    } else {
        (src.to_string(), dst.to_string())
    };
    Ok(json!({"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": mode}))
}

/// Go's `path.Clean` for absolute and relative slash paths.
pub fn clean_path(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|s| *s != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// docker's capability spelling: upper case, `CAP_` prefix (except `ALL`/`RESET`), unique,
/// sorted. `None` when no capability was given, as Go sends `null`.
pub fn normalize_caps(caps: &[String]) -> Option<Vec<String>> {
    if caps.is_empty() {
        return None;
    }
    let mut out: Vec<String> = caps
        .iter()
        .map(|c| {
            let c = c.trim().to_ascii_uppercase();
            if c == "ALL" || c == "RESET" || c.starts_with("CAP_") {
                c
            } else {
                format!("CAP_{c}")
            }
        })
        .collect();
    out.sort();
    out.dedup();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_go_units() {
        assert_eq!(parse_size("16m", true), Ok(16 << 20));
        assert_eq!(parse_size("1.5g", true), Ok(1536 << 20));
        assert_eq!(parse_size("2MiB", true), Ok(2 << 20));
        assert_eq!(parse_size("1024", true), Ok(1024));
        assert_eq!(parse_size("10b", true), Ok(10));
        assert_eq!(parse_size("1k", false), Ok(1000));
        assert_eq!(parse_size("abc", true), Err("invalid size: 'abc'".into()));
        assert_eq!(parse_size("-1", true), Err("invalid size: '-1'".into()));
        assert_eq!(parse_size("1x", true), Err("invalid suffix: 'x'".into()));
        assert_eq!(parse_swap("-1"), Ok(-1));
    }

    #[test]
    fn cpus_are_exact_rationals() {
        assert_eq!(parse_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("0.001"), Ok(1_000_000));
        assert_eq!(parse_cpus("3/2"), Ok(1_500_000_000));
        assert_eq!(
            parse_cpus("abc"),
            Err("failed to parse abc as a rational number".into())
        );
        assert_eq!(
            parse_cpus("0.0000000001"),
            Err("value is too precise".into())
        );
        // Too large for the arithmetic: an error, never an overflow.
        assert!(parse_cpus("99999999999999999999999999999999999999").is_err());
        assert!(parse_cpus("99999999999999999999999999999999999999/1").is_err());
    }

    #[test]
    fn integers_use_strconv_words() {
        assert_eq!(parse_i64("-1"), Ok(-1));
        assert_eq!(parse_i64("0x10"), Ok(16));
        assert_eq!(
            parse_i64("x"),
            Err("strconv.ParseInt: parsing \"x\": invalid syntax".into())
        );
        assert_eq!(
            parse_uint("70000", u16::MAX as u64),
            Err("strconv.ParseUint: parsing \"70000\": value out of range".into())
        );
    }

    #[test]
    fn ulimits_devices_hosts() {
        assert_eq!(
            parse_ulimit("nofile=1024:2048"),
            Ok(("nofile".into(), 1024, 2048))
        );
        assert_eq!(parse_ulimit("nproc=100"), Ok(("nproc".into(), 100, 100)));
        assert_eq!(
            parse_ulimit("nofile"),
            Err("invalid ulimit argument: nofile".into())
        );
        assert_eq!(
            parse_ulimit("nofile=a"),
            Err("strconv.ParseInt: parsing \"a\": invalid syntax".into())
        );
        assert_eq!(
            parse_device("/dev/zero:/dev/z:r").unwrap(),
            json!({"PathOnHost": "/dev/zero", "PathInContainer": "/dev/z", "CgroupPermissions": "r"})
        );
        assert_eq!(
            parse_device("/dev/null").unwrap()["CgroupPermissions"],
            "rwm"
        );
        assert_eq!(
            parse_device("/dev/x:rel"),
            Err("rel is not an absolute path".into())
        );
        assert_eq!(parse_extra_host("b=5.6.7.8"), Ok("b:5.6.7.8".into()));
        assert_eq!(parse_extra_host("v6=[::1]"), Ok("v6:::1".into()));
        assert_eq!(
            parse_extra_host("foo"),
            Err("bad format for add-host: \"foo\"".into())
        );
        assert_eq!(
            parse_throttle_bps("/dev/sda"),
            Err("bad format: /dev/sda".into())
        );
        assert_eq!(
            parse_weight_device("/dev/sda:5"),
            Err("invalid weight for device: /dev/sda:5".into())
        );
        assert!(validate_device_cgroup_rule("c 1:3 mr").is_ok());
        assert!(validate_device_cgroup_rule("a *:* rwm").is_ok());
        assert!(validate_device_cgroup_rule("foo").is_err());
        assert!(validate_sysctl("net.ipv4.ip_forward=1").is_ok());
        assert_eq!(
            validate_sysctl("kernel.domainname=x"),
            Err("sysctl 'kernel.domainname=x' is not allowed".into())
        );
    }

    #[test]
    fn gpus_and_caps() {
        assert_eq!(
            parse_gpus("all").unwrap(),
            json!({"Driver": "", "Count": -1, "DeviceIDs": null, "Capabilities": [["gpu"]], "Options": {}})
        );
        // Go's CSV splits `device=0,1` into `device=0` and a bare count `1`.
        assert_eq!(
            parse_gpus("device=0,1").unwrap(),
            json!({"Driver": "", "Count": 1, "DeviceIDs": ["0"], "Capabilities": [["gpu"]], "Options": {}})
        );
        assert_eq!(
            parse_gpus("foo"),
            Err(
                "invalid count (foo): value must be either \"all\" or an integer: invalid syntax"
                    .into()
            )
        );
        assert_eq!(
            normalize_caps(&["sys_time".into(), "NET_ADMIN".into(), "all".into()]),
            Some(vec![
                "ALL".to_string(),
                "CAP_NET_ADMIN".into(),
                "CAP_SYS_TIME".into()
            ])
        );
        assert_eq!(normalize_caps(&[]), None);
    }
}
