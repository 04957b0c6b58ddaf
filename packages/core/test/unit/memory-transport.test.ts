import { runTransportConformance } from "@nxs-sync/testing/conformance";
import { describe, expect, it } from "vitest";
import { encodeHlc } from "../../src/clock/hlc.js";
import { type DocId, toDocId, toReplicaId } from "../../src/clock/ids.js";
import { ErrorCode, isNxsError, TransportError } from "../../src/errors/errors.js";
import { createMemoryHub } from "../../src/memory/memory-transport.js";
import type { Change } from "../../src/model/change.js";
import { createManualScheduler } from "../../src/sync/scheduler.js";

let docCounter = 0;

runTransportConformance("MemoryTransport", () => {
  const hub = createMemoryHub({ seed: 3, pageSize: 4 });
  docCounter++;
  const docId = toDocId(`doc-${docCounter}`);
  return {
    docId,
    otherDocId: toDocId(`other-${docCounter}`),
    pageSize: 4,
    open: (id) => hub.transport(id ?? docId),
    settle: async () => {
      hub.flush();
      await Promise.resolve();
    },
    reconnect: async (t) => {
      hub.disconnect(t as ReturnType<typeof hub.transport>);
      hub.reconnect(t as ReturnType<typeof hub.transport>);
    },
  };
});

runTransportConformance("MemoryTransport (faulty realtime, scheduler-driven)", () => {
  const scheduler = createManualScheduler();
  const hub = createMemoryHub({
    seed: 11,
    scheduler,
    delay: { min: 1, max: 20 },
    reorder: 0.5,
    duplicate: 0.5,
  });
  docCounter++;
  const docId = toDocId(`doc-${docCounter}`);
  return {
    docId,
    otherDocId: toDocId(`other-${docCounter}`),
    open: (id) => hub.transport(id ?? docId),
    settle: async () => {
      scheduler.advance(10);
      await Promise.resolve();
    },
    reconnect: async (t) => {
      hub.disconnect(t as ReturnType<typeof hub.transport>);
      hub.reconnect(t as ReturnType<typeof hub.transport>);
    },
  };
});

const doc = toDocId("d");
const change = (docId: DocId, origin: string, seq: number): Change => ({
  doc: docId,
  origin: toReplicaId(origin),
  seq,
  hlc: encodeHlc({ ms: 1000 + seq, counter: 0, node: origin }),
  ops: [{ kind: "set", path: ["k"], value: seq }],
});

const collect = (t: {
  subscribe: (l: { onChanges: (c: readonly Change[]) => void; onResync: () => void }) => void;
}) => {
  const got: string[] = [];
  let resyncs = 0;
  t.subscribe({
    onChanges: (cs) => got.push(...cs.map((c) => `${c.origin}:${c.seq}`)),
    onResync: () => resyncs++,
  });
  return { got, resyncs: () => resyncs };
};

describe("createMemoryHub", () => {
  it("simulates reorder, duplicates and drops reproducibly from the seed", async () => {
    const run = async (seed: number) => {
      const hub = createMemoryHub({ seed, reorder: 0.4, duplicate: 0.3, drop: 0.2 });
      const a = hub.transport(doc);
      const b = hub.transport(doc);
      const seen = collect(b);
      await a.connect();
      await b.connect();
      for (let s = 1; s <= 30; s++) await a.push([change(doc, "a", s)]);
      hub.flush();
      return { got: seen.got, stats: hub.stats() };
    };
    const one = await run(5);
    expect(await run(5)).toEqual(one);
    expect(one.stats.dropped).toBeGreaterThan(0);
    expect(one.stats.duplicated).toBeGreaterThan(0);
    expect(one.stats.reordered).toBeGreaterThan(0);
    expect(one.got).not.toEqual([...one.got].sort((x, y) => Number(x.slice(2)) - Number(y.slice(2))));
    expect((await run(6)).got).not.toEqual(one.got);
  });

  it("holds deliveries until stepped when no scheduler is given", async () => {
    const hub = createMemoryHub();
    const a = hub.transport(doc);
    const b = hub.transport(doc);
    const seen = collect(b);
    await a.connect();
    await b.connect();
    await a.push([change(doc, "a", 1)]);
    expect(seen.got).toEqual([]);
    expect(hub.pending()).toBe(3); // two resync signals and one delivery
    expect(hub.step()).toBe(true);
    hub.flush();
    expect(seen.got).toEqual(["a:1"]);
    expect(seen.resyncs()).toBe(1);
    expect(hub.step()).toBe(false);
  });

  it("delivers by itself after the configured delay with a scheduler", async () => {
    const scheduler = createManualScheduler();
    const hub = createMemoryHub({ scheduler, delay: 50 });
    const a = hub.transport(doc);
    const b = hub.transport(doc);
    const seen = collect(b);
    await a.connect();
    await b.connect();
    await a.push([change(doc, "a", 1)]);
    scheduler.advance(49);
    expect(seen.got).toEqual([]);
    scheduler.advance(1);
    expect(seen.got).toEqual(["a:1"]);
  });

  it("fails push as configured: before commit, or after commit with the answer lost", async () => {
    const hub = createMemoryHub({ seed: 2, pushFailure: 0.3, lostAck: 0.3 });
    const a = hub.transport(doc);
    await a.connect();
    let failures = 0;
    for (let s = 1; s <= 20; s++) {
      for (;;) {
        try {
          await a.push([change(doc, "a", s)]);
          break;
        } catch (e) {
          expect(isNxsError(e) && e.code === ErrorCode.TransportUnavailable && e.retryable).toBe(true);
          failures++;
        }
      }
    }
    const stats = hub.stats();
    expect(failures).toBe(stats.failedPushes + stats.lostAcks);
    expect(stats.failedPushes).toBeGreaterThan(0);
    expect(stats.lostAcks).toBeGreaterThan(0);
    expect(hub.changes(doc).map((c) => c.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it("acknowledges a prefix when maxPushBatch is set, and injects given faults", async () => {
    const hub = createMemoryHub({ maxPushBatch: 2 });
    const a = hub.transport(doc);
    await a.connect();
    expect(await a.push([1, 2, 3].map((s) => change(doc, "a", s)))).toEqual({ acked: 2 });
    hub.failNext("push", new TransportError(ErrorCode.TransportRejected, "no"));
    await expect(a.push([change(doc, "a", 3)])).rejects.toMatchObject({ code: "transport/rejected" });
    expect(await a.push([change(doc, "a", 3)])).toEqual({ acked: 1 });
  });

  it("refuses a change of another document", async () => {
    const hub = createMemoryHub();
    const a = hub.transport(doc);
    await a.connect();
    await expect(a.push([change(toDocId("x"), "a", 1)])).rejects.toMatchObject({
      code: "transport/rejected",
    });
  });

  it("loses deliveries across a disconnect, fails push meanwhile and resyncs on reconnect", async () => {
    const hub = createMemoryHub();
    const a = hub.transport(doc);
    const b = hub.transport(doc);
    const seen = collect(b);
    const states: string[] = [];
    b.subscribe({ onChanges: () => {}, onResync: () => {}, onState: (s) => states.push(s) });
    await a.connect();
    await b.connect();
    hub.flush();
    await a.push([change(doc, "a", 1)]);
    hub.disconnect(b);
    hub.flush();
    expect(seen.got).toEqual([]);
    await expect(b.push([change(doc, "b", 1)])).rejects.toMatchObject({ code: "transport/unavailable" });
    hub.reconnect(b);
    hub.flush();
    expect(seen.resyncs()).toBe(2);
    expect(states).toEqual(["connected", "disconnected", "connected"]);
  });

  it("waits in connect while cut off, and connects on reconnect", async () => {
    const hub = createMemoryHub();
    const a = hub.transport(doc);
    hub.disconnect(a);
    let connected = false;
    const p = a.connect().then(() => (connected = true));
    await Promise.resolve();
    expect(connected).toBe(false);
    expect(a.state()).toBe("connecting");
    hub.reconnect(a);
    await p;
    expect(a.state()).toBe("connected");
  });

  it("starts a pull with the snapshot when the caller lacks compacted changes", async () => {
    const hub = createMemoryHub();
    const a = hub.transport(doc);
    await a.connect();
    await a.push([1, 2, 3, 4].map((s) => change(doc, "a", s)));
    hub.compact({ format: 1, doc, version: { a: 2 }, state: { k: 2 } });
    expect(hub.changes(doc).map((c) => c.seq)).toEqual([3, 4]);
    const pages = [];
    for await (const page of a.pull({})) pages.push(page);
    expect(pages[0]?.snapshot?.version).toEqual({ a: 2 });
    expect(pages.flatMap((p) => p.changes.map((c) => c.seq))).toEqual([3, 4]);
    const later = [];
    for await (const page of a.pull({ a: 2 })) later.push(page);
    expect(later.map((p) => p.snapshot)).toEqual([undefined]);
    expect(await a.push([change(doc, "a", 1)])).toEqual({ acked: 1 });
    expect(hub.changes(doc)).toHaveLength(2);
  });
});
