#!/usr/bin/env bash
# The demo: two PocketBase nodes, a replicator, a gateway on each, a primary crash (examples/two-nodes).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source scripts/bootstrap.sh
exec npx tsx examples/two-nodes/src/main.ts
