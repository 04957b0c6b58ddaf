/**
 * Which changes the replicator leaves out when it copies to a server: those that server compacted
 * away under a snapshot. A snapshot is untrusted input (a compromised account, or a superuser,
 * can write one claiming any version), so only a snapshot whose claims the target's own heads back
 * counts (snapshot-trust.ts); an unbacked one is reported and ignored, and the changes under it are
 * copied as if it were not there.
 */

import { ErrorCode, ValidationError } from "@nxs-sync/core";
import type { PocketBaseClient } from "./client.js";
import { Collections } from "./schema.js";
import { type Heads, isClaims, readAllHeads, readHeads, unbackedClaim } from "./snapshot-trust.js";

/** Reports a record that is not trusted (once per record is the caller's business). */
export type ReportUntrusted = (collection: string, recordId: string, error: ValidationError) => void;

/**
 * Checks a snapshot record against the heads of the server it was read from.
 * @param record - An `nxs_snapshots` record (`id`, `doc`, `version`).
 * @param heads - Per doc, the heads of that server.
 * @param url - That server, for the message.
 * @returns A `snapshot/unbacked` error when a claim is not backed or the version is not a map of
 * seqs, else undefined.
 */
export function untrustedSnapshot(
  record: Readonly<Record<string, unknown>>,
  heads: ReadonlyMap<string, Heads>,
  url: string,
): ValidationError | undefined {
  const doc = String(record.doc);
  const version = isClaims(record.version) ? record.version : undefined;
  const claim = version === undefined ? undefined : unbackedClaim(version, heads.get(doc) ?? {});
  if (version !== undefined && claim === undefined) return undefined;
  const why =
    claim === undefined
      ? "its version is not a map of origins to seqs"
      : `it claims ${claim.origin} up to seq ${claim.claim}, but that server holds that origin's changes up to ${claim.head} only`;
  return new ValidationError(
    `nxs_snapshots record ${String(record.id)} of doc ${JSON.stringify(doc)} at ${url} is not trusted: ${why}`,
    { code: ErrorCode.SnapshotUnbacked },
  );
}

/**
 * The `skipAt` of `nxs_changes`: per doc, the newest snapshot on the target whose every claim the
 * target's heads back; a change record whose range that snapshot covers is not copied there (the
 * target compacted it away). Snapshots with an unbacked claim, or a version that is not a map of
 * seqs, are handed to `report` (code `snapshot/unbacked`) and ignored.
 * @param target - The server copied to, authenticated.
 * @param report - Where untrusted snapshots go.
 * @returns A predicate: true for a change record the target's trusted snapshot covers.
 * @throws TransportError when the target does not answer.
 */
export async function coveredByBackedSnapshot(
  target: PocketBaseClient,
  report: ReportUntrusted,
): Promise<(record: Readonly<Record<string, unknown>>) => boolean> {
  const [rows, heads] = await Promise.all([
    target.call("read snapshot versions", (pb) =>
      pb
        .collection(Collections.Snapshots)
        .getFullList({ fields: "id,doc,version", sort: "-created,-id", batch: 1000, requestKey: null }),
    ),
    readAllHeads(target),
  ]);
  const newest = new Map<string, Readonly<Record<string, number>>>();
  for (const r of rows) {
    const doc = String(r.doc);
    if (newest.has(doc)) continue;
    const error = untrustedSnapshot(r, heads, target.url);
    if (error === undefined) newest.set(doc, r.version);
    else report(Collections.Snapshots, String(r.id), error);
  }
  return (record) => {
    const v = newest.get(String(record.doc));
    const last = record.last;
    return v !== undefined && typeof last === "number" && last <= (v[String(record.origin)] ?? 0);
  };
}

/**
 * The `validateAt` of `nxs_snapshots`: a snapshot is copied from a server only when that server's
 * heads back its claims (an honest one always is there: the server's hooks check a gateway's, the
 * compactor builds its own from changes it holds). One forged by a superuser or a replicator
 * account is not spread to the other servers.
 * @param source - The server the snapshots are read from, authenticated.
 * @param records - The snapshots about to be copied (their docs' heads are read).
 * @returns The check of one record: a `snapshot/unbacked` error, or undefined.
 * @throws TransportError when the source does not answer.
 */
export async function backedAtSource(
  source: PocketBaseClient,
  records: readonly Readonly<Record<string, unknown>>[],
): Promise<(record: Readonly<Record<string, unknown>>) => ValidationError | undefined> {
  const docs = [...new Set(records.map((r) => String(r.doc)))];
  // A few docs (a realtime event): their heads only; many (an anti-entropy round): one listing.
  const heads =
    docs.length <= 10
      ? new Map(await Promise.all(docs.map(async (d) => [d, await readHeads(source, d)] as const)))
      : await readAllHeads(source);
  return (record) => untrustedSnapshot(record, heads, source.url);
}
