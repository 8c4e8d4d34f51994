"""Raw clients for the hostile-input suite: one request per connection, over wharfd's socket,
with nothing between the test and the bytes on the wire (http.client would refuse to send much
of what these tests send)."""

import json
import socket

from wharfd_harness import UnixHTTPConnection as UnixHTTP


def _connect(daemon, timeout):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(daemon.socket))
    return s


def _read_response(f):
    status_line = f.readline()
    if not status_line:
        raise ConnectionError("the daemon closed the connection without answering")
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    if status in (204, 304) or status < 200:
        body = b""  # no body, whatever the headers say (RFC 9112 6.3)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                f.readline()
                break
            body += f.read(size)
            f.readline()
    elif "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    else:
        body = f.read()
    return status, headers, body


def api(daemon, method, path, body=None, headers=None, timeout=30):
    """One request on a connection of its own; returns (status, headers, body)."""
    hdrs = {"Host": "docker"}
    chunks = None
    data = b""
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    elif isinstance(body, (bytes, bytearray)):
        data = bytes(body)
    elif body is not None:
        chunks = body
    if chunks is None:
        hdrs["Content-Length"] = str(len(data))
    else:
        hdrs["Transfer-Encoding"] = "chunked"
    hdrs.update(headers or {})
    s = _connect(daemon, timeout)
    try:
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
        s.sendall(head.encode() + b"\r\n")
        if chunks is None:
            s.sendall(data)
        else:
            for c in chunks:
                if c:
                    s.sendall(b"%x\r\n" % len(c) + c + b"\r\n")
            s.sendall(b"0\r\n\r\n")
        with s.makefile("rb") as f:
            return _read_response(f)
    finally:
        s.close()


def raw(daemon, data, timeout=5):
    """Sends `data` as is; returns what came back before the daemon closed or `timeout`."""
    return send_and_read(daemon, data, timeout)[0]


def send_and_read(daemon, data, timeout=5):
    """Like `raw`, but the daemon may close or reset the connection while `data` is still being
    sent (it refuses an oversized head before reading the rest): returns (what came back, the
    send error's name or None)."""
    s = _connect(daemon, timeout)
    out = b""
    err = None
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            err = type(e).__name__
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError as e:
                err = err or type(e).__name__
                break
            if not b:
                break
            out += b
    finally:
        s.close()
    return out, err


def call(daemon, method, path, body=None, timeout=120):
    """One well-formed request (http.client: a 204 without a length, an answer before the
    body is read). Returns (status, the answer: decoded if JSON, else bytes; None if empty)."""
    c = UnixHTTP(str(daemon.socket), timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        raw = r.read()
        if not raw.strip():
            return r.status, None
        if r.getheader("Content-Type", "").startswith("application/json"):
            return r.status, json.loads(raw)
        return r.status, raw
    finally:
        c.close()


def message(body):
    """The `message` of a JSON error body, else the body as text."""
    try:
        return json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace")


def leftovers(daemon):
    """Every container the daemon knows of, every container dir in its roots and every
    snapshot (a removal's teardown runs in the background, so entries may only go away)."""
    _, listed = call(daemon, "GET", "/containers/json?all=1")
    found = {c["Id"] for c in listed}
    for root in (daemon.dir / "data" / "containers", daemon.dir / "exec" / "containers",
                 daemon.dir / "data" / "snapshots"):
        if root.is_dir():
            found |= {str(p) for p in root.iterdir()}
    return found
