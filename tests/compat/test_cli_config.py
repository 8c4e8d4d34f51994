"""docker CLI flags that shape a container's config, image import options, and list filters,
against wharfd."""

import json
import time


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def test_env_workdir_entrypoint_hostname(docker):
    out = ok(
        docker(
            "run", "--rm", "-e", "A=1", "-e", "B=two words", "-w", "/tmp",
            "--hostname", "box", "--entrypoint", "sh", "busybox",
            "-c", 'echo "$A|$B|$(pwd)|$(hostname)|$HOME"',
        )
    ).stdout
    assert out == "1|two words|/tmp|box|/root\n"


def test_env_file_and_labels(docker, tmp_path, unique):
    env = tmp_path / "env"
    env.write_text("X=from-file\n# comment\nY=2\n")
    ok(docker("run", "--name", unique, "--env-file", str(env), "-l", "team=core",
              "busybox", "sh", "-c", "echo $X$Y"))
    assert ok(docker("logs", unique)).stdout == "from-file2\n"
    labels = json.loads(ok(docker("inspect", "-f", "{{json .Config.Labels}}", unique)).stdout)
    assert labels == {"team": "core"}
    out = ok(docker("ps", "-a", "--filter", "label=team=core", "--format", "{{.Names}}")).stdout
    assert out.split() == [unique]


def test_ps_filters_status_exited_and_name(docker, unique):
    ok(docker("run", "--name", unique + "-ok", "busybox", "true"))
    assert docker("run", "--name", unique + "-bad", "busybox", "sh", "-c", "exit 4").returncode == 4
    bad = ok(docker("ps", "-a", "--filter", "exited=4", "--format", "{{.Names}}")).stdout.split()
    assert unique + "-bad" in bad and unique + "-ok" not in bad
    named = ok(docker("ps", "-a", "--filter", "name=" + unique, "--format", "{{.Names}}")).stdout.split()
    assert sorted(named) == sorted([unique + "-ok", unique + "-bad"])
    assert ok(docker("ps", "-a", "-n", "1", "-q")).stdout.count("\n") == 1
    r = docker("ps", "--filter", "status=bogus")
    assert r.returncode != 0


def test_logs_since_and_until(docker, unique):
    ok(docker("run", "--name", unique, "busybox", "sh", "-c", "echo early; sleep 2; echo late"))
    assert ok(docker("logs", "--since", "1s", unique)).stdout in ("late\n", "")
    out = ok(docker("logs", "--until", "1970-01-02T00:00:00Z", unique)).stdout
    assert out == ""
    start = ok(docker("inspect", "-f", "{{.State.StartedAt}}", unique)).stdout.strip()
    assert ok(docker("logs", "--since", start, unique)).stdout == "early\nlate\n"


def test_import_with_changes_and_history(docker, busybox_tar, unique):
    ref = unique + ":v1"
    ok(docker("import", "-c", 'CMD ["echo", "from-change"]', "-c", "ENV GREETING=hello",
              "-m", "imported for a test", str(busybox_tar), ref))
    assert ok(docker("run", "--rm", ref)).stdout == "from-change\n"
    assert ok(docker("run", "--rm", ref, "sh", "-c", "echo $GREETING")).stdout == "hello\n"
    hist = ok(docker("history", "--format", "{{.Comment}}", ref)).stdout
    assert "imported for a test" in hist
    cfg = json.loads(ok(docker("image", "inspect", "-f", "{{json .Config.Cmd}}", ref)).stdout)
    assert cfg == ["echo", "from-change"]
    ok(docker("rmi", ref))


def test_images_filters(docker, busybox_tar, unique):
    ok(docker("import", str(busybox_tar), unique + ":a"))
    ok(docker("tag", unique + ":a", unique + ":b"))
    tags = ok(docker("images", unique, "--format", "{{.Tag}}")).stdout.split()
    assert sorted(tags) == ["a", "b"]
    refs = ok(docker("images", "--filter", "reference=" + unique + ":b", "--format",
                     "{{.Repository}}:{{.Tag}}")).stdout.split()
    assert refs == [unique + ":b"]
    assert ok(docker("images", "-q", "--filter", "dangling=true")).stdout.strip() == ""
    out = ok(docker("rmi", unique + ":a")).stdout
    assert "Untagged: " + unique + ":a" in out and "Deleted" not in out
    out = ok(docker("rmi", unique + ":b")).stdout
    assert "Deleted: sha256:" in out


def test_attach_to_running_container(docker, unique):
    ok(docker("run", "-d", "--name", unique, "busybox", "sh", "-c",
              "sleep 1; echo attached-out; echo attached-err >&2"))
    r = ok(docker("attach", unique, timeout=20))
    assert r.stdout == "attached-out\n"
    assert "attached-err" in r.stderr


def test_start_attach_replays_nothing_old(docker, unique):
    ok(docker("create", "--name", unique, "busybox", "echo", "run"))
    assert ok(docker("start", "-a", unique)).stdout == "run\n"
    assert ok(docker("start", "-a", unique)).stdout == "run\n"
    assert ok(docker("logs", unique)).stdout == "run\nrun\n"


def test_info_reports_driver_cgroups_and_counts(docker, unique):
    info = json.loads(ok(docker("info", "--format", "{{json .}}")).stdout)
    assert info["Driver"] == "wharf-overlayfs"
    assert info["CgroupVersion"] in ("1", "2")
    before = info["Containers"]
    ok(docker("create", "--name", unique, "busybox", "true"))
    info = json.loads(ok(docker("info", "--format", "{{json .}}")).stdout)
    assert info["Containers"] == before + 1


def test_rm_container_whose_start_failed_is_removed(docker, unique):
    r = docker("run", "--rm", "--name", unique, "busybox", "nosuchcmd", timeout=30)
    assert r.returncode == 127, r.stderr
    assert docker("inspect", unique).returncode != 0


def test_top_pause_unpause(docker, unique):
    ok(docker("run", "-d", "--name", unique, "busybox", "sleep", "1000"))
    top = ok(docker("top", unique)).stdout.splitlines()
    assert top[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert top[1].split()[-2:] == ["sleep", "1000"]
    ok(docker("pause", unique))
    assert "(Paused)" in ok(docker("ps", "--filter", "status=paused")).stdout
    r = docker("pause", unique)
    assert r.returncode != 0 and "already paused" in r.stderr
    ok(docker("unpause", unique))
    assert ok(docker("inspect", "-f", "{{.State.Status}}", unique)).stdout.strip() == "running"
    ok(docker("pause", unique))
    ok(docker("rm", "-f", unique))


def test_events_since_until_with_filters(docker, unique):
    start = int(time.time()) - 1
    assert docker("run", "--name", unique, "busybox", "sh", "-c", "exit 5").returncode == 5
    cid = ok(docker("inspect", "-f", "{{.Id}}", unique)).stdout.strip()
    ok(docker("rename", unique, unique + "-2"))
    ok(docker("rm", unique + "-2"))
    until = int(time.time()) + 1
    out = ok(docker("events", "--since", str(start), "--until", str(until),
                    "--filter", "container=" + cid, "--filter", "type=container",
                    "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}", timeout=30)).stdout
    actions = [l.split()[0] for l in out.splitlines()]
    for a in ["create", "attach", "start", "die", "rename", "destroy"]:
        assert a in actions, out
    assert "die 5" in out
    die_only = ok(docker("events", "--since", str(start), "--until", str(until),
                         "--filter", "event=die", "--format", "{{.Action}}", timeout=30)).stdout
    assert set(die_only.split()) == {"die"}


def test_update_restart_policy_and_restart_count(docker, unique):
    ok(docker("run", "-d", "--name", unique, "busybox", "sh", "-c", "sleep 0.3; exit 1"))
    ok(docker("update", "--restart", "on-failure:2", unique))
    assert ok(docker("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", unique)).stdout.strip() == "on-failure"
    deadline = time.time() + 15
    count = 0
    while time.time() < deadline:
        count = int(ok(docker("inspect", "-f", "{{.RestartCount}}", unique)).stdout)
        status = ok(docker("inspect", "-f", "{{.State.Status}}", unique)).stdout.strip()
        if count == 2 and status == "exited":
            break
        time.sleep(0.2)
    assert count == 2
    # dockerd's rule: a memory limit above the current swap limit needs a new swap limit too.
    r = docker("update", "--memory", "64m", unique)
    assert r.returncode != 0 and "update the memoryswap at the same time" in r.stderr
    ok(docker("update", "--memory", "64m", "--memory-swap", "128m", unique))
    assert ok(docker("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}",
                     unique)).stdout.split() == ["67108864", "134217728"]
    r = docker("run", "--restart", "sometimes", "busybox", "true")
    assert r.returncode != 0
