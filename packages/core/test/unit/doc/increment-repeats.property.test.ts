import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { decodeChanges, encodeChanges } from "../../../src/codec/changes-codec.js";
import { createDoc } from "../../../src/doc/doc.js";
import type { Change } from "../../../src/model/change.js";
import { counter } from "../../../src/model/schema.js";
import { jsonTrip } from "./fixtures.js";

// applyRemote applies a format 2 group of repeated counter increments in one pass: it must give
// what applying the same changes one by one gives (applied, rejected, hidden, state, snapshot).
const schema = z.object({
  hits: counter(),
  counts: z.record(z.string(), counter()),
  bounded: counter(z.number().min(0)),
  opt: counter().optional(),
});
const initial = { hits: 0, counts: {}, bounded: 3 };
const newDoc = (replicaId: string, clock: () => number) =>
  createDoc({ schema, docId: "d", replicaId, clock, initial });

type Step = { path: string[]; by: number; times: number; tick: boolean; del: number };
const stepArb: fc.Arbitrary<Step> = fc.record({
  path: fc.constantFrom(["hits"], ["counts", "a"], ["counts", "b"], ["bounded"], ["opt"]),
  by: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom(0.1, -0.25, 1e307, -1e307)),
  times: fc.integer({ min: 1, max: 12 }),
  tick: fc.boolean(),
  // 0: no delete; 1: src deletes the path first; 2: another replica deletes it, at a later stamp
  // than the increments, its change delivered before them.
  del: fc.integer({ min: 0, max: 2 }),
});

describe("applyRemote of repeated increments (a format 2 group) equals one change at a time", () => {
  it("for any run of increments, including refined counters and values near overflow", () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 12 }), fc.boolean(), (steps, split) => {
        let t = 1_700_000_000_000;
        const clock = () => t;
        const src = newDoc("src", clock);
        // Another replica's increments of the same counters, newer than the deletes.
        const other = newDoc("other", () => t + 10);
        const deleter = newDoc("deleter", () => t + 5);
        for (const s of steps) {
          const del = (d: typeof src) => {
            try {
              // Created first: a delete of an absent path makes no change.
              d.increment(s.path as never, 1);
              d.delete(s.path as never);
            } catch {
              // A required counter cannot be deleted.
            }
          };
          if (s.del === 1) del(src);
          if (s.del === 2) del(deleter);
          for (let k = 0; k < s.times; k++) {
            try {
              src.increment(s.path as never, s.by);
            } catch {
              // A local increment the schema refuses (a bounded counter below 0, an overflow).
            }
            if (s.tick) t += 1;
          }
          try {
            other.increment(s.path as never, 1);
          } catch {
            // Refused locally (a bounded counter, an overflow).
          }
        }
        const changes: Change[] = [
          ...deleter.changesSince({}),
          ...other.changesSince({}),
          ...src.changesSince({}),
        ];
        const fast = newDoc("x", () => t);
        const slow = newDoc("y", () => t);
        const batch = decodeChanges(jsonTrip(encodeChanges(changes, { format: 2 })));
        const half = Math.floor(batch.length / 2);
        const rf = split
          ? [fast.applyRemote(batch.slice(0, half)), fast.applyRemote(batch.slice(half))]
          : [fast.applyRemote(batch)];
        const rs = split
          ? [
              slow.applyRemote(jsonTrip(changes).slice(0, half)),
              slow.applyRemote(jsonTrip(changes).slice(half)),
            ]
          : [slow.applyRemote(jsonTrip(changes))];
        const summary = (rs: ReturnType<typeof fast.applyRemote>[]) =>
          rs.map((r) => [r.applied.length, r.rejected.length, r.hidden?.length, r.duplicates, r.held]);
        expect(summary(rf)).toEqual(summary(rs));
        expect(fast.get()).toEqual(slow.get());
        expect(fast.version()).toEqual(slow.version());
        expect(jsonTrip(fast.snapshot())).toEqual(jsonTrip(slow.snapshot()));
        expect(fast.changesSince({})).toEqual(slow.changesSince({}));
        // Applying the batch again: all duplicates.
        expect(fast.applyRemote(batch).duplicates).toBe(batch.length);
      }),
      { seed: 20261207, numRuns: 150 },
    );
  });

  it("stops at a change out of order or of another doc, which the per-change path then reports", () => {
    let t = 1_700_000_000_000;
    const src = newDoc("src", () => t++);
    for (let k = 0; k < 10; k++) src.increment(["hits"], 2);
    const batch = decodeChanges(jsonTrip(encodeChanges(src.changesSince({}), { format: 2 })));
    expect(batch[1]?.ops).toBe(batch[0]?.ops);
    const dst = newDoc("dst", () => t);
    // A gap (seq 5 missing): 1-4 applied, 6-10 held until 5 arrives.
    const res = dst.applyRemote([...batch.slice(0, 4), ...batch.slice(5)]);
    expect([res.applied.length, res.held]).toEqual([4, 5]);
    expect(dst.get().hits).toBe(8);
    const res2 = dst.applyRemote([batch[4] as Change]);
    expect(res2.applied.length).toBe(6);
    expect(dst.get().hits).toBe(20);
  });
});

describe("applyRemote of repeated increments after held changes", () => {
  it("does not apply a change again that an earlier one unblocked from the held changes", () => {
    let t = 1_700_000_000_000;
    const src = newDoc("src", () => t++);
    for (let k = 0; k < 6; k++) src.increment(["hits"], 1);
    const batch = decodeChanges(jsonTrip(encodeChanges(src.changesSince({}), { format: 2 })));
    const dst = newDoc("dst", () => t);
    // 3-6 held; then 1, 2, 3 in one call: 2 unblocks 3-6, and the 3 after it is a duplicate.
    dst.applyRemote(batch.slice(2));
    const res = dst.applyRemote([batch[0], batch[1], batch[2], batch[3]] as Change[]);
    expect(res.applied.length).toBe(6);
    expect(res.duplicates).toBe(2);
    expect(dst.get().hits).toBe(6);
    expect(dst.version()).toEqual({ src: 6 });
  });
});
