#!/usr/bin/env bash
# Runs one command of a top-level npm script after bringing the clone to a runnable state, so every
# `npm run …` works on a fresh clone with an old system Node first on PATH (as `npm test` and
# `npm run demo` do). Usage: `bash scripts/run.sh [--pocketbase] COMMAND [ARGS…]`.
# - Always: Node >= 22 first on PATH and the npm dependencies (scripts/bootstrap.sh), and the
#   clone's node_modules/.bin on PATH.
# - `--pocketbase`: also the pinned PocketBase binary in POCKETBASE_BIN (servers are started).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
NXS_BOOTSTRAP_POCKETBASE=0
if [ "${1:-}" = "--pocketbase" ]; then
  NXS_BOOTSTRAP_POCKETBASE=1
  shift
fi
[ $# -gt 0 ] || { echo "usage: bash scripts/run.sh [--pocketbase] COMMAND [ARGS…]" >&2; exit 2; }
export NXS_BOOTSTRAP_POCKETBASE
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
unset NXS_BOOTSTRAP_POCKETBASE
export PATH="$root/node_modules/.bin:$PATH"
exec "$@"
