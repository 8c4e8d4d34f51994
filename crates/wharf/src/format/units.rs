//! go-units' human sizes and durations, Go's time printing, and the `--since`/`--until` parser,
//! written to produce byte-identical output to the docker CLI.

use anyhow::{bail, Result};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// `units.HumanSizeWithPrecision(size, 3)`, which docker uses for every size column.
pub fn human_size(size: f64) -> String {
    human_size_precision(size, 3)
}

pub fn human_size_precision(mut size: f64, precision: usize) -> String {
    let mut i = 0;
    while size >= 1000.0 && i < DECIMAL_UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_format_g(size, precision), DECIMAL_UNITS[i])
}

/// Go's `%.*g`: `precision` significant digits, trailing zeros dropped, exponent form when the
/// exponent is < -4 or >= precision (so 999.9 with 3 digits prints `1e+03`, as docker does).
pub fn go_format_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let p = precision.max(1);
    // Rounding first decides the exponent: 999.9 rounds to 1.00e3.
    let sci = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => (sci.clone(), 0),
    };
    if exp < -4 || exp >= p as i32 {
        let m = trim_zeros(&mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = (p as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}"))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// go-units `BytesSize`: binary units, 4 significant digits (`info`'s Total Memory).
pub fn bytes_size(mut size: f64) -> String {
    const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut i = 0;
    while size >= 1024.0 && i < BINARY_UNITS.len() - 1 {
        size /= 1024.0;
        i += 1;
    }
    format!("{}{}", go_format_g(size, 4), BINARY_UNITS[i])
}

/// go-units `HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    wharf_api::units::human_duration(d.as_secs_f64())
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `HumanDuration(now - created) + " ago"`, docker's CREATED column.
pub fn since_ago(created_unix: i64) -> String {
    let secs = (now_unix() - created_unix).max(0) as u64;
    format!("{} ago", human_duration(Duration::from_secs(secs)))
}

/// Go's `time.Unix(t, 0).String()` in UTC: `2026-11-23 18:30:04 +0000 UTC`.
pub fn go_time_string(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
}

fn civil(unix: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(86_400);
    let rem = unix.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Go's `time.ParseDuration` for the units docker users type (`1h30m`, `10m`, `90s`, `1.5h`).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

/// docker's `GetTimestamp` for `--since`/`--until`: a duration before now (`10m`), a unix
/// timestamp (`1700000000[.nanos]`) or RFC 3339 (with or without zone, or just a date; UTC when
/// no zone is given). Returns unix seconds.
pub fn parse_timestamp(value: &str, now: i64) -> Result<i64> {
    if let Some(d) = parse_go_duration(value) {
        return Ok(now - d.as_secs() as i64);
    }
    if let Some(secs) = value.split('.').next().and_then(|s| s.parse::<i64>().ok()) {
        if value
            .split_once('.')
            .is_none_or(|(_, f)| f.chars().all(|c| c.is_ascii_digit()))
        {
            return Ok(secs);
        }
    }
    match parse_rfc3339(value) {
        Some(t) => Ok(t),
        None => bail!("failed to parse value as time or duration: {value:?}"),
    }
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let num = |t: &str| t.parse::<i64>().ok();
    let (date, time) = match s.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut dp = date.split('-');
    let y = num(dp.next()?)?;
    let mo = num(dp.next()?)? as u32;
    let d = num(dp.next()?)? as u32;
    if dp.next().is_some() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    if let Some(t) = time {
        let (clock, offset) = if let Some(c) = t.strip_suffix(['Z', 'z']) {
            (c, 0)
        } else if let Some(i) = t.rfind(['+', '-']) {
            let (c, z) = t.split_at(i);
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (zh, zm) = z[1..].split_once(':').unwrap_or((&z[1..], "0"));
            (c, sign * (num(zh)? * 3600 + num(zm)? * 60))
        } else {
            (t, 0)
        };
        let clock = clock.split('.').next()?;
        let mut cp = clock.split(':');
        let h = num(cp.next()?)?;
        let mi = cp.next().map_or(Some(0), num)?;
        let se = cp.next().map_or(Some(0), num)?;
        secs += h * 3600 + mi * 60 + se - offset;
    }
    Some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_size_matches_go_units() {
        let cases = [
            (0.0, "0B"),
            (999.0, "999B"),
            (1000.0, "1kB"),
            (1024.0, "1.02kB"),
            (1_983_000.0, "1.98MB"),
            (4_261_234.0, "4.26MB"),
            (999_900.0, "1e+03kB"),
            (12_345_678_901.0, "12.3GB"),
            (100_000.0, "100kB"),
            (1_500_000.0, "1.5MB"),
        ];
        for (n, want) in cases {
            assert_eq!(human_size(n), want, "{n}");
        }
        assert_eq!(bytes_size(8_239_222_784.0), "7.673GiB");
    }

    #[test]
    fn human_duration_matches_go_units() {
        let s = Duration::from_secs;
        let cases = [
            (Duration::from_millis(300), "Less than a second"),
            (s(1), "1 second"),
            (s(59), "59 seconds"),
            (s(60), "About a minute"),
            (s(119), "About a minute"),
            (s(120), "2 minutes"),
            (s(59 * 60 + 59), "59 minutes"),
            (s(3600), "About an hour"),
            (s(5400), "2 hours"),
            (s(47 * 3600), "47 hours"),
            (s(48 * 3600), "2 days"),
            (s(14 * 86400), "2 weeks"),
            (s(60 * 86400), "2 months"),
            (s(800 * 86400), "2 years"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn go_time_string_is_utc() {
        assert_eq!(go_time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_time_string(1_700_000_000),
            "2023-11-14 22:13:20 +0000 UTC"
        );
    }

    #[test]
    fn timestamps_parse_like_docker() {
        let now = 1_700_000_000;
        assert_eq!(parse_timestamp("10m", now).unwrap(), now - 600);
        assert_eq!(parse_timestamp("1h30m", now).unwrap(), now - 5400);
        assert_eq!(parse_timestamp("1600000000", now).unwrap(), 1_600_000_000);
        assert_eq!(parse_timestamp("1600000000.5", now).unwrap(), 1_600_000_000);
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z", now).unwrap(),
            1_700_000_000
        );
        assert_eq!(
            parse_timestamp("2023-11-14T23:13:20.123+01:00", now).unwrap(),
            1_700_000_000
        );
        assert_eq!(
            parse_timestamp("2023-11-14", now).unwrap(),
            1_700_000_000 - 80_000
        );
        assert!(parse_timestamp("yesterday", now).is_err());
    }
}
