"""Hostile layers through `POST /images/create?fromSrc=-` (docker import): every trick to write
outside the layer is refused with a 400 naming it, or the entry lands inside the layer and
nowhere else; a refused layer leaves no image behind.

Each test also watches a bait directory outside the daemon's roots (that links in the layers
point at) and /etc/passwd (that links and writes aim for): both must be untouched.

Devices, fifos and setuid files are created inside the layer, as dockerd does when it runs as
root outside a user namespace (moby `pkg/archive` `createTarFile`): they exist only in the
image's rootfs, never on the host.
"""

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from hostile_client import api

BAIT = Path(f"/tmp/wharf-test-hostile-archives-bait-{os.getpid()}")
REG, DIR, SYM, LNK = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
CHR, BLK, FIFO = tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def bait(daemon, outside_unchanged):
    BAIT.mkdir(exist_ok=True)
    passwd = _sha("/etc/passwd")
    try:
        yield BAIT
        assert sorted(os.listdir(BAIT)) == [], "a layer wrote outside the data root"
        assert _sha("/etc/passwd") == passwd, "a layer changed /etc/passwd"
    finally:
        for p in BAIT.iterdir():
            p.unlink()
        BAIT.rmdir()


def layer(*entries, fmt=tarfile.GNU_FORMAT):
    """A tar of `entries`: dicts with name, type, link, mode, dev=(major, minor), data, pax."""
    if any("pax" in e for e in entries):
        fmt = tarfile.PAX_FORMAT  # GNU format would drop the records silently
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.type = e.get("type", REG)
            ti.mode = e.get("mode", 0o644)
            ti.linkname = e.get("link", "")
            ti.devmajor, ti.devminor = e.get("dev", (0, 0))
            if "pax" in e:
                ti.pax_headers = e["pax"]
            data = e.get("data", b"")
            ti.size = len(data) if ti.type == REG else 0
            t.addfile(ti, io.BytesIO(data) if ti.type == REG else None)
    return b.getvalue()


def import_layer(daemon, repo, body):
    """Imports `body` as `repo:t`; returns (status, the error message or "")."""
    status, _, out = api(daemon, "POST", f"/images/create?fromSrc=-&repo={repo}&tag=t", body,
                         timeout=120)
    if status != 200:
        return status, json.loads(out)["message"]
    # A 200 streams progress; an error after the headers would be an errorDetail line.
    for line in out.splitlines():
        msg = json.loads(line)
        if "errorDetail" in msg:
            return status, msg["errorDetail"]["message"]
    return status, ""


def image_exists(daemon, ref):
    return api(daemon, "GET", f"/images/{ref}/json")[0] == 200


def remove_image(daemon, ref):
    api(daemon, "DELETE", f"/images/{ref}?force=1")


def snapshots(daemon):
    d = daemon.dir / "data" / "snapshots"
    return sorted(os.listdir(d)) if d.is_dir() else []


def in_data_root(daemon, name):
    """Every path under the data root whose last component is `name` (lstat'ed)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(daemon.dir / "data"):
        for n in dirnames + filenames:
            if n == name:
                out.append(Path(dirpath) / n)
    return out


REFUSED = {
    "dotdot": ([dict(name=f"../../../../..{BAIT}/x", data=b"x")],
               "escapes the layer root"),
    "dotdot-inside": ([dict(name="a/../../x", data=b"x")], "escapes the layer root"),
    "dotdot-dir": ([dict(name="../up", type=DIR, mode=0o755)], "escapes the layer root"),
    "pax-path-dotdot": ([dict(name="ok", data=b"x", pax={"path": "../../escape"})],
                        "escapes the layer root"),
    "symlink-abs-then-write": ([dict(name="l", type=SYM, link=str(BAIT)),
                                dict(name="l/through", data=b"x")],
                               "a parent directory is a symlink"),
    "symlink-rel-then-write": ([dict(name="l", type=SYM, link=f"../../../../../..{BAIT}"),
                                dict(name="l/through", data=b"x")],
                               "a parent directory is a symlink"),
    "symlink-etc-then-write": ([dict(name="d", type=SYM, link="/etc"),
                                dict(name="d/passwd", data=b"root::0:0::/:/bin/sh\n")],
                               "a parent directory is a symlink"),
    "symlink-then-dir-through": ([dict(name="l", type=SYM, link=str(BAIT)),
                                  dict(name="l/sub", type=DIR, mode=0o755)],
                                 "a parent directory is a symlink"),
    "hardlink-abs-outside": ([dict(name="h", type=LNK, link="/etc/passwd")], "invalid layer"),
    "hardlink-dotdot": ([dict(name="h", type=LNK, link="../../../../../etc/passwd")],
                        "escapes the layer root"),
    "hardlink-later-entry": ([dict(name="h", type=LNK, link="later"),
                              dict(name="later", data=b"x")],
                             "target is not a file of this layer"),
    "hardlink-missing": ([dict(name="h", type=LNK, link="nothing")],
                         "target is not a file of this layer"),
    "whiteout-dotdot": ([dict(name="../.wh.x")], "escapes the layer root"),
    "whiteout-of-dotdot": ([dict(name="a/.wh...")], "whiteout of an invalid name"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_escaping_layer_is_refused(daemon, bait, case):
    entries, words = REFUSED[case]
    before = snapshots(daemon)
    status, msg = import_layer(daemon, f"hostile-archives-{case}", layer(*entries))
    assert status == 400, (status, msg)
    assert words in msg, msg
    assert not image_exists(daemon, f"hostile-archives-{case}:t")
    assert snapshots(daemon) == before, "a refused layer left a snapshot behind"


def test_escaping_layer_is_refused_gzipped(daemon, bait):
    body = gzip.compress(layer(dict(name=f"../../..{BAIT}/x", data=b"x")))
    status, msg = import_layer(daemon, "hostile-archives-gzip", body)
    assert status == 400 and "escapes the layer root" in msg, (status, msg)
    assert not image_exists(daemon, "hostile-archives-gzip:t")


@pytest.mark.parametrize("body,words", [
    (b"", "empty layer stream"),
    (b"not a tar at all" * 100, "not a tar archive"),
    (gzip.compress(b"\0" * 10)[:-4], "not a tar archive"),
], ids=["empty", "garbage", "truncated-gzip"])
def test_not_a_layer_is_refused(daemon, bait, body, words):
    status, msg = import_layer(daemon, "hostile-archives-garbage", body)
    assert status == 400 and words in msg, (status, msg)
    assert not image_exists(daemon, "hostile-archives-garbage:t")


def _accepted(daemon, repo, *entries, fmt=tarfile.GNU_FORMAT):
    status, msg = import_layer(daemon, repo, layer(*entries, fmt=fmt))
    assert status == 200 and msg == "", (status, msg)
    assert image_exists(daemon, f"{repo}:t")


def test_absolute_paths_land_inside_the_layer(daemon, bait):
    repo = "hostile-archives-abs"
    try:
        _accepted(daemon, repo, dict(name=f"{BAIT}/hostile-abs-file", data=b"x"),
                  dict(name="/etc/hostile-abs-passwd", data=b"x"))
        for n in ("hostile-abs-file", "hostile-abs-passwd"):
            found = in_data_root(daemon, n)
            assert len(found) == 1 and found[0].is_file(), found
        assert not Path("/etc/hostile-abs-passwd").exists()
    finally:
        remove_image(daemon, f"{repo}:t")


@pytest.mark.parametrize("kind,dev,test", [
    (CHR, (1, 3), stat.S_ISCHR),
    (BLK, (8, 0), stat.S_ISBLK),
    (FIFO, (0, 0), stat.S_ISFIFO),
], ids=["char", "block", "fifo"])
def test_device_nodes_are_made_only_inside_the_layer(daemon, bait, kind, dev, test):
    repo = f"hostile-archives-dev-{kind.decode()}"
    name = f"hostile-node-{kind.decode()}"
    try:
        _accepted(daemon, repo, dict(name=f"dev/{name}", type=kind, dev=dev, mode=0o600),
                  dict(name=f"{BAIT}/{name}", type=kind, dev=dev, mode=0o600))
        found = in_data_root(daemon, name)
        assert len(found) == 2, found
        for p in found:
            st = p.lstat()
            assert test(st.st_mode), (p, oct(st.st_mode))
            if kind != FIFO:
                assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == dev
    finally:
        remove_image(daemon, f"{repo}:t")


def test_setuid_bits_are_kept_inside_the_layer(daemon, bait):
    repo = "hostile-archives-setuid"
    try:
        _accepted(daemon, repo, dict(name="bin/hostile-suid", data=b"#!/bin/sh\n", mode=0o4755),
                  dict(name="bin/hostile-sgid", data=b"x", mode=0o2755))
        (suid,) = in_data_root(daemon, "hostile-suid")
        (sgid,) = in_data_root(daemon, "hostile-sgid")
        assert stat.S_IMODE(suid.lstat().st_mode) == 0o4755
        assert stat.S_IMODE(sgid.lstat().st_mode) == 0o2755
    finally:
        remove_image(daemon, f"{repo}:t")


def test_hard_link_to_a_symlink_then_overwrite_stays_inside(daemon, bait):
    # `h` becomes a second name of the symlink itself (link(2) does not follow); writing `h`
    # replaces that name, never the file the symlink points at.
    repo = "hostile-archives-link-to-symlink"
    try:
        _accepted(daemon, repo, dict(name="s", type=SYM, link="/etc/passwd"),
                  dict(name="h", type=LNK, link="s"),
                  dict(name="h", data=b"overwritten"))
    finally:
        remove_image(daemon, f"{repo}:t")


def test_directory_over_a_symlink_replaces_it(daemon, bait):
    repo = "hostile-archives-dir-over-symlink"
    try:
        _accepted(daemon, repo, dict(name="d", type=SYM, link=str(BAIT)),
                  dict(name="d", type=DIR, mode=0o755),
                  dict(name="d/hostile-inside", data=b"x"))
        (p,) = in_data_root(daemon, "hostile-inside")
        assert p.parent.is_dir() and not p.parent.is_symlink()
    finally:
        remove_image(daemon, f"{repo}:t")


def test_symlink_targets_are_stored_verbatim(daemon, bait):
    # Targets are resolved only inside a container's root, so any target is fine: absolute,
    # climbing, or 4000 bytes long (a pax linkpath).
    repo = "hostile-archives-symlink-targets"
    long_target = "/" + "y" * 4000
    try:
        _accepted(daemon, repo, dict(name="hostile-abs", type=SYM, link="/etc/passwd"),
                  dict(name="hostile-up", type=SYM, link="../../../../etc"),
                  dict(name="hostile-long", type=SYM, link="x", pax={"linkpath": long_target}),
                  fmt=tarfile.PAX_FORMAT)
        assert os.readlink(in_data_root(daemon, "hostile-abs")[0]) == "/etc/passwd"
        assert os.readlink(in_data_root(daemon, "hostile-up")[0]) == "../../../../etc"
        assert os.readlink(in_data_root(daemon, "hostile-long")[0]) == long_target
    finally:
        remove_image(daemon, f"{repo}:t")


def test_overlay_xattrs_from_a_layer_are_dropped(daemon, bait):
    # A layer must not forge overlayfs metadata (opaque dirs, redirects).
    repo = "hostile-archives-overlay-xattr"
    try:
        _accepted(daemon, repo,
                  dict(name="hostile-xattr-dir", type=DIR, mode=0o755,
                       pax={"SCHILY.xattr.trusted.overlay.opaque": "y",
                            "SCHILY.xattr.trusted.overlay.redirect": "/etc"}),
                  dict(name="hostile-xattr-file", data=b"x",
                       pax={"SCHILY.xattr.user.hostile": "kept"}),
                  fmt=tarfile.PAX_FORMAT)
        (d,) = in_data_root(daemon, "hostile-xattr-dir")
        assert not [x for x in os.listxattr(d, follow_symlinks=False)
                    if x.startswith("trusted.overlay.")]
        (f,) = in_data_root(daemon, "hostile-xattr-file")
        assert os.getxattr(f, "user.hostile") == b"kept"
    finally:
        remove_image(daemon, f"{repo}:t")


def test_whiteouts_stay_inside_the_layer(daemon, bait):
    repo = "hostile-archives-whiteouts"
    try:
        _accepted(daemon, repo, dict(name=".wh..wh..opq"), dict(name="a/.wh.hostile-gone"),
                  dict(name=".wh..wh.plnk", type=DIR, mode=0o755))
        (w,) = in_data_root(daemon, "hostile-gone")
        # overlayfs's own whiteout: a 0/0 character device.
        assert stat.S_ISCHR(w.lstat().st_mode) and w.lstat().st_rdev == 0
    finally:
        remove_image(daemon, f"{repo}:t")


def test_deep_path_inside_path_max_is_accepted(daemon, bait):
    repo = "hostile-archives-deep"
    name = "d/" * 1500 + "hostile-deep"
    try:
        _accepted(daemon, repo, dict(name=name, data=b"x"), fmt=tarfile.PAX_FORMAT)
    finally:
        remove_image(daemon, f"{repo}:t")
