import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createDoc, type Doc } from "../../../src/doc/doc.js";
import type { Change, Snapshot } from "../../../src/model/change.js";
import { counter } from "../../../src/model/schema.js";

/**
 * The value of a counter is one float, the same on every replica (docs/protocol.md, "Counter
 * value"): whatever the arrival order, whether a replica compacted (at any stable frontier) or
 * went through a snapshot (JSON or binary), and for any mix of integer and fractional amounts.
 */

const params = { seed: 20261127, numRuns: 150 };

const schema = z.object({ c: counter(), cs: z.record(z.string(), counter()) });
type State = z.output<typeof schema>;
const initial: State = { c: 0.1, cs: { a: 1 / 3 } };
const WRITERS = ["w-a", "w-b", "w-c", "w-d"] as const;

/** Amounts that make float sums depend on their order, integers, and integers past 2^53. */
const amount = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(0.1, 0.2, 0.3, 1e-3, 1 / 3, -1 / 3, 0.7, -0.1, 1e-9) },
  { weight: 3, arbitrary: fc.integer({ min: -1000, max: 1000 }) },
  { weight: 1, arbitrary: fc.constantFrom(2 ** 53 - 1, 2 ** 52, -(2 ** 52), 1e16, 3) },
  { weight: 2, arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }) },
);

type WriterAction =
  | { readonly t: "inc"; readonly w: number; readonly k: string | undefined; readonly by: number }
  | { readonly t: "del"; readonly w: number; readonly k: string }
  | { readonly t: "sync"; readonly w: number }
  | { readonly t: "time"; readonly ms: number };

const writerAction: fc.Arbitrary<WriterAction> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      t: fc.constant("inc" as const),
      w: fc.nat(WRITERS.length - 1),
      k: fc.constantFrom(undefined, "a", "b"),
      by: amount,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant("del" as const),
      w: fc.nat(WRITERS.length - 1),
      k: fc.constantFrom("a", "b"),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("sync" as const), w: fc.nat(WRITERS.length - 1) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("time" as const), ms: fc.nat(3) }) },
);

/** What a replica does after a delivery: nothing, compact at a stable frontier, or reload from a snapshot. */
type Step = "none" | "compact" | "json" | "binary";
const step = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Step>("none") },
  { weight: 2, arbitrary: fc.constant<Step>("compact") },
  { weight: 1, arbitrary: fc.constant<Step>("json") },
  { weight: 1, arbitrary: fc.constant<Step>("binary") },
);

const mk = (replicaId: string, now: () => number, snapshot?: Snapshot | Uint8Array): Doc<State> =>
  createDoc({
    schema,
    docId: "counters",
    replicaId,
    clock: now,
    initial,
    ...(snapshot === undefined ? {} : { snapshot }),
  });

/** Whether two lists of values are bit-identical (`Object.is`, so 0 and -0 differ). */
const same = (a: readonly unknown[], b: readonly unknown[]) =>
  a.length === b.length && a.every((x, i) => Object.is(x, b[i]));

/** Runs the writers' actions; returns every change made, per origin in seq order. */
function write(actions: readonly WriterAction[]): Change[] {
  let t = 1_700_000_000_000;
  const now = () => t;
  const docs = WRITERS.map((w) => mk(w, now));
  const changes: Change[] = [];
  for (const a of actions) {
    if (a.t === "time") {
      t += a.ms;
      continue;
    }
    const d = docs[a.w] as Doc<State>;
    if (a.t === "sync") {
      for (const o of docs) if (o !== d) d.applyRemote(o.changesSince(d.version()));
      continue;
    }
    const c =
      a.t === "inc" ? d.increment(a.k === undefined ? ["c"] : ["cs", a.k], a.by) : d.delete(["cs", a.k]);
    if (c !== undefined) changes.push(c);
  }
  return changes;
}

/**
 * A frontier that is causally stable on a replica that applied `version`: every change below an
 * HLC bound that every change it has not applied exceeds (`cut` in [0, 1] lowers the bound).
 */
function stableFrontier(changes: readonly Change[], version: Record<string, number>, cut: number) {
  const missing = changes.filter((c) => c.seq > (version[c.origin] ?? 0)).map((c) => c.hlc);
  const sorted = changes.map((c) => c.hlc).sort();
  let bound = missing.length === 0 ? `${sorted[sorted.length - 1]}~` : missing.sort()[0];
  const pick = sorted[Math.floor(cut * sorted.length)];
  if (pick !== undefined && bound !== undefined && pick < bound) bound = pick;
  const frontier: Record<string, number> = {};
  for (const c of changes)
    if (bound !== undefined && c.hlc < bound) frontier[c.origin] = Math.max(frontier[c.origin] ?? 0, c.seq);
  return frontier;
}

/** The definition, computed from the changes: per origin a left fold in seq order, then origins in sorted order. */
function definedValue(changes: readonly Change[]): number {
  const per = new Map<string, number>([["", initial.c]]);
  for (const c of changes)
    for (const op of c.ops)
      if (op.kind === "inc" && op.path.length === 1) per.set(c.origin, (per.get(c.origin) ?? 0) + op.value);
  let total = 0;
  for (const o of [...per.keys()].sort()) total += per.get(o) as number;
  return total;
}

describe("counter value (seeded)", () => {
  it("is bit-identical on every replica, compacted, reloaded or not, and follows the definition", () => {
    fc.assert(
      fc.property(
        fc.array(writerAction, { minLength: 5, maxLength: 60 }).chain((acts) => {
          const changes = write(acts);
          const n = changes.length;
          const replica = fc.record({
            order: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
            steps: fc.array(fc.tuple(step, fc.double({ min: 0, max: 1, noNaN: true })), {
              minLength: n,
              maxLength: n,
            }),
          });
          return fc.tuple(fc.constant(changes), fc.array(replica, { minLength: 3, maxLength: 3 }));
        }),
        ([changes, replicas]) => {
          const now = () => 1_700_000_100_000;
          // The reference: every change in (origin, seq) order, never compacted.
          const ref = mk("ref", now);
          expect(ref.applyRemote(changes).rejected).toEqual([]);
          const values = (d: Doc<State>) => [d.get().c, d.get().cs.a, d.get().cs.b];
          const expected = values(ref);
          expect(Object.is(expected[0], definedValue(changes))).toBe(true);
          replicas.forEach(({ order, steps }, r) => {
            let doc = mk(`r-${r}`, now);
            let reloads = 0;
            order.forEach((k, j) => {
              doc.applyRemote([changes[k]]);
              const [s, cut] = steps[j] as [Step, number];
              if (s === "compact") doc.compact(stableFrontier(changes, doc.version(), cut));
              else if (s !== "none") {
                const snap = s === "json" ? JSON.parse(JSON.stringify(doc.snapshot())) : doc.snapshotBinary();
                doc = mk(`r-${r}-${++reloads}`, now, snap);
              }
            });
            // What was held when the replica reloaded is delivered again.
            doc.applyRemote(changes);
            expect(doc.gaps()).toEqual({});
            const got = values(doc);
            expect(same(got, expected), `replica ${r}: ${got} against ${expected}`).toBe(true);
            const json = values(mk(`r-${r}-json`, now, JSON.parse(JSON.stringify(doc.snapshot()))));
            expect(same(json, expected), `replica ${r} from JSON: ${json} against ${expected}`).toBe(true);
            const bin = values(mk(`r-${r}-bin`, now, doc.snapshotBinary()));
            expect(same(bin, expected), `replica ${r} from bytes: ${bin} against ${expected}`).toBe(true);
          });
        },
      ),
      params,
    );
  });
});
