//! `volume create|ls|inspect|rm|prune`, as the docker CLI 28 sends and prints them.

use super::arity::{check, Arity};
use super::{filters_json, out, Ctx, Exit};
use crate::cli::{
    VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs,
};
use crate::format::template::{Template, LABEL_MAP};
use crate::format::{go_json, indent_compact, units, Format};
use anyhow::Result;
use serde_json::{json, Map, Value};
use std::io::BufRead;
use wharf_client::{encode, with_query, Method};

const VOLUME_TABLE: &str = "table {{.Driver}}\t{{.Name}}";

fn headers() -> Value {
    json!({
        "ID": "ID", "Name": "VOLUME NAME", "Group": "GROUP", "Driver": "DRIVER",
        "Scope": "SCOPE", "Availability": "AVAILABILITY", "Mountpoint": "MOUNTPOINT",
        "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Status": "STATUS",
    })
}

/// A bad flag value as pflag reports it: the reason, then the command's usage and a hint.
fn flag_error(reason: &str, usage: &str) -> anyhow::Error {
    let cmd = usage.split(" [").next().unwrap_or(usage);
    Exit::error(
        125,
        format!(
            "{reason}\n\nUsage:  wharf {usage}\n\nRun 'wharf {cmd} --help' for more information"
        ),
    )
}

/// `--filter` values as the API's JSON, refused with pflag's words (`flag` is how the
/// command spells the flag).
fn filters(
    items: &[String],
    extra: &[(&str, &str)],
    flag: &str,
    usage: &str,
) -> Result<Option<String>> {
    filters_json(items, extra).map_err(|e| {
        let text = e
            .to_string()
            .replace("\"-f, --filter\"", &format!("\"{flag}\""));
        flag_error(&text, usage)
    })
}

/// The client library refuses an empty (or all-blank) name before any request.
fn trim_id(name: &str) -> Result<&str, String> {
    let t = name.trim();
    if t.is_empty() {
        Err("invalid volume name or ID: value is empty".to_string())
    } else {
        Ok(t)
    }
}

/// `k=v` (or a bare `k`) items as the map docker sends; `None` when there are none, as Go's
/// `omitempty` drops an empty map.
fn kv_map(items: &[String]) -> Option<Value> {
    let mut m = Map::new();
    for item in items {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        m.insert(k.to_string(), json!(v));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// docker's `ValidateLabel`, with pflag's wording around it.
fn validate_label(v: &str) -> Result<(), String> {
    const WS: &[char] = &[' ', '\t', '\n', '\u{0b}', '\u{0c}', '\r'];
    let key = v
        .split_once('=')
        .map_or(v, |(k, _)| k)
        .trim_start_matches(WS);
    let reason = if key.is_empty() {
        format!("invalid label '{v}': empty name")
    } else if key.contains(WS) {
        format!("label '{key}' contains whitespaces")
    } else {
        return Ok(());
    };
    Err(format!(
        "invalid argument \"{v}\" for \"--label\" flag: {reason}"
    ))
}

const GROUP: &[&str] = &["volume"];

pub async fn create(ctx: &Ctx, a: &VolumeCreateArgs) -> Result<i32> {
    check(
        "create",
        GROUP,
        "[OPTIONS] [VOLUME]",
        Arity::Max(1),
        a.args.len(),
    )?;
    for l in &a.label {
        validate_label(l).map_err(|e| flag_error(&e, "volume create [OPTIONS] [VOLUME]"))?;
    }
    let name = match (a.args.first(), &a.name) {
        (Some(_), Some(n)) if !n.is_empty() => {
            return Err(Exit::error(
                1,
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg",
            ))
        }
        (Some(v), _) => v.to_string(),
        (None, n) => n.clone().unwrap_or_default(),
    };
    let mut body = Map::new();
    if !a.driver.is_empty() {
        body.insert("Driver".into(), json!(a.driver));
    }
    if let Some(o) = kv_map(&a.opt) {
        body.insert("DriverOpts".into(), o);
    }
    if let Some(l) = kv_map(&a.label) {
        body.insert("Labels".into(), l);
    }
    if !name.is_empty() {
        body.insert("Name".into(), json!(name));
    }
    let raw = ctx
        .call(
            Method::POST,
            "/volumes/create",
            Some(&Value::Object(body)),
            false,
        )
        .await
        .map_err(|e| ctx.err(1, &e))?;
    let vol: Value = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
    let name = vol.get("Name").and_then(Value::as_str).unwrap_or("");
    out(format!("{name}\n").as_bytes());
    Ok(0)
}

/// `sortorder.NaturalLess`: runs of digits compare as numbers, the rest byte by byte.
pub fn natural_less(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return a[i].cmp(&b[j]);
        }
        if !da {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        // Digit runs: skip leading zeros, then the longer run is the larger number.
        let (si, sj) = (i, j);
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (ni, nj) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let ord = (i - ni)
            .cmp(&(j - nj))
            .then_with(|| a[ni..i].cmp(&b[nj..j]));
        if ord != Ordering::Equal {
            return ord;
        }
        // Equal values: fewer leading zeros first.
        let zeros = (ni - si).cmp(&(nj - sj));
        if zeros != Ordering::Equal {
            return zeros;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// The fields docker's volume formatter offers for one volume.
fn row(v: &Value) -> Value {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut labels: Vec<String> = v
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, val)| format!("{k}={}", val.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let usage = v.get("UsageData").filter(|u| !u.is_null());
    let links = usage.map_or("N/A".to_string(), |u| {
        u.get("RefCount")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .to_string()
    });
    let size = usage.map_or("N/A".to_string(), |u| {
        units::human_size_precision(u.get("Size").and_then(Value::as_i64).unwrap_or(0) as f64, 4)
    });
    let label_map = v
        .get("Labels")
        .filter(|l| l.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut row = json!({
        "Name": s("Name"), "Driver": s("Driver"), "Scope": s("Scope"),
        "Mountpoint": s("Mountpoint"), "Labels": labels.join(","), "Links": links,
        "Size": size, "Group": "N/A", "Availability": "N/A", "Status": "N/A",
    });
    row[LABEL_MAP] = label_map;
    row
}

pub async fn ls(ctx: &Ctx, a: &VolumeLsArgs) -> Result<i32> {
    check("ls", GROUP, "[OPTIONS]", Arity::None, a.args.len())?;
    let user = a.format.clone().unwrap_or_default();
    let format = match user.trim() {
        "" | "table" if a.quiet => "{{.Name}}".to_string(),
        "raw" if a.quiet => "name: {{.Name}}".to_string(),
        "raw" => "name: {{.Name}}\\ndriver: {{.Driver}}\\n".to_string(),
        _ => user,
    };
    let format =
        Format::new(&format, VOLUME_TABLE).map_err(|e| Exit::error(1, format!("{e:#}")))?;
    let mut q = Vec::new();
    if let Some(f) = filters(&a.filter, &[], "-f, --filter", "volume ls [OPTIONS]")? {
        q.push(format!("filters={}", encode(&f)));
    }
    let list = ctx
        .get(&with_query("/volumes", &q))
        .await
        .map_err(|e| ctx.err(1, &e))?;
    let mut vols: Vec<Value> = list
        .get("Volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    vols.sort_by(|x, y| {
        let n = |v: &Value| {
            v.get("Name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        natural_less(&n(x), &n(y))
    });
    let rows: Vec<Value> = vols.iter().map(row).collect();
    out(format.render(&rows, &headers())?.as_bytes());
    Ok(0)
}

/// A volume re-encoded the way the docker CLI prints it: decoded into its Go struct and
/// marshalled again, so the fields come in the struct's order and empty optional ones drop.
pub fn volume_json(v: &Value) -> String {
    let mut fields: Vec<(&str, Value)> = Vec::new();
    let get = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let present = |k: &str| match v.get(k) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
        Some(_) => true,
    };
    if present("ClusterVolume") {
        fields.push(("ClusterVolume", get("ClusterVolume")));
    }
    if present("CreatedAt") {
        fields.push(("CreatedAt", get("CreatedAt")));
    }
    let string = |k: &str| json!(v.get(k).and_then(Value::as_str).unwrap_or(""));
    fields.push(("Driver", string("Driver")));
    fields.push(("Labels", get("Labels")));
    fields.push(("Mountpoint", string("Mountpoint")));
    fields.push(("Name", string("Name")));
    fields.push(("Options", get("Options")));
    fields.push(("Scope", string("Scope")));
    if present("Status") {
        fields.push(("Status", get("Status")));
    }
    if v.get("UsageData").is_some_and(|u| !u.is_null()) {
        let u = get("UsageData");
        let n = |k: &str| json!(u.get(k).and_then(Value::as_i64).unwrap_or(0));
        fields.push((
            "UsageData",
            Value::Object(
                [
                    ("RefCount".to_string(), n("RefCount")),
                    ("Size".to_string(), n("Size")),
                ]
                .into_iter()
                .collect(),
            ),
        ));
    }
    let body: Vec<String> = fields
        .iter()
        .map(|(k, val)| format!("\"{k}\":{}", go_json(val)))
        .collect();
    format!("{{{}}}", body.join(","))
}

pub async fn inspect(ctx: &Ctx, a: &VolumeInspectArgs) -> Result<i32> {
    check(
        "inspect",
        GROUP,
        "[OPTIONS] VOLUME [VOLUME...]",
        Arity::Min(1),
        a.names.len(),
    )?;
    let template = match a.format.as_deref() {
        Some(f) if !f.is_empty() && f != "json" => Some(
            Template::parse(f)
                .map_err(|e| Exit::error(64, format!("template parsing error: {e:#}")))?,
        ),
        _ => None,
    };
    let compact = a.format.as_deref() == Some("json");
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        let id = match trim_id(name) {
            Ok(id) => id,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match ctx.get(&format!("/volumes/{}", encode(id))).await {
            // Templates see the volume as docker's typed struct holds it (empty optional
            // fields gone, their keys in Go's order, which is also alphabetical).
            Ok(v) => found.push(serde_json::from_str(&volume_json(&v)).unwrap_or(v)),
            Err(e) => errors.push(ctx.msg(&e)),
        }
    }
    let text = match &template {
        Some(t) => {
            let mut s = String::new();
            for v in &found {
                match t.render(v) {
                    Ok(line) => {
                        s.push_str(&line);
                        s.push('\n');
                    }
                    Err(e) => errors.push(format!("template parsing error: {e:#}")),
                }
            }
            s
        }
        None => {
            let items: Vec<String> = found.iter().map(volume_json).collect();
            let list = format!("[{}]", items.join(","));
            if compact {
                format!("{list}\n")
            } else {
                format!("{}\n", indent_compact(&list))
            }
        }
    };
    out(text.as_bytes());
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Exit::error(1, errors.join("\n")))
    }
}

pub async fn rm(ctx: &Ctx, a: &VolumeRmArgs) -> Result<i32> {
    check(
        "rm",
        GROUP,
        "[OPTIONS] VOLUME [VOLUME...]",
        Arity::Min(1),
        a.names.len(),
    )?;
    let mut errors = Vec::new();
    for name in &a.names {
        let id = match trim_id(name) {
            Ok(id) => id,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let mut path = format!("/volumes/{}", encode(id));
        if a.force {
            path.push_str("?force=1");
        }
        match ctx.call(Method::DELETE, &path, None, false).await {
            Ok(_) => out(format!("{name}\n").as_bytes()),
            Err(e) => errors.push(ctx.msg(&e)),
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Exit::error(1, errors.join("\n")))
    }
}

const ANON_WARNING: &str = "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?";
const ALL_WARNING: &str = "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?";

/// docker's `prompt.Confirm`: the question and ` [y/N] ` on stdout, one line read from stdin;
/// only `y` (any case, blanks around) says yes.
pub fn confirm(message: &str) -> bool {
    out(format!("{message} [y/N] ").as_bytes());
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).unwrap_or(0) == 0 {
        return false;
    }
    line.trim().eq_ignore_ascii_case("y")
}

pub async fn prune(ctx: &Ctx, a: &VolumePruneArgs) -> Result<i32> {
    check("prune", GROUP, "[OPTIONS]", Arity::None, a.args.len())?;
    let mut extra: Vec<(&str, &str)> = Vec::new();
    let mut warning = ANON_WARNING;
    if a.all {
        let has_all = a.filter.iter().any(|f| {
            f.split_once('=')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("all"))
        });
        if has_all {
            return Err(Exit::error(
                1,
                "conflicting options: cannot specify both --all and --filter all=1",
            ));
        }
        extra.push(("all", "true"));
        warning = ALL_WARNING;
    }
    let filters = filters(&a.filter, &extra, "--filter", "volume prune [OPTIONS]")?;
    if !a.force && !confirm(warning) {
        // A cancelled prune is no failure to docker: nothing printed, exit 0.
        return Ok(0);
    }
    let path = match &filters {
        Some(f) => format!("/volumes/prune?filters={}", encode(f)),
        None => "/volumes/prune".to_string(),
    };
    let raw = ctx
        .call(Method::POST, &path, None, false)
        .await
        .map_err(|e| ctx.err(1, &e))?;
    let report: Value = serde_json::from_slice(&raw.body)
        .map_err(|e| Exit::error(1, format!("Error retrieving volume prune report: {e}")))?;
    let deleted: Vec<&str> = report
        .get("VolumesDeleted")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut text = String::new();
    let mut reclaimed = 0u64;
    if !deleted.is_empty() {
        text.push_str("Deleted Volumes:\n");
        for d in &deleted {
            text.push_str(d);
            text.push('\n');
        }
        text.push('\n');
        reclaimed = report
            .get("SpaceReclaimed")
            .and_then(Value::as_u64)
            .unwrap_or(0);
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        units::human_size_precision(reclaimed as f64, 4)
    ));
    out(text.as_bytes());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn natural_order_reads_numbers() {
        assert_eq!(natural_less("v2", "v10"), Ordering::Less);
        assert_eq!(natural_less("a", "b"), Ordering::Less);
        assert_eq!(natural_less("v10", "v9"), Ordering::Greater);
        assert_eq!(natural_less("x", "x1"), Ordering::Less);
    }

    #[test]
    fn inspect_json_keeps_go_field_order() {
        let v = json!({"Name": "a", "Driver": "local", "Mountpoint": "/m", "Scope": "local",
                       "Labels": {"x": "<y>"}, "Options": null, "CreatedAt": "2024"});
        assert_eq!(
            volume_json(&v),
            r#"{"CreatedAt":"2024","Driver":"local","Labels":{"x":"\u003cy\u003e"},"Mountpoint":"/m","Name":"a","Options":null,"Scope":"local"}"#
        );
    }
}
