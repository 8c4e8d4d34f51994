"""docker diff, docker commit and docker import --change (issue 15, items 4-6) through the real
docker CLI and docker-py: the writable layer's changes (added, modified, deleted, opaque
dirs), a commit with changes, message and author that runs and shows its parent and history,
a commit of a running container (paused, then running again), Docker's errors, and a tar
whose headers leave numeric fields blank."""

import io
import json
import tarfile
import time

import docker as dockerpy
import pytest

from support import ok, inspect, wait_for


def diff(docker, name):
    return ok(docker("diff", name)).stdout.splitlines()


def rmi(docker, *names):
    docker("rmi", "-f", *names)


def test_diff_lists_added_modified_deleted_and_opaque_dirs(docker, unique):
    ok(docker("create", "--name", unique, "busybox", "sh", "-c",
              "echo x > /etc/new && echo y >> /etc/passwd && rm /etc/group"
              " && rm -rf /home && mkdir /home && touch /home/fresh"
              " && mkdir -p /a/b && touch /a/b/c"))
    # Created, never started: nothing changed.
    assert diff(docker, unique) == []
    ok(docker("start", "-a", unique))
    got = diff(docker, unique)
    want = [
        "A /a", "A /a/b", "A /a/b/c",
        "C /etc", "D /etc/group", "A /etc/new", "C /etc/passwd",
        # /home was removed and made again: opaque, so what was below is deleted.
        "C /home", "A /home/fresh", "D /home/wharfuser",
    ]
    for line in want:
        assert line in got, f"{line!r} not in {got}"
    # dockerd's order: a directory before what it holds.
    assert got.index("C /etc") < got.index("A /etc/new")
    assert got.index("A /a") < got.index("A /a/b") < got.index("A /a/b/c")
    r = docker("diff", f"{unique}-nope")
    assert r.returncode != 0 and f"No such container: {unique}-nope" in r.stderr, r.stderr


def test_a_container_that_changed_nothing_has_no_changes(docker, unique):
    """The runtime's mount points (/etc/hosts, /etc/hostname, /etc/resolv.conf) are dockerd's
    init layer, not the container's changes: no diff, and a commit adds no layer."""
    img = f"{unique}-img"
    try:
        ok(docker("run", "--name", unique, "busybox", "true"))
        assert diff(docker, unique) == []
        ok(docker("commit", unique, img))
        info = json.loads(ok(docker("image", "inspect", img)).stdout)[0]
        base = json.loads(ok(docker("image", "inspect", "busybox")).stdout)[0]
        assert info["RootFS"]["Layers"] == base["RootFS"]["Layers"]
        assert info["Size"] == base["Size"]
    finally:
        rmi(docker, img)


def test_commit_with_changes_runs_and_shows_parent_and_history(docker, unique, busybox):
    img = f"{unique}:v1"
    try:
        ok(docker("run", "--name", unique, "busybox", "sh", "-c", "echo hello > /greeting"))
        cid = inspect(docker, unique, "{{.Id}}")
        since = str(int(time.time()) - 1)
        iid = ok(docker("commit", "-c", 'CMD ["cat", "/greeting"]', "-c", "ENV A=1",
                        "-m", "msg", "-a", "me", unique, img)).stdout.strip()
        assert iid.startswith("sha256:")
        assert ok(docker("run", "--rm", img)).stdout == "hello\n"
        assert ok(docker("run", "--rm", img, "sh", "-c", "echo $A")).stdout == "1\n"

        info = json.loads(ok(docker("image", "inspect", img)).stdout)[0]
        assert info["Id"] == iid
        assert info["Parent"] == busybox
        assert info["Author"] == "me"
        assert info["Container"] == cid
        assert info["Config"]["Cmd"] == ["cat", "/greeting"]
        assert "A=1" in info["Config"]["Env"]
        assert len(info["RootFS"]["Layers"]) == 2
        assert info["ContainerConfig"]["Cmd"] == ["sh", "-c", "echo hello > /greeting"]

        hist = [json.loads(line) for line in ok(docker(
            "history", "--no-trunc", "--format", "{{json .}}", img)).stdout.splitlines()]
        assert hist[0]["ID"] == iid
        assert hist[0]["CreatedBy"] == "sh -c echo hello > /greeting"
        assert hist[0]["Comment"] == "msg"
        # The next entry is the parent's, named by it as dockerd names it.
        assert hist[1]["ID"] == busybox

        until = str(int(time.time()) + 1)
        ev = ok(docker("events", "--since", since, "--until", until, "--format", "{{json .}}",
                       "--filter", "event=commit")).stdout.splitlines()
        commits = [json.loads(e) for e in ev]
        assert any(e["Actor"]["ID"] == cid and e["Actor"]["Attributes"]["imageID"] == iid
                   and e["Actor"]["Attributes"]["comment"] == "msg" for e in commits), commits

        # A second commit of the same container: another image, the same parent.
        v2 = ok(docker("commit", unique, f"{unique}:v2")).stdout.strip()
        assert v2 != iid
        assert inspect(docker, f"{unique}:v2", "{{.Parent}}") == busybox
    finally:
        rmi(docker, img, f"{unique}:v2")


def test_a_child_keeps_its_parent(docker, unique):
    base, child = f"{unique}-base", f"{unique}-child"
    try:
        ok(docker("run", "--name", unique, "busybox", "touch", "/one"))
        base_id = ok(docker("commit", unique, base)).stdout.strip()
        ok(docker("run", "--name", f"{unique}-2", base, "touch", "/two"))
        ok(docker("commit", f"{unique}-2", child))
        ok(docker("rm", f"{unique}-2"))
        r = docker("rmi", base_id)
        assert r.returncode != 0
        assert "image has dependent child images" in r.stderr, r.stderr
        # By its last tag: only the name goes, the image stays for its child.
        ok(docker("rmi", base))
        assert inspect(docker, base_id, "{{.Id}}") == base_id
        # Removing the child prunes the unnamed, unused parent with it.
        out = ok(docker("rmi", child)).stdout
        assert f"Deleted: {base_id}" in out, out
    finally:
        rmi(docker, child, base)


def _actions(docker, name, since):
    """The container's events since `since` (a precise unix time), exec ones left out."""
    until = f"{time.time() + 1:.3f}"
    out = ok(docker("events", "--since", since, "--until", until, "--format",
                    "{{.Action}}", "--filter", "type=container",
                    "--filter", f"container={name}")).stdout.splitlines()
    return [a for a in out if not a.startswith("exec_")]


def test_commit_of_a_running_container_pauses_it(docker, unique):
    img = f"{unique}-img"
    try:
        ok(docker("run", "-d", "--name", unique, "busybox", "sh", "-c",
                  "echo up > /up; sleep 1000"))
        wait_for(lambda: docker("exec", unique, "cat", "/up").stdout == "up\n", 30,
                 "the container to write /up")
        since = f"{time.time():.3f}"
        ok(docker("commit", unique, img))
        assert inspect(docker, unique, "{{.State.Running}} {{.State.Paused}}") == "true false"
        # dockerd's order: frozen, committed, thawed.
        assert _actions(docker, unique, since) == ["pause", "commit", "unpause"]
        assert ok(docker("run", "--rm", img, "cat", "/up")).stdout == "up\n"
        # --pause=false: no freeze.
        since = f"{time.time():.3f}"
        ok(docker("commit", "--pause=false", unique, img))
        assert _actions(docker, unique, since) == ["commit"]
        # A paused container stays paused.
        ok(docker("pause", unique))
        since = f"{time.time():.3f}"
        ok(docker("commit", unique, img))
        assert _actions(docker, unique, since) == ["commit"]
        assert inspect(docker, unique, "{{.State.Paused}}") == "true"
        ok(docker("unpause", unique))
    finally:
        docker("rm", "-f", unique)
        rmi(docker, img)


def test_commit_errors_in_dockers_words(docker, unique):
    r = docker("commit", f"{unique}-gone")
    assert r.returncode != 0 and f"No such container: {unique}-gone" in r.stderr, r.stderr
    ok(docker("create", "--name", unique, "busybox", "true"))
    r = docker("commit", "-c", "RUN echo", unique)
    assert r.returncode != 0 and "RUN is not a valid change command" in r.stderr, r.stderr
    r = docker("commit", "-c", "ENV ONLYKEY", unique)
    assert r.returncode != 0 and "ENV must have two arguments" in r.stderr, r.stderr
    r = docker("commit", unique, "bad@@name")
    assert r.returncode != 0


def test_mount_contents_are_not_committed(docker, unique):
    """What a container writes below a mount is the mount's: the commit has the mount point,
    empty. (A tmpfs here; volumes and binds are skipped the same way, by their destinations.)"""
    img = f"{unique}-img"
    ok(docker("run", "--name", unique, "--tmpfs", "/data", "busybox", "sh", "-c",
              "echo secret > /data/f && echo kept > /kept"))
    try:
        assert "A /data" in diff(docker, unique)
        assert "A /data/f" not in diff(docker, unique)
        ok(docker("commit", unique, img))
        out = ok(docker("run", "--rm", img, "sh", "-c",
                        "cat /kept; ls -A /data | wc -l")).stdout.split()
        assert out == ["kept", "0"], out
    finally:
        rmi(docker, img)


def test_import_honours_changes_and_message(docker, unique, busybox_tar):
    img = f"{unique}:v1"
    try:
        iid = ok(docker("import", "-c", 'ENTRYPOINT ["/bin/echo"]', "-c", 'CMD ["hi"]',
                        "-c", "WORKDIR /tmp", "-c", "EXPOSE 8080", "-c", "USER nobody",
                        "-c", "LABEL a=b", "-c", "STOPSIGNAL SIGUSR1",
                        "-c", "ONBUILD RUN true",
                        "-m", "from a tar", str(busybox_tar), img)).stdout.strip()
        assert ok(docker("run", "--rm", img)).stdout == "hi\n"
        c = json.loads(ok(docker("image", "inspect", img)).stdout)[0]
        assert c["Id"] == iid
        cfg = c["Config"]
        assert cfg["Entrypoint"] == ["/bin/echo"] and cfg["Cmd"] == ["hi"]
        assert cfg["WorkingDir"] == "/tmp" and cfg["User"] == "nobody"
        assert cfg["ExposedPorts"] == {"8080/tcp": {}}
        assert cfg["Labels"] == {"a": "b"} and cfg["StopSignal"] == "SIGUSR1"
        assert cfg["OnBuild"] == ["RUN true"]
        assert c["Comment"] == "from a tar"
        ok(docker("import", "-c", 'VOLUME ["/v", "/w"]', str(busybox_tar), f"{unique}:vol"))
        vols = json.loads(inspect(docker, f"{unique}:vol", "{{json .Config.Volumes}}"))
        assert vols == {"/v": {}, "/w": {}}
        r = docker("import", "-c", "RUN true", str(busybox_tar), f"{unique}:bad")
        assert r.returncode != 0 and "RUN is not a valid change command" in r.stderr, r.stderr
        r = docker("import", "-c", "FOO bar", str(busybox_tar), f"{unique}:bad")
        assert r.returncode != 0 and "FOO is not a valid change command" in r.stderr, r.stderr
    finally:
        rmi(docker, img, f"{unique}:bad", f"{unique}:vol")


def _blank_numeric_tar():
    """A one-file tar whose header leaves mode, uid, gid and mtime blank (NULs), as bollard's
    tests write them; Go's archive/tar reads those as 0."""
    data = b"blank fields\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        info.mode = 0o644
        t.addfile(info, io.BytesIO(data))
    raw = bytearray(buf.getvalue())
    for off, size in ((100, 8), (108, 8), (116, 8), (136, 12)):  # mode, uid, gid, mtime
        raw[off:off + size] = b"\0" * size
    raw[148:156] = b" " * 8
    cksum = sum(raw[:512])
    raw[148:156] = b"%06o\0 " % cksum
    return bytes(raw)


def test_import_reads_blank_numeric_fields_as_zero(dclient, unique):
    repo = unique
    try:
        dclient.api.import_image_from_data(_blank_numeric_tar(), repository=repo, tag="v1")
        img = dclient.images.get(f"{repo}:v1")
        assert len(img.attrs["RootFS"]["Layers"]) == 1
    finally:
        try:
            dclient.images.remove(f"{repo}:v1", force=True)
        except dockerpy.errors.NotFound:
            pass


def test_dockerpy_diff_and_commit(dclient, unique):
    c = dclient.containers.run("busybox", ["sh", "-c", "touch /made && rm /etc/group"],
                               detach=True, name=unique)
    try:
        assert c.wait(timeout=60)["StatusCode"] == 0
        changes = c.diff()
        assert {"Path": "/made", "Kind": 1} in changes
        assert {"Path": "/etc/group", "Kind": 2} in changes
        img = c.commit(repository=unique, tag="t", message="m", author="a",
                       changes=["ENV B=2"], conf={"Labels": {"k": "v"}})
        attrs = dclient.api.inspect_image(img.id)
        assert f"{unique}:t" in attrs["RepoTags"]
        assert attrs["Author"] == "a"
        assert "B=2" in attrs["Config"]["Env"]
        assert attrs["Config"]["Labels"] == {"k": "v"}
        fresh = dclient.containers.create(f"{unique}:t", ["true"])
        try:
            assert fresh.diff() is None
        finally:
            fresh.remove()
    finally:
        c.remove(force=True)
        try:
            dclient.images.remove(f"{unique}:t", force=True)
        except dockerpy.errors.NotFound:
            pass
