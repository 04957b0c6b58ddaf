/**
 * Runs the example on a real PocketBase server started here (v0.39.11: `POCKETBASE_BIN` or the
 * cached binary) and prints what happened: `npm start -w examples/config-basic`.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configCollections, configHookPiece } from "@nxs-sync/config/pocketbase";
import { createNxsCollectionRegistry, ensureNode, ensureSchema, NodeRole } from "@nxs-sync/pocketbase";
import { startPocketBase } from "@nxs-sync/testing";
import { runExample } from "./example.js";

const say = (line: string) => console.log(`[config] ${line}`);
const id15 = () => [...randomBytes(15)].map((b) => "abcdefghijklmnopqrstuvwxyz0123456789"[b % 36]).join("");

// Operator set-up, once per server: the hook piece (pb_hooks/nxs-config.pb.js) in its hooks dir,
// the config collections, and a gateway account per node.
say("starting a PocketBase server with the config hook piece");
const server = await startPocketBase({ name: "example-config", hookFiles: [configHookPiece()] });
const dir = await mkdtemp(join(tmpdir(), "nxs-config-example-"));
try {
  await ensureSchema(server.client(), {
    collections: createNxsCollectionRegistry().register(...configCollections()),
  });
  const account = (name: string) => ({
    id: id15(),
    name,
    email: `${name}@nodes.example`,
    password: `pw-${id15()}`,
    role: NodeRole.Gateway,
  });
  const [gw1, gw2] = [account("gw-1"), account("gw-2")];
  for (const a of [gw1, gw2]) await ensureNode(server.client(), a);
  say(`schema and gateway accounts on ${server.url}`);

  const summary = await runExample({
    url: server.url,
    gw1,
    gw2,
    cacheFile: join(dir, "config-cache.json"),
    stopServer: () => server.stop(),
    log: say,
  });
  say(`summary ${JSON.stringify(summary)}`);
  say("done");
} finally {
  await server.destroy().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}
