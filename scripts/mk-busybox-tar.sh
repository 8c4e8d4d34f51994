#!/bin/sh
# Builds a minimal busybox rootfs tar from the host's static busybox, with no network:
# /bin/busybox, a symlink to it for every applet, passwd/group (root, daemon, nobody,
# wharfuser 1000:1000) and the usual empty directories. Deterministic (fixed mtime, numeric
# owners, sorted names). Same content as wharf_testkit::busybox_rootfs_tar; keep them in step.
#
#   scripts/mk-busybox-tar.sh busybox.tar && DOCKER_HOST=unix:///run/wharf.sock docker import busybox.tar busybox
set -eu

out=${1:?usage: $0 OUT.tar}
busybox=${BUSYBOX:-/bin/busybox}
mtime=946684800 # 2000-01-01, as FIXTURE_MTIME in wharf-testkit

[ -x "$busybox" ] || { echo "$0: $busybox not found (apt-get install busybox-static)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT INT TERM
umask 022

for d in bin dev etc home home/wharfuser proc root run sbin sys tmp usr usr/bin usr/sbin var; do
    mkdir -p "$stage/$d"
done
chmod 0555 "$stage/proc" "$stage/sys"
chmod 0700 "$stage/root"
chmod 1777 "$stage/tmp"

cp "$busybox" "$stage/bin/busybox"
chmod 0755 "$stage/bin/busybox"
"$busybox" --list-full | while IFS= read -r app; do
    app=${app#/}
    case $app in ''|bin/busybox|*..*) continue ;; esac
    mkdir -p "$stage/$(dirname "$app")"
    ln -sf /bin/busybox "$stage/$app"
done

cat > "$stage/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
wharfuser:x:1000:1000::/home/wharfuser:/bin/sh
PASSWD
cat > "$stage/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
nogroup:x:65534:
wharfuser:x:1000:
GROUP
chmod 0644 "$stage/etc/passwd" "$stage/etc/group"

common="--format=gnu --numeric-owner --mtime=@$mtime --no-recursion"
# Everything but the user's home is root-owned, whoever runs this script; the home goes in
# with 1000:1000 in a second pass, so no chown (and no root) is needed.
tmp_out="$out.tmp.$$"
(cd "$stage" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort | grep -vx 'home/wharfuser') |
    tar -C "$stage" $common --owner=0 --group=0 -cf "$tmp_out" -T -
tar -C "$stage" $common --owner=1000 --group=1000 -rf "$tmp_out" home/wharfuser
mv "$tmp_out" "$out"
