"""The crash suite's machinery, shared by tests/crash/test_crash.py (short mode) and bench/crash
(long mode): a mixed workload of concurrent clients (docker CLI and docker-py) that journal
what wharfd told them, wharfd killed with SIGKILL (at a random moment, or by a test-only
failpoint), restarted on the same roots, and checked against the journal.

A client's operation is *acknowledged* when wharfd answered it; one that failed after the kill
began is *unknown* (it may or may not have happened, wholly or partly); one that failed while
wharfd was up is itself a violation. From the acknowledged and unknown operations each object
gets the set of states it may be in after the restart; anything else is a violation, and so is
anything on disk or in the kernel that no object owns (see `orphans`).
"""

import io
import os
import random
import re
import statistics
import tarfile
import threading
import time
import traceback
from dataclasses import dataclass, field

import wharfd_harness as H
from crash_checks import check_objects, freezer_state, orphans, remove_everything, settled_orphans  # noqa: F401
from crash_clients import BUSYBOX, SERVICE, CliClient, OpError, PyClient  # noqa: F401 (for the tests, bench/crash)
from crash_model import CREATED, EXITED, LIVE, MAYBE, NO, PAUSED, RUNNING, YES, Ctr, Img, Round, Vol

PING_BOUND = 1.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")
MAX_CONTAINERS = 6  # per client thread
MAX_IMAGES = 3
MAX_VOLUMES = 3


# ---------------------------------------------------------------- the workload


class Worker:
    """One client thread: picks operations on its own objects only, so each object's history is
    one sequence, and records each answer in the journal and the model."""

    def __init__(self, rnd, k, client, rng):
        self.r = rnd
        self.k = k
        self.c = client
        self.rng = rng
        self.who = f"{client.kind}{k}"
        self.seq = 0

    def name(self, what):
        self.seq += 1
        return f"crash-r{self.r.n}-{self.who}-{what}{self.seq}"

    # Each op: (name, weight, precondition on my objects). The precondition picks the target.
    def mine(self, pred):
        return [c for c in self.r.ctrs if c.owner == self.who and not c.busy and c.exists == YES and pred(c)]

    def my_imgs(self):
        return [i for i in self.r.imgs if i.owner == self.who and not i.busy and i.exists == YES]

    def my_vols(self):
        return [v for v in self.r.vols if v.owner == self.who and not v.busy and v.exists == YES]

    def choices(self):
        n = len(self.mine(lambda c: True))
        ops = []
        if n < MAX_CONTAINERS:
            ops += [("create", 2), ("run_d", 2), ("run_rm", 1)]
        if self.mine(lambda c: c.status <= {CREATED, EXITED}):
            ops.append(("start", 3))
        if self.mine(lambda c: c.status == {RUNNING}):
            ops += [("stop", 1), ("restart", 1), ("pause", 1), ("exec", 1)]
        if self.mine(lambda c: c.status == {PAUSED}):
            ops.append(("unpause", 2))
        if n:
            ops += [("rm_f", 2 if n < MAX_CONTAINERS else 6), ("rename", 1)]
        if len(self.my_imgs()) < MAX_IMAGES:
            ops.append(("import", 0.7))
        if self.my_imgs():
            ops += [("tag", 1), ("rmi", 1)]
        if n and len(self.my_imgs()) < MAX_IMAGES:
            ops.append(("commit", 0.5))
        if len(self.my_vols()) < MAX_VOLUMES:
            ops.append(("volume_create", 0.5))
        if self.my_vols():
            ops.append(("volume_rm", 0.5))
        return ops

    def run(self):
        try:
            while not self.r.stop.is_set():
                ops = self.choices()
                op = self.rng.choices([o for o, _ in ops], weights=[w for _, w in ops])[0]
                self.do(op)
        except Exception:
            self.r.violation(f"{self.who}: the workload crashed:\n{traceback.format_exc()}")
        finally:
            if hasattr(self.c, "close"):
                self.c.close()

    def do(self, op, target=None):
        """Runs one operation (on `target`, or a random fitting object of mine); returns True
        when it was acknowledged."""
        return getattr(self, f"op_{op}")(target)

    def _call(self, op, target, f, on_ok, on_unknown, creates=False):
        """Runs f(); journals it; updates the model through on_ok(result) or on_unknown(). An
        operation begun after wharfd was dead never reached it: what it `creates` (the
        target) does not exist."""
        t0 = time.monotonic()
        try:
            res = f()
        except OpError as e:
            t1 = time.monotonic()
            with self.r.lock:
                if self.r.kill_done is not None and t0 > self.r.kill_done:
                    if creates:
                        target.exists = NO
                    self.r.journal.add(self.who, op, str(target), t0, t1, "not sent", str(e)[:120])
                    return False
                cut = self.r.kill_started is not None
            with self.r.lock:
                on_unknown()
            self.r.journal.add(self.who, op, str(target), t0, t1, "UNKNOWN" if cut else "FAILED", str(e)[:300])
            if not cut:
                self.r.violation(f"{self.who} {op} {target} failed while wharfd was up: {e}")
            return False
        t1 = time.monotonic()
        with self.r.lock:
            detail = on_ok(res) or ""
        self.r.journal.add(self.who, op, str(target), t0, t1, "ok", detail)
        return True

    def _pick(self, target, pred):
        if target is not None:
            return target
        cs = self.mine(pred)
        return self.rng.choice(cs) if cs else None

    def _learn_pid(self, c):
        """The init's pid, from an inspect right after the acknowledged start (unknown if the
        kill cuts the inspect)."""
        try:
            pid = self.c.pid(c.id)
        except OpError:
            return
        with self.r.lock:
            if c.status == {RUNNING} and pid > 0:
                c.pid = pid

    # -- containers

    def op_create(self, _):
        name = self.name("c")
        c = Ctr(name, self.who, names={name}, status={CREATED})
        with self.r.lock:
            self.r.ctrs.append(c)

        def ok(cid):
            c.id = cid
            return cid[:12]

        def unknown():
            c.exists, c.busy = MAYBE, True
        return self._call("create", c, lambda: self.c.create(name), ok, unknown, creates=True)

    def op_create_vol(self, _):
        """A create that fills a new named volume from the image (failpoint `copy-up-partial`);
        not in the random mix, whose `volume_rm` does not know which volumes are in use."""
        name = self.name("cv")
        c = Ctr(name, self.who, names={name}, status={CREATED})
        v = Vol(self.name("cvv"), self.who, exists=MAYBE, busy=True)
        with self.r.lock:
            self.r.ctrs.append(c)
            self.r.vols.append(v)

        def ok(cid):
            c.id = cid
            v.exists = YES
            return cid[:12]

        def unknown():
            c.exists, c.busy = MAYBE, True
        return self._call("create -v", c, lambda: self.c.create_vol(name, v.name), ok, unknown,
                          creates=True)

    def op_run_d(self, _):
        name = self.name("d")
        c = Ctr(name, self.who, names={name}, status={RUNNING})
        with self.r.lock:
            self.r.ctrs.append(c)

        def ok(cid):
            c.id = cid
            return cid[:12]

        def unknown():
            c.exists, c.busy, c.status = MAYBE, True, {CREATED, RUNNING, EXITED}
        if self._call("run -d", c, lambda: self.c.run_d(name), ok, unknown, creates=True):
            self._learn_pid(c)
            return True
        return False

    def op_run_rm(self, _):
        name = self.name("rm")
        token = f"tok-{name}"
        c = Ctr(name, self.who, names={name}, status={CREATED, RUNNING, EXITED})
        with self.r.lock:
            self.r.ctrs.append(c)

        def ok(out):
            c.exists = NO
            if out.strip() != token:
                self.r.violations.append(f"round {self.r.n}: {self.who} run --rm {name}: printed {out!r}, "
                                         f"not {token!r}")
            return repr(out.strip())

        def unknown():
            c.exists, c.busy = MAYBE, True
        return self._call("run --rm", c, lambda: self.c.run_rm(name, token), ok, unknown, creates=True)

    def _simple(self, op, target, pred, f, ok_status, unknown_status, keep_pid_if_unknown, new_pid):
        c = self._pick(target, pred)
        if c is None:
            return False

        def ok(_):
            c.status = set(ok_status)
            if new_pid:
                c.pid = None
            elif not (c.status & set(LIVE)):
                c.pid = None

        def unknown():
            c.busy = True
            c.status = c.status | set(unknown_status)
            if not keep_pid_if_unknown:
                c.pid = None
        acked = self._call(op, c, lambda: f(c.id), ok, unknown)
        if acked and new_pid:
            self._learn_pid(c)
        return acked

    def op_start(self, t):
        # A start cut by the kill may end running or stopped (issue 12: never invisible).
        return self._simple("start", t, lambda c: c.status <= {CREATED, EXITED}, self.c.start,
                            {RUNNING}, {RUNNING, EXITED}, False, True)

    def op_stop(self, t):
        return self._simple("stop", t, lambda c: c.status == {RUNNING}, self.c.stop,
                            {EXITED}, {EXITED}, True, False)

    def op_restart(self, t):
        return self._simple("restart", t, lambda c: c.status == {RUNNING}, self.c.restart,
                            {RUNNING}, {EXITED}, False, True)

    def op_pause(self, t):
        return self._simple("pause", t, lambda c: c.status == {RUNNING}, self.c.pause,
                            {PAUSED}, {PAUSED}, True, False)

    def op_unpause(self, t):
        return self._simple("unpause", t, lambda c: c.status == {PAUSED}, self.c.unpause,
                            {RUNNING}, {RUNNING}, True, False)

    def op_rm_f(self, t):
        c = self._pick(t, lambda c: True)
        if c is None:
            return False

        def ok(_):
            c.exists = NO

        def unknown():
            # Cut after killing the process and before deleting the record: exited.
            c.exists, c.busy, c.status = MAYBE, True, c.status | {EXITED}
        return self._call("rm -f", c, lambda: self.c.rm_f(c.id), ok, unknown)

    def op_rename(self, t):
        c = self._pick(t, lambda c: True)
        if c is None:
            return False
        new = self.name("n")

        def ok(_):
            c.names = {new}

        def unknown():
            c.busy = True
            c.names = c.names | {new}
        return self._call("rename", c, lambda: self.c.rename(c.id, new), ok, unknown)

    def op_exec(self, t):
        c = self._pick(t, lambda c: c.status == {RUNNING})
        if c is None:
            return False
        token = f"tok-{self.name('x')}"

        def ok(out):
            if out.strip() != token:
                self.r.violations.append(f"round {self.r.n}: {self.who} exec in {c}: printed {out!r}, "
                                         f"not {token!r}")
            return repr(out.strip())

        def unknown():
            c.busy = True
        return self._call("exec", c, lambda: self.c.exec(c.id, token), ok, unknown)

    # -- images

    def op_import_own(self, _):
        return self.op_import(None, own=True)

    def op_import(self, _, own=None):
        ref = f"{self.name('i')}:v1"
        i = Img(ref, self.who, tags={ref: YES})
        with self.r.lock:
            self.r.imgs.append(i)

        def ok(iid):
            i.id = iid
            return iid[:19]

        def unknown():
            i.exists, i.busy, i.tags = MAYBE, True, {ref: MAYBE}
        # Half the imports bring a layer of their own (a cut import or rmi can then leave a
        # layer blob and snapshot behind), half share busybox's.
        if own is None:
            own = self.rng.random() < 0.5
        tar = own_layer(self.r.d.dir / f"{ref.split(':')[0]}.tar", ref) if own else self.r.tar
        try:
            return self._call("import", i, lambda: self.c.import_(tar, ref), ok, unknown, creates=True)
        finally:
            if tar != self.r.tar:
                tar.unlink()

    def op_commit(self, t):
        c = self._pick(t, lambda c: True)
        if c is None:
            return False
        ref = f"{self.name('m')}:v1"
        i = Img(ref, self.who, tags={ref: YES})
        with self.r.lock:
            self.r.imgs.append(i)
        was = set(c.status)

        def ok(iid):
            i.id = iid
            return iid[:19]

        def unknown():
            i.exists, i.busy, i.tags = MAYBE, True, {ref: MAYBE}
            # A running container is paused for the commit: cut then, it stays paused.
            c.busy = True
            if RUNNING in was:
                c.status = c.status | {PAUSED}
        return self._call("commit", i, lambda: self.c.commit(c.id, ref), ok, unknown, creates=True)

    def _pick_img(self, target):
        if target is not None:
            return target
        imgs = self.my_imgs()
        return self.rng.choice(imgs) if imgs else None

    def op_tag(self, t):
        i = self._pick_img(t)
        if i is None:
            return False
        ref = f"{self.name('t')}:v1"

        def ok(_):
            i.tags[ref] = YES

        def unknown():
            i.busy = True
            i.tags[ref] = MAYBE
        return self._call("tag", i, lambda: self.c.tag(i.id, ref), ok, unknown)

    def op_rmi(self, t):
        i = self._pick_img(t)
        if i is None:
            return False
        live = [r for r, s in i.tags.items() if s == YES]
        by_tag = live and self.rng.random() < 0.5
        ref = self.rng.choice(live) if by_tag else i.id

        def ok(_):
            if by_tag and len(live) > 1:
                i.tags[ref] = NO
            else:
                i.exists = NO
                i.tags = {r: NO for r in i.tags}

        def unknown():
            i.busy = True
            if by_tag and len(live) > 1:
                i.tags[ref] = MAYBE
            else:
                i.exists = MAYBE
                i.tags = {r: (MAYBE if s != NO else NO) for r, s in i.tags.items()}
        return self._call("rmi", f"{i} by {ref[:24]}", lambda: self.c.rmi(ref, force=not by_tag), ok, unknown)


    def op_volume_create(self, _):
        v = Vol(self.name("v"), self.who)
        with self.r.lock:
            self.r.vols.append(v)

        def unknown():
            v.exists, v.busy = MAYBE, True
        return self._call("volume_create", v, lambda: self.c.volume_create(v.name), lambda _: None,
                          unknown, creates=True)

    def op_volume_rm(self, t):
        if t is None:
            vols = self.my_vols()
            t = self.rng.choice(vols) if vols else None
        if t is None:
            return False

        def ok(_):
            t.exists = NO

        def unknown():
            t.exists, t.busy = MAYBE, True
        return self._call("volume_rm", t, lambda: self.c.volume_rm(t.name), ok, unknown)


def own_layer(path, name):
    """A small tar of a layer no other import has: one file with `name` and random bytes."""
    data = f"{name}\n".encode() + os.urandom(4096)
    with tarfile.open(path, "w") as t:
        info = tarfile.TarInfo(f"crash/{name}")
        info.size = len(data)
        info.mode = 0o644
        t.addfile(info, io.BytesIO(data))
    return path


# Operation -> how to make its target with acknowledged operations first (the failpoint mode
# runs these, then arms the point, then the operation itself).
PREPARE = {
    "create": [], "run_d": [], "run_rm": [], "import": [], "import_own": [],
    "start": ["create"], "rm_f": ["run_d"], "rename": ["run_d"],
    "stop": ["run_d"], "restart": ["run_d"], "pause": ["run_d"], "exec": ["run_d"],
    "unpause": ["run_d", "pause"],
    "tag": ["import"], "rmi": ["import_own"], "commit": ["run_d"],
    "volume_create": [], "volume_rm": ["volume_create"], "create_vol": [],
}


# ---------------------------------------------------------------- rounds


@dataclass
class Result:
    rounds: int = 0
    violations: list = field(default_factory=list)
    pings: list = field(default_factory=list)  # seconds from exec to the first answered /_ping
    kills: list = field(default_factory=list)  # seconds into the round of each random kill
    failures: list = field(default_factory=list)  # full messages (journal, log) per bad round

    def summary(self):
        p = sorted(self.pings)
        ping = (f"restart-to-/_ping median {statistics.median(p) * 1000:.0f} ms, "
                f"max {max(p) * 1000:.0f} ms (n={len(p)})") if p else "no restarts"
        return f"{self.rounds} rounds, {len(self.violations)} violations, {ping}"


class Suite:
    """A wharfd of the suite's own plus a docker-py client on it."""

    def __init__(self, daemon, tar):
        import docker

        self.d = daemon
        self.tar = tar
        self.api = docker.APIClient(base_url=daemon.host, timeout=60)
        # Leftovers already reported that nothing removed, and containers that `rm -f` could
        # not remove: a later round does not count them again.
        self.leftovers = set()
        self.stale = set()

    def reconnect(self):
        import docker

        self.api.close()
        self.api = docker.APIClient(base_url=self.d.host, timeout=60)

    def clients(self, n):
        """n clients, alternating docker CLI and docker-py."""
        return [CliClient(self.d) if k % 2 == 0 else PyClient(self.d) for k in range(n)]

    def _log_offset(self):
        try:
            return self.d.log.stat().st_size
        except OSError:
            return 0

    def _log_since(self, offset, lines=80):
        try:
            with open(self.d.log, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except OSError as e:
            return f"<cannot read the log: {e}>"
        # Without the colours, and without the one-line-per-request noise of --log-level debug.
        ls = [ANSI.sub("", line) for line in text.splitlines()]
        ls = [line for line in ls if "wharf_server::versioning" not in line]
        return "\n".join(ls[-lines:])

    def restart(self, rnd, res):
        t = self.d.restart()
        res.pings.append(t)
        if t > PING_BOUND:
            rnd.violation(f"wharfd answered /_ping {t:.3f} s after its exec (bound {PING_BOUND} s)")
        self.reconnect()

    def finish(self, rnd, res, log_offset):
        """Checks after the restart, then removes everything and checks nothing is left. A
        leftover that nothing can remove is reported in the round it appeared, not again."""
        try:
            check_objects(rnd, self.api, self.stale)
            found = settled_orphans(self.d, self.api, self.leftovers)
            for o in found:
                rnd.violation(o)
            self.leftovers |= set(found)
        except Exception:
            rnd.violation(f"checking failed:\n{traceback.format_exc()}")
        try:
            remove_everything(rnd, self.api, self.leftovers, self.stale)
        except Exception:
            rnd.violation(f"removing everything failed:\n{traceback.format_exc()}")
        try:
            self.leftovers = set(orphans(self.d, self.api))
            self.stale = {c["Id"] for c in self.api.containers(all=True)}
        except Exception:
            rnd.violation(f"listing leftovers failed:\n{traceback.format_exc()}")
        res.rounds += 1
        if rnd.violations:
            res.violations += rnd.violations
            res.failures.append("\n".join(rnd.violations) + f"\n-- journal of round {rnd.n}:\n"
                                + rnd.journal.text() + f"\n-- wharfd log of round {rnd.n} (last lines):\n"
                                + self._log_since(log_offset))

    def random_round(self, n, res, rng, threads=4, kill_after=(0.5, 4.0)):
        """Concurrent clients run the mixed workload; wharfd is SIGKILLed after a random
        0.5-4 s, restarted on the same roots, and checked."""
        rnd = Round(n, self.d, self.tar)
        offset = self._log_offset()
        workers = [Worker(rnd, k, c, random.Random(rng.random())) for k, c in enumerate(self.clients(threads))]
        ts = [threading.Thread(target=w.run, name=w.who, daemon=True) for w in workers]
        for t in ts:
            t.start()
        delay = rng.uniform(*kill_after)
        time.sleep(delay)
        res.kills.append(delay)
        with rnd.lock:
            rnd.kill_started = time.monotonic()
        self.d.kill9()
        rnd.kill_done = time.monotonic()
        rnd.stop.set()
        for t in ts:
            t.join(180)
            if t.is_alive():
                rnd.violation(f"client {t.name} still busy 180 s after the kill")
        self.restart(rnd, res)
        self.finish(rnd, res, offset)
        return rnd

    def failpoint_round(self, n, res, point):
        """Prepares the point's operation's target with acknowledged operations, arms the
        point, runs the operation (wharfd kills itself there, or the shim holds there while
        the harness kills wharfd), restarts wharfd and checks."""
        rnd = Round(n, self.d, self.tar)
        offset = self._log_offset()
        client = PyClient(self.d) if point.client == "py" else CliClient(self.d)
        w = Worker(rnd, 0, client, random.Random(n))
        for pre in PREPARE[point.op]:
            if not w.do(pre):
                rnd.violation(f"failpoint {point.name}: preparing {pre} failed")
        armed = self.d.dir / "exec" / "failpoints" / point.name
        reached = armed.with_name(point.name + ".reached")
        armed.parent.mkdir(exist_ok=True)
        armed.write_text("")
        with rnd.lock:
            # Any answer from now on may be cut: the op is the journal's "unknown".
            rnd.kill_started = time.monotonic()
        rnd.kill_done = float("inf")
        op = threading.Thread(target=w.do, args=(point.op,), daemon=True)
        op.start()
        try:
            if point.kind == "kill":
                if not _wait(lambda: self.d.proc.poll() is not None, 60):
                    rnd.violation(f"failpoint {point.name}: wharfd did not reach it within 60 s "
                                  f"(operation {point.op}; built with --features wharfd/failpoints?)")
                self.d.kill9()  # reaps it (or kills it, if the point was never reached)
                armed.unlink()
                op.join(120)
                self.restart(rnd, res)
            else:
                if not _wait(reached.exists, 60):
                    rnd.violation(f"failpoint {point.name}: the shim did not reach it within 60 s "
                                  f"(built with --features wharf-shim/failpoints?)")
                self.d.kill9()
                op.join(120)
                # Released once the restarted wharfd's restore says it waits for the launch;
                # the restart's /_ping time then includes that wait, so it is not counted.
                releaser = threading.Thread(target=_release_when, daemon=True,
                                            args=(self.d.log, offset, point.release_on, armed))
                releaser.start()
                self.d.restart()
                releaser.join(120)
                if armed.exists():
                    armed.unlink()
                    rnd.violation(f"failpoint {point.name}: restore never logged {point.release_on!r}")
                self.reconnect()
        finally:
            for f in (armed, reached):
                if f.exists():
                    f.unlink()
        self.finish(rnd, res, offset)
        return rnd


def _wait(pred, bound):
    deadline = time.monotonic() + bound
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _release_when(log, offset, needle, armed):
    def seen():
        try:
            with open(log, "rb") as f:
                f.seek(offset)
                return needle.encode() in f.read()
        except OSError:
            return False
    if _wait(seen, 90):
        armed.unlink()


@dataclass
class Failpoint:
    """A test-only point (docs/architecture.md, "Restore"), armed by creating
    `<exec-root>/failpoints/<name>`, and the workload operation that reaches it.

    kind "kill": wharfd SIGKILLs itself there (crates/wharf-engine/src/failpoint.rs).
    kind "hold": the shim waits there (crates/wharf-shim/src/failpoint.rs) while the harness
    kills wharfd and restarts it; it is released when the new wharfd's log says `release_on`."""
    name: str
    op: str  # a Worker operation (Worker.op_<op>); PREPARE says what it needs first
    kind: str = "kill"
    client: str = "py"  # "py" (docker-py) or "cli"
    release_on: str = None


# One row (or more) per failpoint: the operation that reaches it. The suite runs the rows whose
# point this tree's failpoint.rs files define (`points_in_source`), and fails if one of those has
# no row; the rows of points another branch adds are ready for when it merges.
FAILPOINTS = [
    Failpoint("start-launched", "start"),
    Failpoint("start-launched", "run_d", client="cli"),
    Failpoint("shim-setup-bound", "start", kind="hold", release_on="waiting for a launch"),
    Failpoint("create-prepared", "create"),
    Failpoint("create-prepared", "run_rm", client="cli"),
    Failpoint("rename-saved", "rename"),
    Failpoint("rm-record-deleted", "rm_f"),
    Failpoint("pause-frozen", "pause"),
    Failpoint("unpause-thawed", "unpause"),
    Failpoint("exec-started", "exec"),
    Failpoint("import-layer-stored", "import_own"),
    Failpoint("import-blobs-stored", "import_own", client="cli"),
    Failpoint("rmi-record-deleted", "rmi"),
    Failpoint("commit-layer-stored", "commit"),
    Failpoint("commit-blobs-stored", "commit", client="cli"),
    Failpoint("volume-dir-made", "volume_create"),
    Failpoint("volume-record-deleted", "volume_rm", client="cli"),
    Failpoint("copy-up-partial", "create_vol"),
    Failpoint("copy-up-partial", "create_vol", client="cli"),
]
FAILPOINT_SOURCES = [H.REPO / "crates" / "wharf-engine" / "src" / "failpoint.rs",
                     H.REPO / "crates" / "wharf-shim" / "src" / "failpoint.rs"]


def points_in_source():
    """The failpoint names this tree defines (`const X: &str = "name";` in FAILPOINT_SOURCES)."""
    names = set()
    for f in FAILPOINT_SOURCES:
        names |= set(re.findall(r'const [A-Z_]+: &str = "([a-z0-9-]+)";', f.read_text()))
    return names


def suite_daemon(name, binary=None, start_timeout=H.START_TIMEOUT):
    """A started wharfd named `name` with busybox imported; the caller cleans it up."""
    d = H.WharfDaemon(name, binary or H.wharfd_bin(), start_timeout=start_timeout)
    d.start()
    tar = H.make_busybox_tar(d.dir / "busybox.tar")
    H.run_docker(d, "import", str(tar), "busybox", check=True, timeout=120)
    return d, tar


def env_int(name, default):
    v = os.environ.get(name, "").strip()
    return int(v) if v else default
