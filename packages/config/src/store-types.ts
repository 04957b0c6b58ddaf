/**
 * The config store's public types: its options, what it tells listeners and watchers, what its
 * history, promote and import answer, and the {@link ConfigStore} interface itself (made by
 * `createConfigStore` in store.ts).
 */
import type { Json, Logger, NxsError, Scheduler, WallClock } from "@nxs-sync/core";
import type { z } from "zod";
import type { ConfigBackend } from "./backend.js";
import type { JsonPatchOperation } from "./diff.js";
import type { Keyring } from "./secrets.js";
import type { RolloutRecord, RolloutTarget, VersionMeta } from "./version.js";

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
  /**
   * The longest `start` waits for a server before it boots from `cacheFile` (default 5000 ms); it
   * boots from the file sooner when the backend says every server definitely failed (refused,
   * unresolved, every endpoint down).
   */
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
   * Loads heads and rollouts from the server and starts watching; when every server definitely
   * failed (the backend's `onUnreachable`), or none answered within `bootTimeoutMs`, and a cache file
   * is readable, boots from it (a `degraded` event) and keeps trying. While pending it keeps the
   * process alive (a started store's own timers do not).
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
   * (it stays hidden, a `rolled-back` event) on the first failing check. While it bakes it keeps the
   * process alive.
   */
  rollout<K extends ConfigKey<S>>(
    key: K,
    value: ConfigInput<S, K>,
    options: RolloutOptions,
  ): Promise<{ readonly version: VersionMeta; readonly state: RolloutRecord["state"] }>;
  /** Stops watching and timers; writes a pending cache file. The backend stays open (its owner closes it). */
  close(): Promise<void>;
}
