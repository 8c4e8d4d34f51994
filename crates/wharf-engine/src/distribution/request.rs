//! What a pull asks for, read from `fromImage`, `tag`, `platform` and `X-Registry-Auth` as
//! dockerd's `postImagesCreate` reads them.

use crate::error::EngineError;
use wharf_distribution::manifest::Platform;
use wharf_distribution::{Credentials, Digest, Reference};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A tag, a digest, or both (the digest is what is pulled).
    One(Reference),
    /// A bare name and no tag: every tag of the repository (`docker pull -a`).
    AllTags(Reference),
}

/// `fromImage` and `tag` combined as dockerd does: `tag` may be a digest (then any tag of
/// `fromImage` goes); a trailing `:` (`pull -a` of old clients) is dropped; without either the
/// pull is of every tag.
pub(crate) fn target(from_image: &str, tag: &str) -> Result<Target, EngineError> {
    let image = from_image.strip_suffix(':').unwrap_or(from_image);
    let invalid = |e: wharf_distribution::ReferenceError| EngineError::invalid(e.to_string());
    let mut r = Reference::parse_normalized_named(image).map_err(invalid)?;
    if !tag.is_empty() {
        r = match Digest::parse(tag) {
            Ok(d) => r.trim().with_digest(d),
            Err(_) => r.with_tag(tag).map_err(invalid)?,
        };
    }
    if r.familiar_name() == "scratch" {
        return Err(EngineError::Forbidden(
            "'scratch' is a reserved name".into(),
        ));
    }
    Ok(if r.tag().is_none() && r.digest().is_none() {
        Target::AllTags(r)
    } else {
        Target::One(r)
    })
}

/// `X-Registry-Auth`: like dockerd, a header that does not decode is no credentials at all
/// ("for a pull it is not an error if no auth was given").
pub(crate) fn credentials(header: &str) -> Credentials {
    if header.trim().is_empty() {
        return Credentials::Anonymous;
    }
    match Credentials::from_x_registry_auth(header) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "X-Registry-Auth does not decode; pulling anonymously");
            Credentials::Anonymous
        }
    }
}

/// `platform`, empty for the daemon's own.
pub(crate) fn platform(p: &str) -> Result<Option<Platform>, EngineError> {
    if p.trim().is_empty() {
        return Ok(None);
    }
    Platform::parse(p)
        .map(Some)
        .map_err(|e| EngineError::invalid(e.to_string()))
}

/// containerd's `platforms.Format`: `os/arch[/variant]`.
pub(crate) fn format_platform(p: &Platform) -> String {
    match p.variant.as_deref() {
        Some(v) if !v.is_empty() => format!("{}/{}/{v}", p.os, p.architecture),
        _ => format!("{}/{}", p.os, p.architecture),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(from: &str, tag: &str) -> String {
        match target(from, tag).unwrap() {
            Target::One(r) => r.to_string(),
            Target::AllTags(r) => format!("all of {r}"),
        }
    }

    #[test]
    fn from_image_and_tag_combine_as_dockerd_does() {
        let hex = "e".repeat(64);
        assert_eq!(one("busybox", "latest"), "docker.io/library/busybox:latest");
        assert_eq!(one("localhost:5000/x", "v1"), "localhost:5000/x:v1");
        // The tag parameter wins over a tag in the name.
        assert_eq!(one("busybox:1", "2"), "docker.io/library/busybox:2");
        // A name with its tag and no parameter.
        assert_eq!(one("busybox:1.36", ""), "docker.io/library/busybox:1.36");
        // A digest in the tag parameter replaces any tag.
        assert_eq!(
            one("busybox:1", &format!("sha256:{hex}")),
            format!("docker.io/library/busybox@sha256:{hex}")
        );
        assert_eq!(
            one(&format!("busybox@sha256:{hex}"), ""),
            format!("docker.io/library/busybox@sha256:{hex}")
        );
        // No tag at all: every tag (pull -a), also with old clients' trailing colon.
        assert_eq!(one("busybox", ""), "all of docker.io/library/busybox");
        assert_eq!(one("busybox:", ""), "all of docker.io/library/busybox");
    }

    #[test]
    fn bad_requests_in_dockerds_words() {
        let err = |from: &str, tag: &str| target(from, tag).unwrap_err();
        let e = err("Busybox", "latest");
        assert_eq!(e.kind(), wharf_api::ErrorKind::InvalidArgument);
        assert_eq!(
            e.to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(err("busybox", "a b").to_string(), "invalid tag format");
        // A short digest is no digest, and no tag either.
        assert_eq!(
            err("busybox", "sha256:abc").to_string(),
            "invalid tag format"
        );
        let e = err("scratch", "latest");
        assert_eq!(e.kind(), wharf_api::ErrorKind::Forbidden);
        assert_eq!(e.to_string(), "'scratch' is a reserved name");
    }

    #[test]
    fn credentials_that_do_not_decode_are_anonymous() {
        assert_eq!(credentials(""), Credentials::Anonymous);
        assert_eq!(credentials("!!not base64!!"), Credentials::Anonymous);
    }

    #[test]
    fn platforms_print_as_containerd() {
        let p = Platform {
            architecture: "arm".into(),
            os: "linux".into(),
            os_version: None,
            variant: Some("v7".into()),
        };
        assert_eq!(format_platform(&p), "linux/arm/v7");
        let host = Platform::host();
        assert_eq!(
            format_platform(&host),
            format!("linux/{}", host.architecture)
        );
    }
}
