import { fileURLToPath } from "node:url";
import {
  type CollectionDef,
  type CollectionDefinition,
  DeletePolicies,
  type FieldDef,
  type HookPiece,
  hookPieceFromFile,
  MergeRules,
  NODES_COLLECTION,
  REPLICATORS_COLLECTION,
} from "@nxs-sync/pocketbase";

/** The job records: one per job, replicated between servers (lww by `version`, tombstone deletes). */
export const JOBS_COLLECTION = "nxs_jobs";
/** This server's claim epoch (one record, never replicated: each server has its own). */
export const EPOCHS_COLLECTION = "nxs_queue_epochs";
/** Blobs: payloads and results too large for a job record (a file field). Local to a server. */
export const BLOBS_COLLECTION = "nxs_job_blobs";
/** The dedupe key table: one row per queue and key (unique index), local to a server. */
export const JOB_KEYS_COLLECTION = "nxs_job_keys";
/** Cron schedules: one record per queue and schedule id, replicated (lww by `version`). */
export const SCHEDULES_COLLECTION = "nxs_queue_schedules";
/** Flow records: limits and pauses per queue and group (replicated, lww by `version`). */
export const FLOW_COLLECTION = "nxs_queue_flow";
/** Rate windows: the recent claims per queue and group (local to a server: its own claims). */
export const RATES_COLLECTION = "nxs_queue_rates";
/** The largest payload or result stored inline in a job record (JSON characters). */
export const MAX_INLINE_JSON = 262_144;
/** The largest blob by default (bytes). */
export const DEFAULT_MAX_BLOB_BYTES = 16 * 1024 * 1024;
/** Name and version of the hook piece (`pb_hooks/nxs-queue.pb.js`, `GET /nxs/hooks/queue`). */
export const QUEUE_HOOKS = { name: "queue", version: 6, file: "nxs-queue.pb.js" } as const;

const IS_NODE = `@request.auth.collectionName = "${NODES_COLLECTION}"`;
const IS_REPLICATOR = `@request.auth.collectionName = "${REPLICATORS_COLLECTION}"`;
const READ = `${IS_NODE} || ${IS_REPLICATOR}`;

const num = (name: string): FieldDef => ({ name, type: "number" });
const json = (name: string, maxSize = MAX_INLINE_JSON + 1024): FieldDef => ({ name, type: "json", maxSize });
const text = (name: string, max = 2000): FieldDef => ({ name, type: "text", max });
const required = (name: string, max: number): FieldDef => ({ name, type: "text", required: true, max });
/** Read by gateways and replicators, written by the hook routes only. */
const ROUTES_ONLY = { listRule: READ, viewRule: READ, createRule: null, updateRule: null, deleteRule: null };

/** `nxs_jobs`: every field of a JobRecord, its token, its version and a tombstone. */
export function jobsCollection(): CollectionDef {
  return {
    id: "pbc_nxs_jobs",
    name: JOBS_COLLECTION,
    type: "base",
    fields: [
      { name: "queue", type: "text", required: true, max: 200 },
      {
        name: "state",
        type: "select",
        required: true,
        maxSelect: 1,
        values: ["waiting", "active", "completed", "failed", "cancelled"],
      },
      json("payload"),
      num("runAt"),
      num("attempt"),
      num("attemptsMade"),
      num("maxAttempts"),
      json("backoff", 4096),
      num("timeoutMs"),
      num("generation"),
      num("epoch"),
      text("worker", 200),
      num("leaseUntil"),
      // The fencing token of the current attempt: only its holder may heartbeat or settle it. It
      // replicates with the job, so a worker goes on on the other server after a failover.
      text("token", 64),
      // The claim request that took the current attempt (a claim sent again gets its jobs back).
      text("claimId", 64),
      { name: "cancelRequested", type: "bool" },
      json("progress", 65_536),
      json("result"),
      text("reason"),
      json("failures", 65_536),
      num("rev"),
      text("version", 40),
      num("createdAt"),
      num("updatedAt"),
      num("finishedAt"),
      { name: "deleted", type: "bool" },
      // Scheduling (issue 22): priority and the claim rank (runAt minus the priority's head start,
      // set by every route write), the dedupe key, its mode and the end of its throttle window.
      num("priority"),
      num("rank"),
      text("jobKey", 200),
      text("keyMode", 20),
      num("keyUntil"),
      // Flow control (hook piece 5): the job's group and its weight against rate limits (0: 1).
      text("groupKey", 200),
      num("weight"),
      { name: "created", type: "autodate", onCreate: true, onUpdate: false },
      { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
    ],
    indexes: [
      "CREATE INDEX idx_nxs_jobs_claim ON nxs_jobs (queue, state, runAt)",
      "CREATE INDEX idx_nxs_jobs_rank ON nxs_jobs (queue, state, rank)",
      "CREATE INDEX idx_nxs_jobs_key ON nxs_jobs (queue, jobKey, state)",
      "CREATE INDEX idx_nxs_jobs_lease ON nxs_jobs (queue, state, leaseUntil)",
      "CREATE INDEX idx_nxs_jobs_finished ON nxs_jobs (queue, finishedAt)",
      "CREATE INDEX idx_nxs_jobs_epoch ON nxs_jobs (epoch)",
    ],
    // Gateways and replicators read; only replicators write through the record API (copies);
    // gateways go through the hook routes, which hold the token checks.
    listRule: READ,
    viewRule: READ,
    createRule: IS_REPLICATOR,
    updateRule: IS_REPLICATOR,
    // The replicator purges tombstones (cleaned jobs) once every server holds them long enough.
    deleteRule: `${IS_REPLICATOR} && deleted = true`,
  };
}

/** `nxs_queue_epochs`: the claim epoch of this server (written by the `takeover` route only). */
export function epochsCollection(): CollectionDef {
  return {
    id: "pbc_nxs_queue_epochs",
    name: EPOCHS_COLLECTION,
    type: "base",
    fields: [num("epoch"), num("takenAt")],
    indexes: [],
    ...ROUTES_ONLY,
  };
}

/**
 * `nxs_job_keys`: the dedupe key table, one row per queue and key (a unique index), naming the job
 * that holds the key and the end of its throttle window. Written by the enqueue route only, inside
 * its transaction; not replicated (each server keeps its own; a server without a key's row finds
 * the newest job of the key, since jobs replicate with their key).
 */
export function jobKeysCollection(): CollectionDef {
  return {
    id: "pbc_nxs_job_keys",
    name: JOB_KEYS_COLLECTION,
    type: "base",
    fields: [required("queue", 200), required("key", 200), text("job", 15), text("mode", 20), num("until")],
    indexes: ["CREATE UNIQUE INDEX idx_nxs_job_keys ON nxs_job_keys (queue, key)"],
    ...ROUTES_ONLY,
  };
}

/**
 * `nxs_queue_schedules`: one record per cron schedule (id: a hash of queue and schedule id, the
 * same on every server), with its run count and cursor (`lastTick`); `version` orders copies
 * (definition revision, then cursor, then rev). Written by the schedule routes; replicated.
 */
export function schedulesCollection(): CollectionDef {
  return {
    id: "pbc_nxs_queue_schedules",
    name: SCHEDULES_COLLECTION,
    type: "base",
    fields: [
      required("queue", 200),
      required("sid", 100),
      text("cron", 200),
      text("tz", 100),
      json("payload"),
      num("limit"),
      num("endDate"),
      json("job", 4096),
      num("runs"),
      num("lastTick"),
      num("defRev"),
      { name: "removed", type: "bool" },
      num("rev"),
      text("version", 40),
      num("createdAt"),
      num("updatedAt"),
      { name: "created", type: "autodate", onCreate: true, onUpdate: false },
      { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
    ],
    indexes: ["CREATE UNIQUE INDEX idx_nxs_queue_schedules ON nxs_queue_schedules (queue, sid)"],
    listRule: READ,
    viewRule: READ,
    createRule: IS_REPLICATOR,
    updateRule: IS_REPLICATOR,
    deleteRule: null,
  };
}

/**
 * `nxs_queue_flow`: one record per queue (`groupKey` "") and group ("*": each group without its
 * own) with its limits and pause; id a hash of queue and group (the same on every server);
 * `version` = updatedAt.rev (the later write wins). Written by the flow routes and by a settlement
 * that pauses its group; replicated.
 */
export function flowCollection(): CollectionDef {
  return {
    id: "pbc_nxs_queue_flow",
    name: FLOW_COLLECTION,
    type: "base",
    fields: [
      required("queue", 200),
      text("groupKey", 200),
      num("concurrency"),
      num("rateMax"),
      num("rateIntervalMs"),
      { name: "paused", type: "bool" },
      num("pausedUntil"),
      text("reason"),
      num("rev"),
      text("version", 40),
      num("createdAt"),
      num("updatedAt"),
      { name: "created", type: "autodate", onCreate: true, onUpdate: false },
      { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
    ],
    indexes: ["CREATE UNIQUE INDEX idx_nxs_queue_flow ON nxs_queue_flow (queue, groupKey)"],
    listRule: READ,
    viewRule: READ,
    createRule: IS_REPLICATOR,
    updateRule: IS_REPLICATOR,
    deleteRule: null,
  };
}

/**
 * `nxs_queue_rates`: the rate window of one queue or group (its recent claims as `[at, weight]`
 * entries), written by the claim route inside its transaction. Not replicated: a server counts the
 * claims made on it (in a healthy fleet, all of them: the claim authority).
 */
export function ratesCollection(): CollectionDef {
  return {
    id: "pbc_nxs_queue_rates",
    name: RATES_COLLECTION,
    type: "base",
    fields: [required("queue", 200), text("groupKey", 200), json("log", 65_536)],
    indexes: ["CREATE UNIQUE INDEX idx_nxs_queue_rates ON nxs_queue_rates (queue, groupKey)"],
    ...ROUTES_ONLY,
  };
}

/** `nxs_job_blobs`: one protected file per blob (read with a file token). */
export function blobsCollection(maxBytes = DEFAULT_MAX_BLOB_BYTES): CollectionDef {
  return {
    id: "pbc_nxs_job_blobs",
    name: BLOBS_COLLECTION,
    type: "base",
    fields: [
      { name: "data", type: "file", required: true, maxSelect: 1, maxSize: maxBytes, protected: true },
      num("size"),
      text("contentType", 200),
      { name: "created", type: "autodate", onCreate: true, onUpdate: false },
    ],
    indexes: [],
    listRule: IS_NODE,
    viewRule: IS_NODE,
    createRule: IS_NODE,
    updateRule: null,
    deleteRule: IS_NODE,
  };
}

/** How long a cleaned job's tombstone is kept before the replicator purges it everywhere (7 days). */
export const DEFAULT_TOMBSTONE_RETENTION_MS = 7 * 24 * 3600 * 1000;

/**
 * The queue's collections, to register after the nxs-sync ones:
 * `createNxsCollectionRegistry().register(...queueCollections())`. `nxs_jobs` is replicated (key
 * `id`, last writer by `version`, deletes as tombstones that the replicator purges on every server
 * once they are older than `tombstoneRetentionMs` by `updatedAt`); the epochs and blobs stay on
 * each server. A job unchanged for longer than the retention is not copied to a server that lacks
 * it (e.g. one added to the fleet later). `nxs_queue_schedules` is replicated too (lww by `version`;
 * a removal is a flag, not a delete); the dedupe key table `nxs_job_keys` stays on each server.
 * @param options - `maxBlobBytes`: the blob file limit (default 16 MiB); `tombstoneRetentionMs`
 *   (default {@link DEFAULT_TOMBSTONE_RETENTION_MS}).
 * @returns The definitions, in creation order.
 * @example
 * ```ts
 * import { createNxsCollectionRegistry, ensureSchema } from "@nxs-sync/pocketbase";
 * const registry = createNxsCollectionRegistry().register(...queueCollections());
 * await ensureSchema(pb, { collections: registry }); // pb: a superuser client
 * ```
 */
export function queueCollections(
  options: { readonly maxBlobBytes?: number; readonly tombstoneRetentionMs?: number } = {},
): CollectionDefinition[] {
  return [
    {
      schema: jobsCollection(),
      replication: {
        key: ["id"],
        merge: MergeRules.lww("version"),
        deletes: DeletePolicies.tombstone("deleted", {
          purgeAfterMs: options.tombstoneRetentionMs ?? DEFAULT_TOMBSTONE_RETENTION_MS,
          at: "updatedAt",
        }),
      },
    },
    { schema: epochsCollection() },
    { schema: blobsCollection(options.maxBlobBytes) },
    { schema: jobKeysCollection() },
    {
      schema: schedulesCollection(),
      replication: { key: ["id"], merge: MergeRules.lww("version") },
    },
    { schema: flowCollection(), replication: { key: ["id"], merge: MergeRules.lww("version") } },
    { schema: ratesCollection() },
  ];
}

/**
 * Where the hook piece's file is (`pb_hooks/nxs-queue.pb.js` of this package).
 * @returns The absolute path.
 */
export function queueHooksPath(): string {
  // src/pocketbase/ (sources) and dist/ (the build) both reach pb_hooks/ from the package root.
  const up = /[\\/]src[\\/]pocketbase[\\/]?$/.test(fileURLToPath(new URL(".", import.meta.url)))
    ? "../../pb_hooks/"
    : "../pb_hooks/";
  return fileURLToPath(new URL(`${up}${QUEUE_HOOKS.file}`, import.meta.url));
}

/**
 * The queue's server hooks as a hook piece (`queue`, version {@link QUEUE_HOOKS}): register it
 * beside the collections, and `writeHooksBundle(dir, registry)` writes it into a server's hooks dir.
 * @returns The piece (its source is read when first asked for).
 * @example
 * ```ts
 * import { createNxsCollectionRegistry, writeHooksBundle } from "@nxs-sync/pocketbase";
 * const registry = createNxsCollectionRegistry().register(...queueCollections()).registerHooks(queueHookPiece());
 * await writeHooksBundle("/srv/pocketbase/pb_hooks", registry); // then restart the server
 * ```
 */
export function queueHookPiece(): HookPiece {
  return hookPieceFromFile({ ...QUEUE_HOOKS, path: queueHooksPath() });
}
