import {
  createDoc,
  createReplica,
  type Doc,
  openReplica,
  type RejectedChange,
  type Replica,
  type ReplicatedDoc,
} from "@nxs-sync/core";
import { createMemoryStorage, type MemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createPocketBaseTransport, ensureSchema } from "../../src/index.js";
import { makeNode, provision, recordId, stableJson } from "./helpers.js";

/**
 * A rolling schema upgrade on a real server (docs/core.md and docs/engine.md, "Schema upgrades"):
 * a gateway on the new schema writes values the old one refuses; the old one applies and hides
 * them, keeps up with every later change of that writer (no gaps, no lag), and shows everything
 * once it restarts on the new schema from its own storage.
 */

const v1 = z.object({
  routes: z.record(z.string(), z.object({ host: z.string(), mode: z.enum(["http", "https"]) })),
  level: z.enum(["low", "high"]),
});
const v2 = z.object({
  routes: z.record(
    z.string(),
    z.object({ host: z.string(), mode: z.enum(["http", "https", "h2"]), region: z.string().optional() }),
  ),
  level: z.enum(["low", "high", "max"]),
  owner: z.string().optional(),
});
type V1 = z.output<typeof v1>;
type V2 = z.output<typeof v2>;
const initial: V1 = { routes: {}, level: "low" };

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const oldNode = makeNode("gw-old");
const newNode = makeNode("gw-new");

beforeAll(async () => {
  server = await servers.start({ name: "schema-upgrade", batch: false });
  await ensureSchema(server.client());
  await provision(server, [oldNode, newNode]);
});

let running: Replica[] = [];
afterEach(async () => {
  for (const r of running) await r.stop().catch(() => undefined);
  running = [];
});

function gateway<D extends ReplicatedDoc>(node: typeof oldNode, doc: D, storage: MemoryStorage) {
  const replica = createReplica({
    doc,
    storage,
    transport: createPocketBaseTransport({ endpoints: [server.url], auth: node.auth, docId: doc.docId }),
    scheduler: createTimerScheduler(),
  });
  running.push(replica);
  const rejected: RejectedChange[] = [];
  replica.on("rejected", (e) => rejected.push(...e.rejected));
  return { replica, rejected };
}

const sameVersion = (a: ReplicatedDoc, b: ReplicatedDoc) =>
  stableJson(a.version()) === stableJson(b.version());

describe("rolling schema upgrade", () => {
  it("an old and a new gateway converge on what both accept; the old one catches up fully once upgraded", async () => {
    const docId = `d-${recordId()}`;
    const oldId = `${oldNode.id}.gw`;
    const oldDoc: Doc<V1> = createDoc({ schema: v1, docId, replicaId: oldId, clock: Date.now, initial });
    const oldStorage = createMemoryStorage();
    const old = gateway(oldNode, oldDoc, oldStorage);
    const newDoc: Doc<V2> = createDoc({
      schema: v2,
      docId,
      replicaId: `${newNode.id}.gw`,
      clock: Date.now,
      initial,
    });
    const neu = gateway(newNode, newDoc, createMemoryStorage());
    await Promise.all([old.replica.start(), neu.replica.start()]);

    // The new gateway writes what v1 refuses, then ordinary changes.
    newDoc.set(["routes", "edge"], { host: "10.0.0.1", mode: "h2", region: "eu" });
    newDoc.set(["level"], "max");
    newDoc.set(["owner"], "team-a");
    for (let i = 0; i < 10; i++) newDoc.set(["routes", `r${i}`], { host: `10.0.1.${i}`, mode: "http" });
    await neu.replica.flush();
    await waitFor(() => sameVersion(oldDoc, newDoc), { description: "the old gateway has every change" });
    expect(old.rejected).toEqual([]);
    expect(old.replica.status().gaps).toEqual({});
    expect(Object.values(old.replica.status().lag ?? {}).every((n) => n === 0)).toBe(true);
    expect(
      oldDoc
        .hidden()
        .map((h) => h.path.join("."))
        .sort(),
    ).toEqual(["level", "owner", "routes.edge", "routes.edge.region"]);
    expect(oldDoc.get().level).toBe("low");
    expect(oldDoc.get().routes.edge).toBeUndefined();
    expect(Object.keys(oldDoc.get().routes)).toHaveLength(10);

    // The old gateway writes on paths both accept; the new one gets them; later new changes still arrive.
    oldDoc.set(["routes", "r0", "host"], "10.0.9.9");
    oldDoc.set(["routes", "edge", "host"], "10.0.0.100"); // inside the route it hides: kept
    await old.replica.flush();
    newDoc.set(["routes", "late"], { host: "10.0.2.1", mode: "https" });
    await neu.replica.flush();
    await waitFor(() => sameVersion(oldDoc, newDoc), { description: "both have every change" });
    expect(newDoc.get().routes.r0?.host).toBe("10.0.9.9");
    expect(newDoc.get().routes.edge).toEqual({ host: "10.0.0.100", mode: "h2", region: "eu" });
    expect(oldDoc.get().routes.late).toEqual({ host: "10.0.2.1", mode: "https" });
    const accepted = (s: { routes: Record<string, unknown> }) =>
      stableJson(Object.fromEntries(Object.entries(s.routes).filter(([k]) => k !== "edge")));
    expect(accepted(oldDoc.get() as V1)).toBe(accepted(newDoc.get()));
    expect(neu.rejected).toEqual([]);

    // Upgrade: the old gateway stops and comes back on v2 from its own storage.
    await old.replica.stop();
    const upgraded = await openReplica({
      storage: oldStorage.reopen(),
      transport: createPocketBaseTransport({ endpoints: [server.url], auth: oldNode.auth, docId }),
      scheduler: createTimerScheduler(),
      createDoc: ({ snapshot, last }) =>
        createDoc({
          schema: v2,
          docId,
          replicaId: oldId,
          clock: Date.now,
          initial,
          ...(snapshot === undefined ? {} : { snapshot }),
          ...(last === undefined ? {} : { last }),
        }),
    });
    running.push(upgraded);
    // Everything it hid shows at once, from its own storage.
    expect(stableJson(upgraded.doc.get())).toBe(stableJson(newDoc.get()));
    expect((upgraded.doc as Doc<V2>).hidden()).toEqual([]);
    newDoc.set(["routes", "edge", "region"], "us");
    await neu.replica.flush();
    await waitFor(() => sameVersion(upgraded.doc, newDoc), { description: "the upgraded gateway caught up" });
    expect(stableJson(upgraded.doc.get())).toBe(stableJson(newDoc.get()));
    expect(stableJson(upgraded.doc.snapshot().state)).toBe(stableJson(newDoc.snapshot().state));
  });
});
