import { fileURLToPath } from "node:url";
import { ErrorCode, NxsError } from "@nxs-sync/core";
import type { CollectionDefinition } from "../collection-definition.js";
import { type HookPiece, hookPieceFromFile } from "../hook-pieces.js";
import { AuthRules } from "./nxs.js";

/** Name, version and file of the record replication's hook piece (`GET /nxs/hooks/records`). */
export const RECORDS_HOOKS = { name: "records", version: 1, file: "nxs-records.pb.js" } as const;

/** The collection the piece writes a tombstone into for each deleted record of a replicated collection. */
export const TOMBSTONES_COLLECTION = "nxs_tombstones";

/** The realtime topic on which the piece tells replicators that a record changed. */
export const RECORDS_TOPIC = "nxs/records";

/** The collections replicated by default: PocketBase's `users`. */
export const DEFAULT_RECORD_COLLECTIONS: readonly string[] = ["users"];

/**
 * `nxs_tombstones`: one row per deleted record of a collection replicated through the `records`
 * piece (`coll`, `record`, `at`: the delete's time as PocketBase writes `updated`). Written by the
 * piece only (in the delete's transaction, or by an import with the origin's time); replicators
 * read it. Copied between servers by the piece's export and import, not by the generic replicator.
 */
export const tombstonesCollection: CollectionDefinition = {
  schema: {
    id: "pbc_nxs_tombstones",
    name: TOMBSTONES_COLLECTION,
    type: "base",
    fields: [
      { name: "coll", type: "text", required: true, max: 100 },
      { name: "record", type: "text", required: true, max: 100 },
      { name: "at", type: "text", required: true, max: 40 },
      { name: "created", type: "autodate", onCreate: true, onUpdate: false },
      { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
    ],
    indexes: [
      "CREATE UNIQUE INDEX idx_nxs_tombstones_key ON nxs_tombstones (coll, record)",
      "CREATE INDEX idx_nxs_tombstones_at ON nxs_tombstones (coll, at)",
    ],
    listRule: AuthRules.replicator,
    viewRule: AuthRules.replicator,
    createRule: null,
    updateRule: null,
    deleteRule: AuthRules.replicator,
  },
};

/** The collection where the piece keeps each replicated record's base on this server. */
export const RECORD_BASES_COLLECTION = "nxs_record_bases";

/**
 * `nxs_record_bases`: per record of a collection replicated through the `records` piece, the
 * `updated` of the last version this server received from a peer or found equal to a peer's (its
 * base). An import compares bases to tell a write made on top of the other server's from a
 * concurrent one (a conflict, reported). Local to each server, written by the piece only.
 */
export const recordBasesCollection: CollectionDefinition = {
  schema: {
    id: "pbc_nxs_record_bases",
    name: RECORD_BASES_COLLECTION,
    type: "base",
    fields: [
      { name: "coll", type: "text", required: true, max: 100 },
      { name: "record", type: "text", required: true, max: 100 },
      { name: "base", type: "text", required: false, max: 40 },
    ],
    indexes: ["CREATE UNIQUE INDEX idx_nxs_record_bases_key ON nxs_record_bases (coll, record)"],
    listRule: AuthRules.replicator,
    viewRule: AuthRules.replicator,
    createRule: null,
    updateRule: null,
    deleteRule: null,
  },
};

/**
 * The collections the `records` piece needs (`nxs_tombstones`, `nxs_record_bases`): register them
 * with the piece.
 * @returns The definitions.
 */
export function recordsCollections(): CollectionDefinition[] {
  return [tombstonesCollection, recordBasesCollection];
}

const NAME = /^[A-Za-z][A-Za-z0-9_]{0,99}$/;
const LIST = /\/\*<collections>\*\/.*?\/\*<\/collections>\*\//g;

/**
 * Checks the names of collections to replicate through the `records` piece.
 * @param collections - Collection names.
 * @returns The names, deduplicated, in order.
 * @throws NxsError `config/invalid` for an empty list, a malformed name, or a system or nxs-sync
 *   collection (those replicate otherwise, or never).
 */
export function checkRecordCollections(collections: readonly string[]): string[] {
  const names = [...new Set(collections)];
  if (names.length === 0)
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      "records: name at least one collection to replicate (e.g. users)",
    );
  for (const n of names) {
    if (!NAME.test(n))
      throw new NxsError(ErrorCode.ConfigInvalid, `records: ${JSON.stringify(n)} is not a collection name`);
    if (n.startsWith("nxs_"))
      throw new NxsError(
        ErrorCode.ConfigInvalid,
        `records: ${n} is an nxs-sync collection: the replicator copies those through the collection registry`,
      );
  }
  return names;
}

/**
 * The record replication's hook piece (`pb_hooks/nxs-records.pb.js`): routes that export and
 * import whole records (an account's password hash, token key and linked OAuth2 identities
 * included) for replicator accounts and superusers only, token secrets, tombstones of deletes, and
 * a realtime topic for the replicator, for the collections named.
 * @param options - `collections`: the collections to replicate (default `users`).
 * @returns The piece, its text written for those collections.
 * @throws NxsError `config/invalid` (see {@link checkRecordCollections}).
 */
export function recordsHookPiece(options: { readonly collections?: readonly string[] } = {}): HookPiece {
  const names = checkRecordCollections(options.collections ?? DEFAULT_RECORD_COLLECTIONS);
  // src/collections/ (sources) and dist/ (the build) both reach pb_hooks/ from the package root.
  const up = /[\\/]src[\\/]collections[\\/]?$/.test(fileURLToPath(new URL(".", import.meta.url)))
    ? "../../pb_hooks/"
    : "../pb_hooks/";
  const piece = hookPieceFromFile({
    ...RECORDS_HOOKS,
    path: fileURLToPath(new URL(`${up}${RECORDS_HOOKS.file}`, import.meta.url)),
  });
  const list = names.map((n) => JSON.stringify(n)).join(", ");
  let text: string | undefined;
  return {
    ...RECORDS_HOOKS,
    get source() {
      text ??= piece.source.replace(LIST, `/*<collections>*/${list}/*</collections>*/`);
      return text;
    },
  };
}
