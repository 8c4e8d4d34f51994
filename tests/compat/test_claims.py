"""README claims that had no end-to-end test (review tests.md §5), each through the real docker
CLI or docker-py against wharfd: list filters in both dialects, `ps --size`, image filters,
import of a gzip tar, events of every kind the README lists and their image/label filters,
`top` with ps options, `--privileged`, kill of a paused container, exec's OCI error text.

The helpers here (events, raw API calls and hijacked attaches) serve test_claims_*.py too.
Nothing waits by sleeping: every wait is for a condition, with a generous bound."""

import fcntl
import gzip
import json
import re
import struct
import termios
import time
from datetime import datetime
from pathlib import Path

import pytest
from support import Api, inspect, ok, wait_for

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def logs(docker, name):
    r = ok(docker("logs", name))
    return r.stdout + r.stderr


def rfc3339_seconds(s):
    """Unix seconds (float) of Docker's RFC 3339 time with up to nanoseconds."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", s)
    assert m, s
    base = datetime.fromisoformat(m.group(1) + (m.group(3).replace("Z", "+00:00")))
    return base.timestamp() + (float("0." + m.group(2)) if m.group(2) else 0.0)


def human_size(n):
    """docker's `units.HumanSizeWithPrecision(n, 3)`."""
    units = ["B", "kB", "MB", "GB", "TB"]
    v, i = float(n), 0
    while v >= 1000 and i < len(units) - 1:
        v /= 1000
        i += 1
    return f"{v:.3g}{units[i]}"


# ---------------------------------------------------------------- events


def events(docker, since, *filters, fmt="{{.Type}} {{.Action}}"):
    """`docker events` from `since` (unix seconds) until now, as lines."""
    args = ["events", "--since", f"{since:.9f}", "--until", f"{time.time():.9f}", "--format", fmt]
    for f in filters:
        args += ["--filter", f]
    return ok(docker(*args, timeout=30)).stdout.splitlines()


def wait_events(docker, since, *filters, fmt="{{.Type}} {{.Action}}", until=None, what="events"):
    """The event lines once `until(lines)` holds (events such as `exec_die` or `detach` are
    published after the request that caused them has been answered)."""
    got = []

    def check():
        got[:] = events(docker, since, *filters, fmt=fmt)
        return until(got)

    try:
        wait_for(check, what=what, every=0.1)
    except AssertionError as e:
        raise AssertionError(f"{e}; last seen: {got}") from None
    return got


# ---------------------------------------------------------------- raw API and hijacked streams


@pytest.fixture
def api(wharfd):
    return Api(wharfd.socket)


def unread_by_peer(s):
    """Bytes written on a unix stream socket that the other end has not read yet (SIOCOUTQ):
    0 means wharfd has taken everything we sent."""
    return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]


class Stream:
    """The output side of a hijacked attach: raw bytes (TTY) or stdcopy frames demuxed."""

    def __init__(self, sock, tty):
        self.sock, self.tty = sock, tty
        self.raw = b""
        self.out = b""
        self.eof = False

    def _pump(self):
        b = self.sock.recv(65536)
        if not b:
            self.eof = True
            return
        self.raw += b
        if self.tty:
            self.out = self.raw
            return
        out, buf = b"", self.raw
        while len(buf) >= 8:
            n = struct.unpack(">I", buf[4:8])[0]
            if len(buf) < 8 + n:
                break
            out += buf[8:8 + n]
            buf = buf[8 + n:]
        self.out = out

    def until(self, needle, timeout=60):
        """Reads until `needle` has been output; returns all output so far."""
        self.sock.settimeout(timeout)
        while needle not in self.out:
            if self.eof:
                raise AssertionError(f"stream ended before {needle!r}: {self.out!r}")
            self._pump()
        return self.out

    def to_end(self, timeout=60):
        self.sock.settimeout(timeout)
        while not self.eof:
            self._pump()
        return self.out


# ---------------------------------------------------------------- list filters, size


def test_ps_filters_id_ancestor_before_since_in_both_dialects(docker, dclient, unique, busybox_tar):
    """The docker CLI sends filters as `{"key":{"value":true}}`, docker-py as
    `{"key":["value"]}`: both reach the same answers."""
    img = f"{unique}-img"
    label = f"claims={unique}"
    ok(docker("import", "--change", f"LABEL from={unique}", str(busybox_tar), img))
    try:
        ids = {}
        for n, image in (("a", "busybox"), ("b", "busybox"), ("c", img)):
            ids[n] = ok(docker("create", "--name", f"{unique}-{n}", "--label", label, image,
                               "true")).stdout.strip()
        a, b, c = (f"{unique}-{n}" for n in "abc")

        def cli(*filters):
            args = ["ps", "-a", "--format", "{{.Names}}", "--filter", f"label={label}"]
            for f in filters:
                args += ["--filter", f]
            return ok(docker(*args)).stdout.split()

        def py(**filters):
            filters["label"] = label
            return [x["Names"][0][1:] for x in dclient.api.containers(all=True, filters=filters)]

        busybox_id = inspect(docker, "busybox", "{{.Id}}")
        for got in (cli, lambda *f: py(**dict(x.split("=", 1) for x in f))):
            assert got() == [c, b, a]  # newest first
            assert got(f"id={ids['b'][:12]}") == [b]
            assert got(f"id={ids['a']}") == [a]
            assert got(f"ancestor={img}") == [c]
            assert got("ancestor=busybox") == [b, a]
            assert got(f"ancestor={busybox_id}") == [b, a]
            assert got(f"before={b}") == [a]
            assert got(f"since={a}") == [c, b]
            assert got(f"since={ids['a'][:12]}", f"before={c}") == [b]
        # Several values of one key are alternatives (docker-py's list, the CLI's repeated flag).
        assert cli(f"id={ids['a']}", f"id={ids['c']}") == [c, a]
        assert py(id=[ids["a"], ids["c"]]) == [c, a]
    finally:
        docker("rm", "-f", *(f"{unique}-{n}" for n in "abc"))
        docker("rmi", img)


def test_ps_size(docker, dclient, unique):
    ok(docker("run", "--name", unique, "busybox", "sh", "-c", "head -c 1048576 /dev/zero > /big"))
    [summary] = dclient.api.containers(all=True, size=True, filters={"name": unique})
    image_size = dclient.api.inspect_image("busybox")["Size"]
    rw, root = summary["SizeRw"], summary["SizeRootFs"]
    # The writable layer holds the 1 MiB file (and at most a few small files of the run).
    assert 1048576 <= rw < 1048576 + 65536, summary
    assert root == rw + image_size, (summary, image_size)
    out = ok(docker("ps", "-a", "-s", "--filter", f"name={unique}", "--format", "{{.Size}}")).stdout
    assert out == f"{human_size(rw)} (virtual {human_size(root)})\n"
    assert out.startswith("1.05MB (virtual ")
    # Without --size nothing is computed.
    [plain] = dclient.api.containers(all=True, filters={"name": unique})
    assert "SizeRw" not in plain or plain["SizeRw"] in (None, 0), plain


# ---------------------------------------------------------------- images


def test_image_filters_label_before_since_dangling_in_both_dialects(docker, dclient, unique,
                                                                     busybox_tar):
    names = [f"{unique}-{i}" for i in (1, 2, 3)]
    label = f"claims={unique}"
    ids = []
    try:
        # Imported in a row, possibly within one second: before/since still order them.
        for i, n in enumerate(names, 1):
            ids.append(ok(docker("import", "--change", f"LABEL {label}", "--change",
                                 f"LABEL gen={i}", str(busybox_tar), n)).stdout.strip())
        assert len(set(ids)) == 3

        def cli(*filters):
            args = ["images", "--format", "{{.Repository}}", "--filter", f"label={label}"]
            for f in filters:
                args += ["--filter", f]
            return set(ok(docker(*args)).stdout.split())

        def py(**filters):
            filters["label"] = [label] + filters.pop("more_labels", [])
            return {t.split(":")[0] for i in dclient.api.images(filters=filters) for t in i["RepoTags"]}

        one, two, three = names
        assert cli() == py() == {one, two, three}
        assert cli("label=gen=2") == py(more_labels=["gen=2"]) == {two}
        assert cli("label=gen") == {one, two, three}  # a key alone matches any value
        assert cli("label=gen=4") == set()
        assert cli(f"before={three}") == py(before=three) == {one, two}
        assert cli(f"since={one}") == py(since=one) == {two, three}
        assert cli(f"since={one}", f"before={three}") == py(since=one, before=three) == {two}
        assert "busybox" not in ok(docker("images", "--format", "{{.Repository}}", "--filter",
                                          "label=gen")).stdout.split()

        # A dangling image shows up under dangling=true: importing `one` again moves its tag.
        ids.append(ok(docker("import", str(busybox_tar), one)).stdout.strip())
        dangling = ok(docker("images", "-q", "--no-trunc", "--filter", "dangling=true")).stdout.split()
        assert ids[0] in dangling and ids[3] not in dangling, (ids, dangling)
        tagged = ok(docker("images", "-q", "--no-trunc", "--filter", "dangling=false")).stdout.split()
        assert ids[0] not in tagged and ids[3] in tagged
        assert ids[0] in [i["Id"] for i in dclient.api.images(filters={"dangling": True})]
    finally:
        docker("rmi", *names)
        for i in ids:
            docker("rmi", i)


def test_import_gzip_end_to_end(docker, unique, busybox_tar, busybox):
    gz = busybox_tar.parent / f"{unique}.tar.gz"
    gz.write_bytes(gzip.compress(busybox_tar.read_bytes()))
    try:
        ok(docker("import", str(gz), unique))
        ok(docker("import", "-", unique + "-stdin", input=gz.read_bytes()))
        # The layer is the tar uncompressed: the same diff ID as the plain import's.
        layers = {inspect(docker, n, "{{json .RootFS.Layers}}")
                  for n in ("busybox", unique, unique + "-stdin")}
        assert len(layers) == 1, layers
        assert ok(docker("run", "--rm", unique, "echo", "from-gzip")).stdout == "from-gzip\n"
    finally:
        docker("rmi", unique, unique + "-stdin")
        gz.unlink()


# ---------------------------------------------------------------- events


def canonical(actions):
    """`die` and `stop` of one stop are published from two tasks, in either order (so are
    dockerd's); the test pins everything else."""
    out = list(actions)
    for i in range(len(out) - 1):
        if out[i].startswith("stop") and out[i + 1].startswith("die"):
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def test_container_events_kill_stop_restart_pause_unpause(docker, unique):
    since = time.time()
    cid = ok(docker("run", "-d", "--name", unique, "--stop-signal", "KILL", "busybox",
                    "sleep", "300")).stdout.strip()
    ok(docker("pause", unique))
    ok(docker("unpause", unique))
    ok(docker("kill", "-s", "WINCH", unique))  # ignored by sleep: the container runs on
    ok(docker("restart", unique))
    ok(docker("stop", unique))
    ok(docker("rm", unique))
    got = []
    for line in events(docker, since, f"container={cid}", fmt="{{.Action}}|{{json .Actor.Attributes}}"):
        action, attrs = line.split("|", 1)
        attrs = json.loads(attrs)
        detail = attrs.get("signal") or attrs.get("exitCode")
        got.append(f"{action} {detail}" if detail else action)
    got = canonical(got)
    assert got == ["create", "start", "pause", "unpause", "kill 28",
                   "kill 9", "die 137", "stop", "start", "restart",
                   "kill 9", "die 137", "stop", "destroy"], got


def test_events_filters_image_and_label(docker, unique, busybox_tar):
    img = f"{unique}-img"
    ok(docker("import", str(busybox_tar), img))
    try:
        since = time.time()
        ok(docker("run", "--name", unique + "-l", "--label", f"claims={unique}", "busybox",
                  "true"))
        a = inspect(docker, unique + "-l", "{{.Id}}")
        ok(docker("run", "--name", unique + "-i", img, "true"))
        b = inspect(docker, unique + "-i", "{{.Id}}")
        fmt = "{{.Actor.ID}} {{.Action}}"
        by_label = events(docker, since, f"label=claims={unique}", fmt=fmt)
        assert {l.split()[0] for l in by_label} == {a}, by_label
        assert [l.split()[1] for l in by_label] == ["create", "attach", "start", "die"], by_label
        assert events(docker, since, f"label=claims={unique}=no", fmt=fmt) == []
        by_image = events(docker, since, f"image={img}", fmt=fmt)
        assert {l.split()[0] for l in by_image} == {b}, by_image
        assert [l.split()[1] for l in by_image] == ["create", "attach", "start", "die"], by_image
        # image=busybox leaves the other image's container out. (As in dockerd, the value is
        # matched against the name the container was created with, tag stripped or not.)
        ids = {l.split()[0] for l in events(docker, since, "image=busybox", fmt=fmt)}
        assert a in ids and b not in ids, ids
    finally:
        docker("rm", unique + "-l", unique + "-i")
        docker("rmi", img)


def test_exec_events(docker, unique):
    cid = ok(docker("run", "-d", "--name", unique, "busybox", "sleep", "300")).stdout.strip()
    since = time.time()
    assert docker("exec", unique, "sh", "-c", "exit 3").returncode == 3
    fmt = "{{.Action}}|{{.Actor.Attributes.execID}}|{{.Actor.Attributes.exitCode}}"
    got = wait_events(docker, since, f"container={cid}", fmt=fmt,
                      until=lambda ls: any(l.startswith("exec_die") for l in ls), what="exec_die")
    rows = [l.split("|") for l in got]
    assert [r[0] for r in rows] == ["exec_create: sh -c exit 3", "exec_start: sh -c exit 3",
                                    "exec_die"], got
    assert len({r[1] for r in rows}) == 1 and HEX64.match(rows[0][1]), got
    assert rows[2][2] == "3", got
    # dockerd's rule: event=exec_create matches the `exec_create: <cmd>` form.
    assert events(docker, since, f"container={cid}", "event=exec_create", fmt="{{.Action}}") == [
        "exec_create: sh -c exit 3"]


def test_image_events_and_their_filters(docker, unique, busybox_tar):
    img = f"{unique}-img"
    since = time.time()
    iid = ok(docker("import", "--change", f"LABEL claims={unique}", str(busybox_tar),
                    img)).stdout.strip()
    ok(docker("tag", img, f"{img}:two"))
    ok(docker("rmi", f"{img}:two"))
    ok(docker("rmi", img))
    fmt = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"
    # dockerd's names: a tag event is named by the tag, the others by the image ID.
    want = [f"image tag {img}:latest", f"image import {iid}", f"image tag {img}:two",
            f"image untag {iid}", f"image untag {iid}", f"image delete {iid}"]
    assert events(docker, since, f"image={iid}", fmt=fmt) == want
    assert events(docker, since, "type=image", f"image={img}", fmt=fmt) == [
        want[0], want[2]]  # by name: the events that carry it
    # The image's labels are its events' attributes (not the delete's: the image is gone).
    assert events(docker, since, f"label=claims={unique}", fmt=fmt) == want[:5]
    assert events(docker, since, f"image={iid}", "event=untag", fmt=fmt) == want[3:5]


# ---------------------------------------------------------------- top, privileged, kill, exec


def test_top_with_ps_options(docker, unique):
    ok(docker("run", "-d", "--name", unique, "busybox", "sleep", "300"))
    pid = inspect(docker, unique, "{{.State.Pid}}")
    lines = ok(docker("top", unique, "-o", "pid,comm")).stdout.splitlines()
    assert lines[0].split() == ["PID", "COMMAND"], lines
    assert [pid, "sleep"] in [l.split() for l in lines[1:]], lines


def status_fields(text):
    return dict(l.split(":\t", 1) for l in text.splitlines() if ":\t" in l)


def test_privileged_gets_wharfds_capabilities(docker, wharfd):
    daemon = status_fields(Path(f"/proc/{wharfd.proc.pid}/status").read_text())
    r = ok(docker("run", "--rm", "--privileged", "busybox", "cat", "/proc/self/status"))
    got = status_fields(r.stdout)
    for k in ("CapEff", "CapPrm", "CapBnd"):
        assert got[k].strip() == daemon[k].strip(), (k, got[k], daemon[k])
    plain = status_fields(ok(docker("run", "--rm", "busybox", "cat", "/proc/self/status")).stdout)
    assert int(plain["CapEff"], 16) < int(daemon["CapEff"], 16)


def test_kill_of_a_paused_container_delivers_the_signal_and_thaws(docker, unique):
    ok(docker("run", "-d", "--name", unique, "busybox", "sh", "-c",
              'trap "echo got-usr1; exit 7" USR1; echo ready; while true; do sleep 0.1; done'))
    wait_for(lambda: "ready" in logs(docker, unique), what="the trap to be set")
    ok(docker("pause", unique))
    assert inspect(docker, unique, "{{.State.Status}}") == "paused"
    ok(docker("kill", "-s", "10", unique))  # by number: SIGUSR1
    assert ok(docker("wait", unique)).stdout == "7\n"
    assert "got-usr1" in logs(docker, unique)
    assert inspect(docker, unique, "{{.State.Paused}} {{.State.Status}}") == "false exited"

    k = unique + "-k"
    ok(docker("run", "-d", "--name", k, "busybox", "sleep", "300"))
    ok(docker("pause", k))
    ok(docker("kill", k))
    assert ok(docker("wait", k)).stdout == "137\n"
    assert inspect(docker, k, "{{.State.Paused}} {{.State.Status}}") == "false exited"


def test_exec_missing_or_unrunnable_command_prints_the_oci_text_on_stdout(docker, unique):
    ok(docker("run", "-d", "--name", unique, "busybox", "sleep", "300"))
    r = docker("exec", unique, "no-such-cmd")
    assert r.returncode == 127 and r.stderr == "", r
    assert r.stdout.startswith("OCI runtime exec failed: exec failed: unable to start container"
                               " process: exec: \"no-such-cmd\": executable file not found in $PATH"), r
    r = docker("exec", unique, "/etc/passwd")
    assert r.returncode == 126 and r.stderr == "", r
    assert r.stdout.startswith("OCI runtime exec failed:") and "permission denied" in r.stdout, r


def test_rmi_force(docker, unique, busybox_tar):
    img = f"{unique}-img"
    iid = ok(docker("import", str(busybox_tar), img)).stdout.strip()
    short = iid.removeprefix("sha256:")[:12]
    try:
        # By ID, tagged in two repositories: refused without -f; with -f every tag goes too.
        ok(docker("tag", img, f"{img}-two:x"))
        r = docker("rmi", iid)
        assert r.returncode == 1 and r.stderr == (
            f"Error response from daemon: conflict: unable to delete {short} (must be forced)"
            " - image is referenced in multiple repositories\n"), r
        # dockerd removes the references in lexical order ('-' sorts before ':').
        assert ok(docker("rmi", "-f", iid)).stdout == (
            f"Untagged: {img}-two:x\nUntagged: {img}:latest\nDeleted: {iid}\n")
        assert docker("image", "inspect", iid).returncode == 1

        # Used by a stopped container: refused without -f; -f untags. (dockerd would also
        # delete the image, keeping its layers for the container; Wharf keeps the image.)
        iid = ok(docker("import", str(busybox_tar), img)).stdout.strip()
        short = iid.removeprefix("sha256:")[:12]
        cid = ok(docker("create", "--name", unique, img, "true")).stdout.strip()
        r = docker("rmi", img)
        assert r.returncode == 1 and r.stderr == (
            f"Error response from daemon: conflict: unable to remove repository reference "
            f"\"{img}\" (must force) - container {cid[:12]} is using its referenced image "
            f"{short}\n"), r
        assert ok(docker("rmi", "-f", img)).stdout.startswith(f"Untagged: {img}:latest\n")
        assert docker("image", "inspect", img).returncode == 1
        ok(docker("start", "-a", unique))  # the container still has its files
        ok(docker("rm", unique))
        docker("rmi", iid)

        # Used by a running container: -f by name untags (and the container runs on); by ID
        # not even -f deletes it (a hard conflict, 409).
        iid = ok(docker("import", str(busybox_tar), img)).stdout.strip()
        short = iid.removeprefix("sha256:")[:12]
        ok(docker("tag", img, f"{img}:two"))
        cid = ok(docker("run", "-d", "--name", unique, img, "sleep", "300")).stdout.strip()
        assert ok(docker("rmi", "-f", f"{img}:two")).stdout == f"Untagged: {img}:two\n"
        assert ok(docker("rmi", "-f", img)).stdout == f"Untagged: {img}:latest\n"
        r = docker("rmi", "-f", iid)
        assert r.returncode == 1 and r.stderr == (
            f"Error response from daemon: conflict: unable to delete {short} (cannot be forced)"
            f" - image is being used by running container {cid[:12]}\n"), r
        assert inspect(docker, iid, "{{.Id}}") == iid
        assert inspect(docker, unique, "{{.State.Running}}") == "true"
    finally:
        docker("rm", "-f", unique)
        docker("rmi", "-f", img, f"{img}-two:x")
        docker("rmi", iid)


def test_logs_since_and_until_cut_at_the_given_line(docker, unique):
    # Three writes at least 100 ms apart: each line has its own timestamp.
    ok(docker("run", "--name", unique, "busybox", "sh", "-c",
              "echo one; sleep 0.1; echo two; sleep 0.1; echo three"))
    stamped = ok(docker("logs", "-t", unique)).stdout.splitlines()
    assert [l.split(" ", 1)[1] for l in stamped] == ["one", "two", "three"], stamped
    t1, t2, t3 = (l.split(" ", 1)[0] for l in stamped)
    assert t1 < t2 < t3
    # Both bounds are inclusive, as dockerd's.
    assert ok(docker("logs", "--since", t2, unique)).stdout == "two\nthree\n"
    assert ok(docker("logs", "--until", t2, unique)).stdout == "one\ntwo\n"
    assert ok(docker("logs", "--since", t2, "--until", t2, unique)).stdout == "two\n"
    assert ok(docker("logs", "--since", t3, unique)).stdout == "three\n"
    # Unix seconds with a fraction, the form the CLI sends, also from docker-py's side.
    s2 = f"{rfc3339_seconds(t2):.9f}"
    assert ok(docker("logs", "--since", s2, "--until", t3, unique)).stdout == "two\nthree\n"


def test_attach_with_bad_detach_keys_is_400_in_dockers_words(api, docker, unique):
    ok(docker("run", "-d", "-i", "--name", unique, "busybox", "cat"))
    st, body = api.call("POST", f"/v1.44/containers/{unique}/attach?stream=1&stdin=1&stdout=1"
                        "&detachKeys=ctrl-@@")
    assert (st, body) == (400, {"message": "Invalid detach keys (ctrl-@@) provided"})
    # The CLI reports any non-101 answer to its upgrade this way, with dockerd too.
    r = docker("attach", "--detach-keys", "ctrl-@@", unique)
    assert r.returncode == 1 and r.stderr == "unable to upgrade to tcp, received 400\n", r
    assert inspect(docker, unique, "{{.State.Running}}") == "true"
