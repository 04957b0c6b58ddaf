import { describe, expect, it } from "vitest";
import { toDocId, toReplicaId } from "../../src/clock/ids.js";
import { ErrorCode, type NxsError, TransportError } from "../../src/errors/errors.js";
import { silentLogger } from "../../src/errors/logger.js";
import { createMemoryStorage } from "../../src/memory/memory-storage.js";
import { createMemoryHub } from "../../src/memory/memory-transport.js";
import type { Change } from "../../src/model/change.js";
import { createReplica, openReplica, type ReplicaEvents } from "../../src/sync/replica.js";
import { createManualScheduler } from "../../src/sync/scheduler.js";
import type { Transport, TransportListener } from "../../src/sync/transport.js";
import { tick } from "./support/drive.js";
import { createFakeDoc } from "./support/fake-doc.js";

const docId = toDocId("doc-1");

/** A transport whose connect fails with `failures` (in order), then connects. */
function scriptedTransport(failures: NxsError[], extra: Partial<Transport> = {}) {
  let listener: TransportListener | undefined;
  let connects = 0;
  const transport: Transport = {
    connect: async () => {
      connects++;
      const f = failures.shift();
      if (f !== undefined) throw f;
      listener?.onResync();
    },
    close: async () => {},
    push: async (changes: readonly Change[]) => ({ acked: changes.length }),
    pull: () => ({ async *[Symbol.asyncIterator]() {} }),
    subscribe: (l) => {
      listener = l;
      return () => {
        listener = undefined;
      };
    },
    ...extra,
  };
  return { transport, connects: () => connects };
}

/** A transport whose connect never answers (every server down, retrying inside). */
function silentTransport(): Transport {
  return {
    connect: () => new Promise<void>(() => {}),
    close: async () => {},
    push: () => new Promise(() => {}),
    pull: () => ({ async *[Symbol.asyncIterator]() {} }),
    subscribe: () => () => {},
  };
}

const doc = (replicaId = "a", id = docId) =>
  createFakeDoc({ docId: id, replicaId: toReplicaId(replicaId), now: () => 0 });

describe("replica misconfiguration and loudness", () => {
  it("refuses, at construction, a transport bound to another doc or another origin", () => {
    const scheduler = createManualScheduler({ now: 0 });
    const hub = createMemoryHub({ seed: 1 });
    const other = hub.transport(toDocId("doc-2"));
    expect(() =>
      createReplica({ doc: doc(), transport: other, storage: createMemoryStorage(), scheduler }),
    ).toThrow(
      expect.objectContaining({ code: ErrorCode.ConfigInvalid, message: expect.stringContaining("doc-2") }),
    );
    const wrongOrigin = scriptedTransport([], { docId, origin: "b" }).transport;
    expect(() =>
      createReplica({ doc: doc("a"), transport: wrongOrigin, storage: createMemoryStorage(), scheduler }),
    ).toThrow(expect.objectContaining({ code: ErrorCode.ConfigInvalid }));
    const right = scriptedTransport([], { docId, origin: "a" }).transport;
    expect(() =>
      createReplica({ doc: doc("a"), transport: right, storage: createMemoryStorage(), scheduler }),
    ).not.toThrow();
  });

  it("reports, once per outage, that no server has answered for unreachableAfterMs", async () => {
    const scheduler = createManualScheduler({ now: 0 });
    const errors: ReplicaEvents["error"][] = [];
    const replica = createReplica({
      doc: doc(),
      transport: silentTransport(),
      storage: createMemoryStorage(),
      scheduler,
      logger: silentLogger,
      on: { error: (e) => errors.push(e) },
    });
    await replica.start();
    await tick();
    scheduler.advance(9_999);
    expect(errors).toEqual([]);
    expect(replica.status().lastError).toBeUndefined();
    scheduler.advance(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      operation: "connect",
      error: { code: ErrorCode.TransportUnavailable },
    });
    expect(errors[0]!.error.message).toContain("no server has answered for 10000 ms");
    expect(replica.status().lastError).toBe(errors[0]!.error);
    scheduler.advance(60_000);
    expect(errors).toHaveLength(1);
    await replica.stop();
    expect(scheduler.pending()).toBe(0);
  });

  it("retries a refused connect after refusedRetryMs, reporting each failure, until the account is fixed", async () => {
    const scheduler = createManualScheduler({ now: 0 });
    const refused = () =>
      new TransportError(ErrorCode.TransportUnauthorized, "authenticate at http://a: unauthorized (400)");
    const { transport, connects } = scriptedTransport([refused(), refused()], { docId });
    const errors: ReplicaEvents["error"][] = [];
    const replica = createReplica({
      doc: doc(),
      transport,
      storage: createMemoryStorage(),
      scheduler,
      logger: silentLogger,
      on: { error: (e) => errors.push(e) },
    });
    await replica.start();
    await tick();
    expect(connects()).toBe(1);
    expect(errors.map((e) => [e.error.code, e.retryInMs])).toEqual([
      [ErrorCode.TransportUnauthorized, 60_000],
    ]);
    scheduler.advance(60_000);
    await tick();
    expect(connects()).toBe(2);
    expect(errors).toHaveLength(2);
    scheduler.advance(60_000);
    await tick();
    expect(connects()).toBe(3);
    expect(replica.status().state).toBe("connected");
    await replica.stop();
  });

  it("gives up for good on a refused connect with refusedRetryMs 0", async () => {
    const scheduler = createManualScheduler({ now: 0 });
    const { transport, connects } = scriptedTransport([
      new TransportError(ErrorCode.TransportUnauthorized, "refused"),
    ]);
    const replica = createReplica({
      doc: doc(),
      transport,
      storage: createMemoryStorage(),
      scheduler,
      logger: silentLogger,
      refusedRetryMs: 0,
      unreachableAfterMs: 0,
    });
    await replica.start();
    await tick();
    scheduler.advance(3_600_000);
    expect(connects()).toBe(1);
    expect(replica.status().lastError?.code).toBe(ErrorCode.TransportUnauthorized);
    await replica.stop();
  });

  it("openReplica: listeners given as `on` see the restored outbox being pushed", async () => {
    const scheduler = createManualScheduler({ now: 0 });
    const hub = createMemoryHub({ seed: 1 });
    const storage = createMemoryStorage();
    const old = doc("a");
    await storage.appendOutbox([old.set("x", 1), old.set("y", 2)]);
    const pushed: number[] = [];
    const replica = await openReplica({
      storage: storage.reopen(),
      transport: hub.transport(docId),
      scheduler,
      logger: silentLogger,
      on: { pushed: (e) => pushed.push(...e.changes.map((c) => c.seq)) },
      createDoc: (restored) => createFakeDoc({ docId, replicaId: toReplicaId("a"), now: () => 0, restored }),
    });
    await replica.flush();
    expect(pushed).toEqual([1, 2]);
    await replica.stop();
  });

  it("logs a repeated identical error once per minute with the count held back, but emits every one", async () => {
    const scheduler = createManualScheduler({ now: 0 });
    const down = () =>
      new TransportError(ErrorCode.TransportUnavailable, "connect to http://a:8090: ECONNREFUSED");
    const { transport } = scriptedTransport(Array.from({ length: 30 }, down));
    const lines: string[] = [];
    const errors: ReplicaEvents["error"][] = [];
    const replica = createReplica({
      doc: doc(),
      transport,
      storage: createMemoryStorage(),
      scheduler,
      retry: { minMs: 1_000, maxMs: 1_000 },
      unreachableAfterMs: 0,
      logger: { ...silentLogger, warn: (m) => lines.push(m), error: (m) => lines.push(m) },
      on: { error: (e) => errors.push(e) },
    });
    await replica.start();
    for (let i = 0; i < 30; i++) {
      await tick();
      scheduler.advance(1_000);
    }
    await tick();
    expect(errors.length).toBeGreaterThanOrEqual(30);
    // The first report, then one a minute later carrying the count of the ones held back.
    expect(lines.length).toBeLessThanOrEqual(2);
    expect(lines[0]).toContain("ECONNREFUSED");
    await replica.stop();
  });
});
