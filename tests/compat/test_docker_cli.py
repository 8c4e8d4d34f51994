"""The real docker CLI (28.x) against wharfd, checked against what dockerd does
(../../shared/api/captures, e.g. 03-run-rm, 08-logs, 16-stop, 57-wait, 91-errors)."""

import os
import re
import socket
import subprocess
import time

import pytest
from support import go, inspect, ok, wait_for

HEX64 = re.compile(r"^[0-9a-f]{64}$")
RFC3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"


def ps_line(docker, name, *flags):
    """The `docker ps` line of container `name` (matched on the NAMES column), or None."""
    out = ok(docker("ps", *flags)).stdout.splitlines()
    for line in out[1:]:
        if line.split()[-1] == name:
            return line
    return None


def run_d(docker, name, *cmd):
    r = ok(docker("run", "-d", "--name", name, "busybox", *cmd))
    cid = r.stdout.strip()
    assert HEX64.match(cid), r.stdout
    return cid


def wait_exit(docker, name):
    return int(ok(docker("wait", name, timeout=60)).stdout.strip())


def run_trapping(docker, name, signal, code):
    """A container whose PID 1 exits `code` on `signal`; returns once the trap is installed
    (the script touches /tmp/trapped right after it)."""
    run_d(docker, name, "sh", "-c",
          f'trap "exit {code}" {signal}; touch /tmp/trapped; while true; do sleep 0.1; done')
    wait_for(lambda: docker("exec", name, "test", "-f", "/tmp/trapped").returncode == 0,
             what=f"{name}'s {signal} trap")


# ---------------------------------------------------------------- run


def test_run_rm_echo(docker):
    before = ok(docker("ps", "-aq")).stdout.split()
    r = ok(docker("run", "--rm", "busybox", "echo", "hi"))
    assert r.stdout == "hi\n"
    assert r.stderr == ""
    # --rm: nothing left behind once run returns (it waited for condition=removed).
    assert ok(docker("ps", "-aq")).stdout.split() == before


def test_run_stdout_and_stderr_are_separate(docker):
    r = ok(docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2"))
    assert r.stdout == "out\n"
    assert r.stderr == "err\n"


def test_exit_code_passthrough(docker):
    r = docker("run", "--rm", "busybox", "sh", "-c", "exit 3")
    assert r.returncode == 3, r.stderr


def test_piped_stdin(docker):
    r = ok(docker("run", "-i", "--rm", "busybox", "cat", input="hi\n"))
    assert r.stdout == "hi\n"


def test_piped_stdin_many_lines(docker):
    data = "".join(f"line {i}\n" for i in range(2000))
    r = ok(docker("run", "-i", "--rm", "busybox", "wc", "-l", input=data))
    assert r.stdout.strip() == "2000"


def test_run_as_named_user(docker):
    r = ok(docker("run", "--rm", "-u", "wharfuser", "busybox", "id", "-u"))
    assert r.stdout == "1000\n"
    r = ok(docker("run", "--rm", "-u", "wharfuser", "busybox", "sh", "-c", 'echo "$HOME"'))
    assert r.stdout == "/home/wharfuser\n"


def test_run_as_numeric_user(docker):
    r = ok(docker("run", "--rm", "-u", "65534:65534", "busybox", "id"))
    assert "uid=65534" in r.stdout and "gid=65534" in r.stdout


def test_missing_executable_exits_127(docker):
    # The CLI maps a start error containing "executable file not found" or "no such file or
    # directory" to 127 (cli/command/container/run.go).
    r = docker("run", "busybox", "nosuchcmd")
    assert r.returncode == 127, f"stdout: {r.stdout}\nstderr: {r.stderr}"
    assert "nosuchcmd" in r.stderr


def test_non_executable_exits_126(docker):
    # ...and one containing "permission denied" or "is a directory" to 126.
    r = docker("run", "busybox", "/etc")
    assert r.returncode == 126, f"stdout: {r.stdout}\nstderr: {r.stderr}"


def test_network_none_has_only_loopback(docker):
    r = ok(docker("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link", "show"))
    names = {line.split(":")[1].strip().split("@")[0] for line in r.stdout.splitlines() if line.strip()}
    assert names == {"lo"}, r.stdout


def test_network_host_sees_host_interfaces(docker):
    r = ok(docker("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link", "show"))
    names = {line.split(":")[1].strip().split("@")[0] for line in r.stdout.splitlines() if line.strip()}
    assert names == set(os.listdir("/sys/class/net")), r.stdout
    r = ok(docker("run", "--rm", "--network", "host", "busybox", "hostname"))
    assert r.stdout.strip() == socket.gethostname()


# ---------------------------------------------------------------- detached, ps, inspect


def test_run_detached_ps_shows_up_then_exited(docker, unique):
    cid = run_d(docker, unique, "sleep", "1000")
    line = ps_line(docker, unique)
    assert line is not None, "running container missing from `docker ps`"
    assert " Up " in line, line
    assert line.startswith(cid[:12]), line
    assert inspect(docker, unique, "{{.State.Status}}") == "running"
    assert inspect(docker, unique, "{{.State.Running}}") == "true"
    assert int(inspect(docker, unique, "{{.State.Pid}}")) > 0

    done = unique + "-done"
    run_d(docker, done, "true")
    assert wait_exit(docker, done) == 0
    assert ps_line(docker, done) is None, "exited container listed by `docker ps`"
    line = ps_line(docker, done, "-a")
    assert line is not None and "Exited (0)" in line, line
    assert inspect(docker, done, "{{.State.Status}}") == "exited"
    assert inspect(docker, done, "{{.State.ExitCode}}") == "0"


def test_inspect_fields(docker, unique):
    cid = run_d(docker, unique, "sleep", "1000")
    assert inspect(docker, unique, "{{.Id}}") == cid
    assert inspect(docker, unique, "{{.Name}}") == "/" + unique
    assert inspect(docker, unique, "{{.Config.Image}}") == "busybox"
    assert inspect(docker, unique, "{{.Path}} {{json .Args}}") == 'sleep ["1000"]'


# ---------------------------------------------------------------- logs


LOGGER = "for i in 1 2 3; do echo out $i; echo err $i >&2; done"


def test_logs(docker, unique):
    run_d(docker, unique, "sh", "-c", LOGGER)
    assert wait_exit(docker, unique) == 0
    r = ok(docker("logs", unique))
    assert r.stdout == "out 1\nout 2\nout 3\n"
    assert r.stderr == "err 1\nerr 2\nerr 3\n"


def test_logs_tail(docker, unique):
    run_d(docker, unique, "sh", "-c", "for i in 1 2 3; do echo out $i; done")
    wait_exit(docker, unique)
    assert ok(docker("logs", "--tail", "1", unique)).stdout == "out 3\n"
    assert ok(docker("logs", "--tail", "2", unique)).stdout == "out 2\nout 3\n"
    r = ok(docker("logs", "--tail", "0", unique))
    assert r.stdout == "" and r.stderr == ""


def test_logs_tail_counts_both_streams(docker, unique):
    # dockerd's tail counts entries of the combined log, not per stream (captures/08-logs:
    # `--tail 2` gave one stdout and one stderr line).
    run_d(docker, unique, "sh", "-c", LOGGER)
    wait_exit(docker, unique)
    r = ok(docker("logs", "--tail", "2", unique))
    assert len(r.stdout.splitlines()) + len(r.stderr.splitlines()) == 2, (r.stdout, r.stderr)


def test_logs_timestamps(docker, unique):
    run_d(docker, unique, "sh", "-c", LOGGER)
    wait_exit(docker, unique)
    r = ok(docker("logs", "-t", unique))
    lines = r.stdout.splitlines()
    assert len(lines) == 3, r.stdout
    for i, line in enumerate(lines, 1):
        assert re.fullmatch(RFC3339 + f" out {i}", line), line


def test_logs_follow_ends_when_container_exits(docker, wharfd, unique):
    # "b" and the exit come only once `logs -f` is following (it has printed "a").
    run_d(docker, unique, "sh", "-c", "trap 'touch /tmp/go' USR1; echo a; until test -f /tmp/go; do sleep 0.05; done; echo b")
    follow = subprocess.Popen(["docker", "logs", "-f", unique], env=wharfd.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follow.stdout.readline() == "a\n"
        go(docker, unique)
        out, err = follow.communicate(timeout=60)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert (follow.returncode, out, err) == (0, "b\n", "")


# ---------------------------------------------------------------- stop, kill, restart, wait


def test_stop_times_out_to_sigkill(docker, unique):
    # busybox sleep as PID 1 has no SIGTERM handler, so the kernel drops SIGTERM and stop must
    # fall back to SIGKILL after -t seconds: exit code 137.
    since = f"{time.time() - 1:.6f}"
    run_d(docker, unique, "sleep", "1000")
    r = ok(docker("stop", "-t", "1", unique))
    assert r.stdout.strip() == unique
    assert inspect(docker, unique, "{{.State.Status}}") == "exited"
    assert inspect(docker, unique, "{{.State.ExitCode}}") == "137"
    # The SIGKILL came after the 1 s asked for, not after the default 10 s: measured by the
    # daemon's own event times, SIGTERM to SIGKILL.
    out = ok(docker("events", "--since", since, "--until", f"{time.time():.6f}",
                    "--filter", "container=" + unique, "--filter", "event=kill",
                    "--format", "{{.Actor.Attributes.signal}} {{.TimeNano}}", timeout=30)).stdout
    sent = [l.split() for l in out.splitlines()]
    assert [sig for sig, _ in sent] == ["15", "9"], out
    gap = (int(sent[1][1]) - int(sent[0][1])) / 1e9
    assert 1.0 <= gap < 10.0, out


def test_stop_with_sigterm_handler_exits_cleanly(docker, unique):
    run_trapping(docker, unique, "TERM", 0)
    ok(docker("stop", unique))
    # 137 would mean SIGTERM was not delivered and stop fell back to SIGKILL.
    assert inspect(docker, unique, "{{.State.ExitCode}}") == "0"


def test_kill(docker, unique):
    run_d(docker, unique, "sleep", "1000")
    r = ok(docker("kill", unique))
    assert r.stdout.strip() == unique
    assert wait_exit(docker, unique) == 137
    assert inspect(docker, unique, "{{.State.Status}}") == "exited"


def test_kill_with_signal(docker, unique):
    run_trapping(docker, unique, "USR1", 7)
    ok(docker("kill", "-s", "USR1", unique))
    assert wait_exit(docker, unique) == 7


def test_kill_stopped_container_fails(docker, unique):
    run_d(docker, unique, "true")
    wait_exit(docker, unique)
    r = docker("kill", unique)
    assert r.returncode != 0
    assert "is not running" in r.stderr


def test_restart(docker, unique):
    run_d(docker, unique, "sleep", "1000")
    pid1 = inspect(docker, unique, "{{.State.Pid}}")
    started1 = inspect(docker, unique, "{{.State.StartedAt}}")
    r = ok(docker("restart", "-t", "1", unique, timeout=60))
    assert r.stdout.strip() == unique
    assert inspect(docker, unique, "{{.State.Status}}") == "running"
    assert inspect(docker, unique, "{{.State.Pid}}") != pid1
    assert inspect(docker, unique, "{{.State.StartedAt}}") != started1


def test_start_exited_container_again(docker, unique):
    run_d(docker, unique, "sh", "-c", "echo run")
    wait_exit(docker, unique)
    ok(docker("start", unique))
    wait_exit(docker, unique)
    assert ok(docker("logs", unique)).stdout == "run\nrun\n"


def test_wait_returns_exit_code(docker, unique):
    run_d(docker, unique, "sh", "-c", "sleep 1; exit 4")
    r = ok(docker("wait", unique, timeout=30))
    assert r.stdout == "4\n"


# ---------------------------------------------------------------- rm, rename, errors


def test_rm(docker, unique):
    cid = ok(docker("create", "--name", unique, "busybox", "true")).stdout.strip()
    assert HEX64.match(cid)
    assert inspect(docker, unique, "{{.State.Status}}") == "created"
    r = ok(docker("rm", unique))
    assert r.stdout.strip() == unique
    r = docker("container", "inspect", unique)
    assert r.returncode != 0
    assert "no such container" in r.stderr.lower()


def test_rm_running_needs_force(docker, unique):
    cid = run_d(docker, unique, "sleep", "1000")
    r = docker("rm", unique)
    assert r.returncode != 0
    assert f"You cannot remove a running container {cid}" in r.stderr, r.stderr
    assert inspect(docker, unique, "{{.State.Status}}") == "running"
    r = ok(docker("rm", "-f", unique))
    assert r.stdout.strip() == unique
    assert unique not in ok(docker("ps", "-a")).stdout


def test_rename(docker, unique):
    cid = run_d(docker, unique, "sleep", "1000")
    new = unique + "-new"
    ok(docker("rename", unique, new))
    assert inspect(docker, new, "{{.Id}}") == cid
    assert inspect(docker, new, "{{.Name}}") == "/" + new
    r = docker("container", "inspect", unique)
    assert r.returncode != 0 and "no such container" in r.stderr.lower()


def test_unknown_container(docker):
    r = docker("stop", "wc-nosuch-container")
    assert r.returncode == 1
    assert "No such container: wc-nosuch-container" in r.stderr
    r = docker("logs", "wc-nosuch-container")
    assert r.returncode != 0 and "No such container: wc-nosuch-container" in r.stderr
    r = docker("inspect", "wc-nosuch-container")
    assert r.returncode != 0 and "No such object: wc-nosuch-container" in r.stderr


def test_name_conflict(docker, unique):
    cid = run_d(docker, unique, "sleep", "1000")
    r = docker("run", "--name", unique, "busybox", "true")
    assert r.returncode == 125
    assert f'Conflict. The container name "/{unique}" is already in use by container "{cid}"' in r.stderr, r.stderr


def test_unknown_image(docker):
    # The CLI tries to pull after a 404 from create; the pull fails (no network, or a 404/500
    # from the daemon) and the run fails with 125.
    r = docker("run", "--rm", "--pull", "never", "wc-nosuch-image:v9", "true")
    assert r.returncode == 125
    assert "wc-nosuch-image:v9" in r.stderr


# ---------------------------------------------------------------- images


def test_images_lists_busybox(docker, busybox):
    r = ok(docker("images", "--no-trunc"))
    rows = [line.split() for line in r.stdout.splitlines()[1:]]
    assert ["busybox", "latest", busybox] in [row[:3] for row in rows], r.stdout
    r = ok(docker("image", "inspect", "-f", "{{.Id}} {{.Os}}", "busybox"))
    assert r.stdout.strip() == f"{busybox} linux"


def test_import_tag_rmi(docker, busybox_tar, unique):
    repo = unique
    r = ok(docker("import", str(busybox_tar), f"{repo}:v1", timeout=120))
    image_id = r.stdout.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id), r.stdout
    try:
        ok(docker("tag", f"{repo}:v1", f"{repo}:v2"))
        # `docker inspect` asks for a container first: a name with `/` must be a 404 so that
        # the CLI goes on to the image.
        ok(docker("tag", f"{repo}:v1", f"localhost/{repo}:v1"))
        r = ok(docker("inspect", "-f", "{{.Id}}", f"localhost/{repo}:v1"))
        assert r.stdout.strip() == image_id, r.stdout
        ok(docker("rmi", f"localhost/{repo}:v1"))
        r = ok(docker("images", repo, "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"))
        listed = dict(line.split() for line in r.stdout.splitlines())
        assert set(listed) == {f"{repo}:v1", f"{repo}:v2"}, r.stdout
        assert listed[f"{repo}:v1"] == listed[f"{repo}:v2"]
        assert image_id.startswith("sha256:" + listed[f"{repo}:v1"])

        r = ok(docker("run", "--rm", f"{repo}:v2", "echo", "from-import"))
        assert r.stdout == "from-import\n"

        r = ok(docker("rmi", f"{repo}:v2"))
        assert r.stdout.strip() == f"Untagged: {repo}:v2"

        # The last tag of an image a container uses cannot go without force.
        name = unique + "-user"
        ok(docker("create", "--name", name, f"{repo}:v1", "true"))
        r = docker("rmi", f"{repo}:v1")
        assert r.returncode != 0
        assert "is using its referenced image" in r.stderr or "being used" in r.stderr, r.stderr
        ok(docker("rm", name))

        r = ok(docker("rmi", f"{repo}:v1"))
        assert f"Untagged: {repo}:v1" in r.stdout
        assert f"Deleted: {image_id}" in r.stdout
        r = docker("image", "inspect", f"{repo}:v1")
        assert r.returncode != 0 and "No such image" in r.stderr
    finally:
        for t in ("v1", "v2"):
            docker("rmi", "-f", f"{repo}:{t}")


def test_rmi_force(docker, busybox_tar, unique):
    """`rmi` of an image ID with two tags needs force; with it, both tags and the image go."""
    image_id = ok(docker("import", str(busybox_tar), f"{unique}:v1", timeout=120)).stdout.strip()
    try:
        ok(docker("tag", f"{unique}:v1", f"{unique}:v2"))
        r = docker("rmi", image_id)
        assert r.returncode == 1, r
        short = image_id.removeprefix("sha256:")[:12]
        assert (f"conflict: unable to delete {short} (must be forced) - image is referenced "
                "in multiple repositories") in r.stderr, r.stderr
        r = ok(docker("rmi", "-f", image_id))
        lines = r.stdout.splitlines()
        assert sorted(lines[:2]) == [f"Untagged: {unique}:v1", f"Untagged: {unique}:v2"], r.stdout
        assert lines[2:] == [f"Deleted: {image_id}"], r.stdout
        r = docker("image", "inspect", image_id)
        assert r.returncode != 0 and "No such image" in r.stderr
    finally:
        for t in ("v1", "v2"):
            docker("rmi", "-f", f"{unique}:{t}")


def test_import_from_stdin(docker, busybox_tar, unique):
    data = busybox_tar.read_bytes()
    r = docker("import", "-", f"{unique}:v1", input=data, timeout=120)
    try:
        assert r.returncode == 0, r.stderr
        assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", r.stdout), r.stdout
        r = ok(docker("run", "--rm", f"{unique}:v1", "echo", "ok"))
        assert r.stdout == "ok\n"
    finally:
        docker("rmi", "-f", f"{unique}:v1")


def test_rmi_unknown(docker):
    r = docker("rmi", "wc-nosuch:img")
    assert r.returncode != 0
    assert "No such image: wc-nosuch:img" in r.stderr

