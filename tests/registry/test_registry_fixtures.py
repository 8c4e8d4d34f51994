"""The registry fixtures work (tests/registry_fixtures.py): what skopeo pushes into each kind of
registry reads back identical, auth is enforced as configured, the cutting proxy cuts once and
counts, the fake registry serves bytes that do not match their digest, and everything is
cleaned up."""

import base64
import gzip
import hashlib
import io
import json
import os
import socket
import tarfile
import time
import urllib.parse
from pathlib import Path

import pytest

import registry_fixtures as rf
from registry_fixtures import images, registries  # noqa: F401  (pytest fixtures)


def read_blob_dir(d):
    """{digest: bytes} of a `skopeo copy ... dir:` directory."""
    out = {}
    for p in Path(d).iterdir():
        if p.name not in ("manifest.json", "version") and "." not in p.name:
            out["sha256:" + p.name] = p.read_bytes()
    return out


def check_read_back(images, reg, img, ref, creds):
    """skopeo inspect answers the pushed digest and config; skopeo copy to a directory (which
    verifies digests) gets exactly the built blobs."""
    info = images.inspect(ref, creds=creds)
    assert info["Digest"] == img.digest
    assert info["Architecture"] == img.platform["architecture"]
    assert info["Layers"] == [lay.digest for lay in img.layers]
    assert images.inspect(ref, creds=creds, raw=True) == img.manifest_bytes
    assert images.inspect(ref, creds=creds, config=True).strip() == img.config_bytes
    d = images.copy_to_dir(ref, creds=creds)
    assert (d / "manifest.json").read_bytes() == img.manifest_bytes
    assert read_blob_dir(d) == img.blobs()


def challenge(reg):
    status, hdrs, _ = rf.http_request("127.0.0.1", reg.port, "GET", "/v2/")
    return status, hdrs.get("www-authenticate")


# ---------------------------------------------------------------- the three registries


def test_open_registry_takes_a_push_and_gives_it_back(registries, images):
    reg = registries.start("open")
    assert challenge(reg) == (200, None)
    img = images.busybox(marker="open", layers=[images.random_layer(100_000)])
    pushed = images.push(img, reg, "bb", "v1")
    assert pushed.digest == img.digest and pushed.media_type == rf.MT_OCI_MANIFEST
    assert reg.tags("bb") == ["v1"]
    assert reg.catalog() == ["bb"]
    check_read_back(images, reg, img, reg.ref("bb", "v1"), None)
    # By digest too, and the blobs are where a client looks for them.
    assert images.inspect(reg.ref("bb", digest=img.digest))["Digest"] == img.digest
    for lay in img.layers:
        assert reg.blob("bb", lay.digest) == lay.blob


def test_htpasswd_registry_needs_basic_credentials(registries, images):
    reg = registries.start("htpasswd")
    status, www = challenge(reg)
    assert status == 401 and www.startswith("Basic realm="), www
    img = images.busybox(marker="htpasswd")
    with pytest.raises(AssertionError, match="(?i)unauthorized|authentication required"):
        images.push(img, reg, "bb", "v1")
    with pytest.raises(AssertionError, match="(?i)unauthorized|authentication required"):
        images.push(img, reg, "bb", "v1", creds=(rf.USER, "wrong"))
    images.push(img, reg, "bb", "v1", creds=reg.creds)
    check_read_back(images, reg, img, reg.ref("bb", "v1"), reg.creds)
    # Another user of the file reads it too; nobody reads it without credentials.
    assert images.inspect(reg.ref("bb", "v1"), creds=(rf.PULLER, rf.PULLER_PASSWORD))["Digest"] == img.digest
    with pytest.raises(AssertionError, match="(?i)unauthorized|authentication required"):
        images.inspect(reg.ref("bb", "v1"))
    status, _, _ = rf.http_request("127.0.0.1", reg.port, "GET", "/v2/",
                                   {"Authorization": rf.basic(rf.USER, rf.PASSWORD)})
    assert status == 200


def test_token_registry_grants_per_user(registries, images):
    reg = registries.start("token")
    ts = reg.token_server
    status, www = challenge(reg)
    assert status == 401, www
    scheme, params = rf.parse_challenge(www)
    assert scheme == "bearer"
    assert params == {"realm": ts.realm, "service": reg.service}
    assert urllib.parse.urlsplit(ts.realm).hostname == "127.0.0.1"

    img = images.busybox(marker="token")
    # Anonymous and the pull-only user may not push; wrong passwords get the token server's 401.
    with pytest.raises(AssertionError, match="(?i)denied|unauthorized|authentication required"):
        images.push(img, reg, "bb", "v1")
    with pytest.raises(AssertionError, match="(?i)denied|unauthorized|authentication required"):
        images.push(img, reg, "bb", "v1", creds=(rf.PULLER, rf.PULLER_PASSWORD))
    with pytest.raises(AssertionError, match="incorrect username or password"):
        images.push(img, reg, "bb", "v1", creds=(rf.USER, "wrong"))
    images.push(img, reg, "bb", "v1", creds=reg.creds)
    check_read_back(images, reg, img, reg.ref("bb", "v1"), reg.creds)
    assert images.inspect(reg.ref("bb", "v1"), creds=(rf.PULLER, rf.PULLER_PASSWORD))["Digest"] == img.digest
    with pytest.raises(AssertionError, match="(?i)denied|unauthorized|authentication required"):
        images.inspect(reg.ref("bb", "v1"))

    # The token server saw skopeo's basic-auth token requests, and granted what each user has.
    pushes = [r for r in ts.requests if r["user"] == rf.USER and r["status"] == 200
              and any(s.startswith("repository:bb:") for s in r["scopes"])]
    assert pushes and any("push" in a["actions"] for r in pushes for a in r["access"]), ts.requests
    puller = [r for r in ts.requests if r["user"] == rf.PULLER and r["status"] == 200]
    assert puller and all("push" not in a["actions"] for r in puller for a in r["access"])
    assert any(r["status"] == 401 for r in ts.requests)


def test_token_registry_speaks_the_challenges_docker_reads(registries, images):
    """What docker's client maps to its messages: a token without the scope gets 401 with
    `error="insufficient_scope"` (docker: `denied: requested access to the resource is
    denied`); an unknown manifest with a good token is 404 MANIFEST_UNKNOWN."""
    reg = registries.start("token")
    ts = reg.token_server
    images.push(images.busybox(marker="scope"), reg, "bb", "v1", creds=reg.creds)
    anon, access = ts.issue(None, ["repository:bb:pull"])
    assert access == []
    status, hdrs, body = rf.http_request("127.0.0.1", reg.port, "GET", "/v2/bb/manifests/v1",
                                         {"Authorization": f"Bearer {anon}"})
    assert status == 401
    scheme, params = rf.parse_challenge(hdrs["www-authenticate"])
    assert (scheme, params.get("error"), params.get("scope")) == ("bearer", "insufficient_scope", "repository:bb:pull")
    assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"
    good, _ = ts.issue(rf.PULLER, ["repository:bb:pull", "repository:nosuch:pull"])
    status, _, body = rf.http_request("127.0.0.1", reg.port, "GET", "/v2/bb/manifests/nosuchtag",
                                      {"Authorization": f"Bearer {good}", "Accept": rf.MT_OCI_MANIFEST})
    assert status == 404 and json.loads(body)["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    status, _, body = rf.http_request("127.0.0.1", reg.port, "GET", "/v2/nosuch/manifests/v1",
                                      {"Authorization": f"Bearer {good}", "Accept": rf.MT_OCI_MANIFEST})
    # An unknown repository's manifest is MANIFEST_UNKNOWN too (docker: `manifest for ... not
    # found: manifest unknown: manifest unknown`), only its tag list is NAME_UNKNOWN.
    assert status == 404 and json.loads(body)["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_token_server_refresh_tokens(registries):
    """`docker login` asks with offline_token=true and keeps the refresh token as its identity
    token; the daemon then POSTs grant_type=refresh_token. Both work, and a bad one is 401."""
    reg = registries.start("token")
    ts = reg.token_server
    realm = urllib.parse.urlsplit(ts.realm)
    q = urllib.parse.urlencode({"service": reg.service, "scope": "repository:bb:pull",
                                "offline_token": "true", "client_id": "docker"})
    status, _, body = rf.http_request("127.0.0.1", realm.port, "GET", f"/token?{q}",
                                      {"Authorization": rf.basic(rf.USER, rf.PASSWORD)})
    assert status == 200, body
    got = json.loads(body)
    assert got["token"] == got["access_token"] and got["expires_in"] == ts.ttl
    rt = got["refresh_token"]
    form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": rt,
                                   "service": reg.service, "scope": "repository:bb:pull repository:bb:push",
                                   "client_id": "docker"}).encode()
    hdr = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, body = rf.http_request("127.0.0.1", realm.port, "POST", "/token", hdr, form)
    assert status == 200, body
    token = json.loads(body)["access_token"]
    assert ts.requests[-1]["user"] == rf.USER and ts.requests[-1]["grant_type"] == "refresh_token"
    assert {a["name"]: a["actions"] for a in ts.requests[-1]["access"]} == {"bb": ["pull", "push"]}
    status, _, _ = rf.http_request("127.0.0.1", reg.port, "GET", "/v2/",
                                   {"Authorization": f"Bearer {token}"})
    assert status == 200
    form_bad = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": "nope",
                                       "service": reg.service}).encode()
    assert rf.http_request("127.0.0.1", realm.port, "POST", "/token", hdr, form_bad)[0] == 401
    form_pw = urllib.parse.urlencode({"grant_type": "password", "username": rf.PULLER,
                                      "password": rf.PULLER_PASSWORD, "service": reg.service,
                                      "scope": "repository:bb:pull,push", "access_type": "offline"}).encode()
    status, _, body = rf.http_request("127.0.0.1", realm.port, "POST", "/token", hdr, form_pw)
    assert status == 200 and "refresh_token" in json.loads(body)
    assert ts.requests[-1]["access"] == [{"type": "repository", "name": "bb", "actions": ["pull"]}]


def test_token_is_an_es256_jwt_with_a_libtrust_kid(registries):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from cryptography.x509 import load_pem_x509_certificate

    reg = registries.start("token")
    ts = reg.token_server
    token, _ = ts.issue(rf.USER, ["repository:a/b:pull,push"])
    h, c, s = token.split(".")
    pad = lambda x: base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))  # noqa: E731
    header, claims, sig = json.loads(pad(h)), json.loads(pad(c)), pad(s)
    assert header["alg"] == "ES256" and header["typ"] == "JWT"
    groups = header["kid"].split(":")
    assert len(groups) == 12 and all(len(g) == 4 for g in groups), header["kid"]
    cert = load_pem_x509_certificate(ts.cert_path.read_bytes())
    assert header["kid"] == rf.libtrust_key_id(cert.public_key())
    assert len(sig) == 64  # raw r||s, not DER
    cert.public_key().verify(encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
                             f"{h}.{c}".encode(), ec.ECDSA(hashes.SHA256()))
    assert claims["aud"] == reg.service and claims["iss"] == ts.issuer and claims["sub"] == rf.USER
    assert claims["nbf"] <= claims["iat"] < claims["exp"] and claims["jti"]
    assert claims["access"] == [{"type": "repository", "name": "a/b", "actions": ["pull", "push"]}]


# ---------------------------------------------------------------- images


def test_image_layers_configs_and_indexes(images):
    img = images.busybox(marker="m1", layers=[images.random_layer(50_000)])
    assert [lay.media_type for lay in img.layers] == [rf.MT_OCI_LAYER + "+gzip"] * 3
    assert img.config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(lay.tar).hexdigest() for lay in img.layers]
    assert len(img.config["history"]) == 3
    assert img.manifest["config"]["digest"] == img.id
    for lay in img.layers:
        assert gzip.decompress(lay.blob) == lay.tar
    base = tarfile.open(fileobj=io.BytesIO(img.layers[0].tar))
    names = base.getnames()
    assert "bin/busybox" in names and "bin/sh" in names and "etc/wharf-test-salt" in names
    marker = tarfile.open(fileobj=io.BytesIO(img.layers[1].tar))
    assert marker.extractfile("etc/marker").read() == b"m1\n"
    # Each test's base layer is its own; the same test gets the same one again.
    assert images.base_layer().digest == img.layers[0].digest
    assert rf.layer(rf.busybox_tar(salt="another test")).digest != img.layers[0].digest

    idx = images.multiarch()
    assert [m["platform"] for m in idx.index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"}]
    arm = idx.for_platform("arm64")
    assert arm.config["architecture"] == "arm64" and arm.config["variant"] == "v8"
    assert idx.images[0].layers[0].digest == arm.layers[0].digest
    assert idx.images[0].layers[1].digest != arm.layers[1].digest


def test_multiarch_index_pushes_every_platform(registries, images):
    reg = registries.start("open")
    idx = images.multiarch()
    pushed = images.push(idx, reg, "multi", "v1")
    assert pushed.digest == idx.digest and pushed.media_type == rf.MT_OCI_INDEX
    for img in idx.images:
        got = reg.manifest("multi", img.digest)
        assert got and got[2] == img.manifest_bytes
    assert images.inspect(reg.ref("multi", "v1"), raw=True) == idx.index_bytes


def test_docker_schema2_variant(registries, images):
    reg = registries.start("open")
    img = images.busybox(marker="v2s2")
    pushed = images.push(img, reg, "bb", "v2s2", format="v2s2")
    m = pushed.manifest
    assert pushed.media_type == rf.MT_DOCKER_MANIFEST == m["mediaType"]
    assert m["config"]["mediaType"] == rf.MT_DOCKER_CONFIG
    # The same config and layer blobs, under Docker's media types: the image ID is the same.
    assert m["config"]["digest"] == img.id
    assert [(x["mediaType"], x["digest"]) for x in m["layers"]] == \
        [(rf.MT_DOCKER_LAYER_GZIP, lay.digest) for lay in img.layers]
    assert pushed.digest != img.digest


def test_zstd_layers_push_as_they_are(registries, images):
    reg = registries.start("open")
    zl = rf.layer(rf.random_tar(200_000, "zstd"), "zstd")
    assert zl.blob[:4] == b"\x28\xb5\x2f\xfd"  # the zstd frame magic
    img = images.busybox(marker="zstd", layers=[zl])
    images.push(img, reg, "bb", "zstd")
    got = json.loads(reg.manifest("bb", "zstd")[2])
    assert got["layers"][-1]["mediaType"] == rf.MT_OCI_LAYER + "+zstd"
    assert reg.blob("bb", zl.digest) == zl.blob


# ---------------------------------------------------------------- the proxy and the fake


def raw_get(host_port, path, headers=None):
    """A GET on a fresh connection that returns whatever body arrived before the close:
    (status, headers, body, complete)."""
    host, port = host_port.split(":")
    s = socket.create_connection((host, int(port)), timeout=60)
    req = f"GET {path} HTTP/1.1\r\nHost: {host_port}\r\n"
    for k, v in (headers or {}).items():
        req += f"{k}: {v}\r\n"
    s.sendall((req + "\r\n").encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data:
            head, _, body = data.partition(b"\r\n\r\n")
            n = int(dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:]).get("Content-Length", -1))
            if n >= 0 and len(body) >= n:
                break
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    n = int(hdrs.get("content-length", -1))
    return int(lines[0].split()[1]), hdrs, body, len(body) == n


def test_cutting_proxy_cuts_once_at_90_percent_and_counts(registries, images):
    reg = registries.start("open")
    big = images.random_layer(3_000_000)
    img = images.busybox(marker="proxy", layers=[big])
    images.push(img, reg, "bb", "v1")
    proxy = registries.proxy(reg, cut_digest=big.digest, at=0.9)
    path = f"/v2/bb/blobs/{big.digest}"

    # Other blobs and manifests pass untouched and are not counted as the cut blob.
    status, _, body, complete = raw_get(proxy.host, f"/v2/bb/blobs/{img.layers[1].digest}")
    assert (status, complete, body) == (200, True, img.layers[1].blob)
    status, _, body, complete = raw_get(proxy.host, "/v2/bb/manifests/v1", {"Accept": rf.MT_OCI_MANIFEST})
    assert status == 200 and body == img.manifest_bytes

    status, hdrs, body, complete = raw_get(proxy.host, path)
    cut_at = int(big.size * 0.9)
    assert status == 200 and int(hdrs["content-length"]) == big.size
    assert not complete and body == big.blob[:cut_at]
    assert proxy.cuts_done == 1 and proxy.served_at_cut[big.digest] == cut_at
    # The client resumes with a Range: only the rest goes through, and nothing is cut again.
    status, hdrs, body, complete = raw_get(proxy.host, path, {"Range": f"bytes={cut_at}-"})
    assert status == 206 and complete and body == big.blob[cut_at:]
    assert hdrs["content-range"] == f"bytes {cut_at}-{big.size - 1}/{big.size}"
    assert proxy.reserved(big.digest) == big.size - cut_at <= 0.1 * big.size + 1
    assert proxy.ranges[big.digest] == [None, f"bytes={cut_at}-"]
    status, _, body, complete = raw_get(proxy.host, path)
    assert complete and body == big.blob and proxy.cuts_done == 1
    assert proxy.reserved(big.digest) == big.size - cut_at + big.size

    # skopeo (no resume of its own in 1.9) reads a whole image through it once the cut is spent.
    check_read_back(images, reg, img, proxy.ref("bb", "v1"), None)


def test_cutting_proxy_carries_pushes_and_token_auth(registries, images):
    """Push (POST/PATCH/PUT, chunked or not) and the token dance go through the proxy intact."""
    reg = registries.start("token")
    proxy = registries.proxy(reg)
    img = images.busybox(marker="via-proxy", layers=[images.random_layer(300_000)])
    rf.skopeo(["copy", "--dest-tls-verify=false", "--dest-creds", f"{rf.USER}:{rf.PASSWORD}",
               f"oci:{rf.write_oci_layout(img, images.workdir / 'l', 't')}:t",
               f"docker://{proxy.ref('bb', 'v1')}"], images.workdir / "skopeo")
    assert reg.manifest("bb", "v1")[1] == img.digest
    methods = {m for m, _, _, _ in proxy.requests}
    assert {"POST", "PUT", "HEAD"} <= methods, proxy.requests
    assert sorted(proxy.uploads()) == sorted(("bb", d) for d in img.blobs()), proxy.requests
    assert proxy.mounts() == []
    # skopeo mounts layers the registry has in another repository (counted as mounts, not
    # uploads) and uploads the config again, as docker does.
    n = len(proxy.requests)
    rf.skopeo(["copy", "--src-tls-verify=false", "--dest-tls-verify=false",
               "--src-creds", f"{rf.USER}:{rf.PASSWORD}", "--dest-creds", f"{rf.USER}:{rf.PASSWORD}",
               f"docker://{proxy.ref('bb', 'v1')}", f"docker://{proxy.ref('copy', 'v1')}"],
              images.workdir / "skopeo")
    assert proxy.uploads(n) == [("copy", img.id)]
    assert sorted(d for _, d, _ in proxy.mounts(n)) == sorted(lay.digest for lay in img.layers), proxy.requests[n:]
    assert {(r, f) for r, _, f in proxy.mounts(n)} == {("copy", "bb")}
    check_read_back(images, reg, img, proxy.ref("bb", "v1"), reg.creds)


def test_fake_registry_serves_a_blob_that_is_not_its_digest(registries, images):
    lay = images.random_layer(200_000, level=0)
    img = images.busybox(marker="fake", layers=[lay])
    bad = rf.corrupted_like(lay)
    assert len(bad) == lay.size and rf.sha256(bad) != lay.digest
    assert gzip.decompress(bad) != lay.tar  # a valid gzip of another tar of the same shape
    assert len(gzip.decompress(bad)) == len(lay.tar)
    fake = registries.fake().add(img, "bb", "v1").serve_instead(lay.digest, bad)

    status, hdrs, body = rf.http_request("127.0.0.1", fake.port, "GET", "/v2/")
    assert status == 200 and hdrs["docker-distribution-api-version"] == "registry/2.0"
    status, hdrs, body = rf.http_request("127.0.0.1", fake.port, "HEAD", "/v2/bb/manifests/v1")
    assert status == 200 and hdrs["docker-content-digest"] == img.digest
    assert hdrs["content-type"] == rf.MT_OCI_MANIFEST and int(hdrs["content-length"]) == len(img.manifest_bytes)
    assert rf.http_request("127.0.0.1", fake.port, "GET", f"/v2/bb/manifests/{img.digest}")[2] == img.manifest_bytes
    status, hdrs, body = rf.http_request("127.0.0.1", fake.port, "GET", f"/v2/bb/blobs/{lay.digest}")
    assert status == 200 and body == bad and hdrs["docker-content-digest"] == lay.digest
    status, _, body = rf.http_request("127.0.0.1", fake.port, "GET", f"/v2/bb/blobs/{lay.digest}",
                                      {"Range": "bytes=100-"})
    assert status == 206 and body == bad[100:]
    status, _, body = rf.http_request("127.0.0.1", fake.port, "GET", "/v2/bb/manifests/nosuch")
    assert status == 404 and json.loads(body)["errors"][0]["code"] == "MANIFEST_UNKNOWN"

    # A verifying client refuses it: skopeo names the digest.
    with pytest.raises(AssertionError, match=lay.digest.split(":")[1][:12]):
        images.copy_to_dir(fake.ref("bb", "v1"))
    assert ("GET", f"/v2/bb/blobs/{lay.digest}", None, 200) in fake.requests


# ---------------------------------------------------------------- cleanup


def test_everything_is_gone_after_cleanup(images):
    rf.require_tools()
    regs = rf.Registries("fixture-cleanup")
    try:
        reg = regs.start("token")
        proxy = regs.proxy(reg)
        fake = regs.fake()
        pid, d = reg.proc.pid, reg.dir
        ports = [reg.port, reg.token_server.port, proxy.port, fake.port]
        assert d.is_dir() and (d / "owner").is_file()
        assert Path(f"/proc/{pid}").exists()
    finally:
        errors = regs.cleanup()
    assert errors == []
    assert not d.exists()
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_crashed_runs_registry_is_removed_at_start(images):
    """A registry left by a run killed before its teardown (its owner gone) is killed and its
    directory removed when a registry of the same name starts."""
    rf.require_tools()
    import subprocess
    import sys as _sys
    name = "reg-fixture-stale-1"
    code = (f"import sys; sys.path.insert(0, {str(Path(rf.__file__).parent)!r}); import registry_fixtures as rf; "
            f"r = rf.Registry({name!r}).start(); print(r.proc.pid, r.dir, flush=True); import os; os._exit(0)")
    out = subprocess.run([_sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    pid, d = out.stdout.split()
    pid, d = int(pid), Path(d)
    assert d.is_dir() and Path(f"/proc/{pid}").exists()
    regs = rf.Registries("fixture-stale")
    try:
        reg = regs.start("open")
        assert reg.name == name and reg.dir != d
        rf.wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, f"stale registry {pid} to be killed")
        assert not d.exists()
    finally:
        regs.cleanup()
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, 9)


def test_tls_first_clients_fall_back_at_once(registries, images):
    """docker tries https first on an insecure registry: every listener here answers a TLS
    ClientHello with Go's plain-HTTP 400, as docker-registry does, so the handshake fails at
    once (an SSLError, not the socket timeout) and the client falls back to HTTP."""
    import ssl
    reg = registries.start("token")
    hosts = [("registry", reg.port), ("token server", reg.token_server.port),
             ("proxy", registries.proxy(reg).port), ("fake", registries.fake().port)]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for what, port in hosts:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            with pytest.raises(ssl.SSLError):
                ctx.wrap_socket(s, server_hostname="127.0.0.1")
        # And plain HTTP still works after it.
        assert rf.http_request("127.0.0.1", port, "GET", "/v2/" if what != "token server" else "/token")[0] in (200, 401), what
