import { describe, expect, it } from "vitest";
import { z } from "zod";
import { toDocId } from "../../src/clock/ids.js";
import { createDoc } from "../../src/doc/doc.js";
import { ErrorCode } from "../../src/errors/errors.js";
import { silentLogger } from "../../src/errors/logger.js";
import { createMemoryStorage } from "../../src/memory/memory-storage.js";
import { createMemoryHub } from "../../src/memory/memory-transport.js";
import { createReplica } from "../../src/sync/replica.js";
import { createManualScheduler } from "../../src/sync/scheduler.js";
import { driveUntilSettled } from "./support/drive.js";

const schema = z.object({ items: z.record(z.string(), z.number()) });
const make = (now: () => number) =>
  createDoc({ schema, docId: "d", replicaId: "gw1.a", clock: now, initial: { items: {} } });

describe("replica identity across incarnations", () => {
  it("a doc that receives a snapshot covering its own origin continues after it (no seq reused)", () => {
    let t = 1_000;
    const earlier = make(() => t++);
    for (let i = 0; i < 5; i++) earlier.set(["items", `k${i}`], i);
    // A new incarnation of the same replica id on empty storage, with a clock behind the earlier one.
    const later = make(() => 10);
    later.applySnapshot(earlier.snapshot());
    const next = later.set(["items", "new"], 9);
    expect(next?.seq).toBe(6);
    expect((next?.hlc ?? "") > (earlier.changesSince({}).at(-1)?.hlc ?? "")).toBe(true);
    // And the earlier incarnation's replicas accept it.
    expect(earlier.applyRemote([next]).applied).toHaveLength(1);
    expect(earlier.get()).toEqual(later.get());
  });

  it("a doc that pulls its own origin's earlier changes continues after them", () => {
    let t = 1_000;
    const earlier = make(() => t++);
    for (let i = 0; i < 3; i++) earlier.set(["items", `k${i}`], i);
    const later = make(() => 10);
    expect(later.applyRemote(earlier.changesSince({})).applied).toHaveLength(3);
    expect(later.set(["items", "x"], 1)?.seq).toBe(4);
  });
});

describe("a replica restarted on empty storage (same replica id)", () => {
  const docId = toDocId("d");
  const world = () => {
    const scheduler = createManualScheduler({ now: 1_000_000 });
    const hub = createMemoryHub({ seed: 7 });
    const w = { hub, scheduler };
    const replicaOf = (name: string, identityCheck = true) => {
      const doc = createDoc({
        schema,
        docId,
        replicaId: name,
        clock: () => scheduler.now(),
        initial: { items: {} },
      });
      const replica = createReplica({
        doc,
        transport: hub.transport(docId),
        storage: createMemoryStorage(),
        scheduler,
        logger: silentLogger,
        identityCheck,
      });
      return { doc, replica };
    };
    return { ...w, replicaOf, settle: <T>(p: Promise<T>) => driveUntilSettled(w, p) };
  };

  it("catches up on its earlier incarnation's changes before start() resolves and continues after them", async () => {
    const w = world();
    const first = w.replicaOf("gw1.a");
    await w.settle(first.replica.start());
    for (let i = 0; i < 3; i++) first.doc.set(["items", `k${i}`], i);
    await w.settle(first.replica.flush());
    // Killed: never stopped. The same id comes back on a fresh volume.
    const again = w.replicaOf("gw1.a");
    await w.settle(again.replica.start());
    expect(again.doc.get().items).toEqual({ k0: 0, k1: 1, k2: 2 });
    const next = again.doc.set(["items", "new"], 9);
    expect(next?.seq).toBe(4);
    await w.settle(again.replica.flush());
    expect(w.hub.changes(docId).map((c) => c.seq)).toEqual([1, 2, 3, 4]);
    const reader = w.replicaOf("gw2.r");
    await w.settle(reader.replica.start());
    await w.settle(reader.replica.synced());
    expect(reader.doc.get()).toEqual(again.doc.get());
  });

  it("without the identity check (the old behaviour) the new incarnation's writes are taken for duplicates and lost", async () => {
    const w = world();
    const first = w.replicaOf("gw1.a");
    await w.settle(first.replica.start());
    first.doc.set(["items", "old"], 1);
    await w.settle(first.replica.flush());
    const again = w.replicaOf("gw1.a", false);
    await w.settle(again.replica.start());
    again.doc.set(["items", "new"], 2);
    await w.settle(again.replica.flush()); // "acknowledged"
    const reader = w.replicaOf("gw2.r");
    await w.settle(reader.replica.start());
    await w.settle(reader.replica.synced());
    expect(reader.doc.get().items.new).toBeUndefined();
  });

  it("refuses to push changes made on empty storage before start() learned the servers' history", async () => {
    const w = world();
    const first = w.replicaOf("gw1.a");
    await w.settle(first.replica.start());
    first.doc.set(["items", "old"], 1);
    await w.settle(first.replica.flush());
    const again = w.replicaOf("gw1.a");
    again.doc.set(["items", "early"], 2);
    await expect(w.settle(again.replica.start())).rejects.toMatchObject({ code: ErrorCode.Conflict });
    expect(w.hub.changes(docId)).toHaveLength(1);
  });
});
