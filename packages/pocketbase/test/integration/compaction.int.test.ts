import { createDoc, createMemoryStorage, createReplica, type Doc, type Snapshot } from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { type ProcessPocketBase, usePocketBaseServers, waitFor } from "@nxs-sync/testing";
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
import { makeNode, provision, recordId, stableJson } from "./helpers.js";

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

async function count(url: string, collection: string, docId: string): Promise<number> {
  const c = createPocketBaseClient({ url, auth: gw1.auth });
  const r = await c.call("count", (pb) =>
    pb.collection(collection).getList(1, 1, { filter: pb.filter("doc = {:d}", { d: docId }) }),
  );
  return r.totalItems;
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
    await waitFor(() => Object.keys(reader.doc.get().items).length === 50, { description: "reader has 50" });

    // A replica that acknowledged nothing for two hours holds the frontier back until it expires.
    const stale = createPocketBaseClient({ url: s1.url, auth: gw2.auth });
    await writeAck(stale, {
      doc: docId,
      replica: `${gw2.id}.stale`,
      version: {},
      at: Date.now() - 2 * 3600_000,
    });

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
    const patient = createCompactor({ servers: servers2, docs: [docId], expiryMs: 3 * 3600_000 });
    cleanups.push(() => patient.stop());
    for (const r of await patient.run()) expect(r.deletedChanges, r.url).toBe(0);

    const compactor = createCompactor({ servers: servers2, docs: [docId], expiryMs: 3600_000 });
    cleanups.push(() => compactor.stop());
    const results = await compactor.run();
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect(r.deletedChanges, r.url).toBe(50);
      expect(r.expired).toEqual([`${gw2.id}.stale`]);
    }
    expect(await count(s1.url, Collections.Changes, docId)).toBe(0);

    // New writes replicate; anti-entropy does not bring the compacted changes back.
    for (let i = 51; i <= 60; i++) {
      writer.doc.change((d) => {
        d.items[`k${i}`] = i;
      });
    }
    await writer.replica.flush();
    await waitFor(async () => (await count(s2.url, Collections.Changes, docId)) === 10);
    await replicator.sync();
    expect(await count(s1.url, Collections.Changes, docId)).toBe(10);
    expect(await count(s2.url, Collections.Changes, docId)).toBe(10);

    // A pull from a version the compaction left behind starts with the snapshot, then the tail.
    const t = createPocketBaseTransport({ endpoints: [s1.url], auth: gw2.auth, docId });
    cleanups.push(() => t.close());
    const pages = [];
    for await (const p of t.pull({})) pages.push(p);
    expect(pages[0]?.snapshot?.version[writer.doc.replicaId]).toBe(50);
    expect(pages.flatMap((p) => p.changes).map((c) => c.seq)).toEqual(
      Array.from({ length: 10 }, (_, i) => 51 + i),
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
    expect(Object.keys(fresh.doc.get().items)).toHaveLength(60);
  });
});
