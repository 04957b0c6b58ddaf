// A replicated key-value collection built only on the platform pieces (see README.md).
import {
  ConflictError,
  callGuarded,
  createHlcClock,
  createSeededRandom,
  defineErrorCodes,
  type Json,
  NxsError,
  silentLogger,
} from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import {
  AuthRules,
  type CollectionDefinition,
  createEndpointPool,
  createNxsCollectionRegistry,
  createRecordWatch,
  DeletePolicies,
  type EndpointPoolOptions,
  isUniqueViolation,
  MergeRules,
  type NodeAuth,
  type RecordWatchSource,
} from "@nxs-sync/pocketbase";
import type PocketBase from "pocketbase";

export const KV_COLLECTION = "kv_entries";
// A node writes in its own name only (`by`); replicators copy anyone's.
const WRITE = `(${AuthRules.gateway} && @request.body.by = @request.auth.id) || ${AuthRules.replicator}`;

const kvReplication = {
  key: ["key"],
  merge: MergeRules.lww("hlc"),
  deletes: DeletePolicies.tombstone("deleted", { revive: true }),
};
/**
 * `kv_entries`: one record per key; last writer wins by `hlc`; a delete is a tombstone (`deleted`)
 * that a later write revives (a set after a delete wins, a stale write does not).
 */
export const kvEntries: CollectionDefinition = {
  schema: {
    id: "pbc_kv_entries",
    name: KV_COLLECTION,
    type: "base",
    fields: [
      { name: "key", type: "text", required: true, max: 200 },
      { name: "value", type: "json" },
      { name: "by", type: "text", max: 64 },
      { name: "hlc", type: "text", required: true, max: 64 },
      { name: "deleted", type: "bool" },
      { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
    ],
    indexes: ["CREATE UNIQUE INDEX idx_kv_entries_key ON kv_entries (key)"],
    listRule: AuthRules.member,
    viewRule: AuthRules.member,
    createRule: WRITE,
    updateRule: WRITE,
    deleteRule: null,
  },
  replication: kvReplication,
};

/** nxs-sync's collections, then `kv_entries`: for `ensureSchema` and `createReplicator`. */
export const kvRegistry = () => createNxsCollectionRegistry().register(kvEntries);

export const KvErrorCode = defineErrorCodes("kv", {
  NotFound: { name: "not-found", retryable: false },
});
declare module "@nxs-sync/core" {
  interface ErrorCodeRegistry {
    kv: typeof KvErrorCode;
  }
}

export interface KvEntry {
  readonly key: string;
  readonly value: Json;
  /** The node record id of the last writer. */
  readonly by: string;
  readonly hlc: string;
  readonly deleted: boolean;
}
/** A change a watcher sees: from the realtime stream, or from the catch-up query after a (re)connect. */
export type KvEvent = KvEntry & { readonly source: RecordWatchSource };

export interface KvStoreOptions
  extends Pick<EndpointPoolOptions, "endpoints" | "failover" | "requestTimeoutMs" | "scheduler" | "logger"> {
  /** A node account (`nxs_nodes`). */
  readonly auth: NodeAuth;
  /** Bound of one operation, failovers included. Default 10 000 ms. */
  readonly timeoutMs?: number;
}

export interface KvStore {
  /** @throws NxsError `kv/not-found` (absent or deleted). */
  get(key: string): Promise<Json>;
  /** Sets `key` (a deleted one too: the later write wins). */
  set(key: string, value: Json): Promise<KvEntry>;
  /** @throws NxsError `kv/not-found` (absent or deleted). */
  delete(key: string): Promise<void>;
  /** The live entries, by key. */
  list(): Promise<KvEntry[]>;
  /** Calls `listener` on each change of `key` (of every key when undefined); resolves to the unwatch. */
  watch(key: string | undefined, listener: (event: KvEvent) => void): Promise<() => void>;
  /** The server in use. */
  endpoint(): string;
  close(): void;
}

const toEntry = (r: Record<string, unknown>): KvEntry => ({
  key: String(r.key),
  value: (r.value ?? null) as Json,
  by: String(r.by ?? ""),
  hlc: String(r.hlc),
  deleted: r.deleted === true,
});

export function createKvStore(options: KvStoreOptions): KvStore {
  const scheduler = options.scheduler ?? createTimerScheduler();
  const logger = options.logger ?? silentLogger;
  const random = createSeededRandom(Math.floor(Math.random() * 2 ** 31));
  const clock = createHlcClock({ replicaId: `kv${random.next().toString(36).slice(2)}`, now: scheduler.now });
  const poolOf = () => createEndpointPool({ ...options, scheduler, logger, random });
  const pool = poolOf();
  pool.start();
  const notFound = (key: string) => new NxsError(KvErrorCode.NotFound, `kv: no entry ${JSON.stringify(key)}`);

  /** The one retry layer of an operation (the pool's): a server that cannot be reached fails over. */
  const op = <T>(what: string, fn: (pb: PocketBase) => Promise<T>): Promise<T> =>
    pool.call(what, (ep) => ep.client.call(`kv ${what}`, fn, { retry: false }), {
      timeoutMs: options.timeoutMs ?? 10_000,
    });
  const find = (key: string) =>
    op("get", (pb) =>
      pb.collection(KV_COLLECTION).getFullList({ filter: pb.filter("key = {:key}", { key }) }),
    ).then(([r]) => (r === undefined ? undefined : { ...toEntry(r), id: r.id }));

  async function write(key: string, patch: { value?: Json; deleted: boolean }): Promise<KvEntry> {
    for (;;) {
      const have = await find(key);
      if (patch.deleted && (have === undefined || have.deleted)) throw notFound(key);
      try {
        if (have !== undefined) clock.receive(have.hlc); // so that this write stamps after it
      } catch {} // an unreadable or far-ahead stamp is not taken
      try {
        const written = await op(patch.deleted ? "delete" : "set", (pb) => {
          const body = { key, by: pb.authStore.record?.id, hlc: clock.now(), ...patch };
          const records = pb.collection(KV_COLLECTION);
          return have === undefined ? records.create(body) : records.update(have.id, body);
        });
        return toEntry(written);
      } catch (e) {
        // Created meanwhile (another writer, the replicator): the client mapped the unique index.
        if (!(e instanceof ConflictError && isUniqueViolation(e, ["key"]))) throw e;
      }
    }
  }

  // Watch: a record watch (realtime + a catch-up from a cursor), with a pool of its own.
  const watchers = new Set<{ readonly key: string | undefined; readonly fn: (e: KvEvent) => void }>();
  const watchPool = poolOf();
  const changes = createRecordWatch({
    pool: watchPool,
    collection: KV_COLLECTION,
    spec: kvReplication,
    cursor: "updated",
    onChange: (record, source) => {
      const e = toEntry(record);
      for (const w of watchers) {
        if (w.key !== undefined && w.key !== e.key) continue;
        callGuarded("watch", w.fn, [{ ...e, source }], (f) => logger.error(f.message, f.cause));
      }
    },
    scheduler,
    random,
    logger,
  });

  return {
    async get(key) {
      const e = await find(key);
      if (e === undefined || e.deleted) throw notFound(key);
      return e.value;
    },
    set: (key, value) => write(key, { value, deleted: false }),
    delete: (key) => write(key, { deleted: true }).then(() => undefined),
    list: () =>
      op("list", (pb) =>
        pb.collection(KV_COLLECTION).getFullList({ filter: "deleted = false", sort: "key" }),
      ).then((all) => all.map(toEntry)),
    async watch(key, fn) {
      const w = { key, fn };
      watchers.add(w);
      watchPool.start(); // once (a no-op after)
      await changes.connect().catch((e: unknown) => {
        watchers.delete(w);
        throw e;
      });
      return () => watchers.delete(w);
    },
    endpoint: () => pool.active().url,
    close() {
      changes.stop();
      watchPool.stop();
      pool.stop();
    },
  };
}
