use super::*;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

fn basic(u: &str, p: &str) -> Credentials {
    Credentials::Basic {
        username: u.into(),
        password: p.into(),
    }
}

#[test]
fn x_registry_auth_decodes_every_base64_clients_send() {
    // `?` and `>` in the password make URL-safe and standard base64 differ.
    let json = r#"{"username":"u","password":"p?>>","serveraddress":"r.example"}"#;
    for engine in [&URL_SAFE, &URL_SAFE_NO_PAD, &STANDARD, &STANDARD_NO_PAD] {
        let header = engine.encode(json);
        assert_eq!(
            Credentials::from_x_registry_auth(&header).unwrap(),
            basic("u", "p?>>"),
            "{header}"
        );
    }
}

#[test]
fn x_registry_auth_cases() {
    let enc = |s: &str| URL_SAFE.encode(s);
    let cases: Vec<(String, Result<Credentials, String>)> = vec![
        (String::new(), Ok(Credentials::Anonymous)),
        ("  ".into(), Ok(Credentials::Anonymous)),
        (enc("{}"), Ok(Credentials::Anonymous)),
        (
            enc(r#"{"Username":"U","Password":"P"}"#),
            Ok(basic("U", "P")),
        ),
        (
            enc(r#"{"auth":"dXNlcjpwYTpzcw=="}"#),
            Ok(basic("user", "pa:ss")),
        ),
        (
            enc(r#"{"username":"u","identitytoken":"refresh"}"#),
            Ok(Credentials::IdentityToken("refresh".into())),
        ),
        (
            enc(r#"{"registrytoken":"bearer","identitytoken":"refresh"}"#),
            Ok(Credentials::RegistryToken("bearer".into())),
        ),
        // Go's decoder stops after the first value.
        (
            enc(r#"{"username":"u","password":"p"} trailing"#),
            Ok(basic("u", "p")),
        ),
        (
            "%%%".into(),
            Err("invalid X-Registry-Auth header: illegal base64 data".into()),
        ),
        (
            enc("not json"),
            Err("invalid X-Registry-Auth header: expected ident at line 1 column 2".into()),
        ),
        (
            enc(r#"{"auth":"!!!"}"#),
            Err("invalid auth configuration: auth is not base64 of username:password".into()),
        ),
    ];
    for (header, want) in cases {
        let got = Credentials::from_x_registry_auth(&header).map_err(|e| e.to_string());
        assert_eq!(got, want, "{header:?}");
    }
}

#[test]
fn basic_needs_both_halves() {
    assert_eq!(basic("u", "p").basic(), Some(("u", "p")));
    assert_eq!(basic("u", "").basic(), None);
    assert_eq!(Credentials::Anonymous.basic(), None);
    assert_eq!(basic_header("u", "p"), "Basic dTpw");
}

#[test]
fn cache_keys_tell_credentials_apart() {
    let keys = [
        Credentials::Anonymous.cache_key(),
        basic("u", "p").cache_key(),
        basic("u", "q").cache_key(),
        Credentials::IdentityToken("p".into()).cache_key(),
        Credentials::RegistryToken("p".into()).cache_key(),
    ];
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
        assert!(!a.contains('p'), "the key shows nothing of the secret");
    }
}
