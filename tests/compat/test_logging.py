"""Logging drivers and options through the real docker CLI (and docker-py) against wharfd:
json-file rotation (`--log-opt max-size/max-file`), `--log-driver none`, refusals in dockerd's
words (exit 125, nothing created) and `docker logs --details`."""

import glob
import json
import os
from support import inspect, ok


def wait_exit(docker, name):
    return int(ok(docker("wait", name, timeout=60)).stdout.strip())


def names(docker, name):
    return ok(docker("ps", "-aq", "--filter", f"name=^{name}$")).stdout.split()


# A thousand short lines, one write(2) each: about 70 kB of json-file lines.
COUNT_TO_1000 = 'i=0; while [ $i -lt 1000 ]; do i=$((i+1)); echo "line $i"; done'


def test_run_log_opts_rotate_and_logs_reads_across(docker, unique):
    ok(docker("run", "-d", "--name", unique, "--log-opt", "max-size=10k", "--log-opt", "max-file=3",
              "busybox", "sh", "-c", COUNT_TO_1000))
    assert wait_exit(docker, unique) == 0
    assert json.loads(inspect(docker, unique, "{{json .HostConfig.LogConfig}}")) == {
        "Type": "json-file", "Config": {"max-file": "3", "max-size": "10k"}}

    # Three files on disk, none above 10 kB (go-units: 10k = 10000 bytes).
    log_path = inspect(docker, unique, "{{.LogPath}}")
    files = sorted(glob.glob(log_path + "*"))
    assert files == [log_path, log_path + ".1", log_path + ".2"], files
    for f in files:
        assert os.path.getsize(f) <= 10_000, (f, os.path.getsize(f))

    # `docker logs`: what the three files hold, oldest first, ending with the last line.
    lines = ok(docker("logs", unique)).stdout.splitlines()
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers[-1] == 1000
    assert numbers == list(range(numbers[0], 1001)), lines[:3]
    assert 200 < len(numbers) < 1000
    assert ok(docker("logs", "--tail", "2", unique)).stdout == "line 999\nline 1000\n"


def test_log_driver_none(docker, unique):
    # attach streams the live output, as dockerd's does with `none`.
    r = ok(docker("run", "--rm", "--log-driver", "none", "busybox", "sh", "-c", "echo out; echo err >&2"))
    assert (r.stdout, r.stderr) == ("out\n", "err\n")

    ok(docker("run", "-d", "--name", unique, "--log-driver", "none", "busybox", "echo", "hi"))
    assert wait_exit(docker, unique) == 0
    assert json.loads(inspect(docker, unique, "{{json .HostConfig.LogConfig}}")) == {
        "Type": "none", "Config": {}}
    r = docker("logs", unique)
    assert r.returncode == 1
    assert "Error response from daemon: configured logging driver does not support reading" in r.stderr
    assert r.stdout == ""
    # No file, and, as dockerd shows it, no path.
    assert inspect(docker, unique, "{{.LogPath}}") == ""
    # A second run, attached.
    assert ok(docker("start", "-a", unique)).stdout == "hi\n"


def test_unsupported_driver_refused_nothing_created(docker, unique):
    r = docker("run", "--name", unique, "--log-driver", "syslog", "busybox", "true")
    assert r.returncode == 125, r
    assert 'Wharf does not support the "syslog" logging driver yet' in r.stderr
    assert names(docker, unique) == []
    r = docker("create", "--name", unique, "--log-driver", "nosuchdriver", "busybox", "true")
    assert r.returncode != 0, r
    assert 'error looking up logging plugin nosuchdriver: plugin "nosuchdriver" not found' in r.stderr
    assert names(docker, unique) == []


def test_bad_log_opts_refused_in_dockers_words(docker, unique):
    for opt, words in [
        ("bogus=1", "unknown log opt 'bogus' for json-file log driver"),
        ("max-size=abc", "invalid size: 'abc'"),
        ("max-size=0", "max-size must be a positive number"),
        ("max-file=0", "max-file cannot be less than 1"),
        ("mode=fast", "logger: logging mode not supported: fast"),
    ]:
        r = docker("run", "--name", unique, "--log-opt", opt, "busybox", "true")
        assert r.returncode == 125, (opt, r)
        assert words in r.stderr, (opt, r.stderr)
        assert names(docker, unique) == [], opt
    r = docker("run", "--name", unique, "--log-opt", "max-size=1m", "--log-opt", "max-file=2",
               "--log-opt", "compress=true", "busybox", "true")
    assert r.returncode == 125
    assert "Wharf does not support the log opt compress=true yet" in r.stderr
    assert names(docker, unique) == []


def test_logs_details(docker, unique):
    ok(docker("run", "-d", "--name", unique, "--label", "app=web 1", "--log-opt", "labels=app",
              "-e", "FOO=bar", "--log-opt", "env=FOO", "--log-opt", "tag={{.Name}}",
              "busybox", "echo", "hi"))
    assert wait_exit(docker, unique) == 0
    assert ok(docker("logs", "--details", unique)).stdout == f"FOO=bar,app=web+1,tag={unique} hi\n"
    assert ok(docker("logs", unique)).stdout == "hi\n"
    out = ok(docker("logs", "--details", "--timestamps", unique)).stdout
    stamp, rest = out.split(" ", 1)
    assert stamp.endswith("Z") and rest == f"FOO=bar,app=web+1,tag={unique} hi\n", out
    # No attributes: dockerd still puts the separating space.
    other = unique + "-plain"
    ok(docker("run", "-d", "--name", other, "busybox", "echo", "hi"))
    assert wait_exit(docker, other) == 0
    assert ok(docker("logs", "--details", other)).stdout == " hi\n"


def test_dockerpy_log_config(dclient):
    from docker.types import LogConfig

    # With `none`, docker-py's run reads no logs (it asks the driver first) and returns None.
    assert dclient.containers.run("busybox", ["echo", "hi"], remove=True,
                                  log_config=LogConfig(type="none")) is None
    out = dclient.containers.run("busybox", ["echo", "hi"], remove=True,
                                 log_config=LogConfig(type="json-file", config={"max-size": "1m"}))
    assert out == b"hi\n"
