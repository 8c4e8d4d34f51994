//! The fuzz targets, as plain functions of the input bytes, so libFuzzer (fuzz_targets/) and the
//! stable runner (src/bin/wharf-fuzz.rs) drive exactly the same code. A target fails by
//! panicking (or crashing, or hanging); an `Err` from the code under test is the expected answer
//! to bad input and is not a finding.

use std::collections::BTreeMap;

pub mod layer;
mod seeds;

pub use layer::layer;
pub use seeds::seeds;

/// The CLI's flag value parsers live in the `wharf` binary crate; they are self-contained, so
/// the fuzzer compiles the file itself rather than make the CLI a library.
#[allow(dead_code)]
#[path = "../../crates/wharf/src/opts/values.rs"]
mod cli_values;

/// A target: runs the code under test on one input, panicking on a finding.
pub type Target = fn(&[u8]);

/// Every target by name, as the runner and bench/fuzz list them.
pub const TARGETS: &[(&str, Target)] = &[
    ("create_body", create_body),
    ("filters", filters),
    ("query", query),
    ("layer", layer),
    ("units", units),
    ("changes", changes),
    ("reference", reference),
];

pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// `POST /containers/create`: the body as the server reads it (JSON, then Go's key matching
/// into `ContainerCreateRequest`), then the engine's merge with an image config, which is where
/// the request is validated.
pub fn create_body(data: &[u8]) {
    use wharf_api::container::{ContainerConfig, ContainerCreateRequest};
    use wharf_engine::containers::config::{merge, MergeContext};
    use wharf_engine::host::HostFacts;

    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(req) = wharf_api::wire_keys::from_value::<ContainerCreateRequest>(value) else {
        return;
    };
    let host = HostFacts {
        memory: true,
        swap: true,
        memory_reservation: true,
        swappiness: true,
        oom_kill_disable: true,
        cpu_shares: true,
        cpu_cfs: true,
        cpuset: true,
        pids: true,
        blkio_weight: true,
        cpus: "0-1".into(),
        mems: "0".into(),
        ncpu: 2,
        cgroup_namespaces: true,
        ipv4_forwarding: true,
        ..Default::default()
    };
    let image = ContainerConfig {
        env: Some(vec!["PATH=/bin".into(), "HOME=/root".into()]),
        cmd: Some(vec!["sh".into()]),
        ..Default::default()
    };
    let ctx = MergeContext {
        id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        host: &host,
        host_hostname: "fuzzhost",
    };
    let _ = merge(&req, &image, &ctx);
    // What was accepted must serialise back (inspect shows it).
    let _ = serde_json::to_vec(&req);
}

/// The `filters` query value, in both dialects, and what list endpoints do with it.
pub fn filters(data: &[u8]) {
    use wharf_api::filters::Filters;
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(f) = Filters::parse(raw) else {
        return;
    };
    let _ = f.check(&wharf_engine::images::filters::LIST_FILTERS);
    let _ = f.validate(&["label", "status", "name"]);
    for key in ["dangling", "all", "label"] {
        let _ = f.bool_or_default(key, false);
    }
    let labels: BTreeMap<String, String> = [("a", "b"), ("com.x", ""), ("", "")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = f.match_labels(&labels);
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    for v in f.get("until").iter().chain(f.get("since")) {
        let _ = wharf_engine::images::filters::until_seconds(v, now);
    }
    for pattern in f.get("reference") {
        let _ = wharf_engine::images::reference::glob_match(pattern, "busybox:latest");
        let _ = wharf_engine::images::reference::glob_match(
            pattern,
            "localhost:5000/some/deep/path:v1.2",
        );
    }
}

/// A request's path and query string as the server splits them: the `/vX.Y` prefix, then the
/// query's pairs and each typed getter.
pub fn query(data: &[u8]) {
    use wharf_server::query::Params;
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (path, q) = s.split_once('?').unwrap_or((s, ""));
    if let Some((ver, rest)) = wharf_server::versioning::split_version(path) {
        assert!(rest.starts_with('/'));
        if let Some(v) = wharf_api::version::ApiVersion::parse(ver) {
            let _ = wharf_api::version::check_version(v);
        }
    }
    let Ok(p) = Params::parse(q) else {
        return;
    };
    for key in ["all", "t", "since", "until", "filters", "limit", "name"] {
        let _ = p.get(key);
        let _ = p.all(key);
        let _ = p.bool(key);
        let _ = p.int(key);
        let _ = p.unix_time(key);
    }
    let _ = p.filters();
}

/// Size, number and duration syntaxes: the daemon's log-opt sizes (go-units `FromHumanSize`) and
/// the CLI's flag values.
pub fn units(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = wharf_engine::containers::logconfig::from_human_size(s);
    let _ = cli_values::parse_size(s, true);
    let _ = cli_values::parse_size(s, false);
    let _ = cli_values::parse_swap(s);
    let _ = cli_values::parse_cpus(s);
    let _ = cli_values::parse_i64(s);
    let _ = cli_values::parse_uint(s, u64::from(u16::MAX));
    let _ = cli_values::parse_ulimit(s);
    let _ = cli_values::parse_throttle_bps(s);
    let _ = cli_values::parse_throttle_iops(s);
    let _ = cli_values::parse_weight_device(s);
    let _ = cli_values::csv_fields(s);
    let _ = cli_values::parse_gpus(s);
    let _ = cli_values::parse_extra_host(s);
    let _ = cli_values::parse_device(s);
    let _ = cli_values::validate_sysctl(s);
    let _ = cli_values::validate_device_cgroup_rule(s);
    let _ = cli_values::clean_path(s);
    if let Ok(secs) = s.trim().parse::<f64>() {
        let _ = wharf_api::units::human_duration(secs);
    }
}

/// `docker import --change`: one instruction a line, applied to an image config.
pub fn changes(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<String> = s.split('\n').map(str::to_string).collect();
    let mut config = serde_json::Map::new();
    let _ = wharf_engine::images::changes::apply(&mut config, &lines);
}

/// Image references and tags, and the `reference=` filter's glob (pattern and name split at
/// the first newline).
pub fn reference(data: &[u8]) {
    use wharf_engine::images::reference::{glob_match, normalize, split_tag};
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = normalize(s) {
        // A normalised name is a fixed point, except where the registry's own name was a
        // path component (`docker.io/docker.io/library/x` is `docker.io/library/x` in Docker's
        // familiar form too, which then reads as `x`).
        if !n.starts_with("docker.io/") && !n.starts_with("index.docker.io/") {
            assert_eq!(normalize(&n).as_deref(), Ok(n.as_str()), "normalize({s:?})");
        }
    }
    let (repo, tag) = split_tag(s);
    assert!(repo.len() + tag.map_or(0, |t| t.len() + 1) == s.len());
    let (pattern, name) = s.split_once('\n').unwrap_or((s, "busybox:latest"));
    let got = glob_match(pattern, name);
    if pattern.len() <= 64 && name.len() <= 64 {
        assert_eq!(
            got,
            glob_oracle(pattern, name),
            "glob_match({pattern:?}, {name:?})"
        );
    }
}

/// The glob's meaning spelled out as a table (`*` and `?` never match `/`), to check the fast
/// matcher against on short inputs.
fn glob_oracle(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    // m[i][j]: p[i..] matches s[j..].
    let mut m = vec![vec![false; s.len() + 1]; p.len() + 1];
    m[p.len()][s.len()] = true;
    for i in (0..p.len()).rev() {
        for j in (0..=s.len()).rev() {
            m[i][j] = match (p[i], s.get(j)) {
                ('*', c) => m[i + 1][j] || c.is_some_and(|&c| c != '/' && m[i][j + 1]),
                ('?', Some(&c)) => c != '/' && m[i + 1][j + 1],
                (pc, Some(&c)) => pc == c && m[i + 1][j + 1],
                (_, None) => false,
            };
        }
    }
    m[0][0]
}
