//! docker's checks of a command's positional arguments (`cli/required.go`), with its words:
//! `wharf: 'wharf diff' requires 1 argument`, the usage line and a hint, exit 1.

use super::Exit;

#[derive(Clone, Copy)]
pub enum Arity {
    None,
    Exact(usize),
    Min(usize),
    Max(usize),
    Range(usize, usize),
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        "argument"
    } else {
        "arguments"
    }
}

/// The words the user typed for the command (`container diff` or `diff`): a `container` or
/// `image` group word is kept when it came first, as cobra's command path keeps it.
fn group_of(groups: &[&str]) -> Option<&'static str> {
    const VALUED: &[&str] = &[
        "-H",
        "--host",
        "-c",
        "--context",
        "--config",
        "-l",
        "--log-level",
        "--tlscacert",
        "--tlscert",
        "--tlskey",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if VALUED.contains(&a.as_str()) {
            args.next();
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        return ["container", "image", "volume"]
            .into_iter()
            .find(|g| *g == a && groups.contains(g));
    }
    None
}

/// Checks `n` positional arguments of `name` (its canonical name, `groups` the group words it
/// can be reached under), whose usage after the command path is `usage`.
pub fn check(
    name: &str,
    groups: &[&str],
    usage: &str,
    arity: Arity,
    n: usize,
) -> anyhow::Result<()> {
    let path = match group_of(groups) {
        Some(g) => format!("wharf {g} {name}"),
        None => format!("wharf {name}"),
    };
    let usage = format!("{path} {usage}").trim_end().to_string();
    let (ok, what, hint) = match arity {
        Arity::None => (n == 0, "accepts no arguments".to_string(), "Run"),
        Arity::Exact(k) => (n == k, format!("requires {k} {}", plural(k)), "Run"),
        Arity::Min(k) => (
            n >= k,
            format!("requires at least {k} {}", plural(k)),
            "See",
        ),
        // docker's own typo, kept.
        Arity::Max(k) => (
            n <= k,
            format!("requires at most {k} {}", plural(k)),
            "SRun",
        ),
        Arity::Range(lo, hi) => (
            n >= lo && n <= hi,
            format!("requires at least {lo} and at most {hi} {}", plural(hi)),
            "Run",
        ),
    };
    if ok {
        return Ok(());
    }
    Err(Exit::error(
        1,
        format!("wharf: '{path}' {what}\n\nUsage:  {usage}\n\n{hint} '{path} --help' for more information"),
    ))
}
