import {
  type Cancel,
  callGuarded,
  computeBackoff,
  ErrorCode,
  isNxsError,
  type Logger,
  type Random,
  type RetryPolicy,
  type Scheduler,
  TransportError,
  TransportState,
} from "@nxs-sync/core";
import type PocketBase from "pocketbase";
import { toTransportError } from "./client.js";
import type { Endpoint, EndpointPool } from "./failover.js";

/** One realtime message of a record subscription, as the server sent it (unchecked). */
export interface RealtimeEvent {
  readonly action?: unknown;
  readonly record?: unknown;
}

/** What a {@link RealtimeLink} calls back while a subscription is open. */
export interface RealtimeHandlers {
  /** A record event of the subscribed collection. */
  onEvent(event: RealtimeEvent): void;
  /** `PB_CONNECT`: the stream (re)connected and the topics are submitted. */
  onConnect(): void;
  /** The stream dropped (the SDK reconnects on its own; events are lost until `onConnect`). */
  onDisconnect(): void;
}

/** What a subscription listens to. */
export interface RealtimeTopic {
  /** The collection whose records are watched (`<collection>/*`). */
  readonly collection: string;
  /** The server-side filter of the events, built with `pb.filter`. */
  readonly filter: (pb: PocketBase) => string;
  /**
   * More collections on the same connection (`<name>/*`, without a filter): one session for every
   * collection a replicator copies from one server. An event's record names its collection
   * (`collectionName`). Default: none.
   */
  readonly also?: readonly string[];
  /**
   * Custom topics on the same connection (messages a server's hooks send, e.g. `nxs/records` of the
   * `records` piece): each message arrives as an event whose `action` is the topic and whose
   * `record` is the message's data. Default: none.
   */
  readonly topics?: readonly string[];
}

/**
 * The seam between a {@link RealtimeSession} and the SDK: opens one subscription on one endpoint.
 * {@link pocketBaseRealtimeLink} is the real one; unit tests pass a fake.
 */
export interface RealtimeLink {
  /**
   * Authenticates, subscribes to `topic` and to `PB_CONNECT` on `ep`, and resolves once the topics
   * are submitted; cleans up after itself when it fails.
   * @returns The function that closes the subscription.
   * @throws TransportError as `toTransportError` maps it.
   */
  open(ep: Endpoint, topic: RealtimeTopic, handlers: RealtimeHandlers): Promise<() => void>;
}

/** A subscription's options: its filter, none when empty (every record). */
const filterOption = (filter: string) => (filter === "" ? undefined : { filter });

/** The SDK's realtime (`pb.realtime`) of the endpoint's client, behind {@link RealtimeLink}. */
export const pocketBaseRealtimeLink: RealtimeLink = {
  async open(ep, topic, handlers) {
    const pb = ep.client.pb;
    const close = (): void => {
      pb.realtime.onDisconnect = undefined;
      pb.realtime.unsubscribe().catch(() => {});
    };
    try {
      await ep.client.authenticate();
      pb.realtime.onDisconnect = (subs) => {
        if (subs.length > 0) handlers.onDisconnect();
      };
      await ep.client.call(
        "realtime subscribe",
        async (client) => {
          // The SDK fires PB_CONNECT listeners after the topics were submitted, so a catch-up query
          // started from onConnect covers everything the subscription may have missed.
          await Promise.all([
            client
              .collection(topic.collection)
              .subscribe("*", (e) => handlers.onEvent(e), filterOption(topic.filter(client))),
            ...(topic.also ?? []).map((name) =>
              client.collection(name).subscribe("*", (e) => handlers.onEvent(e)),
            ),
            ...(topic.topics ?? []).map((name) =>
              client.realtime.subscribe(name, (data) => handlers.onEvent({ action: name, record: data })),
            ),
            client.realtime.subscribe("PB_CONNECT", () => handlers.onConnect()),
          ]);
        },
        { retry: false },
      );
    } catch (e) {
      close();
      throw e;
    }
    return close;
  },
};

/** The backoff of a session's connect attempts, unless the caller sets one. */
export const DEFAULT_REALTIME_RETRY: RetryPolicy = Object.freeze({ minMs: 100, maxMs: 2000, factor: 2 });

/** Options of {@link createRealtimeSession}. */
export interface RealtimeSessionOptions extends RealtimeTopic {
  /** The servers: the session follows the pool's active endpoint (failover and failback). */
  readonly pool: EndpointPool;
  /**
   * Pins the session to this endpoint of the pool instead of following the active one (a
   * replicator's session per server): it connects only there, retrying while it is down, and
   * restarts there when the pool sees it healthy again after a pause (a suspected gap).
   */
  readonly endpoint?: Endpoint;
  /** A record event from `ep` (only while this session is running and `ep` is its endpoint). */
  readonly onEvent: (event: RealtimeEvent, ep: Endpoint) => void;
  /**
   * Called after every (re)connect (each `PB_CONNECT`, on whichever endpoint): events sent while
   * the session was away are lost, so the owner runs its catch-up query here (realtime is a hint,
   * the query is the truth).
   */
  readonly onCatchUp: (ep: Endpoint) => void;
  /** The session's state changed (`connecting`, `connected`). */
  readonly onState?: (state: TransportState) => void;
  /** A failed connect attempt that will be retried (already typed). */
  readonly onError?: (error: Error) => void;
  /** The clock and timer of the connect retries. */
  readonly scheduler: Scheduler;
  /** The jitter of the connect backoff. */
  readonly random: Random;
  /** The backoff of connect attempts (they go on until one works or the session stops). Default {@link DEFAULT_REALTIME_RETRY}. */
  readonly retry?: RetryPolicy;
  readonly logger: Logger;
  /** The SDK seam. Default {@link pocketBaseRealtimeLink}. */
  readonly link?: RealtimeLink;
}

/**
 * A realtime subscription to one collection that follows an {@link EndpointPool}: a catch-up
 * after every (re)connect, a restart of the subscription when a gap is suspected (the endpoint was
 * seen down while its stream looked alive, or the owner says so), a move to the new endpoint on a
 * failover or failback, and connect retries on the scheduler. The piece the transport's change
 * feed, the queue's wake-up and the config store's watch build on.
 *
 * A session owns the realtime connection of the clients it subscribes with
 * ({@link pocketBaseRealtimeLink} closes with `pb.realtime.unsubscribe()` and takes the SDK's
 * single `onDisconnect` slot): no two sessions may share a client. Give each session a pool of its
 * own, or pin each session to its own endpoint of one pool (`endpoint`, as the replicator does).
 */
export interface RealtimeSession {
  /**
   * Opens the subscription on the active endpoint (retrying until it works); resolves once it is
   * open (its first `PB_CONNECT` follows). A no-op while one is open.
   * @throws TransportError the first error that retrying cannot help (refused credentials, a
   *   refused subscription), or `closed` when the session stops first.
   */
  connect(): Promise<void>;
  /** A gap is suspected: restarts the subscription (its new `PB_CONNECT` triggers the catch-up). */
  resync(reason: string): void;
  /** Closes the subscription and cancels pending retries; the session cannot be used again. */
  stop(): void;
  /** The endpoint of the open subscription, if any. */
  endpoint(): Endpoint | undefined;
}

interface Open {
  readonly ep: Endpoint;
  readonly close: () => void;
}

/**
 * Creates a {@link RealtimeSession}.
 * @param options - Pool, topic, callbacks, scheduler and backoff.
 * @returns A stopped session; call `connect()`.
 * @example
 * ```ts
 * const pool = createEndpointPool({ endpoints, auth, scheduler });
 * const session = createRealtimeSession({
 *   pool,
 *   collection: "nxs_changes",
 *   filter: (client) => client.filter("doc = {:d}", { d: docId }),
 *   onEvent: (e) => logger.info(`event ${String(e.action)}`),
 *   onCatchUp: () => logger.info("(re)connected: query what the stream may have missed"),
 *   scheduler,
 *   random: createSeededRandom(1),
 *   logger,
 * });
 * pool.start();
 * await session.connect();
 * ```
 */
export function createRealtimeSession(options: RealtimeSessionOptions): RealtimeSession {
  const { pool, scheduler, random, logger } = options;
  const link = options.link ?? pocketBaseRealtimeLink;
  const retry = options.retry ?? DEFAULT_REALTIME_RETRY;
  const topic: RealtimeTopic = {
    collection: options.collection,
    filter: options.filter,
    ...(options.also === undefined ? {} : { also: options.also }),
    ...(options.topics === undefined ? {} : { topics: options.topics }),
  };
  /** Where the session connects: its pinned endpoint, else the pool's active one. */
  const target = (): Endpoint => options.endpoint ?? pool.active();
  let stopped = false;
  let open: Open | undefined;
  let connecting: Promise<void> | undefined;
  /** Cancels the pending backoff of the connect loop and fails it `closed`. */
  let cancelWait: (() => void) | undefined;
  /** PB_CONNECTs seen so far, and how many had been seen when the open endpoint went down. */
  let connects = 0;
  let connectsWhenDown: number | undefined;
  const closedError = () => new TransportError(ErrorCode.Closed, "realtime session is stopped");

  // The owner's callbacks: a throw or a rejected promise is logged, never an unhandled rejection.
  const logFailure = (failed: Error): void =>
    logger.error(`[nxs-pocketbase] realtime ${failed.message}`, failed.cause);

  function setState(state: TransportState): void {
    callGuarded("onState", options.onState, [state], logFailure);
  }

  function report(error: Error): void {
    callGuarded("onError", options.onError, [error], logFailure);
  }

  async function openOn(ep: Endpoint): Promise<Open> {
    let live = true;
    const handlers: RealtimeHandlers = {
      onEvent(e) {
        if (!live || stopped) return;
        try {
          options.onEvent(e, ep);
        } catch (err) {
          logger.error("[nxs-pocketbase] realtime onEvent threw", err);
        }
      },
      onConnect() {
        if (!live || stopped) return;
        connects++;
        pool.reportSuccess(ep);
        setState(TransportState.Connected);
        try {
          options.onCatchUp(ep);
        } catch (err) {
          logger.error("[nxs-pocketbase] realtime onCatchUp threw", err);
        }
      },
      onDisconnect() {
        if (!live || stopped) return;
        setState(TransportState.Connecting);
        pool.reportFailure(ep, "realtime connection dropped");
      },
    };
    const close = await link.open(ep, topic, handlers);
    return {
      ep,
      close() {
        live = false;
        close();
      },
    };
  }

  async function connectOnce(): Promise<void> {
    const ep = target();
    try {
      const o = await openOn(ep);
      if (stopped) {
        o.close();
        throw closedError();
      }
      open = o;
      pool.reportSuccess(ep);
    } catch (e) {
      if (stopped) throw closedError();
      const err = toTransportError(e, `connect to ${ep.url}`);
      if (err.code === ErrorCode.TransportUnavailable) pool.reportFailure(ep, err.message);
      throw err;
    }
  }

  function wait(ms: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const cancel: Cancel = scheduler.schedule(ms, () => {
        cancelWait = undefined;
        resolve();
      });
      cancelWait = () => {
        cancel();
        cancelWait = undefined;
        reject(closedError());
      };
    });
  }

  /** Connect attempts on the active endpoint until one works; network errors, timeouts and 5xx are retried. */
  async function connectLoop(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (stopped) throw closedError();
      try {
        await connectOnce();
        return;
      } catch (e) {
        // Wrong credentials or a refused subscription: retrying cannot help.
        if (stopped || !isNxsError(e) || !e.retryable) throw e;
        // Every failed attempt is reported (the owner throttles repeats).
        report(e);
        await wait(computeBackoff(attempt, retry, random));
      }
    }
  }

  function connect(): Promise<void> {
    if (stopped) return Promise.reject(closedError());
    if (connecting !== undefined) return connecting;
    if (open !== undefined) return Promise.resolve();
    setState(TransportState.Connecting);
    connecting = connectLoop()
      .catch((e: unknown) => {
        if (stopped) throw closedError();
        throw toTransportError(e, "connect");
      })
      .finally(() => {
        connecting = undefined;
        // The pool may have switched endpoint while this connect was under way.
        if (!stopped && open !== undefined && open.ep !== target()) {
          queueMicrotask(() => follow("endpoint changed while connecting"));
        }
      });
    return connecting;
  }

  /** Moves the subscription to the active endpoint (when it is elsewhere or closed). */
  function follow(reason: string): void {
    if (stopped || connecting !== undefined) return;
    if (open !== undefined && open.ep === target()) return;
    logger.info(`[nxs-pocketbase] moving realtime to ${target().url} (${reason})`);
    restart(reason);
  }

  function restart(reason: string): void {
    open?.close();
    open = undefined;
    connect().catch((e: unknown) => {
      if (!stopped) report(toTransportError(e, `reconnect (${reason})`));
    });
  }

  const offs = [
    pool.on("failover", () => follow("failover")),
    pool.on("failback", () => follow("failback")),
    pool.on("health", (h) => {
      if (open === undefined || open.ep.url !== h.url || stopped) return;
      if (!h.healthy) {
        connectsWhenDown = connects;
        return;
      }
      const reconnectedMeanwhile = connectsWhenDown !== undefined && connects > connectsWhenDown;
      connectsWhenDown = undefined;
      // The endpoint in use came back. If the SDK reconnected meanwhile (a restart: the stream
      // dropped), its PB_CONNECT already ran the catch-up. Otherwise (a frozen server resumed: SSE
      // has no heartbeat, the stream looks alive but events may be missing: a gap) restart the
      // subscription; the new PB_CONNECT runs the catch-up.
      if (!reconnectedMeanwhile && connecting === undefined) restart("endpoint healthy again");
    }),
  ];

  return {
    connect,
    resync(reason) {
      if (stopped || connecting !== undefined) return;
      logger.info(`[nxs-pocketbase] restarting realtime on ${target().url} (${reason})`);
      restart(reason);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      cancelWait?.();
      open?.close();
      open = undefined;
      for (const off of offs) off();
    },
    endpoint: () => open?.ep,
  };
}
