/**
 * The in-memory config backend: the whole port in one process, for tests and single-process use.
 * Each call runs synchronously inside (so the compare-and-swap is exact), and tells watchers in a
 * microtask after the call committed (never inside the caller's stack). It passes
 * `runConfigBackendConformance`.
 *
 * Test helpers simulate what a real deployment does to a store: a link that goes down or hangs
 * (`setLink`), lost realtime events (`silent`), a reconnect (`resync`), and a second server that
 * replicates (`exportRecords` / `importRecords` / {@link replicateConfigRecords}: merged by id as
 * the replicator does, a tombstone wins, rollout state only moves up).
 */
import {
  callGuarded,
  defaultLogger,
  ErrorCode,
  type Logger,
  TransportError,
  ValidationError,
  type WallClock,
} from "@nxs-sync/core";
import type { CompactOptions, ConfigBackend, ConfigWatcher, NewVersion, VersionQuery } from "./backend.js";
import { ConfigConflictError } from "./errors.js";
import {
  compareVersions,
  ENV_PATTERN,
  KEY_PATTERN,
  ROLLOUT_RANK,
  type RolloutRecord,
  type RolloutState,
  rolloutRecordSchema,
  type StoredVersion,
  storedVersionSchema,
  VERSION_ID_PATTERN,
} from "./version.js";
import { toVersionMeta } from "./version-meta.js";

/** Options of {@link createMemoryConfigBackend}. */
export interface MemoryConfigBackendOptions {
  /** This authority's name: `origin` of the versions it accepts is `memory:<name>` (default `a`). */
  readonly name?: string;
  /** The server clock (`createdAt`, `updatedAt`; default `Date.now`). */
  readonly now?: WallClock;
  /** Where a watcher that throws is reported (default: the line logger at `warn`). */
  readonly logger?: Logger;
}

/**
 * The state of the simulated link between stores and this backend:
 * `up` (normal), `down` (every call rejects with `transport/unavailable`, no events but
 * `onUnreachable`, told to every watcher when the link goes down and to one that starts meanwhile),
 * `hang` (every call waits until the link changes, no events), `silent` (calls work, realtime events
 * are lost; going back `up` from it sends no resync, like a lost SSE message).
 * Going `up` from `down` or `hang` tells every watcher `onResync` (a reconnect).
 */
export type MemoryLinkState = "up" | "down" | "hang" | "silent";

/** Every record a backend holds: what a replicator copies. */
export interface ConfigRecords {
  readonly versions: readonly StoredVersion[];
  readonly rollouts: readonly RolloutRecord[];
}

/** What {@link MemoryConfigBackend.importRecords} did. */
export interface ImportRecordsResult {
  /** Versions created or turned into tombstones. */
  readonly versions: number;
  /** Rollout records created or moved up. */
  readonly rollouts: number;
  /** Records that failed their shape (quarantined, told to watchers as `onInvalid`). */
  readonly invalid: number;
}

/** The memory backend: the port plus the helpers tests use to simulate links and replication. */
export interface MemoryConfigBackend extends ConfigBackend {
  /** Sets the simulated link (see {@link MemoryLinkState}). */
  setLink(state: MemoryLinkState): void;
  /** The link's state. */
  link(): MemoryLinkState;
  /** Tells every watcher `onResync` (a reconnect), in a microtask. */
  resync(): void;
  /** A copy of every record (versions with tombstones, rollouts), in id order. */
  exportRecords(): ConfigRecords;
  /**
   * Merges records from another server as the replicator does: a version is created by id if
   * absent; a tombstone replaces a live copy (never the other way); a rollout state only moves up.
   * Each record is checked against its schema first (a malformed one is quarantined and told to
   * watchers as `onInvalid`). Works whatever the link's state (replication is server to server).
   */
  importRecords(records: {
    readonly versions?: readonly unknown[];
    readonly rollouts?: readonly unknown[];
  }): ImportRecordsResult;
}

const LIST_DEFAULT = 200;
const LIST_MAX = 1000;

const rank = (state: RolloutState): number => ROLLOUT_RANK.indexOf(state);

/**
 * Creates an in-memory {@link ConfigBackend} with test helpers ({@link MemoryConfigBackend}).
 * @param options - Name (the origin of what it accepts), server clock, logger.
 * @returns The backend; `close()` stops event delivery.
 * @example
 * ```ts
 * import { z } from "zod";
 * const backend = createMemoryConfigBackend({ name: "a" });
 * const store = createConfigStore({ backend, env: "production", node: "gw-1",
 *   schemas: { limits: z.object({ rps: z.number().int() }) } });
 * ```
 */
export function createMemoryConfigBackend(options: MemoryConfigBackendOptions = {}): MemoryConfigBackend {
  const name = `memory:${options.name ?? "a"}`;
  const now = options.now ?? Date.now;
  const logger = options.logger ?? defaultLogger;
  const versions = new Map<string, StoredVersion>();
  const rollouts = new Map<string, RolloutRecord>();
  const watchers = new Map<string, Set<ConfigWatcher>>();
  let state: MemoryLinkState = "up";
  let closed = false;
  const hanging: (() => void)[] = [];
  const unreachable = `config backend ${name} is unreachable (link down)`;

  const tell = (env: string, what: string, call: (w: ConfigWatcher) => void, force = false): void => {
    if (!force && state !== "up") return;
    queueMicrotask(() => {
      if (closed) return;
      const set = watchers.get(env);
      if (set === undefined) return;
      for (const w of [...set]) {
        if (!set.has(w)) continue;
        callGuarded(`a config watcher of "${env}" (${what})`, call, [w], (err) =>
          logger.warn(`[nxs-sync config memory] ${err.message}`),
        );
      }
    });
  };
  const tellVersion = (v: StoredVersion): void =>
    tell(v.env, "onVersion", (w) => w.onVersion(structuredClone(v)));
  const tellRollout = (r: RolloutRecord): void => tell(r.env, "onRollout", (w) => w.onRollout({ ...r }));

  /** One port method: refused when closed or down, held while hanging, else the synchronous call. */
  const call =
    <A extends unknown[], R>(run: (...args: A) => R) =>
    async (...args: A): Promise<R> => {
      for (;;) {
        if (closed)
          throw new TransportError(ErrorCode.TransportUnavailable, `config backend ${name} is closed`);
        if (state === "down") {
          throw new TransportError(ErrorCode.TransportUnavailable, `config backend ${name} is unreachable`, {
            retryable: true,
          });
        }
        if (state !== "hang") return run(...args);
        await new Promise<void>((resolve) => hanging.push(resolve));
      }
    };

  const headOf = (env: string, key: string): StoredVersion | undefined => {
    let head: StoredVersion | undefined;
    for (const v of versions.values()) {
      if (v.env === env && v.key === key && (head === undefined || compareVersions(v, head) > 0)) head = v;
    }
    return head;
  };

  const checkNew = (v: NewVersion): void => {
    const bad = (path: string, message: string): never => {
      throw new ValidationError(`new version: ${path} ${message}`, { issues: [{ path: [path], message }] });
    };
    if (!VERSION_ID_PATTERN.test(v.id)) bad("id", "is not 15 chars of [a-z0-9]");
    if (!ENV_PATTERN.test(v.env)) bad("env", "is not an environment name");
    if (!KEY_PATTERN.test(v.key)) bad("key", "is not a key name");
    if (!Number.isInteger(v.expectedVersion) || v.expectedVersion < 0)
      bad("expectedVersion", "must be an integer >= 0");
  };

  const putSync = (v: NewVersion): StoredVersion => {
    checkNew(v);
    const existing = versions.get(v.id);
    if (existing !== undefined) return structuredClone(existing);
    const head = headOf(v.env, v.key);
    const headVersion = head?.version ?? 0;
    if (headVersion !== v.expectedVersion) {
      throw new ConfigConflictError(
        `config "${v.env}/${v.key}": expected version ${v.expectedVersion}, the head is ${headVersion}`,
        head === undefined ? undefined : toVersionMeta(head),
      );
    }
    const stored: StoredVersion = {
      id: v.id,
      env: v.env,
      key: v.key,
      version: v.expectedVersion + 1,
      hlc: v.hlc,
      origin: name,
      node: v.node,
      author: v.author,
      message: v.message,
      createdAt: now(),
      ...(v.rollbackOf === undefined ? {} : { rollbackOf: v.rollbackOf }),
      ...(v.rollout === undefined ? {} : { rollout: structuredClone(v.rollout) }),
      value: structuredClone(v.value),
      compacted: false,
    };
    // The same shape a server's collection enforces (lengths, the rollout target, a JSON value).
    const shape = storedVersionSchema.safeParse(stored);
    if (!shape.success) {
      throw new ValidationError(
        `new version: ${shape.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
        {
          issues: shape.error.issues.map((i) => ({ path: i.path, message: i.message })),
          cause: shape.error,
        },
      );
    }
    versions.set(stored.id, stored);
    tellVersion(stored);
    return structuredClone(stored);
  };

  const listSync = (q: VersionQuery): StoredVersion[] => {
    const limit = Math.min(LIST_MAX, Math.max(1, Math.trunc(q.limit ?? LIST_DEFAULT)));
    const desc = q.order === "desc";
    const found = [...versions.values()]
      .filter(
        (v) =>
          v.env === q.env &&
          (q.key === undefined || v.key === q.key) &&
          (q.afterVersion === undefined || v.version > q.afterVersion) &&
          (q.beforeVersion === undefined || v.version < q.beforeVersion) &&
          (q.includeCompacted === true || !v.compacted),
      )
      .sort((a, b) => (desc ? compareVersions(b, a) : compareVersions(a, b)) || (a.key < b.key ? -1 : 1));
    return found.slice(0, limit).map((v) => structuredClone(v));
  };

  const headsSync = (env: string): StoredVersion[] => {
    const heads = new Map<string, StoredVersion>();
    for (const v of versions.values()) {
      if (v.env !== env) continue;
      const h = heads.get(v.key);
      if (h === undefined || compareVersions(v, h) > 0) heads.set(v.key, v);
    }
    return [...heads.values()].sort((a, b) => (a.key < b.key ? -1 : 1)).map((v) => structuredClone(v));
  };

  /** Hidden from some nodes: a version with a rollout target that is not promoted (as `isHiddenFrom`). */
  const isHeld = (v: StoredVersion): boolean => {
    if (v.rollout === undefined) return false;
    return rollouts.get(v.id)?.state !== "promoted";
  };

  const compactSync = (o: CompactOptions): number => {
    const byKey = new Map<string, StoredVersion[]>();
    for (const v of versions.values()) {
      if (v.env !== o.env || (o.key !== undefined && v.key !== o.key)) continue;
      byKey.set(v.key, [...(byKey.get(v.key) ?? []), v]);
    }
    let count = 0;
    for (const list of byKey.values()) {
      list.sort((a, b) => compareVersions(b, a));
      // The head, every staged version, and the newest version every node may use (the effective
      // one of a node no rollout targets) are kept whatever the options say.
      const effective = list.find((v) => !isHeld(v));
      list.forEach((v, i) => {
        if (v.compacted || i === 0 || v === effective || rollouts.get(v.id)?.state === "staged") return;
        if (v.rollout !== undefined && !rollouts.has(v.id)) return;
        if (o.keepLast !== undefined && i < o.keepLast) return;
        if (o.keepSince !== undefined && v.createdAt >= o.keepSince) return;
        const tomb: StoredVersion = { ...v, value: null, compacted: true };
        versions.set(v.id, tomb);
        tellVersion(tomb);
        count++;
      });
    }
    return count;
  };

  const setRolloutSync = (
    v: Pick<StoredVersion, "id" | "env" | "key" | "version">,
    to: RolloutState,
    reason: string,
  ): RolloutRecord => {
    if (!VERSION_ID_PATTERN.test(v.id)) {
      throw new ValidationError(`rollout: id ${JSON.stringify(v.id)} is not 15 chars of [a-z0-9]`, {
        issues: [{ path: ["id"], message: "not a version id" }],
      });
    }
    const current = rollouts.get(v.id);
    if (current !== undefined && rank(to) <= rank(current.state)) return { ...current };
    const next: RolloutRecord = {
      id: v.id,
      env: v.env,
      key: v.key,
      version: v.version,
      state: to,
      reason,
      updatedAt: now(),
    };
    rollouts.set(v.id, next);
    tellRollout(next);
    return { ...next };
  };

  const setLink = (next: MemoryLinkState): void => {
    const before = state;
    state = next;
    if (next !== "hang") for (const wake of hanging.splice(0)) wake();
    if (next === "up" && (before === "down" || before === "hang")) resync();
    if (next === "down" && before !== "down") {
      for (const env of watchers.keys())
        tell(env, "onUnreachable", (w) => w.onUnreachable?.(unreachable), true);
    }
  };

  const resync = (): void => {
    for (const env of watchers.keys()) tell(env, "onResync", (w) => w.onResync(), true);
  };

  const importRecords: MemoryConfigBackend["importRecords"] = (records) => {
    let nv = 0;
    let nr = 0;
    let invalid = 0;
    const quarantine = (raw: unknown, reason: string): void => {
      invalid++;
      const env = (raw as { env?: unknown } | null)?.env;
      const envs = typeof env === "string" && watchers.has(env) ? [env] : [...watchers.keys()];
      for (const e of envs) tell(e, "onInvalid", (w) => w.onInvalid(structuredClone(raw), reason), true);
    };
    for (const raw of records.versions ?? []) {
      const parsed = storedVersionSchema.safeParse(raw);
      if (!parsed.success) {
        quarantine(raw, parsed.error.message);
        continue;
      }
      const v = parsed.data as StoredVersion;
      const local = versions.get(v.id);
      if (local !== undefined && (local.compacted || !v.compacted)) continue;
      const merged: StoredVersion = local === undefined ? v : { ...local, value: null, compacted: true };
      versions.set(v.id, merged);
      tellVersion(merged);
      nv++;
    }
    for (const raw of records.rollouts ?? []) {
      const parsed = rolloutRecordSchema.safeParse(raw);
      if (!parsed.success) {
        quarantine(raw, parsed.error.message);
        continue;
      }
      const r = parsed.data;
      const local = rollouts.get(r.id);
      if (local !== undefined && rank(r.state) <= rank(local.state)) continue;
      rollouts.set(r.id, r);
      tellRollout(r);
      nr++;
    }
    return { versions: nv, rollouts: nr, invalid };
  };

  const byId = <T extends { id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

  return {
    name,
    put: call(putSync),
    list: call(listSync),
    heads: call(headsSync),
    get: call((id: string) => {
      const v = versions.get(id);
      return v === undefined ? undefined : structuredClone(v);
    }),
    compact: call(compactSync),
    rollouts: call((env: string) =>
      [...rollouts.values()]
        .filter((r) => r.env === env)
        .sort(byId)
        .map((r) => ({ ...r })),
    ),
    setRollout: call(setRolloutSync),
    watch(env, watcher) {
      const set = watchers.get(env) ?? new Set<ConfigWatcher>();
      watchers.set(env, set);
      // Each watcher is its own entry, even when the same object watches twice.
      const entry = {
        onVersion: (v) => watcher.onVersion(v),
        onRollout: (r) => watcher.onRollout(r),
        onInvalid: (raw, reason) => watcher.onInvalid(raw, reason),
        onResync: () => watcher.onResync(),
        onUnreachable: (reason: string) => watcher.onUnreachable?.(reason),
      } satisfies ConfigWatcher;
      set.add(entry);
      // "Connected": a watcher re-reads what it missed before it started watching. A link down:
      // every call would be refused, the watcher is told so at once.
      if (state !== "hang") {
        const down = state === "down";
        queueMicrotask(() => {
          if (closed || !set.has(entry)) return;
          callGuarded(
            `a config watcher of "${env}" (${down ? "onUnreachable" : "onResync"})`,
            () => (down ? entry.onUnreachable(unreachable) : entry.onResync()),
            [],
            (err) => logger.warn(`[nxs-sync config memory] ${err.message}`),
          );
        });
      }
      return () => {
        set.delete(entry);
      };
    },
    async close() {
      closed = true;
      watchers.clear();
      for (const wake of hanging.splice(0)) wake();
    },
    setLink,
    link: () => state,
    resync,
    exportRecords: () => ({
      versions: [...versions.values()].sort(byId).map((v) => structuredClone(v)),
      rollouts: [...rollouts.values()].sort(byId).map((r) => ({ ...r })),
    }),
    importRecords,
  };
}

/**
 * Copies every record of `from` into `to` (one direction of a replicator round), as
 * {@link MemoryConfigBackend.importRecords} merges them.
 * @param from - The source server.
 * @param to - The target server.
 * @returns What the target changed.
 */
export function replicateConfigRecords(
  from: MemoryConfigBackend,
  to: MemoryConfigBackend,
): ImportRecordsResult {
  const records = from.exportRecords();
  return to.importRecords({ versions: records.versions, rollouts: records.rollouts });
}
