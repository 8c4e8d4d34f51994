//! API versions: the one we advertise and the range we accept.

use std::cmp::Ordering;
use std::fmt;

/// The version Wharf advertises and fully serves.
pub const API_VERSION: ApiVersion = ApiVersion {
    major: 1,
    minor: 44,
};
/// The oldest version a client may ask for.
pub const MIN_API_VERSION: ApiVersion = ApiVersion {
    major: 1,
    minor: 24,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    /// Parses `1.44` (no leading `v`).
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        Some(ApiVersion {
            major: a.parse().ok()?,
            minor: b.parse().ok()?,
        })
    }
}

impl PartialOrd for ApiVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ApiVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor).cmp(&(other.major, other.minor))
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why a requested version cannot be served, worded as dockerd words it.
pub fn check_version(v: ApiVersion) -> Result<(), String> {
    if v > API_VERSION {
        return Err(format!(
            "client version {v} is too new. Maximum supported API version is {API_VERSION}"
        ));
    }
    if v < MIN_API_VERSION {
        return Err(format!(
            "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders() {
        let v = ApiVersion::parse("1.41").unwrap();
        assert!(v < API_VERSION);
        assert!(ApiVersion::parse("1.100").unwrap() > API_VERSION);
        assert!(ApiVersion::parse("x.1").is_none());
        assert!(check_version(v).is_ok());
        assert!(check_version(ApiVersion::parse("1.99").unwrap())
            .unwrap_err()
            .contains("too new"));
        assert!(check_version(ApiVersion::parse("1.11").unwrap())
            .unwrap_err()
            .contains("too old"));
    }
}
