"""docker save and docker load through wharfd (issue 15 item 7) with the real docker CLI,
docker-py, skopeo and podman.

Archives come from Wharf's own save, from skopeo (`docker-archive:` and `oci-archive:`, made
from Wharf's save), from podman when it is installed, and from `docker_archive()` below, which
writes what real Docker 20.10 writes (`<id>/layer.tar`, `<id>/json`, `<config>.json`,
`manifest.json`, `repositories`) and, by changing one thing, hostile or broken variants.
Every image a test makes is tagged `wc-<test>...` and removed after it; a test that expects a
refusal checks that the images, blobs and layer snapshots of the daemon are what they were.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import docker as dockerpy
import pytest

from support import Api, ok, wait_for

EPOCH_2000 = 946684800


# ---------------------------------------------------------------- archive builders


def layer_tar(files):
    """A layer: `{path: bytes}` as regular files (directories implied)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            ti.mtime = EPOCH_2000
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_for(layers, marker):
    """An image config naming the plain tars `layers` (diff ids = their digests)."""
    return json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "created": "2000-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Labels": {"wharf.test.marker": marker}},
        "rootfs": {"type": "layers", "diff_ids": [sha(lay) for lay in layers]},
        "history": [{"created": "2000-01-01T00:00:00Z", "created_by": f"layer {i}"}
                    for i in range(len(layers))],
    }, sort_keys=True).encode()


class Image:
    def __init__(self, layers, tags, marker="m", config=None, layer_files=None):
        self.layers = layers
        self.tags = tags
        self.config = config if config is not None else config_for(layers, marker)
        self.id = sha(self.config)
        # What manifest.json names for each layer (the bytes stored there may be compressed).
        self.layer_files = layer_files or layers


def add(t, name, data, **kw):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    for k, v in kw.items():
        setattr(ti, k, v)
    t.addfile(ti, io.BytesIO(data))


def docker_archive(path, images, extra=None, manifest=None):
    """What Docker 20.10's `docker save` writes: per layer a `<v1 id>/` directory with
    `layer.tar`, `json` and `VERSION` (a layer shared by two images once, as a symlink the
    second time, as Docker does), `<config hex>.json`, `manifest.json` and `repositories`.
    `extra(t)` adds entries; `manifest` replaces manifest.json's bytes."""
    items, repos, seen, written = [], {}, {}, set()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for img in images:
            paths, parent = [], ""
            for data in img.layer_files:
                v1 = hashlib.sha256((parent + sha(data)).encode()).hexdigest()
                if v1 in written:
                    paths.append(f"{v1}/layer.tar")
                    parent = v1
                    continue
                written.add(v1)
                if sha(data) in seen:
                    ti = tarfile.TarInfo(f"{v1}/layer.tar")
                    ti.type = tarfile.SYMTYPE
                    ti.linkname = f"../{seen[sha(data)]}/layer.tar"
                    t.addfile(ti)
                else:
                    add(t, f"{v1}/layer.tar", data)
                    seen[sha(data)] = v1
                add(t, f"{v1}/VERSION", b"1.0")
                add(t, f"{v1}/json", json.dumps({"id": v1, "parent": parent}).encode())
                paths.append(f"{v1}/layer.tar")
                parent = v1
            cfg = img.id[7:] + ".json"
            add(t, cfg, img.config)
            items.append({"Config": cfg, "RepoTags": img.tags or None, "Layers": paths})
            for tag in img.tags:
                repo, _, tg = tag.rpartition(":")
                repos.setdefault(repo, {})[tg] = parent
        if extra:
            extra(t)
        add(t, "manifest.json", manifest if manifest is not None else json.dumps(items).encode())
        if repos:
            add(t, "repositories", json.dumps(repos).encode())
    return path


# ---------------------------------------------------------------- daemon state


def state(wharfd):
    """What a refused load must leave as it was: blobs, layer snapshots, images with tags."""
    data = wharfd.dir / "data"
    blobs = sorted(os.listdir(data / "content" / "blobs" / "sha256"))
    snaps = sorted(os.listdir(data / "snapshots"))
    ingest = sorted(n for n in os.listdir(data / "content" / "ingest") if n.startswith("tmp-"))
    c = dockerpy.APIClient(base_url=wharfd.host, timeout=60)
    images = sorted((i["Id"], tuple(sorted(i["RepoTags"] or []))) for i in c.images(all=True))
    c.close()
    return {"blobs": blobs, "snapshots": snaps, "ingest temp files": ingest, "images": images}


def assert_state_unchanged(wharfd, before):
    after = state(wharfd)
    for k in before:
        assert after[k] == before[k], f"{k} changed: {set(after[k]) ^ set(before[k])}"


@pytest.fixture
def busybox_layer(busybox_tar):
    """The busybox rootfs as a plain layer (what `busybox:latest` of the session holds)."""
    return busybox_tar.read_bytes()


@pytest.fixture
def cleanup(wharfd):
    """Images (names or IDs) to remove after the test, whatever happened."""
    names = []
    yield names
    c = dockerpy.APIClient(base_url=wharfd.host, timeout=60)
    for n in reversed(names):
        try:
            c.remove_image(n, force=True)
        except dockerpy.errors.APIError:
            pass
    c.close()


def load_raw(wharfd, data, query=""):
    """POST /images/load with `data`; (status, content type, body bytes)."""
    api = Api(wharfd.socket)
    import http.client
    c = http.client.HTTPConnection("localhost", timeout=120)
    c.sock = api.conn(timeout=120)
    c.request("POST", f"/v1.44/images/load{query}", body=data,
              headers={"Content-Type": "application/x-tar"})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.getheader("Content-Type"), body


def lines(body):
    return [json.loads(x) for x in body.split(b"\r\n") if x.strip()]


def members(path):
    with tarfile.open(path) as t:
        return {m.name: m for m in t.getmembers()}


def read_member(path, name):
    with tarfile.open(path) as t:
        return t.extractfile(name).read()


# ---------------------------------------------------------------- round trips


def test_cli_save_rmi_load_round_trip(docker, wharfd, unique, busybox_layer, cleanup, tmp_path):
    since = str(int(time.time()) - 1)
    extra = layer_tar({"etc/marker": unique.encode() + b"\n"})
    img = Image([busybox_layer, extra], [f"{unique}:v1", f"{unique}-b:v2"], marker=unique)
    cleanup.extend(img.tags)
    ok(docker("load", "-i", str(docker_archive(tmp_path / "in.tar", [img])), timeout=120))
    assert docker("inspect", "-f", "{{.Id}}", f"{unique}:v1").stdout.strip() == img.id

    out = tmp_path / "saved.tar"
    ok(docker("save", "-o", str(out), f"{unique}:v1", f"{unique}-b:v2", timeout=120))
    m = members(out)
    blobs = {f"blobs/sha256/{d[7:]}" for d in (img.id, sha(busybox_layer), sha(extra))}
    assert {n for n in m if not n.startswith("blobs/sha256/")} == {
        "blobs", "blobs/sha256", "index.json", "manifest.json", "oci-layout", "repositories"}
    # The config, two layers and one manifest (both tags name the same one), each once.
    assert blobs < set(m) and len([n for n in m if n.startswith("blobs/sha256/")]) == 4, sorted(m)
    assert read_member(out, "oci-layout") == b'{"imageLayoutVersion": "1.0.0"}'
    manifest = json.loads(read_member(out, "manifest.json"))
    assert manifest == [{
        "Config": f"blobs/sha256/{img.id[7:]}",
        "RepoTags": [f"{unique}:v1", f"{unique}-b:v2"],
        "Layers": [f"blobs/sha256/{sha(busybox_layer)[7:]}", f"blobs/sha256/{sha(extra)[7:]}"],
    }]
    assert json.loads(read_member(out, "repositories")) == {
        unique: {"v1": sha(extra)[7:]}, f"{unique}-b": {"v2": sha(extra)[7:]}}
    index = json.loads(read_member(out, "index.json"))
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [d["annotations"] for d in index["manifests"]] == [
        {"io.containerd.image.name": f"docker.io/library/{unique}:v1",
         "org.opencontainers.image.ref.name": "v1"},
        {"io.containerd.image.name": f"docker.io/library/{unique}-b:v2",
         "org.opencontainers.image.ref.name": "v2"}]
    oci = json.loads(read_member(out, "blobs/sha256/" + index["manifests"][0]["digest"][7:]))
    assert oci["config"]["digest"] == img.id
    assert [lay["digest"] for lay in oci["layers"]] == [sha(busybox_layer), sha(extra)]
    for n, mem in m.items():
        assert mem.mtime == 0 and mem.uid == 0 and mem.gid == 0, n
    # Saving again gives the same bytes.
    again = tmp_path / "again.tar"
    ok(docker("save", "-o", str(again), f"{unique}:v1", f"{unique}-b:v2", timeout=120))
    assert again.read_bytes() == out.read_bytes()

    ok(docker("rmi", f"{unique}:v1", f"{unique}-b:v2"))
    assert docker("inspect", img.id).returncode != 0
    r = ok(docker("load", "-i", str(out), timeout=120))
    assert r.stdout == f"Loaded image: {unique}:v1\nLoaded image: {unique}-b:v2\n", r.stdout
    info = json.loads(ok(docker("inspect", f"{unique}:v1")).stdout)[0]
    assert info["Id"] == img.id
    assert sorted(info["RepoTags"]) == [f"{unique}-b:v2", f"{unique}:v1"]
    assert info["RootFS"]["Layers"] == [sha(busybox_layer), sha(extra)]
    assert info["Config"]["Labels"] == {"wharf.test.marker": unique}
    r = ok(docker("run", "--rm", f"{unique}:v1", "cat", "/etc/marker", timeout=120))
    assert r.stdout == unique + "\n"
    # dockerd's events: `load` and `save` per image, named by its ID.
    r = ok(docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                  "--filter", "type=image", "--filter", f"image={img.id}",
                  "--format", "{{.Action}} {{.Actor.Attributes.name}}"))
    actions = [line.split()[0] for line in r.stdout.splitlines()]
    assert actions.count("load") == 2 and actions.count("save") == 2, r.stdout
    assert all(line.split()[1] == img.id for line in r.stdout.splitlines()
               if line.split()[0] in ("load", "save")), r.stdout


def test_save_of_two_images_sharing_layers_holds_each_blob_once(docker, wharfd, unique,
                                                                  busybox_layer, cleanup,
                                                                  tmp_path):
    a = Image([busybox_layer, layer_tar({"a": b"a"})], [f"{unique}-a:1"], marker="a")
    b = Image([busybox_layer, layer_tar({"b": b"b"})], [f"{unique}-b:1"], marker="b")
    cleanup.extend(a.tags + b.tags)
    ok(docker("load", "-i", str(docker_archive(tmp_path / "in.tar", [a, b])), timeout=120))
    out = tmp_path / "two.tar"
    ok(docker("save", "-o", str(out), f"{unique}-a:1", f"{unique}-b:1", timeout=120))
    names = [m.name for m in tarfile.open(out).getmembers()]
    assert len(names) == len(set(names))
    assert names.count(f"blobs/sha256/{sha(busybox_layer)[7:]}") == 1
    manifest = json.loads(read_member(out, "manifest.json"))
    assert [i["Config"][13:] for i in manifest] == [a.id[7:], b.id[7:]]
    assert manifest[0]["Layers"][0] == manifest[1]["Layers"][0]
    # A bare repository saves every tag of it; the ID saves the image without a name.
    ok(docker("tag", f"{unique}-a:1", f"{unique}-a:2"))
    cleanup.append(f"{unique}-a:2")
    ok(docker("save", "-o", str(tmp_path / "repo.tar"), f"{unique}-a", timeout=120))
    repo = json.loads(read_member(tmp_path / "repo.tar", "manifest.json"))
    assert [sorted(i["RepoTags"]) for i in repo] == [[f"{unique}-a:1", f"{unique}-a:2"]]
    ok(docker("save", "-o", str(tmp_path / "id.tar"), a.id[7:19], timeout=120))
    by_id = json.loads(read_member(tmp_path / "id.tar", "manifest.json"))
    assert by_id[0]["RepoTags"] is None
    index = json.loads(read_member(tmp_path / "id.tar", "index.json"))
    assert len(index["manifests"]) == 1 and "annotations" not in index["manifests"][0]


def test_save_of_unknown_images_answers_dockerds_words(docker, wharfd, unique, tmp_path):
    out = str(tmp_path / "x.tar")
    r = docker("save", "-o", out, f"{unique}:nosuch")
    assert r.returncode != 0 and "reference does not exist" in r.stderr, r.stderr
    r = docker("save", "-o", out, f"{unique}-nosuch")
    assert r.returncode != 0 and f"No such image: {unique}-nosuch" in r.stderr, r.stderr
    status, body = Api(wharfd.socket).call("GET", f"/v1.44/images/{unique}:nosuch/get")
    assert status == 404 and body == {"message": "reference does not exist"}
    status, body = Api(wharfd.socket).call(
        "GET", "/v1.44/images/get?names=busybox&platform=linux/arm64")
    assert status == 400 and "'platform'" in body["message"], body


def test_load_of_an_image_already_here_moves_its_tags(docker, wharfd, unique, busybox_layer,
                                                      cleanup, tmp_path):
    old = Image([busybox_layer, layer_tar({"old": b"1"})], [f"{unique}:t"], marker="old")
    new = Image([busybox_layer, layer_tar({"new": b"2"})], [f"{unique}:t"], marker="new")
    cleanup.extend([old.id, new.id])
    ok(docker("load", "-i", str(docker_archive(tmp_path / "old.tar", [old])), timeout=120))
    r = ok(docker("load", "-i", str(docker_archive(tmp_path / "new.tar", [new])), timeout=120))
    assert r.stdout == (f"The image {unique}:t already exists, renaming the old one with ID "
                        f"{old.id} to empty string\nLoaded image: {unique}:t\n"), r.stdout
    assert docker("inspect", "-f", "{{.Id}}", f"{unique}:t").stdout.strip() == new.id
    assert docker("inspect", "-f", "{{.RepoTags}}", old.id).stdout.strip() == "[]"
    # Loading it again stores nothing new and says so the same way, without the rename.
    before = state(wharfd)
    r = ok(docker("load", "-i", str(tmp_path / "new.tar"), timeout=120))
    assert r.stdout == f"Loaded image: {unique}:t\n"
    assert_state_unchanged(wharfd, before)


def test_load_messages_quiet_and_not(wharfd, unique, busybox_layer, cleanup, tmp_path):
    extra = layer_tar({"big": os.urandom(3 << 20)})
    img = Image([busybox_layer, extra], [f"{unique}:1"])
    untagged = Image([busybox_layer, layer_tar({"u": b"u"})], [], marker="untagged")
    cleanup.extend([img.id, untagged.id])
    data = docker_archive(tmp_path / "in.tar", [img]).read_bytes()

    status, ctype, body = load_raw(wharfd, data, "?quiet=0")
    assert (status, ctype) == (200, "application/json"), body
    msgs = lines(body)
    # Only the layer that is not here yet (busybox's is) is loaded, with dockerd's bars.
    bars = [m for m in msgs if m.get("status") == "Loading layer"]
    assert bars and {m["id"] for m in bars} == {sha(extra)[7:19]}, msgs
    last = bars[-1]["progressDetail"]
    assert last["current"] == last["total"] == len(extra)
    assert msgs[-1] == {"stream": f"Loaded image: {unique}:1\n"}

    # quiet, and quiet by default (dockerd's BoolValueOrDefault): the final lines only.
    for q in ("?quiet=1", ""):
        status, _, body = load_raw(wharfd, data, q)
        assert status == 200 and lines(body) == [{"stream": f"Loaded image: {unique}:1\n"}]
    # An archive whose last image has no tag: every image's ID, as dockerd says it.
    both = docker_archive(tmp_path / "both.tar", [img, untagged]).read_bytes()
    status, _, body = load_raw(wharfd, both, "?quiet=1")
    assert lines(body) == [{"stream": f"Loaded image: {unique}:1\n"},
                           {"stream": f"Loaded image ID: {img.id}\nLoaded image ID: {untagged.id}\n"}]


def test_load_of_gzip_and_zstd_archives_and_refusal_of_xz(docker, wharfd, unique, busybox_layer,
                                                          cleanup, tmp_path):
    img = Image([busybox_layer, layer_tar({"gz": b"gz"})], [f"{unique}:gz"])
    cleanup.append(img.id)
    plain = docker_archive(tmp_path / "in.tar", [img])
    gz = tmp_path / "in.tar.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    r = ok(docker("load", "-i", str(gz), timeout=120))
    assert r.stdout == f"Loaded image: {unique}:gz\n"
    assert docker("inspect", "-f", "{{.Id}}", f"{unique}:gz").stdout.strip() == img.id
    ok(docker("rmi", f"{unique}:gz"))
    if shutil.which("zstd"):
        zs = tmp_path / "in.tar.zst"
        subprocess.run(["zstd", "-q", "-f", str(plain), "-o", str(zs)], check=True)
        r = ok(docker("load", "-i", str(zs), timeout=120))
        assert r.stdout == f"Loaded image: {unique}:gz\n"
    if shutil.which("xz"):
        before = state(wharfd)
        xz = tmp_path / "in.tar.xz"
        subprocess.run(["sh", "-c", f"xz -c {plain} > {xz}"], check=True)
        r = docker("load", "-i", str(xz), timeout=120)
        assert r.returncode != 0 and "Wharf cannot read xz compressed archives" in r.stderr, r.stderr
        assert_state_unchanged(wharfd, before)


def test_load_keeps_compressed_layers(docker, wharfd, unique, busybox_layer, cleanup, tmp_path):
    """A layer stored compressed in the archive (as skopeo and old tools write them) is
    checked against its diff id, kept as it came, and saved again as it is."""
    extra = layer_tar({"z": b"zipped"})
    img = Image([busybox_layer, extra], [f"{unique}:1"],
                layer_files=[gzip.compress(busybox_layer, mtime=0), gzip.compress(extra, mtime=0)])
    cleanup.append(img.id)
    ok(docker("load", "-i", str(docker_archive(tmp_path / "in.tar", [img])), timeout=120))
    out = tmp_path / "out.tar"
    ok(docker("save", "-o", str(out), f"{unique}:1", timeout=120))
    manifest = json.loads(read_member(out, "manifest.json"))
    assert manifest[0]["Layers"][1] == f"blobs/sha256/{sha(img.layer_files[1])[7:]}"
    index = json.loads(read_member(out, "index.json"))
    oci = json.loads(read_member(out, "blobs/sha256/" + index["manifests"][0]["digest"][7:]))
    assert [lay["mediaType"] for lay in oci["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip"] * 2
    r = ok(docker("run", "--rm", f"{unique}:1", "cat", "/z", timeout=120))
    assert r.stdout == "zipped"


# ---------------------------------------------------------------- skopeo, podman, docker-py


def skopeo(*args):
    r = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"skopeo {args}: {r.stderr}"
    return r


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_load_of_skopeo_archives(docker, wharfd, unique, busybox_layer, cleanup, tmp_path,
                                 transport):
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo not installed (scripts/install-deps.sh installs it)")
    extra = layer_tar({"etc/marker": transport.encode()})
    img = Image([busybox_layer, extra], [f"{unique}:src"], marker=transport)
    cleanup.extend([img.id, f"{unique}:src", f"{unique}:sk"])
    ok(docker("load", "-i", str(docker_archive(tmp_path / "in.tar", [img])), timeout=120))
    saved = tmp_path / "wharf.tar"
    ok(docker("save", "-o", str(saved), f"{unique}:src", timeout=120))
    ok(docker("rmi", f"{unique}:src"))
    # skopeo reads Wharf's archive and writes its own.
    made = tmp_path / f"{transport}.tar"
    skopeo("copy", f"docker-archive:{saved}", f"{transport}:{made}:{unique}:sk")
    r = ok(docker("load", "-i", str(made), timeout=120))
    assert r.stdout == f"Loaded image: {unique}:sk\n", r.stdout
    info = json.loads(ok(docker("inspect", f"{unique}:sk")).stdout)[0]
    # skopeo writes an OCI layout's config anew (another ID); a docker-archive's as it was.
    raw = json.loads(skopeo("inspect", "--raw", f"{transport}:{made}").stdout)
    assert info["Id"] == (raw["config"]["digest"] if transport == "oci-archive" else img.id)
    assert info["RootFS"]["Layers"] == [sha(busybox_layer), sha(extra)]
    r = ok(docker("run", "--rm", f"{unique}:sk", "cat", "/etc/marker", timeout=120))
    assert r.stdout == transport
    # And skopeo's OCI reading of Wharf's layout: the same image.
    if transport == "oci-archive":
        inspect = json.loads(skopeo("inspect", "--config", f"oci-archive:{saved}").stdout)
        assert inspect["rootfs"]["diff_ids"] == [sha(busybox_layer), sha(extra)]


def test_podman_round_trip(docker, wharfd, unique, busybox_layer, cleanup, tmp_path):
    if shutil.which("podman") is None:
        pytest.skip("podman not installed")
    extra = layer_tar({"etc/marker": b"podman"})
    img = Image([busybox_layer, extra], [f"{unique}:1"], marker="podman")
    cleanup.extend([img.id, f"{unique}:1", f"localhost/{unique}:back"])
    ok(docker("load", "-i", str(docker_archive(tmp_path / "in.tar", [img])), timeout=120))
    saved = tmp_path / "wharf.tar"
    ok(docker("save", "-o", str(saved), f"{unique}:1", timeout=120))
    # podman wants a run root shorter than 50 characters.
    root = Path(tempfile.mkdtemp(prefix="wsl-pm-", dir="/tmp"))
    pm = ["podman", "--root", str(root / "root"), "--runroot", str(root / "run"),
          "--storage-driver", "vfs", "--events-backend", "none"]
    try:
        r = subprocess.run([*pm, "load", "-i", str(saved)], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([*pm, "image", "inspect", f"docker.io/library/{unique}:1"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)[0]["Id"] == img.id[7:]
        subprocess.run([*pm, "tag", f"docker.io/library/{unique}:1", f"localhost/{unique}:back"],
                       check=True, timeout=120)
        back = tmp_path / "back.tar"
        r = subprocess.run([*pm, "save", "--format", "docker-archive", "-o", str(back),
                            f"localhost/{unique}:back"], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
    finally:
        # vfs layers are plain directories: nothing is mounted, removing the roots is all.
        shutil.rmtree(root, ignore_errors=True)
    r = ok(docker("load", "-i", str(back), timeout=120))
    assert r.stdout == f"Loaded image: localhost/{unique}:back\n", r.stdout
    r = ok(docker("image", "inspect", "-f", "{{.Id}}", f"localhost/{unique}:back"))
    assert r.stdout.strip() == img.id


def test_dockerpy_save_and_load(dclient, wharfd, unique, busybox_layer, cleanup, tmp_path):
    img = Image([busybox_layer, layer_tar({"py": b"py"})], [f"{unique}:py"], marker="py")
    cleanup.extend([img.id, f"{unique}:py"])
    loaded = dclient.images.load(docker_archive(tmp_path / "in.tar", [img]).read_bytes())
    assert [i.id for i in loaded] == [img.id]
    # images.get(...).save() asks for GET /images/{id}/get; named=True for the tag.
    data = b"".join(dclient.images.get(f"{unique}:py").save(named=True))
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        manifest = json.loads(t.extractfile("manifest.json").read())
    assert manifest[0]["RepoTags"] == [f"{unique}:py"]
    by_id = b"".join(dclient.images.get(f"{unique}:py").save())
    with tarfile.open(fileobj=io.BytesIO(by_id)) as t:
        assert json.loads(t.extractfile("manifest.json").read())[0]["RepoTags"] is None
    dclient.images.remove(f"{unique}:py")
    loaded = dclient.images.load(data)
    assert [i.id for i in loaded] == [img.id]
    assert dclient.images.get(f"{unique}:py").id == img.id


# ---------------------------------------------------------------- bad and hostile archives


def refused(wharfd, data, words, status=400):
    """Loads `data`; it must be refused with `status` and `words`, leaving nothing."""
    before = state(wharfd)
    got, _, body = load_raw(wharfd, data, "?quiet=1")
    assert got == status, body
    assert words in json.loads(body)["message"], body
    assert_state_unchanged(wharfd, before)


def test_wrong_layer_digest_stores_nothing(docker, wharfd, unique, busybox_layer, tmp_path):
    good = layer_tar({"a": b"a"})
    img = Image([busybox_layer, good], [f"{unique}:bad"],
                layer_files=[busybox_layer, layer_tar({"a": b"tampered"})])
    before = state(wharfd)
    r = docker("load", "-i", str(docker_archive(tmp_path / "bad.tar", [img])), timeout=120)
    assert r.returncode != 0
    assert f'invalid diffID for layer 1: expected "{sha(good)}"' in r.stderr, r.stderr
    assert_state_unchanged(wharfd, before)
    assert docker("inspect", f"{unique}:bad").returncode != 0


def test_truncated_archives_store_nothing(wharfd, unique, busybox_layer, tmp_path):
    img = Image([busybox_layer, layer_tar({"t": os.urandom(1 << 20)})], [f"{unique}:cut"])
    path = docker_archive(tmp_path / "full.tar", [img])
    data = path.read_bytes()
    # In the middle of the big layer, and inside manifest.json, the archive's last file.
    cuts = [len(data) // 2, members(path)["manifest.json"].offset_data + 5]
    for cut in cuts:
        refused(wharfd, data[:cut], "invalid archive")
    gz = gzip.compress(data)
    refused(wharfd, gz[: len(gz) * 3 // 4], "invalid archive")
    # A layer cut short inside an otherwise whole archive.
    short = Image(img.layers, img.tags, config=img.config,
                  layer_files=[busybox_layer, img.layers[1][:4096]])
    refused(wharfd, docker_archive(tmp_path / "short.tar", [short]).read_bytes(),
            "loading layer")


def test_oci_blob_that_is_not_its_digest_is_refused(wharfd, unique, tmp_path):
    fake = "sha256:" + "ab" * 32
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        add(t, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        add(t, f"blobs/sha256/{fake[7:]}", b"not what the name says")
        add(t, "index.json", json.dumps({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": fake,
             "size": 22}]}).encode())
    refused(wharfd, buf.getvalue(), f"blobs/sha256/{fake[7:]} does not match its digest")


def hostile(entries):
    """A tar whose entries are `(TarInfo, bytes)`, written as given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def info(name, data=b"", **kw):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti, data


def test_hostile_archives_are_refused_and_write_nothing_anywhere(wharfd, unique, tmp_path):
    outside = [wharfd.dir / f"{unique}-evil", wharfd.dir / "data" / f"{unique}-evil",
               tmp_path / f"{unique}-evil", Path("/tmp") / f"{unique}-evil"]
    cases = [
        (hostile([info(f"../{unique}-evil", b"x"), info("manifest.json", b"[]")]),
         "'..' in a path"),
        (hostile([info(f"a/../../../{unique}-evil", b"x")]), "'..' in a path"),
        (hostile([info(f"/tmp/{unique}-evil", b"x")]), "absolute path"),
        (hostile([info("manifest.json", type=tarfile.SYMTYPE, linkname="/etc/passwd")]),
         "manifest.json is a symlink"),
        (hostile([info("null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)]),
         "an image archive holds only files, directories and links"),
        (hostile([info("link", type=tarfile.LNKTYPE, linkname="/etc/shadow")]),
         "absolute path"),
        (hostile([info("x", b"x"), info("manifest.json",
                  json.dumps([{"Config": f"../../{unique}-evil", "Layers": []}]).encode())]),
         "invalid archive"),
        (hostile([info("loop", type=tarfile.SYMTYPE, linkname="loop"),
                  info("manifest.json", json.dumps([{"Config": "loop", "Layers": []}]).encode())]),
         "too many levels of symbolic links"),
        (b"\0" * 1024, "neither manifest.json nor index.json"),
        (b"this is not a tar at all" * 100, "invalid archive"),
    ]
    for data, words in cases:
        refused(wharfd, data, words)
    # A header that claims a terabyte: refused on the header, before reading on.
    ti = tarfile.TarInfo("blobs/sha256/" + "cd" * 32)
    ti.size = 1 << 40
    absurd = ti.tobuf(tarfile.GNU_FORMAT) + b"x" * 4096
    refused(wharfd, absurd, "more than the daemon's maximum layer size")
    for p in outside:
        assert not p.exists(), p


def test_a_load_cut_by_kill9_leaves_nothing_after_restart(wharfd, unique, busybox_layer, tmp_path):
    """Cut mid-upload (files spooled, nothing unpacked) and mid-unpack (a layer half made):
    after the restart no blob, layer, image or temp file of the load is left."""
    img = Image([busybox_layer, layer_tar({"one": os.urandom(8 << 20)}),
                 layer_tar({"two": os.urandom(8 << 20)})], [f"{unique}:1"])
    data = docker_archive(tmp_path / "big.tar", [img]).read_bytes()
    ingest = wharfd.dir / "data" / "content" / "ingest"
    before = state(wharfd)

    def head(query):
        return (f"POST /v1.44/images/load{query} HTTP/1.1\r\nHost: localhost\r\n"
                f"Content-Type: application/x-tar\r\nContent-Length: {len(data)}\r\n\r\n").encode()

    def check_after_restart():
        wharfd.restart()
        after = state(wharfd)
        assert after["images"] == before["images"]
        assert set(after["blobs"]) <= set(before["blobs"]), set(after["blobs"]) - set(before["blobs"])
        assert set(after["snapshots"]) <= set(before["snapshots"])
        assert after["ingest temp files"] == []

    # Mid-upload: half the archive sent, its first files spooled.
    s = Api(wharfd.socket).conn()
    try:
        s.sendall(head("?quiet=1") + data[: len(data) // 2])
        wait_for(lambda: len(set(os.listdir(wharfd.dir / "data" / "content" / "blobs" / "sha256"))
                             - set(before["blobs"])) > 0 or any(
                     n.startswith("tmp-") for n in os.listdir(ingest)),
                 what="the load to spool its first files")
        wharfd.kill9()
    finally:
        s.close()
    check_after_restart()

    # Mid-unpack: the whole archive sent, killed at its first `Loading layer` bar.
    s = Api(wharfd.socket).conn()
    try:
        s.sendall(head("?quiet=0") + data)
        got = b""
        while b"Loading layer" not in got:
            chunk = s.recv(65536)
            assert chunk, f"the load ended before a bar: {got!r}"
            got += chunk
        wharfd.kill9()
    finally:
        s.close()
    check_after_restart()
