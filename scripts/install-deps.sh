#!/usr/bin/env bash
# Installs what building and testing Wharf needs on Debian 12 (idempotent; quiet when done).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(libseccomp-dev libsqlite3-dev pkg-config busybox-static curl openssl tmux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The compatibility tests drive wharfd with the real docker CLI and docker-py.
if ! command -v docker >/dev/null 2>&1; then
  echo "install-deps: installing the docker CLI (Debian's docker.io; its dockerd is not started)"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
fi
python3 -c 'import docker' 2>/dev/null || python3 -m pip install -q 'docker==7.1.0'
python3 -m pytest --version >/dev/null 2>&1 || python3 -m pip install -q pytest
if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: Rust (cargo, rustc >= 1.85) is required: https://rustup.rs" >&2
  exit 1
fi
# The test command runs rustfmt and clippy (rustup's default profile has both).
for tool in fmt clippy; do
  if ! cargo "$tool" --version >/dev/null 2>&1; then
    echo "install-deps: cargo $tool is missing: rustup component add rustfmt clippy" >&2
    exit 1
  fi
done
