//! Image references with Docker's grammar and normalisation (github.com/distribution/reference):
//! `busybox` is `docker.io/library/busybox`, `localhost:5000/a:1@sha256:…` keeps its registry,
//! and a reference Docker refuses is refused with Docker's words, since the CLI shows them.

use std::fmt;

use crate::digest::{is_digest_shaped, Digest, DigestError};

/// The registry Docker assumes when a name carries none.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker Hub's old name, which normalises to [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Official images live under this namespace on Docker Hub.
const OFFICIAL_REPO_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository path (the part after the registry) Docker accepts.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// Why a string is not a reference; every text is the one Docker prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid tag format")]
    InvalidTag,
    /// The grammar's own refusal, for upper case outside the repository path (for example in a
    /// first component that cannot be a registry).
    #[error("repository name must be lowercase")]
    ContainsUppercase,
    /// The normalising parser's refusal, naming the path as Docker does.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    NotLowercase(String),
    #[error("repository name must have at least one component")]
    NameEmpty,
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    /// A bare 64-hex string is an image id, never a name.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    #[error(transparent)]
    Digest(#[from] DigestError),
}

/// A named reference: registry (empty only from [`Reference::parse`] of a name without one),
/// repository path, and an optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses what a user typed the way the docker CLI does (`ParseNormalizedNamed`): the
    /// registry defaults to docker.io, official images get `library/`, `index.docker.io`
    /// becomes docker.io. No tag is added; see [`Reference::with_default_tag`].
    pub fn parse_normalized_named(s: &str) -> Result<Self, ReferenceError> {
        if is_image_id(s) {
            return Err(ReferenceError::HexName(s.to_owned()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::NotLowercase(remote.to_owned()));
        }
        Self::parse(&format!("{domain}/{remainder}"))
    }

    /// What the daemon stores and pulls (`ParseDockerRef`): normalised, `:latest` when neither
    /// tag nor digest is given, and the tag dropped when a digest pins the content anyway.
    pub fn parse_docker_ref(s: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse_normalized_named(s)?;
        if r.digest.is_some() {
            r.tag = None;
            Ok(r)
        } else {
            Ok(r.with_default_tag())
        }
    }

    /// The grammar alone, without normalisation (`reference.Parse`): `busybox` stays a bare
    /// path with no registry.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
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
        let digest = parts.digest.map(Digest::parse).transpose()?;
        Ok(Reference {
            domain: parts.domain.to_owned(),
            path: parts.path.to_owned(),
            tag: parts.tag.map(str::to_owned),
            digest,
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within its registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What a registry is asked for: the digest when there is one (it wins over a tag, as
    /// in dockerd), else the tag, else `latest`.
    pub fn tag_or_digest(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// Registry and path (`docker.io/library/busybox`), without tag or digest.
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The name as the docker CLI shows it: docker.io left out, and `library/` too when a
    /// single component follows it (`library/foo/bar` keeps its prefix).
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.path.clone(),
        }
    }

    /// The whole reference in the CLI's short form (`busybox:latest`, `localhost:5000/a@sha256:…`).
    pub fn familiar_string(&self) -> String {
        self.with_suffixes(self.familiar_name())
    }

    /// `:latest` added when the reference names neither a tag nor a digest.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_owned());
        }
        self
    }

    pub fn with_tag(mut self, tag: &str) -> Result<Self, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidTag);
        }
        self.tag = Some(tag.to_owned());
        Ok(self)
    }

    pub fn with_digest(mut self, digest: Digest) -> Self {
        self.digest = Some(digest);
        self
    }

    /// The same repository without tag or digest.
    pub fn trim(mut self) -> Self {
        self.tag = None;
        self.digest = None;
        self
    }

    fn with_suffixes(&self, mut s: String) -> String {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest.as_str());
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffixes(self.name()))
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_normalized_named(s)
    }
}

/// A string the grammar accepts, cut into its parts (digest not yet validated).
struct Parts<'a> {
    domain: &'a str,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// `name[:tag][@digest]`. The cuts are forced: only the digest may follow `@`, and a `:` after
/// the last `/` can only start a tag, since path components never contain one.
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
    // A first component that is a valid registry is one, as the grammar's optional group
    // prefers; otherwise the whole name must be a path.
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

/// Docker's guess at the registry in what a user typed (`splitDockerDomain`): a first component
/// is a registry when it is `localhost`, has a `.` or `:`, or has upper case (which a path may
/// not). Returns the registry and the rest.
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

/// `[\w][\w.-]{0,127}`: upper case is allowed in tags.
fn is_tag(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut bytes = s.bytes();
    s.len() <= TAG_LENGTH_MAX
        && bytes.next().is_some_and(word)
        && bytes.all(|b| word(b) || b == b'.' || b == b'-')
}

/// A host name of dot-separated labels (upper case allowed) or a bracketed IPv6 address, with an
/// optional numeric port.
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

/// Slash-separated path components.
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

#[cfg(test)]
mod tests;
