/**
 * The conformance suite of core's `StabilityStore` port (acks, snapshots, compaction leases, the
 * purge of the servers' log): the same tests for every adapter (the NATS KV and streams, the
 * PocketBase collections), on real servers. It checks what core's procedures rely on, not how an
 * adapter stores it: an adapter may keep more than the bound allows (PocketBase keeps each origin's
 * newest pack), never less.
 */
import {
  checkpointWithStore,
  compactWithStore,
  createDoc,
  type StabilityStore,
  type Transport,
} from "@nxs-sync/core";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";

/** What one test gets from the adapter under test. */
export interface StabilityFixture {
  /** A fresh doc id. */
  readonly docId: string;
  /** Replica ids the writers may use (bound to their accounts where the adapter binds origins). */
  readonly replicas: readonly [string, string];
  /** The store of the writer of `replicas[i]` (acks, snapshots of its own doc). */
  readonly writerStore: (i: 0 | 1) => StabilityStore;
  /** A transport of the doc, writing as `replicas[i]`, connected. */
  readonly transport: (i: 0 | 1) => Promise<Transport>;
  /** The compactor's store (leases, purges; it may be the same as a writer's). */
  readonly compactorStore: () => StabilityStore;
  /** Waits until what was pushed is readable by pulls (a no-op for a server that is read-your-writes). */
  readonly settle?: () => Promise<void>;
  /** Closes what the fixture opened. */
  readonly close: () => Promise<void>;
}

const schema = z.object({ kv: z.record(z.string(), z.number()) });

/**
 * Registers the suite.
 * @param name - The adapter's name, shown in the test names.
 * @param open - Makes a fixture for one test (a new doc id each time).
 */
export function runStabilityStoreConformance(name: string, open: () => Promise<StabilityFixture>): void {
  describe(`StabilityStore conformance: ${name}`, () => {
    let fixture: StabilityFixture | undefined;
    afterEach(async () => {
      await fixture?.close();
      fixture = undefined;
    });
    const start = async () => {
      fixture = await open();
      return fixture;
    };
    const makeDoc = (f: StabilityFixture, i: 0 | 1) =>
      createDoc({ schema, docId: f.docId, replicaId: f.replicas[i], clock: Date.now, initial: { kv: {} } });

    it("keeps the latest ack per replica, and every replica's", async () => {
      const f = await start();
      const [a, b] = f.replicas;
      await f.writerStore(0).writeAck(f.docId, { replica: a, version: { [a]: 1 }, at: Date.now() });
      await f.writerStore(0).writeAck(f.docId, { replica: a, version: { [a]: 3 }, at: Date.now() });
      await f.writerStore(1).writeAck(f.docId, { replica: b, version: { [a]: 2, [b]: 1 }, at: Date.now() });
      const acks = await f.compactorStore().readAcks(f.docId);
      const byReplica = Object.fromEntries(acks.map((x) => [x.replica, x.version]));
      expect(byReplica).toEqual({ [a]: { [a]: 3 }, [b]: { [a]: 2, [b]: 1 } });
      for (const x of acks) expect(Math.abs(Date.now() - x.at)).toBeLessThan(10 * 60_000);
      expect(await f.compactorStore().readAcks(`${f.docId}-none`)).toEqual([]);
    });

    it("gives the newest snapshot of the doc, and none for another doc", async () => {
      const f = await start();
      const doc = makeDoc(f, 0);
      const t = await f.transport(0);
      const changes = [1, 2, 3].map((n) => doc.set(["kv", `k${n}`], n)).filter((c) => c !== undefined);
      await t.push(changes.slice(0, 2));
      await f.writerStore(0).publishSnapshot(makeDoc(f, 0).snapshot());
      await t.push(changes.slice(2));
      await f.settle?.();
      await f.writerStore(0).publishSnapshot(doc.snapshot());
      const latest = await f.compactorStore().latestSnapshot(f.docId);
      expect(latest?.version).toEqual(doc.version());
      expect(await f.compactorStore().latestSnapshot(`${f.docId}-none`)).toBeUndefined();
    });

    it("lets one holder hold a doc's compaction lease at a time, until it gives it back", async () => {
      const f = await start();
      const store = f.compactorStore();
      const first = await store.acquireLease(f.docId, "c1", 30_000);
      expect(first).toMatchObject({ doc: f.docId, holder: "c1" });
      expect(first?.expiresAt).toBeGreaterThan(Date.now());
      expect(await store.acquireLease(f.docId, "c2", 30_000)).toBeUndefined();
      // Another doc's lease is its own.
      expect(await store.acquireLease(`${f.docId}-other`, "c2", 30_000)).toBeDefined();
      await store.releaseLease(first as NonNullable<typeof first>);
      const second = await store.acquireLease(f.docId, "c2", 30_000);
      expect(second?.holder).toBe("c2");
      await store.releaseLease(second as NonNullable<typeof second>);
    });

    it("purges only changes the bound covers: what is above it stays readable", async () => {
      const f = await start();
      const doc = makeDoc(f, 0);
      const t = await f.transport(0);
      const a = f.replicas[0];
      for (let n = 1; n <= 6; n++) {
        const c = doc.set(["kv", `k${n}`], n);
        if (c) await t.push([c]);
      }
      await f.settle?.();
      const store = f.compactorStore();
      const lease = await store.acquireLease(f.docId, "c1", 30_000);
      expect(lease).toBeDefined();
      const { deleted } = await store.purgeBelow(f.docId, { [a]: 3 }, lease as NonNullable<typeof lease>);
      await store.releaseLease(lease as NonNullable<typeof lease>);
      expect(deleted).toBeGreaterThanOrEqual(1);
      expect(deleted).toBeLessThanOrEqual(3);
      await f.settle?.();
      const seqs: number[] = [];
      for await (const p of t.pull({ [a]: 3 })) for (const c of p.changes) seqs.push(c.seq);
      expect(seqs.sort((x, y) => x - y)).toEqual([4, 5, 6]);
    });

    it("compacts with core's procedures: a reader from nothing still gets the same state", async () => {
      const f = await start();
      const a = makeDoc(f, 0);
      const b = makeDoc(f, 1);
      const ta = await f.transport(0);
      const tb = await f.transport(1);
      for (let n = 1; n <= 5; n++) {
        const c = a.set(["kv", `a${n}`], n);
        if (c) await ta.push([c]);
      }
      for (let n = 1; n <= 3; n++) {
        const c = b.set(["kv", `b${n}`], n);
        if (c) await tb.push([c]);
      }
      await f.settle?.();
      for await (const p of ta.pull(a.version())) a.applyRemote(p.changes);
      for await (const p of tb.pull(b.version())) b.applyRemote(p.changes);
      expect(a.get()).toEqual(b.get());
      await checkpointWithStore({ store: f.writerStore(0), doc: a, now: Date.now(), snapshot: true });
      await checkpointWithStore({ store: f.writerStore(1), doc: b, now: Date.now() });
      await f.settle?.();
      const r = await compactWithStore({
        store: f.compactorStore(),
        doc: f.docId,
        holder: "c1",
        now: Date.now(),
      });
      expect(r.skipped).toBeUndefined();
      expect(r.bound).toEqual(a.version());
      expect(r.deleted).toBeGreaterThan(0);
      await f.settle?.();
      // A new replica: the snapshot and whatever the store kept above it.
      let reader = createDoc({
        schema,
        docId: f.docId,
        replicaId: "reader",
        clock: Date.now,
        initial: { kv: {} },
      });
      for await (const p of ta.pull({})) {
        if (p.snapshot !== undefined) {
          reader = createDoc({
            schema,
            docId: f.docId,
            replicaId: "reader",
            clock: Date.now,
            snapshot: p.snapshot,
          });
        }
        reader.applyRemote(p.changes);
      }
      expect(reader.get()).toEqual(a.get());
    });
  });
}
