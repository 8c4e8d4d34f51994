"""wharfd's registry flags as `docker info` shows them, and bad ones refusing the start, in
dockerd v28's words: registry/config.go (loadInsecureRegistries appends ::1/128 and
127.0.0.0/8 to the given ones; ValidateMirror), and docker-cli's cli/command/system/info.go
(`Insecure Registries:` the insecure index names then the CIDRs, `Registry Mirrors:`). Each
test runs a wharfd of its own."""

import json

import pytest
from wharfd_harness import WharfDaemon, cleanup_stale, run_docker, wharfd_bin

NAME = "regflags"


@pytest.fixture
def own(wharfd):
    """A wharfd of the test's own (started by the test, with its flags); gone afterwards."""
    d = WharfDaemon(NAME, wharfd_bin())
    for e in cleanup_stale(NAME):
        print(f"warning: stale cleanup: {e}")
    yield d
    for e in d.cleanup():
        print(f"warning: cleanup: {e}")


def test_docker_info_shows_the_insecure_registries_and_mirrors(own):
    own.extra_args = ["--insecure-registry", "10.1.0.0/16", "--insecure-registry", "myreg:5000",
                      "--registry-mirror", "http://127.0.0.1:1"]
    own.start()
    r = run_docker(own, "info", check=True)
    lines = r.stdout.splitlines()
    at = lines.index(" Insecure Registries:")
    assert lines[at:at + 7] == [
        " Insecure Registries:",
        "  myreg:5000",
        "  10.1.0.0/16",
        "  ::1/128",
        "  127.0.0.0/8",
        " Registry Mirrors:",
        "  http://127.0.0.1:1/",
    ], r.stdout
    r = run_docker(own, "info", "--format", "{{json .RegistryConfig}}", check=True)
    assert json.loads(r.stdout) == {
        "IndexConfigs": {
            "docker.io": {"Name": "docker.io", "Mirrors": ["http://127.0.0.1:1/"],
                          "Secure": True, "Official": True},
            "myreg:5000": {"Name": "myreg:5000", "Mirrors": [], "Secure": False, "Official": False},
        },
        "InsecureRegistryCIDRs": ["10.1.0.0/16", "::1/128", "127.0.0.0/8"],
        "Mirrors": ["http://127.0.0.1:1/"],
    }


@pytest.mark.parametrize("flag, words", [
    (["--registry-mirror", "ftp://m.example"],
     "invalid mirror: unsupported scheme \"ftp\" in \"ftp://m.example\": must use either 'https://' or 'http://'"),
    (["--registry-mirror", "m.example"],
     "invalid mirror: no scheme specified for \"m.example\": must use either 'https://' or 'http://'"),
    (["--registry-mirror", "https://u:secret@m.example"],
     "invalid mirror: username/password not allowed in URI \"https://u:xxxxx@m.example\""),
    (["--insecure-registry", "tcp://r.example"], "insecure registry tcp://r.example should not contain '://'"),
    (["--insecure-registry", "r.example:99999"], "insecure registry r.example:99999 is not valid: invalid port \"99999\""),
])
def test_bad_registry_flags_stop_the_start_in_dockerds_words(own, flag, words):
    own.extra_args = flag
    with pytest.raises(RuntimeError, match="exited during start"):
        own.start()
    log = own.log.read_text(errors="replace")
    assert words in log, log[-2000:]
    assert "secret" not in log
