import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { elementKey } from "../../../src/crdt/add-wins-set.js";
import { createDoc } from "../../../src/doc/doc.js";
import type { Change } from "../../../src/model/change.js";
import { canonicalJson, compareJson } from "../../../src/model/json.js";
import { addWinsSet } from "../../../src/model/schema.js";

const params = { seed: 20261207, numRuns: 150 };
const REPLICAS = 3;
const ELEMENTS = ["a", "b", "c", "d", "e"];

/** One step: a local add or remove at a replica, or a replica pulling what another has. */
type Step =
  | { readonly k: "add"; readonly r: number; readonly e: string }
  | { readonly k: "rem"; readonly r: number; readonly e: string }
  | { readonly k: "pull"; readonly r: number; readonly from: number };

const stepArb = fc.oneof(
  fc.record({
    k: fc.constantFrom("add" as const, "rem" as const),
    r: fc.nat(REPLICAS - 1),
    e: fc.constantFrom(...ELEMENTS),
  }),
  fc.record({ k: fc.constant("pull" as const), r: fc.nat(REPLICAS - 1), from: fc.nat(REPLICAS - 1) }),
) as fc.Arbitrary<Step>;

/**
 * The add-wins (observed-remove) model: every add is a unique tag; a remove cancels the tags of
 * its element that its replica had seen and not seen removed. An element is present at a replica
 * while one of the tags it knows of is not cancelled by a remove it knows of.
 */
class Model {
  readonly adds = new Map<number, string>();
  readonly rems = new Map<number, ReadonlySet<number>>();
  /** Per replica: the add and remove ids it knows. */
  readonly known: { adds: Set<number>; rems: Set<number> }[] = Array.from({ length: REPLICAS }, () => ({
    adds: new Set(),
    rems: new Set(),
  }));
  #next = 0;

  live(r: number, e?: string): Set<number> {
    const k = this.known[r] as Model["known"][number];
    const cancelled = new Set<number>();
    for (const id of k.rems) for (const t of this.rems.get(id) ?? []) cancelled.add(t);
    const out = new Set<number>();
    for (const id of k.adds)
      if (!cancelled.has(id) && (e === undefined || this.adds.get(id) === e)) out.add(id);
    return out;
  }

  present(r: number): string[] {
    return [...new Set([...this.live(r)].map((id) => this.adds.get(id) as string))].sort(compareJson);
  }

  add(r: number, e: string): void {
    const id = this.#next++;
    this.adds.set(id, e);
    this.known[r]?.adds.add(id);
  }

  rem(r: number, e: string): void {
    const seen = this.live(r, e);
    if (seen.size === 0) return; // a remove of an absent element is no change
    const id = this.#next++;
    this.rems.set(id, seen);
    this.known[r]?.rems.add(id);
  }

  pull(r: number, from: number): void {
    const k = this.known[r] as Model["known"][number];
    const f = this.known[from] as Model["known"][number];
    for (const id of f.adds) k.adds.add(id);
    for (const id of f.rems) k.rems.add(id);
  }
}

const schema = z.object({ s: addWinsSet(z.string()) });
const wire = (cs: readonly Change[]) => JSON.parse(JSON.stringify(cs)) as unknown[];

function replicas() {
  let t = 1_000;
  const clock = () => t++;
  return Array.from({ length: REPLICAS }, (_, i) =>
    createDoc({ schema, docId: "d", replicaId: `r${i}`, clock, initial: { s: [] } }),
  );
}

describe("add-wins set (seeded properties)", () => {
  it("every replica shows what the observed-remove model says, after every local op and every pull", () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 80, size: "max" }), (steps) => {
        const docs = replicas();
        const model = new Model();
        for (const s of steps) {
          const doc = docs[s.r] as (typeof docs)[number];
          if (s.k === "add") {
            doc.add(["s"], s.e);
            if (!model.present(s.r).includes(s.e)) model.add(s.r, s.e);
          } else if (s.k === "rem") {
            doc.remove(["s"], s.e);
            model.rem(s.r, s.e);
          } else {
            const from = docs[s.from] as (typeof docs)[number];
            const res = doc.applyRemote(wire(from.changesSince(doc.version())));
            expect(res.rejected).toEqual([]);
            model.pull(s.r, s.from);
          }
          expect(doc.get().s).toEqual(model.present(s.r));
        }
        // A full exchange converges every replica on the model's union.
        for (const a of docs)
          for (const b of docs) if (a !== b) b.applyRemote(wire(a.changesSince(b.version())));
        for (let r = 0; r < REPLICAS; r++) for (let f = 0; f < REPLICAS; f++) model.pull(r, f);
        for (let r = 0; r < REPLICAS; r++) expect(docs[r]?.get().s).toEqual(model.present(0));
      }),
      params,
    );
  });

  it("merge is order-independent and idempotent: any delivery order, with duplicates, gives the same set", () => {
    fc.assert(
      fc.property(
        fc.array(stepArb, { minLength: 1, maxLength: 60, size: "max" }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 200 }),
        (steps, shuffle) => {
          const docs = replicas();
          for (const s of steps) {
            const doc = docs[s.r] as (typeof docs)[number];
            if (s.k === "add") doc.add(["s"], s.e);
            else if (s.k === "rem") doc.remove(["s"], s.e);
            else doc.applyRemote(wire((docs[s.from] as typeof doc).changesSince(doc.version())));
          }
          const all = docs.flatMap((d) => [...d.changesSince({})]);
          const unique = [...new Map(all.map((c) => [`${c.origin}/${c.seq}`, c])).values()];
          // Shuffle (seeded by the drawn numbers) and duplicate some changes.
          const order = unique.map((c, i) => ({ c, key: shuffle[i % shuffle.length] as number }));
          order.sort((x, y) => x.key - y.key);
          const delivery = [...order.map((o) => o.c), ...unique.slice(0, shuffle.length % 4)];
          const a = createDoc({ schema, docId: "d", replicaId: "x", clock: () => 1, initial: { s: [] } });
          const b = createDoc({ schema, docId: "d", replicaId: "y", clock: () => 1, initial: { s: [] } });
          for (const c of delivery) a.applyRemote(wire([c]));
          b.applyRemote(wire(unique));
          expect(a.get().s).toEqual(b.get().s);
          for (const d of docs) d.applyRemote(wire(unique));
          for (const d of docs) expect(d.get().s).toEqual(b.get().s);
        },
      ),
      params,
    );
  });

  it("checks added elements against the element schema: a local add is refused, a remote one makes the set hidden (shown as its initial value)", () => {
    const strict = z.object({ s: addWinsSet(z.string().min(2)) });
    const a = createDoc({ schema: strict, docId: "d", replicaId: "a", clock: () => 5, initial: { s: [] } });
    a.add(["s"], "ok");
    expect(() => a.add(["s"], "x")).toThrow(/schema/);
    expect(a.get().s).toEqual(["ok"]);
    const loose = createDoc({ schema, docId: "d", replicaId: "b", clock: () => 6, initial: { s: [] } });
    loose.add(["s"], "y");
    const res = a.applyRemote(wire(loose.changesSince(a.version())));
    expect(res.rejected).toEqual([]);
    expect(res.hidden?.length).toBe(1);
    expect(a.get().s).toEqual([]);
    expect(a.hidden().map((h) => h.path)).toEqual([["s"]]);
  });

  it("nested sets, optional sets and several edits of one set in a batch behave as whole-array edits", () => {
    const nested = z.object({
      g: z.record(z.string(), z.object({ tags: addWinsSet(z.string()) })),
      o: addWinsSet(z.number().int()).optional(),
    });
    let t = 10;
    const clock = () => t++;
    const a = createDoc({ schema: nested, docId: "d", replicaId: "a", clock, initial: { g: {} } });
    const b = createDoc({ schema: nested, docId: "d", replicaId: "b", clock, initial: { g: {} } });
    a.set(["g", "x"], { tags: ["p"] });
    a.batch((w) => {
      w.add(["g", "x", "tags"], "q");
      w.remove(["g", "x", "tags"], "p");
      w.add(["g", "x", "tags"], "r");
      w.remove(["g", "x", "tags"], "r");
      w.add(["o"], 2);
      w.add(["o"], 1);
    });
    expect(a.get()).toEqual({ g: { x: { tags: ["q"] } }, o: [1, 2] });
    expect(() => a.add(["o"], 1.5)).toThrow(/schema/);
    expect(a.get().o).toEqual([1, 2]);
    b.applyRemote(wire(a.changesSince(b.version())));
    expect(b.get()).toEqual(a.get());
    // Concurrent: b removes q while a adds it again (a new tag): the add wins.
    b.remove(["g", "x", "tags"], "q");
    a.remove(["g", "x", "tags"], "q");
    a.add(["g", "x", "tags"], "q");
    b.applyRemote(wire(a.changesSince(b.version())));
    a.applyRemote(wire(b.changesSince(a.version())));
    expect(a.get().g.x?.tags).toEqual(["q"]);
    expect(b.get()).toEqual(a.get());
  });

  it("shares the set's array between reads until an element is added or removed", () => {
    const a = createDoc({ schema, docId: "d", replicaId: "a", clock: () => 5, initial: { s: [] } });
    a.add(["s"], "p");
    a.add(["s"], "q");
    const first = a.get().s;
    expect(a.get().s).toBe(first);
    a.add(["s"], "p"); // present: no change
    expect(a.get().s).toBe(first);
    a.remove(["s"], "p");
    expect(a.get().s).toEqual(["q"]);
    expect(Object.isFrozen(a.get().s)).toBe(true);
  });

  it("an add of a present element or a remove of an absent one is no change: no stamp, no seq, no log entry", () => {
    let t = 1_000;
    let reads = 0;
    const clock = () => {
      reads++;
      return t++;
    };
    const a = createDoc({ schema, docId: "d", replicaId: "a", clock, initial: { s: [] } });
    const first = a.add(["s"], "p");
    expect(first?.ops.map((o) => o.kind)).toEqual(["add"]);
    const version = a.version();
    const readsBefore = reads;
    expect(a.add(["s"], "p")).toBeUndefined();
    expect(a.remove(["s"], "q")).toBeUndefined();
    expect(reads).toBe(readsBefore);
    expect(a.version()).toEqual(version);
    expect(a.changesSince({})).toHaveLength(1);
    // The checks still come first: a path that is not a set, a bad path, a non-JSON element.
    const other = createDoc({
      schema: z.object({ s: addWinsSet(z.string()), n: z.number() }),
      docId: "d",
      replicaId: "b",
      clock,
      initial: { s: ["p"], n: 1 },
    });
    expect(() => other.add(["n"] as never, "p" as never)).toThrow(/not an add-wins set/);
    expect(() => other.remove(["n"] as never, "p" as never)).toThrow(/not an add-wins set/);
    expect(() => other.add([] as never, "p" as never)).toThrow();
    expect(() => other.add(["s"], Number.NaN as never)).toThrow(/not JSON/);
    // Inside a batch a no-op adds nothing; the next remove is a change of its own.
    expect(a.batch((w) => w.add(["s"], "p"))).toBeUndefined();
    const rem = a.remove(["s"], "p");
    expect(rem?.ops).toEqual([{ kind: "rem", path: ["s"], value: "p", tags: [first?.hlc] }]);
    expect(a.get().s).toEqual([]);
    // A write during a change is refused as before, present element or not.
    const nested: string[] = [];
    const attempt = (f: () => unknown) => {
      try {
        f();
        nested.push("no error");
      } catch (e) {
        nested.push(String(e));
      }
    };
    a.batch((w) => {
      w.add(["s"], "r");
      attempt(() => a.add(["s"], "r"));
      attempt(() => a.remove(["s"], "zz"));
    });
    expect(nested).toEqual([
      expect.stringMatching(/already in progress/),
      expect.stringMatching(/already in progress/),
    ]);
    expect(a.get().s).toEqual(["r"]);
  });

  it("an element's key is its canonical JSON, a string's remembered between calls", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.jsonValue()), { maxLength: 20 }), (values) => {
        for (const v of [...values, ...values])
          expect(elementKey(v as never)).toBe(canonicalJson(v as never));
      }),
      params,
    );
  });
});
