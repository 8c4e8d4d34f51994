"""Crash suite (issue 12, item 4): a kill -9 of wharfd at any moment leaves no invisible
container and loses nothing acknowledged. The machinery is tests/crash/crashlib.py; the long
mode is bench/crash.

* test_random_kills: $WHARF_CRASH_ROUNDS rounds (default 10) of concurrent docker CLI and
  docker-py clients running a mixed workload, wharfd SIGKILLed after a random 0.5-4 s
  ($WHARF_CRASH_SEED fixes the randomness), restarted on the same roots and checked against
  the clients' journal; then every container and image is removed and nothing may be left.
* test_failpoint: each row of crashlib.FAILPOINTS whose point this tree defines, once: the
  operation cut at that point (test_every_failpoint_has_a_row: no point without a row).

One wharfd for the module: roots and socket under /tmp/wharf-test-crash-<pid>/, cgroup parent
`wharf-test-crash`, removed with everything its containers left, also on failure. Needs root,
the docker CLI, docker-py, and a build with --features wharfd/failpoints,wharf-shim/failpoints
(tests/run-all.sh builds that).
"""

import os
import random
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import crashlib as C  # noqa: E402
import wharfd_harness as H  # noqa: E402

NAME = "crash"


@pytest.fixture(scope="module")
def suite():
    if os.geteuid() != 0:
        pytest.skip("crash tests need root (wharfd creates containers)")
    if shutil.which("docker") is None:
        pytest.skip("docker CLI not on PATH")
    binary = H.wharfd_bin()
    if not binary.is_file():
        raise RuntimeError(f"wharfd not found at {binary}: build it (cargo build --workspace "
                           "--features wharfd/failpoints,wharf-shim/failpoints) or set WHARFD_BIN")
    d = None
    try:
        d, tar = C.suite_daemon(NAME, binary)
        yield C.Suite(d, tar)
    finally:
        if d is not None:
            for e in d.cleanup():
                print(f"warning: cleanup: {e}")


def report(request, capsys, line):
    """The run's numbers, on the terminal whatever the capture mode."""
    with capsys.disabled():
        print(f"\n{request.node.name}: {line}")


def verdict(res):
    return (f"{len(res.violations)} violations in {res.rounds} rounds:\n"
            + "\n\n".join(res.failures))


def test_random_kills(suite, request, capsys):
    rounds = C.env_int("WHARF_CRASH_ROUNDS", 10)
    seed = C.env_int("WHARF_CRASH_SEED", int(time.time()))
    rng = random.Random(seed)
    res = C.Result()
    for n in range(1, rounds + 1):
        suite.random_round(n, res, rng)
    report(request, capsys, f"{res.summary()} (seed {seed})")
    if res.violations:
        pytest.fail(verdict(res), pytrace=False)


def test_every_failpoint_has_a_row():
    """A failpoint added to wharfd or the shim gets a row in crashlib.FAILPOINTS."""
    rows = {p.name for p in C.FAILPOINTS}
    missing = sorted(C.points_in_source() - rows)
    assert not missing, f"failpoints without a row in tests/crash/crashlib.py FAILPOINTS: {missing}"


@pytest.mark.parametrize("point", [p for p in C.FAILPOINTS if p.name in C.points_in_source()],
                         ids=lambda p: f"{p.name}-{p.op}-{p.client}")
def test_failpoint(suite, request, capsys, point):
    res = C.Result()
    suite.failpoint_round(1, res, point)
    report(request, capsys, res.summary())
    if res.violations:
        pytest.fail(verdict(res), pytrace=False)


def _freeze(cgroup_parent, cid, frozen):
    """Freezes or thaws the container's cgroup behind wharfd's back, as a shim answering a
    pause or unpause does while its requester dies."""
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        (root / cgroup_parent / cid / "cgroup.freeze").write_text("1" if frozen else "0")
    else:
        (root / "freezer" / cgroup_parent / cid / "freezer.state").write_text("FROZEN" if frozen else "THAWED")
    want = "FROZEN" if frozen else "THAWED"
    deadline = time.monotonic() + 30
    while C.freezer_state(cgroup_parent, cid) != want:
        assert time.monotonic() < deadline, f"the cgroup of {cid} did not become {want}"
        time.sleep(0.02)


@pytest.mark.parametrize("cut", ["pause", "unpause"])
def test_a_pause_cut_by_the_crash_ends_as_the_freezer_says(suite, cut):
    """The shim froze (thawed) the cgroup, wharfd died before saving it: after the restart the
    container is paused (running) as its freezer says, unpause/pause and rm -f work, and nothing
    is left. (Found by the random rounds: a pause cut by the kill left a frozen container that
    inspect called running and `rm -f` could not remove.)"""
    api = suite.api
    cid = api.create_container(C.BUSYBOX, C.SERVICE, name=f"crash-cut-{cut}")["Id"]
    api.start(cid)
    pid = api.inspect_container(cid)["State"]["Pid"]
    if cut == "unpause":
        api.pause(cid)
    suite.d.kill9()
    _freeze(suite.d.cgroup_parent, cid, cut == "pause")
    suite.d.restart()
    suite.reconnect()
    api = suite.api
    st = api.inspect_container(cid)["State"]
    assert (st["Status"], st["Paused"], st["Pid"]) == (
        ("paused", True, pid) if cut == "pause" else ("running", False, pid)), st
    if cut == "pause":
        api.unpause(cid)
    else:
        api.pause(cid)
    st = api.inspect_container(cid)["State"]
    assert st["Paused"] == (cut == "unpause"), st
    assert C.freezer_state(suite.d.cgroup_parent, cid) == ("FROZEN" if st["Paused"] else "THAWED")
    api.remove_container(cid, force=True)
    left = C.settled_orphans(suite.d, api, suite.leftovers)
    assert not left, left
