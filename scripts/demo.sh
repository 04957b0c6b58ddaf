#!/usr/bin/env bash
# The demo: two PocketBase nodes, a replicator, a gateway on each, a primary crash (examples/two-nodes);
# then the operator's view: two fresh servers set up with the nxs-sync CLI, a gateway's writes
# replicated, and the `nxs-sync status` table (docs/operations.md, "First deployment").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source scripts/bootstrap.sh
npx tsx examples/two-nodes/src/main.ts

say() { echo "[demo] $*"; }
nxs() { npx --no-install tsx packages/cli/src/bin.ts "$@"; }
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

work="$(mktemp -d "${TMPDIR:-/tmp}/nxs-demo-XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say "part 2: the nxs-sync CLI on two fresh PocketBase servers (files in $work)"
export NXS_SUPERUSER_EMAIL="ops@demo.local"
NXS_SUPERUSER_PASSWORD="$(node -e 'console.log(require("crypto").randomBytes(18).toString("base64url"))')"
export NXS_SUPERUSER_PASSWORD
nxs hooks write "$work/pb_hooks" >/dev/null
urls=()
for name in a b; do
  port="$(free_port)"
  "$POCKETBASE_BIN" superuser upsert "$NXS_SUPERUSER_EMAIL" "$NXS_SUPERUSER_PASSWORD" --dir "$work/$name/pb_data" >/dev/null
  "$POCKETBASE_BIN" serve --http "127.0.0.1:$port" --dir "$work/$name/pb_data" --hooksDir "$work/pb_hooks" \
    --automigrate=false --hooksWatch=false >"$work/$name.log" 2>&1 &
  pids+=("$!")
  urls+=("http://127.0.0.1:$port")
done
for url in "${urls[@]}"; do
  for _ in $(seq 100); do curl -fsS "$url/api/health" >/dev/null 2>&1 && break; sleep 0.1; done
done
servers=(--server "${urls[0]}" --server "${urls[1]}")

say "nxs-sync setup: schema, settings, identities (same ids on both), hooks check"
nxs setup "${servers[@]}" --identities "$work/ids.json" --node gateway-a

say "nxs-sync replicator, in the background"
NXS_REPLICATOR_EMAIL="$(node -e 'console.log(require(process.argv[1]).replicator.email)' "$work/ids.json")" \
NXS_REPLICATOR_PASSWORD="$(node -e 'console.log(require(process.argv[1]).replicator.password)' "$work/ids.json")" \
  npx --no-install tsx packages/cli/src/bin.ts replicator "${servers[@]}" --interval 500 2>"$work/replicator.log" &
pids+=("$!")

say "a gateway writes three routes to ${urls[0]}"
IDS="$work/ids.json" A="${urls[0]}" B="${urls[1]}" npx --no-install tsx -e '
import { readFileSync } from "node:fs";
import { createDoc, createReplica } from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { createPocketBaseTransport } from "@nxs-sync/pocketbase";
import { z } from "zod";
const node = JSON.parse(readFileSync(process.env.IDS, "utf8")).nodes[0];
const replicaId = `${node.id}.demo`;
const doc = createDoc({ schema: z.object({ routes: z.record(z.string(), z.string()) }), docId: "routing", replicaId, clock: Date.now, initial: { routes: {} } });
const transport = createPocketBaseTransport({ endpoints: [process.env.A, process.env.B], auth: { email: node.email, password: node.password }, docId: "routing", origin: replicaId });
const replica = createReplica({ doc, transport, storage: createMemoryStorage(), scheduler: createTimerScheduler() });
(async () => {
  await replica.start();
  for (let i = 1; i <= 3; i++) doc.set(["routes", `svc-${i}`], `10.0.0.${i}:80`);
  await replica.flush();
  await replica.stop();
})().catch((e) => { console.error(e); process.exit(1); });
'

say "nxs-sync status (until both servers agree)"
for _ in $(seq 60); do nxs status "${servers[@]}" >/dev/null 2>&1 && break; sleep 0.5; done
nxs status "${servers[@]}"
say "done"
