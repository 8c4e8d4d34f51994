//! The `--health-*` flags as docker's `parse` turns them into `Config.Healthcheck`.

use super::BadFlag;
use crate::format::units;
use serde_json::{json, Map, Value};

/// The healthcheck flags of one `run`/`create`.
pub struct HealthFlags<'a> {
    pub cmd: &'a Option<String>,
    pub interval: &'a Option<String>,
    pub timeout: &'a Option<String>,
    pub start_period: &'a Option<String>,
    pub start_interval: &'a Option<String>,
    pub retries: Option<i64>,
    pub none: bool,
}

/// A Go duration flag (`30s`, `1m30s`) in nanoseconds; `None` when not given.
fn duration_flag(flag: &'static str, val: &Option<String>) -> Result<Option<i64>, BadFlag> {
    let Some(s) = val else {
        return Ok(None);
    };
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let nanos = if digits == "0" {
        0
    } else {
        match units::parse_go_duration(digits) {
            Some(d) => d.as_nanos() as i64,
            None => {
                let why = if digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
                    "missing unit in"
                } else {
                    "invalid"
                };
                return Err(BadFlag::Parse(format!(
                    "invalid argument \"{s}\" for \"--{flag}\" flag: time: {why} duration \"{s}\""
                )));
            }
        }
    };
    if neg && nanos != 0 {
        return Err(BadFlag::Parse(format!("--{flag} cannot be negative")));
    }
    Ok(Some(nanos))
}

/// `Config.Healthcheck` from the `--health-*` flags: zero values left out,
/// `--no-healthcheck` is `{"Test":["NONE"]}`.
pub fn healthcheck(o: &HealthFlags) -> Result<Option<Value>, BadFlag> {
    let interval = duration_flag("health-interval", o.interval)?;
    let timeout = duration_flag("health-timeout", o.timeout)?;
    let start_period = duration_flag("health-start-period", o.start_period)?;
    let start_interval = duration_flag("health-start-interval", o.start_interval)?;
    let retries = o.retries.unwrap_or(0);
    let nonzero = |d: Option<i64>| d.unwrap_or(0) != 0;
    let have = o.cmd.as_deref().is_some_and(|c| !c.is_empty())
        || nonzero(interval)
        || nonzero(timeout)
        || nonzero(start_period)
        || nonzero(start_interval)
        || retries != 0;
    if o.none {
        if have {
            return Err(BadFlag::Parse(
                "--no-healthcheck conflicts with --health-* options".into(),
            ));
        }
        return Ok(Some(json!({"Test": ["NONE"]})));
    }
    if !have {
        return Ok(None);
    }
    if retries < 0 {
        return Err(BadFlag::Parse("--health-retries cannot be negative".into()));
    }
    let mut h = Map::new();
    if let Some(cmd) = o.cmd.as_deref().filter(|c| !c.is_empty()) {
        h.insert("Test".into(), json!(["CMD-SHELL", cmd]));
    }
    for (key, d) in [
        ("Interval", interval),
        ("Timeout", timeout),
        ("StartPeriod", start_period),
        ("StartInterval", start_interval),
    ] {
        if let Some(n) = d.filter(|n| *n != 0) {
            h.insert(key.into(), json!(n));
        }
    }
    if retries != 0 {
        h.insert("Retries".into(), json!(retries));
    }
    Ok(Some(Value::Object(h)))
}
