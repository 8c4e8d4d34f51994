//! Query-string values as real clients send them.

/// Booleans: the CLI sends `1`/`true`, docker-py sends Python's `True`/`False`, and an empty
/// value (`?all=`) or `0` means false, as in dockerd.
pub fn parse_bool(v: &str) -> bool {
    !matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "false" | "no" | "off" | "none"
    )
}

#[cfg(test)]
mod tests {
    use super::parse_bool;

    #[test]
    fn python_and_cli_booleans() {
        for t in ["1", "true", "True", "TRUE", "yes"] {
            assert!(parse_bool(t), "{t}");
        }
        for f in ["0", "false", "False", "", "None"] {
            assert!(!parse_bool(f), "{f}");
        }
    }
}
