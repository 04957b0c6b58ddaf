#!/usr/bin/env bash
# Brings a fresh clone to a runnable state; sourced by scripts/test-all.sh and scripts/demo.sh.
# 1. Node >= 22 first on PATH (installs Node 24 from the npm registry into .tools/node if needed).
# 2. npm dependencies, when node_modules is missing or older than package-lock.json.
# 3. The pinned PocketBase binary (POCKETBASE_BIN, else the per-user cache, else a go install build),
#    exported as POCKETBASE_BIN; skipped when NXS_BOOTSTRAP_POCKETBASE=0 (scripts/run.sh, for the
#    npm scripts that start no server); the pinned nats-server binary likewise (NATS_SERVER_BIN, else the
#    cache, else a go install build: packages/testing/src/nats-binary.ts).
_nxs_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/ensure-node.sh
source "$_nxs_root/scripts/ensure-node.sh" || return 1
if [ ! -f "$_nxs_root/node_modules/.package-lock.json" ] || [ "$_nxs_root/package-lock.json" -nt "$_nxs_root/node_modules/.package-lock.json" ]; then
  echo "bootstrap: installing npm dependencies (npm ci)" >&2
  (cd "$_nxs_root" && npm ci --no-audit --no-fund --loglevel=error) || return 1
fi
if [ "${NXS_BOOTSTRAP_POCKETBASE:-1}" != "0" ]; then
  POCKETBASE_BIN="$(cd "$_nxs_root" && npx --no-install tsx packages/testing/src/cli.ts path)" || return 1
  export POCKETBASE_BIN
  echo "bootstrap: PocketBase binary $POCKETBASE_BIN" >&2
  # Not fatal: without Go and without a cached build only the NATS tests and bench fail (they say why).
  if NATS_SERVER_BIN="$(cd "$_nxs_root" && npx --no-install tsx packages/testing/src/nats-cli.ts path)"; then
    export NATS_SERVER_BIN
  else
    unset NATS_SERVER_BIN
    echo "bootstrap: no nats-server v2.15.3 (needs Go >= 1.25 or NATS_SERVER_BIN); the NATS tests will fail" >&2
  fi
fi
