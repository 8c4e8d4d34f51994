"""Mounts on containers (issue 15, item 2) through the real docker CLI and docker-py: named,
anonymous and image volumes, binds both ways, `--mount` with its options, `--volumes-from`,
copy-up of the image's content, `rm -v` and `--rm`, propagation as mountinfo shows it, and
inspect's `Mounts` field by field as dockerd shows them."""

import io
import json
import os
import subprocess
import tarfile

import pytest

from support import Api, ok


def vol_rm(docker, *names):
    docker("volume", "rm", "-f", *names)


def mounts_of(docker, name):
    """inspect's Mounts, by destination."""
    ms = json.loads(ok(docker("inspect", "-f", "{{json .Mounts}}", name)).stdout)
    return {m["Destination"]: m for m in ms}


def vols(wharfd):
    return wharfd.dir / "data" / "volumes"


@pytest.fixture
def hostdir(wharfd, unique):
    """A host directory for binds, named after the test, removed after it."""
    d = wharfd.dir / "binds" / unique
    d.mkdir(parents=True, exist_ok=True)
    yield d
    subprocess.run(["rm", "-rf", str(d)], check=False)


@pytest.fixture
def image_with_files(docker, busybox_tar, wharfd, unique):
    """busybox plus /srv/app (1000:1000, 0750) holding a file (0640), a symlink and a nested
    dir, with `VOLUME /srv/app`; its name."""
    tar = wharfd.dir / f"{unique}.tar"
    with tarfile.open(busybox_tar) as src, tarfile.open(tar, "w") as out:
        for m in src.getmembers():
            out.addfile(m, src.extractfile(m) if m.isfile() else None)

        def add(name, kind, mode, data=b"", link=""):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = kind, mode, 1000, 1000, 1_600_000_000
            ti.linkname = link
            ti.size = len(data)
            out.addfile(ti, io.BytesIO(data) if data else None)

        add("srv/app", tarfile.DIRTYPE, 0o750)
        add("srv/app/conf", tarfile.REGTYPE, 0o640, b"from-image\n")
        add("srv/app/link", tarfile.SYMTYPE, 0o777, link="conf")
        add("srv/app/sub", tarfile.DIRTYPE, 0o700)
        add("srv/app/sub/deep", tarfile.REGTYPE, 0o600, b"deep\n")
        add("srv/plain", tarfile.DIRTYPE, 0o755)
        add("srv/plain/x", tarfile.REGTYPE, 0o644, b"x\n")
    name = f"{unique}-img"
    ok(docker("import", "--change", "VOLUME /srv/app", str(tar), name, timeout=120))
    yield name
    docker("rmi", "-f", name)
    tar.unlink()


def test_named_volume_survives_rm_and_a_restart_and_is_shared(docker, wharfd, unique):
    vol, a, b = f"{unique}-v", f"{unique}-a", f"{unique}-b"
    try:
        ok(docker("run", "--name", a, "-v", f"{vol}:/data", "busybox",
                  "sh", "-c", "echo kept > /data/f"))
        # Created on first use, as `docker run -v name:/path` does.
        v = json.loads(ok(docker("volume", "inspect", vol)).stdout)[0]
        assert not v["Labels"]
        ok(docker("rm", a))
        assert (vols(wharfd) / vol / "_data" / "f").read_text() == "kept\n"
        # Two containers share it: one writes while the other runs.
        ok(docker("run", "-d", "--name", b, "-v", f"{vol}:/shared", "busybox", "sleep", "120"))
        ok(docker("run", "--rm", "-v", f"{vol}:/data", "busybox", "sh", "-c", "echo new > /data/g"))
        assert ok(docker("exec", b, "cat", "/shared/g")).stdout == "new\n"
        bid = ok(docker("inspect", "-f", "{{.Id}}", b)).stdout.strip()
        wharfd.kill9()
        wharfd.restart()
        r = ok(docker("run", "--rm", "-v", f"{vol}:/data", "busybox", "cat", "/data/f"))
        assert r.stdout == "kept\n"
        # The running user is adopted, and still counts as one.
        assert ok(docker("exec", b, "cat", "/shared/f")).stdout == "kept\n"
        r = docker("volume", "rm", vol)
        assert r.returncode != 0 and f"volume is in use - [{bid}]" in r.stderr, r.stderr
        ok(docker("rm", "-f", b))
        ok(docker("volume", "rm", vol))
    finally:
        docker("rm", "-f", a, b)
        vol_rm(docker, vol)


def test_read_only_mounts_refuse_writes(docker, hostdir, unique):
    vol = f"{unique}-v"
    try:
        for spec in [f"{vol}:/data:ro", f"{hostdir}:/data:ro"]:
            r = docker("run", "--rm", "-v", spec, "busybox", "touch", "/data/x")
            assert r.returncode != 0 and "Read-only file system" in r.stderr, (spec, r.stderr)
        r = docker("run", "--rm", "--mount", f"type=bind,src={hostdir},dst=/data,readonly",
                   "busybox", "touch", "/data/x")
        assert r.returncode != 0 and "Read-only file system" in r.stderr, r.stderr
        assert not (hostdir / "x").exists()
    finally:
        vol_rm(docker, vol)


def test_binds_both_ways_and_a_missing_source(docker, wharfd, hostdir):
    (hostdir / "in").write_text("from-host\n")
    r = ok(docker("run", "--rm", "-v", f"{hostdir}:/h", "busybox",
                  "sh", "-c", "cat /h/in; echo from-container > /h/out"))
    assert r.stdout == "from-host\n"
    assert (hostdir / "out").read_text() == "from-container\n"
    # A file bound onto a file.
    ok(docker("run", "--rm", "-v", f"{hostdir / 'in'}:/etc/motd:ro", "busybox",
              "grep", "from-host", "/etc/motd"))
    # -v makes a missing source directory; --mount refuses it in dockerd's words (400).
    made = hostdir / "made" / "deep"
    ok(docker("run", "--rm", "-v", f"{made}:/m", "busybox", "true"))
    assert made.is_dir()
    missing = hostdir / "missing"
    r = docker("run", "--rm", "--mount", f"type=bind,src={missing},dst=/m", "busybox", "true")
    assert r.returncode != 0
    assert (f'invalid mount config for type "bind": bind source path does not exist: {missing}'
            in r.stderr), r.stderr
    st, body = Api(wharfd.socket).call("POST", "/containers/create", {
        "Image": "busybox", "HostConfig": {"Mounts": [
            {"Type": "bind", "Source": str(missing), "Target": "/m"}]}})
    assert st == 400, (st, body)
    st, body = Api(wharfd.socket).call("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"Mounts": [
            {"Type": "bind", "Source": str(missing), "Target": "/m",
             "BindOptions": {"CreateMountpoint": True}}]}})
    assert st == 201, (st, body)
    ok(docker("start", "-a", body["Id"]))
    assert missing.is_dir()
    ok(docker("rm", body["Id"]))


def test_bad_mounts_in_dockerds_words(docker, wharfd, hostdir, unique):
    for args, want in [
        (["-v", f"{hostdir}:/x", "-v", f"{unique}:/x"], "Duplicate mount point: /x"),
        (["-v", "/a:/b:bogus"], "invalid mode: bogus"),
        (["-v", f"{unique}:/"], "destination can't be '/'"),
        (["--volumes-from", f"{unique}-ghost"], f"No such container: {unique}-ghost"),
    ]:
        r = docker("create", *args, "busybox", "true")
        assert r.returncode != 0 and want in r.stderr, (args, r.stderr)
    # An unknown volume driver is a missing plugin, as dockerd says it (a 404, which makes the
    # CLI try a pull: asked through the API here).
    st, body = Api(wharfd.socket).call("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"],
        "HostConfig": {"VolumeDriver": "wc-nosuch", "Binds": [f"{unique}-d:/d"]}})
    assert (st, body["message"]) == (404, f'create {unique}-d: error looking up volume plugin '
                                          'wc-nosuch: plugin "wc-nosuch" not found'), body
    assert f"{unique}-d" not in ok(docker("volume", "ls", "-q")).stdout.split()


def test_inspect_mounts_as_dockerd_shows_them(docker, wharfd, hostdir, unique):
    name, vol = f"{unique}-c", f"{unique}-v"
    try:
        ok(docker("create", "--name", name,
                  "-v", f"{vol}:/named",
                  "-v", f"{hostdir}:/bind:ro",
                  "-v", "/anon",
                  "--mount", f"type=volume,src={vol}-m,dst=/mv,volume-nocopy,volume-label=tier=db",
                  "--mount", f"type=bind,src={hostdir},dst=/mb,bind-propagation=rslave",
                  "--mount", "type=tmpfs,dst=/t",
                  "busybox", "true"))
        ms = mounts_of(docker, name)
        root = vols(wharfd)
        assert ms["/named"] == {"Type": "volume", "Name": vol,
                                "Source": str(root / vol / "_data"), "Destination": "/named",
                                "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}
        assert ms["/bind"] == {"Type": "bind", "Source": str(hostdir), "Destination": "/bind",
                               "Mode": "ro", "RW": False, "Propagation": "rprivate"}
        anon = ms["/anon"]
        assert len(anon["Name"]) == 64 and anon["Source"] == str(root / anon["Name"] / "_data")
        assert (anon["Type"], anon["Driver"], anon["Mode"], anon["RW"], anon["Propagation"]) == (
            "volume", "local", "", True, "")
        assert ms["/mv"]["Mode"] == "z" and ms["/mv"]["Name"] == f"{vol}-m"
        labels = json.loads(ok(docker("volume", "inspect", f"{vol}-m")).stdout)[0]["Labels"]
        assert labels == {"tier": "db"}, labels
        assert ms["/mb"] == {"Type": "bind", "Source": str(hostdir), "Destination": "/mb",
                             "Mode": "", "RW": True, "Propagation": "rslave"}
        assert ms["/t"] == {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "",
                            "RW": True, "Propagation": ""}
        # ps shows the same and filters on a volume's name or a destination.
        ps = lambda f: ok(docker("ps", "-aq", "--no-trunc", "--filter", f)).stdout.split()
        cid = ok(docker("inspect", "-f", "{{.Id}}", name)).stdout.strip()
        assert cid in ps(f"volume={vol}")
        assert cid in ps("volume=/anon")
        assert cid in ps(f"volume={anon['Name']}")
        assert cid not in ps(f"volume={unique}-nosuch")
        # In use (by a container that never ran): volume rm answers 409 naming it.
        st, body = Api(wharfd.socket).call("DELETE", f"/volumes/{vol}")
        assert st == 409 and body["message"] == f"remove {vol}: volume is in use - [{cid}]", body
        r = docker("volume", "rm", vol)
        assert r.returncode != 0 and "volume is in use" in r.stderr
        assert vol not in ok(docker("volume", "ls", "-q", "--filter", "dangling=true")).stdout.split()
        # rm -v takes the anonymous volume, not the named ones.
        ok(docker("rm", "-v", name))
        names = ok(docker("volume", "ls", "-q")).stdout.split()
        assert anon["Name"] not in names
        assert vol in names and f"{vol}-m" in names
        ok(docker("volume", "rm", vol, f"{vol}-m"))
    finally:
        docker("rm", "-f", name)
        vol_rm(docker, vol, f"{vol}-m")


def test_rm_keeps_anonymous_volumes_without_v_and_auto_remove_takes_them(docker, unique):
    name = f"{unique}-c"
    ok(docker("run", "--name", name, "-v", "/anon", "busybox", "true"))
    anon = mounts_of(docker, name)["/anon"]["Name"]
    ok(docker("rm", name))
    assert anon in ok(docker("volume", "ls", "-q")).stdout.split()
    vol_rm(docker, anon)
    before = set(ok(docker("volume", "ls", "-q")).stdout.split())
    ok(docker("run", "--rm", "-v", "/anon", "-v", f"{unique}-kept:/k", "busybox", "touch", "/anon/x"))
    after = set(ok(docker("volume", "ls", "-q")).stdout.split())
    assert after - before == {f"{unique}-kept"}, after - before
    vol_rm(docker, f"{unique}-kept")


def test_copy_up_of_the_images_content(docker, wharfd, image_with_files, unique):
    vol, c = f"{unique}-v", f"{unique}-c"
    try:
        # The image's VOLUME: an anonymous volume holding the image's files, owners, modes.
        r = ok(docker("run", "--name", c, image_with_files, "sh", "-c",
                      "stat -c '%n %u:%g %a' /srv/app /srv/app/conf /srv/app/sub/deep;"
                      " readlink /srv/app/link; cat /srv/app/conf"))
        assert r.stdout.splitlines() == [
            "/srv/app 1000:1000 750", "/srv/app/conf 1000:1000 640",
            "/srv/app/sub/deep 1000:1000 600", "conf", "from-image"], r.stdout
        ms = mounts_of(docker, c)
        assert ms["/srv/app"]["Type"] == "volume" and ms["/srv/app"]["Mode"] == ""
        src = ms["/srv/app"]["Source"]
        assert str(vols(wharfd) / ms["/srv/app"]["Name"] / "_data") == src
        st = os.stat(src)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 1000, 0o750)
        ok(docker("rm", "-v", c))
        # A named volume is filled once, when empty; what a container wrote then stays.
        ok(docker("run", "--rm", "-v", f"{vol}:/srv/plain", image_with_files, "sh", "-c",
                  "cat /srv/plain/x; echo mine > /srv/plain/x"))
        r = ok(docker("run", "--rm", "-v", f"{vol}:/srv/plain", image_with_files,
                      "cat", "/srv/plain/x"))
        assert r.stdout == "mine\n"
        # nocopy leaves it empty; a bind is never filled.
        r = ok(docker("run", "--rm", "-v", f"{vol}-n:/srv/plain:nocopy", image_with_files,
                      "ls", "-A", "/srv/plain"))
        assert r.stdout == ""
        # A data container that never ran already holds the image's content.
        ok(docker("create", "--name", c, image_with_files, "true"))
        r = ok(docker("run", "--rm", "--volumes-from", c, "busybox", "cat", "/srv/app/conf"))
        assert r.stdout == "from-image\n"
        # A mount over the image's VOLUME replaces it: no anonymous volume.
        ok(docker("run", "--rm", "--name", f"{c}-2", "--tmpfs", "/srv/app", image_with_files,
                  "true"))
    finally:
        docker("rm", "-f", "-v", c)
        vol_rm(docker, vol, f"{vol}-n")


def test_volumes_from_with_ro(docker, unique):
    donor, vol = f"{unique}-donor", f"{unique}-v"
    try:
        ok(docker("create", "--name", donor, "-v", f"{vol}:/shared", "-v", "/anon", "busybox", "true"))
        r = ok(docker("run", "--rm", "--volumes-from", donor, "busybox", "sh", "-c",
                      "echo hi > /shared/f && echo there > /anon/g && cat /shared/f /anon/g"))
        assert r.stdout == "hi\nthere\n"
        r = docker("run", "--rm", "--volumes-from", f"{donor}:ro", "busybox", "touch", "/shared/x")
        assert r.returncode != 0 and "Read-only file system" in r.stderr, r.stderr
        name = f"{unique}-c"
        ok(docker("create", "--name", name, "--volumes-from", f"{donor}:ro", "busybox", "true"))
        ms = mounts_of(docker, name)
        assert ms["/shared"]["Name"] == vol and ms["/shared"]["RW"] is False
        donor_anon = mounts_of(docker, donor)["/anon"]["Name"]
        assert ms["/anon"]["Name"] == donor_anon
        # rm -v of the borrower leaves the donor's anonymous volume (it is still in use).
        ok(docker("rm", "-v", name))
        assert donor_anon in ok(docker("volume", "ls", "-q")).stdout.split()
        ok(docker("rm", "-v", donor))
        assert donor_anon not in ok(docker("volume", "ls", "-q")).stdout.split()
    finally:
        docker("rm", "-f", "-v", donor)
        vol_rm(docker, vol)


def mountinfo_line(docker, args, dest):
    r = ok(docker("run", "--rm", *args, "busybox", "cat", "/proc/self/mountinfo"))
    lines = [l for l in r.stdout.splitlines() if l.split()[4] == dest]
    assert lines, r.stdout
    return lines[-1]


def optional_fields(line):
    f = line.split()
    return f[6:f.index("-")]


def test_propagation_is_what_was_asked(docker, wharfd, hostdir):
    # A host mount of the test's own, made shared, as rshared and rslave need.
    src = hostdir / "shared"
    src.mkdir()
    ok(subprocess.run(["mount", "-t", "tmpfs", "wc-prop", str(src)], capture_output=True,
                      text=True))
    try:
        ok(subprocess.run(["mount", "--make-shared", str(src)], capture_output=True, text=True))
        fields = optional_fields(mountinfo_line(docker, ["-v", f"{src}:/p:rshared"], "/p"))
        assert any(x.startswith("shared:") for x in fields), fields
        fields = optional_fields(mountinfo_line(docker, ["-v", f"{src}:/p:rslave"], "/p"))
        assert any(x.startswith("master:") for x in fields), fields
        assert not any(x.startswith("shared:") for x in fields), fields
        fields = optional_fields(mountinfo_line(docker, ["-v", f"{src}:/p"], "/p"))
        assert fields == [], fields
        # A read-only bind is read-only all the way down (rro), as dockerd makes it.
        line = mountinfo_line(docker, ["-v", f"{hostdir}:/p:ro"], "/p/shared")
        assert line.split()[5].startswith("ro"), line
        # NonRecursive binds the top mount only: the tmpfs under it is not there.
        r = ok(docker("run", "--rm", "--mount",
                      f"type=bind,src={hostdir},dst=/p,bind-recursive=disabled",
                      "busybox", "cat", "/proc/self/mountinfo"))
        dests = [l.split()[4] for l in r.stdout.splitlines()]
        assert "/p" in dests and "/p/shared" not in dests, r.stdout
        # A private source cannot be shared: dockerd's words.
        private = hostdir / "private"
        private.mkdir()
        r = docker("run", "--rm", "-v", f"{private}:/p:rshared", "busybox", "true")
        assert r.returncode != 0 and "is not a shared mount" in r.stderr, r.stderr
    finally:
        subprocess.run(["umount", "-l", str(src)], check=False)


def test_dockerpy_run_with_volumes(dclient, wharfd, hostdir, unique):
    vol = f"{unique}-v"
    (hostdir / "f").write_text("py\n")
    try:
        out = dclient.containers.run(
            "busybox", ["sh", "-c", "cat /h/f; echo w > /v/w; cat /v/w"],
            volumes={str(hostdir): {"bind": "/h", "mode": "ro"}, vol: {"bind": "/v", "mode": "rw"}},
            remove=True)
        assert out == b"py\nw\n"
        assert dclient.volumes.get(vol).name == vol
        c = dclient.containers.create("busybox", "true", volumes=[f"{vol}:/x:ro"])
        try:
            m = {x["Destination"]: x for x in c.attrs["Mounts"]}
            assert m["/x"]["Name"] == vol and m["/x"]["RW"] is False and m["/x"]["Mode"] == "ro"
        finally:
            c.remove(v=True)
    finally:
        try:
            dclient.volumes.get(vol).remove(force=True)
        except Exception:
            pass


def test_volume_events_of_a_run(docker, unique):
    import time
    vol = f"{unique}-v"
    since = str(int(time.time()) - 1)
    try:
        cid = ok(docker("run", "-d", "-v", f"{vol}:/d", "busybox", "true")).stdout.strip()
        ok(docker("wait", cid))
        ok(docker("rm", cid))
        r = ok(docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                      "--filter", "type=volume", "--filter", f"volume={vol}", "--format",
                      "{{.Action}} {{.Actor.Attributes.container}} {{.Actor.Attributes.destination}}"))
        assert r.stdout.splitlines()[:3] == [
            "create <no value> <no value>", f"mount {cid} /d", f"unmount {cid} <no value>"], r.stdout
    finally:
        vol_rm(docker, vol)


def test_mount_volume_opt_creates_a_volume_with_driver_options(docker, wharfd, unique):
    """`--mount type=volume,volume-opt=...` creates the volume with the local driver's options:
    a tmpfs, mounted while the container runs and gone from the host after it."""
    vol = f"{unique}-tmpfs"
    try:
        r = ok(docker("run", "--rm", "--mount",
                      f"type=volume,src={vol},dst=/data,volume-opt=type=tmpfs,"
                      "volume-opt=device=tmpfs,volume-opt=o=size=8m",
                      "busybox", "sh", "-c", "echo hi > /data/f && grep ' /data ' /proc/mounts"))
        assert r.stdout.split()[2] == "tmpfs", r.stdout
        assert "size=8192k" in r.stdout, r.stdout
        opts = json.loads(ok(docker("volume", "inspect", "-f", "{{json .Options}}", vol)).stdout)
        assert opts == {"type": "tmpfs", "device": "tmpfs", "o": "size=8m"}
        data = vols(wharfd) / vol / "_data"
        mounted = [line.split()[4] for line in open("/proc/self/mountinfo")]
        assert str(data) not in mounted, "the volume's tmpfs outlived its only container"
        assert not (data / "f").exists()
    finally:
        vol_rm(docker, vol)


@pytest.mark.parametrize("kind", ["volume", "bind"])
def test_commit_and_diff_leave_out_what_is_below_a_mount(docker, hostdir, unique, kind):
    """A volume's or a bind's content is the mount's, never the container's layer: diff does
    not list it and commit does not take it."""
    vol, img = f"{unique}-v", f"{unique}-img"
    spec = f"{vol}:/data" if kind == "volume" else f"{hostdir}:/data"
    try:
        ok(docker("run", "--name", unique, "-v", spec, "busybox", "sh", "-c",
                  "echo secret > /data/f && echo kept > /kept"))
        changes = ok(docker("diff", unique)).stdout.splitlines()
        assert "A /kept" in changes and not any(c.startswith(("A /data/", "C /data/"))
                                                for c in changes), changes
        ok(docker("commit", unique, img))
        out = ok(docker("run", "--rm", img, "sh", "-c",
                        "cat /kept; ls -A /data 2>/dev/null | wc -l")).stdout.split()
        assert out == ["kept", "0"], out
    finally:
        docker("rm", "-f", unique)
        docker("rmi", "-f", img)
        vol_rm(docker, vol)


def test_cp_reaches_a_stopped_containers_volume_and_bind(docker, hostdir, unique, tmp_path):
    """A stopped container's mounts are bound over its rootfs for the copy, as dockerd does."""
    vol = f"{unique}-v"
    try:
        ok(docker("create", "--name", unique, "-v", f"{vol}:/vol", "-v", f"{hostdir}:/bind",
                  "busybox", "true"))
        src = tmp_path / "in.txt"
        src.write_text("into the volume\n")
        ok(docker("cp", str(src), f"{unique}:/vol/in.txt"))
        ok(docker("cp", str(src), f"{unique}:/bind/in.txt"))
        assert (hostdir / "in.txt").read_text() == "into the volume\n"
        out = tmp_path / "out.txt"
        ok(docker("cp", f"{unique}:/vol/in.txt", str(out)))
        assert out.read_text() == "into the volume\n"
        r = ok(docker("run", "--rm", "-v", f"{vol}:/v", "busybox", "cat", "/v/in.txt"))
        assert r.stdout == "into the volume\n"
    finally:
        docker("rm", "-f", unique)
        vol_rm(docker, vol)
