#!/usr/bin/env bash
# `npm run demo`: on a fresh machine, install what is needed, then record (stand-in rr), build and
# serve (stand-in images, built locally from busybox-static), and show what each step proved.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
[ -x /bin/busybox ] || need+=(busybox-static)
[ -e /usr/libexec/podman/catatonit ] || need+=(catatonit) # podman's --init; a Recommends, so not pulled in
command -v newuidmap >/dev/null || need+=(uidmap)
if [ ${#need[@]} -gt 0 ]; then
  [ "$EUID" = 0 ] || { echo "demo: needs ${need[*]}: sudo apt-get install -y ${need[*]}" >&2; exit 2; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# npm ci before tsx exists: the project's .npmrc would make npm itself load tsx.
[ -d node_modules/tsx ] || NODE_OPTIONS= npm ci --no-audit --no-fund
exec node --import tsx test/demo.mts
