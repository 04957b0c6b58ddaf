import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkPath, getAtPath, isPathPrefix, topmostPaths } from "../../src/model/path.js";

describe("paths", () => {
  it("checkPath refuses the root, non-strings and __proto__", () => {
    expect(checkPath(["a", "b"])).toBeUndefined();
    expect(checkPath([])).toMatch(/empty/);
    expect(checkPath(["a", 1])).toMatch(/not a string/);
    expect(checkPath(["__proto__"])).toMatch(/not allowed/);
    expect(checkPath("a")).toMatch(/not an array/);
  });

  it("getAtPath reads through objects only", () => {
    const v = { a: { b: [1, 2] }, c: 1 };
    expect(getAtPath(v, ["a", "b"])).toEqual([1, 2]);
    expect(getAtPath(v, ["a", "b", "0"])).toBeUndefined();
    expect(getAtPath(v, ["c", "x"])).toBeUndefined();
    expect(getAtPath(v, [])).toBe(v);
  });

  it("topmostPaths keeps exactly the paths no other path is a prefix of (the root covers all)", () => {
    expect(topmostPaths([["a"], [], ["b", "c"]])).toEqual([[]]);
    const path = fc.array(fc.constantFrom("a", "b", "c"), { maxLength: 3 });
    fc.assert(
      fc.property(fc.array(path, { maxLength: 12 }), (paths) => {
        const out = topmostPaths(paths);
        const key = (p: readonly string[]) => JSON.stringify(p);
        const expected = new Set(
          paths.filter((p) => !paths.some((q) => q.length < p.length && isPathPrefix(q, p))).map(key),
        );
        expect(new Set(out.map(key))).toEqual(expected);
        expect(out.length).toBe(expected.size);
      }),
      { seed: 20261127, numRuns: 300 },
    );
  });
});
