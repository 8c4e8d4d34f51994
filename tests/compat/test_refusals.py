"""Requests and refusals as Go's dockerd handles them, through the real docker CLI and
docker-py: a refusal sent before the body is read still reaches the client as its message
(never `write: broken pipe` / BrokenPipeError), body field names match case-insensitively,
swarm routes answer as a node outside a swarm, filters and query parameters are applied or
refused by name."""

import io
import os
import subprocess
import tarfile

import docker as dockerpy
import pytest

from test_docker_cli import ok

SWARM_WORDS = ('This node is not a swarm manager. Use "docker swarm init" or '
               '"docker swarm join" to connect this node to swarm and try again.')


def build_context(size):
    """A tar with a Dockerfile and `size` bytes of incompressible data."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in (("Dockerfile", b"FROM busybox\nCOPY blob /blob\n"),
                           ("blob", os.urandom(size))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_legacy_build_prints_the_refusal_not_a_broken_pipe(wharfd, busybox, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY blob /blob\n")
    (tmp_path / "blob").write_bytes(os.urandom(4 * 1024 * 1024))
    env = dict(wharfd.env(), DOCKER_BUILDKIT="0")
    r = subprocess.run(["docker", "build", "-t", "wc-refused-build", str(tmp_path)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "POST /build is not implemented in Wharf yet" in r.stderr, r.stderr
    assert "broken pipe" not in r.stderr, r.stderr


def test_cli_volume_create_with_bad_options_prints_dockerds_words(docker):
    r = docker("volume", "create", "-o", "type=none", "wc-refused-volume")
    assert r.returncode != 0
    assert 'create wc-refused-volume: missing required option: "device"' in r.stderr, r.stderr


@pytest.mark.parametrize("what", ["node", "service", "secret", "config"])
def test_cli_swarm_lists_print_dockers_words(docker, what):
    r = docker(what, "ls")
    assert r.returncode != 0
    assert SWARM_WORDS in r.stderr, r.stderr


def test_dockerpy_build_and_volume_get_api_errors(dclient):
    with pytest.raises(dockerpy.errors.APIError) as e:
        list(dclient.api.build(fileobj=io.BytesIO(build_context(4 * 1024 * 1024)),
                               custom_context=True, tag="wc-refused-build"))
    assert "POST /build is not implemented in Wharf yet" in str(e.value)
    with pytest.raises(dockerpy.errors.APIError) as e:
        dclient.volumes.create("wc-refused-volume", driver_opts={"device": "/x", "size": "1g"})
    assert e.value.response.status_code == 400
    assert "create wc-refused-volume: quota size requested but no quota support" in str(e.value)
    with pytest.raises(dockerpy.errors.APIError) as e:
        dclient.services.list()
    assert e.value.response.status_code == 503
    assert SWARM_WORDS in str(e.value)


def test_dockerpy_exec_detach_keys_are_honoured(dclient, unique):
    c = dclient.containers.run("busybox", ["sleep", "60"], detach=True, name=unique)
    try:
        # docker-py sends `detachKeys` (lower camel case) in the exec create body.
        ex = dclient.api.exec_create(c.id, ["true"], detach_keys="ctrl-x,x")
        assert dclient.api.exec_inspect(ex["Id"])["DetachKeys"] == "ctrl-x,x"
    finally:
        c.remove(force=True)


def test_filters_unknown_and_unserved_are_refused(docker):
    r = docker("ps", "--filter", "nope=1")
    assert r.returncode != 0 and "invalid filter 'nope'" in r.stderr, r.stderr
    r = docker("ps", "--filter", "network=bridge")
    assert r.returncode != 0
    assert "Wharf does not support filter 'network' yet" in r.stderr, r.stderr
    r = docker("ps", "--filter", "status=sleeping")
    assert r.returncode != 0 and "invalid filter 'status=sleeping'" in r.stderr, r.stderr
    r = docker("images", "--filter", "dangling=maybe")
    assert r.returncode != 0 and "invalid filter 'dangling=[maybe]'" in r.stderr, r.stderr
    ok(docker("ps", "-a", "--filter", "is-task=false", "--filter", "isolation=default"))
    out = ok(docker("images", "-q", "--filter", "until=2099-01-01T00:00:00Z")).stdout.split()
    assert out, "busybox was imported before 2099"
    assert ok(docker("images", "-q", "--filter", "until=100000h")).stdout.strip() == ""
    r = docker("events", "--filter", "nope=1", "--until", "0s")
    assert r.returncode != 0 and "invalid filter 'nope'" in r.stderr, r.stderr


def test_unserved_query_parameter_is_refused(dclient):
    api = dclient.api
    resp = api._get(api._url("/images/json"), params={"shared-size": 1})
    with pytest.raises(dockerpy.errors.APIError) as e:
        api._raise_for_status(resp)
    assert e.value.response.status_code == 400
    assert "'shared-size' parameter" in str(e.value)


def test_info_counts_paused_containers(docker, unique):
    ok(docker("run", "-d", "--name", unique, "busybox", "sleep", "60"))
    before = int(ok(docker("info", "-f", "{{.ContainersPaused}}")).stdout.strip())
    ok(docker("pause", unique))
    try:
        paused = int(ok(docker("info", "-f", "{{.ContainersPaused}}")).stdout.strip())
        assert paused == before + 1
    finally:
        docker("unpause", unique)
        docker("rm", "-f", unique)


def test_image_inspect_has_container_config(docker, dclient):
    out = ok(docker("image", "inspect", "-f", "{{json .ContainerConfig}}", "busybox")).stdout
    assert '"Hostname":""' in out and '"Cmd":null' in out, out
    attrs = dclient.images.get("busybox").attrs
    assert attrs["Container"] == ""
    assert attrs["ContainerConfig"]["Image"] == ""
    assert "VirtualSize" not in attrs
