#!/usr/bin/env bash
# The long runs, outside the fast gate (`npm test`): long chaos seeds, the fresh-clone check of every
# npm script, and the benchmarks. See docs/testing.md, "CI budget". Usage:
#   npm run test:long              # everything, budget NXS_LONG_BUDGET_S (default 3600 s)
#   npm run test:long -- --short   # a minute or two of each kind, no fresh-clone check (the
#                                  # fresh-clone check runs this to test the script itself)
# Knobs: NXS_LONG_CHAOS_SEEDS (default "7 42 55 1001"), NXS_LONG_CHAOS_SECONDS (default 300), for the
# queue's seeded crash runs the same seeds and NXS_QUEUE_CRASH_SECONDS (default 120), and
# NXS_QUEUE_BACKUP_MB (default 200: the database the mid-drain backup test zips), NXS_QUEUE_CRON_TICKS
# (default 180: the cron soak's per-second ticks), NXS_NATS_FAULT_ROUNDS (default 5: rounds of the
# NATS cluster fault schedule).
# Every step runs even when an earlier one failed; the exit code is 1 when any failed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
short=0
case "${1:-}" in
  --short) short=1 ;;
  "") ;;
  *) echo "usage: npm run test:long [-- --short]" >&2; exit 2 ;;
esac
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
export TESTCONTAINERS_RYUK_DISABLED="${TESTCONTAINERS_RYUK_DISABLED:-true}"
export TESTCONTAINERS_HOST_OVERRIDE="${TESTCONTAINERS_HOST_OVERRIDE:-localhost}"
# shellcheck source=scripts/steps.sh
source scripts/steps.sh

failed=0
if [ "$short" -eq 1 ]; then
  seeds="5"; seconds=15
else
  seeds="${NXS_LONG_CHAOS_SEEDS:-7 42 55 1001}"; seconds="${NXS_LONG_CHAOS_SECONDS:-300}"
fi
for seed in $seeds; do
  step "chaos seed $seed, ${seconds} s" npx tsx scripts/chaos.ts --seed "$seed" --seconds "$seconds" --quiet || failed=1
done

# The queue: crashes at seeded random points (workers and the server) checked against the model,
# and a full backup of a larger database mid-drain (packages/queue/test/integration).
if [ "$short" -eq 1 ]; then qseeds="5"; qseconds=10; qmb=24; else
  qseeds="${NXS_LONG_CHAOS_SEEDS:-7 42 1001}"; qseconds="${NXS_QUEUE_CRASH_SECONDS:-120}"; qmb="${NXS_QUEUE_BACKUP_MB:-200}"
fi
step "queue crash seeds ($qseeds, ${qseconds} s each) and a ${qmb} MB backup mid-drain" \
  env NXS_QUEUE_CRASH_SEEDS="$qseeds" NXS_QUEUE_CRASH_SECONDS="$qseconds" NXS_QUEUE_BACKUP_MB="$qmb" \
  npx vitest run --config vitest.workspace.ts --project integration \
  packages/queue/test/integration/crashes.int.test.ts packages/queue/test/integration/claims.int.test.ts || failed=1

# The queue's cron soak: 4 scheduler processes on two servers over many per-second ticks (npm test
# runs 6), each tick one job on both servers, run once.
if [ "$short" -eq 1 ]; then cticks=10; else cticks="${NXS_QUEUE_CRON_TICKS:-180}"; fi
step "queue cron soak, $cticks ticks" env NXS_QUEUE_CRON_TICKS="$cticks" \
  npx vitest run --config vitest.workspace.ts --project integration \
  packages/queue/test/integration/scheduling.int.test.ts -t cron || failed=1

# NATS: the cluster fault schedule (kill the stream leader, pause a follower, cut a node off) in
# rounds; npm test runs one round.
if [ "$short" -eq 1 ]; then nrounds=1; else nrounds="${NXS_NATS_FAULT_ROUNDS:-5}"; fi
step "nats cluster faults, $nrounds rounds" env NXS_NATS_FAULT_ROUNDS="$nrounds" \
  npx vitest run --config vitest.workspace.ts --project integration \
  packages/nats/test/integration/cluster-faults.int.test.ts || failed=1

# Compose: the notes doc over a 3-server NATS cluster next to the PocketBase ones (the `long`
# project of vitest.workspace.ts: examples/compose/test/compose-nats.long.test.ts).
step "compose with NATS (examples/compose/compose.nats.yml)" \
  npx vitest run --config vitest.workspace.ts --project long || failed=1

if [ "$short" -eq 0 ]; then
  step "fresh clone: every npm script with the system Node first on PATH" \
    bash scripts/check-fresh-clone.sh --with-test || failed=1
fi

out="$root/.test-results/bench"; mkdir -p "$out"
bench() { node --expose-gc --import tsx bench/run.ts "$@"; }
if [ "$short" -eq 1 ]; then
  step "bench core (one line, one run)" bench core --runs 1 --only 'full-state-bytes$' --out "$out/core.json" || failed=1
  step "bench pocketbase (quick, one line, one run)" \
    bench pocketbase --quick --runs 1 --only 'propagation-latency-p50' --out "$out/pocketbase.json" || failed=1
else
  # The lines docs/benchmarks.md reports, without Automerge's and immer's single-set lines (~30 min).
  step "bench core" bench core --runs 3 \
    --only 'local-set-change-of-100$,full-state,remote-apply,catch-up,heap' --out "$out/core.json" || failed=1
  step "bench pocketbase" bench pocketbase --runs 3 --out "$out/pocketbase.json" || failed=1
  step "bench queue (vs pg-boss and BullMQ)" bench queue --runs 3 --out "$out/queue.json" || failed=1
  step "bench config (vs raw PocketBase create, read and SSE)" bench config --runs 3 --out "$out/config.json" || failed=1
  step "bench accounts (records piece vs the nxs changes' propagation)" bench accounts --runs 3 --out "$out/accounts.json" || failed=1
fi

step_summary "${NXS_LONG_BUDGET_S:-3600}" || failed=1
exit "$failed"
