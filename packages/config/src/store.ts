/**
 * The config store: the heart of `@nxs-sync/config`. It keeps, per key of one environment, the
 * effective version for this node (opened and validated) in memory, served by a synchronous `get`;
 * writes new versions through the backend's compare-and-swap; reads history, diffs and rolls back;
 * watches a key with a cursor (no gap, no repeat, a conflict reported); promotes between
 * environments; exports and imports files; stages rollouts with a baked health check; and boots from
 * a last-known-good file when no server answers. See docs/config.md.
 *
 * This file composes the parts: store-context.ts (what they share), key-cache.ts (versions known
 * and the effective one per key), server-sync.ts (reads after every (re)connect, the realtime
 * watcher), watch-delivery.ts (listeners' cursors), last-known-good.ts (the cache file),
 * version-reads.ts, env-transfer.ts (promote, export, import) and rollout-bake.ts.
 */
import { randomInt } from "node:crypto";
import {
  checkNumberOption,
  checkOption,
  createHlcClock,
  defaultLogger,
  ID_PATTERN,
  type Json,
} from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { diffValues } from "./diff.js";
import { checkStored, createEnvTransfer, type WriteVersion } from "./env-transfer.js";
import { ConfigErrorCode } from "./errors.js";
import { holdProcess } from "./keep-alive.js";
import { createKeyCache } from "./key-cache.js";
import { createLastKnownGood } from "./last-known-good.js";
import { bakeRollout } from "./rollout-bake.js";
import { redactValue, sealValue } from "./secrets.js";
import { createServerSync } from "./server-sync.js";
import { createStoreContext, fail } from "./store-context.js";
import type {
  ConfigSchemas,
  ConfigStore,
  ConfigStoreOptions,
  ConfigValue,
  ConfigWatchEvent,
} from "./store-types.js";
import { validateValue } from "./validate.js";
import { ENV_PATTERN, KEY_PATTERN, type RolloutTarget } from "./version.js";
import { toVersionMeta } from "./version-meta.js";
import { createVersionReads } from "./version-reads.js";
import { createWatchDelivery } from "./watch-delivery.js";

export type {
  ConfigInput,
  ConfigKey,
  ConfigSchemas,
  ConfigStore,
  ConfigStoreEvent,
  ConfigStoreOptions,
  ConfigValue,
  ConfigWatchEvent,
  HistoryEntry,
  ImportResult,
  KeyChange,
  PutOptions,
  RolloutOptions,
  VersionRef,
} from "./store-types.js";

const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const randomVersionId = (): string => {
  let s = "";
  for (let i = 0; i < 15; i++) s += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  return s;
};

/**
 * Creates a config store over a backend, for one environment and node.
 * @param options - Backend, env, node, schemas, keyring, cache file and the injected clock/scheduler.
 * @returns The store; call `start()` first.
 * @throws NxsError `config/invalid` naming each malformed option (env, node, key names, timings).
 * @example
 * ```ts
 * import { z } from "zod";
 * const backend = createMemoryConfigBackend();
 * const store = createConfigStore({ backend, env: "production", node: "gw-1",
 *   schemas: { limits: z.object({ rps: z.number().int() }) } });
 * await store.start();
 * const meta = await store.put("limits", { rps: 50 }, { expectedVersion: 0, author: "ann", message: "first" });
 * store.get("limits").rps; // 50
 * ```
 */
export function createConfigStore<S extends ConfigSchemas>(options: ConfigStoreOptions<S>): ConfigStore<S> {
  const { backend, env, node, schemas, keyring } = options;
  const scheduler = options.scheduler ?? createTimerScheduler();
  const clock = options.clock ?? (() => scheduler.now());
  const logger = options.logger ?? defaultLogger;
  const bootTimeoutMs = options.bootTimeoutMs ?? 5000;
  const retryMs = options.retryMs ?? 1000;
  const cacheWriteDelayMs = options.cacheWriteDelayMs ?? 100;
  const problems = [
    ...(ENV_PATTERN.test(env)
      ? []
      : [`env ${JSON.stringify(env)} is not an environment name (${ENV_PATTERN})`]),
    ...(ID_PATTERN.test(node) ? [] : [`node ${JSON.stringify(node)} is not a node id (${ID_PATTERN})`]),
    ...Object.keys(schemas)
      .filter((k) => !KEY_PATTERN.test(k))
      .map((k) => `schemas key ${JSON.stringify(k)} is not a key name (${KEY_PATTERN})`),
  ];
  checkOption(problems.length === 0, () => `createConfigStore: ${problems.join("; ")}`);
  checkNumberOption("bootTimeoutMs", options.bootTimeoutMs, { min: 0 });
  checkNumberOption("retryMs", options.retryMs, { min: 1 });
  checkNumberOption("cacheWriteDelayMs", options.cacheWriteDelayMs, { min: 0 });

  const ctx = createStoreContext({
    backend,
    env,
    node,
    schemas,
    keyring,
    scheduler,
    clock,
    logger,
    hlc: createHlcClock({ replicaId: node, now: clock }),
    newId: options.newId ?? randomVersionId,
    cacheFile: options.cacheFile,
    onEvent: options.onEvent,
  });
  const { life, schemaOf } = ctx;
  // The parts; the cache file is written after a key's effective version changed (never during
  // createKeyCache: lkg is set by then).
  const cache = createKeyCache(ctx, () => lkg.schedule());
  const lkg = createLastKnownGood(ctx, cache, cacheWriteDelayMs);
  const watches = createWatchDelivery(ctx, cache);
  const sync = createServerSync(ctx, cache, watches, retryMs);
  const reads = createVersionReads(ctx);
  let stopWatch: (() => void) | undefined;

  const ready = (): void => {
    if (life.closed) throw fail(ConfigErrorCode.NotReady, "the config store is closed");
  };

  const write: WriteVersion = async (key, stored, o) => {
    ready();
    const v = await backend.put({
      id: ctx.newId(),
      env,
      key,
      expectedVersion: o.expectedVersion,
      hlc: ctx.hlc.now(),
      node,
      author: o.author,
      message: o.message,
      value: stored,
      ...(o.rollbackOf === undefined ? {} : { rollbackOf: o.rollbackOf }),
      ...(o.rollout === undefined ? {} : { rollout: o.rollout }),
    });
    if (o.rollout !== undefined) cache.ingestRollout(await backend.setRollout(v, "staged", o.message));
    if (cache.ingestVersion(v)) cache.recompute(key);
    return v;
  };
  const transfer = createEnvTransfer(ctx, reads, write);

  const store: ConfigStore<S> = {
    async start() {
      ready();
      if (life.started) throw fail(ConfigErrorCode.NotReady, "the config store was started already");
      life.started = true;
      const booted = new Promise<{ source: "server" | "cache" }>((resolveBoot, rejectBoot) => {
        let done = false;
        /** The read of the cache file under way (one at a time). */
        let reading: Promise<boolean> | undefined;
        const readCache = (path: string): Promise<boolean> => {
          reading ??= lkg.boot(path).finally(() => {
            reading = undefined;
          });
          return reading;
        };
        sync.onSynced = () => {
          if (done) return;
          done = true;
          resolveBoot({ source: "server" });
        };
        /** Boots from the cache file if it is usable; `final` (the bound) fails the boot otherwise. */
        const fallBack = async (why: string, final: boolean): Promise<void> => {
          if (done || life.synced) return;
          const path = options.cacheFile;
          if (path !== undefined && (await readCache(path)) && !done) {
            done = true;
            life.degraded = true;
            ctx.emit({ type: "degraded", reason: why });
            resolveBoot({ source: "cache" });
            return;
          }
          if (done || !final) return;
          done = true;
          rejectBoot(
            fail(
              ConfigErrorCode.NotReady,
              `${why} and no usable cache file${path === undefined ? " (none configured)" : ` at ${path}`}`,
            ),
          );
        };
        // Every server definitely failed (refused, unresolved, all down): the cache file at once;
        // without a usable one, the boot waits for a server until the bound.
        sync.onUnreachable = (reason) => {
          if (!done) void fallBack(`no server can answer: ${reason}`, false);
        };
        ctx.sleep(bootTimeoutMs).then(
          () => fallBack(`no server answered within ${bootTimeoutMs} ms`, true),
          (closedMeanwhile: unknown) => {
            // close() before the boot ended: the boot fails with config/not-ready.
            if (done) return;
            done = true;
            rejectBoot(closedMeanwhile);
          },
        );
      });
      // A caller awaiting the boot keeps its process alive until it settles (keep-alive.ts).
      const release = holdProcess();
      booted.then(release, release);
      stopWatch = backend.watch(env, sync.watcher);
      void sync.sync();
      return booted;
    },
    get(key) {
      const current = cache.keys.get(key)?.current;
      if (current === undefined) {
        if (!life.started || life.closed)
          throw fail(ConfigErrorCode.NotReady, "the config store is not started");
        throw fail(ConfigErrorCode.NotFound, `config "${env}/${key}" has no good version`);
      }
      return current.value as ConfigValue<S, typeof key>;
    },
    version(key) {
      const current = cache.keys.get(key)?.current;
      return current === undefined ? undefined : toVersionMeta(current.stored);
    },
    async put(key, value, o) {
      ready();
      const schema = schemaOf(key);
      const parsed = validateValue(key, schema, value) as Json;
      return toVersionMeta(await write(key, sealValue(key, parsed, schema, keyring), o));
    },
    async history(key, o = {}) {
      schemaOf(key);
      const list = await backend.list({
        env,
        key,
        order: "desc",
        limit: o.limit ?? 50,
        ...(o.before === undefined ? {} : { beforeVersion: o.before }),
      });
      return list.map((v) => ({ ...toVersionMeta(v), value: redactValue(v.value as Json) }));
    },
    async diff(key, a, b) {
      schemaOf(key);
      const [va, vb] = await Promise.all([reads.resolve(key, a), reads.resolve(key, b)]);
      return diffValues(va.value as Json, vb.value as Json);
    },
    async rollback(key, to, o) {
      ready();
      const target = await reads.resolve(key, to);
      checkStored(ctx, key, target.value as Json);
      const head = await reads.headOf(key);
      const v = await write(key, target.value as Json, {
        expectedVersion: head?.version ?? 0,
        author: o.author,
        message: o.message,
        rollbackOf: target.version,
      });
      return toVersionMeta(v);
    },
    watch(key, listener, o = {}) {
      ready();
      schemaOf(key);
      const known = [...(cache.keys.get(key)?.versions.values() ?? [])].reduce(
        (m, v) => Math.max(m, v.version),
        0,
      );
      return watches.add(key, listener as (event: ConfigWatchEvent<unknown>) => void, o.fromVersion ?? known);
    },
    async promote(o) {
      ready();
      return transfer.promote(o);
    },
    async compact(o) {
      ready();
      return backend.compact({
        env,
        ...(o.key === undefined ? {} : { key: o.key }),
        ...(o.keepLast === undefined ? {} : { keepLast: o.keepLast }),
        ...(o.keepSince === undefined ? {} : { keepSince: o.keepSince }),
      });
    },
    async exportEnv(format) {
      ready();
      return transfer.exportEnv(format);
    },
    async importEnv(text, o) {
      ready();
      return transfer.importEnv(text, o);
    },
    async rollout(key, value, o) {
      ready();
      checkNumberOption("bakeMs", o.bakeMs, { min: 0 });
      checkNumberOption("checkEveryMs", o.checkEveryMs, { min: 1 });
      checkNumberOption("percent", o.percent, { min: 0, max: 100 });
      const head = await reads.headOf(key);
      const target: RolloutTarget = {
        ...(o.nodes === undefined ? {} : { nodes: o.nodes }),
        ...(o.percent === undefined ? {} : { percent: o.percent }),
      };
      const meta = await store.put(key, value, {
        expectedVersion: head?.version ?? 0,
        author: o.author,
        message: o.message,
        rollout: target,
      });
      // The caller awaits the bake: it keeps the process alive meanwhile (keep-alive.ts).
      const release = holdProcess();
      try {
        return await bakeRollout(ctx, meta, o, cache.ingestRollout);
      } finally {
        release();
      }
    },
    async close() {
      if (life.closed) return;
      const pending = lkg.pending();
      life.closed = true;
      stopWatch?.();
      watches.closeAll();
      ctx.stopTimers();
      if (pending) await lkg.writeNow();
      await lkg.settled();
    },
  };
  return store;
}
