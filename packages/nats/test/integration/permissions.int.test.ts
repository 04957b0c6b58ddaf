/**
 * Origin binding on NATS (issue 24, with the hardening of issue 14): a real nats-server whose
 * gateway users have `natsGatewayPermissions` and whose compactor has `natsCompactorPermissions`.
 * A gateway account writes and reads as its own origins; packs and acks as another origin,
 * snapshots, purges and stream changes are refused by the server and reported as
 * `transport/unauthorized`; the compactor compacts.
 */
import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { compactWithStore, createDoc, isNxsError, silentLogger, type Transport } from "@nxs-sync/core";
import { type NatsServer, startNatsServer } from "@nxs-sync/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  createNatsStabilityStore,
  createNatsTransport,
  type NatsStabilityStore,
  natsCompactorPermissions,
  natsGatewayPermissions,
  natsNames,
} from "../../src/index.js";

const users = {
  ops: randomBytes(12).toString("hex"),
  gwA: randomBytes(12).toString("hex"),
  gwB: randomBytes(12).toString("hex"),
  compactor: randomBytes(12).toString("hex"),
};

let server: NatsServer;
beforeAll(async () => {
  // JSON is valid nats-server configuration: the blocks go in as the functions return them.
  const authorization = {
    users: [
      { user: "ops", password: users.ops },
      { user: "gw-a", password: users.gwA, permissions: natsGatewayPermissions({ origins: ["a.main"] }) },
      { user: "gw-b", password: users.gwB, permissions: natsGatewayPermissions({ origins: ["b.main"] }) },
      { user: "compactor", password: users.compactor, permissions: natsCompactorPermissions() },
    ],
  };
  server = await startNatsServer({
    name: "permissions",
    extraConfig: `authorization: ${JSON.stringify(authorization)}`,
  });
  // The streams and the bucket are made by the operator, before any gateway starts.
  const ops = createNatsTransport({
    servers: server.url,
    docId: "setup",
    connectOptions: { user: "ops", pass: users.ops },
    logger: silentLogger,
  });
  await ops.connect();
  await ops.close();
});
afterAll(async () => {
  await server?.destroy();
});

let open: (Transport | NatsStabilityStore)[] = [];
afterEach(async () => {
  for (const t of open) await t.close().catch(() => undefined);
  open = [];
});

const schema = z.object({ kv: z.record(z.string(), z.number()) });
const makeDoc = (docId: string, replicaId: string) =>
  createDoc({ schema, docId, replicaId, clock: Date.now, initial: { kv: {} } });
const login = (user: keyof typeof users) => ({
  user: user === "gwA" ? "gw-a" : user === "gwB" ? "gw-b" : user,
  pass: users[user],
});

async function gateway(user: "gwA" | "gwB", docId: string, origin?: string) {
  const t = createNatsTransport({
    servers: server.url,
    docId,
    ...(origin === undefined ? {} : { origin }),
    connectOptions: login(user),
    pushTimeoutMs: 3000,
    requestTimeoutMs: 3000,
    logger: silentLogger,
  });
  open.push(t);
  await t.connect();
  return t;
}
function store(user: keyof typeof users) {
  const s = createNatsStabilityStore({ servers: server.url, connectOptions: login(user) });
  open.push(s);
  return s;
}
async function pullAll(t: Transport) {
  const out: string[] = [];
  for await (const p of t.pull({})) out.push(...p.changes.map((c) => `${c.origin}:${c.seq}`));
  return out.sort();
}
const unauthorized = (e: unknown) => isNxsError(e) && e.code === "transport/unauthorized";

describe("a gateway's NATS user is bound to its origins", () => {
  it("writes and reads as its own origin; another gateway reads it", async () => {
    const docId = `p.${randomBytes(4).toString("hex")}`;
    const a = makeDoc(docId, "a.main");
    const b = makeDoc(docId, "b.main");
    const ta = await gateway("gwA", docId, "a.main");
    const tb = await gateway("gwB", docId, "b.main");
    const fromA = [1, 2, 3].map((n) => a.set(["kv", `a${n}`], n)).filter((c) => c !== undefined);
    const fromB = [1, 2].map((n) => b.set(["kv", `b${n}`], n)).filter((c) => c !== undefined);
    expect(await ta.push(fromA)).toEqual({ acked: 3 });
    expect(await tb.push(fromB)).toEqual({ acked: 2 });
    expect(await pullAll(tb)).toEqual(["a.main:1", "a.main:2", "a.main:3", "b.main:1", "b.main:2"]);
    expect(await pullAll(ta)).toEqual(["a.main:1", "a.main:2", "a.main:3", "b.main:1", "b.main:2"]);
    // Acks under its own replica id.
    await store("gwA").writeAck(docId, { replica: "a.main", version: a.version(), at: Date.now() });
    expect((await store("gwB").readAcks(docId)).map((x) => x.replica)).toEqual(["a.main"]);
  });

  it("refuses packs as another origin, acks as another replica, snapshots, purges and stream changes", async () => {
    const docId = `p.${randomBytes(4).toString("hex")}`;
    const forged = makeDoc(docId, "b.main");
    const changes = [1, 2].map((n) => forged.set(["kv", `x${n}`], n)).filter((c) => c !== undefined);
    // gw-a's account pushing b.main's changes (a transport without an origin pushes as any).
    const ta = await gateway("gwA", docId);
    const push = await ta.push(changes).then(
      (r) => r,
      (e: unknown) => e,
    );
    expect(unauthorized(push), `push as another origin: ${String(push)}`).toBe(true);
    const sa = store("gwA");
    await expect(
      sa.writeAck(docId, { replica: "b.main", version: { "b.main": 99 }, at: Date.now() }),
    ).rejects.toSatisfy(unauthorized);
    await expect(sa.publishSnapshot(forged.snapshot())).rejects.toSatisfy(unauthorized);
    const lease = await sa.acquireLease(docId, "gw-a", 10_000).then(
      () => "taken",
      (e: unknown) => e,
    );
    expect(unauthorized(lease), `lease: ${String(lease)}`).toBe(true);
    // Straight at the JetStream API with gw-a's account: purge, delete, update.
    const nc = await connect({ servers: server.url, ...login("gwA") });
    try {
      const jsm = await jetstreamManager(nc);
      const names = natsNames();
      await expect(jsm.streams.purge(names.changesStream)).rejects.toThrow(/permission/i);
      await expect(jsm.streams.delete(names.snapshotsStream)).rejects.toThrow(/permission/i);
      await expect(jsm.streams.update(names.changesStream, { max_age: 1 })).rejects.toThrow(/permission/i);
    } finally {
      await nc.close();
    }
    // Nothing of b.main reached the stream.
    const tb = await gateway("gwB", docId, "b.main");
    expect(await pullAll(tb)).toEqual([]);
  });

  it("the compactor's user compacts: a snapshot, the lease and a purge below every ack", async () => {
    const docId = `p.${randomBytes(4).toString("hex")}`;
    const a = makeDoc(docId, "a.main");
    const ta = await gateway("gwA", docId, "a.main");
    const fromA = [1, 2, 3, 4].map((n) => a.set(["kv", `a${n}`], n)).filter((c) => c !== undefined);
    for (const c of fromA) await ta.push([c]);
    await store("gwA").writeAck(docId, { replica: "a.main", version: a.version(), at: Date.now() });
    const r = await compactWithStore({
      store: store("compactor"),
      doc: docId,
      holder: "compactor-1",
      now: Date.now(),
      snapshot: a.snapshot(),
    });
    expect(r).toMatchObject({ bound: { "a.main": 4 }, deleted: 4 });
    const pages = [];
    for await (const p of (await gateway("gwB", docId, "b.main")).pull({})) pages.push(p);
    expect(pages[0]?.snapshot?.version).toEqual({ "a.main": 4 });
  });
});
