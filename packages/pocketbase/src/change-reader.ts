import {
  ErrorCode,
  isNxsError,
  type Logger,
  type PullPage,
  type Snapshot,
  TransportError,
  ValidationError,
  type VersionVector,
} from "@nxs-sync/core";
import type PocketBase from "pocketbase";
import { ClientResponseError } from "pocketbase";
import { toTransportError } from "./client.js";
import type { Endpoint, EndpointPool } from "./failover.js";
import { MAX_RESPONSE_BYTES_HEADER } from "./http-fetch.js";
import type { RecordGate } from "./record-gate.js";
import { decodeSnapshotRecord } from "./records.js";
import {
  Collections,
  INLINE_CHANGES_BYTES,
  MAX_CHANGES_BYTES,
  MAX_SNAPSHOT_BYTES,
  MAX_VERSION_BYTES,
} from "./schema.js";
import { type Heads, isClaims, readHeads, unbackedClaim } from "./snapshot-trust.js";

/**
 * Byte budget of the bodies one pull step fetches: the records of a page whose bodies are not
 * inline are fetched by id in groups whose sizes add up to at most this (a larger record alone).
 */
const PULL_BUDGET_BYTES = 4 * 1024 * 1024;
/** Ids per body fetch: each adds ~26 characters to the filter, which PocketBase caps at ~3,500. */
const IDS_PER_FETCH = 80;
/**
 * Most bytes of a listed record besides its `changes` (ids, doc, origin and hlc are at most 64
 * chars each). `changes` is answered as stored: PocketBase stores JSON with `<`, `>` and `&`
 * escaped already (`\u003c`), and `bytes` is that stored size.
 */
const ENVELOPE_BYTES = 1024;
/** Snapshots a pull looks at, newest first, for the newest one its server backs. */
const SNAPSHOTS_CHECKED = 20;

/** A row of the `nxs_change_sizes` view as listed (unchecked: decoding checks the records). */
interface Envelope {
  readonly id?: unknown;
  readonly origin?: unknown;
  readonly seq?: unknown;
  readonly bytes?: unknown;
  /** The pack's changes when at most INLINE_CHANGES_BYTES, else null. */
  readonly changes?: unknown;
}

/**
 * `request`, with an answer aborted for its size ({@link MAX_RESPONSE_BYTES_HEADER}) rejected as
 * that typed error rather than as the SDK's network error that wraps it.
 */
async function capped<T>(request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (e) {
    const inner = e instanceof ClientResponseError ? e.originalError : undefined;
    throw isNxsError(inner) ? inner : e;
  }
}

/** What a pull fetched by id (see the transport's `pull-bodies` event). */
export interface PullBodiesEvent {
  readonly url: string;
  readonly ids: readonly string[];
  readonly bytes: number;
}

/** Options of {@link createChangeReader}. */
export interface ChangeReaderOptions {
  /** The servers; a pull reads from the active one and reports its outcome to the pool. */
  readonly pool: EndpointPool;
  readonly docId: string;
  /** Where records are decoded and quarantined. */
  readonly gate: RecordGate;
  /** Records (packs) per pull page (at most 1000). */
  readonly pageSize: number;
  /** This reader's limit for one pack: a larger stored `changes` is quarantined unread. Default MAX_CHANGES_BYTES. */
  readonly maxPackBytes?: number;
  readonly logger: Logger;
  /** Whether the owner closed (a pull or identity query then fails with `closedError()`). */
  readonly isClosed: () => boolean;
  readonly closedError: () => Error;
  /** Called after each fetch of bodies by id. */
  readonly onBodies?: (event: PullBodiesEvent) => void;
}

/** The highest seq (and the HLC of that change) some server holds of an origin. */
export interface HighWater {
  readonly seq: number;
  readonly hlc?: string;
}

/**
 * The read side of a transport: paged pulls since a version vector (a backed snapshot first when
 * changes were compacted away, then change packs within a byte budget) and what the servers hold
 * of an origin (a replica's identity on empty storage). Reads only; retried by the client's single
 * HTTP retry layer; the caller (a replica) retries a failed pull.
 */
export interface ChangeReader {
  /**
   * Pulls from the active endpoint what `since` lacks; a `transport/unavailable` failure counts
   * against that endpoint's health.
   * @throws TransportError with the code of `toTransportError` (`closed` after close).
   */
  pull(since: VersionVector): AsyncIterable<PullPage>;
  /**
   * The highest seq and HLC any server holds of `origin` (asked of every server at once).
   * @throws TransportError `transport/unavailable` when no server answered.
   */
  highWater(origin: string): Promise<HighWater>;
}

/**
 * Creates the {@link ChangeReader} of one document.
 * @param options - Pool, document, gate and page size.
 * @returns A reader.
 */
export function createChangeReader(options: ChangeReaderOptions): ChangeReader {
  const { pool, docId, gate, logger } = options;
  const pageSize = Math.min(options.pageSize, 1000);
  const maxPackBytes = options.maxPackBytes ?? MAX_CHANGES_BYTES;

  // ---- identity -------------------------------------------------------------------------------

  /** A seq of `origin` in a stored version vector (a snapshot's or an ack's), 0 when unreadable. */
  const seqIn = (version: unknown, origin: string): number => {
    const v = (version as Record<string, unknown> | null | undefined)?.[origin];
    return typeof v === "number" && Number.isSafeInteger(v) && v > 0 ? v : 0;
  };

  /** The first record of `collection` at `ep` matching `filter` (in `sort` order), only `fields`. */
  async function firstRecord(
    ep: Endpoint,
    collection: string,
    filter: (pb: PocketBase) => string,
    fields: string,
    sort?: string,
  ): Promise<Record<string, unknown> | undefined> {
    const page = await ep.client.call(`identity: ${collection}`, (pb) =>
      pb.collection(collection).getList(1, 1, {
        filter: filter(pb),
        fields,
        skipTotal: true,
        requestKey: null,
        ...(sort === undefined ? {} : { sort }),
      }),
    );
    return page.items[0] as Record<string, unknown> | undefined;
  }

  /**
   * What one server holds of `origin` in this doc: its change packs and its ack. Snapshots are not
   * asked: an unbacked one (written past the hooks by a replicator or superuser account) would move
   * this replica's next seq past a gap every reader then waits on, and an honest one never claims
   * more than the packs show, since the compactor keeps each origin's newest pack.
   */
  async function highWaterOn(ep: Endpoint, origin: string): Promise<{ seq: number; hlc?: string }> {
    const [head, ack] = await Promise.all([
      firstRecord(
        ep,
        Collections.Changes,
        (pb) => pb.filter("doc = {:doc} && origin = {:origin}", { doc: docId, origin }),
        "last,hlc",
        "-last",
      ),
      firstRecord(
        ep,
        Collections.Acks,
        (pb) => pb.filter("doc = {:doc} && replica = {:origin}", { doc: docId, origin }),
        "version",
      ),
    ]);
    const seq = Math.max(
      typeof head?.last === "number" && Number.isSafeInteger(head.last) ? head.last : 0,
      seqIn(ack?.version, origin),
    );
    return typeof head?.hlc === "string" ? { seq, hlc: head.hlc } : { seq };
  }

  /**
   * The highest seq and HLC any server holds of `origin` (asked of every server at once): a replica
   * on empty storage continues after them instead of reusing an earlier incarnation's seqs.
   * @throws TransportError `transport/unavailable` when no server answered.
   */
  async function highWater(origin: string): Promise<{ seq: number; hlc?: string }> {
    if (options.isClosed()) throw options.closedError();
    const results = await Promise.allSettled(pool.endpoints.map((ep) => highWaterOn(ep, origin)));
    const answers = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const failures = results.flatMap((r, i) =>
      r.status === "rejected" ? [`${pool.endpoints[i]!.url}: ${String((r.reason as Error).message)}`] : [],
    );
    if (answers.length === 0) {
      const first = results.find((r): r is PromiseRejectedResult => r.status === "rejected")?.reason;
      throw isNxsError(first) && !first.retryable
        ? first
        : new TransportError(
            ErrorCode.TransportUnavailable,
            `no server answered what it holds of ${origin} (${failures.join("; ")})`,
            { cause: first, retryable: true },
          );
    }
    if (failures.length > 0) {
      logger.warn(
        `[nxs-pocketbase] identity of ${origin}: only ${answers.length} of ${results.length} server(s) answered (${failures.join("; ")}); ` +
          "a change of this replica id that only a silent server holds may see its seq reused",
      );
    }
    let best: { seq: number; hlc?: string } = { seq: 0 };
    for (const a of answers) {
      const hlc = a.hlc !== undefined && (best.hlc === undefined || a.hlc > best.hlc) ? a.hlc : best.hlc;
      best = hlc === undefined ? { seq: Math.max(best.seq, a.seq) } : { seq: Math.max(best.seq, a.seq), hlc };
    }
    return best;
  }

  // ---- pull -----------------------------------------------------------------------------------

  /**
   * Origins per pull filter: PocketBase refuses filters over ~3,500 characters, so a filter never
   * grows with the caller's version vector; origins are pulled in chunks of this many.
   */
  const ORIGINS_PER_FILTER = 16;

  /**
   * The filter of one chunk of origins: per origin, the packs past what the caller has (`floor`) and
   * past the paging cursor (the first seq of the last pack listed).
   */
  function pullFilter(
    pb: PocketBase,
    origins: readonly string[],
    floor: Readonly<Record<string, number>>,
    cursor: Readonly<Record<string, number>>,
  ): string {
    const params: Record<string, unknown> = { doc: docId };
    const clauses = origins.map((o, i) => {
      params[`o${i}`] = o;
      params[`f${i}`] = floor[o] ?? 0;
      params[`c${i}`] = cursor[o] ?? 0;
      return `(origin = {:o${i}} && last > {:f${i}} && seq > {:c${i}})`;
    });
    return pb.filter(`doc = {:doc} && (${clauses.join(" || ")})`, params);
  }

  /** The origins whose head on a server (see {@link readHeads}) is past `vv`, sorted. */
  function laggingOrigins(heads: Heads, vv: Readonly<Record<string, number>>): string[] {
    return Object.keys(heads)
      .filter((o) => (heads[o] ?? 0) > (vv[o] ?? 0))
      .sort();
  }

  /**
   * The newest snapshot of this doc on `ep` that its heads back (`version` only: the state is
   * fetched once it is needed). Only the newest {@link SNAPSHOTS_CHECKED} are looked at; each
   * unbacked one is reported once (quarantine, `snapshot/unbacked`) and looked at again on later
   * pulls (one the replicator copied ahead of its changes becomes backed once they arrive).
   * Snapshots are listed before the heads are read: heads only grow (the compactor keeps each
   * origin's newest change), so a snapshot written meanwhile is never judged against older heads.
   */
  async function newestBackedSnapshot(
    ep: Endpoint,
  ): Promise<{ heads: Heads; snapshot?: { id: string; version: Readonly<Record<string, number>> } }> {
    const list = await ep.client.call("pull: snapshots", (pb) =>
      capped(
        pb.collection(Collections.SnapshotVersions).getList(1, SNAPSHOTS_CHECKED, {
          filter: pb.filter("doc = {:doc}", { doc: docId }),
          sort: "-created,-id",
          skipTotal: true,
          requestKey: null,
          headers: {
            [MAX_RESPONSE_BYTES_HEADER]: String(SNAPSHOTS_CHECKED * (MAX_VERSION_BYTES + ENVELOPE_BYTES)),
          },
        }),
      ),
    );
    const heads = await readHeads(ep.client, docId);
    for (const raw of list.items as { id?: unknown; version?: unknown }[]) {
      const { id, version } = raw;
      if (typeof id !== "string") continue;
      if (!isClaims(version)) {
        gate.quarantine(ep, id, new ValidationError(`nxs_snapshots record ${id}: malformed version`));
        continue;
      }
      const claim = unbackedClaim(version, heads);
      if (claim === undefined) return { heads, snapshot: { id, version } };
      gate.quarantine(
        ep,
        id,
        new ValidationError(
          `nxs_snapshots record ${id} of doc ${docId} claims ${claim.origin} up to seq ${claim.claim}, but ${ep.url} holds that origin's changes up to ${claim.head} only: not adopted`,
          { code: ErrorCode.SnapshotUnbacked },
        ),
      );
    }
    return { heads };
  }

  /** The whole snapshot record `id` (its state included), decoded; quarantined when malformed. */
  async function fetchSnapshot(ep: Endpoint, id: string): Promise<Snapshot | undefined> {
    const raw = await ep.client.call("pull: snapshot", (pb) =>
      capped(
        pb.collection(Collections.Snapshots).getOne(id, {
          requestKey: null,
          headers: {
            [MAX_RESPONSE_BYTES_HEADER]: String(MAX_SNAPSHOT_BYTES + MAX_VERSION_BYTES + ENVELOPE_BYTES),
          },
        }),
      ),
    );
    const r = decodeSnapshotRecord(raw, { docs: [docId] });
    if (r.ok) return r.value;
    gate.quarantine(ep, r.recordId, r.error);
    return undefined;
  }

  /** Whether some change `vv` lacks and `version` (a backed snapshot's) covers is gone from the server (compacted). */
  async function compactedAway(
    ep: Endpoint,
    version: Readonly<Record<string, number>>,
    vv: Readonly<Record<string, number>>,
  ): Promise<boolean> {
    for (const [origin, s] of Object.entries(version)) {
      const have = vv[origin] ?? 0;
      if (have >= s) continue;
      // The view: a record of it weighs at most ~5 KiB, where one of nxs_changes may weigh 8 MiB.
      const next = await ep.client.call("pull: check compaction", (pb) =>
        pb.collection(Collections.ChangeSizes).getList(1, 1, {
          filter: pb.filter("doc = {:doc} && origin = {:origin} && last > {:have}", {
            doc: docId,
            origin,
            have,
          }),
          sort: "seq",
          skipTotal: true,
          requestKey: null,
        }),
      );
      const seq = (next.items[0] as { seq?: number } | undefined)?.seq;
      if (seq === undefined || seq > have + 1) return true;
    }
    return false;
  }

  /**
   * A page of envelopes (`nxs_change_sizes`: sizes, and the bodies of small packs inline) of one
   * chunk of origins; the answer is capped at what such a page can weigh. No `fields`: the views
   * hold only what is read, and PocketBase answers `fields` by encoding the whole record, decoding
   * it and encoding the picked fields again (10 pages of 1000 small packs: ~250 ms without, ~500
   * ms with).
   */
  async function listEnvelopes(ep: Endpoint, filter: string): Promise<Envelope[]> {
    const page = await ep.client.call("pull", (pb) =>
      capped(
        pb.collection(Collections.ChangeSizes).getList(1, pageSize, {
          filter,
          sort: "origin,seq",
          skipTotal: true,
          requestKey: null,
          headers: {
            [MAX_RESPONSE_BYTES_HEADER]: String(pageSize * (INLINE_CHANGES_BYTES + ENVELOPE_BYTES)),
          },
        }),
      ),
    );
    return page.items as Envelope[];
  }

  /**
   * The bodies of the change records `ids` (their listed sizes add up to `bytes`), by id: records
   * never change, so the answer is capped at what they weigh. A record deleted since (compacted)
   * is missing from the answer.
   */
  async function fetchBodies(
    ep: Endpoint,
    ids: readonly string[],
    bytes: number,
  ): Promise<Map<string, unknown>> {
    const params: Record<string, unknown> = { doc: docId };
    const clauses = ids.map((id, i) => {
      params[`i${i}`] = id;
      return `id = {:i${i}}`;
    });
    const page = await ep.client.call("pull: bodies", (pb) =>
      capped(
        pb.collection(Collections.Changes).getList(1, ids.length, {
          filter: pb.filter(`doc = {:doc} && (${clauses.join(" || ")})`, params),
          skipTotal: true,
          requestKey: null,
          headers: {
            [MAX_RESPONSE_BYTES_HEADER]: String(bytes + ids.length * ENVELOPE_BYTES),
          },
        }),
      ),
    );
    options.onBodies?.({ url: ep.url, ids, bytes });
    return new Map((page.items as { id: string }[]).map((r) => [r.id, r]));
  }

  /**
   * The records of one page of envelopes, in its order, in steps whose fetched bodies stay within
   * {@link PULL_BUDGET_BYTES} (a larger record alone): inline bodies as listed, the others fetched
   * by id. A record quarantined before is skipped unread; one larger than this reader's limit
   * for a pack (`decode.maxChangesBytes`) is quarantined unread.
   */
  async function* recordsOf(ep: Endpoint, envelopes: readonly Envelope[]): AsyncGenerator<unknown[]> {
    let step: (Envelope | string)[] = [];
    let ids: string[] = [];
    let bytes = 0;
    const flush = async (): Promise<unknown[]> => {
      const bodies = ids.length === 0 ? new Map<string, unknown>() : await fetchBodies(ep, ids, bytes);
      const out = step.flatMap((e) => (typeof e !== "string" ? [e] : bodies.has(e) ? [bodies.get(e)] : []));
      step = [];
      ids = [];
      bytes = 0;
      return out;
    };
    for (const e of envelopes) {
      if (typeof e.id === "string" && gate.skipped(ep, e.id)) continue;
      const size =
        typeof e.bytes === "number" && Number.isSafeInteger(e.bytes) && e.bytes >= 0 ? e.bytes : undefined;
      if (size === undefined || e.changes !== null || typeof e.id !== "string") {
        step.push(e); // a small pack (inline), or a malformed envelope (quarantined on decoding)
        continue;
      }
      if (size > maxPackBytes) {
        gate.quarantineChanges(
          ep,
          e.id,
          new ValidationError(
            `nxs_changes record ${e.id}: changes of ${size} bytes exceed the limit of ${maxPackBytes} (not fetched)`,
          ),
        );
        continue;
      }
      if (ids.length > 0 && (bytes + size > PULL_BUDGET_BYTES || ids.length >= IDS_PER_FETCH))
        yield await flush();
      step.push(e.id);
      ids.push(e.id);
      bytes += size;
    }
    if (step.length > 0) yield await flush();
  }

  async function* pullFrom(ep: Endpoint, since: VersionVector): AsyncGenerator<PullPage> {
    if (ep.client.nodeId === undefined) await ep.client.authenticate();
    const vv: Record<string, number> = { ...since };
    // A snapshot is needed when changes the caller lacks were compacted away: the oldest change the
    // server still holds for some origin is above the caller's next seq. Only a snapshot whose
    // claims the server's heads back counts (a forged one would skip changes for good).
    const { heads, snapshot: backed } = await newestBackedSnapshot(ep);
    let first = true;
    if (backed !== undefined && (await compactedAway(ep, backed.version, vv))) {
      const snapshot = await fetchSnapshot(ep, backed.id);
      if (snapshot !== undefined) {
        yield { snapshot, changes: [] };
        first = false;
        for (const [o, s] of Object.entries(snapshot.version)) if ((vv[o] ?? 0) < s) vv[o] = s;
      }
    }
    // Per origin, the highest seq handed out (or known to the caller): packs may overlap (a pack
    // re-pushed with other bounds) and start below what the caller has; such changes are dropped.
    // Only decoded changes move it: a quarantined pack hides nothing after it.
    const delivered: Record<string, number> = { ...vv };
    // Origin by origin, in chunks (a filter of constant size, however many origins the doc has),
    // each paged by keyset on (origin, seq); a page lists envelopes, bodies come within a budget.
    const origins = laggingOrigins(heads, vv);
    for (let at = 0; at < origins.length; at += ORIGINS_PER_FILTER) {
      const chunk = origins.slice(at, at + ORIGINS_PER_FILTER);
      /** Per origin, the first seq of the last pack listed (the paging cursor). */
      const cursor: Record<string, number> = {};
      for (;;) {
        const envelopes = await listEnvelopes(ep, pullFilter(ep.client.pb, chunk, vv, cursor));
        let advanced = false;
        for (const { origin, seq } of envelopes) {
          if (typeof origin === "string" && typeof seq === "number" && seq > (cursor[origin] ?? 0)) {
            cursor[origin] = seq;
            advanced = true;
          }
        }
        for await (const raws of recordsOf(ep, envelopes)) {
          const changes = gate.decodeAll(ep, raws).filter((c) => {
            if (c.seq <= (delivered[c.origin] ?? 0)) return false;
            delivered[c.origin] = c.seq;
            return true;
          });
          if (changes.length > 0) {
            yield { changes };
            first = false;
          }
        }
        if (envelopes.length < pageSize || !advanced) break;
      }
    }
    if (first) yield { changes: [] };
  }

  return {
    highWater,
    pull(since) {
      return {
        [Symbol.asyncIterator]: async function* () {
          if (options.isClosed()) throw options.closedError();
          const ep = pool.active();
          try {
            yield* pullFrom(ep, since);
            pool.reportSuccess(ep);
          } catch (e) {
            const err = toTransportError(e, `pull from ${ep.url}`);
            if (err.code === ErrorCode.TransportUnavailable) pool.reportFailure(ep, err.message);
            throw err;
          }
        },
      };
    },
  };
}
