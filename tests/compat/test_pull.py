"""Pull through wharfd with the real docker CLI and docker-py (issue 14), from registries the
tests run on 127.0.0.1 (tests/registry_fixtures.py): Debian's docker-registry 2.8, open, with
htpasswd and with a token server; a proxy that cuts a blob at 90 %; a fake registry that serves
a blob which is not its digest. Images are built by the tests (busybox-static and random
layers, each test's own) and pushed with skopeo.

Every expectation is Docker's (tests/compat/registry_support.py names the moby and docker-cli
source lines). Each test removes the images it pulled and its containers; its registries and
their directories go with the `registries` fixture.
"""

import base64
import hashlib
import json
import shutil

import pytest

import registry_fixtures as rf
from registry_fixtures import images, registries  # noqa: F401  (pytest fixtures)
from registry_support import (
    DOWNLOAD_COMPLETE, LOGIN_SUCCEEDED, PULL_COMPLETE, PULLING_FS_LAYER, VERIFYING,
    DockerCli, check_pull_output, check_up_to_date, digest_line, downloaded_newer, files_named,
    layer_verification_failed, login_failed_basic, login_failed_token, manifest_not_found,
    no_basic_auth_credentials, no_matching_manifest, progress_bar, pull_access_denied,
    pulling_from, remove_images_from, removing_login, unable_to_find)
from support import Api, ok


@pytest.fixture
def cli(wharfd, registries, tmp_path):
    """A docker CLI on the test daemon with the test's own config directory; afterwards the
    test's containers and every image from its registries are removed."""
    c = DockerCli(wharfd, tmp_path / "docker-config")
    before = c.containers()
    yield c
    shutil.rmtree(c.config_dir, ignore_errors=True)
    remove_images_from(c, [r.host for r in registries.started], before)


def run_cat(cli, ref, path, *flags):
    r = ok(cli("run", "--rm", *flags, ref, "cat", path, timeout=120))
    return r.stdout


def login(cli, reg, user=rf.USER, password=rf.PASSWORD):
    return cli("login", reg.host, "-u", user, "--password-stdin", input=password + "\n")


# ---------------------------------------------------------------- pull by tag, by digest


def test_pull_by_tag_prints_dockers_lines_and_records_the_digest(cli, registries, images):
    reg = registries.start("open")
    img = images.busybox(marker="v1", layers=[images.random_layer(1_000_000)])
    images.push(img, reg, "bb", "v1")
    ref = reg.ref("bb", "v1")

    r = cli("pull", ref)
    check_pull_output(r, pulling_from("v1", "bb"), img.digest, ref, ref, new=img.layers)

    info = cli.inspect(ref)
    assert info["Id"] == img.id
    assert info["RepoTags"] == [ref]
    assert info["RepoDigests"] == [f"{reg.host}/bb@{img.digest}"]
    assert info["RootFS"] == {"Type": "layers", "Layers": [lay.diff_id for lay in img.layers]}
    assert (info["Architecture"], info["Os"]) == ("amd64", "linux")
    assert info["Config"]["Labels"] == {"wharf.test.marker": "v1"}
    assert info["Config"]["Cmd"] == ["sh"]
    assert info["Created"] == "2000-01-01T00:00:00Z"

    # docker images --digests: REPOSITORY TAG DIGEST IMAGE ID CREATED SIZE
    r = ok(cli("images", "--digests", f"{reg.host}/bb"))
    header, *rows = r.stdout.splitlines()
    assert header.split()[:5] == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID"], header
    assert [row.split()[:4] for row in rows] == [[f"{reg.host}/bb", "v1", img.digest, img.id[7:19]]], r.stdout

    assert run_cat(cli, ref, "/etc/marker") == "v1\n"
    (name, data), = img.layers[-1].files().items()
    out = ok(cli("run", "--rm", ref, "sha256sum", f"/{name}", timeout=120)).stdout
    assert out.split()[0] == hashlib.sha256(data).hexdigest()

    # Again: nothing to do, and Docker says so without a layer line.
    check_up_to_date(cli("pull", ref), pulling_from("v1", "bb"), img.digest, ref, ref)


def test_a_second_image_on_the_same_base_reuses_its_layer(cli, registries, images):
    reg = registries.start("open")
    base = images.base_layer()
    v1 = images.busybox(marker="v1", base=base)
    v2 = images.busybox(marker="v2", base=base)
    images.push(v1, reg, "bb", "v1")
    images.push(v2, reg, "other", "v2")
    check_pull_output(cli("pull", reg.ref("bb", "v1")), pulling_from("v1", "bb"), v1.digest,
                      reg.ref("bb", "v1"), reg.ref("bb", "v1"), new=v1.layers)
    r = cli("pull", reg.ref("other", "v2"))
    check_pull_output(r, pulling_from("v2", "other"), v2.digest, reg.ref("other", "v2"),
                      reg.ref("other", "v2"), new=v2.layers[1:], existing=[base])
    assert cli.inspect(reg.ref("other", "v2"))["RootFS"]["Layers"][0] == base.diff_id
    assert run_cat(cli, reg.ref("other", "v2"), "/etc/marker") == "v2\n"
    assert run_cat(cli, reg.ref("bb", "v1"), "/etc/marker") == "v1\n"


def test_pull_without_a_tag_takes_latest(cli, registries, images):
    reg = registries.start("open")
    img = images.busybox(marker="latest")
    images.push(img, reg, "bb", "latest")
    r = cli("pull", reg.ref("bb"))
    check_pull_output(r, pulling_from("latest", "bb"), img.digest, reg.ref("bb", "latest"),
                      reg.ref("bb", "latest"), new=img.layers, default_tag=True)
    assert cli.inspect(reg.ref("bb"))["Id"] == img.id


def test_pull_by_digest(cli, registries, images):
    reg = registries.start("open")
    img = images.busybox(marker="bydigest")
    images.push(img, reg, "bb", "v1")
    ref = reg.ref("bb", digest=img.digest)
    r = cli("pull", ref)
    check_pull_output(r, pulling_from(ref, "bb"), img.digest, ref, ref, new=img.layers)
    info = cli.inspect(ref)
    assert info["Id"] == img.id
    assert info["RepoTags"] == []
    assert info["RepoDigests"] == [ref]
    assert cli.inspect(reg.ref("bb", "v1")) is None  # the tag was not asked for
    rows = [row for row in cli.image_list() if row[0] == img.id]
    assert rows == [(img.id, f"{reg.host}/bb", "<none>", img.digest)]
    assert run_cat(cli, ref, "/etc/marker") == "bydigest\n"
    check_up_to_date(cli("pull", ref), pulling_from(ref, "bb"), img.digest, ref, ref)


def test_pull_by_tag_and_digest_takes_the_digest(cli, registries, images):
    """`repo:tag@digest`: the docker client sends the digest as the tag and drops the tag
    (moby client/image_pull.go:29-31 and getAPITagFromNamedRef, :55-63), so the digest decides
    and no tag is recorded; the CLI prints back what it was given."""
    reg = registries.start("open")
    v1 = images.busybox(marker="one")
    v2 = images.busybox(marker="two")
    images.push(v1, reg, "bb", "v1")
    images.push(v2, reg, "bb", "v2")
    given = f"{reg.host}/bb:v2@{v1.digest}"
    by_digest = reg.ref("bb", digest=v1.digest)
    r = cli("pull", given)
    check_pull_output(r, pulling_from(by_digest, "bb"), v1.digest, by_digest, given, new=v1.layers)
    info = cli.inspect(by_digest)
    assert info["Id"] == v1.id and info["RepoTags"] == [] and info["RepoDigests"] == [by_digest]
    assert cli.inspect(reg.ref("bb", "v2")) is None


def test_pull_quiet_prints_only_the_reference(cli, registries, images):
    reg = registries.start("open")
    img = images.busybox(marker="quiet")
    images.push(img, reg, "bb", "v1")
    r = ok(cli("pull", "-q", reg.ref("bb", "v1")))
    assert (r.stdout, r.stderr) == (reg.ref("bb", "v1") + "\n", "")
    assert cli.inspect(reg.ref("bb", "v1"))["Id"] == img.id
    # Without a tag, -q leaves out "Using default tag" too (cli/command/image/pull.go:76).
    images.push(img, reg, "bb", "latest")
    r = ok(cli("pull", "-q", reg.ref("bb")))
    assert (r.stdout, r.stderr) == (reg.ref("bb", "latest") + "\n", "")


# ---------------------------------------------------------------- other image kinds


def test_pull_platform_from_a_multiarch_index(cli, registries, images):
    reg = registries.start("open")
    idx = images.multiarch(marker="multi")
    images.push(idx, reg, "multi", "v1")
    ref = reg.ref("multi", "v1")
    amd, arm = idx.for_platform("amd64"), idx.for_platform("arm64", "v8")

    r = cli("pull", "--platform", "linux/arm64", ref)
    # Digest: is the index's, as RepoDigests (distribution/pull_v2.go pullManifestList).
    check_pull_output(r, pulling_from("v1", "multi"), idx.digest, ref, ref, new=arm.layers)
    info = cli.inspect(ref)
    assert info["Id"] == arm.id
    assert (info["Architecture"], info.get("Variant"), info["Os"]) == ("arm64", "v8", "linux")
    assert info["Config"]["Labels"] == {"wharf.test.marker": "multi-arm64"}
    assert info["RepoDigests"] == [f"{reg.host}/multi@{idx.digest}"]
    assert run_cat(cli, ref, "/etc/marker", "--platform", "linux/arm64") == "multi-arm64\n"

    # Without --platform: this host's (amd64); the shared base is already here.
    r = cli("pull", ref)
    check_pull_output(r, pulling_from("v1", "multi"), idx.digest, ref, ref,
                      new=amd.layers[1:], existing=amd.layers[:1])
    info = cli.inspect(ref)
    assert (info["Id"], info["Architecture"]) == (amd.id, "amd64")
    assert run_cat(cli, ref, "/etc/marker") == "multi-amd64\n"

    # A platform the index lacks: the error comes after "Pulling from" (mid-stream).
    r = cli("pull", "--platform", "linux/s390x", ref)
    assert r.returncode == 1, r
    assert r.stdout.splitlines() == [pulling_from("v1", "multi")], r.stdout
    assert r.stderr.strip() == no_matching_manifest("linux/s390x"), r.stderr


def test_pull_docker_schema2_image(cli, registries, images):
    reg = registries.start("open")
    img = images.busybox(marker="v2s2")
    pushed = images.push(img, reg, "bb", "v1", format="v2s2")
    assert pushed.media_type == rf.MT_DOCKER_MANIFEST
    ref = reg.ref("bb", "v1")
    check_pull_output(cli("pull", ref), pulling_from("v1", "bb"), pushed.digest, ref, ref, new=img.layers)
    info = cli.inspect(ref)
    assert info["Id"] == img.id  # the same config blob under Docker's media type
    assert info["RepoDigests"] == [f"{reg.host}/bb@{pushed.digest}"]
    assert run_cat(cli, ref, "/etc/marker") == "v2s2\n"


def test_pull_zstd_layers(cli, registries, images):
    reg = registries.start("open")
    zl = images.random_layer(300_000, compression="zstd")
    img = images.busybox(marker="zstd", layers=[zl])
    images.push(img, reg, "bb", "zstd")
    ref = reg.ref("bb", "zstd")
    check_pull_output(cli("pull", ref), pulling_from("zstd", "bb"), img.digest, ref, ref, new=img.layers)
    assert cli.inspect(ref)["RootFS"]["Layers"][-1] == zl.diff_id
    assert run_cat(cli, ref, "/etc/marker") == "zstd\n"


# ---------------------------------------------------------------- not found, run of a missing image


def test_pull_of_what_is_not_there(cli, registries, images, dclient):
    reg = registries.start("open")
    images.push(images.busybox(marker="x"), reg, "bb", "v1")
    for ref in (reg.ref("bb", "nosuch"), reg.ref("nosuch", "v1")):
        r = cli("pull", ref)
        assert (r.returncode, r.stdout, r.stderr) == (1, "", manifest_not_found(ref) + "\n"), r
    # The API: a 404 before any stream (../shared/api/captures/48-pull-missing.txt).
    status, body = Api(cli.daemon.socket).call(
        "POST", f"/images/create?fromImage={reg.host}/bb&tag=nosuch")
    assert status == 404
    assert body == {"message": manifest_not_found(reg.ref("bb", "nosuch")).removeprefix("Error response from daemon: ")}
    import docker
    with pytest.raises(docker.errors.NotFound) as e:
        dclient.images.pull(f"{reg.host}/bb", tag="nosuch")
    assert e.value.explanation == body["message"]


def test_run_pulls_a_missing_image_then_runs_it(cli, registries, images):
    """The CLI's create → 404 → pull → create again (cli/command/container/create.go:341-360):
    the pull's lines go to stderr after "Unable to find image", the container's output to
    stdout."""
    reg = registries.start("open")
    img = images.busybox(marker="run")
    images.push(img, reg, "bb", "v1")
    ref = reg.ref("bb", "v1")
    r = ok(cli("run", "--rm", ref, "cat", "/etc/marker", timeout=180))
    assert r.stdout == "run\n"
    lines = r.stderr.splitlines()
    assert lines[:2] == [unable_to_find(ref), pulling_from("v1", "bb")], r.stderr
    assert lines[-2:] == [digest_line(img.digest), downloaded_newer(ref)], r.stderr
    assert cli.inspect(ref)["RepoDigests"] == [f"{reg.host}/bb@{img.digest}"]
    # Now it is here: no pull.
    r = ok(cli("run", "--rm", ref, "cat", "/etc/marker", timeout=120))
    assert (r.stdout, r.stderr) == ("run\n", "")

    missing = reg.ref("bb", "nosuch")
    r = cli("run", "--rm", missing, "true", timeout=120)
    assert r.returncode == 125, r
    assert r.stderr == (f"{unable_to_find(missing)}\ndocker: {manifest_not_found(missing)}\n\n"
                        "Run 'docker run --help' for more information\n"), r.stderr


# ---------------------------------------------------------------- auth


def test_htpasswd_pull_needs_login_and_logout_forgets_it(cli, registries, images):
    reg = registries.start("htpasswd")
    v1, v2 = images.busybox(marker="v1"), images.busybox(marker="v2")
    images.push(v1, reg, "bb", "v1", creds=reg.creds)
    images.push(v2, reg, "bb", "v2", creds=reg.creds)

    r = cli("pull", reg.ref("bb", "v1"))
    assert (r.returncode, r.stdout) == (1, ""), r
    assert r.stderr == no_basic_auth_credentials(reg.host, "bb", "v1") + "\n"
    assert cli.inspect(reg.ref("bb", "v1")) is None

    r = login(cli, reg, password="wrong")
    assert r.returncode == 1, r
    assert login_failed_basic(reg.host) in r.stderr
    assert reg.host not in cli.config_json().get("auths", {})

    r = ok(login(cli, reg))
    assert LOGIN_SUCCEEDED in r.stdout.splitlines()
    auth = cli.config_json()["auths"][reg.host]
    assert base64.b64decode(auth["auth"]).decode() == f"{rf.USER}:{rf.PASSWORD}"

    ref = reg.ref("bb", "v1")
    check_pull_output(cli("pull", ref), pulling_from("v1", "bb"), v1.digest, ref, ref, new=v1.layers)
    assert run_cat(cli, ref, "/etc/marker") == "v1\n"

    r = ok(cli("logout", reg.host))
    assert r.stdout == removing_login(reg.host) + "\n"
    assert reg.host not in cli.config_json().get("auths", {})
    r = cli("pull", reg.ref("bb", "v2"))
    assert r.returncode == 1 and r.stderr == no_basic_auth_credentials(reg.host, "bb", "v2") + "\n", r


def test_token_pull_denied_without_login(cli, registries, images):
    reg = registries.start("token")
    img = images.busybox(marker="token")
    images.push(img, reg, "bb", "v1", creds=reg.creds)
    # Only the daemon's token requests: the push above (skopeo, as the admin) asked too.
    n = len(reg.token_server.requests)
    r = cli("pull", reg.ref("bb", "v1"))
    assert (r.returncode, r.stdout, r.stderr) == (1, "", pull_access_denied(f"{reg.host}/bb") + "\n"), r
    assert cli.inspect(reg.ref("bb", "v1")) is None
    # The daemon asked the token server, anonymously, for pull on bb, and got nothing.
    by_daemon = reg.token_server.requests[n:]
    asked = [q for q in by_daemon if "repository:bb:pull" in q["scopes"]]
    assert asked and all(q["user"] is None and q["access"] == [] for q in by_daemon), by_daemon

    r = login(cli, reg, password="wrong")
    assert r.returncode == 1, r
    assert login_failed_token(reg.host, "incorrect username or password") in r.stderr


def test_token_login_pull_logout(cli, registries, images):
    """A token server without refresh tokens: login stores the password, pulls get tokens with
    basic credentials, scoped to the repository."""
    reg = registries.start("token", refresh_tokens=False, grants={rf.USER: {"bb": "pull,push"}})
    img = images.busybox(marker="token")
    images.push(img, reg, "bb", "v1", creds=reg.creds)
    ok(login(cli, reg))
    auth = cli.config_json()["auths"][reg.host]
    assert base64.b64decode(auth["auth"]).decode() == f"{rf.USER}:{rf.PASSWORD}"
    assert "identitytoken" not in auth
    ref = reg.ref("bb", "v1")
    check_pull_output(cli("pull", ref), pulling_from("v1", "bb"), img.digest, ref, ref, new=img.layers)
    granted = [q for q in reg.token_server.requests
               if q["user"] == rf.USER and {"type": "repository", "name": "bb", "actions": ["pull"]} in (q["access"] or [])]
    assert granted, reg.token_server.requests
    assert run_cat(cli, ref, "/etc/marker") == "token\n"
    ok(cli("logout", reg.host))
    images.push(images.busybox(marker="other"), reg, "bb", "v2", creds=reg.creds)
    r = cli("pull", reg.ref("bb", "v2"))
    assert r.stderr == pull_access_denied(f"{reg.host}/bb") + "\n", r


def test_token_login_keeps_an_identity_token_and_pulls_with_it(cli, registries, images):
    """Docker's login asks the token server for an offline token (registry/auth.go
    v2AuthHTTPClient, OfflineAccess: true); the refresh token it answers comes back to the CLI
    as IdentityToken, which config.json keeps instead of the password. Pulls then send it in
    X-Registry-Auth, and the daemon trades it for access tokens with a POST
    grant_type=refresh_token (docker/distribution registry/client/auth/session.go
    fetchTokenWithOAuth)."""
    reg = registries.start("token")
    ts = reg.token_server
    img = images.busybox(marker="identity")
    images.push(img, reg, "bb", "v1", creds=reg.creds)
    r = ok(login(cli, reg))
    assert LOGIN_SUCCEEDED in r.stdout.splitlines()
    auth = cli.config_json()["auths"][reg.host]
    identity = auth.get("identitytoken")
    assert identity and ts.refresh.get(identity) == rf.USER, auth
    assert rf.PASSWORD not in json.dumps(cli.config_json())

    n = len(ts.requests)
    ref = reg.ref("bb", "v1")
    check_pull_output(cli("pull", ref), pulling_from("v1", "bb"), img.digest, ref, ref, new=img.layers)
    used = [q for q in ts.requests[n:] if q["grant_type"] == "refresh_token" and q["user"] == rf.USER]
    assert used and any(a["name"] == "bb" and "pull" in a["actions"] for q in used for a in q["access"]), ts.requests[n:]


def test_pulls_by_a_user_with_pull_rights_only(cli, registries, images):
    reg = registries.start("token")
    img = images.busybox(marker="puller")
    images.push(img, reg, "bb", "v1", creds=reg.creds)
    ok(login(cli, reg, rf.PULLER, rf.PULLER_PASSWORD))
    ref = reg.ref("bb", "v1")
    check_pull_output(cli("pull", ref), pulling_from("v1", "bb"), img.digest, ref, ref, new=img.layers)


# ---------------------------------------------------------------- resume, wrong digest


def test_a_pull_cut_at_90_percent_resumes_and_fetches_at_most_10_percent_again(cli, registries, images):
    reg = registries.start("open")
    big = images.random_layer(8_000_000)
    img = images.busybox(marker="resume", layers=[big])
    images.push(img, reg, "bb", "v1")
    proxy = registries.proxy(reg, cut_digest=big.digest, at=0.9)
    ref = proxy.ref("bb", "v1")
    r = ok(cli("pull", ref, timeout=300))
    assert r.stdout.splitlines()[-3:] == [digest_line(img.digest), downloaded_newer(ref), ref], r.stdout
    assert proxy.cuts_done == 1, proxy.requests
    cut_at = proxy.served_at_cut[big.digest]
    assert cut_at == int(big.size * 0.9)
    again = proxy.reserved(big.digest)
    # Exactly the rest after the cut; int() rounds the cut down, so that may be one byte over 10 %.
    assert again == big.size - cut_at and again <= 0.10 * big.size + 1, (
        f"after the cut at {cut_at} of {big.size} bytes the pull fetched {again} more "
        f"(ranges asked: {proxy.ranges[big.digest]})")
    assert any(rng and rng.startswith("bytes=") for rng in proxy.ranges[big.digest][1:]), proxy.ranges
    info = cli.inspect(ref)
    assert info["Id"] == img.id and info["RootFS"]["Layers"][-1] == big.diff_id
    assert run_cat(cli, ref, "/etc/marker") == "resume\n"


def test_a_pull_that_fails_at_90_percent_keeps_it_and_the_next_fetches_at_most_10_percent(cli, registries, images):
    """The connection cut at 90 % and then at once on every resume, until the registry
    client's retries are spent: the pull fails, keeps what it received, and the next pull
    asks only for the rest."""
    reg = registries.start("open")
    big = images.random_layer(8_000_000)
    img = images.busybox(marker="resume-fail", layers=[big])
    images.push(img, reg, "bb", "v1")
    proxy = registries.proxy(reg, cut_digest=big.digest, at=0.9, cuts=1000)
    ref = proxy.ref("bb", "v1")
    r = cli("pull", ref, timeout=300)
    assert r.returncode == 1, r
    assert cli.inspect(ref) is None
    cut_at = proxy.served_at_cut[big.digest]
    assert cut_at == int(big.size * 0.9), proxy.ranges[big.digest]
    assert proxy.cuts_done > 1, proxy.requests

    with proxy.lock:
        proxy.cuts_left = 0
    resumes = len(proxy.ranges[big.digest])
    r = ok(cli("pull", ref, timeout=300))
    assert r.stdout.splitlines()[-3:] == [digest_line(img.digest), downloaded_newer(ref), ref], r.stdout
    assert proxy.ranges[big.digest][resumes:] == [f"bytes={cut_at}-"], proxy.ranges[big.digest]
    again = proxy.reserved(big.digest)
    # Exactly the rest: 10 % of the blob, but for the cut's rounding.
    assert again == big.size - cut_at and again <= 0.10 * big.size + 1, (
        f"after the failed pull cut at {cut_at} of {big.size} bytes the next fetched {again} "
        f"(ranges asked: {proxy.ranges[big.digest]})")
    info = cli.inspect(ref)
    assert info["Id"] == img.id and info["RootFS"]["Layers"][-1] == big.diff_id
    assert run_cat(cli, ref, "/etc/marker") == "resume-fail\n"


def test_a_blob_that_is_not_its_digest_is_refused_and_leaves_nothing(cli, registries, images, wharfd, dclient):
    lay = images.random_layer(500_000, level=0)
    img = images.busybox(marker="wrong", layers=[lay])
    bad = rf.corrupted_like(lay)
    assert len(bad) == lay.size and rf.sha256(bad) != lay.digest
    fake = registries.fake().add(img, "bb", "v1").serve_instead(lay.digest, bad)
    ref = fake.ref("bb", "v1")
    before = cli.image_list()

    r = cli("pull", ref)
    assert r.returncode == 1, r
    assert r.stdout.splitlines()[:1] == [pulling_from("v1", "bb")], r
    assert r.stderr == layer_verification_failed(lay.digest) + "\n", r.stderr
    assert cli.inspect(ref) is None
    assert cli.image_list() == before
    # No trace of the refused blob, under the digest it claimed or the one it has (verified
    # blobs such as the base layer may stay as a cache: they are not an image).
    left = files_named(wharfd.dir / "data", lay.digest, rf.sha256(bad))
    assert left == [], f"the refused pull left {left}"

    # The same through the API: 200, then the error as errorDetail in the stream.
    msgs = list(dclient.api.pull(f"{fake.host}/bb", tag="v1", stream=True, decode=True))
    assert msgs[0] == {"status": "Pulling from bb", "id": "v1"}
    want = layer_verification_failed(lay.digest)
    assert msgs[-1] == {"errorDetail": {"message": want}, "error": want}, msgs[-3:]
    assert cli.image_list() == before


# ---------------------------------------------------------------- docker-py and the raw stream


def test_dockerpy_pull_returns_the_image(cli, registries, images, dclient):
    reg = registries.start("open")
    img = images.busybox(marker="py")
    images.push(img, reg, "bb", "v1")
    got = dclient.images.pull(f"{reg.host}/bb", tag="v1")
    assert got.id == img.id
    assert got.tags == [reg.ref("bb", "v1")]
    assert got.attrs["RepoDigests"] == [f"{reg.host}/bb@{img.digest}"]


def test_dockerpy_login_then_pull_with_its_credentials(cli, registries, images, dclient):
    """docker-py's login (reauth: its own cache would answer otherwise) goes through POST
    /auth; the credentials it keeps go with its next pull as X-Registry-Auth."""
    import docker as dockerpy

    reg = registries.start("htpasswd")
    img = images.busybox(marker="pylogin")
    images.push(img, reg, "bb", "v1", creds=reg.creds)
    with pytest.raises(dockerpy.errors.APIError) as e:
        dclient.images.pull(f"{reg.host}/bb", tag="v1")
    assert e.value.explanation == no_basic_auth_credentials(reg.host, "bb", "v1").removeprefix(
        "Error response from daemon: "), e.value
    with pytest.raises(dockerpy.errors.APIError) as e:
        dclient.login(rf.USER, "wrong", registry=reg.host, reauth=True)
    assert e.value.explanation == login_failed_basic(reg.host).removeprefix(
        "Error response from daemon: "), e.value
    r = dclient.login(rf.USER, rf.PASSWORD, registry=reg.host, reauth=True)
    assert r["Status"] == LOGIN_SUCCEEDED, r
    got = dclient.images.pull(f"{reg.host}/bb", tag="v1")
    assert got.id == img.id
    assert got.attrs["RepoDigests"] == [f"{reg.host}/bb@{img.digest}"]


def test_dockerpy_pull_stream_has_dockers_message_shapes(cli, registries, images, dclient):
    reg = registries.start("open")
    big = images.random_layer(2_000_000)
    img = images.busybox(marker="stream", layers=[big])
    images.push(img, reg, "bb", "v2")
    msgs = list(dclient.api.pull(f"{reg.host}/bb", tag="v2", stream=True, decode=True))
    assert msgs[0] == {"status": "Pulling from bb", "id": "v2"}
    assert msgs[-2:] == [{"status": digest_line(img.digest)},
                         {"status": downloaded_newer(reg.ref("bb", "v2"))}]
    by_id = {}
    for m in msgs[1:-2]:
        assert set(m) <= {"status", "progressDetail", "progress", "id"}, m
        by_id.setdefault(m["id"], []).append(m)
    assert set(by_id) == {lay.short_id for lay in img.layers}
    for lay in img.layers:
        ms = by_id[lay.short_id]
        plain = [m for m in ms if m["status"] in (PULLING_FS_LAYER, VERIFYING, DOWNLOAD_COMPLETE, PULL_COMPLETE)]
        assert plain == [{"status": s, "progressDetail": {}, "id": lay.short_id}
                         for s in (PULLING_FS_LAYER, VERIFYING, DOWNLOAD_COMPLETE, PULL_COMPLETE)], ms
        for kind in ("Downloading", "Extracting"):
            bars = [m for m in ms if m["status"] == kind]
            assert bars, f"{lay.short_id}: no {kind} message: {ms}"
            for m in bars:
                d = m["progressDetail"]
                assert set(d) == {"current", "total"} and 0 < d["current"] <= d["total"] == lay.size, m
                assert m["progress"].startswith("[") and "/" in m["progress"], m
            last = bars[-1]["progressDetail"]
            assert last["current"] == last["total"], bars[-1]
            assert bars[-1]["progress"] == progress_bar(lay.size, lay.size), bars[-1]
        assert all(m["status"] in (PULLING_FS_LAYER, VERIFYING, DOWNLOAD_COMPLETE, PULL_COMPLETE,
                                   "Downloading", "Extracting", "Waiting") for m in ms), ms


def test_the_pull_stream_on_the_wire(cli, registries, images):
    """§3.4 of ENDPOINTS.md: application/json, one JSON object per message, each followed by
    \\r\\n; a second pull answers the same shape with no layer messages."""
    reg = registries.start("open")
    img = images.busybox(marker="wire")
    images.push(img, reg, "bb", "v1")
    api = Api(cli.daemon.socket)
    for _ in range(2):
        s = api.conn(timeout=300)
        s.sendall((f"POST /v1.44/images/create?fromImage={reg.host}%2Fbb&tag=v1 HTTP/1.1\r\n"
                   "Host: localhost\r\nContent-Length: 0\r\nX-Registry-Auth: e30=\r\nConnection: close\r\n\r\n").encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"\r\ncontent-type: application/json" in head.lower(), head
        assert b"transfer-encoding: chunked" in head.lower(), head
        payload = dechunk(body)
        assert payload.endswith(b"\r\n"), payload[-100:]
        msgs = [json.loads(x) for x in payload.split(b"\r\n")[:-1]]
        assert msgs[0] == {"status": "Pulling from bb", "id": "v1"}
        assert msgs[-2]["status"] == digest_line(img.digest)
    assert msgs[-1] == {"status": f"Status: Image is up to date for {reg.ref('bb', 'v1')}"}
    assert len(msgs) == 3, msgs


def dechunk(body):
    out = b""
    while body:
        line, _, body = body.partition(b"\r\n")
        n = int(line.split(b";")[0], 16)
        if n == 0:
            break
        out += body[:n]
        body = body[n + 2:]
    return out
