#!/usr/bin/env bash
# Every check and every test: lint, types, import cycles, build, package checks, unit + property
# tests, and integration tests against real PocketBase servers (processes and containers).
# Container tests need a Docker engine: without one they are reported as skipped with the reason,
# except under CI=true, where a missing engine fails the run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source scripts/bootstrap.sh
export TESTCONTAINERS_RYUK_DISABLED="${TESTCONTAINERS_RYUK_DISABLED:-true}"
export TESTCONTAINERS_HOST_OVERRIDE="${TESTCONTAINERS_HOST_OVERRIDE:-localhost}"

# shellcheck source=scripts/steps.sh
source scripts/steps.sh
trap step_summary EXIT
step "lint (biome)"           npx biome ci .
step "typecheck (tsc)"        npx tsc -p tsconfig.json --noEmit
step "import cycles (madge)"  npx madge --circular --extensions ts --ts-config tsconfig.json packages/core/src packages/pocketbase/src packages/queue/src packages/config/src packages/cli/src packages/testing/src packages/metrics/src packages/client/src packages/nats/src
step "build (tsup)"           npm run build --silent
step "package checks (publint, attw, tarballs)" node scripts/check-packages.mjs

step "Go collector (go vet, go test)" bash scripts/go-collector.sh test

results="$root/.test-results"; mkdir -p "$results"
rm -f "$results"/unit*.json "$results/integration.json" "$results/unit.log" "$results/unit.rc"
# The unit and property tests run beside the integration tests, in the background: those spend most
# of their time waiting on servers, and a whole run passed with one of the two cores held by a busy
# loop, so the unit tests' two minutes of CPU fit beside them instead of after them (docs/testing.md,
# "CI budget"). The coverage floor is on core, measured on core's own tests (96% of lines; the
# other packages' unit tests run without the coverage instrumentation, which cost them a third).
other_units=()
for d in packages/*/test/unit; do
  p="${d#packages/}"; p="${p%%/*}"
  [ "$p" = core ] || other_units+=(--project "unit:$p")
done
(
  exec >"$results/unit.log" 2>&1
  rc=0
  npx vitest run --config vitest.workspace.ts --project unit:core --coverage.enabled \
    --reporter=default --reporter=json --outputFile.json="$results/unit-core.json" || rc=$?
  npx vitest run --config vitest.workspace.ts "${other_units[@]}" \
    --reporter=default --reporter=json --outputFile.json="$results/unit-other.json" || rc=$?
  echo "$rc" >"$results/unit.rc"
) &
unit_pid=$!
int_rc=0
step "integration tests (real PocketBase; the unit tests run beside them)" \
  npx vitest run --config vitest.workspace.ts --project integration \
  --reporter=default --reporter=json --outputFile.json="$results/integration.json" || int_rc=$?
unit_rc=0
wait_units() {
  wait "$unit_pid" || true
  cat "$results/unit.log" >&2
  return "$(cat "$results/unit.rc" 2>/dev/null || echo 1)"
}
step "unit and property tests (the rest of their time after the integration tests; core with its coverage floor)" \
  wait_units || unit_rc=$?

node -e '
const fs = require("fs");
let p = 0, f = 0, s = 0;
for (const name of ["unit-core", "unit-other", "integration"]) {
  const file = process.argv[1] + "/" + name + ".json";
  if (!fs.existsSync(file)) { console.error(name + ": no report written"); f++; continue; }
  const r = JSON.parse(fs.readFileSync(file, "utf8"));
  p += r.numPassedTests; f += r.numFailedTests; s += r.numPendingTests + (r.numTodoTests || 0);
  console.error(name + ": " + r.numPassedTests + " passed, " + r.numFailedTests + " failed, " + r.numPendingTests + " skipped");
}
console.log(p + " passed, " + f + " failed" + (s ? ", " + s + " skipped" : ""));
' "$results"
[ "$unit_rc" -eq 0 ] && [ "$int_rc" -eq 0 ]
