"""Linear costs and cancellation (issue 13, item 4): a 100k-entry Env creates; a create whose
client hangs up leaves either a whole container (listed, removable) or nothing, never a
directory, writable layer or record on its own; restore removes what a record does not own; a
start the kernel refuses (E2BIG) is an error with the kernel's reason.

These tests do not use `outside_unchanged`: they write nothing outside the daemon's roots by
construction, and the fixture also sees other processes' files (a compiler's /tmp/cc*.s while
another build runs) as escapes."""

import json
import socket
import sqlite3
import threading
import time

import pytest

import wharfd_harness as H
from hostile_client import api, call

IMAGE = "linear-busybox:latest"
SETTLE = 120  # seconds a condition may take to become true


def wait_until(what, cond, bound=SETTLE, show=None):
    """Polls `cond` until it returns something true; on timeout, says what `show` returns."""
    deadline = time.monotonic() + bound
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            detail = f"; now: {show()}" if show else ""
            raise AssertionError(f"{what}: not true after {bound}s{detail}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def image(daemon, busybox_tar):
    H.run_docker(daemon, "import", str(busybox_tar), IMAGE, check=True)
    return IMAGE


def _ids_in(path):
    try:
        return {p.name for p in path.iterdir() if len(p.name) == 64}
    except FileNotFoundError:
        return set()


def footprint(daemon):
    """What the daemon holds per container: records, writable layers (by snapshot key), data
    and exec dirs, and what it lists."""
    db = sqlite3.connect(f"file:{daemon.dir / 'data' / 'meta.db'}?mode=ro", uri=True, timeout=30)
    try:
        records = {r[0] for r in db.execute("SELECT id FROM containers")}
        layers = {r[0].removeprefix("container-")
                  for r in db.execute("SELECT key FROM snapshots WHERE key LIKE 'container-%'")}
    finally:
        db.close()
    status, listed = call(daemon, "GET", "/containers/json?all=1")
    assert status == 200, listed
    return {
        "records": records,
        "layers": layers,
        "data": _ids_in(daemon.dir / "data" / "containers"),
        "exec": _ids_in(daemon.dir / "exec" / "containers"),
        "listed": {c["Id"] for c in listed},
    }


def consistent(f):
    """Every id the disk holds belongs to a record, and the records are what is listed."""
    owned = f["layers"] | f["data"] | f["exec"]
    return owned <= f["records"] and f["records"] == f["listed"]


def remove_all(daemon):
    """rm -f of everything listed, until nothing is held (a create still finishing shows up
    in a later round)."""
    def gone():
        f = footprint(daemon)
        for cid in f["listed"]:
            call(daemon, "DELETE", f"/containers/{cid}?force=1")
        f = footprint(daemon)
        return not any(f.values()) and f
    return wait_until("every container removed and nothing left of them", gone,
                      show=lambda: footprint(daemon))


def test_create_with_100k_env_completes_and_inspects_back(daemon, image):
    env = [f"LINEAR_{i}=value-{i}" for i in range(100_000)]
    status, body = call(daemon, "POST", "/containers/create?name=linear-100k-env",
                        {"Image": image, "Cmd": ["true"], "Env": env})
    assert status == 201, body
    try:
        status, info = call(daemon, "GET", f"/containers/{body['Id']}/json")
        assert status == 200, info
        got = info["Config"]["Env"]
        wanted = set(env)
        assert [e for e in got if e in wanted] == env, "Env came back changed or reordered"
    finally:
        call(daemon, "DELETE", f"/containers/{body['Id']}?force=1")


def _hang_up(daemon, body, send):
    """Sends a create's headers and `send` bytes of `body`, then closes without reading."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(str(daemon.socket))
    try:
        head = ("POST /containers/create HTTP/1.1\r\nHost: docker\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        s.sendall(head + body[:send])
    finally:
        s.close()


def test_abandoned_creates_leave_nothing(daemon, image):
    remove_all(daemon)  # an earlier test's rm tears down in the background
    small = json.dumps({"Image": image, "Cmd": ["true"], "Env": ["A=1"]}).encode()
    big = json.dumps({"Image": image, "Cmd": ["true"],
                      "Env": [f"ABANDONED_{i}=x" for i in range(100_000)]}).encode()
    finished = {}

    def the_one_that_waits():
        finished["create"] = call(daemon, "POST", "/containers/create?name=linear-waited",
                                  json.loads(big))

    waiter = threading.Thread(target=the_one_that_waits)
    waiter.start()
    try:
        for _ in range(10):
            _hang_up(daemon, small, len(small) // 2)  # gone mid-body
            _hang_up(daemon, small, len(small))       # gone once the body is sent
            _hang_up(daemon, big, len(big) // 3)
            _hang_up(daemon, big, len(big))           # while creates of this size run
    finally:
        waiter.join(timeout=SETTLE)
    assert finished.get("create", (None,))[0] == 201, finished

    f = wait_until("every container's files owned by a listed record",
                   lambda: (lambda f: consistent(f) and f)(footprint(daemon)),
                   show=lambda: footprint(daemon))
    assert finished["create"][1]["Id"] in f["listed"]
    # The big creates take long enough that the daemon hears each hang-up before answering:
    # those it finished, it removed again. (A small one may be answered before the hang-up is
    # seen: then it stays, whole and listed, which `consistent` allows.)
    undone = daemon.log.read_text(errors="replace").count(
        "the client went away; removing the container it asked for")
    assert undone >= 1, daemon.log_tail()
    f = wait_until("the abandoned creates removed again",
                   lambda: (lambda f: consistent(f) and len(f["listed"]) <= 1 + 20 - undone and f)(
                       footprint(daemon)),
                   show=lambda: (undone, footprint(daemon)))
    remove_all(daemon)
    status, _ = call(daemon, "GET", "/_ping")
    assert status == 200


def test_restore_removes_files_no_record_owns(daemon, image):
    # An id used as another container's name must not protect an orphan of that id.
    orphan_named = "a" * 64
    orphan = "b" * 64
    status, body = call(daemon, "POST", f"/containers/create?name={orphan_named}",
                        {"Image": image, "Cmd": ["true"]})
    assert status == 201, body
    kept = body["Id"]
    daemon.kill9()
    for oid in (orphan, orphan_named):
        for d in (daemon.dir / "data" / "containers" / oid, daemon.dir / "exec" / "containers" / oid):
            d.mkdir(parents=True)
            (d / "leftover").write_text("from a create cut before its record")
    daemon.restart()
    f = wait_until("restore removed the leftovers without a record",
                   lambda: (lambda f: not ({orphan, orphan_named} & (f["data"] | f["exec"])) and f)(
                       footprint(daemon)))
    assert f["listed"] == {kept} and f["records"] == {kept}
    remove_all(daemon)


def test_start_refused_by_the_kernel_is_an_error_with_its_reason(daemon, image):
    # One string longer than the kernel's MAX_ARG_STRLEN (32 pages): execve fails with E2BIG
    # whatever the stack limit.
    env = ["LINEAR_BIG=" + "x" * 200_000]
    status, body = call(daemon, "POST", "/containers/create?name=linear-e2big",
                        {"Image": image, "Cmd": ["true"], "Env": env})
    assert status == 201, body
    cid = body["Id"]
    try:
        status, err = call(daemon, "POST", f"/containers/{cid}/start")
        assert status == 500, (status, err)
        assert "argument list too long" in err["message"], err
        assert err["message"].startswith("failed to create task for container"), err
        status, info = call(daemon, "GET", f"/containers/{cid}/json")
        assert status == 200
        st = info["State"]
        assert st["Status"] == "created" and not st["Running"], st
        assert st["ExitCode"] == 128, st
        assert "argument list too long" in st["Error"], st
        r = H.run_docker(daemon, "start", cid)
        assert r.returncode != 0 and "argument list too long" in r.stderr, r
    finally:
        call(daemon, "DELETE", f"/containers/{cid}?force=1")
    # The raw client reads the error too (Content-Length framed).
    status, _, _ = api(daemon, "GET", "/_ping")
    assert status == 200


def test_a_body_over_the_json_limit_is_a_clear_400(daemon, image):
    # JSON_BODY_LIMIT is 8 MiB (docs/architecture.md, "Create and start: cost and
    # cancellation"): 9 MiB of Env is refused before anything is made.
    env = ["LINEAR_HUGE=" + "x" * 1000] * (9 * 1024)
    remove_all(daemon)
    status, err = call(daemon, "POST", "/containers/create?name=linear-huge-body",
                       {"Image": image, "Cmd": ["true"], "Env": env})
    assert status == 400, (status, err)
    assert "length limit exceeded" in err["message"], err
    assert not any(footprint(daemon).values())
