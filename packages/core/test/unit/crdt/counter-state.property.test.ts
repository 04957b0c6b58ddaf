import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeHlc } from "../../../src/clock/hlc.js";
import { CounterState, foldCounter } from "../../../src/crdt/counter.js";
import { rollback, type Undo } from "../../../src/crdt/undo.js";

const params = { seed: 20261207, numRuns: 300 };
const stamp = (ms: number, origin: string) => encodeHlc({ ms, counter: 0, node: origin });

type Step =
  | { readonly k: "inc"; readonly o: string; readonly ms: number; readonly d: number; readonly undo: boolean }
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
      o: fc.constantFrom("a", "b", "c"),
      ms: fc.nat(60),
      d: amount,
      undo: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("prune" as const), ms: fc.nat(60) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("fold" as const), ms: fc.nat(60) }) },
) as fc.Arbitrary<Step>;

describe("CounterState (seeded)", () => {
  it("value() is foldCounter of its entries after any mix of increments (in or out of stamp order), rolled-back ones, prunes and folds", () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 80, size: "max" }), (steps) => {
        const c = new CounterState();
        let i = 0;
        for (const s of steps) {
          if (s.k === "inc") {
            const undo: Undo = [];
            const before = c.value();
            c.inc(s.o, stamp(s.ms, s.o), i++, s.d, undo);
            expect(c.value()).toBe(foldCounter(c.entries));
            if (s.undo) {
              rollback(undo);
              expect(c.value()).toBe(before);
            }
          } else if (s.k === "prune") c.pruneOlder(stamp(s.ms, "b"), 0, undefined);
          else c.fold((h) => h <= stamp(s.ms, "z"));
          expect(c.value()).toBe(c.isEmpty() ? undefined : foldCounter(c.entries));
        }
      }),
      params,
    );
  });
});
