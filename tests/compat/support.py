"""Helpers the compatibility tests share: waiting for a condition, raw Engine API calls."""

import http.client
import json
import socket

from wharfd_harness import wait_for  # noqa: F401  (the tests' one, shared with the fixtures)


def ok(r):
    """A finished CLI run that must have succeeded; fails showing its output otherwise."""
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def inspect(docker, name, fmt):
    """`docker inspect -f fmt name`, stripped."""
    return ok(docker("inspect", "-f", fmt, name)).stdout.strip()


class Api:
    """Raw Engine API calls on the test daemon's socket."""

    def __init__(self, path):
        self.path = str(path)

    def conn(self, timeout=60):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.path)
        return s

    def call(self, method, url, body=None):
        c = http.client.HTTPConnection("localhost", timeout=60)
        c.sock = self.conn()
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, url, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        out = r.read()
        c.close()
        return r.status, (json.loads(out) if out.strip()[:1] in (b"{", b"[") else out)

    def hijack(self, url, body=None):
        """Sends an upgrade request and returns the socket right after the 101 headers."""
        s = self.conn()
        data = json.dumps(body).encode() if body is not None else b""
        s.sendall((f"POST {url} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n"
                   f"Upgrade: tcp\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(data)}\r\n\r\n").encode() + data)
        head = b""
        while b"\r\n\r\n" not in head:
            b = s.recv(1)
            if not b:
                raise AssertionError(f"closed before the headers: {head!r}")
            head += b
        assert head.startswith(b"HTTP/1.1 101"), head
        return s


def go(docker, container):
    """Tells a container waiting with `trap 'touch /tmp/go' USR1; until test -f /tmp/go; ...` to go
    on. A signal, not `docker exec touch`: the container exits as soon as the file appears, and an
    exec still finishing then dies with it (exit 137)."""
    ok(docker("kill", "-s", "USR1", container))
