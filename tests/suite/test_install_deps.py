"""`scripts/install-deps.sh --check` is the short form of the fresh-machine check (issue 11 item 2;
the full one is scripts/check-fresh-machine.sh, docs/fresh-machine.md): it reports every tool the
suite needs with its version, passes here, and fails naming a tool that is too old or missing.

The failing cases never touch the system: --check installs nothing, and they run it with a PATH
of symlinks to this machine's tools minus the ones under test, plus a fake `docker` that says it
is Debian 12's 20.10 or Debian 13's 26.1 (too old: the suite compares the wharf CLI with docker
28 byte for byte).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "install-deps.sh"
TIMEOUT = 120
# Every tool the report must list (scripts/install-deps.sh's `need` lines).
TOOLS = ["cargo", "rustc", "rustfmt", "clippy", "cc", "libseccomp", "sqlite3", "docker",
         "docker-compose", "python3", "docker-py", "pytest", "tmux", "busybox-static",
         "cryptography", "skopeo", "docker-registry", "zstd", "openssl", "setcap", "curl", "ps",
         "ip"]
VERSION = re.compile(r"[0-9]+(\.[0-9]+)+[a-z]?")


def check(path=None):
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run([str(SCRIPT), "--check"], capture_output=True, text=True, env=env,
                          timeout=TIMEOUT, check=False)


def rows(stdout):
    """{tool: (found, verdict)} from the report's `  tool  found  verdict` lines."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("  "):
            tool, found, verdict = line.split(None, 2)
            out[tool] = (found, verdict)
    return out


def test_check_reports_every_tool_with_a_version():
    r = check()
    assert r.returncode == 0, r.stdout + r.stderr
    report = rows(r.stdout)
    assert sorted(report) == sorted(TOOLS), r.stdout
    for tool, (found, verdict) in report.items():
        assert VERSION.fullmatch(found), f"{tool}: {found!r}\n{r.stdout}"
        assert re.match(r"(>= \S+ )?ok\b", verdict), f"{tool}: {verdict!r}\n{r.stdout}"
    assert "FAILED" not in r.stderr, r.stderr


@pytest.fixture
def path_without(tmp_path):
    """Makes a PATH directory holding this PATH's commands except the named ones, as symlinks
    (the first of each name wins, as in a PATH lookup); returns its path."""
    def make(*left_out):
        d = tmp_path / "bin"
        d.mkdir()
        for entry in os.environ["PATH"].split(os.pathsep):
            if not os.path.isdir(entry):
                continue
            for name in os.listdir(entry):
                src = os.path.join(entry, name)
                dst = d / name
                if name in left_out or dst.is_symlink() or not os.access(src, os.X_OK) \
                        or os.path.isdir(src):
                    continue
                dst.symlink_to(src)
        return d
    return make


def fake_docker(bindir, version_line):
    docker = bindir / "docker"
    docker.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    docker.chmod(0o755)


@pytest.mark.parametrize("version_line,version", [
    ("Docker version 20.10.24+dfsg1, build 297e128", "20.10.24"),
    ("Docker version 26.1.5+dfsg1, build a72d7cd", "26.1.5"),
])
def test_check_fails_naming_an_old_docker_and_a_missing_tmux(path_without, version_line, version):
    bindir = path_without("docker", "tmux")
    fake_docker(bindir, version_line)
    r = check(str(bindir))
    assert r.returncode == 1, r.stdout + r.stderr
    report = rows(r.stdout)
    assert report["docker"][0] == version, r.stdout
    assert report["docker"][1].startswith("TOO OLD: need >= 28"), r.stdout
    assert report["tmux"][0] == "missing", r.stdout
    failed = [line for line in r.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 2, r.stderr
    assert any(f"FAILED: docker {version} is too old: need >= 28 (" in f for f in failed), failed
    assert any(re.search(r"FAILED: tmux is missing \(.*apt-get install tmux", f) for f in failed)
    # Every other tool still reports its version: one problem does not hide another.
    for tool in set(TOOLS) - {"docker", "tmux"}:
        assert VERSION.fullmatch(report[tool][0]), f"{tool}\n{r.stdout}"


def test_check_fails_naming_a_missing_docker(path_without):
    bindir = path_without("docker")
    assert shutil.which("docker", path=str(bindir)) is None
    r = check(str(bindir))
    assert r.returncode == 1, r.stdout + r.stderr
    assert rows(r.stdout)["docker"][0] == "missing", r.stdout
    failed = [line for line in r.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and "FAILED: docker is missing (the docker CLI on PATH" in failed[0], \
        r.stderr
