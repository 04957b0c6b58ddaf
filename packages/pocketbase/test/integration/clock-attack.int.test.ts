import { createDoc, type Doc, encodeHlc, openReplica, type Replica, silentLogger } from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { type PocketBaseCluster, type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { HLC_MAX_COUNTER } from "../../../core/src/clock/hlc.js";
import {
  Collections,
  createPocketBaseClient,
  createPocketBaseTransport,
  createReplicator,
  NodeRole,
} from "../../src/index.js";
import { makeNode, rawChangeRecord, recordId, setUpServers, stableJson } from "./helpers.js";

// Item 2 of issue 13 (audit finding 3): one change stamped inside the drift limit with a saturated
// HLC counter, pushed by a gateway account with its own credentials, made `set()` throw
// `hlc/overflow` on every replica that applied it. Now it is refused and the fleet keeps writing.

const servers = usePocketBaseServers();
let cluster: PocketBaseCluster<ProcessPocketBase>;
let primary: ProcessPocketBase;
let secondary: ProcessPocketBase;
const attacker = makeNode("gw-evil");
const gw1 = makeNode("gw-1");
const gw2 = makeNode("gw-2");
const repl = makeNode("repl", NodeRole.Replicator);

beforeAll(async () => {
  cluster = await servers.startCluster({ nodes: 2, batch: false });
  [primary, secondary] = cluster.nodes as [ProcessPocketBase, ProcessPocketBase];
  await setUpServers(cluster.nodes, [attacker, gw1, gw2, repl]);
});

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const schema = z.object({ items: z.record(z.string(), z.number()) });
type State = z.output<typeof schema>;

interface Gateway {
  readonly replica: Replica<Doc<State>>;
  /** Codes of the changes this gateway's doc refused. */
  readonly rejected: string[];
}

async function gateway(
  node: typeof gw1,
  replicaId: string,
  docId: string,
  endpoints: readonly string[],
): Promise<Gateway> {
  const transport = createPocketBaseTransport({
    endpoints,
    auth: node.auth,
    docId,
    origin: replicaId,
    requestTimeoutMs: 2000,
    logger: silentLogger,
  });
  cleanups.push(() => transport.close());
  const rejected: string[] = [];
  const replica = await openReplica({
    storage: createMemoryStorage(),
    transport,
    scheduler: createTimerScheduler(),
    logger: silentLogger,
    on: {
      rejected: (e) => {
        for (const r of e.rejected) rejected.push(r.error.code);
      },
    },
    createDoc: ({ snapshot, last }) =>
      createDoc({
        schema,
        docId,
        replicaId,
        clock: Date.now,
        initial: { items: {} },
        ...(snapshot === undefined ? {} : { snapshot }),
        ...(last === undefined ? {} : { last }),
      }),
  });
  cleanups.push(() => replica.stop());
  return { replica, rejected };
}

describe("a poisoned clock on real servers", () => {
  it("a change with a saturated HLC counter inside the drift limit is refused, and the other gateways keep writing and converge", async () => {
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
    const a = await gateway(gw1, `${gw1.id}.a`, docId, [primary.url, secondary.url]);
    const b = await gateway(gw2, `${gw2.id}.b`, docId, [secondary.url, primary.url]);
    a.replica.doc.set(["items", "a0"], 0);
    b.replica.doc.set(["items", "b0"], 0);
    await waitFor(() => Object.keys(a.replica.doc.get().items).length === 2, {
      timeoutMs: 20_000,
      description: "a has b's first write",
    });

    // The attack, as in the audit: the attacker's own credentials, its own origin, a record made
    // straight through the record API, stamped 55 s ahead (inside the 60 s limit), counter 0xffffff.
    const origin = `${attacker.id}.hlc1`;
    const hlc = encodeHlc({ ms: Date.now() + 55_000, counter: HLC_MAX_COUNTER, node: origin });
    const evil = createPocketBaseClient({ url: primary.url, auth: attacker.auth });
    try {
      await evil.call("forge a change", (pb) =>
        pb.collection(Collections.Changes).create(
          rawChangeRecord({
            doc: docId,
            origin,
            seq: 1,
            node: attacker.id,
            hlc,
            ops: [{ kind: "set", path: ["items", "evil"], value: 666 }],
          }),
        ),
      );
    } finally {
      evil.close();
    }
    // Both gateways see it (over realtime or a pull, directly or through the replicator).
    for (const g of [a, b]) {
      await waitFor(() => g.rejected.length > 0 || g.replica.doc.get().items.evil !== undefined, {
        timeoutMs: 20_000,
        description: "the gateway received the forged change",
      });
    }

    // Local writes never fail because of it, on either gateway.
    for (let i = 1; i <= 20; i++) {
      a.replica.doc.set(["items", `a${i}`], i);
      b.replica.doc.set(["items", `b${i}`], i);
    }
    await Promise.all([a.replica.flush(), b.replica.flush()]);
    await waitFor(() => stableJson(a.replica.doc.get()) === stableJson(b.replica.doc.get()), {
      timeoutMs: 30_000,
      description: "the gateways converged",
    });
    const items = a.replica.doc.get().items;
    expect(Object.keys(items)).toHaveLength(42);
    expect(items.evil).toBeUndefined();
    expect(a.rejected).toContain("hlc/invalid");
    expect(b.rejected).toContain("hlc/invalid");
  });
});
