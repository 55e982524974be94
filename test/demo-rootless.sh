#!/usr/bin/env bash
# `npm run demo` as a normal user with rootless podman, from a clean clone of this checkout (issue 22), run
# by .ci/run as root: a user of its own (subuids come with useradd), its own XDG_RUNTIME_DIR (mode 0700),
# umask 077 (the stand-in images must still be readable by the container's user), and nothing of root's:
# the clone, its npm packages and its images are the user's. Everything it made is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$EUID" = 0 ] || { echo "demo-rootless: run as root (it creates a user)" >&2; exit 2; }
U=pmtsdemo
id "$U" >/dev/null 2>&1 || useradd -m "$U"
uid=$(id -u "$U")
run=/run/user/$uid
home=$(getent passwd "$U" | cut -d: -f6)
clone=$home/pernosco.mts
install -d -m 700 -o "$U" -g "$U" "$run"
rm -rf "$clone"
git clone -q "$PWD" "$clone"
chown -R "$U:$U" "$clone"
as() {
  setpriv --reuid="$uid" --regid="$uid" --init-groups -- env -i HOME="$home" USER="$U" LOGNAME="$U" \
    PATH=/usr/local/bin:/usr/bin:/bin XDG_RUNTIME_DIR="$run" TMPDIR=/tmp LANG=C.UTF-8 "$@"
}
cleanup() {
  # Only what this script started: the user's podman pause process (by the PID podman wrote), its images.
  as podman rmi --force --ignore localhost/pernosco-test-builder:1 localhost/pernosco-test-server:1 >/dev/null 2>&1 || true
  pause=$(cat "$run/libpod/tmp/pause.pid" 2>/dev/null || true)
  [ -n "$pause" ] && kill "$pause" 2>/dev/null || true
  rm -f "/tmp/pernosco-demo-$uid.png"
  userdel -r "$U" 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT
# Its own clone, its own `npm ci` (demo.sh runs it), under a umask that lets nobody else read anything.
cd "$clone"
as bash -c 'umask 077 && cd "$0" && exec timeout 900 npm run demo' "$clone" </dev/null
left=$(as podman ps -a --format '{{.Names}}' | grep -c '^pernosco-' || true)
[ "$left" = 0 ] || { echo "demo-rootless: $left containers left" >&2; exit 1; }
echo "demo-rootless: the demo ran as $U (uid $uid, rootless podman) and left no container"
