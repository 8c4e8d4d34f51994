use super::*;
use crate::registry::auth::INDEX_SERVER;

fn login(user: &str, pass: &str, server: &str) -> AuthConfig {
    AuthConfig {
        username: user.into(),
        password: pass.into(),
        server_address: server.into(),
        ..AuthConfig::default()
    }
}

#[test]
fn a_login_writes_what_docker_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ConfigFile::load(dir.path()).unwrap();
    assert!(!cfg.contains_auth());
    let mut warn = Vec::new();
    cfg.store_auth(&login("capuser", "secretpw", "localhost:5000"), &mut warn)
        .unwrap();
    // Capture 50: docker's config.json after `login localhost:5000 -u capuser`.
    let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    assert_eq!(
        text,
        "{\n\t\"auths\": {\n\t\t\"localhost:5000\": {\n\t\t\t\"auth\": \"Y2FwdXNlcjpzZWNyZXRwdw==\"\n\t\t}\n\t}\n}"
    );
    let path = dir.path().join("config.json");
    assert_eq!(
        String::from_utf8(warn).unwrap(),
        format!(
            "\nWARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n\n",
            path.display()
        )
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // Read back: user and password decoded, the key as server address.
    let again = ConfigFile::load(dir.path()).unwrap();
    assert_eq!(
        again.get_auth("localhost:5000").unwrap(),
        login("capuser", "secretpw", "localhost:5000")
    );
    assert_eq!(again.get_auth("other:5000").unwrap(), AuthConfig::default());

    // The same login again changes nothing and warns no more.
    let mut again = again;
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut warn = Vec::new();
    again
        .store_auth(&login("capuser", "secretpw", "localhost:5000"), &mut warn)
        .unwrap();
    assert!(warn.is_empty());
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );

    // Logout removes the entry; `auths` stays, empty.
    again.erase("localhost:5000").unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\n\t\"auths\": {}\n}"
    );
}

#[test]
fn other_settings_survive_a_login() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"zzz":{"b":1,"a":[true]},"currentContext":"x","psFormat":"","detachKeys":"ctrl-a",
            "HttpHeaders":{"User-Agent":"me","X-A":"1"},
            "proxies":{"default":{"noProxy":"n","httpProxy":"h"}},
            "auths":{"https://reg.io":{"auth":"dTpw","email":"e@x"}}}"#,
    )
    .unwrap();
    let mut cfg = ConfigFile::load(dir.path()).unwrap();
    // An old key written as a URL still answers for its host.
    let found = cfg.get_auth("reg.io").unwrap();
    assert_eq!(
        (found.username.as_str(), found.password.as_str()),
        ("u", "p")
    );
    assert_eq!(found.email, "e@x");
    let tok = AuthConfig {
        username: "u".into(),
        identity_token: "tok<&>".into(),
        server_address: INDEX_SERVER.into(),
        ..AuthConfig::default()
    };
    let mut warn = Vec::new();
    cfg.store_auth(&tok, &mut warn).unwrap();
    // A token is no password: no warning.
    assert!(warn.is_empty());
    let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    assert_eq!(
        text,
        "{\n\
         \t\"auths\": {\n\
         \t\t\"https://index.docker.io/v1/\": {\n\
         \t\t\t\"auth\": \"dTo=\",\n\
         \t\t\t\"identitytoken\": \"tok\\u003c\\u0026\\u003e\"\n\
         \t\t},\n\
         \t\t\"https://reg.io\": {\n\
         \t\t\t\"auth\": \"dTpw\",\n\
         \t\t\t\"email\": \"e@x\"\n\
         \t\t}\n\
         \t},\n\
         \t\"HttpHeaders\": {\n\
         \t\t\"X-A\": \"1\"\n\
         \t},\n\
         \t\"detachKeys\": \"ctrl-a\",\n\
         \t\"proxies\": {\n\
         \t\t\"default\": {\n\
         \t\t\t\"httpProxy\": \"h\",\n\
         \t\t\t\"noProxy\": \"n\"\n\
         \t\t}\n\
         \t},\n\
         \t\"currentContext\": \"x\",\n\
         \t\"zzz\": {\n\
         \t\t\"a\": [\n\
         \t\t\ttrue\n\
         \t\t],\n\
         \t\t\"b\": 1\n\
         \t}\n\
         }"
    );
    let back = ConfigFile::load(dir.path()).unwrap();
    let got = back.get_auth(INDEX_SERVER).unwrap();
    assert_eq!(got.identity_token, "tok<&>");
    assert_eq!(got.username, "u");
    assert_eq!(got.header(), AuthConfig { ..got.clone() }.header());
}

#[test]
fn broken_files_are_refused_in_dockers_words() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, "{not json").unwrap();
    let e = ConfigFile::load(dir.path()).unwrap_err();
    assert!(
        e.starts_with(&format!("parsing config file ({}): ", path.display())),
        "{e}"
    );
    std::fs::write(&path, r#"{"auths":{"r":{"auth":"Om5vdXNlcg=="}}}"#).unwrap();
    let e = ConfigFile::load(dir.path()).unwrap_err();
    assert!(e.ends_with("Invalid auth configuration file"), "{e}");
    // Reading only: a warning, then no credentials.
    let mut warn = Vec::new();
    let cfg = ConfigFile::load_or_warn(dir.path(), &mut warn);
    assert!(String::from_utf8(warn)
        .unwrap()
        .starts_with("WARNING: Error parsing config file ("));
    assert_eq!(cfg.get_auth("r").unwrap(), AuthConfig::default());
    // An empty file is an empty config.
    std::fs::write(&path, "").unwrap();
    assert!(!ConfigFile::load(dir.path()).unwrap().contains_auth());
}

#[test]
fn saving_goes_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.json");
    std::fs::write(&real, "{}").unwrap();
    std::os::unix::fs::symlink(&real, dir.path().join("config.json")).unwrap();
    let mut cfg = ConfigFile::load(dir.path()).unwrap();
    cfg.store_auth(&login("a", "b", "r:1"), &mut Vec::new())
        .unwrap();
    assert!(std::fs::symlink_metadata(dir.path().join("config.json"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&real).unwrap().contains("\"r:1\""));
}

/// A `docker-credential-*` stand-in: logs each call, keeps one file per server.
fn fake_helper(dir: &Path) -> PathBuf {
    let path = dir.join("docker-credential-test");
    std::fs::write(
        &path,
        r#"#!/bin/sh
here=$(dirname "$0")
input=$(cat)
printf '%s %s\n' "$1" "$input" >> "$here/log"
case "$1" in
store)
    server=$(printf '%s' "$input" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
    printf '%s' "$input" > "$here/$(printf '%s' "$server" | tr '/:' '__')" ;;
get)
    f="$here/$(printf '%s' "$input" | tr '/:' '__')"
    if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase)
    rm "$here/$(printf '%s' "$input" | tr '/:' '__')" 2>/dev/null || { echo "no such creds"; exit 3; } ;;
esac
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn helper_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let h = Helper::at(&fake_helper(dir.path()));
    assert_eq!(h.get("reg:5000").unwrap(), None);
    h.store(&HelperCreds {
        server_url: "reg:5000".into(),
        username: "u".into(),
        secret: "p&w".into(),
    })
    .unwrap();
    let got = h.get("reg:5000").unwrap().unwrap();
    assert_eq!((got.username.as_str(), got.secret.as_str()), ("u", "p&w"));
    h.erase("reg:5000").unwrap();
    assert_eq!(
        h.erase("reg:5000").unwrap_err(),
        "error erasing credentials - err: exit status 3, out: `no such creds`"
    );
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert_eq!(
        log,
        "get reg:5000\n\
         store {\"ServerURL\":\"reg:5000\",\"Username\":\"u\",\"Secret\":\"p\\u0026w\"}\n\
         get reg:5000\n\
         erase reg:5000\n\
         erase reg:5000\n"
    );
    let missing = Helper::new("wharf-test-none");
    assert_eq!(
        missing.get("x").unwrap_err(),
        "error getting credentials - err: exec: \"docker-credential-wharf-test-none\": executable file not found in $PATH, out: ``"
    );
}
