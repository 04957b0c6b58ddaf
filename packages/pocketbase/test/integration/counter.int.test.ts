import { counter, EMPTY_VERSION_VECTOR, silentLogger } from "@nxs-sync/core";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createCheckpointer } from "../../src/index.js";
import { makeNode, quietGateway, recordId, setUpServers, stableJson } from "./helpers.js";

// Issue 12: counters with fractional amounts read the same on a compacted and an uncompacted
// replica (docs/protocol.md, "Counter value").

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const gw1 = makeNode("gw-1");
const gw2 = makeNode("gw-2");
const gw3 = makeNode("gw-3");

beforeAll(async () => {
  server = await servers.start({ name: "counter", batch: false });
  await setUpServers([server], [gw1, gw2, gw3]);
});

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const schema = z.object({ cost: counter() });

function gateway(node: typeof gw1, docId: string) {
  const { doc, replica } = quietGateway({
    node,
    docId,
    instance: "a",
    endpoints: [server.url],
    schema,
    initial: { cost: 0 },
    cleanup: (fn) => cleanups.push(fn),
  });
  const checkpointer = createCheckpointer({
    endpoints: [server.url],
    auth: node.auth,
    doc,
    logger: silentLogger,
  });
  cleanups.push(async () => checkpointer.stop());
  return { doc, replica, checkpointer };
}

describe("counter value", () => {
  it("fractional amounts from two writers: compacted gateways and an uncompacted late reader read the same number", async () => {
    const docId = `d-${recordId()}`;
    const a = gateway(gw1, docId);
    const b = gateway(gw2, docId);
    await Promise.all([a.replica.start(), b.replica.start()]);
    // Amounts whose float sum depends on the order of additions (0.1 + 0.2 + 0.3 ≠ 0.3 + 0.2 + 0.1).
    const amounts = [0.1, 0.2, 0.3, 1 / 3, 1e-3, 7.77, 0.7, 2.5e-7, 13.013, 0.05];
    for (let round = 0; round < 3; round++) {
      for (const [i, x] of amounts.entries()) {
        a.doc.increment(["cost"], x * (round + 1));
        b.doc.increment(["cost"], amounts[amounts.length - 1 - i]! * (round + 2));
      }
      await Promise.all([a.replica.flush(), b.replica.flush()]);
      await waitFor(() => stableJson(a.doc.version()) === stableJson(b.doc.version()), {
        description: "a and b have each other's increments",
        timeoutMs: 20_000,
      });
      // Both gateways report their version and compact once the frontier is stable.
      await waitFor(
        async () => {
          const [ra, rb] = await Promise.all([a.checkpointer.checkpoint(), b.checkpointer.checkpoint()]);
          return ra.frontier !== undefined && rb.frontier !== undefined;
        },
        { description: "both compacted", timeoutMs: 20_000, intervalMs: 100 },
      );
    }
    expect(a.doc.changesSince(EMPTY_VERSION_VECTOR).length).toBeLessThan(60);
    // A late reader that never compacts: it applies every increment one by one.
    const c = gateway(gw3, docId);
    await c.replica.start();
    await waitFor(() => stableJson(c.doc.version()) === stableJson(a.doc.version()), {
      description: "the late reader caught up",
      timeoutMs: 20_000,
    });
    expect(c.doc.changesSince(EMPTY_VERSION_VECTOR).length).toBe(60);
    const values = [a, b, c].map((g) => g.doc.get().cost);
    expect(Object.is(values[0], values[1]) && Object.is(values[1], values[2]), String(values)).toBe(true);
  });
});
