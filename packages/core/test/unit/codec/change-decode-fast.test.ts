import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { encodeHlc } from "../../../src/clock/hlc.js";
import { decodeChange } from "../../../src/codec/change-codec.js";
import { createDoc } from "../../../src/doc/doc.js";
import { ErrorCode } from "../../../src/errors/errors.js";
import { toFrozenJson } from "../../../src/model/json.js";

const params = { seed: 20261207, numRuns: 200 };
const hlc = encodeHlc({ ms: 1_000, counter: 0, node: "a" });
const raw = (ops: unknown[]) => ({ doc: "d", origin: "a", seq: 1, hlc, ops });

/** What the general value check (`toFrozenJson`) makes of a value, or "refused". */
const slow = (v: unknown) => {
  const out = toFrozenJson(v);
  return out === undefined ? "refused" : out;
};

/** What decodeChange makes of a `set`/`add` value, or "refused". */
const fast = (kind: "set" | "add", v: unknown) => {
  try {
    const op = decodeChange(raw([{ kind, path: ["k"], value: v }])).ops[0] as { value: unknown };
    return op.value;
  } catch (e) {
    expect((e as { code?: string }).code).toBe(ErrorCode.OpInvalid);
    return "refused";
  }
};

describe("decodeChange: primitive values skip the general value check", () => {
  it("keeps and refuses exactly what the general check keeps and refuses", () => {
    const edge = [0, -0, 1.5, -7, Number.MAX_VALUE, NaN, Infinity, -Infinity, "", "x", true, false, null];
    for (const v of edge)
      for (const kind of ["set", "add"] as const) expect(fast(kind, v)).toStrictEqual(slow(v));
    fc.assert(
      fc.property(
        fc.oneof(fc.double(), fc.string(), fc.boolean(), fc.constant(null), fc.integer()),
        fc.constantFrom("set" as const, "add" as const),
        (v, kind) => {
          expect(fast(kind, v)).toStrictEqual(slow(v));
        },
      ),
      params,
    );
  });

  it("writes -0 as 0 and freezes each op", () => {
    const c = decodeChange(raw([{ kind: "set", path: ["k"], value: -0 }]));
    expect(Object.is((c.ops[0] as { value: number }).value, 0)).toBe(true);
    expect(Object.isFrozen(c.ops[0])).toBe(true);
    expect(Object.isFrozen(c.ops[0]?.path)).toBe(true);
  });

  it("still refuses a bad path, undefined, a function or a bigint value", () => {
    for (const op of [
      { kind: "set", path: ["__proto__"], value: 1 },
      { kind: "set", path: ["k"], value: undefined },
      { kind: "set", path: ["k"], value: () => 1 },
      { kind: "add", path: ["k"], value: 1n },
    ])
      expect(() => decodeChange(raw([op]))).toThrow(expect.objectContaining({ code: ErrorCode.OpInvalid }));
  });
});

describe("a remote change writing keys of the root", () => {
  const schema = z.record(z.string(), z.number().max(10));

  /** A fresh replica "b" after applying one change of "a" that sets each `[key, value]` in order. */
  const applySets = (...sets: [string, number][]) => {
    const b = createDoc({ schema, docId: "d", replicaId: "b", clock: () => 1_000 });
    const ops = sets.map(([k, value]) => ({ kind: "set", path: [k], value }));
    expect(b.applyRemote([raw(ops)]).rejected).toEqual([]);
    return b;
  };

  it("applies a key written twice in one change as its last write", () => {
    expect(applySets(["k", 1], ["k", 2], ["j", 3]).get()).toEqual({ k: 2, j: 3 });
  });

  it("hides a refused value among repeated keys as before (the change applies, the value is hidden)", () => {
    const b = applySets(["k", 1], ["j", 11], ["k", 2]);
    expect(b.get()).toEqual({ k: 2 });
    expect(b.hidden().map((h) => h.path)).toEqual([["j"]]);
  });

  it("refuses a repeated key's refused last write the same way as a single one", () => {
    const b = applySets(["k", 1], ["k", 12]);
    expect(b.get()).toEqual({});
    expect(b.hidden().map((h) => h.path)).toEqual([["k"]]);
  });
});
