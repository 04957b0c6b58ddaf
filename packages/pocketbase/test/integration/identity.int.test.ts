import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  counter,
  createDoc,
  type Doc,
  type NxsError,
  openReplica,
  type Replica,
  silentLogger,
} from "@nxs-sync/core";
import { createFileStorage, createTimerScheduler } from "@nxs-sync/core/node";
import { type PocketBaseCluster, type ProcessPocketBase, startTcpProxy, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createPocketBaseTransport, createReplicator, NodeRole } from "../../src/index.js";
import { makeNode, recordId, setUpServers, stableJson } from "./helpers.js";

const servers = usePocketBaseServers();
let cluster: PocketBaseCluster<ProcessPocketBase>;
let primary: ProcessPocketBase;
let secondary: ProcessPocketBase;
const gw1 = makeNode("gw-1");
const gw2 = makeNode("gw-2");
const repl = makeNode("repl", NodeRole.Replicator);

beforeAll(async () => {
  cluster = await servers.startCluster({ nodes: 2, batch: false });
  [primary, secondary] = cluster.nodes as [ProcessPocketBase, ProcessPocketBase];
  await setUpServers(cluster.nodes, [gw1, gw2, repl]);
});

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const schema = z.object({ items: z.record(z.string(), z.number()), hits: counter() });
type State = z.output<typeof schema>;

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "nxs-identity-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A gateway process's replica: file storage in `dir`, endpoints `[own, other]`. */
async function gateway(
  node: typeof gw1,
  replicaId: string,
  docId: string,
  dir: string,
  endpoints: readonly string[],
): Promise<{ replica: Replica<Doc<State>>; acked: Set<number>; errors: NxsError[] }> {
  const transport = createPocketBaseTransport({
    endpoints,
    auth: node.auth,
    docId,
    origin: replicaId,
    requestTimeoutMs: 2000,
    leaseTtlMs: 3000,
    logger: silentLogger,
  });
  cleanups.push(() => transport.close());
  const acked = new Set<number>();
  const errors: NxsError[] = [];
  const replica = await openReplica({
    storage: createFileStorage({ dir }),
    transport,
    scheduler: createTimerScheduler(),
    logger: silentLogger,
    on: {
      pushed: (e) => {
        for (const c of e.changes) acked.add(c.seq);
      },
      error: (e) => {
        errors.push(e.error);
      },
    },
    createDoc: ({ snapshot, last }) =>
      createDoc({
        schema,
        docId,
        replicaId,
        clock: Date.now,
        initial: { items: {}, hits: 0 },
        ...(snapshot === undefined ? {} : { snapshot }),
        ...(last === undefined ? {} : { last }),
      }),
  });
  cleanups.push(() => replica.stop());
  return { replica, acked, errors };
}

describe("replica identity on real servers", () => {
  it("a gateway killed and restarted on empty storage (same replica id) loses no acknowledged change and reuses no seq", async () => {
    const docId = `d-${recordId()}`;
    const replicator = createReplicator({
      servers: [
        { url: primary.url, auth: repl.auth },
        { url: secondary.url, auth: repl.auth },
      ],
      logger: silentLogger,
    });
    cleanups.push(() => replicator.stop());
    await replicator.start();
    const id = `${gw1.id}.a`;
    // The first incarnation reaches the servers through proxies: cutting them is its death as the
    // servers see it (no lease release, no goodbye).
    const proxies = [await startTcpProxy(primary.url), await startTcpProxy(secondary.url)];
    cleanups.push(async () => {
      for (const p of proxies) await p.close();
    });
    const first = await gateway(
      gw1,
      id,
      docId,
      await tempDir(),
      proxies.map((p) => p.url),
    );
    for (let i = 0; i < 30; i++) {
      first.replica.doc.change((d) => {
        d.items[`old${i}`] = i;
        d.hits += 1;
      });
    }
    await first.replica.flush();
    expect(first.acked.size).toBe(30);
    // Killed: the process is gone without stop(); the pod comes back without its volume.
    for (const p of proxies) p.cut("reset");
    const again = await gateway(gw1, id, docId, await tempDir(), [primary.url, secondary.url]);
    // openReplica resolved only once the new incarnation caught up on the old one's changes.
    expect(Object.keys(again.replica.doc.get().items)).toHaveLength(30);
    for (let i = 0; i < 20; i++) {
      again.replica.doc.change((d) => {
        d.items[`new${i}`] = i;
        d.hits += 1;
      });
    }
    await again.replica.flush();
    expect([...again.acked].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => 31 + i));

    // Every acknowledged change of both incarnations reaches a reader on the other server.
    const reader = await gateway(gw2, `${gw2.id}.r`, docId, await tempDir(), [secondary.url, primary.url]);
    await waitFor(() => stableJson(reader.replica.doc.get()) === stableJson(again.replica.doc.get()), {
      timeoutMs: 30_000,
      description: "the reader converged on the restarted gateway",
    });
    const state = reader.replica.doc.get();
    expect(Object.keys(state.items)).toHaveLength(50);
    expect(state.hits).toBe(50);
    expect(reader.replica.status().gaps).toEqual({});
  });

  it("two live processes with one replica id: the later one is refused (conflict) and nothing of it is acknowledged", async () => {
    const docId = `d-${recordId()}`;
    const id = `${gw1.id}.b`;
    const endpoints = [primary.url, secondary.url];
    const one = await gateway(gw1, id, docId, await tempDir(), endpoints);
    for (let i = 0; i < 10; i++) {
      one.replica.doc.change((d) => {
        d.items[`one${i}`] = i;
      });
    }
    await one.replica.flush();
    const two = await gateway(gw1, id, docId, await tempDir(), endpoints);
    expect(Object.keys(two.replica.doc.get().items)).toHaveLength(10);
    two.replica.doc.change((d) => {
      d.items.two = 1;
    });
    await waitFor(() => two.errors.some((e) => e.code === "conflict"), {
      timeoutMs: 20_000,
      description: "the second process is refused",
    });
    const refusal = two.errors.find((e) => e.code === "conflict");
    expect(refusal?.message).toContain(`replica id ${id}`);
    expect(refusal?.message).toContain("another live process");
    // The first one goes on; the second acknowledges nothing.
    for (let i = 10; i < 20; i++) {
      one.replica.doc.change((d) => {
        d.items[`one${i}`] = i;
      });
    }
    await one.replica.flush();
    expect(one.acked.size).toBe(20);
    expect(two.acked.size).toBe(0);
    expect(two.replica.status().pendingChanges).toBe(1);
    // No replicator here: the reader reads the server both processes write to.
    const reader = await gateway(gw2, `${gw2.id}.r2`, docId, await tempDir(), endpoints);
    await waitFor(() => stableJson(reader.replica.doc.get()) === stableJson(one.replica.doc.get()), {
      timeoutMs: 30_000,
      description: "the reader has exactly the first process's state",
    });
    expect(reader.replica.doc.get().items.two).toBeUndefined();
  });

  it("a gateway killed and restarted from its own file storage takes its lease over and pushes again (its restored outbox is no clash)", async () => {
    const docId = `d-${recordId()}`;
    const id = `${gw1.id}.c`;
    const dir = await tempDir();
    const proxies = [await startTcpProxy(primary.url)];
    cleanups.push(async () => {
      for (const p of proxies) await p.close();
    });
    const first = await gateway(
      gw1,
      id,
      docId,
      dir,
      proxies.map((p) => p.url),
    );
    for (let i = 0; i < 10; i++) {
      first.replica.doc.change((d) => {
        d.items[`k${i}`] = i;
      });
    }
    await first.replica.flush();
    // Killed with everything acknowledged but not yet trimmed from its outbox (no snapshot yet):
    // the restart pushes those changes again, under a new lease holder.
    for (const p of proxies) p.cut("reset");
    const again = await gateway(gw1, id, docId, dir, [primary.url]);
    expect(again.replica.status().pendingChanges).toBe(10);
    again.replica.doc.change((d) => {
      d.items.after = 1;
    });
    await again.replica.flush();
    expect(again.errors.filter((e) => e.code === "conflict" && !e.retryable)).toEqual([]);
    expect([...again.acked].sort((a, b) => a - b)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
  });
});
