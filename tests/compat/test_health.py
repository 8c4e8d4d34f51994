"""Healthchecks with the docker CLI and docker-py against wharfd: `--health-*` flags and
docker-py's `healthcheck=`, State.Health in inspect, `(healthy)` in `docker ps`, the `health`
filter, `health_status` events, `--no-healthcheck`. Short intervals; every wait is a generous
poll, never a timed assertion."""

import calendar
import json
import subprocess
import threading
import time
from support import ok


def poll(fn, timeout=30.0, step=0.1):
    """fn()'s first truthy value within `timeout` seconds; fails with the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"condition not reached; last value: {last!r}")


def unix_ns(rfc3339):
    """Nanoseconds since the epoch of an RFC 3339 UTC time with up to nanoseconds."""
    whole, _, frac = rfc3339.strip().rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return secs * 10**9 + int((frac + "000000000")[:9])


def health(docker, name):
    r = ok(docker("inspect", "-f", "{{json .State.Health}}", name))
    return json.loads(r.stdout)


def ps_status(docker, name):
    r = ok(docker("ps", "-a", "--format", "{{.Names}}\t{{.Status}}"))
    rows = dict(line.split("\t", 1) for line in r.stdout.splitlines() if "\t" in line)
    return rows.get(name, "")


def ps_names(docker, *filters):
    args = ["ps", "-a", "--format", "{{.Names}}"]
    for f in filters:
        args += ["--filter", f]
    return set(ok(docker(*args)).stdout.split())


def test_cli_healthy_then_unhealthy(docker, unique, wharfd):
    # Subscribed before the run: each probe is three exec events, which push older ones out of
    # the daemon's bounded history (as in dockerd) at a 200 ms interval.
    events = subprocess.Popen(
        ["docker", "events", "--filter", f"container={unique}", "--filter",
         "event=health_status", "--format", "{{.Action}}"],
        env=wharfd.env(), stdout=subprocess.PIPE, text=True)
    # A missing event must fail the test, not hang it.
    watchdog = threading.Timer(60, events.kill)
    watchdog.start()
    try:
        _healthy_then_unhealthy(docker, unique)
        # The status changes were events, in Docker's words.
        assert events.stdout.readline().strip() == "health_status: healthy"
        assert events.stdout.readline().strip() == "health_status: unhealthy"
    finally:
        watchdog.cancel()
        events.kill()
        events.wait()


def _healthy_then_unhealthy(docker, unique):
    ok(docker("run", "-d", "--name", unique, "--health-cmd", "test -f /tmp/ok",
              "--health-interval", "200ms", "--health-retries", "2",
              "busybox", "sh", "-c", "touch /tmp/ok; sleep 1000"))
    poll(lambda: ps_status(docker, unique).endswith("(healthy)"))
    h = health(docker, unique)
    assert h["Status"] == "healthy" and h["FailingStreak"] == 0
    assert h["Log"][-1]["ExitCode"] == 0
    assert unique in ps_names(docker, "health=healthy")
    assert unique not in ps_names(docker, "health=unhealthy")

    ok(docker("exec", unique, "rm", "/tmp/ok"))
    poll(lambda: ps_status(docker, unique).endswith("(unhealthy)"))
    h = health(docker, unique)
    assert h["FailingStreak"] >= 2
    assert h["Log"][-1]["ExitCode"] == 1
    assert len(h["Log"]) <= 5
    assert unique in ps_names(docker, "health=unhealthy")

    r = ok(docker("inspect", "-f", "{{json .Config.Healthcheck}}", unique))
    assert json.loads(r.stdout) == {"Test": ["CMD-SHELL", "test -f /tmp/ok"],
                                    "Interval": 200_000_000, "Retries": 2}


def test_cli_starting_timeout_and_filters(docker, unique):
    # A long start interval keeps it `starting` while we look.
    ok(docker("run", "-d", "--name", unique, "--health-cmd", "true",
              "--health-start-period", "10m", "--health-start-interval", "10m",
              "--health-interval", "10m", "busybox", "sleep", "1000"))
    assert ps_status(docker, unique).endswith("(health: starting)")
    assert health(docker, unique) == {"Status": "starting", "FailingStreak": 0, "Log": []}
    assert unique in ps_names(docker, "health=starting")

    slow = unique + "-slow"
    ok(docker("run", "-d", "--name", slow, "--health-cmd", "sleep 30",
              "--health-timeout", "300ms", "--health-interval", "200ms",
              "--health-retries", "1", "busybox", "sleep", "1000"))
    poll(lambda: health(docker, slow)["Status"] == "unhealthy")
    last = health(docker, slow)["Log"][-1]
    assert last["ExitCode"] == -1
    assert last["Output"] == "Health check exceeded timeout (300ms)"

    plain = unique + "-plain"
    ok(docker("run", "-d", "--name", plain, "busybox", "sleep", "1000"))
    assert ok(docker("inspect", "-f", "{{json .State.Health}}", plain)).stdout.strip() == "null"
    assert plain in ps_names(docker, "health=none")
    assert plain not in ps_names(docker, "health=starting")

    r = docker("ps", "--filter", "health=sick")
    assert r.returncode != 0
    # moby v25 (API 1.44) words; later dockerd says "invalid filter 'health=sick'".
    assert "unrecognized filter value for health: sick" in r.stderr


def test_cli_no_healthcheck_disables_the_image_check(docker, unique, busybox_tar):
    image = unique + "-img"
    ok(docker("import", "--change", "HEALTHCHECK --interval=200ms CMD true",
              str(busybox_tar), image))
    try:
        ok(docker("run", "-d", "--name", unique, image, "sleep", "1000"))
        poll(lambda: ps_status(docker, unique).endswith("(healthy)"))

        off = unique + "-off"
        ok(docker("run", "-d", "--name", off, "--no-healthcheck", image, "sleep", "1000"))
        # Once the image's check has run three times on the twin since `off` started, it would
        # have run on `off` too, had --no-healthcheck not disabled it.
        off_started = unix_ns(ok(docker("inspect", "-f", "{{.State.StartedAt}}", off)).stdout)
        poll(lambda: sum(unix_ns(p["Start"]) > off_started
                         for p in health(docker, unique)["Log"]) >= 3)
        assert ok(docker("inspect", "-f", "{{json .State.Health}}", off)).stdout.strip() == "null"
        assert "(" not in ps_status(docker, off)
        r = ok(docker("inspect", "-f", "{{json .Config.Healthcheck.Test}}", off))
        assert json.loads(r.stdout) == ["NONE"]
    finally:
        docker("rm", "-f", unique, unique + "-off")
        docker("rmi", image)


def test_dockerpy_healthcheck(dclient):
    c = dclient.containers.run(
        "busybox", ["sleep", "1000"], detach=True,
        healthcheck={"test": ["CMD", "true"], "interval": 200_000_000, "retries": 1})
    try:
        def healthy():
            c.reload()
            h = c.attrs["State"].get("Health")
            return h if h and h["Status"] == "healthy" else None
        h = poll(healthy)
        assert h["FailingStreak"] == 0
        assert h["Log"][-1]["ExitCode"] == 0
        assert c.attrs["Config"]["Healthcheck"]["Test"] == ["CMD", "true"]
        ids = [x.id for x in dclient.containers.list(filters={"health": "healthy"})]
        assert c.id in ids

        bad = dclient.containers.run(
            "busybox", ["sleep", "1000"], detach=True,
            healthcheck={"test": "exit 3", "interval": 200_000_000, "retries": 1})
        try:
            def unhealthy():
                bad.reload()
                h = bad.attrs["State"].get("Health")
                return h if h and h["Status"] == "unhealthy" else None
            h = poll(unhealthy)
            assert h["Log"][-1]["ExitCode"] == 3
        finally:
            bad.remove(force=True)

        plain = dclient.containers.run("busybox", ["sleep", "1000"], detach=True)
        try:
            assert "Health" not in plain.attrs["State"]
        finally:
            plain.remove(force=True)
    finally:
        c.remove(force=True)
