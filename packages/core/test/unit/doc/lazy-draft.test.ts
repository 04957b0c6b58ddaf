import { enablePatches, Immer } from "immer";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { DocState } from "../../../src/crdt/doc-state.js";
import { createDoc } from "../../../src/doc/doc.js";
import { type DraftBase, runRecipe } from "../../../src/doc/root-draft.js";
import { ErrorCode, type NxsError, ValidationError } from "../../../src/errors/errors.js";
import type { Json } from "../../../src/model/change.js";
import { fakeClock, wideSchema } from "./fixtures.js";

/** A wide root: 2,000 numeric keys beside a counter, a set, a record of objects and optional keys. */
const WIDE = 2_000;
const schema = wideSchema;
const wide: Record<string, number> = {};
for (let i = 0; i < WIDE; i++) wide[`k${i}`] = i;
const initial = { hits: 0, tags: ["a"], routes: { api: { host: "h1", port: 80 } }, ...wide };
type Draft = Record<string, unknown> & {
  hits: number;
  tags: string[];
  routes: Record<string, { host: string; port: number }>;
  note?: string;
  list?: number[];
};
const make = () =>
  createDoc({ schema, docId: "wide", replicaId: "a", clock: fakeClock().now, initial: initial as never });
const edit = (doc: ReturnType<typeof make>, recipe: (d: Draft) => unknown) =>
  doc.change(recipe as (d: unknown) => unknown);

const thrown = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error("did not throw");
};

afterEach(() => {
  vi.restoreAllMocks();
});

describe("change() on a wide root: what it makes", () => {
  it("one key: one set op, read back by path", () => {
    const doc = make();
    const c = edit(doc, (d) => {
      d.k5 = -5;
    });
    expect(c?.ops).toEqual([{ kind: "set", path: ["k5"], value: -5 }]);
    expect(doc.get(["k5"])).toBe(-5);
    expect(doc.get().k5).toBe(-5);
  });

  it("a counter's assignment becomes an increment of the difference", () => {
    const doc = make();
    expect(
      edit(doc, (d) => {
        d.hits += 5;
      })?.ops,
    ).toEqual([{ kind: "inc", path: ["hits"], value: 5 }]);
    expect(
      edit(doc, (d) => {
        d.hits = 2;
      })?.ops,
    ).toEqual([{ kind: "inc", path: ["hits"], value: -3 }]);
    expect(doc.get(["hits"])).toBe(2);
  });

  it("a set's array edits become adds and removes", () => {
    const doc = make();
    const c = edit(doc, (d) => {
      d.tags.push("b");
      d.tags = d.tags.filter((t) => t !== "a");
    });
    expect(c?.ops.map((o) => [o.kind, "value" in o ? o.value : undefined])).toEqual(
      expect.arrayContaining([
        ["add", "b"],
        ["rem", "a"],
      ]),
    );
    expect(c?.ops).toHaveLength(2);
    expect(doc.get(["tags"])).toEqual(["b"]);
  });

  it("nested objects: one op per leaf written, deletes, moves between keys", () => {
    const doc = make();
    expect(
      edit(doc, (d) => {
        (d.routes.api as { port: number }).port = 81;
      })?.ops,
    ).toEqual([{ kind: "set", path: ["routes", "api", "port"], value: 81 }]);
    edit(doc, (d) => {
      d.routes.web = d.routes.api as { host: string; port: number };
      delete d.routes.api;
      (d.routes.web as { host: string }).host = "h2";
    });
    expect(doc.get(["routes"])).toEqual({ web: { host: "h2", port: 81 } });
    const c = edit(doc, (d) => {
      delete d.k7;
      d.note = "n";
    });
    expect(c?.ops).toEqual(
      expect.arrayContaining([
        { kind: "del", path: ["k7"] },
        { kind: "set", path: ["note"], value: "n" },
      ]),
    );
    expect(doc.get(["k7"])).toBeUndefined();
    expect("k7" in doc.get()).toBe(false);
  });

  it("arrays that are plain values: written whole", () => {
    const doc = make();
    edit(doc, (d) => {
      d.list = [1];
    });
    const c = edit(doc, (d) => {
      d.list?.push(2);
    });
    expect(c?.ops).toEqual([{ kind: "set", path: ["list"], value: [1, 2] }]);
    expect(doc.get(["list"])).toEqual([1, 2]);
  });

  it("no-op recipes return undefined and use no seq", () => {
    const doc = make();
    expect(edit(doc, () => {})).toBeUndefined();
    expect(
      edit(doc, (d) => {
        d.k1 = 1;
        d.routes.api = d.routes.api as { host: string; port: number };
      }),
    ).toBeUndefined();
    expect(
      edit(doc, (d) => {
        d.k2 = 99;
        d.k2 = 2;
        d.zz = 3;
        delete d.zz;
      }),
    ).toBeUndefined();
    expect(edit(doc, (d) => void Object.keys(d))).toBeUndefined();
    expect(doc.version()).toEqual({});
  });

  it("validates what was written: an invalid edit throws schema/invalid and applies nothing", () => {
    const doc = make();
    const before = doc.get();
    const e = thrown(() =>
      edit(doc, (d) => {
        d.k1 = 100;
        (d.routes.api as { port: number }).port = 0;
      }),
    ) as NxsError;
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.code).toBe(ErrorCode.SchemaInvalid);
    expect(doc.get()).toBe(before);
    expect(doc.get(["k1"])).toBe(1);
    expect(doc.version()).toEqual({});
    const e2 = thrown(() =>
      edit(doc, (d) => {
        d.k1 = "x" as never;
      }),
    ) as NxsError;
    expect(e2.code).toBe(ErrorCode.SchemaInvalid);
  });

  it("a throwing recipe leaves the doc unchanged and its drafts revoked", () => {
    const doc = make();
    let kept: Draft | undefined;
    expect(
      thrown(() =>
        edit(doc, (d) => {
          kept = d;
          d.k3 = 33;
          d.tags.push("z");
          throw new Error("boom");
        }),
      ),
    ).toEqual(new Error("boom"));
    expect(doc.get(["k3"])).toBe(3);
    expect(doc.get(["tags"])).toEqual(["a"]);
    expect(doc.version()).toEqual({});
    expect(() => kept?.k3).toThrow(TypeError);
  });

  it("a recipe may return a new root (checked as any write)", () => {
    const doc = make();
    const c = edit(doc, (d) => ({ ...d, k4: 44, routes: { ...d.routes, web: { host: "w", port: 1 } } }));
    expect(c?.ops).toEqual(
      expect.arrayContaining([
        { kind: "set", path: ["k4"], value: 44 },
        { kind: "set", path: ["routes", "web"], value: {} },
      ]),
    );
    expect(doc.get(["routes", "web"])).toEqual({ host: "w", port: 1 });
    expect(doc.get(["k5"])).toBe(5);
    // Returning the draft itself is no replacement.
    expect(edit(doc, (d) => d)).toBeUndefined();
    // Editing and returning: immer's error, nothing applied.
    expect(
      thrown(() =>
        edit(doc, (d) => {
          d.k1 = 11;
          return { ...d };
        }),
      ),
    ).toMatchObject({ message: expect.stringContaining("returned a new value *and* modified its draft") });
    expect(doc.get(["k1"])).toBe(1);
    expect(thrown(() => edit(doc, () => 5))).toMatchObject({
      message: "the document root must be an object",
    });
  });

  it("enumerating the root draft sees the writes of the recipe", () => {
    const doc = make();
    edit(doc, (d) => {
      d.k0 = 100;
      delete d.k1;
      d.extra = 1;
      const keys = Object.keys(d);
      expect(keys).toHaveLength(WIDE + 3 - 1 + 1);
      expect(keys).not.toContain("k1");
      expect(keys).toContain("extra");
      expect({ ...d }.k0).toBe(100);
      expect(JSON.parse(JSON.stringify(d)).extra).toBe(1);
      expect("k1" in d).toBe(false);
      expect("k2" in d).toBe(true);
      expect("nosuch" in d).toBe(false);
      expect(Object.hasOwn(d, "extra")).toBe(true);
      expect(typeof d.hasOwnProperty).toBe("function");
    });
    expect(doc.get().extra).toBe(1);
  });

  it("results are frozen, and untouched slices keep their identity", () => {
    const doc = make();
    const before = doc.get();
    edit(doc, (d) => {
      (d.routes.api as { port: number }).port = 90;
      d.k9 = 0;
    });
    const after = doc.get();
    expect(Object.isFrozen(after)).toBe(true);
    expect(Object.isFrozen(after.routes)).toBe(true);
    expect(Object.isFrozen(doc.get(["routes", "api"]))).toBe(true);
    expect(after.tags).toBe(before.tags);
    expect(after.routes).not.toBe(before.routes);
  });
});

describe("change() and get(path) with hidden paths", () => {
  const oldSchema = z.object({ a: z.number(), b: z.number() });
  const newSchema = z.object({ a: z.union([z.number(), z.string()]), b: z.number(), extra: z.string() });
  const start = { a: 1, b: 2 };

  it("keep what the schema hides: a refused value shows its fallback, an unknown key stays", () => {
    const clock = fakeClock();
    const on = { docId: "h", clock: clock.now };
    const older = createDoc({ ...on, schema: oldSchema, replicaId: "old", initial: start });
    const newer = createDoc({ ...on, schema: newSchema, replicaId: "new", initial: { ...start, extra: "" } });
    newer.set(["a"], "s");
    newer.set(["extra"], "x");
    older.applyRemote(newer.changesSince({}));
    expect(older.hidden().map((h) => h.path)).toEqual(expect.arrayContaining([["a"], ["extra"]]));
    expect(older.get(["a"])).toBe(1);
    expect(older.get(["extra" as "a"])).toBeUndefined();
    clock.advance(1);
    older.change((d) => {
      expect(d.a).toBe(1);
      d.b = d.a + 10;
    });
    expect(older.get(["b"])).toBe(11);
    clock.advance(1);
    older.change((d) => ({ ...d, b: 12 }));
    expect(older.get()).toEqual({ a: 1, b: 12 });
    clock.advance(1);
    older.change((d) => {
      d.a = 4;
    });
    expect(older.get(["a"])).toBe(4);
    newer.applyRemote(older.changesSince(newer.version()));
    expect(newer.get()).toEqual({ a: 4, b: 12, extra: "x" });
  });
});

describe("get(path)", () => {
  it("reads the value at a path, frozen, as get() shows it", () => {
    const doc = make();
    expect(doc.get([])).toBe(doc.get());
    expect(doc.get(["routes", "api"])).toBe(doc.get().routes.api);
    doc.set(["routes", "api", "port"], 8080);
    const api = doc.get(["routes", "api"]);
    expect(api).toEqual({ host: "h1", port: 8080 });
    expect(Object.isFrozen(api)).toBe(true);
    expect(doc.get(["routes", "nosuch"])).toBeUndefined();
    expect(doc.get(["k1", "below"])).toBeUndefined();
    expect(doc.get(["tags"])).toBe(doc.get().tags);
    expect(doc.get().routes.api).toEqual(api);
  });

  it("refuses a path that is not one", () => {
    const doc = make();
    for (const bad of [[1], "k1", ["__proto__"]] as never[]) {
      expect((thrown(() => doc.get(bad)) as NxsError).code).toBe(ErrorCode.OpInvalid);
    }
  });

  it("after writes, reads the replicated state without rebuilding the view", () => {
    const doc = make();
    doc.get();
    const value = vi.spyOn(DocState.prototype, "value");
    for (let i = 0; i < 2_000; i++) {
      doc.set([`k${i % 7}`], -i - 1);
      expect(doc.get([`k${i % 7}`])).toBe(-i - 1);
    }
    // Plain leaves are read from their parent's table: no node (let alone the root) is materialized.
    expect(value).not.toHaveBeenCalled();
  });
});

describe("change() on a wide root: what it reads", () => {
  it("a change of one key reads that key only, and materializes nothing", () => {
    const doc = make();
    doc.get();
    const valueAt = vi.spyOn(DocState.prototype, "valueAt");
    const value = vi.spyOn(DocState.prototype, "value");
    for (let i = 0; i < 50; i++) {
      edit(doc, (d) => {
        d.k42 = -i - 1;
      });
      expect(doc.get(["k42"])).toBe(-i - 1);
    }
    for (const [path] of valueAt.mock.calls) expect(path).toEqual(["k42"]);
    expect(value).not.toHaveBeenCalled();
  });

  it("the root draft reads the touched keys only; enumerating it reads the whole state", () => {
    const state: { [key: string]: Json } = Object.freeze({
      ...wide,
      routes: Object.freeze({ api: Object.freeze({ host: "h", port: 1 }) }),
    });
    const reads: string[] = [];
    let wholeReads = 0;
    const base: DraftBase = {
      at: (k) => {
        reads.push(k);
        return Object.hasOwn(state, k) ? state[k] : undefined;
      },
      all: () => {
        wholeReads++;
        return state;
      },
    };
    enablePatches();
    const immer = new Immer({ autoFreeze: false });
    const out = runRecipe(immer, base, (d: Record<string, unknown>) => {
      d.k5 = 1;
      (d.routes as Record<string, { port: number }>).api!.port = 2;
    });
    expect(new Set(reads)).toEqual(new Set(["k5", "routes"]));
    expect(wholeReads).toBe(0);
    expect(out.kind === "edit" && out.paths).toEqual([["routes", "api", "port"], ["k5"]]);
    runRecipe(immer, base, (d: object) => Object.keys(d).length);
    expect(wholeReads).toBe(1);
  });
});
