#!/usr/bin/env bash
# Proves that a brand-new Debian 12 gets what the tests need from `scripts/install-deps.sh`
# alone: builds a minimal Debian 12 root filesystem with debootstrap (cached), and in a fresh
# copy of it (an overlay, thrown away afterwards) runs install-deps twice (the second run must
# install nothing), then checks every tool the suite uses and runs the pytest suites that need
# no wharfd. Does not build Wharf or run the daemon tests (too slow on a small machine). CI does
# not run this script, only its short form: install-deps' version report (tests/run-all.sh calls
# install-deps first) and tests/suite/test_install_deps.py. About 75 s cold, 40 s cached
# (docs/fresh-machine.md). As root:
#
#   scripts/check-fresh-machine.sh          reuse the cached base rootfs and .deb downloads
#   scripts/check-fresh-machine.sh --cold   delete the caches first (debootstrap from scratch)
#
# Needs network access to deb.debian.org (Debian 12; sid for the docker CLI) and pypi.org
# (docker-py). The host's Rust toolchain
# ($RUSTUP_HOME, $CARGO_HOME) is bound read-only into the chroot, since rustup is what the README
# asks a new machine to install first. Everything is mounted in a private mount and PID
# namespace, so no mount or process outlives the script, even if it is killed.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${WHARF_FRESH_CACHE:-/var/tmp/wharf-fresh-machine}
mirror=http://deb.debian.org/debian
suite=bookworm
base=$cache/$suite-minbase
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_home=${CARGO_HOME:-$HOME/.cargo}

log() { echo "fresh-machine: $*"; }
die() { echo "fresh-machine: $*" >&2; exit 1; }

# ---- Inside the private namespaces: mount, chroot, check; every mount undone on the way out.
if [ "${1:-}" = --inside ]; then
  run=$2
  root=$run/root
  unmount_all() {
    # Deepest first; lazily if something still holds one (the namespace ends right after).
    findmnt -rn -o TARGET | grep -E "^$root(/|$)" | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m"
    done
  }
  trap unmount_all EXIT
  mkdir -p "$run/upper" "$run/work" "$root"
  mount -t overlay overlay -o "lowerdir=$base,upperdir=$run/upper,workdir=$run/work" "$root"
  mount -t proc proc "$root/proc"
  mount -t sysfs -o ro sysfs "$root/sys"
  mount --rbind /dev "$root/dev"
  bind_ro() {
    mkdir -p "$2"
    mount --bind "$1" "$2"
    mount -o remount,bind,ro "$2"
  }
  bind_ro "$repo" "$root/wharf"
  bind_ro "$rustup_home" "$root$rustup_home"
  bind_ro "$cargo_home" "$root$cargo_home"
  # Only a download cache: what apt installs is verified against the fresh machine's own lists.
  mkdir -p "$cache/apt-archives"
  mount --bind "$cache/apt-archives" "$root/var/cache/apt/archives"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # The host's apt date checks, site configuration like resolv.conf: where the Debian mirror is
  # a dated snapshot the host turns them off, and sid's index (which expires in a week) would
  # then be refused in the chroot only.
  apt-config dump | grep -E '^Acquire::Check-(Valid-Until|Date) ' \
    >"$root/etc/apt/apt.conf.d/99wharf-check-host-dates" || true
  # The host's trusted CAs, added the way an administrator adds a local CA: on a host behind a
  # TLS-inspecting proxy pip needs it to reach PyPI; elsewhere it adds nothing.
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/ca-certificates/wharf-check-host-cas.crt"

  env -i HOME=/root TERM=dumb LANG=C.UTF-8 RUSTUP_HOME="$rustup_home" CARGO_HOME="$cargo_home" \
    PATH="$cargo_home/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    chroot "$root" /bin/bash -euo pipefail -c '
      step() { echo "fresh-machine: == $*"; }
      cd /wharf
      t0=$(date +%s)
      step "scripts/install-deps.sh (first run: installs)"
      scripts/install-deps.sh
      t1=$(date +%s)
      step "scripts/install-deps.sh (second run: must install nothing)"
      out=$(scripts/install-deps.sh)
      echo "$out"
      if grep -vE "^(install-deps: tool versions|  )" <<<"$out"; then
        echo "fresh-machine: the second run did something (above)" >&2
        exit 1
      fi
      t2=$(date +%s)
      step "the tools, as the suite calls them"
      cargo --version
      rustc --version
      cargo fmt --version
      cargo clippy --version
      docker --version
      docker run --help | grep -- --health-start-interval
      python3 -c "import sys, docker, pytest; print(sys.executable, sys.version.split()[0], \"docker-py\", docker.__version__, \"pytest\", pytest.__version__)"
      tmux -V
      /bin/busybox true && echo "/bin/busybox runs"
      openssl version
      skopeo --version
      zstd --version
      /usr/local/lib/wharf/docker-registry --version
      python3 -c "import cryptography; print(\"cryptography\", cryptography.__version__)"
      ps --version
      ip -V
      docker-compose version --short
      # docker-compose 1.29 must load its client next to docker-py 7.1: with no daemon it
      # must fail to connect, not with a TypeError.
      d=$(mktemp -d)
      printf "services:\n  app:\n    image: busybox\n" >"$d/docker-compose.yml"
      c=$(cd "$d" && DOCKER_HOST=unix:///nonexistent.sock docker-compose ps 2>&1 || true)
      rm -rf "$d"
      if ! grep -q "Error while fetching server API version" <<<"$c"; then
        echo "$c" >&2
        echo "fresh-machine: docker-compose cannot create its client" >&2
        exit 1
      fi
      echo "docker-compose creates its client (no daemon: connection refused, as expected)"
      step "the system stays Debian 12: only the docker CLI binary from unstable, no Docker daemon"
      if grep -rsE "sid|unstable|trixie" /etc/apt/sources.list /etc/apt/sources.list.d /etc/apt/preferences.d; then
        echo "fresh-machine: install-deps added an apt source beyond Debian 12" >&2
        exit 1
      fi
      if dpkg-query -W -f="\${Package} \${Version}\n" | grep -E "^(docker-cli|docker\.io|containerd|runc|docker-registry) "; then
        echo "fresh-machine: dpkg has a Docker package (above)" >&2
        exit 1
      fi
      if command -v dockerd; then
        echo "fresh-machine: dockerd is installed" >&2
        exit 1
      fi
      echo "apt sources: Debian 12 only; dpkg has no docker-cli, docker.io, containerd, runc or docker-registry; no dockerd"
      cat /usr/local/lib/wharf/docker-cli-*/SOURCE
      step "pytest, as the suite runs it"
      export PYTHONDONTWRITEBYTECODE=1
      # Collecting imports every conftest.py and docker-py under the installed pytest; the suites
      # that need no wharfd run: the version checks (CI'"'"'s short form of this script), the
      # crate-graph fixtures and the registry fixtures (docker-registry, skopeo, zstd and
      # cryptography as install-deps left them).
      python3 -m pytest -q -p no:cacheprovider --collect-only tests/compat tests/crate_graph \
        tests/suite tests/registry | tail -1
      WHARF_TESTS_REQUIRE_ALL=1 python3 -m pytest -q -p no:cacheprovider -rs \
        tests/suite/test_install_deps.py tests/crate_graph tests/registry
      echo "fresh-machine: install-deps first run $((t1 - t0))s, second run $((t2 - t1))s"
    '
  exit
fi

# ---- Outside: caches, the base rootfs, the namespaces, and removing the run's files.
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, mounts, chroot)"
[ -d "$rustup_home/toolchains" ] && [ -x "$cargo_home/bin/cargo" ] ||
  die "no rustup toolchain at $rustup_home / $cargo_home (set RUSTUP_HOME, CARGO_HOME)"
start=$(date +%s)
if [ "${1:-}" = --cold ]; then
  log "--cold: removing $cache"
  rm -rf --one-file-system "$cache"
elif [ -n "${1:-}" ]; then
  die "usage: $0 [--cold]"
fi
mkdir -p "$cache"

if ! command -v debootstrap >/dev/null; then
  log "apt-get install debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
if [ ! -e "$base/.wharf-complete" ]; then
  log "debootstrap --variant=minbase $suite from $mirror into $base"
  rm -rf --one-file-system "$base" "$base.tmp"
  debootstrap --variant=minbase "$suite" "$base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    die "debootstrap failed (see $cache/debootstrap.log)"
  # What Debian 12's installer writes; debootstrap writes only the first line.
  cat >"$base.tmp/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
EOF
  touch "$base.tmp/.wharf-complete"
  mv "$base.tmp" "$base"
  log "base rootfs built in $(($(date +%s) - start))s"
else
  log "base rootfs: $base (cached; --cold rebuilds it)"
fi

run=$(mktemp -d "$cache/run.XXXXXX")
cleanup() {
  # The mounts lived in the namespace; refuse to delete anything that is still mounted here.
  if findmnt -rn -o TARGET | grep -qE "^$run(/|$)"; then
    echo "fresh-machine: $run still has mounts; not removing it" >&2
    return
  fi
  rm -rf --one-file-system "$run"
}
trap cleanup EXIT
rc=0
WHARF_FRESH_CACHE=$cache unshare --mount --pid --fork --propagation private -- \
  "$0" --inside "$run" || rc=$?
if [ $rc -eq 0 ]; then
  log "PASS in $(($(date +%s) - start))s"
else
  log "FAILED (exit $rc) after $(($(date +%s) - start))s"
fi
exit $rc
