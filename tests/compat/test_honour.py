"""Honour or refuse (issue 10), through the real docker CLI and docker-py against wharfd: every
`docker run` option Wharf accepts is checked from inside the container (its own cgroup files,
/proc/self/status, /proc/mounts, ulimit, /etc files, namespace links); every option it refuses
makes `docker run` exit 125 with Wharf's words and leaves no container behind. The table that
says which is which: crates/wharf-engine/src/honour/create.rs.

Works on cgroup v1 (a controller per directory under /sys/fs/cgroup, which inside a container
shows the container's own cgroup) and v2 (the unified files, with the default private cgroup
namespace). What the host cannot enforce is expected to be refused, so the test asks the host
first (swap accounting, blkio weights, the OOM-killer switch)."""

import json
import math
import os
import re
import subprocess
from pathlib import Path

import docker as dockerpy
import pytest
from support import ok

CG = Path("/sys/fs/cgroup")
V2 = (CG / "cgroup.controllers").exists()
MiB = 1024 * 1024

# Docker's default capability set (oci/caps/defaults.go).
DEFAULT_CAPS = {"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
                "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
                "AUDIT_WRITE"}
CAP_NAMES = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
             "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
             "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
             "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
             "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
             "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
             "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"]


# ---------------------------------------------------------------- the host


def _any_child_has(root, name):
    return any(p.is_dir() and (p / name).exists() for p in root.iterdir())


def host_can():
    """What this host's cgroups can enforce, read from the files (as wharfd must)."""
    if V2:
        ctl = (CG / "cgroup.controllers").read_text().split()
        return {
            "memory": "memory" in ctl,
            "swap": "memory" in ctl and _any_child_has(CG, "memory.swap.max"),
            "cfs": "cpu" in ctl,
            "shares": "cpu" in ctl,
            "cpuset": "cpuset" in ctl,
            "pids": "pids" in ctl,
            "oom_kill_disable": False,
            "swappiness": False,
            "blkio_weight": "io" in ctl and (_any_child_has(CG, "io.weight")
                                             or _any_child_has(CG, "io.bfq.weight")),
        }
    return {
        "memory": (CG / "memory/memory.limit_in_bytes").exists(),
        "swap": (CG / "memory/memory.memsw.limit_in_bytes").exists(),
        "cfs": (CG / "cpu/cpu.cfs_quota_us").exists(),
        "shares": (CG / "cpu/cpu.shares").exists(),
        "cpuset": (CG / "cpuset/cpuset.cpus").exists(),
        "pids": (CG / "pids").is_dir(),
        "oom_kill_disable": (CG / "memory/memory.oom_control").exists(),
        "swappiness": (CG / "memory/memory.swappiness").exists(),
        "blkio_weight": (CG / "blkio/blkio.weight").exists()
        or (CG / "blkio/blkio.bfq.weight").exists(),
    }


HOST = host_can()


def host_ns(kind):
    return os.readlink(f"/proc/self/ns/{kind}")


def v2_weight(shares):
    """runc's (and libcgroups') cpu.shares -> cpu.weight."""
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    lg = math.log2(shares)
    return min(10000, max(1, math.ceil(10 ** ((lg * lg + 125 * lg) / 612.0 - 7.0 / 34.0))))


# ---------------------------------------------------------------- inside the container

# Prints `path<TAB>content` for each file named (content on one line, empty when unreadable).
DUMP = 'for f in "$@"; do printf "%s\\t%s\\n" "$f" "$(cat "$f" 2>/dev/null | tr "\\n" " ")"; done'

V1_FILES = ["memory/memory.limit_in_bytes", "memory/memory.memsw.limit_in_bytes",
            "memory/memory.soft_limit_in_bytes", "memory/memory.swappiness",
            "memory/memory.oom_control", "cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us",
            "cpu/cpu.shares", "cpuset/cpuset.cpus", "cpuset/cpuset.mems", "pids/pids.max",
            "blkio/blkio.weight"]
V2_FILES = ["memory.max", "memory.swap.max", "memory.low", "cpu.max", "cpu.weight",
            "cpuset.cpus", "cpuset.mems", "pids.max", "io.weight"]
CG_FILES = [f"/sys/fs/cgroup/{f}" for f in (V2_FILES if V2 else V1_FILES)]


def parse_dump(out):
    files = {}
    for line in out.splitlines():
        if "\t" in line:
            k, v = line.split("\t", 1)
            files[k.removeprefix("/sys/fs/cgroup/")] = v.strip()
    return files


def _num(s):
    return None if s in ("", "max") or int(s) >= 2 ** 62 else int(s)


def limits(files):
    """The container's limits in Docker's terms (None: unlimited), from its cgroup files."""
    if V2:
        mem = _num(files["memory.max"])
        swap = _num(files["memory.swap.max"])
        quota, period = (files["cpu.max"].split() + ["", ""])[:2]
        return {
            "memory": mem,
            # Docker's MemorySwap is memory plus swap; v2 limits the swap alone.
            "memory_swap": None if mem is None or swap is None else mem + swap,
            "reservation": _num(files["memory.low"]) or None,
            "cpu_quota": _num(quota),
            "cpu_period": _num(period),
            "cpu_weight": _num(files["cpu.weight"]),
            "cpus": files["cpuset.cpus"],
            "mems": files["cpuset.mems"],
            "pids": _num(files["pids.max"]),
        }
    oom = dict(line.split() for line in re.findall(r"\w+ \d+", files["memory/memory.oom_control"]))
    return {
        "memory": _num(files["memory/memory.limit_in_bytes"]),
        "memory_swap": _num(files["memory/memory.memsw.limit_in_bytes"]),
        "reservation": _num(files["memory/memory.soft_limit_in_bytes"]),
        "swappiness": int(files["memory/memory.swappiness"]),
        "oom_kill_disable": int(oom.get("oom_kill_disable", "0")),
        "cpu_quota": None if files["cpu/cpu.cfs_quota_us"] == "-1" else int(files["cpu/cpu.cfs_quota_us"]),
        "cpu_period": int(files["cpu/cpu.cfs_period_us"]),
        "cpu_shares": int(files["cpu/cpu.shares"]),
        "cpus": files["cpuset/cpuset.cpus"],
        "mems": files["cpuset/cpuset.mems"],
        "pids": _num(files["pids/pids.max"]),
    }


def run_limits(docker, *flags):
    """`docker run --rm FLAGS busybox` dumping its cgroup files: (limits, raw files)."""
    r = ok(docker("run", "--rm", *flags, "busybox", "sh", "-c", DUMP, "sh", *CG_FILES))
    files = parse_dump(r.stdout)
    return limits(files), files


def exec_limits(docker, name):
    r = ok(docker("exec", name, "sh", "-c", DUMP, "sh", *CG_FILES))
    return limits(parse_dump(r.stdout))


def check_shares(lim, shares):
    if V2:
        assert lim["cpu_weight"] == v2_weight(shares), lim
    else:
        assert lim["cpu_shares"] == shares, lim


def caps(hexmask):
    v = int(hexmask, 16)
    return {name for i, name in enumerate(CAP_NAMES) if v >> i & 1}


def status_fields(text):
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def inspect_json(docker, name, fmt="{{json .HostConfig}}"):
    return json.loads(ok(docker("inspect", "-f", fmt, name)).stdout)


def daemon_info(docker):
    return json.loads(ok(docker("info", "--format", "{{json .}}")).stdout)


# ---------------------------------------------------------------- refusals leave nothing


def containers_on_disk(wharfd):
    d = wharfd.dir / "data" / "containers"
    return set(os.listdir(d)) if d.is_dir() else set()


def container_ids(docker):
    return set(ok(docker("ps", "-aq", "--no-trunc")).stdout.split())


def assert_refused(docker, wharfd, args, words, code=125):
    """`docker ARGS` fails with `words` on stderr and creates no container (none listed, no
    directory under the data root's containers/)."""
    listed, on_disk = container_ids(docker), containers_on_disk(wharfd)
    r = docker(*args)
    assert r.returncode == code, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert words in r.stderr, r.stderr
    # Subsets: a removed container's files go in the background (remove_locked), so an earlier
    # test's --rm container may still leave as this one runs.
    assert container_ids(docker) <= listed, "a refused run left a container behind"
    assert containers_on_disk(wharfd) <= on_disk, "a refused run left a directory behind"
    return r


# ================================================================ cgroup limits


def test_cgroup_limits_applied(docker):
    flags = ["--memory", "32m", "--memory-reservation", "8m", "--cpus", "0.5",
             "--cpu-shares", "512", "--cpuset-cpus", "0", "--cpuset-mems", "0",
             "--pids-limit", "7"]
    if HOST["swappiness"]:
        flags += ["--memory-swappiness", "10"]
    if HOST["oom_kill_disable"]:
        flags += ["--oom-kill-disable"]
    lim, _ = run_limits(docker, *flags)
    assert lim["memory"] == 32 * MiB, lim
    if HOST["swap"]:
        # Docker's default: MemorySwap twice Memory.
        assert lim["memory_swap"] == 64 * MiB, lim
    assert lim["reservation"] == 8 * MiB, lim
    assert (lim["cpu_quota"], lim["cpu_period"]) == (50_000, 100_000), lim
    check_shares(lim, 512)
    assert (lim["cpus"], lim["mems"]) == ("0", "0"), lim
    assert lim["pids"] == 7, lim
    if HOST["swappiness"]:
        assert lim["swappiness"] == 10, lim
    if HOST["oom_kill_disable"]:
        assert lim["oom_kill_disable"] == 1, lim


def test_unlimited_by_default(docker):
    lim, _ = run_limits(docker)
    assert (lim["memory"], lim["cpu_quota"], lim["pids"]) == (None, None, None), lim
    if not V2:
        assert lim["oom_kill_disable"] == 0, lim


def test_memory_swap_and_cfs_period_quota(docker, wharfd):
    flags = ["--memory", "16m", "--memory-swap", "48m", "--cpu-period", "50000",
             "--cpu-quota", "25000"]
    if not HOST["swap"]:
        assert_refused(docker, wharfd, ["run", "--rm", *flags, "busybox", "true"],
                       "Wharf cannot apply HostConfig.MemorySwap on this host")
        flags = flags[2:]
    lim, _ = run_limits(docker, *flags)
    if HOST["swap"]:
        assert (lim["memory"], lim["memory_swap"]) == (16 * MiB, 48 * MiB), lim
    assert (lim["cpu_quota"], lim["cpu_period"]) == (25_000, 50_000), lim


def test_blkio_weight_applied_or_refused(docker, wharfd):
    if not HOST["blkio_weight"]:
        assert_refused(docker, wharfd, ["run", "--rm", "--blkio-weight", "300", "busybox", "true"],
                       "Wharf cannot apply HostConfig.BlkioWeight on this host")
        return
    # The file the kernel has (CFQ's, else BFQ's), as libcgroups chooses; v2's io.weight takes
    # runc's linear conversion of [10, 1000] to [1, 10000].
    names = ["io.bfq.weight", "io.weight"] if V2 else ["blkio/blkio.weight", "blkio/blkio.bfq.weight"]
    r = ok(docker("run", "--rm", "--blkio-weight", "300", "busybox", "sh", "-c", DUMP, "sh",
                  *[f"/sys/fs/cgroup/{n}" for n in names]))
    files = parse_dump(r.stdout)
    want = {"300", str(1 + (300 - 10) * 9999 // 990)} if V2 else {"300"}
    assert any(want & set(files[n].split()) for n in names), files


UNENFORCEABLE = [
    ("oom_kill_disable", ["--memory", "16m", "--oom-kill-disable"], "OomKillDisable"),
    ("swappiness", ["--memory-swappiness", "10"], "MemorySwappiness"),
    ("swap", ["--memory", "16m", "--memory-swap", "32m"], "MemorySwap"),
    ("pids", ["--pids-limit", "5"], "PidsLimit"),
    ("cpuset", ["--cpuset-cpus", "0"], "CpusetCpus"),
]


@pytest.mark.parametrize("knob,flags,field", UNENFORCEABLE, ids=[k for k, _, _ in UNENFORCEABLE])
def test_what_the_host_cannot_enforce_is_refused(docker, wharfd, knob, flags, field):
    if HOST[knob]:
        pytest.skip(f"this host has {knob} (applied in test_cgroup_limits_applied)")
    assert_refused(docker, wharfd, ["run", "--rm", *flags, "busybox", "true"],
                   f"Wharf cannot apply HostConfig.{field} on this host")


# ================================================================ security, rlimits, mounts


def test_caps_drop_all_add_and_no_new_privileges(docker):
    r = ok(docker("run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "--cap-add",
                  "chown", "--security-opt", "no-new-privileges", "busybox", "cat",
                  "/proc/self/status"))
    st = status_fields(r.stdout)
    assert caps(st["CapEff"]) == {"NET_ADMIN", "CHOWN"}, st["CapEff"]
    assert caps(st["CapBnd"]) == {"NET_ADMIN", "CHOWN"}, st["CapBnd"]
    assert st["NoNewPrivs"] == "1"

    r = ok(docker("run", "--rm", "--cap-drop", "NET_RAW", "--cap-add", "SYS_ADMIN", "busybox",
                  "cat", "/proc/self/status"))
    st = status_fields(r.stdout)
    assert caps(st["CapEff"]) == DEFAULT_CAPS - {"NET_RAW"} | {"SYS_ADMIN"}, st["CapEff"]
    assert st["NoNewPrivs"] == "0"

    # ALL: every capability the host's bounding set has.
    r = ok(docker("run", "--rm", "--cap-add", "ALL", "busybox", "cat", "/proc/self/status"))
    mine = status_fields(Path("/proc/self/status").read_text())
    assert int(status_fields(r.stdout)["CapEff"], 16) == int(mine["CapBnd"], 16)


def test_ulimits(docker):
    r = ok(docker("run", "--rm", "--ulimit", "nofile=100:200", "--ulimit", "nproc=50",
                  "busybox", "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u"))
    assert r.stdout.split() == ["100", "200", "50"]


def test_shm_size_tmpfs_and_tmpfs_mounts(docker):
    r = ok(docker("run", "--rm", "--shm-size", "8m", "--tmpfs", "/t1:size=1m,mode=700",
                  "--mount", "type=tmpfs,dst=/t2,tmpfs-size=2m,tmpfs-mode=0750,readonly",
                  "busybox", "sh", "-c",
                  "df -k /dev/shm | tail -1; cat /proc/mounts; echo x > /t1/f && echo t1-writable;"
                  " echo x > /t2/f || echo t2-readonly"))
    lines = r.stdout.splitlines()
    assert lines[0].split()[1] == "8192", lines[0]
    mounts = {m.split()[1]: m.split() for m in lines[1:] if len(m.split()) == 6}
    shm, t1, t2 = mounts["/dev/shm"], mounts["/t1"], mounts["/t2"]
    assert shm[2] == "tmpfs" and "size=8192k" in shm[3].split(","), shm
    o1, o2 = t1[3].split(","), t2[3].split(",")
    assert t1[2] == "tmpfs" and "rw" in o1 and "size=1024k" in o1 and "mode=700" in o1, t1
    assert t2[2] == "tmpfs" and "ro" in o2 and "size=2048k" in o2 and "mode=750" in o2, t2
    assert "t1-writable" in lines and "t2-readonly" in lines, r.stdout


def test_default_shm_is_64m(docker):
    r = ok(docker("run", "--rm", "busybox", "sh", "-c", "df -k /dev/shm | tail -1"))
    assert r.stdout.split()[1] == "65536", r.stdout


def test_read_only_rootfs_with_init(docker):
    r = docker("run", "--rm", "--init", "--read-only", "--tmpfs", "/run", "busybox", "sh", "-c",
               "cat /proc/1/cmdline | tr '\\0' ' '; echo; touch /x || echo rootfs-readonly;"
               " touch /run/x && echo run-writable; touch /dev/shm/x && echo shm-writable")
    ok(r)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("/sbin/docker-init -- sh"), lines
    assert {"rootfs-readonly", "run-writable", "shm-writable"} <= set(lines), r.stdout
    assert "Read-only file system" in r.stderr, r.stderr


def test_oom_score_adj_hostname_domainname(docker):
    r = ok(docker("run", "--rm", "--oom-score-adj", "300", "--hostname", "hh",
                  "--domainname", "dd.example", "busybox", "sh", "-c",
                  "cat /proc/self/oom_score_adj; hostname; cat /proc/sys/kernel/domainname"))
    assert r.stdout.split() == ["300", "hh", "dd.example"]


# ================================================================ /etc files, groups, devices


def test_extra_hosts_and_dns(docker):
    r = ok(docker("run", "--rm", "--add-host", "foo:1.2.3.4", "--add-host", "gw:host-gateway",
                  "--dns", "9.9.9.9", "--dns-search", "example.com", "--dns-option", "ndots:3",
                  "busybox", "sh", "-c", "cat /etc/hosts; echo ===; cat /etc/resolv.conf"))
    hosts, resolv = r.stdout.split("===\n")
    entries = {line.split()[1]: line.split()[0] for line in hosts.splitlines() if line.strip()}
    assert entries["foo"] == "1.2.3.4", hosts
    # host-gateway: an address of this host.
    mine = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True).stdout
    addrs = {f.split("/")[0] for line in mine.splitlines() for f in line.split()[3:4]}
    assert entries["gw"] in addrs, (hosts, addrs)
    rl = [line.strip() for line in resolv.splitlines() if line.strip()]
    assert "nameserver 9.9.9.9" in rl and "search example.com" in rl and "options ndots:3" in rl, resolv
    assert not any(line.startswith("nameserver") and line != "nameserver 9.9.9.9" for line in rl), resolv


def test_group_add_by_name_and_number(docker):
    r = ok(docker("run", "--rm", "--group-add", "1234", "--group-add", "daemon", "busybox", "sh",
                  "-c", "id -G; grep ^daemon: /etc/group | cut -d: -f3"))
    groups, daemon_gid = r.stdout.splitlines()
    assert {"0", "1234", daemon_gid} <= set(groups.split()), r.stdout


def test_device_node_is_there_and_usable(docker):
    r = ok(docker("run", "--rm", "--device", "/dev/null:/dev/mynull:rw", "busybox", "sh", "-c",
                  "stat -c '%F %t %T' /dev/mynull; echo hi > /dev/mynull && echo written;"
                  " head -c 1 /dev/mynull | wc -c"))
    st = os.stat("/dev/null")
    want = f"character special file {os.major(st.st_rdev):x} {os.minor(st.st_rdev):x}"
    assert r.stdout.splitlines() == [want, "written", "0"], r.stdout


def test_device_refusals(docker, wharfd):
    # The CLI checks the mode itself; docker-py's check is the daemon's (test_dockerpy_refusals).
    assert_refused(docker, wharfd, ["run", "--rm", "--device", "/dev/null:/dev/mynull:rwx",
                                    "busybox", "true"], "bad mode specified: rwx")
    # A node that is not there: dockerd's words, which the CLI maps to 127.
    assert_refused(docker, wharfd, ["run", "--rm", "--device", "/dev/wharf-nope", "busybox", "true"],
                   'error gathering device information while adding custom device '
                   '"/dev/wharf-nope": no such file or directory', code=127)


def test_sysctls_namespaced_and_refused(docker, wharfd):
    r = ok(docker("run", "--rm", "--sysctl", "net.ipv4.ip_forward=1", "--sysctl",
                  "kernel.msgmax=4096", "busybox", "sh", "-c",
                  "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax"))
    assert r.stdout.split() == ["1", "4096"]
    # In a namespace the container shares with the host: runc's words.
    assert_refused(docker, wharfd, ["run", "--rm", "--network", "host", "--sysctl",
                                    "net.ipv4.ip_forward=1", "busybox", "true"],
                   'sysctl "net.ipv4.ip_forward" not allowed in host network namespace')
    assert_refused(docker, wharfd, ["run", "--rm", "--ipc", "host", "--sysctl",
                                    "kernel.msgmax=4096", "busybox", "true"],
                   'sysctl "kernel.msgmax" not allowed in host ipc namespace')
    # Not namespaced at all: the CLI refuses it before asking (docker-py reaches the daemon).
    assert_refused(docker, wharfd, ["run", "--rm", "--sysctl", "vm.swappiness=1", "busybox", "true"],
                   "sysctl 'vm.swappiness=1' is not allowed")


# ================================================================ namespaces and cgroups


NS_SCRIPT = "for n in pid ipc uts cgroup; do readlink /proc/self/ns/$n; done; hostname"


def test_host_namespaces(docker):
    r = ok(docker("run", "--rm", "--pid", "host", "--ipc", "host", "--uts", "host", "busybox",
                  "sh", "-c", NS_SCRIPT))
    pid, ipc, uts, _, hostname = r.stdout.split()
    assert (pid, ipc, uts) == (host_ns("pid"), host_ns("ipc"), host_ns("uts"))
    assert hostname == os.uname().nodename
    r = ok(docker("run", "--rm", "busybox", "sh", "-c", NS_SCRIPT))
    pid, ipc, uts, _, _ = r.stdout.split()
    assert pid != host_ns("pid") and ipc != host_ns("ipc") and uts != host_ns("uts")


def test_join_another_containers_pid_and_ipc(docker, unique):
    donor = unique + "-donor"
    ok(docker("run", "-d", "--name", donor, "--ipc", "shareable", "busybox", "sleep", "300"))
    ok(docker("exec", donor, "sh", "-c", "echo from-donor > /dev/shm/f"))
    want = ok(docker("exec", donor, "sh", "-c",
                     "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc")).stdout.split()
    r = ok(docker("run", "--rm", "--pid", f"container:{donor}", "--ipc", f"container:{donor}",
                  "busybox", "sh", "-c",
                  "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; cat /dev/shm/f;"
                  " cat /proc/1/cmdline | tr '\\0' ' '"))
    pid, ipc, shm, init = r.stdout.splitlines()
    assert [pid, ipc] == want
    assert shm == "from-donor"
    assert init.strip() == "sleep 300"
    ok(docker("rm", "-f", donor))


def test_join_ipc_of_a_non_shareable_container_is_refused(docker, unique):
    donor = unique + "-donor"
    ok(docker("run", "-d", "--name", donor, "busybox", "sleep", "300"))
    # dockerd checks this at start, after create, so the run's container stays (Created).
    r = docker("run", "--rm", "--ipc", f"container:{donor}", "busybox", "true")
    assert r.returncode == 125, r.stderr
    assert "non-shareable IPC (hint: use IpcMode:shareable for the donor container)" in r.stderr
    ok(docker("rm", "-f", donor))


def test_cgroupns_private_host_and_cgroup_parent(docker, wharfd):
    r = ok(docker("run", "--rm", "--cgroupns", "private", "busybox", "sh", "-c",
                  "readlink /proc/self/ns/cgroup; cat /proc/self/cgroup"))
    ns, *lines = r.stdout.splitlines()
    assert ns != host_ns("cgroup")
    assert lines and all(line.split(":", 2)[2] == "/" for line in lines), r.stdout

    def paths(out):
        # Each controller's path (v1: not systemd's named hierarchy nor the unified one of a
        # hybrid host, which Wharf leaves alone), after the ns and hostname lines.
        got = set()
        for line in out.splitlines()[2:]:
            _, ctl, path = line.split(":", 2)
            if V2 or (ctl and not ctl.startswith("name=")):
                got.add(path)
        return got

    script = "readlink /proc/self/ns/cgroup; hostname; cat /proc/self/cgroup"
    r = ok(docker("run", "--rm", "--cgroupns", "host", "busybox", "sh", "-c", script))
    ns, short = r.stdout.splitlines()[:2]
    assert ns == host_ns("cgroup")
    got = paths(r.stdout)
    assert len(got) == 1, r.stdout
    assert re.fullmatch(rf"/{wharfd.cgroup_parent}/{short}[0-9a-f]{{52}}", got.pop()), r.stdout

    # Under the test daemon's own cgroup, so the session's cleanup removes it.
    parent = f"{wharfd.cgroup_parent}/honour-parent"
    r = ok(docker("run", "--rm", "--cgroupns", "host", "--cgroup-parent", parent, "busybox", "sh",
                  "-c", script))
    short = r.stdout.splitlines()[1]
    got = paths(r.stdout)
    assert len(got) == 1, r.stdout
    assert re.fullmatch(rf"/{parent}/{short}[0-9a-f]{{52}}", got.pop()), r.stdout


# ================================================================ refusals


SECCOMP_JSON = '{"defaultAction": "SCMP_ACT_ALLOW"}'

REFUSED = [
    (["-p", "8080:80"], "Wharf does not support Config.ExposedPorts yet (issue 16: networking)"),
    (["-P"], "Wharf does not support HostConfig.PublishAllPorts yet (issue 16: networking)"),
    (["--expose", "80"], "Wharf does not support Config.ExposedPorts yet (issue 16: networking)"),
    (["--mac-address", "02:42:ac:11:00:02"],
     "Wharf does not support NetworkingConfig.EndpointsConfig.default.MacAddress yet (issue 16: networking)"),
    (["--link", "wc-honour-nosuch:alias"], "Wharf does not support HostConfig.Links yet (issue 16: networking)"),
    (["--network", "container:wc-honour-nosuch"],
     'Wharf does not support HostConfig.NetworkMode "container:wc-honour-nosuch" yet (issue 16: networking)'),
    # The CLI reads the profile and sends its content.
    (["--security-opt", "seccomp={file}"],
     'Wharf does not support HostConfig.SecurityOpt "seccomp={"defaultAction":"SCMP_ACT_ALLOW"}" '
     'yet (issue 17: seccomp profiles)'),
    (["--security-opt", "apparmor=docker-default"],
     'Wharf does not support HostConfig.SecurityOpt "apparmor=docker-default"'),
    (["--runtime", "runc"], "Wharf does not support HostConfig.Runtime"),
    (["--storage-opt", "size=1G"], "Wharf does not support HostConfig.StorageOpt"),
    (["--device-read-bps", "/dev/null:1mb"], "Wharf does not support HostConfig.BlkioDeviceReadBps yet"),
    (["--cpu-rt-runtime", "1000"], "Wharf does not support HostConfig.CpuRealtimeRuntime yet"),
    (["--gpus", "all"], "Wharf does not support HostConfig.DeviceRequests"),
    (["--log-driver", "syslog"], 'Wharf does not support the "syslog" logging driver yet'),
]


@pytest.mark.parametrize("flags,words", REFUSED, ids=[" ".join(f) for f, _ in REFUSED])
def test_refused_options_create_nothing(docker, wharfd, tmp_path, flags, words):
    profile = tmp_path / "seccomp.json"
    profile.write_text(SECCOMP_JSON)
    flags = [f.replace("{file}", str(profile)) for f in flags]
    assert_refused(docker, wharfd, ["run", "--rm", *flags, "busybox", "true"], words)


def test_kernel_memory_is_dropped_by_the_cli_and_refused_by_the_daemon(docker, dclient, unique):
    # docker CLI 28 never sends KernelMemory on create (the flag is deprecated and ignored),
    # so the only way to ask is the API: docker-py sends it, and Wharf refuses it.
    hc = dclient.api.create_host_config(kernel_memory="10m")
    with pytest.raises(dockerpy.errors.APIError) as e:
        dclient.api.create_container("busybox", "true", host_config=hc, name=unique)
    assert e.value.response.status_code == 400
    assert "Wharf does not support HostConfig.KernelMemory yet" in str(e.value)
    assert not dclient.containers.list(all=True, filters={"name": f"^{unique}$"})


BAD_INPUT = [
    (["--memory", "1k"], "Minimum memory limit allowed is 6MB"),
    (["--memory", "32m", "--memory-swap", "16m"],
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    (["--memory-reservation", "64m", "--memory", "32m"],
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    (["--oom-score-adj", "2000"], "Invalid value 2000, range for oom score adj is [-1000, 1000]"),
    (["--cap-add", "NOPE"], 'unknown capability: "CAP_NOPE"'),
    (["--cpu-period", "100"],
     "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
    (["--cpus", "1", "--cpu-quota", "50000"],
     "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
]


@pytest.mark.parametrize("flags,words", BAD_INPUT, ids=[" ".join(f) for f, _ in BAD_INPUT])
def test_bad_input_in_dockers_words(docker, wharfd, flags, words):
    assert_refused(docker, wharfd, ["run", "--rm", *flags, "busybox", "true"], words)


def test_bad_input_against_the_host(docker, wharfd):
    ncpu = daemon_info(docker)["NCPU"]
    bad = str(max(7, ncpu + 1))
    assert_refused(docker, wharfd, ["run", "--rm", "--cpuset-cpus", bad, "busybox", "true"],
                   f"Requested CPUs are not available - requested {bad}, available: ")
    assert_refused(docker, wharfd, ["run", "--rm", "--cpus", str(ncpu + 1), "busybox", "true"],
                   f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    # The CLI checks a soft limit above the hard one before asking.
    assert_refused(docker, wharfd, ["run", "--rm", "--ulimit", "nofile=200:100", "busybox", "true"],
                   "ulimit soft limit must be less than or equal to hard limit: 200 > 100")


# ================================================================ inspect and update


def test_inspect_shows_what_runs_and_update_changes_it_live(docker, unique):
    ok(docker("run", "-d", "--name", unique, "--memory", "16m", "busybox", "sleep", "300"))
    hc = inspect_json(docker, unique)
    assert hc["Memory"] == 16 * MiB
    # Twice Memory by default; -1 (unlimited, as dockerd shows) where swap is not accounted.
    assert hc["MemorySwap"] == (32 * MiB if HOST["swap"] else -1)
    assert hc["ShmSize"] == 64 * MiB
    assert hc["IpcMode"] == "private"
    assert hc["CgroupnsMode"] == ("private" if V2 else "host")
    assert hc["OomKillDisable"] is False
    assert hc["PidsLimit"] is None
    lim = exec_limits(docker, unique)
    assert lim["memory"] == 16 * MiB and lim["pids"] is None, lim
    if HOST["swap"]:
        assert lim["memory_swap"] == 32 * MiB, lim
    r = ok(docker("exec", unique, "sh", "-c", "df -k /dev/shm | tail -1; readlink /proc/self/ns/cgroup"))
    shm, cgns = r.stdout.splitlines()
    assert shm.split()[1] == "65536"
    assert (cgns != host_ns("cgroup")) == V2

    # Live: the cgroup files change and inspect shows the new values.
    flags = ["--cpus", "0.5", "--pids-limit", "9", "--cpu-shares", "300", "--cpuset-cpus", "0"]
    if HOST["swap"]:
        flags += ["--memory", "24m", "--memory-swap", "48m"]
    ok(docker("update", *flags, unique))
    lim = exec_limits(docker, unique)
    assert (lim["cpu_quota"], lim["cpu_period"], lim["pids"], lim["cpus"]) == \
        (50_000, 100_000, 9, "0"), lim
    check_shares(lim, 300)
    hc = inspect_json(docker, unique)
    assert (hc["NanoCpus"], hc["PidsLimit"], hc["CpuShares"], hc["CpusetCpus"]) == \
        (500_000_000, 9, 300, "0")
    if HOST["swap"]:
        assert (lim["memory"], lim["memory_swap"]) == (24 * MiB, 48 * MiB), lim
        assert (hc["Memory"], hc["MemorySwap"]) == (24 * MiB, 48 * MiB)
        # Docker's rule: a memory limit above the swap limit needs a new swap limit too.
        r = docker("update", "--memory", "100m", unique)
        assert r.returncode == 1
        assert "Memory limit should be smaller than already set memoryswap limit, update the " \
               "memoryswap at the same time" in r.stderr, r.stderr
        # Memory alone, within the swap limit: swap stays.
        ok(docker("update", "--memory", "20m", unique))
        lim = exec_limits(docker, unique)
        assert (lim["memory"], lim["memory_swap"]) == (20 * MiB, 48 * MiB), lim

    # -1: unlimited again.
    ok(docker("update", "--pids-limit", "-1", unique))
    assert exec_limits(docker, unique)["pids"] is None

    # Invalid values and refused fields: Docker's words (or Wharf's), and nothing changes.
    ncpu = daemon_info(docker)["NCPU"]
    for flags, words in [
        (["--cpus", str(ncpu + 3)], f"Range of CPUs is from 0.01 to {ncpu}.00"),
        (["--memory", "1k"], "Minimum memory limit allowed is 6MB"),
        (["--cpuset-cpus", str(max(7, ncpu + 1))], "Requested CPUs are not available"),
        (["--kernel-memory", "10m"], "Wharf does not support KernelMemory yet"),
        (["--cpu-period", "50000"],
         "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"),
    ]:
        r = docker("update", *flags, unique)
        assert r.returncode != 0 and words in r.stderr, (flags, r.stderr)
    lim = exec_limits(docker, unique)
    assert (lim["cpu_quota"], lim["cpus"]) == (50_000, "0"), lim
    ok(docker("rm", "-f", unique))


def test_oom_kill_disable_survives_update(docker, unique):
    if not HOST["oom_kill_disable"]:
        pytest.skip("this host cannot disable the OOM killer")
    ok(docker("run", "-d", "--name", unique, "--memory", "16m", "--oom-kill-disable", "busybox",
              "sleep", "300"))
    assert exec_limits(docker, unique)["oom_kill_disable"] == 1
    assert inspect_json(docker, unique)["OomKillDisable"] is True
    # Any memory update rewrites memory.oom_control (libcgroups): it must keep the setting.
    ok(docker("update", "--memory-reservation", "8m", unique))
    lim = exec_limits(docker, unique)
    assert (lim["reservation"], lim["oom_kill_disable"]) == (8 * MiB, 1), lim
    ok(docker("rm", "-f", unique))


def test_update_of_a_stopped_container_applies_at_next_start(docker, unique):
    ok(docker("create", "--name", unique, "busybox", "sleep", "300"))
    flags = ["--pids-limit", "11", "--cpus", "0.25"]
    if HOST["swap"]:
        flags += ["--memory", "20m", "--memory-swap", "40m"]
    ok(docker("update", *flags, unique))
    hc = inspect_json(docker, unique)
    assert (hc["PidsLimit"], hc["NanoCpus"]) == (11, 250_000_000)
    if HOST["swap"]:
        assert (hc["Memory"], hc["MemorySwap"]) == (20 * MiB, 40 * MiB)
    ok(docker("start", unique))
    lim = exec_limits(docker, unique)
    assert (lim["pids"], lim["cpu_quota"]) == (11, 25_000), lim
    if HOST["swap"]:
        assert (lim["memory"], lim["memory_swap"]) == (20 * MiB, 40 * MiB), lim
    ok(docker("rm", "-f", unique))


# ================================================================ /info


def test_info_claims_what_the_host_can_do(docker):
    info = daemon_info(docker)
    assert info["CgroupVersion"] == ("2" if V2 else "1")
    assert info["MemoryLimit"] == HOST["memory"]
    assert info["SwapLimit"] == HOST["swap"]
    assert info["CpuCfsQuota"] == HOST["cfs"]
    assert info["CPUShares"] == HOST["shares"]
    assert info["CPUSet"] == HOST["cpuset"]
    assert info["PidsLimit"] == HOST["pids"]
    assert info["OomKillDisable"] == HOST["oom_kill_disable"]
    # ContainersPaused: test_refusals.py::test_info_counts_paused_containers.


# ================================================================ docker-py


def test_dockerpy_run_kwargs_are_honoured(dclient, wharfd):
    script = ("grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; ulimit -n; ulimit -Hn;"
              " df -k /dev/shm | tail -1; grep ' /t1 ' /proc/mounts; grep -w foo /etc/hosts;"
              " grep nameserver /etc/resolv.conf; id -G; stat -c '%t %T' /dev/mynull;"
              " cat /proc/sys/net/ipv4/ip_forward; grep -m1 -v name= /proc/self/cgroup;"
              " echo ===; " + DUMP)
    kwargs = dict(
        mem_limit="32m", nano_cpus=500_000_000, cpu_shares=512, pids_limit=7,
        cap_drop=["ALL"], cap_add=["NET_ADMIN"], security_opt=["no-new-privileges"],
        ulimits=[dockerpy.types.Ulimit(name="nofile", soft=100, hard=200)],
        tmpfs={"/t1": "size=1m"}, extra_hosts={"foo": "1.2.3.4"}, dns=["9.9.9.9"],
        group_add=["1234"], devices=["/dev/null:/dev/mynull:rw"],
        sysctls={"net.ipv4.ip_forward": "1"}, shm_size="8m",
        cgroup_parent=f"{wharfd.cgroup_parent}/honour-py", cgroupns="host",
    )
    if HOST["swap"]:
        kwargs["memswap_limit"] = "64m"
    out = dclient.containers.run("busybox", ["sh", "-c", script, "sh", *CG_FILES], remove=True,
                                 **kwargs).decode()
    head, dump = out.split("===\n")
    lines = head.splitlines()
    st = status_fields("\n".join(lines[:2]))
    assert caps(st["CapEff"]) == {"NET_ADMIN"} and st["NoNewPrivs"] == "1", lines
    assert lines[2:4] == ["100", "200"], lines
    assert lines[4].split()[1] == "8192", lines
    assert "size=1024k" in lines[5], lines
    assert lines[6].split() == ["1.2.3.4", "foo"], lines
    assert lines[7] == "nameserver 9.9.9.9", lines
    assert "1234" in lines[8].split(), lines
    assert lines[9] == "1 3", lines
    assert lines[10] == "1", lines
    assert f":/{wharfd.cgroup_parent}/honour-py/" in lines[11], lines
    lim = limits(parse_dump(dump))
    assert (lim["memory"], lim["cpu_quota"], lim["pids"]) == (32 * MiB, 50_000, 7), lim
    check_shares(lim, 512)
    if HOST["swap"]:
        assert lim["memory_swap"] == 64 * MiB, lim


def test_dockerpy_namespaces_and_update(dclient, unique):
    donor = dclient.containers.run("busybox", ["sleep", "300"], detach=True, name=unique,
                                   ipc_mode="shareable", mem_limit="16m")
    try:
        out = dclient.containers.run("busybox", ["sh", "-c", NS_SCRIPT], remove=True,
                                     pid_mode="host", ipc_mode="host").decode().split()
        assert out[:2] == [host_ns("pid"), host_ns("ipc")]
        want = donor.exec_run(["sh", "-c", "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc"])
        out = dclient.containers.run("busybox", ["sh", "-c", NS_SCRIPT], remove=True,
                                     pid_mode=f"container:{unique}",
                                     ipc_mode=f"container:{unique}").decode().split()
        assert out[:2] == want.output.decode().split()

        kw = dict(cpu_quota=20_000, cpu_period=100_000, cpu_shares=256)
        if HOST["swap"]:
            kw.update(mem_limit="24m", memswap_limit="48m")
        donor.update(**kw)
        donor.reload()
        hc = donor.attrs["HostConfig"]
        assert (hc["CpuQuota"], hc["CpuPeriod"], hc["CpuShares"]) == (20_000, 100_000, 256)
        r = donor.exec_run(["sh", "-c", DUMP, "sh", *CG_FILES])
        lim = limits(parse_dump(r.output.decode()))
        assert (lim["cpu_quota"], lim["cpu_period"]) == (20_000, 100_000), lim
        check_shares(lim, 256)
        if HOST["swap"]:
            assert (lim["memory"], lim["memory_swap"]) == (24 * MiB, 48 * MiB), lim
            assert (hc["Memory"], hc["MemorySwap"]) == (24 * MiB, 48 * MiB)
        with pytest.raises(dockerpy.errors.APIError) as e:
            donor.update(mem_limit="1k")
        assert "Minimum memory limit allowed is 6MB" in str(e.value)
    finally:
        donor.remove(force=True)


DOCKERPY_REFUSED = [
    (dict(ports={"80/tcp": 8080}), "Wharf does not support Config.ExposedPorts yet"),
    (dict(sysctls={"vm.swappiness": "1"}), 'sysctl "vm.swappiness" is not in a separate kernel namespace'),
    (dict(uts_mode="host", sysctls={"kernel.domainname": "x"}),
     'sysctl "kernel.domainname" not allowed in host UTS namespace'),
    (dict(devices=["/dev/null:/dev/mynull:rwx"]), "invalid device mode: rwx"),
    (dict(cap_add=["NOPE"]), 'unknown capability: "CAP_NOPE"'),
    (dict(mem_limit="32m", memswap_limit="16m"),
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    (dict(oom_score_adj=2000), "Invalid value 2000, range for oom score adj is [-1000, 1000]"),
    (dict(ulimits=[dockerpy.types.Ulimit(name="nofile", soft=200, hard=100)]),
     "ulimit soft limit must be less than or equal to hard limit: 200 > 100"),
]


@pytest.mark.parametrize("kwargs,words", DOCKERPY_REFUSED,
                         ids=[",".join(k) for k, _ in DOCKERPY_REFUSED])
def test_dockerpy_refusals(dclient, wharfd, kwargs, words):
    before = {c.id for c in dclient.containers.list(all=True)}
    on_disk = containers_on_disk(wharfd)
    with pytest.raises(dockerpy.errors.APIError) as e:
        dclient.containers.run("busybox", "true", remove=True, **kwargs)
    assert e.value.response.status_code == 400, e.value
    assert words in str(e.value), str(e.value)
    assert {c.id for c in dclient.containers.list(all=True)} <= before
    assert containers_on_disk(wharfd) <= on_disk
