import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareVersions } from "../../src/version.js";
import { createWatchCursor, RESYNC_WINDOW, type VersionPosition } from "../../src/watch-cursor.js";

const pos = (version: number, hlc: string, id: string): VersionPosition => ({ version, hlc, id });

describe("watch cursor", () => {
  it("decides: deliver the next, a hole past a missing number, repeat what was seen, conflict below the cursor", () => {
    const c = createWatchCursor(1);
    expect(c.decide(pos(1, "a", "x1"))).toEqual({ kind: "repeat" });
    expect(c.decide(pos(3, "a", "x3"))).toEqual({ kind: "hole", after: 1 });
    expect(c.decide(pos(3, "a", "x3"), true)).toEqual({ kind: "deliver" });
    c.delivered(pos(2, "b", "x2"));
    expect(c.decide(pos(2, "b", "x2"))).toEqual({ kind: "repeat" });
    expect(c.decide(pos(2, "a", "y2"))).toEqual({ kind: "conflict", winner: pos(2, "b", "x2") });
    expect(c.decide(pos(2, "c", "z2"))).toEqual({ kind: "deliver", sibling: pos(2, "b", "x2") });
    expect(c.decide(pos(4, "a", "x4"))).toEqual({ kind: "hole", after: 1 });
    expect(c.queryAfter()).toBe(1);
    const far = createWatchCursor(0);
    far.delivered(pos(40, "a", "x40"));
    expect(far.queryAfter()).toBe(40 - RESYNC_WINDOW);
  });

  it("property: versions arriving in any order, repeated, with a query for every hole, are delivered in order with no repeat and no number skipped", () => {
    fc.assert(
      fc.property(
        // Per number 1..n, one or two versions (two: both sides of a cut).
        fc.array(fc.integer({ min: 1, max: 2 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (counts, from, picks) => {
          const all: VersionPosition[] = counts.flatMap((k, i) =>
            Array.from({ length: k }, (_, j) => pos(i + 1, `h${j}`, `v${i + 1}-${j}`)),
          );
          const sorted = [...all].sort(compareVersions);
          const c = createWatchCursor(from);
          const delivered: VersionPosition[] = [];
          let conflicts = 0;
          const feed = (v: VersionPosition, fromQuery: boolean): void => {
            let d = c.decide(v, fromQuery);
            if (d.kind === "hole") {
              for (const q of sorted.filter((x) => x.version > c.queryAfter())) feed(q, true);
              d = c.decide(v, true);
            }
            if (d.kind === "conflict") {
              c.handled(v);
              conflicts++;
            } else if (d.kind === "deliver") {
              c.delivered(v);
              delivered.push(v);
              if (d.sibling !== undefined) conflicts++;
            }
          };
          for (const p of picks) feed(all[p % all.length]!, false);
          // The resync at the end: a query from the cursor.
          for (const q of sorted.filter((x) => x.version > c.queryAfter())) feed(q, true);
          for (let i = 1; i < delivered.length; i++) {
            expect(compareVersions(delivered[i - 1]!, delivered[i]!)).toBeLessThan(0);
          }
          const numbers = [...new Set(delivered.map((v) => v.version))];
          expect(numbers).toEqual(
            Array.from({ length: Math.max(0, counts.length - from) }, (_, i) => from + 1 + i),
          );
          // Each number with two versions gives one conflict, once both were seen.
          const doubles = counts.filter((k, i) => k === 2 && i + 1 > from).length;
          expect(conflicts).toBe(doubles);
        },
      ),
      { seed: 20261207, numRuns: 300 },
    );
  });
});
