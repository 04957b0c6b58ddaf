import {
  callGuarded,
  type DocId,
  defaultLogger,
  intersectVersionVectors,
  type Logger,
  type Snapshot,
  type VersionVector,
} from "@nxs-sync/core";
import { z } from "zod";
import {
  createPocketBaseClient,
  isUniqueViolation,
  type NodeAuth,
  type PocketBaseClient,
  replicatorAuth,
  toTransportError,
} from "./client.js";
import { decodeSnapshotRecord, encodeSnapshotRecord, isOriginOfNode } from "./records.js";
import { Collections } from "./schema.js";
import { type Heads, readHeads, type UnbackedClaim, unbackedClaim } from "./snapshot-trust.js";

const versionSchema = z.record(z.string(), z.number().int().min(0));

/** The zod schema of an `nxs_acks` record: what one replica has applied of one doc, and when it said so. */
export const ackRecordSchema = z.object({
  id: z.string().min(1),
  doc: z.string().min(1).max(64),
  replica: z.string().min(1).max(64),
  version: versionSchema,
  at: z.number().int().min(1),
  node: z.string().min(1),
  /** The server's autodate of the last write (`YYYY-MM-DD HH:MM:SS.sssZ`). */
  updated: z.string().optional(),
});

/** A PocketBase autodate (`2026-12-07 00:57:24.123Z`) in ms since the epoch, or undefined. */
function autodateMs(value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  const ms = Date.parse(value.replace(" ", "T"));
  return Number.isFinite(ms) ? ms : undefined;
}

/** One replica's acknowledged version of a doc. */
export interface Ack {
  readonly doc: DocId | string;
  /** The replica id (bound to the authenticated node: `<node>` or `<node>.<instance>`). */
  readonly replica: string;
  /** What the replica has applied. */
  readonly version: VersionVector;
  /** When it said so (ms since the epoch, the replica's clock). */
  readonly at: number;
}

/**
 * Hands a background failure to the user's `onError`; a handler that throws, or an async one that
 * rejects, is logged (`listener/failed`), never left as an unhandled rejection.
 */
export function deliverError(
  onError: ((error: Error) => void) | undefined,
  logger: Logger,
  prefix: string,
  error: Error,
): void {
  callGuarded("onError", onError, [error], (failure) =>
    logger.error(`${prefix} ${failure.message}`, failure.cause),
  );
}

/** Replicas silent longer than this are left out of the frontier (24 h). */
export const DEFAULT_EXPIRY_MS = 24 * 60 * 60 * 1000;

/**
 * Lists the acks of a doc on one server, each dated by the server's own clock (`updated`): a
 * client-supplied `at` dated far in the future would keep a dead replica in the frontier for good
 * (SECURITY-AUDIT.md); `at` only for servers whose schema predates the field. Invalid records are
 * skipped, and so are acks whose replica is not bound to their author node (forged).
 * @param client - A client of the server.
 * @param docId - The doc.
 * @returns One ack per replica.
 * @throws TransportError (see {@link toTransportError}).
 */
export async function listAcks(client: PocketBaseClient, docId: DocId | string): Promise<Ack[]> {
  const rows = await client.call("read acks", (pb) =>
    pb
      .collection(Collections.Acks)
      .getFullList({ filter: pb.filter("doc = {:doc}", { doc: docId }), requestKey: null }),
  );
  const acks: Ack[] = [];
  for (const raw of rows) {
    const r = ackRecordSchema.safeParse(raw);
    if (!r.success || !isOriginOfNode(r.data.replica, r.data.node)) continue;
    acks.push({
      doc: r.data.doc,
      replica: r.data.replica,
      version: r.data.version,
      at: autodateMs(r.data.updated) ?? r.data.at,
    });
  }
  return acks;
}

/**
 * Reads the acks of a doc on one server ({@link listAcks}) and splits them by liveness: a replica
 * whose last ack is older than `expiryMs` is expired (left out of the frontier; it must
 * re-bootstrap).
 */
async function readAcks(
  client: PocketBaseClient,
  docId: DocId | string,
  now: number,
  expiryMs: number,
): Promise<{ live: Ack[]; expired: string[] }> {
  const live: Ack[] = [];
  const expired: string[] = [];
  for (const ack of await listAcks(client, docId)) {
    if (now - ack.at > expiryMs) expired.push(ack.replica);
    else live.push(ack);
  }
  return { live, expired };
}

/**
 * Records (creates or updates) a replica's acknowledged version of a doc on one server.
 * @param client - A client authenticated as the replica's node.
 * @param ack - The version and time.
 * @throws TransportError (see {@link toTransportError}).
 */
export async function writeAck(client: PocketBaseClient, ack: Ack): Promise<void> {
  const node = client.nodeId ?? (await client.authenticate());
  const body = { doc: ack.doc, replica: ack.replica, version: ack.version, at: ack.at, node };
  try {
    await client.call("write ack", (pb) =>
      pb.collection(Collections.Acks).create(body, { requestKey: null }),
    );
  } catch (e) {
    // An ack of that doc and replica exists already (a violation of another index is a failure).
    if (!isUniqueViolation(e, ["doc", "replica"])) throw e;
    const existing = await client.call("read ack", (pb) =>
      pb
        .collection(Collections.Acks)
        .getFirstListItem(
          pb.filter("doc = {:doc} && replica = {:replica}", { doc: ack.doc, replica: ack.replica }),
          {
            requestKey: null,
          },
        ),
    );
    await client.call("update ack", (pb) =>
      pb
        .collection(Collections.Acks)
        .update(existing.id, { version: ack.version, at: ack.at }, { requestKey: null }),
    );
  }
}

/**
 * Stores a snapshot on one server (the replicator copies it to the others).
 * @param client - A client authenticated as a node.
 * @param snapshot - From `doc.snapshot()`.
 * @returns The record id.
 * @throws TransportError (see {@link toTransportError}).
 */
export async function publishSnapshot(client: PocketBaseClient, snapshot: Snapshot): Promise<string> {
  const node = client.nodeId ?? (await client.authenticate());
  if (node === undefined) throw toTransportError(new Error("a node identity is needed"), "publish snapshot");
  const rec = await client.call("publish snapshot", (pb) =>
    pb.collection(Collections.Snapshots).create(encodeSnapshotRecord(snapshot, node), { requestKey: null }),
  );
  return rec.id;
}

/**
 * A snapshot record of a doc that its server's change records do not back: it claims an origin's
 * changes past the highest seq that server holds of it (`nxs_heads`). A forgery, or a snapshot copied
 * ahead of its changes (it becomes backed once they arrive). Never bootstrapped from nor compacted
 * against, never counted among the snapshots kept, never deleted (docs/pocketbase.md, "Compaction").
 */
export interface RefusedSnapshot extends UnbackedClaim {
  /** The snapshot record's id. */
  readonly recordId: string;
  /** Its author node (an `nxs_nodes` or `nxs_replicators` record id). */
  readonly node: string;
}

/** A snapshot record's metadata: what the trust check reads (the state is fetched only when used). */
interface SnapshotMeta {
  readonly id: string;
  readonly node: string;
  readonly version: Readonly<Record<string, number>>;
}

const snapshotMetaSchema = z.object({ id: z.string().min(1), node: z.string(), version: versionSchema });

/** A doc's snapshots on one server split by trust, each list newest first. */
interface TrustedSnapshots {
  /** Every claim backed by the server's heads. */
  readonly backed: readonly SnapshotMeta[];
  /** Some claim not backed. */
  readonly refused: readonly RefusedSnapshot[];
}

/**
 * Lists a doc's snapshots on one server (metadata only) and splits them by whether the server's
 * heads back their claims. The heads are read after the list: heads only grow (the compactor keeps
 * each origin's newest change record), so a snapshot listed is judged by heads at least as new as it.
 * Records whose version is malformed are in neither list (readers quarantine them).
 */
async function trustedSnapshots(client: PocketBaseClient, docId: DocId | string): Promise<TrustedSnapshots> {
  const rows = await client.call("list snapshots", (pb) =>
    pb.collection(Collections.Snapshots).getFullList({
      filter: pb.filter("doc = {:doc}", { doc: docId }),
      sort: "-created,-id",
      fields: "id,node,version",
      requestKey: null,
    }),
  );
  const heads: Heads = await readHeads(client, String(docId));
  const backed: SnapshotMeta[] = [];
  const refused: RefusedSnapshot[] = [];
  for (const raw of rows) {
    const r = snapshotMetaSchema.safeParse(raw);
    if (!r.success) continue;
    const claim = unbackedClaim(r.data.version, heads);
    if (claim === undefined) backed.push(r.data);
    else refused.push({ recordId: r.data.id, node: r.data.node, ...claim });
  }
  return { backed, refused };
}

/** The newest of `backed` whose record decodes, with its record id. */
async function loadNewest(
  client: PocketBaseClient,
  docId: DocId | string,
  backed: readonly SnapshotMeta[],
): Promise<{ readonly snapshot: Snapshot; readonly recordId: string } | undefined> {
  for (const meta of backed) {
    const raw = await client.call("read snapshot", (pb) =>
      pb.collection(Collections.Snapshots).getOne(meta.id, { requestKey: null }),
    );
    const r = decodeSnapshotRecord(raw, { docs: [docId] });
    // Same claims as listed: a snapshot record is never updated.
    if (r.ok) return { snapshot: r.value, recordId: r.recordId };
  }
  return undefined;
}

/**
 * Reads the newest snapshot of a doc that its server backs: the starting point of a new replica
 * (`createDoc({ snapshot })`, then the replica pulls the changes after it). A snapshot whose claims
 * the server's change records (`nxs_heads`) do not back is passed over: adopting it would skip the
 * changes it claims for good (SECURITY-AUDIT.md, finding 1).
 * @param client - A client authenticated as a node.
 * @param docId - The doc.
 * @returns The snapshot and its record id, or undefined when the doc has no backed, valid one.
 * @throws TransportError (see {@link toTransportError}).
 */
export async function fetchLatestSnapshot(
  client: PocketBaseClient,
  docId: DocId | string,
): Promise<{ readonly snapshot: Snapshot; readonly recordId: string } | undefined> {
  const { backed } = await trustedSnapshots(client, docId);
  return loadNewest(client, docId, backed);
}

/** What {@link compactDoc} did on one server. */
export interface CompactionResult {
  readonly doc: string;
  /** The lowest version acknowledged by every live replica (empty when none is live). */
  readonly frontier: VersionVector;
  /** The bound applied: per origin, min(frontier, newest backed snapshot's version). */
  readonly bound: VersionVector;
  /** Changes deleted (the changes of the deleted records; packs that overlap count each copy). */
  readonly deletedChanges: number;
  /** Change records (packs) deleted. */
  readonly deletedRecords: number;
  /** Snapshot records deleted (backed ones older than the `keepSnapshots` newest backed). */
  readonly deletedSnapshots: number;
  /** Replicas left out of the frontier because they were silent longer than `expiryMs`. */
  readonly expired: readonly string[];
  /**
   * Snapshots whose claims this server's change records do not back (newest first): not compacted
   * against, not counted among those kept, not deleted. Each also logged as a warning.
   */
  readonly refusedSnapshots: readonly RefusedSnapshot[];
}

/** Options of {@link compactDoc}. */
export interface CompactOptions {
  /** A replica whose last ack is older than this is dropped from the frontier. Default 24 h. */
  readonly expiryMs?: number;
  /** How many of the newest backed snapshots to keep (at least 1). Default 2. */
  readonly keepSnapshots?: number;
  /** Time source (ms). Default `Date.now`. */
  readonly now?: () => number;
  /** Warnings and errors (refused snapshots, servers not compacted), one line each. Default core's `defaultLogger` (stderr); pass `silentLogger` to silence. */
  readonly logger?: Logger;
}

async function deleteIds(
  client: PocketBaseClient,
  collection: string,
  ids: readonly string[],
): Promise<void> {
  for (let i = 0; i < ids.length; i += 100) {
    const part = ids.slice(i, i + 100);
    const batch = client.pb.createBatch();
    for (const id of part) batch.collection(collection).delete(id);
    await client.call(`delete ${collection}`, () => batch.send({ requestKey: null }));
  }
}

/**
 * Deletes the change records (packs) of a doc that `bound` covers on one server: per origin, a
 * pack whose last seq is at most `bound[origin]`, never the pack holding the origin's newest change
 * (so the heads keep backing every honest snapshot). Heads are read first: they only grow, so a
 * record whose `last` is at least this head holds the origin's newest change (or a newer one) and
 * stays. Needs a replicator account (maintenance). Idempotent: two purges of one bound delete each
 * record once between them.
 * @param client - A client authenticated as a replicator account.
 * @param docId - The doc.
 * @param bound - Per origin, the highest seq that may go.
 * @returns The changes and the records deleted.
 * @throws TransportError (see {@link toTransportError}).
 */
export async function purgeChangesBelow(
  client: PocketBaseClient,
  docId: string,
  bound: VersionVector,
): Promise<{ readonly deletedChanges: number; readonly deletedRecords: number }> {
  const heads = await readHeads(client, docId);
  let deletedChanges = 0;
  let deletedRecords = 0;
  for (const [origin, seq] of Object.entries(bound)) {
    const head = heads[origin];
    if (head === undefined || seq <= 0) continue;
    // A pack goes only when all of it is below the bound, and never the one holding the head.
    const packs = await client.call("list compactable changes", (pb) =>
      pb.collection(Collections.Changes).getFullList({
        filter: pb.filter("doc = {:doc} && origin = {:origin} && last <= {:seq} && last < {:head}", {
          doc: docId,
          origin,
          seq,
          head,
        }),
        fields: "id,seq,last",
        requestKey: null,
      }),
    );
    await deleteIds(
      client,
      Collections.Changes,
      packs.map((r) => r.id),
    );
    deletedRecords += packs.length;
    for (const p of packs) deletedChanges += Number(p.last) - Number(p.seq) + 1;
  }
  return { deletedChanges, deletedRecords };
}

/**
 * Compacts one doc on one server: deletes the changes below the causal-stability frontier that the
 * newest backed snapshot covers, and old backed snapshots. Needs a replicator account (maintenance).
 * A snapshot is backed when this server's change records back every claim of its version
 * (`nxs_heads`); an unbacked one (a forgery, or one copied ahead of its changes) is reported in
 * `refusedSnapshots` and the logger, and otherwise left alone. Never deletes a change no backed
 * snapshot covers, nor one a live replica lacks, nor the record holding an origin's newest change
 * (so the heads keep backing every honest snapshot), nor the newest backed snapshot.
 * @param client - A client authenticated as a replicator account (`nxs_replicators`).
 * @param docId - The doc.
 * @param options - Expiry of silent replicas, snapshots to keep, logger.
 * @returns What was done.
 * @throws TransportError (see {@link toTransportError}).
 */
export async function compactDoc(
  client: PocketBaseClient,
  docId: DocId | string,
  options: CompactOptions = {},
): Promise<CompactionResult> {
  const logger = options.logger ?? defaultLogger;
  const now = (options.now ?? Date.now)();
  const { live, expired } = await readAcks(client, docId, now, options.expiryMs ?? DEFAULT_EXPIRY_MS);
  const frontier = intersectVersionVectors(live.map((a) => a.version));
  const { backed, refused } = await trustedSnapshots(client, docId);
  for (const r of refused) {
    logger.warn(
      `[nxs-compactor] ${client.url} ${docId}: snapshot ${r.recordId} (node ${r.node}) refused: it claims ${r.origin} up to seq ${r.claim}, this server holds it up to ${r.head}`,
    );
  }
  const latest = await loadNewest(client, docId, backed);
  const empty = {
    doc: String(docId),
    frontier,
    bound: {},
    deletedChanges: 0,
    deletedRecords: 0,
    deletedSnapshots: 0,
    expired,
    refusedSnapshots: refused,
  };
  if (latest === undefined || live.length === 0) return empty;
  const bound: Record<string, number> = {};
  for (const [origin, seq] of Object.entries(frontier)) {
    const b = Math.min(seq, latest.snapshot.version[origin] ?? 0);
    if (b > 0) bound[origin] = b;
  }
  const { deletedChanges, deletedRecords } = await purgeChangesBelow(client, String(docId), bound);
  // The newest `keep` backed snapshots stay, always the one compacted against (a newer backed record
  // whose state does not decode, which loadNewest passed over, counts among the kept).
  const keep = Math.max(1, options.keepSnapshots ?? 2);
  const old = backed
    .map((r) => r.id)
    .filter((id) => id !== latest.recordId)
    .slice(keep - 1);
  await deleteIds(client, Collections.Snapshots, old);
  return {
    doc: String(docId),
    frontier,
    bound,
    deletedChanges,
    deletedRecords,
    deletedSnapshots: old.length,
    expired,
    refusedSnapshots: refused,
  };
}

/** Options of {@link createCompactor}. */
export interface CompactorOptions extends CompactOptions {
  /** Every server to compact, with replicator credentials (`collection` defaults to `nxs_replicators`). */
  readonly servers: readonly { readonly url: string; readonly auth: NodeAuth }[];
  /** Docs to compact. Default: every doc that has a snapshot. */
  readonly docs?: readonly string[];
  /** Interval of `start()`. Default 10 min. */
  readonly intervalMs?: number;
  /** A server could not be compacted (also logged as a warning). */
  readonly onError?: (error: Error) => void;
}

/** Runs {@link compactDoc} over docs and servers, now or periodically. */
export interface Compactor {
  /** Compacts every doc on every reachable server now. */
  run(): Promise<readonly (CompactionResult & { readonly url: string })[]>;
  start(): void;
  stop(): void;
}

/**
 * Creates a compactor (typically in the replicator's process, with the same credentials). Each server
 * is compacted against its own acks and snapshots; the replicator never copies a change back into a
 * server whose newest snapshot covers it, so compaction is not undone by anti-entropy.
 * @param options - Servers, docs, expiry, interval.
 * @returns A stopped compactor.
 */
export function createCompactor(options: CompactorOptions): Compactor {
  const logger = options.logger ?? defaultLogger;
  const clients = options.servers.map((s) =>
    createPocketBaseClient({
      url: s.url,
      auth: replicatorAuth(s.auth),
      logger,
    }),
  );
  let timer: ReturnType<typeof setInterval> | undefined;

  async function docsOf(client: PocketBaseClient): Promise<string[]> {
    if (options.docs !== undefined) return [...options.docs];
    const rows = await client.call("list snapshot docs", (pb) =>
      pb.collection(Collections.Snapshots).getFullList({ fields: "doc", requestKey: null }),
    );
    return [...new Set(rows.map((r) => String(r.doc)))];
  }

  async function run() {
    const out: (CompactionResult & { url: string })[] = [];
    for (const client of clients) {
      try {
        for (const doc of await docsOf(client)) {
          const r = await compactDoc(client, doc, options);
          if (r.deletedChanges > 0 || r.deletedSnapshots > 0) {
            logger.info(
              `[nxs-compactor] ${client.url} ${doc}: ${r.deletedChanges} changes, ${r.deletedSnapshots} snapshots deleted`,
            );
          }
          out.push({ ...r, url: client.url });
        }
      } catch (e) {
        const err = toTransportError(e, `compact ${client.url}`);
        logger.warn(`[nxs-compactor] ${err.message}`);
        deliverError(options.onError, logger, "[nxs-compactor]", err);
      }
    }
    return out;
  }

  return {
    run,
    start() {
      if (timer !== undefined) return;
      timer = setInterval(() => {
        void run();
      }, options.intervalMs ?? 600_000);
      timer.unref?.();
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      for (const c of clients) c.close();
    },
  };
}
