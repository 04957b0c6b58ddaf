import {
  ConfigConflictError,
  type ConfigWatcher,
  InvalidConfigError,
  type RolloutRecord,
  type StoredVersion,
} from "@nxs-sync/config";
import { VERSIONS_COLLECTION } from "@nxs-sync/config/pocketbase";
import { isNxsError } from "@nxs-sync/core";
import { ensureNode, ensureSchema } from "@nxs-sync/pocketbase";
import { type ProcessPocketBase, startTcpProxy, type TcpProxy, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import {
  backendOf,
  closeBackends,
  gateway,
  newEnv,
  newId,
  newVersion,
  nextHlc,
  registry,
  startConfigServer,
} from "./pocketbase-servers.js";

/** The PocketBase backend on one real server: the port's calls, refusals, quarantine, and watch. */
const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const proxies: TcpProxy[] = [];
beforeAll(async () => {
  server = await startConfigServer(servers, "config-backend");
});
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(closeBackends);

const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as Error & { code?: string },
  );

/** A watcher that records what it is told. */
function recorder() {
  const seen = {
    versions: [] as StoredVersion[],
    rollouts: [] as RolloutRecord[],
    invalid: [] as { raw: unknown; reason: string }[],
    resyncs: 0,
  };
  const watcher: ConfigWatcher = {
    onVersion: (v) => seen.versions.push(v),
    onRollout: (r) => seen.rollouts.push(r),
    onInvalid: (raw, reason) => seen.invalid.push({ raw, reason }),
    onResync: () => {
      seen.resyncs++;
    },
  };
  return { seen, watcher };
}

it("puts by compare-and-swap, and a stale put is a ConfigConflictError carrying the head", async () => {
  const backend = backendOf([server.url]);
  const env = newEnv();
  const v1 = await backend.put(newVersion(env, "limits", 0, { value: { rps: 1 } }));
  expect(v1).toMatchObject({ env, key: "limits", version: 1, value: { rps: 1 }, compacted: false });
  expect(v1.origin).toBe(await backend.origin());
  expect(v1).not.toHaveProperty("rollbackOf");
  const v2 = await backend.put(newVersion(env, "limits", 1, { rollbackOf: 1, rollout: { percent: 25 } }));
  expect(v2).toMatchObject({ version: 2, rollbackOf: 1, rollout: { percent: 25 } });
  const e = await failure(backend.put(newVersion(env, "limits", 1)));
  expect(e).toBeInstanceOf(ConfigConflictError);
  expect(e?.code).toBe("config/conflict");
  const { value: _value, compacted: _compacted, ...meta } = v2;
  expect((e as ConfigConflictError).current).toEqual(meta);
  const none = await failure(backend.put(newVersion(env, "fresh", 4)));
  expect((none as ConfigConflictError).current).toBeUndefined();
  // Sent again (its answer lost): the stored version, not a conflict.
  const again = newVersion(env, "limits", 2);
  const first = await backend.put(again);
  expect(await backend.put(again)).toEqual(first);
});

it("refuses a malformed version with config/invalid-value naming the field", async () => {
  const backend = backendOf([server.url]);
  const env = newEnv();
  const e = await failure(backend.put(newVersion(env, "k", 0, { hlc: "" })));
  expect(e).toBeInstanceOf(InvalidConfigError);
  expect(e?.code).toBe("config/invalid-value");
  expect((e as InvalidConfigError).issues).toEqual([{ path: "hlc", message: "hlc must not be empty" }]);
  const big = await failure(backend.put(newVersion(env, "k", 0, { value: "x".repeat(1_100_000) })));
  expect((big as InvalidConfigError).issues[0]?.path).toBe("value");
  expect(await backend.list({ env })).toEqual([]);
});

it("lists in (version, hlc, id) order with bounds, pages and compacted tombstones on demand", async () => {
  const backend = backendOf([server.url]);
  const env = newEnv();
  const all: StoredVersion[] = [];
  for (let n = 0; n < 12; n++)
    all.push(await backend.put(newVersion(env, n % 2 ? "b" : "a", Math.floor(n / 2))));
  const a = all.filter((v) => v.key === "a");
  expect(await backend.list({ env, key: "a" })).toEqual(a);
  expect((await backend.list({ env, key: "a", order: "desc", limit: 2 })).map((v) => v.version)).toEqual([
    6, 5,
  ]);
  expect(
    (await backend.list({ env, key: "a", afterVersion: 2, beforeVersion: 5 })).map((v) => v.version),
  ).toEqual([3, 4]);
  expect((await backend.list({ env, limit: 3 })).map((v) => [v.key, v.version])).toEqual([
    ["a", 1],
    ["b", 1],
    ["a", 2],
  ]);
  expect((await backend.heads(env)).map((h) => [h.key, h.version]).sort()).toEqual([
    ["a", 6],
    ["b", 6],
  ]);
  expect(await backend.compact({ env, key: "a", keepLast: 2 })).toBe(4);
  expect((await backend.list({ env, key: "a" })).map((v) => v.version)).toEqual([5, 6]);
  const withTombstones = await backend.list({ env, key: "a", includeCompacted: true });
  expect(withTombstones.map((v) => [v.version, v.compacted, v.value])).toEqual([
    [1, true, null],
    [2, true, null],
    [3, true, null],
    [4, true, null],
    [5, false, { n: 5 }],
    [6, false, { n: 6 }],
  ]);
  expect(await backend.get(a[0]!.id)).toMatchObject({ version: 1, compacted: true, value: null });
  expect(await backend.get(newId())).toBeUndefined();
});

it("keeps rollout states monotonic and lists them", async () => {
  const backend = backendOf([server.url]);
  const env = newEnv();
  const v = await backend.put(newVersion(env, "flags", 0, { rollout: { nodes: ["gw-2"] } }));
  expect(await backend.setRollout(v, "staged", "canary")).toMatchObject({
    id: v.id,
    state: "staged",
    reason: "canary",
  });
  expect(await backend.compact({ env })).toBe(0);
  const back = await backend.setRollout(v, "rolled-back", "health check failed");
  expect(await backend.setRollout(v, "promoted", "late")).toEqual(back);
  expect(await backend.rollouts(env)).toEqual([back]);
});

it("quarantines malformed records written straight into the collection: never listed, reported once", async () => {
  const invalid: string[] = [];
  const backend = backendOf([server.url], {
    onInvalid: (raw) => invalid.push(String((raw as { id: string }).id)),
  });
  const env = newEnv();
  const good = await backend.put(newVersion(env, "k", 0));
  const { seen, watcher } = recorder();
  const stop = backend.watch(env, watcher);
  await waitFor(() => seen.resyncs > 0, { description: "the watch caught up" });
  const admin = server.client();
  const hostile = await admin.collection(VERSIONS_COLLECTION).create({
    id: newId(),
    env,
    key: "k",
    version: 2.5,
    hlc: nextHlc(),
    createdAt: 1,
    value: { evil: true },
  });
  await waitFor(() => seen.invalid.length > 0, { description: "the watch reports the hostile record" });
  expect(seen.invalid[0]?.reason).toContain("version");
  expect(seen.versions.map((v) => v.id)).not.toContain(hostile.id);
  expect(await backend.list({ env })).toEqual([good]);
  expect(await backend.list({ env, includeCompacted: true, order: "desc" })).toEqual([good]);
  expect((await backend.heads(env)).map((h) => h.id)).toEqual([good.id]);
  const e = await failure(backend.get(hostile.id));
  expect(e?.code).toBe("config/invalid-record");
  expect(invalid).toEqual([hostile.id]); // once, however many reads met it
  expect(seen.invalid).toHaveLength(1);
  // The route goes on past it: the next version is 2.
  expect((await backend.put(newVersion(env, "k", 1))).version).toBe(2);
  stop();
});

it("watches an environment: versions, compactions and rollouts, not another environment's", async () => {
  const backend = backendOf([server.url]);
  const writer = backendOf([server.url]);
  const env = newEnv();
  const { seen, watcher } = recorder();
  const stop = backend.watch(env, watcher);
  await waitFor(() => seen.resyncs > 0, { description: "the watch caught up" });
  const v1 = await writer.put(newVersion(env, "k", 0));
  await writer.put(newVersion(newEnv(), "k", 0));
  const v2 = await writer.put(newVersion(env, "k", 1));
  await writer.setRollout(v2, "promoted", "all");
  expect(await writer.compact({ env })).toBe(1);
  await waitFor(() => seen.versions.some((v) => v.compacted) && seen.rollouts.length > 0, {
    description: "the compaction and the rollout seen",
  });
  expect(seen.versions.map((v) => [v.id, v.compacted])).toEqual([
    [v1.id, false],
    [v2.id, false],
    [v1.id, true],
  ]);
  expect(seen.rollouts.map((r) => [r.id, r.state])).toEqual([[v2.id, "promoted"]]);
  expect(seen.invalid).toEqual([]);
  stop();
});

it("resumes after the SSE connection drops: a resync, the missed changes, and list fills the gap", async () => {
  const proxy = await startTcpProxy(server.url);
  proxies.push(proxy);
  const backend = backendOf([proxy.url]);
  const writer = backendOf([server.url]);
  const env = newEnv();
  const v1 = await writer.put(newVersion(env, "k", 0));
  const { seen, watcher } = recorder();
  const stop = backend.watch(env, watcher);
  await waitFor(() => seen.resyncs > 0, { description: "the watch caught up" });
  const v2 = await writer.put(newVersion(env, "k", 1));
  await waitFor(() => seen.versions.some((v) => v.id === v2.id), { description: "v2 streamed" });
  proxy.cut();
  const resyncs = seen.resyncs;
  // While the stream is down: two versions, a compaction and a rollout the watcher cannot see.
  const v3 = await writer.put(newVersion(env, "k", 2));
  const v4 = await writer.put(newVersion(env, "k", 3));
  await writer.compact({ env, keepLast: 3 });
  await writer.setRollout(v4, "staged", "canary");
  expect(seen.versions.map((v) => v.id)).not.toContain(v3.id);
  proxy.heal();
  await waitFor(() => seen.resyncs > resyncs, { timeoutMs: 30_000, description: "a resync after the drop" });
  // The catch-up told the compaction and the rollout; the versions are the store's to list.
  expect(seen.versions.some((v) => v.id === v1.id && v.compacted)).toBe(true);
  expect(seen.rollouts.map((r) => [r.id, r.state])).toEqual([[v4.id, "staged"]]);
  const after = await backend.list({ env, key: "k", afterVersion: 2 });
  expect(after.map((v) => v.id)).toEqual([v3.id, v4.id]);
  stop();
});

it("refuses a server without the config hook piece, naming the fix", async () => {
  const bare = await servers.start({ name: "config-no-piece" });
  await ensureSchema(bare.client(), { collections: registry(), rateLimits: false });
  await ensureNode(bare.client(), gateway);
  const e = await failure(backendOf([bare.url], { timeoutMs: 0 }).heads("production"));
  expect(e?.code).toBe("server/incompatible");
  expect(e?.message).toContain("no hook piece config");
  expect(e?.message).toContain("nxs-config.pb.js");
  expect(isNxsError(e)).toBe(true);
});
