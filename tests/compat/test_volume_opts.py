"""The local driver's options (issue 15, item 1): `docker volume create -o type=… -o device=…
-o o=…` checked in dockerd's words, stored and shown by inspect; mount lifetime (the mounts
a crash leaves come off at the next start, `rm` unmounts first and never deletes through a
bind); prune leaves volumes with options alone; `system df` gives local volumes' UsageData.

No container mounts volumes yet (issue 15 item 2), so the mounts a running container would
hold are made here by hand, exactly where `VolumeService::mount` puts them; the mount and
unmount calls themselves are tested in crates/wharf-engine/src/volumes/mount_tests.rs.
Every mount a test makes is taken off in its `finally`."""

import json
import subprocess
import urllib.parse

import docker as dockerpy
import pytest

from support import ok


def vol_rm(docker, *names):
    docker("volume", "rm", "-f", *names)


def data_dir(wharfd, name):
    return wharfd.dir / "data" / "volumes" / name / "_data"


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split(" ")[4] == str(path) for line in f)


def umount(path):
    while mounted(path):
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_cli_options_are_stored_shown_and_checked_in_dockerds_words(docker, wharfd, unique):
    tmp, bind, plain = f"{unique}-tmpfs", f"{unique}-bind", f"{unique}-plain"
    host = wharfd.dir / f"{unique}-host"
    host.mkdir(exist_ok=True)
    try:
        ok(docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs",
                  "-o", "o=size=64m,uid=1000", tmp))
        v = json.loads(ok(docker("volume", "inspect", tmp)).stdout)[0]
        assert v["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=64m,uid=1000"}
        # The CLI sends no labels without --label: dockerd answers null, not {}.
        assert v["Labels"] is None
        assert v["Mountpoint"] == str(data_dir(wharfd, tmp))
        assert not mounted(data_dir(wharfd, tmp)), "create mounts nothing"

        ok(docker("volume", "create", "--opt", "type=none", "--opt", "o=bind",
                  "--opt", f"device={host}", bind))
        v = json.loads(ok(docker("volume", "inspect", bind)).stdout)[0]
        assert v["Options"] == {"type": "none", "o": "bind", "device": str(host)}

        ok(docker("volume", "create", plain))
        v = json.loads(ok(docker("volume", "inspect", plain)).stdout)[0]
        assert v["Options"] is None and v["Labels"] is None
        # /info names the driver that serves them, as dockerd.
        r = ok(docker("info", "--format", "{{json .Plugins.Volume}}"))
        assert json.loads(r.stdout) == ["local"], r.stdout

        for opts, words in [
            (["-o", "x=1", "-o", "type=tmpfs", "-o", "device=tmpfs"], 'invalid option: "x"'),
            (["-o", "type=tmpfs"], 'missing required option: "device"'),
            (["-o", "device=/dev/null"], 'missing required option: "type"'),
            (["-o", "o=bind"], 'missing required option: "device"'),
            (["-o", "size=10m"], "quota size requested but no quota support"),
            (["-o", "size=huge"], "invalid size: 'huge'"),
            (["-o", "type=cifs", "-o", "device=//srv:445/share"],
             "port not allowed in CIFS device URL, include 'port' in 'o='"),
        ]:
            r = docker("volume", "create", *opts, f"{unique}-bad")
            assert r.returncode != 0, opts
            assert f"create {unique}-bad: {words}" in r.stderr, (opts, r.stderr)
        assert not (wharfd.dir / "data" / "volumes" / f"{unique}-bad").exists()
        # An existing name answers the existing volume, whatever options come along.
        ok(docker("volume", "create", "-o", "x=1", tmp))
        v = json.loads(ok(docker("volume", "inspect", tmp)).stdout)[0]
        assert v["Options"]["type"] == "tmpfs"
    finally:
        vol_rm(docker, tmp, bind, plain)


def test_rm_of_a_mounted_bind_volume_unmounts_and_keeps_the_host_data(docker, wharfd, unique):
    name = f"{unique}-bind"
    host = wharfd.dir / f"{unique}-host"
    host.mkdir(exist_ok=True)
    (host / "precious").write_text("keep me")
    data = data_dir(wharfd, name)
    try:
        ok(docker("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={host}",
                  name))
        # What a container that ran with it leaves when wharfd is killed and the container
        # exits meanwhile: the bind on _data, no user.
        subprocess.run(["mount", "--bind", str(host), str(data)], check=True)
        assert (data / "precious").read_text() == "keep me"
        ok(docker("volume", "rm", name))
        assert not mounted(data)
        assert not (wharfd.dir / "data" / "volumes" / name).exists()
        assert (host / "precious").read_text() == "keep me"
    finally:
        umount(data)
        vol_rm(docker, name)


def test_a_crash_leaves_no_volume_mount_behind(docker, wharfd, unique):
    tmp, plain = f"{unique}-tmpfs", f"{unique}-plain"
    try:
        ok(docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", tmp))
        ok(docker("volume", "create", plain))
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(data_dir(wharfd, tmp))], check=True)
        # A mount an administrator put on a plain volume is not Wharf's to take off.
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(data_dir(wharfd, plain))],
                       check=True)
        wharfd.kill9()
        wharfd.restart()
        assert not mounted(data_dir(wharfd, tmp)), "no running container uses it"
        assert mounted(data_dir(wharfd, plain))
        # rm of a volume with a foreign mount below refuses rather than delete through it.
        r = docker("volume", "rm", plain)
        assert r.returncode != 0 and "is still mounted" in r.stderr, r.stderr
        assert json.loads(ok(docker("volume", "inspect", tmp)).stdout)[0]["Options"]
    finally:
        umount(data_dir(wharfd, tmp))
        umount(data_dir(wharfd, plain))
        vol_rm(docker, tmp, plain)


def test_prune_leaves_volumes_with_options_alone(docker, unique):
    opt, named = f"{unique}-opt", f"{unique}-named"
    try:
        ok(docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", opt))
        ok(docker("volume", "create", named))
        r = ok(docker("volume", "prune", "-f", "--all"))
        assert named in r.stdout and opt not in r.stdout, r.stdout
        ok(docker("volume", "inspect", opt))
    finally:
        vol_rm(docker, opt, named)


def test_system_df_gives_local_volumes_usage(docker, dclient, wharfd, unique):
    name, opt = f"{unique}-v", f"{unique}-opt"
    try:
        ok(docker("volume", "create", name))
        ok(docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", opt))
        data = data_dir(wharfd, name)
        (data / "a").write_bytes(b"x" * 3000)
        (data / "sub").mkdir()
        (data / "sub" / "b").write_bytes(b"y" * 500)
        # A hard link counts once, as dockerd's directory.Size.
        (data / "sub" / "a-link").hardlink_to(data / "a")

        df = dclient.df()
        vols = {v["Name"]: v for v in df["Volumes"]}
        assert vols[name]["UsageData"] == {"Size": 3500, "RefCount": 0}
        assert vols[name]["Mountpoint"] == str(data)
        assert opt not in vols, "volumes with options are not local data, as dockerd"
        assert isinstance(df["Images"], list) and isinstance(df["Containers"], list)
        assert df["BuildCache"] is None
        assert "UsageData" not in json.loads(ok(docker("volume", "inspect", name)).stdout)[0]

        r = ok(docker("system", "df", "-v", "--format", "{{json .}}"))
        got = json.loads(r.stdout)
        row = [v for v in got["Volumes"] if v["Name"] == name]
        assert row and row[0]["Links"] == "0" and row[0]["Size"] == "3.5kB", row
        r = ok(docker("system", "df"))
        assert "Local Volumes" in r.stdout, r.stdout

        api = dclient.api
        only = api._result(api._get(api._url("/system/df") + "?type=volume"), json=True)
        assert only["Images"] is None and only["Containers"] is None
        assert name in {v["Name"] for v in only["Volumes"]}
        cache = api._result(api._get(api._url("/system/df") + "?type=build-cache"), json=True)
        assert cache["BuildCache"] == [] and cache["Volumes"] is None
        r = api._get(api._url("/system/df") + "?" + urllib.parse.urlencode({"type": "bogus"}))
        assert r.status_code == 400 and r.json()["message"] == "unknown object type: bogus"
    finally:
        vol_rm(docker, name, opt)


def test_dockerpy_create_with_options(dclient, unique):
    name = f"{unique}-py"
    try:
        v = dclient.volumes.create(name, driver_opts={"type": "tmpfs", "device": "tmpfs"})
        assert v.attrs["Options"] == {"type": "tmpfs", "device": "tmpfs"}
        # docker-py sends no labels: null, as dockerd.
        assert dclient.volumes.get(name).attrs["Labels"] is None
        with pytest.raises(dockerpy.errors.APIError) as e:
            dclient.volumes.create(f"{unique}-bad", driver_opts={"nope": "1"})
        assert e.value.response.status_code == 400
        assert f'create {unique}-bad: invalid option: "nope"' in str(e.value)
    finally:
        try:
            dclient.api.remove_volume(name)
        except dockerpy.errors.NotFound:
            pass
