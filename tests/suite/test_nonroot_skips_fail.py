"""The suite tells the truth when it cannot run: as `nobody`, tests that need root report
themselves skipped, each by name and reason, and with CI=true those skips fail the run.

Cheap: nothing is rebuilt as nobody. The already-built test executables (listed by `cargo test
--workspace --no-run`, which only checks they are fresh) run directly, and the compat suite runs
its session setup only. Needs root, to become nobody (and skips otherwise, which under CI fails).
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534
TIMEOUT = 300


@pytest.fixture(scope="module")
def executables():
    """{(crate dir, target name, kind): test executable} of the workspace, as last built."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the suite as nobody")
    if shutil.which("setpriv") is None:
        pytest.skip("no setpriv (util-linux)")
    # The features tests/run-all.sh builds with: listing without them would rebuild wharfd and the
    # shim without their failpoints, under the crash tests that run after this one.
    r = subprocess.run(["cargo", "test", "--workspace", "--no-run", "--message-format=json",
                        "--features", "wharfd/failpoints,wharf-shim/failpoints"],
                       cwd=REPO, capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stderr[-4000:]
    out = {}
    for line in r.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["profile"]["test"]:
            t = msg["target"]
            crate = Path(msg["manifest_path"]).parent.name
            out[(crate, t["name"], t["kind"][0])] = msg["executable"]
    return out


@pytest.fixture
def logdir():
    """A directory nobody may write its skip log into."""
    d = tempfile.mkdtemp(prefix="wharf-test-nonroot-")
    os.chown(d, NOBODY, NOBODY)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def as_nobody(argv, cwd, log, ci, read_root=False):
    """Runs argv as nobody with its own skip log, CI=true or no CI at all. `read_root` keeps
    CAP_DAC_READ_SEARCH (read and search only) for toolchains under root's 0700 home (pyenv);
    the tests' gates look at the uid, which is nobody's either way."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "WHARF_TESTS_REQUIRE_ALL", "WHARF_SKIPS_ALLOWED")}
    env.update(WHARF_SKIP_LOG=str(log), PYTHONDONTWRITEBYTECODE="1")
    if ci:
        env["CI"] = "true"
    cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    if read_root:
        cmd += ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    r = subprocess.run(cmd + list(argv), cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=TIMEOUT)
    entries = [line.split("\t") for line in log.read_text().splitlines()] if log.exists() else []
    return r, entries


def listed(exe, *filters):
    """The test names `exe --list` gives (root may list them)."""
    r = subprocess.run([exe, "--list", "--format=terse", "--exact", *filters], capture_output=True,
                       text=True, timeout=60, check=True)
    return [line.rsplit(": ", 1)[0] for line in r.stdout.splitlines() if line.endswith(": test")]


def check_rust(executables, logdir, key, cwd, filters, reason):
    exe = executables[key]
    binary = Path(exe).name.rsplit("-", 1)[0]
    names = listed(exe, *filters)
    assert names, f"{exe} lists no tests for {filters}"
    want = {f"{binary}::{n}" for n in names}

    # Without CI: the run passes (libtest cannot say skipped), but each skip is named.
    r, entries = as_nobody([exe, "--exact", *filters], cwd, logdir / "plain.tsv", ci=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {e[0] for e in entries} == want, entries
    assert all(e[2] == "skipped" and reason in e[1] for e in entries), entries
    for name in want:
        assert f"SKIP {name}: " in r.stderr, r.stderr

    # With CI=true: every one of them fails.
    r, entries = as_nobody([exe, "--exact", *filters], cwd, logdir / "ci.tsv", ci=True)
    assert r.returncode != 0, r.stdout + r.stderr
    assert f"0 passed; {len(want)} failed" in r.stdout, r.stdout
    assert {e[0] for e in entries} == want and all(e[2] == "failed" for e in entries), entries


def test_daemon_tests_skip_by_name_and_fail_under_ci(executables, logdir):
    check_rust(executables, logdir, ("wharfd", "daemon", "test"), REPO / "crates" / "wharfd", [],
               "needs root")


def test_storage_root_only_unit_tests_skip_and_fail_under_ci(executables, logdir):
    # Two return early, one drops its owner/device checks: all three count as skipped.
    check_rust(executables, logdir, ("wharf-storage", "wharf_storage", "lib"),
               REPO / "crates" / "wharf-storage",
               ["diff::tests::whiteouts_and_opaque_dirs", "diff::tests::applies_all_entry_kinds",
                "snapshot::tests::overlay_union_and_whiteout_as_root"], "root")


def test_compat_suite_skips_by_name_and_fails_under_ci(executables, logdir):
    argv = ["python3", "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/compat"]
    r, entries = as_nobody(argv, REPO, logdir / "plain.tsv", ci=False, read_root=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    skipped = int(re.search(r"(\d+) skipped", r.stdout).group(1))
    assert skipped >= 80 and len(entries) == skipped, (skipped, entries)
    assert all(e[0].startswith("tests/compat/test_") and "::" in e[0] for e in entries), entries
    assert all(e[2] == "skipped" and "need root" in e[1] for e in entries), entries
    assert "SKIP tests/compat/" in r.stdout, r.stdout[-4000:]

    # With CI=true: the same skips are errors, none allowlisted (the allowlist's honour entry
    # is for a host that has the knob, not for a run without root).
    r, entries = as_nobody(argv, REPO, logdir / "ci.tsv", ci=True, read_root=True)
    assert r.returncode != 0, r.stdout[-4000:]
    assert len(entries) == skipped and all(e[2] == "failed" for e in entries), entries
    assert re.search(rf"\b{skipped} errors?\b", r.stdout), r.stdout[-4000:]


def test_run_all_refuses_to_run_as_nobody_unless_asked(executables):
    env = {k: v for k, v in os.environ.items() if k != "WHARF_TESTS_ALLOW_NONROOT"}
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        "bash", str(REPO / "tests" / "run-all.sh")],
                       cwd="/", env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "must run as root" in r.stderr and "WHARF_TESTS_ALLOW_NONROOT=1" in r.stderr, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "0 passed, 1 failed, 0 skipped", r.stdout
