//! Image references in Docker's familiar form: `busybox:latest`, `localhost:5000/a/b:v1`,
//! `busybox@sha256:...`.

use wharf_distribution::Reference;

/// Normalizes a name as the images' names are stored, by Docker's grammar and words
/// (`wharf_distribution::Reference`): the familiar form with the default tag
/// (`docker.io/library/busybox` → `busybox:latest`), or `repo@digest` for a reference by
/// digest, whose tag (if any) is dropped as dockerd's reference store drops it on lookup.
pub fn normalize(name: &str) -> Result<String, String> {
    let r = Reference::parse_normalized_named(name.trim()).map_err(|e| e.to_string())?;
    Ok(familiar_key(r))
}

/// A reference's stored name: `repo:tag` or, when it names a digest, `repo@digest`.
pub fn familiar_key(r: Reference) -> String {
    match r.digest().cloned() {
        Some(d) => r.trim().with_digest(d).familiar_string(),
        None => r.with_default_tag().familiar_string(),
    }
}

/// A name to create as a tag (`docker tag`, an import's `repo`): [`normalize`]d, and never a
/// digest, which only a pull records. `digest_words` is dockerd's refusal for the caller.
pub fn tag_reference(name: &str, digest_words: &str) -> Result<String, String> {
    let r = Reference::parse_normalized_named(name.trim()).map_err(|e| e.to_string())?;
    if r.digest().is_some() {
        return Err(digest_words.to_owned());
    }
    Ok(r.with_default_tag().familiar_string())
}

/// Whether a stored name is a repository digest (`repo@sha256:...`) rather than a tag.
pub fn is_digest_name(name: &str) -> bool {
    name.contains('@')
}

/// The repository of a stored name, tag or digest (`localhost:5000/a` of `localhost:5000/a:1`).
pub fn repository_of(name: &str) -> &str {
    match name.split_once('@') {
        Some((repo, _)) => repo,
        None => split_tag(name).0,
    }
}

/// Splits `repo[:tag]`, where a `:` before the last `/` belongs to a registry port.
pub fn split_tag(s: &str) -> (&str, Option<&str>) {
    let last_slash = s.rfind('/').map(|i| i + 1).unwrap_or(0);
    match s[last_slash..].rfind(':') {
        Some(i) => (&s[..last_slash + i], Some(&s[last_slash + i + 1..])),
        None => (s, None),
    }
}

/// Shell-style match of `pattern` (with `*` and `?`) against `s`, for `reference=` filters.
///
/// Neither wildcard crosses a `/` (Go's `path.Match`), so the `/`-separated segments match one
/// to one, each in time linear in its pattern times its name: a backtracking matcher took
/// exponential time (and stack) on a client's `*****…` pattern.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let mut ps = pattern.split('/');
    let mut ss = s.split('/');
    loop {
        match (ps.next(), ss.next()) {
            (None, None) => return true,
            (Some(p), Some(n)) if segment_match(p, n) => {}
            _ => return false,
        }
    }
}

/// One segment (no `/` in either): the greedy match that backs up to the last `*` only.
fn segment_match(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    let (mut pi, mut si) = (0, 0);
    // After a `*`: the pattern index just past it and the name index it has consumed up to.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, si));
                pi += 1;
            }
            Some(&c) if c == '?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((after, upto)) => {
                    star = Some((after, upto + 1));
                    pi = after;
                    si = upto + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
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
        assert_eq!(normalize("library/a/b").unwrap(), "library/a/b:latest");
        assert_eq!(
            normalize("docker.io/library/a/b:v").unwrap(),
            "library/a/b:v"
        );
        assert_eq!(normalize("library/busybox:1").unwrap(), "busybox:1");
        assert_eq!(
            normalize("Busybox").unwrap_err(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        let hex = "a".repeat(64);
        let pinned = format!("busybox@sha256:{hex}");
        assert_eq!(normalize(&pinned).unwrap(), pinned);
        assert_eq!(
            normalize(&format!("docker.io/library/busybox:1@sha256:{hex}")).unwrap(),
            pinned,
            "the tag goes, as dockerd's lookups drop it"
        );
        assert_eq!(
            tag_reference(&pinned, "refusing to create a tag with a digest reference").unwrap_err(),
            "refusing to create a tag with a digest reference"
        );
        assert_eq!(tag_reference("a", "x").unwrap(), "a:latest");
        assert!(is_digest_name(&pinned) && !is_digest_name("localhost:5000/a:1"));
        assert_eq!(repository_of(&pinned), "busybox");
        assert_eq!(repository_of("localhost:5000/a:1"), "localhost:5000/a");
        assert!(normalize("a b").is_err());
        assert!(normalize("").is_err());
    }

    #[test]
    fn globs() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("busybox", "busybox"));
        assert!(!glob_match("busy", "busybox"));
        assert!(glob_match("*:latest", "busybox:latest"));
        assert!(glob_match("*/*:v?", "a/b:v1"));
        assert!(!glob_match("*", "a/b"));
        assert!(!glob_match("a?b", "a/b"));
        assert!(glob_match("a*b*c", "axxbyybzc"));
        assert!(!glob_match("a*b*c", "axxbyyb"));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
    }

    #[test]
    fn globs_in_linear_time() {
        // Exponential for a backtracking matcher: this would not finish.
        let stars = "*".repeat(5000);
        assert!(!glob_match(&format!("{stars}x"), "busybox:latest"));
        assert!(glob_match(&stars, "busybox:latest"));
        let many = "*a".repeat(2000);
        assert!(!glob_match(&format!("{many}c"), &"a".repeat(300)));
    }
}
