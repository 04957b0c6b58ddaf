import {
  type Change,
  type DocId,
  encodeHlc,
  isNxsError,
  type ReplicaId,
  type Snapshot,
  type Storage,
  toDocId,
  toReplicaId,
} from "@nxs-sync/core";
import { afterEach, describe, expect, it } from "vitest";

/** What {@link runStorageConformance} needs for one test: a storage over a fresh, empty location. */
export interface StorageConformanceContext {
  /** The storage under test (not used by anyone else). */
  readonly storage: Storage;
  /**
   * Opens a new handle over the same location, as a restarted process would. When given, the
   * suite also checks that everything survives `close()` and a reopen.
   */
  reopen?(): Storage | Promise<Storage>;
  /** Removes what the test left (temp directories). Called after each test. */
  cleanup?(): Promise<void>;
}

const DOC: DocId = toDocId("conformance-doc");
const ME: ReplicaId = toReplicaId("replica-a");

/** A valid local change with the given seq (and an HLC growing with it). */
function change(seq: number, value: number = seq): Change {
  return {
    doc: DOC,
    origin: ME,
    seq,
    hlc: encodeHlc({ ms: 1_700_000_000_000 + seq, counter: 0, node: ME }),
    ops: [{ kind: "set", path: ["k", String(seq % 7)], value: { n: value, tags: ["x", "y"] } }],
  };
}

function snapshot(upTo: number, marker: string): Snapshot {
  return {
    format: 1,
    doc: DOC,
    version: { [ME]: upTo, other: 3 },
    state: { marker, nested: { list: [1, 2] } },
  };
}

const seqs = (changes: readonly Change[] | undefined): number[] => (changes ?? []).map((c) => c.seq);

/**
 * The conformance suite of the `Storage` port: every storage adapter runs it (memory and file
 * storages in core). Registers a vitest `describe` block.
 * @param name - A label of the adapter, used in the describe title.
 * @param setup - Called before each test; returns a storage over a fresh, empty location.
 * @example
 * ```ts
 * import { createMemoryStorage } from "@nxs-sync/core/memory";
 *
 * runStorageConformance("memory", () => ({ storage: createMemoryStorage() }));
 * ```
 */
export function runStorageConformance(
  name: string,
  setup: () => StorageConformanceContext | Promise<StorageConformanceContext>,
): void {
  describe(`Storage conformance: ${name}`, () => {
    let ctx: StorageConformanceContext | undefined;
    const open = async (): Promise<StorageConformanceContext> => {
      ctx = await setup();
      return ctx;
    };
    afterEach(async () => {
      await ctx?.storage.close();
      await ctx?.cleanup?.();
      ctx = undefined;
    });

    it("loads undefined when nothing was saved", async () => {
      const { storage } = await open();
      expect(await storage.load()).toBeUndefined();
    });

    it("returns appended changes in order, with last = the highest seq and its hlc", async () => {
      const { storage } = await open();
      await storage.appendOutbox([change(1), change(2)]);
      await storage.appendOutbox([change(3)]);
      const state = await storage.load();
      expect(seqs(state?.outbox)).toEqual([1, 2, 3]);
      expect(state?.outbox).toEqual([change(1), change(2), change(3)]);
      expect(state?.last).toEqual({ seq: 3, hlc: change(3).hlc });
      expect(state?.snapshot).toBeUndefined();
    });

    it("drops acknowledged changes (seq <= ack) and keeps the rest", async () => {
      const { storage } = await open();
      await storage.appendOutbox([1, 2, 3, 4, 5].map((s) => change(s)));
      await storage.ackOutbox(3);
      expect(seqs((await storage.load())?.outbox)).toEqual([4, 5]);
      await storage.ackOutbox(2); // below what is left: no-op
      await storage.ackOutbox(3); // repeated: no-op
      expect(seqs((await storage.load())?.outbox)).toEqual([4, 5]);
    });

    it("keeps last after every change was acknowledged", async () => {
      const { storage } = await open();
      await storage.appendOutbox([change(1), change(2)]);
      await storage.ackOutbox(2);
      const state = await storage.load();
      expect(state?.outbox).toEqual([]);
      expect(state?.last).toEqual({ seq: 2, hlc: change(2).hlc });
    });

    it("saves a snapshot and replaces it with the next one", async () => {
      const { storage } = await open();
      await storage.saveSnapshot(snapshot(1, "first"));
      expect((await storage.load())?.snapshot).toEqual(snapshot(1, "first"));
      await storage.saveSnapshot(snapshot(2, "second"));
      const state = await storage.load();
      expect(state?.snapshot).toEqual(snapshot(2, "second"));
      expect(state?.outbox).toEqual([]);
    });

    it("applies calls made without awaiting in call order", async () => {
      const { storage } = await open();
      await Promise.all([
        storage.appendOutbox([change(1)]),
        storage.appendOutbox([change(2), change(3)]),
        storage.ackOutbox(2),
        storage.saveSnapshot(snapshot(2, "s")),
        storage.appendOutbox([change(4)]),
      ]);
      const state = await storage.load();
      expect(seqs(state?.outbox)).toEqual([3, 4]);
      expect(state?.snapshot).toEqual(snapshot(2, "s"));
      expect(state?.last?.seq).toBe(4);
    });

    it("does not alias what callers pass or get", async () => {
      const { storage } = await open();
      const batch = [change(1)];
      await storage.appendOutbox(batch);
      batch.push(change(2));
      const loaded = await storage.load();
      expect(seqs(loaded?.outbox)).toEqual([1]);
      (loaded!.outbox as Change[]).length = 0;
      expect(seqs((await storage.load())?.outbox)).toEqual([1]);
    });

    it("round-trips a large batch", async () => {
      const { storage } = await open();
      const many = Array.from({ length: 500 }, (_, i) => change(i + 1, i * 31));
      await storage.appendOutbox(many);
      await storage.ackOutbox(250);
      const state = await storage.load();
      expect(state?.outbox).toEqual(many.slice(250));
      expect(state?.last?.seq).toBe(500);
    });

    it("keeps outbox, last and snapshot across close and reopen", async (t) => {
      const c = await open();
      if (c.reopen === undefined) {
        t.skip("this storage setup provides no reopen(): restart durability cannot be checked");
        return;
      }
      await c.storage.appendOutbox([1, 2, 3, 4].map((s) => change(s)));
      await c.storage.ackOutbox(2);
      await c.storage.saveSnapshot(snapshot(2, "persisted"));
      await c.storage.close();
      const again = await c.reopen();
      try {
        const state = await again.load();
        expect(seqs(state?.outbox)).toEqual([3, 4]);
        expect(state?.last).toEqual({ seq: 4, hlc: change(4).hlc });
        expect(state?.snapshot).toEqual(snapshot(2, "persisted"));
        await again.ackOutbox(4);
        await again.close();
        const third = await c.reopen();
        const after = await third.load();
        expect(after?.outbox).toEqual([]);
        expect(after?.last?.seq).toBe(4);
        await third.close();
      } finally {
        await again.close();
      }
    });

    it("closes idempotently and refuses use after close", async () => {
      const { storage } = await open();
      await storage.appendOutbox([change(1)]);
      await storage.close();
      await storage.close();
      const error = await storage.appendOutbox([change(2)]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isNxsError(error)).toBe(true);
    });
  });
}
