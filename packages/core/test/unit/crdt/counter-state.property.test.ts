import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeHlc } from "../../../src/clock/hlc.js";
import { type CounterEntry, CounterState, foldCounter } from "../../../src/crdt/counter.js";
import { isNewer } from "../../../src/crdt/stamp.js";
import { rollback, type Undo } from "../../../src/crdt/undo.js";

const params = { seed: 20261207, numRuns: 300 };
const stamp = (ms: number, node: string) => encodeHlc({ ms, counter: ms % 3, node });

type Step =
  | {
      readonly k: "inc";
      readonly o: string;
      readonly ms: number;
      readonly d: number;
      readonly undo: boolean;
      readonly foreign: boolean;
    }
  | { readonly k: "prune"; readonly ms: number }
  | { readonly k: "fold"; readonly ms: number };

const amount = fc.oneof(
  fc.constantFrom(0.1, 0.2, 0.3, 1 / 3, -1 / 3, 0.7, 1e-9),
  fc.integer({ min: -5, max: 5 }),
  fc.constantFrom(2 ** 53, -(2 ** 53)),
);
const stepArb = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      k: fc.constant("inc" as const),
      // "" is the initial state's origin (stamp ""); a foreign stamp is one a snapshot could pair
      // with another origin: both make a run keep its stamps as text.
      o: fc.constantFrom("a", "b", "c", ""),
      ms: fc.nat(60),
      d: amount,
      undo: fc.boolean(),
      foreign: fc.nat(9).map((n) => n === 0),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("prune" as const), ms: fc.nat(60) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("fold" as const), ms: fc.nat(60) }) },
) as fc.Arbitrary<Step>;

/** The counter state as plain lists: what CounterState must hold, whatever its representation. */
class Reference {
  entries = new Map<string, CounterEntry[]>();

  inc(o: string, h: string, i: number, d: number): void {
    const list = this.entries.get(o) ?? [];
    this.entries.set(o, list);
    let at = list.length;
    while (at > 0 && !isNewer(h, i, (list[at - 1] as CounterEntry).h, (list[at - 1] as CounterEntry).i)) at--;
    list.splice(at, 0, { h, i, d });
  }

  prune(h: string, i: number): void {
    for (const [o, list] of this.entries) {
      const kept = list.filter((e) => isNewer(e.h, e.i, h, i));
      if (kept.length === 0) this.entries.delete(o);
      else this.entries.set(o, kept);
    }
  }

  fold(covered: (h: string) => boolean): void {
    for (const [o, list] of this.entries) {
      let n = 0;
      while (n < list.length && covered((list[n] as CounterEntry).h)) n++;
      if (n < 2) continue;
      let d = 0;
      for (let k = 0; k < n; k++) d += (list[k] as CounterEntry).d;
      const last = list[n - 1] as CounterEntry;
      this.entries.set(o, [{ h: last.h, i: last.i, d }, ...list.slice(n)]);
    }
  }

  copy(): Map<string, CounterEntry[]> {
    return new Map([...this.entries].map(([o, l]) => [o, [...l]]));
  }
}

const sorted = (m: ReadonlyMap<string, readonly CounterEntry[]>) =>
  [...m].sort(([a], [b]) => (a < b ? -1 : 1));

describe("CounterState (seeded)", () => {
  it("holds what plain per-origin lists hold, and value() is their foldCounter, after any mix of increments (in or out of stamp order, own or foreign stamps), rolled-back ones, prunes and folds", () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 80, size: "max" }), (steps) => {
        const c = new CounterState();
        const ref = new Reference();
        let i = 0;
        for (const s of steps) {
          if (s.k === "inc") {
            const h = s.o === "" ? "" : stamp(s.ms, s.foreign ? "z" : s.o);
            const undo: Undo = [];
            const before = c.value();
            const saved = ref.copy();
            c.inc(s.o, h, i, s.d, undo);
            ref.inc(s.o, h, i, s.d);
            i++;
            expect(c.value()).toBe(foldCounter(c.entries));
            if (s.undo) {
              rollback(undo);
              ref.entries = saved;
              expect(c.value()).toBe(before);
            }
          } else if (s.k === "prune") {
            c.pruneOlder(stamp(s.ms, "b"), 0, undefined);
            ref.prune(stamp(s.ms, "b"), 0);
          } else {
            const covered = (h: string) => h <= stamp(s.ms, "z");
            c.fold(covered);
            ref.fold(covered);
          }
          expect(sorted(c.entries)).toEqual(sorted(ref.entries));
          expect(c.value()).toBe(c.isEmpty() ? undefined : foldCounter(ref.entries));
        }
      }),
      params,
    );
  });

  it("rolls back a prune and a fold-free run of increments to the same entries", () => {
    const c = new CounterState();
    for (let k = 0; k < 5; k++) c.inc("a", stamp(k + 1, "a"), 0, 1, undefined);
    const before = sorted(c.entries);
    const undo: Undo = [];
    c.pruneOlder(stamp(3, "b"), 0, undo);
    c.inc("a", stamp(2, "a"), 1, 5, undo);
    c.inc("b", stamp(9, "b"), 0, 2, undo);
    expect(c.value()).toBe(2 + 5 + 2);
    rollback(undo);
    expect(sorted(c.entries)).toEqual(before);
    expect(c.value()).toBe(5);
  });
});
