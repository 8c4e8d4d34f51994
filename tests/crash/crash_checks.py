"""The crash suite's checks after a restart: every object where the clients' journal says it may
be (`check_objects`), and nothing that no object owns (`orphans`)."""

import json
import os
import re
import sqlite3
import time
from pathlib import Path

import wharfd_harness as H
from crash_clients import BUSYBOX
from crash_model import LIVE, NO, PAUSED, YES

ID_IN_PATH = re.compile(r"/containers/([0-9a-f]{64})(?:/|\s|$)")
SETTLE = 20.0  # bound for asynchronous teardown to finish before leftovers are violations


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


def freezer_state(cgroup_parent, cid):
    """THAWED / FREEZING / FROZEN of the container's cgroup (v1 freezer, or v2 cgroup.freeze as
    THAWED/FROZEN), or None without one."""
    root = Path("/sys/fs/cgroup")
    try:
        if (root / "cgroup.controllers").exists():
            return "FROZEN" if (root / cgroup_parent / cid / "cgroup.freeze").read_text().strip() == "1" else "THAWED"
        return (root / "freezer" / cgroup_parent / cid / "freezer.state").read_text().strip()
    except OSError:
        return None


def check_objects(rnd, api, stale=frozenset()):
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
            frozen = freezer_state(rnd.d.cgroup_parent, i["Id"])
            if frozen != ("FROZEN" if st["Paused"] else "THAWED"):
                v(f"{c}: inspect says Paused {st['Paused']}, its cgroup's freezer says {frozen}")
        elif st["Pid"] != 0:
            v(f"{c}: not running, but pid {st['Pid']}")
    for cid, c in listed.items():
        if cid not in accounted and cid not in stale:
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

    vols = {x["Name"] for x in (api.volumes().get("Volumes") or [])}
    for m in rnd.vols:
        if m.exists == YES and m.name not in vols:
            v(f"{m}: acknowledged and not removed, but it is not listed")
        if m.exists == NO and m.name in vols:
            v(f"{m}: its removal was acknowledged, but it is listed")
    strays = vols - {m.name for m in rnd.vols}
    if strays:
        v(f"volumes no client created: {sorted(strays)}")


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
    vols = {x["Name"] for x in (api.volumes().get("Volumes") or [])}
    p = data / "volumes"
    for e in sorted(p.iterdir()) if p.is_dir() else []:
        if e.name not in vols:
            out.append(f"data-root volumes/{e.name} without a volume")
    for name in vols:
        if not (p / name / "_data").is_dir():
            out.append(f"volume {name} without its directory")

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


def settled_orphans(daemon, api, known=frozenset(), bound=SETTLE):
    """`orphans` not in `known` (leftovers an earlier round already reported, which nothing
    removes), given up to `bound` s to go (a removal tears down in the background); what is
    still there then."""
    deadline = time.monotonic() + bound
    while True:
        o = [x for x in orphans(daemon, api) if x not in known]
        if not o or time.monotonic() > deadline:
            return o
        time.sleep(0.2)


def remove_everything(rnd, api, known=frozenset(), stale=frozenset()):
    """`rm -f` of every container and `rmi -f` of every image but busybox; each must work."""
    import docker

    for c in api.containers(all=True):
        try:
            api.remove_container(c["Id"], force=True)
        except docker.errors.DockerException as e:
            if c["Id"] not in stale:
                rnd.violation(f"container {c['Id'][:12]} {c.get('Names')}: rm -f failed: {e}")
    busybox = api.inspect_image(BUSYBOX)["Id"]
    for i in api.images(all=True):
        if i["Id"] != busybox:
            try:
                api.remove_image(i["Id"], force=True)
            except docker.errors.DockerException as e:
                rnd.violation(f"image {i['Id'][:19]} {i.get('RepoTags')}: rmi -f failed: {e}")
    for x in api.volumes().get("Volumes") or []:
        try:
            api.remove_volume(x["Name"])
        except docker.errors.DockerException as e:
            rnd.violation(f"volume {x['Name']}: rm failed: {e}")
    left = [c["Id"][:12] for c in api.containers(all=True) if c["Id"] not in stale]
    if left:
        rnd.violation(f"containers left after rm -f of all: {left}")
    imgs = [i["Id"][:19] for i in api.images(all=True) if i["Id"] != busybox]
    if imgs:
        rnd.violation(f"images left after rmi -f of all: {imgs}")
    for o in settled_orphans(rnd.d, api, known):
        rnd.violation(f"after removing everything: {o}")
