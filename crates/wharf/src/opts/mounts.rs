//! `--mount` (docker's CSV syntax, every type) and `-v/--volume` as the docker CLI reads them.
//! The CLI only spells the request; the daemon decides which types it serves.

use super::values::{csv_fields, parse_size};
use serde_json::{json, Map, Value};

fn abs_if_dot(src: &str) -> String {
    if !src.starts_with('/') && src.starts_with('.') {
        if let Ok(cwd) = std::env::current_dir() {
            return super::values::clean_path(&format!("{}/{src}", cwd.display()));
        }
    }
    src.to_string()
}

/// docker creates `VolumeOptions` with an empty `DriverConfig` as soon as any `volume-*` key
/// is used, so `{"DriverConfig":{}}` is on the wire even for `volume-nocopy` alone.
fn vol_opts(v: &mut Option<Map<String, Value>>) -> &mut Map<String, Value> {
    let o = v.get_or_insert_with(Map::new);
    o.entry("DriverConfig")
        .or_insert_with(|| Value::Object(Map::new()));
    o
}

fn parse_bool(key: &str, val: &str) -> Result<bool, String> {
    match val {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid value for {key}: {val}")),
    }
}

/// One `--mount` value → one `HostConfig.Mounts` entry (Go's omitempty fields left out).
pub fn parse_mount(v: &str) -> Result<Value, String> {
    // Go's CSV reader has no record in an empty value.
    if v.is_empty() {
        return Err("EOF".into());
    }
    let fields = csv_fields(v)?;
    let mut m = Map::new();
    let mut kind = "volume".to_string();
    let mut bind: Option<Map<String, Value>> = None;
    let mut volume: Option<Map<String, Value>> = None;
    let mut image: Option<Map<String, Value>> = None;
    let mut tmpfs: Option<Map<String, Value>> = None;
    let mut read_only = false;
    let set_kv = |target: &mut Map<String, Value>, key: &str, val: &str| {
        let (k, v) = val.split_once('=').unwrap_or((val, ""));
        if !k.is_empty() {
            let entry = target
                .entry(key.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(o) = entry {
                o.insert(k.to_string(), Value::String(v.to_string()));
            }
        }
    };
    for field in &fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(val) = val else {
            match key.as_str() {
                "readonly" | "ro" => read_only = true,
                "volume-nocopy" => {
                    vol_opts(&mut volume).insert("NoCopy".into(), json!(true));
                }
                "bind-nonrecursive" => {
                    bind.get_or_insert_with(Map::new)
                        .insert("NonRecursive".into(), json!(true));
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        match key.as_str() {
            "type" => kind = val.to_ascii_lowercase(),
            "source" | "src" => {
                m.insert("Source".into(), json!(abs_if_dot(val)));
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), json!(val));
            }
            "readonly" | "ro" => read_only = parse_bool(&key, val)?,
            "consistency" => {
                m.insert("Consistency".into(), json!(val.to_ascii_lowercase()));
            }
            "bind-propagation" => {
                bind.get_or_insert_with(Map::new)
                    .insert("Propagation".into(), json!(val.to_ascii_lowercase()));
            }
            "bind-nonrecursive" => {
                let b = parse_bool(&key, val)?;
                let o = bind.get_or_insert_with(Map::new);
                if b {
                    o.insert("NonRecursive".into(), json!(true));
                }
            }
            "bind-recursive" => {
                let o = bind.get_or_insert_with(Map::new);
                match val {
                    "enabled" => {}
                    "disabled" => {
                        o.insert("NonRecursive".into(), json!(true));
                    }
                    "writable" => {
                        o.insert("ReadOnlyNonRecursive".into(), json!(true));
                    }
                    "readonly" => {
                        o.insert("ReadOnlyForceRecursive".into(), json!(true));
                    }
                    _ => {
                        return Err(format!(
                            "invalid value for {key}: {val} (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")"
                        ))
                    }
                }
            }
            "volume-subpath" => {
                let o = vol_opts(&mut volume);
                if !val.is_empty() {
                    o.insert("Subpath".into(), json!(val));
                }
            }
            "volume-nocopy" => {
                let b = parse_bool("volume-nocopy", val)?;
                let o = vol_opts(&mut volume);
                if b {
                    o.insert("NoCopy".into(), json!(true));
                }
            }
            "volume-label" => set_kv(vol_opts(&mut volume), "Labels", val),
            "volume-driver" => {
                let o = vol_opts(&mut volume);
                let d = o
                    .entry("DriverConfig")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !val.is_empty() {
                    d["Name"] = json!(val);
                }
            }
            "volume-opt" => {
                let o = vol_opts(&mut volume);
                let d = o
                    .entry("DriverConfig")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(d) = d {
                    set_kv(d, "Options", val);
                }
            }
            "image-subpath" => {
                let o = image.get_or_insert_with(Map::new);
                if !val.is_empty() {
                    o.insert("Subpath".into(), json!(val));
                }
            }
            "tmpfs-size" => {
                let n =
                    parse_size(val, true).map_err(|_| format!("invalid value for {key}: {val}"))?;
                let o = tmpfs.get_or_insert_with(Map::new);
                if n != 0 {
                    o.insert("SizeBytes".into(), json!(n));
                }
            }
            "tmpfs-mode" => {
                let n = u32::from_str_radix(val, 8)
                    .map_err(|_| format!("invalid value for {key}: {val}"))?;
                let o = tmpfs.get_or_insert_with(Map::new);
                if n != 0 {
                    o.insert("Mode".into(), json!(n));
                }
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if kind.is_empty() {
        return Err("type is required".into());
    }
    if !m.contains_key("Target") || m["Target"] == json!("") {
        return Err("target is required".into());
    }
    let mix = |opts: &Option<Map<String, Value>>, prefix: &str, own: &str| {
        if opts.is_some() && kind != own {
            Err(format!(
                "cannot mix '{prefix}-*' options with mount type '{kind}'"
            ))
        } else {
            Ok(())
        }
    };
    mix(&volume, "volume", "volume")?;
    mix(&image, "image", "image")?;
    mix(&bind, "bind", "bind")?;
    mix(&tmpfs, "tmpfs", "tmpfs")?;
    if let Some(b) = &bind {
        let flag = |k: &str| b.get(k) == Some(&json!(true));
        if flag("ReadOnlyNonRecursive") && !read_only {
            return Err("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction".into());
        }
        if flag("ReadOnlyForceRecursive") {
            if !read_only {
                return Err("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction".into());
            }
            if b.get("Propagation") != Some(&json!("rprivate")) {
                return Err("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction".into());
            }
        }
    }
    m.insert("Type".into(), json!(kind));
    if read_only {
        m.insert("ReadOnly".into(), json!(true));
    }
    if m.get("Source") == Some(&json!("")) {
        m.remove("Source");
    }
    if m.get("Consistency") == Some(&json!("")) {
        m.remove("Consistency");
    }
    for (key, opts) in [
        ("BindOptions", bind),
        ("VolumeOptions", volume),
        ("ImageOptions", image),
        ("TmpfsOptions", tmpfs),
    ] {
        if let Some(o) = opts {
            m.insert(key.into(), Value::Object(o));
        }
    }
    Ok(Value::Object(m))
}

/// What one `-v` becomes: a bind/named volume for `HostConfig.Binds`, or an anonymous volume
/// for `Config.Volumes`.
#[derive(Debug, PartialEq, Eq)]
pub enum VolumeSpec {
    Bind(String),
    Anonymous(String),
}

/// `-v [source:]target[:mode]` as docker's compose `loader.ParseVolume` splits it: a colon
/// right after a single letter belongs to a Windows drive (`a:/b` is one target), options after
/// the target are the daemon's to read. A spec with a source is a bind (`HostConfig.Binds`),
/// relative `.` host paths made absolute; without one it is an anonymous volume.
pub fn parse_volume(spec: &str) -> Result<VolumeSpec, String> {
    match spec.len() {
        0 => return Err("invalid empty volume spec".into()),
        1 | 2 => return Ok(VolumeSpec::Anonymous(spec.to_string())),
        _ => {}
    }
    let (mut source, mut target) = (None::<String>, None::<String>);
    let mut buffer = String::new();
    let chars: Vec<char> = spec.chars().collect();
    for i in 0..=chars.len() {
        let c = chars.get(i).copied();
        let drive = c == Some(':')
            && buffer.chars().count() == 1
            && buffer.chars().all(char::is_alphabetic);
        if drive {
            buffer.push(':');
            continue;
        }
        if c.is_some() && c != Some(':') {
            buffer.extend(c);
            continue;
        }
        let end = c.is_none();
        if buffer.is_empty() {
            return Err(format!(
                "invalid spec: {spec}: empty section between colons"
            ));
        }
        match (&source, &target) {
            (None, _) if end => target = Some(std::mem::take(&mut buffer)),
            (None, _) => source = Some(std::mem::take(&mut buffer)),
            (Some(_), None) => target = Some(std::mem::take(&mut buffer)),
            _ if !end => return Err(format!("invalid spec: {spec}: too many colons")),
            _ => buffer.clear(),
        }
    }
    let Some(source) = source else {
        return Ok(VolumeSpec::Anonymous(spec.to_string()));
    };
    if !source.starts_with(['.', '/', '~']) {
        return Ok(VolumeSpec::Bind(spec.to_string()));
    }
    // Relative host paths are made absolute, as the docker CLI does.
    let (host, rest) = spec.split_once(':').unwrap_or((spec, ""));
    Ok(VolumeSpec::Bind(format!("{}:{rest}", abs_if_dot(host))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_match_docker_bodies() {
        // The entries docker 28 sent for the same flags (captured against a fake daemon).
        assert_eq!(
            parse_mount("type=bind,src=/tmp,dst=/b,readonly").unwrap(),
            json!({"ReadOnly": true, "Source": "/tmp", "Target": "/b", "Type": "bind"})
        );
        assert_eq!(
            parse_mount("type=volume,source=v2,target=/v2,volume-opt=a=b,volume-nocopy").unwrap(),
            json!({"Source": "v2", "Target": "/v2", "Type": "volume",
                   "VolumeOptions": {"DriverConfig": {"Options": {"a": "b"}}, "NoCopy": true}})
        );
        assert_eq!(
            parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap(),
            json!({"Target": "/t", "TmpfsOptions": {"Mode": 1016, "SizeBytes": 1048576}, "Type": "tmpfs"})
        );
        assert_eq!(parse_mount("src=/x").unwrap_err(), "target is required");
        assert_eq!(
            parse_mount("type=bind,dst=/x,foo=bar").unwrap_err(),
            "unexpected key 'foo' in 'foo=bar'"
        );
        assert_eq!(
            parse_mount("type=volume,dst=/x,bind-propagation=shared").unwrap_err(),
            "cannot mix 'bind-*' options with mount type 'volume'"
        );
        assert_eq!(
            parse_mount("type=tmpfs,dst=/y,tmpfs-size=abc").unwrap_err(),
            "invalid value for tmpfs-size: abc"
        );
        // Unknown types are the daemon's to refuse.
        assert_eq!(
            parse_mount("type=foo,dst=/x").unwrap(),
            json!({"Target": "/x", "Type": "foo"})
        );
    }

    #[test]
    fn volumes_split_like_docker() {
        assert_eq!(
            parse_volume("data:/data"),
            Ok(VolumeSpec::Bind("data:/data".into()))
        );
        assert_eq!(
            parse_volume("/tmp:/host:ro"),
            Ok(VolumeSpec::Bind("/tmp:/host:ro".into()))
        );
        assert_eq!(
            parse_volume("/anon"),
            Ok(VolumeSpec::Anonymous("/anon".into()))
        );
        assert_eq!(
            parse_volume(":/x"),
            Err("invalid spec: :/x: empty section between colons".into())
        );
        // A one-letter source is a Windows drive: the whole spec is the target.
        assert_eq!(
            parse_volume("a:/b"),
            Ok(VolumeSpec::Anonymous("a:/b".into()))
        );
        assert_eq!(
            parse_volume("a:b:c:d"),
            Ok(VolumeSpec::Bind("a:b:c:d".into()))
        );
        assert_eq!(
            parse_volume("vol:/x:ro:z"),
            Err("invalid spec: vol:/x:ro:z: too many colons".into())
        );
    }
}
