/**
 * The config store: the heart of `@nxs-sync/config`. It keeps, per key of one environment, the
 * effective version for this node (opened and validated) in memory, served by a synchronous `get`;
 * writes new versions through the backend's compare-and-swap; reads history, diffs and rolls back;
 * watches a key with a cursor (no gap, no repeat, a conflict reported); promotes between
 * environments; exports and imports files; stages rollouts with a baked health check; and boots from
 * a last-known-good file when no server answers. See docs/config.md.
 */
import { randomInt } from "node:crypto";
import {
  callGuarded,
  checkNumberOption,
  checkOption,
  createHlcClock,
  defaultLogger,
  ID_PATTERN,
  isNxsError,
  type Json,
  type Logger,
  NxsError,
  type Scheduler,
  type WallClock,
} from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import type { z } from "zod";
import type { ConfigBackend, ConfigWatcher } from "./backend.js";
import { CACHE_FILE_FORMAT, type CacheFileContent, readCacheFile, writeCacheFile } from "./cache-file.js";
import { diffValues, type JsonPatchOperation } from "./diff.js";
import { ConfigErrorCode } from "./errors.js";
import { exportFileOf, parseExport, renderExport } from "./files.js";
import { effectiveVersion } from "./rollout-target.js";
import { type Keyring, openValue, redactValue, sealedPaths, sealValue } from "./secrets.js";
import { checkValue, validateValue } from "./validate.js";
import {
  compareVersions,
  ENV_PATTERN,
  KEY_PATTERN,
  ROLLOUT_RANK,
  type RolloutRecord,
  type RolloutTarget,
  type StoredVersion,
  type VersionMeta,
} from "./version.js";
import { toVersionMeta } from "./version-meta.js";
import { createWatchCursor, type WatchCursor } from "./watch-cursor.js";

/** A zod schema per key. */
export type ConfigSchemas = Readonly<Record<string, z.ZodType>>;
/** The keys of a schemas map. */
export type ConfigKey<S extends ConfigSchemas> = keyof S & string;
/** The value type of a key as read (its schema's output: defaults applied). */
export type ConfigValue<S extends ConfigSchemas, K extends ConfigKey<S>> = z.output<S[K]>;
/** The value type of a key as written (its schema's input: fields with a default may be left out). */
export type ConfigInput<S extends ConfigSchemas, K extends ConfigKey<S>> = z.input<S[K]>;

/** What a store tells its `onEvent` listener. */
export type ConfigStoreEvent =
  /** The effective version of a key changed (a put, a realtime version, a rollout move, a boot). */
  | {
      readonly type: "change";
      readonly key: string;
      readonly version: VersionMeta;
      readonly previous?: VersionMeta;
    }
  /** Two versions of one number met (created on two servers during a cut): `winner` is head of the two. */
  | {
      readonly type: "conflict";
      readonly key: string;
      readonly winner: VersionMeta;
      readonly loser: VersionMeta;
    }
  /** A stored version fails its schema or does not open (reported once; the last good stays in use). */
  | {
      readonly type: "invalid";
      readonly key: string;
      readonly version?: VersionMeta;
      readonly error: NxsError;
    }
  /** Booted from the cache file: no server answered in time (the store keeps trying). */
  | { readonly type: "degraded"; readonly reason: string }
  /** A server answered after a boot from the cache file. */
  | { readonly type: "recovered" }
  /** A staged version was rolled back (here or anywhere): it stays hidden. */
  | {
      readonly type: "rolled-back";
      readonly key: string;
      /** The rolled-back version's id and number. */
      readonly id: string;
      readonly version: number;
      readonly reason: string;
    };

/** What a key's watch listener receives. */
export type ConfigWatchEvent<V> =
  /** The next version, in `(version, hlc, id)` order, with its opened and validated value. */
  | { readonly type: "version"; readonly version: VersionMeta; readonly value: V }
  /** The next version, which fails its schema or does not open: its place in the order, no value. */
  | { readonly type: "invalid"; readonly version: VersionMeta; readonly error: NxsError }
  /** Two versions of one number met: `loser` is never delivered after `winner` (or was delivered first). */
  | {
      readonly type: "conflict";
      readonly key: string;
      readonly winner: VersionMeta;
      readonly loser: VersionMeta;
    };

/** A version as history shows it: its meta and its redacted stored value. */
export interface HistoryEntry extends VersionMeta {
  /** The stored value with every secret redacted. */
  readonly value: Json;
}

/** The change one key would get (or got) from a promote or an import. */
export interface KeyChange {
  readonly key: string;
  /** This environment's head before. */
  readonly before?: VersionMeta;
  /** RFC 6902 operations from the current value to the new one (redacted forms). */
  readonly patch: readonly JsonPatchOperation[];
  /** The version written (not on a dry run, nor when nothing changed). */
  readonly written?: VersionMeta;
}

/** What `importEnv` did (or would do). */
export interface ImportResult {
  readonly changes: readonly KeyChange[];
  /** `key.path` of each secret this process cannot open (its key id is not held): left as stored. */
  readonly secretsSkipped: readonly string[];
}

/** Options of {@link createConfigStore}. */
export interface ConfigStoreOptions<S extends ConfigSchemas> {
  readonly backend: ConfigBackend;
  /** The environment this store serves (`production`, `staging`, ...). */
  readonly env: string;
  /** This gateway node's id (in every version it writes, and what rollouts target). */
  readonly node: string;
  readonly schemas: S;
  /** Opens and seals secret fields (none: a value with a secret cannot be written or opened). */
  readonly keyring?: Keyring;
  /** The last-known-good file (stored forms); written after changes, read when no server answers. */
  readonly cacheFile?: string;
  /** How long `start` waits for a server before it boots from `cacheFile` (default 5000 ms). */
  readonly bootTimeoutMs?: number;
  /** How long to wait between tries to reach a server after a failure (default 1000 ms). */
  readonly retryMs?: number;
  /** How long after a change the cache file is written (debounce, default 100 ms). */
  readonly cacheWriteDelayMs?: number;
  /** The wall clock of the HLC and the cache file's `savedAt` (default: the scheduler's `now`). */
  readonly clock?: WallClock;
  /** Timers (default: real timers). Tests pass a manual scheduler. */
  readonly scheduler?: Scheduler;
  readonly logger?: Logger;
  readonly onEvent?: (event: ConfigStoreEvent) => void;
  /** The source of version ids (default: node:crypto, 15 chars `[a-z0-9]`). */
  readonly newId?: () => string;
}

/** Options of a put. */
export interface PutOptions {
  /** The head version the value is based on (0 for a new key). */
  readonly expectedVersion: number;
  readonly author: string;
  readonly message: string;
  /** Stage the version for some nodes first (see `rollout`). */
  readonly rollout?: RolloutTarget;
}

/** Options of a staged rollout. */
export interface RolloutOptions {
  readonly nodes?: readonly string[];
  readonly percent?: number;
  /** How long the version bakes on its target before it is promoted. */
  readonly bakeMs: number;
  /** How often `check` is called while baking (default: a fifth of `bakeMs`). */
  readonly checkEveryMs?: number;
  /** The health check; false (or a throw) rolls the version back at once. */
  readonly check: () => Promise<boolean>;
  readonly author: string;
  readonly message: string;
}

/** A version by number (the head of that number, after a cut) or by record id. */
export type VersionRef = number | string;

/** The config store (see {@link createConfigStore}). */
export interface ConfigStore<S extends ConfigSchemas> {
  /**
   * Loads heads and rollouts from the server and starts watching; when no server answers within
   * `bootTimeoutMs` and a cache file is readable, boots from it (a `degraded` event) and keeps trying.
   * @throws NxsError `config/not-ready` when no server answered in time and there is no usable cache file.
   */
  start(): Promise<{ readonly source: "server" | "cache" }>;
  /**
   * The effective value of a key for this node, from memory (no request).
   * @throws NxsError `config/not-ready` before start; `config/not-found` when the key has no good version.
   */
  get<K extends ConfigKey<S>>(key: K): ConfigValue<S, K>;
  /** The meta of the version `get` serves, or undefined. */
  version(key: ConfigKey<S>): VersionMeta | undefined;
  /**
   * Validates, seals secrets and creates version `expectedVersion + 1`.
   * @throws InvalidConfigError `config/invalid-value` naming each failing field; ConfigConflictError
   *   `config/conflict` carrying the head; `config/unknown-key`.
   */
  put<K extends ConfigKey<S>>(key: K, value: ConfigInput<S, K>, options: PutOptions): Promise<VersionMeta>;
  /** The newest versions (before `before`), newest first, values redacted. */
  history(key: ConfigKey<S>, options?: { limit?: number; before?: number }): Promise<readonly HistoryEntry[]>;
  /**
   * RFC 6902 patch from version `a` to version `b` (redacted forms).
   * @throws NxsError `config/compacted`, `config/not-found`.
   */
  diff(key: ConfigKey<S>, a: VersionRef, b: VersionRef): Promise<readonly JsonPatchOperation[]>;
  /**
   * Writes a new version equal to an old one (`rollbackOf` set), based on the current head.
   * @throws NxsError `config/compacted`, `config/not-found`, `config/invalid-value` (the old value fails today's schema).
   */
  rollback(
    key: ConfigKey<S>,
    to: VersionRef,
    options: { author: string; message: string },
  ): Promise<VersionMeta>;
  /**
   * Delivers every version of a key after `fromVersion` (default: the newest known) in order, with
   * no gap and no repeat across resyncs; a version of a cut's losing side is a `conflict` event.
   * @returns The function that stops watching.
   */
  watch<K extends ConfigKey<S>>(
    key: K,
    listener: (event: ConfigWatchEvent<ConfigValue<S, K>>) => void,
    options?: { fromVersion?: number },
  ): () => void;
  /**
   * Copies another environment's versions into this one (per key the greatest version every node
   * there runs, never a staged or rolled-back head), diff against this environment's heads first (a
   * dry run writes nothing).
   */
  promote(options: {
    from: string;
    keys?: readonly ConfigKey<S>[];
    dryRun?: boolean;
    author: string;
    message: string;
  }): Promise<readonly KeyChange[]>;
  /** Compacts this environment's old versions (head, staged and effective versions are kept). */
  compact(options: { keepLast?: number; keepSince?: number; key?: ConfigKey<S> }): Promise<number>;
  /**
   * The environment as an export file: per key the greatest version every node runs (the head, or
   * below a staged or rolled-back head), in stored form (secrets as ciphertext with their key id).
   */
  exportEnv(format: "yaml" | "json"): Promise<string>;
  /**
   * Imports an export file into this environment: validates, diffs against the heads, and (unless a
   * dry run) puts each changed key. A secret this process cannot open is left as stored.
   * @throws NxsError `config/invalid-file`; InvalidConfigError `config/invalid-value` (nothing written).
   */
  importEnv(
    text: string,
    options: { dryRun?: boolean; author: string; message: string },
  ): Promise<ImportResult>;
  /**
   * Stages a version for some nodes, bakes it while calling `check`, then promotes it, or rolls it back
   * (it stays hidden, a `rolled-back` event) on the first failing check.
   */
  rollout<K extends ConfigKey<S>>(
    key: K,
    value: ConfigInput<S, K>,
    options: RolloutOptions,
  ): Promise<{ readonly version: VersionMeta; readonly state: RolloutRecord["state"] }>;
  /** Stops watching and timers; writes a pending cache file. The backend stays open (its owner closes it). */
  close(): Promise<void>;
}

const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const randomVersionId = (): string => {
  let s = "";
  for (let i = 0; i < 15; i++) s += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  return s;
};
const LIST_PAGE = 1000;
/** How many version numbers below the one in use the cache keeps (for conflicts and watches). */
const KEEP_BELOW = 32;
const rank = (state: RolloutRecord["state"]): number => ROLLOUT_RANK.indexOf(state);

const deepFreeze = <T>(value: T): T => {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
};

type Checked =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: NxsError };

interface KeyState {
  readonly versions: Map<string, StoredVersion>;
  readonly checked: Map<string, Checked>;
  current?: { readonly stored: StoredVersion; readonly value: unknown };
  readonly conflicts: Set<string>;
  /** The last history read brought nothing new (reset by the next new version). */
  exhausted: boolean;
}

interface KeyWatch {
  readonly key: string;
  readonly cursor: WatchCursor;
  readonly listener: (event: ConfigWatchEvent<unknown>) => void;
  queue: Promise<void>;
  closed: boolean;
}

const asNxs = (error: unknown): NxsError =>
  isNxsError(error)
    ? error
    : new NxsError(ConfigErrorCode.InvalidRecord, error instanceof Error ? error.message : String(error), {
        cause: error,
      });

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
  const newId = options.newId ?? randomVersionId;
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
  const hlc = createHlcClock({ replicaId: node, now: clock });

  const keys = new Map<string, KeyState>();
  const rollouts = new Map<string, RolloutRecord>();
  const rolledBackTold = new Set<string>();
  const loading = new Set<string>();
  const invalidTold = new Set<string>();
  const watches = new Set<KeyWatch>();
  const timers = new Set<() => void>();
  let started = false;
  let closed = false;
  let stopWatch: (() => void) | undefined;
  let degraded = false;
  /** A read of the server succeeded once (the boot is over; what arrives now is news). */
  let synced = false;

  const emit = (event: ConfigStoreEvent): void => {
    callGuarded("onEvent", options.onEvent, [event], (err) =>
      logger.warn(`[nxs-sync config] ${err.message}`),
    );
  };
  const fail = (code: (typeof ConfigErrorCode)[keyof typeof ConfigErrorCode], message: string): NxsError =>
    new NxsError(code, message);
  const schemaOf = (key: string): z.ZodType => {
    const schema = Object.hasOwn(schemas, key) ? schemas[key] : undefined;
    if (schema === undefined)
      throw fail(ConfigErrorCode.UnknownKey, `config key "${key}" has no schema in this store`);
    return schema;
  };
  const stateOf = (key: string): KeyState => {
    let st = keys.get(key);
    if (st === undefined) {
      st = { versions: new Map(), checked: new Map(), conflicts: new Set(), exhausted: false };
      keys.set(key, st);
    }
    return st;
  };
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve, reject) => {
      if (closed) {
        reject(fail(ConfigErrorCode.NotReady, "the config store is closed"));
        return;
      }
      const stop = () => {
        timers.delete(stop);
        cancel();
        reject(fail(ConfigErrorCode.NotReady, "the config store is closed"));
      };
      const cancel = scheduler.schedule(ms, () => {
        timers.delete(stop);
        resolve();
      });
      timers.add(stop);
    });

  // ---- the cache: versions known per key, and the effective (visible, valid) one ----

  const check = (st: KeyState, v: StoredVersion): Checked => {
    const known = st.checked.get(v.id);
    if (known !== undefined) return known;
    let result: Checked;
    try {
      const schema = schemaOf(v.key);
      const r = checkValue(v.key, schema, openValue(v.key, v.value as Json, schema, keyring));
      result = r.ok ? { ok: true, value: deepFreeze(r.value) } : { ok: false, error: r.error };
    } catch (error) {
      result = { ok: false, error: asNxs(error) };
    }
    st.checked.set(v.id, result);
    // Told once per version, even when a watch reads it again after the cache let it go.
    if (!result.ok && !invalidTold.has(v.id)) {
      invalidTold.add(v.id);
      logger.warn(
        `[nxs-sync config] ${env}/${v.key} v${v.version} (${v.id}) is not usable: ${result.error.message}`,
      );
      emit({ type: "invalid", key: v.key, version: toVersionMeta(v), error: result.error });
    }
    return result;
  };

  let cacheTimer: (() => void) | undefined;
  let cacheWrite: Promise<void> = Promise.resolve();
  const writeCacheNow = (): Promise<void> => {
    const path = options.cacheFile;
    if (path === undefined) return Promise.resolve();
    const versions: StoredVersion[] = [];
    for (const st of keys.values()) if (st.current !== undefined) versions.push(st.current.stored);
    const ids = new Set(versions.map((v) => v.id));
    const content: CacheFileContent = {
      format: CACHE_FILE_FORMAT,
      env,
      savedAt: clock(),
      versions,
      rollouts: [...rollouts.values()].filter((r) => ids.has(r.id)),
    };
    cacheWrite = cacheWrite
      .then(() => writeCacheFile(path, content))
      .catch((error: unknown) =>
        logger.warn(`[nxs-sync config] cannot write ${path}: ${asNxs(error).message}`),
      );
    return cacheWrite;
  };
  const scheduleCacheWrite = (): void => {
    if (options.cacheFile === undefined || cacheTimer !== undefined || closed) return;
    const cancel = scheduler.schedule(cacheWriteDelayMs, () => {
      timers.delete(stop);
      cacheTimer = undefined;
      void writeCacheNow();
    });
    const stop = () => {
      cancel();
      cacheTimer = undefined;
    };
    cacheTimer = stop;
    timers.add(stop);
  };

  /** Picks a key's effective version again (after a version, a rollout move, a boot). */
  const recompute = (key: string): void => {
    const st = keys.get(key);
    if (st === undefined) return;
    let candidates = [...st.versions.values()].filter((v) => !v.compacted);
    let picked: { stored: StoredVersion; value: unknown } | undefined;
    for (;;) {
      const eff = effectiveVersion(candidates, rollouts, node);
      if (eff === undefined) break;
      const r = check(st, eff);
      if (r.ok) {
        picked = { stored: eff, value: r.value };
        break;
      }
      candidates = candidates.filter((v) => v.id !== eff.id);
    }
    if (picked === undefined) {
      // Nothing known is usable here (hidden, invalid): older versions may be; read them once.
      if (!st.exhausted && !loading.has(key) && synced) void loadMore(key);
      return;
    }
    // Versions far below the one in use matter to nobody here: the cache stays small.
    for (const [id, v] of st.versions) {
      if (v.version < picked.stored.version - KEEP_BELOW) {
        st.versions.delete(id);
        st.checked.delete(id);
      }
    }
    const previous = st.current?.stored;
    if (previous?.id === picked.stored.id) return;
    st.current = picked;
    emit({
      type: "change",
      key,
      version: toVersionMeta(picked.stored),
      ...(previous === undefined ? {} : { previous: toVersionMeta(previous) }),
    });
    scheduleCacheWrite();
  };

  /** Takes a version into the cache. @returns Whether it was new (or newly a tombstone). */
  const ingestVersion = (v: StoredVersion): boolean => {
    if (v.env !== env || !Object.hasOwn(schemas, v.key)) return false;
    try {
      hlc.receive(v.hlc);
    } catch {
      // A stamp from a drifting clock still orders the version; this clock just does not follow it.
    }
    const st = stateOf(v.key);
    const known = st.versions.get(v.id);
    if (known !== undefined && (known.compacted || !v.compacted)) return false;
    st.versions.set(v.id, v);
    st.exhausted = false;
    if (!v.compacted) {
      for (const other of st.versions.values()) {
        if (other.id === v.id || other.version !== v.version || other.compacted) continue;
        const [winner, loser] = compareVersions(v, other) > 0 ? [v, other] : [other, v];
        if (st.conflicts.has(loser.id)) continue;
        st.conflicts.add(loser.id);
        emit({ type: "conflict", key: v.key, winner: toVersionMeta(winner), loser: toVersionMeta(loser) });
      }
    }
    return true;
  };

  const ingestRollout = (r: RolloutRecord): void => {
    if (r.env !== env) return;
    const known = rollouts.get(r.id);
    if (known !== undefined && rank(r.state) <= rank(known.state)) return;
    rollouts.set(r.id, r);
    // Told once per version, and only as news: a boot reads past rollbacks without telling them.
    if (r.state === "rolled-back" && (synced || degraded) && !rolledBackTold.has(r.id)) {
      rolledBackTold.add(r.id);
      emit({ type: "rolled-back", key: r.key, id: r.id, version: r.version, reason: r.reason });
    }
    if (keys.has(r.key)) recompute(r.key);
  };

  /** Reads a key's recent history when what the cache holds gives no good version. */
  const loadMore = async (key: string): Promise<void> => {
    if (loading.has(key)) return;
    loading.add(key);
    try {
      let fresh = 0;
      for (const v of await backend.list({ env, key, order: "desc", limit: 50 }))
        if (ingestVersion(v)) fresh++;
      // Nothing new: asking again would read the same; a version that arrives later asks again.
      stateOf(key).exhausted = fresh === 0;
    } catch (error) {
      logger.warn(`[nxs-sync config] cannot read the history of ${env}/${key}: ${asNxs(error).message}`);
    } finally {
      loading.delete(key);
    }
    if (!closed) recompute(key);
  };

  /** Reads heads and rollouts (the truth after a (re)connect) into the cache. */
  const loadFromServer = async (): Promise<void> => {
    const [heads, rolls] = await Promise.all([backend.heads(env), backend.rollouts(env)]);
    for (const r of rolls) ingestRollout(r);
    const changed = heads.filter((h) => ingestVersion(h));
    const incomplete: string[] = [];
    for (const h of heads) {
      if (!Object.hasOwn(schemas, h.key)) continue;
      recompute(h.key);
      if (keys.get(h.key)?.current?.stored.id !== h.id && changed.includes(h)) incomplete.push(h.key);
    }
    for (const key of incomplete) await loadMore(key);
  };

  // ---- sync with the server: single flight, retried after a failure ----

  let syncing: Promise<boolean> | undefined;
  let syncAgain = false;
  let onSynced: (() => void) | undefined;
  let retrying = false;
  const sync = (): Promise<boolean> => {
    if (syncing !== undefined) {
      syncAgain = true;
      return syncing;
    }
    syncing = (async () => {
      let ok = false;
      do {
        syncAgain = false;
        try {
          await loadFromServer();
          ok = true;
        } catch (error) {
          ok = false;
          logger.warn(`[nxs-sync config] cannot read ${env} from ${backend.name}: ${asNxs(error).message}`);
        }
      } while (syncAgain && !closed);
      return ok;
    })().finally(() => {
      syncing = undefined;
    });
    return syncing.then((ok) => {
      if (closed) return ok;
      if (ok) {
        synced = true;
        if (degraded) {
          degraded = false;
          emit({ type: "recovered" });
        }
        onSynced?.();
        for (const w of watches) enqueue(w, () => fill(w));
      } else if (!retrying) {
        // One retry chain at most, whoever asked for the failed read.
        retrying = true;
        sleep(retryMs).then(
          () => {
            retrying = false;
            void sync();
          },
          () => {},
        );
      }
      return ok;
    });
  };

  const envWatcher: ConfigWatcher = {
    onVersion(v) {
      if (closed) return;
      if (ingestVersion(v)) recompute(v.key);
      for (const w of watches) if (w.key === v.key) enqueue(w, () => deliver(w, [v], false));
    },
    onRollout(r) {
      if (!closed) ingestRollout(r);
    },
    onInvalid(raw, reason) {
      const key =
        typeof (raw as { key?: unknown } | null)?.key === "string" ? (raw as { key: string }).key : "";
      emit({
        type: "invalid",
        key,
        error: new NxsError(
          ConfigErrorCode.InvalidRecord,
          `a malformed version record was quarantined: ${reason}`,
        ),
      });
    },
    onResync() {
      if (!closed) void sync();
    },
  };

  const bootFromCache = async (path: string): Promise<boolean> => {
    const read = await readCacheFile(path);
    if (!read.ok) {
      logger.warn(`[nxs-sync config] cache file ${path} not usable (${read.reason}): ${read.detail}`);
      return false;
    }
    if (read.content.env !== env) {
      logger.warn(`[nxs-sync config] cache file ${path} is of env "${read.content.env}", not "${env}"`);
      return false;
    }
    for (const r of read.content.rollouts) ingestRollout(r);
    for (const v of read.content.versions) ingestVersion(v);
    for (const key of keys.keys()) recompute(key);
    return true;
  };

  // ---- watch: one cursor per listener, fed by realtime and queries ----

  const enqueue = (w: KeyWatch, task: () => Promise<void>): void => {
    w.queue = w.queue
      .then(() => (w.closed || closed ? undefined : task()))
      .catch((error: unknown) =>
        logger.warn(
          `[nxs-sync config] watch of ${env}/${w.key}: ${asNxs(error).message} (retried at the next resync)`,
        ),
      );
  };
  const metaIn = (key: string, pos: { id: string }): VersionMeta | undefined => {
    const v = keys.get(key)?.versions.get(pos.id);
    return v === undefined ? undefined : toVersionMeta(v);
  };
  const tell = (w: KeyWatch, event: ConfigWatchEvent<unknown>): void => {
    callGuarded(`a watch listener of "${w.key}"`, w.listener, [event], (err) =>
      logger.warn(`[nxs-sync config] ${err.message}`),
    );
  };
  const fill = async (w: KeyWatch): Promise<void> => {
    let after = w.cursor.queryAfter();
    for (;;) {
      const page = await backend.list({ env, key: w.key, afterVersion: after, limit: LIST_PAGE });
      for (const v of page) if (ingestVersion(v)) recompute(v.key);
      await deliver(w, page, true);
      if (page.length < LIST_PAGE) return;
      const next = Math.max(after + 1, page[page.length - 1]!.version - 1);
      after = next;
    }
  };
  const deliver = async (
    w: KeyWatch,
    versions: readonly StoredVersion[],
    fromQuery: boolean,
  ): Promise<void> => {
    for (const v of versions) {
      if (w.closed || v.compacted) continue;
      let d = w.cursor.decide(v, fromQuery);
      if (d.kind === "hole") {
        await fill(w);
        d = w.cursor.decide(v, true);
      }
      if (d.kind === "repeat") continue;
      const meta = toVersionMeta(v);
      if (d.kind === "conflict") {
        w.cursor.handled(v);
        tell(w, { type: "conflict", key: w.key, winner: metaIn(w.key, d.winner) ?? meta, loser: meta });
        continue;
      }
      if (d.kind !== "deliver") continue;
      w.cursor.delivered(v);
      if (d.sibling !== undefined) {
        tell(w, { type: "conflict", key: w.key, winner: meta, loser: metaIn(w.key, d.sibling) ?? meta });
      }
      const r = check(stateOf(v.key), v);
      tell(
        w,
        r.ok
          ? { type: "version", version: meta, value: r.value }
          : { type: "invalid", version: meta, error: r.error },
      );
    }
  };

  // ---- reads of single versions ----

  const resolve = async (key: string, ref: VersionRef): Promise<StoredVersion> => {
    let found: StoredVersion | undefined;
    if (typeof ref === "string") {
      const v = await backend.get(ref);
      if (v !== undefined && v.env === env && v.key === key) found = v;
    } else {
      const same = await backend.list({
        env,
        key,
        afterVersion: ref - 1,
        beforeVersion: ref + 1,
        includeCompacted: true,
        order: "desc",
        limit: 1,
      });
      found = same[0];
    }
    if (found === undefined) {
      throw fail(ConfigErrorCode.NotFound, `config "${env}/${key}" has no version ${String(ref)}`);
    }
    if (found.compacted || found.value === null) {
      throw fail(ConfigErrorCode.Compacted, `config "${env}/${key}" version ${found.version} was compacted`);
    }
    return found;
  };
  const headOf = async (key: string): Promise<StoredVersion | undefined> =>
    (await backend.list({ env, key, order: "desc", limit: 1, includeCompacted: true }))[0];

  /**
   * Per key of an environment, the greatest version every node runs: the head, or below a staged or
   * rolled-back head the greatest version with no rollout or a promoted one (compacted: none). What
   * export and promote carry: a canary or a rolled-back value never becomes everyone's that way.
   */
  const releasedOf = async (inEnv: string): Promise<Map<string, StoredVersion>> => {
    const [heads, records] = await Promise.all([backend.heads(inEnv), backend.rollouts(inEnv)]);
    const byId = new Map(records.map((r) => [r.id, r]));
    const released = (v: StoredVersion): boolean =>
      v.rollout === undefined || byId.get(v.id)?.state === "promoted";
    const out = new Map<string, StoredVersion>();
    for (const head of heads) {
      if (!Object.hasOwn(schemas, head.key)) continue;
      const v = released(head)
        ? head
        : (
            await backend.list({
              env: inEnv,
              key: head.key,
              order: "desc",
              limit: 50,
              includeCompacted: true,
            })
          ).find(released);
      if (v !== undefined && !v.compacted) out.set(head.key, v);
    }
    return out;
  };

  const ready = (): void => {
    if (closed) throw fail(ConfigErrorCode.NotReady, "the config store is closed");
  };

  const write = async (
    key: string,
    stored: Json,
    o: PutOptions & { rollbackOf?: number },
  ): Promise<StoredVersion> => {
    ready();
    const v = await backend.put({
      id: newId(),
      env,
      key,
      expectedVersion: o.expectedVersion,
      hlc: hlc.now(),
      node,
      author: o.author,
      message: o.message,
      value: stored,
      ...(o.rollbackOf === undefined ? {} : { rollbackOf: o.rollbackOf }),
      ...(o.rollout === undefined ? {} : { rollout: o.rollout }),
    });
    if (o.rollout !== undefined) ingestRollout(await backend.setRollout(v, "staged", o.message));
    if (ingestVersion(v)) recompute(key);
    return v;
  };

  /** A stored value's plain form for a schema check; a secret this process cannot open is checked redacted. */
  const checkStored = (key: string, stored: Json): { readonly unopened: readonly string[] } => {
    const schema = schemaOf(key);
    let plain: Json;
    let unopened: string[] = [];
    try {
      plain = openValue(key, stored, schema, keyring);
    } catch (error) {
      if (!isNxsError(error) || error.code !== ConfigErrorCode.SecretKeyMissing) throw error;
      plain = redactValue(stored);
      unopened = sealedPaths(stored)
        .filter((p) => {
          const leaf = p.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], stored) as {
            kid: string;
          };
          return keyring === undefined || !keyring.has(leaf.kid);
        })
        .map((p) => [key, ...p].join("."));
    }
    validateValue(key, schema, plain);
    return { unopened };
  };

  const store: ConfigStore<S> = {
    async start() {
      ready();
      if (started) throw fail(ConfigErrorCode.NotReady, "the config store was started already");
      started = true;
      const booted = new Promise<{ source: "server" | "cache" }>((resolveBoot, rejectBoot) => {
        let done = false;
        onSynced = () => {
          if (done) return;
          done = true;
          resolveBoot({ source: "server" });
        };
        sleep(bootTimeoutMs).then(
          async () => {
            if (done || synced) return;
            const path = options.cacheFile;
            if (path !== undefined && (await bootFromCache(path)) && !done) {
              done = true;
              degraded = true;
              emit({ type: "degraded", reason: `no server answered within ${bootTimeoutMs} ms` });
              resolveBoot({ source: "cache" });
              return;
            }
            if (done) return;
            done = true;
            rejectBoot(
              fail(
                ConfigErrorCode.NotReady,
                `no server answered within ${bootTimeoutMs} ms and no usable cache file${path === undefined ? " (none configured)" : ` at ${path}`}`,
              ),
            );
          },
          (closedMeanwhile: unknown) => {
            // close() before the boot ended: the boot fails with config/not-ready.
            if (done) return;
            done = true;
            rejectBoot(closedMeanwhile);
          },
        );
      });
      stopWatch = backend.watch(env, envWatcher);
      void sync();
      return booted;
    },
    get(key) {
      const current = keys.get(key)?.current;
      if (current === undefined) {
        if (!started || closed) throw fail(ConfigErrorCode.NotReady, "the config store is not started");
        throw fail(ConfigErrorCode.NotFound, `config "${env}/${key}" has no good version`);
      }
      return current.value as ConfigValue<S, typeof key>;
    },
    version(key) {
      const current = keys.get(key)?.current;
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
      const [va, vb] = await Promise.all([resolve(key, a), resolve(key, b)]);
      return diffValues(va.value as Json, vb.value as Json);
    },
    async rollback(key, to, o) {
      ready();
      const target = await resolve(key, to);
      checkStored(key, target.value as Json);
      const head = await headOf(key);
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
      const known = [...(keys.get(key)?.versions.values() ?? [])].reduce((m, v) => Math.max(m, v.version), 0);
      const w: KeyWatch = {
        key,
        cursor: createWatchCursor(o.fromVersion ?? known),
        listener: listener as (event: ConfigWatchEvent<unknown>) => void,
        queue: Promise.resolve(),
        closed: false,
      };
      watches.add(w);
      enqueue(w, () => fill(w));
      return () => {
        w.closed = true;
        watches.delete(w);
      };
    },
    async promote(o) {
      ready();
      const wanted = o.keys ?? (Object.keys(schemas) as ConfigKey<S>[]);
      for (const key of wanted) schemaOf(key);
      const sources = await releasedOf(o.from);
      const changes: KeyChange[] = [];
      for (const key of wanted) {
        const src = sources.get(key);
        if (src === undefined) continue;
        checkStored(key, src.value as Json);
        const dst = await headOf(key);
        const patch = diffValues((dst?.value ?? undefined) as Json | undefined, src.value as Json);
        const change: KeyChange = {
          key,
          ...(dst === undefined ? {} : { before: toVersionMeta(dst) }),
          patch,
        };
        if (patch.length === 0 || o.dryRun === true) {
          changes.push(change);
          continue;
        }
        const v = await write(key, src.value as Json, {
          expectedVersion: dst?.version ?? 0,
          author: o.author,
          message: o.message,
        });
        changes.push({ ...change, written: toVersionMeta(v) });
      }
      return changes;
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
      return renderExport(exportFileOf(env, [...(await releasedOf(env)).values()], clock()), format);
    },
    async importEnv(text, o) {
      ready();
      const file = parseExport(text);
      const plans: {
        key: string;
        stored: Json;
        head: StoredVersion | undefined;
        patch: JsonPatchOperation[];
      }[] = [];
      const secretsSkipped: string[] = [];
      for (const [key, entry] of Object.entries(file.keys)) {
        const schema = schemaOf(key);
        const head = await headOf(key);
        const { unopened } = checkStored(key, entry.value);
        let stored = sealValue(key, entry.value, schema, keyring);
        for (const dotted of unopened) {
          // Left as it is in the store: the head's envelope at that path, when it has one.
          const path = dotted.split(".").slice(1);
          const kept = head?.value == null ? undefined : valueAt(head.value, path);
          if (kept !== undefined) stored = replaceAt(stored, path, kept);
          secretsSkipped.push(dotted);
        }
        const patch = diffValues((head?.value ?? undefined) as Json | undefined, stored);
        plans.push({ key, stored, head, patch });
      }
      const changes: KeyChange[] = [];
      for (const p of plans) {
        const change: KeyChange = {
          key: p.key,
          ...(p.head === undefined ? {} : { before: toVersionMeta(p.head) }),
          patch: p.patch,
        };
        if (p.patch.length === 0 || o.dryRun === true) {
          changes.push(change);
          continue;
        }
        const v = await write(p.key, p.stored, {
          expectedVersion: p.head?.version ?? 0,
          author: o.author,
          message: o.message,
        });
        changes.push({ ...change, written: toVersionMeta(v) });
      }
      return { changes, secretsSkipped };
    },
    async rollout(key, value, o) {
      ready();
      checkNumberOption("bakeMs", o.bakeMs, { min: 0 });
      checkNumberOption("checkEveryMs", o.checkEveryMs, { min: 1 });
      checkNumberOption("percent", o.percent, { min: 0, max: 100 });
      const head = await headOf(key);
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
      const every = Math.max(1, o.checkEveryMs ?? Math.ceil(o.bakeMs / 5));
      const deadline = scheduler.now() + o.bakeMs;
      for (;;) {
        const left = deadline - scheduler.now();
        if (left > 0) await sleep(Math.min(every, left));
        let healthy = false;
        let reason = "the health check failed";
        try {
          healthy = await o.check();
        } catch (error) {
          reason = `the health check threw: ${error instanceof Error ? error.message : String(error)}`;
        }
        if (!healthy) {
          const r = await backend.setRollout(meta, "rolled-back", reason);
          ingestRollout(r);
          return { version: meta, state: r.state };
        }
        if (scheduler.now() >= deadline) break;
      }
      const r = await backend.setRollout(meta, "promoted", `baked ${o.bakeMs} ms, every check passed`);
      ingestRollout(r);
      return { version: meta, state: r.state };
    },
    async close() {
      if (closed) return;
      const pending = cacheTimer !== undefined;
      closed = true;
      stopWatch?.();
      for (const w of watches) w.closed = true;
      watches.clear();
      for (const stop of [...timers]) stop();
      timers.clear();
      if (pending) await writeCacheNow();
      await cacheWrite;
    },
  };
  return store;
}

/** The value at a path of a JSON value (object keys, array indexes as strings). */
function valueAt(value: Json, path: readonly string[]): Json | undefined {
  let at: Json | undefined = value;
  for (const k of path) {
    if (typeof at !== "object" || at === null) return undefined;
    at = (at as Record<string, Json>)[k];
  }
  return at;
}

/** A copy of a JSON value with the value at `path` replaced. */
function replaceAt(value: Json, path: readonly string[], leaf: Json): Json {
  if (path.length === 0) return leaf;
  const [head, ...rest] = path as [string, ...string[]];
  if (Array.isArray(value)) {
    const copy = [...value];
    copy[Number(head)] = replaceAt(copy[Number(head)] as Json, rest, leaf);
    return copy;
  }
  const obj = (typeof value === "object" && value !== null ? value : {}) as Record<string, Json>;
  return { ...obj, [head]: replaceAt(obj[head] as Json, rest, leaf) };
}
