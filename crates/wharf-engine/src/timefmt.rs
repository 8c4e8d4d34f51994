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

pub use wharf_api::units::human_duration;

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
    fn rfc3339_roundtrip() {
        let s = now_rfc3339();
        assert!(s.ends_with('Z'));
        assert!(parse_rfc3339(&s).is_some());
        assert_eq!(unix_seconds(ZERO_TIME), -62135596800);
    }
}
