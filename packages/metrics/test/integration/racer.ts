// A second process for the racing-maintainers test: `node --import tsx racer.ts <url> <t0> <node>`
// (gateway credentials in NXS_RACER_EMAIL / NXS_RACER_PASSWORD). It builds a node's metrics on a
// manual clock at t0, prints `ready`, and on `go` (stdin) runs one maintenance pass under the slot's
// lease and prints `leased=<true|false> written=<n>`.
import { createInterface } from "node:readline";
import { createManualScheduler, silentLogger } from "@nxs-sync/core";
import { createMetrics } from "@nxs-sync/metrics";
import { createPocketBaseMetricsClient } from "@nxs-sync/metrics/pocketbase";
import { RAW_RETENTION_MS, TIERS } from "./servers.js";

const [url, t0, node] = process.argv.slice(2);
const client = createPocketBaseMetricsClient({
  endpoints: [url as string],
  auth: { email: process.env.NXS_RACER_EMAIL ?? "", password: process.env.NXS_RACER_PASSWORD ?? "" },
  logger: silentLogger,
});
const metrics = createMetrics({
  client,
  node: node as string,
  scheduler: createManualScheduler({ now: Number(t0) }),
  tiers: TIERS,
  rawRetentionMs: RAW_RETENTION_MS,
  maintain: false,
  logger: silentLogger,
});
console.log("ready");
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== "go") continue;
  const r = await metrics.maintain();
  console.log(`leased=${r.leased} written=${r.written["1m"] ?? 0}`);
  break;
}
client.close();
process.exit(0);
