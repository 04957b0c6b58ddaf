import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  type CompactionLease,
  checkpointWithStore,
  compactWithStore,
  createDoc,
  type Snapshot,
  type StabilityStore,
  type StoredAck,
  type VersionVector,
} from "../../src/index.js";

/** An in-memory StabilityStore: the port's contract, as small as it gets. */
function memoryStore() {
  const acks = new Map<string, StoredAck>();
  const snapshots: Snapshot[] = [];
  let lease: CompactionLease | undefined;
  let revision = 0;
  const purged: VersionVector[] = [];
  const store: StabilityStore = {
    writeAck: async (_doc, ack) => void acks.set(ack.replica, ack),
    readAcks: async () => [...acks.values()],
    publishSnapshot: async (s) => void snapshots.push(s),
    latestSnapshot: async () => snapshots.at(-1),
    acquireLease: async (doc, holder, ttlMs) => {
      if (lease !== undefined && lease.holder !== holder) return undefined;
      lease = { doc, holder, expiresAt: 1000 + ttlMs, token: String(++revision) };
      return lease;
    },
    releaseLease: async (l) => {
      if (lease?.token === l.token) lease = undefined;
    },
    purgeBelow: async (_doc, bound) => {
      purged.push(bound);
      return { deleted: Object.values(bound).reduce((a, b) => a + b, 0) };
    },
  };
  return {
    store,
    purged,
    hold: (holder: string) => (lease = { doc: "d", holder, expiresAt: 0, token: "x" }),
  };
}

const schema = z.object({ kv: z.record(z.string(), z.number()) });
const doc = (replicaId: string) => createDoc({ schema, docId: "d", replicaId, initial: { kv: {} } });

describe("stability port", () => {
  it("a checkpoint writes the ack and compacts the doc once every live replica acknowledged", async () => {
    const { store } = memoryStore();
    const a = doc("a");
    const b = doc("b");
    const ca = [a.set(["kv", "x"], 1), a.set(["kv", "y"], 2)].filter((c) => c !== undefined);
    b.applyRemote(ca);
    const first = await checkpointWithStore({ store, doc: a, now: 1000, snapshot: true });
    expect(first.version).toEqual({ a: 2 });
    expect(first.snapshot).toBe(true);
    const fromB = await checkpointWithStore({ store, doc: b, now: 1000 });
    expect(fromB.frontier).toEqual({ a: 2 });
    // b's ack expired: a compacts with itself alone.
    const later = await checkpointWithStore({
      store,
      doc: a,
      now: 1000 + 25 * 3600_000,
      expiryMs: 24 * 3600_000,
    });
    expect(later.frontier).toEqual({ a: 2 });
  });

  it("compaction purges below min(frontier, snapshot), once per lease, and says why it skips", async () => {
    const { store, purged, hold } = memoryStore();
    expect((await compactWithStore({ store, doc: "d", holder: "c", now: 1000 })).skipped).toBe("no-acks");
    await store.writeAck("d", { replica: "a", version: { a: 5, b: 2 }, at: 1000 });
    await store.writeAck("d", { replica: "b", version: { a: 3, b: 4 }, at: 1000 });
    expect((await compactWithStore({ store, doc: "d", holder: "c", now: 1000 })).skipped).toBe("no-snapshot");
    await store.publishSnapshot({
      format: 1,
      doc: "d",
      version: { a: 4, b: 1 },
      state: {},
    } as unknown as Snapshot);
    const r = await compactWithStore({ store, doc: "d", holder: "c", now: 1000 });
    expect(r).toMatchObject({ frontier: { a: 3, b: 2 }, bound: { a: 3, b: 1 }, deleted: 4 });
    expect(purged).toEqual([{ a: 3, b: 1 }]);
    // A compactor that holds the doc writes its snapshot under the lease and bounds the purge by it.
    const own = { format: 1, doc: "d", version: { a: 3, b: 2 }, state: {} } as unknown as Snapshot;
    const withOwn = await compactWithStore({ store, doc: "d", holder: "c", now: 1000, snapshot: own });
    expect(withOwn.bound).toEqual({ a: 3, b: 2 });
    expect(await store.latestSnapshot("d")).toBe(own);
    hold("other");
    expect((await compactWithStore({ store, doc: "d", holder: "c", now: 1000 })).skipped).toBe("lease-held");
  });
});
