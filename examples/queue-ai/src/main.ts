/**
 * Runs the example on a real PocketBase server started here (v0.39.11: `POCKETBASE_BIN` or the
 * cached binary) and prints what happened: `npm start -w examples/queue-ai`.
 */
import { randomBytes } from "node:crypto";
import { createNxsCollectionRegistry, ensureNode, ensureSchema, NodeRole } from "@nxs-sync/pocketbase";
import { queueCollections, queueHookPiece } from "@nxs-sync/queue/pocketbase";
import { startPocketBase } from "@nxs-sync/testing";
import { runExample } from "./example.js";

const say = (line: string) => console.log(`[queue-ai] ${line}`);
const id15 = () => [...randomBytes(15)].map((b) => "abcdefghijklmnopqrstuvwxyz0123456789"[b % 36]).join("");

// Operator set-up, once per server (`nxs-sync setup` does this with no code): the queue's hook
// piece, its collections, and a gateway account per node.
say("starting a PocketBase server with the queue hook piece");
const server = await startPocketBase({ name: "example-queue-ai", hookFiles: [queueHookPiece()] });
try {
  await ensureSchema(server.client(), {
    collections: createNxsCollectionRegistry().register(...queueCollections()),
  });
  const gateways = ["gw-1", "gw-2"].map((name) => ({
    id: id15(),
    name,
    email: `${name}@nodes.example`,
    password: `pw-${id15()}`,
    role: NodeRole.Gateway,
  }));
  for (const g of gateways) await ensureNode(server.client(), g);
  const summary = await runExample({ url: server.url, gateways, log: say });
  say(`summary ${JSON.stringify(summary)}`);
  say("done");
} finally {
  await server.destroy().catch(() => undefined);
}
