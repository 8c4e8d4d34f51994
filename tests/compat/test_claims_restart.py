"""README claims about restart policies and healthchecks (review tests.md §5), through the
docker CLI: Docker's backoff (100 ms doubling, reset after 10 s up), `Restarting (N) x ago` in
`docker ps`, `rm` cancelling a pending restart, no probes while paused, probe output cut at
4096 bytes, the start-period rule, and Health reset to `starting` at each start.

Timing claims are checked with lower bounds only (a delay is at least what it should be), and
the one upper bound (the reset) sits at 32 times the expected delay, the delay it would be
without the reset."""

import json
import re
import time

import pytest

from test_claims import events, inspect, ok, rfc3339_seconds, wait_for

# Runs 1-5 exit at once; run 6 stays up 11 s; then they exit at once again.
FLAPPY = ('n=$(cat /n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /n; '
          '[ $n -eq 6 ] && sleep 11; exit 3')


def test_restart_backoff_doubles_and_resets_after_10s_up(docker, unique):
    since = time.time()
    cid = ok(docker("run", "-d", "--name", unique, "--restart", "always", "busybox", "sh", "-c",
                    FLAPPY)).stdout.strip()

    # During a backoff `docker ps` says so, with the last exit code and when it was.
    def restarting():
        line = ok(docker("ps", "-a", "--filter", f"id={cid}", "--format",
                         "{{.State}}|{{.Status}}")).stdout.strip()
        return line if line.startswith("restarting|") else None

    line = wait_for(restarting, what="a restarting status")
    assert re.fullmatch(r"restarting\|Restarting \(3\) (Less than a second|\d+ seconds?) ago",
                        line), line

    # Run 8 is the 7th restart: two restarts after the long run.
    wait_for(lambda: int(inspect(docker, unique, "{{.RestartCount}}")) >= 7, timeout=180,
             what="the 7th restart", every=0.2)
    ok(docker("rm", "-f", unique))
    rows = [l.split() for l in events(docker, since, f"container={cid}", "event=start",
                                      "event=die", fmt="{{.Action}} {{.TimeNano}}")]
    starts = [int(t) / 1e9 for a, t in rows if a == "start"]
    dies = [int(t) / 1e9 for a, t in rows if a == "die"]
    assert len(starts) >= 8 and len(dies) >= 7, rows
    # The k-th restart waits 100 ms * 2^(k-1) after the k-th exit: each gap is at least that.
    gaps = [starts[k + 1] - dies[k] for k in range(7)]
    for k in range(5):
        assert gaps[k] >= 0.1 * 2 ** k, (k, gaps)
        # StartedAt to StartedAt grows with them (runs 1-5 exit at once).
        assert starts[k + 1] - starts[k] >= 0.1 * 2 ** k, (k, starts)
    # Run 6 was up 11 s: the backoff started over at 100 ms instead of doubling to 3.2 s
    # (the bound is 32 times the expected delay), and doubles again from there.
    assert dies[5] - starts[5] >= 10, (starts, dies)
    assert gaps[5] < 3.2, ("no reset after 10 s up", gaps)
    assert gaps[6] >= 0.2, gaps
    print(f"gaps after each exit: {[round(g, 3) for g in gaps]}")


@pytest.mark.parametrize("action", ["rm", "stop"])
def test_rm_or_stop_cancels_a_pending_restart(docker, unique, wharfd, action):
    since = time.time()
    cid = ok(docker("run", "-d", "--name", unique, "--restart", "always", "busybox", "sh", "-c",
                    "exit 2")).stdout.strip()
    # The 6th run (the 5th restart's) has died and the 6th restart, 3.2 s later, has not
    # happened: RestartCount goes to 6 only when the backoff timer fires. (Seeing "restarting,
    # 5" alone could also be the instant the 5th restart is being made.)
    def in_long_backoff():
        dies = events(docker, since, f"container={cid}", "event=die", fmt="{{.Action}}")
        return len(dies) >= 6 and inspect(
            docker, unique, "{{.State.Restarting}} {{.RestartCount}}") == "true 5"

    wait_for(in_long_backoff, timeout=120, what="the backoff after the 5th restart's run",
             every=0.1)
    log_from = wharfd.log.stat().st_size
    if action == "rm":
        r = docker("rm", unique)
        assert r.returncode == 1 and "You cannot remove a restarting container" in r.stderr, r
        since = time.time()
        ok(docker("rm", "-f", unique))
    else:
        since = time.time()
        ok(docker("stop", unique))

    # Positive signal: the backoff timer ran out and found its restart cancelled.
    def cancelled():
        with open(wharfd.log, "rb") as f:
            f.seek(log_from)
            text = f.read().decode(errors="replace")
        return [l for l in text.splitlines() if "pending restart cancelled" in l and cid in l]

    wait_for(cancelled, timeout=60, what="the cancelled restart's log line")
    if action == "rm":
        assert events(docker, since, f"container={cid}", fmt="{{.Action}}") == ["destroy"]
        r = docker("inspect", unique)
        assert r.returncode == 1 and f"No such object: {unique}" in r.stderr
    else:
        # dockerd's stop of a restarting container: the stop event, no start.
        assert events(docker, since, f"container={cid}", fmt="{{.Action}}") == ["stop"]
        assert inspect(docker, unique, "{{.State.Status}} {{.State.Restarting}} "
                       "{{.RestartCount}}") == "exited false 5"


def health_log(docker, name):
    return json.loads(inspect(docker, name, "{{json .State.Health.Log}}")) or []


def started_after(entries, t):
    return [e for e in entries if rfc3339_seconds(e["Start"]) > t]


def test_no_probes_while_paused(docker, unique):
    paused, sibling = unique + "-p", unique + "-s"
    for n in (paused, sibling):
        ok(docker("run", "-d", "--name", n, "--health-cmd", "true", "--health-interval", "300ms",
                  "busybox", "sleep", "300"))
    wait_for(lambda: len(health_log(docker, paused)) >= 2, what="probes before the pause")
    ok(docker("pause", paused))
    paused_at = time.time()
    # Positive signal: the sibling, with the same interval, probes 4 times meanwhile.
    wait_for(lambda: len(started_after(health_log(docker, sibling), paused_at)) >= 4,
             what="4 probes of the sibling")
    assert started_after(health_log(docker, paused), paused_at) == []
    assert inspect(docker, paused, "{{.State.Status}} {{.State.Health.Status}}") == "paused healthy"
    ok(docker("unpause", paused))
    resumed_at = time.time()
    wait_for(lambda: started_after(health_log(docker, paused), resumed_at), what="probing to resume")


def test_probe_output_is_cut_at_4096_bytes(docker, unique):
    ok(docker("run", "-d", "--name", unique, "--health-cmd",
              "head -c 5000 /dev/zero | tr '\\0' a", "--health-interval", "300ms",
              "busybox", "sleep", "300"))
    [first] = wait_for(lambda: health_log(docker, unique)[:1], what="a probe")
    assert first["ExitCode"] == 0
    # dockerd's limitedBuffer: the first 4096 bytes, and "..." when there was more.
    assert first["Output"] == "a" * 4096 + "..."


def test_start_period_failures_count_only_once_a_probe_succeeded(docker, unique):
    # Fails while /ok is missing. With a long start period the failures do not count...
    ok(docker("run", "-d", "--name", unique, "--health-cmd", "test -f /ok", "--health-retries", "1",
              "--health-interval", "300ms", "--health-start-period", "1h",
              "--health-start-interval", "300ms", "busybox", "sleep", "300"))
    wait_for(lambda: len(health_log(docker, unique)) >= 3, what="3 failed probes")
    h = json.loads(inspect(docker, unique, "{{json .State.Health}}"))
    assert {e["ExitCode"] for e in h["Log"]} == {1}, h
    assert (h["Status"], h["FailingStreak"]) == ("starting", 0), h
    # ...one success ends the start period, and then a failure counts (retries 1: unhealthy).
    ok(docker("exec", unique, "touch", "/ok"))
    wait_for(lambda: inspect(docker, unique, "{{.State.Health.Status}}") == "healthy",
             what="healthy")
    ok(docker("exec", unique, "rm", "/ok"))
    wait_for(lambda: inspect(docker, unique, "{{.State.Health.Status}}") == "unhealthy",
             what="unhealthy")
    assert inspect(docker, unique, "{{.State.Health.FailingStreak}}") != "0"


def test_health_resets_to_starting_at_each_start(docker, unique):
    # Retries 100: failing probes leave the status where it was, so after the restart only the
    # reset can make it `starting` (without one it would stay `healthy`).
    ok(docker("run", "-d", "--name", unique, "--health-cmd", "test -f /ok", "--health-retries",
              "100", "--health-interval", "300ms", "busybox", "sleep", "300"))
    ok(docker("exec", unique, "touch", "/ok"))
    wait_for(lambda: inspect(docker, unique, "{{.State.Health.Status}}") == "healthy",
             what="healthy")
    ok(docker("exec", unique, "rm", "/ok"))
    wait_for(lambda: inspect(docker, unique, "{{.State.Health.FailingStreak}}") != "0",
             what="a failed probe")
    assert inspect(docker, unique, "{{.State.Health.Status}}") == "healthy"
    ok(docker("stop", "-t", "0", unique))
    started_at = time.time()
    ok(docker("start", unique))
    # Positive signal: a probe of the new run has failed.
    wait_for(lambda: [e for e in started_after(health_log(docker, unique), started_at)
                      if e["ExitCode"] == 1], what="a failed probe after the start")
    assert inspect(docker, unique, "{{.State.Health.Status}}") == "starting"
