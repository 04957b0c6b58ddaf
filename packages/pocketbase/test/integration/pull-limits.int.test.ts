import {
  type Change,
  createDoc,
  createReplica,
  encodeHlc,
  openReplica,
  type Replica,
  type ReplicatedDoc,
  silentLogger,
} from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  Collections,
  createPocketBaseClient,
  createPocketBaseTransport,
  encodeSnapshotRecord,
  ensureSchema,
  MAX_CHANGES_BYTES,
  type PocketBaseTransport,
  type QuarantineEvent,
} from "../../src/index.js";
import { makeNode, quietGateway, rawChangeRecord, recordId, setUpServers, stableJson } from "./helpers.js";

// Issue 13, items 1 (reader side) and 3: pulls bounded in bytes, quarantined records fetched once,
// many origins, and snapshots believed only when the server's heads back their claims
// (SECURITY-AUDIT.md, findings 1, 4 and 5). Every attack is done with a gateway account's own
// credentials, except the forged snapshot: the hooks bundle refuses that from a gateway, so it is
// written as the superuser (a replicator account would bypass the hook the same way).

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const attacker = makeNode("gw-attacker");
const honest = makeNode("gw-honest");
const reader = makeNode("gw-reader");

beforeAll(async () => {
  server = await servers.start({ name: "pull-limits", batch: false });
  await setUpServers([server], [attacker, honest, reader]);
});

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const schema = z.object({ routes: z.record(z.string(), z.string()) });
type State = z.output<typeof schema>;

function gateway(
  node: typeof honest,
  docId: string,
  instance: string,
  transport: Parameters<typeof quietGateway>[0]["transport"] = {},
) {
  return quietGateway({
    node,
    docId,
    instance,
    endpoints: [server.url],
    schema,
    initial: { routes: {} },
    transport,
    cleanup: (fn) => cleanups.push(fn),
  });
}

/** What a transport read: its quarantine events and the record ids of every body fetch. */
function watch(t: PocketBaseTransport) {
  const seen = {
    quarantined: [] as QuarantineEvent[],
    fetches: [] as { ids: readonly string[]; bytes: number }[],
  };
  t.on("quarantine", (q) => seen.quarantined.push(q));
  t.on("pull-bodies", (f) => seen.fetches.push(f));
  return seen;
}

/** What {@link same} compares of a doc. */
type Readable = Pick<ReplicatedDoc, "version"> & { get(): unknown };
const same = (a: Readable, b: Readable) =>
  stableJson(a.get()) === stableJson(b.get()) && stableJson(a.version()) === stableJson(b.version());

/** Resolves after the replica's next pull. */
function nextPull(replica: Replica): Promise<{ snapshot: boolean }> {
  return new Promise((resolve) => {
    const off = replica.on("resync", (e) => {
      off();
      resolve({ snapshot: e.snapshot });
    });
  });
}

describe("pulls bounded in bytes", () => {
  it("junk packs near the size cap: a fresh gateway catches up and connects, fetching each junk body at most once (never when over its own limit)", async () => {
    const docId = `d-${recordId()}`;
    // The attack: with its own credentials, the attacker writes packs of nearly MAX_CHANGES_BYTES
    // each (the audit wrote 16 of 7.9 MB; 5 show the bound), well-formed JSON that fails decoding.
    const a = createPocketBaseClient({ url: server.url, auth: attacker.auth, requestTimeoutMs: 30_000 });
    cleanups.push(async () => a.close());
    const junk = "x".repeat(MAX_CHANGES_BYTES - 200 * 1024);
    const junkIds: string[] = [];
    for (let seq = 1; seq <= 5; seq++) {
      const body = rawChangeRecord(
        { doc: docId, origin: `${attacker.id}.junk`, seq, node: attacker.id },
        { changes: { g: junk } },
      );
      junkIds.push((await a.call("junk", (pb) => pb.collection(Collections.Changes).create(body))).id);
    }
    // And a small one, which comes inline with its page: `<` is stored escaped (`\u003c`, 6 bytes),
    // so its stored size, which every cap counts, is six times its length.
    const escaped = rawChangeRecord(
      { doc: docId, origin: `${attacker.id}.junk`, seq: 6, node: attacker.id },
      { changes: { g: "<".repeat(600) } },
    );
    junkIds.push((await a.call("junk", (pb) => pb.collection(Collections.Changes).create(escaped))).id);
    /** A fresh reader gateway, started and through its first pull, level with `writer`. */
    const catchUp = async (
      writer: Readable,
      instance: string,
      options: Parameters<typeof gateway>[3] = {},
    ) => {
      const gw = gateway(reader, docId, instance, options);
      const seen = watch(gw.transport);
      const pulled = nextPull(gw.replica);
      await gw.replica.start();
      await pulled;
      await waitFor(() => same(gw.doc, writer), {
        description: `${instance} caught up with the honest changes`,
      });
      return { gw, seen };
    };
    // The honest writer, after the junk.
    const b = gateway(honest, docId, "main");
    await b.replica.start();
    for (let i = 0; i < 30; i++) b.doc.set(["routes", `r${i}`], `10.0.0.${i}`);
    await b.replica.flush();

    // A fresh gateway with the default limits: catches up with the honest changes and is connected.
    const { gw: c, seen: cSeen } = await catchUp(b.doc, "fresh");
    expect(c.replica.status().connected).toBe(true);
    expect(new Set(cSeen.quarantined.map((q) => q.recordId))).toEqual(new Set(junkIds));
    // Bodies came in bounded fetches: within the 4 MiB budget, or one record alone.
    for (const f of cSeen.fetches) expect(f.bytes <= 4 * 1024 * 1024 || f.ids.length === 1).toBe(true);
    const large = junkIds.slice(0, 5);
    const fetchedJunk = () => cSeen.fetches.flatMap((f) => f.ids).filter((id) => large.includes(id));
    // The large ones were fetched once each (alone: each is over the budget); the small one came inline.
    expect(fetchedJunk().sort()).toEqual([...large].sort());
    // Later pulls skip them unread (counted by fetch events, not time); the honest writer goes on.
    for (let round = 0; round < 2; round++) {
      b.doc.set(["routes", `late${round}`], "10.0.1.1");
      await b.replica.flush();
      const pulled = nextPull(c.replica);
      c.replica.pull();
      await pulled;
      await waitFor(() => same(c.doc, b.doc), { description: "the fresh gateway has the later changes" });
    }
    expect(fetchedJunk()).toHaveLength(large.length);
    expect(cSeen.quarantined).toHaveLength(junkIds.length);

    // A gateway reading one record per page (each page's answer is capped by what it can weigh).
    const { seen: eSeen } = await catchUp(b.doc, "one-per-page", { pageSize: 1 });
    expect(new Set(eSeen.quarantined.map((q) => q.recordId))).toEqual(new Set(junkIds));

    // A gateway whose own limit for a pack is 1 MiB quarantines the large ones without fetching them.
    const { seen: dSeen } = await catchUp(b.doc, "strict", {
      decode: { maxChangesBytes: 1024 * 1024 },
    });
    expect(new Set(dSeen.quarantined.map((q) => q.recordId))).toEqual(new Set(junkIds));
    expect(dSeen.quarantined.every((q) => q.error.code === "schema/invalid")).toBe(true);
    expect(dSeen.fetches.flatMap((f) => f.ids).filter((id) => large.includes(id))).toEqual([]);
  }, 90_000);

  it("40+ origins written in one /api/batch by an attacker: a gateway that applied them restarts and still gets the attacker's later writes", async () => {
    const docId = `d-${recordId()}`;
    const a = createPocketBaseClient({ url: server.url, auth: attacker.auth });
    cleanups.push(async () => a.close());
    await a.authenticate();
    const write = async (origins: readonly string[], seq: number) => {
      const batch = a.pb.createBatch();
      for (const origin of origins) {
        batch
          .collection(Collections.Changes)
          .create(rawChangeRecord({ doc: docId, origin, seq, node: attacker.id, ops: [] }));
      }
      await batch.send({ requestKey: null });
    };
    const stored = createMemoryStorage();
    const transportB = () =>
      createPocketBaseTransport({
        endpoints: [server.url],
        auth: honest.auth,
        docId,
        origin: `${honest.id}.b`,
        logger: silentLogger,
      });
    const doc = createDoc({
      schema,
      docId,
      replicaId: `${honest.id}.b`,
      clock: Date.now,
      initial: { routes: {} },
    });
    const b = createReplica({
      doc,
      storage: stored,
      transport: transportB(),
      scheduler: createTimerScheduler(),
      logger: silentLogger,
    });
    await b.start();
    const origins = Array.from({ length: 45 }, (_, i) => `${attacker.id}.o${i}`);
    await write(origins, 1);
    await waitFor(() => origins.every((o) => doc.version()[o] === 1), {
      description: "B applied the attacker's 45 origins",
    });
    await b.stop();
    // While B is away, the attacker writes again; B comes back from its storage (45+ origins in its vector).
    await write([origins[7] as string], 2);
    const back = await openReplica({
      storage: stored.reopen(),
      transport: transportB(),
      scheduler: createTimerScheduler(),
      logger: silentLogger,
      createDoc: ({ snapshot, last }) =>
        createDoc({
          schema,
          docId,
          replicaId: `${honest.id}.b`,
          clock: Date.now,
          initial: { routes: {} },
          ...(snapshot === undefined ? {} : { snapshot }),
          ...(last === undefined ? {} : { last }),
        }),
    });
    cleanups.push(() => back.stop());
    const errors: Error[] = [];
    back.on("error", (e) => errors.push(e.error));
    await back.start();
    await waitFor(() => back.doc.version()[origins[7] as string] === 2, {
      description: "B, restarted, pulled the write made while it was away",
    });
    // And the attacker's later writes (realtime, and what any pull would find).
    await write([origins[8] as string, origins[44] as string], 2);
    await waitFor(
      () => back.doc.version()[origins[8] as string] === 2 && back.doc.version()[origins[44] as string] === 2,
      { description: "B got the later writes" },
    );
    expect(back.status().gaps).toEqual({});
    expect(errors.filter((e) => (e as { code?: string }).code === "transport/rejected")).toEqual([]);
  });
});

describe("snapshots believed only when the server backs their claims", () => {
  it("a forged snapshot (huge seq for B's origin) is adopted by no reader, fresh or existing; an honest one after compaction still is", async () => {
    const docId = `d-${recordId()}`;
    const b = gateway(honest, docId, "main");
    await b.replica.start();
    // Several packs of B's changes (at least one per flush).
    for (let pack = 0; pack < 4; pack++) {
      for (let i = 0; i < 5; i++) b.doc.set(["routes", `r${pack}-${i}`], `10.0.${pack}.${i}`);
      await b.replica.flush();
    }
    const origin = `${honest.id}.main`;
    expect(b.doc.version()[origin]).toBe(20);
    const existing = gateway(reader, docId, "existing");
    const existingSeen = watch(existing.transport);
    await existing.replica.start();
    await waitFor(() => same(existing.doc, b.doc), { description: "the existing reader caught up" });

    // B publishes an honest snapshot; compaction deletes B's packs but its newest (as the compactor
    // does), here as the superuser.
    const bc = createPocketBaseClient({ url: server.url, auth: honest.auth });
    cleanups.push(async () => bc.close());
    await bc.authenticate();
    const honestSnapshot = b.doc.snapshot();
    await bc.pb.collection(Collections.Snapshots).create(encodeSnapshotRecord(honestSnapshot, honest.id));
    const admin = server.client();
    const packs = await admin
      .collection(Collections.Changes)
      .getFullList({ filter: `doc = "${docId}"`, sort: "-seq" });
    expect(packs.length).toBeGreaterThan(1);
    for (const p of packs.slice(1)) await admin.collection(Collections.Changes).delete(p.id);
    await new Promise((r) => setTimeout(r, 20)); // a later `created` for the forged one

    // The attack: a snapshot that claims B's origin up to 1,000,000 and an origin with no changes,
    // state rewritten. Written as the superuser: the hooks bundle refuses it from a gateway.
    const evil = createDoc({
      schema,
      docId,
      replicaId: `${attacker.id}.evil`,
      clock: Date.now,
      initial: { routes: {} },
    });
    evil.set(["routes", "r0-0"], "6.6.6.6:666");
    const forged = { ...evil.snapshot(), version: { ...evil.version(), [origin]: 1_000_000 } };
    const forgedId = (
      await admin.collection(Collections.Snapshots).create(encodeSnapshotRecord(forged, attacker.id))
    ).id;

    // B writes on; a fresh reader takes the honest snapshot (the forged one is newer) and B's tail.
    b.doc.set(["routes", "after"], "10.0.9.9");
    await b.replica.flush();
    const fresh = gateway(reader, docId, "fresh");
    const freshSeen = watch(fresh.transport);
    let adopted: boolean | undefined;
    fresh.replica.on("resync", (e) => {
      adopted ??= e.snapshot;
    });
    await fresh.replica.start();
    await waitFor(() => same(fresh.doc, b.doc), { description: "the fresh reader has B's genuine state" });
    expect(adopted).toBe(true);
    const unbacked = freshSeen.quarantined.filter((q) => q.recordId === forgedId);
    expect(unbacked).toHaveLength(1);
    expect(unbacked[0]?.error.code).toBe("snapshot/unbacked");

    // The existing reader pulls (twice): it does not adopt it either, and reports it once.
    for (let round = 0; round < 2; round++) {
      const pulled = nextPull(existing.replica);
      existing.replica.pull();
      expect((await pulled).snapshot).toBe(false);
    }
    expect(existingSeen.quarantined.filter((q) => q.recordId === forgedId)).toHaveLength(1);
    expect(existingSeen.quarantined[0]?.error.code).toBe("snapshot/unbacked");

    // B's later writes still reach both; nobody holds the forged route or version.
    b.doc.set(["routes", "later"], "10.0.9.10");
    await b.replica.flush();
    for (const r of [existing, fresh]) {
      await waitFor(() => same(r.doc, b.doc), { description: "B's later write arrived" });
      expect(r.doc.version()[origin]).toBe(22);
      expect((r.doc.get() as State).routes["r0-0"]).toBe("10.0.0.0");
      expect(r.doc.version()[`${attacker.id}.evil`]).toBeUndefined();
    }
  });
});

describe("schema 3", () => {
  it("a server on schema 2 (no pull views) is refused with the fix; ensureSchema upgrades it and pulls work", async () => {
    const old = await servers.start({ name: "pull-limits-schema2", batch: false });
    const gw = makeNode("gw-upgrade");
    await setUpServers([old], [gw]);
    const admin = old.client();
    // Schema 2 as it was: the collections without the two views schema 3 adds.
    for (const view of [Collections.ChangeSizes, Collections.SnapshotVersions])
      await admin.collections.delete(view);
    const docId = `d-${recordId()}`;
    const open = () =>
      createPocketBaseTransport({ endpoints: [old.url], auth: gw.auth, docId, logger: silentLogger });
    const before = open();
    cleanups.push(() => before.close());
    const refused = await before.connect().then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string },
    );
    expect(refused?.code).toBe("server/incompatible");
    expect(refused?.message).toMatch(/collections are missing.*ensureSchema/);

    expect((await ensureSchema(admin)).created).toEqual([
      Collections.ChangeSizes,
      Collections.SnapshotVersions,
    ]);
    const after = open();
    cleanups.push(() => after.close());
    await after.connect();
    const origin = `${gw.id}.w`;
    const hlc = (seq: number) => encodeHlc({ ms: 1_700_000_000_000 + seq, counter: 0, node: origin });
    const changes = [1, 2].map(
      (seq) =>
        ({
          doc: docId,
          origin,
          seq,
          hlc: hlc(seq),
          ops: [{ kind: "set", path: ["routes", `r${seq}`], value: "x" }],
        }) as unknown as Change,
    );
    expect((await after.push(changes)).acked).toBe(2);
    const pulled: Change[] = [];
    for await (const page of after.pull({})) pulled.push(...page.changes);
    expect(pulled.map((c) => c.seq)).toEqual([1, 2]);
  });
});
