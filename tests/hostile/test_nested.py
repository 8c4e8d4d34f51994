"""Honour or refuse, inside nested structs (issue 13, item 2: nothing stored that inspect cannot
show back).

A key inside a struct Wharf applies (`Healthcheck`, `HostConfig.Mounts[]` and its options,
`NetworkingConfig.EndpointsConfig` entries) that Wharf does not know, or knows and does not
apply, is refused with a 400 naming its full path, list index and map key included, and
nothing is made. Zero values (what the docker CLI, docker-py and compose send for "nothing")
stay accepted, and what is accepted is shown back by inspect.
"""


import pytest

from hostile_client import call, leftovers


def tmpfs(**extra):
    return {"Type": "tmpfs", "Target": "/scratch", **extra}


REFUSED = [
    ({"Healthcheck": {"Test": ["CMD", "true"], "Later": 1}},
     "Wharf does not support Config.Healthcheck.Later"),
    # Go matches known names case-insensitively; an unknown one keeps its spelling.
    ({"healthcheck": {"test": ["CMD", "true"], "retries": 2, "later": "x"}},
     "Wharf does not support Config.Healthcheck.later"),
    ({"HostConfig": {"Mounts": [tmpfs(), tmpfs(Target="/b", TmpfsOptions={"Options": [["noexec"]]})]}},
     "Wharf does not support HostConfig.Mounts[1].TmpfsOptions.Options"),
    ({"HostConfig": {"Mounts": [tmpfs(TmpfsOptions={"SizeBytes": 1048576, "Later": True})]}},
     "Wharf does not support HostConfig.Mounts[0].TmpfsOptions.Later"),
    ({"HostConfig": {"Mounts": [tmpfs(Later={"A": 1})]}},
     "Wharf does not support HostConfig.Mounts[0].Later"),
    ({"HostConfig": {"Mounts": [tmpfs(BindOptions={"Propagation": "rshared"})]}},
     'invalid mount config for type "tmpfs": field BindOptions must not be specified'),
    ({"HostConfig": {"Mounts": [tmpfs(BindOptions={"CreateMountpoint": True})]}},
     'invalid mount config for type "tmpfs": field BindOptions must not be specified'),
    ({"HostConfig": {"Mounts": [tmpfs(VolumeOptions={"Subpath": "x"})]}},
     'invalid mount config for type "tmpfs": field VolumeOptions must not be specified'),
    ({"HostConfig": {"NetworkMode": "default"},
      "NetworkingConfig": {"EndpointsConfig": {"default": {"Later": 1}}}},
     "Wharf does not support NetworkingConfig.EndpointsConfig.default.Later"),
    ({"NetworkingConfig": {"EndpointsConfig": {"default": {"Aliases": ["db"]}}}},
     "Wharf does not support NetworkingConfig.EndpointsConfig.default.Aliases yet (issue 16: networking)"),
    # Structs without a place for unknown keys once dropped them while decoding.
    ({"HostConfig": {"RestartPolicy": {"Name": "no", "Later": 1}}},
     "Wharf does not support HostConfig.RestartPolicy.Later"),
    ({"HostConfig": {"LogConfig": {"Type": "json-file", "Later": "x"}}},
     "Wharf does not support HostConfig.LogConfig.Later"),
    ({"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 1024, "Later": 1}]}},
     "Wharf does not support HostConfig.Ulimits[0].Later"),
    ({"HostConfig": {"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n",
                                  "CgroupPermissions": "rwm", "Later": 1}]}},
     "Wharf does not support HostConfig.Devices[0].Later"),
    ({"NetworkingConfig": {"EndpointsConfig": {"default": {"IPAMConfig": {"IPv4Address": "10.9.0.2"}}}}},
     "Wharf does not support NetworkingConfig.EndpointsConfig.default.IPAMConfig yet (issue 16: networking)"),
]


@pytest.mark.parametrize("body,message", REFUSED, ids=[m for _, m in REFUSED])
def test_a_nested_key_not_applied_is_refused(daemon, busybox, outside_unchanged, body, message):
    before = leftovers(daemon)
    status, answer = call(daemon, "POST", "/containers/create?name=nested-refused",
                          {"Image": "busybox", "Cmd": ["true"], **body})
    assert status == 400, (body, status, answer)
    assert answer["message"] == message, (body, answer)
    assert str(daemon.dir) not in answer["message"]
    new = leftovers(daemon) - before
    assert not new, f"{body} left {sorted(new)} behind"


def test_zero_nested_values_are_accepted_and_shown_back(daemon, busybox, outside_unchanged):
    """What clients send for "nothing": empty option structs (compose), an endpoint's zero
    GwPriority (docker CLI 28, API 1.48), nulls for unset healthcheck fields (docker-py)."""
    body = {
        "Image": "busybox", "Cmd": ["true"],
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": None, "Retries": 3, "Later": 0},
        "HostConfig": {
            "NetworkMode": "default",
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            # An empty BindOptions on a tmpfs is not "nothing" to dockerd: a non-nil pointer is
            # refused (`field BindOptions must not be specified`), and so it is here.
            "Mounts": [tmpfs(ReadOnly=True, VolumeOptions={"Subpath": ""},
                             TmpfsOptions={"SizeBytes": 1048576, "Mode": 0o700, "Options": []},
                             Consistency="")],
        },
        "NetworkingConfig": {"EndpointsConfig": {"default": {
            "GwPriority": 0, "IPAMConfig": None, "Aliases": None, "DriverOpts": {}}}},
    }
    status, answer = call(daemon, "POST", "/containers/create?name=nested-zero", body)
    assert status == 201, answer
    cid = answer["Id"]
    try:
        status, inspect = call(daemon, "GET", f"/containers/{cid}/json")
        assert status == 200, inspect
        assert inspect["Config"]["Healthcheck"]["Retries"] == 3, inspect["Config"]["Healthcheck"]
        (mount,) = inspect["HostConfig"]["Mounts"]
        assert mount["Target"] == "/scratch" and mount["ReadOnly"] is True, mount
        assert mount["TmpfsOptions"]["SizeBytes"] == 1048576, mount
        assert mount["TmpfsOptions"]["Mode"] == 0o700, mount
    finally:
        status, answer = call(daemon, "DELETE", f"/containers/{cid}?force=1")
        assert status == 204, answer
