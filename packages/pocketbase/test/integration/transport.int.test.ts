import {
  type Change,
  createDoc,
  createReplica,
  type DocId,
  encodeHlc,
  type RejectedChange,
  type Transport,
  type TransportListener,
} from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { runTransportConformance } from "@nxs-sync/testing/conformance";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  Collections,
  createPocketBaseClient,
  createPocketBaseTransport,
  encodeChangeRecord,
  ensureSchema,
  NodeRole,
  type PocketBaseTransport,
  type QuarantineEvent,
} from "../../src/index.js";
import { makeNode, provision, rawChangeRecord, recordId } from "./helpers.js";

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const gw = makeNode("gw");
const other = makeNode("gw-other");
/**
 * The conformance suite writes fixed origins (`conf-a`, `conf-b`): only a replicator may, naming
 * an existing node as author (`gw`; auth record ids are unique across auth collections, so a
 * replicator account is never a node itself).
 */
const fixture = makeNode("conformance", NodeRole.Replicator);

beforeAll(async () => {
  server = await servers.start({ name: "transport", batch: false });
  await ensureSchema(server.client());
  await provision(server, [gw, other, fixture]);
});

let open: Transport[] = [];
afterEach(async () => {
  for (const t of open) await t.close();
  open = [];
});

function transport(
  docId: string,
  extra: Partial<Parameters<typeof createPocketBaseTransport>[0]> = {},
): PocketBaseTransport {
  const t = createPocketBaseTransport({ endpoints: [server.url], auth: gw.auth, docId, ...extra });
  open.push(t);
  return t;
}

const change = (doc: string, origin: string, seq: number, value: unknown = seq): Change =>
  ({
    doc,
    origin,
    seq,
    hlc: encodeHlc({ ms: 1_700_000_000_000 + seq, counter: 0, node: origin }),
    ops: [{ kind: "set", path: ["k", String(seq)], value }],
  }) as unknown as Change;

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function pullAll(t: Transport, since = {}): Promise<Change[]> {
  const out: Change[] = [];
  for await (const p of t.pull(since)) out.push(...p.changes);
  return out;
}

function collector(): TransportListener & { changes: Change[]; resyncs: number; errors: Error[] } {
  const c = {
    changes: [] as Change[],
    resyncs: 0,
    errors: [] as Error[],
    onChanges: (cs: readonly Change[]) => c.changes.push(...cs),
    onResync: () => c.resyncs++,
    onError: (e: Error) => c.errors.push(e),
  };
  return c;
}

runTransportConformance("PocketBase", () => {
  const docId = `conf-${recordId()}` as DocId;
  return {
    docId,
    otherDocId: `${docId}-other` as DocId,
    // At most 2 packs of 2 changes per page.
    pageSize: 4,
    maxSettleRounds: 400,
    open: (id?: DocId) =>
      createPocketBaseTransport({
        endpoints: [server.url],
        auth: fixture.auth,
        author: gw.id,
        docId: id ?? docId,
        pageSize: 2,
        packSize: 2,
        decode: { requireBoundOrigin: false },
      }),
    settle: () => new Promise<void>((r) => setTimeout(r, 25)),
    reconnect: async () => {
      await server.restart();
    },
  };
});

describe("PocketBaseTransport", () => {
  it("pushes packs through /api/batch; a push mixing committed and new changes acks all of them", async () => {
    const doc = `d-${recordId()}`;
    const t = transport(doc, { batchSize: 7 });
    await t.connect();
    const all = range(1, 30).map((s) => change(doc, gw.id, s));
    // Ten packs of one change (every third seq), in two batch requests.
    expect(await t.push(all.filter((c) => c.seq % 3 === 0))).toEqual({ acked: 10 });
    // One pack 1..30 (it overlaps the ten), then the same pack again (a duplicate key).
    expect(await t.push(all)).toEqual({ acked: 30 });
    expect(await t.push(all)).toEqual({ acked: 30 });
    // A push cut differently from what the server holds at its first seq (an earlier push whose
    // answer was lost, packed with fewer changes): the covered part counts, the rest is committed.
    const more = range(31, 40).map((s) => change(doc, gw.id, s));
    expect(await t.push(more.slice(0, 4))).toEqual({ acked: 4 });
    expect(await t.push(more)).toEqual({ acked: 10 });
    // Pull hands every change out once, in seq order, overlaps included.
    const pulled = await pullAll(t);
    expect(pulled.map((c) => c.seq)).toEqual(range(1, 40));
    expect(pulled[4]).toEqual(all[4]);
    const raw = createPocketBaseClient({ url: server.url, auth: gw.auth });
    const packs = await raw.call("list", (pb) =>
      pb.collection(Collections.Changes).getFullList({
        filter: pb.filter("doc = {:doc}", { doc }),
        sort: "seq",
        fields: "seq,last",
      }),
    );
    raw.close();
    expect(packs.filter((p) => p.seq >= 31).map((p) => [p.seq, p.last])).toEqual([
      [31, 34],
      [35, 40],
    ]);
  });

  it("a duplicate inside an /api/batch request: the covered pack counts, the rest is committed", async () => {
    const doc = `d-${recordId()}`;
    const t = transport(doc);
    await t.connect();
    const o1 = `${gw.id}.one`;
    const o2 = `${gw.id}.two`;
    expect(await t.push([change(doc, o1, 1), change(doc, o1, 2)])).toEqual({ acked: 2 });
    // Two packs in one batch, the second a duplicate key: the transaction rolls back, the transport
    // finds 1..2 of o1 covered and commits o2's pack alone.
    expect(await t.push([change(doc, o2, 1), change(doc, o1, 1), change(doc, o1, 2)])).toEqual({ acked: 3 });
    expect((await pullAll(t)).map((c) => `${c.origin.slice(-3)}/${c.seq}`)).toEqual([
      "one/1",
      "one/2",
      "two/1",
    ]);
  });

  it("a quarantined pack hides nothing after it in a pull (paging is by first seq)", async () => {
    const doc = `d-${recordId()}`;
    const raw = createPocketBaseClient({ url: server.url, auth: other.auth });
    const put = (body: Record<string, unknown>) =>
      raw.call("create", (pb) => pb.collection(Collections.Changes).create(body));
    await put(
      encodeChangeRecord(
        range(1, 3).map((s) => change(doc, other.id, s)),
        other.id,
      ),
    );
    // Claims 2..50 but holds one change: quarantined.
    await put(rawChangeRecord({ doc, origin: other.id, seq: 2, node: other.id }, { last: 50 }));
    await put(
      encodeChangeRecord(
        range(4, 50).map((s) => change(doc, other.id, s)),
        other.id,
      ),
    );
    raw.close();
    const t = transport(doc, { pageSize: 2 });
    const quarantined: QuarantineEvent[] = [];
    t.on("quarantine", (q) => quarantined.push(q));
    expect((await pullAll(t)).map((c) => c.seq)).toEqual(range(1, 50));
    expect(quarantined).toHaveLength(1);
  });

  it("does not hand a transport's own pushes back to its subscribers; another transport gets them", async () => {
    const doc = `d-${recordId()}`;
    const writer = transport(doc);
    const reader = transport(doc);
    const own = collector();
    const other = collector();
    writer.subscribe(own);
    reader.subscribe(other);
    await Promise.all([writer.connect(), reader.connect()]);
    await waitFor(() => own.resyncs === 1 && other.resyncs === 1);
    // Each replica has its own origin (one sender per origin: that is what makes an echo recognisable).
    const w = `${gw.id}.w`;
    const r = `${gw.id}.r`;
    await writer.push(range(1, 3).map((s) => change(doc, w, s)));
    await reader.push([change(doc, r, 1)]);
    await waitFor(() => other.changes.length === 3 && own.changes.length === 1, {
      description: "the reader has the writer's changes, the writer only the reader's",
    });
    expect(own.changes.map((c) => `${c.origin}/${c.seq}`)).toEqual([`${r}/1`]);
    expect(other.changes.every((c) => c.origin === w)).toBe(true);
  });

  it("with `origin`, the server leaves that origin's records out of the realtime stream (pulls keep them)", async () => {
    const doc = `d-${recordId()}`;
    const w = `${gw.id}.w`;
    const r = `${gw.id}.r`;
    const writer = transport(doc, { origin: w });
    const stranger = transport(doc); // another process pushing for origin w (its earlier incarnation)
    const observer = transport(doc);
    const mine = collector();
    const seen = collector();
    writer.subscribe(mine);
    observer.subscribe(seen);
    await Promise.all([writer.connect(), stranger.connect(), observer.connect()]);
    await waitFor(() => mine.resyncs === 1 && seen.resyncs === 1);
    // Not in the writer's own pushes, so only the server-side filter keeps them from the writer.
    await stranger.push(range(10, 12).map((s) => change(doc, w, s)));
    await stranger.push([change(doc, r, 1)]);
    await stranger.push([change(doc, r, 2)]);
    await waitFor(() => seen.changes.length === 5 && mine.changes.length === 2, {
      description: "the observer has every change, the writer the other origin's",
    });
    expect(mine.changes.map((c) => `${c.origin}/${c.seq}`)).toEqual([`${r}/1`, `${r}/2`]);
    expect((await pullAll(writer)).filter((c) => c.origin === w).map((c) => c.seq)).toEqual([10, 11, 12]);
  });

  it("pulls many packs in pages, per origin in seq order, and from a version vector inside a pack", async () => {
    const doc = `d-${recordId()}`;
    const t = transport(doc, { packSize: 100, pageSize: 4 });
    await t.connect();
    const o1 = `${gw.id}.one`;
    const o2 = `${gw.id}.two`;
    await t.push(range(1, 1200).map((s) => change(doc, o1, s)));
    await t.push(range(1, 300).map((s) => change(doc, o2, s)));
    const pages: number[] = [];
    const got: Change[] = [];
    for await (const p of t.pull({})) {
      pages.push(p.changes.length);
      got.push(...p.changes);
    }
    expect(got.length).toBe(1500);
    // 15 packs of 100, 4 per page.
    expect(pages).toEqual([400, 400, 400, 300]);
    expect(got.filter((c) => c.origin === o1).map((c) => c.seq)).toEqual(range(1, 1200));
    const part = await pullAll(t, { [o1]: 1150, [o2]: 300 });
    expect(part.map((c) => c.seq)).toEqual(range(1151, 1200));
  });

  it("pulls with a version vector of hundreds of origins (the filter does not grow with the vector)", async () => {
    const doc = `d-${recordId()}`;
    const t = transport(doc, { pageSize: 50 });
    await t.connect();
    const origins = range(1, 300).map((i) => `${gw.id}.i${i}`);
    // One change per origin, then a second for every tenth one.
    await t.push(origins.map((o) => change(doc, o, 1)));
    const all = await pullAll(t);
    expect(all.length).toBe(300);
    const vv = Object.fromEntries(origins.map((o) => [o, 1]));
    const later = origins.filter((_, i) => i % 10 === 0);
    for (const o of later) await t.push([change(doc, o, 2)]);
    // A reader that has 300 origins pulls what it lacks (40+ origins used to make the filter too long).
    const tail = await pullAll(t, vv);
    expect(tail.map((c) => `${c.origin}/${c.seq}`).sort()).toEqual(later.map((o) => `${o}/2`).sort());
    expect(await pullAll(t, { ...vv, ...Object.fromEntries(later.map((o) => [o, 2])) })).toEqual([]);
  });

  it("retries a failed first connect until the server is up", async () => {
    const doc = `d-${recordId()}`;
    await server.stop();
    const t = transport(doc);
    const l = collector();
    t.subscribe(l);
    const connecting = t.connect();
    let settled = false;
    void connecting.finally(() => {
      settled = true;
    });
    await waitFor(() => t.status().state === "connecting");
    expect(settled).toBe(false);
    await server.restart();
    await connecting;
    await waitFor(() => l.resyncs >= 1);
    expect(await t.push([change(doc, gw.id, 1)])).toEqual({ acked: 1 });
  });

  it("fires onResync after the server restarts and delivers realtime changes again", async () => {
    const doc = `d-${recordId()}`;
    const writer = transport(doc);
    const reader = transport(doc);
    const l = collector();
    reader.subscribe(l);
    await reader.connect();
    await writer.connect();
    await waitFor(() => l.resyncs === 1);
    await server.restart();
    await waitFor(() => l.resyncs >= 2, { timeoutMs: 15_000, description: "resync after restart" });
    // Realtime is a hint: an event may fall between a drop and the resubscription (onResync then
    // makes the engine pull). Write new changes until one arrives in real time.
    let seq = 0;
    await waitFor(
      async () => {
        await writer.push([change(doc, gw.id, ++seq)]);
        return l.changes.length > 0;
      },
      { intervalMs: 300, description: "a realtime change after restart" },
    );
  });

  it("quarantines malformed records (forged origin, bad types, huge, bad hlc) and goes on", async () => {
    const doc = `d-${recordId()}`;
    const quarantined: QuarantineEvent[] = [];
    const t = transport(doc, { decode: { maxChangesBytes: 10_000 } });
    t.on("quarantine", (q) => quarantined.push(q));
    const l = collector();
    t.subscribe(l);
    await t.connect();
    await waitFor(() => l.resyncs === 1);
    const raw = createPocketBaseClient({ url: server.url, auth: other.auth });
    await raw.authenticate();
    const base = { doc, origin: other.id, node: other.id };
    const bad = [
      rawChangeRecord({ ...base, origin: `zz${other.id}`, seq: 1, ops: [] }), // contains the id but is not bound
      rawChangeRecord({ ...base, seq: 2 }, { changes: { g: "not runs" } }),
      rawChangeRecord({ ...base, seq: 3, ops: [{ kind: "set", path: ["a"], value: "x".repeat(20_000) }] }),
      rawChangeRecord({ ...base, seq: 4 }, { hlc: "not an hlc!" }),
      rawChangeRecord({ ...base, seq: 5, ops: [{ kind: "explode", path: ["a"] }] }),
      rawChangeRecord({ ...base, seq: 7 }, { last: 9 }), // the envelope claims three changes, holds one
    ];
    const ids: string[] = [];
    // A gateway cannot store the unbound origin (the server's pb_hooks bundle refuses it); a server
    // without the bundle or a superuser can: write that one as the superuser.
    const admin = server.client();
    for (const [i, b] of bad.entries()) {
      ids.push((await (i === 0 ? admin : raw.pb).collection(Collections.Changes).create(b)).id);
    }
    await raw.pb
      .collection(Collections.Changes)
      .create(rawChangeRecord({ ...base, seq: 6, ops: [{ kind: "set", path: ["ok"], value: 1 }] }));
    await waitFor(() => l.changes.some((c) => c.seq === 6), {
      description: "the good record after the bad ones",
    });
    await waitFor(() => quarantined.length >= bad.length);
    expect(new Set(quarantined.map((q) => q.recordId))).toEqual(new Set(ids));
    expect(quarantined.every((q) => q.error.code === "schema/invalid")).toBe(true);
    expect(l.changes.map((c) => c.seq)).toEqual([6]);
    // Pull skips them too (reported once only), and still returns the good one.
    const before = quarantined.length;
    expect((await pullAll(t)).map((c) => c.seq)).toEqual([6]);
    expect(quarantined.length).toBe(before);
    expect(l.errors.length).toBe(bad.length);
    // A new transport (fresh report memory) quarantines them on its first pull.
    const t2 = transport(doc, { decode: { maxChangesBytes: 10_000 } });
    const q2: QuarantineEvent[] = [];
    t2.on("quarantine", (q) => q2.push(q));
    expect((await pullAll(t2)).map((c) => c.seq)).toEqual([6]);
    expect(q2.length).toBe(bad.length);
  });

  it("detects a frozen server (paused: the SSE stays open, silent) by health polling and resyncs after resume", async () => {
    const doc = `d-${recordId()}`;
    const t = transport(doc, { failover: { healthIntervalMs: 200, healthTimeoutMs: 300 } });
    const l = collector();
    t.subscribe(l);
    const health: boolean[] = [];
    t.on("health", (h) => health.push(h.healthy));
    await t.connect();
    await waitFor(() => l.resyncs === 1);
    await server.pause();
    try {
      await waitFor(() => t.status().endpoints[0]?.healthy === false, {
        description: "the frozen server seen down",
      });
    } finally {
      await server.resume();
    }
    await waitFor(() => l.resyncs >= 2, { description: "a resync after the server came back" });
    expect(health).toEqual([false, true]);
    const writer = transport(doc);
    await writer.push([change(doc, gw.id, 1)]);
    await waitFor(() => l.changes.length === 1, { description: "realtime works after the resume" });
  });

  it("a change stamped far in the future passes the edge but core refuses it (hlc/drift); the rest applies", async () => {
    const doc = `d-${recordId()}`;
    const d = createDoc({
      schema: z.object({ a: z.number().optional(), b: z.number().optional() }),
      docId: doc,
      replicaId: `${gw.id}.r`,
      clock: Date.now,
      initial: {},
    });
    const replica = createReplica({
      doc: d,
      transport: transport(doc),
      storage: createMemoryStorage(),
      scheduler: createTimerScheduler(),
    });
    const rejected: RejectedChange[] = [];
    replica.on("rejected", (e) => rejected.push(...e.rejected));
    await replica.start();
    const raw = createPocketBaseClient({ url: server.url, auth: other.auth });
    const future = { ms: Date.now() + 24 * 3600_000, counter: 0, node: `${other.id}.x` };
    await raw.call("create", (pb) =>
      pb.collection(Collections.Changes).create(
        rawChangeRecord({
          doc,
          origin: `${other.id}.x`,
          seq: 1,
          hlc: encodeHlc(future),
          ops: [{ kind: "set", path: ["a"], value: 1 }],
          node: other.id,
        }),
      ),
    );
    await raw.call("create", (pb) =>
      pb.collection(Collections.Changes).create(
        rawChangeRecord({
          doc,
          origin: other.id,
          seq: 1,
          hlc: encodeHlc({ ms: Date.now(), counter: 0, node: other.id }),
          ops: [{ kind: "set", path: ["b"], value: 2 }],
          node: other.id,
        }),
      ),
    );
    await waitFor(() => d.get().b === 2, { description: "the valid change applied" });
    await waitFor(() => rejected.some((r) => r.error.code === "hlc/drift"), {
      description: "the future change refused",
    });
    expect(d.get().a).toBeUndefined();
    await replica.stop();
  });

  it("maps a wrong password to transport/unauthorized without retrying forever on push", async () => {
    const doc = `d-${recordId()}`;
    const t = transport(doc, { auth: { email: gw.email, password: "wrong-password-1" } });
    await expect(t.push([change(doc, gw.id, 1)])).rejects.toMatchObject({ code: "transport/unauthorized" });
  });

  it("rejects a change whose origin is not this node's with transport/rejected", async () => {
    const doc = `d-${recordId()}`;
    const t = transport(doc);
    await t.connect();
    const r = t.push([change(doc, other.id, 1)]);
    await expect(r).rejects.toMatchObject({ code: "transport/rejected", retryable: false });
    // A valid prefix is committed and acknowledged; the bad change stops the ack there.
    const ack = await t.push([change(doc, gw.id, 1), change(doc, other.id, 1), change(doc, gw.id, 2)]);
    expect(ack).toEqual({ acked: 1 });
  });

  it("a gateway cannot name another node as author: transport/rejected", async () => {
    const doc = `d-${recordId()}`;
    // Origin bound to the other node too, so only the author binding is at stake.
    const t = transport(doc, { author: other.id });
    await t.connect();
    await expect(t.push([change(doc, other.id, 1)])).rejects.toMatchObject({
      code: "transport/rejected",
      retryable: false,
    });
    expect(await t.push([change(doc, gw.id, 1)]).catch((e: { code?: string }) => e.code)).toBe(
      "transport/rejected",
    );
  });
});
