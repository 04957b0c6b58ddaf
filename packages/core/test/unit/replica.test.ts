import { describe, expect, it } from "vitest";
import { toDocId, toReplicaId } from "../../src/clock/ids.js";
import { ErrorCode, isNxsError, TransportError } from "../../src/errors/errors.js";
import { silentLogger } from "../../src/errors/logger.js";
import { createMemoryStorage, type MemoryStorage } from "../../src/memory/memory-storage.js";
import { createMemoryHub, type MemoryHubOptions } from "../../src/memory/memory-transport.js";
import type { Change } from "../../src/model/change.js";
import {
  createReplica,
  openReplica,
  type Replica,
  type ReplicaEvents,
  type ReplicaOptions,
} from "../../src/sync/replica.js";
import { createManualScheduler } from "../../src/sync/scheduler.js";
import type { Storage } from "../../src/sync/storage.js";
import type { Transport, TransportListener } from "../../src/sync/transport.js";
import { drive, driveUntilSettled, tick } from "./support/drive.js";
import { createFakeDoc, type FakeDoc } from "./support/fake-doc.js";

const docId = toDocId("doc");

type Extra = Partial<Omit<ReplicaOptions<FakeDoc>, "doc">> & { snapshots?: boolean };

function setup(hubOptions: MemoryHubOptions = {}) {
  const scheduler = createManualScheduler({ now: 1_000_000 });
  const hub = createMemoryHub({ seed: 1, ...hubOptions });
  const world = { hub, scheduler };
  const make = (name: string, extra: Extra = {}) => {
    const { snapshots, ...rest } = extra;
    const doc = createFakeDoc({
      docId,
      replicaId: toReplicaId(name),
      now: () => scheduler.now(),
      ...(snapshots === undefined ? {} : { snapshots }),
    });
    const storage = createMemoryStorage();
    const transport = hub.transport(docId, { name });
    const onErrorCalls: { code: string; operation: string }[] = [];
    const replica = createReplica<FakeDoc>({
      doc,
      transport,
      storage,
      scheduler,
      retry: { minMs: 100, maxMs: 1_000 },
      logger: silentLogger,
      onError: (error, operation) => onErrorCalls.push({ code: error.code, operation }),
      ...rest,
    });
    const events = record(replica);
    return { doc, storage, transport, replica, events, onErrorCalls };
  };
  return {
    ...world,
    make,
    drive: (until: () => boolean) => drive(world, until),
    settle: <T>(p: Promise<T>) => driveUntilSettled(world, p),
  };
}

function record(replica: Replica<FakeDoc>) {
  const log: { [E in keyof ReplicaEvents]: ReplicaEvents[E][] } = {
    state: [],
    pushed: [],
    applied: [],
    rejected: [],
    hidden: [],
    resync: [],
    error: [],
  };
  for (const name of Object.keys(log) as (keyof ReplicaEvents)[]) {
    replica.on(name, (payload) => (log[name] as unknown[]).push(payload));
  }
  return log;
}

const rejection = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => "resolved",
    (e: unknown) => e,
  );

describe("createReplica", () => {
  it("saves each local change before pushing it, pushes in seq order and empties the outbox", async () => {
    const w = setup();
    const calls: string[] = [];
    const inner = createMemoryStorage();
    const storage: Storage = {
      ...inner,
      load: () => inner.load(),
      appendOutbox: async (cs) => {
        await inner.appendOutbox(cs);
        calls.push(...cs.map((c) => `saved ${c.seq}`));
      },
    };
    const transport = w.hub.transport(docId);
    const push = transport.push.bind(transport);
    transport.push = async (cs) => {
      calls.push(...cs.map((c) => `pushed ${c.seq}`));
      return push(cs);
    };
    const doc = createFakeDoc({ docId, replicaId: toReplicaId("a"), now: () => w.scheduler.now() });
    const replica = createReplica({ doc, transport, storage, scheduler: w.scheduler, pushBatchSize: 2 });
    await replica.start();
    for (let i = 1; i <= 5; i++) doc.set(`k${i}`, i);
    expect(replica.status().pendingChanges).toBe(5);
    await w.settle(replica.flush());
    for (let s = 1; s <= 5; s++)
      expect(calls.indexOf(`saved ${s}`)).toBeLessThan(calls.indexOf(`pushed ${s}`));
    expect(calls.filter((c) => c.startsWith("pushed"))).toEqual([1, 2, 3, 4, 5].map((s) => `pushed ${s}`));
    expect(w.hub.changes(docId).map((c) => c.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(replica.status()).toMatchObject({ pendingChanges: 0, unsavedChanges: 0, connected: true });
    await replica.stop();
  });

  it("reports a throwing event listener as listener/failed and carries on", async () => {
    const w = setup();
    const a = w.make("a");
    a.replica.on("pushed", () => {
      throw new Error("boom in user code");
    });
    await a.replica.start();
    a.doc.set("k1", 1);
    await w.settle(a.replica.flush());
    a.doc.set("k2", 2);
    await w.settle(a.replica.flush());
    expect(w.hub.changes(docId).map((c) => c.seq)).toEqual([1, 2]);
    expect(a.onErrorCalls.filter((c) => c.operation === "listener").map((c) => c.code)).toEqual([
      ErrorCode.ListenerFailed,
      ErrorCode.ListenerFailed,
    ]);
    const reported = a.events.error.find((e) => e.operation === "listener");
    expect(reported?.error.code).toBe("listener/failed");
    expect(reported?.error.cause).toMatchObject({ message: "boom in user code" });
  });

  it("brings two replicas to the same state through realtime deliveries", async () => {
    const w = setup();
    const a = w.make("a");
    const b = w.make("b");
    await a.replica.start();
    await b.replica.start();
    await w.settle(Promise.all([a.replica.synced(), b.replica.synced()]));
    const pulls = w.hub.stats().pulls;
    a.doc.set("x", 1);
    b.doc.set("y", 2);
    await w.settle(Promise.all([a.replica.flush(), b.replica.flush()]));
    await w.drive(() => w.hub.pending() === 0 && b.doc.get().x === 1 && a.doc.get().y === 2);
    expect(w.hub.stats().pulls).toBe(pulls);
    expect(a.doc.get()).toEqual({ x: 1, y: 2 });
    expect(b.doc.get()).toEqual(a.doc.get());
    expect(b.doc.version()).toEqual(a.doc.version());
    expect(b.events.applied.some((e) => e.source === "realtime" && e.changes[0]?.origin === "a")).toBe(true);
    expect(a.events.pushed.flatMap((e) => e.changes.map((c) => c.seq))).toEqual([1]);
  });

  it("pulls on the first resync what the server already has", async () => {
    const w = setup();
    const a = w.make("a");
    await a.replica.start();
    for (let i = 0; i < 3; i++) a.doc.set(`k${i}`, i);
    await w.settle(a.replica.flush());
    const b = w.make("b");
    await b.replica.start();
    await w.settle(b.replica.synced());
    expect(b.doc.get()).toEqual({ k0: 0, k1: 1, k2: 2 });
    expect(b.events.resync[0]).toMatchObject({ reason: "resync", changes: 3, snapshot: false });
    expect(b.events.state.map((e) => e.state)).toEqual(["connecting", "connected"]);
    expect(b.replica.status().lastSyncAt).toBe(w.scheduler.now());
  });

  it("pulls when a realtime change arrives past a gap, reporting gaps and lag meanwhile", async () => {
    const w = setup();
    const a = w.make("a");
    await a.replica.start();
    const base = w.hub.transport(docId, { name: "b" });
    let dropped = 0;
    // a transport that loses the first realtime delivery, as SSE may
    const lossy: Transport = {
      ...base,
      subscribe: (l: TransportListener) =>
        base.subscribe({ ...l, onChanges: (cs) => (dropped++ === 0 ? undefined : l.onChanges(cs)) }),
    };
    const doc = createFakeDoc({ docId, replicaId: toReplicaId("b"), now: () => w.scheduler.now() });
    const b = createReplica({
      doc,
      transport: lossy,
      storage: createMemoryStorage(),
      scheduler: w.scheduler,
    });
    const events = record(b);
    await b.start();
    await w.settle(b.synced());
    w.hub.failNext("pull", new TransportError(ErrorCode.TransportUnavailable, "flaky"));
    a.doc.set("one", 1);
    await w.settle(a.replica.flush());
    w.hub.flush(); // dropped
    a.doc.set("two", 2);
    a.doc.set("three", 3);
    await w.settle(a.replica.flush());
    w.hub.flush(); // seq 2 and 3 arrive: held, the gap pull fails once
    await tick();
    expect(b.status().gaps).toEqual({ a: 1 });
    expect(b.status().lag).toEqual({ a: 3 });
    expect(events.error[0]).toMatchObject({ operation: "pull", error: { code: "transport/unavailable" } });
    await w.settle(b.synced());
    expect(doc.get()).toEqual({ one: 1, two: 2, three: 3 });
    expect(b.status().gaps).toEqual({});
    expect(b.status().lag).toEqual({});
    expect(events.resync.at(-1)).toMatchObject({ reason: "gap", changes: 3 }); // held ones come again
  });

  it("retries a retryable push failure with exponential backoff and jitter", async () => {
    const w = setup();
    const a = w.make("a", { retry: { minMs: 100, maxMs: 10_000 } });
    await a.replica.start();
    await w.settle(a.replica.synced());
    const fail = () => new TransportError(ErrorCode.TransportUnavailable, "server down");
    w.hub.failNext("push", fail());
    w.hub.failNext("push", fail());
    w.hub.failNext("push", fail());
    a.doc.set("k", 1);
    await w.settle(a.replica.flush());
    const delays = a.events.error.map((e) => e.retryInMs!);
    expect(a.events.error.map((e) => e.operation)).toEqual(["push", "push", "push"]);
    expect(delays[0]).toBeGreaterThanOrEqual(50);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[1]).toBeGreaterThanOrEqual(100);
    expect(delays[1]).toBeLessThanOrEqual(200);
    expect(delays[2]).toBeGreaterThanOrEqual(200);
    expect(delays[2]).toBeLessThanOrEqual(400);
    expect(a.onErrorCalls).toHaveLength(3);
    expect(w.hub.changes(docId)).toHaveLength(1);
    expect(a.replica.status().state).toBe("connected");
  });

  it("keeps a change whose push is refused (non-retryable), reports it, and pushes it after a resync", async () => {
    const w = setup();
    const a = w.make("a");
    await a.replica.start();
    await w.settle(a.replica.synced());
    w.hub.failNext("push", new TransportError(ErrorCode.TransportRejected, "rule says no", { status: 403 }));
    a.doc.set("k", 1);
    const error = await w.settle(rejection(a.replica.flush()));
    expect(isNxsError(error) && error.code).toBe("transport/rejected");
    expect(a.events.error).toHaveLength(1);
    expect(a.events.error[0]?.retryInMs).toBeUndefined();
    expect(a.onErrorCalls).toEqual([{ code: "transport/rejected", operation: "push" }]);
    expect(a.replica.status().pendingChanges).toBe(1);
    expect(a.replica.status().lastError?.code).toBe("transport/rejected");
    expect(a.storage.peek()?.outbox.map((c) => c.seq)).toEqual([1]);
    w.hub.disconnect(a.transport);
    w.hub.reconnect(a.transport);
    await w.drive(() => w.hub.pending() === 0);
    await w.settle(a.replica.flush());
    expect(w.hub.changes(docId).map((c) => c.seq)).toEqual([1]);
  });

  it("reports rejected remote changes and keeps applying the good ones", async () => {
    const w = setup();
    const b = w.make("b");
    await b.replica.start();
    await w.settle(b.replica.synced());
    const raw = w.hub.transport(docId);
    await raw.connect();
    const good = (seq: number, key: string): Change => ({
      doc: docId,
      origin: toReplicaId("x"),
      seq,
      hlc: `0000000f4240${String(seq).padStart(6, "0")}x` as Change["hlc"],
      ops: [{ kind: "set", path: [key], value: seq }],
    });
    await raw.push([good(1, "__reject__")]);
    await raw.push([{ ...good(1, "fine"), origin: toReplicaId("y") }]);
    await w.settle(b.replica.synced());
    await w.drive(() => w.hub.pending() === 0);
    expect(b.events.rejected).toHaveLength(1);
    expect(b.events.rejected[0]?.rejected[0]?.error.code).toBe("op/invalid");
    expect(b.doc.get()).toEqual({ fine: 1 });
    expect(b.replica.status().state).toBe("connected");
  });

  it("re-pushes after a lost acknowledgement without duplicating on the server", async () => {
    const w = setup({ lostAck: 0.5, seed: 4 });
    const a = w.make("a");
    await a.replica.start();
    for (let i = 1; i <= 10; i++) a.doc.set(`k${i}`, i);
    await w.settle(a.replica.flush());
    expect(w.hub.stats().lostAcks).toBeGreaterThan(0);
    expect(w.hub.changes(docId).map((c) => c.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it("pushes the rest when a transport acknowledges a prefix only", async () => {
    const w = setup({ maxPushBatch: 2 });
    const a = w.make("a", { pushBatchSize: 10 });
    for (let i = 1; i <= 5; i++) a.doc.set(`k${i}`, i); // before start: kept, saved once loaded
    expect(a.replica.status().unsavedChanges).toBe(5);
    await a.replica.start();
    await w.settle(a.replica.flush());
    expect(a.events.pushed.map((e) => e.changes.length)).toEqual([2, 2, 1]);
    expect(a.events.pushed.map((e) => e.pending)).toEqual([3, 1, 0]);
    expect(w.hub.changes(docId)).toHaveLength(5);
  });

  it("goes disconnected, keeps working locally, and catches up after a reconnect", async () => {
    const w = setup();
    const a = w.make("a");
    const b = w.make("b");
    await a.replica.start();
    await b.replica.start();
    await w.settle(Promise.all([a.replica.synced(), b.replica.synced()]));
    w.hub.disconnect(b.transport);
    expect(b.replica.status().state).toBe("disconnected");
    a.doc.set("from-a", 1);
    b.doc.set("from-b", 2);
    await w.settle(a.replica.flush());
    w.hub.flush();
    expect(b.doc.get()).toEqual({ "from-b": 2 });
    expect(b.replica.status().pendingChanges).toBe(1);
    w.hub.reconnect(b.transport);
    await w.settle(Promise.all([a.replica.synced(), b.replica.synced()]));
    await w.drive(() => a.doc.get()["from-b"] === 2);
    expect(b.doc.get()).toEqual(a.doc.get());
    expect(b.events.state.map((e) => e.state)).toEqual([
      "connecting",
      "connected",
      "disconnected",
      "connected",
    ]);
    expect(b.events.resync.map((e) => e.reason)).toEqual(["resync", "resync"]);
  });

  it("retries the first connect until the transport is reachable", async () => {
    const w = setup();
    w.hub.failNext("connect", new TransportError(ErrorCode.TransportUnavailable, "no route"));
    w.hub.failNext("connect", new TransportError(ErrorCode.TransportUnavailable, "no route"));
    const a = w.make("a");
    await a.replica.start();
    a.doc.set("k", 1);
    await w.settle(a.replica.synced());
    expect(a.events.error.map((e) => e.operation)).toEqual(["connect", "connect"]);
    expect(w.hub.changes(docId)).toHaveLength(1);
  });

  it("bootstraps from a server snapshot when the server compacted", async () => {
    const w = setup();
    const a = w.make("a");
    await a.replica.start();
    for (let i = 1; i <= 4; i++) a.doc.set(`k${i}`, i);
    await w.settle(a.replica.flush());
    const snapshot = a.doc.snapshot();
    a.doc.set("k5", 5);
    await w.settle(a.replica.flush());
    w.hub.compact(snapshot);
    const c = w.make("c");
    await c.replica.start();
    await w.settle(c.replica.synced());
    expect(c.doc.get()).toEqual(a.doc.get());
    expect(c.doc.version()).toEqual({ a: 5 });
    expect(c.events.resync[0]).toMatchObject({ snapshot: true, changes: 1 });
  });

  it("reports a server snapshot it cannot load when the doc has no applySnapshot", async () => {
    const w = setup();
    const a = w.make("a");
    await a.replica.start();
    a.doc.set("k1", 1);
    a.doc.set("k2", 2);
    await w.settle(a.replica.flush());
    w.hub.compact({ ...a.doc.snapshot(), version: { a: 1 } });
    const c = w.make("c", { snapshots: false });
    await c.replica.start();
    await w.drive(() => c.events.resync.length > 0);
    expect(c.events.error[0]).toMatchObject({ operation: "pull", error: { code: "op/invalid" } });
    expect(c.replica.status().gaps).toEqual({ a: 1 });
  });

  it("saves snapshots and trims the acknowledged outbox every `snapshotEvery` changes", async () => {
    const w = setup();
    const a = w.make("a", { snapshotEvery: 3 });
    await a.replica.start();
    for (let i = 1; i <= 4; i++) a.doc.set(`k${i}`, i);
    await w.settle(a.replica.flush());
    await w.drive(() => a.storage.peek()?.snapshot !== undefined);
    const stored = a.storage.peek()!;
    const covered = stored.snapshot!.version.a ?? 0;
    expect(covered).toBeGreaterThanOrEqual(3);
    expect(stored.outbox.every((c) => c.seq > covered)).toBe(true);
    expect(stored.last?.seq).toBe(4);
    await a.replica.stop();
    const final = a.storage.peek()!;
    expect(final.snapshot?.version).toEqual({ a: 4 });
    expect(final.outbox).toEqual([]);
  });

  it("never lets a throwing listener break the loop", async () => {
    const w = setup();
    const a = w.make("a");
    const b = w.make("b");
    b.replica.on("applied", () => {
      throw new Error("listener bug");
    });
    await a.replica.start();
    await b.replica.start();
    a.doc.set("k", 1);
    await w.settle(a.replica.flush());
    a.doc.set("k2", 2);
    await w.settle(Promise.all([a.replica.flush(), b.replica.synced()]));
    await w.drive(() => b.doc.get().k2 === 2);
    expect(b.doc.get()).toEqual({ k: 1, k2: 2 });
    expect(b.events.error.some((e) => e.operation === "listener")).toBe(true);
  });

  it("polls every pollMs as a safety net when realtime loses everything", async () => {
    const w = setup({ drop: 1 });
    const a = w.make("a");
    const b = w.make("b", { pollMs: 5_000 });
    await a.replica.start();
    await b.replica.start();
    await w.settle(Promise.all([a.replica.synced(), b.replica.synced()]));
    const t0 = w.scheduler.now();
    a.doc.set("k", 1);
    await w.settle(a.replica.flush());
    w.hub.flush();
    expect(b.doc.get()).toEqual({});
    await w.drive(() => b.doc.get().k === 1);
    expect(w.scheduler.now() - t0).toBeGreaterThanOrEqual(5_000);
    expect(b.events.resync.at(-1)?.reason).toBe("poll");
    await b.replica.stop();
  });

  it("stops: closes transport and storage, rejects waiters, ignores later events; stop is idempotent", async () => {
    const w = setup();
    const a = w.make("a");
    await a.replica.start();
    await w.settle(a.replica.synced());
    w.hub.disconnect(a.transport);
    a.doc.set("k", 1);
    const pending = rejection(a.replica.flush());
    await a.replica.stop();
    await a.replica.stop();
    const error = await pending;
    expect(isNxsError(error) && error.code).toBe("closed");
    expect(a.transport.state()).toBe("closed");
    expect(a.storage.peek()?.outbox.map((c) => c.seq)).toEqual([1]);
    await expect(a.storage.load()).rejects.toMatchObject({ code: "closed" });
    expect(a.replica.status().state).toBe("stopped");
    expect(a.events.state.at(-1)?.state).toBe("stopped");
    await expect(a.replica.start()).rejects.toMatchObject({ code: "closed" });
    expect(w.scheduler.pending()).toBe(0);
  });

  it("refuses to start a doc that is behind its storage (it would reuse seqs)", async () => {
    const w = setup();
    const storage: MemoryStorage = createMemoryStorage();
    const old = createFakeDoc({ docId, replicaId: toReplicaId("a"), now: () => 1 });
    const made = [old.set("a", 1), old.set("b", 2)];
    await storage.appendOutbox(made);
    await storage.ackOutbox(2);
    const fresh = createFakeDoc({ docId, replicaId: toReplicaId("a"), now: () => 1 });
    const replica = createReplica({
      doc: fresh,
      transport: w.hub.transport(docId),
      storage,
      scheduler: w.scheduler,
    });
    await expect(replica.start()).rejects.toMatchObject({ code: ErrorCode.Conflict });
  });

  it("restores with openReplica: snapshot, then the stored outbox replayed and pushed", async () => {
    const w = setup();
    const storage = createMemoryStorage();
    const first = createFakeDoc({ docId, replicaId: toReplicaId("a"), now: () => w.scheduler.now() });
    const r1 = createReplica({
      doc: first,
      transport: w.hub.transport(docId),
      storage,
      scheduler: w.scheduler,
    });
    await r1.start();
    first.set("acked", 1);
    await w.settle(r1.flush());
    await r1.stop(); // final snapshot covers seq 1
    const again = storage.reopen();
    const doc2 = createFakeDoc({ docId, replicaId: toReplicaId("a"), now: () => w.scheduler.now() });
    const r2 = createReplica({
      doc: doc2,
      transport: w.hub.transport(docId),
      storage: again,
      scheduler: w.scheduler,
    });
    w.hub.disconnect();
    await r2.start();
    doc2.set("offline", 2);
    await w.drive(() => r2.status().unsavedChanges === 0);
    // crash: r2 is dropped without stop
    const t3 = w.hub.transport(docId);
    w.hub.disconnect(t3);
    const r3 = await openReplica({
      storage: again.reopen(),
      transport: t3,
      scheduler: w.scheduler,
      createDoc: (restored) =>
        createFakeDoc({ docId, replicaId: toReplicaId("a"), now: () => w.scheduler.now(), restored }),
    });
    expect(r3.doc.get()).toEqual({ acked: 1, offline: 2 });
    expect(r3.status().pendingChanges).toBe(1);
    w.hub.reconnect(t3);
    await w.settle(r3.flush());
    expect(w.hub.changes(docId).map((c) => c.seq)).toEqual([1, 2]);
    expect(r3.doc.set("next", 3).seq).toBe(3);
  });
});
