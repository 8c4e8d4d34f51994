#!/usr/bin/env python3
"""A stand-in for wharfd that leaves behind everything the real one can: stacked mounts under
the data root, a detached "shim" and a container "init" with pid files under the exec root, and
processes in cgroups under the cgroup parent. It answers every HTTP request with 200 and
`Api-Version: 1.44`. Used only to test wharf-testkit's cleanup."""

import argparse
import os
import signal
import socket
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("-H", dest="host", required=True)
ap.add_argument("--data-root", required=True)
ap.add_argument("--exec-root", required=True)
ap.add_argument("--pidfile", required=True)
ap.add_argument("--log-level")
ap.add_argument("--cgroup-parent", required=True)
ap.add_argument("--shim-path")
a = ap.parse_args()

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with open(a.pidfile, "w") as f:
    f.write(f"{os.getpid()}\n")

cid = f"c{os.getpid()}"
mnt = os.path.join(a.data_root, "mnt", cid)
os.makedirs(mnt, exist_ok=True)
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", mnt], check=True)
os.makedirs(os.path.join(mnt, "sub"))
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", os.path.join(mnt, "sub")], check=True)
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", mnt], check=True)  # stacked on top

state = os.path.join(a.exec_root, "containers", cid)
os.makedirs(state)

cgroups = []
for base in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
    if os.path.exists(os.path.join(base, "cgroup.procs")):
        d = os.path.join(base, a.cgroup_parent, cid)
        try:
            os.makedirs(d, exist_ok=True)
            cgroups.append(d)
        except OSError:
            pass
with open(os.path.join(a.data_root, f"cgroups-{cid}.txt"), "w") as f:
    f.write("\n".join(cgroups))


def join_cgroups():
    for d in cgroups:
        try:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            pass


# The shim names its state dir on its command line; the init does not.
shim = subprocess.Popen(["sh", "-c", "sleep 1000; : \"$0\"", state], start_new_session=True)
init = subprocess.Popen(["sleep", "1001"], start_new_session=True, preexec_fn=join_cgroups)
stray = subprocess.Popen(["sleep", "1002"], start_new_session=True, preexec_fn=join_cgroups)
with open(os.path.join(state, "shim.pid"), "w") as f:
    f.write(str(shim.pid))
with open(os.path.join(state, "init.pid"), "w") as f:
    f.write(str(init.pid))
with open(os.path.join(a.data_root, f"stray-{cid}.pid"), "w") as f:
    f.write(str(stray.pid))

path = a.host.removeprefix("unix://")
if os.path.exists(path):
    os.unlink(path)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(16)
while True:
    conn, _ = srv.accept()
    try:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.44\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    except OSError:
        pass
    finally:
        conn.close()
