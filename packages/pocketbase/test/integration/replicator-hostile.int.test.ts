import { type Change, createDoc, encodeHlc, silentLogger } from "@nxs-sync/core";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { ClientResponseError } from "pocketbase";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  Collections,
  createPocketBaseClient,
  createReplicator,
  encodeChangeRecord,
  encodeSnapshotRecord,
  NodeRole,
  type Replicator,
  type ReplicatorEvents,
} from "../../src/index.js";
import { changeKeysOn, makeNode, rawChangeRecord, recordId, setUpServers } from "./helpers.js";

// Issue 13, item 4: the replicator under hostile input (SECURITY-AUDIT.md, findings 6, 7, 10, 11).
// Each attack is made with gateway A's own credentials (or as a superuser where the server's hooks
// refuse it from a gateway, as said), while no replicator runs; then a replicator starts and the
// fleet is checked.

const servers = usePocketBaseServers();
let s1: ProcessPocketBase;
let s2: ProcessPocketBase;
const gwA = makeNode("gw-a");
const gwB = makeNode("gw-b");
const repl = makeNode("repl", NodeRole.Replicator);

beforeAll(async () => {
  [s1, s2] = await Promise.all([
    servers.start({ name: "hostile-1", batch: false }),
    servers.start({ name: "hostile-2", batch: false }),
  ]);
  await setUpServers([s1, s2], [gwA, gwB, repl]);
});

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

interface Watched extends Replicator {
  readonly errors: Error[];
  readonly quarantined: ReplicatorEvents["quarantine"][];
  readonly divergences: ReplicatorEvents["divergence"][];
}

/** A replicator between s1 and s2 (not started) that records its reports. */
function replicator(extra: Partial<Parameters<typeof createReplicator>[0]> = {}): Watched {
  const errors: Error[] = [];
  const r = createReplicator({
    servers: [
      { url: s1.url, auth: repl.auth },
      { url: s2.url, auth: repl.auth },
    ],
    intervalMs: 10 * 60_000,
    fullSweepEvery: 1000,
    logger: silentLogger,
    onError: (e) => errors.push(e),
    ...extra,
  });
  cleanups.push(() => r.stop());
  const quarantined: ReplicatorEvents["quarantine"][] = [];
  const divergences: ReplicatorEvents["divergence"][] = [];
  r.on("quarantine", (q) => quarantined.push(q));
  r.on("divergence", (d) => divergences.push(d));
  return Object.assign(r, { errors, quarantined, divergences });
}

/** Creates `bodies` in a collection of a server as `node` (its own credentials), `parallel` at a time. */
async function createAs(
  url: string,
  node: typeof gwA,
  bodies: readonly Record<string, unknown>[],
  parallel = 1,
  collection: string = Collections.Changes,
): Promise<string[]> {
  const c = createPocketBaseClient({ url, auth: node.auth });
  await c.authenticate();
  try {
    const ids: string[] = [];
    for (let i = 0; i < bodies.length; i += parallel) {
      const made = await Promise.all(
        bodies.slice(i, i + parallel).map((b) => c.pb.collection(collection).create(b, { requestKey: null })),
      );
      ids.push(...made.map((m) => m.id));
    }
    return ids;
  } finally {
    c.close();
  }
}

/** B's honest changes `1..n` of `doc`, one record each (what its gateway pushes). */
const honestB = (doc: string, n: number, origin = `${gwB.id}.main`) =>
  Array.from({ length: n }, (_, i) => rawChangeRecord({ doc, origin, seq: i + 1, node: gwB.id }));

const keysOn = (url: string, doc: string, origin?: string) => changeKeysOn(url, gwA.auth, doc, origin);

/** Rows of the collections without a digest view (snapshots, acks) on both servers: listed every round. */
async function undigestedRows(): Promise<number> {
  let n = 0;
  for (const s of [s1, s2])
    for (const c of [Collections.Snapshots, Collections.Acks])
      n += (await s.client().collection(c).getFullList({ fields: "id" })).length;
  return n;
}

describe("the replicator under hostile input", () => {
  it("a forged snapshot on the target (claims the target's heads do not back) does not stop B's changes being copied, is not copied itself, and is reported once", async () => {
    const doc = `d-${recordId()}`;
    const origin = `${gwB.id}.g1`;
    await createAs(s2.url, gwB, honestB(doc, 3, origin));
    const evil = createDoc({
      schema: z.object({ k: z.record(z.string(), z.number()) }),
      docId: doc,
      replicaId: `${gwA.id}.evil`,
      clock: Date.now,
      initial: { k: {} },
    });
    evil.set(["k", "forged"], 1);
    const body = { ...encodeSnapshotRecord(evil.snapshot(), gwA.id), version: { [origin]: 1_000_000 } };
    // From gateway A's own account the server's hook refuses it (nothing of B's is on s1)...
    const refused = await createAs(s1.url, gwA, [body], 1, Collections.Snapshots).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ClientResponseError);
    expect(JSON.stringify((refused as ClientResponseError).response)).toContain(
      "validation_snapshot_unbacked",
    );
    // ...so it is written as a superuser (or a replicator account, or a server without the hooks).
    const snap = await s1.client().collection(Collections.Snapshots).create(body);

    const r = replicator();
    await r.start();
    expect(await keysOn(s1.url, doc)).toEqual([1, 2, 3].map((q) => `${origin}:${q}`));
    const reports = () => r.quarantined.filter((q) => q.recordId === snap.id);
    expect(reports()).toHaveLength(1);
    expect(reports()[0]).toMatchObject({ collection: Collections.Snapshots, url: s1.url });
    expect(reports()[0]!.error.code).toBe("snapshot/unbacked");
    expect(reports()[0]!.error.message).toContain(`claims ${origin} up to seq 1000000`);
    // Refused as a source too (s1's heads do not back it): not spread to s2, and not reported twice.
    const snapshotsOn = (s: ProcessPocketBase) =>
      s
        .client()
        .collection(Collections.Snapshots)
        .getFullList({ filter: s.client().filter("doc = {:doc}", { doc }) });
    expect(await snapshotsOn(s2)).toEqual([]);
    const full = await r.sync({ full: true });
    expect(full).toMatchObject({ unreachable: [], refused: [], failed: 0 });
    expect(await snapshotsOn(s2)).toEqual([]);
    expect(reports()).toHaveLength(1);

    // While it runs (realtime): another forged one is refused the same way, an honest one (claims
    // s1 backs, published by gateway A itself) is copied.
    const forged2 = await s1.client().collection(Collections.Snapshots).create(body);
    const [honest] = await createAs(
      s1.url,
      gwA,
      [{ ...body, version: { [origin]: 3 } }],
      1,
      Collections.Snapshots,
    );
    await waitFor(async () => (await snapshotsOn(s2)).length > 0, {
      description: "the honest snapshot copied",
    });
    await waitFor(() => r.quarantined.some((q) => q.recordId === forged2.id), {
      description: "the second forged snapshot reported",
    });
    expect((await snapshotsOn(s2)).map((x) => x.id)).toEqual([honest]);
  });

  it("two of A's own records sharing a chosen record id, one per server, stop nothing: both exist everywhere and B's changes are copied", async () => {
    const doc = `d-${recordId()}`;
    const id = `collide${recordId().slice(0, 8)}`;
    // The audit's collide.ts: A's own records (different origins), the same id on each server...
    await createAs(s1.url, gwA, [
      { ...rawChangeRecord({ doc, origin: `${gwA.id}.c1`, seq: 1, node: gwA.id }), id },
    ]);
    await createAs(s2.url, gwA, [
      { ...rawChangeRecord({ doc, origin: `${gwA.id}.c2`, seq: 1, node: gwA.id }), id },
    ]);
    // ...then B writes on s2 while no replicator runs.
    await createAs(s2.url, gwB, honestB(doc, 3));

    const r = replicator();
    await r.start();
    const expected = [
      `${gwA.id}.c1:1`,
      `${gwA.id}.c2:1`,
      ...[1, 2, 3].map((q) => `${gwB.id}.main:${q}`),
    ].sort();
    expect(await keysOn(s1.url, doc)).toEqual(expected);
    expect(await keysOn(s2.url, doc)).toEqual(expected);
    const round = await r.sync({ full: true });
    expect(round).toMatchObject({ copied: 0, failed: 0, unreachable: [], refused: [] });
    expect(r.status().servers.map((s) => s.state)).toEqual(["ok", "ok"]);
    // Nothing failed (an earlier test's forged snapshot is reported, and only that).
    expect(r.errors.filter((e) => (e as { code?: string }).code !== "snapshot/unbacked")).toEqual([]);
    // The copies got ids of their own: each server's record at that id is still the one A wrote there.
    const at = async (s: ProcessPocketBase) =>
      (await s.client().collection(Collections.Changes).getOne(id)).origin;
    expect([await at(s1), await at(s2)]).toEqual([`${gwA.id}.c1`, `${gwA.id}.c2`]);
  });

  it("a flood of refusable records is refused and reported once, then neither listed nor read again; honest records still flow", async () => {
    const doc = `d-${recordId()}`;
    const flood = 1000;
    // The audit's flood.ts used origins containing A's id but not bound to it; the server's hooks
    // now refuse those from a gateway. Records bound to A with a malformed clock stamp are still
    // accepted by the server and refused by every reader: the same flood, with A's own credentials.
    await createAs(
      s1.url,
      gwA,
      Array.from({ length: flood }, (_, i) =>
        rawChangeRecord({ doc, origin: `${gwA.id}.f${i}`, seq: 1, node: gwA.id }, { hlc: "not an hlc" }),
      ),
      25,
    );
    await createAs(s2.url, gwB, honestB(doc, 3));

    const r = replicator();
    const syncs: ReplicatorEvents["sync"][] = [];
    r.on("sync", (s) => syncs.push(s));
    await r.start();
    // (Reports of other collections, the forged snapshots of the first test, are left out.)
    const refusedChanges = () => r.quarantined.filter((q) => q.collection === Collections.Changes);
    const refusedElsewhere = r.quarantined.length - refusedChanges().length;
    expect(syncs[0]).toMatchObject({ quarantined: flood + refusedElsewhere, unreachable: [], refused: [] });
    expect(syncs[0]!.copied).toBeGreaterThanOrEqual(3);
    expect(new Set(refusedChanges().map((q) => q.recordId)).size).toBe(flood);
    expect(await keysOn(s1.url, doc, `${gwB.id}.main`)).toHaveLength(3);
    expect(await keysOn(s2.url, doc)).toHaveLength(3);

    // The refused groups are settled: the next round lists only the collections without a digest.
    const second = await r.sync();
    expect(second).toMatchObject({ copied: 0, quarantined: 0, fetched: 0, failed: 0 });
    expect(second.listed).toBe(await undigestedRows());
    // A full sweep lists them, but reads and reports none of them again.
    const full = await r.sync({ full: true });
    expect(full.quarantined).toBe(0);
    expect(refusedChanges()).toHaveLength(flood);

    // Honest records written after the flood are still copied by anti-entropy.
    await createAs(s2.url, gwB, [rawChangeRecord({ doc, origin: `${gwB.id}.late`, seq: 1, node: gwB.id })]);
    await r.sync();
    expect(await keysOn(s1.url, doc, `${gwB.id}.late`)).toHaveLength(1);
  });

  it("different content under one key on each server is reported by the full sweep, once, naming the key and both servers", async () => {
    const doc = `d-${recordId()}`;
    const origin = `${gwA.id}.eq1`;
    // The audit's misc.ts: A writes (doc, <A>.eq1, 1) with another body on each server.
    const on = (value: string) =>
      rawChangeRecord({ doc, origin, seq: 1, node: gwA.id, ops: [{ kind: "set", path: ["k"], value }] });
    const [id1] = await createAs(s1.url, gwA, [on("value-on-S1")]);
    const [id2] = await createAs(s2.url, gwA, [on("value-on-S2")]);
    // An honest key for comparison: the same content on both servers under different record ids.
    await createAs(s2.url, gwB, honestB(doc, 2));

    const r = replicator();
    await r.start();
    // Equal digests (head 1, one record on each side): a digest round cannot see it.
    expect(r.divergences).toEqual([]);
    const full = await r.sync({ full: true });
    expect(full.unreachable).toEqual([]);
    const key = JSON.stringify([doc, origin, 1]);
    expect(r.divergences.map((d) => d.key)).toEqual([key]);
    const [d] = r.divergences;
    expect(d!.collection).toBe(Collections.Changes);
    expect(d!.servers.map((s) => [s.url, s.recordId])).toEqual([
      [s1.url, id1],
      [s2.url, id2],
    ]);
    expect(d!.servers[0]!.digest).not.toBe(d!.servers[1]!.digest);
    // Reported once: the next sweep finds the same digests and stays quiet.
    await r.sync({ full: true });
    expect(r.divergences).toHaveLength(1);
  });

  it("a full sweep reads at most contentReadsPerSweep records per collection; the next sweeps go on where it stopped", async () => {
    const doc = `d-${recordId()}`;
    const origin = `${gwA.id}.eq2`;
    const on = (value: string) =>
      rawChangeRecord({ doc, origin, seq: 1, node: gwA.id, ops: [{ kind: "set", path: ["k"], value }] });
    await createAs(s1.url, gwA, [on("value-on-S1")]);
    await createAs(s2.url, gwA, [on("value-on-S2")]);
    const r = replicator({ contentReadsPerSweep: 4 });
    await r.start();
    await r.sync(); // copies nothing more: every later round only reads to digest
    const key = JSON.stringify([doc, origin, 1]);
    let sweeps = 0;
    while (!r.divergences.some((d) => d.key === key)) {
      const round = await r.sync({ full: true });
      // Three collections, four reads each at most.
      expect(round.fetched).toBeLessThanOrEqual(12);
      expect(round.copied).toBe(0);
      sweeps++;
      expect(sweeps).toBeLessThan(100);
    }
    // The earlier tests' shared keys came first: more than one sweep was needed.
    expect(sweeps).toBeGreaterThan(1);
  });

  it("with three servers, the two holding the newest range of a key are compared even when the third holds a shorter one", async () => {
    const s3 = await servers.start({ name: "hostile-3", batch: false });
    await setUpServers([s3], [gwA, gwB, repl]);
    const doc = `d-${recordId()}`;
    const origin = `${gwA.id}.eq3`;
    // A's changes 1..last of its origin, all setting k to `value`, as one pack.
    const pack = (value: string, last: number) =>
      encodeChangeRecord(
        Array.from(
          { length: last },
          (_, i) =>
            ({
              doc,
              origin,
              seq: i + 1,
              hlc: encodeHlc({ ms: 1_700_000_000_001 + i, counter: 0, node: origin }),
              ops: [{ kind: "set", path: ["k"], value }],
            }) as unknown as Change,
        ),
        gwA.id,
      );
    await createAs(s1.url, gwA, [pack("on-S1", 2)]);
    await createAs(s2.url, gwA, [pack("on-S2", 2)]);
    await createAs(s3.url, gwA, [pack("on-S3", 1)]);
    const r = replicator({
      servers: [s1, s2, s3].map((s) => ({ url: s.url, auth: repl.auth })),
    });
    await r.start();
    await r.sync({ full: true });
    const key = JSON.stringify([doc, origin, 1]);
    const found = r.divergences.filter((d) => d.key === key);
    expect(found).toHaveLength(1);
    expect(found[0]!.servers.map((x) => x.url)).toEqual([s1.url, s2.url]);
  });
});
