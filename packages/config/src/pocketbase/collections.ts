import { fileURLToPath } from "node:url";
import { ValidationError } from "@nxs-sync/core";
import {
  AuthRules,
  type CollectionDef,
  type CollectionDefinition,
  DeletePolicies,
  type FieldDef,
  type HookPiece,
  hookPieceFromFile,
  MergeRules,
  type RecordCheck,
} from "@nxs-sync/pocketbase";
import { ROLLOUT_RANK } from "../version.js";
import { decodeRolloutRecord, decodeVersionRecord } from "./records.js";

/** The version records: immutable, replicated (key `id`), compacted into tombstones. */
export const VERSIONS_COLLECTION = "nxs_config_versions";
/** The rollout state of staged versions: replicated, merged monotonically (a state only moves up). */
export const ROLLOUTS_COLLECTION = "nxs_config_rollouts";
/** This server's origin id (one record, written by the routes; never replicated). */
export const ORIGIN_COLLECTION = "nxs_config_origin";
/** The largest stored value (JSON characters); the `put` route refuses a larger one. */
export const MAX_VALUE_JSON = 1_048_576;
/** Name and version of the hook piece (`pb_hooks/nxs-config.pb.js`, `GET /nxs/hooks/config`). */
export const CONFIG_HOOKS = { name: "config", version: 4, file: "nxs-config.pb.js" } as const;
/** How long a compacted version's tombstone is kept before the replicator purges it everywhere (30 days). */
export const DEFAULT_COMPACTED_RETENTION_MS = 30 * 24 * 3600 * 1000;

const READ = `${AuthRules.gateway} || ${AuthRules.replicator}`;

const num = (name: string): FieldDef => ({ name, type: "number" });
const text = (name: string, max: number): FieldDef => ({ name, type: "text", max });
const created: FieldDef = { name: "created", type: "autodate", onCreate: true, onUpdate: false };
// Each server's own time of a record's last write there: the watch's catch-up cursor.
const updated: FieldDef = { name: "updated", type: "autodate", onCreate: true, onUpdate: true };

/** `nxs_config_versions`: every `StoredVersion` field, plus `compactedAt` (the tombstone's time). */
export function versionsCollection(): CollectionDef {
  return {
    id: "pbc_nxs_config_versions",
    name: VERSIONS_COLLECTION,
    type: "base",
    fields: [
      // Not `required`: a required field refuses its zero value (version 0, an empty message), and
      // the shape is checked by the routes and at every reading edge (zod) instead.
      text("env", 64),
      text("key", 128),
      num("version"),
      text("hlc", 64),
      text("origin", 64),
      text("node", 200),
      text("author", 200),
      text("message", 2000),
      num("createdAt"),
      // 0: not a rollback.
      num("rollbackOf"),
      { name: "rollout", type: "json", maxSize: 65_536 },
      { name: "value", type: "json", maxSize: MAX_VALUE_JSON + 1024 },
      { name: "compacted", type: "bool" },
      // A date, empty on a live version: the tombstone policy's purge time (`at`) must be absent on
      // live records (a number field would hold 0, which reads as the epoch: every live version
      // would be under the purge frontier and never copied to a server that lacks it).
      { name: "compactedAt", type: "date" },
      created,
      updated,
    ],
    indexes: [
      // The head of a key: (version, hlc, id) descending.
      "CREATE INDEX idx_nxs_config_versions_head ON nxs_config_versions (env, key, version, hlc)",
      // A watch's catch-up: what changed in an environment since a time.
      "CREATE INDEX idx_nxs_config_versions_updated ON nxs_config_versions (env, updated)",
    ],
    // Gateways and replicators read; gateways write through the routes only (the CAS); replicators
    // copy versions and tombstones (an update only ever compacts: see the hook piece's guard) and
    // purge old tombstones.
    listRule: READ,
    viewRule: READ,
    createRule: AuthRules.replicator,
    updateRule: `${AuthRules.replicator} && @request.body.compacted = true`,
    deleteRule: `${AuthRules.replicator} && compacted = true`,
  };
}

/** `nxs_config_rollouts`: one record per staged version (its id), with `rev` ordering its writes. */
export function rolloutsCollection(): CollectionDef {
  return {
    id: "pbc_nxs_config_rollouts",
    name: ROLLOUTS_COLLECTION,
    type: "base",
    fields: [
      text("env", 64),
      text("key", 128),
      num("version"),
      { name: "state", type: "select", maxSelect: 1, values: [...ROLLOUT_RANK] },
      text("reason", 2000),
      num("updatedAt"),
      // rank(state) * 1e13 + updatedAt: a write of a higher state always has a higher rev, so the
      // fields that follow `rev` in a merge (reason, updatedAt) are those of the winning state.
      num("rev"),
      created,
      updated,
    ],
    indexes: ["CREATE INDEX idx_nxs_config_rollouts_env ON nxs_config_rollouts (env, updated)"],
    listRule: READ,
    viewRule: READ,
    createRule: AuthRules.replicator,
    updateRule: AuthRules.replicator,
    deleteRule: null,
  };
}

/** `nxs_config_origin`: this server's origin id, made at random by the routes on first use. */
export function originCollection(): CollectionDef {
  return {
    id: "pbc_nxs_config_origin",
    name: ORIGIN_COLLECTION,
    type: "base",
    fields: [text("origin", 64), created],
    indexes: [],
    listRule: READ,
    viewRule: READ,
    createRule: null,
    updateRule: null,
    deleteRule: null,
  };
}

/** A replicated record that does not decode is quarantined by the replicator (reported, not copied). */
const checkWith =
  (collection: string, decode: (raw: unknown) => { ok: true } | { ok: false; reason: string }): RecordCheck =>
  (record) => {
    const d = decode(record);
    return d.ok ? undefined : new ValidationError(`${collection} record ${String(record.id)}: ${d.reason}`);
  };

/**
 * The config store's collections, to register after the nxs-sync ones:
 * `createNxsCollectionRegistry().register(...configCollections())`. `nxs_config_versions` is
 * replicated with key `id` and `MergeRules.immutable` (a version never changes), its compaction as
 * tombstones (`DeletePolicies.tombstone("compacted")`: a compacted copy wins over a live one, and
 * is purged everywhere once older than `compactedRetentionMs` by `compactedAt`);
 * `nxs_config_rollouts` is replicated with key `id`, merged monotonically (`state` by rank, the
 * other fields following `rev`); `nxs_config_origin` stays on each server. Both replicated
 * collections validate every copy (`storedVersionSchema`, `rolloutRecordSchema`): a malformed
 * record is quarantined by the replicator.
 * @param options - `compactedRetentionMs` (default {@link DEFAULT_COMPACTED_RETENTION_MS}).
 * @returns The definitions, in creation order.
 * @throws NxsError `config/invalid` for a retention that is not a positive number.
 * @example
 * ```ts
 * import { createNxsCollectionRegistry, ensureSchema } from "@nxs-sync/pocketbase";
 * const registry = createNxsCollectionRegistry().register(...configCollections());
 * await ensureSchema(pb, { collections: registry }); // pb: a superuser client
 * ```
 */
export function configCollections(
  options: { readonly compactedRetentionMs?: number } = {},
): CollectionDefinition[] {
  return [
    {
      schema: versionsCollection(),
      replication: {
        key: ["id"],
        merge: MergeRules.immutable,
        validate: checkWith(VERSIONS_COLLECTION, decodeVersionRecord),
        deletes: DeletePolicies.tombstone("compacted", {
          purgeAfterMs: options.compactedRetentionMs ?? DEFAULT_COMPACTED_RETENTION_MS,
          at: "compactedAt",
        }),
      },
    },
    {
      schema: rolloutsCollection(),
      replication: {
        key: ["id"],
        merge: MergeRules.monotonic([{ field: "state", rank: ROLLOUT_RANK }], "rev"),
        validate: checkWith(ROLLOUTS_COLLECTION, decodeRolloutRecord),
      },
    },
    { schema: originCollection() },
  ];
}

/**
 * Where the hook piece's file is (`pb_hooks/nxs-config.pb.js` of this package).
 * @returns The absolute path.
 */
export function configHooksPath(): string {
  // src/pocketbase/ (sources) and dist/ (the build) both reach pb_hooks/ from the package root.
  const up = /[\\/]src[\\/]pocketbase[\\/]?$/.test(fileURLToPath(new URL(".", import.meta.url)))
    ? "../../pb_hooks/"
    : "../pb_hooks/";
  return fileURLToPath(new URL(`${up}${CONFIG_HOOKS.file}`, import.meta.url));
}

/**
 * The config store's server hooks as a hook piece (`config`, version {@link CONFIG_HOOKS}): the
 * routes `POST /nxs/config/{put,heads,compact,rollout,origin}` and the guard of replicators'
 * copies. Register it beside the collections; `writeHooksBundle(dir, registry)` writes it into a
 * server's hooks dir.
 * @returns The piece (its source is read when first asked for).
 * @example
 * ```ts
 * import { createNxsCollectionRegistry, writeHooksBundle } from "@nxs-sync/pocketbase";
 * const registry = createNxsCollectionRegistry().register(...configCollections()).registerHooks(configHookPiece());
 * await writeHooksBundle("/srv/pocketbase/pb_hooks", registry); // then restart the server
 * ```
 */
export function configHookPiece(): HookPiece {
  return hookPieceFromFile({ ...CONFIG_HOOKS, path: configHooksPath() });
}
