import { ROLLOUTS_COLLECTION, VERSIONS_COLLECTION } from "@nxs-sync/config/pocketbase";
import { closeSdkClient, createSdkClient, ensureNode, NodeRole } from "@nxs-sync/pocketbase";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  account,
  gateway,
  newEnv,
  newId,
  newVersion,
  nextHlc,
  replicatorAccount,
  startConfigServer,
} from "./pocketbase-servers.js";

/**
 * The hook piece's routes on one real server, called as a gateway with the SDK (the backend's
 * mapping is tested in pocketbase-backend.int.test.ts): the compare-and-swap, idempotence, refusals,
 * heads, compaction, rollouts, who may call them, and records written straight into the collection.
 */
const servers = usePocketBaseServers();
let server: ProcessPocketBase;
let gw: PocketBase;
const clients: PocketBase[] = [];
beforeAll(async () => {
  server = await startConfigServer(servers, "config-routes");
  gw = await login("nxs_nodes", gateway.email, gateway.password);
});
afterAll(() => {
  for (const c of clients.splice(0)) closeSdkClient(c);
});

async function login(collection: string, email: string, password: string): Promise<PocketBase> {
  const pb = createSdkClient(server.url);
  clients.push(pb);
  await pb.collection(collection).authWithPassword(email, password);
  return pb;
}
type Answer = { status: number; body: Record<string, unknown> };
const route = (pb: PocketBase, op: string, body: unknown): Promise<Answer> =>
  pb.send(`/nxs/config/${op}`, { method: "POST", body: body as Record<string, unknown> }).then(
    (b: Record<string, unknown>) => ({ status: 200, body: b }),
    (e: { status: number; response: Record<string, unknown> }) => ({ status: e.status, body: e.response }),
  );
const put = (body: unknown) => route(gw, "put", body);
const stored = (a: Answer) => a.body.version as Record<string, unknown>;
const count = async (env: string) =>
  (
    await server
      .client()
      .collection(VERSIONS_COLLECTION)
      .getFullList({ filter: `env = "${env}"` })
  ).length;

it("creates version n+1 only on top of the head, and answers 409 with the head otherwise", async () => {
  const env = newEnv();
  const before = Date.now();
  const v1 = await put(newVersion(env, "limits", 0));
  expect(v1.status).toBe(200);
  const origin = (await route(gw, "origin", {})).body.origin;
  expect(origin).toMatch(/^[a-z0-9]{12}$/);
  expect(stored(v1)).toMatchObject({
    env,
    key: "limits",
    version: 1,
    origin,
    compacted: false,
    rollbackOf: 0,
  });
  expect(stored(v1).createdAt as number).toBeGreaterThanOrEqual(before - 5000);
  const v2 = await put(
    newVersion(env, "limits", 1, { rollbackOf: 1, rollout: { nodes: ["gw-2"], percent: 10 } }),
  );
  expect(stored(v2)).toMatchObject({ version: 2, rollbackOf: 1, rollout: { nodes: ["gw-2"], percent: 10 } });
  const stale = await put(newVersion(env, "limits", 1));
  expect(stale.status).toBe(409);
  expect(stale.body.data).toMatchObject({
    code: "config/conflict",
    current: { id: stored(v2).id, version: 2 },
  });
  const fresh = await put(newVersion(env, "limits", 3));
  expect(fresh.status).toBe(409);
  const none = await put(newVersion(env, "other", 1));
  expect(none.body.data).toMatchObject({ code: "config/conflict", current: null });
  expect(await count(env)).toBe(2);
});

it("is idempotent by id: a put sent again gets the stored version back", async () => {
  const env = newEnv();
  const v = newVersion(env, "k", 0);
  const first = await put(v);
  const again = await put(v);
  expect(again.status).toBe(200);
  expect(stored(again)).toEqual(stored(first));
  // Also after the head moved on: the retry of a put that won still gets its version.
  await put(newVersion(env, "k", 1));
  expect(stored(await put(v))).toEqual(stored(first));
  const otherKey = await put({ ...v, key: "elsewhere" });
  expect(otherKey.status).toBe(400);
  expect(otherKey.body.data).toMatchObject({ code: "config/invalid-value", field: "id" });
  expect(await count(env)).toBe(2);
});

it("stores every JSON value as sent (strings that look like JSON stay strings)", async () => {
  const env = newEnv();
  const values = [
    "true",
    "123",
    "null",
    '{"a":1}',
    "",
    "plain",
    5,
    0,
    true,
    null,
    [1, "x"],
    { a: { b: [null] } },
  ];
  const repl = await login("nxs_replicators", replicatorAccount.email, replicatorAccount.password);
  for (const [i, value] of values.entries()) {
    const a = await put(newVersion(env, `k${i}`, 0, { value }));
    expect(stored(a).value, JSON.stringify(value)).toEqual(value);
    const rec = await gw.collection(VERSIONS_COLLECTION).getOne(String(stored(a).id));
    expect(rec.value, JSON.stringify(value)).toEqual(value);
    // A replicator's copy too, sent as the replicator sends it: a string held in a json field goes
    // as JSON text (the records API would read a plain "true" as true).
    const body = {
      ...rec,
      id: newId(),
      value: typeof rec.value === "string" ? JSON.stringify(rec.value) : rec.value,
    };
    const copy = await repl.collection(VERSIONS_COLLECTION).create(body);
    expect(copy.value, `copy of ${JSON.stringify(value)}`).toEqual(value);
  }
});

it("refuses a malformed put naming the field, and stores nothing", async () => {
  const env = newEnv();
  const good = newVersion(env, "k", 0);
  const cases: [Record<string, unknown>, string][] = [
    [{ id: "SHORT" }, "id"],
    [{ env: "Bad Env" }, "env"],
    [{ key: "1starts-with-digit" }, "key"],
    [{ expectedVersion: -1 }, "expectedVersion"],
    [{ expectedVersion: 1.5 }, "expectedVersion"],
    [{ expectedVersion: "0" }, "expectedVersion"],
    [{ hlc: "" }, "hlc"],
    [{ hlc: "x".repeat(65) }, "hlc"],
    [{ author: 7 }, "author"],
    [{ message: "m".repeat(2001) }, "message"],
    [{ rollbackOf: 0 }, "rollbackOf"],
    [{ rollout: { percent: 101 } }, "rollout"],
    [{ rollout: { nodes: "gw-1" } }, "rollout"],
    [{ rollout: { everyone: true } }, "rollout"],
    [{ value: undefined }, "value"],
    [{ value: { big: "x".repeat(1_048_600) } }, "value"],
  ];
  for (const [patch, field] of cases) {
    const a = await put({ ...good, ...patch });
    expect(a.status, JSON.stringify(patch).slice(0, 80)).toBe(400);
    expect(a.body.data).toMatchObject({ code: "config/invalid-value", field });
  }
  expect((await route(gw, "put", "not an object")).status).toBe(400);
  expect(await count(env)).toBe(0);
  expect((await route(gw, "nothing", {})).status).toBe(404);
});

it("answers the heads of an environment, by (version, hlc, id)", async () => {
  const env = newEnv();
  await put(newVersion(env, "a", 0));
  const a2 = await put(newVersion(env, "a", 1));
  const b1 = await put(newVersion(env, "b", 0));
  await put(newVersion(newEnv(), "a", 0)); // another environment
  // Two versions 2 of one key (as after a cut, written here by a replicator): the higher hlc is head.
  const repl = await login("nxs_replicators", replicatorAccount.email, replicatorAccount.password);
  const twin = { ...stored(a2), id: newId(), hlc: `${String(stored(a2).hlc)}z`, origin: "elsewhere" };
  await repl.collection(VERSIONS_COLLECTION).create(twin);
  const heads = (await route(gw, "heads", { env })).body.versions as Record<string, unknown>[];
  expect(heads.map((h) => [h.key, h.version, h.id]).sort()).toEqual(
    [
      ["a", 2, twin.id],
      ["b", 1, stored(b1).id],
    ].sort(),
  );
  expect((await put(newVersion(env, "a", 2))).status).toBe(200);
  expect((await route(gw, "heads", { env: "Not An Env" })).status).toBe(400);
});

it("compacts old versions, never a head nor a staged version, and only forward", async () => {
  const env = newEnv();
  const ids: string[] = [];
  for (let n = 0; n < 6; n++) ids.push(String(stored(await put(newVersion(env, "k", n))).id));
  await put(newVersion(env, "solo", 0));
  // Version 2 is staged; version 3 was staged and promoted.
  const rollout = (i: number, state: string) =>
    route(gw, "rollout", { id: ids[i], env, key: "k", version: i + 1, state, reason: "test" });
  expect((await rollout(1, "staged")).status).toBe(200);
  await rollout(2, "staged");
  await rollout(2, "promoted");
  const a = await route(gw, "compact", { env, keepLast: 2 });
  expect(a.body).toEqual({ compacted: 3 }); // versions 1, 3, 4 (5 and 6 kept, 2 staged, solo's head)
  const recs = await gw
    .collection(VERSIONS_COLLECTION)
    .getFullList({ filter: `env = "${env}" && key = "k"`, sort: "version" });
  expect(recs.map((r) => [r.version, r.compacted, r.value === null])).toEqual([
    [1, true, true],
    [2, false, false],
    [3, true, true],
    [4, true, true],
    [5, false, false],
    [6, false, false],
  ]);
  expect(Date.parse(String(recs[0]?.compactedAt).replace(" ", "T"))).toBeGreaterThan(0);
  expect(recs[1]?.compactedAt).toBe("");
  // Again: nothing left to do; then everything but the head and the staged one.
  expect((await route(gw, "compact", { env, key: "k", keepLast: 2 })).body).toEqual({ compacted: 0 });
  expect((await route(gw, "compact", { env, key: "k" })).body).toEqual({ compacted: 1 });
  // keepSince keeps what was created at or after it.
  const env2 = newEnv();
  for (let n = 0; n < 3; n++) await put(newVersion(env2, "k", n));
  expect((await route(gw, "compact", { env: env2, keepSince: 0 })).body).toEqual({ compacted: 0 });
  expect((await route(gw, "compact", { env: env2, keepLast: -1 })).status).toBe(400);
});

it("raises a rollout's state only forward (rolled-back wins)", async () => {
  const env = newEnv();
  const v = stored(await put(newVersion(env, "k", 0)));
  const set = (state: string, reason = state) =>
    route(gw, "rollout", { id: v.id, env, key: "k", version: 1, state, reason });
  expect((await set("staged")).body.rollout).toMatchObject({
    id: v.id,
    env,
    key: "k",
    version: 1,
    state: "staged",
  });
  expect((await set("rolled-back", "health check failed")).body.rollout).toMatchObject({
    state: "rolled-back",
    reason: "health check failed",
  });
  expect((await set("promoted")).body.rollout).toMatchObject({
    state: "rolled-back",
    reason: "health check failed",
  });
  expect((await set("unknown")).status).toBe(400);
  const other = await route(gw, "rollout", {
    id: v.id,
    env,
    key: "k",
    version: 2,
    state: "promoted",
    reason: "",
  });
  expect(other.status).toBe(400);
  const recs = await gw.collection(ROLLOUTS_COLLECTION).getFullList({ filter: `env = "${env}"` });
  expect(recs).toHaveLength(1);
  expect(recs[0]?.rev).toBeGreaterThan(2e13);
});

it("lets only gateway accounts call the routes", async () => {
  const env = newEnv();
  const body = newVersion(env, "k", 0);
  const guest = createSdkClient(server.url);
  clients.push(guest);
  expect((await route(guest, "put", body)).status).toBe(401);
  expect((await route(server.client(), "put", body)).status).toBe(403); // a superuser
  const repl = await login("nxs_replicators", replicatorAccount.email, replicatorAccount.password);
  expect((await route(repl, "put", body)).status).toBe(403);
  const user = account();
  await server
    .client()
    .collection("users")
    .create({ email: user.email, password: user.password, passwordConfirm: user.password });
  const u = await login("users", user.email, user.password);
  for (const op of ["put", "heads", "compact", "rollout", "origin"])
    expect((await route(u, op, body)).status).toBe(403);
  expect(await count(env)).toBe(0);
  // The records API: a gateway reads, but writes nothing directly.
  const direct = await gw
    .collection(VERSIONS_COLLECTION)
    .create({ ...body, version: 1 })
    .then(
      () => 200,
      (e: { status: number }) => e.status,
    );
  expect(direct).toBe(400);
  const other = account(NodeRole.Gateway);
  await ensureNode(server.client(), other);
  expect((await route(await login("nxs_nodes", other.email, other.password), "put", body)).status).toBe(200);
});

it("keeps working beside malformed records written straight into the collection", async () => {
  const env = newEnv();
  const admin = server.client();
  await put(newVersion(env, "k", 0));
  const raw = (fields: Record<string, unknown>) =>
    admin
      .collection(VERSIONS_COLLECTION)
      .create({ id: newId(), env, key: "k", hlc: nextHlc(), createdAt: 1, ...fields });
  const hostile = [
    await raw({ version: 7.5, value: { evil: true } }),
    await raw({ version: 9, hlc: "" }),
    await raw({ version: 0 }),
    await raw({ version: 8, rollout: { percent: "all" } }),
    await raw({ version: 10, compacted: true, value: { kept: "secret" } }),
    await raw({ version: 11, env: "BAD ENV" }),
  ];
  const heads = (await route(gw, "heads", { env })).body.versions as Record<string, unknown>[];
  expect(heads.map((h) => h.version)).toEqual([1]);
  expect((await put(newVersion(env, "k", 1))).status).toBe(200);
  expect((await route(gw, "compact", { env, key: "k" })).body).toEqual({ compacted: 1 });
  for (const h of hostile) {
    const now = await admin.collection(VERSIONS_COLLECTION).getOne(h.id);
    expect(now.updated, "a malformed record is never touched").toBe(h.updated);
  }
});

it("lets replicators copy a version and compact it, but never revive a tombstone", async () => {
  const env = newEnv();
  const repl = await login("nxs_replicators", replicatorAccount.email, replicatorAccount.password);
  const v1 = stored(await put(newVersion(env, "k", 0)));
  await put(newVersion(env, "k", 1));
  const write = (fields: Record<string, unknown>) =>
    repl
      .collection(VERSIONS_COLLECTION)
      .update(String(v1.id), fields)
      .then(
        (r) => ({ status: 200, record: r }),
        (e: { status: number }) => ({ status: e.status, record: undefined }),
      );
  // A live update (not a compaction) is refused by the update rule.
  expect((await write({ ...v1, message: "rewritten" })).status).toBe(404);
  expect(
    (await write({ ...v1, compacted: true, value: null, compactedAt: "2026-01-01 00:00:00.000Z" })).status,
  ).toBe(200);
  // Once compacted, a copy never writes it again (the stored row is answered back).
  const back = await write({
    ...v1,
    compacted: true,
    value: { revived: 1 },
    compactedAt: "2026-02-01 00:00:00.000Z",
  });
  expect(back.record).toMatchObject({
    compacted: true,
    value: null,
    compactedAt: "2026-01-01 00:00:00.000Z",
  });
  const copy = { ...v1, id: newId(), version: 3 };
  expect((await repl.collection(VERSIONS_COLLECTION).create(copy)).id).toBe(copy.id);
  // A stale rollout copy (lower rev) is not written.
  await route(gw, "rollout", { id: v1.id, env, key: "k", version: 1, state: "rolled-back", reason: "r" });
  const r = await repl.collection(ROLLOUTS_COLLECTION).getOne(String(v1.id));
  const stale = await repl
    .collection(ROLLOUTS_COLLECTION)
    .update(String(v1.id), { ...r, state: "promoted", rev: 1e13 });
  expect(stale).toMatchObject({ state: "rolled-back", rev: r.rev });
});
