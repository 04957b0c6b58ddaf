import { fileURLToPath } from "node:url";
import { type Change, encodeHlc } from "@nxs-sync/core";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPocketBaseTransport, ensureSchema, type PocketBaseTransport } from "../../src/index.js";
import { makeNode, provision, recordId } from "./helpers.js";

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const gw = makeNode("gw");
const open: PocketBaseTransport[] = [];

beforeAll(async () => {
  server = await servers.start({
    name: "realtime-idle",
    batch: false,
    hooksDir: fileURLToPath(new URL("./fixtures/idle-hooks", import.meta.url)),
  });
  await ensureSchema(server.client());
  await provision(server, [gw]);
});
afterAll(async () => {
  for (const t of open) await t.close();
});

describe("realtime", () => {
  it("reconnects after the server closes an idle SSE stream, fires onResync each time, and delivers again", async () => {
    const doc = `d-${recordId()}`;
    const reader = createPocketBaseTransport({ endpoints: [server.url], auth: gw.auth, docId: doc });
    const writer = createPocketBaseTransport({ endpoints: [server.url], auth: gw.auth, docId: doc });
    open.push(reader, writer);
    let resyncs = 0;
    const seen: Change[] = [];
    reader.subscribe({ onChanges: (cs) => seen.push(...cs), onResync: () => resyncs++ });
    await reader.connect();
    await waitFor(() => resyncs >= 3, { timeoutMs: 15_000, description: "two idle closes and reconnects" });
    const change = (seq: number) =>
      ({
        doc,
        origin: gw.id,
        seq,
        hlc: encodeHlc({ ms: Date.now(), counter: 0, node: gw.id }),
        ops: [{ kind: "set", path: ["a"], value: seq }],
      }) as unknown as Change;
    let seq = 0;
    await waitFor(
      async () => {
        // The stream may be between an idle close and its reconnect (events then are lost): write
        // a new change each round until one arrives in real time.
        await writer.push([change(++seq)]);
        return seen.length > 0 || undefined;
      },
      { timeoutMs: 15_000, intervalMs: 300, description: "a realtime change after reconnects" },
    );
    expect(seen[0]?.origin).toBe(gw.id);
    expect(reader.status().state).toBe("connected");
  });
});
