import type { ValidationError } from "@nxs-sync/core";
import type { PocketBaseClient } from "./client.js";
import type { DeletePolicy, MergeRule } from "./merge-plan.js";
import type { ReportUntrusted } from "./replicator-snapshots.js";
import type { CollectionDef, FieldDef } from "./schema.js";

/** A check of one record: the reason to refuse it, or undefined to accept it. */
export type RecordCheck = (record: Readonly<Record<string, unknown>>) => ValidationError | undefined;

/** One collection the replicator keeps identical on every server. */
export interface ReplicatedCollection {
  /** Collection name. */
  readonly name: string;
  /**
   * Fields that identify a record across servers (a unique index on the server should match). Unless
   * the key is `["id"]`, a copy is written without the source's record id (the target assigns one):
   * ids are chosen by authors, and one author could otherwise make two of its records collide.
   */
  readonly key: readonly string[];
  /** Reconciliation rule. Default `immutable`. */
  readonly merge?: MergeRule;
  /**
   * Validates a record before it is copied; a returned error quarantines it (reported, not copied).
   * Default: accept.
   */
  readonly validate?: RecordCheck;
  /**
   * Validates records against the server they are read from, before they are copied (e.g. a
   * snapshot's claims against that server's heads): called with the records about to be copied,
   * it returns the check of one record; an error quarantines it like `validate`. Default: none.
   */
  readonly validateAt?: (
    source: PocketBaseClient,
    records: readonly Readonly<Record<string, unknown>>[],
  ) => Promise<RecordCheck>;
  /**
   * A view collection summarizing the collection per group (fields `groupBy…`, `head`, `n`): anti-entropy
   * then lists records only in groups whose digest differs between servers instead of everything.
   */
  readonly digest?: { readonly view: string; readonly groupBy: readonly string[] };
  /**
   * What defines a record's content (e.g. `contentFields([...])`, or its decoded changes). Where two
   * servers hold one key at the same version (same range, same `lww` field), the full sweep compares
   * a digest of it and reports a key whose content differs (`divergence` event). Default: no
   * content comparison.
   */
  readonly content?: (record: Readonly<Record<string, unknown>>) => unknown;
  /**
   * Called once per anti-entropy round and target server: returns a predicate telling which records
   * must NOT be copied there (e.g. changes the target compacted away under a snapshot). Records it
   * finds untrustworthy on the way (a snapshot with unbacked claims) go to `report`: the replicator
   * reports each once, as a `quarantine` event.
   */
  readonly skipAt?: (
    target: PocketBaseClient,
    report: ReportUntrusted,
  ) => Promise<(record: Readonly<Record<string, unknown>>) => boolean>;
  /**
   * What a delete on one server becomes (see {@link DeletePolicy}): `none` (default: a deleted
   * record is copied back from a server that holds it), `tombstone` (deletes are updates setting a
   * field, and a tombstone wins over any live copy), or `purge` (records purged below a frontier
   * every server has passed are never copied back: its `skipAt` acts as {@link skipAt}).
   */
  readonly deletes?: DeletePolicy<PocketBaseClient, ReportUntrusted>;
  /**
   * Its fields of type `json`. PocketBase reads a plain string sent to a json field as JSON when it
   * looks like JSON (`"12"` becomes the number 12, `"true"` true, `"[1]"` an array), so the
   * replicator sends a string held there as JSON text (`"\"12\""`), which the server stores
   * verbatim: the copy holds the same string. Filled from the schema by the collection registry
   * ({@link replicatedCollectionOf}); a collection listed by hand takes it from there, or sets it.
   * Default: none.
   */
  readonly jsonFields?: readonly string[];
}

/**
 * Everything about one collection, declared once: its PocketBase definition (fields, indexes, API
 * rules), from which `ensureSchema` and the generated migration are made, and, when it is
 * replicated between servers, its replication (key, merge rule, validation, digest view, delete
 * policy), which the replicator reads.
 */
export interface CollectionDefinition {
  /** The collection as sent to the collections API (fixed `id`: the same on every server). */
  readonly schema: CollectionDef;
  /** How the replicator keeps it equal on every server; absent: not replicated (e.g. a view). */
  readonly replication?: Omit<ReplicatedCollection, "name" | "jsonFields">;
}

/**
 * The replicated collection of a definition: its replication, named, with the `json` fields its
 * schema declares (see {@link ReplicatedCollection.jsonFields}).
 * @param definition - A collection's definition.
 * @returns The collection the replicator keeps, or undefined when it is not replicated.
 * @example
 * ```ts
 * // A list of collections written by hand (a registry's `replicated()` does the same for all).
 * const kvItems: CollectionDefinition = {
 *   schema: {
 *     ...{ id: "pbc_kv_items", name: "kv_items", type: "base", fields: [{ name: "value", type: "json" }], indexes: [] },
 *     ...{ listRule: null, viewRule: null, createRule: null, updateRule: null, deleteRule: null },
 *   },
 *   replication: { key: ["id"], merge: MergeRules.lww("updated") },
 * };
 * const collections = [...defaultReplicatedCollections(), replicatedCollectionOf(kvItems)!];
 * const servers = [{ url: "http://10.0.0.1:8090", auth }, { url: "http://10.0.0.2:8090", auth }];
 * createReplicator({ servers, collections });
 * ```
 */
export function replicatedCollectionOf(definition: CollectionDefinition): ReplicatedCollection | undefined {
  const { schema, replication } = definition;
  if (replication === undefined) return undefined;
  const isJson = (f: FieldDef) => f.type === "json";
  return { ...replication, name: schema.name, jsonFields: schema.fields.filter(isJson).map((f) => f.name) };
}
