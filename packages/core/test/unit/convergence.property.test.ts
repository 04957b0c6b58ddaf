import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { toDocId } from "../../src/clock/ids.js";
import { createDoc, type Doc } from "../../src/doc/doc.js";
import { silentLogger } from "../../src/errors/logger.js";
import { createMemoryStorage } from "../../src/memory/memory-storage.js";
import { createMemoryHub, type MemoryTransport } from "../../src/memory/memory-transport.js";
import { addWinsSet, counter } from "../../src/model/schema.js";
import { createReplica, type Replica } from "../../src/sync/replica.js";
import { createManualScheduler } from "../../src/sync/scheduler.js";
import { drive, tick } from "./support/drive.js";

/**
 * Convergence of the whole stack (document model + sync engine + simulated network): 3 to 5
 * replicas make random local changes while the hub reorders, duplicates and drops realtime
 * deliveries, fails pushes and loses acknowledgements, and replicas get cut off and come back.
 * Dropped deliveries are recovered the way the engine always recovers: a gap triggers a pull, every
 * reconnect triggers a resync pull, and a periodic poll catches a lost last delivery. Once the
 * network heals, every replica must reach the same state and version vector by itself.
 */

const schema = z.object({
  kv: z.record(z.string(), z.number()),
  hits: counter(),
  tags: addWinsSet(z.string()),
});
type State = z.output<typeof schema>;
const initial: State = { kv: {}, hits: 0, tags: [] };
const docId = toDocId("fleet");

type Action =
  | { readonly t: "set"; readonly r: number; readonly key: number; readonly value: number }
  | { readonly t: "del"; readonly r: number; readonly key: number }
  | { readonly t: "inc"; readonly r: number; readonly by: number }
  | { readonly t: "add"; readonly r: number; readonly tag: number }
  | { readonly t: "rem"; readonly r: number; readonly tag: number }
  | { readonly t: "time"; readonly ms: number }
  | { readonly t: "cut"; readonly r: number }
  | { readonly t: "heal"; readonly r: number };

const replicaIndex = fc.nat(4);
const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant("set" as const),
      r: replicaIndex,
      key: fc.nat(5),
      value: fc.integer({ min: -99, max: 99 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("del" as const), r: replicaIndex, key: fc.nat(5) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("inc" as const),
      r: replicaIndex,
      by: fc.integer({ min: -5, max: 5 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("add" as const), r: replicaIndex, tag: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("rem" as const), r: replicaIndex, tag: fc.nat(3) }) },
  {
    weight: 4,
    arbitrary: fc.record({ t: fc.constant("time" as const), ms: fc.integer({ min: 0, max: 400 }) }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("cut" as const), r: replicaIndex }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("heal" as const), r: replicaIndex }) },
);

interface Node {
  readonly doc: Doc<State>;
  readonly replica: Replica<Doc<State>>;
  readonly transport: MemoryTransport;
}

async function run(seed: number, size: number, actions: readonly Action[]) {
  const scheduler = createManualScheduler({ now: 1_700_000_000_000 });
  const hub = createMemoryHub({
    seed,
    scheduler,
    delay: { min: 0, max: 60 },
    reorder: 0.3,
    duplicate: 0.2,
    drop: 0.2,
    pushFailure: 0.1,
    lostAck: 0.1,
    pageSize: 7,
  });
  const nodes: Node[] = [];
  const rejected: string[] = [];
  for (let i = 0; i < size; i++) {
    const doc = createDoc({ schema, docId, replicaId: `r${i}`, clock: () => scheduler.now(), initial });
    const transport = hub.transport(docId, { name: `r${i}` });
    const replica = createReplica({
      doc,
      transport,
      storage: createMemoryStorage(),
      scheduler,
      retry: { minMs: 20, maxMs: 500 },
      pushBatchSize: 3,
      snapshotEvery: 5,
      pollMs: 2_000,
      // Faults are the point here: their warnings would only bury the test output.
      logger: silentLogger,
    });
    replica.on("rejected", ({ rejected: r }) => rejected.push(...r.map((x) => x.error.message)));
    await replica.start();
    nodes.push({ doc, replica, transport });
  }
  let changes = 0;
  for (const a of actions) {
    const node = "r" in a ? nodes[a.r % size]! : undefined;
    const doc = node?.doc;
    switch (a.t) {
      case "set":
        if (doc?.set(["kv", `k${a.key}`], a.value)) changes++;
        break;
      case "del":
        if (doc?.set(["kv", `k${a.key}`], undefined)) changes++;
        break;
      case "inc":
        if (doc?.increment(["hits"], a.by)) changes++;
        break;
      case "add":
        if (doc?.add(["tags"], `t${a.tag}`)) changes++;
        break;
      case "rem":
        if (doc?.remove(["tags"], `t${a.tag}`)) changes++;
        break;
      case "time":
        scheduler.advance(a.ms);
        break;
      case "cut":
        hub.disconnect(node!.transport);
        break;
      case "heal":
        hub.reconnect(node!.transport);
        break;
    }
    await tick();
  }
  // Heal the cut replicas (they resync) and let the engines recover the rest by themselves: retries,
  // gap pulls and the periodic poll. No global resync is forced.
  hub.reconnect();
  const key = (n: Node) => JSON.stringify(Object.entries(n.doc.version()).sort());
  const converged = () =>
    nodes.every((n) => n.replica.status().pendingChanges === 0 && key(n) === key(nodes[0]!)) &&
    Object.values(nodes[0]!.doc.version()).reduce((s, v) => s + v, 0) === changes;
  await drive({ scheduler }, converged, 50_000);
  const result = { nodes, hub, changes, rejected };
  for (const n of nodes) await n.replica.stop();
  return result;
}

describe("convergence through the sync engine (property)", () => {
  it("3-5 replicas converge to the same state and version under reorder, duplication, drops, failures and cuts", async () => {
    let faults = { dropped: 0, duplicated: 0, reordered: 0, failedPushes: 0, lostAcks: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.integer({ min: 3, max: 5 }),
        fc.array(action, { minLength: 5, maxLength: 60 }),
        async (seed, size, actions) => {
          const { nodes, hub, changes, rejected } = await run(seed, size, actions);
          expect(rejected).toEqual([]);
          const first = nodes[0]!;
          for (const n of nodes.slice(1)) {
            expect(n.doc.get()).toEqual(first.doc.get());
            expect(n.doc.version()).toEqual(first.doc.version());
            expect(n.doc.gaps()).toEqual({});
          }
          const total = Object.values(first.doc.version()).reduce((s, v) => s + v, 0);
          expect(total).toBe(changes);
          expect(hub.changes(docId)).toHaveLength(changes);
          const s = hub.stats();
          faults = {
            dropped: faults.dropped + s.dropped,
            duplicated: faults.duplicated + s.duplicated,
            reordered: faults.reordered + s.reordered,
            failedPushes: faults.failedPushes + s.failedPushes,
            lostAcks: faults.lostAcks + s.lostAcks,
          };
        },
      ),
      { seed: 20261127, numRuns: 100 },
    );
    // the network really misbehaved across the runs
    for (const [fault, count] of Object.entries(faults)) expect(count, fault).toBeGreaterThan(0);
  }, 120_000);
});
