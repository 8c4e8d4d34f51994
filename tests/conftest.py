"""Skips that count, for every pytest suite under tests/ (the same rule as the Rust tests'
`wharf_testkit::skip`, crates/wharf-testkit/src/skip.rs).

Each skipped test is named on the terminal (`-rs`) and appended as `<test>\t<reason>\t<verdict>`
to the file $WHARF_SKIP_LOG names, which tests/run-all.sh counts. When every test must run
(CI set to anything but false/0, or WHARF_TESTS_REQUIRE_ALL likewise) a skip becomes a
failure, unless tests/skips-allowed.txt (or the file $WHARF_SKIPS_ALLOWED names) lists the test
and its reason (`<test pattern> <reason pattern>`, `*` the only wildcard). `<test>` is the node id
from the repository root: `tests/compat/test_honour.py::test_x[param]`.
"""

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# (test, reason, verdict) of this session, for the closing summary.
SKIPS = []


def every_test_must_run():
    for var in ("CI", "WHARF_TESTS_REQUIRE_ALL"):
        v = os.environ.get(var, "").strip()
        if v and v != "0" and v.lower() != "false":
            return True
    return False


def glob(pattern):
    """`*` matches any run of characters; everything else matches itself."""
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern) + r"\Z", re.S)


def allowlist():
    """[(test pattern, reason pattern, entry)]; entries without a reason do not count."""
    path = Path(os.environ.get("WHARF_SKIPS_ALLOWED") or REPO / "tests" / "skips-allowed.txt")
    try:
        text = path.read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[1].strip():
            out.append((glob(parts[0]), glob(parts[1].strip()), line))
    return out


def test_name(nodeid, path):
    """The node id with its file named from the repository root, whatever pytest's rootdir."""
    rest = nodeid.split("::", 1)[1] if "::" in nodeid else ""
    try:
        file = Path(path).resolve().relative_to(REPO).as_posix()
    except ValueError:
        file = nodeid.split("::", 1)[0]
    return f"{file}::{rest}" if rest else file


def skip_reason(report):
    r = report.longrepr
    msg = r[2] if isinstance(r, tuple) and len(r) == 3 else str(r)
    return msg.removeprefix("Skipped: ").replace("\t", " ").replace("\n", " ")


def record(name, reason):
    """Logs the skip; returns (verdict, allowlist reason or None)."""
    why = next((e for n, r, e in allowlist() if n.match(name) and r.match(reason)), None)
    verdict = "allowed" if why else ("failed" if every_test_must_run() else "skipped")
    SKIPS.append((name, reason, verdict))
    log = os.environ.get("WHARF_SKIP_LOG")
    if log:
        # An unrecorded skip would be a silent pass: let an OSError fail the run.
        with open(log, "a") as f:
            f.write(f"{name}\t{reason}\t{verdict}\n")
    return verdict, why


def fail_message(name, reason):
    return (f"SKIP {name}: {reason}. Under CI (or WHARF_TESTS_REQUIRE_ALL=1) a test that does "
            "not run fails, unless tests/skips-allowed.txt lists it with the reason this host "
            "cannot run it")


def count_skip(rep, node):
    """Records a skipped report of `node`; under CI, one not allowlisted becomes a failure."""
    name = test_name(node.nodeid, node.path)
    reason = skip_reason(rep)
    verdict, _ = record(name, reason)
    if verdict == "failed":
        rep.outcome = "failed"
        rep.longrepr = fail_message(name, reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    rep = (yield).get_result()
    if rep.skipped and not hasattr(rep, "wasxfail"):
        count_skip(rep, item)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A whole module skipped at collection (`allow_module_level=True`) counts too."""
    rep = (yield).get_result()
    if rep.skipped:
        count_skip(rep, collector)


def pytest_terminal_summary(terminalreporter):
    """Every skip by name (-rs groups them by reason only)."""
    if not SKIPS:
        return
    terminalreporter.section("skips, by name")
    for name, reason, verdict in SKIPS:
        note = {"allowed": "  [allowlisted]", "failed": "  [FAILED: CI requires it to run]"}.get(verdict, "")
        terminalreporter.write_line(f"SKIP {name}: {reason}{note}")
