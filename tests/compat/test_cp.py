"""`docker cp` and `docker export` (issue 15, items 3 and 5) through the real docker CLI,
docker-py and raw HTTP: files, directories, `-` (tar streams), `-a`, `-L`, on created and running
containers; dockerd's errors; an image full of hostile symlinks; hostile tars PUT straight onto
the socket. Every hostile case checks that nothing was written on the host (marker files) and
that the container's files outside the target are unchanged."""

import base64
import http.client
import io
import json
import os
import subprocess
import tarfile
import uuid

import docker as dockerpy
import pytest

from support import Api, ok


def sh(docker, c, script):
    return ok(docker("exec", c, "sh", "-c", script)).stdout


def run_bg(docker, name, *extra, image="busybox"):
    ok(docker("run", "-d", "--name", name, *extra, image, "sleep", "600"))
    return name


@pytest.fixture
def hostile_image(wharfd, busybox_tar, busybox, tmp_path_factory):
    """busybox plus symlinks that lead to the host if followed from the host's side: `/slash ->
    /`, `/up -> ../../../../..`, `/hostabs -> <a host dir with a marker>`, `/tmp/etc -> /etc`."""
    host = tmp_path_factory.mktemp("cp-host")
    (host / "marker").write_text("host secret")
    out = tmp_path_factory.mktemp("cp-img") / "hostile.tar"
    with tarfile.open(busybox_tar, "r:*") as src, tarfile.open(out, "w") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        for name, target in [("slash", "/"), ("up", "../../../../.."), ("hostabs", str(host)),
                             ("tmp/etc", "/etc"), ("loop1", "loop2"), ("loop2", "loop1")]:
            t = tarfile.TarInfo(name)
            t.type, t.linkname, t.mode = tarfile.SYMTYPE, target, 0o777
            dst.addfile(t)
    from wharfd_harness import run_docker
    run_docker(wharfd, "import", str(out), "wc-cp-hostile", check=True, timeout=120)
    yield "wc-cp-hostile", host
    run_docker(wharfd, "rmi", "-f", "wc-cp-hostile")


def host_snapshot(d):
    return sorted((str(p), p.read_bytes() if p.is_file() else b"") for p in d.rglob("*"))


@pytest.mark.parametrize("running", [False, True], ids=["created", "running"])
def test_files_and_dirs_both_ways(docker, wharfd, unique, tmp_path, running):
    c = unique
    if running:
        run_bg(docker, c)
    else:
        ok(docker("create", "--name", c, "busybox", "sleep", "600"))
    (tmp_path / "f.txt").write_text("hello cp\n")
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "x").write_text("x")
    (d / "exe").write_text("#!/bin/sh\n")
    os.chmod(d / "exe", 0o4755)
    os.symlink("sub/x", d / "ln")

    ok(docker("cp", str(tmp_path / "f.txt"), f"{c}:/tmp/"))
    ok(docker("cp", str(tmp_path / "f.txt"), f"{c}:/tmp/renamed.txt"))
    ok(docker("cp", str(d), f"{c}:/tmp/"))
    out = tmp_path / "out"
    out.mkdir()
    ok(docker("cp", f"{c}:/tmp/f.txt", str(out / "f.txt")))
    ok(docker("cp", f"{c}:/tmp/renamed.txt", str(out)))
    ok(docker("cp", f"{c}:/tmp/dir", str(out)))
    ok(docker("cp", f"{c}:/etc/passwd", str(out)))
    assert (out / "f.txt").read_text() == "hello cp\n"
    assert (out / "renamed.txt").read_text() == "hello cp\n"
    assert (out / "dir" / "sub" / "x").read_text() == "x"
    assert os.readlink(out / "dir" / "ln") == "sub/x"
    assert os.stat(out / "dir" / "exe").st_mode & 0o7777 == 0o4755
    assert "root:" in (out / "passwd").read_text()
    # `dir/.` copies the contents only.
    ok(docker("cp", f"{c}:/tmp/dir/.", str(out / "contents")))
    assert (out / "contents" / "sub" / "x").read_text() == "x"
    if not running:
        # The whole root, named as dockerd names it (`/`, `/bin/`, ...).
        ok(docker("cp", f"{c}:/", str(out / "rootcopy")))
        assert (out / "rootcopy" / "bin" / "busybox").is_file()
        assert (out / "rootcopy" / "tmp" / "f.txt").read_text() == "hello cp\n"
    # A created container's layer was mounted in a private namespace only: nothing on the host.
    assert str(wharfd.dir / "exec" / "archive") not in open("/proc/self/mountinfo").read()
    if not running:
        ok(docker("start", c))
    assert sh(docker, c, "cat /tmp/f.txt /tmp/dir/sub/x; stat -c %a /tmp/dir/exe") == "hello cp\nx4755\n"


@pytest.mark.parametrize("running", [False, True], ids=["created", "running"])
def test_tar_streams_with_dash(docker, wharfd, unique, running):
    c = unique
    if running:
        run_bg(docker, c)
    else:
        ok(docker("create", "--name", c, "busybox", "sleep", "600"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"streamed\n"
        ti = tarfile.TarInfo("in/s.txt")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    ok(docker("cp", "-", f"{c}:/tmp", input=buf.getvalue()))
    raw = subprocess.run(["docker", "cp", f"{c}:/tmp/in", "-"], env=wharfd.env(),
                         capture_output=True, timeout=60)
    assert raw.returncode == 0, raw.stderr
    with tarfile.open(fileobj=io.BytesIO(raw.stdout)) as t:
        names = t.getnames()
        assert t.extractfile("in/s.txt").read() == b"streamed\n"
    assert names[0] == "in", names


def test_archive_mode_and_follow_link(docker, unique, tmp_path):
    c = run_bg(docker, unique, "--user", "1234:5678")
    f = tmp_path / "owned"
    f.write_text("o")
    os.chown(f, 4321, 4321)
    ok(docker("cp", str(f), f"{c}:/tmp/plain"))
    ok(docker("cp", "-a", str(f), f"{c}:/tmp/archived"))
    # Without -a the archive's ids stay (the CLI sends the local file's); with it, the
    # container's User.
    assert sh(docker, c, "stat -c %u:%g /tmp/plain /tmp/archived") == "4321:4321\n1234:5678\n"

    sh(docker, c, "echo target > /tmp/t; ln -s /tmp/t /tmp/link")
    ok(docker("cp", f"{c}:/tmp/link", str(tmp_path / "nofollow")))
    assert os.path.islink(tmp_path / "nofollow")
    ok(docker("cp", "-L", f"{c}:/tmp/link", str(tmp_path / "follow")))
    assert not os.path.islink(tmp_path / "follow")
    assert (tmp_path / "follow").read_text() == "target\n"


def test_dockerd_errors(docker, wharfd, unique, tmp_path):
    c = unique
    ok(docker("create", "--name", c, "busybox", "true"))
    r = docker("cp", f"{c}:/nonexistent", str(tmp_path))
    assert r.returncode != 0
    assert f"Could not find the file /nonexistent in container {c}" in r.stderr, r.stderr
    (tmp_path / "f").write_text("f")
    r = docker("cp", str(tmp_path / "f"), f"{c}:/no/such/dir/f")
    assert r.returncode != 0 and "Could not find the file /no/such/dir in container" in r.stderr, r.stderr
    api = Api(wharfd.socket)
    st, body = api.call("PUT", f"/v1.44/containers/{c}/archive?path=/etc/passwd")
    assert st == 400 and body["message"] == "extraction point is not a directory", (st, body)
    st, body = api.call("HEAD", f"/v1.44/containers/{c}/archive")
    assert st == 400
    st, body = api.call("GET", f"/v1.44/containers/{c}/archive")
    assert (st, body["message"]) == (400, "bad parameter: pathcannot be empty")
    st, body = api.call("GET", "/v1.44/containers/wc-no-such/archive?path=/")
    assert st == 404 and "No such container" in body["message"]


def test_stat_header_is_dockerds(docker, wharfd, unique):
    c = run_bg(docker, unique)
    sh(docker, c, "ln -s /etc/passwd /tmp/pw")
    conn = http.client.HTTPConnection("localhost", timeout=60)
    conn.sock = Api(wharfd.socket).conn()
    conn.request("HEAD", f"/v1.44/containers/{c}/archive?path=/tmp/pw")
    r = conn.getresponse()
    r.read()
    assert r.status == 200
    stat = json.loads(base64.b64decode(r.getheader("X-Docker-Container-Path-Stat")))
    assert stat["name"] == "pw"
    assert stat["mode"] & (1 << 27), stat  # Go's os.ModeSymlink
    assert stat["linkTarget"] == "/etc/passwd"
    conn.request("HEAD", f"/v1.44/containers/{c}/archive?path=/tmp")
    r = conn.getresponse()
    r.read()
    stat = json.loads(base64.b64decode(r.getheader("X-Docker-Container-Path-Stat")))
    assert stat["mode"] & (1 << 31) and stat["mode"] & (1 << 20), stat  # ModeDir | ModeSticky
    conn.close()


@pytest.mark.parametrize("running", [False, True], ids=["created", "running"])
def test_hostile_symlinks_in_the_image_stay_inside(docker, unique, tmp_path, hostile_image, running):
    image, host = hostile_image
    before = host_snapshot(host)
    c = unique
    if running:
        run_bg(docker, c, image=image)
    else:
        ok(docker("create", "--name", c, image, "sleep", "600"))
    out = tmp_path / "out"
    out.mkdir()
    # Read through them: the container's files, never the host's.
    ok(docker("cp", f"{c}:/up/etc/passwd", str(out / "p1")))
    ok(docker("cp", f"{c}:/slash/etc/passwd", str(out / "p2")))
    ok(docker("cp", f"{c}:/tmp/etc/passwd", str(out / "p3")))
    ok(docker("cp", "-L", f"{c}:/tmp/etc", str(out / "etcdir")))
    (out / "p4").write_bytes((out / "etcdir" / "passwd").read_bytes())
    host_passwd = open("/etc/passwd").read()
    for p in ("p1", "p2", "p3", "p4"):
        assert (out / p).read_text() != host_passwd
    r = docker("cp", f"{c}:/hostabs/marker", str(out / "m"))
    assert r.returncode != 0 and "Could not find the file" in r.stderr, r.stderr
    r = docker("cp", f"{c}:/loop1/x", str(out / "l"))
    assert r.returncode != 0
    # Write through them: into the container's root, never the host's.
    name = f"wc-cp-{uuid.uuid4().hex[:8]}"
    (tmp_path / name).write_text("in")
    ok(docker("cp", str(tmp_path / name), f"{c}:/up/tmp/"))
    ok(docker("cp", str(tmp_path / name), f"{c}:/slash/"))
    r = docker("cp", str(tmp_path / name), f"{c}:/hostabs/")
    assert r.returncode != 0
    assert not os.path.exists(f"/tmp/{name}") and not os.path.exists(f"/{name}")
    assert host_snapshot(host) == before
    if not running:
        ok(docker("start", c))
    assert sh(docker, c, f"cat /tmp/{name} /{name}") == "inin"


def tar_of(entries):
    """A tar written byte by byte: names and link names exactly as given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, kind, link, data in entries:
            ti = tarfile.TarInfo("placeholder")
            ti.type, ti.linkname, ti.size, ti.mode = kind, link, len(data), 0o644
            if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                ti.devmajor, ti.devminor = 1, 3
            hdr = bytearray(ti.tobuf(tarfile.GNU_FORMAT))
            hdr[0:100] = name.encode().ljust(100, b"\0")
            hdr[148:156] = b"        "
            hdr[148:156] = b"%06o\0 " % sum(hdr[:512])
            buf.write(hdr[:512])
            buf.write(data + b"\0" * ((512 - len(data) % 512) % 512))
    return buf.getvalue()


def raw_put(api, c, path, body):
    conn = http.client.HTTPConnection("localhost", timeout=60)
    conn.sock = api.conn()
    conn.request("PUT", f"/v1.44/containers/{c}/archive?path={path}", body=body,
                 headers={"Content-Type": "application/x-tar"})
    r = conn.getresponse()
    out = r.read()
    conn.close()
    return r.status, (json.loads(out) if out else {})


@pytest.mark.parametrize("running", [False, True], ids=["created", "running"])
def test_hostile_tars_are_refused_with_400(docker, wharfd, unique, running):
    c = unique
    if running:
        run_bg(docker, c)
    else:
        ok(docker("create", "--name", c, "busybox", "sleep", "600"))
    api = Api(wharfd.socket)
    ev = f"wc-evil-{uuid.uuid4().hex[:8]}"
    S, R, L, C, B = tarfile.SYMTYPE, tarfile.REGTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE
    cases = {
        "dot-dot": ([(f"../../../../{ev}", R, "", b"x")], "is outside of"),
        "absolute": ([(f"/{ev}", R, "", b"x")], "is outside of"),
        "symlink-out": ([(ev, S, "../../../../..", b"")], "invalid symlink"),
        "symlink-then-file": ([("lnk", S, "/", b""), (f"lnk/{ev}", R, "", b"x")], "is outside of"),
        "symlink-then-dir": ([("lnk2", S, "/etc", b""), ("lnk2/passwd", R, "", b"owned")],
                             "is outside of"),
        "hardlink-out": ([(ev, L, "../etc/passwd", b"")], "invalid hardlink"),
        "char-device": ([(ev, C, "", b"")], "device nodes"),
        "block-device": ([(ev, B, "", b"")], "device nodes"),
    }
    for what, (entries, words) in cases.items():
        st, body = raw_put(api, c, "/tmp", tar_of(entries))
        assert st == 400, (what, st, body)
        assert words in body["message"], (what, body)
        assert not os.path.exists(f"/{ev}") and not os.path.exists(f"/tmp/{ev}"), what
    if not running:
        ok(docker("start", c))
    out = sh(docker, c, f"cat /etc/passwd; ls / /tmp /etc | grep -c {ev} || true")
    assert "owned" not in out and out.rstrip().endswith("0"), out


@pytest.mark.parametrize("running", [False, True], ids=["created", "running"])
def test_export_streams_the_rootfs(docker, wharfd, unique, tmp_path, running):
    c = unique
    if running:
        run_bg(docker, c)
        sh(docker, c, "echo mine > /root-file")
    else:
        ok(docker("create", "--name", c, "busybox", "sleep", "600"))
        (tmp_path / "rf").write_text("mine\n")
        ok(docker("cp", str(tmp_path / "rf"), f"{c}:/root-file"))
    out = tmp_path / "x.tar"
    ok(docker("export", "-o", str(out), c))
    names = subprocess.run(["tar", "-tf", str(out)], capture_output=True, text=True,
                           check=True).stdout.split()
    assert "bin/busybox" in names and "root-file" in names and "etc/passwd" in names, names[:20]
    assert not any(n.startswith("proc/") and n != "proc/" for n in names), names
    with tarfile.open(out) as t:
        assert t.extractfile("root-file").read() == b"mine\n"


def test_dockerpy_put_get_export(dclient, unique):
    c = dclient.containers.run("busybox", "sleep 600", detach=True, name=unique)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"from docker-py\n"
        ti = tarfile.TarInfo("py.txt")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    assert c.put_archive("/tmp", buf.getvalue()) is True
    stream, stat = c.get_archive("/tmp/py.txt")
    assert stat["name"] == "py.txt" and stat["size"] == 15, stat
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as t:
        assert t.extractfile("py.txt").read() == b"from docker-py\n"
    with pytest.raises(dockerpy.errors.NotFound):
        c.get_archive("/nope")
    exported = b"".join(c.export())
    with tarfile.open(fileobj=io.BytesIO(exported)) as t:
        assert "tmp/py.txt" in t.getnames()


def test_a_running_copy_sees_the_containers_own_mounts(docker, unique, tmp_path):
    """A running container is reached through its init's root: a copy lands in (and reads
    from) the tmpfs mounted in its namespace, not the directory of its layer under it."""
    c = run_bg(docker, unique, "--tmpfs", "/scratch")
    (tmp_path / "f").write_text("in tmpfs\n")
    ok(docker("cp", str(tmp_path / "f"), f"{c}:/scratch/"))
    assert sh(docker, c, "cat /scratch/f; grep -c ' /scratch ' /proc/mounts") == "in tmpfs\n1\n"
    ok(docker("cp", f"{c}:/scratch/f", str(tmp_path / "back")))
    assert (tmp_path / "back").read_text() == "in tmpfs\n"
    ok(docker("stop", "-t", "0", c))
    # Stopped, the tmpfs is gone: the layer's directory is empty, as with dockerd.
    r = docker("cp", f"{c}:/scratch/f", str(tmp_path / "gone"))
    assert r.returncode != 0 and "Could not find the file /scratch/f" in r.stderr, r.stderr


def test_no_overwrite_of_a_directory_by_a_file(docker, unique, tmp_path):
    """The CLI always sends `noOverwriteDirNonDir=true`: a file never replaces a directory."""
    c = unique
    ok(docker("create", "--name", c, "busybox", "true"))
    d = tmp_path / "d"
    d.mkdir()
    (d / "x").write_text("file")
    ok(docker("cp", str(tmp_path / "d"), f"{c}:/tmp/"))
    (tmp_path / "x").mkdir()
    r = docker("cp", str(tmp_path / "x"), f"{c}:/tmp/d/")
    assert r.returncode != 0
    assert 'cannot overwrite non-directory "/tmp/d/x" with directory "/tmp/d"' in r.stderr, r.stderr
