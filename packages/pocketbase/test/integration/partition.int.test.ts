import { createDoc, createReplica, type Doc } from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { type ContainerPocketBase, type PocketBaseCluster, waitFor } from "@nxs-sync/testing";
import { describeWithDocker, usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import { createPocketBaseTransport, createReplicator, ensureSchema, NodeRole } from "../../src/index.js";
import { countChanges, makeNode, provision, recordId, stableJson } from "./helpers.js";

const schema = z.object({ items: z.record(z.string(), z.number()) });

describeWithDocker("partition (container mode)", () => {
  const servers = usePocketBaseServers();
  let cluster: PocketBaseCluster<ContainerPocketBase>;
  const gw1 = makeNode("gw-1");
  const gw2 = makeNode("gw-2");
  const repl = makeNode("repl", NodeRole.Replicator);
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    cluster = await servers.startCluster({ nodes: 2, mode: "container", batch: false });
    for (const s of cluster.nodes) {
      await ensureSchema(s.client());
      await provision(s, [gw1, gw2, repl]);
    }
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  function gateway(node: typeof gw1, url: string, docId: string) {
    const doc: Doc<z.output<typeof schema>> = createDoc({
      schema,
      docId,
      replicaId: `${node.id}.gw`,
      clock: Date.now,
      initial: { items: {} },
    });
    const transport = createPocketBaseTransport({
      endpoints: [url],
      auth: node.auth,
      docId,
      requestTimeoutMs: 1500,
    });
    const replica = createReplica({
      doc,
      transport,
      storage: createMemoryStorage(),
      scheduler: createTimerScheduler(),
    });
    cleanups.push(() => replica.stop());
    return { doc, replica };
  }

  const count = (url: string, docId: string) => countChanges(url, gw1.auth, docId);

  it("both sides write while the secondary is cut off the network; after the heal all converge", async () => {
    const [primary, secondary] = cluster.nodes as [ContainerPocketBase, ContainerPocketBase];
    const docId = `d-${recordId()}`;
    const replicator = createReplicator({
      servers: [
        { url: primary.url, auth: repl.auth },
        { url: secondary.url, auth: repl.auth },
      ],
      healthIntervalMs: 250,
      requestTimeoutMs: 1000,
      intervalMs: 60_000,
    });
    cleanups.push(() => replicator.stop());
    await replicator.start();
    const a = gateway(gw1, primary.url, docId);
    const b = gateway(gw2, secondary.url, docId);
    await Promise.all([a.replica.start(), b.replica.start()]);
    a.doc.change((d) => {
      d.items.before = 0;
    });
    await a.replica.flush();
    await waitFor(() => b.doc.get().items.before === 0, { description: "b sees the first write" });

    await secondary.disconnect();
    try {
      for (let i = 1; i <= 20; i++) {
        a.doc.change((d) => {
          d.items[`a${i}`] = i;
        });
        b.doc.change((d) => {
          d.items[`b${i}`] = i;
          d.items.both = i; // concurrent writes to one key: LWW picks one everywhere
        });
        a.doc.change((d) => {
          d.items.both = 100 + i;
        });
      }
      await a.replica.flush();
      expect(b.replica.status().pendingChanges).toBeGreaterThan(0);
      expect(a.doc.get().items.b1).toBeUndefined();
    } finally {
      await secondary.reconnect();
    }
    await b.replica.flush();
    const total = 1 + 40 + 20;
    await waitFor(
      async () =>
        (await count(primary.url, docId)) === total && (await count(secondary.url, docId)) === total,
      {
        timeoutMs: 30_000,
        description: "both servers hold every change",
      },
    );
    await waitFor(() => stableJson(a.doc.get()) === stableJson(b.doc.get()), {
      timeoutMs: 20_000,
      description: "both gateways converge",
    });
    expect(Object.keys(a.doc.get().items).length).toBe(1 + 20 + 20 + 1);
  });
});
