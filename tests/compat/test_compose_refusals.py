"""docker-compose 1.29 (Debian's; skipped when not installed) gets Wharf's refusals as messages:
it used to die of SIGPIPE when a refusal came before the body it was still sending."""

import os
import shutil
import signal
import subprocess

import pytest


def compose(wharfd, project_dir, *args):
    return subprocess.run(["docker-compose", "-p", "wccompose", *args], cwd=project_dir,
                          env=wharfd.env(), capture_output=True, text=True, timeout=180)


@pytest.fixture
def compose_dir(wharfd, busybox, tmp_path):
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    return tmp_path


def test_compose_build_prints_the_refusal(wharfd, compose_dir):
    (compose_dir / "Dockerfile").write_text("FROM busybox\nCOPY blob /blob\n")
    (compose_dir / "blob").write_bytes(os.urandom(4 * 1024 * 1024))
    (compose_dir / "docker-compose.yml").write_text(
        'version: "2.4"\nservices:\n  app:\n    build: .\n    image: wc-compose-app\n')
    r = compose(wharfd, compose_dir, "build")
    out = r.stdout + r.stderr
    assert r.returncode not in (0, -signal.SIGPIPE, 128 + signal.SIGPIPE), out
    assert "POST /build is not implemented in Wharf yet" in out, out


def test_compose_up_with_a_volume_prints_the_refusal(wharfd, compose_dir):
    (compose_dir / "docker-compose.yml").write_text(
        'version: "2.4"\nservices:\n  app:\n    image: busybox\n    command: ["true"]\n'
        '    network_mode: none\n    volumes: ["data:/data"]\nvolumes:\n  data: {}\n')
    r = compose(wharfd, compose_dir, "up", "--no-start")
    out = r.stdout + r.stderr
    compose(wharfd, compose_dir, "down", "-v")
    assert r.returncode not in (0, -signal.SIGPIPE, 128 + signal.SIGPIPE), out
    # The named volume is made (volumes are served); mounting it (Binds for compose v1, Mounts
    # for v2) is refused.
    assert "Wharf does not support HostConfig." in out, out
    assert "yet (issue 15: volumes)" in out, out
