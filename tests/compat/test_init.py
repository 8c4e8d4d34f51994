"""`docker run --init` (and docker-py's init=True) against wharfd: Wharf's own init runs as
PID 1 at Docker's path, /sbin/docker-init, forwards signals and passes exit codes through."""

from support import ok


def test_run_init_pid1_is_docker_init(docker):
    r = ok(docker("run", "--rm", "--init", "busybox", "ps"))
    # busybox ps: a header ending in COMMAND, then one line per process.
    header, *lines = r.stdout.splitlines()
    at = header.index("COMMAND")
    by_pid = {line.split()[0]: line[at:] for line in lines}
    assert by_pid.get("1") == "/sbin/docker-init -- ps", r.stdout
    assert "ps" in by_pid.values(), r.stdout


def test_run_init_exit_codes(docker):
    r = docker("run", "--rm", "--init", "busybox", "sh", "-c", "exit 3")
    assert r.returncode == 3, r.stderr
    # The init looks the command up, so this is the run's exit code, not a start error (as
    # with Docker's tini).
    r = docker("run", "--rm", "--init", "busybox", "nosuch")
    assert r.returncode == 127, r.stderr
    assert "exec nosuch failed: No such file or directory" in r.stderr


def test_stop_with_init_forwards_sigterm(docker, unique):
    ok(docker("run", "-d", "--init", "--name", unique, "busybox", "sleep", "100"))
    assert ok(docker("inspect", "-f", "{{.HostConfig.Init}} {{.Path}} {{.Args}}", unique)).stdout == \
        "true sleep [100]\n"
    ok(docker("stop", "-t", "30", unique))
    assert ok(docker("inspect", "-f", "{{.State.ExitCode}}", unique)).stdout == "143\n"


def test_dockerpy_init(dclient):
    out = dclient.containers.run("busybox", ["cat", "/proc/1/comm"], init=True, remove=True)
    assert out == b"docker-init\n"
