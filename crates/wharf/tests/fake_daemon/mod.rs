//! A fake Engine API on a unix socket for comparing `wharf` with the docker CLI: it records
//! every request (method, path with query, content type, body as JSON or as the entries of a
//! tar) and answers with canned dockerd responses: volumes, a container `c1` with a small
//! filesystem for `cp` (stat header, archives), changes, export, commit, save and load.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use base64::Engine;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One tar entry as compared: name, type, mode, uid, gid, link, content.
#[derive(Debug, Clone, PartialEq)]
pub struct TarEntry {
    pub name: String,
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: String,
    /// The content, or for a large one its size and FNV-1a hash.
    pub data: String,
}

fn shown(data: &[u8]) -> String {
    if data.len() <= 64 {
        return String::from_utf8_lossy(data).into_owned();
    }
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{} bytes, fnv {hash:016x}", data.len())
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    None,
    Json(Value),
    Tar(Vec<TarEntry>),
    Bytes(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body: Body,
}

pub type Log = Arc<Mutex<Vec<Req>>>;

pub fn read_tar(bytes: &[u8]) -> Option<Vec<TarEntry>> {
    let mut ar = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in ar.entries().ok()? {
        let mut e = e.ok()?;
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).ok()?;
        out.push(TarEntry {
            name: String::from_utf8_lossy(&e.path_bytes()).into_owned(),
            kind: h.entry_type().as_byte() as char,
            mode: h.mode().unwrap_or(0),
            uid: h.uid().unwrap_or(0),
            gid: h.gid().unwrap_or(0),
            mtime: h.mtime().unwrap_or(0),
            link: e
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
            data: shown(&data),
        });
    }
    Some(out)
}

/// A node of `c1`'s filesystem.
#[derive(Clone, Copy)]
enum Node {
    Dir(u32),
    File(u32, &'static str),
    Link(&'static str),
    CharDev,
}

const MTIME: u64 = 1_700_000_000;

fn fs_nodes() -> Vec<(&'static str, Node)> {
    vec![
        ("/", Node::Dir(0o755)),
        ("/etc", Node::Dir(0o755)),
        ("/etc/hosts", Node::File(0o644, "127.0.0.1 localhost\n")),
        ("/etc/ln", Node::Link("hosts")),
        ("/etc/sub", Node::Dir(0o700)),
        ("/etc/sub/deep.txt", Node::File(0o600, "deep\n")),
        ("/link", Node::Link("/etc")),
        ("/rel", Node::Link("etc/hosts")),
        ("/dev", Node::Dir(0o755)),
        ("/dev/null", Node::CharDev),
        ("/tmp", Node::Dir(0o1777)),
        ("/empty", Node::Dir(0o755)),
        ("/big", Node::Dir(0o755)),
        ("/huge", Node::Dir(0o755)),
        ("/evil", Node::Dir(0o755)),
        ("/evil2", Node::Dir(0o755)),
        ("/evil3", Node::Dir(0o755)),
    ]
}

fn lookup(path: &str) -> Option<Node> {
    let p = clean(path);
    fs_nodes()
        .into_iter()
        .find(|(n, _)| *n == p)
        .map(|(_, n)| n)
}

fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for s in p.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Follows symlinks in the last element when the path asks for a directory (`/` or `/.`),
/// or always when `follow`.
fn resolve(path: &str, follow: bool) -> Option<(String, Node)> {
    let mut p = clean(path);
    let wants_dir = path.ends_with('/') || path.ends_with("/.");
    for _ in 0..10 {
        let n = lookup(&p)?;
        match n {
            Node::Link(t) if follow || wants_dir => {
                p = if t.starts_with('/') {
                    clean(t)
                } else {
                    let parent = p.rsplit_once('/').map_or("/", |(d, _)| d);
                    clean(&format!("{parent}/{t}"))
                };
            }
            n => return Some((p, n)),
        }
    }
    None
}

fn go_mode(n: Node) -> u64 {
    match n {
        Node::Dir(m) => {
            let mut mode = (1u64 << 31) | u64::from(m & 0o777);
            if m & 0o1000 != 0 {
                mode |= 1 << 20;
            }
            mode
        }
        Node::File(m, _) => u64::from(m),
        Node::Link(_) => (1 << 27) | 0o777,
        Node::CharDev => (1 << 26) | (1 << 21) | 0o666,
    }
}

fn stat_header(path: &str) -> Option<String> {
    let (resolved, n) = resolve(path, false)?;
    let name = resolved.rsplit('/').next().unwrap_or("").to_string();
    let (size, link) = match n {
        Node::File(_, c) => (c.len(), String::new()),
        Node::Link(t) => (t.len(), t.to_string()),
        _ => (4096, String::new()),
    };
    let v = json!({"name": if name.is_empty() { "/".to_string() } else { name },
        "size": size, "mode": go_mode(n), "mtime": "2023-11-14T22:13:20Z", "linkTarget": link});
    Some(base64::engine::general_purpose::STANDARD.encode(v.to_string()))
}

fn header(kind: tar::EntryType, name: &str, mode: u32, size: u64, link: &str) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_path(name).unwrap();
    if !link.is_empty() {
        h.set_link_name(link).unwrap();
    }
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    h
}

/// The archive dockerd sends for `path`: entries named from the path's last element (`.`
/// for `/.`), the directory's contents below it.
fn archive_of(path: &str) -> Option<Vec<u8>> {
    let (resolved, _) = resolve(path, false)?;
    let top = if path.ends_with("/.") {
        ".".to_string()
    } else {
        clean(path).rsplit('/').next().unwrap_or("").to_string()
    };
    let mut b = tar::Builder::new(Vec::new());
    if resolved == "/evil" {
        // A hostile archive: an entry that climbs out of the destination.
        let data = b"gotcha\n";
        b.append(
            &header(tar::EntryType::Regular, "evil/ok", 0o644, 0, ""),
            &[][..],
        )
        .unwrap();
        let mut h = header(tar::EntryType::Regular, "x", 0o644, data.len() as u64, "");
        h.as_old_mut().name[..10].copy_from_slice(b"../escaped");
        h.as_old_mut().name[10] = 0;
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
        return Some(b.into_inner().unwrap());
    }
    if resolved == "/evil2" || resolved == "/evil3" {
        // A hard link, or a symlink, whose target climbs out of the destination.
        b.append(
            &header(tar::EntryType::Directory, "e/", 0o755, 0, ""),
            &[][..],
        )
        .unwrap();
        let kind = if resolved == "/evil2" {
            tar::EntryType::Link
        } else {
            tar::EntryType::Symlink
        };
        b.append(
            &header(kind, "e/l", 0o777, 0, "../../../../etc/hostname"),
            &[][..],
        )
        .unwrap();
        return Some(b.into_inner().unwrap());
    }
    if resolved == "/huge" {
        // Far more than a pipe holds: the unpacking must keep up with the download.
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        b.append(
            &header(tar::EntryType::Directory, "huge/", 0o755, 0, ""),
            &[][..],
        )
        .unwrap();
        b.append(
            &header(
                tar::EntryType::Regular,
                "huge/blob",
                0o600,
                data.len() as u64,
                "",
            ),
            &data[..],
        )
        .unwrap();
        return Some(b.into_inner().unwrap());
    }
    if resolved == "/big" {
        let data = vec![b'x'; 2000];
        b.append(
            &header(tar::EntryType::Directory, "big/", 0o755, 0, ""),
            &[][..],
        )
        .unwrap();
        b.append(
            &header(tar::EntryType::Regular, "big/blob", 0o644, 2000, ""),
            &data[..],
        )
        .unwrap();
        return Some(b.into_inner().unwrap());
    }
    for (p, n) in fs_nodes() {
        let rel = if p == resolved {
            Some(String::new())
        } else {
            p.strip_prefix(&format!("{}/", resolved.trim_end_matches('/')))
                .map(|r| format!("/{r}"))
        };
        let Some(rel) = rel else { continue };
        let name = format!("{top}{rel}");
        match n {
            Node::Dir(m) => b
                .append(
                    &header(tar::EntryType::Directory, &format!("{name}/"), m, 0, ""),
                    &[][..],
                )
                .unwrap(),
            Node::File(m, c) => b
                .append(
                    &header(tar::EntryType::Regular, &name, m, c.len() as u64, ""),
                    c.as_bytes(),
                )
                .unwrap(),
            Node::Link(t) => b
                .append(
                    &header(tar::EntryType::Symlink, &name, 0o777, 0, t),
                    &[][..],
                )
                .unwrap(),
            Node::CharDev => {}
        }
    }
    Some(b.into_inner().unwrap())
}

/// A small tar standing for an export or a save.
pub fn canned_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append(
        &header(tar::EntryType::Regular, "hello.txt", 0o644, 6, ""),
        &b"hello\n"[..],
    )
    .unwrap();
    b.into_inner().unwrap()
}

fn query(path: &str) -> Vec<(String, String)> {
    let Some((_, q)) = path.split_once('?') else {
        return Vec::new();
    };
    q.split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), decode(v)))
        })
        .collect()
}

fn decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub enum Answer {
    Json(u16, String),
    Head(u16, Option<String>),
    Bytes(u16, &'static str, Vec<u8>, Option<String>),
    Stream(&'static str, Vec<String>),
}

fn not_found(msg: &str) -> Answer {
    Answer::Json(404, json!({ "message": msg }).to_string())
}

fn volume(name: &str, labels: Value) -> Value {
    json!({"CreatedAt": "2024-05-01T10:00:00Z", "Driver": "local", "Labels": labels,
           "Mountpoint": format!("/var/lib/docker/volumes/{name}/_data"), "Name": name,
           "Options": null, "Scope": "local"})
}

fn answer(method: &str, path: &str, body: &Body) -> Answer {
    let route = path
        .strip_prefix("/v1.44")
        .unwrap_or(path)
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let q = query(path);
    let qv = |k: &str| q.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
    if route == "/_ping" {
        return Answer::Json(200, "OK".into());
    }
    // Volumes.
    if route == "/volumes/create" {
        let b = match body {
            Body::Json(v) => v.clone(),
            _ => Value::Null,
        };
        let name = b["Name"].as_str().unwrap_or("").to_string();
        if name == "bad/name" {
            return Answer::Json(400, json!({"message": "create bad/name: \"bad/name\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"}).to_string());
        }
        let name = if name.is_empty() {
            "f".repeat(64)
        } else {
            name
        };
        let mut v = volume(&name, b.get("Labels").cloned().unwrap_or(json!({})));
        v["Options"] = b.get("DriverOpts").cloned().unwrap_or(json!({}));
        v["Driver"] = b.get("Driver").cloned().unwrap_or(json!("local"));
        return Answer::Json(201, v.to_string());
    }
    if route == "/volumes" {
        let mut vols = vec![
            // One label: docker joins several in Go's random map order.
            volume("v10", json!({"a": "1"})),
            volume("data", json!({})),
            volume("v2", json!({"com.example": "<x&y>"})),
        ];
        vols[1]["UsageData"] = json!({"RefCount": 2, "Size": 123456});
        if qv("filters").is_some_and(|f| f.contains("dangling")) {
            vols.truncate(1);
        }
        return Answer::Json(200, json!({"Volumes": vols, "Warnings": []}).to_string());
    }
    if route == "/volumes/prune" {
        let f = qv("filters").unwrap_or_default();
        if f.contains("nothing") {
            return Answer::Json(
                200,
                json!({"VolumesDeleted": null, "SpaceReclaimed": 0}).to_string(),
            );
        }
        return Answer::Json(
            200,
            json!({"VolumesDeleted": ["anon1", "anon2"], "SpaceReclaimed": 1_234_567}).to_string(),
        );
    }
    if let Some(name) = route.strip_prefix("/volumes/") {
        let name = decode(name);
        if name.starts_with("nosuch") {
            return not_found(&format!("get {name}: no such volume"));
        }
        if method == "DELETE" {
            if name == "inuse" && qv("force").is_none() {
                return Answer::Json(
                    409,
                    json!({"message": "remove inuse: volume is in use - [0123456789ab]"})
                        .to_string(),
                );
            }
            return Answer::Json(204, String::new());
        }
        let mut v = volume(&name, json!({"owner": "me"}));
        if name == "plain" {
            // What a daemon may send that docker's typed struct drops or keeps.
            v["Status"] = Value::Null;
            v["UsageData"] = Value::Null;
            v["CreatedAt"] = json!("");
        }
        if name == "withusage" {
            v["UsageData"] = json!({"RefCount": 1, "Size": 42});
            v["Status"] = json!({"hello": "world"});
        }
        return Answer::Json(200, v.to_string());
    }
    // Containers.
    if let Some(rest) = route.strip_prefix("/containers/") {
        let (id, what) = rest.split_once('/').unwrap_or((rest, ""));
        let id = decode(id);
        if id != "c1" {
            return if method == "HEAD" {
                Answer::Head(404, None)
            } else {
                not_found(&format!("No such container: {id}"))
            };
        }
        match (method, what) {
            ("GET", "changes") => {
                return Answer::Json(
                    200,
                    json!([{"Kind": 0, "Path": "/etc"}, {"Kind": 1, "Path": "/etc/new"},
                           {"Kind": 2, "Path": "/tmp/gone"}])
                    .to_string(),
                )
            }
            ("GET", "export") => {
                return Answer::Bytes(200, "application/x-tar", canned_tar(), None)
            }
            (_, "archive") => {
                let p = qv("path").unwrap_or_default();
                let missing = format!("Could not find the file {p} in container {id}");
                match method {
                    "HEAD" => {
                        return match stat_header(&p) {
                            Some(s) => Answer::Head(200, Some(s)),
                            None => Answer::Head(404, None),
                        }
                    }
                    "GET" => {
                        return match (stat_header(&p), archive_of(&p)) {
                            (Some(s), Some(t)) => {
                                Answer::Bytes(200, "application/x-tar", t, Some(s))
                            }
                            _ => not_found(&missing),
                        }
                    }
                    _ => {
                        return match resolve(&p, false) {
                            Some((_, Node::Dir(_))) => Answer::Json(200, String::new()),
                            Some(_) => Answer::Json(
                                400,
                                json!({"message": "extraction point is not a directory"})
                                    .to_string(),
                            ),
                            None => not_found(&missing),
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if route == "/commit" {
        if qv("container").as_deref() != Some("c1") {
            return not_found(&format!(
                "No such container: {}",
                qv("container").unwrap_or_default()
            ));
        }
        return Answer::Json(
            201,
            json!({"Id": format!("sha256:{}", "e".repeat(64))}).to_string(),
        );
    }
    if route == "/images/get" {
        if q.iter().any(|(k, v)| k == "names" && v.contains("nosuch")) {
            return not_found("reference does not exist");
        }
        return Answer::Bytes(200, "application/x-tar", canned_tar(), None);
    }
    if route == "/images/create" && qv("fromSrc").as_deref() == Some("-") {
        return Answer::Stream(
            "application/json",
            vec![format!(r#"{{"status":"sha256:{}"}}"#, "d".repeat(64))],
        );
    }
    if route == "/images/load" {
        if matches!(body, Body::Bytes(n) if *n < 10) {
            return Answer::Json(500, json!({"message": "unexpected EOF"}).to_string());
        }
        if let Body::Tar(entries) = body {
            if entries.iter().any(|e| e.name == "plain.txt") {
                return Answer::Bytes(200, "text/plain", b"plain answer\n".to_vec(), None);
            }
            if entries.iter().any(|e| e.name == "broken.txt") {
                return Answer::Stream(
                    "application/json",
                    vec![r#"{"errorDetail":{"message":"invalid diffID for layer 0"},"error":"invalid diffID for layer 0"}"#.into()],
                );
            }
        }
        if qv("quiet").as_deref() == Some("1") {
            return Answer::Stream(
                "application/json",
                vec![r#"{"stream":"Loaded image: busybox:latest\n"}"#.into()],
            );
        }
        return Answer::Stream(
            "application/json",
            vec![
                r#"{"status":"Loading layer","progressDetail":{"current":32768,"total":2048000},"progress":"[\u003e                                                  ]  32.77kB/2.048MB","id":"d2421964bad1"}"#.into(),
                r#"{"status":"Loading layer","progressDetail":{"current":2048000,"total":2048000},"progress":"[==================================================\u003e]  2.048MB/2.048MB","id":"d2421964bad1"}"#.into(),
                r#"{"stream":"Loaded image: busybox:latest\n"}"#.into(),
            ],
        );
    }
    Answer::Json(200, "{}".into())
}

fn read_body(reader: &mut BufReader<UnixStream>, len: usize, chunked: bool) -> Option<Vec<u8>> {
    if !chunked {
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).ok()?;
        return Some(body);
    }
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if n == 0 {
            let mut end = String::new();
            reader.read_line(&mut end).ok()?;
            return Some(body);
        }
        let mut chunk = vec![0u8; n + 2];
        reader.read_exact(&mut chunk).ok()?;
        body.extend_from_slice(&chunk[..n]);
    }
}

fn handle(stream: UnixStream, log: Log) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let (mut len, mut chunked, mut ctype) = (0usize, false, None);
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
                let v = v.trim();
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.parse().unwrap_or(0),
                    "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                    "content-type" => ctype = Some(v.to_string()),
                    _ => {}
                }
            }
        }
        let Some(raw) = read_body(&mut reader, len, chunked) else {
            return;
        };
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let body = if raw.is_empty() {
            Body::None
        } else if let Ok(v) = serde_json::from_slice::<Value>(&raw) {
            Body::Json(v)
        } else if let Some(t) = read_tar(&raw).filter(|t| !t.is_empty()) {
            Body::Tar(t)
        } else {
            Body::Bytes(raw.len())
        };
        if !path.starts_with("/_ping") {
            log.lock().unwrap().push(Req {
                method: method.clone(),
                path: path.clone(),
                // Only bodies have a type worth comparing.
                content_type: if raw.is_empty() { None } else { ctype },
                body: body.clone(),
            });
        }
        let extra = if path.starts_with("/_ping") {
            "Api-Version: 1.44\r\nOstype: linux\r\n"
        } else {
            ""
        };
        let reason = |s: u16| match s {
            200 => "OK",
            201 => "Created",
            204 => "No Content",
            400 => "Bad Request",
            404 => "Not Found",
            409 => "Conflict",
            _ => "Internal Server Error",
        };
        let mut out: Vec<u8> = Vec::new();
        match answer(&method, &path, &body) {
            Answer::Json(status, text) => {
                let text = if method == "HEAD" {
                    String::new()
                } else {
                    text
                };
                out.extend_from_slice(
                    format!(
                        "HTTP/1.1 {status} {}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                        reason(status),
                        text.len()
                    )
                    .as_bytes(),
                );
            }
            Answer::Head(status, stat) => {
                let stat = stat
                    .map(|s| format!("X-Docker-Container-Path-Stat: {s}\r\n"))
                    .unwrap_or_default();
                out.extend_from_slice(
                    format!(
                        "HTTP/1.1 {status} {}\r\n{stat}Content-Type: application/json\r\nContent-Length: 0\r\n\r\n",
                        reason(status)
                    )
                    .as_bytes(),
                );
            }
            Answer::Bytes(status, ctype, data, stat) => {
                let stat = stat
                    .map(|s| format!("X-Docker-Container-Path-Stat: {s}\r\n"))
                    .unwrap_or_default();
                out.extend_from_slice(
                    format!(
                        "HTTP/1.1 {status} {}\r\n{stat}Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                        reason(status),
                        data.len()
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(&data);
            }
            Answer::Stream(ctype, msgs) => {
                out.extend_from_slice(
                    format!("HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n\r\n").as_bytes(),
                );
                for m in msgs {
                    let data = format!("{m}\r\n");
                    out.extend_from_slice(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes());
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
        }
        if writer.write_all(&out).is_err() {
            return;
        }
    }
}

pub fn start(root: &Path) -> (PathBuf, Log) {
    let sock = root.join("fake.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let log: Log = Arc::default();
    let server_log = log.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let l = server_log.clone();
            std::thread::spawn(move || handle(s, l));
        }
    });
    (sock, log)
}
