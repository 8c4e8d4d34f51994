"""The hostile-input suite (issue 13): requests a careless or malicious client could send, each
answered with a clear error and leaving nothing behind, nothing written outside the daemon's
roots.

Fixtures every file here may use (each test file owns its own cases; this file only shares the
plumbing):
- `daemon`: a wharfd of the module's own (tests/wharfd_harness.py), started with the module's
  `WHARFD_ARGS` (a list, if the module defines it) and removed with everything it made.
- `busybox_tar`: a busybox rootfs tar (scripts/mk-busybox-tar.sh), once per session;
  `busybox`: that tar imported into the module's daemon as `busybox:latest`.
- `hostile_client.api(daemon, method, path, body=None, headers=None, timeout=30)` -> (status, headers, body
  bytes), over the daemon's socket; `body` may be bytes, a dict/list (sent as JSON) or an
  iterable of bytes chunks (sent chunked).
- `hostile_client.call(daemon, method, path, body=None)` -> (status, decoded JSON | bytes |
  None), `message(body)`, `leftovers(daemon)` (containers, their dirs, snapshots).
- `hostile_client.raw(daemon, data, timeout=5)` -> the bytes the daemon answered before closing or timing out
  (for malformed HTTP).
- `outside_unchanged`: a fixture that snapshots the places an escape would land (/, /tmp, /etc,
  /root, /var/tmp top levels) before the test and asserts after it that nothing appeared there
  except under the daemon's own directory.
"""

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import wharfd_harness as H  # noqa: E402

ESCAPE_WATCH = [Path("/"), Path("/tmp"), Path("/etc"), Path("/root"), Path("/var/tmp")]


def _need_root():
    if os.geteuid() != 0:
        pytest.skip("hostile-input tests need root (wharfd creates namespaces and mounts)")


@pytest.fixture(scope="module")
def daemon(request):
    _need_root()
    binary = H.wharfd_bin()
    if not binary.is_file():
        raise RuntimeError(f"wharfd not found at {binary}: build it (cargo build --workspace) "
                           "or set WHARFD_BIN")
    name = "hostile-" + Path(request.module.__file__).stem.removeprefix("test_").replace("_", "-")
    d = H.WharfDaemon(name, binary)
    d.extra_args = list(getattr(request.module, "WHARFD_ARGS", []))
    try:
        d.start()
        rss_start = _status_kib(d, "VmRSS")
        yield d
        _record_rss(d, name, rss_start)
    finally:
        errors = d.cleanup()
        assert not errors, f"cleanup of {name} failed: {errors}"


def _status_kib(daemon, field):
    try:
        for line in open(f"/proc/{daemon.proc.pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, AttributeError):
        pass
    return None


def _record_rss(daemon, name, rss_start):
    """With WHARF_HOSTILE_RSS=<file>: the module's daemon's RSS after start, its peak (VmHWM)
    and its RSS 30 s after the module's last request, one line per module (issue 13's
    "memory returns to idle"; a measurement, never an assertion)."""
    out = os.environ.get("WHARF_HOSTILE_RSS")
    if not out:
        return
    peak = _status_kib(daemon, "VmHWM")
    time.sleep(30)
    after = _status_kib(daemon, "VmRSS")
    with open(out, "a") as f:
        f.write(f"{name}\tstart_kib={rss_start}\tpeak_kib={peak}\tafter30s_kib={after}\n")


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory):
    return H.make_busybox_tar(tmp_path_factory.mktemp("hostile-busybox") / "busybox.tar")


def _top_level(path):
    try:
        return set(os.listdir(path))
    except OSError:
        return set()


@pytest.fixture
def outside_unchanged(daemon):
    before = {p: _top_level(p) for p in ESCAPE_WATCH}
    yield
    own = {daemon.dir.name}
    for p in ESCAPE_WATCH:
        new = _top_level(p) - before[p]
        # Other tests' daemons (wharf-test-*), pytest's temp dirs and other programs' scratch
        # files (a compiler's /tmp/cc*.s while someone builds) come and go; an escape stays.
        new = {n for n in new if n not in own and not n.startswith(("wharf-test-", "pytest-"))}
        if new:
            time.sleep(1.0)
            new &= _top_level(p)
        assert not new, f"new entries in {p} after a hostile request: {sorted(new)}"


def docker_available():
    return shutil.which("docker") is not None


@pytest.fixture(scope="module")
def busybox(daemon, busybox_tar):
    """The busybox rootfs imported into the module's daemon as `busybox:latest`."""
    import hostile_client
    status, _, raw = hostile_client.api(
        daemon, "POST", "/images/create?fromSrc=-&repo=busybox&tag=latest",
        busybox_tar.read_bytes(), timeout=120)
    assert status == 200, raw[-300:]
    return "busybox"
