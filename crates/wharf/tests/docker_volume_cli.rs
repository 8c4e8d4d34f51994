//! `volume ...`, `cp`, `diff`, `export`, `commit`, `save` and `load` through `wharf` and the
//! docker CLI 28 against one fake daemon on a unix socket (tests/fake_daemon) that answers
//! as dockerd does. Both tools must send the same requests (method, path and query, content
//! type, JSON bodies, and the entries of the tars `cp` uploads), print the same stdout and
//! stderr, exit alike, and leave the same files behind in the working directory (what `cp`
//! unpacked, what `export -o`/`save -o` wrote). Also: the refusals and progress that depend on
//! a terminal.
//!
//! Needs `docker` on PATH; skips otherwise. Starts no daemon and no container.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fake_daemon;

use fake_daemon::{Log, Req};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

const FIXED_MTIME: i64 = 1_600_000_000;

#[derive(Clone, Copy)]
enum Stdin {
    Null,
    Text(&'static str),
    File(&'static str),
}

struct Case {
    args: &'static [&'static str],
    stdin: Stdin,
    code: i32,
}

const fn case(args: &'static [&'static str]) -> Case {
    Case {
        args,
        stdin: Stdin::Null,
        code: 0,
    }
}

impl Case {
    const fn code(mut self, code: i32) -> Case {
        self.code = code;
        self
    }
    const fn stdin(mut self, s: Stdin) -> Case {
        self.stdin = s;
        self
    }
}

const CASES: &[Case] = &[
    // volume create
    case(&["volume", "create"]),
    case(&["volume", "create", "myvol"]),
    case(&["volume", "create", "--name", "myvol"]),
    case(&["volume", "create", "--name", "a", "b"]).code(1),
    case(&[
        "volume",
        "create",
        "-d",
        "local",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "--label",
        "a=b",
        "--label",
        "c",
        "tmpvol",
    ]),
    case(&["volume", "create", "--label", "=x", "v"]).code(125),
    case(&["volume", "create", "bad/name"]).code(1),
    // volume ls
    case(&["volume", "ls"]),
    case(&["volume", "list"]),
    case(&["volume", "ls", "-q"]),
    case(&["volume", "ls", "-q", "--format", "table"]),
    case(&[
        "volume",
        "ls",
        "--format",
        "{{.Name}} {{.Labels}} {{.Links}} {{.Size}} {{.Scope}}",
    ]),
    case(&["volume", "ls", "--format", "json"]),
    case(&["volume", "ls", "--format", "{{.Name}}: {{.Label \"a\"}}"]),
    case(&[
        "volume",
        "ls",
        "--format",
        "table {{.Name}}\\t{{.Label \"a\"}}",
    ]),
    case(&[
        "volume",
        "ls",
        "--format",
        "table {{.Label \"com.example\"}}\\t{{.Label \"my_key-x\"}}",
    ]),
    case(&[
        "volume",
        "ls",
        "--format",
        "table {{.Name}}\\t{{.Mountpoint}}",
    ]),
    case(&["volume", "ls", "-f", "dangling=true"]),
    case(&["volume", "ls", "-f", "bad"]).code(125),
    // volume inspect
    case(&["volume", "inspect", "myvol"]),
    case(&["volume", "inspect", "withusage", "myvol"]),
    case(&["volume", "inspect", "myvol", "nosuch"]).code(1),
    case(&["volume", "inspect", "nosuch"]).code(1),
    case(&[
        "volume",
        "inspect",
        "--format",
        "{{.Name}} {{.Driver}}",
        "myvol",
    ]),
    case(&["volume", "inspect", "-f", "json", "myvol"]),
    case(&[
        "volume",
        "inspect",
        "-f",
        "{{json .}}",
        "withusage",
        "plain",
    ]),
    case(&[
        "volume",
        "inspect",
        "-f",
        // Not `{{.Options}}`: a null map prints `map[]` from docker's typed struct, `<nil>`
        // from wharf's JSON value.
        "{{.Labels}} {{.UsageData.Size}} {{.Status}} {{.Name}}",
        "withusage",
    ]),
    case(&["volume", "inspect", ""]).code(1),
    // volume rm
    case(&["volume", "rm", "a", "b"]),
    case(&["volume", "rm", "-f", "inuse", "a"]),
    case(&["volume", "rm", "inuse", "a", "nosuch"]).code(1),
    case(&["volume", "remove", "a"]),
    // volume prune
    case(&["volume", "prune", "-f"]),
    case(&["volume", "prune", "-f", "--filter", "label=nothing"]),
    case(&["volume", "prune", "-a", "-f"]),
    case(&["volume", "prune", "-a", "-f", "--filter", "all=1"]).code(1),
    case(&["volume", "prune"]).stdin(Stdin::Text("y\n")),
    case(&["volume", "prune", "--all"]).stdin(Stdin::Text("Y \n")),
    case(&["volume", "prune"]).stdin(Stdin::Text("n\n")),
    case(&["volume", "prune"]),
    // diff
    case(&["diff", "c1"]),
    case(&["container", "diff", "c1"]),
    case(&["diff", "nosuch"]).code(1),
    case(&["diff", ""]).code(1),
    // export
    case(&["export", "c1"]),
    case(&["container", "export", "-o", "out.tar", "c1"]),
    case(&["export", "-o", "out/existing.txt", "c1"]),
    case(&["export", "-o", "nodir/x.tar", "c1"]).code(1),
    case(&["export", "-o", "out", "c1"]).code(1),
    case(&["export", "nosuch"]).code(1),
    case(&["export", "-o", "failed.tar", "nosuch"]).code(1),
    // commit
    case(&["commit", "c1"]),
    case(&["commit", "c1", "myimg"]),
    case(&["container", "commit", "c1", "localhost:5000/x:v1"]),
    case(&[
        "commit",
        "-a",
        "A B <a@b.c>",
        "-m",
        "a message & more",
        "-c",
        "ENV X=1",
        "-c",
        "CMD [\"sh\"]",
        "--pause=false",
        "c1",
        "repo/img",
    ]),
    case(&["commit", "-p", "c1"]),
    case(&["commit", "c1", "Bad"]).code(1),
    case(&[
        "commit",
        "c1",
        "img@sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6",
    ])
    .code(1),
    case(&["commit", "nosuch"]).code(1),
    // save
    case(&["save", "busybox"]),
    case(&[
        "save",
        "-o",
        "s.tar",
        "busybox",
        "alpine:3",
        "localhost:5000/x",
    ]),
    case(&["image", "save", "--output", "s.tar", "busybox"]),
    case(&["save", "nosuch"]).code(1),
    case(&["save", "-o", "s.tar", "nosuch"]).code(1),
    case(&["save", "-o", "nodir/s.tar", "busybox"]).code(1),
    case(&["save", "--platform", "linux/amd64", "busybox"]).code(1),
    // load
    case(&["load", "-i", "load.tar"]),
    case(&["load", "-q", "-i", "load.tar"]),
    case(&["image", "load", "--input", "load.tar"]),
    case(&["load"]).stdin(Stdin::File("load.tar")),
    case(&["load", "-i", "nosuch.tar"]).code(1),
    case(&["load", "-i", "plain.tar"]),
    case(&["load", "-i", "broken.tar"]).code(1),
    case(&["load", "-i", "short.bin"]).code(1),
    case(&["load", "--platform", "linux/amd64", "-i", "load.tar"]).code(1),
    // import (its --change and --message)
    case(&[
        "import",
        "-c",
        "ENV A=1",
        "--change",
        "CMD [\"sh\", \"-c\"]",
        "-m",
        "imported & co",
        "load.tar",
        "img:v1",
    ]),
    case(&["image", "import", "-", "img"]).stdin(Stdin::File("load.tar")),
    case(&["import", "nosuch.tar", "img"]).code(1),
    // cp out of the container
    case(&["cp", "c1:/etc/hosts", "out/"]),
    case(&["cp", "c1:/etc/hosts", "out/h2"]),
    case(&["cp", "c1:/etc/hosts", "out/existing.txt"]),
    case(&["cp", "c1:/etc", "out"]),
    case(&["cp", "c1:/etc", "out/etc2"]),
    case(&["cp", "c1:/etc/", "newdir"]),
    case(&["cp", "c1:/etc/.", "out"]),
    case(&["container", "cp", "c1:/etc/hosts", "-"]),
    case(&["cp", "c1:/etc", "-"]),
    case(&["cp", "c1:/nope", "out"]).code(1),
    case(&["cp", "c1:/etc/hosts", "nodir/x"]).code(1),
    case(&["cp", "c1:/etc", "out/existing.txt"]).code(1),
    case(&["cp", "c1:/etc/hosts", "newdir/"]).code(1),
    case(&["cp", "-L", "c1:/link", "out/l"]),
    case(&["cp", "c1:/link", "out/l2"]),
    case(&["cp", "--follow-link", "c1:/rel", "out"]),
    case(&["cp", "c1:/evil", "out"]).code(1),
    case(&["cp", "c1:/evil2", "out"]).code(1),
    case(&["cp", "c1:/evil3", "out/new"]).code(1),
    case(&["cp", "c1:/big", "out"]),
    case(&["cp", "c1:/huge", "out"]),
    case(&["cp", "nosuch:/x", "out"]).code(1),
    case(&["cp", "--quiet=false", "c1:/etc", "out"]),
    case(&["cp", "--quiet=false", "src", "c1:/tmp"]),
    case(&["cp", "--quiet=false", "c1:/nope", "out"]).code(1),
    // cp into the container
    case(&["cp", "file.txt", "c1:/tmp"]),
    case(&["cp", "file.txt", "c1:/tmp/new.txt"]),
    case(&["cp", "src", "c1:/tmp"]),
    case(&["cp", "src", "c1:/tmp/newdir"]),
    case(&["cp", "src/.", "c1:/tmp"]),
    case(&["cp", "src/sub/", "c1:/tmp/x"]),
    case(&["cp", "-a", "src", "c1:/tmp"]),
    case(&["cp", "ln", "c1:/tmp"]),
    case(&["cp", "-L", "ln", "c1:/tmp"]),
    case(&["cp", "ln/", "c1:/tmp"]),
    case(&["cp", "file.txt", "c1:/link"]),
    case(&["cp", "file.txt", "c1:/dev/null"]).code(1),
    case(&["cp", "src", "c1:/etc/hosts"]).code(1),
    case(&["cp", "file.txt", "c1:/nodir/x"]).code(1),
    case(&["cp", "file.txt", "c1:/tmp/newdir/"]).code(1),
    case(&["cp", "-", "c1:/tmp"]).stdin(Stdin::File("in.tar")),
    case(&["cp", "-", "c1:/etc/hosts"])
        .stdin(Stdin::File("in.tar"))
        .code(1),
    case(&["cp", "nope.txt", "c1:/tmp"]).code(1),
    case(&["cp", "file.txt", "nosuch:/tmp"]).code(1),
    case(&["cp", "a", "b"]).code(1),
    case(&["cp", "c1:/a", "c2:/b"]).code(1),
    case(&["cp", "", "c1:/x"]).code(1),
    // Argument counts, refused in docker's words (exit 1) before anything is sent.
    case(&["volume", "inspect"]).code(1),
    case(&["volume", "rm"]).code(1),
    case(&["volume", "create", "a", "b"]).code(1),
    case(&["volume", "list", "x"]).code(1),
    case(&["volume", "prune", "-f", "x"]).code(1),
    case(&["diff"]).code(1),
    case(&["-l", "error", "container", "diff", "a", "b"]).code(1),
    case(&["cp", "a"]).code(1),
    case(&["container", "cp", "a", "b", "c"]).code(1),
    case(&["commit"]).code(1),
    case(&["container", "commit", "a", "b", "c"]).code(1),
    case(&["commit", "c1", "-m", "x"]).code(1),
    case(&["commit", "c1", "-p"]).code(1),
    case(&["export"]).code(1),
    case(&["save"]).code(1),
    case(&["image", "save"]).code(1),
    case(&["load", "x"]).code(1),
    case(&["image", "load", "x"]).code(1),
];

fn write(path: &Path, data: &[u8], mode: u32) {
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(FIXED_MTIME as u64);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// The local files every case starts from, with fixed times.
fn fixture(work: &Path) {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work.join("src/sub")).unwrap();
    std::fs::create_dir_all(work.join("out")).unwrap();
    write(&work.join("src/a.txt"), b"alpha\n", 0o640);
    write(&work.join("src/sub/b.sh"), b"#!/bin/sh\n", 0o755);
    std::os::unix::fs::symlink("a.txt", work.join("src/lnk")).unwrap();
    std::fs::hard_link(work.join("src/a.txt"), work.join("src/hard")).unwrap();
    write(&work.join("file.txt"), b"file\n", 0o644);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    write(&work.join("src/sub/big.bin"), &big, 0o600);
    std::os::unix::fs::symlink("src", work.join("ln")).unwrap();
    // A socket: Go's tar cannot hold one, docker logs it and leaves it out.
    drop(std::os::unix::net::UnixListener::bind(work.join("src/sub/sock")).unwrap());
    write(&work.join("out/existing.txt"), b"old\n", 0o644);
    write(
        &work.join("in.tar"),
        &tar_of(&[("x.txt", b"from stdin\n")]),
        0o644,
    );
    write(
        &work.join("load.tar"),
        &tar_of(&[("manifest.json", b"[]")]),
        0o644,
    );
    write(
        &work.join("plain.tar"),
        &tar_of(&[("plain.txt", b"p")]),
        0o644,
    );
    write(
        &work.join("broken.tar"),
        &tar_of(&[("broken.txt", b"b")]),
        0o644,
    );
    write(&work.join("short.bin"), b"short", 0o644);
    // Times last, children before their directories.
    let mut all = Vec::new();
    walk(work, &mut all);
    all.reverse();
    for p in all {
        let t = nix::sys::time::TimeSpec::new(FIXED_MTIME, 0);
        nix::sys::stat::utimensat(
            None,
            &p,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    out.push(dir.to_path_buf());
    let mut kids: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    kids.sort();
    for k in kids {
        if std::fs::symlink_metadata(&k).unwrap().is_dir() {
            walk(&k, out);
        } else {
            out.push(k);
        }
    }
}

/// What a directory holds, as compared: path, type, mode, contents or link, and the time of
/// everything but directories (unpacking into one changes its time). A time other than the
/// fixtures' is the moment the command wrote the file: shown as `now`, since docker's run and
/// wharf's may fall on either side of a second.
fn snapshot(work: &Path) -> Vec<String> {
    let time = |t: i64| {
        if t == FIXED_MTIME {
            t.to_string()
        } else {
            "now".to_string()
        }
    };
    let mut all = Vec::new();
    walk(work, &mut all);
    all.iter()
        .map(|p| {
            let md = std::fs::symlink_metadata(p).unwrap();
            let rel = p.strip_prefix(work).unwrap().display().to_string();
            let mode = md.mode() & 0o7777;
            if md.is_dir() {
                format!("{rel}/ {mode:o}")
            } else if md.file_type().is_symlink() {
                format!(
                    "{rel} -> {} {}",
                    std::fs::read_link(p).unwrap().display(),
                    time(md.mtime())
                )
            } else if !md.is_file() {
                format!("{rel} {mode:o} special")
            } else {
                let data = std::fs::read(p).unwrap();
                let shown = if data.len() > 64 {
                    format!("{} bytes", data.len())
                } else {
                    format!("{:?}", String::from_utf8_lossy(&data))
                };
                format!("{rel} {mode:o} {shown} {}", time(md.mtime()))
            }
        })
        .collect()
}

struct Outcome {
    requests: Vec<Req>,
    stdout: Vec<u8>,
    stderr: String,
    code: i32,
    files: Vec<String>,
}

fn bin(tool: &str) -> String {
    if tool == "docker" {
        "docker".to_string()
    } else {
        env!("CARGO_BIN_EXE_wharf").to_string()
    }
}

fn run_case(tool: &str, sock: &Path, root: &Path, log: &Log, c: &Case) -> Outcome {
    let work = root.join("work");
    fixture(&work);
    log.lock().unwrap().clear();
    let stdin = match c.stdin {
        Stdin::Null => Stdio::null(),
        Stdin::Text(_) => Stdio::piped(),
        Stdin::File(f) => Stdio::from(std::fs::File::open(work.join(f)).unwrap()),
    };
    let mut child = Command::new(bin(tool))
        .args(c.args)
        .current_dir(&work)
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", root.join("cfg"))
        .env("WHARF_CONFIG", root.join("wharf"))
        .env_remove("WHARF_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_CLI_HINTS")
        .env("TZ", "UTC")
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Stdin::Text(t) = c.stdin {
        let mut pipe = child.stdin.take().unwrap();
        let _ = pipe.write_all(t.as_bytes());
    }
    let out = child.wait_with_output().unwrap();
    let mut files = snapshot(&work);
    // The fixture's own entries are the same for both; only changes matter, but the whole
    // listing is simplest to compare.
    files.retain(|f| !f.is_empty());
    Outcome {
        requests: log.lock().unwrap().clone(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
        files,
    }
}

/// docker names itself in its prefixes and hints; wharf says `wharf` there.
fn as_wharf(docker_stderr: &str) -> String {
    docker_stderr
        .replace("docker: ", "wharf: ")
        .replace("'docker ", "'wharf ")
        .replace("\"docker ", "\"wharf ")
        .replace("Usage:  docker ", "Usage:  wharf ")
        .replace("\tdocker ", "\twharf ")
}

/// When a copy into a container is refused before anything is sent, docker's tar writer
/// (already started) logs that its pipe closed; wharf checks the copy before it packs
/// anything, so there is no such log to compare. Log times are masked.
fn without_tar_writer_noise(stderr: &str) -> String {
    stderr
        .split_inclusive('\n')
        .filter(|l| !l.contains("read/write on closed pipe"))
        .map(mask_time)
        .collect()
}

/// `time="..."` of a logrus line, masked.
fn mask_time(line: &str) -> String {
    match (line.find("time=\""), line.find("\" level=")) {
        (Some(a), Some(b)) if a < b => format!("{}time=\"T{}", &line[..a], &line[b..]),
        _ => line.to_string(),
    }
}

fn have_docker() -> bool {
    Command::new("docker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn data_commands_match_docker_cli() {
    if !have_docker() {
        wharf_testkit::skip("no docker CLI on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (sock, log) = fake_daemon::start(dir.path());
    let only = std::env::var("WHARF_CASE").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for c in CASES {
        if only
            .as_deref()
            .is_some_and(|o| !c.args.join(" ").contains(o))
        {
            continue;
        }
        ran += 1;
        let d = run_case("docker", &sock, dir.path(), &log, c);
        let w = run_case("wharf", &sock, dir.path(), &log, c);
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
                String::from_utf8_lossy(&d.stdout),
                String::from_utf8_lossy(&w.stdout)
            ));
        }
        let d_err = without_tar_writer_noise(&as_wharf(&d.stderr));
        let w_err = without_tar_writer_noise(&w.stderr);
        if d_err != w_err {
            problems.push(format!("stderr:\n--- docker\n{d_err}--- wharf\n{w_err}"));
        }
        if d.requests != w.requests {
            problems.push(format!(
                "requests:\n--- docker\n{:#?}\n--- wharf\n{:#?}",
                d.requests, w.requests
            ));
        }
        if d.files != w.files {
            problems.push(format!(
                "files:\n--- docker\n{}\n--- wharf\n{}",
                d.files.join("\n"),
                w.files.join("\n")
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
        "{} of {ran} cases differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Runs `args` with stdin, stdout and stderr on one pty; returns what the terminal showed,
/// the exit code and the requests made.
fn on_pty(
    tool: &str,
    sock: &Path,
    root: &Path,
    log: &Log,
    args: &[&str],
) -> (String, i32, Vec<Req>) {
    let work = root.join("work");
    fixture(&work);
    log.lock().unwrap().clear();
    let size = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    let mut cmd = Command::new(bin(tool));
    cmd.args(args)
        .current_dir(&work)
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", root.join("cfg"))
        .env("WHARF_CONFIG", root.join("wharf"))
        .env_remove("WHARF_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env("TZ", "UTC")
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
    let mut child = cmd.spawn().unwrap();
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
    let code = child.wait().unwrap().code().unwrap_or(-1);
    let requests = log.lock().unwrap().clone();
    (String::from_utf8_lossy(&seen).into_owned(), code, requests)
}

#[test]
fn terminal_behaviour_is_dockers() {
    if !have_docker() {
        wharf_testkit::skip("no docker CLI on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (sock, log) = fake_daemon::start(dir.path());
    let cases: &[&[&str]] = &[
        // Tars are not written to a terminal; load does not read one.
        &["export", "c1"],
        &["save", "busybox"],
        &["load"],
        // Progress of a load drawn on the terminal (quiet=0).
        &["load", "-i", "load.tar"],
        // cp's progress and its closing line, both ways.
        &["cp", "c1:/etc/hosts", "out/"],
        &["cp", "c1:/big", "out"],
        &["cp", "c1:/huge", "out"],
        &["cp", "src", "c1:/tmp"],
        &["cp", "file.txt", "c1:/tmp/new.txt"],
        &["cp", "-q", "src", "c1:/tmp"],
    ];
    let mut failures = Vec::new();
    for args in cases {
        let d = on_pty("docker", &sock, dir.path(), &log, args);
        let w = on_pty("wharf", &sock, dir.path(), &log, args);
        let d_text = without_tar_writer_noise(&as_wharf(&d.0));
        let w_text = without_tar_writer_noise(&w.0);
        if (d_text.as_str(), d.1, &d.2) != (w_text.as_str(), w.1, &w.2) {
            failures.push(format!(
                "{args:?}:\n--- docker (exit {})\n{d_text:?}\n{:#?}\n--- wharf (exit {})\n{:?}\n{:#?}",
                d.1, d.2, w.1, w_text, w.2
            ));
        } else {
            println!("same on a terminal (exit {}): {args:?}", d.1);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
