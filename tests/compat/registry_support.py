"""What the pull and push tests (test_pull.py, test_push.py) share: Docker's words for pull,
push and login, each with the source line it comes from (moby v28.2.2 for the daemon, docker/cli
v28.2.2 for the CLI on PATH here, both mirrored at /work/.mirror), a docker CLI with a config
directory of the test's own, and readers of docker's output.

The CLI writes a message stream without a terminal as jsonmessage.Display does (moby
pkg/jsonmessage/jsonmessage.go:184-216): a message carrying a progress bar is dropped ("disable
progressbar in non-terminal"), any other is `<id>: <status>` or `<status>`. So a pull's stdout
holds the per-layer statuses without Downloading/Extracting, which the API stream tests check.
"""

import json
import os
import re
from pathlib import Path

from support import ok
from wharfd_harness import run_docker

# Per-layer statuses of a pull that the CLI prints without a terminal.
PULLING_FS_LAYER = "Pulling fs layer"       # distribution/xfer/download.go:166
WAITING = "Waiting"                         # distribution/xfer/download.go:247 (over --max-concurrent-downloads)
VERIFYING = "Verifying Checksum"            # distribution/pull_v2.go:260
DOWNLOAD_COMPLETE = "Download complete"     # distribution/pull_v2.go:278
PULL_COMPLETE = "Pull complete"             # distribution/xfer/download.go:367
ALREADY_EXISTS = "Already exists"           # distribution/xfer/download.go:138
RETRYING = re.compile(r"Retrying in \d+ seconds?")  # distribution/xfer/download.go (after a failed attempt)
# What a new layer says, in order, once Waiting and Retrying are left out.
NEW_LAYER = [PULLING_FS_LAYER, VERIFYING, DOWNLOAD_COMPLETE, PULL_COMPLETE]

# Push statuses (IDs are the layer's diff ID: distribution/push_v2.go:250-252).
PREPARING = "Preparing"                     # distribution/xfer/upload.go:74
PUSHED = "Pushed"                           # distribution/push_v2.go:453
LAYER_ALREADY_EXISTS = "Layer already exists"  # distribution/push_v2.go:266 and :555


def pulling_from(tag_or_ref, path):
    """`<tag>: Pulling from <path>` (distribution/pull_v2.go:387). By digest the ID is the whole
    reference (`tagOrDigest = digested.String()`, pull_v2.go:347); `path` is the repository
    path without the registry (the repository is named by its path, familiar form)."""
    return f"{tag_or_ref}: Pulling from {path}"


def digest_line(digest):
    return f"Digest: {digest}"                                   # distribution/pull_v2.go:416


def downloaded_newer(ref):
    return f"Status: Downloaded newer image for {ref}"          # distribution/pull_v2.go:137


def up_to_date(ref):
    return f"Status: Image is up to date for {ref}"             # distribution/pull_v2.go:139


def using_default_tag():
    return "Using default tag: latest"                          # cli/command/image/pull.go:77


def manifest_not_found(ref):
    """A registry's MANIFEST_UNKNOWN (`manifest unknown: manifest unknown`, errcode's
    `<code words>: <message>`), wrapped by distribution/errors.go:56-57; the CLI prefixes
    `Error response from daemon: ` (a 404 before the stream started, as in the capture
    ../shared/api/captures/48-pull-missing.txt)."""
    return f"Error response from daemon: manifest for {ref} not found: manifest unknown: manifest unknown"


def pull_access_denied(name):
    """A token without the scope: 401 with `error="insufficient_scope"`, which the registry
    client reads as DENIED (vendor/github.com/docker/distribution/registry/client/errors.go:
    123-147; errcode/register.go:52, `requested access to the resource is denied`), which distribution/errors.go:
    53-55 wraps. `name` is the familiar repository name (with the registry)."""
    return (f"Error response from daemon: pull access denied for {name}, repository does not exist "
            f"or may require 'docker login': denied: requested access to the resource is denied")


def no_basic_auth_credentials(host, repo, tag):
    """Pull from an htpasswd registry without credentials: the basic handler refuses to send a
    request (vendor/github.com/docker/distribution/registry/client/auth/session.go:21,
    ErrNoBasicAuthCredentials) on the tag's HEAD (registry/client/repository.go:320), Go's
    url.Error names the request, distribution/errors.go:114 leaves it as it is (errdefs.Unknown:
    500)."""
    return f'Error response from daemon: Head "http://{host}/v2/{repo}/manifests/{tag}": no basic auth credentials'


def login_failed_basic(host):
    """A wrong password at an htpasswd registry: registry/auth.go:97-99."""
    return f"Error response from daemon: login attempt to http://{host}/v2/ failed with status: 401 Unauthorized"


def login_failed_token(host, details):
    """A wrong password at a token server answering 401 `{"details": ...}`: the registry
    client's makeError (client/errors.go:95-98) gives `unauthorized: <details>`, the login's GET
    of /v2/ carries it as a url.Error, registry/auth.go:90-93 marks it Unauthorized (401)."""
    return f'Error response from daemon: Get "http://{host}/v2/": unauthorized: {details}'


LOGIN_SUCCEEDED = "Login Succeeded"                             # registry/service.go:105


def removing_login(host):
    return f"Removing login credentials for {host}"             # cli/command/registry/logout.go:64


def unable_to_find(ref):
    return f"Unable to find image '{ref}' locally"              # cli/command/container/create.go:348


def layer_verification_failed(digest):
    """A blob whose bytes are not its digest: distribution/pull_v2.go:262-263, not retried
    (xfer.DoNotRetry), sent mid-stream as errorDetail; the CLI prints the message alone."""
    return f"filesystem layer verification failed for digest {digest}"


def no_matching_manifest(platform):
    return f"no matching manifest for {platform} in the manifest list entries"  # distribution/pull_v2.go:802-810


def push_refers_to(name):
    return f"The push refers to repository [{name}]"            # distribution/push.go:31


def mounted_from(repo_path):
    return f"Mounted from {repo_path}"                          # distribution/push_v2.go:328


def pushed_digest_line(tag, digest, size):
    return f"{tag}: digest: {digest} size: {size}"              # distribution/push_v2.go:208


def no_such_local_image(name):
    return f"An image does not exist locally with the tag: {name}"  # distribution/push.go:35


DENIED = "denied: requested access to the resource is denied"  # errcode ErrorCodeDenied, as above


# ---------------------------------------------------------------- progress bars


def human_size(n):
    """go-units HumanSize (vendor/github.com/docker/go-units/size.go:59-66): decimal units,
    4 significant digits."""
    abbrs = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    size, i = float(n), 0
    while size >= 1000.0 and i < len(abbrs) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.4g}{abbrs[i]}"


def progress_bar(current, total):
    """JSONProgress.String() as the daemon renders it (pkg/jsonmessage/jsonmessage.go:54-115;
    no terminal, so 200 columns): the bar, then `%8v/%v` of the sizes; no time left once
    complete."""
    pct = min(int(current / total * 100) // 2, 50)
    bar = "[" + "=" * pct + ">" + " " * max(0, 50 - pct) + "] "
    cur = human_size(current)
    nums = f"{cur:>8}/{human_size(total)}" if current <= total else f"{cur:>8}"
    return bar + nums


# ---------------------------------------------------------------- the docker CLI


class DockerCli:
    """`docker` against the test daemon with a config directory of the test's own (logins stay
    in the test). Calls return CompletedProcess with str stdout/stderr."""

    def __init__(self, daemon, config_dir):
        self.daemon = daemon
        self.config_dir = Path(config_dir)
        self.config_dir.mkdir(parents=True, exist_ok=True)

    def env(self):
        e = self.daemon.env()
        e["DOCKER_CONFIG"] = str(self.config_dir)
        return e

    def __call__(self, *args, input=None, timeout=300):
        return run_docker(self.daemon, *args, input=input, timeout=timeout, env=self.env())

    def config_json(self):
        p = self.config_dir / "config.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def inspect(self, ref):
        """`docker image inspect` as a dict, or None when there is no such image."""
        r = self("image", "inspect", ref)
        if r.returncode != 0:
            assert "No such image" in r.stderr, r.stderr
            return None
        return json.loads(r.stdout)[0]

    def image_list(self):
        """Every image as (ID, repository, tag, digest) rows of `docker images -a --digests`."""
        r = ok(self("images", "-a", "--digests", "--no-trunc", "--format",
                    "{{.ID}} {{.Repository}} {{.Tag}} {{.Digest}}"))
        return sorted(tuple(line.split()) for line in r.stdout.splitlines() if line.strip())

    def containers(self):
        r = self("ps", "-aq", "--no-trunc")
        return set(r.stdout.split()) if r.returncode == 0 else set()


def remove_images_from(cli, hosts, containers_before=()):
    """Removes what a test left: its containers, then every image with a repository on one of
    `hosts` (the test's registries), so the next test pulls into a daemon without them."""
    for cid in sorted(cli.containers() - set(containers_before)):
        cli("rm", "-f", cid, timeout=60)
    # By reference, not by ID: an image the test tagged from another (busybox) keeps its
    # other names. Removing a tag may leave the image under its digest: a few rounds.
    prefixes = tuple(f"{h}/" for h in hosts)
    for _ in range(3):
        rows = [row for row in cli.image_list() if row[1].startswith(prefixes)]
        if not rows:
            return
        refs = sorted({f"{repo}:{tag}" if tag != "<none>" else f"{repo}@{digest}"
                       for _, repo, tag, digest in rows})
        r = cli("rmi", "-f", *refs, timeout=120)
        if r.returncode != 0:
            print(f"warning: rmi of the test's images: {r.stderr}")
    # Last resort: by ID, those that no other repository names.
    rows = cli.image_list()
    ours = {row[0] for row in rows if row[1].startswith(prefixes)}
    theirs = {row[0] for row in rows if not row[1].startswith(prefixes)}
    if ours - theirs:
        cli("rmi", "-f", *sorted(ours - theirs), timeout=120)
    left = [row for row in cli.image_list() if row[1].startswith(prefixes)]
    if left:
        print(f"warning: the test's images are still there: {left}")


# ---------------------------------------------------------------- reading pull output


LINE = re.compile(r"^([0-9a-f]{12}): (.+)$")


def layer_statuses(lines):
    """{short id: [statuses in order]} of `<12 hex>: <status>` lines; fails on any other line."""
    out = {}
    for line in lines:
        m = LINE.match(line)
        assert m, f"not a layer status line: {line!r}"
        out.setdefault(m.group(1), []).append(m.group(2))
    return out


def essential(statuses):
    return [s for s in statuses if s != WAITING and not RETRYING.fullmatch(s)]


def check_pull_output(r, first, digest, status_ref, printed_ref, new=(), existing=(),
                      default_tag=False):
    """A docker pull that downloaded something: its stdout is exactly Docker's, line by line:
    [`Using default tag: latest`], `first` (pulling_from(...)), the layer lines (each layer of
    `new` says Pulling fs layer, Verifying Checksum, Download complete, Pull complete, in that
    order, give or take Waiting and Retrying; each of `existing` says only Already exists;
    nothing else), `Digest:`, `Status: Downloaded newer image for <status_ref>`, and the
    reference the CLI was given (`printed_ref`, cli/command/image/pull.go:99)."""
    ok(r)
    lines = r.stdout.splitlines()
    head = ([using_default_tag()] if default_tag else []) + [first]
    tail = [digest_line(digest), downloaded_newer(status_ref), printed_ref]
    assert lines[:len(head)] == head, r.stdout
    assert lines[-3:] == tail, r.stdout
    statuses = layer_statuses(lines[len(head):-3])
    want = {lay.short_id for lay in new} | {lay.short_id for lay in existing}
    assert set(statuses) == want, f"layer lines for {sorted(statuses)}, expected {sorted(want)}\n{r.stdout}"
    for lay in new:
        assert essential(statuses[lay.short_id]) == NEW_LAYER, f"{lay.short_id}: {statuses[lay.short_id]}\n{r.stdout}"
    for lay in existing:
        assert statuses[lay.short_id] == [ALREADY_EXISTS], f"{lay.short_id}: {statuses[lay.short_id]}\n{r.stdout}"
    assert r.stderr == "", r.stderr


def check_up_to_date(r, first, digest, status_ref, printed_ref):
    """A second pull of what is there: no layer lines at all (the image's config is present, so
    no layer is looked at: distribution/pull_v2.go pullSchema2/pullOCI)."""
    ok(r)
    assert r.stdout.splitlines() == [first, digest_line(digest), up_to_date(status_ref), printed_ref], r.stdout
    assert r.stderr == "", r.stderr


def files_named(root, *hexes):
    """Paths under `root` whose name contains one of the given hex digests."""
    hexes = [h.split(":")[-1] for h in hexes]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            if any(h in n for h in hexes):
                found.append(os.path.join(dirpath, n))
    return found


# ---------------------------------------------------------------- reading push output


PUSH_DIGEST = re.compile(r"^(\S+): digest: (sha256:[0-9a-f]{64}) size: (\d+)$")


def check_push_output(r, name, tag, layers):
    """A docker push that worked: stdout is `The push refers to repository [<name>]`, then per
    layer (keyed by the 12 first hex digits of its diff ID) `Preparing` and then the status
    `layers` gives for it (Pushed, Layer already exists, Mounted from <repo>), give or take
    Waiting, then `<tag>: digest: <digest> size: <size>`. Returns (digest, size)."""
    ok(r)
    lines = r.stdout.splitlines()
    assert lines[0] == push_refers_to(name), r.stdout
    m = PUSH_DIGEST.match(lines[-1])
    assert m and m.group(1) == tag, r.stdout
    statuses = layer_statuses(lines[1:-1])
    assert set(statuses) == set(layers), f"layer lines for {sorted(statuses)}, expected {sorted(layers)}\n{r.stdout}"
    for short, final in layers.items():
        assert essential(statuses[short]) == [PREPARING, final], f"{short}: {statuses[short]}\n{r.stdout}"
    assert r.stderr == "", r.stderr
    return m.group(2), int(m.group(3))


def diff_short(diff_id):
    """The ID docker's push shows for a layer: its diff ID's (distribution/push_v2.go:250-252)."""
    return diff_id.split(":")[-1][:12]
