"""Named volumes of the local driver (issue 15, item 1) through the real docker CLI and
docker-py: create (named, generated, labels), ls with filters, inspect, rm (-f), prune
(anonymous only unless --all), and a kill -9 in between. No container mounts volumes yet, so
every volume is dangling. The local driver's options: test_volume_opts.py."""

import json
import re
import time

import docker as dockerpy
import pytest

from support import ok


def vol_rm(docker, *names):
    docker("volume", "rm", "-f", *names)


def ls_names(docker, *args):
    r = ok(docker("volume", "ls", "-q", *args))
    return set(r.stdout.split())


def test_cli_create_inspect_ls_rm(docker, wharfd, unique):
    name = f"{unique}-a"
    since = str(int(time.time()) - 1)
    try:
        assert ok(docker("volume", "create", "--label", "tier=db", "--label", "solo", name)
                  ).stdout.strip() == name
        v = json.loads(ok(docker("volume", "inspect", name)).stdout)[0]
        assert v["Name"] == name
        assert v["Driver"] == "local"
        assert v["Scope"] == "local"
        assert v["Labels"] == {"tier": "db", "solo": ""}
        assert v["Options"] is None
        assert v["Mountpoint"] == str(wharfd.dir / "data" / "volumes" / name / "_data")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v["CreatedAt"]), v["CreatedAt"]
        assert (wharfd.dir / "data" / "volumes" / name / "_data").is_dir()
        # An existing name answers the existing volume.
        ok(docker("volume", "create", "--label", "other=1", name))
        again = json.loads(ok(docker("volume", "inspect", name)).stdout)[0]
        assert again["Labels"] == {"tier": "db", "solo": ""}

        assert name in ls_names(docker)
        assert name in ls_names(docker, "--filter", "label=tier=db")
        assert name in ls_names(docker, "--filter", "label=solo")
        assert name not in ls_names(docker, "--filter", "label=tier=web")
        assert name in ls_names(docker, "--filter", f"name={unique}")
        assert name in ls_names(docker, "--filter", "driver=local")
        assert name in ls_names(docker, "--filter", "dangling=true")
        assert name not in ls_names(docker, "--filter", "dangling=false")
        r = docker("volume", "ls", "--filter", "until=1h")
        assert r.returncode != 0 and "invalid filter 'until'" in r.stderr, r.stderr

        ok(docker("volume", "rm", name))
        assert not (wharfd.dir / "data" / "volumes" / name).exists()
        r = docker("volume", "inspect", name)
        assert r.returncode != 0 and "no such volume" in r.stderr, r.stderr
        r = docker("volume", "rm", name)
        assert r.returncode != 0 and f"get {name}: no such volume" in r.stderr, r.stderr
        ok(docker("volume", "rm", "-f", name))
        r = docker("inspect", name)
        assert r.returncode != 0 and "No such object" in r.stderr, r.stderr
        r = ok(docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                      "--filter", "type=volume", "--filter", f"volume={name}",
                      "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}"))
        assert r.stdout.split("\n")[:2] == [f"create {name} local", f"destroy {name} local"], r.stdout
    finally:
        vol_rm(docker, name)


def test_cli_generated_names_bad_names_drivers_and_options(docker, wharfd, unique):
    r = ok(docker("volume", "create"))
    gen = r.stdout.strip()
    try:
        assert re.fullmatch(r"[0-9a-f]{64}", gen), gen
        v = json.loads(ok(docker("volume", "inspect", gen)).stdout)[0]
        assert "com.docker.volume.anonymous" in v["Labels"]
    finally:
        vol_rm(docker, gen)
    r = docker("volume", "create", "x")
    assert r.returncode != 0 and "volume name is too short" in r.stderr, r.stderr
    r = docker("volume", "create", "bad/name")
    assert r.returncode != 0 and "includes invalid characters for a local volume name" in r.stderr
    r = docker("volume", "create", "--driver", "wc-nosuch", f"{unique}-d")
    assert r.returncode != 0
    assert 'error looking up volume plugin wc-nosuch: plugin "wc-nosuch" not found' in r.stderr
    # Bad local driver options: dockerd's words, nothing made.
    r = docker("volume", "create", "-o", "type=tmpfs", f"{unique}-o")
    assert r.returncode != 0
    assert f'create {unique}-o: missing required option: "device"' in r.stderr, r.stderr
    assert f"{unique}-o" not in ls_names(docker)
    assert not (wharfd.dir / "data" / "volumes" / f"{unique}-o").exists()


def test_cli_prune_takes_anonymous_volumes_unless_all(docker, wharfd, unique):
    keep, named = f"{unique}-keep", f"{unique}-named"
    anon = ok(docker("volume", "create")).stdout.strip()
    try:
        (wharfd.dir / "data" / "volumes" / anon / "_data" / "f").write_bytes(b"x" * 1000)
        ok(docker("volume", "create", "--label", "keep", keep))
        ok(docker("volume", "create", named))
        r = ok(docker("volume", "prune", "-f"))
        assert anon in r.stdout, r.stdout
        assert "Total reclaimed space: 1kB" in r.stdout, r.stdout
        names = ls_names(docker)
        assert anon not in names and {keep, named} <= names
        r = ok(docker("volume", "prune", "-f", "--all", "--filter", "label!=keep"))
        assert named in r.stdout and keep not in r.stdout, r.stdout
        assert keep in ls_names(docker)
        r = ok(docker("volume", "prune", "-f", "--filter", "all=true", "--filter", "label=keep"))
        assert keep in r.stdout, r.stdout
        assert not {keep, named} & ls_names(docker)
    finally:
        vol_rm(docker, anon, keep, named)


def test_volumes_survive_kill9_and_orphan_directories_go(docker, wharfd, unique):
    name, orphan = f"{unique}-v", f"{unique}-orphan"
    vols = wharfd.dir / "data" / "volumes"
    try:
        ok(docker("volume", "create", "--label", "a=b", name))
        (vols / name / "_data" / "kept").write_text("data")
        # What a create cut between its directory and its record leaves.
        (vols / orphan / "_data").mkdir(parents=True)
        wharfd.kill9()
        wharfd.restart()
        v = json.loads(ok(docker("volume", "inspect", name)).stdout)[0]
        assert v["Labels"] == {"a": "b"}
        assert (vols / name / "_data" / "kept").read_text() == "data"
        assert not (vols / orphan).exists()
        assert orphan not in ls_names(docker)
    finally:
        vol_rm(docker, name)


def test_dockerpy_volumes(dclient, unique):
    name = f"{unique}-py"
    try:
        v = dclient.volumes.create(name, labels={"x": "1"})
        assert v.name == name
        assert v.attrs["Driver"] == "local"
        assert dclient.volumes.get(name).attrs["Labels"] == {"x": "1"}
        assert name in [x.name for x in dclient.volumes.list(filters={"label": "x=1"})]
        assert name not in [x.name for x in dclient.volumes.list(filters={"label": "x=2"})]
        anon = dclient.volumes.create()
        rep = dclient.volumes.prune()
        assert anon.name in rep["VolumesDeleted"]
        assert name not in rep["VolumesDeleted"]
        rep = dclient.volumes.prune(filters={"all": "true", "label": "x=1"})
        assert rep["VolumesDeleted"] == [name]
        v = dclient.volumes.create(name)
        v.remove()
        with pytest.raises(dockerpy.errors.NotFound) as e:
            dclient.volumes.get(name)
        assert f"get {name}: no such volume" in str(e.value)
        with pytest.raises(dockerpy.errors.APIError) as e:
            dclient.volumes.create(f"{unique}-opts", driver_opts={"o": "size=1m"})
        assert e.value.response.status_code == 400
        assert 'missing required option: "device"' in str(e.value)
    finally:
        # docker-py 7.1's remove_volume(force=True) never sends `force` (it passes the params
        # to `_url`, which drops them), so an unknown name is a 404 there as against dockerd.
        try:
            dclient.api.remove_volume(name)
        except dockerpy.errors.NotFound:
            pass
