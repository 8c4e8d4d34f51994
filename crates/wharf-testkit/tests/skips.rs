//! `wharf_testkit::skip`: a skip is named on stderr and in `$WHARF_SKIP_LOG`, and fails the test
//! under CI unless the allowlist names it. The test runs itself as a child process (the child is
//! this same test, told so by an environment variable) under each environment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

const CHILD: &str = "WHARF_SKIP_SELFTEST_CHILD";
const NAME: &str = "skips::a_skip_is_named_counted_and_fails_under_ci";

struct Child {
    out: Output,
    log: String,
}

/// Runs this test again in a child with `env` on top of an environment cleared of every knob the
/// suite itself may have set (run-all.sh sets CI and the log).
fn child(dir: &Path, env: &[(&str, &str)]) -> Child {
    let log = dir.join(format!("log-{}", env.len()));
    let _ = std::fs::remove_file(&log);
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "a_skip_is_named_counted_and_fails_under_ci",
        "--test-threads=1",
    ])
    .env(CHILD, "1")
    .env("WHARF_SKIP_LOG", &log)
    .env("WHARF_SKIPS_ALLOWED", dir.join("none"))
    .env_remove("CI")
    .env_remove("WHARF_TESTS_REQUIRE_ALL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    Child { out, log }
}

fn stderr(c: &Child) -> String {
    String::from_utf8_lossy(&c.out.stderr).into_owned()
}

#[test]
fn a_skip_is_named_counted_and_fails_under_ci() {
    if std::env::var_os(CHILD).is_some() {
        wharf_testkit::skip("the host\tlacks\nthe thing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // Outside CI: the test returns, the skip is on stderr (past the capture) and in the log.
    for env in [
        &[][..],
        &[("CI", "false")][..],
        &[("CI", "0"), ("WHARF_TESTS_REQUIRE_ALL", "")][..],
    ] {
        let c = child(d, env);
        assert!(c.out.status.success(), "{env:?}: {}", stderr(&c));
        assert!(
            stderr(&c).contains(&format!("SKIP {NAME}: the host lacks the thing\n")),
            "{env:?}: {}",
            stderr(&c)
        );
        assert_eq!(
            c.log,
            format!("{NAME}\tthe host lacks the thing\tskipped\n"),
            "{env:?}"
        );
    }

    // Under CI, or when every test is required, the skip fails the test.
    for env in [
        &[("CI", "true")][..],
        &[("CI", "1")][..],
        &[("WHARF_TESTS_REQUIRE_ALL", "1")][..],
    ] {
        let c = child(d, env);
        assert!(!c.out.status.success(), "{env:?}: {}", stderr(&c));
        // libtest prints a failed test's panic message on stdout.
        let stdout = String::from_utf8_lossy(&c.out.stdout);
        assert!(
            stdout.contains("tests/skips-allowed.txt"),
            "{env:?}: {stdout}"
        );
        assert_eq!(
            c.log,
            format!("{NAME}\tthe host lacks the thing\tfailed\n"),
            "{env:?}"
        );
    }

    // An allowlist entry that matches the name and the reason (`*` a wildcard) lets it through.
    let list = d.join("allowed");
    let allowed = list.to_str().unwrap();
    let entry = "skips::a_skip_*_under_ci   the host lacks *";
    std::fs::write(&list, format!("# why\n\n{entry}\n")).unwrap();
    let c = child(d, &[("CI", "true"), ("WHARF_SKIPS_ALLOWED", allowed)]);
    assert!(c.out.status.success(), "{}", stderr(&c));
    assert!(
        stderr(&c).contains(&format!("(allowlisted: {entry})")),
        "{}",
        stderr(&c)
    );
    assert_eq!(
        c.log,
        format!("{NAME}\tthe host lacks the thing\tallowed\n")
    );
    // Not without a reason, not for another reason, not for another name.
    for entry in [
        "skips::a_skip_*_under_ci\n",
        "skips::a_skip_*_under_ci  needs root\n",
        "skips::a_skip_is_named\tthe host lacks *\n",
    ] {
        std::fs::write(&list, entry).unwrap();
        let c = child(d, &[("CI", "true"), ("WHARF_SKIPS_ALLOWED", allowed)]);
        assert!(!c.out.status.success(), "{entry:?}: {}", stderr(&c));
        assert!(c.log.ends_with("\tfailed\n"), "{entry:?}: {}", c.log);
    }

    // A log that cannot be written fails the test: an unrecorded skip would pass silently.
    let c = child(d, &[("WHARF_SKIP_LOG", "/nonexistent/dir/log")]);
    assert!(!c.out.status.success(), "{}", stderr(&c));
}
