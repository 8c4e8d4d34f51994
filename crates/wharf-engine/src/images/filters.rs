//! `GET /images/json` filters: the names (moby v25 `daemon/images/image_list.go`
//! `acceptedImageFilterTags`) and the `until` value, which is a Go duration, an RFC 3339-like
//! time or a unix timestamp (moby `api/types/time.GetTimestamp`).

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use wharf_api::filters::FilterSet;

pub const LIST_FILTERS: FilterSet = FilterSet {
    applied: &["before", "dangling", "label", "reference", "since", "until"],
    not_yet: &[],
};

/// `until` as unix seconds (fractional), relative to `now` for durations.
pub fn until_seconds(value: &str, now: DateTime<Utc>) -> Result<f64, String> {
    if value != "0" {
        if let Some(nanos) = go_duration_nanos(value) {
            return Ok(now.timestamp() as f64 - nanos / 1e9);
        }
    }
    if value.contains('-') || value.contains('T') {
        return go_time(value)
            .map(|t| t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9)
            .ok_or_else(|| format!("parsing time {value:?}: cannot parse as a date and time"));
    }
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let bad = || format!("failed to parse value as time or duration: {value:?}");
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let frac = if frac.is_empty() {
        0.0
    } else {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        format!("0.{frac}").parse::<f64>().map_err(|_| bad())?
    };
    Ok(secs as f64 + frac)
}

/// Go's `time.ParseDuration`: `[-+]` then one or more `<decimal><unit>`, unit one of ns, us,
/// µs, ms, s, m, h.
fn go_duration_nanos(s: &str) -> Option<f64> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += num * unit;
    }
    Some(if neg { -total } else { total })
}

/// The layouts `GetTimestamp` tries: with a zone (`Z`, `+hh:mm`, or a third `-`) or in the
/// daemon's local zone.
fn go_time(value: &str) -> Option<DateTime<Utc>> {
    let zoned = value.contains(['z', 'Z', '+']) || value.matches('-').count() == 3;
    if zoned {
        let v = value.replace(['z', 'Z'], "+00:00");
        for f in [
            "%Y-%m-%dT%H:%M:%S%.f%:z",
            "%Y-%m-%dT%H:%M%:z",
            "%Y-%m-%dT%H%:z",
        ] {
            if let Ok(t) = DateTime::parse_from_str(&v, f) {
                return Some(t.with_timezone(&Utc));
            }
        }
        // `2006-01-02Z07:00`: a date at midnight in a zone.
        // `split_at_checked`: the last six bytes may start inside a multi-byte character
        // (a client's `until` is any string).
        let (date, zone) = v.split_at_checked(v.len().checked_sub(6)?)?;
        let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        return DateTime::parse_from_str(&format!("{d}T00:00:00{zone}"), "%Y-%m-%dT%H:%M:%S%:z")
            .ok()
            .map(|t| t.with_timezone(&Utc));
    }
    let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .or_else(|| NaiveDateTime::parse_from_str(&format!("{value}:00"), "%Y-%m-%dT%H:%M").ok())
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_times_and_timestamps() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        assert_eq!(until_seconds("10m", now).unwrap(), 1_700_000_000.0 - 600.0);
        assert_eq!(
            until_seconds("1h30m", now).unwrap(),
            1_700_000_000.0 - 5400.0
        );
        assert_eq!(
            until_seconds("1.5h", now).unwrap(),
            1_700_000_000.0 - 5400.0
        );
        assert_eq!(until_seconds("0", now).unwrap(), 0.0);
        // Found by fuzzing: a zone split inside a multi-byte character panicked.
        assert!(until_seconds("102--1#-4:΄Ϯ:΄Ϯ", now).is_err());
        assert_eq!(until_seconds("1600000000", now).unwrap(), 1_600_000_000.0);
        assert_eq!(until_seconds("1600000000.5", now).unwrap(), 1_600_000_000.5);
        assert_eq!(
            until_seconds("2020-09-13T12:26:40Z", now).unwrap(),
            1_600_000_000.0
        );
        assert_eq!(
            until_seconds("2020-09-13T14:26:40+02:00", now).unwrap(),
            1_600_000_000.0
        );
        assert!(until_seconds("2020-09-13", now).is_ok());
        assert!(until_seconds("2020-09-13T12", now).is_ok());
        assert_eq!(
            until_seconds("soon", now).unwrap_err(),
            "failed to parse value as time or duration: \"soon\""
        );
        assert!(until_seconds("2020-19-13", now).is_err());
        assert!(until_seconds("5x", now).is_err());
    }
}
