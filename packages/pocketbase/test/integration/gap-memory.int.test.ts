import { type Change, encodeHlc } from "@nxs-sync/core";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { Collections, createPocketBaseClient, encodeChangeRecord } from "../../src/index.js";
import { makeNode, quietGateway, recordId, setUpServers } from "./helpers.js";

// Issue 13, item 5 (audit finding 8): changes past a gap were held without bound. With a gateway
// account's own credentials, the audit wrote 30 packs of 10,000 changes starting at seq 1,000,001
// (7 MB on the wire) and gateway B's heap grew 189 MB, never released. Now a doc holds at most
// `maxHeld` changes past gaps (1,000 per origin by default); the rest is dropped (a pull brings it
// again once the gap is filled, which here never happens) and the gateway keeps syncing.

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const attacker = makeNode("gw-evil");
const gwB = makeNode("gw-b");
const gwC = makeNode("gw-c");

beforeAll(async () => {
  server = await servers.start({ name: "gap-memory", batch: false });
  await setUpServers([server], [attacker, gwB, gwC]);
});

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const schema = z.object({ items: z.record(z.string(), z.number()) });
const PACKS = 10;
const PER_PACK = 2_000;
const FIRST_SEQ = 1_000_001;

/** `count` changes of `origin` from seq `from`, stamped in the recent past (inside every drift limit). */
function gapChanges(docId: string, origin: string, from: number, count: number): Change[] {
  const base = Date.now() - 120_000;
  return Array.from({ length: count }, (_, i) => {
    const seq = from + i;
    return {
      doc: docId,
      origin,
      seq,
      hlc: encodeHlc({ ms: base + (seq - FIRST_SEQ), counter: 0, node: origin }),
      ops: [{ kind: "set", path: ["items", `g${seq}`], value: seq }],
    } as unknown as Change;
  });
}

describe("changes past a gap on a real server", () => {
  it("a flood of changes past a gap from one gateway account is held up to the cap; the victim keeps syncing", async () => {
    const docId = `d-${recordId()}`;
    const gateway = (node: typeof gwB, instance: string) =>
      quietGateway({
        node,
        docId,
        instance,
        endpoints: [server.url],
        schema,
        initial: { items: {} },
        cleanup: (fn) => cleanups.push(fn),
      });
    const b = gateway(gwB, "b");
    const c = gateway(gwC, "c");
    await Promise.all([b.replica.start(), c.replica.start()]);

    // The attack: the attacker's own credentials and its own (bound) origin, packs that start a
    // million seqs past anything the fleet has, so every reader holds them waiting for the gap.
    const origin = `${attacker.id}.gap`;
    const evil = createPocketBaseClient({ url: server.url, auth: attacker.auth });
    try {
      for (let p = 0; p < PACKS; p++) {
        const changes = gapChanges(docId, origin, FIRST_SEQ + p * PER_PACK, PER_PACK);
        await evil.call("forge a pack past a gap", (pb) =>
          pb.collection(Collections.Changes).create(encodeChangeRecord(changes, attacker.id)),
        );
      }
    } finally {
      evil.close();
    }

    // B got them (realtime, then the gap pull each brings) and holds exactly the cap: 1,000 of the
    // 20,000, the ones nearest the gap.
    await waitFor(() => b.replica.status().heldChanges === 1_000, {
      timeoutMs: 30_000,
      description: "the victim holds the capped number of changes past the gap",
    });
    expect(b.replica.status().gaps).toEqual({ [origin]: 1 });
    expect(b.doc.get().items).toEqual({});

    // The gateways keep syncing both ways.
    b.doc.set(["items", "from-b"], 1);
    c.doc.set(["items", "from-c"], 2);
    await Promise.all([b.replica.flush(), c.replica.flush()]);
    await waitFor(() => b.doc.get().items["from-c"] === 2 && c.doc.get().items["from-b"] === 1, {
      timeoutMs: 20_000,
      description: "b and c exchanged their writes",
    });
    // Still capped after more traffic and pulls.
    expect(b.replica.status().heldChanges).toBe(1_000);
    expect(c.replica.status().heldChanges).toBe(1_000);
  });
});
