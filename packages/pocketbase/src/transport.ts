import {
  createEmitter,
  createReportThrottle,
  createSeededRandom,
  createTransportListeners,
  type DocId,
  defaultLogger,
  ErrorCode,
  isNxsError,
  type Logger,
  NxsError,
  type Random,
  type RetryPolicy,
  type Scheduler,
  type Transport,
  TransportError,
  TransportState,
  throttleKey,
} from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import type PocketBase from "pocketbase";
import { type ChangeReader, createChangeReader, type PullBodiesEvent } from "./change-reader.js";
import { type ChangeWriter, createChangeWriter, type PushRequestEvent } from "./change-writer.js";
import type { NodeAuth, RetryOptions } from "./client.js";
import {
  createEndpointPool,
  type EndpointHealth,
  type EndpointPool,
  type EndpointPoolEvents,
  type FailoverOptions,
} from "./failover.js";
import { createRealtimeSession, type RealtimeSession } from "./realtime-session.js";
import { createRecordGate, type QuarantineEvent } from "./record-gate.js";
import type { DecodeChangeOptions } from "./records.js";
import { Collections, MAX_CHANGES_BYTES } from "./schema.js";

export type { QuarantineEvent } from "./record-gate.js";

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
  /**
   * Retry policy of single requests (network errors and 5xx only) of pulls and connects. A push's
   * requests are not retried there: a push has one retry layer, `pushTimeoutMs`/`pushRetry`.
   */
  readonly retry?: RetryOptions;
  /**
   * The bound of a push's retries: a push that fails retryably is tried again (on whichever
   * endpoint is active, after a `pushRetry` backoff) until this many ms after its first attempt,
   * then fails with the last error (`transport/unavailable`) and the caller (a replica's backoff)
   * takes over. Default 10 000 ms; 0: one attempt per push.
   */
  readonly pushTimeoutMs?: number;
  /** The backoff between a push's attempts. Default `{ minMs: 50, maxMs: 500, factor: 2 }`. */
  readonly pushRetry?: RetryPolicy;
  /** The backoff of realtime connect attempts (retried until one works). Default `{ minMs: 100, maxMs: 2000, factor: 2 }`. */
  readonly connectRetry?: RetryPolicy;
  /**
   * The clock and timer of every delay of the transport (retries, leases, health polls, request
   * timeouts of `close()`). Default `createTimerScheduler()` of `@nxs-sync/core/node`; tests pass
   * `createManualScheduler()`.
   */
  readonly scheduler?: Scheduler;
  /** The jitter of the backoffs. Default: seeded from `Math.random()`. */
  readonly random?: Random;
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
  "push-request": PushRequestEvent;
  /**
   * A pull fetched the bodies of change records by id from `url` (those too large to come inline
   * with the page of envelopes), `bytes` in all as listed. For observability: what a pull read.
   */
  "pull-bodies": PullBodiesEvent;
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

const closedError = () => new TransportError(ErrorCode.Closed, "PocketBase transport is closed");

/**
 * Creates the PocketBase transport of one document: a thin composition of a
 * {@link RealtimeSession} (realtime as a hint, a resync after every (re)connect, failover of the
 * subscription), a change writer (batched idempotent pushes, leases) and a change reader (paged
 * pulls since a version vector), over one endpoint pool and one scheduler.
 * @param options - Endpoints, node credentials, document and tuning.
 * @returns A transport; call `connect()` first.
 * @throws NxsError `config/invalid` when `endpoints` is empty or malformed, or `minAcks` is not
 *   between 1 and the number of endpoints.
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
  if (!Number.isInteger(minAcks) || minAcks < 1 || minAcks > options.endpoints.length) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `minAcks ${minAcks} must be an integer between 1 and the number of endpoints (${options.endpoints.length})`,
    );
  }
  const logger = options.logger ?? defaultLogger;
  const scheduler = options.scheduler ?? createTimerScheduler();
  const random = options.random ?? createSeededRandom(Math.floor(Math.random() * 2 ** 32));
  const reportThrottle = createReportThrottle({ now: scheduler.now });
  const docId = options.docId;
  const ownOrigin = options.origin;
  const pool: EndpointPool = createEndpointPool({
    endpoints: options.endpoints,
    auth: options.auth,
    requestTimeoutMs: options.requestTimeoutMs,
    retry: options.retry,
    failover: options.failover,
    logger,
    scheduler,
    // The jitter of every backoff on the pool, pushes' included (their one retry layer).
    random,
  });

  let state: TransportState = TransportState.Disconnected;
  let closed = false;
  const subscribers = createTransportListeners({
    tag: "[nxs-pocketbase]",
    logger,
    isClosed: () => closed,
  });
  const events = createEmitter<PocketBaseTransportEvents>((error, event) =>
    logger.error(`[nxs-pocketbase] ${String(event)} listener threw`, error),
  );
  const emit = events.emit;

  /**
   * Reports an error of background work. Subscribers (a replica) get every occurrence and report
   * it themselves (event, `onError`, their logger, throttled there): the transport then does not
   * log it a second time. Without one, the transport logs it; its own logger line and `onError`
   * get a repeated identical error once per minute, with the count held back.
   */
  function reportError(error: Error): void {
    const handled = subscribers.error(error);
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
    if (!handled) logger.warn(`[nxs-pocketbase] ${reported.message}`);
    try {
      options.onError?.(reported);
    } catch (e) {
      logger.error("[nxs-pocketbase] onError threw", e);
    }
  }

  function setState(next: TransportState): void {
    if (state === next || (closed && next !== TransportState.Closed)) return;
    state = next;
    emit("state", next);
    subscribers.state(next);
  }

  const fireResync = subscribers.resync;

  const decode: DecodeChangeOptions = { ...options.decode, docs: [docId] };
  const gate = createRecordGate({
    decode,
    onQuarantine(event) {
      emit("quarantine", event);
      reportError(event.error);
    },
  });

  const reader: ChangeReader = createChangeReader({
    pool,
    docId,
    gate,
    pageSize: options.pageSize ?? 1000,
    maxPackBytes: decode.maxChangesBytes ?? MAX_CHANGES_BYTES,
    logger,
    isClosed: () => closed,
    closedError,
    onBodies: (e) => emit("pull-bodies", e),
  });

  const writer: ChangeWriter = createChangeWriter({
    pool,
    docId,
    ...(options.author === undefined ? {} : { author: options.author }),
    ...(ownOrigin === undefined ? {} : { origin: ownOrigin }),
    minAcks,
    // Readers quarantine packs of more than 10 000 changes (their default), and the server refuses
    // a `changes` field above MAX_CHANGES_BYTES (the estimate may undercount, hence the margin).
    packLimits: {
      packSize: Math.min(10_000, Math.max(1, options.packSize ?? 1000)),
      packMaxBytes: Math.min(MAX_CHANGES_BYTES / 4, Math.max(1, options.packMaxBytes ?? 64 * 1024)),
    },
    batchSize: options.batchSize ?? 50,
    batchMaxBytes: options.batchMaxBytes ?? 16 * 1024 * 1024,
    rePushWindow: options.rePushWindow ?? 1000,
    leaseTtlMs: options.leaseTtlMs ?? 10_000,
    pushTimeoutMs: options.pushTimeoutMs ?? 10_000,
    ...(options.pushRetry === undefined ? {} : { retry: options.pushRetry }),
    scheduler,
    gate,
    logger,
    highWater: (origin) => reader.highWater(origin),
    reportError: (e) => {
      if (!closed) reportError(e);
    },
    wake: () => {
      if (!closed) fireResync();
    },
    onRequest: (e) => emit("push-request", e),
  });

  // Realtime: this doc's records, without this replica's own when its origin is known (the
  // server then saves one serialization and one message per write); else its echo is dropped here.
  const deliver = subscribers.deliver;

  const session: RealtimeSession = createRealtimeSession({
    pool,
    collection: Collections.Changes,
    filter: (pb: PocketBase) =>
      ownOrigin === undefined
        ? pb.filter("doc = {:doc}", { doc: docId })
        : pb.filter("doc = {:doc} && origin != {:origin}", { doc: docId, origin: ownOrigin }),
    onEvent(e, ep) {
      if (closed || e?.action !== "create" || writer.isEcho(e.record)) return;
      const changes = gate.decodeAll(ep, [e.record]);
      if (changes.length > 0) deliver(changes);
    },
    onCatchUp: () => fireResync(),
    onState: setState,
    onError: reportError,
    scheduler,
    random,
    ...(options.connectRetry === undefined ? {} : { retry: options.connectRetry }),
    logger,
  });

  const poolUnsubs = [
    pool.on("failover", (e) => {
      emit("failover", e);
      writer.rePushRecent("failover");
    }),
    pool.on("failback", (e) => {
      emit("failback", e);
      writer.rePushRecent("failback");
    }),
    pool.on("health", (h) => emit("health", h)),
  ];

  return {
    docId,
    ...(ownOrigin === undefined ? {} : { origin: ownOrigin }),
    highWater: (origin) => {
      if (closed) return Promise.reject(closedError());
      return reader.highWater(origin);
    },
    async connect() {
      if (closed) throw closedError();
      pool.start();
      try {
        await session.connect();
      } catch (e) {
        if (closed) throw closedError();
        throw e;
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      await writer.close();
      session.stop();
      for (const u of poolUnsubs) u();
      pool.stop();
      setState(TransportState.Closed);
      subscribers.clear();
    },

    push: (changes) => (closed ? Promise.reject(closedError()) : writer.push(changes)),

    pull: (since) => reader.pull(since),

    subscribe(listener) {
      const remove = subscribers.add(listener);
      if (session.endpoint() !== undefined && state === TransportState.Connected) {
        // Connected already: the new subscriber missed the resync of this connection.
        queueMicrotask(() => {
          if (subscribers.has(listener)) listener.onResync();
        });
      }
      return remove;
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
