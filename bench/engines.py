"""Shared setup for the bench scripts: start Wharf, dockerd and podman on private temp roots,
import the same busybox rootfs into each, and undo everything on exit (also on Ctrl-C/SIGTERM).

State: a work dir under /tmp and an exec root on a private tmpfs mounted under /run (as /run is
in production). Engines listen only on unix sockets inside the work dir. Every process is
ended by pid; iptables are saved before dockerd/podman start and restored afterwards.
"""

import json
import resource
import shlex
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


FOREIGN_PATHS = ["/etc/docker", "/var/lib/cni", "/run/cni", "/run/containers", "/run/libpod",
                 "/var/lib/containers", "/run/docker", "/run/docker.sock", "/etc/cni/net.d", "/run/netns",
                 "/var/run/docker.sock", "/run/containerd", "/run/runc", "/etc/docker/key.json",
                 "/var/lib/docker", "/var/lib/containerd"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, **kw)


def quiet(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def shlex_quote(s):
    return shlex.quote(s)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return float("nan")
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def ensure_pkg(binary, package):
    if shutil.which(binary):
        return
    log(f"installing {package} (for comparison only)...")
    quiet(["apt-get", "install", "-y", "-qq", package], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pids_mentioning(needle):
    """Processes whose command line names one of our private paths."""
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != me and needle in cmdline(d):
            out.append(int(d))
    return out


def mem_of(pid):
    """(VmRSS, Pss) in KiB; Pss from smaps_rollup (shared pages split among their users)."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


LOOP_EXT4_BYTES = 16 << 30


class Bench:
    """Owns the temp dirs and every engine started; `close()` undoes it all."""

    def __init__(self, loop_ext4=False):
        self.work = tempfile.mkdtemp(prefix="wharf-bench-", dir="/tmp")
        # A fresh journaled ext4 in a sparse file, mounted on the work dir: every engine's
        # data root on the kind of filesystem a production data root is (this VM's root is
        # ext4 without a journal, where each file created soon after many deletions scans the
        # recently deleted inodes: ext4's recently_deleted()).
        self.loop_image = None
        if loop_ext4:
            fd, self.loop_image = tempfile.mkstemp(prefix="wharf-bench-", suffix=".ext4", dir="/var/tmp")
            os.ftruncate(fd, LOOP_EXT4_BYTES)
            os.close(fd)
            quiet(["mkfs.ext4", "-q", "-F", self.loop_image])
            run(["mount", "-o", "loop", self.loop_image, self.work])
        self.run = tempfile.mkdtemp(prefix="wharf-bench-", dir="/run")
        run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", self.run])
        self.tag = os.path.basename(self.run)
        self.engines = []
        self.iptables_saved = None
        # Host paths the engines may create outside their private roots; removed at the end
        # when they did not exist before.
        self.foreign = [p for p in FOREIGN_PATHS if not os.path.lexists(p)]
        self.tar = os.path.join(self.work, "busybox.tar")
        quiet([os.path.join(ROOT, "scripts/mk-busybox-tar.sh"), self.tar])
        self._closed = False
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum, _frame):
        log(f"signal {signum}: cleaning up")
        self.close()
        sys.exit(130)

    def save_iptables(self):
        if self.iptables_saved is not None:
            return
        # iptables here is iptables-nft: the whole nftables ruleset is the state to put back
        # (an empty iptables-save would restore nothing and leave dockerd's chains behind).
        r = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("nft list ruleset failed; refusing to start engines that rewrite iptables")
        self.iptables_saved = r.stdout
        self.links_before = set(os.listdir("/sys/class/net"))

    def add(self, engine):
        self.engines.append(engine)
        return engine

    def close(self):
        if self._closed:
            return
        self._closed = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for e in reversed(self.engines):
            try:
                e.stop()
            except Exception as ex:  # keep cleaning whatever fails
                log(f"stopping {e.name}: {ex}")
        # Anything still running from our private roots (shims, conmon, containerd) by pid.
        for _ in range(20):
            left = pids_mentioning(self.tag) + pids_mentioning(self.work)
            if not left:
                break
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        if self.iptables_saved is not None:
            subprocess.run(["nft", "flush", "ruleset"])
            if self.iptables_saved.strip():
                subprocess.run(["nft", "-f", "-"], input=self.iptables_saved, text=True)
            for link in set(os.listdir("/sys/class/net")) - self.links_before:
                quiet(["ip", "link", "del", link], check=False)
        with open("/proc/mounts") as f:
            mounts = [l.split()[1] for l in f]
        for m in sorted((m for m in mounts if m.startswith((self.work, self.run + "/"))), reverse=True):
            quiet(["umount", "-l", m], check=False)
        for e in self.engines:
            e.remove_cgroups()
        quiet(["umount", "-l", self.run], check=False)
        with open("/proc/mounts") as f:
            mounts = [l.split()[1] for l in f]
        for p in self.foreign:
            # podman bind-mounts /run/netns onto itself (shared propagation).
            for m in sorted((m for m in mounts if m == p or m.startswith(p + "/")), reverse=True):
                quiet(["umount", "-l", m], check=False)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            elif os.path.lexists(p):
                os.unlink(p)
        shutil.rmtree(self.work, ignore_errors=True)
        if self.loop_image:
            os.unlink(self.loop_image)
        try:
            os.rmdir(self.run)
        except OSError:
            shutil.rmtree(self.run, ignore_errors=True)


def remove_cgroup_tree(name):
    for ctrl in os.listdir("/sys/fs/cgroup"):
        top = os.path.join("/sys/fs/cgroup", ctrl, name)
        if not os.path.isdir(top):
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -len(t[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


class Engine:
    name = "?"
    run_opts = []  # extra options after `run`/`create`
    rm_force = ["rm", "-f"]  # removes a running container at once (SIGKILL)
    cgroup_parent = None

    def cli(self):
        """Command prefix for a docker-compatible CLI talking to this engine."""
        raise NotImplementedError

    def docker(self, *args, check=True, capture=False):
        cmd = self.cli() + list(args)
        if capture:
            return run(cmd, check=check, capture_output=True, text=True).stdout
        return quiet(cmd, check=check)

    def sub(self, verb, *args):
        """`<cli> run|create [engine opts] args...`"""
        return self.cli() + [verb] + self.run_opts + list(args)

    def engine_pids(self):
        return []

    def remove_all(self):
        ids = self.docker("ps", "-aq", capture=True, check=False).split()
        for i in range(0, len(ids), 50):
            self.docker(*self.rm_force, *ids[i:i + 50], check=False)

    def remove_cgroups(self):
        if self.cgroup_parent:
            remove_cgroup_tree(self.cgroup_parent)

    def stop(self):
        pass


class Wharf(Engine):
    def __init__(self, bench, build=True, bin_dir=None, label="", extra_args=()):
        """`label` tells a second Wharf (e.g. a saved baseline build) apart: its own socket,
        roots and cgroup parent. `extra_args` go to wharfd's command line as they are."""
        self.name = "wharfd" + (f"-{label}" if label else "")
        self.bench = bench
        if build and not bin_dir:
            log("building release wharfd + wharf-shim + wharf (cargo build --release)...")
            run(["cargo", "build", "--release", "-q", "-p", "wharfd", "-p", "wharf-shim", "-p", "wharf"], cwd=ROOT)
        self.bin_dir = bin_dir or os.path.join(TARGET, "release")
        self.bin = os.path.join(self.bin_dir, "wharfd")
        sfx = f"-{label}" if label else ""
        self.sock = os.path.join(bench.work, f"wharf{sfx}.sock")
        self.exec_root = os.path.join(bench.run, f"wharf-exec{sfx}")
        self.cgroup_parent = f"{bench.tag}-wharf{sfx}"
        self.errlog = open(os.path.join(bench.work, f"wharfd{sfx}.log"), "w")
        self.proc = subprocess.Popen(
            [self.bin, "-H", f"unix://{self.sock}", "--data-root", os.path.join(bench.work, f"wharf-data{sfx}"),
             "--exec-root", self.exec_root, "--cgroup-parent", self.cgroup_parent, "--log-level", "warn",
             "--shim-path", os.path.join(self.bin_dir, "wharf-shim")] + list(extra_args),
            stdout=subprocess.DEVNULL, stderr=self.errlog)
        wait_for(lambda: os.path.exists(self.sock), 10, "wharfd socket")
        self.docker("import", bench.tar, "busybox")

    def cli(self):
        return ["docker", "-H", f"unix://{self.sock}"]

    def wharf_cli(self):
        # A baseline directory brings its own CLI; without one, the CLI of this checkout.
        path = os.path.join(self.bin_dir, "wharf")
        if not os.path.exists(path):
            path = os.path.join(TARGET, "release", "wharf")
        if not os.path.exists(path):
            return None
        return ["env", f"DOCKER_HOST=unix://{self.sock}", f"WHARF_HOST=unix://{self.sock}", path]

    def engine_pids(self):
        pids = [self.proc.pid]
        for d in _listdir(os.path.join(self.exec_root, "containers")):
            try:
                with open(os.path.join(self.exec_root, "containers", d, "shim.pid")) as f:
                    pids.append(int(f.read().strip()))
            except (OSError, ValueError):
                pass
        return pids

    def stop(self):
        if self.proc.poll() is None:
            self.remove_all()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Docker(Engine):
    def __init__(self, bench):
        self.name = "dockerd"
        ensure_pkg("dockerd", "docker.io")
        bench.save_iptables()
        self.bench = bench
        self.sock = os.path.join(bench.work, "docker.sock")
        self.exec_root = os.path.join(bench.run, "docker-exec")
        self.cgroup_parent = f"{bench.tag}-docker"
        self.errlog = open(os.path.join(bench.work, "dockerd.log"), "w")
        self.proc = subprocess.Popen(
            ["dockerd", "-H", f"unix://{self.sock}", "--data-root", os.path.join(bench.work, "docker-data"),
             "--exec-root", self.exec_root, "--pidfile", os.path.join(bench.work, "docker.pid"),
             "--cgroup-parent", self.cgroup_parent],
            stdout=subprocess.DEVNULL, stderr=self.errlog)
        wait_for(lambda: os.path.exists(self.sock) and quiet(self.cli() + ["version"], check=False).returncode == 0,
                 60, "dockerd")
        self.docker("import", bench.tar, "busybox")

    def cli(self):
        return ["docker", "-H", f"unix://{self.sock}"]

    def engine_pids(self):
        # dockerd, its containerd and the containerd-shim-runc-v2 of every container.
        return [self.proc.pid] + [p for p in pids_mentioning(self.exec_root) if p != self.proc.pid]

    def stop(self):
        if self.proc.poll() is None:
            self.remove_all()
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Podman(Engine):
    def __init__(self, bench):
        self.name = "podman"
        # Podman's `rm -f` first waits 10 s for SIGTERM (which `sleep` as pid 1 ignores);
        # docker's kills at once.
        self.rm_force = ["rm", "-f", "-t", "0"]
        ensure_pkg("podman", "podman")
        bench.save_iptables()
        self.bench = bench
        self.root = os.path.join(bench.work, "podman-root")
        self.runroot = os.path.join(bench.run, "podman-run")
        self.cgroup_parent = f"{bench.tag}-podman"
        # Podman's default RLIMIT_NOFILE/NPROC are above the hard limits here and there is no
        # CAP_SYS_RESOURCE, so its runc would fail; small explicit limits work everywhere.
        self.run_opts = ["--cgroup-parent", f"/{self.cgroup_parent}", "--ulimit", "nofile=1024:1024",
                         "--ulimit", "nproc=4096:4096"]
        os.makedirs(os.path.join(bench.work, "podman-net"), exist_ok=True)
        self.docker("import", bench.tar, "busybox")

    def cli(self):
        b = self.bench
        return ["podman", "--root", self.root, "--runroot", self.runroot, "--storage-driver", "overlay",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                "--tmpdir", os.path.join(b.run, "podman-tmp"),
                "--network-config-dir", os.path.join(b.work, "podman-net")]

    def engine_pids(self):
        # No daemon: one conmon per container.
        return [p for p in pids_mentioning(self.root) if "conmon" in cmdline(p).split(" ")[0]]

    def stop(self):
        self.remove_all()


def _listdir(p):
    try:
        return os.listdir(p)
    except OSError:
        return []


def common_args(parser):
    parser.add_argument("--with-docker", action="store_true", help="also run dockerd (installs docker.io)")
    parser.add_argument("--with-podman", action="store_true", help="also run podman (installs podman)")
    parser.add_argument("--no-build", action="store_true", help="use target/release as is")
    parser.add_argument("--bin-dir", help="take wharfd and wharf-shim from here (no build), e.g. a saved baseline")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also run a second Wharf from DIR (wharfd, wharf-shim, wharf-shim-monitor and, "
                             "if there, wharf), e.g. a build saved before a change, in the same run")


def start_engines(bench, args, wharfd_args=()):
    """`wharfd_args`: extra wharfd flags, given to every Wharf (the baseline's too)."""
    engines = [bench.add(Wharf(bench, build=not args.no_build, bin_dir=args.bin_dir, extra_args=wharfd_args))]
    if getattr(args, "baseline", None):
        engines.append(bench.add(Wharf(bench, build=False, bin_dir=args.baseline, label="before",
                                       extra_args=wharfd_args)))
    if args.with_docker:
        engines.append(bench.add(Docker(bench)))
    if args.with_podman:
        engines.append(bench.add(Podman(bench)))
    return engines


def labelled_commands(engines, args, other_variants=()):
    """`(label, argv)` for `<cli> <args...>` against every engine: the `wharf` CLI and the
    docker CLI against each Wharf (a baseline's rows first, so that the Wharf under test
    runs after it, never before it with its lock keeper still warm), then dockerd/podman, each
    also with every option list in `other_variants` (e.g. `["--network", "none"]`)."""
    verb, rest = args[0], list(args[1:])
    wharfs = sorted((e for e in engines if isinstance(e, Wharf)), key=lambda e: e.name == "wharfd")
    cmds = []
    for e in wharfs:
        sfx = "" if e.name == "wharfd" else f" ({e.name.split('-', 1)[1]})"
        wcli = e.wharf_cli()
        if wcli:
            cmds.append((f"wharf CLI -> wharfd{sfx}", wcli + [verb] + rest))
        cmds.append((f"docker CLI -> wharfd{sfx}", e.sub(verb, *rest)))
    for e in engines:
        if isinstance(e, Wharf):
            continue
        label = "docker CLI -> dockerd" if e.name == "dockerd" else "podman"
        cmds.append((label, e.sub(verb, *rest)))
        for v in other_variants:
            cmds.append((f"{label} {' '.join(v)}", e.sub(verb, *(v + rest))))
    return cmds


def machine():
    kernel = os.uname().release
    mode = "v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else (
        "v1 hybrid" if os.path.isdir("/sys/fs/cgroup/unified") else "v1")
    return f"{time.strftime('%Y-%m-%d %H:%M')} UTC, nproc {os.cpu_count()}, kernel {kernel}, cgroup {mode}"


def dump_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
