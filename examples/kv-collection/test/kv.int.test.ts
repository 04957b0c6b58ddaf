import { randomBytes } from "node:crypto";
import { isNxsError, silentLogger } from "@nxs-sync/core";
import { createReplicator, ensureNode, ensureSchema, NodeRole, type Replicator } from "@nxs-sync/pocketbase";
import { type ProcessPocketBase, startTcpProxy, type TcpProxy, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  createKvStore,
  KV_COLLECTION,
  KvErrorCode,
  type KvEvent,
  type KvStore,
  kvRegistry,
} from "../src/kv.js";

/**
 * The kv example on two real servers: writers on both, the link between a writer and its primary
 * cut and that primary killed; the store fails over and goes on; after restart and heal both
 * servers converge, deletes stay deleted (tombstones), and a watcher cut off meanwhile catches up.
 */

const servers = usePocketBaseServers();
const id = () => [...randomBytes(15)].map((x) => "abcdefghijklmnopqrstuvwxyz0123456789"[x % 36]).join("");
const account = (role: NodeRole) => {
  const n = id();
  return { id: n, email: `${n}@kv.test`, password: `pw-${n}-secret`, role };
};
const writerA = account(NodeRole.Gateway);
const writerB = account(NodeRole.Gateway);
const repl = account(NodeRole.Replicator);
const auth = (n: typeof writerA) => ({ email: n.email, password: n.password });
const failover = { failureThreshold: 1, downAfterMs: 300, healthIntervalMs: 200, healthTimeoutMs: 300 };

let a: ProcessPocketBase;
let b: ProcessPocketBase;
let replicator: Replicator;
const proxies: TcpProxy[] = [];
const stores: KvStore[] = [];

beforeAll(async () => {
  [a, b] = (await Promise.all([servers.start({ name: "kv-a" }), servers.start({ name: "kv-b" })])) as [
    ProcessPocketBase,
    ProcessPocketBase,
  ];
  for (const s of [a, b]) {
    await ensureSchema(s.client(), { collections: kvRegistry(), rateLimits: false });
    for (const n of [writerA, writerB, repl]) await ensureNode(s.client(), n);
  }
  replicator = createReplicator({
    servers: [a, b].map((s) => ({ url: s.url, auth: { email: repl.email, password: repl.password } })),
    collections: kvRegistry(),
    intervalMs: 1000,
    logger: silentLogger,
  });
  await replicator.start();
});

afterAll(async () => {
  for (const s of stores) s.close();
  await replicator?.stop();
  for (const p of proxies) await p.close();
});

const proxy = async (url: string) => {
  const p = await startTcpProxy(url);
  proxies.push(p);
  return p;
};
const store = (endpoints: string[], who: typeof writerA) => {
  const s = createKvStore({ endpoints, auth: auth(who), failover, logger: silentLogger });
  stores.push(s);
  return s;
};
/** What a server holds, by key (superuser read). */
const held = async (s: ProcessPocketBase) =>
  Object.fromEntries(
    (await s.client().collection(KV_COLLECTION).getFullList({ sort: "key" })).map((r) => [
      r.key,
      { value: r.value, hlc: r.hlc, deleted: r.deleted },
    ]),
  );
const converged = async () => {
  const [x, y] = [await held(a), await held(b)];
  return JSON.stringify(x) === JSON.stringify(y) ? x : undefined;
};
const code = (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e: unknown) => (isNxsError(e) ? e.code : String(e)),
  );

it("fails over on a cut link and a killed primary, converges after heal, keeps deletes, and a watcher catches up", async () => {
  const linkA = await proxy(a.url);
  const [watchA, watchB] = [await proxy(a.url), await proxy(b.url)];
  const storeA = store([linkA.url, b.url], writerA);
  const storeB = store([b.url, a.url], writerB);
  const watcher = store([watchA.url, watchB.url], writerB);
  const events: KvEvent[] = [];
  await watcher.watch(undefined, (e) => events.push(e));
  const b1: KvEvent[] = [];
  await watcher.watch("b1", (e) => b1.push(e));

  // Both servers take writes; a unique-key race on one key ends in one entry (ConflictError, then update).
  await storeA.set("a1", { n: 1 });
  await storeB.set("b1", { n: 1 });
  await storeB.set("gone", "soon");
  const race = await Promise.all([storeA.set("race", 1), storeA.set("race", 2)]);
  expect(race.map((r) => r.key)).toEqual(["race", "race"]);
  expect(await code(storeA.get("missing"))).toBe(KvErrorCode.NotFound);
  await waitFor(async () => Object.keys((await converged()) ?? {}).length === 4, {
    description: "first round",
  });
  await waitFor(() => events.some((e) => e.key === "b1" && e.source === "realtime"));
  expect(b1.map((e) => e.key)).toEqual(["b1"]);

  // Writer A's link to its primary is cut, the watcher is cut off from both servers: A fails over to B.
  linkA.cut("reset");
  watchA.cut("reset");
  watchB.cut("reset");
  await storeA.set("a2", { n: 2 });
  expect(storeA.endpoint()).toBe(b.url);
  await storeA.delete("b1");
  // Then the primary A is killed; B's writer goes on (A is only its failover).
  await a.kill();
  await storeB.set("b2", { n: 2 });
  await storeB.delete("gone");
  await storeA.set("a1", { n: 3 });
  expect(await storeA.list()).toEqual([
    expect.objectContaining({ key: "a1", value: { n: 3 } }),
    expect.objectContaining({ key: "a2" }),
    expect.objectContaining({ key: "b2" }),
    expect.objectContaining({ key: "race" }),
  ]);
  const missedFrom = events.length;

  // Restart and heal: both servers converge, the deletes hold on both (tombstones).
  await a.restart();
  for (const p of [linkA, watchA, watchB]) p.heal();
  const state = await waitFor(
    async () => {
      const s = await converged();
      return s?.a2 !== undefined && s.gone?.deleted === true ? s : undefined;
    },
    { timeoutMs: 20_000, description: "convergence after restart" },
  );
  expect(state).toMatchObject({
    a1: { value: { n: 3 }, deleted: false },
    a2: { value: { n: 2 }, deleted: false },
    b1: { deleted: true },
    b2: { value: { n: 2 }, deleted: false },
    gone: { deleted: true },
  });
  expect(await code(storeB.get("b1"))).toBe(KvErrorCode.NotFound);
  expect(await code(storeB.delete("b1"))).toBe(KvErrorCode.NotFound);

  // The watcher missed those writes (its links were cut): the catch-up after its reconnect brings them.
  await waitFor(
    () =>
      ["a1", "a2", "b1", "b2", "gone"].every((k) =>
        events.slice(missedFrom).some((e) => e.key === k && e.hlc === state[k]?.hlc),
      ),
    { timeoutMs: 15_000, description: "watcher caught up" },
  );
  expect(events.slice(missedFrom).some((e) => e.source === "catch-up")).toBe(true);
  expect(b1.at(-1)).toMatchObject({ key: "b1", deleted: true });

  // A stale live write of a deleted key (written behind the store's back on A, stamped before its
  // delete) does not resurrect it.
  const pa = a.client();
  const gone = await pa.collection(KV_COLLECTION).getFirstListItem(pa.filter("key = {:k}", { k: "gone" }));
  const stale = events.find((e) => e.key === "gone" && !e.deleted)?.hlc ?? "0";
  expect(stale < gone.hlc).toBe(true);
  await pa.collection(KV_COLLECTION).update(gone.id, { deleted: false, value: "zombie", hlc: stale });
  await replicator.sync({ full: true });
  for (const s of [a, b]) expect((await held(s)).gone?.deleted, s.url).toBe(true);

  // A later set of a deleted key wins (the tombstone policy's revive): live again on both servers.
  const again = await storeB.set("gone", "again");
  await waitFor(async () => {
    const [ha, hb] = [await held(a), await held(b)];
    return ha.gone?.hlc === again.hlc && hb.gone?.hlc === again.hlc && ha.gone.deleted === false;
  });
  expect(await storeA.get("gone")).toBe("again");
});
