/**
 * Core's StabilityStore port over a real PocketBase server (issue 24: acks and compaction behind a
 * transport-neutral port, not PocketBase-only): the conformance suite the NATS adapter passes,
 * unchanged, with gateways' stores for acks and snapshots and a replicator's store for the purge;
 * and the PocketBase rules kept behind the port (a forged snapshot is not the latest, an ack as
 * another node's replica is refused).
 */
import { createDoc, type Transport, TransportError } from "@nxs-sync/core";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { runStabilityStoreConformance } from "@nxs-sync/testing/conformance";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import {
  createPocketBaseClient,
  createPocketBaseStabilityStore,
  createPocketBaseTransport,
  ensureSchema,
  NodeRole,
  type PocketBaseClient,
} from "../../src/index.js";
import { makeNode, provision, recordId } from "./helpers.js";

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const gw1 = makeNode("gw-1");
const gw2 = makeNode("gw-2");
const repl = makeNode("repl", NodeRole.Replicator);

beforeAll(async () => {
  server = await servers.start({ name: "stability-store", batch: false });
  await ensureSchema(server.client());
  await provision(server, [gw1, gw2, repl]);
});
const clients: PocketBaseClient[] = [];
afterAll(() => {
  for (const c of clients) c.close();
});
const client = (auth: typeof gw1.auth) => {
  const c = createPocketBaseClient({ url: server.url, auth });
  clients.push(c);
  return c;
};

runStabilityStoreConformance("PocketBase collections", async () => {
  const docId = `st-${recordId().slice(0, 8)}`;
  const nodes = [gw1, gw2] as const;
  const replicas = [`${gw1.id}.main`, `${gw2.id}.main`] as const;
  const stores = nodes.map((n) => createPocketBaseStabilityStore({ client: client(n.auth) }));
  const compactor = createPocketBaseStabilityStore({ client: client(repl.auth) });
  const transports: Transport[] = [];
  return {
    docId,
    replicas,
    writerStore: (i) => stores[i] as NonNullable<(typeof stores)[number]>,
    compactorStore: () => compactor,
    async transport(i) {
      const t = createPocketBaseTransport({
        endpoints: [server.url],
        auth: nodes[i].auth,
        docId,
        origin: replicas[i],
      });
      transports.push(t);
      return t;
    },
    async close() {
      for (const t of transports) await t.close();
    },
  };
});

it("keeps PocketBase's rules behind the port: an ack as another node's replica is refused, a forged snapshot is refused and never the latest", async () => {
  const docId = `st-${recordId().slice(0, 8)}`;
  const store1 = createPocketBaseStabilityStore({ client: client(gw1.auth) });
  await expect(
    store1.writeAck(docId, { replica: `${gw2.id}.main`, version: { [`${gw2.id}.main`]: 9 }, at: Date.now() }),
  ).rejects.toBeInstanceOf(TransportError);
  // A snapshot claiming changes this server does not hold (no change record backs it): the server
  // refuses it at write time; readers would pass it over too.
  const doc = createDoc({
    schema: z.object({ kv: z.record(z.string(), z.number()) }),
    docId,
    replicaId: `${gw1.id}.main`,
    initial: { kv: {} },
  });
  doc.set(["kv", "x"], 1);
  await expect(
    store1.publishSnapshot({ ...doc.snapshot(), version: { [`${gw1.id}.main`]: 50 } }),
  ).rejects.toMatchObject({ code: "transport/rejected" });
  const compactor = createPocketBaseStabilityStore({ client: client(repl.auth) });
  expect(await compactor.latestSnapshot(docId)).toBeUndefined();
});
