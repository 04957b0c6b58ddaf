import { type ConfigStoreEvent, createConfigStore } from "@nxs-sync/config";
import { VERSIONS_COLLECTION } from "@nxs-sync/config/pocketbase";
import { silentLogger } from "@nxs-sync/core";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import { backendOf, closeBackends, newEnv, newId, nextHlc, startConfigServer } from "./pocketbase-servers.js";

/**
 * The config store over the PocketBase backend on one real server: a put on one gateway reaches
 * another's cache through realtime, and hostile records written straight into the collection are
 * quarantined while the last good version stays in use.
 */
const servers = usePocketBaseServers();
let server: ProcessPocketBase;
beforeAll(async () => {
  server = await startConfigServer(servers, "config-store");
});
afterAll(closeBackends);

const schemas = { limits: z.object({ rps: z.number().int().min(1) }) };
const stores: { close(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});
function storeOf(env: string, node: string, events: ConfigStoreEvent[] = []) {
  const store = createConfigStore({
    backend: backendOf([server.url]),
    env,
    node,
    schemas,
    logger: silentLogger,
    onEvent: (e) => events.push(e),
  });
  stores.push(store);
  return store;
}

it("keeps the last good version in use when hostile records are written straight into the collection", async () => {
  const env = newEnv();
  const events: ConfigStoreEvent[] = [];
  const reader = storeOf(env, "gwreader0000001", events);
  const writer = storeOf(env, "gwwriter0000001");
  expect(await writer.start()).toEqual({ source: "server" });
  await writer.put("limits", { rps: 5 }, { expectedVersion: 0, author: "alice", message: "first" });
  expect(await reader.start()).toEqual({ source: "server" });
  expect(reader.get("limits")).toEqual({ rps: 5 });
  // Another gateway's put reaches this one's cache (realtime), no request per read.
  await writer.put("limits", { rps: 7 }, { expectedVersion: 1, author: "alice", message: "raise" });
  await waitFor(() => reader.version("limits")?.version === 2, { description: "v2 reaches the reader" });
  expect(reader.get("limits")).toEqual({ rps: 7 });

  const admin = server.client();
  const hostile = (fields: Record<string, unknown>) =>
    admin.collection(VERSIONS_COLLECTION).create({
      id: newId(),
      env,
      key: "limits",
      hlc: nextHlc(),
      origin: "intruder",
      node: "intruder",
      author: "mallory",
      message: "hostile",
      createdAt: Date.now(),
      compacted: false,
      ...fields,
    });
  // A record without a version's shape, and one with the shape but a value the schema refuses.
  const malformed = await hostile({ version: 3.5, value: { rps: 1000 } });
  const badValue = await hostile({ version: 3, value: { rps: "unlimited" } });
  await waitFor(() => events.filter((e) => e.type === "invalid").length >= 2, {
    description: "both hostile records reported",
  });
  expect(reader.get("limits")).toEqual({ rps: 7 });
  expect(reader.version("limits")?.version).toBe(2);
  const invalid = events.filter(
    (e): e is Extract<ConfigStoreEvent, { type: "invalid" }> => e.type === "invalid",
  );
  expect(invalid.map((e) => e.error.code).sort()).toEqual(
    ["config/invalid-value", "config/invalid-record"].sort(),
  );
  expect(invalid.find((e) => e.version?.id === badValue.id)).toBeDefined();
  expect(invalid.some((e) => e.version?.id === malformed.id)).toBe(false);
  // A new version on top of the head (the hostile well-formed one is the server's head: version 3).
  await writer.put("limits", { rps: 9 }, { expectedVersion: 3, author: "alice", message: "past it" });
  await waitFor(() => reader.version("limits")?.version === 4, { description: "v4 reaches the reader" });
  expect(reader.get("limits")).toEqual({ rps: 9 });
});
