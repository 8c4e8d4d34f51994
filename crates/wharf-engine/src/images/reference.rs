//! Image references in Docker's familiar form: `busybox:latest`, `localhost:5000/a/b:v1`.

/// Normalizes to the familiar form with a tag: `docker.io/library/busybox` → `busybox:latest`.
pub fn normalize(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("invalid reference format".into());
    }
    let mut s = name;
    for p in [
        "docker.io/library/",
        "index.docker.io/library/",
        "docker.io/",
        "index.docker.io/",
    ] {
        if let Some(rest) = s.strip_prefix(p) {
            s = rest;
            break;
        }
    }
    let s = s.strip_prefix("library/").unwrap_or(s);
    let (repo, tag) = split_tag(s);
    validate_repo(repo)?;
    let tag = match tag {
        Some(t) => {
            validate_tag(t)?;
            t
        }
        None => "latest",
    };
    Ok(format!("{repo}:{tag}"))
}

/// Splits `repo[:tag]`, where a `:` before the last `/` belongs to a registry port.
pub fn split_tag(s: &str) -> (&str, Option<&str>) {
    let last_slash = s.rfind('/').map(|i| i + 1).unwrap_or(0);
    match s[last_slash..].rfind(':') {
        Some(i) => (&s[..last_slash + i], Some(&s[last_slash + i + 1..])),
        None => (s, None),
    }
}

fn validate_repo(repo: &str) -> Result<(), String> {
    let bad = || "invalid reference format".to_string();
    if repo.is_empty() || repo.len() > 255 {
        return Err(bad());
    }
    let mut parts = repo.split('/').peekable();
    let mut first = true;
    while let Some(p) = parts.next() {
        let is_registry = first
            && parts.peek().is_some()
            && (p.contains('.') || p.contains(':') || p == "localhost");
        first = false;
        if is_registry {
            if !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
            {
                return Err(bad());
            }
            continue;
        }
        if p.is_empty()
            || !p.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
            || !p.starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            if p.chars().any(|c| c.is_ascii_uppercase()) {
                return Err("invalid reference format: repository name must be lowercase".into());
            }
            return Err(bad());
        }
    }
    Ok(())
}

fn validate_tag(t: &str) -> Result<(), String> {
    let ok = !t.is_empty()
        && t.len() <= 128
        && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err("invalid reference format".into())
    }
}

/// Shell-style match of `pattern` (with `*` and `?`) against `s`, for `reference=` filters.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    fn rec(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                rec(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && rec(p, &s[1..]))
            }
            (Some(b'?'), Some(c)) if *c != b'/' => rec(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => rec(&p[1..], &s[1..]),
            _ => false,
        }
    }
    rec(pattern.as_bytes(), s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize("busybox").unwrap(), "busybox:latest");
        assert_eq!(
            normalize("docker.io/library/captest").unwrap(),
            "captest:latest"
        );
        assert_eq!(
            normalize("localhost:5000/a/b").unwrap(),
            "localhost:5000/a/b:latest"
        );
        assert_eq!(
            normalize("localhost:5000/a/b:v1").unwrap(),
            "localhost:5000/a/b:v1"
        );
        assert!(normalize("Busybox").is_err());
        assert!(normalize("a b").is_err());
        assert!(normalize("").is_err());
    }

    #[test]
    fn globs() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("busybox", "busybox"));
        assert!(!glob_match("busy", "busybox"));
        assert!(glob_match("*:latest", "busybox:latest"));
    }
}
