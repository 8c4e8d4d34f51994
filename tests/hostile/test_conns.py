"""Connections are bounded (issue 13, item 5): a client that is slow to send a request's head,
one whose body stalls or is shorter than its Content-Length, and a kept-alive connection left
idle are all closed after their timeout; connections past the cap wait to be accepted until one
closes; and streams that are silent by nature (events, logs -f, wait, a hijacked attach) stay
open far longer than every timeout.

The module's daemon runs with short bounds so that these take seconds. Nothing here asserts a
duration: every wait is for a condition, with a generous bound.
"""

import os
import select
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest

from hostile_client import api

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import wharfd_harness as H  # noqa: E402

HEADER_S, IDLE_S, BODY_S, MAX_CONNS = 1, 2, 1, 12
WHARFD_ARGS = ["--header-timeout", f"{HEADER_S}s", "--idle-timeout", f"{IDLE_S}s",
               "--body-timeout", f"{BODY_S}s", "--max-connections", str(MAX_CONNS)]
# Longer than every bound above, with room to spare.
PAST_EVERY_TIMEOUT = 2 * max(HEADER_S, IDLE_S, BODY_S) + 1
GENEROUS = 60


def connect(daemon, timeout=GENEROUS):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(daemon.socket))
    return s


def closed_by_daemon(s, bound=GENEROUS):
    """Reads until the daemon closes `s` or `bound` seconds pass; returns (closed, what it
    read)."""
    got = b""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], 0.2)
        if not r:
            continue
        try:
            b = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True, got
        if not b:
            return True, got
        got += b
    return False, got


def still_open(s):
    """True if the daemon has not closed `s` (nothing to read, or data but no EOF)."""
    r, _, _ = select.select([s], [], [], 0)
    if not r:
        return True
    try:
        return s.recv(65536, socket.MSG_PEEK) != b""
    except (ConnectionResetError, BrokenPipeError):
        return False


def wait_for(cond, what, bound=GENEROUS):
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {bound}s: {what}")


def daemon_fds(daemon):
    return len(os.listdir(f"/proc/{daemon.proc.pid}/fd"))


def sockets_of(daemon):
    n = 0
    for fd in os.listdir(f"/proc/{daemon.proc.pid}/fd"):
        try:
            if os.readlink(f"/proc/{daemon.proc.pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def read_head(s):
    """Reads an answer's status line and headers (byte by byte, so nothing after is taken)."""
    buf = b""
    while not buf.endswith(b"\r\n\r\n"):
        b = s.recv(1)
        if not b:
            raise ConnectionError(f"closed during the answer's head: {buf!r}")
        buf += b
    return buf


def read_until(s, needle, bound=GENEROUS):
    buf = b""
    deadline = time.monotonic() + bound
    while needle not in buf:
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} not received within {bound}s; got {buf[-300:]!r}")
        r, _, _ = select.select([s], [], [], 0.2)
        if r:
            b = s.recv(65536)
            if not b:
                raise AssertionError(f"closed before {needle!r}; got {buf[-300:]!r}")
            buf += b
    return buf


def test_a_slow_head_is_dropped_after_the_header_timeout(daemon):
    s = connect(daemon)
    try:
        # A slowloris: the head trickles in a byte at a time and never ends. Each byte must not
        # renew the clock.
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nX-Slow: ")
        deadline = time.monotonic() + GENEROUS
        closed, got = False, b""
        while not closed and time.monotonic() < deadline:
            try:
                s.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            closed, more = closed_by_daemon(s, bound=0.2)
            got += more
        assert closed, "a trickling head kept its connection"
        assert b"200 OK" not in got
    finally:
        s.close()
    assert api(daemon, "GET", "/_ping")[0] == 200


def test_a_silent_connection_is_dropped_after_the_header_timeout(daemon):
    s = connect(daemon)
    try:
        closed, got = closed_by_daemon(s)
        assert closed, "a connection that never sent anything was kept"
        assert got == b""
    finally:
        s.close()


def test_a_short_body_is_dropped_after_the_body_timeout(daemon):
    s = connect(daemon)
    try:
        s.sendall(b"POST /containers/create?name=conns-short-body HTTP/1.1\r\nHost: docker\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                  b'{"Image": ')
        closed, got = closed_by_daemon(s)
        assert closed, "a body shorter than its Content-Length kept its connection"
        # If it answered before closing, it refused the request.
        if got:
            assert not got.startswith(b"HTTP/1.1 2"), got[:200]
    finally:
        s.close()
    status, _, body = api(daemon, "GET", "/containers/json?all=1")
    assert status == 200 and b"conns-short-body" not in body


def test_a_body_that_keeps_flowing_is_not_cut(daemon):
    """Slower in all than the body timeout, but never stalled for as long."""
    def slow_chunks():
        for _ in range(4 * BODY_S * 4):
            time.sleep(0.25)
            yield b" "
        yield b'{"Image": "conns-no-such-image"}'
    status, _, body = api(daemon, "POST", "/containers/create?name=conns-flowing", body=slow_chunks(),
                          headers={"Content-Type": "application/json"})
    # The body arrived whole: the answer is about the image, not the body.
    assert status == 404 and b"conns-no-such-image" in body, (status, body)


def test_an_idle_kept_alive_connection_is_closed(daemon):
    s = connect(daemon)
    try:
        for _ in range(2):
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
            head = read_head(s)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert s.recv(2) == b"OK"
        closed, got = closed_by_daemon(s)
        assert closed, "an idle kept-alive connection was kept"
        assert got == b""
    finally:
        s.close()


def test_slow_clients_are_all_let_go(daemon):
    """More slow clients than the cap: they wait in the backlog, each is accepted and then
    dropped after the header timeout, and the daemon holds none of them afterwards."""
    before = sockets_of(daemon)
    clients = []
    try:
        for _ in range(3 * MAX_CONNS):
            s = connect(daemon)
            s.sendall(b"GET /_ping HTTP/1.1\r\n")
            clients.append(s)
        for s in clients:
            assert closed_by_daemon(s)[0], "a slow client was kept"
    finally:
        for s in clients:
            s.close()
    wait_for(lambda: sockets_of(daemon) <= before, "the daemon's sockets back to their number before")
    assert api(daemon, "GET", "/_ping")[0] == 200


def test_the_connection_cap_holds_then_frees(daemon):
    streams = []
    waiting = None
    try:
        # Event streams are silent and exempt from every timeout: they hold their slots.
        for _ in range(MAX_CONNS):
            s = connect(daemon)
            s.sendall(b"GET /events HTTP/1.1\r\nHost: docker\r\n\r\n")
            assert read_head(s).startswith(b"HTTP/1.1 200")
            streams.append(s)
        waiting = connect(daemon)
        waiting.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
        wait_for(lambda: "connection limit reached" in daemon.log.read_text(errors="replace"),
                 "the daemon logs that its connection limit is reached")
        # Not accepted while every slot is held, so it cannot have been answered.
        assert still_open(waiting) and select.select([waiting], [], [], 0)[0] == []
        streams.pop().close()
        head = read_head(waiting)
        assert head.startswith(b"HTTP/1.1 200"), head
    finally:
        for s in streams:
            s.close()
        if waiting:
            waiting.close()


@pytest.fixture
def silent_container(daemon, busybox_tar):
    if shutil.which("docker") is None:
        pytest.skip("docker CLI not found")
    H.run_docker(daemon, "import", str(busybox_tar), "conns-busybox", check=True, timeout=120)
    name = "conns-silent"
    H.run_docker(daemon, "run", "-d", "--name", name, "conns-busybox", "sh", "-c",
                 "while [ ! -f /tmp/go ]; do sleep 0.2; done; echo late", check=True)
    yield name
    H.run_docker(daemon, "rm", "-f", name)
    H.run_docker(daemon, "rmi", "conns-busybox")


def test_silent_streams_outlive_every_timeout(daemon, silent_container):
    name = silent_container
    opened = []

    def stream(request):
        s = connect(daemon)
        s.sendall(request)
        opened.append(s)
        return s

    try:
        events = stream(b"GET /events HTTP/1.1\r\nHost: docker\r\n\r\n")
        logs = stream(f"GET /containers/{name}/logs?follow=1&stdout=1&stderr=1 HTTP/1.1\r\n"
                      "Host: docker\r\n\r\n".encode())
        wait = stream(f"POST /containers/{name}/wait HTTP/1.1\r\nHost: docker\r\n"
                      "Content-Length: 0\r\n\r\n".encode())
        attach = stream(f"POST /containers/{name}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\n"
                        "Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                        "Content-Length: 0\r\n\r\n".encode())
        for s in (events, logs, wait):
            assert read_head(s).startswith(b"HTTP/1.1 200")
        assert read_head(attach).startswith(b"HTTP/1.1 101")
        # Silent for longer than every bound.
        time.sleep(PAST_EVERY_TIMEOUT)
        for s in opened:
            assert still_open(s), "a silent stream was closed by a timeout"
        H.run_docker(daemon, "exec", name, "touch", "/tmp/go", check=True)
        read_until(logs, b"late")
        read_until(attach, b"late")
        read_until(wait, b'"StatusCode":0')
        read_until(events, b'"die"')
    finally:
        for s in opened:
            s.close()
