import { randomBytes } from "node:crypto";
import {
  type ConfigWatchEvent,
  createConfigStore,
  createKeyring,
  secret,
  type VersionMeta,
} from "@nxs-sync/config";
import { configHookPiece, VERSIONS_COLLECTION } from "@nxs-sync/config/pocketbase";
import type { Logger } from "@nxs-sync/core";
import { ensureNode, ensureSchema } from "@nxs-sync/pocketbase";
import { type ProcessPocketBase, startTcpProxy, type TcpProxy, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import { backendOf, closeBackends, gateway, newEnv, registry } from "./pocketbase-servers.js";

/**
 * Item 11's guarantees of the store itself on a real server (the backend's own are in
 * pocketbase-backend): a store's watch delivers every version once, in order, across an SSE drop;
 * a secret never appears in plain text in the collection, the server's log (run with `--dev`, which
 * logs every SQL statement), the store's log, history, diffs or an export.
 */
const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const proxies: TcpProxy[] = [];
const stores: { close(): Promise<void> }[] = [];
beforeAll(async () => {
  server = await servers.start({
    name: "config-guarantees",
    hookFiles: [configHookPiece()],
    extraArgs: ["--dev"],
  });
  await ensureSchema(server.client(), { collections: registry(), rateLimits: false });
  await ensureNode(server.client(), gateway);
});
afterAll(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await closeBackends();
});

/** A logger that keeps every line (and its arguments) it is given. */
function recordingLogger(): Logger & { readonly text: () => string } {
  const lines: string[] = [];
  const keep =
    (level: string) =>
    (message: string, ...args: unknown[]) => {
      lines.push(
        `${level} ${message} ${args.map((a) => (a instanceof Error ? `${a.message} ${a.stack}` : JSON.stringify(a))).join(" ")}`,
      );
    };
  return {
    debug: keep("debug"),
    info: keep("info"),
    warn: keep("warn"),
    error: keep("error"),
    text: () => lines.join("\n"),
  };
}

it("delivers every version once and in order to a store's watch across an SSE drop", async () => {
  const proxy = await startTcpProxy(server.url);
  proxies.push(proxy);
  const env = newEnv();
  const schemas = { limits: z.object({ rps: z.number().int() }) };
  const writer = createConfigStore({ backend: backendOf([server.url]), env, node: "gwwriter", schemas });
  const reader = createConfigStore({ backend: backendOf([proxy.url]), env, node: "gwreader", schemas });
  stores.push(writer, reader);
  await writer.start();
  await writer.put("limits", { rps: 1 }, { expectedVersion: 0, author: "a", message: "v1" });
  await reader.start();
  const seen: ConfigWatchEvent<{ rps: number }>[] = [];
  const stop = reader.watch("limits", (e) => seen.push(e), { fromVersion: 0 });
  const delivered = () => seen.flatMap((e) => (e.type === "version" ? [e.version.version] : []));
  await writer.put("limits", { rps: 2 }, { expectedVersion: 1, author: "a", message: "v2" });
  await waitFor(() => delivered().includes(2), { description: "v2 streamed" });
  proxy.cut();
  // While the reader's stream is down: two versions it cannot hear of.
  await writer.put("limits", { rps: 3 }, { expectedVersion: 2, author: "a", message: "v3" });
  await writer.put("limits", { rps: 4 }, { expectedVersion: 3, author: "a", message: "v4" });
  proxy.heal();
  await writer.put("limits", { rps: 5 }, { expectedVersion: 4, author: "a", message: "v5" });
  await waitFor(() => delivered().includes(5), { timeoutMs: 30_000, description: "v5 after the drop" });
  expect(delivered()).toEqual([1, 2, 3, 4, 5]);
  expect(seen.filter((e) => e.type !== "version")).toEqual([]);
  expect(reader.get("limits")).toEqual({ rps: 5 });
  stop();
});

it("never shows a secret in plain text: collection, server log, store log, history, diff, export", async () => {
  const plain = `sk-live-${randomBytes(12).toString("hex")}`;
  const plain2 = `sk-live-${randomBytes(12).toString("hex")}`;
  const env = newEnv();
  const schemas = {
    providers: z.object({ openai: z.object({ url: z.string(), apiKey: secret(z.string()) }) }),
  };
  const keyring = createKeyring({ keys: { k1: randomBytes(32) } });
  const logger = recordingLogger();
  const store = createConfigStore({
    backend: backendOf([server.url], { logger }),
    env,
    node: "gwsecrets",
    schemas,
    keyring,
    logger,
  });
  stores.push(store);
  await store.start();
  const v1: VersionMeta = await store.put(
    "providers",
    { openai: { url: "https://api.openai.com", apiKey: plain } },
    { expectedVersion: 0, author: "ops", message: "key" },
  );
  await store.put(
    "providers",
    { openai: { url: "https://api.openai.com/v1", apiKey: plain2 } },
    { expectedVersion: v1.version, author: "ops", message: "rotate the key" },
  );
  // The store itself reads the plain value back (it holds the key).
  expect(store.get("providers").openai.apiKey).toBe(plain2);

  const raw = await server
    .client()
    .collection(VERSIONS_COLLECTION)
    .getFullList({ filter: `env = "${env}"` });
  expect(raw).toHaveLength(2);
  const history = await store.history("providers");
  const diff = await store.diff("providers", 1, 2);
  const exported = await store.exportEnv("yaml");
  // The secret changed: the diff says so, redacted.
  expect(diff.some((op) => op.path === "/openai/apiKey")).toBe(true);
  const serverLog = await server.logs();
  // The server's log holds the SQL of the inserts with their values (`--dev`): the plain URL beside
  // the secret is there, so a plain secret would be too.
  expect(serverLog).toContain(VERSIONS_COLLECTION);
  expect(serverLog).toContain("api.openai.com/v1");
  for (const [where, text] of [
    ["collection", JSON.stringify(raw)],
    ["server log", serverLog],
    ["store log", logger.text()],
    ["history", JSON.stringify(history)],
    ["diff", JSON.stringify(diff)],
    ["export", exported],
  ] as const) {
    expect(text.includes(plain), `${where} holds the first secret`).toBe(false);
    expect(text.includes(plain2), `${where} holds the second secret`).toBe(false);
  }
  // What the collection holds instead: an envelope with its key id.
  expect(JSON.stringify(raw[0]?.value)).toContain('"kid":"k1"');
});
