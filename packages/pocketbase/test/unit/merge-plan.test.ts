import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compareVersions,
  DeletePolicies,
  isBelowPurgeFrontier,
  MergeRules,
  type MergeSpec,
  mergeRecords,
  Order,
  planCopies,
  planPurges,
  type RecordFields,
} from "../../src/index.js";
import { versionFields } from "../../src/merge-plan.js";

/**
 * Property tests of the replicator's planning (merge-plan.ts), seeded. Every spec in `SPECS` gets
 * them: a new collection's merge rule and delete policy is added there and tested for free.
 * Servers are maps key → record; a round lists them, plans, and applies each copy as the replicator
 * does (create when missing, else the target becomes `mergeRecords(target, incoming)`).
 */

type Row = RecordFields & { id: string };
type Server = Map<string, Row>;

const STATES = ["queued", "leased", "done"] as const;

/** A spec, and a record generator for it (content derived from the version: one writer per version). */
interface Case {
  readonly name: string;
  readonly spec: MergeSpec;
  readonly record: fc.Arbitrary<Row>;
}

const key = fc.constantFrom("a", "b", "c", "d");
/** A job's state and attempt only move forward; its body follows `rev`. */
const JOB_RULE = MergeRules.monotonic([{ field: "state", rank: STATES }, "attempt"], "rev");
/** A job record (with `gone` set by `gone`), its body derived from its revision. */
const jobRecord = (gone: fc.Arbitrary<boolean>): fc.Arbitrary<Row> =>
  fc
    .record({
      k: key,
      state: fc.constantFrom(...STATES),
      attempt: fc.integer({ min: 0, max: 4 }),
      rev: fc.integer({ min: 1, max: 4 }),
      gone,
    })
    .map((r) => ({ id: `id-${r.k}`, ...r, body: `${r.k}@${r.rev}${r.gone ? "†" : ""}` }));
const CASES: readonly Case[] = [
  {
    name: "immutable",
    spec: { key: ["k"] },
    record: key.map((k) => ({ id: `id-${k}`, k, body: `body-${k}` })),
  },
  {
    name: "lww",
    spec: { key: ["k"], merge: MergeRules.lww("rev") },
    record: fc.record({ k: key, rev: fc.integer({ min: 1, max: 6 }) }).map((r) => ({
      id: `id-${r.k}`,
      ...r,
      body: `${r.k}@${r.rev}`,
    })),
  },
  {
    name: "monotonic (a state's rank, an attempt number; a payload written once)",
    spec: {
      key: ["k"],
      merge: MergeRules.monotonic([{ field: "state", rank: STATES }, "attempt"]),
    },
    record: fc
      .record({ k: key, state: fc.constantFrom(...STATES), attempt: fc.integer({ min: 0, max: 4 }) })
      .map((r) => ({ id: `id-${r.k}`, ...r, payload: `job-${r.k}` })),
  },
  {
    name: "monotonic with a body revision",
    spec: { key: ["k"], merge: JOB_RULE },
    record: jobRecord(fc.constant(false)),
  },
  {
    name: "lww with tombstones",
    spec: { key: ["k"], merge: MergeRules.lww("rev"), deletes: DeletePolicies.tombstone("deleted") },
    record: fc
      .record({ k: key, rev: fc.integer({ min: 1, max: 6 }), deleted: fc.boolean() })
      .map((r) => ({ id: `id-${r.k}`, ...r, body: `${r.k}@${r.rev}${r.deleted ? "†" : ""}` })),
  },
  {
    name: "lww with tombstones that a later write revives",
    spec: {
      key: ["k"],
      merge: MergeRules.lww("rev"),
      deletes: DeletePolicies.tombstone("deleted", { revive: true }),
    },
    record: fc
      .record({ k: key, rev: fc.integer({ min: 1, max: 6 }), deleted: fc.boolean() })
      .map((r) => ({ id: `id-${r.k}`, ...r, body: `${r.k}@${r.rev}${r.deleted ? "†" : ""}` })),
  },
  {
    name: "monotonic with tombstones",
    spec: {
      key: ["k"],
      merge: JOB_RULE,
      deletes: DeletePolicies.tombstone("gone"),
    },
    record: jobRecord(fc.boolean()),
  },
];

const params = { seed: 20261207, numRuns: 300 };

/** Servers (2 to 4), each holding some of the generated records (one per key). */
const servers = (c: Case) =>
  fc.array(fc.array(c.record, { maxLength: 6 }), { minLength: 2, maxLength: 4 }).map((lists) =>
    lists.map((rows) => {
      const m: Server = new Map();
      for (const r of rows) m.set(JSON.stringify([r.k]), r);
      return m;
    }),
  );

/**
 * One anti-entropy round over the servers in `present` (all by default); returns the copies made.
 * With `now`, copies respect a purge frontier and the planned purges are applied after them, as the
 * replicator does.
 */
function round(
  spec: MergeSpec,
  fleet: Server[],
  present: readonly boolean[] = fleet.map(() => true),
  now?: number,
): number {
  const listings = fleet.map((m, i) => (present[i] ? new Map(m) : undefined));
  const copies = planCopies(spec, listings, now === undefined ? {} : { now });
  for (const c of copies) {
    const incoming = listings[c.from]?.get(c.key);
    if (incoming === undefined) throw new Error("planned a copy of a record not listed");
    expect(incoming.id).toBe(c.recordId);
    const target = fleet[c.to]!;
    const mine = target.get(c.key);
    if (mine === undefined) target.set(c.key, { ...incoming });
    else {
      const merged = mergeRecords(spec, mine, incoming);
      if (merged !== undefined) target.set(c.key, { ...merged, id: mine.id });
    }
  }
  if (now !== undefined) {
    for (const p of planPurges(spec, listings, now)) {
      // The server's delete rule only lets a tombstone go (`deleted = true`).
      if (fleet[p.server]!.get(p.key)?.deleted) fleet[p.server]!.delete(p.key);
    }
  }
  return copies.length;
}

const snapshot = (fleet: Server[]) =>
  fleet.map((m) => new Map([...m].sort(([a], [b]) => a.localeCompare(b))));

/** Fold of every version of every key (the merge the fleet must reach), in the given server order. */
function joinAll(spec: MergeSpec, fleet: readonly Server[]): Map<string, RecordFields> {
  const out = new Map<string, RecordFields>();
  for (const m of fleet) {
    for (const [k, r] of m) {
      const have = out.get(k);
      out.set(k, have === undefined ? r : (mergeRecords(spec, have, r) ?? have));
    }
  }
  return out;
}
const strip = (r: RecordFields | undefined) => {
  if (r === undefined) return undefined;
  const { id: _id, ...rest } = r;
  return rest;
};

describe.each(CASES)("merge planning: $name", ({ spec, record }) => {
  it("one round makes every server equal to the merge of all versions (convergence)", () => {
    fc.assert(
      fc.property(servers({ name: "", spec, record }), (fleet) => {
        const expected = joinAll(spec, fleet);
        round(spec, fleet);
        for (const m of fleet) {
          expect([...m.keys()].sort()).toEqual([...expected.keys()].sort());
          for (const [k, r] of m) expect(strip(r)).toEqual(strip(expected.get(k)));
        }
      }),
      params,
    );
  });

  it("planning again after a round copies nothing (idempotence)", () => {
    fc.assert(
      fc.property(servers({ name: "", spec, record }), (fleet) => {
        round(spec, fleet);
        const before = snapshot(fleet);
        expect(round(spec, fleet)).toBe(0);
        expect(snapshot(fleet)).toEqual(before);
      }),
      params,
    );
  });

  it("the merge does not depend on the order servers are met in (commutative, associative)", () => {
    fc.assert(
      fc.property(servers({ name: "", spec, record }), (fleet) => {
        const forward = joinAll(spec, fleet);
        const backward = joinAll(spec, [...fleet].reverse());
        for (const [k, r] of forward) {
          expect(compareVersions(spec, r, backward.get(k)!)).toBe(Order.Equal);
          expect(strip(r)).toEqual(strip(backward.get(k)));
        }
      }),
      params,
    );
  });

  it("rounds that leave servers out, then one with all, converge; no version ever goes back", () => {
    fc.assert(
      fc.property(
        servers({ name: "", spec, record }),
        fc.array(fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), { maxLength: 5 }),
        (fleet, partial) => {
          const expected = joinAll(spec, fleet);
          for (const present of partial) {
            const before = snapshot(fleet);
            round(spec, fleet, present);
            // Monotone: every server's version of every key is at or past what it held.
            fleet.forEach((m, i) => {
              for (const [k, r] of before[i]!) {
                const o = compareVersions(spec, m.get(k)!, r);
                expect(o === Order.Greater || o === Order.Equal).toBe(true);
              }
            });
          }
          round(spec, fleet);
          for (const m of fleet) for (const [k, r] of m) expect(strip(r)).toEqual(strip(expected.get(k)));
        },
      ),
      params,
    );
  });
});

describe("merge planning: deletes", () => {
  const spec: MergeSpec = {
    key: ["k"],
    merge: MergeRules.lww("rev"),
    deletes: DeletePolicies.tombstone("deleted"),
  };
  const c = CASES.find((x) => x.spec.deletes?.kind === "tombstone")!;

  it("a key deleted on any server ends deleted everywhere, whatever live versions others hold (no resurrection)", () => {
    fc.assert(
      fc.property(
        servers(c),
        fc.array(fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), { maxLength: 4 }),
        (fleet, partial) => {
          const deleted = new Set<string>();
          for (const m of fleet) for (const [k, r] of m) if (r.deleted) deleted.add(k);
          for (const present of [...partial, fleet.map(() => true)]) {
            const dead = fleet.map((m) => [...m].filter(([, r]) => r.deleted).map(([k]) => k));
            round(spec, fleet, present);
            // Once a server holds a tombstone, it never holds a live copy again.
            fleet.forEach((m, i) => {
              for (const k of dead[i]!) expect(m.get(k)?.deleted).toBe(true);
            });
          }
          for (const m of fleet) for (const k of deleted) expect(m.get(k)?.deleted).toBe(true);
        },
      ),
      params,
    );
  });

  it("a tombstone wins over a live copy of a greater version", () => {
    const live = { id: "x", k: "a", rev: 9, deleted: false };
    const dead = { id: "y", k: "a", rev: 2, deleted: true };
    expect(compareVersions(spec, dead, live)).toBe(Order.Greater);
    expect(mergeRecords(spec, live, dead)).toMatchObject({ deleted: true, rev: 2 });
    expect(mergeRecords(spec, dead, live)).toBeUndefined();
  });

  it("purge: a record under a server's frontier is never copied there (a purged record does not come back)", () => {
    fc.assert(
      fc.property(servers(CASES[0]!), fc.constantFrom("a", "b", "c", "d"), (fleet, purgedKey) => {
        // Server 0 purged `purgedKey` (its frontier passed it); the others may still hold it.
        fleet[0]!.delete(JSON.stringify([purgedKey]));
        const copies = planCopies(
          { key: ["k"] },
          fleet.map((m) => new Map(m)),
          { skipTarget: (to, row) => to === 0 && row.k === purgedKey },
        );
        expect(copies.filter((x) => x.to === 0 && x.key === JSON.stringify([purgedKey]))).toEqual([]);
      }),
      params,
    );
  });

  it("monotonic: two servers that each advanced another field both end with both advances", () => {
    const m: MergeSpec = {
      key: ["k"],
      merge: MergeRules.monotonic([{ field: "state", rank: STATES }, "attempt"], "rev"),
    };
    const a = { id: "1", k: "a", state: "done", attempt: 1, rev: 2, body: "a" };
    const b = { id: "2", k: "a", state: "leased", attempt: 3, rev: 1, body: "b" };
    expect(compareVersions(m, a, b)).toBe(Order.Concurrent);
    expect(mergeRecords(m, a, b)).toMatchObject({ state: "done", attempt: 3, rev: 2, body: "a" });
    expect(mergeRecords(m, b, a)).toMatchObject({ state: "done", attempt: 3, rev: 2, body: "a" });
    expect(mergeRecords(m, { ...a, attempt: 3 }, b)).toBeUndefined();
  });
});

describe("merge planning: log ranges", () => {
  const spec: MergeSpec = { key: ["g", "first"], merge: MergeRules.log("first", "last", () => undefined) };
  /** A server's packs of one log: ranges `first..last` (one per start). */
  const packs = fc
    .array(fc.record({ first: fc.integer({ min: 1, max: 30 }), len: fc.integer({ min: 0, max: 6 }) }), {
      maxLength: 8,
    })
    .map((rs) => {
      const m = new Map<string, Row>();
      for (const r of rs) {
        const row = { id: `p${r.first}`, g: "log", first: r.first, last: r.first + r.len };
        const key = JSON.stringify(["log", r.first]);
        const have = m.get(key);
        if (have === undefined || Number(have.last) < row.last) m.set(key, row);
      }
      return m;
    });

  it("a pack is copied to a server exactly when that server's packs do not cover its range (brute force)", () => {
    fc.assert(
      fc.property(fc.array(packs, { minLength: 2, maxLength: 3 }), (fleet) => {
        const copies = planCopies(spec, fleet);
        const held = fleet.map((m) => {
          const s = new Set<number>();
          for (const r of m.values()) for (let p = Number(r.first); p <= Number(r.last); p++) s.add(p);
          return s;
        });
        const keys = new Set(fleet.flatMap((m) => [...m.keys()]));
        for (const key of keys) {
          // The winner: the longest range at the key (the first server holding it).
          let from = -1;
          fleet.forEach((m, i) => {
            const r = m.get(key);
            if (r !== undefined && (from < 0 || Number(r.last) > Number(fleet[from]!.get(key)!.last)))
              from = i;
          });
          const w = fleet[from]!.get(key)!;
          fleet.forEach((m, to) => {
            if (to === from) return;
            const mine = m.get(key);
            let covered = true;
            for (let p = Number(w.first); p <= Number(w.last); p++) if (!held[to]!.has(p)) covered = false;
            const expected = !covered && (mine === undefined || Number(mine.last) < Number(w.last));
            const planned = copies.some((c) => c.key === key && c.to === to && c.from === from);
            expect(planned, `${key} → ${to}`).toBe(expected);
          });
        }
      }),
      params,
    );
  });
});

describe("delete policies: retention", () => {
  it("skips records older than maxAgeMs by a number or a PocketBase date, and nothing undated", async () => {
    const now = Date.parse("2026-12-07T12:00:00.000Z");
    const policy = DeletePolicies.retention("at", 60_000, () => now);
    const skip = await policy.skipAt();
    expect(skip({ at: now - 60_001 })).toBe(true);
    expect(skip({ at: now - 60_000 })).toBe(false);
    expect(skip({ at: "2026-12-07 11:58:00.000Z" })).toBe(true);
    expect(skip({ at: "2026-12-07 11:59:30.000Z" })).toBe(false);
    expect(skip({ at: "" })).toBe(false);
    expect(skip({})).toBe(false);
  });
});

describe("merge planning: tombstones purged after a retention (deletes that finish)", () => {
  const NOW = 1_000_000;
  const RETAIN = 10_000;
  const spec: MergeSpec = {
    key: ["k"],
    merge: MergeRules.lww("rev"),
    deletes: DeletePolicies.tombstone("deleted", { revive: true, purgeAfterMs: RETAIN, at: "at" }),
  };
  /** Records written long ago (below the frontier) or lately. */
  const record = fc
    .record({
      k: key,
      rev: fc.integer({ min: 1, max: 6 }),
      deleted: fc.boolean(),
      old: fc.boolean(),
    })
    .map(({ old, ...r }) => ({
      id: `id-${r.k}`,
      ...r,
      at: old ? NOW - 2 * RETAIN - r.rev : NOW - r.rev,
      body: `${r.k}@${r.rev}${r.deleted ? "†" : ""}`,
    }));
  const fleets = servers({ name: "purge", spec, record });
  const presence = fc.array(fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), { maxLength: 4 });

  it("purges a key only where every server is listed and holds nothing or an old tombstone; never a live record", () => {
    fc.assert(
      fc.property(fleets, fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), (fleet, present) => {
        const listings = fleet.map((m) => new Map(m));
        const purges = planPurges(spec, listings, NOW);
        for (const p of purges) {
          const row = listings[p.server]!.get(p.key)!;
          expect(row.deleted).toBe(true);
          expect(row.at as number).toBeLessThan(NOW - RETAIN);
          expect(row.id).toBe(p.recordId);
          // Every holder of that key holds an old tombstone, and each is purged.
          for (const [i, m] of listings.entries()) {
            const r = m.get(p.key);
            if (r === undefined) continue;
            expect(r.deleted && (r.at as number) < NOW - RETAIN).toBe(true);
            expect(purges.some((q) => q.key === p.key && q.server === i)).toBe(true);
          }
        }
        // A server left out may hold a live copy: nothing is purged then.
        const partial = listings.map((m, i) => (present[i] ? m : undefined));
        if (partial.some((m) => m === undefined)) expect(planPurges(spec, partial, NOW)).toEqual([]);
        // Without a purge in the policy, nothing is ever purged.
        expect(planPurges({ ...spec, deletes: DeletePolicies.tombstone("deleted") }, listings, NOW)).toEqual(
          [],
        );
      }),
      params,
    );
  });

  it("a purged key never comes back: stale copies (live or tombstone, below the frontier) reappearing on some servers are not copied to the others, and stale tombstones go again", () => {
    fc.assert(
      fc.property(
        fleets,
        fc.array(fc.record({ server: fc.nat(3), live: fc.boolean() }), { maxLength: 4 }),
        presence,
        (fleet, stale, partial) => {
          round(spec, fleet, undefined, NOW);
          const purged = [..."abcd"]
            .map((k) => JSON.stringify([k]))
            .filter((k) => fleet.every((m) => !m.has(k)));
          // Old copies of purged keys come back on some servers (restored from a backup, a failed purge).
          for (const [i, { server, live }] of stale.entries()) {
            const k = purged[i % Math.max(purged.length, 1)];
            if (k === undefined || server >= fleet.length) continue;
            fleet[server]!.set(k, {
              id: `stale-${i}`,
              k: JSON.parse(k)[0],
              rev: 1,
              deleted: !live,
              at: NOW - 3 * RETAIN,
            });
          }
          const holders = purged.map((k) => new Set(fleet.flatMap((m, i) => (m.has(k) ? [i] : []))));
          // Two full rounds: a stale tombstone may first win over a stale live copy (then purged).
          const all = fleet.map(() => true);
          for (const present of [...partial, all, all]) round(spec, fleet, present, NOW);
          purged.forEach((k, j) => {
            fleet.forEach((m, i) => {
              // Never copied to a server that lacked it; a stale tombstone is purged again.
              if (!holders[j]!.has(i)) expect(m.has(k)).toBe(false);
              if (m.has(k)) expect(m.get(k)!.deleted).toBe(false);
            });
          });
        },
      ),
      params,
    );
  });

  it("a new write (above the frontier) over a purged or tombstoned key reaches every server and wins (revive)", () => {
    fc.assert(
      fc.property(fleets, key, (fleet, k) => {
        round(spec, fleet, undefined, NOW);
        const id = JSON.stringify([k]);
        const rev = 7; // greater than every generated revision
        fleet[0]!.set(id, { id: "new", k, rev, deleted: false, at: NOW, body: "again" });
        round(spec, fleet, undefined, NOW);
        for (const m of fleet) expect(m.get(id)).toMatchObject({ rev, deleted: false, body: "again" });
      }),
      params,
    );
  });

  it("a tombstone under revive: the greater write wins, the tombstone a tie; without revive the tombstone always wins", () => {
    const dead = { id: "y", k: "a", rev: 2, deleted: true };
    expect(compareVersions(spec, { id: "x", k: "a", rev: 3, deleted: false }, dead)).toBe(Order.Greater);
    expect(compareVersions(spec, { id: "x", k: "a", rev: 2, deleted: false }, dead)).toBe(Order.Less);
    expect(compareVersions(spec, { id: "x", k: "a", rev: 1, deleted: false }, dead)).toBe(Order.Less);
    const final = { ...spec, deletes: DeletePolicies.tombstone("deleted") };
    expect(compareVersions(final, { id: "x", k: "a", rev: 3, deleted: false }, dead)).toBe(Order.Less);
  });

  it("refuses a purgeAfterMs that is not a positive number with config/invalid", () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => DeletePolicies.tombstone("deleted", { purgeAfterMs: bad })).toThrow(
        expect.objectContaining({ code: "config/invalid", message: expect.stringMatching(/purgeAfterMs/) }),
      );
    }
    expect(DeletePolicies.tombstone("deleted", { purgeAfterMs: 5 })).toEqual({
      kind: "tombstone",
      field: "deleted",
      purgeAfterMs: 5,
      at: "updated",
    });
  });
});

describe("merge planning: a purge time left unset (0, empty, missing)", () => {
  // PocketBase stores 0 in a number field nobody set, "" in a date field: a live record whose `at`
  // writers never set read as the epoch, below every frontier, and was never copied anywhere.
  const NOW = 1_000_000;
  const RETAIN = 10_000;
  const FRONTIER = NOW - RETAIN;
  const spec: MergeSpec = {
    key: ["k"],
    merge: MergeRules.lww("rev"),
    deletes: DeletePolicies.tombstone("deleted", { purgeAfterMs: RETAIN, at: "at" }),
  };
  /** A PocketBase date `ms` since the epoch (as `updated` is answered). */
  const date = (ms: number) => new Date(ms).toISOString().replace("T", " ");
  const unset = fc.constantFrom<unknown>(0, "", null, undefined);
  /** `at` and `updated` of a record, unset or below the frontier or above it. */
  const time = (old: boolean, rev: number) => (old ? FRONTIER - 1_000 - rev : NOW - rev);
  const withAt = (r: Row, at: unknown): Row => {
    const { at: _at, ...rest } = r;
    return at === undefined ? rest : { ...rest, at };
  };
  const record = (deleted: fc.Arbitrary<boolean>) =>
    fc
      .record({
        k: key,
        rev: fc.integer({ min: 1, max: 6 }),
        deleted,
        at: unset,
        updatedOld: fc.boolean(),
      })
      .map(({ updatedOld, at, ...r }) =>
        withAt(
          {
            id: `id-${r.k}-${r.rev}`,
            ...r,
            updated: date(time(updatedOld, r.rev)),
            body: `${r.k}@${r.rev}${r.deleted ? "†" : ""}`,
          },
          at,
        ),
      );

  it("a live record with no time is never below the frontier: it reaches every server and is never purged", () => {
    fc.assert(
      fc.property(servers({ name: "live", spec, record: record(fc.constant(false)) }), (fleet) => {
        const keys = new Set(fleet.flatMap((m) => [...m.keys()]));
        for (const m of fleet)
          for (const r of m.values()) expect(isBelowPurgeFrontier(spec, r, NOW)).toBe(false);
        expect(planPurges(spec, fleet, NOW)).toEqual([]);
        round(spec, fleet, undefined, NOW);
        for (const m of fleet) expect(new Set(m.keys())).toEqual(keys);
        expect(round(spec, fleet, undefined, NOW)).toBe(0);
      }),
      params,
    );
  });

  it("a tombstone with no time goes by its updated: purged where every holder's is below the frontier, else copied and kept", () => {
    fc.assert(
      fc.property(servers({ name: "tombstones", spec, record: record(fc.constant(true)) }), (fleet) => {
        const listings = fleet.map((m) => new Map(m));
        const old = (r: Row) => Date.parse(String(r.updated).replace(" ", "T")) < FRONTIER;
        const purges = planPurges(spec, listings, NOW);
        for (const k of new Set(fleet.flatMap((m) => [...m.keys()]))) {
          const held = listings.flatMap((m) => (m.has(k) ? [m.get(k)!] : []));
          expect(purges.filter((p) => p.key === k).length).toBe(held.every(old) ? held.length : 0);
          // Copied to a server lacking it only when the winner's updated is above the frontier.
          for (const c of planCopies(spec, listings, { now: NOW }))
            if (c.key === k && !listings[c.to]!.has(k)) expect(old(listings[c.from]!.get(k)!)).toBe(false);
        }
      }),
      params,
    );
  });

  it("examples: unset times, set times, a tombstone without updated", () => {
    const at = (value: unknown, deleted = false, updated?: string) =>
      isBelowPurgeFrontier(
        spec,
        withAt({ id: "x", k: "a", rev: 1, deleted, ...(updated ? { updated } : {}) }, value),
        NOW,
      );
    const oldDate = date(FRONTIER - 1);
    const newDate = date(FRONTIER + 1);
    for (const v of [0, "", null, undefined]) {
      expect(at(v, false, oldDate), `live, at ${String(v)}`).toBe(false);
      expect(at(v, true, oldDate), `tombstone, at ${String(v)}, old updated`).toBe(true);
      expect(at(v, true, newDate), `tombstone, at ${String(v)}, new updated`).toBe(false);
      expect(at(v, true), `tombstone, at ${String(v)}, no updated`).toBe(false);
    }
    // A time that is set counts as before, live or tombstone, whatever updated says.
    for (const deleted of [false, true]) {
      expect(at(FRONTIER - 1, deleted, newDate)).toBe(true);
      expect(at(FRONTIER + 1, deleted, oldDate)).toBe(false);
      expect(at(oldDate, deleted, newDate)).toBe(true);
    }
    // The listing carries updated for the fallback; with `at: "updated"` it is the time itself.
    expect(versionFields(spec)).toEqual(["deleted", "rev", "at", "updated"]);
    const byUpdated = { ...spec, deletes: DeletePolicies.tombstone("deleted", { purgeAfterMs: RETAIN }) };
    expect(versionFields(byUpdated)).toEqual(["deleted", "rev", "updated"]);
  });
});
