//! `pull`, `push`, `login`, `logout`, `images --digests` and the pull `run`/`create` make for
//! a missing image, through `wharf` and the docker CLI 28 against one fake daemon on a unix
//! socket that answers with the JSON message streams dockerd sent in captures 46-48 (and
//! errors, 401s, push notes). Both tools must send the same requests (paths, bodies and the
//! exact `X-Registry-Auth` header), print the same stdout and stderr, exit alike, and leave
//! the same config.json and credential-helper calls behind. Also: the progress drawing on a
//! real terminal (a pty of a set width) is byte for byte docker's.
//!
//! Needs `docker` on PATH; skips otherwise. Starts no daemon and no container.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

const D1: &str = "sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6";
const D2: &str = "sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94";
const ID: &str = "0123456789ab0123456789ab0123456789ab0123456789ab0123456789ab0123";

/// Capture 47, `docker pull localhost:5000/x`.
const PULL_X: &[&str] = &[
    r#"{"status":"Pulling from x","id":"latest"}"#,
    r#"{"status":"Digest: sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6"}"#,
    r#"{"status":"Status: Downloaded newer image for localhost:5000/x:latest"}"#,
];

/// Capture 47, `docker pull localhost:5000/multi:v1`.
const PULL_MULTI: &[&str] = &[
    r#"{"status":"Pulling from multi","id":"v1"}"#,
    r#"{"status":"Already exists","progressDetail":{},"id":"389ed6bbf73b"}"#,
    r#"{"status":"Pulling fs layer","progressDetail":{},"id":"680518934dcd"}"#,
    r#"{"status":"Pulling fs layer","progressDetail":{},"id":"b3da9f41977a"}"#,
    r#"{"status":"Downloading","progressDetail":{"current":126,"total":126},"progress":"[==================================================\u003e]     126B/126B","id":"b3da9f41977a"}"#,
    r#"{"status":"Verifying Checksum","progressDetail":{},"id":"b3da9f41977a"}"#,
    r#"{"status":"Download complete","progressDetail":{},"id":"b3da9f41977a"}"#,
    r#"{"status":"Downloading","progressDetail":{"current":113,"total":113},"progress":"[==================================================\u003e]     113B/113B","id":"680518934dcd"}"#,
    r#"{"status":"Verifying Checksum","progressDetail":{},"id":"680518934dcd"}"#,
    r#"{"status":"Download complete","progressDetail":{},"id":"680518934dcd"}"#,
    r#"{"status":"Extracting","progressDetail":{"current":113,"total":113},"progress":"[==================================================\u003e]     113B/113B","id":"680518934dcd"}"#,
    r#"{"status":"Pull complete","progressDetail":{},"id":"680518934dcd"}"#,
    r#"{"status":"Extracting","progressDetail":{"current":126,"total":126},"progress":"[==================================================\u003e]     126B/126B","id":"b3da9f41977a"}"#,
    r#"{"status":"Pull complete","progressDetail":{},"id":"b3da9f41977a"}"#,
    r#"{"status":"Digest: sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94"}"#,
    r#"{"status":"Status: Downloaded newer image for localhost:5000/multi:v1"}"#,
];

/// Capture 46, `docker push localhost:5000/x`.
const PUSH_X: &[&str] = &[
    r#"{"status":"The push refers to repository [localhost:5000/x]"}"#,
    r#"{"status":"Preparing","progressDetail":{},"id":"80e0452609cc"}"#,
    r#"{"status":"Pushing","progressDetail":{"current":37376,"total":1982354},"progress":"[\u003e                                                  ]  37.38kB/1.982MB","id":"80e0452609cc"}"#,
    r#"{"status":"Pushing","progressDetail":{"current":1544704,"total":1982354},"progress":"[======================================\u003e            ]  1.545MB/1.982MB","id":"80e0452609cc"}"#,
    r#"{"status":"Pushing","progressDetail":{"current":1996800,"total":1982354},"progress":"[==================================================\u003e]  1.997MB","id":"80e0452609cc"}"#,
    r#"{"status":"Pushed","progressDetail":{},"id":"80e0452609cc"}"#,
    r#"{"status":"latest: digest: sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6 size: 527"}"#,
    r#"{"progressDetail":{},"aux":{"Tag":"latest","Digest":"sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6","Size":527}}"#,
];

/// Capture 46, `docker push localhost:5000/multi:v1`.
const PUSH_MULTI: &[&str] = &[
    r#"{"status":"The push refers to repository [localhost:5000/multi]"}"#,
    r#"{"status":"Preparing","progressDetail":{},"id":"c8cffd6ed0e6"}"#,
    r#"{"status":"Preparing","progressDetail":{},"id":"9d6e4e5ab5a5"}"#,
    r#"{"status":"Preparing","progressDetail":{},"id":"80e0452609cc"}"#,
    r#"{"status":"Pushing","progressDetail":{"current":512,"total":19},"progress":"[==================================================\u003e]     512B","id":"c8cffd6ed0e6"}"#,
    r#"{"status":"Pushing","progressDetail":{"current":512,"total":6},"progress":"[==================================================\u003e]     512B","id":"9d6e4e5ab5a5"}"#,
    r#"{"status":"Pushing","progressDetail":{"current":2048,"total":19},"progress":"[==================================================\u003e]  2.048kB","id":"c8cffd6ed0e6"}"#,
    r#"{"status":"Mounted from x","progressDetail":{},"id":"80e0452609cc"}"#,
    r#"{"status":"Pushing","progressDetail":{"current":2048,"total":6},"progress":"[==================================================\u003e]  2.048kB","id":"9d6e4e5ab5a5"}"#,
    r#"{"status":"Pushed","progressDetail":{},"id":"c8cffd6ed0e6"}"#,
    r#"{"status":"Pushed","progressDetail":{},"id":"9d6e4e5ab5a5"}"#,
    r#"{"status":"v1: digest: sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94 size: 942"}"#,
    r#"{"progressDetail":{},"aux":{"Tag":"v1","Digest":"sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94","Size":942}}"#,
];

/// One request as the fake daemon saw it.
#[derive(Debug, Clone, PartialEq)]
struct Req {
    method: String,
    path: String,
    auth: Option<String>,
    body: Option<Value>,
}

#[derive(Default)]
struct State {
    log: Vec<Req>,
    /// `fromImage` values pulled so far: a create of one of them then succeeds.
    pulled: HashSet<String>,
}

type Shared = Arc<Mutex<State>>;

fn query_value(path: &str, key: &str) -> Option<String> {
    let q = path.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| {
            // Enough of percent-decoding for image names.
            let mut out = String::new();
            let b = v.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' && i + 2 < b.len() {
                    out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap() as char);
                    i += 3;
                } else {
                    out.push(b[i] as char);
                    i += 1;
                }
            }
            out
        })
    })
}

/// `busybox:1` → `docker.io/library/busybox`, as the daemon would look it up.
fn repo_of(image: &str) -> String {
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    let name = match image[slash..].find([':', '@']) {
        Some(i) => &image[..slash + i],
        None => image,
    };
    let first = name.split('/').next().unwrap();
    if !name.contains('/') {
        format!("docker.io/library/{name}")
    } else if first.contains(['.', ':']) || first == "localhost" {
        name.to_string()
    } else {
        format!("docker.io/{name}")
    }
}

enum Answer {
    Json(u16, String),
    Stream(Vec<String>),
}

fn answer(state: &Shared, method: &str, path: &str, body: &Option<Value>) -> Answer {
    let route = match path.strip_prefix("/v1.44") {
        Some(rest) => rest.to_string(),
        None => path.to_string(),
    };
    let route = route.split('?').next().unwrap().to_string();
    let stream = |msgs: &[&str]| Answer::Stream(msgs.iter().map(|m| m.to_string()).collect());
    if route == "/_ping" {
        return Answer::Json(200, "OK".into());
    }
    if route == "/auth" {
        let b = body.clone().unwrap_or(Value::Null);
        return match (b["username"].as_str(), b["password"].as_str()) {
            (_, Some("bad")) => Answer::Json(
                401,
                r#"{"message":"login attempt to http://localhost:5000/v2/ failed with status: 401 Unauthorized"}"#.into(),
            ),
            (Some("tokenuser"), _) => Answer::Json(
                200,
                r#"{"IdentityToken":"tok-123","Status":"Login Succeeded"}"#.into(),
            ),
            _ => Answer::Json(200, r#"{"IdentityToken":"","Status":"Login Succeeded"}"#.into()),
        };
    }
    if route == "/images/create" && method == "POST" {
        let from = query_value(path, "fromImage").unwrap_or_default();
        if from.contains("nosuch") {
            return Answer::Json(
                404,
                format!(
                    r#"{{"message":"manifest for {from}:tag not found: manifest unknown: manifest unknown"}}"#
                ),
            );
        }
        if from.contains("private") {
            return Answer::Json(
                401,
                r#"{"message":"unauthorized: authentication required"}"#.into(),
            );
        }
        if from.contains("broken") {
            return stream(&[
                r#"{"status":"Pulling from broken","id":"latest"}"#,
                r#"{"status":"Pulling fs layer","progressDetail":{},"id":"389ed6bbf73b"}"#,
                r#"{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}"#,
            ]);
        }
        state.lock().unwrap().pulled.insert(from.clone());
        if from == "localhost:5000/multi" {
            return stream(PULL_MULTI);
        }
        if from == "localhost:5000/x" {
            return stream(PULL_X);
        }
        let short = from.rsplit('/').next().unwrap().to_string();
        return Answer::Stream(vec![
            format!(r#"{{"status":"Pulling from library/{short}","id":"latest"}}"#),
            r#"{"status":"Pulling fs layer","progressDetail":{},"id":"389ed6bbf73b"}"#.into(),
            r#"{"status":"Downloading","progressDetail":{"current":126,"total":126},"progress":"[==================================================\u003e]     126B/126B","id":"389ed6bbf73b"}"#.into(),
            r#"{"status":"Pull complete","progressDetail":{},"id":"389ed6bbf73b"}"#.into(),
            format!(r#"{{"status":"Digest: {D1}"}}"#),
            format!(r#"{{"status":"Status: Downloaded newer image for {short}:latest"}}"#),
        ]);
    }
    if let Some(name) = route
        .strip_prefix("/images/")
        .and_then(|r| r.strip_suffix("/push"))
    {
        if name.contains("denied") {
            return stream(&[
                r#"{"status":"The push refers to repository [localhost:5000/denied]"}"#,
                r#"{"status":"Preparing","progressDetail":{},"id":"80e0452609cc"}"#,
                r#"{"errorDetail":{"message":"denied: requested access to the resource is denied"},"error":"denied: requested access to the resource is denied"}"#,
            ]);
        }
        if name.contains("partial") {
            return Answer::Stream(vec![
                r#"{"status":"The push refers to repository [localhost:5000/partial]"}"#.into(),
                format!(
                    r#"{{"aux":{{"manifestPushedInsteadOfIndex":true,"originalIndex":{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{D2}","size":1}},"selectedManifest":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D1}","size":2}}}}}}"#
                ),
                format!(r#"{{"status":"latest: digest: {D1} size: 2"}}"#),
            ]);
        }
        if name.contains("multi") {
            return stream(PUSH_MULTI);
        }
        return stream(PUSH_X);
    }
    if route == "/containers/create" {
        let image = body
            .as_ref()
            .and_then(|b| b["Image"].as_str())
            .unwrap_or("")
            .to_string();
        if state.lock().unwrap().pulled.contains(&repo_of(&image)) {
            return Answer::Json(201, format!(r#"{{"Id":"{ID}","Warnings":[]}}"#));
        }
        return Answer::Json(404, format!(r#"{{"message":"No such image: {image}"}}"#));
    }
    if route.ends_with("/start") {
        return Answer::Json(204, String::new());
    }
    if route == "/images/json" {
        return Answer::Json(
            200,
            json!([
                {"Id": format!("sha256:{}", "a".repeat(64)), "Created": 1_600_000_000_i64, "Size": 1_000_000,
                 "RepoTags": ["localhost:5000/x:latest", "localhost:5000/x:v1"],
                 "RepoDigests": [format!("localhost:5000/x@{D1}")], "Containers": -1},
                {"Id": format!("sha256:{}", "b".repeat(64)), "Created": 1_600_000_000_i64, "Size": 2_000,
                 "RepoTags": [], "RepoDigests": [format!("busybox@{D2}")], "Containers": -1},
                {"Id": format!("sha256:{}", "c".repeat(64)), "Created": 1_600_000_000_i64, "Size": 3_000,
                 "RepoTags": ["<none>:<none>"], "RepoDigests": ["<none>@<none>"], "Containers": -1},
            ])
            .to_string(),
        );
    }
    Answer::Json(200, "{}".into())
}

fn handle(stream: UnixStream, state: Shared) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        let mut auth = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if k.eq_ignore_ascii_case("x-registry-auth") {
                    auth = Some(v.trim().to_string());
                }
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if method != "HEAD" {
            state.lock().unwrap().log.push(Req {
                method: method.clone(),
                path: path.clone(),
                auth,
                body: json.clone(),
            });
        }
        let head_extra = if path.starts_with("/_ping") {
            "Api-Version: 1.44\r\nOstype: linux\r\n"
        } else {
            ""
        };
        let out = match answer(&state, &method, &path, &json) {
            Answer::Json(status, text) => {
                let reason = match status {
                    200 => "OK",
                    201 => "Created",
                    204 => "No Content",
                    401 => "Unauthorized",
                    _ => "Not Found",
                };
                let text = if method == "HEAD" {
                    String::new()
                } else {
                    text
                };
                format!(
                    "HTTP/1.1 {status} {reason}\r\n{head_extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                    text.len()
                )
            }
            Answer::Stream(msgs) => {
                // One chunk per message, `\r\n` after each, as dockerd streams them.
                let mut s = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_string();
                for m in msgs {
                    let data = format!("{m}\r\n");
                    s.push_str(&format!("{:x}\r\n{data}\r\n", data.len()));
                }
                s.push_str("0\r\n\r\n");
                s
            }
        };
        if writer.write_all(out.as_bytes()).is_err() {
            return;
        }
    }
}

/// A `docker-credential-test` stand-in on `$PATH`: logs each call, keeps a file per server.
const FAKE_HELPER: &str = r#"#!/bin/sh
here=$(dirname "$0")
input=$(cat)
printf '%s %s\n' "$1" "$input" >> "$here/helper.log"
key() { printf '%s' "$1" | tr '/:' '__'; }
case "$1" in
store)
    server=$(printf '%s' "$input" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
    printf '%s' "$input" > "$here/store/$(key "$server")" ;;
get)
    f="$here/store/$(key "$input")"
    if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase)
    rm "$here/store/$(key "$input")" 2>/dev/null || { echo "credentials not found in native keychain"; exit 1; } ;;
list)
    printf '{' ; first=1
    for f in "$here"/store/*; do [ -f "$f" ] || continue
        [ $first = 1 ] || printf ','; first=0
        printf '"%s":"u"' "$(sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p' "$f")"
    done; printf '}' ;;
esac
"#;

struct Case {
    args: &'static [&'static str],
    stdin: Option<&'static str>,
    /// config.json before the run.
    config: Option<&'static str>,
    /// The fake helper's store before the run: (server, credentials JSON).
    helper_store: &'static [(&'static str, &'static str)],
    code: i32,
}

const fn case(args: &'static [&'static str]) -> Case {
    Case {
        args,
        stdin: None,
        config: None,
        helper_store: &[],
        code: 0,
    }
}

impl Case {
    const fn code(mut self, code: i32) -> Case {
        self.code = code;
        self
    }
    const fn stdin(mut self, s: &'static str) -> Case {
        self.stdin = Some(s);
        self
    }
    const fn config(mut self, c: &'static str) -> Case {
        self.config = Some(c);
        self
    }
    const fn helper(mut self, h: &'static [(&'static str, &'static str)]) -> Case {
        self.helper_store = h;
        self
    }
}

const LOCAL_AUTH: &str = r#"{"auths":{"localhost:5000":{"auth":"Y2FwdXNlcjpzZWNyZXRwdw=="}}}"#;
const HUB_AUTH: &str =
    r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnB3"},"other:1":{"auth":"bzpw"}}}"#;
const HELPER_CFG: &str = r#"{"credsStore":"test"}"#;
const HELPER_FOR_LOCAL: &str =
    r#"{"credHelpers":{"localhost:5000":"test"},"auths":{"other:1":{"auth":"bzpw"}}}"#;
const MISSING_HELPER: &str = r#"{"credsStore":"wharf-test-missing"}"#;
const STORED_LOCAL: &[(&str, &str)] = &[(
    "localhost:5000",
    r#"{"ServerURL":"localhost:5000","Username":"helperuser","Secret":"helperpw"}"#,
)];
const STORED_TOKEN: &[(&str, &str)] = &[(
    "localhost:5000",
    r#"{"ServerURL":"localhost:5000","Username":"<token>","Secret":"tok-9"}"#,
)];

const CASES: &[Case] = &[
    // pull
    case(&["pull", "localhost:5000/x"]),
    case(&["pull", "localhost:5000/multi:v1"]),
    case(&["pull", "-q", "localhost:5000/multi:v1"]),
    case(&["image", "pull", "localhost:5000/x"]),
    case(&["pull", "-a", "localhost:5000/x"]),
    case(&["pull", "-a", "localhost:5000/x:v1"]).code(1),
    case(&["pull", "--platform", "Linux/ARM64", "localhost:5000/x"]),
    case(&["pull", "busybox"]),
    case(&[
        "pull",
        "busybox:1.36@sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6",
    ]),
    case(&["pull", "localhost:5000/nosuch:tag"]).code(1),
    case(&["pull", "localhost:5000/broken"]).code(1),
    case(&["pull", "Busybox"]).code(1),
    case(&["pull", "localhost:5000/x@sha256:abc"]).code(1),
    // A 401 from the daemon: docker's prompt, which needs a terminal for the password.
    case(&["pull", "localhost:5000/private"])
        .stdin("someone\n")
        .code(1),
    // Stored credentials travel in X-Registry-Auth for the reference's registry only.
    case(&["pull", "localhost:5000/x"]).config(LOCAL_AUTH),
    case(&["pull", "busybox"]).config(HUB_AUTH),
    case(&["pull", "other:1/a"]).config(HUB_AUTH),
    case(&["pull", "localhost:5000/x"])
        .config(HELPER_CFG)
        .helper(STORED_LOCAL),
    case(&["pull", "localhost:5000/x"])
        .config(HELPER_CFG)
        .helper(STORED_TOKEN),
    case(&["pull", "localhost:5000/x"])
        .config(HELPER_FOR_LOCAL)
        .helper(STORED_LOCAL),
    case(&["pull", "other:1/x"])
        .config(HELPER_FOR_LOCAL)
        .helper(STORED_LOCAL),
    case(&["pull", "localhost:5000/x"]).config(MISSING_HELPER),
    case(&["pull", "localhost:5000/x"]).config("{not json"),
    // push
    case(&["push", "localhost:5000/x"]),
    case(&["push", "localhost:5000/multi:v1"]),
    case(&["push", "-q", "localhost:5000/multi:v1"]),
    case(&["image", "push", "-a", "localhost:5000/multi"]),
    case(&["push", "-a", "localhost:5000/multi:v1"]).code(1),
    case(&["push", "localhost:5000/denied"]).code(1),
    case(&["push", "localhost:5000/partial"]),
    case(&[
        "push",
        "localhost:5000/x@sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6",
    ])
    .code(1),
    case(&["push", "--platform", "linux/arm64", "localhost:5000/x"]).code(1),
    case(&["push", "localhost:5000/x"]).config(LOCAL_AUTH),
    // login
    case(&[
        "login",
        "-u",
        "capuser",
        "--password-stdin",
        "localhost:5000",
    ])
    .stdin("secretpw\n"),
    case(&[
        "login",
        "-u",
        "capuser",
        "-p",
        "secretpw",
        "http://localhost:5000/v2/",
    ]),
    case(&[
        "login",
        "-u",
        "capuser",
        "--password-stdin",
        "localhost:5000",
    ])
    .stdin("secretpw\n")
    .config(LOCAL_AUTH),
    case(&[
        "login",
        "-u",
        "capuser",
        "--password-stdin",
        "localhost:5000",
    ])
    .stdin("bad\n")
    .code(1),
    case(&["login", "-u", "tokenuser", "--password-stdin"]).stdin("pw\r\n"),
    case(&["login", "-u", "hubuser", "--password-stdin", "docker.io"]).stdin(" pw \n"),
    case(&["login", "localhost:5000"]).code(1),
    // Stored credentials are tried first; without a terminal nothing else can be.
    case(&["login", "localhost:5000"]).config(LOCAL_AUTH),
    case(&[
        "login",
        "-u",
        "capuser",
        "--password-stdin",
        "localhost:5000",
    ])
    .stdin("secretpw\n")
    .config(HELPER_CFG),
    case(&[
        "login",
        "-u",
        "tokenuser",
        "--password-stdin",
        "localhost:5000",
    ])
    .stdin("pw\n")
    .config(HELPER_CFG),
    case(&["login", "localhost:5000"])
        .config(HELPER_CFG)
        .helper(STORED_LOCAL),
    case(&[
        "login",
        "-u",
        "capuser",
        "--password-stdin",
        "localhost:5000",
    ])
    .stdin("secretpw\n")
    .config(MISSING_HELPER)
    .code(1),
    case(&["login", "--password-stdin", "localhost:5000"]).code(1),
    case(&["login", "-u", "a", "-p", "b", "--password-stdin"]).code(1),
    case(&["login", "-u", "", "localhost:5000"]).code(1),
    // `--config DIR` (here relative to the working dir) wins over $DOCKER_CONFIG.
    case(&[
        "--config",
        "flagcfg",
        "login",
        "-u",
        "capuser",
        "--password-stdin",
        "localhost:5000",
    ])
    .stdin("secretpw\n"),
    case(&["--config", "flagcfg", "pull", "localhost:5000/x"]).config(LOCAL_AUTH),
    // logout
    case(&["logout", "localhost:5000"]).config(LOCAL_AUTH),
    case(&["logout", "https://localhost:5000"]).config(LOCAL_AUTH),
    case(&["logout"]).config(HUB_AUTH),
    case(&["logout", "nothing:1"]),
    case(&["logout", "localhost:5000"])
        .config(HELPER_CFG)
        .helper(STORED_LOCAL),
    case(&["logout", "localhost:5000"]).config(HELPER_CFG),
    // run and create of an image that is not there
    case(&["create", "newimage:1.0", "true"]),
    case(&["create", "-q", "newimage", "true"]),
    case(&["create", "--pull=never", "newimage", "true"]).code(1),
    case(&["create", "--pull=always", "newimage", "true"]),
    case(&["create", "--platform", "linux/arm64", "newimage", "true"]),
    case(&["create", "localhost:5000/nosuch:tag", "true"]).code(1),
    case(&["run", "-d", "localhost:5000/nosuch:tag", "true"]).code(125),
    case(&["run", "-d", "localhost:5000/broken", "true"]).code(125),
    case(&["run", "-d", "newimage", "true"]),
    case(&["create", "newimage", "true"]).config(HUB_AUTH),
    case(&["create", "newimage", "true"])
        .config(MISSING_HELPER)
        .code(1),
    case(&["run", "-d", "Busybox", "true"]).code(125),
    // images
    case(&["images"]),
    case(&["images", "--digests"]),
    case(&["images", "--no-trunc", "--digests"]),
    case(&[
        "images",
        "--digests",
        "--format",
        "table {{.Repository}}\\t{{.Tag}}",
    ]),
    case(&["images", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"]),
];

struct Outcome {
    requests: Vec<Req>,
    stdout: String,
    stderr: String,
    code: i32,
    /// `$DOCKER_CONFIG/config.json` and `flagcfg/config.json` (`--config flagcfg`).
    config: Vec<Option<String>>,
    helper_log: Option<String>,
}

/// Runs one tool in a fresh config dir (`cfg`) set up as the case says.
fn run_case(tool: &str, sock: &Path, root: &Path, state: &Shared, c: &Case) -> Outcome {
    let cfg = root.join("cfg");
    let helper_dir = root.join("helper");
    let _ = std::fs::remove_dir_all(&cfg);
    let _ = std::fs::remove_dir_all(&helper_dir);
    let _ = std::fs::remove_dir_all(root.join("flagcfg"));
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::create_dir_all(helper_dir.join("store")).unwrap();
    let helper = helper_dir.join("docker-credential-test");
    std::fs::write(&helper, FAKE_HELPER).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (server, creds) in c.helper_store {
        std::fs::write(
            helper_dir
                .join("store")
                .join(server.replace(['/', ':'], "_")),
            creds,
        )
        .unwrap();
    }
    if let Some(text) = c.config {
        std::fs::write(cfg.join("config.json"), text).unwrap();
    }
    {
        let mut s = state.lock().unwrap();
        s.log.clear();
        s.pulled.clear();
    }
    let bin = if tool == "docker" {
        "docker".to_string()
    } else {
        env!("CARGO_BIN_EXE_wharf").to_string()
    };
    let path = format!(
        "{}:{}",
        helper_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new(bin)
        .args(c.args)
        .current_dir(root)
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", &cfg)
        .env("WHARF_CONFIG", root.join("wharf"))
        .env("PATH", path)
        .env_remove("WHARF_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_DEFAULT_PLATFORM")
        .env_remove("DOCKER_CLI_HINTS")
        .env("TZ", "UTC")
        .stdin(if c.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = c.stdin {
        let mut pipe = child.stdin.take().unwrap();
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().unwrap();
    let requests = state.lock().unwrap().log.clone();
    Outcome {
        requests,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
        config: [cfg.join("config.json"), root.join("flagcfg/config.json")]
            .iter()
            .map(|p| std::fs::read_to_string(p).ok())
            .collect(),
        helper_log: std::fs::read_to_string(helper_dir.join("helper.log")).ok(),
    }
}

/// docker names itself in its prefixes and hints; wharf says `wharf` there.
fn as_wharf(docker_stderr: &str) -> String {
    docker_stderr
        .replace("docker: ", "wharf: ")
        .replace("'docker ", "'wharf ")
        .replace("`docker ", "`wharf ")
}

/// The words after a config file's name in a parse warning are Go's JSON syntax errors,
/// which wharf does not copy: the line is compared up to them.
fn go_json_errors(stderr: &str) -> String {
    stderr
        .lines()
        .map(|l| match l.find("/config.json): ") {
            Some(i) if l.starts_with("WARNING: Error parsing config file") => &l[..i + 15],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn start_server(root: &Path) -> (PathBuf, Shared) {
    let sock = root.join("fake.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let state: Shared = Arc::default();
    let server_state = state.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let st = server_state.clone();
            std::thread::spawn(move || handle(s, st));
        }
    });
    (sock, state)
}

fn have_docker() -> bool {
    Command::new("docker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn registry_commands_match_docker_cli() {
    if !have_docker() {
        wharf_testkit::skip("no docker CLI on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (sock, state) = start_server(dir.path());
    let mut failures = Vec::new();
    for c in CASES {
        let d = run_case("docker", &sock, dir.path(), &state, c);
        let w = run_case("wharf", &sock, dir.path(), &state, c);
        let mut problems = Vec::new();
        if d.code != c.code {
            problems.push(format!("docker exit {} (want {})", d.code, c.code));
        }
        if d.code != w.code {
            problems.push(format!("exit docker={} wharf={}", d.code, w.code));
        }
        if d.stdout != w.stdout {
            problems.push(format!(
                "stdout:\n--- docker\n{}\n--- wharf\n{}",
                d.stdout, w.stdout
            ));
        }
        let d_err = go_json_errors(&as_wharf(&d.stderr));
        let w_err = go_json_errors(&w.stderr);
        if d_err != w_err {
            problems.push(format!("stderr:\n--- docker\n{d_err}\n--- wharf\n{w_err}"));
        }
        // wharf's `run -d` does not register a wait before the start (docker's does); that
        // is run's business, not the pull's compared here.
        let d_requests: Vec<Req> = d
            .requests
            .iter()
            .filter(|r| !r.path.contains("/wait?"))
            .cloned()
            .collect();
        if d_requests != w.requests {
            problems.push(format!(
                "requests:\n--- docker\n{:#?}\n--- wharf\n{:#?}",
                d_requests, w.requests
            ));
        }
        if d.config != w.config {
            problems.push(format!(
                "config.json:\n--- docker\n{:?}\n--- wharf\n{:?}",
                d.config, w.config
            ));
        }
        if d.helper_log != w.helper_log {
            problems.push(format!(
                "helper calls:\n--- docker\n{:?}\n--- wharf\n{:?}",
                d.helper_log, w.helper_log
            ));
        }
        if problems.is_empty() {
            println!("same (exit {}): {:?}", d.code, c.args);
        } else {
            failures.push(format!("{:?}: {}", c.args, problems.join("\n")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

/// Which of the tool's outputs is the terminal.
#[derive(Clone, Copy, Debug)]
enum OnTerminal {
    Stdout,
    Stderr,
}

/// Runs `args` with stdout or stderr on a fresh pty `width` columns wide; returns what the
/// terminal received (the line discipline's `\r\n` included) and the other stream.
fn on_pty(
    tool: &str,
    sock: &Path,
    root: &Path,
    state: &Shared,
    args: &[&str],
    width: u16,
    which: OnTerminal,
) -> (Vec<u8>, Vec<u8>) {
    let cfg = root.join("cfg");
    let _ = std::fs::remove_dir_all(&cfg);
    {
        let mut s = state.lock().unwrap();
        s.log.clear();
        s.pulled.clear();
    }
    let size = nix::pty::Winsize {
        ws_row: 40,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    let bin = if tool == "docker" {
        "docker".to_string()
    } else {
        env!("CARGO_BIN_EXE_wharf").to_string()
    };
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .current_dir(root)
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", &cfg)
        .env("WHARF_CONFIG", root.join("wharf"))
        .env_remove("WHARF_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env("TZ", "UTC")
        .stdin(Stdio::null());
    let term = Stdio::from(pty.slave.try_clone().unwrap());
    match which {
        OnTerminal::Stdout => cmd.stdout(term).stderr(Stdio::piped()),
        OnTerminal::Stderr => cmd.stderr(term).stdout(Stdio::piped()),
    };
    let mut child = cmd.spawn().unwrap();
    // Only the child holds the terminal now: its exit ends the reads below.
    drop(cmd);
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let mut other = Vec::new();
    match which {
        OnTerminal::Stdout => child
            .stderr
            .take()
            .unwrap()
            .read_to_end(&mut other)
            .unwrap(),
        OnTerminal::Stderr => child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut other)
            .unwrap(),
    };
    child.wait().unwrap();
    (seen, other)
}

#[test]
fn progress_on_a_terminal_is_drawn_like_docker() {
    if !have_docker() {
        wharf_testkit::skip("no docker CLI on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (sock, state) = start_server(dir.path());
    let cases: &[(&[&str], OnTerminal)] = &[
        (&["pull", "localhost:5000/multi:v1"], OnTerminal::Stdout),
        (&["pull", "localhost:5000/broken"], OnTerminal::Stdout),
        (&["push", "localhost:5000/x"], OnTerminal::Stdout),
        (&["push", "localhost:5000/multi:v1"], OnTerminal::Stdout),
        (&["push", "localhost:5000/partial"], OnTerminal::Stdout),
        (&["create", "newimage", "true"], OnTerminal::Stderr),
    ];
    let mut failures = Vec::new();
    for (args, which) in cases {
        // Bars only on terminals wider than 110 columns.
        for width in [200, 80] {
            let d = on_pty("docker", &sock, dir.path(), &state, args, width, *which);
            let w = on_pty("wharf", &sock, dir.path(), &state, args, width, *which);
            let d_other = as_wharf(&String::from_utf8_lossy(&d.1));
            let w_other = String::from_utf8_lossy(&w.1).into_owned();
            let d_term = as_wharf(&String::from_utf8_lossy(&d.0));
            let w_term = String::from_utf8_lossy(&w.0).into_owned();
            if d_term != w_term || d_other != w_other {
                failures.push(format!(
                    "{args:?} ({width} columns, {which:?} a terminal):\n--- docker\n{d_term:?}\n{d_other:?}\n--- wharf\n{w_term:?}\n{w_other:?}"
                ));
            } else {
                // The comparison means something: lines redrawn in place, bars when wide.
                if args[0] == "pull" && args[1].ends_with("multi:v1") {
                    assert!(d_term.contains("\x1b[2A\x1b[2K\r"), "{d_term:?}");
                    assert_eq!(d_term.contains("[===="), width > 110, "{d_term:?}");
                }
                println!("same on a {width}-column terminal: {args:?}");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs `args` with stdin, stdout and stderr on one pty, typing each answer once its prompt
/// has appeared; returns the terminal's bytes, the exit code and the requests made.
fn interactive(
    tool: &str,
    sock: &Path,
    root: &Path,
    state: &Shared,
    args: &[&str],
    answers: &[(&str, &str)],
) -> (String, i32, Vec<Req>) {
    use std::os::fd::AsRawFd;
    let cfg = root.join("cfg");
    let _ = std::fs::remove_dir_all(&cfg);
    {
        let mut s = state.lock().unwrap();
        s.log.clear();
        s.pulled.clear();
    }
    let size = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 200,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    let bin = if tool == "docker" {
        "docker".to_string()
    } else {
        env!("CARGO_BIN_EXE_wharf").to_string()
    };
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .current_dir(root)
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", &cfg)
        .env("WHARF_CONFIG", root.join("wharf"))
        .env_remove("WHARF_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_CLI_HINTS")
        .env("TZ", "UTC")
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let fd = master.as_raw_fd();
    let mut seen = Vec::new();
    let mut pending = answers.iter();
    let mut next = pending.next();
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "{tool} {args:?}: no end within 60 s: {:?}",
            String::from_utf8_lossy(&seen)
        );
        // Poll so that a prompt that never comes fails the deadline instead of hanging.
        let mut fds = [nix::poll::PollFd::new(
            unsafe_borrow(fd),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(200u16)).unwrap() == 0 {
            continue;
        }
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        if let Some((prompt, reply)) = next {
            if String::from_utf8_lossy(&seen).ends_with(prompt) {
                master.write_all(reply.as_bytes()).unwrap();
                next = pending.next();
            }
        }
    }
    let code = child.wait().unwrap().code().unwrap_or(-1);
    let requests = state.lock().unwrap().log.clone();
    (String::from_utf8_lossy(&seen).into_owned(), code, requests)
}

/// A borrowed fd for poll, valid while `master` (its owner) lives in the caller.
fn unsafe_borrow(fd: std::os::fd::RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: the fd belongs to the pty master file held by `interactive` for the whole loop
    // that polls it; the borrow never outlives that loop.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

#[test]
fn prompts_on_a_terminal_are_dockers() {
    if !have_docker() {
        wharf_testkit::skip("no docker CLI on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (sock, state) = start_server(dir.path());
    type Answers = &'static [(&'static str, &'static str)];
    let cases: &[(&[&str], Answers)] = &[
        // A login typed at the terminal: the password is not echoed.
        (
            &["login", "localhost:5000"],
            &[("Username: ", "capuser\n"), ("Password: ", "secretpw\n")],
        ),
        (
            &["login", "-u", "capuser", "localhost:5000"],
            &[("Password: ", "secretpw\n")],
        ),
        (&["login", "localhost:5000"], &[("Username: ", "\n")]),
        // A 401 on pull: docker's prompt (with Docker Hub's hints, whatever the registry),
        // then one retry with what was typed.
        (
            &["pull", "localhost:5000/private"],
            &[("Username: ", "someone\n"), ("Password: ", "pw\n")],
        ),
    ];
    let mut failures = Vec::new();
    for (args, answers) in cases {
        let d = interactive("docker", &sock, dir.path(), &state, args, answers);
        let w = interactive("wharf", &sock, dir.path(), &state, args, answers);
        let d_text = as_wharf(&d.0);
        if (d_text.as_str(), d.1, &d.2) != (w.0.as_str(), w.1, &w.2) {
            failures.push(format!(
                "{args:?}:\n--- docker (exit {})\n{d_text:?}\n{:?}\n--- wharf (exit {})\n{:?}\n{:?}",
                d.1, d.2, w.1, w.0, w.2
            ));
        } else {
            assert!(!d.0.contains("secretpw"), "{:?}", d.0);
            println!("same at a terminal (exit {}): {args:?}", d.1);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
