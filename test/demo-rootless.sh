#!/usr/bin/env bash
# `npm run demo` as a normal user with rootless podman, from a clean clone of this checkout's HEAD (issue 22),
# run by .ci/run as root: a user of its own (subuids come with useradd), its own XDG_RUNTIME_DIR (mode 0700),
# umask 077 (the stand-in images must still be readable by the container's user), and nothing of root's:
# the clone, its npm packages and its images are the user's. The user, and everything it ran or made, is
# removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$EUID" = 0 ] || { echo "demo-rootless: run as root (it creates a user)" >&2; exit 2; }
U=pmtsdemo
if id "$U" >/dev/null 2>&1; then
  echo "demo-rootless: user $U exists already; remove it first (userdel -r $U)" >&2
  exit 2
fi
useradd -m "$U"
uid=$(id -u "$U")
gid=$(id -g "$U")
run=/run/user/$uid
home=$(getent passwd "$U" | cut -d: -f6)
as() {
  setpriv --reuid="$uid" --regid="$gid" --init-groups -- env -i HOME="$home" USER="$U" LOGNAME="$U" \
    PATH="$(dirname "$(command -v node)"):/usr/local/bin:/usr/bin:/bin" XDG_RUNTIME_DIR="$run" TMPDIR=/tmp \
    LANG=C.UTF-8 "$@"
}
cleanup() {
  # Every process of this user is one this script started (the user did not exist before it).
  as podman rmi --force --ignore localhost/pernosco-test-builder:1 localhost/pernosco-test-server:1 >/dev/null 2>&1 || true
  as kill -KILL -1 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do pgrep -u "$uid" >/dev/null || break; sleep 0.5; done
  find /tmp -maxdepth 1 -user "$uid" -exec rm -rf -- {} +
  rm -rf "$run"
  cd /
  userdel -r "$U" 2>/dev/null || { id "$U" >/dev/null 2>&1 && echo "demo-rootless: could not remove user $U" >&2; }
}
trap cleanup EXIT
clone=$home/pernosco.mts
install -d -m 700 -o "$U" -g "$gid" "$run"
git clone -q "$PWD" "$clone"
chown -R "$U:$gid" "$clone"
# Its own `npm ci` (demo.sh runs it), under a umask that lets nobody else read anything.
cd "$clone"
as bash -c 'umask 077 && cd "$0" && exec timeout 900 npm run demo' "$clone" </dev/null
names=$(as podman ps -a --format '{{.Names}}')
left=$(grep -c '^pernosco-' <<<"$names" || true)
[ "$left" = 0 ] || { echo "demo-rootless: $left containers left" >&2; exit 1; }
echo "demo-rootless: the demo ran as $U (uid $uid, rootless podman) and left no container"
