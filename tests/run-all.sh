#!/usr/bin/env bash
# The one test command: build the workspace, run every cargo test, then the docker CLI /
# docker-py compatibility suite against the freshly built wharfd. Tests that need root skip
# (with a message) when not run as root. Ends with one line `N passed, N failed` (CI parses it)
# and exits non-zero if anything failed.
set -uo pipefail

cd "$(dirname "$0")/.."
# Idempotent: installs build and test dependencies only when missing (fresh machine, CI).
if ! scripts/install-deps.sh; then
    echo "installing dependencies failed" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
target=${CARGO_TARGET_DIR:-target}
[[ $target = /* ]] || target="$PWD/$target"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

passed=0
failed=0

echo "==> cargo build --workspace"
if ! cargo build --workspace; then
    echo "cargo build failed" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# Style, lints and the crate graph are part of the suite: each is one check that passes or not.
echo "==> cargo fmt --check"
if cargo fmt --all -- --check; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
echo "==> cargo clippy --all-targets -- -D warnings"
if cargo clippy --workspace --all-targets -- -D warnings; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi
echo "==> crate graph (DESIGN.md section 3)"
if python3 scripts/check-crate-graph.py; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

echo "==> cargo test --workspace"
cargo test --workspace --no-fail-fast 2>&1 | tee "$logs/cargo.txt"
cargo_rc=${PIPESTATUS[0]}
# One `test result: ok. 13 passed; 0 failed; ...` line per test binary and doc-test run.
read -r cp cf < <(awk '/^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i+1) ~ /^passed;?$/) p += $i
            if ($(i+1) ~ /^failed;?$/) f += $i
        }
    } END { print p + 0, f + 0 }' "$logs/cargo.txt")
if [[ $cargo_rc -ne 0 && $cf -eq 0 ]]; then
    cf=1 # a test binary failed to build or crashed before reporting
fi
passed=$((passed + cp))
failed=$((failed + cf))

echo "==> pytest tests/crate_graph tests/compat (WHARFD_BIN=$target/debug/wharfd)"
if ! python3 -m pytest --version >/dev/null 2>&1; then
    echo "pytest is not installed (python3 -m pip install pytest)" >&2
    failed=$((failed + 1))
else
    WHARFD_BIN="$target/debug/wharfd" python3 -m pytest -q -p no:cacheprovider tests/crate_graph tests/compat 2>&1 |
        tee "$logs/pytest.txt"
    py_rc=${PIPESTATUS[0]}
    # Summary like `3 failed, 45 passed, 2 skipped, 1 error in 12.3s`.
    summary=$(grep -E '(passed|failed|skipped|error|errors|no tests ran)( |,|$).* in [0-9.]+s' "$logs/pytest.txt" | tail -1)
    pp=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+' || true)
    pf=$(grep -oE '[0-9]+ failed' <<<"$summary" | grep -oE '[0-9]+' || true)
    pe=$(grep -oE '[0-9]+ errors?' <<<"$summary" | grep -oE '[0-9]+' || true)
    pp=${pp:-0}
    pf=$(( ${pf:-0} + ${pe:-0} ))
    # 5 = no tests collected; anything else non-zero without counted failures is a crash.
    if [[ $py_rc -ne 0 && $py_rc -ne 5 && $pf -eq 0 ]]; then
        pf=1
    fi
    passed=$((passed + pp))
    failed=$((failed + pf))
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
