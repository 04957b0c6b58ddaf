import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createDoc } from "../../src/doc/doc.js";
import { ErrorCode, ValidationError } from "../../src/errors/errors.js";
import {
  addWinsSet,
  counter,
  NodeKind,
  SchemaWalkCache,
  schemaKind,
  setElementCheck,
  walkSchema,
} from "../../src/model/schema.js";

describe("schema markers", () => {
  it("counter() and addWinsSet() are recognised through optional/nullable/default wrappers", () => {
    expect(schemaKind(counter())).toBe(NodeKind.Counter);
    expect(schemaKind(counter(z.number().int()).optional())).toBe(NodeKind.Counter);
    expect(schemaKind(addWinsSet(z.string()).nullable())).toBe(NodeKind.Set);
    expect(schemaKind(z.number())).toBe(NodeKind.Plain);
    expect(counter().safeParse(1.5).success).toBe(true);
    expect(counter(z.number().int()).safeParse(1.5).success).toBe(false);
  });
});

describe("SchemaWalkCache and setElementCheck", () => {
  it("the cache returns walkSchema's result for every path; record keys share one entry", () => {
    const root = z.object({
      c: counter(),
      s: addWinsSet(z.string()),
      r: z.record(z.string(), z.object({ n: z.number().int(), deep: z.record(z.string(), z.number()) })),
      k: z.record(z.enum(["x", "y"]), z.number()).optional(),
      loose: z.looseObject({ a: z.string() }),
      extra: z.object({ a: z.string() }).catchall(z.number()),
      u: z.union([z.object({ a: z.string() }), z.number()]),
      strict: z.object({ a: z.object({ b: z.string().min(1) }) }),
    });
    const cache = new SchemaWalkCache(root);
    const paths = [
      [],
      ["c"],
      ["c", "below"],
      ["s"],
      ["r"],
      ["r", "a"],
      ["r", "b", "n"],
      ["r", "b", "deep", "q"],
      ["r", "b", "nope"],
      ["r", "__proto__"],
      ["k", "x"],
      ["k", "z"],
      ["loose", "a"],
      ["loose", "other", "below"],
      ["extra", "a"],
      ["extra", "z"],
      ["u", "a"],
      ["strict", "a", "b"],
      ["strict", "nope"],
      ["nope"],
    ];
    for (const path of paths) {
      const w = cache.walk(path);
      expect(w).toEqual(walkSchema(root, path));
      expect(cache.walk([...path])).toEqual(w);
    }
    expect(cache.walk(["r", "k1", "n"])).toBe(cache.walk(["r", "k2", "n"]));
  });

  it("setElementCheck: only for sets that check nothing but their elements", () => {
    expect(setElementCheck(addWinsSet(z.string()))?.("a")).toBe(true);
    expect(setElementCheck(addWinsSet(z.string()))?.(1)).toBe(false);
    expect(setElementCheck(addWinsSet(z.string().min(2)))?.("a")).toBe(false);
    expect(setElementCheck(addWinsSet(z.string()).optional())?.("ab")).toBe(true);
    expect(setElementCheck(z.array(z.string()).min(1).readonly())).toBeUndefined();
    expect(setElementCheck(z.string())).toBeUndefined();
  });
});

describe("walkSchema", () => {
  const inner = z.object({ a: z.number(), b: z.string().optional() });
  const root = z.object({
    plain: inner,
    refined: inner.refine((v) => v.a > 0),
    rec: z.record(z.string(), inner),
    keyed: z.record(z.string().regex(/^[xy]$/), z.number()),
    either: z.union([inner, z.number()]),
    loose: z.looseObject({ a: z.number() }),
    hits: counter().optional(),
  });

  it("reaches the sub-schema of plain objects and records (validation at the path itself)", () => {
    const w = walkSchema(root, ["plain", "a"]);
    expect(w).toMatchObject({ anchor: 2, kind: NodeKind.Plain, viaRecord: false });
    expect(w.anchorSchema.safeParse(1).success).toBe(true);
    expect(walkSchema(root, ["rec", "k", "b"])).toMatchObject({ anchor: 3 });
    expect(walkSchema(root, ["rec", "k"])).toMatchObject({ anchor: 2, viaRecord: true });
    expect(walkSchema(root, ["hits"]).kind).toBe(NodeKind.Counter);
  });

  it("anchors at the highest refined level, at constrained record keys, and at schemas it cannot enter", () => {
    expect(walkSchema(root, ["refined", "a"]).anchor).toBe(1);
    expect(walkSchema(root, ["keyed", "x"]).anchor).toBe(1);
    expect(walkSchema(root, ["either", "a"])).toMatchObject({ anchor: 1, kind: undefined });
    expect(walkSchema(root, ["loose", "zzz"])).toMatchObject({ anchor: 1, kind: undefined });
    expect(
      walkSchema(
        root.refine(() => true),
        ["plain", "a"],
      ).anchor,
    ).toBe(0);
  });

  it("marks impossible paths", () => {
    expect(walkSchema(root, ["nope"]).invalid).toMatch(/unknown key/);
    expect(walkSchema(root, ["plain", "a", "deeper"]).invalid).toMatch(/below a number/);
    expect(walkSchema(root, ["hits", "x"]).invalid).toMatch(/below a counter/);
  });

  it("a root refinement is still enforced (whole-document validation fallback)", () => {
    const schema = z.object({ min: z.number(), max: z.number() }).refine((v) => v.min <= v.max, "min > max");
    const doc = createDoc({ schema, docId: "d", replicaId: "a", initial: { min: 0, max: 10 } });
    doc.set(["max"], 5);
    let err: unknown;
    try {
      doc.set(["min"], 6);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).code).toBe(ErrorCode.SchemaInvalid);
    expect((err as ValidationError).issues[0]?.message).toBe("min > max");
    expect(doc.get()).toEqual({ min: 0, max: 5 });
  });

  it("a refined nested object is validated as a whole when one of its keys changes", () => {
    const doc = createDoc({
      schema: root,
      docId: "d",
      replicaId: "a",
      initial: {
        plain: { a: 1 },
        refined: { a: 1 },
        rec: {},
        keyed: {},
        either: 1,
        loose: { a: 1 },
      },
    });
    expect(() => doc.set(["refined", "a"], -1)).toThrow(ValidationError);
    expect(() => doc.set(["keyed", "z"], 1)).toThrow(ValidationError);
    doc.set(["keyed", "x"], 1);
    doc.set(["either"], { a: 2 });
    expect(() => doc.set(["either", "a"], "x")).toThrow(ValidationError);
    expect(doc.get().either).toEqual({ a: 2 });
  });
});
