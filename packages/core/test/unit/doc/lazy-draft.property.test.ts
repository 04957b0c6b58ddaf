import fc from "fast-check";
import { enablePatches, produceWithPatches } from "immer";
import { describe, expect, it } from "vitest";
import { createDoc, type Doc } from "../../../src/doc/doc.js";
import { isNxsError, ValidationError } from "../../../src/errors/errors.js";
import type { Change, Json, Path } from "../../../src/model/change.js";
import { canonicalJson, isPlainObject } from "../../../src/model/json.js";
import { getAtPath, topmostPaths } from "../../../src/model/path.js";
import { fakeClock, wideSchema } from "./fixtures.js";

/*
 * change()'s lazy root draft against the whole-root immer path it replaced, written here as the
 * oracle: immer's produceWithPatches over get(), and each topmost patch path (cut at array
 * indices) written with the path helpers in one batch (a returned root: each of its keys). Random
 * recipes must give the same outcome (the same error, or the same ops and the same state).
 */

const params = { seed: 20261207, numRuns: 150 };

const schema = wideSchema;
const initial: Record<string, unknown> = { hits: 0, tags: ["a"], routes: { r0: { host: "h", port: 1 } } };
for (let i = 0; i < 20; i++) initial[`k${i}`] = i;

type Draft = Record<string, unknown> & {
  hits: number;
  tags: string[];
  routes: Record<string, { host: string; port: number } | undefined>;
  note?: string | undefined;
  list?: number[] | undefined;
};

type Step =
  | { readonly t: "top"; readonly k: string; readonly v: number | string | undefined }
  | { readonly t: "deltop"; readonly k: string }
  | { readonly t: "port"; readonly r: string; readonly v: number }
  | { readonly t: "host"; readonly r: string; readonly v: string }
  | { readonly t: "delroute"; readonly r: string }
  | { readonly t: "moveroute"; readonly r: string; readonly to: string }
  | { readonly t: "spreadroutes"; readonly r: string }
  | { readonly t: "inc"; readonly v: number }
  | { readonly t: "sethits"; readonly v: number }
  | { readonly t: "push"; readonly v: string }
  | { readonly t: "filter"; readonly v: string }
  | { readonly t: "list"; readonly v: number[] | undefined }
  | { readonly t: "listpush"; readonly v: number }
  | { readonly t: "note"; readonly v: string | undefined }
  | { readonly t: "keys" }
  | { readonly t: "read"; readonly k: string }
  | { readonly t: "throw" };

interface Recipe {
  readonly steps: readonly Step[];
  /** Return a new root built from the draft (a spread) after the steps. */
  readonly ret: boolean;
}

const topKey = fc.constantFrom("k0", "k1", "k2", "k19", "new", "hits", "note");
const route = fc.constantFrom("r0", "r1", "r2");
const tag = fc.constantFrom("a", "b", "c");
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    t: fc.constant("top" as const),
    k: topKey,
    v: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constant("s"), fc.constant(undefined)),
  }),
  fc.record({ t: fc.constant("deltop" as const), k: topKey }),
  fc.record({ t: fc.constant("port" as const), r: route, v: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ t: fc.constant("host" as const), r: route, v: fc.constantFrom("h", "x") }),
  fc.record({ t: fc.constant("delroute" as const), r: route }),
  fc.record({ t: fc.constant("moveroute" as const), r: route, to: route }),
  fc.record({ t: fc.constant("spreadroutes" as const), r: route }),
  fc.record({ t: fc.constant("inc" as const), v: fc.integer({ min: -2, max: 2 }) }),
  fc.record({ t: fc.constant("sethits" as const), v: fc.integer({ min: -2, max: 5 }) }),
  fc.record({ t: fc.constant("push" as const), v: tag }),
  fc.record({ t: fc.constant("filter" as const), v: tag }),
  fc.record({
    t: fc.constant("list" as const),
    v: fc.oneof(fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 3 }), fc.constant(undefined)),
  }),
  fc.record({ t: fc.constant("listpush" as const), v: fc.integer({ min: 0, max: 9 }) }),
  fc.record({ t: fc.constant("note" as const), v: fc.oneof(fc.constant("n"), fc.constant(undefined)) }),
  fc.constant({ t: "keys" as const }),
  fc.record({ t: fc.constant("read" as const), k: topKey }),
  fc.constant({ t: "throw" as const }),
);
const recipeArb: fc.Arbitrary<Recipe> = fc.record({
  steps: fc.array(stepArb, { maxLength: 6 }),
  ret: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
});

function step(d: Draft, s: Step): void {
  switch (s.t) {
    case "top":
      d[s.k] = s.v;
      return;
    case "deltop":
      delete d[s.k];
      return;
    case "port": {
      const r = d.routes[s.r];
      if (r === undefined) d.routes[s.r] = { host: "h", port: s.v };
      else r.port = s.v;
      return;
    }
    case "host": {
      const r = d.routes[s.r];
      if (r !== undefined) r.host = s.v;
      return;
    }
    case "delroute":
      delete d.routes[s.r];
      return;
    case "moveroute": {
      const r = d.routes[s.r];
      if (r === undefined || s.r === s.to) return;
      d.routes[s.to] = r;
      delete d.routes[s.r];
      return;
    }
    case "spreadroutes":
      d.routes = { ...d.routes, [s.r]: { host: "s", port: 2 } };
      return;
    case "inc":
      if (typeof d.hits === "number") d.hits += s.v;
      return;
    case "sethits":
      d.hits = s.v;
      return;
    case "push":
      if (Array.isArray(d.tags)) d.tags.push(s.v);
      return;
    case "filter":
      if (Array.isArray(d.tags)) d.tags = d.tags.filter((x) => x !== s.v);
      return;
    case "list":
      d.list = s.v === undefined ? undefined : [...s.v];
      return;
    case "listpush":
      if (Array.isArray(d.list)) d.list.push(s.v);
      return;
    case "note":
      d.note = s.v;
      return;
    case "keys":
      void Object.keys(d).length;
      return;
    case "read":
      void d[s.k];
      return;
    case "throw":
      throw new Error("recipe threw");
  }
}

const recipeOf =
  (r: Recipe) =>
  (d: Draft): unknown => {
    for (const s of r.steps) step(d, s);
    return r.ret ? { ...d, k0: 7 } : undefined;
  };

function patchPath(path: readonly (string | number)[]): Path {
  const k = path.findIndex((s) => typeof s !== "string");
  return (k < 0 ? path : path.slice(0, k)) as string[];
}

/** The whole-root immer path change() had, through the public API (the oracle). */
function oracleChange(doc: Doc<unknown>, recipe: (d: Draft) => unknown): Change | undefined {
  const base = doc.get() as Record<string, Json>;
  const [next, patches] = produceWithPatches(base, recipe as never) as unknown as [unknown, { path: [] }[]];
  if (patches.length === 0) return undefined;
  const dirty = topmostPaths(patches.map((p) => patchPath(p.path)));
  if (dirty.length === 1 && (dirty[0] as Path).length === 0) {
    return doc.batch((w) => {
      if (!isPlainObject(next)) throw new ValidationError("the document root must be an object");
      for (const k of Object.keys(base))
        if ((next as Record<string, unknown>)[k] === undefined) w.delete([k]);
      for (const k of Object.keys(next)) {
        const v = (next as Record<string, unknown>)[k];
        if (v !== undefined) w.set([k], v);
      }
    });
  }
  return doc.batch((w) => {
    for (const p of dirty) w.set(p, getAtPath(next, p));
  });
}

const outcome = (f: () => Change | undefined): { error?: string; ops?: string[] } => {
  try {
    const c = f();
    return { ops: (c?.ops ?? []).map((op) => canonicalJson(op as unknown as Json)).sort() };
  } catch (e) {
    return { error: isNxsError(e) ? e.code : String((e as Error).message) };
  }
};

describe("change(): the lazy root draft against the whole-root immer path", () => {
  it("random recipes give the same error, or the same ops and the same state", () => {
    enablePatches();
    fc.assert(
      fc.property(fc.array(recipeArb, { minLength: 1, maxLength: 8 }), (recipes) => {
        const ca = fakeClock();
        const cb = fakeClock();
        const a = createDoc({ schema, docId: "p", replicaId: "x", clock: ca.now, initial: initial as never });
        const b = createDoc({ schema, docId: "p", replicaId: "x", clock: cb.now, initial: initial as never });
        for (const r of recipes) {
          ca.advance(1);
          cb.advance(1);
          const got = outcome(() => a.change(recipeOf(r) as never));
          const want = outcome(() => oracleChange(b as Doc<unknown>, recipeOf(r)));
          expect(got).toEqual(want);
          expect(canonicalJson(a.get() as Json)).toBe(canonicalJson(b.get() as Json));
          expect(a.version()).toEqual(b.version());
          // A path read agrees with the whole state.
          for (const k of ["k0", "new", "hits", "tags", "routes", "note", "list"])
            expect(a.get([k])).toEqual((b.get() as Record<string, unknown>)[k]);
        }
      }),
      params,
    );
  });
});
