import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import {
  checkpointWithStore,
  compactWithStore,
  createDoc,
  silentLogger,
  type Transport,
} from "@nxs-sync/core";
import { type NatsServer, startNatsServer } from "@nxs-sync/testing";
import { runStabilityStoreConformance } from "@nxs-sync/testing/conformance";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import {
  createNatsStabilityStore,
  createNatsTransport,
  docChangesFilter,
  type NatsStabilityStore,
} from "../../src/index.js";

let server: NatsServer;
beforeAll(async () => {
  server = await startNatsServer({ name: "stability" });
});
afterAll(async () => {
  await server?.destroy();
});
let open: (Transport | NatsStabilityStore)[] = [];
afterEach(async () => {
  for (const t of open) await t.close();
  open = [];
});

const schema = z.object({ kv: z.record(z.string(), z.number()) });
const makeDoc = (docId: string, replicaId: string) =>
  createDoc({ schema, docId, replicaId, clock: Date.now, initial: { kv: {} } });

/** Two replicas that wrote 5 and 3 changes, one pack each change, and exchanged them. */
async function setup() {
  const docId = `s.${randomBytes(4).toString("hex")}`;
  const a = makeDoc(docId, "gw-a");
  const b = makeDoc(docId, "gw-b");
  const ta = createNatsTransport({
    servers: server.url,
    docId,
    origin: "gw-a",
    packSize: 1,
    logger: silentLogger,
  });
  const store = createNatsStabilityStore({ servers: server.url });
  open.push(ta, store);
  await ta.connect();
  const fromA = [1, 2, 3, 4, 5].map((n) => a.set(["kv", `a${n}`], n)).filter((c) => c !== undefined);
  const fromB = [1, 2, 3].map((n) => b.set(["kv", `b${n}`], n)).filter((c) => c !== undefined);
  await ta.push(fromA);
  await ta.push(fromB);
  a.applyRemote(fromB);
  b.applyRemote(fromA);
  return { docId, a, b, ta, store };
}

it("compacts under a lease: purges only below every live ack and the newest snapshot", async () => {
  const { docId, a, b, ta, store } = await setup();
  // Only a acknowledged: b's ack is missing, so nothing is stable for the log yet.
  const first = await checkpointWithStore({ store, doc: a, now: Date.now(), snapshot: true });
  expect(first.version).toEqual({ "gw-a": 5, "gw-b": 3 });
  // b acknowledges an older view: a up to 3 only.
  await store.writeAck(docId, { replica: "gw-b", version: { "gw-a": 3, "gw-b": 3 }, at: Date.now() });
  const r = await compactWithStore({ store, doc: docId, holder: "c1", now: Date.now() });
  expect(r.skipped).toBeUndefined();
  expect(r.bound).toEqual({ "gw-a": 3, "gw-b": 3 });
  expect(r.deleted).toBe(6);
  // A reader from scratch gets the snapshot and nothing else (what is left, a:4 and a:5, it covers).
  const pages = [];
  for await (const p of ta.pull({})) pages.push(p);
  expect(pages).toHaveLength(1);
  expect(pages[0]?.snapshot?.version).toEqual({ "gw-a": 5, "gw-b": 3 });
  expect(pages[0]?.changes).toEqual([]);
  const snapshot = pages[0]?.snapshot;
  const reader = createDoc({
    schema,
    docId,
    replicaId: "gw-c",
    clock: Date.now,
    initial: { kv: {} },
    ...(snapshot ? { snapshot } : {}),
  });
  expect(reader.get()).toEqual(a.get());
  // The packs above the bound stay in the stream: 2 of the 8.
  const nc = await connect({ servers: server.url });
  const info = await (await jetstreamManager(nc)).streams.info(ta.names.changesStream, {
    subjects_filter: docChangesFilter(ta.names, docId),
  });
  await nc.close();
  expect(Object.values(info.state.subjects ?? {}).reduce((x, y) => x + y, 0)).toBe(2);
  expect((await ta.highWater?.("gw-a"))?.seq).toBe(5);
  expect(b.version()).toEqual({ "gw-a": 5, "gw-b": 3 });
});

it("refuses a second compactor while the lease is held, and the purge of a lost lease", async () => {
  const { docId, a, store } = await setup();
  await checkpointWithStore({ store, doc: a, now: Date.now(), snapshot: true });
  const lease = await store.acquireLease(docId, "c1", 60_000);
  expect(lease).toBeDefined();
  expect(await store.acquireLease(docId, "c2", 60_000)).toBeUndefined();
  const other = await compactWithStore({ store, doc: docId, holder: "c2", now: Date.now() });
  expect(other.skipped).toBe("lease-held");
  await store.releaseLease(lease as NonNullable<typeof lease>);
  const taken = await store.acquireLease(docId, "c2", 60_000);
  expect(taken).toBeDefined();
  // c1's old lease is lost: its purge is refused with nats/lease-held, nothing deleted.
  await expect(
    store.purgeBelow(docId, { "gw-a": 5 }, lease as NonNullable<typeof lease>),
  ).rejects.toMatchObject({
    code: "nats/lease-held",
  });
});

it("a compactor that holds the doc writes the snapshot message itself, then purges below it", async () => {
  const { docId, a, b, ta, store } = await setup();
  await store.writeAck(docId, { replica: "gw-a", version: a.version(), at: Date.now() });
  await store.writeAck(docId, { replica: "gw-b", version: b.version(), at: Date.now() });
  expect(await store.latestSnapshot(docId)).toBeUndefined();
  const r = await compactWithStore({
    store,
    doc: docId,
    holder: "gw-a",
    now: Date.now(),
    snapshot: a.snapshot(),
  });
  expect(r).toMatchObject({ bound: { "gw-a": 5, "gw-b": 3 }, deleted: 8 });
  expect((await store.latestSnapshot(docId))?.version).toEqual({ "gw-a": 5, "gw-b": 3 });
  const pages = [];
  for await (const p of ta.pull({})) pages.push(p);
  expect(pages.map((p) => p.changes.length)).toEqual([0]);
  expect(pages[0]?.snapshot?.version).toEqual({ "gw-a": 5, "gw-b": 3 });
});

it("counts acknowledgements in the high-water mark of an origin (seqs the stream never got)", async () => {
  const { docId, ta, store } = await setup();
  expect((await ta.highWater?.("gw-a"))?.seq).toBe(5);
  await store.writeAck(docId, { replica: "gw-a", version: { "gw-a": 9, "gw-b": 3 }, at: Date.now() });
  expect((await ta.highWater?.("gw-a"))?.seq).toBe(9);
});

// The port's conformance suite (shared with the PocketBase adapter): one store for writers and
// the compactor, transports writing as two origins.
runStabilityStoreConformance("NATS KV and streams", async () => {
  const docId = `c.${randomBytes(4).toString("hex")}`;
  const store = createNatsStabilityStore({ servers: server.url });
  const transports: Transport[] = [];
  const replicas = ["gw-a", "gw-b"] as const;
  return {
    docId,
    replicas,
    writerStore: () => store,
    compactorStore: () => store,
    async transport(i) {
      const t = createNatsTransport({
        servers: server.url,
        docId,
        origin: replicas[i],
        packSize: 1,
        logger: silentLogger,
      });
      transports.push(t);
      await t.connect();
      return t;
    },
    async close() {
      for (const t of transports) await t.close();
      await store.close();
    },
  };
});
