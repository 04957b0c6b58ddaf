import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  dominatesVersionVector,
  intersectVersionVectors,
  mergeVersionVectors,
  type VersionVector,
} from "../../src/clock/version-vector.js";

const vvArb: fc.Arbitrary<VersionVector> = fc.dictionary(
  fc.constantFrom("a", "b", "c", "d"),
  fc.integer({ min: 1, max: 50 }),
);
const params = { seed: 20261127, numRuns: 300 };

describe("version vectors", () => {
  it("merge is commutative, associative and idempotent", () => {
    fc.assert(
      fc.property(vvArb, vvArb, vvArb, (a, b, c) => {
        expect(mergeVersionVectors(a, b)).toEqual(mergeVersionVectors(b, a));
        expect(mergeVersionVectors(mergeVersionVectors(a, b), c)).toEqual(
          mergeVersionVectors(a, mergeVersionVectors(b, c)),
        );
        expect(mergeVersionVectors(a, a)).toEqual({ ...a });
      }),
      params,
    );
  });

  it("merge dominates both inputs; intersection is dominated by every input", () => {
    fc.assert(
      fc.property(fc.array(vvArb, { minLength: 1, maxLength: 5 }), (vvs) => {
        const meet = intersectVersionVectors(vvs);
        for (const v of vvs) {
          expect(dominatesVersionVector(v, meet)).toBe(true);
          const join = mergeVersionVectors(v, vvs[0] ?? {});
          expect(dominatesVersionVector(join, v)).toBe(true);
        }
      }),
      params,
    );
  });

  it("an origin missing from one vector is 0 in the frontier", () => {
    expect(intersectVersionVectors([{ a: 5, b: 2 }, { a: 3 }])).toEqual({ a: 3 });
    expect(intersectVersionVectors([])).toEqual({});
  });
});
