use super::*;

fn json_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::CONTENT_TYPE,
        "application/json; charset=utf-8".parse().unwrap(),
    );
    h
}

fn digest() -> Digest {
    Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap()
}

fn manifest_ctx() -> Context {
    Context::Manifest {
        name: "busybox".into(),
        reference: "busybox:nosuch".into(),
    }
}

#[test]
fn registry_errors_read_in_dockers_words() {
    let body = |code: &str, msg: &str| {
        format!(r#"{{"errors":[{{"code":"{code}","message":"{msg}","detail":{{}}}}]}}"#)
    };
    let cases: Vec<(u16, String, Context, &str)> = vec![
        (
            404,
            body("MANIFEST_UNKNOWN", "manifest unknown"),
            manifest_ctx(),
            "manifest for busybox:nosuch not found: manifest unknown: manifest unknown",
        ),
        (
            401,
            body("DENIED", "requested access to the resource is denied"),
            manifest_ctx(),
            "pull access denied for busybox, repository does not exist or may require 'docker \
             login': denied: requested access to the resource is denied",
        ),
        (
            403,
            body("DENIED", "requested access to the resource is denied"),
            Context::Push,
            "denied: requested access to the resource is denied",
        ),
        (
            401,
            body("UNAUTHORIZED", "authentication required"),
            manifest_ctx(),
            "unauthorized: authentication required",
        ),
        (
            404,
            body("NAME_UNKNOWN", "repository name not known to registry"),
            Context::Pull {
                name: "localhost:5000/a".into(),
            },
            "repository localhost:5000/a not found: name unknown: repository name not known to \
             registry",
        ),
        (
            429,
            body("TOOMANYREQUESTS", "You have reached your pull rate limit."),
            manifest_ctx(),
            "toomanyrequests: You have reached your pull rate limit.",
        ),
        (
            400,
            body("DIGEST_INVALID", ""),
            Context::Push,
            "digest invalid: provided digest did not match uploaded content",
        ),
        // A code distribution does not register reads as UNKNOWN, message kept.
        (
            400,
            body("SOMETHING_ELSE", "odd"),
            Context::Push,
            "unknown: odd",
        ),
        (
            404,
            body("BLOB_UNKNOWN", "blob unknown to registry"),
            Context::Blob {
                name: "busybox".into(),
                digest: digest(),
            },
            "blob sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa not found \
             in the registry",
        ),
        (
            400,
            r#"{"details":"old style"}"#.into(),
            Context::Push,
            "unknown: old style",
        ),
        (
            400,
            "{not json".into(),
            Context::Push,
            "error parsing HTTP 400 response body: key must be a string at line 1 column 2: \
             \"{not json\"",
        ),
        (
            400,
            r#"{"errors":[]}"#.into(),
            Context::Push,
            "error parsing HTTP 400 response body: no error details found in HTTP response \
             body: \"{\\\"errors\\\":[]}\"",
        ),
        // A 401 whose body says nothing usable is still "authentication required".
        (401, "{}".into(), manifest_ctx(), "unauthorized: authentication required"),
        (
            500,
            "boom".into(),
            manifest_ctx(),
            "received unexpected HTTP status: 500 Internal Server Error",
        ),
    ];
    for (status, body, ctx, want) in cases {
        let status = StatusCode::from_u16(status).unwrap();
        let got = to_error(status, &json_headers(), body.as_bytes(), &ctx).to_string();
        assert_eq!(got, want, "{status} {body}");
    }
}

#[test]
fn bodies_without_json_choose_by_status() {
    let h = HeaderMap::new();
    let e = |s: u16, b: &str| {
        to_error(
            StatusCode::from_u16(s).unwrap(),
            &h,
            b.as_bytes(),
            &Context::Push,
        )
    };
    assert_eq!(
        e(401, "").to_string(),
        "unauthorized: authentication required"
    );
    assert_eq!(e(403, "go away").to_string(), "denied: go away");
    assert_eq!(e(429, "").to_string(), "toomanyrequests: too many requests");
    assert_eq!(
        e(404, "404 page not found").to_string(),
        "unknown: 404 page not found"
    );
    assert!(matches!(
        e(404, ""),
        DistributionError::Registry { status: 404, .. }
    ));
}

#[test]
fn bearer_challenge_errors_come_first() {
    let mut h = json_headers();
    h.insert(
        http::header::WWW_AUTHENTICATE,
        r#"Bearer realm="https://auth.example/token",service="r",scope="repository:a:pull",error="insufficient_scope""#
            .parse()
            .unwrap(),
    );
    let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
    let got = to_error(
        StatusCode::UNAUTHORIZED,
        &h,
        body.as_bytes(),
        &manifest_ctx(),
    );
    assert_eq!(
        got.to_string(),
        "pull access denied for busybox, repository does not exist or may require 'docker \
         login': denied: requested access to the resource is denied"
    );
    assert!(matches!(got, DistributionError::Denied(_)));
    h.insert(
        http::header::WWW_AUTHENTICATE,
        r#"Bearer realm="x",error="invalid_token",error_description="token expired""#
            .parse()
            .unwrap(),
    );
    let got = to_error(StatusCode::UNAUTHORIZED, &h, b"", &Context::Push);
    assert_eq!(got.to_string(), "unauthorized: token expired");
}
