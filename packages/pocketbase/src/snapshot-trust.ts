/**
 * Snapshot trust: a snapshot is untrusted input. Its `version` claims which changes its state
 * covers; a reader that adopts it skips those changes for good, and the compactor deletes them. A
 * claim is believed only when the server it is read from holds that origin's changes up to the
 * claimed seq: its `nxs_heads` row (the highest `last` of the origin's change records there) is at
 * least the claim. The compactor keeps each origin's newest change record, so heads never fall
 * below an honest snapshot's claims (docs/pocketbase.md, "Threat model").
 */

import type { VersionVector } from "@nxs-sync/core";
import type { PocketBaseClient } from "./client.js";
import { Collections } from "./schema.js";

/** Per origin, the highest seq of its change records on one server (the `nxs_heads` view). */
export type Heads = Readonly<Record<string, number>>;

/** The first claim of a snapshot that its server's heads do not back. */
export interface UnbackedClaim {
  /** The origin claimed. */
  readonly origin: string;
  /** The seq the snapshot claims for it. */
  readonly claim: number;
  /** The highest seq that server holds of it (0 when none). */
  readonly head: number;
}

/**
 * Whether a snapshot record's `version` is a map of origins to seqs (non-negative safe integers),
 * the form {@link unbackedClaim} can judge.
 * @param value - The record's `version` as read.
 * @returns True when it is.
 */
export function isClaims(value: unknown): value is Readonly<Record<string, number>> {
  return (
    value !== null &&
    typeof value === "object" &&
    !Array.isArray(value) &&
    Object.values(value).every((s) => typeof s === "number" && Number.isSafeInteger(s) && s >= 0)
  );
}

/**
 * Checks a snapshot's claims against a server's heads.
 * @param version - The snapshot's version vector (its claims).
 * @param heads - The heads of the server the snapshot was read from, for its doc.
 * @returns The first claim not backed (origins in sorted order), or undefined when every claim is.
 */
export function unbackedClaim(
  version: VersionVector | Readonly<Record<string, number>>,
  heads: Heads,
): UnbackedClaim | undefined {
  for (const origin of Object.keys(version).sort()) {
    const claim = (version as Readonly<Record<string, number>>)[origin] ?? 0;
    const head = heads[origin] ?? 0;
    if (claim > head) return { origin, claim, head };
  }
  return undefined;
}

/**
 * Reads heads on one server (`nxs_heads`: doc, origin and highest `last`), of one doc or of all.
 * @param client - An authenticated client of that server (gateway or replicator).
 * @param docId - The doc, or undefined for every doc.
 * @returns Per doc, per origin, its head there.
 * @throws TransportError when the server does not answer.
 */
async function listHeads(
  client: PocketBaseClient,
  docId?: string,
): Promise<Map<string, Record<string, number>>> {
  const rows = await client.call("read heads", (pb) =>
    pb.collection(Collections.Heads).getFullList({
      ...(docId === undefined ? {} : { filter: pb.filter("doc = {:doc}", { doc: docId }) }),
      fields: "doc,origin,head",
      batch: 1000,
      requestKey: null,
    }),
  );
  const out = new Map<string, Record<string, number>>();
  for (const h of rows as { doc?: unknown; origin?: unknown; head?: unknown }[]) {
    if (typeof h.doc !== "string" || typeof h.origin !== "string" || typeof h.head !== "number") continue;
    const heads = out.get(h.doc) ?? {};
    heads[h.origin] = h.head;
    out.set(h.doc, heads);
  }
  return out;
}

/**
 * Reads a doc's heads on one server (`nxs_heads`: origin and highest `last`).
 * @param client - An authenticated client of that server (gateway or replicator).
 * @param docId - The doc.
 * @returns Per origin, its head there.
 * @throws TransportError when the server does not answer.
 */
export async function readHeads(client: PocketBaseClient, docId: string): Promise<Record<string, number>> {
  return (await listHeads(client, docId)).get(docId) ?? {};
}

/**
 * Reads every doc's heads on one server in one listing of `nxs_heads`.
 * @param client - An authenticated client of that server.
 * @returns Per doc, per origin, its head there.
 * @throws TransportError when the server does not answer.
 */
export function readAllHeads(client: PocketBaseClient): Promise<Map<string, Heads>> {
  return listHeads(client);
}
