import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { type AckedVersion, computeStableFrontier } from "../../src/clock/frontier.js";
import {
  dominatesVersionVector,
  intersectVersionVectors,
  type VersionVector,
} from "../../src/clock/version-vector.js";
import { createDoc } from "../../src/doc/doc.js";
import type { Change } from "../../src/model/change.js";

describe("computeStableFrontier", () => {
  it("intersects this replica's current version with every other live ack (its own stale ack replaced)", () => {
    const r = computeStableFrontier({
      self: "a",
      version: { a: 9, b: 5, c: 4 },
      live: [
        { replica: "a", version: { a: 1 } },
        { replica: "b", version: { a: 7, b: 5, c: 4 } },
        { replica: "c", version: { a: 8, b: 3, c: 4 } },
      ],
    });
    expect(r).toEqual({ frontier: { a: 7, b: 3, c: 4 }, waitingFor: [] });
  });

  it("waits for a live replica whose changes made before its ack are not all applied here", () => {
    const live = [{ replica: "b", version: { a: 3, b: 6 } }];
    expect(computeStableFrontier({ self: "a", version: { a: 3, b: 5 }, live })).toEqual({
      frontier: undefined,
      waitingFor: ["b"],
    });
    expect(computeStableFrontier({ self: "a", version: { a: 3, b: 6 }, live }).frontier).toEqual({
      a: 3,
      b: 6,
    });
  });

  it("waits for an origin that never acknowledged; expired replicas neither block nor count", () => {
    const version = { a: 3, b: 2, x: 1 };
    const live = [{ replica: "b", version: { a: 1, b: 2 } }];
    expect(computeStableFrontier({ self: "a", version, live })).toEqual({
      frontier: undefined,
      waitingFor: ["x"],
    });
    expect(computeStableFrontier({ self: "a", version, live, expired: ["x"] })).toEqual({
      frontier: { a: 1, b: 2 },
      waitingFor: [],
    });
  });

  it("is dominated by this replica's version and by every live ack (property)", () => {
    const vv = fc.dictionary(fc.constantFrom("a", "b", "c"), fc.integer({ min: 1, max: 20 }));
    fc.assert(
      fc.property(vv, vv, vv, (own, b, c) => {
        const version = { ...own, b: Math.max(own.b ?? 0, b.b ?? 0), c: Math.max(own.c ?? 0, c.c ?? 0) };
        const live: AckedVersion[] = [
          { replica: "b", version: b },
          { replica: "c", version: c },
        ];
        const { frontier } = computeStableFrontier({ self: "a", version, live });
        expect(frontier).toBeDefined();
        for (const v of [version, b, c]) expect(dominatesVersionVector(v, frontier!)).toBe(true);
      }),
      { seed: 20261127, numRuns: 200 },
    );
  });
});

// Why the check matters: a change made before its origin acknowledged, still in flight, may carry an
// older stamp than a delete the plain intersection of acks already covers. Dropping that delete's
// tombstone would let the old write reappear on the replica that compacted, and only there.
describe("compaction with the stable frontier keeps replicas convergent", () => {
  const schema = z.object({ items: z.record(z.string(), z.number()) });
  const make = (id: string, clock: { t: number }) =>
    createDoc({ schema, docId: "d", replicaId: id, clock: () => clock.t, initial: { items: {} } });
  const wire = (cs: readonly (Change | undefined)[]) =>
    JSON.parse(JSON.stringify(cs.filter((c) => c !== undefined))) as unknown[];

  function scenario() {
    const clock = { t: 1_000 };
    const a = make("a", clock);
    const b = make("b", clock);
    const c = make("c", clock);
    const a1 = a.set(["items", "k"], 1);
    b.applyRemote(wire([a1]));
    c.applyRemote(wire([a1]));
    clock.t = 5_000;
    const c1 = c.set(["items", "k"], 5); // in flight for a long time
    clock.t = 10_000;
    const a2 = a.delete(["items", "k"]); // newer than c1: k stays deleted everywhere
    b.applyRemote(wire([a2]));
    c.applyRemote(wire([a2]));
    const live: AckedVersion[] = [
      { replica: "a", version: a.version() }, // {a: 2}
      { replica: "c", version: c.version() }, // {a: 2, c: 1}
    ];
    return { a, b, c, c1, live };
  }

  it("the plain intersection of acks would make a deleted key reappear on the compacting replica only", () => {
    const { a, b, c1, live } = scenario();
    const naive: VersionVector = intersectVersionVectors([b.version(), ...live.map((x) => x.version)]);
    expect(naive).toEqual({ a: 2 });
    b.compact(naive);
    b.applyRemote(wire([c1]));
    a.applyRemote(wire([c1]));
    expect(a.get().items).toEqual({});
    expect(b.get().items).toEqual({ k: 5 }); // diverged
  });

  it("the stable frontier waits for the in-flight change, then compacts safely", () => {
    const { a, b, c, c1, live } = scenario();
    expect(computeStableFrontier({ self: "b", version: b.version(), live })).toEqual({
      frontier: undefined,
      waitingFor: ["c"],
    });
    b.applyRemote(wire([c1]));
    a.applyRemote(wire([c1]));
    const { frontier } = computeStableFrontier({ self: "b", version: b.version(), live });
    expect(frontier).toEqual({ a: 2 }); // a's ack predates c1
    b.compact(frontier!);
    expect(b.changesSince({}).map((x) => `${x.origin}:${x.seq}`)).toEqual(["c:1"]);
    for (const d of [a, c]) expect(d.get()).toEqual(b.get());
    expect(b.get().items).toEqual({});
  });
});
