#!/usr/bin/env bash
# From a fresh Debian 12 machine (as root): install dependencies, build, start wharfd, import a
# busybox image built from Debian's busybox-static, and run a container that greets you.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release -p wharfd -p wharf-shim
sock=/run/wharf.sock
if ! curl -sf --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1; then
  echo "quickstart: starting wharfd (log: /var/log/wharfd.log)"
  nohup target/release/wharfd -H "unix://$sock" >/var/log/wharfd.log 2>&1 &
  for _ in $(seq 50); do
    curl -sf --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
export DOCKER_HOST="unix://$sock"
tar=$(mktemp --suffix=.tar)
scripts/mk-busybox-tar.sh "$tar"
docker import "$tar" busybox:latest >/dev/null
rm -f "$tar"
docker run --rm busybox echo "Hello from a Wharf container!"
echo "wharfd is running on $sock; try: DOCKER_HOST=unix://$sock docker run --rm -it busybox sh"
