"""Self-tests of tests/registry_fixtures.py: the registries, images, proxies and fake registry
the pull/push tests stand on. They need no wharfd (and no root): docker-registry, skopeo and
the cryptography package, which scripts/install-deps.sh installs."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
