//! Times as Docker shows them: RFC 3339 with nanoseconds, and go-units' human durations.

use chrono::{DateTime, SecondsFormat, Utc};

/// Go's zero time, which Docker shows for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub fn now_rfc3339() -> String {
    rfc3339(Utc::now())
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Unix seconds of an RFC 3339 time, 0 when unparsable.
pub fn unix_seconds(s: &str) -> i64 {
    parse_rfc3339(s).map(|t| t.timestamp()).unwrap_or(0)
}

/// go-units `HumanDuration`, which `docker ps` uses for "Up 3 seconds".
pub fn human_duration(secs: f64) -> String {
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0 / 24.0 / 365.0) as i64)
}

/// Seconds elapsed since an RFC 3339 time (0 when unparsable or in the future).
pub fn seconds_since(s: &str) -> f64 {
    parse_rfc3339(s)
        .map(|t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0.2), "Less than a second");
        assert_eq!(human_duration(1.0), "1 second");
        assert_eq!(human_duration(33.0), "33 seconds");
        assert_eq!(human_duration(61.0), "About a minute");
        assert_eq!(human_duration(600.0), "10 minutes");
        assert_eq!(human_duration(3600.0), "About an hour");
        assert_eq!(human_duration(5.0 * 3600.0), "5 hours");
        assert_eq!(human_duration(3.0 * 86400.0), "3 days");
    }

    #[test]
    fn rfc3339_roundtrip() {
        let s = now_rfc3339();
        assert!(s.ends_with('Z'));
        assert!(parse_rfc3339(&s).is_some());
        assert_eq!(unix_seconds(ZERO_TIME), -62135596800);
    }
}
