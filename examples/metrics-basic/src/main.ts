/**
 * Runs the example on two real PocketBase servers started here (v0.39.11: `POCKETBASE_BIN` or the
 * cached binary) with the replicator between them, and prints what happened:
 * `npm start -w examples/metrics-basic`.
 */
import { randomBytes } from "node:crypto";
import { silentLogger } from "@nxs-sync/core";
import { metricsCollections } from "@nxs-sync/metrics/pocketbase";
import {
  createNxsCollectionRegistry,
  createReplicator,
  ensureNode,
  ensureSchema,
  NodeRole,
} from "@nxs-sync/pocketbase";
import { startPocketBase } from "@nxs-sync/testing";
import { runExample } from "./example.js";

const say = (line: string) => console.log(`[metrics] ${line}`);
const id15 = () => [...randomBytes(15)].map((b) => "abcdefghijklmnopqrstuvwxyz0123456789"[b % 36]).join("");
const account = (name: string, role: NodeRole) => ({
  id: id15(),
  name,
  email: `${name}@nodes.example`,
  password: `pw-${id15()}`,
  role,
});

// Operator set-up, once per server: the metrics collections and the accounts.
say("starting two PocketBase servers");
const [a, b] = await Promise.all([
  startPocketBase({ name: "example-metrics-a" }),
  startPocketBase({ name: "example-metrics-b" }),
]);
const registry = createNxsCollectionRegistry().register(...metricsCollections());
const gw = account("gw-1", NodeRole.Gateway);
const rep = account("replicator", NodeRole.Replicator);
const replicator = createReplicator({
  servers: [a, b].map((s) => ({ url: s.url, auth: { email: rep.email, password: rep.password } })),
  collections: registry,
  intervalMs: 500,
  logger: silentLogger,
});
try {
  for (const s of [a, b]) {
    await ensureSchema(s.client(), { collections: registry });
    for (const acc of [gw, rep]) await ensureNode(s.client(), acc);
  }
  await replicator.start();
  say(`schema, accounts and the replicator on ${a.url} and ${b.url}`);
  const summary = await runExample({ home: a.url, other: b.url, gateway: gw, log: say });
  say(`summary ${JSON.stringify(summary)}`);
  say("done");
} finally {
  await replicator.stop();
  await Promise.all([a.destroy(), b.destroy()].map((p) => p.catch(() => undefined)));
}
