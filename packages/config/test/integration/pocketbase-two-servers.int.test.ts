import type { ConfigWatcher, StoredVersion } from "@nxs-sync/config";
import { compareVersions } from "@nxs-sync/config";
import { VERSIONS_COLLECTION } from "@nxs-sync/config/pocketbase";
import { silentLogger } from "@nxs-sync/core";
import { createReplicator, type Replicator } from "@nxs-sync/pocketbase";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  authOf,
  backendOf,
  closeBackends,
  newEnv,
  newVersion,
  registry,
  replicatorAccount,
  startConfigServer,
} from "./pocketbase-servers.js";

/**
 * Two real servers with the replicator between them (the config collections plugged in): versions,
 * compactions and rollouts are copied; two versions 2 written on both sides of a cut both stay and
 * resolve to the same head on both servers; a watch fails over to the other server and resyncs.
 */
const servers = usePocketBaseServers();
let a: ProcessPocketBase;
let b: ProcessPocketBase;
let replicator: Replicator | undefined;

const startReplicator = async (): Promise<void> => {
  replicator = createReplicator({
    servers: [a, b].map((s) => ({ url: s.url, auth: authOf(replicatorAccount) })),
    collections: registry(),
    intervalMs: 300,
    logger: silentLogger,
  });
  await replicator.start();
};
const stopReplicator = async (): Promise<void> => {
  await replicator?.stop();
  replicator = undefined;
};
beforeAll(async () => {
  [a, b] = await Promise.all([
    startConfigServer(servers, "config-a"),
    startConfigServer(servers, "config-b"),
  ]);
  await startReplicator();
});
afterAll(async () => {
  await closeBackends();
  await stopReplicator();
});

/** What a server holds of an environment (tombstones included), in order. */
const held = (s: ProcessPocketBase, env: string) =>
  backendOf([s.url]).list({ env, includeCompacted: true, limit: 1000 });
/** Waits until both servers hold the same versions of `env` (same ids, same tombstones) and `check` holds. */
const converged = (env: string, check: (versions: readonly StoredVersion[]) => boolean, what: string) =>
  waitFor(
    async () => {
      const [x, y] = [await held(a, env), await held(b, env)];
      const same = JSON.stringify(x) === JSON.stringify(y);
      return same && check(x) ? x : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 200, description: what },
  );

it("copies versions, compactions and rollouts; two versions 2 of a cut both stay and resolve the same everywhere", async () => {
  const env = newEnv();
  const onA = backendOf([a.url]);
  const onB = backendOf([b.url]);
  const v1 = await onA.put(newVersion(env, "routes", 0, { value: "true" }));
  await converged(env, (vs) => vs.length === 1, "v1 on both servers");
  expect((await onB.get(v1.id))?.value).toBe("true"); // a string stays a string in the copy
  expect(v1.origin).toBe(await onA.origin());

  // Cut: each side accepts its own version 2 (both CAS on top of v1), and each moves v1's rollout.
  await stopReplicator();
  const twoA = await onA.put(newVersion(env, "routes", 1, { node: "gw-a" }));
  const twoB = await onB.put(newVersion(env, "routes", 1, { node: "gw-b" }));
  expect([twoA.version, twoB.version]).toEqual([2, 2]);
  expect(twoA.origin).not.toBe(twoB.origin);
  await onA.setRollout(v1, "promoted", "healthy on a");
  await onB.setRollout(v1, "rolled-back", "failed on b");
  await startReplicator();

  const all = await converged(env, (vs) => vs.length === 3, "both versions 2 on both servers");
  expect(all.map((v) => v.origin)).toContain(twoB.origin);
  const head = [twoA, twoB].sort(compareVersions)[1]!;
  expect(all.map((v) => v.id)).toEqual([v1.id, ...[twoA, twoB].sort(compareVersions).map((v) => v.id)]);
  for (const s of [onA, onB]) {
    expect((await s.heads(env)).map((h) => h.id)).toEqual([head.id]);
    // rolled-back (B's) wins over promoted (A's) on both servers, with its reason.
    await waitFor(async () => (await s.rollouts(env))[0]?.state === "rolled-back", {
      description: `rolled-back wins on ${s.name}`,
    });
    expect((await s.rollouts(env)).map((r) => [r.id, r.state, r.reason])).toEqual([
      [v1.id, "rolled-back", "failed on b"],
    ]);
  }
  // The next put on either side builds on version 2.
  expect((await onB.put(newVersion(env, "routes", 2))).version).toBe(3);

  // A compaction on A reaches B, and a full sweep does not copy the live value back.
  await converged(env, (vs) => vs.length === 4, "version 3 on both servers");
  expect(await onA.compact({ env, keepLast: 3 })).toBe(1);
  await converged(env, (vs) => vs[0]?.compacted === true, "v1's tombstone on both servers");
  await replicator?.sync({ full: true });
  const onBNow = await b.client().collection(VERSIONS_COLLECTION).getOne(v1.id);
  expect(onBNow).toMatchObject({ compacted: true, value: null });
});

it("moves a watch to the other server when its home dies: a resync there, and list fills the gap", async () => {
  const env = newEnv();
  const gateway = backendOf([a.url, b.url]);
  const onA = backendOf([a.url]);
  const onB = backendOf([b.url]);
  const v1 = await onA.put(newVersion(env, "flags", 0));
  await converged(env, (vs) => vs.length === 1, "v1 on both servers");
  const seen = { versions: [] as StoredVersion[], resyncs: 0 };
  const watcher: ConfigWatcher = {
    onVersion: (v) => seen.versions.push(v),
    onRollout: () => {},
    onInvalid: () => {},
    onResync: () => {
      seen.resyncs++;
    },
  };
  const stop = gateway.watch(env, watcher);
  await waitFor(() => seen.resyncs > 0, { description: "the watch caught up on a" });
  await a.kill();
  const resyncs = seen.resyncs;
  const v2 = await onB.put(newVersion(env, "flags", 1));
  await waitFor(() => seen.resyncs > resyncs, { timeoutMs: 30_000, description: "a resync on b" });
  await waitFor(async () => (await gateway.list({ env, afterVersion: 1 })).length === 1, {
    description: "list on b holds v2",
  });
  expect((await gateway.list({ env })).map((v) => v.id)).toEqual([v1.id, v2.id]);
  // Once the watch is on b, b's versions stream.
  const v3 = await onB.put(newVersion(env, "flags", 2));
  await waitFor(() => seen.versions.some((v) => v.id === v3.id), { description: "v3 streamed from b" });
  stop();
  await a.restart();
});
