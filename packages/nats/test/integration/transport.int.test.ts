import { randomBytes } from "node:crypto";
import { type Change, type DocId, encodeHlc, silentLogger as quiet, type Transport } from "@nxs-sync/core";
import { findFreePort, type NatsServer, startNatsServer, startTcpProxy } from "@nxs-sync/testing";
import { runTransportConformance } from "@nxs-sync/testing/conformance";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  changeSubject,
  createNatsTransport,
  type NatsTransport,
  type NatsTransportOptions,
} from "../../src/index.js";

let server: NatsServer;
beforeAll(async () => {
  server = await startNatsServer({ name: "transport" });
});
afterAll(async () => {
  await server?.destroy();
});

const uid = () => randomBytes(4).toString("hex");

runTransportConformance("NATS JetStream", () => {
  // A doc id with characters a subject token cannot hold: the encoding is part of what is tested.
  const docId = `conf.${uid()}:x` as DocId;
  return {
    docId,
    otherDocId: `${docId}-other` as DocId,
    // Packs of 2 changes, pages of at most 4 changes.
    pageSize: 4,
    maxSettleRounds: 400,
    open: (id?: DocId) =>
      createNatsTransport({
        servers: server.url,
        docId: id ?? docId,
        packSize: 2,
        pageSize: 4,
        logger: quiet,
      }),
    settle: () => new Promise<void>((r) => setTimeout(r, 25)),
    reconnect: async () => {
      await server.restart();
    },
  };
});

const change = (doc: string, origin: string, seq: number): Change =>
  ({
    doc,
    origin,
    seq,
    hlc: encodeHlc({ ms: 1_700_000_000_000 + seq, counter: 0, node: origin }),
    ops: [{ kind: "set", path: ["k", String(seq)], value: seq }],
  }) as unknown as Change;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function pullAll(t: Transport, since = {}): Promise<Change[]> {
  const out: Change[] = [];
  for await (const p of t.pull(since)) out.push(...p.changes);
  return out;
}

describe("NatsTransport", () => {
  let open: Transport[] = [];
  const transport = (docId: string, extra: Partial<NatsTransportOptions> = {}): NatsTransport => {
    const t = createNatsTransport({ servers: server.url, docId, logger: quiet, ...extra });
    open.push(t);
    return t;
  };
  afterEach(async () => {
    for (const t of open) await t.close();
    open = [];
  });

  it("stores a retried pack once: the same cut carries the same Nats-Msg-Id", async () => {
    const doc = `d-${uid()}`;
    const t = transport(doc, { packSize: 5 });
    await t.connect();
    const all = range(1, 10).map((s) => change(doc, "gw-a", s));
    expect((await t.push(all)).acked).toBe(10);
    // The same changes again (a lost answer): the server drops both packs as duplicates.
    expect((await t.push(all)).acked).toBe(10);
    const jsm = await import("@nats-io/jetstream").then(async (m) => {
      const { connect } = await import("@nats-io/transport-node");
      const nc = await connect({ servers: server.url });
      return { nc, jsm: await m.jetstreamManager(nc) };
    });
    const info = await jsm.jsm.streams.info(t.names.changesStream, {
      subjects_filter: `nxs.changes.d-${doc.slice(2)}.>`,
    });
    const stored = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
    await jsm.nc.close();
    expect(stored).toBe(2);
    expect((await pullAll(t)).map((c) => c.seq)).toEqual(range(1, 10));
  });

  it("tells the highest seq the stream holds of an origin (a replica restarted on empty storage)", async () => {
    const doc = `d-${uid()}`;
    const t = transport(doc, { packSize: 3 });
    await t.connect();
    expect((await t.highWater?.("gw-a"))?.seq).toBe(0);
    await t.push(range(1, 7).map((s) => change(doc, "gw-a", s)));
    expect((await t.highWater?.("gw-a"))?.seq).toBe(7);
  });

  it("reports a healthy single server, and the stream's leader", async () => {
    const t = transport(`d-${uid()}`);
    await t.connect();
    const s = t.status();
    expect(s.state).toBe("connected");
    expect(s.health).toBe("ok");
    expect(s.degraded).toBe(false);
    expect(s.streamLeader).toBe("transport");
  });

  it("drops its own echo in realtime and delivers another origin's packs", async () => {
    const doc = `d-${uid()}`;
    const a = transport(doc, { origin: "gw-a" });
    const b = transport(doc, { origin: "gw-b" });
    const seenByA: string[] = [];
    a.subscribe({ onChanges: (cs) => seenByA.push(...cs.map((c) => `${c.origin}:${c.seq}`)), onResync() {} });
    await a.connect();
    await b.connect();
    await a.push([change(doc, "gw-a", 1)]);
    await b.push([change(doc, "gw-b", 1)]);
    for (let i = 0; i < 400 && !seenByA.includes("gw-b:1"); i++) await new Promise((r) => setTimeout(r, 10));
    expect(seenByA).toEqual(["gw-b:1"]);
  });

  it("re-pushes after a reconnect what the stream lost of its recent acknowledged packs", async () => {
    const doc = `d-${uid()}`;
    const t = transport(doc, { origin: "gw-a", packSize: 2 });
    const rePushed: number[] = [];
    t.on("re-push", (e) => rePushed.push(e.changes));
    let resyncs = 0;
    t.subscribe({ onChanges() {}, onResync: () => resyncs++ });
    await t.connect();
    await t.push(range(1, 6).map((s) => change(doc, "gw-a", s)));
    // The stream loses the last two packs (as a node restored from an older backup would).
    const { connect } = await import("@nats-io/transport-node");
    const { jetstreamManager } = await import("@nats-io/jetstream");
    const nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    const subject = changeSubject(t.names, doc, "gw-a");
    const first = await jsm.direct.getMessage(t.names.changesStream, { next_by_subj: subject, seq: 1 });
    // The three packs are consecutive in the stream (the tests of this file run one at a time).
    for (const seq of [(first?.seq ?? 0) + 1, (first?.seq ?? 0) + 2]) {
      await jsm.streams.deleteMessage(t.names.changesStream, seq);
    }
    await nc.close();
    expect((await t.highWater?.("gw-a"))?.seq).toBe(2);
    const before = resyncs;
    await server.restart();
    // The re-push event comes once the stream acknowledged it (a resync may come earlier: the
    // ordered consumer is recreated after the restart too).
    for (let i = 0; i < 400 && rePushed.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(resyncs).toBeGreaterThan(before);
    expect(rePushed).toEqual([4]);
    expect((await pullAll(t)).map((c) => c.seq)).toEqual(range(1, 6));
  });

  it("re-pushes a lost pack whose id the stream still remembers, after a reconnect without a restart", async () => {
    const doc = `d-${uid()}`;
    const proxy = await startTcpProxy(server.url.replace("nats://", "http://"));
    const t = transport(doc, { origin: "gw-a", servers: proxy.url.replace("http://", "nats://") });
    const rePushed: number[] = [];
    t.on("re-push", (e) => rePushed.push(e.changes));
    await t.connect();
    await t.push([change(doc, "gw-a", 1)]);
    const { connect } = await import("@nats-io/transport-node");
    const { jetstreamManager } = await import("@nats-io/jetstream");
    const nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    const stored = await jsm.direct.getMessage(t.names.changesStream, {
      next_by_subj: changeSubject(t.names, doc, "gw-a"),
      seq: 1,
    });
    await jsm.streams.deleteMessage(t.names.changesStream, stored?.seq ?? 0);
    await nc.close();
    proxy.cut("reset");
    proxy.heal();
    for (let i = 0; i < 400 && rePushed.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(rePushed).toEqual([1]);
    expect((await pullAll(t)).map((c) => c.seq)).toEqual([1]);
    await t.close();
    await proxy.close();
  });

  it("resumes a pull after the last one's stream position only when the version vector allows it", async () => {
    const doc = `d-${uid()}`;
    const t = transport(doc, { packSize: 2 });
    await t.connect();
    await t.push(range(1, 4).map((s) => change(doc, "gw-a", s)));
    expect((await pullAll(t)).map((c) => c.seq)).toEqual(range(1, 4));
    await t.push(range(5, 6).map((s) => change(doc, "gw-a", s)));
    await t.push([change(doc, "gw-b", 1)]);
    // Covers what the first pull read: only the new packs are read (and returned).
    expect((await pullAll(t, { "gw-a": 4 })).map((c) => `${c.origin}:${c.seq}`)).toEqual([
      "gw-a:5",
      "gw-a:6",
      "gw-b:1",
    ]);
    // Lacks part of it: everything it lacks, from the start of the stream.
    expect((await pullAll(t, { "gw-a": 1 })).map((c) => c.seq)).toEqual([2, 3, 4, 5, 6, 1]);
    expect((await pullAll(t, {})).length).toBe(7);
  });

  it("pulls each origin in seq order when packs were stored out of order (a retried pack lands later)", async () => {
    const doc = `d-${uid()}`;
    const t = transport(doc, { packSize: 2, pageSize: 3 });
    await t.connect();
    await t.push(range(5, 6).map((s) => change(doc, "gw-a", s)));
    await t.push(range(3, 4).map((s) => change(doc, "gw-a", s)));
    await t.push([change(doc, "gw-b", 1)]);
    await t.push(range(1, 2).map((s) => change(doc, "gw-a", s)));
    const pages = [];
    for await (const p of t.pull({})) pages.push(p.changes.map((c) => `${c.origin}:${c.seq}`));
    expect(pages.flat().filter((k) => k.startsWith("gw-a"))).toEqual(range(1, 6).map((s) => `gw-a:${s}`));
    expect(pages.flat()).toContain("gw-b:1");
    for (const p of pages) expect(p.length).toBeLessThanOrEqual(3);
    // A caller that has 1..2 already gets 3..6, in order, although 3..4 and 5..6 came first.
    expect((await pullAll(t, { "gw-a": 2, "gw-b": 1 })).map((c) => c.seq)).toEqual([3, 4, 5, 6]);
  });

  it("uses streams and the bucket as their creator made them (other replicas or window settings connect too)", async () => {
    const first = transport(`d-${uid()}`, { prefix: "other", replicas: 1 });
    await first.connect();
    const second = transport(`d-${uid()}`, { prefix: "other", replicas: 3, duplicateWindowMs: 5000 });
    await second.connect();
    expect(second.status().state).toBe("connected");
  });

  it("retries a first connect until close(), which ends it with the code `closed`", async () => {
    const t = transport(`d-${uid()}`, { servers: `nats://127.0.0.1:${await findFreePort()}` });
    const connecting = t.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(t.status().state).toBe("connecting");
    await t.close();
    expect(await connecting).toMatchObject({ code: "closed" });
  });
});
