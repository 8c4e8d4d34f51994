"""Push through wharfd with the real docker CLI and docker-py (issue 14, item 7), to registries
the tests run on 127.0.0.1 (tests/registry_fixtures.py), behind a counting proxy where the
test must see which blobs went up: only the missing ones are uploaded (HEAD first), layers the
registry has in another repository are mounted, the manifest goes last, and what skopeo reads
back is the image wharfd has.

Docker's words are in tests/compat/registry_support.py with their moby v28.2.2 source lines.
What the tests accept beyond Docker's own choices: Docker recompresses a layer it uploads (its
digest is new; the tests check the uncompressed diff ID) and always uploads the config again
rather than mounting it (the tests allow either). Each test removes its images and containers.
"""

import gzip
import hashlib
import json
import shutil

import pytest

import registry_fixtures as rf
from registry_fixtures import images, registries  # noqa: F401  (pytest fixtures)
from registry_support import (
    DENIED, LAYER_ALREADY_EXISTS, PUSHED, DockerCli, check_push_output, diff_short, mounted_from,
    no_such_local_image, push_refers_to, remove_images_from)
from support import ok


@pytest.fixture
def cli(wharfd, registries, tmp_path):
    """A docker CLI on the test daemon with the test's own config directory; afterwards the
    test's containers and every image from its registries (and their proxies) are removed."""
    c = DockerCli(wharfd, tmp_path / "docker-config")
    before = c.containers()
    yield c
    shutil.rmtree(c.config_dir, ignore_errors=True)
    remove_images_from(c, [r.host for r in registries.started if hasattr(r, "host")], before)


def pull(cli, ref):
    ok(cli("pull", "-q", ref, timeout=300))


def read_back(images, ref, creds=None):
    """What skopeo finds at ref: (manifest digest, raw manifest, config bytes, {layer digest:
    diff ID of its decompressed blob}); skopeo copy to a directory verified every digest."""
    info = images.inspect(ref, creds=creds)
    raw = images.inspect(ref, creds=creds, raw=True)
    config = images.inspect(ref, creds=creds, config=True)
    d = images.copy_to_dir(ref, creds=creds)
    manifest = json.loads(raw)
    layers = {}
    for desc in manifest["layers"]:
        blob = (d / desc["digest"].split(":")[1]).read_bytes()
        tar = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
        layers[desc["digest"]] = "sha256:" + hashlib.sha256(tar).hexdigest()
    return info["Digest"], raw, config, layers


def check_matches(cli, images, ref, digest, size, local_ref, creds=None):
    """The registry holds at ref what docker said it pushed, and it is the local image: same
    config (= image ID), same layers in the same order (by diff ID)."""
    got_digest, raw, config, layers = read_back(images, ref, creds)
    assert got_digest == digest and len(raw) == size
    manifest = json.loads(raw)
    # Docker pushes schema2 from its classic store; an OCI manifest would be as good.
    assert manifest["mediaType"] in (rf.MT_DOCKER_MANIFEST, rf.MT_OCI_MANIFEST), manifest
    info = cli.inspect(local_ref)
    assert rf.sha256(config) == info["Id"] == manifest["config"]["digest"]
    assert [layers[d["digest"]] for d in manifest["layers"]] == info["RootFS"]["Layers"]
    return manifest


# ---------------------------------------------------------------- what goes up


def test_push_of_a_pulled_image_mounts_its_layers_then_finds_them(cli, registries, images):
    reg = registries.start("open")
    img = images.busybox(marker="mount", layers=[images.random_layer(500_000)])
    images.push(img, reg, "bb", "v1")
    proxy = registries.proxy(reg)
    pull(cli, proxy.ref("bb", "v1"))
    ok(cli("tag", proxy.ref("bb", "v1"), proxy.ref("copy", "v1")))

    n = len(proxy.requests)
    r = cli("push", proxy.ref("copy", "v1"))
    digest, size = check_push_output(r, f"{proxy.host}/copy", "v1",
                                     {diff_short(lay.diff_id): mounted_from("bb") for lay in img.layers})
    assert sorted(d for _, d, _ in proxy.mounts(n)) == sorted(lay.digest for lay in img.layers)
    assert {(repo, src) for repo, _, src in proxy.mounts(n)} == {("copy", "bb")}
    assert [d for _, d in proxy.uploads(n)] in ([], [img.id]), proxy.uploads(n)  # at most the config
    manifest = check_matches(cli, images, reg.ref("copy", "v1"), digest, size, proxy.ref("copy", "v1"))
    assert [d["digest"] for d in manifest["layers"]] == [lay.digest for lay in img.layers]  # the same blobs
    # The manifest went last: after every blob of the push.
    reqs = proxy.requests[n:]
    put_manifest = [i for i, q in enumerate(reqs) if q[0] == "PUT" and "/manifests/" in q[1]]
    assert put_manifest and put_manifest[-1] == max(i for i, q in enumerate(reqs) if q[0] in ("PUT", "POST", "PATCH"))

    # Again: the registry has everything; HEADs find it, nothing goes up but the manifest.
    n = len(proxy.requests)
    r = cli("push", proxy.ref("copy", "v1"))
    again = check_push_output(r, f"{proxy.host}/copy", "v1",
                              {diff_short(lay.diff_id): LAYER_ALREADY_EXISTS for lay in img.layers})
    assert again == (digest, size)
    assert proxy.uploads(n) == [] and proxy.mounts(n) == []


def test_push_uploads_only_the_missing_blobs(cli, registries, images):
    src = registries.start("open")
    base = images.base_layer()
    v1 = images.busybox(marker="one", base=base, layers=[images.random_layer(300_000)])
    v2 = images.busybox(marker="two", base=base)
    images.push(v1, src, "bb", "v1")
    images.push(v2, src, "bb", "v2")
    pull(cli, src.ref("bb", "v1"))
    pull(cli, src.ref("bb", "v2"))
    dest = registries.start("open")
    proxy = registries.proxy(dest)

    # An empty registry: everything goes up.
    ok(cli("tag", src.ref("bb", "v1"), proxy.ref("bb", "v1")))
    n = len(proxy.requests)
    d1, s1 = check_push_output(cli("push", proxy.ref("bb", "v1")), f"{proxy.host}/bb", "v1",
                               {diff_short(lay.diff_id): PUSHED for lay in v1.layers})
    up = proxy.uploads(n)
    assert len(up) == len(v1.layers) + 1 and {r for r, _ in up} == {"bb"}, up  # layers and config
    assert v1.id in {d for _, d in up}
    check_matches(cli, images, dest.ref("bb", "v1"), d1, s1, proxy.ref("bb", "v1"))

    # v2 shares the base: it is not uploaded again ("Layer already exists"), its marker is.
    ok(cli("tag", src.ref("bb", "v2"), proxy.ref("bb", "v2")))
    n = len(proxy.requests)
    d2, s2 = check_push_output(cli("push", proxy.ref("bb", "v2")), f"{proxy.host}/bb", "v2",
                               {diff_short(base.diff_id): LAYER_ALREADY_EXISTS,
                                diff_short(v2.layers[1].diff_id): PUSHED})
    up = [d for _, d in proxy.uploads(n)]
    assert len(up) == 2 and v2.id in up, up  # the marker layer and the config
    m2 = check_matches(cli, images, dest.ref("bb", "v2"), d2, s2, proxy.ref("bb", "v2"))
    m1 = json.loads(dest.manifest("bb", "v1")[2])
    assert m2["layers"][0]["digest"] == m1["layers"][0]["digest"]  # the base blob already there

    # Another repository of the same registry: its layers are mounted from bb, not uploaded.
    ok(cli("tag", src.ref("bb", "v2"), proxy.ref("other", "v2")))
    n = len(proxy.requests)
    d3, s3 = check_push_output(cli("push", proxy.ref("other", "v2")), f"{proxy.host}/other", "v2",
                               {diff_short(lay.diff_id): mounted_from("bb") for lay in v2.layers})
    assert [d for _, d in proxy.uploads(n)] in ([], [v2.id]), proxy.uploads(n)
    assert sorted(d for _, d, _ in proxy.mounts(n)) == sorted(d["digest"] for d in m2["layers"])
    assert (d3, s3) == (d2, s2)  # the same manifest
    check_matches(cli, images, dest.ref("other", "v2"), d3, s3, proxy.ref("other", "v2"))


def test_push_of_an_imported_image_and_its_stream(cli, registries, images, busybox_tar, dclient):
    reg = registries.start("open")
    ref = reg.ref("imp", "v1")
    ok(cli("import", str(busybox_tar), ref, timeout=120))
    layer = cli.inspect(ref)["RootFS"]["Layers"][0]
    digest, size = check_push_output(cli("push", ref), f"{reg.host}/imp", "v1", {diff_short(layer): PUSHED})
    check_matches(cli, images, ref, digest, size, ref)

    # docker-py, the raw messages: the same push again (as in ../shared/api/captures/
    # 50-login-push.txt).
    msgs = list(dclient.api.push(f"{reg.host}/imp", tag="v1", stream=True, decode=True))
    short = diff_short(layer)
    assert msgs == [
        {"status": push_refers_to(f"{reg.host}/imp")},
        {"status": "Preparing", "progressDetail": {}, "id": short},
        {"status": LAYER_ALREADY_EXISTS, "progressDetail": {}, "id": short},
        {"status": f"v1: digest: {digest} size: {size}"},
        {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": digest, "Size": size}},
    ], msgs


def test_push_without_a_tag_pushes_latest(cli, registries, images, busybox_tar):
    reg = registries.start("open")
    ok(cli("import", str(busybox_tar), reg.ref("imp", "latest"), timeout=120))
    r = cli("push", reg.ref("imp"))
    ok(r)
    assert r.stdout.splitlines()[:1] == ["Using default tag: latest"], r.stdout  # cli/command/image/push.go:103
    assert reg.tags("imp") == ["latest"]


def test_push_of_an_image_that_is_not_here(cli, registries):
    reg = registries.start("open")
    r = cli("push", reg.ref("nosuch", "v1"))
    assert r.returncode == 1, r
    assert r.stdout == push_refers_to(f"{reg.host}/nosuch") + "\n", r.stdout
    assert r.stderr == no_such_local_image(f"{reg.host}/nosuch") + "\n", r.stderr


# ---------------------------------------------------------------- auth


def test_htpasswd_push_needs_login(cli, registries, images, busybox_tar):
    reg = registries.start("htpasswd")
    ref = reg.ref("imp", "v1")
    ok(cli("import", str(busybox_tar), ref, timeout=120))
    r = cli("push", ref)
    assert r.returncode == 1, r
    assert r.stdout.splitlines()[:1] == [push_refers_to(f"{reg.host}/imp")], r
    # The upload's request is never sent: distribution/errors.go:166-169 (retryOnError) unwraps
    # the url.Error to ErrNoBasicAuthCredentials, so no URL in the message (unlike a pull's).
    assert r.stderr == "no basic auth credentials\n", r.stderr
    assert reg.tags("imp") == []
    ok(cli("login", reg.host, "-u", rf.USER, "--password-stdin", input=rf.PASSWORD + "\n"))
    layer = cli.inspect(ref)["RootFS"]["Layers"][0]
    digest, size = check_push_output(cli("push", ref), f"{reg.host}/imp", "v1", {diff_short(layer): PUSHED})
    check_matches(cli, images, ref, digest, size, ref, creds=reg.creds)


def test_token_push_needs_the_push_right(cli, registries, images, busybox_tar):
    reg = registries.start("token")
    ref = reg.ref("imp", "v1")
    ok(cli("import", str(busybox_tar), ref, timeout=120))
    for user, password in ((None, None), (rf.PULLER, rf.PULLER_PASSWORD)):
        if user:
            ok(cli("login", reg.host, "-u", user, "--password-stdin", input=password + "\n"))
        r = cli("push", ref)
        assert r.returncode == 1, (user, r)
        # insufficient_scope → DENIED (registry/client/errors.go:123-147), not retried
        # (distribution/errors.go:161-164), the message alone.
        assert r.stderr == DENIED + "\n", (user, r.stderr)
        assert reg.tags("imp") == []
    ok(cli("login", reg.host, "-u", rf.USER, "--password-stdin", input=rf.PASSWORD + "\n"))
    layer = cli.inspect(ref)["RootFS"]["Layers"][0]
    digest, size = check_push_output(cli("push", ref), f"{reg.host}/imp", "v1", {diff_short(layer): PUSHED})
    check_matches(cli, images, ref, digest, size, ref, creds=reg.creds)
    pushes = [q for q in reg.token_server.requests
              if q["user"] == rf.USER and any(a["name"] == "imp" and "push" in a["actions"] for a in q["access"] or [])]
    assert pushes, reg.token_server.requests


def test_dockerpy_push_with_auth_config(cli, registries, busybox_tar, dclient, images):
    reg = registries.start("htpasswd")
    ref = reg.ref("imp", "v1")
    ok(cli("import", str(busybox_tar), ref, timeout=120))
    out = dclient.images.push(f"{reg.host}/imp", tag="v1",
                              auth_config={"username": rf.USER, "password": rf.PASSWORD})
    msgs = [json.loads(line) for line in out.splitlines() if line.strip()]
    aux = [m["aux"] for m in msgs if "aux" in m]
    assert len(aux) == 1 and aux[0]["Tag"] == "v1", msgs
    assert not [m for m in msgs if "error" in m], msgs
    digest = aux[0]["Digest"]
    assert images.inspect(ref, creds=reg.creds)["Digest"] == digest
