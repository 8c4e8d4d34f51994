"""Layer ingest under hostile input (issue 13, item 1): decompression bombs, oversized layers,
a full data root, clients that hang up, entries the kernel refuses. Each refusal is a clear
error naming the limit (and its wharfd flag) or the layer's entry, never a path of the data
root; nothing partial is kept and no image is tagged.

This module's daemon runs with small limits so that the bombs stay small (never more than a
few tens of MiB on disk): at most 64 MiB per layer, and a ratio limit of 20x past 16 MiB.
The reserve case starts a daemon of its own (--min-free-space 100%)."""

import gzip
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from hostile_client import api, message

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import wharfd_harness as H  # noqa: E402

MIB = 1 << 20
WHARFD_ARGS = [
    "--max-layer-size", "64m",
    "--max-layer-ratio", "20",
    "--layer-ratio-floor", "16m",
]


# ---------------------------------------------------------------- helpers


def tar_of(entries):
    """A tar of (TarInfo, bytes-or-None) pairs, in memory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for info, data in entries:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_info(name, size, pax=None):
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mode = 0o644
    ti.mtime = 1_600_000_000
    if pax:
        ti.pax_headers = dict(pax)
    return ti


def zeros_tar_chunks(size, chunk=MIB):
    """A plain tar of one file of `size` zero bytes, as chunks (never whole in memory)."""
    head = tarfile.TarInfo("zeros")
    head.size = size
    head.mtime = 1_600_000_000
    yield head.tobuf(format=tarfile.GNU_FORMAT)
    left = size
    while left:
        n = min(chunk, left)
        yield bytes(n)
        left -= n
    pad = (-size) % 512
    yield bytes(pad) + bytes(1024)


def gzip_of_zeros(size):
    """A gzipped tar of one file of `size` zero bytes: ~size/1000 on the wire."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as gz:
        for c in zeros_tar_chunks(size):
            gz.write(c)
    return out.getvalue()


def data_root(daemon):
    return daemon.dir / "data"


def listing(daemon, sub):
    try:
        return sorted(os.listdir(data_root(daemon) / sub))
    except FileNotFoundError:
        return []


def blobs(daemon):
    return set(listing(daemon, "content/blobs/sha256"))


def assert_nothing_left(daemon, blobs_before):
    """No temp file, no snapshot, no new blob, within a generous bound (a cancelled import
    finishes its cleanup on its own thread)."""
    deadline = time.monotonic() + 30
    while True:
        left = {
            "ingest": listing(daemon, "content/ingest"),
            "snapshots": listing(daemon, "snapshots"),
            "new blobs": sorted(blobs(daemon) - blobs_before),
        }
        if not any(left.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"left behind: {left}")
        time.sleep(0.1)


def import_(daemon, body, repo, timeout=120):
    return api(daemon, "POST", f"/v1.41/images/create?fromSrc=-&repo={repo}", body=body,
               timeout=timeout)


def assert_no_image(daemon, repo):
    status, _, _ = api(daemon, "GET", f"/v1.41/images/{repo}/json")
    assert status == 404, f"image {repo} exists"


def assert_no_root_path(daemon, msg):
    assert str(daemon.dir) not in msg, f"message leaks the daemon's directories: {msg}"


# ---------------------------------------------------------------- cases


def test_gzip_bomb_refused_by_ratio(daemon, outside_unchanged):
    before = blobs(daemon)
    bomb = gzip_of_zeros(48 * MIB)  # under --max-layer-size, far over 20x
    assert len(bomb) < 1 * MIB
    status, _, body = import_(daemon, (bomb[i:i + 65536] for i in range(0, len(bomb), 65536)),
                              "hostile-bomb-ratio")
    msg = message(body)
    assert status == 400, (status, msg)
    assert "decompression bomb" in msg and "--max-layer-ratio" in msg, msg
    assert_no_root_path(daemon, msg)
    assert_nothing_left(daemon, before)
    assert_no_image(daemon, "hostile-bomb-ratio")


def test_layer_over_max_size_refused(daemon, outside_unchanged):
    before = blobs(daemon)
    # Plain tar: ratio 1, so only the size limit can stop it.
    status, _, body = import_(daemon, zeros_tar_chunks(80 * MIB), "hostile-too-big")
    msg = message(body)
    assert status == 400, (status, msg)
    assert "layer too large" in msg and "64MiB" in msg and "--max-layer-size" in msg, msg
    assert_no_root_path(daemon, msg)
    assert_nothing_left(daemon, before)
    assert_no_image(daemon, "hostile-too-big")


def test_layer_within_limits_is_imported(daemon, outside_unchanged):
    # Under the floor any ratio is fine; under the size limit any size is.
    layer = gzip_of_zeros(8 * MIB)
    status, _, body = import_(daemon, layer, "hostile-ok")
    assert status == 200, body
    assert b"sha256:" in body
    status, _, body = api(daemon, "DELETE", "/v1.41/images/hostile-ok")
    assert status == 200, body


def test_invalid_capability_xattr_is_400_naming_the_entry(daemon, outside_unchanged):
    before = blobs(daemon)
    layer = tar_of([(file_info("bin/ping", 1, {"SCHILY.xattr.security.capability": "garbage"}),
                     b"x")])
    status, _, body = import_(daemon, layer, "hostile-xattr")
    msg = message(body)
    assert status == 400, (status, msg)
    assert '"bin/ping" in the layer: invalid argument' in msg, msg
    assert_no_root_path(daemon, msg)
    assert_nothing_left(daemon, before)
    assert_no_image(daemon, "hostile-xattr")


def test_5000_character_path_is_400_without_our_paths(daemon, outside_unchanged):
    before = blobs(daemon)
    layer = tar_of([(file_info("d" * 5000, 1), b"x")])
    status, _, body = import_(daemon, layer, "hostile-longpath")
    msg = message(body)
    assert status == 400, (status, msg)
    assert "in the layer: file name too long" in msg, msg
    assert len(msg) < 500, msg
    assert_no_root_path(daemon, msg)
    assert_nothing_left(daemon, before)


def test_client_hanging_up_mid_import_leaves_nothing(daemon, outside_unchanged):
    before = blobs(daemon)
    layer = gzip_of_zeros(12 * MIB)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(str(daemon.socket))
    try:
        s.sendall(b"POST /v1.41/images/create?fromSrc=-&repo=hostile-hangup HTTP/1.1\r\n"
                  b"Host: docker\r\nTransfer-Encoding: chunked\r\n\r\n")
        half = layer[:len(layer) // 2]
        for i in range(0, len(half), 32768):
            c = half[i:i + 32768]
            s.sendall(b"%x\r\n" % len(c) + c + b"\r\n")
        deadline = time.monotonic() + 30
        while not listing(daemon, "snapshots"):
            assert time.monotonic() < deadline, "the import never started unpacking"
            time.sleep(0.05)
    finally:
        s.close()
    assert_nothing_left(daemon, before)
    assert_no_image(daemon, "hostile-hangup")
    deadline = time.monotonic() + 30
    while "cancelled, the client went away" not in daemon.log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the daemon did not log the cancelled import"
        time.sleep(0.1)


def test_bad_limit_flags_are_refused(daemon):
    # Honour or refuse: a value wharfd cannot read stops it at start, naming the flag.
    for flag, value in [("--max-layer-size", "12x"), ("--min-free-space", "120%"),
                        ("--max-layer-ratio", "-1"), ("--layer-ratio-floor", "lots")]:
        p = subprocess.run([str(H.wharfd_bin()), f"{flag}={value}"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0, (flag, value)
        assert flag in p.stderr, p.stderr


@pytest.fixture(scope="module")
def full_daemon():
    """A daemon whose reserve can never be met: every ingest is refused before it starts."""
    if os.geteuid() != 0:
        pytest.skip("hostile-input tests need root (wharfd creates namespaces and mounts)")
    d = H.WharfDaemon("hostile-ingest-full", H.wharfd_bin())
    d.extra_args = ["--min-free-space", "100%"]
    try:
        d.start()
        yield d
    finally:
        errors = d.cleanup()
        assert not errors, f"cleanup of {d.name} failed: {errors}"


def test_free_space_reserve_refuses_the_ingest(full_daemon):
    before = blobs(full_daemon)
    layer = tar_of([(file_info("a", 1), b"x")])
    status, _, body = import_(full_daemon, layer, "hostile-full")
    msg = message(body)
    # The daemon's condition, not the client's input: 500, as dockerd answers ENOSPC.
    assert status == 500, (status, msg)
    assert "no space left on device" in msg and "--min-free-space=100%" in msg, msg
    assert_no_root_path(full_daemon, msg)
    assert_nothing_left(full_daemon, before)
    assert_no_image(full_daemon, "hostile-full")


def test_info_shows_the_limits_in_force(daemon):
    # Honest about what is enforced: `docker info` lists the limits under the storage driver.
    status, _, body = api(daemon, "GET", "/v1.41/info")
    assert status == 200
    rows = dict(json.loads(body)["DriverStatus"])
    assert rows["Max Layer Size"] == "64MiB", rows
    assert rows["Max Layer Ratio"] == "20x past 16MiB", rows
    assert rows["Min Free Space"].endswith("(min(5%, 2GiB))"), rows
