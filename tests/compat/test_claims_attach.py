"""README claims about attach and terminals (review tests.md §5): several attachers at once,
the `detach` event, stdin written before start, StdinOnce's "only" half, a TTY container that
outlives a `kill -9` of wharfd, and ConsoleSize applied before the command runs."""

import socket
import time

from test_claims import Stream, api, inspect, ok, unread_by_peer, wait_events, wait_for  # noqa: F401


def attach_url(name, stdin=True, extra=""):
    return (f"/v1.44/containers/{name}/attach?stream=1&stdout=1&stderr=1"
            f"{'&stdin=1' if stdin else ''}{extra}")


def wait_attached(docker, since, cid, n):
    """Waits for the `n`th attach event of the container: its session is set up by then."""
    wait_events(docker, since, f"container={cid}", "event=attach", fmt="{{.Action}}",
                until=lambda ls: len(ls) >= n, what=f"{n} attach events")


def test_several_attachers_at_once_all_get_the_output(api, docker, unique):
    cid = ok(docker("run", "-d", "-i", "--name", unique, "busybox", "sh", "-c",
                    "while read l; do echo got-$l; done")).stdout.strip()
    since = time.time()
    a = Stream(api.hijack(attach_url(unique)), tty=False)
    b = Stream(api.hijack(attach_url(unique, stdin=False)), tty=False)
    c = Stream(api.hijack(attach_url(unique)), tty=False)
    wait_attached(docker, since, cid, 3)
    a.sock.sendall(b"one\n")
    for s in (a, b, c):
        s.until(b"got-one\n")
    c.sock.sendall(b"two\n")  # any attacher's stdin reaches the one process
    for s in (a, b, c):
        assert s.until(b"got-two\n") == b"got-one\ngot-two\n"
    for s in (a, b, c):
        s.sock.close()


def test_detaching_emits_detach_and_leaves_the_others_attached(api, docker, unique):
    cid = ok(docker("run", "-dit", "--name", unique, "busybox", "sh")).stdout.strip()
    since = time.time()
    a = Stream(api.hijack(attach_url(unique, extra="&detachKeys=ctrl-x,x")), tty=True)
    b = Stream(api.hijack(attach_url(unique, stdin=False)), tty=True)
    wait_attached(docker, since, cid, 2)
    a.sock.sendall(b"echo $((40+2))\n")
    a.until(b"42\r\n")
    b.until(b"42\r\n")
    a.sock.sendall(b"\x18x")  # ctrl-x x: a detaches
    a.to_end()
    got = wait_events(docker, since, f"container={cid}", fmt="{{.Action}}",
                      until=lambda ls: "detach" in ls, what="the detach event")
    assert got.count("detach") == 1, got
    assert inspect(docker, unique, "{{.State.Running}}") == "true"
    # b is still attached, and the shell's stdin is still open for a new attacher.
    c = Stream(api.hijack(attach_url(unique)), tty=True)
    wait_attached(docker, since, cid, 3)
    c.sock.sendall(b"echo $((50+6))\n")
    c.until(b"56\r\n")
    b.until(b"56\r\n")
    c.sock.sendall(b"exit 4\n")
    b.to_end()
    assert ok(docker("wait", unique)).stdout == "4\n"


def test_stdin_written_before_start_is_kept(api, docker, unique):
    st, body = api.call("POST", f"/v1.44/containers/create?name={unique}", {
        "Image": "busybox", "Cmd": ["sh", "-c", "read l; echo got-$l"],
        "OpenStdin": True, "AttachStdin": True, "AttachStdout": True, "AttachStderr": True})
    assert st == 201, body
    s = Stream(api.hijack(attach_url(unique)), tty=False)
    s.sock.sendall(b"early\n")
    # Positive signal that the bytes are in wharfd's hands before the process exists.
    wait_for(lambda: unread_by_peer(s.sock) == 0, what="wharfd to read the written bytes")
    assert inspect(docker, unique, "{{.State.Status}}") == "created"
    assert api.call("POST", f"/v1.44/containers/{unique}/start")[0] == 204
    assert s.to_end() == b"got-early\n"
    assert ok(docker("wait", unique)).stdout == "0\n"


def create_started(api, name, tty, stdin_once):
    st, body = api.call("POST", f"/v1.44/containers/create?name={name}", {
        "Image": "busybox", "Cmd": ["sh", "-c", "while read l; do echo got-$l; done; echo eof-seen"],
        "OpenStdin": True, "StdinOnce": stdin_once, "Tty": tty,
        "AttachStdin": True, "AttachStdout": True, "AttachStderr": True})
    assert st == 201, body
    assert api.call("POST", f"/v1.44/containers/{name}/start")[0] == 204


def test_only_a_non_tty_stdin_once_attachers_eof_closes_stdin(api, docker, unique):
    for tty, once in ((False, False), (True, True), (True, False)):
        name = f"{unique}-{'t' if tty else 'n'}{'o' if once else ''}"
        create_started(api, name, tty, once)
        # `watch` sees the output (its session is set up once the 101 is back).
        watch = Stream(api.hijack(attach_url(name, stdin=False)), tty=tty)
        a = api.hijack(attach_url(name))
        a.sendall(b"one\n")
        a.shutdown(socket.SHUT_WR)  # this attacher's stdin EOF
        # The EOF goes into the one stdin queue right behind "one", so once the echo of "one"
        # is back, a close it caused would already have reached the process.
        watch.until(b"got-one")
        b = api.hijack(attach_url(name))
        b.sendall(b"two\n")
        watch.until(b"got-two")
        assert inspect(docker, name, "{{.State.Running}}") == "true", name
        assert b"eof-seen" not in watch.out, name
        for s in (watch.sock, a, b):
            s.close()
    # The one case that closes: non-TTY with StdinOnce; the loop ends and the container exits.
    name = f"{unique}-no"
    create_started(api, name, False, True)
    a = Stream(api.hijack(attach_url(name)), tty=False)
    a.sock.sendall(b"one\n")
    a.sock.shutdown(socket.SHUT_WR)
    assert a.to_end() == b"got-one\neof-seen\n"
    assert ok(docker("wait", name)).stdout == "0\n"


def test_a_tty_container_outlives_kill_9_of_wharfd(api, docker, unique, wharfd):
    ok(docker("run", "-dit", "--name", unique, "busybox", "sh"))
    pid = inspect(docker, unique, "{{.State.Pid}}")
    wharfd.kill9()
    wharfd._spawn()
    assert inspect(docker, unique, "{{.State.Running}} {{.State.Pid}}") == f"true {pid}"
    # The terminal still works: resize through the new wharfd, input and output both ways.
    assert api.call("POST", f"/v1.44/containers/{unique}/resize?h=31&w=97")[0] == 200
    s = Stream(api.hijack(attach_url(unique)), tty=True)
    s.sock.sendall(b"stty size; echo $((40+2))\n")
    out = s.until(b"\r\n42\r\n")
    assert b"\r\n31 97\r\n" in out, out
    s.sock.sendall(b"exit 5\n")
    s.to_end()
    assert ok(docker("wait", unique)).stdout == "5\n"


def test_console_size_applies_before_the_command_runs(api, docker, unique):
    # Never resized: `stty size` runs at once, so only the create's ConsoleSize can show.
    st, body = api.call("POST", f"/v1.44/containers/create?name={unique}", {
        "Image": "busybox", "Cmd": ["stty", "size"], "Tty": True,
        "HostConfig": {"ConsoleSize": [33, 77]}})
    assert st == 201, body
    assert api.call("POST", f"/v1.44/containers/{unique}/start")[0] == 204
    assert ok(docker("wait", unique)).stdout == "0\n"
    assert ok(docker("logs", unique)).stdout == "33 77\r\n"
