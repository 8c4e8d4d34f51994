//! Cases written from the behaviour of distribution/reference's tests and the docker CLI.

use super::*;

const H: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
const H2: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// What `parse_normalized_named` gives: the full string, the familiar string, the registry and
/// the path; or the error text Docker prints.
enum Want {
    Ok(&'static str, &'static str, &'static str, &'static str),
    Err(&'static str),
}

fn s(x: &str) -> &'static str {
    Box::leak(x.to_owned().into_boxed_str())
}

fn normalized_cases() -> Vec<(String, Want)> {
    use Want::*;
    let d = format!("sha256:{H}");
    vec![
        (
            "busybox".into(),
            Ok(
                "docker.io/library/busybox",
                "busybox",
                "docker.io",
                "library/busybox",
            ),
        ),
        (
            "busybox:latest".into(),
            Ok(
                "docker.io/library/busybox:latest",
                "busybox:latest",
                "docker.io",
                "library/busybox",
            ),
        ),
        (
            "busybox:Latest_1.0-rc".into(),
            Ok(
                "docker.io/library/busybox:Latest_1.0-rc",
                "busybox:Latest_1.0-rc",
                "docker.io",
                "library/busybox",
            ),
        ),
        (
            "library/busybox".into(),
            Ok(
                "docker.io/library/busybox",
                "busybox",
                "docker.io",
                "library/busybox",
            ),
        ),
        (
            "docker.io/busybox".into(),
            Ok(
                "docker.io/library/busybox",
                "busybox",
                "docker.io",
                "library/busybox",
            ),
        ),
        (
            "docker.io/library/busybox:1.36".into(),
            Ok(
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
                "docker.io",
                "library/busybox",
            ),
        ),
        (
            "index.docker.io/busybox".into(),
            Ok(
                "docker.io/library/busybox",
                "busybox",
                "docker.io",
                "library/busybox",
            ),
        ),
        (
            "index.docker.io/library/busybox".into(),
            Ok(
                "docker.io/library/busybox",
                "busybox",
                "docker.io",
                "library/busybox",
            ),
        ),
        (
            "index.docker.io/dmcgowan/app".into(),
            Ok(
                "docker.io/dmcgowan/app",
                "dmcgowan/app",
                "docker.io",
                "dmcgowan/app",
            ),
        ),
        (
            "dmcgowan/myapp".into(),
            Ok(
                "docker.io/dmcgowan/myapp",
                "dmcgowan/myapp",
                "docker.io",
                "dmcgowan/myapp",
            ),
        ),
        (
            "dmcgowan/myapp/sub".into(),
            Ok(
                "docker.io/dmcgowan/myapp/sub",
                "dmcgowan/myapp/sub",
                "docker.io",
                "dmcgowan/myapp/sub",
            ),
        ),
        // `library/` is dropped only before a single component.
        (
            "library/foo/bar".into(),
            Ok(
                "docker.io/library/foo/bar",
                "library/foo/bar",
                "docker.io",
                "library/foo/bar",
            ),
        ),
        (
            "docker.io/library/foo/bar".into(),
            Ok(
                "docker.io/library/foo/bar",
                "library/foo/bar",
                "docker.io",
                "library/foo/bar",
            ),
        ),
        (
            "localhost".into(),
            Ok(
                "docker.io/library/localhost",
                "localhost",
                "docker.io",
                "library/localhost",
            ),
        ),
        (
            "localhost:5000".into(),
            Ok(
                "docker.io/library/localhost:5000",
                "localhost:5000",
                "docker.io",
                "library/localhost",
            ),
        ),
        (
            "localhost/foo".into(),
            Ok("localhost/foo", "localhost/foo", "localhost", "foo"),
        ),
        (
            "localhost:5000/a".into(),
            Ok(
                "localhost:5000/a",
                "localhost:5000/a",
                "localhost:5000",
                "a",
            ),
        ),
        (
            "localhost:5000/library/a".into(),
            Ok(
                "localhost:5000/library/a",
                "localhost:5000/library/a",
                "localhost:5000",
                "library/a",
            ),
        ),
        (
            "example.com/foo".into(),
            Ok("example.com/foo", "example.com/foo", "example.com", "foo"),
        ),
        (
            "example.com:8080/a/b/c:v1".into(),
            Ok(
                "example.com:8080/a/b/c:v1",
                "example.com:8080/a/b/c:v1",
                "example.com:8080",
                "a/b/c",
            ),
        ),
        (
            "sub-1.Example.COM/foo".into(),
            Ok(
                "sub-1.Example.COM/foo",
                "sub-1.Example.COM/foo",
                "sub-1.Example.COM",
                "foo",
            ),
        ),
        (
            "127.0.0.1:5000/ns/repo".into(),
            Ok(
                "127.0.0.1:5000/ns/repo",
                "127.0.0.1:5000/ns/repo",
                "127.0.0.1:5000",
                "ns/repo",
            ),
        ),
        (
            "[::1]/foo".into(),
            Ok("[::1]/foo", "[::1]/foo", "[::1]", "foo"),
        ),
        (
            "[2001:db8::1]:5000/foo:tag".into(),
            Ok(
                "[2001:db8::1]:5000/foo:tag",
                "[2001:db8::1]:5000/foo:tag",
                "[2001:db8::1]:5000",
                "foo",
            ),
        ),
        // An upper-case first component can only be a registry.
        ("Foo/bar".into(), Ok("Foo/bar", "Foo/bar", "Foo", "bar")),
        // Separators: one `.` or `_`, two `_`, any run of `-`.
        (
            "a.b_c__d---e".into(),
            Ok(
                "docker.io/library/a.b_c__d---e",
                "a.b_c__d---e",
                "docker.io",
                "library/a.b_c__d---e",
            ),
        ),
        (
            format!("busybox@{d}"),
            Ok(
                s(&format!("docker.io/library/busybox@{d}")),
                s(&format!("busybox@{d}")),
                "docker.io",
                "library/busybox",
            ),
        ),
        (
            format!("busybox:1@{d}"),
            Ok(
                s(&format!("docker.io/library/busybox:1@{d}")),
                s(&format!("busybox:1@{d}")),
                "docker.io",
                "library/busybox",
            ),
        ),
        (
            format!("localhost:5000/ns/repo@{d}"),
            Ok(
                s(&format!("localhost:5000/ns/repo@{d}")),
                s(&format!("localhost:5000/ns/repo@{d}")),
                "localhost:5000",
                "ns/repo",
            ),
        ),
        (
            format!("host.example:443/ns/repo:v2@sha512:{}", "a".repeat(128)),
            Ok(
                s(&format!(
                    "host.example:443/ns/repo:v2@sha512:{}",
                    "a".repeat(128)
                )),
                s(&format!(
                    "host.example:443/ns/repo:v2@sha512:{}",
                    "a".repeat(128)
                )),
                "host.example:443",
                "ns/repo",
            ),
        ),
        (
            format!("busybox:{}", "t".repeat(128)),
            Ok(
                s(&format!("docker.io/library/busybox:{}", "t".repeat(128))),
                s(&format!("busybox:{}", "t".repeat(128))),
                "docker.io",
                "library/busybox",
            ),
        ),
        // 247 + "library/" is exactly the limit.
        (
            "a".repeat(247),
            Ok(
                s(&format!("docker.io/library/{}", "a".repeat(247))),
                s(&"a".repeat(247)),
                "docker.io",
                s(&format!("library/{}", "a".repeat(247))),
            ),
        ),
        (
            H[..63].to_owned(),
            Ok(
                s(&format!("docker.io/library/{}", &H[..63])),
                s(&H[..63]),
                "docker.io",
                s(&format!("library/{}", &H[..63])),
            ),
        ),
        // Errors, in Docker's words.
        (
            "Busybox".into(),
            Err("invalid reference format: repository name (library/Busybox) must be lowercase"),
        ),
        (
            "docker.io/Library/busybox".into(),
            Err("invalid reference format: repository name (Library/busybox) must be lowercase"),
        ),
        (
            "localhost:5000/Foo:Bar".into(),
            Err("invalid reference format: repository name (Foo) must be lowercase"),
        ),
        (
            "example.com/foo/BAR@sha256:x".into(),
            Err("invalid reference format: repository name (foo/BAR@sha256) must be lowercase"),
        ),
        ("FOO_X/bar".into(), Err("repository name must be lowercase")),
        (
            H.into(),
            Err(s(&format!(
                "invalid repository name ({H}), cannot specify 64-byte hexadecimal strings"
            ))),
        ),
        (
            "a".repeat(248),
            Err("repository name must not be more than 255 characters"),
        ),
        (
            format!("example.com/{}", "a".repeat(256)),
            Err("repository name must not be more than 255 characters"),
        ),
        (String::new(), Err("invalid reference format")),
        (":tag".into(), Err("invalid reference format")),
        ("foo:".into(), Err("invalid reference format")),
        ("foo@".into(), Err("invalid reference format")),
        ("foo:bar:baz".into(), Err("invalid reference format")),
        ("foo bar".into(), Err("invalid reference format")),
        ("-foo".into(), Err("invalid reference format")),
        ("foo-".into(), Err("invalid reference format")),
        ("foo/".into(), Err("invalid reference format")),
        ("foo//bar".into(), Err("invalid reference format")),
        ("foo/../bar".into(), Err("invalid reference format")),
        ("a..b".into(), Err("invalid reference format")),
        ("a___b".into(), Err("invalid reference format")),
        ("a.-b".into(), Err("invalid reference format")),
        (
            "http://example.com/foo".into(),
            Err("invalid reference format"),
        ),
        ("foo_bar.com:8080/x".into(), Err("invalid reference format")),
        ("-host.com/foo".into(), Err("invalid reference format")),
        ("[::1/foo".into(), Err("invalid reference format")),
        ("[zz]/foo".into(), Err("invalid reference format")),
        ("localhost:/foo".into(), Err("invalid reference format")),
        ("localhost:50a0/foo".into(), Err("invalid reference format")),
        ("foo:-tag".into(), Err("invalid reference format")),
        (
            format!("busybox:{}", "t".repeat(129)),
            Err("invalid reference format"),
        ),
        ("busybox@sha256:abc".into(), Err("invalid reference format")),
        (format!("busybox@{d}@{d}"), Err("invalid reference format")),
        (
            format!("busybox@sha256:{}", &H[..32]),
            Err("invalid checksum digest length"),
        ),
        (
            format!("busybox@sha256:{}", H.to_uppercase()),
            Err("invalid checksum digest format"),
        ),
        (
            format!("busybox@md5:{}", &H[..32]),
            Err("unsupported digest algorithm"),
        ),
    ]
}

#[test]
fn parse_normalized_named_table() {
    let cases = normalized_cases();
    assert!(cases.len() >= 40);
    for (input, want) in cases {
        let got = Reference::parse_normalized_named(&input);
        match (want, got) {
            (Want::Ok(full, familiar, domain, path), Ok(r)) => {
                assert_eq!(r.to_string(), full, "{input:?}");
                assert_eq!(r.familiar_string(), familiar, "{input:?}");
                assert_eq!(r.domain(), domain, "{input:?}");
                assert_eq!(r.path(), path, "{input:?}");
                // What the CLI prints parses back to the same reference.
                assert_eq!(
                    Reference::parse_normalized_named(familiar).unwrap(),
                    r,
                    "{input:?}"
                );
                assert_eq!(
                    Reference::parse_normalized_named(full).unwrap(),
                    r,
                    "{input:?}"
                );
            }
            (Want::Err(msg), Err(e)) => assert_eq!(e.to_string(), msg, "{input:?}"),
            (Want::Ok(full, ..), Err(e)) => panic!("{input:?}: want {full}, got error {e}"),
            (Want::Err(msg), Ok(r)) => panic!("{input:?}: want error {msg}, got {r}"),
        }
    }
}

#[test]
fn parts_of_a_tagged_and_digested_reference() {
    let r = Reference::parse_normalized_named(&format!("localhost:5000/ns/repo:v1@sha256:{H2}"))
        .unwrap();
    assert_eq!(r.domain(), "localhost:5000");
    assert_eq!(r.path(), "ns/repo");
    assert_eq!(r.name(), "localhost:5000/ns/repo");
    assert_eq!(r.tag(), Some("v1"));
    assert_eq!(r.digest().unwrap().hex(), H2);
    assert_eq!(r.digest().unwrap().algorithm(), "sha256");
    assert_eq!(r.clone().trim().to_string(), "localhost:5000/ns/repo");
}

/// Registry and path, or the error text.
type Strict = Result<(&'static str, &'static str), &'static str>;

#[test]
fn strict_parse_does_not_normalise() {
    let cases: &[(&str, Strict)] = &[
        ("busybox", Ok(("", "busybox"))),
        // The grammar prefers a registry wherever the first component could be one.
        ("library/busybox:1", Ok(("library", "busybox"))),
        ("foo/bar", Ok(("foo", "bar"))),
        ("docker.io/busybox", Ok(("docker.io", "busybox"))),
        ("localhost:5000", Ok(("", "localhost"))),
        // Not a valid registry, but a valid path: the grammar takes it whole.
        ("foo_bar.com/x", Ok(("", "foo_bar.com/x"))),
        ("", Err("repository name must have at least one component")),
        ("Busybox", Err("repository name must be lowercase")),
        ("foo/Bar", Err("repository name must be lowercase")),
        ("foo:bar:baz", Err("invalid reference format")),
    ];
    for (input, want) in cases {
        let got = Reference::parse(input);
        match (want, got) {
            (Ok((domain, path)), Ok(r)) => {
                assert_eq!((r.domain(), r.path()), (*domain, *path), "{input:?}");
            }
            (Err(msg), Err(e)) => assert_eq!(e.to_string(), *msg, "{input:?}"),
            (want, got) => panic!("{input:?}: want {want:?}, got {got:?}"),
        }
    }
    // Without a registry, the familiar form is the name itself.
    assert_eq!(
        Reference::parse("library/busybox")
            .unwrap()
            .familiar_string(),
        "library/busybox"
    );
}

#[test]
fn default_tag_only_when_neither_tag_nor_digest() {
    let d = format!("sha256:{H}");
    let cases = [
        ("busybox".to_owned(), "docker.io/library/busybox:latest"),
        ("busybox:1.36".to_owned(), "docker.io/library/busybox:1.36"),
        (
            format!("busybox@{d}"),
            s(&format!("docker.io/library/busybox@{d}")),
        ),
        (
            format!("busybox:1@{d}"),
            s(&format!("docker.io/library/busybox:1@{d}")),
        ),
        ("localhost:5000/a".to_owned(), "localhost:5000/a:latest"),
    ];
    for (input, want) in cases {
        let r = Reference::parse_normalized_named(&input)
            .unwrap()
            .with_default_tag();
        assert_eq!(r.to_string(), want, "{input:?}");
    }
}

#[test]
fn docker_ref_drops_the_tag_when_a_digest_pins_the_content() {
    let d = format!("sha256:{H}");
    let cases = [
        ("busybox".to_owned(), "docker.io/library/busybox:latest"),
        ("busybox:1".to_owned(), "docker.io/library/busybox:1"),
        (
            format!("busybox:1@{d}"),
            s(&format!("docker.io/library/busybox@{d}")),
        ),
        (
            format!("example.com/a@{d}"),
            s(&format!("example.com/a@{d}")),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            Reference::parse_docker_ref(&input).unwrap().to_string(),
            want,
            "{input:?}"
        );
    }
    assert_eq!(
        Reference::parse_docker_ref("Busybox")
            .unwrap_err()
            .to_string(),
        "invalid reference format: repository name (library/Busybox) must be lowercase"
    );
}

#[test]
fn with_tag_and_digest() {
    let r = Reference::parse_normalized_named("busybox").unwrap();
    assert_eq!(
        r.clone().with_tag("v2").unwrap().familiar_string(),
        "busybox:v2"
    );
    for bad in ["", ".x", "a:b", &"t".repeat(129)] {
        assert_eq!(
            r.clone().with_tag(bad).unwrap_err(),
            ReferenceError::InvalidTag,
            "{bad:?}"
        );
    }
    let d = Digest::parse(&format!("sha256:{H2}")).unwrap();
    assert_eq!(
        r.with_digest(d).familiar_string(),
        format!("busybox@sha256:{H2}")
    );
}

#[test]
fn from_str_normalises() {
    let r: Reference = "alpine:3".parse().unwrap();
    assert_eq!(r.to_string(), "docker.io/library/alpine:3");
}

#[test]
fn the_registry_is_asked_for_the_digest_then_the_tag_then_latest() {
    let d = format!("sha256:{H}");
    let asked = |s: &str| {
        Reference::parse_normalized_named(s)
            .unwrap()
            .tag_or_digest()
    };
    assert_eq!(asked("busybox"), "latest");
    assert_eq!(asked("busybox:1"), "1");
    assert_eq!(asked(&format!("busybox:1@{d}")), d);
}
