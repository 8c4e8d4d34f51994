"""docker CLI flags that shape a container's config, image import options, and list filters,
against wharfd."""

import calendar
import json
import time
from concurrent.futures import ThreadPoolExecutor
from support import go, ok, wait_for


def actions_so_far(docker, since, *filters):
    """The actions of the events since `since` up to now that pass `filters`."""
    args = ["events", "--since", str(since), "--until", f"{time.time():.6f}"]
    for f in filters:
        args += ["--filter", f]
    return ok(docker(*args, "--format", "{{.Action}}", timeout=30)).stdout.split()


def unix_ns(rfc3339):
    """Nanoseconds since the epoch of an RFC 3339 time with up to nanoseconds, in UTC."""
    whole, _, frac = rfc3339.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return secs * 10**9 + int((frac + "000000000")[:9])


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
    # "late" is printed only once the test has seen "early" and says so: the two lines' times
    # are apart, and a bound between them must cut the log there, each way (`go`: a signal).
    ok(docker("run", "-d", "--name", unique, "busybox", "sh", "-c",
              "trap 'echo late; exit 0' USR1; echo early; while :; do sleep 0.05; done"))
    wait_for(lambda: ok(docker("logs", unique)).stdout == "early\n", what="early")
    go(docker, unique)
    assert ok(docker("wait", unique, timeout=60)).stdout.strip() == "0"
    stamped = ok(docker("logs", "--timestamps", unique)).stdout.splitlines()
    assert [l.split(" ", 1)[1] for l in stamped] == ["early", "late"], stamped
    t_early, t_late = (unix_ns(l.split(" ", 1)[0]) for l in stamped)
    assert t_early < t_late, stamped
    mid = (t_early + t_late) // 2
    between = f"{mid // 10**9}.{mid % 10**9:09d}"
    assert ok(docker("logs", "--since", between, unique)).stdout == "late\n"
    assert ok(docker("logs", "--until", between, unique)).stdout == "early\n"
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
    dangling = ok(docker("images", "-q", "--no-trunc", "--filter", "dangling=true")).stdout.split()
    tagged = ok(docker("images", "-q", "--no-trunc", unique)).stdout.split()
    assert not set(tagged) & set(dangling), (tagged, dangling)
    # Importing another image under a tag leaves the one that had it dangling: listed as such.
    old = ok(docker("import", "-m", "first", str(busybox_tar), unique + ":d")).stdout.strip()
    new = ok(docker("import", "-m", "second", str(busybox_tar), unique + ":d")).stdout.strip()
    assert old != new
    dangling = ok(docker("images", "-q", "--no-trunc", "--filter", "dangling=true")).stdout.split()
    assert old in dangling and new not in dangling, (old, new, dangling)
    none = ok(docker("images", "-a", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}",
                     "--no-trunc")).stdout.splitlines()
    assert f"{old} <none>:<none>" in none, none
    ok(docker("rmi", old))
    ok(docker("rmi", unique + ":d"))
    out = ok(docker("rmi", unique + ":a")).stdout
    assert "Untagged: " + unique + ":a" in out and "Deleted" not in out
    out = ok(docker("rmi", unique + ":b")).stdout
    assert "Deleted: sha256:" in out


def test_attach_to_running_container(docker, unique):
    # The container prints only once the attach is in place (its `attach` event is emitted
    # after the output is hooked up) and the test says so: no replay, nothing missed.
    since = f"{time.time() - 1:.6f}"
    ok(docker("run", "-d", "--name", unique, "busybox", "sh", "-c",
              "trap 'touch /tmp/go' USR1; until test -f /tmp/go; do sleep 0.05; done; echo attached-out; echo attached-err >&2"))
    with ThreadPoolExecutor(1) as pool:
        attached = pool.submit(docker, "attach", unique, timeout=60)
        wait_for(lambda: "attach" in actions_so_far(docker, since, "container=" + unique),
                 what="the attach event")
        go(docker, unique)
        r = ok(attached.result())
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
    # It fails only once the policy is in place (the file outlives each restart, so every later
    # run fails at once).
    ok(docker("run", "-d", "--name", unique, "busybox", "sh", "-c",
              "trap 'touch /tmp/go' USR1; until test -f /tmp/go; do sleep 0.05; done; exit 1"))
    ok(docker("update", "--restart", "on-failure:2", unique))
    assert ok(docker("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", unique)).stdout.strip() == "on-failure"
    go(docker, unique)
    count_status = lambda: ok(docker("inspect", "-f", "{{.RestartCount}} {{.State.Status}}",
                                     unique)).stdout.split()
    wait_for(lambda: count_status() == ["2", "exited"], what="two restarts, then exited")
    # dockerd's rule: a memory limit above the current swap limit needs a new swap limit too.
    r = docker("update", "--memory", "64m", unique)
    assert r.returncode != 0 and "update the memoryswap at the same time" in r.stderr
    ok(docker("update", "--memory", "64m", "--memory-swap", "128m", unique))
    assert ok(docker("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}",
                     unique)).stdout.split() == ["67108864", "134217728"]
    r = docker("run", "--restart", "sometimes", "busybox", "true")
    assert r.returncode != 0
