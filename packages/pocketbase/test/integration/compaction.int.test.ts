import { createDoc, createReplica, type Doc, EMPTY_VERSION_VECTOR, type Snapshot } from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  Collections,
  createCheckpointer,
  createCompactor,
  createPocketBaseClient,
  createPocketBaseTransport,
  createReplicator,
  ensureSchema,
  fetchLatestSnapshot,
  NodeRole,
  writeAck,
} from "../../src/index.js";
import { changeKeysOn, countChanges, makeNode, provision, recordId, stableJson } from "./helpers.js";

const servers = usePocketBaseServers();
let s1: ProcessPocketBase;
let s2: ProcessPocketBase;
const gw1 = makeNode("gw-1");
const gw2 = makeNode("gw-2");
const repl = makeNode("repl", NodeRole.Replicator);
const cleanups: (() => Promise<void> | void)[] = [];
const schema = z.object({ items: z.record(z.string(), z.number()) });

beforeAll(async () => {
  [s1, s2] = await Promise.all([
    servers.start({ name: "compact-1", batch: false }),
    servers.start({ name: "compact-2", batch: false }),
  ]);
  for (const s of [s1, s2]) {
    await ensureSchema(s.client());
    await provision(s, [gw1, gw2, repl]);
  }
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function gateway(node: typeof gw1, url: string, docId: string, snapshot?: Snapshot) {
  const doc: Doc<z.output<typeof schema>> = createDoc({
    schema,
    docId,
    replicaId: `${node.id}.${recordId().slice(0, 4)}`,
    clock: Date.now,
    ...(snapshot ? { snapshot } : { initial: { items: {} } }),
  });
  const transport = createPocketBaseTransport({ endpoints: [url], auth: node.auth, docId });
  const replica = createReplica({
    doc,
    transport,
    storage: createMemoryStorage(),
    scheduler: createTimerScheduler(),
  });
  const checkpointer = createCheckpointer({ endpoints: [url], auth: node.auth, doc });
  cleanups.push(
    () => replica.stop(),
    () => checkpointer.stop(),
  );
  return { doc, replica, checkpointer };
}

/** Records of a doc in a collection. */
async function records(url: string, collection: string, docId: string): Promise<number> {
  const c = createPocketBaseClient({ url, auth: gw1.auth });
  const r = await c.call("count", (pb) =>
    pb.collection(collection).getList(1, 1, { filter: pb.filter("doc = {:d}", { d: docId }) }),
  );
  c.close();
  return r.totalItems;
}

/** Records of a doc in a collection; for changes, the distinct changes they hold. */
async function count(url: string, collection: string, docId: string): Promise<number> {
  if (collection === Collections.Changes) return countChanges(url, gw1.auth, docId);
  return records(url, collection, docId);
}

describe("snapshots and compaction", () => {
  it("deletes changes below the frontier once a snapshot covers them; new replicas start from the snapshot", async () => {
    const docId = `d-${recordId()}`;
    const replicator = createReplicator({
      servers: [
        { url: s1.url, auth: repl.auth },
        { url: s2.url, auth: repl.auth },
      ],
      intervalMs: 60_000,
    });
    cleanups.push(() => replicator.stop());
    await replicator.start();
    const writer = gateway(gw1, s1.url, docId);
    const reader = gateway(gw2, s2.url, docId);
    await Promise.all([writer.replica.start(), reader.replica.start()]);
    for (let i = 1; i <= 50; i++) {
      writer.doc.change((d) => {
        d.items[`k${i}`] = i;
      });
    }
    await writer.replica.flush();
    // The 51st change, pushed alone, is the writer's newest record: compaction keeps it (it holds the
    // origin's head, which backs the snapshot's claim), so exactly the 50 before it go.
    writer.doc.change((d) => {
      d.items.k51 = 51;
    });
    await writer.replica.flush();
    await waitFor(() => Object.keys(reader.doc.get().items).length === 51, { description: "reader has 51" });

    // A replica that acknowledged nothing for a while holds the frontier back until it expires.
    // Liveness is the server's time of its last ack (`updated`), so "a while" is real time here:
    // it acks once, then is silent for 4 s (its own `at` would not be trusted).
    const stale = createPocketBaseClient({ url: s1.url, auth: gw2.auth });
    await writeAck(stale, {
      doc: docId,
      replica: `${gw2.id}.stale`,
      version: {},
      at: Date.now(),
    });
    await new Promise((r) => setTimeout(r, 4000));

    await writer.checkpointer.checkpoint({ snapshot: true });
    await reader.checkpointer.checkpoint();
    for (const s of [s1, s2]) {
      await waitFor(async () => (await count(s.url, Collections.Acks, docId)) === 3, {
        description: `acks on ${s.url}`,
      });
      await waitFor(async () => (await count(s.url, Collections.Snapshots, docId)) === 1, {
        description: `snapshot on ${s.url}`,
      });
    }

    const servers2 = [
      { url: s1.url, auth: repl.auth },
      { url: s2.url, auth: repl.auth },
    ];
    const patient = createCompactor({ servers: servers2, docs: [docId], expiryMs: 3600_000 });
    cleanups.push(() => patient.stop());
    for (const r of await patient.run()) expect(r.deletedChanges, r.url).toBe(0);

    // Expires what has been silent for 2.5 s: the stale replica (4 s), not the two gateways that
    // just checkpointed.
    const compactor = createCompactor({ servers: servers2, docs: [docId], expiryMs: 2500 });
    cleanups.push(() => compactor.stop());
    const results = await compactor.run();
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect(r.deletedChanges, r.url).toBe(50);
      expect(r.expired).toEqual([`${gw2.id}.stale`]);
      expect(r.refusedSnapshots).toEqual([]);
    }
    expect(await changeKeysOn(s1.url, gw1.auth, docId)).toEqual([`${writer.doc.replicaId}:51`]);

    // New writes replicate; anti-entropy does not bring the compacted changes back.
    for (let i = 52; i <= 61; i++) {
      writer.doc.change((d) => {
        d.items[`k${i}`] = i;
      });
    }
    await writer.replica.flush();
    await waitFor(async () => (await count(s2.url, Collections.Changes, docId)) === 11);
    await replicator.sync();
    expect(await count(s1.url, Collections.Changes, docId)).toBe(11);
    expect(await count(s2.url, Collections.Changes, docId)).toBe(11);

    // A pull from a version the compaction left behind starts with the snapshot, then the tail.
    const t = createPocketBaseTransport({ endpoints: [s1.url], auth: gw2.auth, docId });
    cleanups.push(() => t.close());
    const pages = [];
    for await (const p of t.pull({})) pages.push(p);
    expect(pages[0]?.snapshot?.version[writer.doc.replicaId]).toBe(51);
    expect(pages.flatMap((p) => p.changes).map((c) => c.seq)).toEqual(
      Array.from({ length: 10 }, (_, i) => 52 + i),
    );
    // A replica that is up to date gets no snapshot.
    const upToDate = [];
    for await (const p of t.pull(writer.doc.version())) upToDate.push(p);
    expect(upToDate.every((p) => p.snapshot === undefined && p.changes.length === 0)).toBe(true);

    // A new replica starts from the newest snapshot plus the changes after it.
    const latest = await fetchLatestSnapshot(createPocketBaseClient({ url: s2.url, auth: gw2.auth }), docId);
    expect(latest).toBeDefined();
    const fresh = gateway(gw2, s2.url, docId, latest!.snapshot);
    await fresh.replica.start();
    await waitFor(() => stableJson(fresh.doc.get()) === stableJson(writer.doc.get()), {
      description: "fresh replica converged from snapshot + tail",
    });
    expect(Object.keys(fresh.doc.get().items)).toHaveLength(61);
  });

  it("gateways compact their in-memory change logs with the fleet frontier; all converge, a late replica catches up", async () => {
    const docId = `d-${recordId()}`;
    const servers2 = [
      { url: s1.url, auth: repl.auth },
      { url: s2.url, auth: repl.auth },
    ];
    const replicator = createReplicator({ servers: servers2, intervalMs: 60_000 });
    cleanups.push(() => replicator.stop());
    await replicator.start();
    const a = gateway(gw1, s1.url, docId);
    const b = gateway(gw2, s2.url, docId);
    await Promise.all([a.replica.start(), b.replica.start()]);
    type Gateway = typeof a;
    const retained = (g: Gateway) => g.doc.changesSince(EMPTY_VERSION_VECTOR).length;
    const converged = (gs: readonly Gateway[]) =>
      waitFor(
        () =>
          gs.every(
            (g) =>
              stableJson(g.doc.get()) === stableJson(a.doc.get()) &&
              stableJson(g.doc.version()) === stableJson(a.doc.version()),
          ),
        { description: "gateways converged", timeoutMs: 20_000 },
      );
    const N = 100;
    const write = async (from: number, to: number) => {
      for (let i = from; i <= to; i++) {
        a.doc.change((d) => {
          d.items[`a${i % 10}`] = i; // overwrites
        });
        b.doc.change((d) => {
          d.items[`b${i % 10}`] = i;
          if (i % 3 === 0) delete d.items[`a${(i + 1) % 10}`]; // deletes (tombstones) of a's keys
        });
      }
      await Promise.all([a.replica.flush(), b.replica.flush()]);
      await converged([a, b]);
    };
    // One checkpoint cycle: both report their version; once each one sees the other's ack (copied by
    // the replicator), the frontier is causally stable and each compacts its own doc.
    const cycle = () =>
      waitFor(
        async () => {
          const [ra, rb] = await Promise.all([a.checkpointer.checkpoint(), b.checkpointer.checkpoint()]);
          return (
            ra.frontier !== undefined && rb.frontier !== undefined && retained(a) === 0 && retained(b) === 0
          );
        },
        { description: "both gateways compacted", timeoutMs: 20_000, intervalMs: 100 },
      );

    await write(1, N);
    expect(retained(a)).toBe(2 * N);
    expect(retained(b)).toBe(2 * N);
    await cycle();
    await write(N + 1, 2 * N);
    expect(retained(a)).toBe(2 * N); // bounded by what came since the last cycle, not by the history
    await cycle();
    expect([retained(a), retained(b)]).toEqual([0, 0]);
    expect(a.doc.version()).toEqual({ [a.doc.replicaId]: 2 * N, [b.doc.replicaId]: 2 * N });

    // Writes after compaction still converge (deleted keys stay deleted on both sides).
    await write(2 * N + 1, 2 * N + 10);
    expect(retained(a)).toBe(20);

    // The servers compact too (snapshot + frontier); a late replica starts from scratch: its first
    // pull page is the snapshot, then the tail.
    await a.checkpointer.checkpoint({ snapshot: true });
    await b.checkpointer.checkpoint();
    for (const s of [s1, s2]) {
      await waitFor(async () => (await count(s.url, Collections.Snapshots, docId)) === 1, {
        description: `snapshot on ${s.url}`,
      });
    }
    const compactor = createCompactor({ servers: servers2, docs: [docId] });
    cleanups.push(() => compactor.stop());
    // Each origin's newest record (its head) stays; every other record goes.
    await waitFor(
      async () => {
        await compactor.run();
        const left = await Promise.all([s1, s2].map((s) => records(s.url, Collections.Changes, docId)));
        return left.every((n) => n === 2);
      },
      { description: "servers compacted", timeoutMs: 20_000, intervalMs: 200 },
    );
    for (const origin of [a.doc.replicaId, b.doc.replicaId]) {
      expect((await changeKeysOn(s1.url, gw1.auth, docId, origin)).at(-1)).toBe(`${origin}:${2 * N + 10}`);
    }
    await write(2 * N + 11, 2 * N + 20); // the tail
    const late = gateway(gw2, s1.url, docId);
    const pulls: { snapshot: boolean; changes: number }[] = [];
    late.replica.on("resync", ({ snapshot, changes }) => pulls.push({ snapshot, changes }));
    await late.replica.start();
    await converged([a, b, late]);
    expect(late.doc.get()).toEqual(a.doc.get());
    expect(pulls[0]).toEqual({ snapshot: true, changes: 20 }); // the snapshot, then the tail

    // A writer that has not acknowledged yet holds compaction back until its ack arrives.
    late.doc.change((d) => {
      d.items.late = 1;
    });
    await late.replica.flush();
    await converged([a, b, late]);
    expect((await a.checkpointer.checkpoint()).waitingFor).toEqual([late.doc.replicaId]);
    expect(retained(a)).toBeGreaterThan(0);
    await waitFor(
      async () => {
        await Promise.all([b.checkpointer.checkpoint(), late.checkpointer.checkpoint()]);
        const r = await a.checkpointer.checkpoint();
        return r.frontier !== undefined && retained(a) === 0;
      },
      { description: "a compacted with late in the frontier", timeoutMs: 20_000, intervalMs: 100 },
    );
  });
});
