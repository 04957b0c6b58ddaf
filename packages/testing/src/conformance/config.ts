import { randomUUID } from "node:crypto";
import {
  type ConfigBackend,
  ConfigConflictError,
  type ConfigWatcher,
  compareVersions,
  type NewVersion,
  type RolloutRecord,
  type StoredVersion,
} from "@nxs-sync/config";
import { isNxsError, type Json } from "@nxs-sync/core";
import { afterEach, describe, expect, it } from "vitest";
import { createSettleWaits } from "./settle.js";

/** What {@link runConfigBackendConformance} needs for one test. */
export interface ConfigConformanceContext {
  /** A backend; every test uses environments of its own (unique per run), so a shared server works. */
  readonly backend: ConfigBackend;
  /** Releases what the test used; called after each test (the backend is closed by the suite first). */
  cleanup?(): Promise<void>;
  /**
   * Lets pending deliveries (watch events) happen once. The suite calls it in a loop (at most
   * `maxSettleRounds` times) until what it waits for holds: a poll interval, never a bound that
   * decides a check. Default: 10 ms of real time.
   */
  settle?(): Promise<void>;
  /** How many `settle()` rounds a wait may take (default 300). */
  readonly maxSettleRounds?: number;
}

/** A fresh version id (15 chars of [a-z0-9]), unique across runs on a persistent server. */
const newId = (): string => randomUUID().replace(/-/g, "").slice(0, 15);

/**
 * The conformance suite of the `ConfigBackend` port: the memory backend runs it in the config
 * package's unit tests, the PocketBase backend against a real server. Registers a vitest `describe`
 * block. It checks: the exact compare-and-swap (N concurrent puts on one `expectedVersion`: one wins,
 * every other gets `config/conflict` carrying the winner), idempotence by id, the order and ranges of
 * `list`, `heads`, compaction (head, staged and the effective version kept; tombstones), the rollout
 * state's monotonic moves, and the watch (versions, rollouts, a resync on subscribe).
 * @param name - A label of the backend, used in the describe title.
 * @param setup - Called before each test; returns the backend and its cleanup.
 * @example
 * ```ts
 * import { createMemoryConfigBackend } from "@nxs-sync/config";
 * runConfigBackendConformance("memory", async () => ({
 *   backend: createMemoryConfigBackend(),
 *   cleanup: async () => {},
 * }));
 * ```
 */
export function runConfigBackendConformance(
  name: string,
  setup: () => ConfigConformanceContext | Promise<ConfigConformanceContext>,
): void {
  describe(`ConfigBackend conformance: ${name}`, () => {
    let ctx: ConfigConformanceContext | undefined;
    let envCounter = 0;
    const runTag = randomUUID().replace(/-/g, "").slice(0, 8);
    let hlcCounter = 0;

    const start = async () => {
      ctx = await setup();
      const env = `c${runTag}-${++envCounter}`;
      return { backend: ctx.backend, env };
    };
    const { eventually } = createSettleWaits(() => ctx);
    /** A new version; hlc grows with each call so the order by (version, hlc) is predictable. */
    const version = (env: string, expectedVersion: number, over: Partial<NewVersion> = {}): NewVersion => ({
      id: newId(),
      env,
      key: "flags",
      expectedVersion,
      hlc: `${(1_700_000_000_000 + ++hlcCounter).toString(16).padStart(12, "0")}000000conf`,
      node: "node-1",
      author: "ann",
      message: `v${expectedVersion + 1}`,
      value: { n: expectedVersion + 1, nested: { list: [1, "two", null] } } as Json,
      ...over,
    });
    /** Puts `count` versions of one key in a row. */
    const chain = async (
      backend: ConfigBackend,
      env: string,
      count: number,
      over: Partial<NewVersion> = {},
      from = 0,
    ): Promise<StoredVersion[]> => {
      const out: StoredVersion[] = [];
      for (let i = from; i < from + count; i++) out.push(await backend.put(version(env, i, over)));
      return out;
    };
    const conflictOf = async (p: Promise<unknown>): Promise<ConfigConflictError> => {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, "a conflict error").toBeInstanceOf(ConfigConflictError);
      expect(isNxsError(err) && err.code).toBe("config/conflict");
      return err as ConfigConflictError;
    };
    const ids = (list: readonly StoredVersion[]): string[] => list.map((v) => v.id);

    afterEach(async () => {
      await ctx?.backend.close?.();
      await ctx?.cleanup?.();
      ctx = undefined;
    });

    it("put creates version 1 then n+1, stamped by the authority, readable by id; an unknown id is undefined", async () => {
      const { backend, env } = await start();
      const first = version(env, 0);
      const v1 = await backend.put(first);
      expect(v1).toMatchObject({
        id: first.id,
        env,
        key: "flags",
        version: 1,
        hlc: first.hlc,
        origin: backend.name,
        node: "node-1",
        author: "ann",
        message: "v1",
        value: first.value,
        compacted: false,
      });
      expect(typeof v1.createdAt).toBe("number");
      const second = version(env, 1, { rollbackOf: 1, rollout: { nodes: ["gw-1"], percent: 10 } });
      const v2 = await backend.put(second);
      expect(v2.version).toBe(2);
      expect(v2.rollbackOf).toBe(1);
      expect(v2.rollout).toEqual({ nodes: ["gw-1"], percent: 10 });
      expect(await backend.get(v1.id)).toEqual(v1);
      expect(await backend.get(v2.id)).toEqual(v2);
      expect(await backend.get(newId())).toBeUndefined();
    });

    it("compare-and-swap is exact: a stale, a too-high or a first-version expectation conflicts with the head", async () => {
      const { backend, env } = await start();
      const noHead = await conflictOf(backend.put(version(env, 1)));
      expect(noHead.current).toBeUndefined();
      const [v1, v2] = await chain(backend, env, 2);
      const stale = await conflictOf(backend.put(version(env, 1)));
      expect(stale.current).toMatchObject({ id: v2!.id, version: 2, hlc: v2!.hlc, origin: backend.name });
      expect(stale.current).not.toHaveProperty("value");
      const high = await conflictOf(backend.put(version(env, 5)));
      expect(high.current?.id).toBe(v2!.id);
      const again = await conflictOf(backend.put(version(env, 0)));
      expect(again.current?.id).toBe(v2!.id);
      expect(ids(await backend.list({ env, key: "flags" }))).toEqual([v1!.id, v2!.id]);
    });

    it("a malformed new version (id, env, key, expectedVersion) is refused with a typed error and stores nothing", async () => {
      const { backend, env } = await start();
      const bad: Partial<NewVersion>[] = [
        { id: "UPPER-CASE-ID!!" },
        { id: "short" },
        { env: "Not An Env!" },
        { key: "bad key!" },
        { expectedVersion: -1 },
        { expectedVersion: 1.5 },
      ];
      for (const over of bad) {
        const err = await backend.put(version(env, 0, over)).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isNxsError(err), `refused: ${JSON.stringify(over)}`).toBe(true);
      }
      expect(await backend.list({ env, includeCompacted: true })).toEqual([]);
      expect(await backend.heads(env)).toEqual([]);
    });

    it("N concurrent puts on one expectedVersion: exactly one wins, every other conflicts carrying the winner", async () => {
      const { backend, env } = await start();
      await chain(backend, env, 1);
      const racers = Array.from({ length: 12 }, () => version(env, 1));
      const results = await Promise.allSettled(racers.map((v) => backend.put(v)));
      const won = results.filter((r) => r.status === "fulfilled");
      expect(won).toHaveLength(1);
      const winner = (won[0] as PromiseFulfilledResult<StoredVersion>).value;
      expect(winner.version).toBe(2);
      for (const r of results) {
        if (r.status === "fulfilled") continue;
        expect(r.reason).toBeInstanceOf(ConfigConflictError);
        expect((r.reason as ConfigConflictError).current?.id).toBe(winner.id);
      }
      const all = await backend.list({ env, key: "flags" });
      expect(all.map((v) => v.version)).toEqual([1, 2]);
      expect(all[1]!.id).toBe(winner.id);
    });

    it("a put sent again with the same id returns the stored version and creates nothing, even after the head moved", async () => {
      const { backend, env } = await start();
      const first = version(env, 0);
      const v1 = await backend.put(first);
      expect(await backend.put(first)).toEqual(v1);
      const [retried] = await Promise.all([backend.put(first), backend.put(first)]);
      expect(retried).toEqual(v1);
      await chain(backend, env, 1, {}, 1);
      expect(await backend.put(first)).toEqual(v1);
      expect((await backend.list({ env })).map((v) => v.version)).toEqual([1, 2]);
    });

    it("list: (version, hlc, id) order, ranges, limit keeping the lowest (asc) or the highest (desc), key and env filters", async () => {
      const { backend, env } = await start();
      const flags = await chain(backend, env, 6);
      const routes = await chain(backend, env, 2, { key: "routes.eu" });
      await chain(backend, `${env}-other`, 1);
      const all = await backend.list({ env });
      expect(all).toHaveLength(8);
      for (let i = 1; i < all.length; i++) expect(compareVersions(all[i - 1]!, all[i]!)).toBeLessThan(0);
      expect(ids(await backend.list({ env, key: "flags" }))).toEqual(ids(flags));
      expect(ids(await backend.list({ env, key: "routes.eu" }))).toEqual(ids(routes));
      expect(ids(await backend.list({ env, key: "flags", afterVersion: 4 }))).toEqual(ids(flags.slice(4)));
      expect(ids(await backend.list({ env, key: "flags", beforeVersion: 3 }))).toEqual(
        ids(flags.slice(0, 2)),
      );
      expect(ids(await backend.list({ env, key: "flags", afterVersion: 1, beforeVersion: 5 }))).toEqual(
        ids(flags.slice(1, 4)),
      );
      expect(ids(await backend.list({ env, key: "flags", limit: 2 }))).toEqual(ids(flags.slice(0, 2)));
      expect(ids(await backend.list({ env, key: "flags", limit: 2, order: "desc" }))).toEqual(
        ids(flags.slice(4).reverse()),
      );
      expect(ids(await backend.list({ env, key: "flags", order: "desc" }))).toEqual(
        ids([...flags].reverse()),
      );
      expect(await backend.list({ env, key: "nothing" })).toEqual([]);
      expect(await backend.list({ env, key: "flags", afterVersion: 6 })).toEqual([]);
    });

    it("heads: the greatest version of every key of the environment", async () => {
      const { backend, env } = await start();
      const flags = await chain(backend, env, 3);
      const routes = await chain(backend, env, 1, { key: "routes.eu" });
      await chain(backend, `${env}-other`, 2);
      const heads = await backend.heads(env);
      expect([...heads].sort((a, b) => (a.key < b.key ? -1 : 1))).toEqual([flags[2], routes[0]]);
      expect(await backend.heads(`${env}-none`)).toEqual([]);
    });

    it("compact keepLast: tombstones (value null, compacted) hidden from list unless asked, the head always kept", async () => {
      const { backend, env } = await start();
      const flags = await chain(backend, env, 5);
      await chain(backend, env, 1, { key: "routes.eu" });
      expect(await backend.compact({ env, key: "flags", keepLast: 2 })).toBe(3);
      expect(ids(await backend.list({ env, key: "flags" }))).toEqual(ids(flags.slice(3)));
      const withTombs = await backend.list({ env, key: "flags", includeCompacted: true });
      expect(withTombs.map((v) => [v.version, v.compacted, v.value === null])).toEqual([
        [1, true, true],
        [2, true, true],
        [3, true, true],
        [4, false, false],
        [5, false, false],
      ]);
      expect(await backend.get(flags[0]!.id)).toMatchObject({
        id: flags[0]!.id,
        compacted: true,
        value: null,
      });
      // Compacting again changes nothing; keepLast 0 still keeps the head of every key.
      expect(await backend.compact({ env, key: "flags", keepLast: 2 })).toBe(0);
      expect(await backend.compact({ env, keepLast: 0 })).toBe(1);
      const heads = await backend.heads(env);
      expect(ids(await backend.list({ env })).sort()).toEqual(ids(heads).sort());
      expect(heads.map((h) => h.id)).toContain(flags[4]!.id);
      expect(heads.map((h) => h.compacted)).toEqual([false, false]);
      // A new version still follows the head.
      expect((await backend.put(version(env, 5))).version).toBe(6);
    });

    it("compact keepSince keeps versions created at or after the time; staged versions and the effective version are kept", async () => {
      const { backend, env } = await start();
      const flags = await chain(backend, env, 3);
      expect(await backend.compact({ env, keepSince: 0 })).toBe(0);
      // v4 staged for one node, v5 head staged too: v3 is what every other node runs, so it stays.
      const [v4, v5] = await chain(backend, env, 2, { rollout: { nodes: ["gw-1"] } }, 3);
      await backend.setRollout(v4!, "staged", "canary");
      await backend.setRollout(v5!, "staged", "canary");
      const later = Math.max(...[...flags, v4!, v5!].map((v) => v.createdAt)) + 1;
      expect(await backend.compact({ env, keepSince: later })).toBe(2);
      expect(ids(await backend.list({ env }))).toEqual([flags[2]!.id, v4!.id, v5!.id]);
      // Once v4 is rolled back and v5 promoted, v5 is what every node runs: v3 and v4 may go.
      await backend.setRollout(v4!, "rolled-back", "superseded");
      await backend.setRollout(v5!, "promoted", "healthy");
      expect(await backend.compact({ env, keepSince: later })).toBe(2);
      expect(ids(await backend.list({ env }))).toEqual([v5!.id]);
    });

    it("rollout state only moves up (staged < promoted < rolled-back) and is listed per environment", async () => {
      const { backend, env } = await start();
      const [v1, v2] = await chain(backend, env, 2, { rollout: { percent: 50 } });
      const staged = await backend.setRollout(v1!, "staged", "canary");
      expect(staged).toMatchObject({
        id: v1!.id,
        env,
        key: "flags",
        version: 1,
        state: "staged",
        reason: "canary",
      });
      expect(typeof staged.updatedAt).toBe("number");
      expect((await backend.setRollout(v1!, "promoted", "healthy")).state).toBe("promoted");
      expect(await backend.setRollout(v1!, "staged", "late")).toMatchObject({
        state: "promoted",
        reason: "healthy",
      });
      expect((await backend.setRollout(v1!, "rolled-back", "error rate")).state).toBe("rolled-back");
      expect(await backend.setRollout(v1!, "promoted", "late")).toMatchObject({
        state: "rolled-back",
        reason: "error rate",
      });
      // A first call may start above staged.
      expect((await backend.setRollout(v2!, "rolled-back", "check failed")).state).toBe("rolled-back");
      const listed = await backend.rollouts(env);
      expect(listed.map((r) => [r.id, r.state]).sort()).toEqual(
        [
          [v1!.id, "rolled-back"],
          [v2!.id, "rolled-back"],
        ].sort(),
      );
      expect(await backend.rollouts(`${env}-other`)).toEqual([]);
    });

    it("concurrent rollout moves: rolled-back wins a race with promoted, whatever the order", async () => {
      const { backend, env } = await start();
      const staged = await chain(backend, env, 4, { rollout: { nodes: ["gw-1"] } });
      for (const [i, v] of staged.entries()) {
        await backend.setRollout(v, "staged", "canary");
        const moves = [
          () => backend.setRollout(v, "promoted", "healthy"),
          () => backend.setRollout(v, "rolled-back", "unhealthy"),
          () => backend.setRollout(v, "staged", "late"),
        ];
        if (i % 2 === 1) moves.reverse();
        await Promise.all(moves.map((m) => m()));
      }
      const records = await backend.rollouts(env);
      expect(records).toHaveLength(4);
      for (const r of records) expect(r).toMatchObject({ state: "rolled-back", reason: "unhealthy" });
    });

    it("watch: a resync on subscribe, then the environment's versions, tombstones and rollouts; nothing after unsubscribe", async () => {
      const { backend, env } = await start();
      const seen = { versions: [] as StoredVersion[], rollouts: [] as RolloutRecord[], resyncs: 0 };
      const watcher: ConfigWatcher = {
        onVersion: (v) => seen.versions.push(v),
        onRollout: (r) => seen.rollouts.push(r),
        onInvalid: () => {},
        onResync: () => seen.resyncs++,
      };
      const stop = backend.watch(env, watcher);
      await eventually("a resync after subscribe", () => seen.resyncs >= 1);
      const [v1, v2] = await chain(backend, env, 2);
      await chain(backend, `${env}-other`, 1);
      await eventually("both versions", () => new Set(seen.versions.map((v) => v.id)).size >= 2);
      expect(seen.versions.find((v) => v.id === v2!.id)).toEqual(v2);
      await backend.setRollout(v2!, "promoted", "all");
      await eventually("the rollout", () =>
        seen.rollouts.some((r) => r.id === v2!.id && r.state === "promoted"),
      );
      expect(await backend.compact({ env, keepLast: 1 })).toBe(1);
      await eventually("the tombstone", () => seen.versions.some((v) => v.id === v1!.id && v.compacted));
      expect(seen.versions.every((v) => v.env === env)).toBe(true);
      stop();
      const count = seen.versions.length;
      const v3 = await backend.put(version(env, 2));
      const probe: StoredVersion[] = [];
      const stopProbe = backend.watch(env, {
        ...watcher,
        onVersion: (v) => probe.push(v),
        onResync: () => {},
      });
      await backend.put(version(env, 3));
      await eventually("a second watcher sees the next version", () => probe.length >= 1);
      stopProbe();
      expect(seen.versions.length).toBe(count);
      expect(seen.versions.some((v) => v.id === v3.id)).toBe(false);
    });
  });
}
