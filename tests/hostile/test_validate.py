"""Strict, typed validation at the edge of create, update and exec (issue 13, item 2 and 3).

Every hostile body is refused with a 4xx that says what is wrong (Docker's words where dockerd
has them) and leaves nothing behind: no container record, no data or exec dir. Every body that
is accepted can be shown back by inspect, through the API and through the docker CLI's Go
decoding. `User: "4294967295"` is `(uid_t)-1`, which setresuid reads as "unchanged": no path
may let it, or any id beyond moby's range, reach a container process.
"""

import io
import json
import shutil
import tarfile
import urllib.parse

import pytest

from hostile_client import UnixHTTP, api, call, leftovers
import wharfd_harness as H

RANGE = "uids and gids must be in range 0-2147483647"


# ---------------------------------------------------------------- helpers


def stream(daemon, method, path, body):
    """A request whose answer is a raw stream read until the daemon ends it."""
    conn = UnixHTTP(str(daemon.socket), 60)
    try:
        conn.request(method, path, body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def assert_refused(daemon, path, body, status, message, exact=True):
    before = leftovers(daemon)
    got, answer = call(daemon, "POST", path, body)
    assert got == status, (body, got, answer)
    text = answer["message"]
    if exact:
        assert text == message, (body, text)
    else:
        assert message in text, (body, text)
    assert str(daemon.dir) not in text, text
    new = leftovers(daemon) - before
    assert not new, f"{body} left {sorted(new)} behind"


def create(daemon, body, name=None):
    q = f"?name={name}" if name else ""
    status, answer = call(daemon, "POST", "/containers/create" + q, {"Image": "busybox", **body})
    assert status == 201, (body, status, answer)
    return answer["Id"]


def remove(daemon, cid):
    status, answer = call(daemon, "DELETE", f"/containers/{cid}?force=1")
    assert status == 204, (status, answer)


def image_tar_with_passwd(busybox_tar, passwd, group):
    """The busybox rootfs with its /etc/passwd and /etc/group replaced."""
    out = io.BytesIO()
    with tarfile.open(busybox_tar) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for m in src.getmembers():
            if m.name.lstrip("./") in ("etc/passwd", "etc/group"):
                continue
            dst.addfile(m, src.extractfile(m) if m.isreg() else None)
        for name, text in (("etc/passwd", passwd), ("etc/group", group)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            dst.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture(scope="module")
def running(daemon, busybox):
    cid = create(daemon, {"Cmd": ["sleep", "600"]}, name="validate-exec-target")
    status, answer = call(daemon, "POST", f"/containers/{cid}/start")
    assert status == 204, answer
    yield cid
    remove(daemon, cid)


# ---------------------------------------------------------------- users


@pytest.mark.parametrize("user", ["4294967295", "-1", "0:4294967295", "0:-1", "2147483648",
                                  "4294967294", "root:4294967295"])
def test_user_out_of_range_is_refused_at_create(daemon, busybox, outside_unchanged, user):
    assert_refused(daemon, "/containers/create?name=validate-user", {"Image": "busybox", "User": user,
                   "Cmd": ["id"]}, 400, f"invalid Config.User {json.dumps(user)}: {RANGE}")


def test_user_out_of_range_is_refused_at_exec_create(daemon, running, outside_unchanged):
    status, answer = call(daemon, "POST", f"/containers/{running}/exec",
                          {"User": "4294967295", "Cmd": ["id", "-u"]})
    assert status == 400, answer
    assert answer["message"] == f'invalid User "4294967295": {RANGE}'
    _, inspect = call(daemon, "GET", f"/containers/{running}/json")
    assert inspect["ExecIDs"] is None


def test_an_images_own_passwd_cannot_make_minus_one(daemon, busybox, busybox_tar, outside_unchanged):
    """A user name resolves at start, from the image's /etc/passwd: an entry with uid
    4294967295 is refused there, and nothing runs."""
    tar = image_tar_with_passwd(busybox_tar, "root:x:0:0:root:/root:/bin/sh\n"
                                "evil:x:4294967295:0::/:/bin/sh\n", "root:x:0:\n")
    status, _, raw = api(daemon, "POST", "/images/create?fromSrc=-&repo=validate-evil&tag=latest",
                         tar, timeout=120)
    assert status == 200, raw[-300:]
    cid = create(daemon, {"Image": "validate-evil", "User": "evil", "Cmd": ["sleep", "600"]},
                 name="validate-evil-passwd")
    try:
        status, answer = call(daemon, "POST", f"/containers/{cid}/start")
        assert status == 400, answer
        assert RANGE in answer["message"], answer
        _, inspect = call(daemon, "GET", f"/containers/{cid}/json")
        assert not inspect["State"]["Running"] and inspect["State"]["Pid"] == 0, inspect["State"]
        _, top = call(daemon, "GET", f"/containers/{cid}/top")
        assert not (top or {}).get("Processes"), top
    finally:
        remove(daemon, cid)
        call(daemon, "DELETE", "/images/validate-evil:latest")


def test_an_ordinary_user_still_runs_as_itself(daemon, busybox, outside_unchanged):
    cid = create(daemon, {"User": "2147483647:5", "Cmd": ["sleep", "600"]},
                 name="validate-user-max")
    try:
        status, answer = call(daemon, "POST", f"/containers/{cid}/start")
        assert status == 204, answer
        status, ex = call(daemon, "POST", f"/containers/{cid}/exec",
                          {"Cmd": ["cat", "/proc/self/status"], "AttachStdout": True})
        assert status == 201, ex
        status, raw = stream(daemon, "POST", f"/exec/{ex['Id']}/start",
                             {"Detach": False, "Tty": True})
        assert status == 200
        uid_line = next(l for l in raw.decode(errors="replace").splitlines() if l.startswith("Uid:"))
        assert uid_line.split()[1:] == ["2147483647"] * 4, uid_line
    finally:
        remove(daemon, cid)


# ---------------------------------------------------------------- names and strings


INJECT = "a\n6.6.6.6 injected.example"


@pytest.mark.parametrize("body,message", [
    ({"Hostname": INJECT},
     'invalid Config.Hostname "a\\n6.6.6.6 injected.example": control characters are not allowed (found \'\\n\')'),
    ({"Domainname": "x\ny"},
     'invalid Config.Domainname "x\\ny": control characters are not allowed (found \'\\n\')'),
    ({"Hostname": "a b"},
     'invalid Config.Hostname "a b": whitespace characters are not allowed (found \' \')'),
    ({"Hostname": "a" * 65},
     f'invalid Config.Hostname "{"a" * 65}": longer than the kernel\'s 64 bytes (65 bytes)'),
    ({"Labels": {"a\nb": "c"}},
     'invalid key "a\\nb" in Config.Labels: control characters are not allowed (found \'\\n\')'),
    ({"Labels": {"a": "b\u001b[2J"}},
     'invalid Config.Labels.a "b\\u{1b}[2J": control characters are not allowed (found \'\\u{1b}\')'),
    ({"Env": ["A\nB=c"]},
     'invalid Config.Env entry "A\\nB=c": control characters are not allowed (found \'\\n\') in the variable name'),
    ({"Env": ["=c"]}, 'invalid Config.Env entry "=c": the variable name is empty'),
    ({"Cmd": ["echo", "a\u0000b"]}, 'invalid Config.Cmd "a\\0b": NUL bytes are not allowed'),
    ({"WorkingDir": "/a\nb"},
     'invalid Config.WorkingDir "/a\\nb": control characters are not allowed (found \'\\n\')'),
    ({"HostConfig": {"Sysctls": {"net.ipv4.ip_forward\n": "1"}}},
     'invalid key "net.ipv4.ip_forward\\n" in HostConfig.Sysctls: control characters are not allowed (found \'\\n\')'),
    ({"HostConfig": {"ExtraHosts": ["a\nb:1.2.3.4"]}},
     'invalid HostConfig.ExtraHosts "a\\nb:1.2.3.4": control characters are not allowed (found \'\\n\')'),
    ({"HostConfig": {"DnsSearch": ["corp nameserver"]}},
     'invalid HostConfig.DnsSearch entry "corp nameserver": it must be one word without control characters'),
    ({"HostConfig": {"DnsOptions": ["ndots:1\nnameserver 6.6.6.6"]}},
     'invalid HostConfig.DnsOptions "ndots:1\\nnameserver 6.6.6.6": control characters are not allowed (found \'\\n\')'),
])
def test_names_and_strings_that_would_inject_are_refused(daemon, busybox, outside_unchanged, body, message):
    assert_refused(daemon, "/containers/create?name=validate-strings",
                   {"Image": "busybox", "Cmd": ["true"], **body}, 400, message)


def test_container_name_keeps_dockers_words(daemon, busybox, outside_unchanged):
    assert_refused(daemon, "/containers/create?name=" + urllib.parse.quote("abc\n"), {"Image": "busybox"}, 400,
                   "Invalid container name (abc\n), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    assert_refused(daemon, "/containers/create?name=a%00b", {"Image": "busybox"}, 400,
                   "Invalid container name (a\u0000b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")


def test_free_text_stays_free(daemon, busybox, outside_unchanged):
    """Arguments, environment values and health commands may hold newlines and tabs."""
    cid = create(daemon, {"Cmd": ["sh", "-c", "echo a\necho b\t"], "Env": ["CERT=line1\nline2"],
                          "Healthcheck": {"Test": ["CMD-SHELL", "true\ntrue"]}},
                 name="validate-free-text")
    try:
        _, inspect = call(daemon, "GET", f"/containers/{cid}/json")
        assert "CERT=line1\nline2" in inspect["Config"]["Env"]
    finally:
        remove(daemon, cid)


# ---------------------------------------------------------------- typed numbers


def unmarshal(value, field, typ):
    return f"json: cannot unmarshal {value} into Go struct field {field} of type {typ}"


@pytest.mark.parametrize("body,message", [
    ({"HostConfig": {"Memory": "lots"}}, unmarshal("string", "HostConfig.HostConfig.Memory", "int64")),
    ({"HostConfig": {"CpuShares": "x"}}, unmarshal("string", "HostConfig.HostConfig.CpuShares", "int64")),
    ({"HostConfig": {"Memory": 1.5e300}},
     unmarshal("number 1.5e+300", "HostConfig.HostConfig.Memory", "int64")),
    ({"HostConfig": {"Memory": 18446744073709551615}},
     unmarshal("number 18446744073709551615", "HostConfig.HostConfig.Memory", "int64")),
    ({"hostconfig": {"memory": 7.5}}, unmarshal("number 7.5", "HostConfig.HostConfig.Memory", "int64")),
    ({"HostConfig": {"BlkioWeight": 70000}},
     unmarshal("number 70000", "HostConfig.HostConfig.BlkioWeight", "uint16")),
    ({"HostConfig": {"PidsLimit": True}}, unmarshal("bool", "HostConfig.HostConfig.PidsLimit", "int64")),
    ({"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": "x", "Hard": 1}]}},
     unmarshal("string", "Ulimit.HostConfig.Ulimits.Soft", "int64")),
    ({"HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": "3"}}},
     unmarshal("string", "RestartPolicy.HostConfig.RestartPolicy.MaximumRetryCount", "int64")),
    ({"StopTimeout": "10"}, unmarshal("string", "ContainerConfigWrapper.StopTimeout", "int64")),
    ({"Healthcheck": {"Interval": "1s"}},
     unmarshal("string", "HealthConfig.Healthcheck.Interval", "int64")),
    ({"User": 0}, unmarshal("number 0", "ContainerConfigWrapper.User", "string")),
])
def test_wrong_types_name_the_field(daemon, busybox, outside_unchanged, body, message):
    assert_refused(daemon, "/containers/create?name=validate-types",
                   {"Image": "busybox", "Cmd": ["true"], **body}, 400, message)


@pytest.mark.parametrize("hc,message", [
    ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": -5}, "Minimum memory limit allowed is 6MB"),
    ({"MemoryReservation": 1024}, "Minimum memory reservation allowed is 6MB"),
    ({"MemoryReservation": -5}, "Invalid value -5 for HostConfig.MemoryReservation: the smallest allowed is 0"),
    ({"Memory": 33554432, "MemorySwap": -2},
     "Invalid value -2 for HostConfig.MemorySwap: the smallest allowed is -1"),
    ({"CpuQuota": -5}, "Invalid value -5 for HostConfig.CpuQuota: the smallest allowed is -1"),
    ({"CpuShares": -5}, "shares: invalid argument"),
    ({"ShmSize": -5}, "SHM size can not be less than 0"),
    ({"OomScoreAdj": 5000}, "Invalid value 5000, range for oom score adj is [-1000, 1000]"),
    ({"CpuPeriod": -1},
     "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
    ({"NanoCpus": -1}, "Range of CPUs is from 0.01 to"),
    ({"PidsLimit": 9223372036854775807},
     "Invalid value 9223372036854775807 for HostConfig.PidsLimit: the kernel allows at most 4194304"),
    ({"ConsoleSize": [70000, 80]}, "Invalid value [70000, 80] for HostConfig.ConsoleSize"),
    ({"Ulimits": [{"Name": "nofile", "Soft": -5, "Hard": -5}]}, "Invalid value for ulimit nofile"),
    ({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}}, "maximum retry count"),
    ({"CpusetCpus": "0-4294967295"},
     "Invalid value 0-4294967295 for cpuset cpus: value of out range, maximum is 8192"),
])
def test_numbers_out_of_range_are_refused(daemon, busybox, outside_unchanged, hc, message):
    assert_refused(daemon, "/containers/create?name=validate-ranges",
                   {"Image": "busybox", "Cmd": ["true"], "HostConfig": hc}, 400, message, exact=False)


def test_update_and_exec_bodies_are_checked_too(daemon, running, outside_unchanged):
    status, answer = call(daemon, "POST", f"/containers/{running}/update", {"Memory": "lots"})
    assert (status, answer["message"]) == (400, unmarshal("string", "UpdateConfig.Memory", "int64"))
    status, answer = call(daemon, "POST", f"/containers/{running}/update", {"CpusetCpus": "0\n"})
    assert status == 400 and "control characters" in answer["message"], answer
    status, answer = call(daemon, "POST", f"/containers/{running}/exec",
                          {"Cmd": ["true"], "WorkingDir": "/a\nb"})
    assert status == 400 and "control characters" in answer["message"], answer
    status, answer = call(daemon, "POST", f"/containers/{running}/exec", {"Cmd": ["true", 1]})
    assert (status, answer["message"]) == (400, unmarshal("number 1", "ExecConfig.Cmd", "string"))


# ---------------------------------------------------------------- round trip


ACCEPTED = [
    {},
    {"Hostname": "web-1", "Domainname": "example.org", "User": "1000:1000"},
    {"User": "nobody", "Labels": {"com.example.a": "b", "empty": ""}},
    {"Env": None, "Entrypoint": None, "Labels": None, "Volumes": None, "HostConfig": None},
    {"hostname": "lower", "hostconfig": {"memory": 33554432, "MEMORYSWAP": -1, "cpushares": 512}},
    {"HostConfig": {"Memory": 0, "CpuShares": 0, "PidsLimit": None, "Ulimits": None,
                    "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}, "ConsoleSize": [0, 0],
                    "OomScoreAdj": 0, "ShmSize": 0, "BlkioWeight": 0, "MemorySwappiness": None}},
    {"HostConfig": {"Memory": 9223372036854775807, "PidsLimit": -1, "CpuQuota": -1,
                    "OomScoreAdj": -1000, "ConsoleSize": [65535, 65535],
                    "Ulimits": [{"Name": "core", "Soft": -1, "Hard": -1}]}},
    {"HostConfig": {"Memory": 6291456, "MemoryReservation": 6291456, "CpuShares": 1,
                    "PidsLimit": 4194304, "RestartPolicy": {"Name": "on-failure",
                                                             "MaximumRetryCount": 3}}},
    {"Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 1000000000, "Retries": 3}},
]


@pytest.mark.parametrize("body", ACCEPTED, ids=[str(i) for i in range(len(ACCEPTED))])
def test_every_accepted_create_is_shown_back_by_inspect(daemon, busybox, outside_unchanged, body):
    cid = create(daemon, {"Cmd": ["true"], **body},
                 name="validate-roundtrip")
    try:
        status, inspect = call(daemon, "GET", f"/containers/{cid}/json")
        assert status == 200, inspect
        hc = {k.lower(): v for k, v in ((body.get("HostConfig") or body.get("hostconfig")) or {}).items()}
        got = {k.lower(): v for k, v in inspect["HostConfig"].items()}
        for k in ("memory", "cpuquota", "oomscoreadj", "consolesize", "memoryreservation"):
            if hc.get(k):
                assert got[k] == hc[k], (k, got[k], hc[k])
        if hc.get("memory", 0) > 0 and "memoryswap" not in hc:
            # Twice the memory where swap is accounted (saturating), else unlimited.
            assert got["memoryswap"] == -1 or got["memoryswap"] >= hc["memory"], got["memoryswap"]
        for k in ("User", "Hostname", "Domainname"):
            if body.get(k):
                assert inspect["Config"][k] == body[k]
        if shutil.which("docker"):
            r = H.run_docker(daemon, "inspect", cid, timeout=30)
            assert r.returncode == 0, r.stderr
            assert json.loads(r.stdout)[0]["Id"] == cid
    finally:
        remove(daemon, cid)


# ---------------------------------------------------------------- errors


def test_error_messages_do_not_show_the_daemons_roots(daemon, busybox, outside_unchanged):
    """A daemon fault whose text names a path under the roots (here: the writable layer is
    gone, so mounting the rootfs fails) is a 500 whose text shows neither root: the storage
    layer words it without paths (StorageError::public_message), and the server's last-line
    guard would write <exec-root> for any path left."""
    snaps = daemon.dir / "data" / "snapshots"
    before = {p.name for p in snaps.iterdir()}
    cid = create(daemon, {"Cmd": ["true"]}, name="validate-leak")
    (layer,) = [p for p in snaps.iterdir() if p.name not in before]
    (layer / "fs").rename(layer / "fs.moved")
    try:
        status, answer = call(daemon, "POST", f"/containers/{cid}/start")
        assert status == 500, (status, answer)
        assert str(daemon.dir) not in answer["message"], answer
        assert "mounting the container's rootfs" in answer["message"], answer
        assert "/containers/" not in answer["message"] or "<exec-root>/containers/" in answer["message"], answer
    finally:
        (layer / "fs.moved").rename(layer / "fs")
        remove(daemon, cid)
