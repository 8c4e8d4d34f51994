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

import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import wharfd_harness as H

BUSYBOX = "busybox:latest"
YES, NO, MAYBE = "yes", "no", "maybe"
# A container's possible `State.Status` values after the restart.
CREATED, RUNNING, PAUSED, EXITED = "created", "running", "paused", "exited"
LIVE = (RUNNING, PAUSED, "restarting")
ID_IN_PATH = re.compile(r"/containers/([0-9a-f]{64})(?:/|\s|$)")
PING_BOUND = 1.0
SETTLE = 20.0  # bound for asynchronous teardown to finish before leftovers are violations
MAX_CONTAINERS = 6  # per client thread
MAX_IMAGES = 3


class OpError(Exception):
    pass


# ---------------------------------------------------------------- clients


class CliClient:
    """The docker CLI, one subprocess per operation."""

    kind = "cli"

    def __init__(self, daemon):
        self.d = daemon

    def _run(self, *args, timeout=60):
        try:
            r = H.run_docker(self.d, *args, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise OpError(f"docker {' '.join(args)}: timed out after {timeout}s") from e
        if r.returncode != 0:
            raise OpError(f"docker {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        return r.stdout

    def create(self, name):
        return self._run("create", "--name", name, BUSYBOX, "sleep", "1000").strip()

    def run_d(self, name):
        return self._run("run", "-d", "--name", name, BUSYBOX, "sleep", "1000").strip()

    def run_rm(self, name, token):
        return self._run("run", "--rm", "--name", name, BUSYBOX, "echo", token)

    def start(self, cid):
        self._run("start", cid)

    def stop(self, cid):
        self._run("stop", "-t", "1", cid)

    def restart(self, cid):
        self._run("restart", "-t", "1", cid)

    def rm_f(self, cid):
        self._run("rm", "-f", cid)

    def rename(self, cid, new):
        self._run("rename", cid, new)

    def pause(self, cid):
        self._run("pause", cid)

    def unpause(self, cid):
        self._run("unpause", cid)

    def exec(self, cid, token):
        return self._run("exec", cid, "echo", token)

    def import_(self, tar, ref):
        return self._run("import", str(tar), ref, timeout=120).strip()

    def tag(self, src, ref):
        self._run("tag", src, ref)

    def rmi(self, ref, force):
        self._run("rmi", *(["-f"] if force else []), ref)

    def pid(self, cid):
        return int(self._run("inspect", "-f", "{{.State.Pid}}", cid).strip())


class PyClient:
    """docker-py 7.1, one client per thread."""

    kind = "py"

    def __init__(self, daemon):
        import docker

        self.errors = (docker.errors.DockerException, OSError, ValueError)
        self.c = docker.DockerClient(base_url=daemon.host, timeout=60)
        self.api = self.c.api

    def _do(self, what, f, *a, **kw):
        try:
            return f(*a, **kw)
        except self.errors as e:
            raise OpError(f"{what}: {type(e).__name__}: {e}") from e

    def create(self, name):
        return self._do("create", self.api.create_container, BUSYBOX, ["sleep", "1000"], name=name)["Id"]

    def run_d(self, name):
        return self._do("run -d", lambda: self.c.containers.run(BUSYBOX, ["sleep", "1000"], name=name,
                                                                 detach=True).id)

    def run_rm(self, name, token):
        out = self._do("run --rm", self.c.containers.run, BUSYBOX, ["echo", token], name=name, remove=True)
        return out.decode(errors="replace")

    def start(self, cid):
        self._do("start", self.api.start, cid)

    def stop(self, cid):
        self._do("stop", self.api.stop, cid, timeout=1)

    def restart(self, cid):
        self._do("restart", self.api.restart, cid, timeout=1)

    def rm_f(self, cid):
        self._do("rm -f", self.api.remove_container, cid, force=True)

    def rename(self, cid, new):
        self._do("rename", self.api.rename, cid, new)

    def pause(self, cid):
        self._do("pause", self.api.pause, cid)

    def unpause(self, cid):
        self._do("unpause", self.api.unpause, cid)

    def exec(self, cid, token):
        def go():
            e = self.api.exec_create(cid, ["echo", token])
            out = self.api.exec_start(e["Id"])
            code = self.api.exec_inspect(e["Id"])["ExitCode"]
            if code != 0:
                raise OpError(f"exec exited {code}: {out!r}")
            return out.decode(errors="replace")
        return self._do("exec", go)

    def import_(self, tar, ref):
        repo, tag = ref.rsplit(":", 1)
        out = self._do("import", self.api.import_image_from_file, str(tar), repository=repo, tag=tag)
        ids = re.findall(r"sha256:[0-9a-f]{64}", out if isinstance(out, str) else str(out))
        if not ids:
            raise OpError(f"import: no image id in {out!r}")
        return ids[-1]

    def tag(self, src, ref):
        repo, tag = ref.rsplit(":", 1)
        if not self._do("tag", self.api.tag, src, repo, tag):
            raise OpError("tag: not acknowledged")

    def rmi(self, ref, force):
        self._do("rmi", self.api.remove_image, ref, force=force)

    def pid(self, cid):
        return int(self._do("inspect", self.api.inspect_container, cid)["State"]["Pid"])

    def close(self):
        self.c.close()


# ---------------------------------------------------------------- what the clients were told


@dataclass
class Ctr:
    """A container as the journal knows it. `status` is the set of `State.Status` values it may
    show after the restart; `pid` the init it must still have if it runs (None: any)."""
    handle: str
    owner: str
    id: str = None
    names: set = field(default_factory=set)
    exists: str = YES
    status: set = field(default_factory=set)
    pid: int = None
    busy: bool = False  # an operation on it failed: the workload leaves it alone

    def __str__(self):
        return f"container {self.handle} ({(self.id or '?')[:12]}, names {sorted(self.names)})"


@dataclass
class Img:
    handle: str
    owner: str
    id: str = None
    tags: dict = field(default_factory=dict)  # ref -> YES/NO/MAYBE
    exists: str = YES
    busy: bool = False

    def __str__(self):
        return f"image {self.handle} ({(self.id or '?')[:19]}, tags {self.tags})"


class Journal:
    def __init__(self):
        self.lock = threading.Lock()
        self.entries = []
        self.t_base = time.monotonic()

    def add(self, who, op, target, t0, t1, outcome, detail=""):
        with self.lock:
            self.entries.append((t0, t1, who, op, target, outcome, detail))

    def text(self, last=None):
        with self.lock:
            es = sorted(self.entries)
        if last:
            es = es[-last:]
        return "\n".join(f"  {t0 - self.t_base:7.3f}-{t1 - self.t_base:7.3f} {who:6} {op:8} {target:42} {outcome}"
                         f"{': ' + detail if detail else ''}" for t0, t1, who, op, target, outcome, detail in es)


class Round:
    """One round's shared state: the objects, the journal, the kill's time, the violations."""

    def __init__(self, number, daemon, tar):
        self.n = number
        self.d = daemon
        self.tar = tar
        self.journal = Journal()
        self.ctrs = []
        self.imgs = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.kill_started = None  # monotonic time the SIGKILL was about to be sent
        self.kill_done = None  # ... and wharfd was dead (an operation begun later never reached it)
        self.violations = []

    def violation(self, what):
        with self.lock:
            self.violations.append(f"round {self.n}: {what}")


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

    def _call(self, op, target, f, on_ok, on_unknown):
        """Runs f(); journals it; updates the model through on_ok(result) or on_unknown()."""
        t0 = time.monotonic()
        try:
            res = f()
        except OpError as e:
            t1 = time.monotonic()
            with self.r.lock:
                if self.r.kill_done is not None and t0 > self.r.kill_done:
                    self.r.journal.add(self.who, op, str(target), t0, t1, "not sent", str(e)[:120])
                    return False
                cut = self.r.kill_started is not None
            self.r.journal.add(self.who, op, str(target), t0, t1, "UNKNOWN" if cut else "FAILED", str(e)[:300])
            with self.r.lock:
                on_unknown()
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
        return self._call("create", c, lambda: self.c.create(name), ok, unknown)

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
        if self._call("run -d", c, lambda: self.c.run_d(name), ok, unknown):
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
        return self._call("run --rm", c, lambda: self.c.run_rm(name, token), ok, unknown)

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

    def op_import(self, _):
        ref = f"{self.name('i')}:v1"
        i = Img(ref, self.who, tags={ref: YES})
        with self.r.lock:
            self.r.imgs.append(i)

        def ok(iid):
            i.id = iid
            return iid[:19]

        def unknown():
            i.exists, i.busy, i.tags = MAYBE, True, {ref: MAYBE}
        return self._call("import", i, lambda: self.c.import_(self.r.tar, ref), ok, unknown)

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


# Operation -> how to make its target with acknowledged operations first (the failpoint mode
# runs these, then arms the point, then the operation itself).
PREPARE = {
    "create": [], "run_d": [], "run_rm": [], "import": [],
    "start": ["create"], "rm_f": ["run_d"], "rename": ["run_d"],
    "stop": ["run_d"], "restart": ["run_d"], "pause": ["run_d"], "exec": ["run_d"],
    "unpause": ["run_d", "pause"],
    "tag": ["import"], "rmi": ["import"],
}


# ---------------------------------------------------------------- checks


def _inspect_or_none(api, what, f):
    import docker

    try:
        return f(what)
    except docker.errors.NotFound:
        return None


def _pid_in_cgroup_of(pid, cid):
    try:
        return cid in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def check_objects(rnd, api):
    """Every object is where the journal says it may be."""
    v = rnd.violation
    listed = {c["Id"]: c for c in api.containers(all=True)}
    accounted = set()
    for c in rnd.ctrs:
        if c.id is not None:
            i = _inspect_or_none(api, c.id, api.inspect_container)
        else:
            # An unacknowledged create: only its name can find it.
            i = next((_inspect_or_none(api, n, api.inspect_container) for n in sorted(c.names)
                      if _inspect_or_none(api, n, api.inspect_container)), None)
        if i is None:
            if c.exists == YES:
                v(f"{c}: acknowledged and not removed, but inspect finds nothing")
            if c.id and c.id in listed:
                v(f"{c}: listed by ps -a but inspect says no such container")
            continue
        accounted.add(i["Id"])
        if c.exists == NO:
            v(f"{c}: its removal was acknowledged, but it exists: {i['State']}")
            continue
        name = i["Name"].lstrip("/")
        if name not in c.names:
            v(f"{c}: named {name!r}")
        if i["Id"] not in listed:
            v(f"{c}: inspect finds it but ps -a does not list it")
        st = i["State"]
        status = st["Status"]
        if status not in c.status:
            v(f"{c}: status {status!r}, expected one of {sorted(c.status)}: {st}")
        running = st["Running"]
        if running != (status in LIVE):
            v(f"{c}: inconsistent state {st}")
        if running:
            pid = st["Pid"]
            if not (pid > 0 and H.is_alive(pid)):
                v(f"{c}: says running with pid {pid}, which is not alive")
            elif not _pid_in_cgroup_of(pid, i["Id"]):
                v(f"{c}: its pid {pid} is not in the container's cgroup")
            if c.pid is not None and pid != c.pid:
                v(f"{c}: runs with pid {pid}, not the {c.pid} it had before the kill")
            if st["Paused"] != (status == PAUSED):
                v(f"{c}: Paused {st['Paused']} with status {status}")
        elif st["Pid"] != 0:
            v(f"{c}: not running, but pid {st['Pid']}")
    for cid, c in listed.items():
        if cid not in accounted:
            v(f"container {cid[:12]} {c.get('Names')} ({c.get('State')}): no client created it")

    busybox = api.inspect_image(BUSYBOX)["Id"]
    images = {i["Id"]: i for i in api.images(all=True)}
    accounted = {busybox}
    unknown_imports = 0
    for m in rnd.imgs:
        i = _inspect_or_none(api, m.id, api.inspect_image) if m.id else None
        if i is None and m.id is None:
            unknown_imports += 1
            i = next((_inspect_or_none(api, r, api.inspect_image) for r in m.tags
                      if _inspect_or_none(api, r, api.inspect_image)), None)
        if i is None:
            if m.exists == YES:
                v(f"{m}: acknowledged and not removed, but inspect finds nothing")
            continue
        accounted.add(i["Id"])
        if m.exists == NO:
            v(f"{m}: its removal was acknowledged, but it exists")
        tags = set(i.get("RepoTags") or [])
        for ref, s in m.tags.items():
            if s == YES and ref not in tags:
                v(f"{m}: acknowledged tag {ref} missing (tags {sorted(tags)})")
            if s == NO and ref in tags:
                v(f"{m}: removed tag {ref} still there")
        for t in tags - set(m.tags):
            v(f"{m}: has tag {t} that no client gave it")
    strays = [iid for iid in images if iid not in accounted]
    # An import cut before its tag can leave an untagged image: one per unknown import at most.
    if len(strays) > unknown_imports:
        v(f"images no client accounts for: {[(s[:19], images[s].get('RepoTags')) for s in strays]}")


def _meta(data_root):
    """(images, snapshots) rows from meta.db, read-only."""
    con = sqlite3.connect(f"file:{data_root / 'meta.db'}?mode=ro", uri=True, timeout=10)
    try:
        imgs = con.execute("SELECT id, manifest_digest, config_digest, chain_id FROM images").fetchall()
        snaps = con.execute("SELECT key, id, parent, kind FROM snapshots").fetchall()
    finally:
        con.close()
    return imgs, snaps


def _root(pid):
    try:
        return os.readlink(f"/proc/{pid}/root")
    except OSError:
        return ""


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _rooted_under(dir_):
    """Processes whose root directory is under dir_: container processes, whatever their
    cgroup or command line."""
    prefix = f"{dir_}/"
    return [int(e) for e in os.listdir("/proc")
            if e.isdigit() and _root(int(e)).startswith(prefix) and H.is_alive(int(e))]


def orphans(daemon, api):
    """What exists that no object owns, and what an object owns that is missing. Containers and
    images come from the API; everything else from /proc, the cgroup tree, mountinfo, the roots
    and meta.db (docs/architecture.md, "State on disk")."""
    out = []
    data, execr = daemon.dir / "data", daemon.dir / "exec"
    ctrs = {c["Id"]: api.inspect_container(c["Id"]) for c in api.containers(all=True)}
    live = {cid for cid, i in ctrs.items() if i["State"]["Running"]}

    wharfd = daemon.proc.pid if daemon.proc else None
    for pid in _rooted_under(daemon.dir):
        cmd = _cmdline(pid)
        m = ID_IN_PATH.search(_root(pid) + "/")
        if not m or m.group(1) not in live:
            out.append(f"container process {pid} of no running container (root {_root(pid)}): {cmd[:100]}")
    for pid in H.pids_mentioning(f"{daemon.dir}/"):
        if pid == wharfd or not H.is_alive(pid):
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        m = ID_IN_PATH.search(cmd)
        if not m or m.group(1) not in live:
            out.append(f"process {pid} that no running container owns: {cmd[:200]}")
    for top in H.cgroup_dirs(daemon.cgroup_parent):
        for p in H.cgroup_procs(top):
            out.append(f"process {p} in the cgroup parent itself: {top}")
        for d in sorted(top.iterdir()):
            if not d.is_dir():
                continue
            if d.name not in live:
                out.append(f"cgroup {d} of no running container (procs {H.cgroup_procs(d)})")
    for mp in H.mounts_under(daemon.dir):
        m = ID_IN_PATH.search(mp + "/")
        if not (mp.startswith(f"{execr}/containers/") and m and m.group(1) in live):
            out.append(f"mount {mp} that no running container owns")
    for sub in ("containers", "runtime"):
        p = execr / sub
        for e in sorted(p.iterdir()) if p.is_dir() else []:
            if e.name not in live:
                state = ctrs.get(e.name, {}).get("State", {}).get("Status", "no record")
                out.append(f"exec-root {sub}/{e.name} of a container that is not running ({state})")
    for cid in live:
        if not (execr / "containers" / cid / "shim.pid").exists():
            out.append(f"running container {cid[:12]} has no shim.pid in its exec dir")
    p = data / "containers"
    for e in sorted(p.iterdir()) if p.is_dir() else []:
        if e.name not in ctrs:
            out.append(f"data-root containers/{e.name} without a container")

    imgs, snaps = _meta(data)
    chains = {chain for _, _, _, chain in imgs}
    keys = {k for k, _, _, _ in snaps}
    parents = {p for k, _, p, kind in snaps if kind == "active" and p}
    for key, sid, parent, kind in snaps:
        if key.startswith("container-"):
            if key[len("container-"):] not in ctrs:
                out.append(f"snapshot {key} (#{sid}) of no container")
        elif kind != "committed" or (key not in chains and key not in parents):
            out.append(f"{kind} snapshot {key} (#{sid}) that no image or container uses")
        if not (data / "snapshots" / str(sid)).is_dir():
            out.append(f"snapshot {key}: its directory snapshots/{sid} is missing")
    ids = {str(sid) for _, sid, _, _ in snaps}
    p = data / "snapshots"
    for e in sorted(p.iterdir()) if p.is_dir() else []:
        if e.name not in ids:
            out.append(f"snapshot directory {e} without a snapshot record")
    for cid in ctrs:
        if f"container-{cid}" not in keys:
            out.append(f"container {cid[:12]} has no writable layer snapshot")
    for iid, _, _, chain in imgs:
        if chain not in keys:
            out.append(f"image {iid[:19]}: its layer snapshot {chain} is missing")

    blobs_dir = data / "content" / "blobs" / "sha256"
    blobs = {f"sha256:{e.name}" for e in blobs_dir.iterdir()} if blobs_dir.is_dir() else set()
    wanted = set()
    for iid, manifest, config, _ in imgs:
        wanted |= {manifest, config}
        try:
            m = json.loads((blobs_dir / manifest.split(":", 1)[1]).read_bytes())
            wanted |= {layer["digest"] for layer in m.get("layers", [])}
        except (OSError, ValueError, KeyError) as e:
            out.append(f"image {iid[:19]}: manifest {manifest} unreadable: {e}")
    for b in sorted(blobs - wanted):
        out.append(f"blob {b} that no image uses")
    for b in sorted(wanted - blobs):
        out.append(f"blob {b} an image uses is missing")
    ingest = data / "content" / "ingest"
    for e in sorted(ingest.iterdir()) if ingest.is_dir() else []:
        out.append(f"ingest file {e} left")
    return out


def settled_orphans(daemon, api, bound=SETTLE):
    """`orphans`, given up to `bound` s to become empty (a removal tears down in the background);
    what is still there then."""
    deadline = time.monotonic() + bound
    while True:
        o = orphans(daemon, api)
        if not o or time.monotonic() > deadline:
            return o
        time.sleep(0.2)


def remove_everything(rnd, api):
    """`rm -f` of every container and `rmi -f` of every image but busybox; each must work."""
    import docker

    for c in api.containers(all=True):
        try:
            api.remove_container(c["Id"], force=True)
        except docker.errors.DockerException as e:
            rnd.violation(f"container {c['Id'][:12]} {c.get('Names')}: rm -f failed: {e}")
    busybox = api.inspect_image(BUSYBOX)["Id"]
    for i in api.images(all=True):
        if i["Id"] != busybox:
            try:
                api.remove_image(i["Id"], force=True)
            except docker.errors.DockerException as e:
                rnd.violation(f"image {i['Id'][:19]} {i.get('RepoTags')}: rmi -f failed: {e}")
    left = [c["Id"][:12] for c in api.containers(all=True)]
    if left:
        rnd.violation(f"containers left after rm -f of all: {left}")
    imgs = [i["Id"][:19] for i in api.images(all=True) if i["Id"] != busybox]
    if imgs:
        rnd.violation(f"images left after rmi -f of all: {imgs}")
    for o in settled_orphans(rnd.d, api):
        rnd.violation(f"after removing everything: {o}")


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

    def __init__(self, daemon, tar, log=print):
        import docker

        self.d = daemon
        self.tar = tar
        self.log = log
        self.api = docker.APIClient(base_url=daemon.host, timeout=60)

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
        ls = text.splitlines()
        return "\n".join(ls[-lines:])

    def restart(self, rnd, res):
        t = self.d.restart()
        res.pings.append(t)
        if t > PING_BOUND:
            rnd.violation(f"wharfd answered /_ping {t:.3f} s after its exec (bound {PING_BOUND} s)")
        self.reconnect()

    def finish(self, rnd, res, log_offset):
        """Checks after the restart, then removes everything and checks nothing is left."""
        try:
            check_objects(rnd, self.api)
            for o in settled_orphans(self.d, self.api):
                rnd.violation(o)
        except Exception:
            rnd.violation(f"checking failed:\n{traceback.format_exc()}")
        try:
            remove_everything(rnd, self.api)
        except Exception:
            rnd.violation(f"removing everything failed:\n{traceback.format_exc()}")
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
                    self.d.kill9()
                else:
                    self.d.kill9()
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


# One row per failpoint; a new point in wharfd or the shim needs one row here (and its name).
FAILPOINTS = [
    Failpoint("start-launched", "start"),
    Failpoint("start-launched", "run_d", client="cli"),
    Failpoint("shim-setup-bound", "start", kind="hold", release_on="waiting for a launch"),
]


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
