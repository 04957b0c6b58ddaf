import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createDoc } from "../../../src/doc/doc.js";
import type { Change } from "../../../src/model/change.js";
import { actionArb, canon, fakeClock, initial, newDoc, runActions, schema, wire } from "./fixtures.js";

const params = { seed: 20261127, numRuns: 200 };
const actions = fc.array(actionArb(3), { minLength: 5, maxLength: 60, size: "max" });

/** A delivery: every change at least once, in any order, some twice, in batches of any size. */
const delivery = (n: number) =>
  fc.record({
    order: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
    dups: fc.array(fc.integer({ min: 0, max: Math.max(0, n - 1) }), { maxLength: 5 }),
    cuts: fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 10 }),
  });

function deliver(
  changes: readonly Change[],
  d: { order: number[]; dups: number[]; cuts: number[] },
): unknown[][] {
  const seq = [...d.order, ...d.dups.filter((i) => i < changes.length)].map((i) => changes[i]);
  const batches: unknown[][] = [];
  let k = 0;
  let c = 0;
  while (k < seq.length) {
    const size = d.cuts[c++ % d.cuts.length] as number;
    batches.push(wire(seq.slice(k, k + size) as Change[]));
    k += size;
  }
  return batches;
}

/** The state every replica reaches after a full exchange, and the changes made. */
function reference(acts: ReturnType<typeof runActions>) {
  const { docs } = acts;
  for (const a of docs) for (const b of docs) if (a !== b) b.applyRemote(wire(a.changesSince(b.version())));
  return docs;
}

describe("document CRDT properties (seeded)", () => {
  it("applying changes converges whatever the order, duplication and batching (commutative, associative, idempotent)", () => {
    fc.assert(
      fc.property(
        actions.chain((as) => {
          const run = runActions(as);
          return fc.tuple(fc.constant(run), delivery(run.changes.length), delivery(run.changes.length));
        }),
        ([run, d1, d2]) => {
          const docs = reference(run);
          const expected = canon(docs[0] as never);
          for (const d of docs) expect(canon(d)).toBe(expected);
          for (const d of [d1, d2]) {
            const clock = fakeClock(1_800_000_000_000);
            const obs = newDoc("observer", clock.now);
            let rejected = 0;
            for (const batch of deliver(run.changes, d)) rejected += obs.applyRemote(batch).rejected.length;
            expect(rejected).toBe(0);
            expect(obs.gaps()).toEqual({});
            expect(canon(obs)).toBe(expected);
            expect(obs.version()).toEqual((docs[0] as ReturnType<typeof newDoc>).version());
            // Idempotent: everything again changes nothing.
            const again = obs.applyRemote(wire(run.changes));
            expect(again.applied).toHaveLength(0);
            expect(again.duplicates).toBe(run.changes.length);
            expect(canon(obs)).toBe(expected);
          }
        },
      ),
      params,
    );
  });

  it("snapshot + tail equals full replay, at any cut", () => {
    fc.assert(
      fc.property(
        actions.chain((as) => {
          const run = runActions(as);
          return fc.tuple(fc.constant(run), delivery(run.changes.length), fc.nat());
        }),
        ([run, d, cutAt]) => {
          const clock = fakeClock(1_800_000_000_000);
          const full = newDoc("full", clock.now);
          full.applyRemote(wire(run.changes));
          const batches = deliver(run.changes, d);
          const cut = cutAt % (batches.length + 1);
          const head = newDoc("head", clock.now);
          for (const b of batches.slice(0, cut)) head.applyRemote(b);
          const snap = JSON.parse(JSON.stringify(head.snapshot()));
          const loaded = createDoc({
            schema,
            docId: "doc",
            replicaId: "loaded",
            clock: clock.now,
            snapshot: snap,
          });
          expect(canon(loaded)).toBe(canon(head));
          expect(loaded.version()).toEqual(head.version());
          // The tail: everything (what the snapshot covers is ignored as duplicates).
          for (const b of batches) loaded.applyRemote(b);
          expect(canon(loaded)).toBe(canon(full));
          expect(loaded.version()).toEqual(full.version());
        },
      ),
      params,
    );
  });

  it("compaction with a stable frontier preserves the state, and later changes still merge the same", () => {
    fc.assert(
      fc.property(actions, actions, (first, second) => {
        const run = runActions(first);
        const docs = reference(run);
        const a = docs[0] as ReturnType<typeof newDoc>;
        const b = docs[1] as ReturnType<typeof newDoc>;
        const before = canon(a);
        const frontier = a.version();
        a.compact(frontier);
        expect(canon(a)).toBe(before);
        expect(a.changesSince(frontier)).toHaveLength(0);
        // The compacted snapshot loads to the same state.
        const loaded = createDoc({
          schema,
          docId: "doc",
          replicaId: "z",
          clock: run.clock.now,
          snapshot: JSON.parse(JSON.stringify(a.snapshot())),
        });
        expect(canon(loaded)).toBe(before);
        // New concurrent work on a compacted and an uncompacted replica still converges.
        // Causally after the frontier (stable means every later change is newer): a later clock.
        const more = runActions(second, 3, run.clock.now() + 1000);
        const aNew: Change[] = [];
        const bNew: Change[] = [];
        a.onLocalChange((c) => aNew.push(c));
        b.onLocalChange((c) => bNew.push(c));
        a.change((s) => {
          s.kv.z = 1;
        });
        b.change((s) => {
          s.kv.z = 2;
          delete s.kv.a;
        });
        // Replay the second run's changes as if made by the originals' peers.
        for (const x of [a, b, loaded])
          x.applyRemote(
            wire(
              more.changes.map(
                (c) => ({ ...c, origin: `m${c.origin}`, hlc: `${c.hlc.slice(0, 18)}m${c.origin}` }) as Change,
              ),
            ),
          );
        a.applyRemote(wire(bNew));
        b.applyRemote(wire(aNew));
        loaded.applyRemote(wire([...aNew, ...bNew]));
        expect(canon(a)).toBe(canon(b));
        expect(canon(loaded)).toBe(canon(b));
      }),
      { seed: params.seed, numRuns: 60 },
    );
  });

  it("applySnapshot of another replica's snapshot, then the rest, equals full replay", () => {
    fc.assert(
      fc.property(
        actions.chain((as) => {
          const run = runActions(as);
          const n = run.changes.length;
          return fc.tuple(fc.constant(run), delivery(n), delivery(n), fc.nat(), fc.nat());
        }),
        ([run, d1, d2, cut1, cut2]) => {
          const clock = fakeClock(1_800_000_000_000);
          const full = newDoc("full", clock.now);
          full.applyRemote(wire(run.changes));
          const b1 = deliver(run.changes, d1);
          const b2 = deliver(run.changes, d2);
          const x = newDoc("x", clock.now);
          const y = newDoc("y", clock.now);
          for (const b of b1.slice(0, cut1 % (b1.length + 1))) x.applyRemote(b);
          for (const b of b2.slice(0, cut2 % (b2.length + 1))) y.applyRemote(b);
          const r = x.applySnapshot(JSON.parse(JSON.stringify(y.snapshot())));
          expect(r.rejected).toEqual([]);
          for (const b of b1) x.applyRemote(b);
          expect(canon(x)).toBe(canon(full));
          expect(x.version()).toEqual(full.version());
          expect(x.gaps()).toEqual({});
        },
      ),
      params,
    );
  });

  it("the initial state is shared: fresh replicas with the same initial agree before any change", () => {
    const clock = fakeClock();
    const a = newDoc("a", clock.now);
    const b = createDoc({ schema, docId: "doc", replicaId: "b", clock: clock.now, initial });
    expect(canon(a)).toBe(canon(b));
    expect(a.version()).toEqual({});
  });
});
