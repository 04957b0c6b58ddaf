import { createDoc, silentLogger } from "@nxs-sync/core";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createCheckpointer, createPocketBaseClient, writeAck } from "../../src/index.js";
import { makeNode, recordId, setUpServers } from "./helpers.js";

// Issue 13, item 5 (in part): ack liveness comes from the server's own time. SECURITY-AUDIT.md: an
// ack dated far in the future (a client-supplied `at`) froze compaction fleet-wide.

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const gwA = makeNode("gw-a");
const gwX = makeNode("gw-x");

beforeAll(async () => {
  server = await servers.start({ name: "ack-liveness", batch: false });
  await setUpServers([server], [gwA, gwX]);
});

describe("ack liveness", () => {
  it("an ack dated ten years ahead by its gateway still expires: the server's time counts", async () => {
    const docId = `d-${recordId()}`;
    // Gateway X (compromised, or just with a broken clock) acks once, dated ten years ahead, then
    // goes silent.
    const x = createPocketBaseClient({ url: server.url, auth: gwX.auth });
    const forgedAt = Date.now() + 10 * 365 * 24 * 3600_000;
    await writeAck(x, { doc: docId, replica: `${gwX.id}.x`, version: {}, at: forgedAt });
    x.close();

    const doc = createDoc({
      schema: z.object({ k: z.record(z.string(), z.number()) }),
      docId,
      replicaId: `${gwA.id}.a`,
      clock: Date.now,
      initial: { k: {} },
    });
    const checkpointer = createCheckpointer({
      endpoints: [server.url],
      auth: gwA.auth,
      doc,
      expiryMs: 1000,
      logger: silentLogger,
    });
    try {
      const first = await checkpointer.checkpoint();
      expect(first.expired).toEqual([]);
      await new Promise((r) => setTimeout(r, 1500));
      const later = await checkpointer.checkpoint();
      // X has been silent longer than expiryMs by the server's clock: it no longer holds the frontier.
      expect(later.expired).toEqual([`${gwX.id}.x`]);
    } finally {
      await checkpointer.stop();
    }
  });
});
