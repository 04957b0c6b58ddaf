import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { decodeChanges, encodeChanges } from "../../../src/codec/changes-codec.js";
import { createDoc } from "../../../src/doc/doc.js";
import { ErrorCode } from "../../../src/errors/errors.js";
import type { Change } from "../../../src/model/change.js";
import { actionArb, canon, code, initial, jsonTrip, newDoc, runActions, schema, wire } from "./fixtures.js";

const params = { seed: 20261127, numRuns: 150 };
const actions = fc.array(actionArb(3), { minLength: 5, maxLength: 60, size: "max" });

/** The changes of each origin, in order (what decodeChanges must preserve). */
function byOrigin(changes: readonly unknown[]): Map<string, unknown[]> {
  const m = new Map<string, unknown[]>();
  for (const c of changes) {
    const o = (c as Change).origin;
    m.set(o, [...(m.get(o) ?? []), c]);
  }
  return m;
}

describe("change batches (encodeChanges / decodeChanges)", () => {
  it("round-trips any changes: same changes per origin, in order, and the same state once applied", () => {
    fc.assert(
      fc.property(actions, (acts) => {
        const { changes } = runActions(acts);
        // The order changesSince serves (by HLC, origins interleaved) and the order they were made.
        const sorted = [...changes].sort((a, b) => (a.hlc < b.hlc ? -1 : a.hlc > b.hlc ? 1 : 0));
        for (const list of [changes, sorted]) {
          const decoded = decodeChanges(jsonTrip(encodeChanges(list)));
          expect(decoded.length).toBe(list.length);
          expect(byOrigin(jsonTrip(decoded) as unknown[])).toEqual(byOrigin(wire(list)));
          const viaBatch = newDoc("x", () => 2_000_000_000_000);
          const viaRecords = newDoc("y", () => 2_000_000_000_000);
          const r = viaBatch.applyRemote(decoded);
          expect(r.rejected).toEqual([]);
          expect(r.held).toBe(0);
          viaRecords.applyRemote(wire(list));
          expect(canon(viaBatch)).toBe(canon(viaRecords));
        }
      }),
      params,
    );
  });

  it("is smaller than the changes as JSON records", () => {
    const doc = createDoc({
      schema: z.record(z.string(), z.number()),
      docId: "d",
      replicaId: "a",
      clock: () => 1,
    });
    for (let i = 0; i < 200; i++) doc.set([`key-${i}`], i);
    const list = doc.changesSince({});
    const batch = JSON.stringify(encodeChanges(list));
    expect(batch.length * 5).toBeLessThan(JSON.stringify(list).length);
  });

  it("falls back to path arrays when every separator occurs in a key, and keeps gaps and kinds", () => {
    const weird = ",|/; ~^!#$*+=&@`'%\"\\";
    const doc = newDoc("a", () => 5);
    doc.set(["kv", weird], 1);
    doc.set(["kv", ""], "empty key");
    doc.delete(["kv", weird]);
    doc.increment(["hits"], 2.5);
    doc.add(["tags"], "t");
    doc.remove(["tags"], "t");
    doc.set(["nested", "n"], { x: 1, y: "y" });
    const all = doc.changesSince({});
    // A gap: without change 3, the run splits in two.
    const list = all.filter((c) => c.seq !== 3);
    const enc = encodeChanges(list);
    expect(enc.sep).toBeUndefined();
    expect(enc.g.map((g) => g.s)).toEqual([1, 4]);
    expect(jsonTrip(decodeChanges(jsonTrip(enc)))).toEqual(wire(list));
    // With plain keys the paths are one string.
    const plain = encodeChanges(all.filter((c) => c.ops.every((op) => !op.path.includes(weird))));
    expect(typeof plain.g[0]?.p).toBe("string");
  });

  it("encodes an empty list, and refuses changes of several documents", () => {
    expect(decodeChanges(jsonTrip(encodeChanges([])))).toEqual([]);
    const a = newDoc("a", () => 1);
    const b = createDoc({ schema, docId: "other", replicaId: "b", clock: () => 1, initial });
    a.increment(["hits"]);
    b.increment(["hits"]);
    expect(code(() => encodeChanges([...a.changesSince({}), ...b.changesSince({})]))).toBe(
      ErrorCode.OpInvalid,
    );
  });

  it("validates what it decodes like decodeChange", () => {
    const doc = newDoc("a", () => 1000);
    doc.set(["kv", "k"], 1);
    doc.set(["kv", "j"], [1, 2]);
    const good = jsonTrip<unknown>(encodeChanges(doc.changesSince({}))) as Record<string, unknown>;
    const run = (good.g as Record<string, unknown>[])[0] as Record<string, unknown>;
    const bad = (patch: Record<string, unknown>, top: Record<string, unknown> = {}) => ({
      ...good,
      ...top,
      g: [{ ...run, ...patch }],
    });
    const cases: unknown[] = [
      null,
      [],
      { g: "x" },
      bad({}, { doc: "bad doc id!" }),
      bad({ o: "bad origin!" }),
      bad({ s: 0 }),
      bad({ h: [[1, -1], 0] }),
      bad({ h: [-(2 ** 49), 0] }),
      // The second stamp of a run is written without encodeHlc: still refused when malformed.
      bad({ h: [(run.h as unknown[])[0], 0.5] }),
      bad({ h: [(run.h as unknown[])[0], [0, "5"]] }),
      bad({ h: [(run.h as unknown[])[0], [0, 2 ** 24]] }),
      bad({ h: [(run.h as unknown[])[0], -0.5] }),
      bad({ n: [1] }),
      bad({ n: 2 }),
      bad({ k: "sx" }),
      bad({ p: "kv|__proto__,kv|j" }),
      bad({ p: "kv|k" }),
      bad({ v: [1] }),
      bad({ v: [1, [1, Number.NaN]] }),
      bad({}, { sep: "x" }),
    ];
    for (const input of cases) {
      const c = code(() => decodeChanges(input));
      expect(c === ErrorCode.OpInvalid || c === ErrorCode.HlcInvalid, `${JSON.stringify(input)}: ${c}`).toBe(
        true,
      );
    }
    expect(decodeChanges(good).length).toBe(2);
    const first = (doc.changesSince({})[0] as Change).hlc;
    expect(decodeChanges(bad({ h: [(run.h as unknown[])[0], [0, 7]] })).map((c) => c.hlc)).toEqual([
      first,
      `${first.slice(0, 12)}000007a`,
    ]);
  });
});

describe("snapshot state encoding", () => {
  it("re-encodes a loaded snapshot to the same JSON, at any point of any run", () => {
    fc.assert(
      fc.property(actions, (acts) => {
        const { docs } = runActions(acts);
        for (const d of docs) {
          const snap = jsonTrip(d.snapshot());
          const loaded = createDoc({ schema, docId: "doc", replicaId: "z", snapshot: snap as never });
          expect(jsonTrip(loaded.snapshot())).toEqual(snap);
          expect(canon(loaded)).toBe(canon(d));
        }
      }),
      { ...params, numRuns: 80 },
    );
  });

  it("uses key arrays when every separator occurs in some key, and rejects malformed columns", () => {
    const s = z.record(z.string(), z.number());
    const doc = createDoc({ schema: s, docId: "d", replicaId: "a", clock: () => 7 });
    const weird = ",|/; ~^!#$*+=&@`'%";
    doc.set([weird], 1);
    doc.set(["plain"], 2);
    const snap = jsonTrip(doc.snapshot()) as { state: Record<string, unknown> };
    expect(snap.state.sep).toBeUndefined();
    const loaded = createDoc({ schema: s, docId: "d", replicaId: "b", snapshot: snap as never });
    expect(loaded.get()).toEqual({ [weird]: 1, plain: 2 });
    const load = (state: unknown) =>
      code(() => createDoc({ schema: s, docId: "d", replicaId: "b", snapshot: { ...snap, state } as never }));
    const st = snap.state;
    const root = st.root as { c: unknown[] };
    expect(load({ ...st, t: [1, 2] })).toBe(ErrorCode.SchemaInvalid);
    expect(load({ ...st, m: 0 })).toBe(ErrorCode.SchemaInvalid);
    expect(load({ ...st, root: { c: [root.c[0], root.c[1], []] } })).toBe(ErrorCode.SchemaInvalid);
    expect(
      load({
        ...st,
        root: {
          c: [
            ["a", "a"],
            [1, 2],
            [1, 0],
          ],
        },
      }),
    ).toBe(ErrorCode.SchemaInvalid);
    expect(load({ ...st, root: { c: [["a"], [1], [1e15]] } })).toBe(ErrorCode.SchemaInvalid);
    expect(load({ ...st, sep: "," })).toBe(undefined);
    expect(load({ ...st, sep: ",", root: { c: ["a", [1], [1]] } })).toBe(undefined);
    expect(load({ ...st, sep: undefined, root: { c: ["a", [1], [1]] } })).toBe(ErrorCode.SchemaInvalid);
    expect(load({ hlcs: [""], last: {}, root: {} })).toBe(ErrorCode.SchemaInvalid);
  });
});
