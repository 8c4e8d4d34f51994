"""exec, attach, TTY and detach keys through the real docker CLI and docker-py (captures
11-exec, 12-exec-stdin, 13-exec-tty, 14-exec-detach, 05-run-it, 10-logs-tty-container)."""

import os
import socket
import time

import pytest

from test_docker_cli import ok, run_d
from support import Api, wait_for


def settled(measure, polls=10, timeout=30.0):
    """`measure()` once it has stopped changing: the same for `polls` readings in a row
    (0.1 s apart), so that what the previous step left open has had its chance to close."""
    deadline = time.monotonic() + timeout
    last, same = measure(), 1
    while same < polls:
        assert time.monotonic() < deadline, f"{measure.__name__} kept changing, last {last}"
        time.sleep(0.1)
        now = measure()
        same = same + 1 if now == last else 1
        last = now
    return last


@pytest.fixture
def api(wharfd):
    return Api(wharfd.socket)


def read_all(s, timeout=20):
    s.settimeout(timeout)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            return out
        out += b


# ---------------------------------------------------------------- exec, docker CLI


def test_exec_output_exit_code_and_streams(docker, unique):
    run_d(docker, unique, "sleep", "300")
    r = ok(docker("exec", unique, "sh", "-c", "echo out; echo err >&2"))
    assert (r.stdout, r.stderr) == ("out\n", "err\n")
    assert docker("exec", unique, "sh", "-c", "exit 3").returncode == 3
    r = ok(docker("exec", "-i", unique, "cat", input="piped\n"))
    assert r.stdout == "piped\n"


def test_exec_user_workdir_env_privileged(docker, unique, tmp_path):
    run_d(docker, unique, "sleep", "300")
    assert ok(docker("exec", "-u", "1000", unique, "id", "-u")).stdout == "1000\n"
    assert ok(docker("exec", "-u", "nobody", unique, "id", "-un")).stdout == "nobody\n"
    assert ok(docker("exec", "-w", "/tmp", unique, "pwd")).stdout == "/tmp\n"
    env_file = tmp_path / "env"
    env_file.write_text("FROMFILE=1\n# comment\n")
    r = ok(docker("exec", "-e", "A=b", "--env-file", str(env_file), unique, "sh", "-c",
                  "echo $A$FROMFILE"))
    assert r.stdout == "b1\n"
    cap = lambda *f: [l for l in ok(docker("exec", *f, unique, "cat", "/proc/self/status"))
                      .stdout.splitlines() if l.startswith("CapEff:")][0]
    privileged, default = (int(cap(*f).split()[1], 16) for f in (["--privileged"], []))
    assert privileged & (1 << 21) and not default & (1 << 21)  # CAP_SYS_ADMIN


def test_exec_missing_and_not_executable(docker, unique):
    run_d(docker, unique, "sleep", "300")
    # Docker sends the OCI error text in the exec's output stream: the CLI prints it on stdout.
    r = docker("exec", unique, "nosuch")
    assert r.returncode == 127
    assert 'exec: "nosuch": executable file not found in $PATH' in r.stdout, r
    assert r.stderr == "", r
    r = docker("exec", unique, "/etc/passwd")
    assert r.returncode == 126
    assert "permission denied" in r.stdout, r
    assert r.stderr == "", r


def test_exec_detached_and_top_shows_it(docker, unique):
    run_d(docker, unique, "sleep", "300")
    ok(docker("exec", "-d", unique, "sleep", "77"))
    wait_for(lambda: "sleep 77" in ok(docker("top", unique)).stdout, what="exec in top")


def test_exec_refused_when_stopped_or_paused(docker, unique):
    cid = run_d(docker, unique, "sleep", "300")
    ok(docker("pause", unique))
    r = docker("exec", unique, "true")
    assert r.returncode != 0
    assert f"Container {cid} is paused, unpause the container before exec" in r.stderr
    ok(docker("unpause", unique))
    ok(docker("kill", unique))
    r = docker("exec", unique, "true")
    assert r.returncode != 0
    assert f"Container {cid} is not running" in r.stderr


def test_exec_after_wharfd_restart(docker, unique, wharfd):
    run_d(docker, unique, "sleep", "300")
    wharfd.kill9()
    wharfd._spawn()
    assert ok(docker("exec", unique, "echo", "still")).stdout == "still\n"
    r = ok(docker("exec", "-i", unique, "cat", input="after restart"))
    assert r.stdout == "after restart"


# ---------------------------------------------------------------- exec, API and docker-py


def test_exec_inspect_and_errors(api, docker, unique):
    cid = run_d(docker, unique, "sleep", "300")
    st, body = api.call("POST", f"/v1.44/containers/{unique}/exec",
                        {"Cmd": ["sh", "-c", "exit 4"], "AttachStdout": True})
    assert st == 201, body
    eid = body["Id"]
    st, info = api.call("GET", f"/v1.44/exec/{eid}/json")
    assert (st, info["Running"], info["ExitCode"], info["ContainerID"]) == (200, False, None, cid)
    st, _ = api.call("POST", f"/v1.44/exec/{eid}/start", {"Detach": True})
    assert st == 200
    wait_for(lambda: api.call("GET", f"/v1.44/exec/{eid}/json")[1]["ExitCode"] == 4,
             what="exit code 4")
    info = api.call("GET", f"/v1.44/exec/{eid}/json")[1]
    assert info["ProcessConfig"]["entrypoint"] == "sh" and info["Pid"] > 0
    assert api.call("GET", "/v1.44/exec/nosuch/json")[0] == 404
    st, body = api.call("POST", f"/v1.44/containers/{unique}/exec", {"Cmd": []})
    assert st == 400
    st, body = api.call("POST", f"/v1.44/containers/{unique}/exec",
                        {"Cmd": ["true"], "DetachKeys": "ctrl-"})
    assert st == 400 and "Invalid detach keys" in body["message"]


def test_dockerpy_exec_run(dclient, unique):
    c = dclient.containers.run("busybox", ["sleep", "300"], name=unique, detach=True)
    r = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 2"], demux=True)
    assert r.exit_code == 2 and r.output == (b"out\n", b"err\n")
    r = c.exec_run("echo hi")
    assert (r.exit_code, r.output) == (0, b"hi\n")
    r = c.exec_run("nosuch")
    assert r.exit_code == 127 and b"executable file not found" in r.output
    r = c.exec_run("tty", tty=True)
    assert (r.exit_code, r.output) == (0, b"/dev/pts/0\r\n")
    s = c.exec_run("cat", stdin=True, socket=True).output._sock
    s.sendall(b"through the socket\n")
    s.shutdown(socket.SHUT_WR)
    out = read_all(s)
    assert out == b"\x01\x00\x00\x00\x00\x00\x00\x13through the socket\n"


def test_exec_resize(api, docker, unique):
    run_d(docker, unique, "sleep", "300")
    eid = api.call("POST", f"/v1.44/containers/{unique}/exec",
                   {"Cmd": ["sh"], "Tty": True, "AttachStdin": True, "AttachStdout": True})[1]["Id"]
    s = api.hijack(f"/v1.44/exec/{eid}/start", {"Tty": True})
    assert api.call("POST", f"/v1.44/exec/{eid}/resize?h=33&w=77")[0] == 200
    s.sendall(b"stty size; exit\n")
    assert b"33 77" in read_all(s)
    assert api.call("POST", f"/v1.44/exec/{eid}/resize?h=x&w=1")[0] == 400


# ---------------------------------------------------------------- TTY containers, attach


def test_tty_logs_are_raw(docker, unique):
    ok(docker("run", "-t", "--name", unique, "busybox", "sh", "-c", "echo tty-out; echo tty-err >&2"))
    r = ok(docker("logs", unique))
    assert r.stdout == "tty-out\r\ntty-err\r\n" and r.stderr == ""


def test_resize_container(api, docker, unique):
    cid = run_d(docker, unique, "sleep", "300")
    # Like dockerd (containerd): a running container without a TTY has nothing to resize.
    assert api.call("POST", f"/v1.44/containers/{unique}/resize?h=10&w=10")[0] == 200
    ok(docker("kill", unique))
    st, body = api.call("POST", f"/v1.44/containers/{unique}/resize?h=10&w=10")
    assert st == 409 and body["message"] == f"Container {cid} is not running"
    name = unique + "-t"
    ok(docker("run", "-dt", "--name", name, "busybox", "sh"))
    assert api.call("POST", f"/v1.44/containers/{name}/resize?h=21&w=42")[0] == 200
    assert ok(docker("exec", name, "sh", "-c", "stty size < /proc/1/fd/0")).stdout == "21 42\n"


def test_attach_detach_keys_and_reattach(api, docker, unique):
    ok(docker("run", "-dit", "--name", unique, "busybox", "sh"))
    s = api.hijack(f"/v1.44/containers/{unique}/attach?stream=1&stdin=1&stdout=1&stderr=1"
                   "&detachKeys=ctrl-x,x")
    s.sendall(b"echo one\n")
    got = b""
    while b"one\r\n" not in got.replace(b"echo one", b""):
        got += s.recv(4096)
    s.sendall(b"\x18x")  # ctrl-x, x: detach
    read_all(s)  # the daemon closes the attachment
    assert ok(docker("inspect", "-f", "{{.State.Running}}", unique)).stdout == "true\n"
    # A second attacher still reaches the same shell (stdin stayed open).
    s = api.hijack(f"/v1.44/containers/{unique}/attach?stream=1&stdin=1&stdout=1")
    s.sendall(b"exit 6\n")
    read_all(s)
    assert ok(docker("wait", unique)).stdout == "6\n"
    bad = api.call("POST", f"/v1.44/containers/{unique}/attach?stream=1&detachKeys=ctrl-1")
    assert bad == (400, {"message": "Invalid detach keys (ctrl-1) provided"}), bad


def test_attach_logs_replays_and_stdin_once(api, docker, unique):
    ok(docker("run", "-d", "--name", unique, "busybox", "sh", "-c", "echo early; sleep 300"))
    wait_for(lambda: "early" in ok(docker("logs", unique)).stdout, what="output")
    s = api.hijack(f"/v1.44/containers/{unique}/attach?logs=1&stdout=1")
    s.settimeout(10)
    assert s.recv(4096) == b"\x01\x00\x00\x00\x00\x00\x00\x06early\n"
    s.close()
    # StdinOnce: the first attacher's EOF closes the container's stdin, so cat ends.
    r = ok(docker("run", "-i", "--rm", "busybox", "cat", input="once\n"))
    assert r.stdout == "once\n"


def test_dropped_connections_leak_nothing(api, docker, unique, wharfd):
    run_d(docker, unique, "sleep", "300")
    pid = wharfd.proc.pid

    def counts():
        return (len(os.listdir(f"/proc/{pid}/fd")), len(os.listdir(f"/proc/{pid}/task")))

    # Warm up (lazy pools, first exec) before the baseline.
    s = api.hijack(f"/v1.44/containers/{unique}/attach?stream=1&stdout=1&stdin=1")
    s.close()
    ok(docker("exec", unique, "true"))
    before = settled(counts)
    for i in range(100):
        s = api.hijack(f"/v1.44/containers/{unique}/attach?stream=1&stdout=1&stderr=1&stdin=1")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    for i in range(100):
        eid = api.call("POST", f"/v1.44/containers/{unique}/exec",
                       {"Cmd": ["sleep", "0.2"], "AttachStdout": True, "AttachStdin": True})[1]["Id"]
        s = api.hijack(f"/v1.44/exec/{eid}/start", {})
        s.close()
    after = wait_for(lambda: (c := counts()) <= before and c, timeout=30,
                     what=f"fds/threads back to {before}, now {counts()}")
    print(f"wharfd fds/threads before {before}, after 200 dropped connections {after}")
    assert ok(docker("exec", unique, "echo", "alive")).stdout == "alive\n"


# ---------------------------------------------------------------- docker-py: attach, restart policies


def test_dockerpy_attach_and_run_wait(dclient, unique):
    c = dclient.containers.run("busybox", ["sh", "-c", "sleep 0.5; echo late; exit 2"],
                               name=unique, detach=True)
    # attach(stream) follows the output until the container exits.
    out = b"".join(c.attach(stdout=True, stderr=True, stream=True, logs=True))
    assert out == b"late\n"
    assert c.wait()["StatusCode"] == 2
    # logs=True replays what was printed before the attach.
    assert c.attach(stdout=True, logs=True, stream=False) == b"late\n"


def test_dockerpy_restart_policies(dclient, unique):
    c = dclient.containers.run("busybox", ["sh", "-c", "exit 1"], name=unique, detach=True,
                               restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})

    def settled():
        c.reload()
        return c.attrs["RestartCount"] == 2 and c.attrs["State"]["Status"] == "exited" and c

    wait_for(settled, what="two restarts then exited")
    assert c.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    a = dclient.containers.run("busybox", ["sleep", "0.2"], name=unique + "-a", detach=True,
                               restart_policy={"Name": "always"})

    def restarted():
        a.reload()
        return a.attrs["RestartCount"] >= 1

    wait_for(restarted, what="an always restart")
    a.stop(timeout=1)
    a.reload()
    assert a.attrs["State"]["Status"] == "exited"
