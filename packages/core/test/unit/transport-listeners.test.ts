import { describe, expect, it } from "vitest";
import { encodeHlc } from "../../src/clock/hlc.js";
import { toDocId, toReplicaId } from "../../src/clock/ids.js";
import type { Logger } from "../../src/errors/logger.js";
import type { Change } from "../../src/model/change.js";
import { TransportState } from "../../src/sync/transport.js";
import { createTransportListeners } from "../../src/sync/transport-listeners.js";

const change = (seq: number): Change => ({
  doc: toDocId("d"),
  origin: toReplicaId("a"),
  seq,
  hlc: encodeHlc({ ms: 1000 + seq, counter: 0, node: "a" }),
  ops: [{ kind: "set", path: ["k"], value: seq }],
});

function recordingLogger(): Logger & { errors: string[] } {
  const errors: string[] = [];
  const none = () => undefined;
  return { errors, debug: none, info: none, warn: none, error: (message: string) => errors.push(message) };
}

describe("createTransportListeners", () => {
  it("hands the changes of one microtask to every listener as one batch, and nothing after close", async () => {
    let closed = false;
    const logger = recordingLogger();
    const set = createTransportListeners({ tag: "[t]", logger, isClosed: () => closed });
    const batches: number[][] = [];
    set.add({ onChanges: (cs) => batches.push(cs.map((c) => c.seq)), onResync: () => undefined });
    set.deliver([change(1), change(2)]);
    set.deliver([change(3)]);
    expect(batches).toEqual([]);
    await Promise.resolve();
    expect(batches).toEqual([[1, 2, 3]]);

    set.deliver([change(4)]);
    closed = true;
    await Promise.resolve();
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it("logs a listener's throw with the tag and still calls the others; removal and clear stop calls", async () => {
    const logger = recordingLogger();
    const set = createTransportListeners({ tag: "[t]", logger, isClosed: () => false });
    const calls: string[] = [];
    const thrower = {
      onChanges: () => {
        throw new Error("boom");
      },
      onResync: () => {
        throw new Error("boom");
      },
      onState: () => {
        throw new Error("boom");
      },
    };
    const remove = set.add(thrower);
    const quiet = {
      onChanges: () => calls.push("changes"),
      onResync: () => calls.push("resync"),
      onState: (s: TransportState) => calls.push(`state:${s}`),
    };
    set.add(quiet);
    set.deliver([change(1)]);
    await Promise.resolve();
    set.resync();
    set.state(TransportState.Connected);
    expect(calls).toEqual(["changes", "resync", "state:connected"]);
    expect(logger.errors).toEqual(["[t] onChanges threw", "[t] onResync threw", "[t] onState threw"]);

    remove();
    expect(set.has(thrower)).toBe(false);
    set.resync();
    expect(logger.errors).toHaveLength(3);
    set.clear();
    set.resync();
    expect(calls).toEqual(["changes", "resync", "state:connected", "resync"]);
  });

  it("error() tells whether any listener handles errors", () => {
    const set = createTransportListeners({ tag: "[t]", logger: recordingLogger(), isClosed: () => false });
    const seen: string[] = [];
    expect(set.error(new Error("nobody"))).toBe(false);
    set.add({ onChanges: () => undefined, onResync: () => undefined });
    expect(set.error(new Error("still nobody"))).toBe(false);
    set.add({ onChanges: () => undefined, onResync: () => undefined, onError: (e) => seen.push(e.message) });
    expect(set.error(new Error("handled"))).toBe(true);
    expect(seen).toEqual(["handled"]);
  });
});
