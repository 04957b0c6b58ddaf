import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isNxsError } from "../../../src/errors/errors.js";
import { canon, fakeClock, newDoc, wire } from "./fixtures.js";

const params = { seed: 20261127, numRuns: 400 };

/** A valid change with one part replaced by something arbitrary. */
const mutated = fc.record({
  field: fc.constantFrom("doc", "origin", "seq", "hlc", "ops", "op", "kind", "path", "value", "tags"),
  junk: fc.oneof(fc.anything(), fc.string(), fc.array(fc.anything(), { maxLength: 3 }), fc.integer()),
});

describe("applyRemote never throws and never half-applies (seeded fuzz)", () => {
  it("arbitrary input is rejected with a typed error and leaves the state untouched", () => {
    fc.assert(
      fc.property(fc.array(fc.anything(), { maxLength: 5 }), (inputs) => {
        const doc = newDoc("x", fakeClock().now);
        const before = canon(doc);
        const r = doc.applyRemote(inputs);
        expect(r.applied).toHaveLength(0);
        expect(r.rejected).toHaveLength(inputs.length);
        for (const x of r.rejected) expect(isNxsError(x.error)).toBe(true);
        expect(canon(doc)).toBe(before);
        expect(doc.version()).toEqual({});
      }),
      params,
    );
  });

  it("a valid change with one mutated part is either applied whole or rejected whole", () => {
    const clock = fakeClock();
    const src = newDoc("src", clock.now);
    src.batch((w) => {
      w.set(["kv", "a"], 1);
      w.set(["nested", "n"], { x: 1, y: "y" });
      w.increment(["hits"], 2);
      w.add(["tags"], "t");
    });
    const base = wire(src.changesSince({}))[0] as Record<string, unknown>;
    fc.assert(
      fc.property(mutated, fc.nat(), ({ field, junk }, which) => {
        const c = structuredClone(base) as Record<string, unknown> & { ops: Record<string, unknown>[] };
        const op = c.ops[which % c.ops.length] as Record<string, unknown>;
        if (field === "op") c.ops[which % c.ops.length] = junk as never;
        else if (["kind", "path", "value", "tags"].includes(field)) op[field] = junk;
        else (c as Record<string, unknown>)[field] = junk;
        const doc = newDoc("x", clock.now);
        const before = canon(doc);
        const r = doc.applyRemote([c]);
        if (r.applied.length === 1) {
          expect(r.rejected).toHaveLength(0);
          expect(doc.version()).toEqual({ src: 1 });
        } else {
          expect(r.applied.length + r.held).toBeLessThanOrEqual(1);
          if (r.held === 0) {
            expect(r.rejected).toHaveLength(1);
            expect(isNxsError(r.rejected[0]?.error)).toBe(true);
          }
          expect(canon(doc)).toBe(before);
          expect(doc.version()).toEqual({});
        }
      }),
      params,
    );
  });
});
