"""The readers of docker's output in tests/compat/registry_support.py accept what Docker
really prints: checked here on output recorded from docker CLI 28.2.2 against dockerd 20.10
(../shared/api/captures/47-pull.txt and 46-push.txt, copied in below), so that the pull and
push tests fail only when Wharf differs from Docker, not because they misread Docker."""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))
import registry_support as rs  # noqa: E402

# docker pull localhost:5000/multi:v1, stdout (47-pull.txt).
MULTI = """v1: Pulling from multi
389ed6bbf73b: Already exists
680518934dcd: Pulling fs layer
b3da9f41977a: Pulling fs layer
b3da9f41977a: Verifying Checksum
b3da9f41977a: Download complete
680518934dcd: Verifying Checksum
680518934dcd: Download complete
680518934dcd: Pull complete
b3da9f41977a: Pull complete
Digest: sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94
Status: Downloaded newer image for localhost:5000/multi:v1
localhost:5000/multi:v1
"""
# The second docker pull localhost:5000/x (47-pull.txt).
UP_TO_DATE = """Using default tag: latest
latest: Pulling from x
Digest: sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6
Status: Image is up to date for localhost:5000/x:latest
localhost:5000/x:latest
"""


def layer(short):
    return SimpleNamespace(short_id=short)


def done(stdout, rc=0, stderr=""):
    return subprocess.CompletedProcess(["docker"], rc, stdout, stderr)


def test_check_pull_output_accepts_dockers_pull():
    rs.check_pull_output(done(MULTI), rs.pulling_from("v1", "multi"),
                         "sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94",
                         "localhost:5000/multi:v1", "localhost:5000/multi:v1",
                         new=[layer("680518934dcd"), layer("b3da9f41977a")],
                         existing=[layer("389ed6bbf73b")])


@pytest.mark.parametrize("change", [
    ("389ed6bbf73b: Already exists\n", ""),                                       # a layer missing
    ("680518934dcd: Verifying Checksum\n", ""),                                   # a status missing
    ("b3da9f41977a: Pull complete\n", "b3da9f41977a: Pull complete\nb3da9f41977a: Extracting\n"),
    ("680518934dcd: Pull complete\n", ""),                                        # not finished
    ("Status: Downloaded newer image", "Status: Image is up to date"),
    ("localhost:5000/multi:v1\n", ""),                                            # no reference line
])
def test_check_pull_output_refuses_what_docker_would_not_print(change):
    with pytest.raises(AssertionError):
        rs.check_pull_output(done(MULTI.replace(*change)), rs.pulling_from("v1", "multi"),
                             "sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94",
                             "localhost:5000/multi:v1", "localhost:5000/multi:v1",
                             new=[layer("680518934dcd"), layer("b3da9f41977a")],
                             existing=[layer("389ed6bbf73b")])


def test_waiting_and_retrying_are_allowed_between_the_statuses():
    out = MULTI.replace("680518934dcd: Pulling fs layer\n",
                        "680518934dcd: Pulling fs layer\n680518934dcd: Waiting\n"
                        "680518934dcd: Retrying in 5 seconds\n")
    rs.check_pull_output(done(out), rs.pulling_from("v1", "multi"),
                         "sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94",
                         "localhost:5000/multi:v1", "localhost:5000/multi:v1",
                         new=[layer("680518934dcd"), layer("b3da9f41977a")],
                         existing=[layer("389ed6bbf73b")])


def test_check_up_to_date_accepts_dockers_second_pull():
    lines = UP_TO_DATE.split("\n", 1)[1]  # check_up_to_date takes a pull with a tag
    rs.check_up_to_date(done(lines), rs.pulling_from("latest", "x"),
                        "sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6",
                        "localhost:5000/x:latest", "localhost:5000/x:latest")
    with pytest.raises(AssertionError):
        rs.check_up_to_date(done(lines.replace("Digest", "389ed6bbf73b: Already exists\nDigest")),
                            rs.pulling_from("latest", "x"),
                            "sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6",
                            "localhost:5000/x:latest", "localhost:5000/x:latest")


@pytest.mark.parametrize("current,total,bar", [
    # 47-pull.txt and 46-push.txt, as the daemon sent them.
    (126, 126, "[==================================================>]     126B/126B"),
    (113, 113, "[==================================================>]     113B/113B"),
    (1544704, 1982354, "[======================================>            ]  1.545MB/1.982MB"),
    (37376, 1982354, "[>                                                  ]  37.38kB/1.982MB"),
    (1996800, 1982354, "[==================================================>]  1.997MB"),
    (512, 19, "[==================================================>]     512B"),
])
def test_progress_bar_is_the_daemons(current, total, bar):
    assert rs.progress_bar(current, total) == bar


def test_push_lines_read_as_docker_prints_them():
    # 46-push.txt: docker push localhost:5000/multi:v1
    assert rs.push_refers_to("localhost:5000/multi") == "The push refers to repository [localhost:5000/multi]"
    assert rs.mounted_from("x") == "Mounted from x"
    assert rs.pushed_digest_line("v1", "sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94", 942) == \
        "v1: digest: sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94 size: 942"
    # 48-pull-missing.txt
    assert rs.manifest_not_found("localhost:5000/nosuch:tag") == \
        "Error response from daemon: manifest for localhost:5000/nosuch:tag not found: manifest unknown: manifest unknown"


# docker push localhost:5000/multi:v1, stdout (46-push.txt).
PUSH = """The push refers to repository [localhost:5000/multi]
c8cffd6ed0e6: Preparing
9d6e4e5ab5a5: Preparing
80e0452609cc: Preparing
80e0452609cc: Mounted from x
c8cffd6ed0e6: Pushed
9d6e4e5ab5a5: Pushed
v1: digest: sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94 size: 942
"""


def test_check_push_output_accepts_dockers_push():
    got = rs.check_push_output(done(PUSH), "localhost:5000/multi", "v1",
                               {"c8cffd6ed0e6": rs.PUSHED, "9d6e4e5ab5a5": rs.PUSHED,
                                "80e0452609cc": rs.mounted_from("x")})
    assert got == ("sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94", 942)
    with pytest.raises(AssertionError):
        rs.check_push_output(done(PUSH), "localhost:5000/multi", "v1",
                             {"c8cffd6ed0e6": rs.PUSHED, "9d6e4e5ab5a5": rs.PUSHED,
                              "80e0452609cc": rs.PUSHED})
    with pytest.raises(AssertionError):
        rs.check_push_output(done(PUSH.replace("9d6e4e5ab5a5: Preparing\n", "")), "localhost:5000/multi", "v1",
                             {"c8cffd6ed0e6": rs.PUSHED, "9d6e4e5ab5a5": rs.PUSHED,
                              "80e0452609cc": rs.mounted_from("x")})
