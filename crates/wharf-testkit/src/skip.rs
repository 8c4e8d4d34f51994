//! Skips that count. Rust's test harness has no runtime skip: a test that cannot run here (not
//! root, a tool missing) and returns early is reported `ok`, so a run where nothing ran looks
//! like a run where everything passed. Every such test calls [`skip`] and then returns:
//!
//! * `SKIP <test>: <reason>` goes straight to stderr, past libtest's capture of passing tests;
//! * `<test>\t<reason>\t<verdict>` is appended to the file `$WHARF_SKIP_LOG` names (verdict
//!   `allowed`, `skipped` or `failed`), from which `tests/run-all.sh` counts and names skips;
//! * when every test must run (`CI` set to anything but `false`/`0`, or
//!   `WHARF_TESTS_REQUIRE_ALL` likewise) it panics, failing the test, unless
//!   `tests/skips-allowed.txt` (or the file `$WHARF_SKIPS_ALLOWED` names) lists the test and
//!   the reason: an entry is `<test pattern> <reason pattern>`, `*` the only wildcard, so that
//!   a test allowed to skip for what this host lacks still fails when it skips for another reason.
//!
//! `<test>` is `<test binary>::<test path>`, e.g. `daemon::containers_survive_kill_9_of_the_daemon`
//! or `wharf_storage::diff::tests::whiteouts_and_opaque_dirs`. `tests/conftest.py` does the same
//! for pytest.
//!
//! Std only, so that crates which do not dev-depend on the testkit (storage, shim, server) can
//! include this file with `#[path]`: one mechanism everywhere.

use std::fmt::Display;
use std::io::Write;
use std::path::PathBuf;

/// Records that the running test cannot run here, and why; the caller then returns. Panics
/// instead when every test must run and the allowlist does not name this one.
pub fn skip(reason: impl Display) {
    let test = test_name();
    // One line per skip, whatever the reason's text holds.
    let reason: String = reason
        .to_string()
        .chars()
        .map(|c| if c == '\t' || c == '\n' { ' ' } else { c })
        .collect();
    let listed = allowlisted(&test, &reason);
    let must_run = every_test_must_run();
    let verdict = match (&listed, must_run) {
        (Some(_), _) => "allowed",
        (None, false) => "skipped",
        (None, true) => "failed",
    };
    let note = match &listed {
        Some(entry) => format!(" (allowlisted: {entry})"),
        None => String::new(),
    };
    // Written to the stream itself, not with eprintln!, which libtest captures for passing tests.
    let _ = std::io::stderr().write_all(format!("SKIP {test}: {reason}{note}\n").as_bytes());
    if let Some(path) = std::env::var_os("WHARF_SKIP_LOG") {
        // One write of one short line with O_APPEND: concurrent tests do not interleave.
        let line = format!("{test}\t{reason}\t{verdict}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            // A skip that the tally cannot see would be a silent pass again.
            panic!(
                "SKIP {test}: {reason}; and recording it in WHARF_SKIP_LOG={} failed: {e}",
                PathBuf::from(path).display()
            );
        }
    }
    if verdict == "failed" {
        panic!(
            "SKIP {test}: {reason}. Under CI (or WHARF_TESTS_REQUIRE_ALL=1) a test that does not \
             run fails, unless tests/skips-allowed.txt lists it with the reason this host cannot \
             run it"
        );
    }
}

/// `CI` (as CI systems set it) or `WHARF_TESTS_REQUIRE_ALL`, set to anything but `false`/`0`.
fn every_test_must_run() -> bool {
    ["CI", "WHARF_TESTS_REQUIRE_ALL"].iter().any(|var| {
        std::env::var(var).is_ok_and(|v| {
            let v = v.trim();
            !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
        })
    })
}

/// `<binary>::<test path>`: libtest runs each test on a thread named after its path, and the
/// binary (`daemon-1a2b...`, without cargo's hash) says which test target it is.
fn test_name() -> String {
    let thread = std::thread::current();
    let path = thread.name().unwrap_or("unknown-test");
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let binary = match exe.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name.to_string()
        }
        _ => exe,
    };
    format!("{binary}::{path}")
}

/// The allowlist entry that matches `test` skipping for `reason`, if one does.
fn allowlisted(test: &str, reason: &str) -> Option<String> {
    let path = std::env::var_os("WHARF_SKIPS_ALLOWED")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // Every crate sits at crates/<name>, so this holds in each crate that includes the file.
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/skips-allowed.txt")
        });
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let (name, why) = line.split_once(char::is_whitespace)?;
        let why = why.trim();
        // An entry without its reason does not count: the list must say why.
        (!why.is_empty()
            && glob(name.as_bytes(), test.as_bytes())
            && glob(why.as_bytes(), reason.as_bytes()))
        .then(|| line.to_string())
    })
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}
