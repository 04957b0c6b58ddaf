import { randomUUID } from "node:crypto";
import {
  type Cancel,
  ErrorCode,
  isNxsError,
  type Logger,
  type NxsError,
  type Scheduler,
  TransportError,
} from "@nxs-sync/core";
import { ClientResponseError } from "pocketbase";
import type { HighWater } from "./change-reader.js";
import type { Endpoint, EndpointPool } from "./failover.js";

/** Options of {@link createReplicaLease}. */
export interface ReplicaLeaseOptions {
  readonly pool: EndpointPool;
  readonly docId: string;
  /** The replica id the lease is on. */
  readonly origin: string;
  /** How long a lease lasts on a server, in ms (renewed every third of it). */
  readonly ttlMs: number;
  /** The clock and timer of the renewals. */
  readonly scheduler: Scheduler;
  readonly logger: Logger;
  /** What the servers hold of an origin (read after a takeover). */
  readonly highWater: (origin: string) => Promise<HighWater>;
  /** Reports a refusal seen by a background renewal. */
  readonly reportError: (error: Error) => void;
  /** Wakes the replica: the lease was taken over from another process, or became free. */
  readonly wake: () => void;
}

/**
 * The lease on one replica id, per server (`POST /nxs/lease` of the hooks bundle): no two live
 * processes push for one replica id (they would make different changes with the same seqs; the
 * server would keep one and acknowledge the other as a duplicate). Taken before the first push to a
 * server, renewed on the scheduler, released at close. See docs/engine.md, "Replica identity".
 */
export interface ReplicaLease {
  /** Whether a push to `ep` must first call {@link ReplicaLease.ensure} (no fresh lease there, or a refusal anywhere). */
  due(ep: Endpoint): boolean;
  /**
   * Takes or renews the lease at `ep`, and starts the renewals.
   * @throws TransportError `conflict` (retryable) while another live process holds it on some server.
   */
  ensure(ep: Endpoint): Promise<void>;
  /**
   * After a takeover: the highest seq the servers then held of this replica id (a local change at
   * or below it must match what the server holds), until {@link ReplicaLease.passedTakeover}.
   */
  takeoverFloor(): number | undefined;
  /** A push went past `floor`: the takeover check is over (unless a later takeover raised it). */
  passedTakeover(floor: number): void;
  /** Stops the renewals and releases the lease where it is held (best effort). */
  release(): Promise<void>;
}

/**
 * Creates the {@link ReplicaLease} of one replica id.
 * @param options - Pool, replica id, TTL, scheduler and callbacks.
 * @returns A lease, not yet taken.
 */
export function createReplicaLease(options: ReplicaLeaseOptions): ReplicaLease {
  const { pool, docId, scheduler, logger } = options;
  const ownOrigin = options.origin;
  let released = false;

  /**
   * The lease on this transport's replica id, per server: no two live processes push for one
   * replica id (they would make different changes with the same seqs; the server would keep one
   * and acknowledge the other as a duplicate). Taken before the first push to a server, renewed in
   * the background, released at close. See docs/engine.md, "Replica identity".
   */
  const leaseTtlMs = options.ttlMs;
  const leaseHolder = randomUUID();
  /** Per server URL, the local time until which the lease is surely ours. */
  const leases = new Map<string, number>();
  /** Per server URL, the refusal of the last attempt to take the lease there. */
  const leaseConflicts = new Map<string, NxsError>();
  /**
   * After taking over a lease another process held (it died, lost the server, or was this
   * process's own predecessor): the highest seq the servers then held of this replica id. A local
   * change at or below it is pushed only if the server holds the same change (the same HLC) at its
   * seq or none: a different one there was made by the other process, and ours would be taken for a
   * duplicate and lost.
   */
  let takeoverFloor: number | undefined;
  /** The pending lease renewal, from the first lease attempt until close. */
  let leaseTimer: Cancel | undefined;

  async function leaseOn(ep: Endpoint, release = false): Promise<void> {
    const sentAt = scheduler.now();
    const body = { doc: docId, replica: ownOrigin, holder: leaseHolder, ttlMs: leaseTtlMs, release };
    let answer: { previous?: unknown };
    try {
      answer = await ep.client.call(
        release ? "release lease" : "lease",
        (pb) => pb.send("/nxs/lease", { method: "POST", body, requestKey: null }),
        { retry: false },
      );
    } catch (e) {
      const cause = isNxsError(e) ? e.cause : e;
      if (!(cause instanceof ClientResponseError) || cause.status !== 409) throw e;
      leases.delete(ep.url);
      const data = (cause.response ?? {}) as { until?: unknown; now?: unknown };
      const left =
        typeof data.until === "number" && typeof data.now === "number"
          ? ` for ${data.until - data.now} ms more`
          : "";
      const conflict = new TransportError(
        ErrorCode.Conflict,
        `replica id ${ownOrigin} of doc ${docId} is held by another live process at ${ep.url} (its lease runs${left}): ` +
          "two processes must not push for one replica id; give each its own instance (<node id>.<instance>). " +
          "A process that died frees it when its lease runs out; until then nothing of this one is pushed",
        { cause: e, status: 409, retryable: true },
      );
      leaseConflicts.set(ep.url, conflict);
      throw conflict;
    }
    leaseConflicts.delete(ep.url);
    if (release) {
      leases.delete(ep.url);
      return;
    }
    leases.set(ep.url, sentAt + leaseTtlMs);
    if (typeof answer.previous === "string" && answer.previous !== leaseHolder && ownOrigin !== undefined) {
      // Taken over from another process: what it pushed up to now may clash with our local changes.
      const hw = await options.highWater(ownOrigin);
      takeoverFloor = Math.max(takeoverFloor ?? 0, hw.seq);
      logger.warn(
        `[nxs-pocketbase] took over the lease of replica id ${ownOrigin} at ${ep.url} from another process; the servers hold its changes up to seq ${hw.seq}`,
      );
      // The replica pulls what that process pushed (realtime leaves this origin out).
      queueMicrotask(options.wake);
    }
  }

  /** Whether the lease at `ep` is missing or past a third of its time (then renewed before a push). */
  function leaseStale(ep: Endpoint): boolean {
    const until = leases.get(ep.url);
    return until === undefined || until - scheduler.now() < (leaseTtlMs * 2) / 3;
  }

  /** Holds the lease at `ep` (taking or renewing it) before a push there; refuses while another process holds one anywhere. */
  async function ensureLease(ep: Endpoint): Promise<void> {
    if (leaseTtlMs === 0) return;
    // From the first attempt on, also while refused: the renewal takes the lease as soon as the
    // other holder's runs out, and then wakes the replica (see renewLeases).
    if (leaseTimer === undefined && !released) {
      const every = Math.max(250, Math.floor(leaseTtlMs / 3));
      const renew = (): void => {
        leaseTimer = scheduler.schedule(every, renew);
        void renewLeases();
      };
      leaseTimer = scheduler.schedule(every, renew);
    }
    if (leaseStale(ep)) await leaseOn(ep);
    const conflict = leaseConflicts.values().next().value;
    if (conflict !== undefined) throw conflict;
  }

  /** Renews the lease where it is held, and takes it on the other healthy servers (best effort). */
  async function renewLeases(): Promise<void> {
    const refused = leaseConflicts.size > 0;
    const healthy = new Set(pool.healthy());
    await Promise.all(
      pool.endpoints
        .filter((ep) => leases.has(ep.url) || leaseConflicts.has(ep.url) || healthy.has(ep))
        .map(async (ep) => {
          try {
            await leaseOn(ep);
          } catch (e) {
            if (!released && isNxsError(e) && e.code === ErrorCode.Conflict) options.reportError(e);
          }
        }),
    );
    // The other holder's lease ran out and ours is taken: the replica need not wait out its push
    // backoff (a resync retries its pushes at once).
    if (refused && leaseConflicts.size === 0 && !released) options.wake();
  }

  async function releaseLeases(): Promise<void> {
    released = true;
    leaseTimer?.();
    leaseTimer = undefined;
    const held = pool.endpoints.filter((ep) => leases.has(ep.url));
    await Promise.allSettled(held.map((ep) => leaseOn(ep, true)));
  }

  return {
    due: (ep) => leaseConflicts.size > 0 || leaseStale(ep),
    ensure: ensureLease,
    takeoverFloor: () => takeoverFloor,
    passedTakeover(floor) {
      if (takeoverFloor === floor) takeoverFloor = undefined;
    },
    release: releaseLeases,
  };
}
