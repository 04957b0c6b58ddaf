import {
  type Cancel,
  type Change,
  ErrorCode,
  isNxsError,
  type NxsError,
  type PushAck,
  type RetryPolicy,
  TransportError,
} from "@nxs-sync/core";
import { ClientResponseError } from "pocketbase";
import { createRecord, isUniqueViolation, toTransportError } from "./client.js";
import type { Endpoint } from "./failover.js";
import type { RecordGate } from "./record-gate.js";
import { cutRuns, encodeChangeRecord, estimateChangeBytes, type PackLimits, packChanges } from "./records.js";
import { createReplicaLease, type ReplicaLease, type ReplicaLeaseOptions } from "./replica-lease.js";
import { Collections } from "./schema.js";

/** The backoff of a push's retries across endpoints, unless the caller sets one. */
export const DEFAULT_PUSH_RETRY: RetryPolicy = Object.freeze({ minMs: 50, maxMs: 500, factor: 2 });

/** The unique key of a change pack: a create that violates it holds changes the server has. */
const PACK_KEY = ["doc", "origin", "seq"] as const;

/** How long `close()` waits for the leases to be released (a frozen server must not hold it). */
const RELEASE_WAIT_MS = 1000;

/** `promise`, or a rejection with `signal.reason` as soon as `signal` aborts (the work itself goes on, ignored). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** A push request leaving for a server (see the transport's `push-request` event). */
export interface PushRequestEvent {
  readonly url: string;
  readonly changes: number;
}

/**
 * Options of {@link createChangeWriter}. `highWater`, `reportError` (re-pushes, lease refusals) and
 * `wake` serve the lease as in {@link ReplicaLeaseOptions}.
 */
export interface ChangeWriterOptions
  extends Pick<
    ReplicaLeaseOptions,
    "pool" | "docId" | "scheduler" | "logger" | "highWater" | "reportError" | "wake"
  > {
  /** The author named in pushed records. Default: the authenticated node. */
  readonly author?: string;
  /** The replica id pushed for (leases and the takeover check need it). */
  readonly origin?: string;
  /** Servers that must commit a push before it is acknowledged (1 to the number of endpoints). */
  readonly minAcks: number;
  readonly packLimits: PackLimits;
  /** Packs per `/api/batch` request. */
  readonly batchSize: number;
  /** Largest JSON size of one batch request in bytes. */
  readonly batchMaxBytes: number;
  /** Acknowledged changes pushed again after a failover or failback (0: none). */
  readonly rePushWindow: number;
  /** The lease on `origin` per server, in ms (0: no leases). */
  readonly leaseTtlMs: number;
  /**
   * The bound of a push's retries: a push whose attempts fail retryably goes on (across endpoints)
   * until this many ms after its first attempt, then fails with the last error. 0: one attempt.
   */
  readonly pushTimeoutMs: number;
  /** The backoff between those attempts. Default {@link DEFAULT_PUSH_RETRY}. */
  readonly retry?: RetryPolicy;
  readonly gate: RecordGate;
  /** Called for each push request. */
  readonly onRequest?: (event: PushRequestEvent) => void;
}

/**
 * The write side of a transport: idempotent, packed and batched pushes with failover (or to
 * `minAcks` servers at once), the lease on the replica id, the takeover check, and the re-push of
 * recent changes after a switch of endpoint.
 */
export interface ChangeWriter {
  /**
   * Pushes `changes` (a prefix may be acknowledged).
   * @throws TransportError `transport/unavailable` once `pushTimeoutMs` ran out, `transport/rejected`
   *   for a refused first change, `conflict` for a lease held elsewhere, `closed` after close.
   */
  push(changes: readonly Change[]): Promise<PushAck>;
  /** Pushes the recently acknowledged changes to the active endpoint, in the background. */
  rePushRecent(reason: string): void;
  /** Whether a realtime record is one this writer sent (its own echo). */
  isEcho(record: unknown): boolean;
  /** Releases the leases (waiting at most 1 s), gives up pushes in flight; later pushes fail `closed`. */
  close(): Promise<void>;
}

/**
 * Creates the {@link ChangeWriter} of one document.
 * @param options - Pool, document, limits, bounds and callbacks.
 * @returns A writer.
 */
export function createChangeWriter(options: ChangeWriterOptions): ChangeWriter {
  const { pool, docId, gate, logger, scheduler, minAcks, packLimits, batchSize, batchMaxBytes } = options;
  const ownOrigin = options.origin;
  const pushTimeoutMs = Math.max(0, options.pushTimeoutMs);
  const retryPolicy = options.retry ?? DEFAULT_PUSH_RETRY;
  const rePushWindow = Math.max(0, options.rePushWindow);
  /** The last `rePushWindow` acknowledged changes, oldest first. */
  let recent: Change[] = [];
  let closed = false;
  const closedError = () => new TransportError(ErrorCode.Closed, "PocketBase transport is closed");
  /** Aborted by close: a push's backoff under way ends at once (see `EndpointPool.call`). */
  const closing = new AbortController();

  /**
   * Per origin, the highest seq this transport has sent. A realtime event of a pack within it is
   * this replica's own write coming back (every gateway is subscribed to the docs it writes): the
   * doc has those changes, so the event is dropped before any decoding.
   */
  const sentHigh = new Map<string, number>();
  function isEcho(record: unknown): boolean {
    const r = record as { origin?: unknown; last?: unknown } | null;
    return (
      typeof r?.origin === "string" && typeof r.last === "number" && r.last <= (sentHigh.get(r.origin) ?? 0)
    );
  }

  const lease: ReplicaLease | undefined =
    ownOrigin === undefined || options.leaseTtlMs <= 0
      ? undefined
      : createReplicaLease({
          pool,
          docId,
          origin: ownOrigin,
          ttlMs: options.leaseTtlMs,
          scheduler,
          logger,
          highWater: options.highWater,
          reportError: options.reportError,
          wake: options.wake,
        });

  // ---- push -----------------------------------------------------------------------------------

  /**
   * Per endpoint, a signal aborted when the endpoint is seen down (health checks, failed requests):
   * a push in flight there (a frozen server answers nothing until the request times out) is given
   * up with a retryable error at once, the client does not retry it there, and the push moves on
   * to the endpoint the pool fails over to. The server may still commit the abandoned request
   * later: pushes are idempotent, so the copy on the new endpoint and that one are the same changes.
   */
  const downControllers = new Map<string, AbortController>();
  function downSignal(ep: Endpoint): AbortSignal {
    let c = downControllers.get(ep.url);
    if (c === undefined || c.signal.aborted) {
      c = new AbortController();
      downControllers.set(ep.url, c);
    }
    return c.signal;
  }
  const offHealth = pool.on("health", (h) => {
    if (h.healthy) return;
    const c = downControllers.get(h.url);
    downControllers.delete(h.url);
    c?.abort(
      new TransportError(ErrorCode.TransportUnavailable, `push to ${h.url} given up: the server is down`, {
        retryable: true,
      }),
    );
  });

  function rememberAcked(changes: readonly Change[]): void {
    if (rePushWindow === 0 || changes.length === 0) return;
    for (const c of changes) recent.push(c);
    // Trimmed once it holds two windows: amortized O(1) per change, not a copy of the window per push.
    if (recent.length >= 2 * rePushWindow) recent = recent.slice(recent.length - rePushWindow);
  }

  /** Pushes the recently acknowledged changes to the new active endpoint, in the background. */
  function rePushRecent(reason: string): void {
    if (closed || recent.length === 0) return;
    const ep = pool.active();
    const changes =
      recent.length > rePushWindow ? recent.slice(recent.length - rePushWindow) : recent.slice();
    void (async () => {
      try {
        const r = await pushTo(ep, changes);
        logger.info(`[nxs-pocketbase] ${reason}: re-pushed ${r.acked} recent change(s) to ${ep.url}`);
      } catch (e) {
        if (!closed)
          options.reportError(toTransportError(e, `${reason}: re-push recent changes to ${ep.url}`));
      }
    })();
  }

  /** Groups packs into requests: at most `batchSize` packs and `batchMaxBytes` each. */
  function requests(packs: readonly Change[][]): Change[][][] {
    // The common push is one pack: one request, no need to size it again (packChanges did).
    if (packs.length <= 1) return packs.length === 0 ? [] : [[...packs]];
    return cutRuns(packs, {
      max: batchSize,
      maxBytes: batchMaxBytes,
      sizeOf: (p) => p.reduce((n, c) => n + estimateChangeBytes(c), 256),
    });
  }

  /** The packs of `origin` at `ep` that hold any seq in `lo..hi` (only `fields`, when given). */
  function packsCovering(
    ep: Endpoint,
    origin: string,
    lo: number,
    hi: number,
    signal: AbortSignal,
    fields?: string,
  ): Promise<Record<string, unknown>[]> {
    return ep.client.call(
      "list packs",
      (pb) =>
        abortable(
          pb.collection(Collections.Changes).getFullList({
            filter: pb.filter("doc = {:doc} && origin = {:origin} && last >= {:lo} && seq <= {:hi}", {
              doc: docId,
              origin,
              lo,
              hi,
            }),
            batch: 1000,
            requestKey: null,
            signal,
            ...(fields === undefined ? {} : { fields }),
          }),
          signal,
        ),
      { retry: false, signal },
    );
  }

  /** Which of `changes` the server already holds, in any pack (by origin and seq). */
  async function covered(
    ep: Endpoint,
    changes: readonly Change[],
    signal: AbortSignal,
  ): Promise<Set<string>> {
    const found = new Set<string>();
    const byOrigin = new Map<string, number[]>();
    for (const c of changes) {
      const seqs = byOrigin.get(c.origin) ?? [];
      seqs.push(c.seq);
      byOrigin.set(c.origin, seqs);
    }
    for (const [origin, seqs] of byOrigin) {
      const lo = seqs.reduce((a, b) => Math.min(a, b));
      const hi = seqs.reduce((a, b) => Math.max(a, b));
      const packs = await packsCovering(ep, origin, lo, hi, signal, "seq,last");
      for (const s of seqs) {
        if (packs.some((p) => Number(p.seq) <= s && s <= Number(p.last))) found.add(`${origin}\u0000${s}`);
      }
    }
    return found;
  }

  /** A per-record 400 of a create or of one request of a batch, and whether it is a duplicate key. */
  function recordFailure(
    e: unknown,
    batch: boolean,
  ): { index: number; duplicate: boolean; response: unknown } | undefined {
    const cause = isNxsError(e) ? e.cause : e;
    if (!(cause instanceof ClientResponseError) || cause.status !== 400) return undefined;
    // The client's one check of a unique violation (of a create, or of a batch's failed request).
    const duplicate = isUniqueViolation(e, PACK_KEY);
    const body = cause.response as { data?: Record<string, unknown> } | undefined;
    const requests = (
      body?.data as { requests?: Record<string, { response?: { data?: unknown } }> } | undefined
    )?.requests;
    if (requests === undefined) {
      // A batch refused as a whole (no per-request detail) is not about one pack.
      if (batch) return undefined;
      return { index: 0, duplicate, response: body };
    }
    const [key, value] = Object.entries(requests)[0] ?? [];
    if (key === undefined) return undefined;
    return { index: Number(key), duplicate, response: value?.response };
  }

  /**
   * Sends packs in one request: a plain create for one pack, one `/api/batch` transaction for
   * several. `signal` gives the request up (and stops the client's retries) when `ep` goes down.
   */
  async function send(
    ep: Endpoint,
    packs: readonly Change[][],
    node: string,
    signal: AbortSignal,
  ): Promise<void> {
    let count = 0;
    for (const p of packs) {
      const last = p[p.length - 1] as Change;
      if (last.seq > (sentHigh.get(last.origin) ?? 0)) sentHigh.set(last.origin, last.seq);
      count += p.length;
    }
    const sent = { url: ep.url, changes: count };
    if (packs.length === 1) {
      const body = encodeChangeRecord(packs[0] as Change[], node);
      await ep.client.call(
        "push",
        (pb) => {
          options.onRequest?.(sent);
          return abortable(createRecord(pb, Collections.Changes, body), signal);
        },
        { retry: false, signal },
      );
      return;
    }
    const batch = ep.client.pb.createBatch();
    for (const p of packs) batch.collection(Collections.Changes).create(encodeChangeRecord(p, node));
    await ep.client.call(
      "push batch",
      () => {
        options.onRequest?.(sent);
        return abortable(batch.send({ requestKey: null, signal }), signal);
      },
      { retry: false, signal },
    );
  }

  /**
   * Commits `items` on one endpoint, packed. A duplicate key (an earlier push whose answer was lost,
   * maybe packed differently) counts as committed for whatever the server's packs cover.
   * @returns How many leading changes of `items` are committed, and the rejection that stopped it.
   */
  async function commitChanges(
    ep: Endpoint,
    items: readonly Change[],
    signal: AbortSignal,
  ): Promise<{ acked: number; rejected?: NxsError }> {
    const node = options.author ?? ep.client.nodeId;
    if (node === undefined)
      throw new TransportError(ErrorCode.TransportUnauthorized, "not authenticated as a node");
    const done = new Set<Change>();
    let end = items.length;
    let rejected: NxsError | undefined;
    for (let round = 0; ; round++) {
      const pending = items.slice(0, end).filter((c) => !done.has(c));
      if (pending.length === 0) break;
      let failure: { pack: Change[]; duplicate: boolean; cause: unknown; response: unknown } | undefined;
      for (const group of requests(packChanges(pending, packLimits))) {
        try {
          await send(ep, group, node, signal);
          for (const p of group) for (const c of p) done.add(c);
        } catch (e) {
          const failed = recordFailure(e, group.length > 1);
          const pack = failed === undefined ? undefined : group[failed.index];
          if (failed === undefined || pack === undefined || round > items.length)
            throw toTransportError(e, "push");
          failure = { pack, duplicate: failed.duplicate, cause: e, response: failed.response };
          break;
        }
      }
      if (failure === undefined) break;
      if (failure.duplicate) {
        // Drop every change the server already holds, then pack the rest again.
        const have = await covered(ep, pending, signal);
        const before = done.size;
        for (const c of pending) if (have.has(`${c.origin}\u0000${c.seq}`)) done.add(c);
        logger.debug(`[nxs-pocketbase] push: ${done.size - before} change(s) were already committed`);
        if (done.size === before) {
          const at = failure.pack[0] as Change;
          throw new TransportError(
            ErrorCode.TransportRejected,
            `push: ${ep.url} holds a record at ${at.origin}/${at.seq} that covers none of the changes pushed (a malformed record?)`,
            { cause: failure.cause, status: 400 },
          );
        }
        continue;
      }
      // A real rejection: the request's transaction rolled back. Commit what precedes the refused
      // pack, then report it.
      const first = failure.pack[0] as Change;
      rejected = new TransportError(
        ErrorCode.TransportRejected,
        `push: change ${first.origin}/${first.seq} rejected by ${ep.url}: ${JSON.stringify(failure.response)}`,
        { cause: failure.cause, status: 400 },
      );
      end = items.indexOf(first);
    }
    let acked = 0;
    while (acked < items.length && done.has(items[acked] as Change)) acked++;
    return rejected === undefined ? { acked } : { acked, rejected };
  }

  /** Pushes `changes` to one endpoint. @returns How many leading changes it committed. */
  async function pushTo(
    ep: Endpoint,
    changes: readonly Change[],
  ): Promise<{ acked: number; rejected?: NxsError }> {
    const signal = downSignal(ep);
    if (ep.client.nodeId === undefined) await abortable(ep.client.authenticate(), signal);
    // Most pushes hold a fresh lease already: no promise, no await for them.
    if (lease?.due(ep)) await abortable(lease.ensure(ep), signal);
    if (lease?.takeoverFloor() !== undefined) await checkTakeover(ep, changes, signal);
    return commitChanges(ep, changes, signal);
  }

  /**
   * After a takeover: refuses (`conflict`, for good) local changes whose seq the server holds with
   * another change; lets through the ones it holds identically (a restored outbox being pushed
   * again) or not at all. Once a push goes past the floor, the check is over.
   */
  async function checkTakeover(ep: Endpoint, changes: readonly Change[], signal: AbortSignal): Promise<void> {
    const floor = lease?.takeoverFloor();
    const origin = ownOrigin;
    if (floor === undefined || origin === undefined) return;
    const mine = changes.filter((c) => c.origin === origin && c.seq <= floor);
    if (mine.length > 0) {
      const lo = Math.min(...mine.map((c) => c.seq));
      const hi = Math.max(...mine.map((c) => c.seq));
      const raws = await packsCovering(ep, origin, lo, hi, signal);
      const theirs = new Map<number, string>();
      for (const c of gate.decodeAll(ep, raws)) theirs.set(c.seq, c.hlc);
      const clash = mine.find((c) => theirs.has(c.seq) && theirs.get(c.seq) !== c.hlc);
      if (clash !== undefined) {
        throw new TransportError(
          ErrorCode.Conflict,
          `change ${clash.origin}/${clash.seq} clashes with the one another process pushed for this replica id at that seq while it held the lease: this replica's changes from there on are not pushed`,
          { retryable: false },
        );
      }
    }
    const last = changes[changes.length - 1];
    if (last !== undefined && last.seq > floor) lease?.passedTakeover(floor);
  }

  /** Pushes to one endpoint and feeds the outcome into the pool's health (unavailable = a failure). */
  async function pushReporting(
    ep: Endpoint,
    changes: readonly Change[],
  ): Promise<{ acked: number; rejected?: NxsError }> {
    try {
      const r = await pushTo(ep, changes);
      pool.reportSuccess(ep);
      return r;
    } catch (e) {
      const err = toTransportError(e, `push to ${ep.url}`);
      if (err.code === ErrorCode.TransportUnavailable) pool.reportFailure(ep, err.message);
      throw err;
    }
  }

  /**
   * Pushes to the active endpoint, and on a retryable failure again (on whichever endpoint is
   * active then, after a backoff of `retry`) until `pushTimeoutMs` has passed since the first
   * attempt: the one retry layer of a push is the pool's (`EndpointPool.call`), and its requests
   * make one attempt each.
   */
  function pushWithFailover(changes: readonly Change[]): Promise<{ acked: number; rejected?: NxsError }> {
    return pool.call(
      "push",
      (ep) =>
        pushTo(ep, changes).catch((e: unknown) => {
          throw toTransportError(e, `push to ${ep.url}`);
        }),
      { timeoutMs: pushTimeoutMs, retry: retryPolicy, retryIf: (e) => e.retryable, signal: closing.signal },
    );
  }

  async function pushMinAcks(changes: readonly Change[]): Promise<{ acked: number; rejected?: NxsError }> {
    const targets = pool.healthy().slice(0, Math.max(minAcks, pool.healthy().length));
    const results = await Promise.allSettled(targets.map((ep) => pushReporting(ep, changes)));
    const acks = results.map((r) => (r.status === "fulfilled" ? r.value.acked : 0)).sort((a, b) => b - a);
    const acked = acks[minAcks - 1] ?? 0;
    const rejected = results.find(
      (r): r is PromiseFulfilledResult<{ acked: number; rejected?: NxsError }> =>
        r.status === "fulfilled" && r.value.rejected !== undefined,
    )?.value.rejected;
    if (acked === 0 && changes.length > 0) {
      if (rejected !== undefined) return { acked, rejected };
      const firstFailure = results.find((r): r is PromiseRejectedResult => r.status === "rejected")?.reason;
      throw new TransportError(
        ErrorCode.TransportUnavailable,
        `push: fewer than ${minAcks} server(s) committed the changes`,
        { cause: firstFailure, retryable: true },
      );
    }
    return { acked, rejected };
  }

  return {
    isEcho,
    rePushRecent,
    async push(changes): Promise<PushAck> {
      if (closed) throw closedError();
      if (changes.length === 0) return { acked: 0 };
      let r: { acked: number; rejected?: NxsError };
      try {
        r = minAcks === 1 ? await pushWithFailover(changes) : await pushMinAcks(changes);
      } catch (e) {
        if (closed) throw closedError();
        throw toTransportError(e, "push");
      }
      if (r.acked === 0 && r.rejected !== undefined) throw r.rejected;
      if (r.rejected !== undefined) options.reportError(r.rejected);
      rememberAcked(changes.slice(0, r.acked));
      return { acked: r.acked };
    },
    async close() {
      if (closed) return;
      closed = true;
      // Released so that a restart takes over at once; bounded: a frozen server must not hold close().
      let cancel: Cancel | undefined;
      await Promise.race([
        lease?.release() ?? Promise.resolve(),
        new Promise<void>((resolve) => {
          cancel = scheduler.schedule(RELEASE_WAIT_MS, resolve);
        }),
      ]);
      cancel?.();
      closing.abort(closedError());
      for (const c of downControllers.values()) c.abort(closedError());
      downControllers.clear();
      offHealth();
    },
  };
}
