"""docker-py 7.1 against wharfd (compare ../../shared/api/captures/64-dockerpy.txt)."""

import docker as dockerpy
import pytest


def test_version(dclient):
    v = dclient.version()
    assert v["ApiVersion"] == "1.44"
    assert v["MinAPIVersion"] == "1.24"
    assert v["Os"] == "linux"
    assert isinstance(v.get("Components"), list)
    # docker-py negotiated from GET /version.
    assert dclient.api.api_version == "1.44"


def test_info(dclient):
    info = dclient.info()
    for key in ("ID", "Containers", "ContainersRunning", "Images", "ServerVersion", "OSType",
                "Architecture", "NCPU", "MemTotal"):
        assert key in info, key
    assert info["OSType"] == "linux"
    assert info["Images"] >= 1


def test_ping(dclient):
    assert dclient.ping() is True


def test_run_remove_returns_output(dclient):
    out = dclient.containers.run("busybox", "echo hi", remove=True)
    assert out == b"hi\n"


def test_run_with_stderr(dclient):
    out = dclient.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"], remove=True,
                                 stdout=True, stderr=True)
    assert out == b"out\nerr\n"


def test_run_nonzero_raises_container_error(dclient):
    with pytest.raises(dockerpy.errors.ContainerError) as e:
        dclient.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 5"], remove=True)
    assert e.value.exit_status == 5
    assert b"bad" in (e.value.stderr or b"")


def test_run_detach_wait_logs(dclient, unique):
    c = dclient.containers.run("busybox", ["sh", "-c", "echo one; echo two >&2; exit 2"],
                               detach=True, name=unique)
    res = c.wait(timeout=60)
    assert res["StatusCode"] == 2
    assert res.get("Error") in (None, {}) or not res["Error"].get("Message")
    assert c.logs() == b"one\ntwo\n"
    assert c.logs(stdout=True, stderr=False) == b"one\n"
    assert c.logs(stdout=False, stderr=True) == b"two\n"
    c.reload()
    assert c.status == "exited"
    assert c.attrs["State"]["ExitCode"] == 2
    c.remove()


def test_list_with_label_filter(dclient, unique):
    a = dclient.containers.create("busybox", "true", name=unique + "-a", labels={"a": "b"})
    b = dclient.containers.create("busybox", "true", name=unique + "-b", labels={"a": "c"})
    got = dclient.containers.list(all=True, filters={"label": "a=b"})
    assert [c.id for c in got] == [a.id]
    got = {c.id for c in dclient.containers.list(all=True, filters={"label": "a"})}
    assert {a.id, b.id} <= got
    # Created, not running: hidden without all=True.
    assert a.id not in {c.id for c in dclient.containers.list()}
    assert got and dclient.containers.get(a.id).labels == {"a": "b"}


def test_get_by_name_and_prefix(dclient, unique):
    c = dclient.containers.run("busybox", "sleep 1000", detach=True, name=unique)
    got = dclient.containers.get(unique)
    assert got.id == c.id
    assert got.name == unique
    assert got.status == "running"
    assert dclient.containers.get(c.id[:12]).id == c.id
    assert got.image.tags == ["busybox:latest"]


def test_stop_and_remove(dclient, unique):
    c = dclient.containers.run("busybox", "sleep 1000", detach=True, name=unique)
    c.stop(timeout=1)
    c.reload()
    assert c.status == "exited"
    assert c.attrs["State"]["ExitCode"] == 137
    c.remove()
    with pytest.raises(dockerpy.errors.NotFound):
        dclient.containers.get(unique)


def test_remove_running_conflict_then_force(dclient, unique):
    c = dclient.containers.run("busybox", "sleep 1000", detach=True, name=unique)
    with pytest.raises(dockerpy.errors.APIError) as e:
        c.remove()
    assert e.value.status_code == 409
    c.remove(force=True)
    with pytest.raises(dockerpy.errors.NotFound):
        c.reload()


def test_kill_and_restart(dclient, unique):
    c = dclient.containers.run("busybox", "sleep 1000", detach=True, name=unique)
    pid = c.attrs["State"]["Pid"]
    c.restart(timeout=1)
    c.reload()
    assert c.status == "running"
    assert c.attrs["State"]["Pid"] != pid
    c.kill()
    assert c.wait(timeout=30)["StatusCode"] == 137


def test_rename(dclient, unique):
    c = dclient.containers.create("busybox", "true", name=unique)
    c.rename(unique + "-renamed")
    c.reload()
    assert c.name == unique + "-renamed"


def test_images(dclient, busybox):
    imgs = dclient.images.list()
    tags = [t for i in imgs for t in i.tags]
    assert "busybox:latest" in tags
    img = dclient.images.get("busybox")
    assert img.id == busybox
    assert "busybox:latest" in img.tags
    assert img.attrs["Os"] == "linux"
    assert img.attrs["RootFS"]["Type"] == "layers"


def test_unknown_container_is_404(dclient):
    with pytest.raises(dockerpy.errors.NotFound) as e:
        dclient.containers.get("wc-nosuch-container")
    assert e.value.status_code == 404
    assert "No such container: wc-nosuch-container" in str(e.value)
    with pytest.raises(dockerpy.errors.APIError) as e:
        dclient.api.stop("wc-nosuch-container")
    assert e.value.status_code == 404


def test_unknown_image_is_404(dclient):
    with pytest.raises(dockerpy.errors.ImageNotFound) as e:
        dclient.images.get("wc-nosuch-image:v1")
    assert e.value.status_code == 404
