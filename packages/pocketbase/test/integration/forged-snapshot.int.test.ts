import { createDoc, createReplica, type Logger, type Snapshot, silentLogger } from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  Collections,
  compactDoc,
  createCheckpointer,
  createPocketBaseClient,
  createPocketBaseTransport,
  encodeSnapshotRecord,
  fetchLatestSnapshot,
  NodeRole,
  publishSnapshot,
} from "../../src/index.js";
import { changeKeysOn, makeNode, quietGateway, recordId, setUpServers, stableJson } from "./helpers.js";

// Issue 13, item 1 (SECURITY-AUDIT.md, finding 2): driven by a forged snapshot claiming a huge seq
// for another node's origin, the compactor deleted every change record and the genuine snapshots,
// and new replicas booted to the forged state. The compactor now trusts only snapshots whose claims
// the server's change records back (`nxs_heads`), keeps each origin's newest record, and reports
// the others.

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const gwA = makeNode("gw-a");
const gwB = makeNode("gw-b");
const repl = makeNode("repl", NodeRole.Replicator);

beforeAll(async () => {
  server = await servers.start({ name: "forged-snapshot", batch: false });
  await setUpServers([server], [gwA, gwB, repl]);
});

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const schema = z.object({ routes: z.record(z.string(), z.string()) });

function gateway(node: typeof gwA, docId: string, instance: string) {
  const g = quietGateway({
    node,
    docId,
    instance,
    endpoints: [server.url],
    schema,
    initial: { routes: {} },
    cleanup: (fn) => cleanups.push(fn),
  });
  const checkpointer = createCheckpointer({
    endpoints: [server.url],
    auth: node.auth,
    doc: g.doc,
    logger: silentLogger,
  });
  cleanups.push(async () => checkpointer.stop());
  return { ...g, checkpointer };
}

/** The ids of a doc's snapshot records, newest first (as a superuser sees them). */
async function snapshotIds(docId: string): Promise<string[]> {
  const rows = await server
    .client()
    .collection(Collections.Snapshots)
    .getFullList({ filter: `doc = "${docId}"`, sort: "-created,-id", fields: "id" });
  return rows.map((r) => r.id);
}

/** A logger that keeps its warnings. */
function recordingLogger(): Logger & { readonly warnings: string[] } {
  const warnings: string[] = [];
  return { ...silentLogger, warn: (m: string) => void warnings.push(m), warnings };
}

describe("the compactor under a forged snapshot", () => {
  it("compacts against the genuine snapshot only: B's changes, the genuine snapshots and a new replica's state survive; the forgery is reported", async () => {
    const docId = `d-${recordId()}`;
    const a = gateway(gwA, docId, "main");
    const b = gateway(gwB, docId, "main");
    await Promise.all([a.replica.start(), b.replica.start()]);
    const agree = (description: string) =>
      waitFor(
        () =>
          stableJson(a.doc.get()) === stableJson(b.doc.get()) &&
          stableJson(a.doc.version()) === stableJson(b.doc.version()),
        { description },
      );
    // Several records per origin (one flush each), so there is something to compact.
    for (let i = 1; i <= 4; i++) {
      a.doc.set(["routes", `web${i}`], `10.0.1.${i}:80`);
      b.doc.set(["routes", `api${i}`], `10.0.2.${i}:8080`);
      await Promise.all([a.replica.flush(), b.replica.flush()]);
    }
    await agree("a and b agree on the first writes");
    // Two genuine snapshots, published by A's checkpointer as usual.
    await a.checkpointer.checkpoint({ snapshot: true });
    b.doc.set(["routes", "api5"], "10.0.2.5:8080");
    await b.replica.flush();
    await agree("a has b's fifth write");
    await a.checkpointer.checkpoint({ snapshot: true });
    const genuine = await snapshotIds(docId);
    expect(genuine).toHaveLength(2);
    const covered = a.doc.version();

    // B writes on after the genuine snapshots: changes no genuine snapshot covers.
    for (let i = 6; i <= 8; i++) {
      b.doc.set(["routes", `api${i}`], `10.0.2.${i}:8080`);
      await b.replica.flush();
    }
    await agree("a has b's later writes");
    // Both acknowledge everything: the frontier covers all of B's changes, so only the snapshot
    // bound keeps them.
    await Promise.all([a.checkpointer.checkpoint(), b.checkpointer.checkpoint()]);
    const bOrigin = b.doc.replicaId;
    const bHead = b.doc.version()[bOrigin] ?? 0;
    const before = await changeKeysOn(server.url, gwA.auth, docId);

    // The forgery: the genuine state with A's route rewritten, B's origin claimed up to 1,000,000.
    // Written as a superuser (the compromised gateway's write is refused by the server's hook,
    // `validation_snapshot_unbacked`, snapshot-claims.int.test.ts; a replicator or superuser
    // account, or a replicator copying it from a server that accepted it, bypasses the hook). Twice,
    // so the forgeries are the two newest snapshots, as in the audit.
    const latest = await fetchLatestSnapshot(
      createPocketBaseClient({ url: server.url, auth: gwA.auth }),
      docId,
    );
    const evil = createDoc({
      schema,
      docId,
      replicaId: a.doc.replicaId,
      clock: Date.now,
      snapshot: latest!.snapshot,
      initial: { routes: {} },
    });
    evil.set(["routes", "api1"], "6.6.6.6:666");
    const forged: Snapshot = {
      ...evil.snapshot(),
      version: { ...a.doc.version(), [bOrigin]: 1_000_000 },
    };
    const admin = server.client();
    const forgedIds: string[] = [];
    for (let i = 0; i < 2; i++) {
      const rec = await admin.collection(Collections.Snapshots).create(encodeSnapshotRecord(forged, gwA.id));
      forgedIds.push(rec.id);
    }

    // The compactor, with the replicator account, as the audit ran it.
    const logger = recordingLogger();
    const replicator = createPocketBaseClient({ url: server.url, auth: repl.auth });
    cleanups.push(async () => replicator.close());
    const result = await compactDoc(replicator, docId, { expiryMs: 60_000, logger });

    // The forgeries are reported, not used.
    expect(result.refusedSnapshots.map((r) => r.recordId).sort()).toEqual([...forgedIds].sort());
    for (const r of result.refusedSnapshots) {
      expect(r).toMatchObject({ origin: bOrigin, claim: 1_000_000, head: bHead, node: gwA.id });
    }
    for (const id of forgedIds) expect(logger.warnings.join("\n")).toContain(id);
    expect(result.bound[bOrigin]).toBe(covered[bOrigin]);
    expect(result.deletedChanges).toBeGreaterThan(0);

    // Nothing the genuine snapshot does not cover went, nor any origin's newest change.
    const after = await changeKeysOn(server.url, gwA.auth, docId);
    const uncovered = before.filter((k) => {
      const [origin, seq] = [k.slice(0, k.lastIndexOf(":")), Number(k.slice(k.lastIndexOf(":") + 1))];
      return seq > (covered[origin] ?? 0);
    });
    expect(uncovered).toEqual([`${bOrigin}:6`, `${bOrigin}:7`, `${bOrigin}:8`]);
    for (const k of uncovered) expect(after).toContain(k);
    expect(after).toContain(`${a.doc.replicaId}:${a.doc.version()[a.doc.replicaId]}`);
    // The genuine snapshots stay (and the forgeries, left for the operator, reported above).
    expect((await snapshotIds(docId)).sort()).toEqual([...genuine, ...forgedIds].sort());

    // A new replica boots from the newest backed snapshot plus the pull: the genuine state, B's
    // later writes included, never the forged route.
    const boot = await fetchLatestSnapshot(
      createPocketBaseClient({ url: server.url, auth: gwB.auth }),
      docId,
    );
    expect(boot?.recordId).toBe(genuine[0]);
    const doc = createDoc({
      schema,
      docId,
      replicaId: `${gwB.id}.fresh`,
      clock: Date.now,
      snapshot: boot!.snapshot,
      initial: { routes: {} },
    });
    const transport = createPocketBaseTransport({
      endpoints: [server.url],
      auth: gwB.auth,
      docId,
      origin: doc.replicaId,
      logger: silentLogger,
    });
    const fresh = createReplica({
      doc,
      transport,
      storage: createMemoryStorage(),
      scheduler: createTimerScheduler(),
      logger: silentLogger,
    });
    cleanups.push(() => fresh.stop());
    await fresh.start();
    await waitFor(() => stableJson(doc.version()) === stableJson(b.doc.version()), {
      description: "the new replica caught up",
    });
    expect(doc.get()).toEqual(b.doc.get());
    expect(doc.get().routes.api1).toBe("10.0.2.1:8080");
    expect(doc.get().routes.api8).toBe("10.0.2.8:8080");
  });
});

describe("a backed snapshot whose state breaks the schema", () => {
  it("a gateway publishes it through the API; a fresh replica bootstrapping from it never shows the bad value and reports it", async () => {
    const docId = `d-${recordId()}`;
    const a = gateway(gwA, docId, "main");
    await a.replica.start();
    for (let i = 1; i <= 3; i++) {
      a.doc.set(["routes", "web"], `10.0.1.${i}:80`);
      await a.replica.flush();
    }
    await a.checkpointer.checkpoint();

    // The attack, with A's own credentials: a state written under a looser schema (a number where
    // the schema says string), claiming A's own origin up to the seq the server holds: backed, so
    // the server's hook accepts it.
    const evil = createDoc({
      schema: z.object({ routes: z.record(z.string(), z.union([z.string(), z.number()])) }),
      docId,
      replicaId: a.doc.replicaId,
      clock: Date.now,
      initial: { routes: {} },
    });
    evil.set(["routes", "web"], "10.0.1.3:80");
    evil.set(["routes", "api"], 12345);
    evil.set(["routes", "api2"], 54321);
    expect(evil.version()).toEqual(a.doc.version());
    const attacker = createPocketBaseClient({ url: server.url, auth: gwA.auth });
    cleanups.push(async () => attacker.close());
    await publishSnapshot(attacker, evil.snapshot());

    // The server compacts (A's records below its head go), so a fresh replica's first pull page is
    // the snapshot.
    const replicator = createPocketBaseClient({ url: server.url, auth: repl.auth });
    cleanups.push(async () => replicator.close());
    const compacted = await compactDoc(replicator, docId, { logger: silentLogger });
    expect(compacted.refusedSnapshots).toEqual([]);
    expect(compacted.deletedRecords).toBe(2);

    const fresh = gateway(gwB, docId, "fresh");
    const shown: unknown[] = [];
    fresh.doc.subscribe(
      (s) => s.routes,
      (routes) => shown.push(routes.api, routes.api2),
    );
    const hidden: (readonly (readonly string[])[])[] = [];
    fresh.replica.on("hidden", (e) => {
      if (e.snapshot !== undefined) hidden.push(e.snapshot.paths);
    });
    const pulls: boolean[] = [];
    fresh.replica.on("resync", (e) => pulls.push(e.snapshot));
    await fresh.replica.start();
    await waitFor(() => stableJson(fresh.doc.version()) === stableJson(a.doc.version()), {
      description: "the fresh replica bootstrapped",
    });
    expect(pulls[0]).toBe(true);
    expect(fresh.doc.get()).toEqual({ routes: { web: "10.0.1.3:80" } });
    expect(shown.filter((v) => v !== undefined)).toEqual([]);
    expect(hidden).toEqual([
      [
        ["routes", "api"],
        ["routes", "api2"],
      ],
    ]);
    expect(fresh.doc.hidden().map((h) => h.path.join("."))).toEqual(["routes.api", "routes.api2"]);

    // The path is not silenced: an honest write of a valid value shows on the fresh replica.
    a.doc.set(["routes", "api"], "10.0.2.1:8080");
    await a.replica.flush();
    await waitFor(() => fresh.doc.get().routes.api === "10.0.2.1:8080", {
      description: "the honest route reached the fresh replica",
    });
    expect(fresh.doc.hidden().map((h) => h.path.join("."))).toEqual(["routes.api2"]);
  });
});
