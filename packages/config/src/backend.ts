/**
 * The config store's port: what a backend (memory, PocketBase) must do. Semantic and small: an
 * exact compare-and-swap create, reads in version order, a watch that is a hint plus a resync
 * signal, compaction, and the rollout state of staged versions. Values cross it in their stored
 * form (secret fields encrypted): a backend never sees a plain secret.
 */
import type { Json } from "@nxs-sync/core";
import type { RolloutRecord, RolloutState, RolloutTarget, StoredVersion } from "./version.js";

/** A version to create. */
export interface NewVersion {
  /** The record id (15 chars `[a-z0-9]`): a put sent again with the same id gets the stored version back. */
  readonly id: string;
  readonly env: string;
  readonly key: string;
  /**
   * The head version the writer read (0 for a new key). The backend creates `expectedVersion + 1`
   * only if its head of the key is exactly `expectedVersion`; otherwise it throws
   * `ConfigConflictError` carrying its head.
   */
  readonly expectedVersion: number;
  readonly hlc: string;
  readonly node: string;
  readonly author: string;
  readonly message: string;
  /** The stored form (secret fields already encrypted by the store). */
  readonly value: Json;
  readonly rollbackOf?: number;
  readonly rollout?: RolloutTarget;
}

/** A range of versions to read. */
export interface VersionQuery {
  readonly env: string;
  /** One key, or every key of the environment. */
  readonly key?: string;
  /** Only versions with a number above this. */
  readonly afterVersion?: number;
  /** Only versions with a number below this. */
  readonly beforeVersion?: number;
  /** At most this many (default 200, at most 1000); ascending order keeps the lowest, descending the highest. */
  readonly limit?: number;
  /** Default `asc` (by `compareVersions`). */
  readonly order?: "asc" | "desc";
  /** Include compacted tombstones (default false). */
  readonly includeCompacted?: boolean;
}

/** What a backend tells a store watching one environment. A hint: the truth is always a read. */
export interface ConfigWatcher {
  /** A version arrived or changed (compacted); it may repeat, and may come out of order. */
  onVersion(version: StoredVersion): void;
  /** A rollout record changed. */
  onRollout(rollout: RolloutRecord): void;
  /** A record that is not a valid version or rollout (quarantined: never delivered as one). */
  onInvalid(raw: unknown, reason: string): void;
  /** Events may have been missed (after every (re)connect): re-read with `list`. */
  onResync(): void;
  /**
   * Every server has definitely failed (refused the connection, its name did not resolve, or each
   * endpoint is marked down): no read can succeed now. A hint that may repeat; a store that is
   * still booting uses its cache file at once instead of waiting `bootTimeoutMs`. A hanging server
   * is not reported (the store's bound covers it). Optional for a backend that cannot tell.
   */
  onUnreachable?(reason: string): void;
}

/**
 * Which versions compaction removes. A key's head, its staged versions and its effective version
 * (the greatest one no rollout holds back: not staged, not rolled back; what nodes outside a staged
 * rollout run) are always kept; another is kept when it is among the `keepLast` newest of its key or
 * created at or after `keepSince` (without either, only those always kept stay).
 */
export interface CompactOptions {
  readonly env: string;
  /** One key, or every key of the environment. */
  readonly key?: string;
  /** Keep this many of the newest versions per key. */
  readonly keepLast?: number;
  /** Keep versions created at or after this time (ms since the epoch). */
  readonly keepSince?: number;
}

/** The port. Every write is atomic; a backend is the authority for the writes it accepts. */
export interface ConfigBackend {
  /** A stable name for this backend's authority (the server's origin id, `memory:<name>`). */
  readonly name: string;
  /**
   * Creates version `expectedVersion + 1` if the key's head is `expectedVersion` (exact: two puts
   * with the same `expectedVersion` never both succeed on one authority). Idempotent by `id`.
   * @throws ConfigConflictError when the head moved.
   */
  put(version: NewVersion): Promise<StoredVersion>;
  /** Versions in order (see {@link VersionQuery}). */
  list(query: VersionQuery): Promise<readonly StoredVersion[]>;
  /** The head (greatest by `compareVersions`, compacted or not) of every key of an environment. */
  heads(env: string): Promise<readonly StoredVersion[]>;
  /** One version by id, or undefined. */
  get(id: string): Promise<StoredVersion | undefined>;
  /**
   * Marks versions compacted (value removed; a tombstone that replicates and is purged later).
   * @returns How many were compacted.
   */
  compact(options: CompactOptions): Promise<number>;
  /** The rollout records of an environment. */
  rollouts(env: string): Promise<readonly RolloutRecord[]>;
  /**
   * Moves a staged version's rollout (creating the record at `staged`); a state only moves up
   * (`staged` < `promoted` < `rolled-back`): a lower one changes nothing.
   * @returns The record after the call.
   */
  setRollout(
    version: Pick<StoredVersion, "id" | "env" | "key" | "version">,
    state: RolloutState,
    reason: string,
  ): Promise<RolloutRecord>;
  /**
   * Watches one environment's versions and rollouts.
   * @returns The function that stops watching.
   */
  watch(env: string, watcher: ConfigWatcher): () => void;
  /** Releases what the backend holds (connections, timers). */
  close?(): Promise<void>;
}
