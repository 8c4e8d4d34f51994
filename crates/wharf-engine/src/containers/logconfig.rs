//! `HostConfig.LogConfig`: which logging driver and options a container gets, checked at create
//! in dockerd's words (moby v25: `daemon/logger/factory.go` ValidateLogOpts, then what
//! `jsonfilelog.New` checks at start), and the attributes json-file writes on every line. Pure.
//!
//! Honoured: `json-file` (also for an empty Type) with `max-size`, `max-file`, `compress=false`,
//! `labels`, `labels-regex`, `env`, `env-regex`, `tag` (its `{{.Field}}` actions), `mode=blocking`
//! and `cache-disabled` (json-file has no cache to disable); and `none`. Every other driver and
//! option is refused with 400, naming it. Where dockerd fails a value only at start, Wharf fails
//! it at create, with the same words, so that nothing is created.
//!
//! The create-time honour check calls [`validate`] on the request's `LogConfig`; a start reads
//! the stored one with [`of_host_config`].

use crate::error::EngineError;
use std::collections::BTreeMap;

/// The driver of a container created without one (dockerd's default `log-driver`).
pub const DEFAULT_DRIVER: &str = "json-file";

/// Drivers dockerd has that Wharf has not built yet.
const NOT_BUILT: &[&str] = &[
    "local",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
];

/// More files than this would make every rotation probe that many names (dockerd renames
/// each index in turn too); refused rather than slow.
pub const MAX_FILES: u32 = 1000;

/// With `none`, the shim still writes the output to a small rotating file in the container's
/// state dir (the exec root, a tmpfs, gone at exit): that is what `attach` follows, since
/// attach reads the log. It never reaches the disk, and `logs` refuses as dockerd does.
pub const LIVE_FILE: &str = "live-json.log";
pub const LIVE_MAX_SIZE: u64 = 512 * 1024;
pub const LIVE_MAX_FILE: u32 = 2;

/// What a container's output is kept as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSettings {
    /// Nothing is stored: `logs` answers 501 as dockerd does; attach still streams.
    None,
    JsonFile(JsonFile),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonFile {
    /// Rotate before a line that would make the file larger than this; `None`: never.
    pub max_size: Option<u64>,
    /// Files kept in all, the one being written included (1 without `max-file`).
    pub max_file: u32,
    labels: Option<String>,
    labels_regex: Option<String>,
    env: Option<String>,
    env_regex: Option<String>,
    tag: Vec<TagPart>,
}

impl Default for JsonFile {
    fn default() -> Self {
        JsonFile {
            max_size: None,
            max_file: 1,
            labels: None,
            labels_regex: None,
            env: None,
            env_regex: None,
            tag: Vec::new(),
        }
    }
}

/// What json-file's `labels`/`env`/`tag` options are evaluated against (dockerd's
/// `logger.Info`), taken when the container starts.
#[derive(Debug, Clone, Copy)]
pub struct ContainerInfo<'a> {
    pub id: &'a str,
    /// Without the leading `/`.
    pub name: &'a str,
    /// `sha256:...`.
    pub image_id: &'a str,
    /// `Config.Image` as the client gave it.
    pub image_name: &'a str,
    pub path: &'a str,
    pub args: &'a [String],
    pub labels: &'a BTreeMap<String, String>,
    pub env: &'a [String],
    pub log_path: &'a str,
    /// The daemon host's name (the template's `{{.Hostname}}`).
    pub hostname: &'a str,
}

impl JsonFile {
    /// The `attrs` json-file writes on every line (dockerd's `Info.ExtraAttributes` plus
    /// `tag`): `labels` and `env` name keys (comma-separated), the regexes match keys, a later
    /// source replacing an earlier one.
    pub fn attrs(&self, info: &ContainerInfo<'_>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(keys) = self.labels.as_deref().filter(|s| !s.is_empty()) {
            for k in keys.split(',') {
                if let Some(v) = info.labels.get(k) {
                    out.insert(k.to_string(), v.clone());
                }
            }
        }
        if let Some(re) = self.labels_regex.as_deref().and_then(compiled) {
            for (k, v) in info.labels {
                if re.is_match(k) {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        let mut env: BTreeMap<&str, &str> = BTreeMap::new();
        for e in info.env {
            if let Some((k, v)) = e.split_once('=') {
                env.insert(k, v);
            }
        }
        if let Some(keys) = self.env.as_deref().filter(|s| !s.is_empty()) {
            for k in keys.split(',') {
                if let Some(v) = env.get(k) {
                    out.insert(k.to_string(), v.to_string());
                }
            }
        }
        if let Some(re) = self.env_regex.as_deref().and_then(compiled) {
            for (k, v) in &env {
                if re.is_match(k) {
                    out.insert(k.to_string(), v.to_string());
                }
            }
        }
        let tag = render_tag(&self.tag, info);
        if !tag.is_empty() {
            out.insert("tag".into(), tag);
        }
        out
    }
}

/// The settings of a created container (its LogConfig was checked at create).
pub fn of_host_config(hc: &wharf_api::container::HostConfig) -> Result<LogSettings, EngineError> {
    let config = hc.log_config.config.clone().unwrap_or_default();
    validate(&hc.log_config.r#type, &config)
}

/// Checks a LogConfig as dockerd does at create and at start; refuses what Wharf lacks.
pub fn validate(
    driver: &str,
    config: &BTreeMap<String, String>,
) -> Result<LogSettings, EngineError> {
    let driver = if driver.is_empty() {
        DEFAULT_DRIVER
    } else {
        driver
    };
    if driver == "none" {
        // dockerd checks no option of `none`: there is nothing they could apply to.
        return Ok(LogSettings::None);
    }
    let opt = |k: &str| config.get(k).map(String::as_str);
    let mode = opt("mode").unwrap_or("");
    if !matches!(mode, "" | "blocking" | "non-blocking") {
        return Err(invalid(format!(
            "logger: logging mode not supported: {mode}"
        )));
    }
    if opt("max-buffer-size").is_some() && mode != "non-blocking" {
        return Err(invalid(
            "logger: max-buffer-size option is only supported with 'mode=non-blocking'",
        ));
    }
    if let Some(v) = opt("cache-disabled").filter(|v| !v.is_empty()) {
        if parse_bool(v).is_none() {
            return Err(invalid(format!(
                "invalid value for option cache-disabled: {v}"
            )));
        }
    }
    if driver != DEFAULT_DRIVER {
        if NOT_BUILT.contains(&driver) {
            return Err(invalid(format!(
                "Wharf does not support the \"{driver}\" logging driver yet"
            )));
        }
        // What dockerd says when no plugin of that name is installed (Wharf has no plugins).
        return Err(invalid(format!(
            "error looking up logging plugin {driver}: plugin \"{driver}\" not found"
        )));
    }
    if mode == "non-blocking" {
        return Err(invalid(
            "Wharf does not support the log opt mode=non-blocking yet",
        ));
    }
    json_file(config).map(LogSettings::JsonFile)
}

/// json-file's `ValidateLogOpt`, then the value checks of its `New`, in that order.
fn json_file(config: &BTreeMap<String, String>) -> Result<JsonFile, EngineError> {
    for key in config.keys() {
        match key.as_str() {
            "max-file" | "max-size" | "compress" | "labels" | "labels-regex" | "env"
            | "env-regex" | "tag" => {}
            // dockerd's own options, checked above.
            "mode" | "max-buffer-size" | "cache-disabled" => {}
            "cache-max-size" | "cache-max-file" | "cache-compress" => {
                return Err(invalid(format!(
                    "Wharf does not support the log opt {key} yet"
                )))
            }
            _ => {
                return Err(invalid(format!(
                    "unknown log opt '{key}' for json-file log driver"
                )))
            }
        }
    }
    let opt = |k: &str| config.get(k).map(String::as_str);
    let mut out = JsonFile::default();
    if let Some(v) = opt("max-size") {
        let size = from_human_size(v).map_err(invalid)?;
        if size <= 0 {
            return Err(invalid("max-size must be a positive number"));
        }
        out.max_size = Some(size as u64);
    }
    if let Some(v) = opt("max-file") {
        let n = atoi(v).map_err(invalid)?;
        if n < 1 {
            return Err(invalid("max-file cannot be less than 1"));
        }
        if n > i64::from(MAX_FILES) {
            return Err(invalid(format!(
                "Wharf does not support max-file above {MAX_FILES} yet"
            )));
        }
        out.max_file = n as u32;
    }
    if let Some(v) = opt("compress") {
        let on = parse_bool(v)
            .ok_or_else(|| invalid(format!("strconv.ParseBool: parsing {v:?}: invalid syntax")))?;
        if on && (out.max_file == 1 || out.max_size.is_none()) {
            return Err(invalid(
                "compress cannot be true when max-file is less than 2 or max-size is not set",
            ));
        }
        if on {
            return Err(invalid(
                "Wharf does not support the log opt compress=true yet",
            ));
        }
    }
    for key in ["labels-regex", "env-regex"] {
        if let Some(re) = opt(key).filter(|s| !s.is_empty()) {
            if let Err(e) = regex::Regex::new(re) {
                let why = e.to_string();
                let why = why
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim_start_matches("error: ");
                return Err(invalid(format!("error parsing regexp: {why}: `{re}`")));
            }
        }
    }
    out.labels = opt("labels").map(str::to_string);
    out.labels_regex = opt("labels-regex").map(str::to_string);
    out.env = opt("env").map(str::to_string);
    out.env_regex = opt("env-regex").map(str::to_string);
    out.tag = parse_tag(opt("tag").unwrap_or(""))?;
    Ok(out)
}

fn invalid(m: impl Into<String>) -> EngineError {
    EngineError::invalid(m)
}

fn compiled(re: &str) -> Option<regex::Regex> {
    if re.is_empty() {
        return None;
    }
    regex::Regex::new(re).ok()
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.Atoi` (64-bit int), with its error words.
fn atoi(v: &str) -> Result<i64, String> {
    use std::num::IntErrorKind;
    v.parse::<i64>().map_err(|e| match e.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
            format!("strconv.Atoi: parsing {v:?}: value out of range")
        }
        _ => format!("strconv.Atoi: parsing {v:?}: invalid syntax"),
    })
}

/// go-units' `FromHumanSize`: decimal multiples (`1k` = 1000, `1m` = 1000000), an optional
/// `b`/`ib` after the unit, case-insensitive, an optional space before it.
pub fn from_human_size(s: &str) -> Result<i64, String> {
    let Some(sep) = s.rfind(|c: char| "0123456789. ".contains(c)) else {
        return Err(format!("invalid size: '{s}'"));
    };
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    let size: f64 = parse_go_float(num)
        .ok_or_else(|| format!("strconv.ParseFloat: parsing {num:?}: invalid syntax"))?;
    if size < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    let bad_suffix = |sfx: &str| format!("invalid suffix: '{sfx}'");
    if sfx.is_empty() {
        return Ok(go_int64(size));
    }
    if sfx.len() > 3 {
        return Err(bad_suffix(sfx));
    }
    let lower = sfx.to_ascii_lowercase();
    let b = lower.as_bytes();
    if b[0] == b'b' {
        return if b.len() > 1 {
            Err(bad_suffix(&lower))
        } else {
            Ok(go_int64(size))
        };
    }
    let mul: f64 = match b[0] {
        b'k' => 1e3,
        b'm' => 1e6,
        b'g' => 1e9,
        b't' => 1e12,
        b'p' => 1e15,
        _ => return Err(bad_suffix(&lower)),
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &lower[1..] != "ib") {
        return Err(bad_suffix(&lower));
    }
    Ok(go_int64(size * mul))
}

/// The decimal forms Go's `ParseFloat` and Rust's agree on (no hex, no `_`, no inf/nan words).
fn parse_go_float(num: &str) -> Option<f64> {
    let plain = num
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !plain || num.is_empty() {
        return None;
    }
    num.parse().ok()
}

/// Go's `int64(f)` on amd64: out of range gives the smallest int64.
fn go_int64(f: f64) -> i64 {
    if f.is_nan() || f >= 9_223_372_036_854_775_808.0 {
        i64::MIN
    } else {
        f as i64
    }
}

/// One piece of a `tag` template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TagPart {
    Text(String),
    Field(&'static str),
}

/// The `{{.Field}}` actions of dockerd's `logger.Info` that Wharf evaluates.
const TAG_FIELDS: &[&str] = &[
    "ID",
    "FullID",
    "Name",
    "ImageID",
    "ImageFullID",
    "ImageName",
    "DaemonName",
    "Command",
    "Hostname",
    "ContainerID",
    "ContainerName",
    "ContainerEntrypoint",
    "ContainerImageID",
    "ContainerImageName",
    "LogPath",
];

/// Text with `{{.Field}}` actions; anything else Go's templates could do is refused.
fn parse_tag(t: &str) -> Result<Vec<TagPart>, EngineError> {
    let mut parts = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(TagPart::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(invalid("template: log-tag:1: unclosed action"));
        };
        let action = after[..close].trim();
        let field = action
            .strip_prefix('.')
            .and_then(|f| TAG_FIELDS.iter().find(|k| **k == f))
            .ok_or_else(|| {
                invalid(format!(
                    "Wharf does not support the log tag template action {{{{{action}}}}} yet"
                ))
            })?;
        parts.push(TagPart::Field(field));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(TagPart::Text(rest.to_string()));
    }
    Ok(parts)
}

fn render_tag(parts: &[TagPart], info: &ContainerInfo<'_>) -> String {
    let first12 = |s: &str| s.chars().take(12).collect::<String>();
    let mut out = String::new();
    for p in parts {
        match p {
            TagPart::Text(t) => out.push_str(t),
            TagPart::Field(f) => out.push_str(&match *f {
                "ID" => first12(info.id),
                "FullID" | "ContainerID" => info.id.to_string(),
                "Name" => info.name.to_string(),
                "ContainerName" => format!("/{}", info.name),
                // dockerd cuts the digest with its `sha256:` prefix.
                "ImageID" => first12(info.image_id),
                "ImageFullID" | "ContainerImageID" => info.image_id.to_string(),
                "ImageName" | "ContainerImageName" => info.image_name.to_string(),
                // What dockerd calls itself; templates written for it expect this word.
                "DaemonName" => "docker".to_string(),
                "Command" => std::iter::once(info.path)
                    .chain(info.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
                "Hostname" => info.hostname.to_string(),
                "ContainerEntrypoint" => info.path.to_string(),
                "LogPath" => info.log_path.to_string(),
                _ => String::new(),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn err(driver: &str, pairs: &[(&str, &str)]) -> String {
        let e = validate(driver, &cfg(pairs)).unwrap_err();
        assert_eq!(
            e.kind(),
            wharf_api::ErrorKind::InvalidArgument,
            "{}",
            e.message()
        );
        e.message()
    }

    fn json(pairs: &[(&str, &str)]) -> JsonFile {
        match validate("json-file", &cfg(pairs)).unwrap() {
            LogSettings::JsonFile(j) => j,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_and_none() {
        assert_eq!(
            validate("", &BTreeMap::new()).unwrap(),
            LogSettings::JsonFile(JsonFile::default())
        );
        assert_eq!(
            validate("json-file", &BTreeMap::new()).unwrap(),
            LogSettings::JsonFile(JsonFile::default())
        );
        assert_eq!(
            validate("none", &BTreeMap::new()).unwrap(),
            LogSettings::None
        );
        // dockerd looks at no option of `none`.
        assert_eq!(
            validate("none", &cfg(&[("max-size", "x"), ("bogus", "1")])).unwrap(),
            LogSettings::None
        );
    }

    #[test]
    fn other_drivers_are_refused_by_name() {
        for d in [
            "syslog",
            "journald",
            "local",
            "fluentd",
            "gelf",
            "awslogs",
            "splunk",
            "etwlogs",
            "gcplogs",
            "logentries",
        ] {
            assert_eq!(
                err(d, &[]),
                format!("Wharf does not support the \"{d}\" logging driver yet")
            );
        }
        assert_eq!(
            err("vieux/sshfs:latest", &[]),
            "error looking up logging plugin vieux/sshfs:latest: plugin \"vieux/sshfs:latest\" not found"
        );
        assert_eq!(
            err("JSON-FILE", &[]),
            "error looking up logging plugin JSON-FILE: plugin \"JSON-FILE\" not found"
        );
    }

    #[test]
    fn rotation_options() {
        let j = json(&[("max-size", "1m"), ("max-file", "3")]);
        assert_eq!((j.max_size, j.max_file), (Some(1_000_000), 3));
        // max-file alone: dockerd accepts it and never rotates.
        let j = json(&[("max-file", "5")]);
        assert_eq!((j.max_size, j.max_file), (None, 5));
        let j = json(&[("max-size", "10k"), ("compress", "false")]);
        assert_eq!((j.max_size, j.max_file), (Some(10_000), 1));
    }

    #[test]
    fn rotation_errors_in_dockers_words() {
        assert_eq!(
            err("", &[("max-size", "0")]),
            "max-size must be a positive number"
        );
        assert_eq!(err("", &[("max-size", "abc")]), "invalid size: 'abc'");
        assert_eq!(err("", &[("max-size", "")]), "invalid size: ''");
        assert_eq!(err("", &[("max-size", "-1")]), "invalid size: '-1'");
        assert_eq!(err("", &[("max-size", "1q")]), "invalid suffix: 'q'");
        assert_eq!(err("", &[("max-size", "1KiBs")]), "invalid suffix: 'KiBs'");
        assert_eq!(
            err("", &[("max-size", "1.2.3")]),
            "strconv.ParseFloat: parsing \"1.2.3\": invalid syntax"
        );
        assert_eq!(
            err("", &[("max-file", "0")]),
            "max-file cannot be less than 1"
        );
        assert_eq!(
            err("", &[("max-file", "-3")]),
            "max-file cannot be less than 1"
        );
        assert_eq!(
            err("", &[("max-file", "x")]),
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            err("", &[("max-file", "99999999999999999999")]),
            "strconv.Atoi: parsing \"99999999999999999999\": value out of range"
        );
        assert_eq!(
            err("", &[("max-file", "1001"), ("max-size", "1m")]),
            "Wharf does not support max-file above 1000 yet"
        );
        // max-size is checked before max-file, as in dockerd.
        assert_eq!(
            err("", &[("max-size", "0"), ("max-file", "0")]),
            "max-size must be a positive number"
        );
    }

    #[test]
    fn compress() {
        assert_eq!(
            err("", &[("compress", "maybe")]),
            "strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
        assert_eq!(
            err("", &[("compress", "true"), ("max-size", "1m")]),
            "compress cannot be true when max-file is less than 2 or max-size is not set"
        );
        assert_eq!(
            err("", &[("compress", "true"), ("max-file", "3")]),
            "compress cannot be true when max-file is less than 2 or max-size is not set"
        );
        assert_eq!(
            err(
                "",
                &[("compress", "1"), ("max-file", "3"), ("max-size", "1m")]
            ),
            "Wharf does not support the log opt compress=true yet"
        );
        json(&[("compress", "False")]);
    }

    #[test]
    fn unknown_and_builtin_options() {
        assert_eq!(
            err("json-file", &[("bogus", "1")]),
            "unknown log opt 'bogus' for json-file log driver"
        );
        assert_eq!(
            err("", &[("cache-foo", "1")]),
            "unknown log opt 'cache-foo' for json-file log driver"
        );
        assert_eq!(
            err("", &[("mode", "fast")]),
            "logger: logging mode not supported: fast"
        );
        assert_eq!(
            err("", &[("max-buffer-size", "4m")]),
            "logger: max-buffer-size option is only supported with 'mode=non-blocking'"
        );
        assert_eq!(
            err("", &[("mode", "non-blocking")]),
            "Wharf does not support the log opt mode=non-blocking yet"
        );
        assert_eq!(
            err("", &[("cache-disabled", "x")]),
            "invalid value for option cache-disabled: x"
        );
        assert_eq!(
            err("", &[("cache-max-size", "1m")]),
            "Wharf does not support the log opt cache-max-size yet"
        );
        // dockerd's built-in checks come before the driver's.
        assert_eq!(
            err("syslog", &[("mode", "x")]),
            "logger: logging mode not supported: x"
        );
        json(&[("mode", "blocking"), ("cache-disabled", "true")]);
    }

    #[test]
    fn human_sizes_like_go_units() {
        for (s, n) in [
            ("32", 32),
            ("32b", 32),
            ("32B", 32),
            ("32k", 32_000),
            ("32K", 32_000),
            ("32kb", 32_000),
            ("32Kb", 32_000),
            ("32Mb", 32_000_000),
            ("32Gb", 32_000_000_000),
            ("32Tb", 32_000_000_000_000),
            ("32Pb", 32_000_000_000_000_000),
            ("32.5KB", 32_500),
            ("32.5 kB", 32_500),
            ("32KiB", 32_000),
            (".5k", 500),
            ("1e3", 1000),
        ] {
            assert_eq!(from_human_size(s), Ok(n), "{s}");
        }
        for s in ["", "hello", "-32", " 32 ", "32m b", "32bm", "0x10"] {
            assert!(from_human_size(s).is_err(), "{s}");
        }
    }

    #[test]
    fn regexes_and_tags_are_checked() {
        assert!(err("", &[("labels-regex", "(")]).starts_with("error parsing regexp: "));
        assert!(err("", &[("env-regex", "[")]).ends_with(": `[`"));
        assert_eq!(
            err("", &[("tag", "{{.ID")]),
            "template: log-tag:1: unclosed action"
        );
        assert_eq!(
            err("", &[("tag", "{{json .ID}}")]),
            "Wharf does not support the log tag template action {{json .ID}} yet"
        );
        assert_eq!(
            err("", &[("tag", "{{.Bogus}}")]),
            "Wharf does not support the log tag template action {{.Bogus}} yet"
        );
    }

    fn info<'a>(labels: &'a BTreeMap<String, String>, env: &'a [String]) -> ContainerInfo<'a> {
        ContainerInfo {
            id: "0123456789abcdef0123",
            name: "web",
            image_id: "sha256:feedfacecafe0001",
            image_name: "busybox:latest",
            path: "sh",
            args: &[],
            labels,
            env,
            log_path: "/d/x-json.log",
            hostname: "host1",
        }
    }

    #[test]
    fn attrs_from_labels_env_and_tag() {
        let labels = cfg(&[("app", "web"), ("tier", "front"), ("x.y", "z")]);
        let env: Vec<String> = ["FOO=bar", "EMPTY=", "NOEQ", "BAZ=1=2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let j = json(&[
            ("labels", "app,missing"),
            ("labels-regex", "^x\\."),
            ("env", "FOO,EMPTY,NOEQ"),
            ("env-regex", "^BA"),
            ("tag", "{{.Name}}/{{.ID}} {{ .ImageID }}@{{.ImageName}}"),
        ]);
        let a = j.attrs(&info(&labels, &env));
        let want = cfg(&[
            ("app", "web"),
            ("x.y", "z"),
            ("FOO", "bar"),
            ("EMPTY", ""),
            ("BAZ", "1=2"),
            ("tag", "web/0123456789ab sha256:feedf@busybox:latest"),
        ]);
        assert_eq!(a, want);
        // No option, no attrs: the line carries none.
        assert!(JsonFile::default().attrs(&info(&labels, &env)).is_empty());
    }
}
