#!/usr/bin/env python3
"""Checks the workspace's crate graph against the allowed edges of DESIGN.md section 3.

Reads `cargo metadata` (or a saved copy with --metadata FILE, for the fixture tests) and fails
when a workspace crate depends (normal or build dependency) on another workspace crate it may
not, when wharf-testkit is anything but a dev-dependency, or when a crate's normal dependency
tree reaches an external crate it must not (the engine knows no HTTP; the runtime and the shim
run without tokio). Prints one line per violation and exits 1; prints a summary and exits 0 when
the graph is clean.
"""

import argparse
import json
import subprocess
import sys

# crate -> workspace crates it may depend on (normal and build dependencies).
ALLOWED = {
    "wharf": {"wharf-client", "wharf-api"},
    "wharf-client": {"wharf-api"},
    "wharfd": {"wharf-server", "wharf-engine", "wharf-fs"},
    "wharf-server": {"wharf-backend", "wharf-api"},
    "wharf-backend": {"wharf-api"},
    "wharf-engine": {
        "wharf-backend",
        "wharf-storage",
        "wharf-runtime",
        "wharf-net",
        "wharf-distribution",
        "wharf-build",
        "wharf-fs",
        "wharf-api",
    },
    "wharf-shim": {"wharf-runtime", "wharf-fs"},
    "wharf-storage": {"wharf-fs"},
    "wharf-registry": {"wharf-storage"},
    "wharf-testkit": {"wharf-client"},
    "wharf-api": set(),
    "wharf-runtime": set(),
    "wharf-fs": set(),
    "wharf-net": set(),
    "wharf-distribution": set(),
    "wharf-build": set(),
    "wharf-cluster": set(),
}

# crate -> workspace crates whose own trees the FORBIDDEN_EXTERNAL walk does not enter: the
# registry client owns its HTTP client, and the engine reaches only its types (Registries,
# Repository, streams of Bytes), never hyper's.
SEALED = {
    "wharf-engine": {"wharf-distribution"},
}

# Only ever a dev-dependency of other crates.
DEV_ONLY = {"wharf-testkit"}

# crate -> external crates its normal dependency tree must not contain.
FORBIDDEN_EXTERNAL = {
    "wharf-engine": {"axum", "hyper", "tower", "hyper-util"},
    "wharf-backend": {"axum", "hyper", "tower"},
    "wharf-runtime": {"tokio"},
    "wharf-shim": {"tokio"},
}


def load(path):
    if path:
        with open(path) as f:
            return json.load(f)
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def check(meta):
    """The list of violations in a `cargo metadata` document."""
    problems = []
    members = set(meta["workspace_members"])
    pkgs = {p["id"]: p for p in meta["packages"]}
    names = {pkgs[m]["name"] for m in members}
    for m in sorted(members, key=lambda i: pkgs[i]["name"]):
        p = pkgs[m]
        name = p["name"]
        if name not in ALLOWED:
            problems.append(f"{name}: not in DESIGN.md section 3 (add it, with its allowed edges)")
            continue
        for d in p["dependencies"]:
            dep = d["name"]
            if dep not in names:
                continue
            kind = d.get("kind") or "normal"
            if kind == "dev":
                continue
            if dep in DEV_ONLY:
                problems.append(f"{name} -> {dep}: {dep} may only be a dev-dependency")
            elif dep not in ALLOWED[name]:
                problems.append(f"{name} -> {dep}: edge not allowed by DESIGN.md section 3")
    resolve = meta.get("resolve")
    if resolve:
        nodes = {n["id"]: n for n in resolve["nodes"]}
        for m in members:
            name = pkgs[m]["name"]
            banned = FORBIDDEN_EXTERNAL.get(name)
            if not banned:
                continue
            sealed = {i for i in pkgs if pkgs[i]["name"] in SEALED.get(name, set())}
            seen, stack = set(), [m]
            while stack:
                cur = stack.pop()
                for dep in nodes.get(cur, {}).get("deps", []):
                    kinds = {k.get("kind") or "normal" for k in dep.get("dep_kinds", [])}
                    if kinds and kinds <= {"dev"}:
                        continue
                    if dep["pkg"] in seen or dep["pkg"] in sealed:
                        continue
                    seen.add(dep["pkg"])
                    stack.append(dep["pkg"])
            reached = sorted({pkgs[i]["name"] for i in seen if i in pkgs} & banned)
            for b in reached:
                problems.append(f"{name} reaches {b}: its dependency tree must not contain it")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metadata", help="a saved `cargo metadata --format-version 1` document")
    args = ap.parse_args()
    problems = check(load(args.metadata))
    for p in problems:
        print(f"crate graph: {p}")
    if problems:
        return 1
    print("crate graph: every edge is allowed by DESIGN.md section 3")
    return 0


if __name__ == "__main__":
    sys.exit(main())
