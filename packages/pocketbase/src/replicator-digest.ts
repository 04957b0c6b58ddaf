/**
 * Content digests of replicated records: two servers may hold a record under one key (same doc,
 * origin and seq; same range) with different content, written there by an author that sent each
 * server another body, or by a replica that lost its storage and reused its id. Ranges and counts
 * cannot see that; a digest of the fields that define the record can.
 */

import { createHash } from "node:crypto";
import { canonicalJson, type Json } from "@nxs-sync/core";

/**
 * What defines a record, as the values of `fields` in the order given (a missing field counts as
 * null). Server-made fields (`id`, `created`, `updated`) are left out by leaving them out of `fields`.
 * @param fields - The fields that define the record (e.g. doc, version, state, node).
 * @returns The content of a record.
 */
export function contentFields(
  fields: readonly string[],
): (record: Readonly<Record<string, unknown>>) => Json {
  return (record) => fields.map((f) => (record[f] ?? null) as Json);
}

/**
 * The digest of a record's content: sha256 (base64url) over its canonical JSON (sorted object keys).
 * @param content - What defines the record (see {@link contentFields}).
 * @returns The same text for equal content, whatever the records' ids or key order.
 */
export function contentDigest(content: unknown): string {
  return createHash("sha256")
    .update(canonicalJson(content as Json) ?? "undefined")
    .digest("base64url");
}

/**
 * Sets `key` in a map kept to `limit` entries: the key moves to the newest place and the oldest
 * entries go first.
 * @param map - A map used in insertion order.
 * @param key - The key.
 * @param value - Its value.
 * @param limit - The most entries kept.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, limit: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > limit) {
    const oldest = map.keys().next();
    if (oldest.done) break;
    map.delete(oldest.value);
  }
}
