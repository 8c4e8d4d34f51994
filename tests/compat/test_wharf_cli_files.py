"""The `wharf` CLI's volume, mount and file commands (issue 15, item 8) against the real wharfd,
side by side with the docker CLI: the same command through both, stdout and exit code compared.
crates/wharf/tests/docker_volume_cli.rs byte-compares them against a fake daemon; this runs
them for real: volume create/ls/inspect/rm/prune, run -v/--mount/--volumes-from/--rm,
cp both ways, diff, commit, export/import, save/rmi/load."""

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from wharfd_harness import wharfd_bin

from support import ok


def wharf_bin():
    b = Path(os.environ.get("WHARF_BIN") or wharfd_bin().parent / "wharf")
    if not b.is_file():
        raise RuntimeError(f"wharf not found at {b}: build it (cargo build -p wharf) or set WHARF_BIN")
    return b


@pytest.fixture
def wharf(wharfd, busybox, tmp_path):
    """`wharf(*args, input=None, binary=False)` on the test daemon, with a config dir of its own;
    containers and volumes the test leaves behind are removed by the `docker` fixture or here."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "WHARF_"))}
    base["WHARF_CONFIG"] = str(tmp_path / "wharf-config")
    base["WHARF_HOST"] = wharfd.host
    base["HOME"] = str(tmp_path)

    def run(*args, input=None, binary=False):
        if isinstance(input, str):
            input = input.encode()
        r = subprocess.run([str(wharf_bin()), *args], env=base, capture_output=True,
                           input=input, timeout=120)
        if not binary:
            r.stdout = r.stdout.decode(errors="replace")
        r.stderr = r.stderr.decode(errors="replace")
        return r
    return run


def same(wharf, docker, *args):
    """Runs ARGS through both CLIs; asserts equal exit codes and stdout; returns wharf's run."""
    w, d = wharf(*args), docker(*args)
    assert (w.returncode, w.stdout) == (d.returncode, d.stdout), (
        f"{args}\nwharf {w.returncode}: {w.stdout!r} {w.stderr!r}\n"
        f"docker {d.returncode}: {d.stdout!r} {d.stderr!r}")
    return w, d


def errors(stderr):
    """A CLI's error lines, without the docker CLI's own log lines (`time=... level=...`): it
    logs `write on closed pipe` when the daemon answers an upload before reading all of it,
    a race of its own that says nothing about the answer."""
    return [line for line in stderr.splitlines() if not line.startswith("time=")]


def cleanup_volumes(docker, *names):
    for n in names:
        docker("volume", "rm", "-f", n)


def test_volume_create_ls_inspect_rm_prune(wharf, docker, unique):
    a, b, anon = f"{unique}-a", f"{unique}-b", f"{unique}-anon"
    try:
        assert ok(wharf("volume", "create", "--label", "k=v", a)).stdout == f"{a}\n"
        assert ok(docker("volume", "create", b)).stdout == f"{b}\n"
        # Existing name: both answer the name.
        same(wharf, docker, "volume", "create", a)
        same(wharf, docker, "volume", "inspect", a)
        same(wharf, docker, "volume", "inspect", a, b)
        same(wharf, docker, "volume", "inspect", "-f", "{{.Name}} {{.Labels}} {{.Driver}}", a)
        same(wharf, docker, "volume", "ls", "-q", "--filter", f"name={unique}")
        same(wharf, docker, "volume", "ls", "--filter", f"name={unique}")
        same(wharf, docker, "volume", "ls", "--filter", "label=k=v", "--format", "{{.Name}}")
        same(wharf, docker, "volume", "ls", "--filter", f"name={unique}", "--format",
             "{{.Name}}\t{{.Driver}}\t{{.Labels}}")
        w, d = same(wharf, docker, "volume", "inspect", f"{unique}-none")
        assert "no such volume" in w.stderr and w.returncode == 1, w.stderr

        # In use: 409 with the container's id, through both.
        cid = ok(wharf("create", "--name", unique, "-v", f"{a}:/d", "busybox", "true")
                 ).stdout.strip()
        w, d = same(wharf, docker, "volume", "rm", a)
        assert w.returncode == 1 and "volume is in use" in w.stderr and cid in w.stderr, w.stderr
        assert errors(w.stderr) == errors(d.stderr), (w.stderr, d.stderr)
        ok(wharf("rm", unique))

        # prune: anonymous volumes only unless --all (an anonymous one is labelled by the
        # daemon when a container creates it; make one with -v /path).
        ok(wharf("run", "--name", anon, "-v", "/anon", "busybox", "true"))
        [anon_vol] = json.loads(ok(wharf("inspect", anon)).stdout)[0]["Mounts"]
        ok(wharf("rm", anon))
        r = ok(wharf("volume", "prune", "-f"))
        assert anon_vol["Name"] in r.stdout and a not in r.stdout, r.stdout
        assert "Total reclaimed space:" in r.stdout
        names = set(ok(wharf("volume", "ls", "-q")).stdout.split())
        assert anon_vol["Name"] not in names and {a, b} <= names
        r = ok(wharf("volume", "prune", "-f", "--all", "--filter", "label=k=v"))
        assert a in r.stdout and b not in r.stdout, r.stdout
        # rm goes on past a missing name (destructive: wharf only, docker's words).
        w = wharf("volume", "rm", b, f"{unique}-none")
        assert (w.returncode, w.stdout, w.stderr) == (
            1, f"{b}\n", f"Error response from daemon: get {unique}-none: no such volume\n"), w
    finally:
        docker("rm", "-f", unique, anon)
        cleanup_volumes(docker, a, b)


def test_run_mounts(wharf, docker, unique, tmp_path):
    vol = f"{unique}-v"
    host = tmp_path / "host"
    host.mkdir()
    (host / "f").write_text("from host\n")
    try:
        ok(wharf("run", "--rm", "-v", f"{vol}:/d", "busybox", "sh", "-c", "echo hi > /d/x"))
        same(wharf, docker, "run", "--rm", "-v", f"{vol}:/d", "busybox", "cat", "/d/x")
        same(wharf, docker, "run", "--rm", "--mount", f"type=volume,src={vol},dst=/m,readonly",
             "busybox", "sh", "-c", "cat /m/x; touch /m/y 2>/dev/null || echo ro")
        same(wharf, docker, "run", "--rm", "-v", f"{host}:/h:ro", "busybox", "sh", "-c",
             "cat /h/f; touch /h/g 2>/dev/null || echo ro")
        same(wharf, docker, "run", "--rm", "--mount", f"type=bind,source={host},target=/h",
             "busybox", "cat", "/h/f")
        w, d = same(wharf, docker, "run", "--rm", "--mount",
                    f"type=bind,source={host}/missing,target=/h", "busybox", "true")
        assert w.returncode == 125 and "bind source path does not exist" in w.stderr, w.stderr
        same(wharf, docker, "run", "--rm", "--tmpfs", "/t:size=1m", "busybox", "sh", "-c",
             "grep ' /t ' /proc/mounts | cut -d' ' -f3")
        same(wharf, docker, "run", "--rm", "--read-only", "busybox", "sh", "-c",
             "touch /x 2>/dev/null || echo ro")

        # --volumes-from (with :ro) sees the source container's volumes.
        ok(wharf("create", "--name", unique, "-v", f"{vol}:/d", "-v", "/anon", "busybox", "true"))
        same(wharf, docker, "run", "--rm", "--volumes-from", unique, "busybox", "sh", "-c",
             "cat /d/x; test -d /anon && echo anon")
        same(wharf, docker, "run", "--rm", "--volumes-from", f"{unique}:ro", "busybox", "sh", "-c",
             "touch /d/z 2>/dev/null || echo ro")

        # --rm removes the container's anonymous volumes, not named ones.
        before = set(ok(wharf("volume", "ls", "-q")).stdout.split())
        ok(wharf("run", "--rm", "-v", "/anon2", "-v", f"{vol}:/d", "busybox", "true"))
        after = set(ok(wharf("volume", "ls", "-q")).stdout.split())
        assert after == before, (after - before, before - after)
        assert vol in after
    finally:
        docker("rm", "-f", "-v", unique)
        cleanup_volumes(docker, vol)


def test_cp_both_ways(wharf, docker, unique, tmp_path):
    ok(wharf("run", "-d", "--name", unique, "busybox", "sleep", "600"))
    try:
        src = tmp_path / "src"
        (src / "sub").mkdir(parents=True)
        (src / "a.txt").write_text("alpha\n")
        (src / "sub" / "b.txt").write_text("beta\n")
        os.chown(src / "a.txt", 1234, 2345)

        # Host -> container: a file, a directory.
        assert ok(wharf("cp", str(src / "a.txt"), f"{unique}:/tmp/a.txt")).stdout == ""
        ok(wharf("cp", str(src), f"{unique}:/tmp/dir"))
        assert ok(wharf("exec", unique, "cat", "/tmp/a.txt", "/tmp/dir/sub/b.txt")
                  ).stdout == "alpha\nbeta\n"
        # dockerd keeps the tar's owners without -a too; -a only maps to the container's User
        # (none here), so both keep the host's owner, as with the docker CLI.
        ok(docker("cp", str(src / "a.txt"), f"{unique}:/tmp/a-docker.txt"))
        same(wharf, docker, "exec", unique, "stat", "-c", "%u:%g", "/tmp/a.txt")
        assert ok(wharf("exec", unique, "stat", "-c", "%u:%g", "/tmp/a.txt", "/tmp/a-docker.txt")
                  ).stdout == "1234:2345\n1234:2345\n"
        ok(wharf("cp", "-a", str(src / "a.txt"), f"{unique}:/tmp/owned"))
        assert ok(wharf("exec", unique, "stat", "-c", "%u:%g", "/tmp/owned")
                  ).stdout == "1234:2345\n"

        # Container -> host: a file, a directory, through both CLIs.
        for cli, tag in ((wharf, "w"), (docker, "d")):
            out = tmp_path / f"out-{tag}"
            ok(cli("cp", f"{unique}:/tmp/dir", str(out)))
            assert (out / "sub" / "b.txt").read_text() == "beta\n"
            ok(cli("cp", f"{unique}:/tmp/a.txt", str(tmp_path / f"a-{tag}")))
            assert (tmp_path / f"a-{tag}").read_text() == "alpha\n"

        # `-` both ways: a tar stream on stdout / stdin.
        w = ok(wharf("cp", f"{unique}:/tmp/dir", "-", binary=True))
        with tarfile.open(fileobj=io.BytesIO(w.stdout)) as t:
            names = sorted(t.getnames())
        assert names == ["dir", "dir/a.txt", "dir/sub", "dir/sub/b.txt"], names
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = b"streamed\n"
            info = tarfile.TarInfo("s.txt")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        assert ok(wharf("cp", "-", f"{unique}:/tmp", input=buf.getvalue())).stdout == ""
        assert ok(wharf("exec", unique, "cat", "/tmp/s.txt")).stdout == "streamed\n"

        # Errors as docker's.
        w, d = same(wharf, docker, "cp", f"{unique}:/nonexistent", str(tmp_path / "x"))
        assert w.returncode == 1 and errors(w.stderr) == errors(d.stderr), (w.stderr, d.stderr)
        w, d = same(wharf, docker, "cp", str(src / "a.txt"), f"{unique}:/nodir/sub/x")
        assert w.returncode == 1 and errors(w.stderr) == errors(d.stderr), (w.stderr, d.stderr)
    finally:
        docker("rm", "-f", unique)


def test_diff_commit_run(wharf, docker, unique):
    img = f"{unique}-img"
    ok(wharf("run", "--name", unique, "busybox", "sh", "-c",
             "echo new > /newfile; rm /etc/group; echo x >> /etc/passwd"))
    try:
        w, d = same(wharf, docker, "diff", unique)
        lines = w.stdout.splitlines()
        assert "A /newfile" in lines and "D /etc/group" in lines and "C /etc/passwd" in lines, lines
        iid = ok(wharf("commit", "-c", 'CMD ["cat", "/newfile"]', "-m", "the msg", unique, img)
                 ).stdout.strip()
        assert iid.startswith("sha256:"), iid
        assert ok(wharf("run", "--rm", img)).stdout == "new\n"
        same(wharf, docker, "image", "inspect", "-f", "{{.Comment}} {{.Config.Cmd}}", img)
        same(wharf, docker, "run", "--rm", img, "sh", "-c", "test -e /etc/group || echo gone")
    finally:
        docker("rm", "-f", unique)
        docker("rmi", img)


def test_export_import(wharf, docker, unique, tmp_path):
    img = f"{unique}-img"
    ok(wharf("run", "--name", unique, "busybox", "sh", "-c", "echo exported > /e"))
    try:
        out = tmp_path / "rootfs.tar"
        assert ok(wharf("export", "-o", str(out), unique)).stdout == ""
        with tarfile.open(out) as t:
            assert t.extractfile("e").read() == b"exported\n"
        iid = ok(wharf("import", "-c", 'CMD ["cat", "/e"]', "-m", "imported", str(out), img)
                 ).stdout.strip()
        assert iid.startswith("sha256:"), iid
        assert ok(wharf("run", "--rm", img)).stdout == "exported\n"
        same(wharf, docker, "image", "inspect", "-f", "{{.Comment}} {{.Config.Cmd}}", img)
        # export to stdout is the same stream (refused to a terminal only).
        w = ok(wharf("export", unique, binary=True))
        with tarfile.open(fileobj=io.BytesIO(w.stdout)) as t:
            assert t.extractfile("e").read() == b"exported\n"
    finally:
        docker("rm", "-f", unique)
        docker("rmi", img)


def test_save_rmi_load(wharf, docker, unique, tmp_path):
    img = f"{unique}-img:v1"
    ok(wharf("tag", "busybox", img))
    try:
        iid = ok(wharf("image", "inspect", "-f", "{{.Id}}", img)).stdout.strip()
        out = tmp_path / "img.tar"
        assert ok(wharf("save", "-o", str(out), img)).stdout == ""
        with tarfile.open(out) as t:
            names = t.getnames()
        assert "manifest.json" in names and "index.json" in names, names
        ok(wharf("rmi", img))
        r = ok(wharf("load", "-i", str(out)))
        assert r.stdout == f"Loaded image: {img}\n", r.stdout
        assert ok(wharf("image", "inspect", "-f", "{{.Id}}", img)).stdout.strip() == iid
        ok(wharf("rmi", img))
        r = ok(wharf("load", "-q", input=out.read_bytes()))
        assert r.stdout == f"Loaded image: {img}\n", r.stdout
        # The same through docker, byte for byte.
        docker("rmi", img)
        d = ok(docker("load", "-q", "-i", str(out)))
        docker("rmi", img)
        w = ok(wharf("load", "-q", "-i", str(out)))
        assert w.stdout == d.stdout
        # save to stdout is a tar too.
        w = ok(wharf("save", img, binary=True))
        with tarfile.open(fileobj=io.BytesIO(w.stdout)) as t:
            assert "manifest.json" in t.getnames()
    finally:
        docker("rmi", img)


def test_rm_removes_anonymous_volumes_only(wharf, docker, unique):
    """`--rm` (attached and -d, so the daemon's AutoRemove) and `rm -v` remove the container's
    anonymous volumes; named ones stay, and so does an anonymous volume another container still
    holds through --volumes-from."""
    src, bg, vol = unique, f"{unique}-d", f"{unique}-named"

    def vols():
        return set(ok(wharf("volume", "ls", "-q")).stdout.split())
    try:
        ok(wharf("create", "--name", src, "-v", "/anon", "busybox", "true"))
        [m] = json.loads(ok(wharf("inspect", src)).stdout)[0]["Mounts"]
        ok(wharf("run", "--rm", "--volumes-from", src, "busybox", "sh", "-c", "echo k > /anon/k"))
        assert m["Name"] in vols()
        before = vols()
        r = wharf("run", "--rm", "-v", "/anon3", "-v", f"{vol}:/n", "busybox", "sh", "-c", "exit 3")
        assert r.returncode == 3, r
        ok(wharf("run", "-d", "--rm", "--name", bg, "-v", "/anon2", "busybox", "true"))
        wait_gone(wharf, bg)
        assert vols() - before == {vol}
        assert ok(wharf("rm", "-v", src)).stdout == f"{src}\n"
        assert m["Name"] not in vols()
    finally:
        docker("rm", "-f", "-v", src, bg)
        cleanup_volumes(docker, vol)


def wait_gone(wharf, name):
    from support import wait_for
    wait_for(lambda: wharf("inspect", name).returncode != 0, 60, f"{name} removed by --rm")


def test_volume_content_copy_up_and_commit(wharf, docker, unique, tmp_path):
    """Copy-up into an empty named volume (not with volume-nocopy), cp into a volume mount and
    out of a read-only bind, and commit leaving the volume's content out."""
    cu, nc, c, img = f"{unique}-cu", f"{unique}-nc", unique, f"{unique}-img"
    try:
        w, _ = same(wharf, docker, "run", "--rm", "-v", f"{cu}:/etc", "busybox", "ls", "/etc")
        assert "passwd" in w.stdout.split(), w.stdout
        w, _ = same(wharf, docker, "run", "--rm", "--mount",
                    f"type=volume,src={nc},dst=/etc,volume-nocopy", "busybox", "ls", "/etc")
        # Only what the runtime itself mounts there, as with dockerd.
        assert w.stdout.split() == ["hostname", "hosts", "resolv.conf"], w.stdout
        same(wharf, docker, "run", "--rm", "--mount",
             "type=tmpfs,dst=/x,tmpfs-size=1m,tmpfs-mode=1700", "busybox", "sh", "-c",
             "stat -c %a /x; grep ' /x ' /proc/mounts | cut -d' ' -f4")

        ok(wharf("run", "--name", c, "-v", "/data", "-v", "/etc:/hostetc:ro", "busybox", "sh",
                 "-c", "echo a > /data/a; echo b > /b"))
        (tmp_path / "in").write_text("into the volume\n")
        ok(wharf("cp", str(tmp_path / "in"), f"{c}:/data/in"))
        same(wharf, docker, "cp", f"{c}:/data/in", "-")
        same(wharf, docker, "cp", f"{c}:/hostetc/hostname", "-")
        w, _ = same(wharf, docker, "diff", c)
        # The mountpoints show as added (as with dockerd), their contents do not.
        assert w.stdout.splitlines() == ["A /b", "A /data", "A /hostetc"], w.stdout
        ok(wharf("commit", c, img))
        assert ok(wharf("run", "--rm", img, "sh", "-c", "ls /data; cat /b")).stdout == "b\n"
    finally:
        docker("rm", "-f", "-v", c)
        docker("rmi", img)
        cleanup_volumes(docker, cu, nc)


def test_errors_match(wharf, docker, unique, tmp_path):
    """Failures through both CLIs: same exit code, stdout, and stderr but for the program name."""
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a tar at all")
    missing = str(tmp_path / "missing.tar")
    ok(wharf("create", "--name", unique, "busybox", "true"))
    try:
        cases = [
            ("diff", f"{unique}-none"), ("export", f"{unique}-none"),
            ("commit", f"{unique}-none"), ("commit", "-c", "BOGUS x", unique),
            ("cp", f"{unique}-none:/etc", str(tmp_path)),
            ("cp", f"{unique}:/a", f"{unique}:/b"),
            ("cp", str(tmp_path / "nope"), f"{unique}:/tmp"),
            ("save", f"{unique}-none:img"), ("save",),
            ("load", "-i", str(junk)), ("load", "-i", missing), ("load", "-q"),
            ("import", missing), ("import", "-c", "BOGUS x", str(junk)),
            ("volume", "inspect"), ("volume", "create", "a", "b"),
            ("volume", "ls", "-f", "bogus=1"), ("volume", "create", "-d", "nosuchdriver", "x"),
            ("run", "--rm", "--volumes-from", f"{unique}-none", "busybox", "true"),
            ("run", "--rm", "-v", "relative:/x:bogus", "busybox", "true"),
            ("run", "--rm", "-v", "/x:relative", "busybox", "true"),
            ("run", "--rm", "--mount", "type=bogus,dst=/x", "busybox", "true"),
        ]
        for args in cases:
            w, d = same(wharf, docker, *args)
            assert w.returncode != 0, args
            assert errors(w.stderr) == errors(d.stderr.replace("docker", "wharf")), (
                args, w.stderr, d.stderr)
    finally:
        docker("rm", "-f", unique)


def test_cp_stopped_into_volume_a_and_L(wharf, docker, unique, tmp_path):
    """cp on a created (never started) container reaches its volume mount; -a gives the files to
    the container's --user; -L follows a symlink, without it the link itself is copied."""
    v = f"{unique}-v"
    (tmp_path / "f").write_text("stopped\n")
    ok(wharf("create", "--name", unique, "-v", f"{v}:/vol", "--user", "1000:1000", "busybox",
             "true"))
    try:
        for cli, t in ((wharf, "w"), (docker, "d")):
            ok(cli("cp", "-a", str(tmp_path / "f"), f"{unique}:/vol/{t}"))
            ok(cli("cp", "-L", f"{unique}:/bin/sh", str(tmp_path / f"sh-{t}")))
            assert not (tmp_path / f"sh-{t}").is_symlink()
            ok(cli("cp", f"{unique}:/bin/sh", str(tmp_path / f"link-{t}")))
            assert (tmp_path / f"link-{t}").is_symlink()
        same(wharf, docker, "cp", f"{unique}:/vol/w", "-")
        assert ok(wharf("run", "--rm", "-v", f"{v}:/vol", "busybox", "sh", "-c",
                        "stat -c '%u:%g %n' /vol/*; cat /vol/*")).stdout == (
            "1000:1000 /vol/d\n1000:1000 /vol/w\nstopped\nstopped\n")
    finally:
        docker("rm", "-f", unique)
        cleanup_volumes(docker, v)
