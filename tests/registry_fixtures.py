"""Registries on 127.0.0.1 for the pull and push tests (issue 14), importable by every pytest
suite under tests/ (tests/registry checks the fixtures themselves, tests/compat drives wharfd
with them).

What is here:

* `Registry`: Debian's docker-registry (distribution 2.8.2, installed by scripts/install-deps.sh
  at /usr/local/lib/wharf/docker-registry; $WHARF_DOCKER_REGISTRY overrides) on
  127.0.0.1:<a port the kernel picks>, with its own root, config and log under
  /tmp/wharf-test-reg-<test>-<n>-<pid>/, in one of three modes: "open", "htpasswd" (basic auth,
  bcrypt) and "token" (bearer tokens from a `TokenServer` of its own: ES256 JWTs signed by a key
  whose self-signed certificate is the registry's rootcertbundle).
* Image builders: `Layer` (a tar, gzip or zstd or plain), `Image` (OCI config and manifest),
  `Index` (OCI image index), written as OCI image layouts and pushed with `skopeo copy`.
* `CuttingProxy`: an HTTP proxy in front of a registry that cuts one blob response after a
  fraction of the blob and counts what it serves (bytes per blob, Range headers).
* `FakeRegistry`: a tiny registry (http.server) serving manifests and blobs from memory, where a
  blob's bytes can be made to differ from its digest.
* pytest fixtures: `registries` (a factory of the above, named after the test) and `images`
  (builds, writes and pushes images). Both clean up after the test: processes killed, threads
  stopped, directories removed; a crashed earlier run's leftovers are removed at start.

Everything listens on 127.0.0.1 only. Using them from a test module:

    from registry_fixtures import images, registries  # noqa: F401  (pytest fixtures)

    def test_x(registries, images):
        reg = registries.start("htpasswd")                 # or "open", "token"
        img = images.busybox(marker="v1")                  # busybox + a layer with /etc/marker
        pushed = images.push(img, reg, "bb", "v1", creds=reg.creds)
        assert reg.manifest("bb", "v1")[1] == pushed.digest
"""

import base64
import contextlib
import datetime
import gzip
import hashlib
import http.client
import io
import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wharfd_harness import cleanup_dir, cleanup_stale, owner_stamp, wait_for  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REGISTRY_BIN = Path(os.environ.get("WHARF_DOCKER_REGISTRY") or "/usr/local/lib/wharf/docker-registry")
# Bounds, not measures: the registry answers its first request in ~50 ms here.
START_TIMEOUT = 30.0
SKOPEO_TIMEOUT = 300
FIXED_MTIME = 946684800  # 2000-01-01, as scripts/mk-busybox-tar.sh
CREATED = "2000-01-01T00:00:00Z"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Credentials every auth mode knows. The admin is the fixtures' own (reading a registry back);
# tests use the others.
USER, PASSWORD = "wharfuser", "wharfpass"          # pull and push everywhere
PULLER, PULLER_PASSWORD = "puller", "pullerpass"    # token mode: pull only
ADMIN, ADMIN_PASSWORD = "wharf-admin", "wharf-admin-pass"

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ALL_MANIFEST_TYPES = [MT_OCI_MANIFEST, MT_OCI_INDEX, MT_DOCKER_MANIFEST, MT_DOCKER_LIST]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def short_id(digest):
    """Docker's 12-character form of a digest (stringid.TruncateID): the IDs of pull and push
    progress lines."""
    return digest.split(":", 1)[-1][:12]


# ---------------------------------------------------------------- tools and names


def missing_tools():
    """What this host lacks to run a registry test (scripts/install-deps.sh installs them)."""
    out = []
    if not os.access(REGISTRY_BIN, os.X_OK):
        out.append(f"docker-registry ({REGISTRY_BIN})")
    if shutil.which("skopeo") is None:
        out.append("skopeo")
    try:
        import cryptography  # noqa: F401
    except ImportError:
        out.append("python cryptography")
    return out


def require_tools():
    """Skips (counted; a failure under CI, tests/conftest.py) when a tool is missing."""
    missing = missing_tools()
    if missing:
        pytest.skip(f"registry tests need {', '.join(missing)}: run scripts/install-deps.sh")


def slug_of(request, limit=30):
    """The test's name as a file-name part: `[a-z0-9-]`, at most `limit` characters (a hash of
    the full name keeps truncated ones apart)."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    if len(name) > limit:
        h = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:6]
        name = name[:limit - 7].rstrip("-") + "-" + h
    return name


def bcrypt_hash(password):
    """A bcrypt hash for an htpasswd line (distribution's htpasswd accepts bcrypt only), at the
    least cost bcrypt has (4): the registry checks it on every request, ~0.25 s each at the
    default 12."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
            return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
        except ImportError:  # Python >= 3.13
            pass
    try:
        import bcrypt
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    except ImportError:
        pytest.skip("no bcrypt: neither Python's crypt module nor the bcrypt package")


# ---------------------------------------------------------------- a small registry client


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def parse_challenge(value):
    """`Bearer realm="x",service="y",scope="z"` -> ("bearer", {realm: x, ...})."""
    scheme, _, rest = value.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


def http_request(host, port, method, path, headers=None, body=None, timeout=60):
    """One request on a fresh connection: (status, headers as a lowercase dict, body bytes)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hdrs = {}
        for k, v in r.getheaders():
            k = k.lower()
            hdrs[k] = f"{hdrs[k]}, {v}" if k in hdrs and k != "www-authenticate" else v
        return r.status, hdrs, data
    finally:
        c.close()


class RegistryClient:
    """Speaks the distribution API as a client would: on a 401 it answers the challenge (basic,
    or a bearer token fetched from the realm with basic credentials) and retries once. For the
    fixtures' own checks and the self-tests; not a model for wharf-distribution."""

    def __init__(self, host, port, creds=None):
        self.host, self.port, self.creds = host, port, creds

    def request(self, method, path, headers=None, body=None, scope=None):
        headers = dict(headers or {})
        status, hdrs, data = http_request(self.host, self.port, method, path, headers, body)
        if status != 401 or "www-authenticate" not in hdrs:
            return status, hdrs, data
        scheme, params = parse_challenge(hdrs["www-authenticate"])
        if scheme == "basic":
            if self.creds:
                headers["Authorization"] = basic(*self.creds)
        elif scheme == "bearer":
            q = {"service": params.get("service", "")}
            scope = scope or params.get("scope")
            if scope:
                q["scope"] = scope
            realm = urllib.parse.urlsplit(params["realm"])
            th = {"Authorization": basic(*self.creds)} if self.creds else {}
            ts, _, tb = http_request(realm.hostname, realm.port, "GET",
                                     f"{realm.path}?{urllib.parse.urlencode(q)}", th)
            if ts != 200:
                return ts, {}, tb
            headers["Authorization"] = "Bearer " + json.loads(tb)["token"]
        return http_request(self.host, self.port, method, path, headers, body)


class LocalHTTPServer(ThreadingHTTPServer):
    """http.server on 127.0.0.1 that answers a TLS ClientHello as Go's HTTP server does (a 400
    naming the mistake) instead of reading it as a request line: docker tries https first on an
    insecure registry and would otherwise wait out its handshake timeout before plain HTTP."""

    daemon_threads = True

    def __init__(self, handler):
        super().__init__(("127.0.0.1", 0), handler)

    def finish_request(self, request, client_address):
        try:
            request.settimeout(60)
            first = request.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if first == b"\x16":
            with contextlib.suppress(OSError):
                request.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n"
                                b"Client sent an HTTP request to an HTTPS server.\n")
            return
        request.settimeout(None)
        super().finish_request(request, client_address)


# ---------------------------------------------------------------- the token server


def libtrust_key_id(public_key):
    """docker/libtrust's keyIDFromCryptoKey: sha256 of the DER SubjectPublicKeyInfo, first 240
    bits, base32, in 12 groups of 4 joined by ':'. distribution 2.8 finds a token's signing key
    among its rootcertbundle's by this `kid`."""
    from cryptography.hazmat.primitives import serialization
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    s = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def glob_match(pattern, name):
    return re.fullmatch("".join(".*" if c == "*" else re.escape(c) for c in pattern), name) is not None


class TokenServer:
    """A Docker token server (distribution's token spec, docs/spec/auth/token.md and oauth.md).

    `users`: {name: password}. `grants`: {user or None (anonymous): {repository glob: "pull,push"}};
    a token grants, per requested scope, the requested actions the user has. `GET /token`
    authenticates with basic credentials (wrong ones: 401 `{"details": "incorrect username or
    password"}`, as Docker Hub answers) and, with `offline_token=true`, adds a refresh token;
    `POST /token` takes `grant_type=password` or `grant_type=refresh_token` (what the docker
    daemon sends once `docker login` stored an identity token). Every request is recorded in
    `requests` (method, grant, user, scopes, granted access, status) for tests to assert on.
    """

    def __init__(self, dir_, users, grants, service, issuer="wharf-test-token-issuer",
                 refresh_tokens=True, ttl=300):
        self.dir = Path(dir_)
        self.users = dict(users)
        self.grants = grants
        self.service = service
        self.issuer = issuer
        self.refresh_tokens = refresh_tokens
        self.ttl = ttl
        self.requests = []
        self.refresh = {}  # refresh token -> user
        self._lock = threading.Lock()
        self.server = None
        self.cert_path = self.dir / "token-signer.crt"

    def start(self):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = libtrust_key_id(self.key.public_key())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.issuer)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .sign(self.key, hashes.SHA256()))
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                owner._handle(self, "GET")

            def do_POST(self):
                owner._handle(self, "POST")

        self.server = LocalHTTPServer(Handler)
        self.port = self.server.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True,
                         name=f"token-server-{self.port}").start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # -- tokens

    def allowed(self, user, type_, name):
        if type_ == "registry":
            return {"*"} if user == ADMIN else set()
        out = set()
        for pattern, actions in (self.grants.get(user) or {}).items():
            if glob_match(pattern, name):
                out |= {a.strip() for a in actions.split(",") if a.strip()}
        if "*" in out:
            out |= {"pull", "push", "delete"}
        return out

    def access(self, user, scopes):
        """The token's access claim: per (type, name) asked for, the asked actions the user has
        (several scopes of one repository merge into one entry)."""
        out = {}
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            type_, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            have = self.allowed(user, type_, name)
            entry = out.setdefault((type_, name), [])
            entry += [a for a in actions if (a in have or (a == "*" and "*" in have)) and a not in entry]
        return [{"type": t, "name": n, "actions": a} for (t, n), a in out.items() if a]

    def sign(self, claims):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        header = {"typ": "JWT", "alg": "ES256", "kid": self.kid}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def issue(self, user, scopes):
        """A signed token for `user` (None: anonymous) with the access it has of `scopes`."""
        now = int(time.time())
        access = self.access(user, scopes)
        claims = {"iss": self.issuer, "sub": user or "", "aud": self.service, "exp": now + self.ttl,
                  "nbf": now - 10, "iat": now, "jti": secrets.token_hex(16), "access": access}
        return self.sign(claims), access

    # -- HTTP

    def _reply(self, h, status, body):
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _check_password(self, user, password):
        return user in self.users and secrets.compare_digest(self.users[user], password)

    def _handle(self, h, method):
        url = urllib.parse.urlsplit(h.path)
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        record = {"method": method, "path": url.path, "user": None, "grant_type": None,
                  "service": None, "scopes": [], "access": None, "status": None,
                  "refresh_token_issued": False}
        try:
            status, body = self._answer(h, method, url, q, record)
        except Exception as e:  # the test sees a 500 and the record, not a hung client
            status, body = 500, {"details": f"token server error: {e}"}
        record["status"] = status
        with self._lock:
            self.requests.append(record)
        self._reply(h, status, body)

    def _answer(self, h, method, url, q, record):
        if url.path != "/token":
            return 404, {"details": "not found"}
        if method == "GET":
            record["grant_type"] = "basic" if h.headers.get("Authorization") else "anonymous"
            record["service"] = (q.get("service") or [""])[0]
            record["scopes"] = q.get("scope", [])
            user = None
            auth = h.headers.get("Authorization", "")
            if auth.lower().startswith("basic "):
                try:
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                except ValueError:
                    return 400, {"details": "malformed basic credentials"}
                if not self._check_password(u, p):
                    return 401, {"details": "incorrect username or password"}
                user = u
            record["user"] = user
            offline = (q.get("offline_token") or [""])[0] == "true"
            return 200, self._token_body(user, record, offline and user is not None)
        # POST: OAuth2 form (what the docker daemon sends with a refresh token)
        length = int(h.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(h.rfile.read(length).decode(), keep_blank_values=True)
        grant = (form.get("grant_type") or [""])[0]
        record["grant_type"] = grant
        record["service"] = (form.get("service") or [""])[0]
        record["scopes"] = " ".join(form.get("scope", [])).split()
        if grant == "password":
            u, p = (form.get("username") or [""])[0], (form.get("password") or [""])[0]
            if not self._check_password(u, p):
                return 401, {"details": "incorrect username or password"}
            user = u
            offline = (form.get("access_type") or [""])[0] == "offline"
        elif grant == "refresh_token":
            rt = (form.get("refresh_token") or [""])[0]
            with self._lock:
                user = self.refresh.get(rt)
            if user is None:
                return 401, {"error": "invalid_grant", "details": "unknown refresh token"}
            offline = False  # the client keeps the refresh token it has
        else:
            return 400, {"error": "unsupported_grant_type"}
        record["user"] = user
        return 200, self._token_body(user, record, offline)

    def _token_body(self, user, record, offline):
        token, access = self.issue(user, record["scopes"])
        record["access"] = access
        body = {"token": token, "access_token": token, "expires_in": self.ttl,
                "issued_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        if offline and self.refresh_tokens:
            rt = secrets.token_urlsafe(24)
            with self._lock:
                self.refresh[rt] = user
            body["refresh_token"] = rt
            record["refresh_token_issued"] = True
        return body


# ---------------------------------------------------------------- the registry


class OnLoopback:
    """What a registry (or a proxy before one) on 127.0.0.1 is named by, once its `port` is
    known."""

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def ref(self, repo, tag=None, digest=None):
        """`127.0.0.1:<port>/<repo>[:tag][@digest]`."""
        r = f"{self.host}/{repo}"
        if tag:
            r += f":{tag}"
        if digest:
            r += f"@{digest}"
        return r


class Registry(OnLoopback):
    """docker-registry 2.8 on 127.0.0.1 with a root, config and log in `dir`.

    mode "open": anyone pulls and pushes. "htpasswd": basic auth; `users` {name: password}
    (default: USER and PULLER; htpasswd has no per-repository rights, so every user pulls and
    pushes). "token": bearer tokens from `self.token_server`, with `users` and `grants` as
    TokenServer takes them (default: USER pulls and pushes everything, PULLER pulls
    everything, anonymous nothing).

    `host` is `127.0.0.1:<port>`, what image references start with; `creds` the (user,
    password) of USER, or None in open mode; `client(creds)` a RegistryClient; `admin` one with
    every right.
    """

    def __init__(self, name, mode="open", users=None, grants=None, refresh_tokens=True):
        if mode not in ("open", "htpasswd", "token"):
            raise ValueError(f"registry mode {mode!r}: open, htpasswd or token")
        self.name = name
        self.mode = mode
        self.dir = Path("/tmp") / f"wharf-test-{name}-{os.getpid()}"
        self.users = dict(users if users is not None else {USER: PASSWORD, PULLER: PULLER_PASSWORD})
        self.grants = grants if grants is not None else {
            USER: {"*": "pull,push"}, PULLER: {"*": "pull"}}
        self.refresh_tokens = refresh_tokens
        self.service = f"wharf-test-registry-{name}"
        self.proc = None
        self.token_server = None
        self.port = None
        self.log = self.dir / "registry.log"

    @property
    def url(self):
        return f"http://{self.host}"

    @property
    def creds(self):
        return None if self.mode == "open" else (USER, self.users.get(USER, PASSWORD))

    def start(self):
        for err in cleanup_stale(self.name):
            print(f"warning: stale cleanup: {err}")
        cleanup_dir(self.dir)
        self.dir.mkdir(parents=True)
        (self.dir / "owner").write_text(owner_stamp())
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.dir / "data")},
                        "delete": {"enabled": True}, "cache": {"blobdescriptor": "inmemory"}},
            # Port 0: the kernel picks one, the log says which (no race for a free port).
            "http": {"addr": "127.0.0.1:0", "secret": secrets.token_hex(16),
                     "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        users = dict(self.users)
        users[ADMIN] = ADMIN_PASSWORD
        if self.mode == "htpasswd":
            (self.dir / "htpasswd").write_text(
                "".join(f"{u}:{bcrypt_hash(p)}\n" for u, p in users.items()))
            config["auth"] = {"htpasswd": {"realm": "wharf-test-registry",
                                           "path": str(self.dir / "htpasswd")}}
        elif self.mode == "token":
            grants = dict(self.grants)
            grants[ADMIN] = {"*": "*"}
            # The certificate must exist before the registry starts: it reads it once.
            self.token_server = TokenServer(self.dir, users, grants, self.service,
                                            refresh_tokens=self.refresh_tokens).start()
            config["auth"] = {"token": {"realm": self.token_server.realm, "service": self.service,
                                        "issuer": self.token_server.issuer,
                                        "rootcertbundle": str(self.token_server.cert_path)}}
        # JSON is YAML: the registry reads this file as its YAML config.
        (self.dir / "config.yml").write_text(json.dumps(config, indent=1))
        log = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen([str(REGISTRY_BIN), "serve", str(self.dir / "config.yml")],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        finally:
            log.close()
        (self.dir / "registry.pid").write_text(str(self.proc.pid))

        def listening():
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited ({self.proc.returncode}):\n{self.log_tail()}")
            m = re.search(r'listening on 127\.0\.0\.1:(\d+)', self.log.read_text(errors="replace"))
            return int(m.group(1)) if m else None

        self.port = wait_for(listening, START_TIMEOUT, f"docker-registry to listen ({self.log})")

        def answers():
            try:
                return http_request("127.0.0.1", self.port, "GET", "/v2/")[0] in (200, 401)
            except OSError:
                return False

        wait_for(answers, START_TIMEOUT, "docker-registry to answer GET /v2/")
        self.admin = self.client((ADMIN, ADMIN_PASSWORD))
        return self

    def client(self, creds=None):
        return RegistryClient("127.0.0.1", self.port, creds)

    def log_tail(self, lines=30):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"<cannot read {self.log}: {e}>"

    def access_log(self):
        """The registry's access-log lines (`"GET /v2/... HTTP/1.1" 200 ...`)."""
        try:
            return [line for line in self.log.read_text(errors="replace").splitlines()
                    if '"GET ' in line or '"HEAD ' in line or '"PUT ' in line
                    or '"POST ' in line or '"PATCH ' in line or '"DELETE ' in line]
        except OSError:
            return []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()
        self.proc = None
        if self.token_server:
            self.token_server.stop()

    def cleanup(self):
        self.stop()
        return cleanup_dir(self.dir)

    # -- reading it back (as the admin)

    def manifest(self, repo, reference, accept=None):
        """(media type, digest, bytes) of a manifest, or None when the registry has none."""
        status, hdrs, body = self.admin.request(
            "GET", f"/v2/{repo}/manifests/{reference}",
            {"Accept": ", ".join(accept or ALL_MANIFEST_TYPES)}, scope=f"repository:{repo}:pull")
        if status == 404:
            return None
        assert status == 200, f"GET manifest {repo}:{reference}: {status} {body[:300]!r}"
        return hdrs.get("content-type"), hdrs.get("docker-content-digest"), body

    def blob(self, repo, digest):
        status, _, body = self.admin.request("GET", f"/v2/{repo}/blobs/{digest}",
                                             scope=f"repository:{repo}:pull")
        if status == 404:
            return None
        assert status == 200, f"GET blob {repo}@{digest}: {status} {body[:300]!r}"
        return body

    def has_blob(self, repo, digest):
        status, _, _ = self.admin.request("HEAD", f"/v2/{repo}/blobs/{digest}",
                                          scope=f"repository:{repo}:pull")
        return status == 200

    def tags(self, repo):
        status, _, body = self.admin.request("GET", f"/v2/{repo}/tags/list",
                                             scope=f"repository:{repo}:pull")
        if status == 404:
            return []
        assert status == 200, body
        return sorted(json.loads(body).get("tags") or [])

    def catalog(self):
        status, _, body = self.admin.request("GET", "/v2/_catalog", scope="registry:catalog:*")
        assert status == 200, body
        return sorted(json.loads(body).get("repositories") or [])


# ---------------------------------------------------------------- images


def tar_bytes(entries):
    """A deterministic tar (GNU, numeric owner 0, fixed mtime) of `entries`: [(path, data)]
    where data is bytes (a file, 0644; (bytes, mode) for another mode), None (a directory) or
    ("symlink", target). Parent directories are added before their children."""
    buf = io.BytesIO()
    seen = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        def add_dir(path):
            if not path or path in seen:
                return
            add_dir(os.path.dirname(path))
            seen.add(path)
            ti = tarfile.TarInfo(path)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, FIXED_MTIME
            t.addfile(ti)

        for path, data in entries:
            path = path.strip("/")
            add_dir(os.path.dirname(path))
            ti = tarfile.TarInfo(path)
            ti.mtime = FIXED_MTIME
            if data is None:
                if path in seen:
                    continue
                seen.add(path)
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            elif isinstance(data, tuple) and data[0] == "symlink":
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, data[1], 0o777
                t.addfile(ti)
            else:
                content, mode = data if isinstance(data, tuple) else (data, 0o644)
                ti.size, ti.mode = len(content), mode
                t.addfile(ti, io.BytesIO(content))
    return buf.getvalue()


_BUSYBOX_TAR = None
_BUSYBOX_LOCK = threading.Lock()


def busybox_rootfs_tar():
    """scripts/mk-busybox-tar.sh's rootfs (the host's static busybox), made once a process."""
    global _BUSYBOX_TAR
    with _BUSYBOX_LOCK:
        if _BUSYBOX_TAR is None:
            d = Path(f"/tmp/wharf-test-busybox-tar-{os.getpid()}")
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
            try:
                subprocess.run(["sh", str(REPO / "scripts" / "mk-busybox-tar.sh"), str(d / "bb.tar")],
                               check=True, timeout=120)
                _BUSYBOX_TAR = (d / "bb.tar").read_bytes()
            finally:
                shutil.rmtree(d, ignore_errors=True)
        return _BUSYBOX_TAR


def busybox_tar(salt=None):
    """The busybox rootfs; with `salt`, plus /etc/wharf-test-salt holding it, so that each test's
    base layer has a digest of its own (a layer another test pulled would otherwise show as
    "Already exists")."""
    base = busybox_rootfs_tar()
    if salt is None:
        return base
    src = tarfile.open(fileobj=io.BytesIO(base))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as out:
        for m in src.getmembers():
            out.addfile(m, src.extractfile(m) if m.isfile() else None)
        ti = tarfile.TarInfo("etc/wharf-test-salt")
        data = f"{salt}\n".encode()
        ti.size, ti.mode, ti.mtime = len(data), 0o644, FIXED_MTIME
        out.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def random_tar(size, seed, path="random.bin"):
    """A tar holding one file of `size` pseudo-random (incompressible) bytes from `seed`."""
    return tar_bytes([(path, random.Random(seed).randbytes(size))])


@dataclass
class Layer:
    """One layer: its tar (`diff_id` = its digest) and the blob that carries it."""
    tar: bytes
    blob: bytes
    media_type: str
    compression: str
    comment: str = ""

    @property
    def digest(self):
        return sha256(self.blob)

    @property
    def size(self):
        return len(self.blob)

    @property
    def diff_id(self):
        return sha256(self.tar)

    @property
    def short_id(self):
        """The ID docker's pull progress shows for it (12 hex of the blob digest)."""
        return short_id(self.digest)

    def descriptor(self):
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    def files(self):
        """{path: bytes} of the regular files in the layer's tar."""
        t = tarfile.open(fileobj=io.BytesIO(self.tar))
        return {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}


def compress(tar, compression="gzip", level=6):
    if compression == "gzip":
        return gzip.compress(tar, compresslevel=level, mtime=0)
    if compression == "zstd":
        if shutil.which("zstd") is None:
            pytest.skip("zstd layers need the zstd command: run scripts/install-deps.sh")
        return subprocess.run(["zstd", "-q", "-c", f"-{max(1, min(level, 19))}", "--no-check"],
                              input=tar, capture_output=True, check=True).stdout
    if compression == "none":
        return tar
    raise ValueError(f"compression {compression!r}: gzip, zstd or none")


def layer(tar, compression="gzip", level=6, comment=""):
    """A Layer from a tar. OCI media types (skopeo -f v2s2 turns gzip ones into Docker's)."""
    mt = MT_OCI_LAYER + {"gzip": "+gzip", "zstd": "+zstd", "none": ""}[compression]
    return Layer(tar=tar, blob=compress(tar, compression, level), media_type=mt,
                 compression=compression, comment=comment)


def canonical(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class Image:
    """An OCI image: config and manifest as bytes (their digests are what registries and
    Docker report: `digest` the manifest's, `id` the config's = Docker's image ID)."""
    layers: list
    config: dict
    config_bytes: bytes
    manifest: dict
    manifest_bytes: bytes
    platform: dict

    @property
    def digest(self):
        return sha256(self.manifest_bytes)

    @property
    def id(self):
        return sha256(self.config_bytes)

    @property
    def media_type(self):
        return MT_OCI_MANIFEST

    def blobs(self):
        """{digest: bytes} of the config and layers."""
        out = {self.id: self.config_bytes}
        for lay in self.layers:
            out[lay.digest] = lay.blob
        return out

    def descriptor(self):
        d = {"mediaType": MT_OCI_MANIFEST, "digest": self.digest, "size": len(self.manifest_bytes)}
        if self.platform:
            d["platform"] = dict(self.platform)
        return d


def make_image(layers, arch="amd64", variant=None, os_="linux", cmd=("sh",), env=None,
               labels=None, entrypoint=None, workdir=None):
    """An Image of `layers` (bottom first): a config with diff_ids and one history entry per
    layer, and an OCI manifest."""
    platform = {"architecture": arch, "os": os_}
    if variant:
        platform["variant"] = variant
    cfg = {"Env": list(env) if env is not None else [DEFAULT_PATH]}
    if cmd is not None:
        cfg["Cmd"] = list(cmd)
    if entrypoint is not None:
        cfg["Entrypoint"] = list(entrypoint)
    if labels:
        cfg["Labels"] = dict(labels)
    if workdir:
        cfg["WorkingDir"] = workdir
    config = {"created": CREATED, "architecture": arch, "os": os_, "config": cfg,
              "rootfs": {"type": "layers", "diff_ids": [lay.diff_id for lay in layers]},
              "history": [{"created": CREATED, "created_by": lay.comment or f"wharf test layer {i}"}
                          for i, lay in enumerate(layers)]}
    if variant:
        config["variant"] = variant
    config_bytes = canonical(config)
    manifest = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
                "config": {"mediaType": MT_OCI_CONFIG, "digest": sha256(config_bytes),
                           "size": len(config_bytes)},
                "layers": [lay.descriptor() for lay in layers]}
    return Image(layers=list(layers), config=config, config_bytes=config_bytes, manifest=manifest,
                 manifest_bytes=canonical(manifest), platform=platform)


@dataclass
class Index:
    """An OCI image index of `images` (each entry carries its image's platform)."""
    images: list
    index: dict
    index_bytes: bytes

    @property
    def digest(self):
        return sha256(self.index_bytes)

    @property
    def media_type(self):
        return MT_OCI_INDEX

    def for_platform(self, arch, variant=None):
        for img in self.images:
            if img.platform["architecture"] == arch and (variant is None or img.platform.get("variant") == variant):
                return img
        raise KeyError(f"no {arch}/{variant} image in the index")


def make_index(images):
    index = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX,
             "manifests": [img.descriptor() for img in images]}
    return Index(images=list(images), index=index, index_bytes=canonical(index))


def write_oci_layout(obj, dir_, tag):
    """Writes an Image or Index into an OCI image layout at `dir_` (created or added to), with
    `tag` as its ref name; returns dir_."""
    dir_ = Path(dir_)
    blobs = dir_ / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (dir_ / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(data):
        p = blobs / hashlib.sha256(data).hexdigest()
        if not p.exists():
            p.write_bytes(data)

    images = obj.images if isinstance(obj, Index) else [obj]
    for img in images:
        for data in img.blobs().values():
            put(data)
        put(img.manifest_bytes)
    if isinstance(obj, Index):
        put(obj.index_bytes)
        desc = {"mediaType": MT_OCI_INDEX, "digest": obj.digest, "size": len(obj.index_bytes)}
    else:
        desc = {"mediaType": MT_OCI_MANIFEST, "digest": obj.digest, "size": len(obj.manifest_bytes)}
    desc["annotations"] = {"org.opencontainers.image.ref.name": tag}
    index_path = dir_ / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"schemaVersion": 2, "manifests": []}
    index["manifests"] = [m for m in index["manifests"]
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    index["manifests"].append(desc)
    index_path.write_text(json.dumps(index))
    return dir_


# ---------------------------------------------------------------- skopeo


def skopeo(args, workdir, timeout=SKOPEO_TIMEOUT, check=True):
    """Runs `skopeo --insecure-policy ARGS` with no credentials but those given on the command
    line (an auth file of its own, no ~/.docker) and its temporary files in `workdir`."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "REGISTRY_AUTH"))}
    env["REGISTRY_AUTH_FILE"] = str(workdir / "skopeo-auth.json")
    env["DOCKER_CONFIG"] = str(workdir / "skopeo-docker-config")
    env["TMPDIR"] = str(workdir)
    r = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True,
                       env=env, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} exited {r.returncode}\n"
                             f"stdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def creds_args(flag, creds):
    return [f"--{flag}-creds", f"{creds[0]}:{creds[1]}"] if creds else []


@dataclass
class Pushed:
    """What a push left in a registry: the reference, the manifest (or index) digest the
    registry answers for it, its media type and bytes."""
    ref: str
    digest: str
    media_type: str
    manifest_bytes: bytes

    @property
    def manifest(self):
        return json.loads(self.manifest_bytes)


def skopeo_push(obj, registry, repo, tag, workdir, creds=None, format=None):
    """Pushes an Image or Index to `registry` as repo:tag with `skopeo copy`: an index with
    `--all` (every platform), `format="v2s2"` converts to Docker schema2 (gzip layers only).
    Returns a Pushed, read back from the registry."""
    workdir = Path(workdir)
    layout = workdir / "layouts" / short_id(obj.digest)
    write_oci_layout(obj, layout, tag)
    ref = registry.ref(repo, tag)
    args = ["copy", "--dest-tls-verify=false", *creds_args("dest", creds),
            "--digestfile", str(workdir / "digest")]
    if isinstance(obj, Index):
        args.append("--all")
    if format:
        args += ["-f", format]
    skopeo([*args, f"oci:{layout}:{tag}", f"docker://{ref}"], workdir)
    digest = (workdir / "digest").read_text().strip()
    got = registry.manifest(repo, tag)
    assert got is not None and got[1] == digest, f"{ref}: skopeo said {digest}, registry has {got}"
    if format is None:
        assert digest == obj.digest, f"{ref}: pushed {digest}, built {obj.digest}"
    return Pushed(ref=ref, digest=digest, media_type=got[0], manifest_bytes=got[2])


def skopeo_inspect(ref, workdir, creds=None, raw=False, config=False):
    """`skopeo inspect` of docker://ref: its JSON, or the manifest's (raw) or config's
    (config) bytes as the registry has them."""
    args = ["inspect", "--tls-verify=false"]
    if creds:
        args += ["--creds", f"{creds[0]}:{creds[1]}"]
    if raw or config:
        args.append("--raw")  # with --config: the config blob as it is, not re-indented
    if config:
        args.append("--config")
    r = skopeo([*args, f"docker://{ref}"], workdir)
    return r.stdout.encode() if raw or config else json.loads(r.stdout)


def skopeo_copy_to_dir(ref, dest, workdir, creds=None):
    """`skopeo copy docker://ref dir:dest` (skopeo verifies every blob's digest); returns dest."""
    skopeo(["copy", "--src-tls-verify=false", *creds_args("src", creds),
            f"docker://{ref}", f"dir:{dest}"], workdir)
    return Path(dest)


# ---------------------------------------------------------------- the cutting proxy


def _read_head(sock, buf):
    """(head bytes including the blank line, rest) or (None, buf) at EOF."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


def _parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return first, headers


class _Closed(Exception):
    pass


def _recv_exact(sock, buf, n):
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise _Closed()
        buf += chunk
    return buf[:n], buf[n:]


def _relay_chunked(src, buf, dst):
    """Copies a chunked body from src to dst as it is; returns what src sent beyond it."""
    while True:
        while b"\r\n" not in buf:
            chunk = src.recv(65536)
            if not chunk:
                raise _Closed()
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        size = int(line.split(b";")[0].strip() or b"0", 16)
        dst.sendall(line + b"\r\n")
        if size == 0:
            while True:  # trailers, then the blank line
                while b"\r\n" not in buf:
                    chunk = src.recv(65536)
                    if not chunk:
                        raise _Closed()
                    buf += chunk
                t, buf = buf.split(b"\r\n", 1)
                dst.sendall(t + b"\r\n")
                if not t:
                    return buf
        data, buf = _recv_exact(src, buf, size + 2)
        dst.sendall(data)


BLOB_PATH = re.compile(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$")


class CuttingProxy(OnLoopback):
    """An HTTP/1.1 proxy on 127.0.0.1 in front of `upstream` (host, port) that passes every
    request and response through unchanged, except that the response to a GET of blob
    `cut_digest` is cut (connection closed, after the bytes before it were sent) once its
    position in the blob reaches `at` of the blob's size, `cuts` times in all.

    It counts, per blob digest: `served` (body bytes of blob GET responses sent), `ranges`
    (the Range header of every blob GET, None without one), and `served_at_cut` (what had been
    served of it when it was cut). `reserved(digest)` is what was served after the cut: the
    bytes a resumed download fetched again or for the first time. `requests` lists
    (method, path with query, Range, status) of everything that went through; `uploads()` and
    `mounts()` read pushes from it."""

    def __init__(self, upstream, cut_digest=None, at=0.9, cuts=1):
        self.upstream = upstream
        self.cut_digest = cut_digest
        self.at = at
        self.cuts_left = cuts
        self.cuts_done = 0
        self.served = {}
        self.served_at_cut = {}
        self.ranges = {}
        self.requests = []
        self.lock = threading.Lock()
        self.sock = None
        self.conns = set()
        self.stopping = False

    def uploads(self, since=0):
        """[(repository, digest)] of the blob uploads completed (PUT .../blobs/uploads/...?digest=)
        from request number `since` on."""
        out = []
        with self.lock:
            reqs = self.requests[since:]
        for method, target, _, status in reqs:
            url = urllib.parse.urlsplit(target)
            m = re.match(r"^/v2/(.+)/blobs/uploads/", url.path)
            if method == "PUT" and m and status == 201:
                out.append((m.group(1), urllib.parse.parse_qs(url.query).get("digest", [""])[0]))
        return out

    def mounts(self, since=0):
        """[(repository, digest, from)] of the cross-repository mounts the registry did (201)."""
        out = []
        with self.lock:
            reqs = self.requests[since:]
        for method, target, _, status in reqs:
            url = urllib.parse.urlsplit(target)
            m = re.match(r"^/v2/(.+)/blobs/uploads/$", url.path)
            q = urllib.parse.parse_qs(url.query)
            if method == "POST" and m and "mount" in q and status == 201:
                out.append((m.group(1), q["mount"][0], q.get("from", [""])[0]))
        return out

    def reserved(self, digest):
        with self.lock:
            return self.served.get(digest, 0) - self.served_at_cut.get(digest, 0)

    def start(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True, name=f"cutting-proxy-{self.port}").start()
        return self

    def stop(self):
        self.stopping = True
        if self.sock:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def _accept(self):
        while not self.stopping:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        upstream = None
        try:
            upstream = socket.create_connection(self.upstream, timeout=300)
            client.settimeout(300)
            with self.lock:
                self.conns |= {client, upstream}
            cbuf, ubuf = client.recv(65536), b""
            if cbuf[:1] == b"\x16":
                # A TLS ClientHello (a client trying https first, as docker does for an
                # insecure registry): answer as Go's HTTP server does, so it falls back to
                # plain HTTP at once instead of waiting out its handshake timeout.
                client.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n"
                               b"Client sent an HTTP request to an HTTPS server.\n")
                return
            while True:
                head, cbuf = _read_head(client, cbuf)
                if head is None:
                    return
                first, headers = _parse_head(head)
                method, target = first.split(" ")[0], first.split(" ")[1]
                upstream.sendall(head)
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    cbuf = _relay_chunked(client, cbuf, upstream)
                elif int(headers.get("content-length") or 0):
                    body, cbuf = _recv_exact(client, cbuf, int(headers["content-length"]))
                    upstream.sendall(body)
                rhead, ubuf = _read_head(upstream, ubuf)
                if rhead is None:
                    return
                rfirst, rheaders = _parse_head(rhead)
                status = int(rfirst.split(" ")[1])
                path = urllib.parse.urlsplit(target).path
                m = BLOB_PATH.match(path) if method == "GET" else None
                digest = m.group(2) if m and status in (200, 206) else None
                with self.lock:
                    self.requests.append((method, target, headers.get("range"), status))
                    if m:
                        self.ranges.setdefault(m.group(2), []).append(headers.get("range"))
                client.sendall(rhead)
                if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                    continue
                if "chunked" in rheaders.get("transfer-encoding", "").lower():
                    ubuf = _relay_chunked(upstream, ubuf, client)
                    continue
                if "content-length" not in rheaders:  # until the upstream closes
                    client.sendall(ubuf)
                    while True:
                        chunk = upstream.recv(65536)
                        if not chunk:
                            return
                        client.sendall(chunk)
                n = int(rheaders["content-length"])
                if digest is None:
                    body, ubuf = _recv_exact(upstream, ubuf, n)
                    client.sendall(body)
                    continue
                if not self._relay_blob(upstream, client, ubuf, n, digest, rheaders):
                    return  # cut: both connections close
                ubuf = b""
        except (_Closed, OSError):
            return
        finally:
            for s in (client, upstream):
                if s is not None:
                    with self.lock:
                        self.conns.discard(s)
                    with contextlib.suppress(OSError):
                        s.close()

    def _relay_blob(self, upstream, client, buf, n, digest, rheaders):
        """Relays n body bytes of a blob, counting them; False when it cut the response."""
        start, total = 0, n
        m = re.match(r"bytes (\d+)-(\d+)/(\d+)", rheaders.get("content-range", ""))
        if m:
            start, total = int(m.group(1)), int(m.group(3))
        with self.lock:
            cut = digest == self.cut_digest and self.cuts_left > 0
        cut_at = int(total * self.at)
        pos, sent = start, 0
        while sent < n:
            if not buf:
                buf = upstream.recv(65536)
                if not buf:
                    raise _Closed()
            take = buf[: n - sent]
            if cut and pos + len(take) >= cut_at:
                take = take[: max(0, cut_at - pos)]
                client.sendall(take)
                with self.lock:
                    self.served[digest] = self.served.get(digest, 0) + len(take)
                    self.served_at_cut[digest] = self.served[digest]
                    self.cuts_left -= 1
                    self.cuts_done += 1
                # FIN after what was sent, so the client gets every byte before it (a close
                # with unread input would send RST, which can drop data in flight).
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_WR)
                return False
            client.sendall(take)
            with self.lock:
                self.served[digest] = self.served.get(digest, 0) + len(take)
            buf = buf[len(take):]
            sent += len(take)
            pos += len(take)
        return True


# ---------------------------------------------------------------- the fake registry


class FakeRegistry(OnLoopback):
    """A registry from memory (http.server on 127.0.0.1), no auth: `manifests` {(repo,
    reference): (media type, bytes)} and `blobs` {digest: bytes}. `serve_instead(digest, data)`
    makes GET/HEAD of that blob answer `data`, whatever its digest: what a broken or malicious
    registry does. Supports Range. `requests` lists (method, path with query, Range, status)."""

    def __init__(self):
        self.manifests = {}
        self.blobs = {}
        self.instead = {}
        self.requests = []
        self.lock = threading.Lock()
        self.server = None

    def add(self, obj, repo, tag):
        """Serves an Image or Index as repo:tag (and by digest)."""
        images = obj.images if isinstance(obj, Index) else [obj]
        for img in images:
            self.blobs.update(img.blobs())
            self.manifests[(repo, img.digest)] = (MT_OCI_MANIFEST, img.manifest_bytes)
        data = obj.index_bytes if isinstance(obj, Index) else obj.manifest_bytes
        for reference in (tag, obj.digest):
            self.manifests[(repo, reference)] = (obj.media_type, data)
        return self

    def serve_instead(self, digest, data):
        self.instead[digest] = data
        return self

    def start(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                owner._handle(self, body=True)

            def do_HEAD(self):
                owner._handle(self, body=False)

        self.server = LocalHTTPServer(Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True,
                         name=f"fake-registry-{self.port}").start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def _send(self, h, status, headers, data, body):
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Docker-Distribution-API-Version", "registry/2.0")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if body:
            h.wfile.write(data)
        with self.lock:
            self.requests.append((h.command, h.path, h.headers.get("Range"), status))

    def _error(self, h, status, code, message, body):
        data = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
        self._send(h, status, {"Content-Type": "application/json"}, data, body)

    def _handle(self, h, body):
        path = urllib.parse.urlsplit(h.path).path
        if path in ("/v2", "/v2/"):
            return self._send(h, 200, {"Content-Type": "application/json"}, b"{}", body)
        m = re.match(r"^/v2/(.+)/manifests/([^/]+)$", path)
        if m:
            found = self.manifests.get((m.group(1), m.group(2)))
            if not found:
                return self._error(h, 404, "MANIFEST_UNKNOWN", "manifest unknown", body)
            mt, data = found
            return self._send(h, 200, {"Content-Type": mt, "Docker-Content-Digest": sha256(data)}, data, body)
        m = BLOB_PATH.match(path)
        if m:
            digest = m.group(2)
            data = self.instead.get(digest, self.blobs.get(digest))
            if data is None:
                return self._error(h, 404, "BLOB_UNKNOWN", "blob unknown to registry", body)
            headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest,
                       "Accept-Ranges": "bytes"}
            rng = re.match(r"bytes=(\d+)-(\d*)$", h.headers.get("Range") or "")
            if rng and int(rng.group(1)) < len(data):
                a = int(rng.group(1))
                b = int(rng.group(2)) if rng.group(2) else len(data) - 1
                headers["Content-Range"] = f"bytes {a}-{b}/{len(data)}"
                return self._send(h, 206, headers, data[a:b + 1], body)
            return self._send(h, 200, headers, data, body)
        return self._error(h, 404, "NAME_UNKNOWN", "repository name not known to registry", body)


def corrupted_like(lay, seed="corrupt"):
    """Bytes as long as `lay`'s blob, with another digest. When `lay` is a stored (level 0) gzip
    layer: a valid gzip of a different tar of the same shape (every file's bytes replaced by
    random ones), so that only a digest check, not a failing decompression, can tell.
    Otherwise the blob with 64 bytes flipped in its middle."""
    if lay.compression == "gzip":
        rng = random.Random(seed)
        src = tarfile.open(fileobj=io.BytesIO(lay.tar))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as out:
            for m in src.getmembers():
                out.addfile(m, io.BytesIO(rng.randbytes(m.size)) if m.isfile() else None)
        data = gzip.compress(buf.getvalue(), compresslevel=0, mtime=0)
        if len(data) == lay.size and data != lay.blob:
            return data
    data = bytearray(lay.blob)
    mid = len(data) // 2
    for i in range(mid, min(mid + 64, len(data))):
        data[i] ^= 0xFF
    return bytes(data)


# ---------------------------------------------------------------- pytest fixtures


class Registries:
    """The `registries` fixture: starts registries, proxies and fake registries named after the
    test (`reg-<test>-<n>`), and stops and removes them all at teardown."""

    def __init__(self, slug):
        self.slug = slug
        self.started = []
        self.n = 0

    def start(self, mode="open", **kw):
        """A started Registry (mode "open", "htpasswd" or "token"; kw as Registry takes)."""
        self.n += 1
        reg = Registry(f"reg-{self.slug}-{self.n}", mode, **kw)
        self.started.append(reg)
        return reg.start()

    def proxy(self, registry, cut_digest=None, at=0.9, cuts=1):
        """A started CuttingProxy in front of `registry`."""
        p = CuttingProxy(("127.0.0.1", registry.port), cut_digest, at, cuts)
        self.started.append(p)
        return p.start()

    def fake(self):
        """A started, empty FakeRegistry."""
        f = FakeRegistry()
        self.started.append(f)
        return f.start()

    def cleanup(self):
        errors = []
        for obj in reversed(self.started):
            try:
                if isinstance(obj, Registry):
                    errors += obj.cleanup()
                else:
                    obj.stop()
            except Exception as e:  # keep cleaning the others
                errors.append(f"{obj}: {e}")
        return errors


class Images:
    """The `images` fixture: builds images whose layers are the test's own (the busybox base is
    salted with the test's name), writes them as OCI layouts and pushes them with skopeo, all
    in the test's temporary directory."""

    def __init__(self, slug, workdir):
        self.slug = slug
        self.workdir = Path(workdir)
        self.n = 0

    def seed(self):
        self.n += 1
        return f"{self.slug}-{self.n}"

    def base_layer(self, compression="gzip"):
        return layer(busybox_tar(salt=self.slug), compression, comment="busybox rootfs")

    def marker_layer(self, text, path="etc/marker", compression="gzip"):
        return layer(tar_bytes([(path, f"{text}\n".encode())]), compression,
                     comment=f"marker {text}")

    def random_layer(self, size, compression="gzip", level=1):
        """A layer with one file of `size` random bytes (incompressible: the blob is a little
        bigger than `size`)."""
        seed = self.seed()
        return layer(random_tar(size, seed, f"random/{seed}.bin"), compression, level,
                     comment=f"random {size} bytes")

    def busybox(self, marker=None, layers=(), arch="amd64", variant=None, base=None, **kw):
        """busybox (runs `sh`), then a layer with /etc/marker holding `marker` if given, then
        `layers`. `base` replaces the test's busybox base layer (to share one between images)."""
        ls = [base or self.base_layer()]
        if marker is not None:
            ls.append(self.marker_layer(marker))
        ls += list(layers)
        labels = dict(kw.pop("labels", None) or {})
        if marker is not None:
            labels.setdefault("wharf.test.marker", str(marker))
        return make_image(ls, arch=arch, variant=variant, labels=labels, **kw)

    def multiarch(self, marker="multi"):
        """An index of amd64 (runnable busybox, /etc/marker `<marker>-amd64`) and arm64 variant
        v8 (the same files, /etc/marker `<marker>-arm64`, Architecture arm64)."""
        base = self.base_layer()
        return make_index([
            self.busybox(marker=f"{marker}-amd64", base=base),
            self.busybox(marker=f"{marker}-arm64", base=base, arch="arm64", variant="v8"),
        ])

    def push(self, obj, registry, repo, tag, creds=None, format=None):
        """skopeo_push into `registry`."""
        return skopeo_push(obj, registry, repo, tag, self.workdir / "skopeo", creds=creds, format=format)

    def inspect(self, ref, creds=None, raw=False, config=False):
        return skopeo_inspect(ref, self.workdir / "skopeo", creds=creds, raw=raw, config=config)

    def copy_to_dir(self, ref, creds=None):
        self.n += 1
        return skopeo_copy_to_dir(ref, self.workdir / f"dir-{self.n}", self.workdir / "skopeo", creds)


@pytest.fixture
def registries(request):
    require_tools()
    r = Registries(slug_of(request))
    try:
        yield r
    finally:
        for e in r.cleanup():
            print(f"warning: registry cleanup: {e}")


@pytest.fixture
def images(request, tmp_path):
    require_tools()
    workdir = tmp_path / "images"
    try:
        yield Images(slug_of(request), workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # layouts and copies: megabytes a test
