"""A wharfd of a test's own, for the pytest suites (tests/compat, tests/crash): started like
wharf_testkit::TestDaemon, with its own roots and socket under /tmp/wharf-test-<name>-<pid>/,
cgroup parent `wharf-test-<name>`, log in that directory; and everything that removes what it
and its containers leave (processes, mounts, cgroups, directories), also after a crashed run.

The binary: $WHARFD_BIN, else $CARGO_TARGET_DIR/debug/wharfd, else <repo>/target/debug/wharfd.
"""

import ctypes
import http.client
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_DIR_BASE = Path("/tmp")
CGROUP_ROOT = Path("/sys/fs/cgroup")
START_TIMEOUT = 10.0
MNT_DETACH = 2


# ---------------------------------------------------------------- processes


def _stat_fields(pid):
    """(state, starttime ticks) from /proc/<pid>/stat, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 1:].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def is_alive(pid):
    f = _stat_fields(pid)
    return f is not None and f[0] not in ("Z", "X")


def _boot_time():
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return int(line.split()[1])
    return 0


def _start_epoch(pid):
    f = _stat_fields(pid)
    if f is None:
        return None
    return _boot_time() + f[1] // os.sysconf("SC_CLK_TCK")


def owner_stamp():
    pid = os.getpid()
    f = _stat_fields(pid)
    return f"{pid} {f[1] if f else 0}"


def _owner_alive(stamp):
    parts = stamp.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return False
    pid, ticks = int(parts[0]), int(parts[1])
    f = _stat_fields(pid)
    return pid != os.getpid() and is_alive(pid) and f is not None and f[1] == ticks


def _pid_from_file(path):
    """The pid in a pid file, if that process started before the file was written (a pid
    recycled since belongs to someone else)."""
    try:
        pid = int(Path(path).read_text().strip())
        written = Path(path).stat().st_mtime
    except (OSError, ValueError):
        return None
    if pid <= 1 or pid == os.getpid() or not is_alive(pid):
        return None
    started = _start_epoch(pid)
    if started is None or started > written + 2:
        return None
    return pid


def _sigkill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_gone(pids, timeout=3.0):
    deadline = time.monotonic() + timeout
    while any(is_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def pids_mentioning(needle):
    me = os.getpid()
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit() or int(e) == me:
            continue
        try:
            cmd = Path(f"/proc/{e}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if needle.encode() in cmd:
            out.append(int(e))
    return out


def kill_container_processes(dir_):
    shims, inits = [], []
    containers = Path(dir_) / "exec" / "containers"
    if containers.is_dir():
        for state in containers.iterdir():
            p = _pid_from_file(state / "shim.pid")
            if p:
                shims.append(p)
            p = _pid_from_file(state / "init.pid")
            if p:
                inits.append(p)
    # The trailing slash keeps .../wharf-test-compat-1 from matching ...-12.
    for p in pids_mentioning(f"{dir_}/"):
        if p not in shims and p not in inits:
            shims.append(p)
    # A shim leads its own session; helpers it forked share its process group.
    helpers = [h for p in shims if _pgrp(p) == p for h in _group_members(p) if h != p]
    for p in shims:  # shims first: a live shim would react to its init dying
        _sigkill(p)
    for p in helpers + inits:
        _sigkill(p)
    _wait_gone(shims + helpers + inits)


def _pgrp(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rfind(")") + 1:].split()[2])
    except (OSError, ValueError, IndexError):
        return None


def _group_members(pgid):
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and _pgrp(int(e)) == pgid and is_alive(int(e))]


# ---------------------------------------------------------------- mounts


def _unescape(s):
    out, i = bytearray(), 0
    b = s.encode()
    while i < len(b):
        if b[i:i + 1] == b"\\" and len(b[i + 1:i + 4]) == 3 and all(48 <= c <= 55 for c in b[i + 1:i + 4]):
            v = int(b[i + 1:i + 4], 8)
            if v < 256:
                out.append(v)
                i += 4
                continue
        out.append(b[i])
        i += 1
    return out.decode(errors="replace")


def mounts_under(dir_):
    root = str(dir_).rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as f:
        for i, line in enumerate(f):
            parts = line.split(" ")
            if len(parts) < 5:
                continue
            mp = _unescape(parts[4])
            if mp == root or mp.startswith(root + "/"):
                found.append((mp.count("/"), i, mp))
    found.sort(reverse=True)  # deepest first, later (stacked on top) first
    return [m for _, _, m in found]


def unmount_all_under(dir_):
    libc = ctypes.CDLL(None, use_errno=True)
    for _ in range(8):
        ms = mounts_under(dir_)
        if not ms:
            return []
        for m in ms:
            libc.umount2(m.encode(), MNT_DETACH)
    return mounts_under(dir_)


# ---------------------------------------------------------------- cgroups


def cgroup_dirs(parent):
    out = []
    top = CGROUP_ROOT / parent
    if top.is_dir():
        out.append(top)
    if CGROUP_ROOT.is_dir():
        for c in sorted(CGROUP_ROOT.iterdir()):
            if c.is_symlink():  # cpu -> cpu,cpuacct
                continue
            d = c / parent
            if d.is_dir() and d not in out:
                out.append(d)
    return out


def _postorder(d):
    out = []
    try:
        for e in os.scandir(d):
            if e.is_dir(follow_symlinks=False):
                out.extend(_postorder(Path(e.path)))
    except OSError:
        pass
    out.append(Path(d))
    return out


def cgroup_procs(d):
    try:
        return [int(x) for x in (d / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def remove_cgroups(parent):
    errors = []
    trees = [_postorder(top) for top in cgroup_dirs(parent)]
    # Frozen tasks never handle SIGKILL, and the freezer is one hierarchy among the v1 ones:
    # thaw in every hierarchy before killing in any.
    for tree in trees:
        for d in tree:
            for f, v in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
                try:
                    (d / f).write_text(v)
                except OSError:
                    pass
    pids = []
    for tree in trees:
        for d in tree:
            try:
                (d / "cgroup.kill").write_text("1")
            except OSError:
                pass
            for p in cgroup_procs(d):
                _sigkill(p)
                pids.append(p)
    _wait_gone(pids)
    for tree in trees:
        for d in tree:
            deadline = time.monotonic() + 2
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if time.monotonic() > deadline:
                        errors.append(f"rmdir {d}: {e}")
                        break
                    for p in cgroup_procs(d):
                        _sigkill(p)
                    time.sleep(0.02)
    return errors


# ---------------------------------------------------------------- whole directories


def cleanup_dir(dir_):
    dir_ = Path(dir_)
    if not dir_.exists():
        return []
    errors = []
    p = _pid_from_file(dir_ / "wharfd.pid")
    if p:
        _sigkill(p)
        _wait_gone([p])
    kill_container_processes(dir_)
    left = unmount_all_under(dir_)
    if left:
        errors.append(f"still mounted: {left}")
    try:
        shutil.rmtree(dir_)
    except FileNotFoundError:
        pass
    except OSError as e:
        errors.append(f"rm -r {dir_}: {e}")
    return errors


def cleanup_stale(name):
    prefix = f"wharf-test-{name}-"
    live_elsewhere = False
    errors = []
    for e in TEST_DIR_BASE.iterdir():
        rest = e.name[len(prefix):] if e.name.startswith(prefix) else ""
        if not rest.isdigit():
            continue
        try:
            stamp = (e / "owner").read_text()
        except OSError:
            stamp = ""
        if _owner_alive(stamp):
            live_elsewhere = True
            continue
        errors += cleanup_dir(e)
    if not live_elsewhere:
        errors += remove_cgroups(f"wharf-test-{name}")
    return errors


# ---------------------------------------------------------------- the daemon


def wharfd_bin():
    env = os.environ.get("WHARFD_BIN")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target.is_absolute():
        target = REPO / target
    return target / "debug" / "wharfd"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=2.0):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def ping(sock_path):
    try:
        c = UnixHTTPConnection(str(sock_path))
        c.request("HEAD", "/_ping")
        r = c.getresponse()
        c.close()
        return r.status == 200
    except OSError:
        return False
    except http.client.HTTPException:
        return False


class WharfDaemon:
    def __init__(self, name, binary, start_timeout=START_TIMEOUT):
        self.name = name
        self.start_timeout = start_timeout
        self.binary = Path(binary)
        self.dir = TEST_DIR_BASE / f"wharf-test-{name}-{os.getpid()}"
        self.socket = self.dir / "wharf.sock"
        self.host = f"unix://{self.socket}"
        self.log = self.dir / "wharfd.log"
        self.cgroup_parent = f"wharf-test-{name}"
        self.proc = None
        self.docker_config = self.dir / "docker-config"
        # For daemons of a test's own (test_claims_daemon.py): other levels, more flags.
        self.log_level = "debug"
        self.extra_args = []
        if len(str(self.socket)) > 107:
            raise RuntimeError(f"socket path too long: {self.socket}")

    def env(self):
        """Environment for `docker`: our socket, and a config dir of our own so the host's
        ~/.docker (contexts, credential helpers) cannot interfere."""
        e = {k: v for k, v in os.environ.items()
             if not k.startswith("DOCKER_") or k == "DOCKER_BUILDKIT"}
        e["DOCKER_HOST"] = self.host
        e["DOCKER_CONFIG"] = str(self.docker_config)
        e["DOCKER_CLI_HINTS"] = "false"
        return e

    def start(self):
        for err in cleanup_stale(self.name):
            print(f"warning: stale cleanup: {err}")
        cleanup_dir(self.dir)
        (self.dir / "data").mkdir(parents=True)
        (self.dir / "exec").mkdir()
        self.docker_config.mkdir()
        (self.dir / "owner").write_text(owner_stamp())
        self._spawn()

    def restart(self):
        """Starts wharfd again on the same roots (after `kill9`); returns the seconds from
        its exec to its first answered /_ping."""
        return self._spawn()

    def _spawn(self):
        log = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(
                [str(self.binary), "-H", self.host,
                 "--data-root", str(self.dir / "data"),
                 "--exec-root", str(self.dir / "exec"),
                 "--pidfile", str(self.dir / "wharfd.pid"),
                 "--log-level", self.log_level,
                 "--cgroup-parent", self.cgroup_parent, *self.extra_args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        spawned = time.monotonic()
        deadline = spawned + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"wharfd exited during start ({self.proc.returncode}); log tail:\n{self.log_tail()}")
            if ping(self.socket):
                return time.monotonic() - spawned
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"wharfd did not answer a ping within {self.start_timeout}s; log tail:\n{self.log_tail()}")
            # Short: the crash suite measures exec -> first answer with this loop.
            time.sleep(0.002)

    def log_tail(self, lines=40):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"<cannot read {self.log}: {e}>"

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.kill9()
        errors = cleanup_dir(self.dir)
        errors += remove_cgroups(self.cgroup_parent)
        return errors


def wait_for(pred, timeout=60.0, what="condition", every=0.05):
    """Polls `pred` until it returns something true (which is returned); fails after
    `timeout` seconds. A bound, not a measure: tests pass long before it under any load."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


# ---------------------------------------------------------------- clients


def run_docker(daemon, *args, input=None, timeout=60, check=False, env=None):
    """Runs `docker ARGS` against the test daemon (`env`: the daemon's, unless given). `input`
    may be str or bytes (a tar); stdout and stderr come back as str."""
    if isinstance(input, str):
        input = input.encode()
    r = subprocess.run(["docker", *args], env=env or daemon.env(), input=input,
                       capture_output=True, timeout=timeout)
    r.stdout = r.stdout.decode(errors="replace")
    r.stderr = r.stderr.decode(errors="replace")
    if check and r.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} exited {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def make_busybox_tar(out):
    """scripts/mk-busybox-tar.sh into `out`; returns it."""
    subprocess.run(["sh", str(REPO / "scripts" / "mk-busybox-tar.sh"), str(out)], check=True)
    return out
