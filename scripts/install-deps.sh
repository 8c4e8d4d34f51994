#!/usr/bin/env bash
# Installs what building and testing Wharf needs on Debian 12, then checks every tool's version
# and prints one line per tool. Idempotent: it installs only what is missing or too old, so
# `tests/run-all.sh` runs it first on every run and CI checks the versions each time. Exits
# non-zero, naming the tool, when one is missing or too old and this script cannot fix it.
#
#   scripts/install-deps.sh           install what is missing (needs root), then report
#   scripts/install-deps.sh --check   report only, install nothing (any user)
#
# Sources: Debian 12's apt; PyPI for docker-py 7.1 (Debian 12 has 5.0.3); Debian unstable (sid)
# for a docker CLI >= 28 when the one on PATH is older (Debian 12's docker.io is 20.10); Debian
# 12's docker-registry .deb, unpacked, not installed (its package would start a registry). Never
# starts a Docker daemon or a registry. docs/fresh-machine.md says what goes where and how to undo it.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
repo=$(cd "$(dirname "$0")/.." && pwd)

# What the suite needs at least. Rust's comes from the workspace so the two never drift.
rust_min=$(sed -n '/^rust-version *=/ { s/^[^"]*"\([0-9.]*\)".*/\1/p; q }' "$repo/Cargo.toml")
# The wharf CLI copies docker 28's requests and messages, and crates/wharf/tests/docker_bodies.rs
# and docker_equivalence.rs compare the two byte for byte: Debian 13's docker 26.1 differs in 39
# of 48 and 8 of 139 cases there (and 25 is the least for --health-start-interval).
docker_min=28
docker_suite=sid
# The registry the pull/push tests run on 127.0.0.1 (tests/registry_fixtures.py): Debian 12's
# docker-registry, i.e. distribution 2.8, the registry most clients are tested against.
registry_min=2.8.2
skopeo_min=1.9
dockerpy_min=7.1
dockerpy_pin=7.1.0
python_min=3.11
# Debian unstable's docker-cli (28.5) is a Go binary that needs only libc, and Debian 12's is new
# enough (scripts/check-fresh-machine.sh runs it there). Only its /usr/bin/docker is taken, into
# a directory of ours: no sid apt source is added to the system, nothing else comes from sid,
# and no dockerd comes at all.
wharf_lib=/usr/local/lib/wharf
registry_bin=$wharf_lib/docker-registry
docker_link=/usr/local/bin/docker
compose_wrapper=/usr/local/bin/docker-compose
wrapper_mark="installed by Wharf's scripts/install-deps.sh"

check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

tmpdirs=()
trap 'rm -rf "${tmpdirs[@]}"' EXIT
log() { echo "install-deps: $*"; }
die() { echo "install-deps: $*" >&2; exit 1; }
ver_ge() { dpkg --compare-versions "$1" ge "$2"; }
need_root() { [ "$(id -u)" = 0 ] || die "$1: run as root to install it (or install it yourself)"; }

apt_updated=0
apt_install() {
  need_root "missing Debian packages: $*"
  log "apt-get install $*"
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  # No recommends: docker-compose recommends docker.io, which would bring dockerd.
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Each prints a version or nothing, and succeeds either way (under pipefail a missing tool's 127
# would otherwise end the script in an assignment); callers compare. No `head`: a reader that
# stops early kills the writer with SIGPIPE, which pipefail turns into a failure.
first_version() { grep -oE '[0-9]+(\.[0-9]+)+[a-z]?' | sed -n 1p; }
docker_version() {
  { docker --version 2>/dev/null || true; } | sed -n 's/^Docker version \([0-9][0-9.]*\).*/\1/p'
}
rust_version() { { "$1" --version 2>/dev/null || true; } | awk 'NR == 1 { sub(/-.*/, "", $2); print $2 }'; }
# The first version in what CMD... prints (stdout and stderr), or nothing.
version_of() { { "$@" 2>&1 || true; } | first_version; }

# The tests run `python3` from PATH. Debian's own interpreter refuses pip (PEP 668): for it,
# everything Debian 12 has at a good version comes from apt, and only docker-py from PyPI.
debian_python() {
  [ "$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)" = /usr/bin/python3 ] &&
    [ -e "$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')/EXTERNALLY-MANAGED" ]
}

install_packages() {
  # Build: gcc/libc6-dev (linker; the --init binary links static glibc), pkg-config and the two
  # C libraries. Tests: busybox-static (image fixtures), openssl (TLS certificates), tmux (the
  # real-terminal tests), procps (`ps` for top's ps_args, `kill`), iproute2 (`ip`), curl
  # (quickstart), docker-compose (Debian's 1.29: tests/compat/test_compose_refusals.py), skopeo
  # (pushes the registry tests' images, reads back what Wharf pushed), zstd (zstd layers) and
  # libcap2-bin (setcap/getcap: the export/import round trip's security.capability).
  local pkgs=(gcc libc6-dev pkg-config libseccomp-dev libsqlite3-dev busybox-static curl
    ca-certificates openssl tmux procps iproute2 python3 docker-compose skopeo zstd libcap2-bin)
  local installed missing=() p
  # One dpkg-query for all: this runs at the start of every test run.
  installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${pkgs[@]}" 2>/dev/null || true)
  for p in "${pkgs[@]}"; do
    grep -qE "^$p(:[a-z0-9]+)? .* ok installed$" <<<"$installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

install_python_modules() {
  local pytest_v dockerpy_v crypto_v
  # One interpreter for all: this runs at the start of every test run.
  read -r pytest_v dockerpy_v crypto_v < <(python3 -c '
for name in ("pytest", "docker", "cryptography"):
    try:
        print(__import__(name).__version__, end=" ")
    except Exception:
        print("-", end=" ")
print()' 2>/dev/null || echo "- - -")
  if [ "$pytest_v" = - ]; then
    if debian_python; then
      apt_install python3-pytest
    else
      log "pytest missing: pip install pytest"
      python3 -m pip install -q --root-user-action=ignore pytest
    fi
  fi
  # The registry tests' token server signs its JWTs (ES256) and certificate with it.
  if [ "$crypto_v" = - ]; then
    if debian_python; then
      apt_install python3-cryptography
    else
      log "cryptography missing: pip install cryptography"
      python3 -m pip install -q --root-user-action=ignore cryptography
    fi
  fi
  if [ "$dockerpy_v" = - ] || ! ver_ge "$dockerpy_v" "$dockerpy_min"; then
    if [ "$dockerpy_v" = - ]; then dockerpy_v=missing; else dockerpy_v="$dockerpy_v < $dockerpy_min"; fi
    log "docker-py $dockerpy_v: pip install docker==$dockerpy_pin"
    if debian_python; then
      apt_install python3-pip python3-requests python3-urllib3
      # Into /usr/local/lib/python3.11/dist-packages, beside Debian's python3-docker 5 (which
      # docker-compose 1.29 needs), taking only docker-py itself: its requests and urllib3
      # stay Debian's (7.1 needs requests >= 2.26, urllib3 >= 1.26; Debian 12 has 2.28, 1.26).
      python3 -m pip install -q --root-user-action=ignore --break-system-packages \
        --ignore-installed --no-deps "docker==$dockerpy_pin"
    else
      python3 -m pip install -q --root-user-action=ignore "docker==$dockerpy_pin"
    fi
  fi
}

# Debian's docker-compose 1.29 runs on /usr/bin/python3 and dies with docker-py >= 7
# (`kwargs_from_env() got an unexpected keyword argument 'ssl_version'`). When the docker-py 7.1
# above is what /usr/bin/python3 imports, run compose on Debian's own modules only.
install_compose_wrapper() {
  local first=""
  [ -x /usr/bin/docker-compose ] && read -r first </usr/bin/docker-compose
  [[ $first == *python* ]] || return 0
  if [ -e "$compose_wrapper" ]; then
    grep -q "$wrapper_mark" "$compose_wrapper" 2>/dev/null && return 0
    log "leaving $compose_wrapper alone (not ours)"
    return 0
  fi
  local v
  v=$(/usr/bin/python3 -c 'import docker; print(docker.__version__)' 2>/dev/null || true)
  [ -n "$v" ] && ver_ge "$v" 7 || return 0
  need_root "a docker-compose that works beside docker-py $v"
  log "docker-compose 1.29 breaks with docker-py $v: $compose_wrapper runs it on Debian's python3-docker"
  cat >"$compose_wrapper" <<EOF
#!/usr/bin/python3 -I
# Debian's docker-compose 1.29, $wrapper_mark: it runs without
# /usr/local's Python modules, whose docker-py 7 it cannot use (it needs Debian's python3-docker 5).
import sys
sys.path = [p for p in sys.path if not p.startswith("/usr/local/")]
sys.argv[0] = "docker-compose"
from compose.cli.main import main
sys.exit(main())
EOF
  chmod 755 "$compose_wrapper"
}

install_docker_cli() {
  local have
  have=$(docker_version)
  if [ -n "$have" ] && ver_ge "$have" "$docker_min"; then return 0; fi
  local what="no docker CLI on PATH"
  [ -z "$have" ] || what="docker $have on PATH is older than $docker_min"
  need_root "$what"
  if [ -e "$docker_link" ] && [[ "$(readlink "$docker_link" 2>/dev/null)" != "$wharf_lib"/* ]]; then
    die "$docker_link is docker ${have:-?} (< $docker_min) and not installed by this script; replace it with a docker CLI >= $docker_min"
  fi
  log "$what: taking /usr/bin/docker from Debian $docker_suite's docker-cli"
  # A private apt state: the system's sources, lists and pins stay as they are.
  local tmp
  tmp=$(mktemp -d /var/tmp/wharf-docker-cli-apt.XXXXXX)
  tmpdirs+=("$tmp")
  chmod 755 "$tmp" # apt downloads as _apt
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/parts" "$tmp/deb"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $docker_suite main" \
    >"$tmp/sources.list"
  if id _apt >/dev/null 2>&1; then chown -R _apt:root "$tmp/lists" "$tmp/cache" "$tmp/deb"; fi
  local apt=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=$tmp/parts"
    -o "Dir::Etc::Preferences=$tmp/preferences" -o "Dir::Etc::PreferencesParts=$tmp/parts"
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache")
  apt-get "${apt[@]}" update -qq
  # apt-get download checks the .deb against the index signed by Debian's archive key.
  (cd "$tmp/deb" && apt-get "${apt[@]}" download -qq docker-cli)
  local deb ver dest
  deb=$(ls "$tmp"/deb/docker-cli_*.deb)
  ver=$(dpkg-deb -f "$deb" Version)
  ver_ge "$ver" "$docker_min" || die "Debian $docker_suite's docker-cli is $ver, older than $docker_min"
  dpkg-deb -x "$deb" "$tmp/x"
  dest="$wharf_lib/docker-cli-$ver"
  install -D -m 755 "$tmp/x/usr/bin/docker" "$dest/docker"
  echo "$(basename "$deb") from deb.debian.org $docker_suite; $wrapper_mark" >"$dest/SOURCE"
  ln -sfn "$dest/docker" "$docker_link"
  hash -r
  log "installed docker $("$dest/docker" --version | sed 's/^Docker version //') at $docker_link"
}

# grep finds nothing when the binary is missing: under pipefail that must not end the script.
registry_version() { version_of "$registry_bin" --version || true; }

# Debian's docker-registry package ships a systemd unit that starts a registry on :5000 and a
# system user: only its binary is taken, from the .deb apt-get downloads (verified against
# Debian 12's signed index), into a directory of ours; dpkg never learns about it.
install_docker_registry() {
  local have
  have=$(registry_version)
  if [ -n "$have" ] && ver_ge "$have" "$registry_min"; then return 0; fi
  need_root "docker-registry ${have:-missing} at $registry_bin"
  log "taking /usr/bin/docker-registry from Debian's docker-registry .deb (not installing the package)"
  local tmp
  tmp=$(mktemp -d /var/tmp/wharf-docker-registry.XXXXXX)
  tmpdirs+=("$tmp")
  chmod 755 "$tmp"                               # apt downloads as _apt
  mkdir "$tmp/deb"
  if id _apt >/dev/null 2>&1; then chown _apt:root "$tmp/deb"; fi
  if ! (cd "$tmp/deb" && apt-get download -qq docker-registry 2>/dev/null); then
    apt-get update -qq
    apt_updated=1
    (cd "$tmp/deb" && apt-get download -qq docker-registry)
  fi
  local deb ver
  deb=$(ls "$tmp"/deb/docker-registry_*.deb)
  ver=$(dpkg-deb -f "$deb" Version)
  ver_ge "$ver" "$registry_min" || die "Debian's docker-registry is $ver, older than $registry_min"
  dpkg-deb -x "$deb" "$tmp/x"
  install -D -m 755 "$tmp/x/usr/bin/docker-registry" "$registry_bin"
  echo "$(basename "$deb") from Debian's apt, binary only; $wrapper_mark" >"$registry_bin.SOURCE"
  log "installed docker-registry $(registry_version) at $registry_bin"
}

if [ "$check_only" = 0 ]; then
  install_packages
  install_python_modules
  install_compose_wrapper
  install_docker_cli
  install_docker_registry
fi

# --- The report: one line per tool, then every problem, then the exit status. ---
cd "$repo" # rustup's overrides apply to the repository
problems=()
row() { printf '  %-15s %-28s %s\n' "$1" "${2:-missing}" "$3"; }
# need TOOL FOUND MINIMUM WHY [WHERE]: a row, and a problem when FOUND is empty or below MINIMUM.
need() {
  local tool=$1 found=$2 min=$3 why=$4 where=${5:-}
  if [ -z "$found" ]; then
    row "$tool" "" "needed: $why"
    problems+=("$tool is missing ($why)")
  elif [ -n "$min" ] && ! ver_ge "$found" "$min"; then
    row "$tool" "$found" "TOO OLD: need >= $min ($why)"
    problems+=("$tool $found is too old: need >= $min ($why)")
  else
    row "$tool" "$found" "${min:+>= $min }ok${where:+ ($where)}"
  fi
}
# One interpreter for every Python answer: importing docker-py and pytest is most of the time.
py_info=$(python3 - 2>/dev/null <<'EOF' || true
import os, sys
def mod(name):
    try:
        m = __import__(name)
        return m.__version__, os.path.dirname(m.__file__)
    except Exception:
        return "", ""
d, p, c = mod("docker"), mod("pytest"), mod("cryptography")
print("%d.%d.%d" % sys.version_info[:3], sys.executable, d[0], d[1], p[0], c[0], sep="|")
EOF
)
# `|`, not a tab: read collapses runs of whitespace separators, so an empty field would shift.
IFS='|' read -r py_ver py_exe dockerpy_ver dockerpy_dir pytest_ver crypto_ver <<<"$py_info"
bb=""
if [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; then bb=$(version_of /bin/busybox); fi
docker_path=$(command -v docker || true)

echo "install-deps: tool versions (found, needed):"
need cargo "$(rust_version cargo)" "$rust_min" "rust-version in Cargo.toml; https://rustup.rs"
need rustc "$(rust_version rustc)" "$rust_min" "rust-version in Cargo.toml"
need rustfmt "$(version_of cargo fmt --version)" "" "rustup component add rustfmt"
need clippy "$(version_of cargo clippy --version)" "" "rustup component add clippy"
need cc "$(version_of cc --version)" "" "apt-get install gcc"
need libseccomp "$(version_of pkg-config --modversion libseccomp)" "" \
  "apt-get install pkg-config libseccomp-dev"
need sqlite3 "$(version_of pkg-config --modversion sqlite3)" "" \
  "apt-get install pkg-config libsqlite3-dev"
need docker "$(docker_version)" "$docker_min" \
  "the docker CLI on PATH${docker_path:+, $docker_path}; the suite compares the wharf CLI with docker $docker_min" \
  "$docker_path"
need docker-compose "$(version_of docker-compose version --short)" "" \
  "tests/compat/test_compose_refusals.py; apt-get install docker-compose"
need python3 "${py_ver:-}" "$python_min" "the python3 on PATH" "${py_exe:-}"
need docker-py "${dockerpy_ver:-}" "$dockerpy_min" \
  "tests/compat; pip install docker==$dockerpy_pin" "${dockerpy_dir:-}"
need pytest "${pytest_ver:-}" "" "tests/compat, tests/suite; apt-get install python3-pytest"
need tmux "$(version_of tmux -V)" "" "crates/wharf/tests/pty.rs; apt-get install tmux"
need busybox-static "$bb" "" "a static /bin/busybox for the test images"
need cryptography "${crypto_ver:-}" "" \
  "the registry tests' token server (tests/registry_fixtures.py); apt-get install python3-cryptography"
need skopeo "$(version_of skopeo --version)" "$skopeo_min" \
  "pushes the registry tests' images; apt-get install skopeo"
need docker-registry "$(registry_version)" "$registry_min" \
  "the registry the pull/push tests run; scripts/install-deps.sh unpacks Debian's .deb" "$registry_bin"
need zstd "$(version_of zstd --version)" "" "zstd layers in the registry tests; apt-get install zstd"
need openssl "$(version_of openssl version)" "" "TLS tests make certificates"
need setcap "$({ command -v getcap >/dev/null && dpkg-query -W -f='${Version}' libcap2-bin; } 2>/dev/null | first_version)" "" \
  "tests/compat/test_export_import.py; apt-get install libcap2-bin"
need curl "$(version_of curl --version)" "" "scripts/quickstart.sh"
need ps "$(version_of ps --version)" "" "top's ps_args (procps)"
need ip "$({ ip -V 2>&1 || true; } | grep -oE 'iproute2-[0-9.]+' | first_version)" "" \
  "tests/compat/test_honour.py (iproute2)"

if [ ${#problems[@]} -gt 0 ]; then
  for p in "${problems[@]}"; do echo "install-deps: FAILED: $p" >&2; done
  exit 1
fi
