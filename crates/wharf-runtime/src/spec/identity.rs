//! Who a process is and what its UTS names are: the last checks before a spec is written, so
//! that no path (create, start, exec, a stored config from an older version, an image's own
//! /etc/passwd) can hand the kernel an id or a name it would misread.
//!
//! `(uid_t)-1` (4294967295) means "leave unchanged" to `setresuid`/`setresgid`: a process told
//! to become that user would stay root. runc and moby's `user` package refuse every id above
//! 2^31-1 with the words below; the same range holds here.

/// The largest uid or gid a container process may have (moby/sys/user's `maxID`).
pub const MAX_ID: u32 = (1 << 31) - 1;

/// moby/sys/user's `ErrRange` text.
pub const ID_RANGE_MESSAGE: &str = "uids and gids must be in range 0-2147483647";

/// The kernel's limit for a hostname or domain name (`HOST_NAME_MAX`, `__NEW_UTS_LEN`).
pub const MAX_UTS_NAME: usize = 64;
/// RFC 1123's limit for one dot-separated label.
const MAX_LABEL: usize = 63;

/// Checks a uid, a gid or a supplementary group id.
pub fn check_id(id: u32) -> Result<u32, String> {
    if id > MAX_ID {
        return Err(ID_RANGE_MESSAGE.to_string());
    }
    Ok(id)
}

/// Parses a numeric uid or gid as Docker's `User` and `GroupAdd` write them. `None` when `s` is
/// not a number at all (a name, to look up); `Some(Err)` for a number out of range, negative
/// ones included.
pub fn parse_id(s: &str) -> Option<Result<u32, String>> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.starts_with('-') && digits.bytes().any(|b| b != b'0') {
        return Some(Err(ID_RANGE_MESSAGE.to_string()));
    }
    Some(match digits.parse::<u64>() {
        Ok(n) => u32::try_from(n)
            .map_err(|_| ID_RANGE_MESSAGE.to_string())
            .and_then(check_id),
        Err(_) => Err(ID_RANGE_MESSAGE.to_string()),
    })
}

/// A hostname or domain name the kernel takes as one (`sethostname`/`setdomainname`) and that
/// `/etc/hosts` and `/etc/hostname` hold as one word: dot-separated labels of letters, digits,
/// `-` and `_` (Docker users have names with underscores), each 1 to 63 bytes, 64 bytes at
/// most. `what` names the field in the message. An empty name is the caller's business.
pub fn check_uts_name(what: &str, name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid {what} {name:?}: {why}"));
    if name.len() > MAX_UTS_NAME {
        return bad(&format!(
            "longer than the kernel's {MAX_UTS_NAME} bytes ({} bytes)",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return bad(&format!(
            "{} are not allowed (found {c:?})",
            if c.is_control() {
                "control characters"
            } else {
                "whitespace characters"
            }
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return bad(&format!(
            "only letters, digits, '-', '_' and '.' are allowed (found {c:?})"
        ));
    }
    // A fully qualified name may end in its root's dot.
    let labels = name.strip_suffix('.').unwrap_or(name);
    if labels
        .split('.')
        .any(|l| l.is_empty() || l.len() > MAX_LABEL)
        && !name.is_empty()
    {
        return bad("each dot-separated label must be 1 to 63 characters long");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_moby_range_only() {
        assert_eq!(parse_id("0"), Some(Ok(0)));
        assert_eq!(parse_id("1000"), Some(Ok(1000)));
        assert_eq!(parse_id("2147483647"), Some(Ok(MAX_ID)));
        assert_eq!(parse_id("-0"), Some(Ok(0)));
        for bad in [
            "4294967295",
            "4294967294",
            "2147483648",
            "-1",
            "-4294967295",
            "99999999999999999999999",
        ] {
            assert_eq!(
                parse_id(bad),
                Some(Err(ID_RANGE_MESSAGE.to_string())),
                "{bad}"
            );
        }
        assert_eq!(parse_id("nobody"), None);
        assert_eq!(parse_id("-"), None);
        assert_eq!(parse_id(""), None);
        assert!(check_id(u32::MAX).is_err());
        assert!(check_id(MAX_ID).is_ok());
    }

    #[test]
    fn uts_names() {
        for ok in [
            "abc",
            "a",
            "my_host",
            "web-1.example.com",
            "example.com.",
            "ABC",
            &"a".repeat(63),
        ] {
            assert!(check_uts_name("Hostname", ok).is_ok(), "{ok}");
        }
        let e = check_uts_name("Hostname", "a\n6.6.6.6 injected.example").unwrap_err();
        assert!(e.contains("control characters are not allowed"), "{e}");
        assert!(e.starts_with("invalid Hostname \"a\\n6.6.6.6"), "{e}");
        for bad in [
            "a b",
            "a\tb",
            "a\u{0}b",
            "a\u{85}b",
            "a#b",
            "a/b",
            "é",
            "a..b",
            ".a",
            "a..",
            ".",
            &"a".repeat(64),
            &"a".repeat(65),
        ] {
            assert!(check_uts_name("Hostname", bad).is_err(), "{bad:?}");
        }
    }
}
