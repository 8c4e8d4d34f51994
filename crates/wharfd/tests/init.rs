//! `--init` (HostConfig.Init) against a real wharfd and kernel: zombies are reaped, signals
//! reach the command, exit codes come through, and exec failures are reported like tini's.
//! The testkit removes daemons, containers, mounts and cgroups, also when a test fails.
// Test helpers run only inside tests; a panic is how they fail one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};
use wharf_api::container::{ContainerCreateRequest, HostConfig};
use wharf_api::stdcopy::StdStream;
use wharf_client::{payload_of, Client, LogsOptions};
use wharf_testkit::{import_busybox, start_or_skip};

/// Generous: the host may be busy running other tests.
const PATIENCE: Duration = Duration::from_secs(20);

fn cmd(argv: &[&str], init: bool) -> ContainerCreateRequest {
    let mut r = ContainerCreateRequest::default();
    r.config.image = "busybox".to_string();
    r.config.cmd = Some(argv.iter().map(|s| s.to_string()).collect());
    r.host_config = Some(HostConfig {
        init: Some(init),
        ..Default::default()
    });
    r
}

async fn started(c: &Client, name: &str, req: ContainerCreateRequest) -> String {
    let id = c.create_container(Some(name), &req).await.unwrap().id;
    c.start(&id).await.unwrap();
    id
}

async fn run_to_exit(c: &Client, name: &str, argv: &[&str]) -> (String, i64) {
    let id = started(c, name, cmd(argv, true)).await;
    let code = c.wait(&id, None).await.unwrap().status_code;
    (id, code)
}

async fn output(c: &Client, id: &str, stream: StdStream) -> String {
    let frames = c.logs(id, &LogsOptions::default()).await.unwrap();
    String::from_utf8_lossy(&payload_of(&frames, stream)).into_owned()
}

/// One process as /proc/<pid>/stat tells it.
#[derive(Debug, Clone)]
struct Proc {
    pid: i32,
    comm: String,
    state: char,
}

/// Every process below `root` (host pids), with its state.
fn descendants(root: i32) -> Vec<Proc> {
    let mut by_parent: HashMap<i32, Vec<Proc>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // A process can vanish between readdir and read.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = rest.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        by_parent.entry(ppid).or_default().push(Proc {
            pid,
            comm: stat[open + 1..close].to_string(),
            state,
        });
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for child in by_parent.get(&p).into_iter().flatten() {
            todo.push(child.pid);
            out.push(child.clone());
        }
    }
    out
}

async fn poll(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Orphans that exit are re-parented to the container's PID 1; `sleep` never reaps them,
/// docker-init does. Each orphan leaves a file behind just before it exits, so the check is
/// not made before there was anything to reap.
#[tokio::test]
async fn init_reaps_zombies() {
    let Some(d) = start_or_skip("it-init-zombies").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();
    // Several orphans at once: their SIGCHLDs coalesce into one.
    let script = r#"for i in 1 2 3 4 5; do (sh -c "sleep 0.2; touch /tmp/orphan-$i" &); done; exec sleep 60"#;

    for init in [false, true] {
        let name = if init { "with-init" } else { "without-init" };
        let id = started(&c, name, cmd(&["sh", "-c", script], init)).await;
        let pid = c.inspect_container(&id).await.unwrap().state.pid as i32;
        poll("the orphans to finish", || {
            (1..=5)
                .all(|i| std::path::Path::new(&format!("/proc/{pid}/root/tmp/orphan-{i}")).exists())
        })
        .await;
        if init {
            // Only the command is left: the orphan was reaped, not kept as a zombie.
            poll("the orphans to be reaped", || {
                let procs = descendants(pid);
                procs.len() == 1 && procs[0].comm == "sleep" && procs[0].state != 'Z'
            })
            .await;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
            assert_eq!(comm.trim(), "docker-init");
        } else {
            poll("a zombie under a PID 1 that does not reap", || {
                descendants(pid).iter().any(|p| p.state == 'Z')
            })
            .await;
        }
        c.remove(&id, true).await.unwrap();
    }
}

/// docker-init forwards `stop`'s SIGTERM, which `sleep` dies of (143); as PID 1 itself,
/// `sleep` has no handler, so the kernel drops it and the stop ends with SIGKILL (137).
#[tokio::test]
async fn init_forwards_stop_signal() {
    let Some(d) = start_or_skip("it-init-stop").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();

    let id = started(&c, "sleeper", cmd(&["sleep", "100"], true)).await;
    let ins = c.inspect_container(&id).await.unwrap();
    // Inspect shows the user's command, not the init's.
    assert_eq!(ins.path, "sleep");
    assert_eq!(ins.args, ["100"]);
    assert_eq!(ins.host_config.init, Some(true));
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", ins.state.pid)).unwrap();
    assert_eq!(cmdline, b"/sbin/docker-init\x00--\x00sleep\x00100\x00");
    c.stop(&id, Some(30)).await.unwrap();
    assert_eq!(c.inspect_container(&id).await.unwrap().state.exit_code, 143);
    c.remove(&id, false).await.unwrap();

    // Any other signal reaches the command too.
    let trap = "trap 'exit 7' USR1; touch /tmp/ready; while :; do sleep 0.1; done";
    let id = started(&c, "trapper", cmd(&["sh", "-c", trap], true)).await;
    let pid = c.inspect_container(&id).await.unwrap().state.pid;
    let ready = format!("/proc/{pid}/root/tmp/ready");
    poll("the trap to be set", || {
        std::path::Path::new(&ready).exists()
    })
    .await;
    c.kill(&id, Some("USR1")).await.unwrap();
    assert_eq!(c.wait(&id, None).await.unwrap().status_code, 7);
    c.remove(&id, false).await.unwrap();

    let id = started(&c, "bare", cmd(&["sleep", "100"], false)).await;
    c.stop(&id, Some(1)).await.unwrap();
    assert_eq!(c.inspect_container(&id).await.unwrap().state.exit_code, 137);
    c.remove(&id, false).await.unwrap();
}

#[tokio::test]
async fn init_exit_codes_and_exec_failures() {
    let Some(d) = start_or_skip("it-init-exit").await else {
        return;
    };
    let c = d.client();
    import_busybox(&c, "busybox:latest").await.unwrap();

    let (id, code) = run_to_exit(&c, "three", &["sh", "-c", "echo hi; exit 3"]).await;
    assert_eq!(code, 3);
    assert_eq!(output(&c, &id, StdStream::Stdout).await, "hi\n");
    // A second start of the same container (its mountpoint is there already).
    c.start(&id).await.unwrap();
    assert_eq!(c.wait(&id, None).await.unwrap().status_code, 3);

    // Killed by a signal: 128 + the signal, as tini reports it.
    let (_, code) = run_to_exit(&c, "killed", &["sh", "-c", "kill -USR1 $$"]).await;
    assert_eq!(code, 128 + 10);

    // The command is looked up by the init, so the start succeeds and the run reports it, as
    // with Docker's docker-init.
    let (id, code) = run_to_exit(&c, "missing", &["nosuch"]).await;
    assert_eq!(code, 127);
    let err = output(&c, &id, StdStream::Stderr).await;
    assert!(
        err.contains("exec nosuch failed: No such file or directory"),
        "{err}"
    );
    let (id, code) = run_to_exit(&c, "notexec", &["/etc/passwd"]).await;
    assert_eq!(code, 126);
    let err = output(&c, &id, StdStream::Stderr).await;
    assert!(err.contains("Permission denied"), "{err}");

    // A user other than root can execute the init, and PID 1 is docker-init.
    let mut req = cmd(
        &["sh", "-c", "id -u; cat /proc/1/cmdline | tr '\\0' ' '"],
        true,
    );
    req.config.user = "wharfuser".into();
    let id = started(&c, "user", req).await;
    assert_eq!(c.wait(&id, None).await.unwrap().status_code, 0);
    assert_eq!(
        output(&c, &id, StdStream::Stdout).await,
        "1000\n/sbin/docker-init -- sh -c id -u; cat /proc/1/cmdline | tr '\\0' ' ' "
    );

    for name in ["three", "killed", "missing", "notexec", "user"] {
        c.remove(name, true).await.unwrap();
    }
}
