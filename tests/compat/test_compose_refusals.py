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


def test_compose_up_with_a_volume_works(wharfd, compose_dir):
    # Volumes were refused here until container mounts landed (issue 15 item 2): compose v1
    # sends the named volume as Binds and the image's volumes as VolumesFrom of the old one.
    (compose_dir / "docker-compose.yml").write_text(
        'version: "2.4"\nservices:\n  app:\n    image: busybox\n'
        '    command: ["sh", "-c", "echo hi > /data/f"]\n'
        '    network_mode: none\n    volumes: ["data:/data"]\nvolumes:\n  data: {}\n')
    try:
        r = compose(wharfd, compose_dir, "up")
        out = r.stdout + r.stderr
        assert r.returncode == 0, out
        r = compose(wharfd, compose_dir, "up", "--force-recreate")
        assert r.returncode == 0, r.stdout + r.stderr
        data = wharfd.dir / "data" / "volumes" / "wccompose_data" / "_data" / "f"
        assert data.read_text() == "hi\n"
    finally:
        compose(wharfd, compose_dir, "down", "-v")
