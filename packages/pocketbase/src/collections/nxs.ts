import { ValidationError } from "@nxs-sync/core";
import { NODES_COLLECTION, OPERATORS_COLLECTION, REPLICATORS_COLLECTION } from "../client.js";
import {
  type CollectionDefinition,
  type ReplicatedCollection,
  replicatedCollectionOf,
} from "../collection-definition.js";
import { ackRecordSchema } from "../compaction.js";
import { DeletePolicies, MergeRules } from "../merge-plan.js";
import { decodeChangeRecord, decodeSnapshotRecord, isOriginOfNode, sliceChangeRecord } from "../records.js";
import { contentFields } from "../replicator-digest.js";
import { backedAtSource, coveredByBackedSnapshot } from "../replicator-snapshots.js";
import {
  CHANGE_SIZES_QUERY,
  type CollectionDef,
  Collections,
  type FieldDef,
  HEADS_QUERY,
  MAX_CHANGES_BYTES,
  MAX_SNAPSHOT_BYTES,
  MAX_VERSION_BYTES,
  NODE_TOKEN_DURATION_S,
  SNAPSHOT_VERSIONS_QUERY,
} from "../schema.js";

/**
 * The nxs-sync collections, each declared once: its PocketBase definition (fields, indexes, API
 * rules; fixed ids, so that relations and migrations agree on every server) and, for the three
 * replicated ones, its replication. `ensureSchema`, the generated migration and the replicator
 * read them (through {@link nxsCollectionDefinitions}).
 */

/** A gateway node. `collectionName` is bound as a parameter: no join in any rule below. */
const IS_GATEWAY = `@request.auth.collectionName = "${NODES_COLLECTION}"`;
const IS_REPLICATOR = `@request.auth.collectionName = "${REPLICATORS_COLLECTION}"`;
/** Any nxs-sync identity: the read rule of every collection (nothing is public). */
const IS_MEMBER = `(${IS_GATEWAY} || ${IS_REPLICATOR})`;
/** A person who reads the fleet's health: granted reads by the collections that name it, no writes. */
const IS_OPERATOR = `@request.auth.collectionName = "${OPERATORS_COLLECTION}"`;

/**
 * The API rule terms of nxs-sync's identities, for the rules of a package's own collections:
 * `gateway` (a record of `nxs_nodes`), `replicator` (of `nxs_replicators`), `member` (either),
 * `operator` (of `nxs_operators`: a person with read access where a collection grants it; not a
 * member, so no core collection lets it read or write).
 * @example
 * ```ts
 * const rules = { listRule: AuthRules.member, createRule: `${AuthRules.gateway} || ${AuthRules.replicator}` };
 * ```
 */
export const AuthRules = Object.freeze({
  gateway: IS_GATEWAY,
  replicator: IS_REPLICATOR,
  member: IS_MEMBER,
  operator: IS_OPERATOR,
});
/**
 * Create rule of authored records: a gateway writes only records it authors, and an origin that
 * contains its id (the exact binding `origin = node` or `node.<instance>` is checked at the reading
 * edge, since rules have no prefix operator). Replicators copy any node's records.
 */
const AUTHOR_CREATE = `@request.body.last >= @request.body.seq && ((${IS_GATEWAY} && @request.body.node = @request.auth.id && @request.body.origin ~ @request.auth.id) || ${IS_REPLICATOR})`;
const SNAPSHOT_CREATE = `(${IS_GATEWAY} && @request.body.node = @request.auth.id) || ${IS_REPLICATOR}`;
/** Compaction deletes (changes below the frontier, old snapshots) are maintenance: replicators only. */
const MAINTENANCE = IS_REPLICATOR;
const ACK_CREATE = `(${IS_GATEWAY} && @request.body.node = @request.auth.id && @request.body.replica ~ @request.auth.id) || ${IS_REPLICATOR}`;
/** A gateway updates its own acks only, and never moves one to another node, doc or replica. */
const ACK_UPDATE = `(${IS_GATEWAY} && node = @request.auth.id && (@request.body.node:isset = false || @request.body.node = @request.auth.id) && @request.body.doc:isset = false && @request.body.replica:isset = false) || ${IS_REPLICATOR}`;

const created: FieldDef = { name: "created", type: "autodate", onCreate: true, onUpdate: false };
/** A required text field holding a doc or replica id (the form core's ids take). */
const idText = (name: string): FieldDef => ({
  name,
  type: "text",
  required: true,
  max: 64,
  pattern: "^[A-Za-z0-9_.:-]+$",
});
/** The node (auth record) that wrote a record. */
const authorNode: FieldDef = {
  name: "node",
  type: "relation",
  required: true,
  collectionId: "pbc_nxs_nodes",
  maxSelect: 1,
  cascadeDelete: false,
};

const CHANGE_FIELDS = contentFields(["doc", "origin", "seq", "last", "hlc", "changes", "node"]);

/**
 * What defines a change record: its author node and its changes as decoded (so that two encodings
 * of the same changes, e.g. by two library versions, agree); its raw fields when it does not decode.
 */
function changeContent(record: Readonly<Record<string, unknown>>): unknown {
  const d = decodeChangeRecord(record, { requireBoundOrigin: false });
  return d.ok ? { node: record.node ?? null, changes: d.value } : CHANGE_FIELDS(record);
}

/**
 * An nxs-sync account collection (auth): a name, a password login by email, short tokens, and no
 * API writes (accounts are made by `ensureNode`, as a superuser).
 */
function accountCollection(name: string, readRule: string | null): CollectionDefinition {
  return {
    schema: {
      id: `pbc_${name}`,
      name,
      type: "auth",
      fields: [{ name: "name", type: "text", max: 200 }, created],
      indexes: [],
      listRule: readRule,
      viewRule: readRule,
      createRule: null,
      updateRule: null,
      deleteRule: null,
      passwordAuth: { enabled: true, identityFields: ["email"] },
      authToken: { duration: NODE_TOKEN_DURATION_S },
      // No "login from a new location" mail: these are machine accounts with made-up addresses
      // (PocketBase sends one on a new device's login once its mailer is set up).
      authAlert: { enabled: false },
    },
  };
}

/** Gateways (auth): they read every nxs collection and write only their own records. */
export const nodesCollection = accountCollection(Collections.Nodes, IS_MEMBER);

/** Replicator accounts (auth): the replicator and the compactor; no API access to the collection itself. */
export const replicatorsCollection = accountCollection(Collections.Replicators, null);

/** Change packs: ranges of each origin's log (key doc/origin/seq, ending at `last`); compaction purges them under a snapshot every live replica acked, and the replicator never copies them back there. */
export const changesCollection: CollectionDefinition = {
  schema: {
    id: "pbc_nxs_changes",
    name: Collections.Changes,
    type: "base",
    fields: [
      idText("doc"),
      idText("origin"),
      { name: "seq", type: "number", required: true, onlyInt: true, min: 1 },
      { name: "last", type: "number", required: true, onlyInt: true, min: 1 },
      { name: "hlc", type: "text", required: true, max: 64 },
      { name: "changes", type: "json", maxSize: MAX_CHANGES_BYTES },
      authorNode,
      created,
    ],
    indexes: [
      "CREATE UNIQUE INDEX idx_nxs_changes_doc_origin_seq ON nxs_changes (doc, origin, seq)",
      "CREATE INDEX idx_nxs_changes_doc_origin_last ON nxs_changes (doc, origin, last)",
    ],
    listRule: IS_MEMBER,
    viewRule: IS_MEMBER,
    createRule: AUTHOR_CREATE,
    updateRule: null,
    deleteRule: MAINTENANCE,
  },
  replication: {
    key: ["doc", "origin", "seq"],
    merge: MergeRules.log("seq", "last", sliceChangeRecord),
    validate: (r) => {
      const d = decodeChangeRecord(r);
      return d.ok ? undefined : d.error;
    },
    // Compaction deletes changes under a snapshot every live replica acked: never copied back.
    deletes: DeletePolicies.purge(coveredByBackedSnapshot),
    digest: { view: Collections.Heads, groupBy: ["doc", "origin"] },
    content: changeContent,
  },
};

/** Snapshots: immutable, key id (a snapshot has no natural key; two of one id and different content are reported as a divergence); copied only when backed where read. */
export const snapshotsCollection: CollectionDefinition = {
  schema: {
    id: "pbc_nxs_snapshots",
    name: Collections.Snapshots,
    type: "base",
    fields: [
      idText("doc"),
      { name: "version", type: "json", maxSize: MAX_VERSION_BYTES },
      { name: "state", type: "json", maxSize: MAX_SNAPSHOT_BYTES },
      authorNode,
      created,
    ],
    indexes: ["CREATE INDEX idx_nxs_snapshots_doc ON nxs_snapshots (doc, created)"],
    listRule: IS_MEMBER,
    viewRule: IS_MEMBER,
    createRule: SNAPSHOT_CREATE,
    updateRule: null,
    deleteRule: MAINTENANCE,
  },
  replication: {
    key: ["id"],
    merge: MergeRules.immutable,
    validate: (r) => {
      const d = decodeSnapshotRecord(r);
      return d.ok ? undefined : d.error;
    },
    validateAt: backedAtSource,
    content: contentFields(["doc", "version", "state", "node"]),
  },
};

/** Acks: per doc and replica, last writer wins by `at`. */
export const acksCollection: CollectionDefinition = {
  schema: {
    id: "pbc_nxs_acks",
    name: Collections.Acks,
    type: "base",
    fields: [
      idText("doc"),
      idText("replica"),
      { name: "version", type: "json", maxSize: MAX_VERSION_BYTES },
      { name: "at", type: "number", required: true, onlyInt: true, min: 1 },
      authorNode,
      created,
      // The server's own time of the last write: ack liveness (a client's `at` could lie).
      { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
    ],
    indexes: ["CREATE UNIQUE INDEX idx_nxs_acks_doc_replica ON nxs_acks (doc, replica)"],
    listRule: IS_MEMBER,
    viewRule: IS_MEMBER,
    createRule: ACK_CREATE,
    updateRule: ACK_UPDATE,
    deleteRule: MAINTENANCE,
  },
  replication: {
    key: ["doc", "replica"],
    merge: MergeRules.lww("at"),
    validate: (r) => {
      const d = ackRecordSchema.safeParse(r);
      if (!d.success) {
        return new ValidationError(`nxs_acks record ${String(r.id)}: malformed record`, {
          issues: d.error.issues.map((i) => ({ path: i.path, message: i.message })),
          cause: d.error,
        });
      }
      if (!isOriginOfNode(d.data.replica, d.data.node)) {
        return new ValidationError(`nxs_acks record ${String(r.id)}: replica not bound to its node`);
      }
      return undefined;
    },
    content: contentFields(["doc", "replica", "version", "at", "node"]),
  },
};

/** Leases: per doc and replica id, the live process holding it (written by the hooks bundle only). */
export const leasesCollection: CollectionDefinition = {
  schema: {
    // Written only by the hooks bundle's POST /nxs/lease (in a transaction): no API write rule.
    id: "pbc_nxs_leases",
    name: Collections.Leases,
    type: "base",
    fields: [
      idText("doc"),
      idText("replica"),
      { name: "holder", type: "text", required: true, max: 64 },
      { name: "until", type: "number", required: true, onlyInt: true, min: 1 },
      { name: "node", type: "text", required: true, max: 64 },
      created,
    ],
    indexes: ["CREATE UNIQUE INDEX idx_nxs_leases_doc_replica ON nxs_leases (doc, replica)"],
    listRule: IS_MEMBER,
    viewRule: IS_MEMBER,
    createRule: null,
    updateRule: null,
    deleteRule: MAINTENANCE,
  },
};

/** The `nxs_heads` view: per doc and origin, the highest `last` and the record count (the anti-entropy digest). */
export const headsCollection: CollectionDefinition = {
  schema: {
    id: "pbc_nxs_heads",
    name: Collections.Heads,
    type: "view",
    fields: [],
    indexes: [],
    viewQuery: HEADS_QUERY,
    listRule: IS_MEMBER,
    viewRule: IS_MEMBER,
    createRule: null,
    updateRule: null,
    deleteRule: null,
  },
};

/** The `nxs_change_sizes` view (schema 3): pulls within a byte budget. */
export const changeSizesCollection: CollectionDefinition = {
  schema: {
    // Schema 3. The same read rules as nxs_changes: it shows nothing more than they do.
    id: "pbc_nxs_change_sizes",
    name: Collections.ChangeSizes,
    type: "view",
    fields: [],
    indexes: [],
    viewQuery: CHANGE_SIZES_QUERY,
    listRule: IS_MEMBER,
    viewRule: IS_MEMBER,
    createRule: null,
    updateRule: null,
    deleteRule: null,
  },
};

/** The `nxs_snapshot_versions` view (schema 3): snapshot claims without their states. */
export const snapshotVersionsCollection: CollectionDefinition = {
  schema: {
    // Schema 3. The same read rules as nxs_snapshots.
    id: "pbc_nxs_snapshot_versions",
    name: Collections.SnapshotVersions,
    type: "view",
    fields: [],
    indexes: [],
    viewQuery: SNAPSHOT_VERSIONS_QUERY,
    listRule: IS_MEMBER,
    viewRule: IS_MEMBER,
    createRule: null,
    updateRule: null,
    deleteRule: null,
  },
};

/**
 * The `nxs_replicator_status` heartbeat (schema 4): one row per replicator, its id the replicator
 * account's, upserted by that replicator after an anti-entropy round (at most every
 * `heartbeatMs`). Local to each server (no replication): each server shows what the replicator did
 * while it could reach it. Replicators read and write it; superusers read it (`nxs-sync status`).
 */
export const replicatorStatusCollection: CollectionDefinition = {
  schema: {
    id: "pbc_nxs_replicator_status",
    name: Collections.ReplicatorStatus,
    type: "base",
    fields: [
      { name: "rounds", type: "number", required: false, onlyInt: true, min: 0 },
      { name: "intervalMs", type: "number", required: false, onlyInt: true, min: 0 },
      { name: "lastError", type: "text", max: 2000 },
      { name: "servers", type: "json", maxSize: 16_384 },
      created,
      // The server's own time of the last round written: the replicator's liveness.
      { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
    ],
    indexes: [],
    listRule: IS_REPLICATOR,
    viewRule: IS_REPLICATOR,
    createRule: IS_REPLICATOR,
    updateRule: IS_REPLICATOR,
    // A departed replicator's row is maintenance, like every delete.
    deleteRule: MAINTENANCE,
  },
};

/**
 * The nxs-sync collections with their replication, in creation order (nodes first: the others
 * relate to it).
 * @returns The definitions (shared objects: copy before changing one).
 */
export function nxsCollectionDefinitions(): readonly CollectionDefinition[] {
  return [
    nodesCollection,
    replicatorsCollection,
    changesCollection,
    snapshotsCollection,
    acksCollection,
    leasesCollection,
    headsCollection,
    changeSizesCollection,
    snapshotVersionsCollection,
    replicatorStatusCollection,
  ];
}

/**
 * The nxs-sync collections as the collections API takes them, in creation order.
 * @returns Fresh definitions (the same as the shipped migrations make).
 */
export function schemaDefinitions(): readonly CollectionDef[] {
  return structuredClone(nxsCollectionDefinitions().map((d) => d.schema));
}

/**
 * The replicated nxs-sync collections: changes (a log, purged under backed snapshots), snapshots
 * (immutable, checked at the source) and acks (last writer wins by `at`). Each compares content.
 * @returns Their replication, named, with their json fields.
 */
export function defaultReplicatedCollections(): readonly ReplicatedCollection[] {
  return nxsCollectionDefinitions().flatMap((d) => replicatedCollectionOf(d) ?? []);
}
