/**
 * What a document retains and how compactly: the change log seals older changes into encoded
 * chunks, plain leaves live in their parent's columns, and written paths are not kept without
 * bound between reads. These tests drive each past its thresholds and check that nothing is lost.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createDoc, type Doc } from "../../../src/doc/doc.js";
import { ValidationError } from "../../../src/errors/errors.js";
import type { Change } from "../../../src/model/change.js";
import { canon, fakeClock, newDoc, type State, schema, wire } from "./fixtures.js";

/** Writes `n` changes on `doc` from a seeded stream of actions and returns them as sent. */
function write(doc: Doc<State>, rnd: () => number, n: number, tick: () => void): Change[] {
  const out: Change[] = [];
  const key = () => `k${Math.floor(rnd() * 40)}`;
  for (let j = 0; j < n; j++) {
    tick();
    const r = rnd();
    let c: Change | undefined;
    if (r < 0.35) c = doc.set(["kv", key()], Math.floor(rnd() * 1000));
    else if (r < 0.45) c = doc.delete(["kv", key()]);
    else if (r < 0.55) c = doc.set(["nested", key(), "x"], Math.floor(rnd() * 10));
    else if (r < 0.6) c = doc.delete(["nested", key()]);
    else if (r < 0.7) c = doc.increment(["counts", key()], 1 + Math.floor(rnd() * 3));
    else if (r < 0.8) c = rnd() < 0.5 ? doc.add(["tags"], key()) : doc.remove(["tags"], key());
    else {
      // A batch of up to 150 writes: a change of many ops.
      const size = 1 + Math.floor(rnd() * 150);
      c = doc.batch((w) => {
        for (let q = 0; q < size; q++) {
          if (rnd() < 0.85) w.set(["kv", key()], q);
          else w.delete(["kv", key()]);
        }
      });
    }
    if (c !== undefined) out.push(c);
  }
  return out;
}

/** A document of one record of any JSON values. */
const kvDoc = (replicaId: string, clock?: () => number) =>
  createDoc({
    schema: z.object({ kv: z.record(z.string(), z.unknown()) }),
    docId: "doc",
    replicaId,
    ...(clock ? { clock } : {}),
    initial: { kv: {} },
  });

const seeded = (seed: number) => {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
};

describe("retained changes (sealed into encoded chunks)", () => {
  it("changesSince serves exactly the changes after any cut, before and after compaction", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 80, max: 300 }), (seed, n) => {
        const clock = fakeClock();
        const a = newDoc("a", clock.now);
        const rnd = seeded(seed);
        const sent = wire(write(a, rnd, n, () => clock.advance(1))) as Change[];
        const last = sent.length;
        expect(a.version()).toEqual({ a: last });
        // Every cut, including ones inside a sealed chunk.
        for (const k of [0, 1, 63, 64, 65, Math.floor(last / 2), last - 1, last].filter((x) => x <= last)) {
          expect(wire(a.changesSince({ a: k }))).toEqual(sent.slice(k));
        }
        // A fresh replica brought up from the log alone reaches the same state.
        const b = newDoc("b", clock.now);
        const r = b.applyRemote(wire(a.changesSince({})));
        expect(r.rejected).toEqual([]);
        expect(canon(b)).toBe(canon(a));
        // Compaction at a cut inside the log: what is above the cut is still served whole.
        const cut = 1 + Math.floor(rnd() * (last - 1));
        const snap = a.snapshot();
        a.compact({ a: cut });
        expect(wire(a.changesSince({ a: cut }))).toEqual(sent.slice(cut));
        a.compact({ a: last });
        expect(a.changesSince({})).toEqual([]);
        expect(canon(createDoc({ schema, docId: "doc", replicaId: "c", snapshot: snap }))).toBe(canon(a));
      }),
      { seed: 4242, numRuns: 12 },
    );
    // Each run writes up to 300 changes (some of 150 ops) and decodes the log at eight cuts.
  }, 30_000);

  it("an own change coming back after a restart lands before the hot changes and is served in order", () => {
    const clock = fakeClock();
    const a = newDoc("a", clock.now);
    a.set(["kv", "x"], 1);
    const snap = a.snapshot();
    const lost: Change[] = [];
    for (let j = 0; j < 10; j++) lost.push(a.set(["kv", `l${j}`], j) as Change);
    const restarted = createDoc({
      schema,
      docId: "doc",
      replicaId: "a",
      clock: clock.now,
      snapshot: snap,
      last: { seq: 11, hlc: (lost[9] as Change).hlc },
    });
    // 200 changes past the gap (seqs 12..211), enough to seal several chunks once the gap fills.
    const after: Change[] = [];
    for (let j = 0; j < 200; j++) after.push(restarted.set(["kv", `n${j % 50}`], j) as Change);
    expect(restarted.version()).toEqual({ a: 1 });
    expect(restarted.applyRemote(wire(lost)).applied).toHaveLength(10);
    expect(restarted.version()).toEqual({ a: 211 });
    expect(wire(restarted.changesSince({ a: 1 }))).toEqual(wire([...lost, ...after]));
    expect(wire(restarted.changesSince({ a: 150 }))).toEqual(wire(after.slice(139)));
  });
});

describe("plain leaves in their parent's columns", () => {
  it("a change that turns leaves into nodes and is then refused leaves no trace", () => {
    const s = z.object({ kv: z.record(z.string(), z.number()), limit: z.number().max(5) });
    const clock = fakeClock();
    const d = createDoc({
      schema: s,
      docId: "doc",
      replicaId: "a",
      clock: clock.now,
      initial: { kv: {}, limit: 1 },
    });
    d.batch((w) => {
      for (let j = 0; j < 20; j++) w.set(["kv", `k${j}`], j);
    });
    const before = JSON.stringify(d.snapshot());
    const state = d.get();
    clock.advance(1);
    // Deletes (a leaf becomes a delete mark: a node) and an overwrite in place, then a refused write.
    expect(() =>
      d.batch((w) => {
        w.delete(["kv", "k3"]);
        w.set(["kv", "k4"], 40);
        w.delete(["kv", "k5"]);
        // Overwritten in place, then turned into a node by a delete: both undone.
        w.set(["kv", "k6"], 60);
        w.delete(["kv", "k6"]);
        w.set(["kv", "new"], 1);
        w.set(["limit"], 99);
      }),
    ).toThrow(ValidationError);
    expect(d.get()).toBe(state);
    expect(JSON.stringify(d.snapshot())).toBe(before);
    expect(createDoc({ schema: s, docId: "doc", replicaId: "b", snapshot: d.snapshot() }).get()).toEqual(
      state,
    );
    // The same entries still take writes.
    d.batch((w) => {
      w.delete(["kv", "k3"]);
      w.set(["kv", "k4"], 41);
    });
    expect(d.get().kv.k3).toBeUndefined();
    expect(d.get().kv.k4).toBe(41);
    expect(Object.keys(d.get().kv)).toHaveLength(19);
  });

  it("a remote delete of a parent drops older leaves and keeps newer ones, in every codec", () => {
    const clock = fakeClock();
    const a = newDoc("a", clock.now);
    const b = newDoc("b", clock.now);
    const mine: Change[] = [];
    for (let j = 0; j < 30; j++) mine.push(a.set(["nested", "o", "x"], j) as Change);
    expect(b.applyRemote(wire(mine)).rejected).toEqual([]);
    clock.advance(5);
    const del = b.delete(["nested", "o"]) as Change;
    clock.advance(5);
    a.set(["nested", "o", "y"], "newer");
    expect(a.applyRemote(wire([del])).rejected).toEqual([]);
    expect(a.get().nested.o).toEqual({ y: "newer" });
    const fromJson = createDoc({ schema, docId: "doc", replicaId: "c", snapshot: a.snapshot() });
    const fromBinary = createDoc({ schema, docId: "doc", replicaId: "c", snapshot: a.snapshotBinary() });
    expect(canon(fromJson)).toBe(canon(a));
    expect(canon(fromBinary)).toBe(canon(a));
  });
});

describe("paths written between reads", () => {
  it("a writer that reads only at the end sees every write (past the bound on retained paths)", () => {
    const d = kvDoc("a", fakeClock().now);
    d.get();
    for (let j = 0; j < 3000; j++) d.set(["kv", `k${j % 2500}`], j);
    const kv = d.get().kv;
    expect(Object.keys(kv)).toHaveLength(2500);
    expect(kv.k0).toBe(2500);
    expect(kv.k2499).toBe(2499);
    expect(Object.isFrozen(kv)).toBe(true);
  });
});

describe("what a change log and a read must keep", () => {
  it("refuses a local value nested deeper than a path may go, so the log stays servable", () => {
    const clock = fakeClock();
    const d = kvDoc("a", clock.now);
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let j = 0; j < 70; j++) deep = { n: deep };
    expect(() => d.set(["kv", "deep"], deep)).toThrow(/deeper than 64/);
    expect(d.get().kv.deep).toBeUndefined();
    // Enough later changes to seal the log: it still decodes and serves every change.
    for (let j = 0; j < 100; j++) d.set(["kv", `k${j}`], j);
    expect(d.changesSince({})).toHaveLength(100);
    const b = kvDoc("b", clock.now);
    expect(b.applyRemote(wire(d.changesSince({}))).rejected).toEqual([]);
  });

  it("keeps unchanged slices the same objects after a read that re-materializes everything", () => {
    const clock = fakeClock();
    const a = newDoc("a", clock.now);
    a.set(["nested", "keep", "x"], 1);
    const writer = newDoc("w", clock.now);
    const sent: Change[] = [];
    for (let j = 0; j < 1500; j++) sent.push(writer.set(["kv", `k${j}`], j) as Change);
    const before = a.get();
    let fired = 0;
    a.subscribe(
      (s) => s.nested,
      () => fired++,
    );
    // One call applying more than the bound on retained paths.
    expect(a.applyRemote(wire(sent)).applied).toHaveLength(1500);
    expect(fired).toBe(0);
    expect(a.get().nested).toBe(before.nested);
    expect(Object.keys(a.get().kv)).toHaveLength(1500);
    // A local batch touching more keys than the bound, read once at the end.
    const kvBefore = a.get().kv;
    a.batch((w) => {
      for (let j = 0; j < 1100; j++) w.set(["counts", `c${j}`], 0);
    });
    expect(fired).toBe(0);
    expect(a.get().kv).toBe(kvBefore);
    expect(a.get().nested).toBe(before.nested);
  });

  it("stores -0 as 0, as every encoding of a change would", () => {
    const clock = fakeClock();
    const a = newDoc("a", clock.now);
    const c = a.set(["kv", "z"], -0) as Change;
    expect(Object.is(a.get().kv.z, 0)).toBe(true);
    expect(Object.is((c.ops[0] as { value: unknown }).value, 0)).toBe(true);
  });

  it("refuses compact() inside a change", () => {
    const clock = fakeClock();
    const a = newDoc("a", clock.now);
    a.set(["kv", "x"], 1);
    expect(() =>
      a.batch((w) => {
        w.set(["kv", "y"], 2);
        a.compact(a.version());
      }),
    ).toThrow(/compact\(\) inside a change/);
    expect(a.get().kv).toEqual({ x: 1 });
    expect(a.changesSince({})).toHaveLength(1);
  });
});
