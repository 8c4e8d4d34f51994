//! `events`: `GET /events` streamed and printed as docker prints it, line by line as events
//! arrive.

use super::{filters_json, out, Ctx, Exit};
use crate::cli::EventsArgs;
use crate::format::template::Template;
use crate::format::units;
use anyhow::Result;
use chrono::{DateTime, Local, Offset};
use serde_json::Value;

/// docker's `timetypes.GetTimestamp` for the events query: a duration becomes unix seconds
/// before now, a number passes through, an RFC 3339 time becomes `seconds.nanoseconds`.
pub fn query_time(value: &str, now: i64) -> Result<String> {
    if let Some(d) = units::parse_go_duration(value) {
        return Ok((now - d.as_secs() as i64).to_string());
    }
    let numeric = value
        .split_once('.')
        .map_or(value.chars().all(|c| c.is_ascii_digit()), |(s, f)| {
            s.chars().all(|c| c.is_ascii_digit()) && f.chars().all(|c| c.is_ascii_digit())
        });
    if numeric && !value.is_empty() {
        return Ok(value.to_string());
    }
    let secs = units::parse_timestamp(value, now)?;
    Ok(format!("{secs}.000000000"))
}

/// Go's `RFC3339NanoFixed` (`2006-01-02T15:04:05.000000000Z07:00`) in the local zone.
pub fn fixed_nano_time(time_nano: i64) -> String {
    let secs = time_nano.div_euclid(1_000_000_000);
    let nanos = time_nano.rem_euclid(1_000_000_000) as u32;
    let Some(utc) = DateTime::from_timestamp(secs, nanos) else {
        return String::new();
    };
    let local = utc.with_timezone(&Local);
    let base = local.format("%Y-%m-%dT%H:%M:%S%.9f");
    if local.offset().fix().local_minus_utc() == 0 {
        format!("{base}Z")
    } else {
        format!("{base}{}", local.format("%:z"))
    }
}

/// docker's `prettyPrintEvent`: `TIME TYPE ACTION ID (k=v, ...)` with sorted attributes.
pub fn pretty_event(ev: &Value) -> String {
    let s = |p: &str| ev.pointer(p).and_then(Value::as_str).unwrap_or("");
    let n = |k: &str| ev.get(k).and_then(Value::as_i64).unwrap_or(0);
    let mut line = String::new();
    if n("timeNano") != 0 {
        line.push_str(&fixed_nano_time(n("timeNano")));
        line.push(' ');
    } else if n("time") != 0 {
        line.push_str(&fixed_nano_time(n("time") * 1_000_000_000));
        line.push(' ');
    }
    line.push_str(&format!(
        "{} {} {}",
        s("/Type"),
        s("/Action"),
        s("/Actor/ID")
    ));
    if let Some(attrs) = ev.pointer("/Actor/Attributes").and_then(Value::as_object) {
        if !attrs.is_empty() {
            let mut pairs: Vec<(&String, String)> = attrs
                .iter()
                .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect();
            pairs.sort();
            let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            line.push_str(&format!(" ({})", joined.join(", ")));
        }
    }
    line.push('\n');
    line
}

/// `{{json .}}` prints the message in Go's field order, which a JSON map cannot keep.
fn go_json(ev: &Value) -> String {
    match serde_json::from_value::<wharf_api::event::Event>(ev.clone()) {
        Ok(typed) => serde_json::to_string(&typed).unwrap_or_else(|_| ev.to_string()),
        Err(_) => ev.to_string(),
    }
}

/// docker checks a format by running it on an empty `events.Message`, so a field the Go type
/// lacks fails before any event arrives, with Go's words.
fn unknown_field(src: &str, t: &Template) -> Option<String> {
    const MESSAGE: &[&str] = &[
        "Status", "ID", "From", "Type", "Action", "Actor", "Scope", "Time", "TimeNano",
    ];
    for chain in t.fields() {
        let (bad, depth, ty) = match chain.as_slice() {
            [] => continue,
            [first, ..] if !MESSAGE.contains(&first.as_str()) => (first, 0, "*events.Message"),
            [a, second, ..] if a == "Actor" && !["ID", "Attributes"].contains(&second.as_str()) => {
                (second, 1, "events.Actor")
            }
            [a, id, third, ..] if a == "Actor" && id == "ID" => (third, 2, "string"),
            [a, _, _, fourth, ..] if a == "Actor" => (fourth, 3, "string"),
            [first, second, ..] if first != "Actor" => {
                let ty = if first.starts_with("Time") {
                    "int64"
                } else {
                    "string"
                };
                (second, 1, ty)
            }
            _ => continue,
        };
        let text = format!(".{}", chain.join("."));
        let prefix: String = chain[..depth].iter().map(|c| format!(".{c}")).collect();
        let col = src.find(&text).map_or(0, |i| i + prefix.len());
        return Some(format!(
            "template: :1:{col}: executing \"\" at <{text}>: can't evaluate field {bad} in type {ty}"
        ));
    }
    None
}

enum Printer {
    Pretty,
    Json,
    Template(Template),
}

impl Printer {
    fn new(format: Option<&str>) -> Result<Printer> {
        let f = match format {
            None | Some("") => return Ok(Printer::Pretty),
            Some(f) => f,
        };
        if f == "json" || f.trim() == "{{json .}}" {
            return Ok(Printer::Json);
        }
        let t = Template::parse(f)
            .map_err(|e| Exit::error(64, format!("Error parsing format: {e}")))?;
        if let Some(msg) = unknown_field(f, &t) {
            return Err(Exit::error(64, format!("Error parsing format: {msg}")));
        }
        Ok(Printer::Template(t))
    }

    fn print(&self, ev: &Value) -> Result<String> {
        Ok(match self {
            Printer::Pretty => pretty_event(ev),
            Printer::Json => format!("{}\n", go_json(ev)),
            Printer::Template(t) => format!("{}\n", t.render(ev)?),
        })
    }
}

pub async fn events(ctx: &Ctx, a: &EventsArgs) -> Result<i32> {
    let printer = Printer::new(a.format.as_deref())?;
    let now = units::now_unix();
    let time = |v: &Option<String>| -> Result<Option<String>> {
        v.as_deref()
            .map(|v| query_time(v, now).map_err(|e| Exit::error(1, e.to_string())))
            .transpose()
    };
    let since = time(&a.since)?;
    let until = time(&a.until)?;
    let filters = filters_json(&a.filter, &[])?;
    let mut stream = ctx
        .client
        .events(since.as_deref(), until.as_deref(), filters.as_deref())
        .await
        .map_err(|e| ctx.err(1, &e))?;
    let print_all = async {
        while let Some(ev) = stream.next().await {
            let ev = ev.map_err(|e| ctx.err(1, &e))?;
            let line = printer
                .print(&ev)
                .map_err(|e| Exit::error(1, format!("{e:#}")))?;
            out(line.as_bytes());
        }
        Ok(0)
    };
    // A live stream ends with ctrl-c or a TERM; docker then exits 128 + the signal.
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return print_all.await;
    };
    tokio::select! {
        r = print_all => r,
        _ = int.recv() => Ok(130),
        _ = term.recv() => Ok(143),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pretty_event_matches_docker() {
        std::env::set_var("TZ", "UTC");
        let ev = json!({
            "status": "die", "id": "b7e0", "from": "busybox", "Type": "container",
            "Action": "die",
            "Actor": {"ID": "b7e0", "Attributes": {"name": "evtest", "image": "busybox", "exitCode": "0"}},
            "scope": "local", "time": 1795375454, "timeNano": 1795375454159330757i64
        });
        assert_eq!(
            pretty_event(&ev),
            "2026-11-22T19:24:14.159330757Z container die b7e0 (exitCode=0, image=busybox, name=evtest)\n"
        );
        let bare = json!({"Type": "image", "Action": "delete", "Actor": {"ID": "sha256:x", "Attributes": {}}, "time": 0, "timeNano": 0});
        assert_eq!(pretty_event(&bare), "image delete sha256:x\n");
    }

    #[test]
    fn json_keeps_go_field_order() {
        let ev = json!({
            "status": "start", "id": "a", "from": "busybox", "Type": "container", "Action": "start",
            "Actor": {"ID": "a", "Attributes": {"name": "n", "image": "busybox"}},
            "scope": "local", "time": 1, "timeNano": 1000000001
        });
        assert_eq!(
            go_json(&ev),
            r#"{"status":"start","id":"a","from":"busybox","Type":"container","Action":"start","Actor":{"ID":"a","Attributes":{"image":"busybox","name":"n"}},"scope":"local","time":1,"timeNano":1000000001}"#
        );
    }

    #[test]
    fn formats_are_checked_like_docker() {
        let err = |f: &str| match Printer::new(Some(f)) {
            Err(e) => {
                let exit = e.downcast_ref::<Exit>().expect("an Exit");
                assert_eq!(exit.code, 64);
                exit.message.clone()
            }
            Ok(_) => panic!("{f} accepted"),
        };
        assert_eq!(
            err("{{.Foo}}"),
            "Error parsing format: template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type *events.Message"
        );
        assert_eq!(
            err("{{.Actor.Foo}}"),
            "Error parsing format: template: :1:8: executing \"\" at <.Actor.Foo>: can't evaluate field Foo in type events.Actor"
        );
        for ok in [
            "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}",
            "{{json .Actor}} {{.TimeNano}} {{.Status}} {{.ID}} {{.From}} {{.Scope}}",
            "{{.Actor.Attributes.anything}}",
        ] {
            assert!(Printer::new(Some(ok)).is_ok(), "{ok}");
        }
    }

    #[test]
    fn query_times_follow_get_timestamp() {
        assert_eq!(query_time("30s", 1000).unwrap(), "970");
        assert_eq!(query_time("0s", 1000).unwrap(), "1000");
        assert_eq!(query_time("1700000000", 1000).unwrap(), "1700000000");
        assert_eq!(query_time("1700000000.5", 1000).unwrap(), "1700000000.5");
        assert_eq!(
            query_time("2023-11-14T22:13:20Z", 0).unwrap(),
            "1700000000.000000000"
        );
        assert!(query_time("yesterday", 0).is_err());
    }
}
