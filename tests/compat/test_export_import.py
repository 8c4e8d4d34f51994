"""`docker export | docker import` round trip (issue 15, Tests): a container's files keep their
modes (setuid, 0600, a sticky 1777 dir), owners (1234:5678, also on a symlink), symlinks
(absolute and relative), hard links (one inode), mtimes, a `security.capability` xattr and a
100 MiB sparse file's content and size. The capability is set with `setcap` on the host, since
busybox has neither setcap nor getfattr, and read back with `getcap` after `docker cp`."""

import hashlib
import shutil
import subprocess
import tarfile

import pytest

from support import ok

SETUP = r"""
set -e
mkdir /rt && mv /capfile /rt/capfile && cd /rt
echo suid > suid && chmod 4755 suid
echo secret > private && chmod 0600 private
mkdir sticky && chmod 1777 sticky
echo owned > owned && chown 1234:5678 owned && chmod 0640 owned
mkdir owneddir && chown 1234:5678 owneddir && chmod 0750 owneddir
ln -s /rt/owned abs_link
ln -s ../rt/private rel_link && chown -h 1234:5678 rel_link
echo hard > hard1 && ln hard1 hard2
dd if=/dev/zero of=sparse bs=1 count=1 seek=100M 2>/dev/null
touch -d '2001-02-03 04:05:06' owned private suid hard1 sparse capfile
touch -d '2002-03-04 05:06:07' sticky owneddir
"""

ITEMS = ["suid", "private", "sticky", "owned", "owneddir", "abs_link", "rel_link", "hard1",
         "hard2", "sparse", "capfile"]
# Mode, owner, size (not for dirs: the filesystem's business), links, name with target, mtime
# (not for symlinks, whose own mtime neither dockerd nor Wharf keeps).
STAT = "%n|%F|%a|%u|%g|%s|%h|%N|%Y"
STAT_ALL = "cd /rt && stat -c '" + STAT + "' " + " ".join(ITEMS)


def parse(out):
    got = {}
    for line in out.splitlines():
        name, kind, mode, uid, gid, size, links, quoted, mtime = line.split("|")
        if kind == "directory":
            size = "-"
        if kind == "symbolic link":
            mtime = "-"
        got[name] = (kind, mode, uid, gid, size, links, quoted, mtime)
    return got


def getcap(path):
    return subprocess.run(["getcap", str(path)], capture_output=True, text=True).stdout.strip()


@pytest.fixture
def capfile(tmp_path):
    if shutil.which("setcap") is None or shutil.which("getcap") is None:
        pytest.skip("setcap/getcap not installed (libcap2-bin, scripts/install-deps.sh)")
    f = tmp_path / "capfile"
    f.write_bytes(b"needs raw sockets\n")
    subprocess.run(["setcap", "cap_net_raw+ep", str(f)], check=True)
    got = getcap(f)
    if "cap_net_raw" not in got:
        pytest.skip(f"{tmp_path} keeps no security.capability ({got!r})")
    return f


def test_export_import_keeps_modes_owners_links_xattrs_sparse_files(
        docker, wharfd, unique, tmp_path, capfile):
    img = f"{unique}-img"
    try:
        ok(docker("create", "--name", unique, "busybox", "sh", "-c", SETUP + STAT_ALL))
        ok(docker("cp", str(capfile), f"{unique}:/capfile"))
        before = parse(ok(docker("start", "-a", unique)).stdout)
        # Control: the capability is there before the round trip (else cp, not export, lost it).
        orig = tmp_path / "orig"
        orig.mkdir()
        ok(docker("cp", f"{unique}:/rt/capfile", str(orig / "capfile")))
        assert "cap_net_raw" in getcap(orig / "capfile"), getcap(orig / "capfile")

        # Sanity of the fixture itself.
        assert before["suid"][1] == "4755" and before["sticky"][1] == "1777"
        assert before["owned"][2:4] == ("1234", "5678")
        assert before["rel_link"][2:4] == ("1234", "5678")
        assert before["sparse"][4] == str(100 * 1024 * 1024 + 1)
        assert before["hard1"][5] == "2"

        exported = tmp_path / "export.tar"
        r = subprocess.run(f"docker export {unique} > {exported}", shell=True,
                           env=wharfd.env(), capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr
        with tarfile.open(exported) as t:
            cap = t.getmember("rt/capfile")
            assert "SCHILY.xattr.security.capability" in cap.pax_headers, cap.pax_headers
            h2 = t.getmember("rt/hard2")
            h1 = t.getmember("rt/hard1")
            assert (h1.islnk() and h1.linkname == "rt/hard2") or \
                   (h2.islnk() and h2.linkname == "rt/hard1")
            # As dockerd's, the export carries the holes as zeros (no GNU/PAX sparse entries);
            # the import gives them back.
            sparse = t.getmember("rt/sparse")
            assert sparse.isreg() and sparse.size == 100 * 1024 * 1024 + 1
        exported.unlink()

        r = subprocess.run(f"docker export {unique} | docker import - {img}", shell=True,
                           env=wharfd.env(), capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr
        after = parse(ok(docker("run", "--rm", img, "sh", "-c", STAT_ALL)).stdout)
        for name in ITEMS:
            assert after[name] == before[name], (name, before[name], after[name])

        assert after["abs_link"][6] == "'abs_link' -> '/rt/owned'"
        assert after["rel_link"][6] == "'rel_link' -> '../rt/private'"
        out = ok(docker("run", "--rm", img, "sh", "-c",
                        "cd /rt && readlink abs_link && readlink rel_link && stat -c %i hard1 hard2"
                        " && cat abs_link rel_link && md5sum sparse"
                        " && du -k sparse | cut -f1")).stdout.split()
        assert out[:2] == ["/rt/owned", "../rt/private"]
        assert out[2] == out[3], "hard links no longer share an inode"
        assert out[4:6] == ["owned", "secret"]
        zeros = hashlib.md5(bytes(100 * 1024 * 1024 + 1)).hexdigest()
        assert out[6] == zeros
        # Holes are kept: 100 MiB of zeros take (next to) no disk after the round trip.
        assert int(out[8]) < 1024, f"sparse file takes {out[8]} KiB after import"

        # The capability survives: copied out of a container of the imported image.
        ok(docker("create", "--name", f"{unique}-2", img, "true"))
        back = tmp_path / "back"
        back.mkdir()
        ok(docker("cp", f"{unique}-2:/rt/capfile", str(back / "capfile")))
        assert "cap_net_raw" in getcap(back / "capfile"), getcap(back / "capfile")
    finally:
        docker("rm", "-f", f"{unique}-2")
        docker("rmi", "-f", img)
