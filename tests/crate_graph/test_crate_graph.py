"""The crate-graph check (scripts/check-crate-graph.py) against fixture graphs: a clean one
passes, each kind of forbidden edge fails, and the real workspace passes."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "check-crate-graph.py"
spec = importlib.util.spec_from_file_location("check_crate_graph", SCRIPT)
graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(graph)


def pkg(name, deps=(), dev=()):
    return {
        "id": f"{name} 0.1.0 (path+file:///w/{name})",
        "name": name,
        "dependencies": [{"name": d, "kind": None} for d in deps]
        + [{"name": d, "kind": "dev"} for d in dev],
    }


def metadata(*packages, resolve=None):
    return {
        "workspace_members": [p["id"] for p in packages],
        "packages": list(packages),
        "resolve": resolve,
    }


CLEAN = [
    pkg("wharf-api"),
    pkg("wharf-backend", ["wharf-api"]),
    pkg("wharf-server", ["wharf-backend", "wharf-api"]),
    pkg("wharf-engine", ["wharf-backend", "wharf-api"], dev=["wharf-testkit"]),
    pkg("wharf-client", ["wharf-api"]),
    pkg("wharf-testkit", ["wharf-client"]),
    pkg("wharfd", ["wharf-server", "wharf-engine"], dev=["wharf-testkit", "wharf-client"]),
]


def test_clean_graph_passes():
    assert graph.check(metadata(*CLEAN)) == []


def test_engine_on_server_is_refused():
    bad = [p for p in CLEAN if p["name"] != "wharf-engine"]
    bad.append(pkg("wharf-engine", ["wharf-server", "wharf-api"]))
    problems = graph.check(metadata(*bad))
    assert problems == [
        "wharf-engine -> wharf-server: edge not allowed by DESIGN.md section 3"
    ]


def test_testkit_only_as_dev_dependency():
    bad = [p for p in CLEAN if p["name"] != "wharfd"]
    bad.append(pkg("wharfd", ["wharf-server", "wharf-engine", "wharf-testkit"]))
    assert graph.check(metadata(*bad)) == [
        "wharfd -> wharf-testkit: wharf-testkit may only be a dev-dependency"
    ]


def test_unknown_crate_must_be_designed_first():
    assert graph.check(metadata(*CLEAN, pkg("wharf-misc"))) == [
        "wharf-misc: not in DESIGN.md section 3 (add it, with its allowed edges)"
    ]


def test_engine_reaching_http_is_refused():
    axum = {"id": "axum 0.8.0 (registry+x)", "name": "axum", "dependencies": []}
    engine = pkg("wharf-engine", ["wharf-api"])
    meta = metadata(pkg("wharf-api"), engine)
    meta["packages"].append(axum)
    meta["resolve"] = {
        "nodes": [
            {"id": engine["id"], "deps": [{"pkg": "mid 1", "dep_kinds": [{"kind": None}]}]},
            {"id": "mid 1", "deps": [{"pkg": axum["id"], "dep_kinds": [{"kind": None}]}]},
        ]
    }
    assert graph.check(meta) == [
        "wharf-engine reaches axum: its dependency tree must not contain it"
    ]
    # The same path through a dev-dependency is fine.
    meta["resolve"]["nodes"][0]["deps"][0]["dep_kinds"] = [{"kind": "dev"}]
    assert graph.check(meta) == []


def test_engine_may_reach_http_only_inside_the_registry_client():
    hyper = {"id": "hyper 1.0.0 (registry+x)", "name": "hyper", "dependencies": []}
    dist = pkg("wharf-distribution")
    engine = pkg("wharf-engine", ["wharf-api", "wharf-distribution"])
    meta = metadata(pkg("wharf-api"), dist, engine)
    meta["packages"].append(hyper)
    normal = [{"kind": None}]
    meta["resolve"] = {
        "nodes": [
            {"id": engine["id"], "deps": [{"pkg": dist["id"], "dep_kinds": normal}]},
            {"id": dist["id"], "deps": [{"pkg": hyper["id"], "dep_kinds": normal}]},
        ]
    }
    assert graph.check(meta) == []
    # Reached another way, it is still refused.
    meta["resolve"]["nodes"][0]["deps"].append({"pkg": hyper["id"], "dep_kinds": normal})
    assert graph.check(meta) == [
        "wharf-engine reaches hyper: its dependency tree must not contain it"
    ]


def test_cli_exit_codes(tmp_path):
    f = tmp_path / "meta.json"
    f.write_text(json.dumps(metadata(*CLEAN, pkg("wharf-api-extra"))))
    r = subprocess.run([sys.executable, SCRIPT, "--metadata", f], capture_output=True, text=True)
    assert r.returncode == 1
    assert "wharf-api-extra" in r.stdout


def test_the_workspace_itself():
    r = subprocess.run([sys.executable, SCRIPT], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
