import { createDoc, type Snapshot, silentLogger } from "@nxs-sync/core";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { ClientResponseError } from "pocketbase";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  Collections,
  createCheckpointer,
  createPocketBaseClient,
  encodeSnapshotRecord,
} from "../../src/index.js";
import { makeNode, quietGateway, recordId, setUpServers, stableJson } from "./helpers.js";

// Issue 13, item 1 (in part): a gateway account cannot publish a snapshot claiming changes that do
// not exist (SECURITY-AUDIT.md, finding 1: a forged "huge version" rewrote every replica).

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const gwA = makeNode("gw-a");
const gwB = makeNode("gw-b");

beforeAll(async () => {
  server = await servers.start({ name: "snapshot-claims", batch: false });
  await setUpServers([server], [gwA, gwB]);
});

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const schema = z.object({ routes: z.record(z.string(), z.string()) });

function gateway(node: typeof gwA, docId: string, instance = "main") {
  return quietGateway({
    node,
    docId,
    instance,
    endpoints: [server.url],
    schema,
    initial: { routes: {} },
    cleanup: (fn) => cleanups.push(fn),
  });
}

/** Creates a snapshot record with gateway A's own credentials, as the audit's attacker did. */
async function publishAsA(snapshot: Snapshot): Promise<unknown> {
  const client = createPocketBaseClient({ url: server.url, auth: gwA.auth });
  await client.authenticate();
  try {
    return await client.pb
      .collection(Collections.Snapshots)
      .create(encodeSnapshotRecord(snapshot, gwA.id), { requestKey: null });
  } catch (e) {
    return e;
  } finally {
    client.close();
  }
}

describe("snapshot claims are checked by the server", () => {
  it("a gateway's forged snapshot (a huge version for another node, or an origin with no changes) is refused; honest ones pass; the fleet is untouched", async () => {
    const docId = `d-${recordId()}`;
    const a = gateway(gwA, docId);
    const b = gateway(gwB, docId);
    await Promise.all([a.replica.start(), b.replica.start()]);
    b.doc.set(["routes", "api"], "10.0.0.1:8080");
    a.doc.set(["routes", "web"], "10.0.0.2:80");
    await Promise.all([a.replica.flush(), b.replica.flush()]);
    await waitFor(() => stableJson(a.doc.get()) === stableJson(b.doc.get()), {
      description: "a and b agree",
    });

    // The attack: a local doc with a rewritten route and every origin claimed up to 1,000,000.
    const evil = createDoc({
      schema,
      docId,
      replicaId: `${gwA.id}.evil`,
      clock: Date.now,
      initial: { routes: {} },
    });
    // Its own origin, `<A>.evil`, has no change record on the server (the audit's forgedsnap3).
    evil.set(["routes", "api"], "6.6.6.6:666");
    const forged = evil.snapshot();
    expect(Object.keys(forged.version)).toEqual([`${gwA.id}.evil`]);
    const huge = Object.fromEntries(Object.keys(b.doc.version()).map((o) => [o, 1_000_000]));
    for (const version of [huge, forged.version]) {
      const refused = await publishAsA({ ...forged, version });
      expect(refused).toBeInstanceOf(ClientResponseError);
      expect((refused as ClientResponseError).status).toBe(400);
      expect(JSON.stringify((refused as ClientResponseError).response)).toContain(
        "validation_snapshot_unbacked",
      );
    }

    // An honest snapshot (what the checkpointer publishes) is accepted.
    const checkpointer = createCheckpointer({
      endpoints: [server.url],
      auth: gwA.auth,
      doc: a.doc,
      logger: silentLogger,
    });
    cleanups.push(async () => checkpointer.stop());
    await checkpointer.checkpoint({ snapshot: true });
    const list = await server
      .client()
      .collection(Collections.Snapshots)
      .getFullList({ filter: `doc = "${docId}"` });
    expect(list).toHaveLength(1);

    // The fleet goes on: B's next write reaches a fresh reader, and nobody sees the forged route.
    b.doc.set(["routes", "api"], "10.0.0.3:8080");
    await b.replica.flush();
    const reader = gateway(gwB, docId, "reader");
    await reader.replica.start();
    await waitFor(() => stableJson(reader.doc.get()) === stableJson(b.doc.get()), {
      description: "a fresh reader has B's latest write",
    });
    expect(reader.doc.get().routes.api).toBe("10.0.0.3:8080");
  });
});
