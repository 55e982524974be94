#!/usr/bin/env bash
# `npm run demo` (rootless.sh demo) or `npm test` (rootless.sh test) as a normal user with rootless podman,
# from a clean clone of this checkout's HEAD (issues 22, 29), run by .ci/run as root: a user of its own
# (subuids come with useradd; PMTS_USER names it, default pmtsdemo or pmtstest), its own XDG_RUNTIME_DIR
# (mode 0700), umask 077 (the stand-in images must still be readable by the container's user), and nothing
# of root's: the clone, its npm packages and its images are the user's. The user, and everything it ran or
# made, is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-}
case "$what" in
  demo) cmd='exec timeout 900 npm run demo' ;;
  # npm ci before tsx exists: the project's .npmrc would make npm itself load tsx (as demo.sh does).
  test) cmd='NODE_OPTIONS= npm ci --no-audit --no-fund && exec timeout 3600 npm test' ;;
  *) echo "usage: rootless.sh demo|test" >&2; exit 2 ;;
esac
[ "$EUID" = 0 ] || { echo "rootless: run as root (it creates a user)" >&2; exit 2; }
U=${PMTS_USER:-pmts$what}
if id "$U" >/dev/null 2>&1; then
  echo "rootless: user $U exists already; remove it first (userdel -r $U)" >&2
  exit 2
fi
useradd -m "$U"
uid=$(id -u "$U")
gid=$(id -g "$U")
run=/run/user/$uid
home=$(getent passwd "$U" | cut -d: -f6)
# CI passes through: there a missing package fails a test instead of skipping it.
as() {
  setpriv --reuid="$uid" --regid="$gid" --init-groups -- env -i HOME="$home" USER="$U" LOGNAME="$U" \
    PATH="$(dirname "$(command -v node)"):/usr/local/bin:/usr/bin:/bin" XDG_RUNTIME_DIR="$run" TMPDIR=/tmp \
    LANG=C.UTF-8 ${CI:+CI="$CI"} "$@"
}
cleanup() {
  # Every process of this user is one this script started (the user did not exist before it), and so is
  # everything in its podman storage.
  as podman system reset --force >/dev/null 2>&1 || true
  as kill -KILL -1 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do pgrep -u "$uid" >/dev/null || break; sleep 0.5; done
  find /tmp -maxdepth 1 -user "$uid" -exec rm -rf -- {} +
  rm -rf "$run"
  cd /
  userdel -r "$U" 2>/dev/null || { id "$U" >/dev/null 2>&1 && echo "rootless: could not remove user $U" >&2; }
}
trap cleanup EXIT
clone=$home/pernosco.mts
install -d -m 700 -o "$U" -g "$gid" "$run"
git clone -q "$PWD" "$clone"
echo "rootless: npm run $what as $U (uid $uid) in a clone of $(git -C "$clone" log --oneline -1)"
chown -R "$U:$gid" "$clone"
# Its own `npm ci`, under a umask that lets nobody else read anything.
cd "$clone"
as bash -c "umask 077 && cd \"\$0\" && $cmd" "$clone" </dev/null
names=$(as podman ps -a --format '{{.Names}}')
left=$(grep -c '^pernosco-' <<<"$names" || true)
[ "$left" = 0 ] || { echo "rootless: $left containers left" >&2; exit 1; }
echo "rootless: npm run $what ran as $U (uid $uid, rootless podman) and left no container"
