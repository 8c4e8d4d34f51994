//! The requests `wharf` sends are the docker CLI 28's: both tools run the same flags against
//! one fake daemon on a unix socket that records every request (method, path, JSON body) and
//! answers like a daemon that accepts everything. Requests, stdout, stderr (with `docker`
//! read as `wharf`) and exit codes must be identical. Also: `-D` has its effect and an
//! unknown `--log-level` is refused as docker refuses it.
//!
//! Needs `docker` on PATH; skips otherwise. Starts no daemon and no container.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

type Log = Arc<Mutex<Vec<(String, String, Option<Value>)>>>;

const ID: &str = "0123456789ab0123456789ab0123456789ab0123456789ab0123456789ab0123";

fn handle(stream: UnixStream, log: Log) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
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
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        if method != "HEAD" {
            let mut json: Option<Value> = serde_json::from_slice(&body).ok();
            // docker builds `Binds` by walking a Go map: its order changes from run to run.
            if let Some(Value::Array(b)) = json
                .as_mut()
                .and_then(|j| j.pointer_mut("/HostConfig/Binds"))
            {
                b.sort_by_key(|v| v.to_string());
            }
            log.lock()
                .unwrap()
                .push((method.clone(), path.clone(), json));
        }
        let (status, extra, reply) = if path.starts_with("/_ping") {
            (
                "200 OK",
                "Api-Version: 1.44\r\nOstype: linux\r\n",
                "OK".to_string(),
            )
        } else if path.contains("/containers/create") {
            (
                "201 Created",
                "",
                format!(r#"{{"Id":"{ID}","Warnings":[]}}"#),
            )
        } else if path.ends_with("/start") {
            ("204 No Content", "", String::new())
        } else if path.contains("/update") {
            ("200 OK", "", r#"{"Warnings":[]}"#.to_string())
        } else if path.contains("/containers/json") {
            ("200 OK", "", "[]".to_string())
        } else {
            ("200 OK", "", "{}".to_string())
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
            reply.len(),
            if method == "HEAD" { "" } else { &reply }
        );
        if writer.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

struct Outcome {
    requests: Vec<(String, String, Option<Value>)>,
    stdout: String,
    stderr: String,
    code: i32,
}

fn run(tool: &str, sock: &Path, dir: &Path, log: &Log, args: &[&str]) -> Outcome {
    log.lock().unwrap().clear();
    let bin = if tool == "docker" {
        "docker".to_string()
    } else {
        env!("CARGO_BIN_EXE_wharf").to_string()
    };
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", dir.join("docker"))
        .env("WHARF_CONFIG", dir.join("wharf"))
        .env_remove("WHARF_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Outcome {
        requests: log.lock().unwrap().clone(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Flags whose create/update body must equal docker's, and bad values whose refusal must.
const CASES: &[&[&str]] = &[
    &["create", "busybox", "true"],
    &[
        "create",
        "-m",
        "16m",
        "--memory-swap",
        "32m",
        "--memory-reservation",
        "8m",
        "--memory-swappiness",
        "10",
        "--oom-kill-disable",
        "--oom-score-adj",
        "100",
        "--cpus",
        "1.5",
        "-c",
        "512",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        "--cpuset-cpus",
        "0-1",
        "--cpuset-mems",
        "0",
        "--cpu-rt-period",
        "1000",
        "--cpu-rt-runtime",
        "500",
        "--pids-limit",
        "5",
        "--blkio-weight",
        "300",
        "--blkio-weight-device",
        "/dev/sda:200",
        "--device-read-bps",
        "/dev/sda:1mb",
        "--device-write-bps",
        "/dev/sda:2mb",
        "--device-read-iops",
        "/dev/sda:100",
        "--device-write-iops",
        "/dev/sda:200",
        "busybox",
        "true",
    ],
    &[
        "create",
        "--cap-add",
        "NET_ADMIN",
        "--cap-add",
        "sys_time",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "label=disable",
        "--security-opt",
        "systempaths=unconfined",
        "--security-opt",
        "seccomp=profile.json",
        "--ulimit",
        "nofile=1024:2048",
        "--ulimit",
        "nproc=100",
        "--shm-size",
        "64m",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/tmp:rw,size=1m",
        "busybox",
        "true",
    ],
    &[
        "create",
        "--add-host",
        "a:1.2.3.4",
        "--add-host",
        "b=5.6.7.8",
        "--add-host",
        "gw:host-gateway",
        "--dns",
        "1.1.1.1",
        "--dns-search",
        "example.com",
        "--dns-option",
        "ndots:2",
        "--group-add",
        "10",
        "--group-add",
        "audio",
        "--device",
        "/dev/null",
        "--device",
        "/dev/zero:/dev/z:r",
        "--device-cgroup-rule",
        "c 1:3 mr",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "busybox",
        "true",
    ],
    &[
        "create",
        "--pid",
        "host",
        "--ipc",
        "private",
        "--uts",
        "host",
        "--userns",
        "host",
        "--cgroupns",
        "private",
        "--cgroup-parent",
        "/foo",
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-size=1m",
        "--log-opt",
        "max-file=2",
        "--read-only",
        "--privileged",
        "--domainname",
        "example.org",
        "--runtime",
        "runc",
        "--isolation",
        "default",
        "--storage-opt",
        "size=1G",
        "--annotation",
        "a=b",
        "--annotation",
        "c",
        "busybox",
        "true",
    ],
    &[
        "create",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1:9000:9000/udp",
        "-p",
        "7000-7001:7000-7001",
        "-p",
        "5000",
        "-P",
        "--expose",
        "3000",
        "--expose",
        "4000-4001/udp",
        "busybox",
        "true",
    ],
    &[
        "create",
        "-v",
        "data:/data",
        "-v",
        "/tmp:/host:ro",
        "-v",
        "/anon",
        "-v",
        "./rel:/rel",
        "--volumes-from",
        "other:ro",
        "--volume-driver",
        "local",
        "busybox",
        "true",
    ],
    &[
        "create",
        "--mount",
        "type=bind,src=/tmp,dst=/b,readonly",
        "--mount",
        "type=volume,source=v2,target=/v2,volume-opt=a=b,volume-nocopy",
        "--mount",
        "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770",
        "--mount",
        "type=volume,dst=/n,volume-nocopy",
        "--mount",
        "type=image,src=busybox,dst=/img",
        "busybox",
        "true",
    ],
    // -v as the compose loader splits it (a one-letter source is a Windows drive), --mount
    // with every option, --tmpfs, --volumes-from, --read-only (issue 15).
    &[
        "create",
        "-v",
        "a:/b",
        "-v",
        "/x:/y:ro,rshared",
        "-v",
        "vol:/data:nocopy",
        "-v",
        "~/h:/h",
        "-v",
        "./r:/r:ro",
        "-v",
        "x",
        "-v",
        "/only",
        "-v",
        "/only",
        "--tmpfs",
        "/t:size=1m,mode=1777",
        "--volumes-from",
        "a",
        "--volumes-from",
        "b:rw",
        "--volume-driver",
        "other",
        "--read-only",
        "busybox",
        "true",
    ],
    &[
        "create",
        "--mount",
        "type=bind,source=/tmp,target=/t,bind-propagation=rslave,bind-nonrecursive",
        "--mount",
        "type=volume,src=v,dst=/v,volume-driver=local,volume-label=a=b,volume-label=c,volume-opt=type=tmpfs,readonly=false",
        "--mount",
        "type=tmpfs,target=/tt,tmpfs-size=64k,tmpfs-mode=700,ro=true",
        "--mount",
        "type=bind,src=./rel,dst=/r,consistency=cached",
        "--mount",
        "\"type=volume\",\"destination=/q\"",
        "busybox",
        "true",
    ],
    &["create", "-v", "a:b:c:d", "busybox", "true"],
    &["create", "-v", "vol:/x:ro:z", "busybox", "true"],
    &["create", "-v", "/a::/b", "busybox", "true"],
    &["create", "-v", "", "busybox", "true"],
    &["create", "--mount", "type=bind,dst=/x,volume-nocopy", "busybox", "true"],
    &["create", "--mount", "type=tmpfs,dst=/t,tmpfs-mode=9", "busybox", "true"],
    &["create", "--mount", "type=volume,dst=/x,readonly=maybe", "busybox", "true"],
    &["create", "--mount", "dst=/x,foo", "busybox", "true"],
    &["create", "--mount", "type=volume", "busybox", "true"],
    &["create", "--mount", "type=bind,src=/a,dst=/b,bind-recursive=readonly,ro", "busybox", "true"],
    &["create", "--mount", "", "busybox", "true"],
    &["create", "--network", "none", "busybox", "true"],
    &[
        "create",
        "--network",
        "mynet",
        "--ip",
        "10.0.0.5",
        "--ip6",
        "fd00::5",
        "--network-alias",
        "foo",
        "--network-alias",
        "bar",
        "--mac-address",
        "02:42:ac:11:00:02",
        "--link",
        "other:alias",
        "--link-local-ip",
        "169.254.1.1",
        "busybox",
        "true",
    ],
    &[
        "create",
        "--mac-address",
        "02:42:ac:11:00:02",
        "--link",
        "other",
        "busybox",
        "true",
    ],
    &[
        "create",
        "--network",
        "name=mynet,alias=x,ip=10.0.0.2",
        "busybox",
        "true",
    ],
    &[
        "create",
        "--gpus",
        "all",
        "--gpus",
        "count=2,capabilities=utility",
        "-a",
        "stdout",
        "--platform",
        "linux/amd64",
        "--name",
        "eq-n",
        "busybox",
        "true",
    ],
    &[
        "create",
        "-l",
        "x=y",
        "-e",
        "A=1",
        "-it",
        "--entrypoint",
        "",
        "-w",
        "/w",
        "-u",
        "1000",
        "-h",
        "hn",
        "--stop-signal",
        "TERM",
        "--stop-timeout",
        "5",
        "--init",
        "--restart",
        "on-failure:3",
        "--health-cmd",
        "true",
        "--health-interval",
        "30s",
        "busybox",
        "sh",
    ],
    &["create", "--cpu-count", "2", "busybox", "true"],
    // Refusals: the same words, exit 125, nothing sent.
    &["create", "-m", "abc", "busybox", "true"],
    &["run", "--memory-swappiness", "200", "busybox", "true"],
    &["create", "--cpus", "abc", "busybox", "true"],
    &["create", "--blkio-weight", "70000", "busybox", "true"],
    &["create", "--ulimit", "nofile", "busybox", "true"],
    &["run", "--pid", "foo", "busybox", "true"],
    &["create", "--cgroupns", "foo", "busybox", "true"],
    &["create", "-p", "80:abc", "busybox", "true"],
    &["create", "--expose", "1:2", "busybox", "true"],
    &["create", "--device-read-bps", "/dev/sda", "busybox", "true"],
    &["run", "--mount", "src=/x", "busybox", "true"],
    &[
        "run",
        "--mount",
        "type=volume,dst=/x,bind-propagation=shared",
        "busybox",
    ],
    &["create", "--security-opt", "foo", "busybox", "true"],
    &[
        "create",
        "--log-driver",
        "none",
        "--log-opt",
        "a=b",
        "busybox",
        "true",
    ],
    &["create", "--add-host", "foo", "busybox", "true"],
    &["create", "--mac-address", "xx", "busybox", "true"],
    &[
        "create",
        "--sysctl",
        "kernel.domainname=x",
        "busybox",
        "true",
    ],
    &["create", "--gpus", "foo", "busybox", "true"],
    &["create", "--shm-size", "-1", "busybox", "true"],
    &["create", "--device", "/dev/x:rel", "busybox", "true"],
    &["create", "-v", ":/x", "busybox", "true"],
    &["create", "--pids-limit", "x", "busybox", "true"],
    &["run", "-d", "-a", "stdout", "busybox", "true"],
    &[
        "run",
        "--network",
        "none",
        "--network-alias",
        "x",
        "busybox",
        "true",
    ],
    // update: docker's body, warnings, errors.
    &[
        "update",
        "--memory",
        "16m",
        "--cpus",
        "1.5",
        "--restart",
        "on-failure:2",
        "--pids-limit",
        "5",
        "c1",
        "c2",
    ],
    &["update", "--restart", "always", "c1"],
    &["update", "c1"],
    &[
        "update",
        "-m",
        "1g",
        "--memory-swap",
        "-1",
        "--memory-reservation",
        "100m",
        "-c",
        "100",
        "--cpu-period",
        "1000",
        "--cpu-quota",
        "500",
        "--cpu-rt-period",
        "10",
        "--cpu-rt-runtime",
        "5",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
        "--blkio-weight",
        "500",
        "c1",
    ],
    &["update", "-m", "abc", "c1"],
    // An existing --cidfile: refused alike, nothing created.
    &["create", "--cidfile", "cid-exists", "busybox", "true"],
    &["run", "-d", "--cidfile", "cid-exists", "busybox", "true"],
    // Global flags.
    &["--log-level", "x", "ps"],
    &["--log-level", "error", "ps"],
];

#[test]
fn requests_match_docker_cli() {
    if Command::new("docker").arg("--version").output().is_err() {
        wharf_testkit::skip("no docker CLI on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("fake.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let log: Log = Arc::default();
    let server_log = log.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let l = server_log.clone();
            std::thread::spawn(move || handle(s, l));
        }
    });
    std::fs::write(dir.path().join("cid-exists"), "x").unwrap();
    // Keys out of order and spaced: docker sends the file compacted, order kept.
    std::fs::write(
        dir.path().join("profile.json"),
        "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"architectures\": [\"SCMP_ARCH_X86_64\"]\n}\n",
    )
    .unwrap();
    let mut failures = Vec::new();
    for args in CASES {
        let d = run("docker", &sock, dir.path(), &log, args);
        let w = run("wharf", &sock, dir.path(), &log, args);
        let mut problems = Vec::new();
        if d.code != w.code {
            problems.push(format!("exit docker={} wharf={}", d.code, w.code));
        }
        if d.stdout != w.stdout {
            problems.push(format!("stdout docker={:?} wharf={:?}", d.stdout, w.stdout));
        }
        let d_err = newest_words(&d.stderr.replace("docker", "wharf"));
        if d_err != w.stderr {
            problems.push(format!("stderr docker={d_err:?} wharf={:?}", w.stderr));
        }
        if d.requests != w.requests {
            problems.push(format!(
                "requests differ:\n  docker {:?}\n  wharf  {:?}",
                d.requests, w.requests
            ));
        }
        if problems.is_empty() {
            println!("same (exit {}): {args:?}", d.code);
        } else {
            failures.push(format!("{args:?}: {}", problems.join("; ")));
        }
    }
    // `-D`: a debug line per API exchange on stderr; the output itself unchanged.
    let plain = run("wharf", &sock, dir.path(), &log, &["ps", "-q"]);
    let debug = run("wharf", &sock, dir.path(), &log, &["-D", "ps", "-q"]);
    assert_eq!((plain.code, debug.code), (0, 0));
    assert_eq!(plain.stdout, debug.stdout);
    assert!(!plain.stderr.contains("level=debug"), "{}", plain.stderr);
    assert!(
        debug
            .stderr
            .contains("level=debug msg=\"GET /v1.44/containers/json -> 200 ("),
        "{}",
        debug.stderr
    );
    assert!(debug
        .stderr
        .contains("level=debug msg=\"HEAD /_ping -> 200 ("));
    let leveled = run(
        "wharf",
        &sock,
        dir.path(),
        &log,
        &["--log-level", "debug", "ps"],
    );
    assert!(leveled.stderr.contains("level=debug"), "{}", leveled.stderr);
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

/// The docker CLI's words where they changed between the versions the suite meets (this
/// machine's 28.2, a fresh machine's 28.5 from scripts/install-deps.sh): `wharf` speaks the
/// newest, and older docker output is read as the newest before comparing. Each entry names the
/// version that changed it; anything else that differs is a real difference.
fn newest_words(docker_stderr: &str) -> String {
    const RENAMED: &[(&str, &str)] = &[
        // docker 28.5 (go-connections' nat.ParsePortSpec) capitalised it.
        ("invalid containerPort: ", "Invalid containerPort: "),
    ];
    RENAMED
        .iter()
        .fold(docker_stderr.to_string(), |s, (old, new)| {
            s.replace(old, new)
        })
}
