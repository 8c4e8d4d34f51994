"""README claims about the `wharf` CLI that had only unit tests (review tests.md §5), run as a
user would against the session's wharfd: `context create/ls/use/show/inspect/rm` end to end,
the daemon selection precedence, and `completion` scripts that a shell can use.

TLS (`--tls`, `--tlsverify`, a context's TLS material, a missing CA failing first) is tested
end to end by crates/wharf/tests/tls.rs against a TLS server, as wharfd has no TLS listener."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from wharfd_harness import wharfd_bin
from support import ok

DEFAULT = "unix:///run/wharf.sock"


def wharf_bin():
    b = Path(os.environ.get("WHARF_BIN") or wharfd_bin().parent / "wharf")
    if not b.is_file():
        raise RuntimeError(f"wharf not found at {b}: build it (cargo build -p wharf) or set WHARF_BIN")
    return b


@pytest.fixture
def wharf(wharfd, busybox, tmp_path):
    """`wharf(*args, env={...})` with a context store of the test's own and no host variables
    unless given."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DOCKER_", "WHARF_"))}
    base["WHARF_CONFIG"] = str(tmp_path / "wharf-config")
    base["HOME"] = str(tmp_path)

    def run(*args, env=None, input=None):
        e = dict(base, **(env or {}))
        return subprocess.run([str(wharf_bin()), *args], env=e, capture_output=True, text=True,
                              input=input, timeout=60)
    run.config = Path(base["WHARF_CONFIG"])
    return run


def test_contexts_end_to_end(wharf, wharfd, unique):
    real = wharfd.host
    r = ok(wharf("context", "create", "real", "--docker", f"host={real}",
                 "--description", "the test daemon"))
    assert (r.stdout, r.stderr) == ("real\n", 'Successfully created context "real"\n')
    ok(wharf("context", "create", "nowhere", "--docker", "host=unix:///nonexistent/x.sock"))
    r = wharf("context", "create", "real", "--docker", f"host={real}")
    assert r.returncode == 1 and 'context "real" already exists' in r.stderr, r

    fmt = "{{.Name}}|{{.Current}}|{{.DockerEndpoint}}|{{.Description}}"
    assert ok(wharf("context", "ls", "--format", fmt)).stdout.splitlines() == [
        f"default|true|{DEFAULT}|Current WHARF_HOST based configuration",
        "nowhere|false|unix:///nonexistent/x.sock|",
        f"real|false|{real}|the test daemon"]
    assert ok(wharf("context", "show")).stdout == "default\n"

    # `use` makes it current for every later command, which then reaches that daemon.
    r = ok(wharf("context", "use", "real"))
    assert (r.stdout, r.stderr) == ("real\n", 'Current context is now "real"\n')
    assert ok(wharf("context", "show")).stdout == "real\n"
    assert ok(wharf("context", "ls", "-q")).stdout == "default\nnowhere\nreal\n"
    assert "real *" in ok(wharf("context", "ls")).stdout
    assert ok(wharf("run", "--rm", "--name", unique, "busybox", "echo", "via-context")
              ).stdout == "via-context\n"
    assert ok(wharf("version", "--format", "{{.Client.Context}}")).stdout == "real\n"

    [doc] = json.loads(ok(wharf("context", "inspect", "real")).stdout)
    assert doc["Name"] == "real"
    assert doc["Endpoints"]["docker"]["Host"] == real
    assert doc["Metadata"]["Description"] == "the test daemon"
    assert ok(wharf("context", "inspect", "-f", "{{.Endpoints.docker.Host}}", "real")
              ).stdout == f"{real}\n"
    # The store is files under WHARF_CONFIG, as docker's under DOCKER_CONFIG.
    assert json.loads((wharf.config / "config.json").read_text())["currentContext"] == "real"

    # In use: rm refuses without -f; once another is current it goes.
    r = wharf("context", "rm", "real")
    assert r.returncode == 1 and 'context "real" is in use, set -f flag to force remove' in r.stderr
    ok(wharf("context", "use", "default"))
    assert ok(wharf("context", "rm", "real", "nowhere")).stdout == "real\nnowhere\n"
    assert ok(wharf("context", "ls", "-q")).stdout == "default\n"
    r = wharf("context", "use", "real")
    assert r.returncode == 1 and 'context "real" does not exist' in r.stderr, r
    # A context store elsewhere, named by --config.
    other = wharf.config.parent / "other-config"
    ok(wharf("--config", str(other), "context", "create", "elsewhere", "--docker", f"host={real}"))
    assert ok(wharf("--config", str(other), "context", "ls", "-q")).stdout == "default\nelsewhere\n"
    assert ok(wharf("context", "ls", "-q")).stdout == "default\n"


def daemon_used(wharf, *args, env=None):
    """Which daemon `wharf ARGS version` talked to: "real", or the host it failed to reach."""
    r = wharf(*args, "version", "--format", "{{.Server.APIVersion}}", env=env)
    if r.returncode == 0:
        assert r.stdout.strip(), r
        return "real"
    prefix = "Cannot connect to the wharf daemon at "
    assert r.stderr.startswith(prefix), r
    return r.stderr[len(prefix):].split(". Is the", 1)[0]


def test_daemon_selection_precedence(wharf, wharfd):
    bogus = {n: f"unix:///nonexistent/{n}.sock"
             for n in ("flag", "ctxflag", "wharf_host", "docker_host", "wharf_ctx", "current")}
    for n in ("ctxflag", "wharf_ctx", "current"):
        ok(wharf("context", "create", n, "--docker", f"host={bogus[n]}"))
    ok(wharf("context", "create", "real", "--docker", f"host={wharfd.host}"))
    ok(wharf("context", "use", "current"))

    levels = [  # highest first: (name, args, env)
        ("flag", ["-H", bogus["flag"]], {}),
        ("ctxflag", ["--context", "ctxflag"], {}),
        ("wharf_host", [], {"WHARF_HOST": bogus["wharf_host"]}),
        ("docker_host", [], {"DOCKER_HOST": bogus["docker_host"]}),
        ("wharf_ctx", [], {"WHARF_CONTEXT": "wharf_ctx"}),
    ]
    # With every level set, each one wins over all below it. (-H and --context together are
    # refused, as by docker.)
    for i, (name, _, _) in enumerate(levels):
        args, env = [], {}
        for n, a, e in levels[i:]:
            if not (name == "flag" and n == "ctxflag"):
                args += a
            env.update(e)
        assert daemon_used(wharf, *args, env=env) == bogus[name], name
    r = wharf("-H", bogus["flag"], "--context", "ctxflag", "ps")
    assert (r.returncode, r.stderr) == (
        1, "conflicting options: cannot specify both --host and --context\n"), r
    # Below them all, the current context; without one, the default socket.
    assert daemon_used(wharf) == bogus["current"]
    ok(wharf("context", "use", "default"))
    assert daemon_used(wharf) == DEFAULT
    # And each level reaches a real daemon when it names one, over every level below it.
    real = wharfd.host
    assert daemon_used(wharf, "-H", real, env={"WHARF_HOST": bogus["wharf_host"]}) == "real"
    assert daemon_used(wharf, "--context", "real", env={"WHARF_HOST": bogus["wharf_host"]}) == "real"
    assert daemon_used(wharf, env={"WHARF_HOST": real, "DOCKER_HOST": bogus["docker_host"]}) == "real"
    assert daemon_used(wharf, env={"DOCKER_HOST": real, "WHARF_CONTEXT": "wharf_ctx"}) == "real"
    ok(wharf("context", "use", "current"))
    assert daemon_used(wharf, env={"WHARF_CONTEXT": "real"}) == "real"


def bash_complete(wharf, line):
    """The candidates bash offers for `line` (ending where the cursor is) with wharf's script."""
    script = ok(wharf("completion", "bash")).stdout
    words = line.split(" ")
    prog = f"""
{script}
COMP_LINE={json.dumps(line)}; COMP_POINT=${{#COMP_LINE}}
COMP_WORDS=({" ".join(json.dumps(w) for w in words)}); COMP_CWORD={len(words) - 1}
fn=$(complete -p wharf | sed -E 's/.* -F ([^ ]+) .*/\\1/')
"$fn" wharf {json.dumps(words[-1])} {json.dumps(words[-2])}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    r = subprocess.run(["bash", "--norc", "--noprofile"], input=prog, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r
    return set(r.stdout.split())


def test_completion_scripts(wharf):
    assert {"container", "context"} <= bash_complete(wharf, "wharf con")
    assert bash_complete(wharf, "wharf context ") >= {"create", "ls", "use", "rm", "inspect",
                                                      "show"}
    assert "--restart" in bash_complete(wharf, "wharf run --res")
    for shell, marker in (("zsh", "#compdef wharf"), ("fish", "complete -c wharf"),
                          ("elvish", "edit:completion:arg-completer[wharf]"),
                          ("powershell", "Register-ArgumentCompleter")):
        out = ok(wharf("completion", shell)).stdout
        assert marker in out and "context" in out, shell
    r = wharf("completion", "tcsh")
    assert r.returncode != 0 and "tcsh" in r.stderr, r
