import { isNxsError, type Json } from "@nxs-sync/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { applyDiff, diffValues } from "../../src/diff.js";
import { createKeyring, sealValue, secret } from "../../src/secrets.js";

const params = { seed: 20261207, numRuns: 300 };
const ring = createKeyring({ keys: { k1: Buffer.alloc(32, 7) } });
/** JSON as stored (through a JSON round trip, so -0 reads as 0). */
const json = fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.parse(JSON.stringify(v)) as Json);

describe("diffValues", () => {
  it("gives RFC 6902 operations between two values", () => {
    expect(diffValues({ rps: 5, tags: ["a"] }, { rps: 6, tags: ["a", "b"] })).toEqual([
      { op: "add", path: "/tags/1", value: "b" },
      { op: "replace", path: "/rps", value: 6 },
    ]);
    expect(diffValues({ a: 1, b: 2 }, { a: 1 })).toEqual([{ op: "remove", path: "/b" }]);
    expect(diffValues({ "a/b": 1 }, { "a/b": 2 })).toEqual([{ op: "replace", path: "/a~1b", value: 2 }]);
    expect(diffValues({ a: 1 }, { a: 1 })).toEqual([]);
  });

  it("handles the whole value: none, a scalar, or another kind", () => {
    expect(diffValues(undefined, undefined)).toEqual([]);
    expect(diffValues(undefined, { a: 1 })).toEqual([{ op: "add", path: "", value: { a: 1 } }]);
    expect(diffValues({ a: 1 }, undefined)).toEqual([{ op: "remove", path: "" }]);
    expect(diffValues(1, 2)).toEqual([{ op: "replace", path: "", value: 2 }]);
    expect(diffValues("x", "x")).toEqual([]);
    expect(diffValues([1], { 0: 1 })).toEqual([{ op: "replace", path: "", value: { 0: 1 } }]);
    expect(diffValues({ a: [1] }, { a: { 0: 1 } })).toEqual([{ op: "replace", path: "/a", value: { 0: 1 } }]);
  });

  it("over redacted forms: the same ciphertext gives no op, a new seal a redacted replace", () => {
    const schema = z.object({ name: z.string(), apiKey: secret(z.string()) });
    const a = sealValue("p", { name: "n", apiKey: "sk-1" }, schema, ring);
    expect(diffValues(a, a)).toEqual([]);
    expect(diffValues(a, JSON.parse(JSON.stringify(a)) as Json)).toEqual([]);
    const b = sealValue("p", { name: "n", apiKey: "sk-2" }, schema, ring);
    const ops = diffValues(a, b);
    expect(ops).toEqual([
      { op: "replace", path: "/apiKey", value: expect.stringMatching(/^\[secret k1 [0-9a-f]{8}\]$/) },
    ]);
    expect(JSON.stringify(ops)).not.toMatch(/sk-1|sk-2/);
    expect(JSON.stringify(ops)).not.toContain((b as { apiKey: { ct: string } }).apiKey.ct);
    expect(diffValues(undefined, b)).toEqual([
      { op: "add", path: "", value: { name: "n", apiKey: expect.stringMatching(/^\[secret k1/) } },
    ]);
  });

  it("property: applying the diff of a to b gives b", () => {
    fc.assert(
      fc.property(fc.option(json, { nil: undefined }), fc.option(json, { nil: undefined }), (a, b) => {
        expect(applyDiff(a, diffValues(a, b))).toEqual(b);
      }),
      params,
    );
  });

  it("property: no plain secret and no ciphertext ever appears in a diff", () => {
    const schema = z.object({ items: z.array(z.object({ s: secret(z.string()), n: z.json() })) });
    const item = fc.record({
      s: fc.string({ minLength: 1, maxLength: 12 }).map((s) => `S3CRET<${s}>`),
      n: json,
    });
    const items = fc.array(item, { maxLength: 4 });
    fc.assert(
      fc.property(items, items, fc.boolean(), (x, y, share) => {
        const a = sealValue("cfg", { items: x }, schema, ring);
        // sometimes b keeps a's envelopes (a change elsewhere), sometimes it is sealed afresh
        const fresh = sealValue("cfg", { items: y }, schema, ring) as { items: Json[] };
        const b = share ? { items: [...(a as { items: Json[] }).items, ...fresh.items] } : fresh;
        const text = JSON.stringify(diffValues(a, b)) + JSON.stringify(diffValues(undefined, b));
        for (const s of [...x, ...y].map((i) => i.s)) expect(text).not.toContain(s);
        expect(text).not.toContain('"$secret"');
      }),
      params,
    );
  });
});

describe("applyDiff", () => {
  it("does not change its input, and refuses an operation that does not apply", () => {
    const a = { a: { b: 1 } };
    expect(applyDiff(a, [{ op: "replace", path: "/a/b", value: 2 }])).toEqual({ a: { b: 2 } });
    expect(a).toEqual({ a: { b: 1 } });
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return isNxsError(e) ? e.code : "other";
      }
      return "none";
    };
    expect(code(() => applyDiff(a, [{ op: "replace", path: "/x/y", value: 2 }]))).toBe("config/invalid");
    expect(code(() => applyDiff(a, [{ op: "test", path: "/a/b", value: 9 }]))).toBe("config/invalid");
    expect(code(() => applyDiff(undefined, [{ op: "add", path: "/a", value: 1 }]))).toBe("config/invalid");
    expect(code(() => applyDiff({}, [{ op: "add", path: "/__proto__/x", value: 1 }]))).toBe("config/invalid");
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(applyDiff(1, [{ op: "remove", path: "" }])).toBeUndefined();
  });
});
