"""Compatibility tests: the real docker CLI and docker-py against a real wharfd.

One wharfd per session, started like wharf_testkit::TestDaemon: own roots and socket under
/tmp/wharf-test-compat-<pid>/, cgroup parent `wharf-test-compat`, log in that directory.
busybox is imported with `docker import` from scripts/mk-busybox-tar.sh. Teardown kills
wharfd, shims and container inits, unmounts, removes cgroups and the directory, also when tests
fail; leftovers of a crashed earlier run are removed at start (tests/wharfd_harness.py, shared
with tests/crash).
Needs root and the docker CLI; every test skips otherwise, by name, and under CI those skips
fail (tests/conftest.py).
"""

import os
import shutil
import sys
from pathlib import Path

import pytest

# The daemon harness is shared with tests/crash (tests/wharfd_harness.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from wharfd_harness import WharfDaemon, make_busybox_tar, run_docker, wharfd_bin  # noqa: E402

NAME = "compat"


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def wharfd():
    if os.geteuid() != 0:
        pytest.skip("compat tests need root (wharfd creates containers)")
    if shutil.which("docker") is None:
        pytest.skip("docker CLI not on PATH")
    binary = wharfd_bin()
    if not binary.is_file():
        raise RuntimeError(f"wharfd not found at {binary}: build it (cargo build -p wharfd) or set WHARFD_BIN")
    d = WharfDaemon(NAME, binary)
    try:
        d.start()
        yield d
    finally:
        if d.proc is not None and d.proc.poll() is not None:
            print(f"wharfd died during the session ({d.proc.returncode}); log tail:\n{d.log_tail()}")
        errors = d.cleanup()
        for e in errors:
            print(f"warning: cleanup: {e}")


@pytest.fixture(scope="session")
def busybox_tar(wharfd):
    return make_busybox_tar(wharfd.dir / "busybox.tar")


@pytest.fixture(scope="session")
def busybox(wharfd, busybox_tar):
    """`busybox:latest` in the test daemon; its image ID."""
    r = run_docker(wharfd, "import", str(busybox_tar), "busybox", check=True, timeout=120)
    return r.stdout.strip()


def _all_container_ids(daemon):
    r = run_docker(daemon, "ps", "-aq", "--no-trunc", timeout=30)
    if r.returncode != 0:
        return None
    return set(r.stdout.split())


@pytest.fixture
def docker(wharfd, busybox):
    """`docker(*args, input=None, timeout=60, check=False)`; containers a test leaves behind are
    force-removed after it."""
    before = _all_container_ids(wharfd) or set()

    def call(*args, **kw):
        return run_docker(wharfd, *args, **kw)

    yield call
    after = _all_container_ids(wharfd)
    if after:
        for cid in sorted(after - before):
            run_docker(wharfd, "rm", "-f", cid, timeout=60)


@pytest.fixture
def dclient(wharfd, busybox):
    """A docker-py client on the test daemon; containers a test leaves behind are removed."""
    import docker as dockerpy

    client = dockerpy.DockerClient(base_url=wharfd.host, timeout=60)
    try:
        before = {c["Id"] for c in client.api.containers(all=True)}
    except Exception:  # the test itself will report a broken daemon
        before = set()
    yield client
    try:
        for c in client.api.containers(all=True):
            if c["Id"] not in before:
                client.api.remove_container(c["Id"], force=True)
    except Exception as e:
        print(f"warning: cleanup of containers failed: {e}")
    client.close()


@pytest.fixture
def unique(request):
    """A container/image name unique to this test: `wc-<test name>`."""
    n = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")
    return f"wc-{n}"[:60].lower()
