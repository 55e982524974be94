#!/usr/bin/env bash
# `npm run demo`: on a fresh machine, install what is needed, then record (stand-in rr),
# build (stand-in builder image, built locally from busybox-static) and show the result.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v podman >/dev/null || [ ! -x /bin/busybox ]; then
  [ "$(id -u)" = 0 ] || { echo "demo: needs podman, runc and busybox-static: sudo apt-get install -y podman runc busybox-static" >&2; exit 2; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc busybox-static uidmap >/dev/null
fi
[ -d node_modules ] || npm ci --no-audit --no-fund
exec node --import tsx test/demo.mts
