import fc from "fast-check";
import { z } from "zod";
import { createDoc, type Doc } from "../../../src/doc/doc.js";
import { isNxsError } from "../../../src/errors/errors.js";
import type { Change } from "../../../src/model/change.js";
import { canonicalJson } from "../../../src/model/json.js";
import { addWinsSet, counter } from "../../../src/model/schema.js";

/** The schema of the property tests: records, nested optional objects, a counter, a set. */
export const schema = z.object({
  kv: z.record(z.string(), z.union([z.number(), z.string(), z.null(), z.array(z.number())])),
  nested: z.record(z.string(), z.object({ x: z.number().optional(), y: z.string().optional() })),
  hits: counter(),
  tags: addWinsSet(z.string()),
  counts: z.record(z.string(), counter()),
  groups: z.record(z.string(), addWinsSet(z.number())),
});
export type State = z.output<typeof schema>;
export const initial: State = { kv: {}, nested: {}, hits: 0, tags: [], counts: {}, groups: {} };

/**
 * The schema of the lazy-draft tests: a root of any number of numeric keys (a catchall) beside a
 * counter, a set, a record of objects and optional keys.
 */
export const wideSchema = z
  .object({
    hits: counter(),
    tags: addWinsSet(z.string()),
    routes: z.record(z.string(), z.object({ host: z.string(), port: z.number().int().min(1) })),
    note: z.string().optional(),
    list: z.array(z.number()).optional(),
  })
  .catchall(z.number());

/** A fake wall clock shared by the replicas of a test. */
export function fakeClock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms), set: (ms: number) => (t = ms) };
}

export function newDoc(replicaId: string, now: () => number): Doc<State> {
  return createDoc({ schema, docId: "doc", replicaId, clock: now, initial });
}

/** The state as canonical JSON (key order is not part of the state). */
export const canon = (d: { get(): unknown }): string => canonicalJson(d.get() as never);

const key = fc.constantFrom("a", "b");

/** One local action of a replica, or a sync of one replica's changes into another. */
export type Action =
  | { t: "kv"; r: number; k: string; v: number | string | null | number[] }
  | { t: "kvdel"; r: number; k: string }
  | { t: "obj"; r: number; k: string; x?: number; y?: string }
  | { t: "objx"; r: number; k: string; x: number }
  | { t: "objdel"; r: number; k: string }
  | { t: "inc"; r: number; by: number }
  | { t: "add"; r: number; k: string }
  | { t: "rem"; r: number; k: string }
  | { t: "multi"; r: number; k: string; v: number }
  | { t: "cinc"; r: number; k: string; by: number }
  | { t: "cdel"; r: number; k: string }
  | { t: "gadd"; r: number; k: string; e: number }
  | { t: "grem"; r: number; k: string; e: number }
  | { t: "gdel"; r: number; k: string }
  | { t: "sync"; r: number; to: number }
  | { t: "tick"; ms: number };

export const actionArb = (replicas: number): fc.Arbitrary<Action> => {
  const r = fc.integer({ min: 0, max: replicas - 1 });
  const w = (weight: number, arbitrary: fc.Arbitrary<Action>) => ({ weight, arbitrary });
  return fc.oneof(
    w(
      4,
      fc.record({
        t: fc.constant("kv" as const),
        r,
        k: key,
        v: fc.oneof(
          fc.integer(),
          fc.string({ maxLength: 3 }),
          fc.constant(null),
          // Longer arrays, often of small integers: runs of equal differences (binary snapshots).
          fc.array(fc.oneof(fc.integer(), fc.integer({ min: -2, max: 2 })), { maxLength: 12 }),
        ),
      }),
    ),
    w(4, fc.record({ t: fc.constant("kvdel" as const), r, k: key })),
    w(
      2,
      fc.record({
        t: fc.constant("obj" as const),
        r,
        k: key,
        x: fc.option(fc.integer(), { nil: undefined }),
        y: fc.option(fc.string({ maxLength: 2 }), { nil: undefined }),
      }),
    ),
    w(3, fc.record({ t: fc.constant("objx" as const), r, k: key, x: fc.integer() })),
    w(3, fc.record({ t: fc.constant("objdel" as const), r, k: key })),
    w(1, fc.record({ t: fc.constant("inc" as const), r, by: fc.integer({ min: -5, max: 5 }) })),
    w(2, fc.record({ t: fc.constant("add" as const), r, k: key })),
    w(3, fc.record({ t: fc.constant("rem" as const), r, k: key })),
    w(1, fc.record({ t: fc.constant("multi" as const), r, k: key, v: fc.integer() })),
    w(2, fc.record({ t: fc.constant("cinc" as const), r, k: key, by: fc.integer({ min: -3, max: 3 }) })),
    w(2, fc.record({ t: fc.constant("cdel" as const), r, k: key })),
    w(2, fc.record({ t: fc.constant("gadd" as const), r, k: key, e: fc.integer({ min: 0, max: 2 }) })),
    w(2, fc.record({ t: fc.constant("grem" as const), r, k: key, e: fc.integer({ min: 0, max: 2 }) })),
    w(1, fc.record({ t: fc.constant("gdel" as const), r, k: key })),
    w(5, fc.record({ t: fc.constant("sync" as const), r, to: fc.integer({ min: 0, max: replicas - 1 }) })),
    w(1, fc.record({ t: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 3 }) })),
  );
};

/**
 * Runs actions on `n` replicas with partial syncs (so changes are concurrent and causally related)
 * and returns the replicas and every change made.
 */
export function runActions(actions: readonly Action[], n = 3, start?: number) {
  const clock = fakeClock(start);
  const docs = Array.from({ length: n }, (_, i) => newDoc(`r${i}`, clock.now));
  const changes: Change[] = [];
  for (const doc of docs) doc.onLocalChange((c) => changes.push(c));
  for (const a of actions) {
    if (a.t === "tick") {
      clock.advance(a.ms);
      continue;
    }
    const d = docs[a.r] as Doc<State>;
    switch (a.t) {
      case "kv":
        d.change((s) => {
          s.kv[a.k] = a.v;
        });
        break;
      case "kvdel":
        d.delete(["kv", a.k]);
        break;
      case "obj":
        d.set(["nested", a.k], {
          ...(a.x === undefined ? {} : { x: a.x }),
          ...(a.y === undefined ? {} : { y: a.y }),
        });
        break;
      case "objx":
        if (d.get().nested[a.k] !== undefined) d.set(["nested", a.k, "x"], a.x);
        break;
      case "objdel":
        d.change((s) => {
          delete s.nested[a.k];
        });
        break;
      case "inc":
        if (a.by % 2 === 0) d.increment(["hits"], a.by);
        else
          d.change((s) => {
            s.hits += a.by;
          });
        break;
      case "add":
        if (a.k === "a") d.add(["tags"], a.k);
        else
          d.change((s) => {
            if (!s.tags.includes(a.k)) s.tags.push(a.k);
          });
        break;
      case "rem":
        if (a.k === "a") d.remove(["tags"], a.k);
        else
          d.change((s) => {
            s.tags = s.tags.filter((t) => t !== a.k);
          });
        break;
      case "multi":
        d.batch((w) => {
          w.set(["kv", a.k], a.v);
          w.increment(["hits"], 1);
          w.set(["kv", a.k], a.v + 1);
        });
        break;
      case "cinc":
        if (a.by % 2 === 0) d.increment(["counts", a.k], a.by);
        else
          d.change((s) => {
            s.counts[a.k] = (s.counts[a.k] ?? 0) + a.by;
          });
        break;
      case "cdel":
        d.delete(["counts", a.k]);
        break;
      case "gadd":
        if (a.e === 0) d.add(["groups", a.k], a.e);
        else
          d.change((s) => {
            const g = s.groups[a.k];
            if (g === undefined) s.groups[a.k] = [a.e];
            else g.push(a.e);
          });
        break;
      case "grem":
        if (d.get().groups[a.k] !== undefined) d.remove(["groups", a.k], a.e);
        break;
      case "gdel":
        d.change((s) => {
          delete s.groups[a.k];
        });
        break;
      case "sync": {
        const res = (docs[a.to] as Doc<State>).applyRemote(
          d.changesSince((docs[a.to] as Doc<State>).version()),
        );
        if (res.rejected.length > 0) throw new Error(`sync rejected: ${res.rejected[0]?.error.message}`);
        break;
      }
    }
  }
  return { docs, changes, clock };
}

/** Deep-copies changes as they would travel (JSON), so tests never share objects with the source. */
export const wire = (cs: readonly Change[]): unknown[] => JSON.parse(JSON.stringify(cs));

/** A value after a JSON round trip (what crosses any wire). */
export const jsonTrip = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** The error code thrown by `f`, or undefined; anything but an NxsError is reported as such. */
export function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isNxsError(e) ? e.code : `not an NxsError: ${String(e)}`;
  }
  return undefined;
}
