"""README claims about wharfd itself (review tests.md §5), against a wharfd of this module's
own, so that it can be started with other flags and stopped without disturbing the session's:
`-H` repeatable, `--shim-path`, `--pidfile`, `--cgroup-parent`, `--log-level`; SIGINT stops
serving and leaves containers running; at daemon start a not-user-stopped `unless-stopped`
container is started and a user-stopped one is not; a container that exited while wharfd was
down shows its real exit code and time."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from wharfd_harness import (WharfDaemon, cleanup_dir, cleanup_stale, is_alive, owner_stamp, ping,
                      run_docker, wharfd_bin)
from test_claims import inspect, ok, rfc3339_seconds, wait_for

NAME = "claimsd"


@pytest.fixture(scope="module")
def own(wharfd, busybox_tar):
    """A second wharfd: two sockets, a copied shim, `--log-level warn`, busybox imported."""
    d = WharfDaemon(NAME, wharfd_bin())
    d.second_socket = d.dir / "second.sock"
    d.shim = d.dir / "shim" / "wharf-shim"
    d.log_level = "warn"
    d.extra_args = ["-H", f"unix://{d.second_socket}", "--shim-path", str(d.shim)]
    try:
        for e in cleanup_stale(NAME):
            print(f"warning: stale cleanup: {e}")
        cleanup_dir(d.dir)
        for sub in ("data", "exec", "docker-config"):
            (d.dir / sub).mkdir(parents=True)
        (d.dir / "owner").write_text(owner_stamp())
        # The shim and its monitor, copied where only --shim-path can point.
        d.shim.parent.mkdir()
        real = wharfd_bin().parent
        for b in ("wharf-shim", "wharf-shim-monitor"):
            shutil.copy2(real / b, d.shim.parent / b)
        d._spawn()
        ok(run_docker(d, "import", str(busybox_tar), "busybox", timeout=120))
        yield d
    finally:
        for e in d.cleanup():
            print(f"warning: cleanup: {e}")


def docker(d, *args, **kw):
    return run_docker(d, *args, **kw)


def test_two_sockets_and_the_pidfile(own):
    assert ping(own.socket) and ping(own.second_socket)
    ok(docker(own, "create", "--name", "claimsd-two", "busybox", "true"))
    second = dict(os.environ, DOCKER_HOST=f"unix://{own.second_socket}",
                  DOCKER_CONFIG=str(own.docker_config))
    r = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], env=second,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "claimsd-two" in r.stdout.split(), r
    ok(docker(own, "rm", "claimsd-two"))
    assert (own.dir / "wharfd.pid").read_text().strip() == str(own.proc.pid)


def test_shim_path_cgroup_parent_and_log_level(own, wharfd):
    cid = ok(docker(own, "run", "-d", "--name", "claimsd-shim", "busybox", "sleep", "300")
             ).stdout.strip()
    try:
        shim_pid = int((own.dir / "exec" / "containers" / cid / "shim.pid").read_text())
        # The shim runs as its monitor, the binary next to it: from our copy's directory.
        exe = Path(f"/proc/{shim_pid}/exe").resolve()
        assert exe == own.shim.parent.resolve() / "wharf-shim-monitor", exe
        pid = inspect(lambda *a, **k: docker(own, *a, **k), "claimsd-shim", "{{.State.Pid}}")
        cgroups = Path(f"/proc/{pid}/cgroup").read_text()
        assert f"/wharf-test-{NAME}/{cid}" in cgroups, cgroups
    finally:
        ok(docker(own, "rm", "-f", "claimsd-shim"))
    # warn: none of the info and debug lines the session's daemon (debug) writes for the same.
    assert "DEBUG" in wharfd.log.read_text(errors="replace")
    text = own.log.read_text(errors="replace")
    assert "DEBUG" not in text and "INFO" not in text, text[-2000:]


def test_sigint_then_restart_policies_and_exits_while_down(own):
    d = lambda *a, **k: docker(own, *a, **k)  # noqa: E731
    us = ok(d("run", "-d", "--name", "claimsd-us", "--restart", "unless-stopped", "busybox",
              "sleep", "300")).stdout.strip()
    ok(d("run", "-d", "--name", "claimsd-stopped", "--restart", "unless-stopped", "busybox",
         "sleep", "300"))
    ok(d("stop", "-t", "0", "claimsd-stopped"))
    cid = ok(d("run", "-d", "--name", "claimsd-dies", "busybox", "sleep", "300")).stdout.strip()
    us_pid = int(inspect(d, "claimsd-us", "{{.State.Pid}}"))
    dies_pid = int(inspect(d, "claimsd-dies", "{{.State.Pid}}"))

    own.proc.send_signal(signal.SIGINT)
    assert own.proc.wait(timeout=60) == 0
    own.proc = None
    assert not ping(own.socket) and not ping(own.second_socket)
    assert is_alive(us_pid) and is_alive(dies_pid)

    # While wharfd is down: both running containers die (the shims see it and record it).
    before_kill = time.time()
    for p in (us_pid, dies_pid):
        os.kill(p, signal.SIGKILL)
    exit_files = [own.dir / "exec" / "containers" / c / "exit.json" for c in (us, cid)]
    wait_for(lambda: all(f.exists() for f in exit_files), what="the shim's exit record")
    recorded = time.time()

    own._spawn()
    # unless-stopped, not stopped by a user: started again (a new process).
    wait_for(lambda: inspect(d, "claimsd-us", "{{.State.Running}}") == "true", what="restart")
    assert int(inspect(d, "claimsd-us", "{{.State.Pid}}")) != us_pid
    # Stopped by a user: stays stopped.
    assert inspect(d, "claimsd-stopped", "{{.State.Status}}") == "exited"
    # No policy: its real exit, code and time (not the daemon's start).
    code, finished = inspect(d, "claimsd-dies", "{{.State.ExitCode}} {{.State.FinishedAt}}").split()
    assert code == "137"
    assert before_kill <= rfc3339_seconds(finished) <= recorded, (before_kill, finished, recorded)
    ok(d("rm", "-f", "claimsd-us", "claimsd-stopped", "claimsd-dies"))
