#!/usr/bin/env python3
"""Writes the query parameters of every operation of the Engine API's swagger, one operation a
line (`METHOD path name name ...`, sorted), for the test that every served endpoint has a row
for each of them (crates/wharf-server/src/params.rs). The list is checked in so the test runs on
any machine; regenerate it when the API version Wharf serves moves:

    git -C /work/.mirror/moby+moby/repo show v25.0.0:api/swagger.yaml \\
        | scripts/swagger-query-params.py > crates/wharf-server/src/params/swagger-1.44-query.txt
"""
import sys

import yaml  # python3-yaml

spec = yaml.safe_load(sys.stdin)
print("# Query parameters of each operation of the Engine API 1.44 (moby v25.0.0 api/swagger.yaml),")
print("# written by scripts/swagger-query-params.py. METHOD path name...")
for path, item in sorted(spec["paths"].items()):
    for method, op in sorted(item.items()):
        if not isinstance(op, dict) or "responses" not in op:
            continue
        names = sorted(p["name"] for p in op.get("parameters", []) if p.get("in") == "query")
        print(" ".join([method.upper(), path, *names]))
