import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type Change,
  createEmitter,
  createReportThrottle,
  type DocId,
  defaultLogger,
  ErrorCode,
  isNxsError,
  type Logger,
  type NxsError,
  type PullPage,
  type PushAck,
  type Snapshot,
  type Transport,
  TransportError,
  type TransportListener,
  TransportState,
  throttleKey,
  ValidationError,
  type VersionVector,
} from "@nxs-sync/core";
import pRetry from "p-retry";
import type PocketBase from "pocketbase";
import { ClientResponseError } from "pocketbase";
import { createRecord, type NodeAuth, type RetryOptions, toTransportError } from "./client.js";
import {
  createEndpointPool,
  type Endpoint,
  type EndpointHealth,
  type EndpointPool,
  type EndpointPoolEvents,
  type FailoverOptions,
} from "./failover.js";
import { MAX_RESPONSE_BYTES_HEADER } from "./http-fetch.js";
import {
  cutRuns,
  type DecodeChangeOptions,
  decodeChangeRecord,
  decodeSnapshotRecord,
  encodeChangeRecord,
  estimateChangeBytes,
  type PackLimits,
  packChanges,
} from "./records.js";
import {
  Collections,
  INLINE_CHANGES_BYTES,
  MAX_CHANGES_BYTES,
  MAX_SNAPSHOT_BYTES,
  MAX_VERSION_BYTES,
} from "./schema.js";
import { type Heads, readHeads, unbackedClaim } from "./snapshot-trust.js";

/** Options of {@link createPocketBaseTransport}. */
export interface PocketBaseTransportOptions {
  /** Server base URLs, preferred first (e.g. the primary, then the secondary). */
  readonly endpoints: readonly string[];
  /** Node credentials (the same node record exists on every server). */
  readonly auth: NodeAuth;
  /** The document this transport carries. */
  readonly docId: DocId | string;
  /**
   * The node named as author (`node`) of the records this transport pushes. Default: the
   * authenticated node, the only author a gateway may name. A replicator account (which is no
   * node) pushing through a transport must name one; the create rule refuses any other case.
   */
  readonly author?: string;
  /**
   * The origin (replica id) this transport pushes for, when it serves one replica (a gateway's
   * replica). The realtime subscription then asks the server to leave that origin's records out:
   * the replica has them, so the server saves one serialization and one message per write, and the
   * client one event to drop. Pulls are unaffected. Without it, the transport drops its own echo
   * on arrival instead.
   */
  readonly origin?: string;
  /**
   * A push is acknowledged only once this many servers committed it. Default 1. With k > 1 each
   * push goes to every healthy endpoint at once (durability across servers); with fewer than k
   * healthy endpoints it fails `transport/unavailable`.
   */
  readonly minAcks?: number;
  /**
   * Most changes per record: consecutive changes of one origin travel as one record, a pack (see
   * docs/adr/0005-change-packs.md). Default 1000, at most 10 000.
   */
  readonly packSize?: number;
  /**
   * Largest estimated JSON size of one pack, in bytes. Default 64 KiB (readers fetch packs above
   * 4 KiB by id, within a 4 MiB budget per fetch).
   */
  readonly packMaxBytes?: number;
  /**
   * Packs per `/api/batch` request (at most the server's `batch.maxRequests`), when a push holds
   * several (a push of one pack is a plain create). Default 50.
   */
  readonly batchSize?: number;
  /** Largest JSON size of one batch request in bytes. Default 16 MiB. */
  readonly batchMaxBytes?: number;
  /**
   * Records (packs) per pull page (the server clamps at 1000). Default 1000. A page carries the
   * bodies of packs up to 4 KiB inline; larger ones are fetched by id, 4 MiB at a time.
   */
  readonly pageSize?: number;
  /** Per-request timeout. Default 5000 ms. */
  readonly requestTimeoutMs?: number;
  /** Retry policy of single requests (network errors and 5xx only). */
  readonly retry?: RetryOptions;
  /** How long a push keeps retrying across endpoints before it fails `transport/unavailable`. Default 10 000 ms. */
  readonly pushTimeoutMs?: number;
  /** Failover and failback timings. */
  readonly failover?: FailoverOptions;
  /**
   * How many recently acknowledged changes are pushed again (idempotently) to the new endpoint after
   * a failover or failback: the server that went away may have acknowledged them without the
   * replicator having copied them yet, and readers on the new endpoint would wait on that gap.
   * Default 1000; 0 turns it off.
   */
  readonly rePushWindow?: number;
  /**
   * With an `origin`: how long the lease on that replica id lasts on a server (renewed every third
   * of it while the transport is open, released by `close()`). A second live process pushing for the
   * same replica id is refused (`conflict`) while the lease runs; one that died frees it when it runs
   * out. Default 10 000 ms; 0 turns leases off. Needs the hooks bundle (`POST /nxs/lease`).
   */
  readonly leaseTtlMs?: number;
  /**
   * Validation of incoming records (HLC decoder, size limits). `docs` is fixed to `docId`. A pack
   * whose stored `changes` is larger than `maxChangesBytes` (default 8 MiB) is quarantined unread.
   */
  readonly decode?: Omit<DecodeChangeOptions, "docs">;
  readonly logger?: Logger;
  /** Errors of background work (quarantined records, realtime failures), already typed. */
  readonly onError?: (error: Error) => void;
}

/** A quarantined record: never passed to core. */
export interface QuarantineEvent {
  readonly recordId: string | undefined;
  readonly url: string;
  readonly error: ValidationError;
}

/** Events of a {@link PocketBaseTransport}. */
export interface PocketBaseTransportEvents extends EndpointPoolEvents {
  /** A record failed validation at the edge and was dropped (reported once per record and server). */
  quarantine: QuarantineEvent;
  /** The transport state changed. */
  state: TransportState;
  /**
   * A push request left for `url` (a create or a batch; retries of the client count again).
   * For observability: which server a push went to, and how often.
   */
  "push-request": { readonly url: string; readonly changes: number };
  /**
   * A pull fetched the bodies of change records by id from `url` (those too large to come inline
   * with the page of envelopes), `bytes` in all as listed. For observability: what a pull read.
   */
  "pull-bodies": { readonly url: string; readonly ids: readonly string[]; readonly bytes: number };
}

/** What {@link PocketBaseTransport.status} reports. */
export interface PocketBaseTransportStatus {
  readonly state: TransportState;
  /** URL of the endpoint in use. */
  readonly endpoint: string;
  readonly endpoints: readonly EndpointHealth[];
  /** Id of the authenticated node record (the author of pushed records). */
  readonly nodeId: string | undefined;
}

/** Core's {@link Transport} over PocketBase, with failover events and status. */
export interface PocketBaseTransport extends Transport {
  /** Registers an event listener; returns the function that removes it. */
  on<E extends keyof PocketBaseTransportEvents>(
    event: E,
    listener: (payload: PocketBaseTransportEvents[E]) => void,
  ): () => void;
  /** Current state, endpoint in use and per-endpoint health. */
  status(): PocketBaseTransportStatus;
}

interface Realtime {
  readonly ep: Endpoint;
  stop(): void;
}

const closedError = () => new TransportError(ErrorCode.Closed, "PocketBase transport is closed");

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
/** Records (ids per server) whose quarantine a transport remembers, to skip them unread. */
const QUARANTINE_MEMORY = 10_000;

/** A row of the `nxs_change_sizes` view as listed (unchecked: decoding checks the records). */
interface Envelope {
  readonly id?: unknown;
  readonly origin?: unknown;
  readonly seq?: unknown;
  readonly bytes?: unknown;
  /** The pack's changes when at most INLINE_CHANGES_BYTES, else null. */
  readonly changes?: unknown;
}

/** Whether `v` is a version vector as stored (origin to a non-negative seq). */
function isVersion(v: unknown): v is Readonly<Record<string, number>> {
  return (
    v !== null &&
    typeof v === "object" &&
    !Array.isArray(v) &&
    Object.values(v).every((s) => typeof s === "number" && Number.isSafeInteger(s) && s >= 0)
  );
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

/**
 * Creates the PocketBase transport of one document: batched idempotent pushes, paged pulls since a
 * version vector, realtime as a hint with a resync after every (re)connect, and failover between
 * endpoints.
 * @param options - Endpoints, node credentials, document and tuning.
 * @returns A transport; call `connect()` first.
 * @throws RangeError when `endpoints` is empty or `minAcks` exceeds the number of endpoints.
 * @example
 * ```ts
 * const transport = createPocketBaseTransport({
 *   endpoints: ["http://primary:8090", "http://secondary:8090"],
 *   auth: { email: "gw1@nodes.local", password: process.env.NXS_NODE_PASSWORD! },
 *   docId: "routing",
 * });
 * transport.on("failover", (e) => console.warn("failover", e.from, "->", e.to));
 * await transport.connect();
 * ```
 */
export function createPocketBaseTransport(options: PocketBaseTransportOptions): PocketBaseTransport {
  const minAcks = options.minAcks ?? 1;
  if (minAcks < 1 || minAcks > options.endpoints.length) {
    throw new RangeError(
      `minAcks ${minAcks} must be between 1 and the number of endpoints (${options.endpoints.length})`,
    );
  }
  const logger = options.logger ?? defaultLogger;
  const reportThrottle = createReportThrottle({ now: Date.now });
  const docId = options.docId;
  const ownOrigin = options.origin;
  /** The realtime filter: this doc's records, without this replica's own when its origin is known. */
  const realtimeFilter = (pb: PocketBase): string =>
    ownOrigin === undefined
      ? pb.filter("doc = {:doc}", { doc: docId })
      : pb.filter("doc = {:doc} && origin != {:origin}", { doc: docId, origin: ownOrigin });
  const batchSize = options.batchSize ?? 50;
  const batchMaxBytes = options.batchMaxBytes ?? 16 * 1024 * 1024;
  const pageSize = Math.min(options.pageSize ?? 1000, 1000);
  // Readers quarantine packs of more than 10 000 changes (their default), and the server refuses a
  // `changes` field above MAX_CHANGES_BYTES (the estimate may undercount, hence the margin).
  const packLimits: PackLimits = {
    packSize: Math.min(10_000, Math.max(1, options.packSize ?? 1000)),
    packMaxBytes: Math.min(MAX_CHANGES_BYTES / 4, Math.max(1, options.packMaxBytes ?? 64 * 1024)),
  };
  const pushTimeoutMs = options.pushTimeoutMs ?? 10_000;
  const rePushWindow = Math.max(0, options.rePushWindow ?? 1000);
  /** The last `rePushWindow` acknowledged changes, oldest first. */
  let recent: Change[] = [];
  const decodeOptions: DecodeChangeOptions = { ...options.decode, docs: [docId] };
  /** This reader's limit for one pack: a larger stored `changes` is quarantined unread. */
  const maxPackBytes = decodeOptions.maxChangesBytes ?? MAX_CHANGES_BYTES;
  const pool: EndpointPool = createEndpointPool({
    endpoints: options.endpoints,
    auth: options.auth,
    requestTimeoutMs: options.requestTimeoutMs,
    retry: options.retry,
    failover: options.failover,
    logger,
  });

  let state: TransportState = TransportState.Disconnected;
  let closed = false;
  let connecting: Promise<void> | undefined;
  let realtime: Realtime | undefined;
  /** PB_CONNECTs seen so far, and how many had been seen when the active endpoint went down. */
  let realtimeConnects = 0;
  let connectsWhenDown: number | undefined;
  const closeController = new AbortController();
  const subscribers = new Set<TransportListener>();
  const events = createEmitter<PocketBaseTransportEvents>((error, event) =>
    logger.error(`[nxs-pocketbase] ${String(event)} listener threw`, error),
  );
  const poolUnsubs: (() => void)[] = [];

  const emit = events.emit;

  /**
   * Reports an error of background work. Subscribers (a replica) get every occurrence and report
   * it themselves (event, `onError`, their logger, throttled there): the transport then does not
   * log it a second time. Without one, the transport logs it; its own logger line and `onError`
   * get a repeated identical error once per minute, with the count held back.
   */
  function reportError(error: Error): void {
    for (const s of subscribers) {
      try {
        s.onError?.(error);
      } catch (e) {
        logger.error("[nxs-pocketbase] subscriber onError threw", e);
      }
    }
    const decision = reportThrottle.admit(throttleKey(error));
    if (!decision.report) return;
    const more = decision.suppressed > 0 ? ` (and ${decision.suppressed} more like it since)` : "";
    const reported =
      more === "" || !isNxsError(error)
        ? error
        : new TransportError(error.code, `${error.message}${more}`, {
            cause: error.cause,
            retryable: error.retryable,
          });
    const handled = [...subscribers].some((s) => s.onError !== undefined);
    if (!handled) logger.warn(`[nxs-pocketbase] ${reported.message}`);
    try {
      options.onError?.(reported);
    } catch (e) {
      logger.error("[nxs-pocketbase] onError threw", e);
    }
  }

  function setState(next: TransportState): void {
    if (state === next) return;
    state = next;
    emit("state", next);
    for (const s of subscribers) {
      try {
        s.onState?.(next);
      } catch (e) {
        logger.error("[nxs-pocketbase] onState threw", e);
      }
    }
  }

  function fireResync(): void {
    for (const s of subscribers) {
      try {
        s.onResync();
      } catch (e) {
        logger.error("[nxs-pocketbase] onResync threw", e);
      }
    }
  }

  /** Quarantined record ids already reported (a bad record comes back with every pull). */
  const reported = new Set<string>();
  /**
   * Change records quarantined (`url|id`): records never change, so a pull skips them unread
   * (a junk pack is fetched once, not on every pull). Bounded: forgotten all at once when full.
   */
  const skipped = new Set<string>();
  function quarantine(ep: Endpoint, recordId: string | undefined, error: ValidationError): void {
    const tag = `${ep.url}|${recordId ?? error.message}`;
    if (reported.has(tag)) return;
    if (reported.size >= QUARANTINE_MEMORY) reported.clear();
    reported.add(tag);
    emit("quarantine", { recordId, url: ep.url, error });
    reportError(error);
  }

  /** Quarantines a change record, and remembers it so that pulls skip it unread. */
  function quarantineChanges(ep: Endpoint, recordId: string | undefined, error: ValidationError): void {
    if (recordId !== undefined) {
      if (skipped.size >= QUARANTINE_MEMORY) skipped.clear();
      skipped.add(`${ep.url}|${recordId}`);
    }
    quarantine(ep, recordId, error);
  }

  /** Decodes raw records (packs) into their changes; quarantines the bad ones. */
  function decodeAll(ep: Endpoint, raws: readonly unknown[]): Change[] {
    const out: Change[] = [];
    for (const raw of raws) {
      const r = decodeChangeRecord(raw, decodeOptions);
      if (r.ok) for (const c of r.value) out.push(c);
      else quarantineChanges(ep, r.recordId, r.error);
    }
    return out;
  }

  // ---- realtime -------------------------------------------------------------------------------

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

  let pendingEvents: Change[] = [];
  let flushScheduled = false;
  function deliver(changes: readonly Change[]): void {
    pendingEvents.push(...changes);
    if (flushScheduled) return;
    flushScheduled = true;
    queueMicrotask(() => {
      flushScheduled = false;
      const batch = pendingEvents;
      pendingEvents = [];
      if (batch.length === 0 || closed) return;
      for (const s of subscribers) {
        try {
          s.onChanges(batch);
        } catch (e) {
          logger.error("[nxs-pocketbase] onChanges threw", e);
        }
      }
    });
  }

  /** Opens the realtime subscription on `ep`; resolves after the first PB_CONNECT. */
  async function startRealtime(ep: Endpoint): Promise<Realtime> {
    const pb: PocketBase = ep.client.pb;
    let stopped = false;
    const onEvent = (e: { action?: unknown; record?: unknown }) => {
      if (stopped || closed || e?.action !== "create" || isEcho(e.record)) return;
      const changes = decodeAll(ep, [e.record]);
      if (changes.length > 0) deliver(changes);
    };
    const onConnect = () => {
      if (stopped || closed) return;
      realtimeConnects++;
      pool.reportSuccess(ep);
      setState(TransportState.Connected);
      fireResync();
    };
    pb.realtime.onDisconnect = (subs) => {
      if (stopped || closed || subs.length === 0) return;
      setState(TransportState.Connecting);
      pool.reportFailure(ep, "realtime connection dropped");
    };
    await ep.client.call(
      "realtime subscribe",
      async (client) => {
        // The SDK fires PB_CONNECT listeners after the topics were submitted, so a pull started
        // from onResync covers everything the subscription may have missed.
        await Promise.all([
          client.collection(Collections.Changes).subscribe("*", onEvent, { filter: realtimeFilter(client) }),
          client.realtime.subscribe("PB_CONNECT", onConnect),
        ]);
      },
      { retry: false },
    );
    return {
      ep,
      stop() {
        stopped = true;
        pb.realtime.onDisconnect = undefined;
        pb.realtime.unsubscribe().catch(() => {});
      },
    };
  }

  async function connectOnce(): Promise<void> {
    const ep = pool.active();
    try {
      await ep.client.authenticate();
      const rt = await startRealtime(ep);
      if (closed) {
        rt.stop();
        throw closedError();
      }
      realtime = rt;
      pool.reportSuccess(ep);
    } catch (e) {
      ep.client.pb.realtime.unsubscribe().catch(() => {});
      const err = toTransportError(e, `connect to ${ep.url}`);
      if (err.code === ErrorCode.TransportUnavailable) pool.reportFailure(ep, err.message);
      throw err;
    }
  }

  /** (Re)connects to the active endpoint, retrying (across endpoints) until it works or the transport closes. */
  function ensureConnected(): Promise<void> {
    if (connecting !== undefined) return connecting;
    setState(TransportState.Connecting);
    connecting = pRetry(
      async () => {
        if (closed) throw closedError();
        await connectOnce();
      },
      {
        retries: Number.POSITIVE_INFINITY,
        minTimeout: 100,
        maxTimeout: 2000,
        randomize: true,
        signal: closeController.signal,
        // Network errors, timeouts and 5xx: retry (on whichever endpoint is active). Wrong
        // credentials or a refused subscription: give up, retrying cannot help.
        shouldRetry: ({ error }) => !closed && isNxsError(error) && error.retryable,
        // Every failed attempt is reported (throttled: the same failure once a minute, with a count).
        onFailedAttempt: ({ error }) => {
          if (!closed && isNxsError(error) && error.retryable) reportError(error);
        },
      },
    )
      .catch((e: unknown) => {
        if (closed) throw closedError();
        throw toTransportError(e, "connect");
      })
      .finally(() => {
        connecting = undefined;
        // The pool may have switched endpoint while this connect was under way.
        if (!closed && realtime !== undefined && realtime.ep !== pool.active()) {
          queueMicrotask(() => switchRealtime("endpoint changed while connecting"));
        }
      });
    return connecting;
  }

  function switchRealtime(reason: string): void {
    if (closed || connecting !== undefined) return;
    if (realtime !== undefined && realtime.ep === pool.active()) return;
    logger.info(`[nxs-pocketbase] moving realtime to ${pool.active().url} (${reason})`);
    realtime?.stop();
    realtime = undefined;
    ensureConnected().catch((e: unknown) => {
      if (!closed) reportError(toTransportError(e, "reconnect"));
    });
  }

  poolUnsubs.push(
    pool.on("failover", (e) => {
      emit("failover", e);
      switchRealtime("failover");
      rePushRecent("failover");
    }),
    pool.on("failback", (e) => {
      emit("failback", e);
      switchRealtime("failback");
      rePushRecent("failback");
    }),
    pool.on("health", (h) => {
      emit("health", h);
      if (realtime === undefined || realtime.ep.url !== h.url || closed) return;
      if (!h.healthy) {
        connectsWhenDown = realtimeConnects;
        return;
      }
      const reconnectedMeanwhile = connectsWhenDown !== undefined && realtimeConnects > connectsWhenDown;
      connectsWhenDown = undefined;
      // The endpoint in use came back. If the SDK reconnected meanwhile (a restart: the stream
      // dropped), its PB_CONNECT already fired onResync. Otherwise (a frozen server resumed: SSE has
      // no heartbeat, the stream looks alive but events may be missing) restart the subscription;
      // the new PB_CONNECT fires onResync.
      if (!reconnectedMeanwhile && connecting === undefined) {
        realtime.stop();
        realtime = undefined;
        switchRealtime("endpoint healthy again");
      }
    }),
  );

  // ---- lease ----------------------------------------------------------------------------------

  /**
   * The lease on this transport's replica id, per server: no two live processes push for one
   * replica id (they would make different changes with the same seqs; the server would keep one
   * and acknowledge the other as a duplicate). Taken before the first push to a server, renewed in
   * the background, released at close. See docs/engine.md, "Replica identity".
   */
  const leaseTtlMs = ownOrigin === undefined ? 0 : Math.max(0, options.leaseTtlMs ?? 10_000);
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
  let leaseTimer: ReturnType<typeof setInterval> | undefined;

  async function leaseOn(ep: Endpoint, release = false): Promise<void> {
    const sentAt = Date.now();
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
      const hw = await highWater(ownOrigin);
      takeoverFloor = Math.max(takeoverFloor ?? 0, hw.seq);
      logger.warn(
        `[nxs-pocketbase] took over the lease of replica id ${ownOrigin} at ${ep.url} from another process; the servers hold its changes up to seq ${hw.seq}`,
      );
      // The replica pulls what that process pushed (realtime leaves this origin out).
      queueMicrotask(fireResync);
    }
  }

  /** Whether the lease at `ep` is missing or past a third of its time (then renewed before a push). */
  function leaseStale(ep: Endpoint): boolean {
    const until = leases.get(ep.url);
    return until === undefined || until - Date.now() < (leaseTtlMs * 2) / 3;
  }

  /** Holds the lease at `ep` (taking or renewing it) before a push there; refuses while another process holds one anywhere. */
  async function ensureLease(ep: Endpoint): Promise<void> {
    if (leaseTtlMs === 0) return;
    // From the first attempt on, also while refused: the renewal takes the lease as soon as the
    // other holder's runs out, and then wakes the replica (see renewLeases).
    if (leaseTimer === undefined && !closed) {
      leaseTimer = setInterval(() => void renewLeases(), Math.max(250, Math.floor(leaseTtlMs / 3)));
      leaseTimer.unref?.();
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
            if (!closed && isNxsError(e) && e.code === ErrorCode.Conflict) reportError(e);
          }
        }),
    );
    // The other holder's lease ran out and ours is taken: the replica need not wait out its push
    // backoff (a resync retries its pushes at once).
    if (refused && leaseConflicts.size === 0 && !closed) fireResync();
  }

  async function releaseLeases(): Promise<void> {
    if (leaseTimer !== undefined) clearInterval(leaseTimer);
    leaseTimer = undefined;
    const held = pool.endpoints.filter((ep) => leases.has(ep.url));
    await Promise.allSettled(held.map((ep) => leaseOn(ep, true)));
  }

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
  poolUnsubs.push(
    pool.on("health", (h) => {
      if (h.healthy) return;
      const c = downControllers.get(h.url);
      downControllers.delete(h.url);
      c?.abort(
        new TransportError(ErrorCode.TransportUnavailable, `push to ${h.url} given up: the server is down`, {
          retryable: true,
        }),
      );
    }),
  );

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
        if (!closed) reportError(toTransportError(e, `${reason}: re-push recent changes to ${ep.url}`));
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
      { signal },
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
    const isDuplicate = (data: Record<string, { code?: string }>) =>
      ["doc", "origin", "seq"].every((k) => data[k]?.code === "validation_not_unique");
    const body = cause.response as { data?: Record<string, unknown> } | undefined;
    const requests = (
      body?.data as { requests?: Record<string, { response?: { data?: unknown } }> } | undefined
    )?.requests;
    if (requests === undefined) {
      // A batch refused as a whole (no per-request detail) is not about one pack.
      if (batch) return undefined;
      const data = (body?.data ?? {}) as Record<string, { code?: string }>;
      return { index: 0, duplicate: isDuplicate(data), response: body };
    }
    const [key, value] = Object.entries(requests)[0] ?? [];
    if (key === undefined) return undefined;
    const data = (value?.response?.data ?? {}) as Record<string, { code?: string }>;
    return { index: Number(key), duplicate: isDuplicate(data), response: value?.response };
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
          emit("push-request", sent);
          return abortable(createRecord(pb, Collections.Changes, body), signal);
        },
        { signal },
      );
      return;
    }
    const batch = ep.client.pb.createBatch();
    for (const p of packs) batch.collection(Collections.Changes).create(encodeChangeRecord(p, node));
    await ep.client.call(
      "push batch",
      () => {
        emit("push-request", sent);
        return abortable(batch.send({ requestKey: null, signal }), signal);
      },
      { signal },
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
    if (leaseTtlMs > 0 && (leaseConflicts.size > 0 || leaseStale(ep)))
      await abortable(ensureLease(ep), signal);
    if (takeoverFloor !== undefined) await checkTakeover(ep, changes, signal);
    return commitChanges(ep, changes, signal);
  }

  /**
   * After a takeover: refuses (`conflict`, for good) local changes whose seq the server holds with
   * another change; lets through the ones it holds identically (a restored outbox being pushed
   * again) or not at all. Once a push goes past the floor, the check is over.
   */
  async function checkTakeover(ep: Endpoint, changes: readonly Change[], signal: AbortSignal): Promise<void> {
    const floor = takeoverFloor;
    const origin = ownOrigin;
    if (floor === undefined || origin === undefined) return;
    const mine = changes.filter((c) => c.origin === origin && c.seq <= floor);
    if (mine.length > 0) {
      const lo = Math.min(...mine.map((c) => c.seq));
      const hi = Math.max(...mine.map((c) => c.seq));
      const raws = await packsCovering(ep, origin, lo, hi, signal);
      const theirs = new Map<number, string>();
      for (const c of decodeAll(ep, raws)) theirs.set(c.seq, c.hlc);
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
    if (last !== undefined && last.seq > floor && takeoverFloor === floor) takeoverFloor = undefined;
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

  async function pushWithFailover(
    changes: readonly Change[],
  ): Promise<{ acked: number; rejected?: NxsError }> {
    const deadline = Date.now() + pushTimeoutMs;
    const attempt = async () => {
      if (closed) throw closedError();
      return pushReporting(pool.active(), changes);
    };
    const retryable = (error: unknown) => !closed && isNxsError(error) && error.retryable;
    try {
      // The first attempt outside p-retry: its bookkeeping cost ~20 us of a push's cold path
      // (latency bench), and most pushes succeed at once.
      return await attempt();
    } catch (error) {
      if (!retryable(error) || Date.now() >= deadline) throw error;
    }
    // Then as p-retry would have gone on: 50 ms, then doubling up to 500 ms, until the deadline.
    await sleep(Math.max(0, Math.min(50, deadline - Date.now())), undefined, {
      signal: closeController.signal,
    });
    return pRetry(attempt, {
      retries: Number.POSITIVE_INFINITY,
      minTimeout: 100,
      maxTimeout: 500,
      maxRetryTime: Math.max(0, deadline - Date.now()),
      signal: closeController.signal,
      shouldRetry: ({ error }) => retryable(error),
    });
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
    if (closed) throw closedError();
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
      if (!isVersion(version)) {
        quarantine(ep, id, new ValidationError(`nxs_snapshots record ${id}: malformed version`));
        continue;
      }
      const claim = unbackedClaim(version, heads);
      if (claim === undefined) return { heads, snapshot: { id, version } };
      quarantine(
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
    quarantine(ep, r.recordId, r.error);
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
    emit("pull-bodies", { url: ep.url, ids, bytes });
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
      if (typeof e.id === "string" && skipped.has(`${ep.url}|${e.id}`)) continue;
      const size =
        typeof e.bytes === "number" && Number.isSafeInteger(e.bytes) && e.bytes >= 0 ? e.bytes : undefined;
      if (size === undefined || e.changes !== null || typeof e.id !== "string") {
        step.push(e); // a small pack (inline), or a malformed envelope (quarantined on decoding)
        continue;
      }
      if (size > maxPackBytes) {
        quarantineChanges(
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
          const changes = decodeAll(ep, raws).filter((c) => {
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

  // ---- the port -------------------------------------------------------------------------------

  return {
    docId,
    ...(ownOrigin === undefined ? {} : { origin: ownOrigin }),
    highWater,
    async connect() {
      if (closed) throw closedError();
      pool.start();
      if (realtime !== undefined && connecting === undefined) return;
      await ensureConnected();
    },

    async close() {
      if (closed) return;
      closed = true;
      // Released so that a restart takes over at once; bounded: a frozen server must not hold close().
      await Promise.race([releaseLeases(), sleep(1000, undefined, { ref: false })]);
      closeController.abort(closedError());
      for (const c of downControllers.values()) c.abort(closedError());
      downControllers.clear();
      realtime?.stop();
      realtime = undefined;
      for (const u of poolUnsubs) u();
      pool.stop();
      setState(TransportState.Closed);
      subscribers.clear();
    },

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
      if (r.rejected !== undefined) reportError(r.rejected);
      rememberAcked(changes.slice(0, r.acked));
      return { acked: r.acked };
    },

    pull(since) {
      return {
        [Symbol.asyncIterator]: async function* () {
          if (closed) throw closedError();
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

    subscribe(listener) {
      subscribers.add(listener);
      if (realtime !== undefined && state === TransportState.Connected) {
        // Connected already: the new subscriber missed the resync of this connection.
        queueMicrotask(() => {
          if (subscribers.has(listener)) listener.onResync();
        });
      }
      return () => {
        subscribers.delete(listener);
      };
    },

    on: events.on,

    status() {
      return {
        state,
        endpoint: pool.active().url,
        endpoints: pool.health(),
        nodeId: pool.active().client.nodeId,
      };
    },
  };
}
