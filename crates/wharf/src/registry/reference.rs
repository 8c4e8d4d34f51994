//! Image references as the docker CLI parses what a user types (`ParseNormalizedNamed` of
//! github.com/distribution/reference): `busybox` is `docker.io/library/busybox`, a first
//! component with a `.` or `:` (or `localhost`) is a registry, and what docker refuses is
//! refused in its words, since the CLI prints them.
//!
//! The daemon has the same grammar in `wharf-distribution::reference`; the crate graph keeps
//! the CLI to `wharf-client` and `wharf-api`, so the CLI carries its own copy, tested on the
//! same cases. Keep the two in step.

use std::fmt;

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// Why a string is not a reference, in docker's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    InvalidFormat,
    ContainsUppercase,
    NotLowercase(String),
    NameEmpty,
    NameTooLong,
    HexName(String),
    DigestFormat,
    DigestLength,
    DigestUnsupported,
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReferenceError::InvalidFormat => f.write_str("invalid reference format"),
            ReferenceError::ContainsUppercase => f.write_str("repository name must be lowercase"),
            ReferenceError::NotLowercase(p) => write!(
                f,
                "invalid reference format: repository name ({p}) must be lowercase"
            ),
            ReferenceError::NameEmpty => {
                f.write_str("repository name must have at least one component")
            }
            ReferenceError::NameTooLong => write!(
                f,
                "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
            ),
            ReferenceError::HexName(s) => write!(
                f,
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            ),
            ReferenceError::DigestFormat => f.write_str("invalid checksum digest format"),
            ReferenceError::DigestLength => f.write_str("invalid checksum digest length"),
            ReferenceError::DigestUnsupported => f.write_str("unsupported digest algorithm"),
        }
    }
}

impl std::error::Error for ReferenceError {}

/// A named reference: registry, repository path, optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// `ParseNormalizedNamed`: the registry defaults to docker.io, official images get
    /// `library/`, `index.docker.io` becomes docker.io; no tag is added.
    pub fn parse_normalized_named(s: &str) -> Result<Reference, ReferenceError> {
        if is_image_id(s) {
            return Err(ReferenceError::HexName(s.to_owned()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::NotLowercase(remote.to_owned()));
        }
        Reference::parse(&format!("{domain}/{remainder}"))
    }

    /// `ParseAnyReference`: `None` for an image id (64 hex digits, or a whole digest), which
    /// names no repository; else the named reference or docker's error.
    pub fn parse_any(s: &str) -> Result<Option<Reference>, ReferenceError> {
        if is_image_id(s) || validate_digest(s).is_ok() {
            return Ok(None);
        }
        Reference::parse_normalized_named(s).map(Some)
    }

    /// The grammar alone (`reference.Parse`).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let Some(parts) = split_reference(s) else {
            return Err(if s.is_empty() {
                ReferenceError::NameEmpty
            } else if split_reference(&s.to_lowercase()).is_some() {
                ReferenceError::ContainsUppercase
            } else {
                ReferenceError::InvalidFormat
            });
        };
        if parts.path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        if let Some(d) = parts.digest {
            validate_digest(d)?;
        }
        Ok(Reference {
            domain: parts.domain.to_owned(),
            path: parts.path.to_owned(),
            tag: parts.tag.map(str::to_owned),
            digest: parts.digest.map(str::to_owned),
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Neither tag nor digest (`reference.IsNameOnly`).
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// Registry and path (`Name()`): `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// `FamiliarName`: docker.io left out, and `library/` before a single component.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.path.clone(),
        }
    }

    /// `FamiliarString`: `busybox:latest`, `localhost:5000/a@sha256:…`.
    pub fn familiar_string(&self) -> String {
        self.with_suffixes(self.familiar_name())
    }

    /// `TagNameOnly`: `:latest` when neither tag nor digest is given.
    pub fn with_default_tag(mut self) -> Reference {
        if self.is_name_only() {
            self.tag = Some(DEFAULT_TAG.to_owned());
        }
        self
    }

    /// What the Engine API takes as `tag` (`getAPITagFromNamedRef`): the digest when there is
    /// one, else the tag, else `latest`.
    pub fn api_tag(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    fn with_suffixes(&self, mut s: String) -> String {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest);
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffixes(self.name()))
    }
}

struct Parts<'a> {
    domain: &'a str,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// `name[:tag][@digest]`: only a digest may follow `@`, and a `:` after the last `/` can only
/// start a tag, since path components never hold one.
fn split_reference(s: &str) -> Option<Parts<'_>> {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) if is_digest_shaped(digest) => (rest, Some(digest)),
        Some(_) => return None,
        None => (s, None),
    };
    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            (&rest[..colon], Some(&rest[colon + 1..]))
        }
        _ => (rest, None),
    };
    if tag.is_some_and(|t| !is_tag(t)) {
        return None;
    }
    let (domain, path) = match name.split_once('/') {
        Some((domain, path)) if is_domain(domain) && is_remote_name(path) => (domain, path),
        _ if is_remote_name(name) => ("", name),
        _ => return None,
    };
    Some(Parts {
        domain,
        path,
        tag,
        digest,
    })
}

/// `splitDockerDomain`: a first component is a registry when it is `localhost`, has a `.` or
/// `:`, or has upper case (which a path may not).
fn split_docker_domain(name: &str) -> (&str, String) {
    let (domain, remote) = match name.split_once('/') {
        None => return (DEFAULT_DOMAIN, format!("{OFFICIAL_REPO_PREFIX}{name}")),
        Some((LEGACY_DEFAULT_DOMAIN, rest)) => (DEFAULT_DOMAIN, rest),
        Some((first, rest))
            if first == "localhost"
                || first.contains(['.', ':'])
                || first.to_lowercase() != first =>
        {
            (first, rest)
        }
        Some(_) => (DEFAULT_DOMAIN, name),
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        return (domain, format!("{OFFICIAL_REPO_PREFIX}{remote}"));
    }
    (domain, remote.to_owned())
}

fn is_image_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_tag(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut bytes = s.bytes();
    s.len() <= TAG_LENGTH_MAX
        && bytes.next().is_some_and(word)
        && bytes.all(|b| word(b) || b == b'.' || b == b'-')
}

fn is_domain(s: &str) -> bool {
    let is_port =
        |p: Option<&str>| p.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if let Some(inner) = s.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            },
        };
        return !addr.is_empty()
            && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
            && is_port(port);
    }
    let (host, port) = match s.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    };
    let label = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    host.split('.').all(label) && is_port(port)
}

fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// `[a-z0-9]+` runs joined by exactly one separator: `.`, `_`, `__` or any number of `-`.
fn is_path_component(s: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        let run = bytes[i..].iter().take_while(|b| alnum(b)).count();
        if run == 0 {
            return false;
        }
        i += run;
        if i == bytes.len() {
            return true;
        }
        let sep = &s[i..i + bytes[i..].iter().take_while(|b| !alnum(b)).count()];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
        i += sep.len();
    }
}

/// The grammar's digest: an algorithm of letter-led parts, `:`, at least 32 hex digits.
fn is_digest_shaped(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && !algorithm.is_empty()
        && algorithm.split(['-', '_', '+', '.']).all(|part| {
            let mut b = part.bytes();
            b.next().is_some_and(|c| c.is_ascii_alphabetic())
                && b.all(|c| c.is_ascii_alphanumeric())
        })
}

/// go-digest's `Validate` for the algorithms docker knows.
fn validate_digest(s: &str) -> Result<(), ReferenceError> {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return Err(ReferenceError::DigestFormat);
    };
    let bytes = match algorithm {
        "sha256" => 32,
        "sha384" => 48,
        "sha512" => 64,
        _ => {
            let any_algorithm = algorithm.split(['.', '+', '_', '-']).all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
            return Err(if any_algorithm {
                ReferenceError::DigestUnsupported
            } else {
                ReferenceError::DigestFormat
            });
        }
    };
    if hex.len() != bytes * 2 {
        return Err(ReferenceError::DigestLength);
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ReferenceError::DigestFormat);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    #[test]
    fn normalised_like_docker() {
        let d = format!("sha256:{H}");
        let ok: Vec<(String, &str, String)> = vec![
            (
                "busybox".into(),
                "docker.io/library/busybox",
                "busybox".into(),
            ),
            (
                "library/busybox:1".into(),
                "docker.io/library/busybox:1",
                "busybox:1".into(),
            ),
            (
                "index.docker.io/busybox".into(),
                "docker.io/library/busybox",
                "busybox".into(),
            ),
            (
                "dmcgowan/app".into(),
                "docker.io/dmcgowan/app",
                "dmcgowan/app".into(),
            ),
            (
                "library/foo/bar".into(),
                "docker.io/library/foo/bar",
                "library/foo/bar".into(),
            ),
            ("localhost/x".into(), "localhost/x", "localhost/x".into()),
            (
                "localhost:5000/x:v1".into(),
                "localhost:5000/x:v1",
                "localhost:5000/x:v1".into(),
            ),
            (
                "127.0.0.1:5000/a/b".into(),
                "127.0.0.1:5000/a/b",
                "127.0.0.1:5000/a/b".into(),
            ),
            ("[::1]:5000/x".into(), "[::1]:5000/x", "[::1]:5000/x".into()),
            (
                "Example.com/x".into(),
                "Example.com/x",
                "Example.com/x".into(),
            ),
            (
                format!("busybox:1.36@{d}"),
                "docker.io/library/busybox:1.36@sha256:ffff",
                format!("busybox:1.36@{d}"),
            ),
        ];
        for (input, full, familiar) in ok {
            let r = Reference::parse_normalized_named(&input).unwrap();
            assert!(r.to_string().starts_with(full), "{input}: {r}");
            assert_eq!(r.familiar_string(), familiar, "{input}");
        }
        let r = Reference::parse_normalized_named(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.api_tag(), d);
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert!(!r.is_name_only());
        assert_eq!(Reference::parse_any(H), Ok(None));
        assert_eq!(Reference::parse_any(&d), Ok(None));
        assert!(Reference::parse_any("busybox").unwrap().is_some());
        let r = Reference::parse_normalized_named("localhost:5000/x").unwrap();
        assert_eq!(
            (r.domain(), r.api_tag().as_str()),
            ("localhost:5000", "latest")
        );
        assert_eq!(r.with_default_tag().to_string(), "localhost:5000/x:latest");
    }

    #[test]
    fn refused_in_dockers_words() {
        let cases: Vec<(String, String)> = vec![
            (
                "Busybox".into(),
                "invalid reference format: repository name (library/Busybox) must be lowercase"
                    .into(),
            ),
            (
                "FOO_X/bar".into(),
                "repository name must be lowercase".into(),
            ),
            (
                H.into(),
                format!(
                    "invalid repository name ({H}), cannot specify 64-byte hexadecimal strings"
                ),
            ),
            (String::new(), "invalid reference format".into()),
            ("foo:bar:baz".into(), "invalid reference format".into()),
            ("a..b".into(), "invalid reference format".into()),
            ("localhost:/foo".into(), "invalid reference format".into()),
            (
                "busybox@sha256:abc".into(),
                "invalid reference format".into(),
            ),
            (
                format!("busybox@sha256:{}", &H[1..]),
                "invalid checksum digest length".into(),
            ),
            (
                format!("busybox@md5:{}", &H[..32]),
                "unsupported digest algorithm".into(),
            ),
            (
                format!("x/{}", "a".repeat(256)),
                "repository name must not be more than 255 characters".into(),
            ),
        ];
        for (input, want) in cases {
            let e = Reference::parse_normalized_named(&input).unwrap_err();
            assert_eq!(e.to_string(), want, "{input:?}");
        }
    }
}
