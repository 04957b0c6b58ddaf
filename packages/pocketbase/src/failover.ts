import {
  type Cancel,
  computeBackoff,
  createEmitter,
  createSeededRandom,
  ErrorCode,
  isNxsError,
  type Logger,
  NxsError,
  type Random,
  type RetryPolicy,
  type Scheduler,
  silentLogger,
} from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import {
  assertEndpointUrl,
  createPocketBaseClient,
  type NodeAuth,
  type PocketBaseClient,
  type RetryOptions,
} from "./client.js";

/** When to leave the endpoint in use and when to come back to the preferred one. */
export interface FailoverOptions {
  /**
   * Consecutive failures (requests, health checks, SSE drops) that mark an endpoint down. Default 2.
   * An endpoint that has not answered since the pool was made is down at its first failure: before
   * any success, nothing says a refusal is a blip (a process starting while every server is down
   * learns it from its first failed request or health check).
   */
  readonly failureThreshold?: number;
  /** An endpoint failing without success for this long is down, whatever the count. Default 1000 ms. */
  readonly downAfterMs?: number;
  /** Health poll interval per endpoint. Default 500 ms. */
  readonly healthIntervalMs?: number;
  /** Timeout of one health check. Default 750 ms. */
  readonly healthTimeoutMs?: number;
  /** Go back to the preferred (first) endpoint once it has been healthy this long. Default 5000 ms; `Infinity` disables failback. */
  readonly failbackAfterMs?: number;
  /**
   * False: the pool only tracks health (polls, reported outcomes, `health` events) and never
   * switches: the first endpoint stays active. For an owner that uses every endpoint at once (the
   * replicator). Default true.
   */
  readonly switchEndpoints?: boolean;
}

/** Health of one endpoint, as reported by {@link EndpointPool.health}. */
export interface EndpointHealth {
  readonly url: string;
  /** False once `failureThreshold` failures or `downAfterMs` of failures were seen, until a success. */
  readonly healthy: boolean;
  /** Consecutive failures. */
  readonly failures: number;
  /** Whether this is the endpoint in use. */
  readonly active: boolean;
}

/** One server of the pool: its client and health. */
export interface Endpoint {
  /** Position in the configured list; 0 is the preferred endpoint. */
  readonly index: number;
  readonly url: string;
  readonly client: PocketBaseClient;
}

/** Why the pool switched endpoint. */
export interface SwitchEvent {
  readonly from: string;
  readonly to: string;
  readonly reason: string;
}

/** Events of the pool (and of the transport that owns it). */
export interface EndpointPoolEvents {
  /** The endpoint in use failed; another one took over. */
  failover: SwitchEvent;
  /** The preferred endpoint was healthy long enough; it is in use again. */
  failback: SwitchEvent;
  /** An endpoint changed health. */
  health: {
    readonly url: string;
    readonly healthy: boolean;
    /** Why it went down (the failure that crossed the threshold); absent when it came back. */
    readonly reason?: string;
  };
}

/** The backoff of {@link EndpointPool.call} between attempts, unless the caller passes one. */
export const DEFAULT_CALL_RETRY: RetryPolicy = Object.freeze({ minMs: 50, maxMs: 1000, factor: 2 });

/** Options of {@link EndpointPool.call}. */
export interface PoolCallOptions {
  /**
   * Bound of the whole call, failovers included: no attempt starts later than `timeoutMs` after the
   * first one (the last backoff is cut short to end at the bound). 0: one attempt.
   */
  readonly timeoutMs: number;
  /** The backoff between attempts. Default {@link DEFAULT_CALL_RETRY}. */
  readonly retry?: RetryPolicy;
  /**
   * Which failures are tried again (after a backoff, on the endpoint active then). Default:
   * `transport/unavailable` only. An unavailable server is reported to the pool either way.
   */
  readonly retryIf?: (error: NxsError) => boolean;
  /**
   * Cancels the call: a backoff under way ends at once, no attempt starts after, and the call
   * rejects with the signal's reason (an attempt in flight is the caller's to abort).
   */
  readonly signal?: AbortSignal;
}

/**
 * Servers in order of preference, with health tracking and switching. The owner reports request
 * outcomes; the pool polls `/api/health` in the background, switches to the next healthy endpoint
 * when the active one is down, and back to the preferred one after `failbackAfterMs` of health.
 */
export interface EndpointPool {
  readonly endpoints: readonly Endpoint[];
  /** The endpoint in use. */
  active(): Endpoint;
  /** Healthy endpoints, the active one first, then in order of preference. */
  healthy(): readonly Endpoint[];
  /** Reports a successful request to `ep`. */
  reportSuccess(ep: Endpoint): void;
  /** Reports a failed request (or SSE drop) at `ep`; may switch endpoint. */
  reportFailure(ep: Endpoint, reason: string): void;
  /** Per-endpoint health. */
  health(): readonly EndpointHealth[];
  /**
   * The one retry layer of an operation: runs `fn` on the active endpoint and reports the outcome.
   * An unreachable server (`transport/unavailable`) is reported as a failure (so the pool may fail
   * over), then `fn` runs again on whichever endpoint is active after a backoff on the pool's
   * scheduler, until `options.timeoutMs` after the first attempt. `fn` should make one attempt
   * itself (e.g. `client.call(..., { retry: false })`) so that retries do not stack.
   * @param what - Short description for the log.
   * @param fn - The operation against one endpoint.
   * @param options - The bound (`timeoutMs`) and the backoff (`retry`).
   * @returns What `fn` resolved to.
   * @throws NxsError the error of the last attempt: any error other than `transport/unavailable` at
   *   once, `transport/unavailable` once the bound ran out; `closed` when the pool stops meanwhile.
   * @example
   * ```ts
   * import { createEndpointPool } from "@nxs-sync/pocketbase";
   * const pool = createEndpointPool({ endpoints: ["http://127.0.0.1:8090", "http://127.0.0.1:8091"] });
   * pool.start();
   * const page = await pool.call(
   *   "list changes",
   *   (ep) => ep.client.call("list changes", (pb) => pb.collection("nxs_changes").getList(1, 10), { retry: false }),
   *   { timeoutMs: 5_000 },
   * );
   * console.log(page.totalItems);
   * pool.stop();
   * ```
   */
  call<T>(what: string, fn: (ep: Endpoint) => Promise<T>, options: PoolCallOptions): Promise<T>;
  /** Starts health polling. */
  start(): void;
  /** Stops health polling and closes every client. */
  stop(): void;
  /** Registers a listener; returns the function that removes it. */
  on<E extends keyof EndpointPoolEvents>(
    event: E,
    listener: (payload: EndpointPoolEvents[E]) => void,
  ): () => void;
}

/** Options of {@link createEndpointPool}. */
export interface EndpointPoolOptions {
  /**
   * Server base URLs, preferred first; an entry `{ url, auth }` logs in to that server with its own
   * credentials (a replicator's servers may each have their own account).
   */
  readonly endpoints: readonly (string | { readonly url: string; readonly auth?: NodeAuth })[];
  /** The credentials of every endpoint that does not carry its own. */
  readonly auth?: NodeAuth;
  readonly requestTimeoutMs?: number;
  readonly retry?: RetryOptions;
  readonly failover?: FailoverOptions;
  readonly logger?: Logger;
  /**
   * The clock and timer of health polling and of the failover/failback timings. Default
   * `createTimerScheduler()` of `@nxs-sync/core/node`; tests pass `createManualScheduler()`.
   */
  readonly scheduler?: Scheduler;
  /** Time source (ms), overriding `scheduler.now` (kept for existing callers). */
  readonly now?: () => number;
  /** The jitter of {@link EndpointPool.call}'s backoff. Default seeded from `Math.random()`. */
  readonly random?: Random;
}

interface State {
  healthy: boolean;
  /** Whether the endpoint answered since the pool was made (until then one failure marks it down). */
  answered: boolean;
  failures: number;
  failingSince: number | undefined;
  healthySince: number | undefined;
}

/**
 * Creates the endpoint pool behind a transport or replicator.
 * @param options - Endpoints (at least one), credentials and failover timings.
 * @returns A stopped pool; call `start()`.
 * @throws NxsError `config/invalid` when `endpoints` is empty, or one of them is not an `http(s)://`
 *   URL with a host (the message says which and how to write it).
 */
export function createEndpointPool(options: EndpointPoolOptions): EndpointPool {
  if (options.endpoints.length === 0) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      'endpoints is empty: list at least one server base URL, e.g. ["http://127.0.0.1:8090"]',
    );
  }
  const configs = options.endpoints.map((e) => (typeof e === "string" ? { url: e, auth: options.auth } : e));
  for (const [i, { url }] of configs.entries()) assertEndpointUrl(url, `endpoints[${i}]`);
  const logger = options.logger ?? silentLogger;
  const scheduler = options.scheduler ?? createTimerScheduler();
  const now = options.now ?? scheduler.now;
  const f = options.failover ?? {};
  const threshold = f.failureThreshold ?? 2;
  const downAfterMs = f.downAfterMs ?? 1000;
  const intervalMs = f.healthIntervalMs ?? 500;
  const healthTimeoutMs = f.healthTimeoutMs ?? 750;
  const failbackAfterMs = f.failbackAfterMs ?? 5000;
  const switching = f.switchEndpoints ?? true;

  const endpoints: Endpoint[] = configs.map(({ url, auth }, index) => ({
    index,
    url,
    client: createPocketBaseClient({
      url,
      auth,
      requestTimeoutMs: options.requestTimeoutMs,
      retry: options.retry ?? { retries: 1, minTimeoutMs: 50, maxTimeoutMs: 200 },
      logger,
    }),
  }));
  const states: State[] = endpoints.map(() => ({
    healthy: true,
    answered: false,
    failures: 0,
    failingSince: undefined,
    healthySince: now(),
  }));
  let activeIndex = 0;
  /** The pending health round while the pool runs. */
  let timer: Cancel | undefined;
  const polling = new Set<number>();
  const events = createEmitter<EndpointPoolEvents>((error, event) =>
    logger.error(`[nxs-pocketbase] ${String(event)} listener threw`, error),
  );

  const emit = events.emit;
  const random = options.random ?? createSeededRandom(Math.floor(Math.random() * 2 ** 31));
  let stopped = false;
  const stoppedError = () => new NxsError(ErrorCode.Closed, "endpoint pool is stopped");
  /** Backoffs of calls under way: `stop` cancels them and rejects their calls with `closed`. */
  const waits = new Set<{ readonly cancel: Cancel; readonly reject: (error: Error) => void }>();
  /** Resolves after `ms` on the scheduler; rejects when the pool stops or `signal` aborts first. */
  const wait = (ms: number, signal: AbortSignal | undefined) =>
    new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        w.cancel();
        waits.delete(w);
        reject(signal?.reason);
      };
      // The scheduler never runs a task synchronously: `w` exists when this one runs.
      const w = {
        reject,
        cancel: scheduler.schedule(ms, () => {
          waits.delete(w);
          signal?.removeEventListener("abort", onAbort);
          resolve();
        }),
      };
      waits.add(w);
      signal?.addEventListener("abort", onAbort, { once: true });
    });

  async function call<T>(what: string, fn: (ep: Endpoint) => Promise<T>, opts: PoolCallOptions): Promise<T> {
    const deadline = now() + Math.max(0, opts.timeoutMs);
    for (let attempt = 0; ; attempt++) {
      if (stopped) throw stoppedError();
      if (opts.signal?.aborted) throw opts.signal.reason;
      const ep = endpoints[activeIndex]!;
      try {
        const result = await fn(ep);
        success(ep.index);
        return result;
      } catch (error) {
        if (!isNxsError(error)) throw error;
        const unavailable = error.code === ErrorCode.TransportUnavailable;
        if (unavailable) failure(ep.index, error.message);
        if (!(opts.retryIf?.(error) ?? unavailable)) throw error;
        const left = deadline - now();
        if (stopped || left <= 0 || opts.signal?.aborted) throw error;
        logger.debug(`[nxs-pocketbase] ${what} failed at ${ep.url}, retrying: ${error.message}`);
        await wait(
          Math.min(left, computeBackoff(attempt, opts.retry ?? DEFAULT_CALL_RETRY, random)),
          opts.signal,
        );
      }
    }
  }

  function setHealthy(i: number, healthy: boolean, reason?: string): void {
    const s = states[i]!;
    if (s.healthy === healthy) return;
    s.healthy = healthy;
    s.healthySince = healthy ? now() : undefined;
    logger.info(`[nxs-pocketbase] endpoint ${endpoints[i]!.url} is ${healthy ? "healthy" : "down"}`);
    emit(
      "health",
      healthy ? { url: endpoints[i]!.url, healthy } : { url: endpoints[i]!.url, healthy, reason },
    );
  }

  function switchTo(i: number, kind: "failover" | "failback", reason: string): void {
    if (i === activeIndex) return;
    const from = endpoints[activeIndex]!.url;
    activeIndex = i;
    logger.warn(`[nxs-pocketbase] ${kind} ${from} -> ${endpoints[i]!.url} (${reason})`);
    emit(kind, { from, to: endpoints[i]!.url, reason });
  }

  function maybeFailover(reason: string): void {
    if (!switching || states[activeIndex]!.healthy) return;
    for (let k = 1; k < endpoints.length; k++) {
      const i = (activeIndex + k) % endpoints.length;
      if (states[i]!.healthy) {
        switchTo(i, "failover", reason);
        return;
      }
    }
  }

  function maybeFailback(): void {
    if (!switching || activeIndex === 0) return;
    const s = states[0]!;
    if (s.healthy && s.healthySince !== undefined && now() - s.healthySince >= failbackAfterMs) {
      switchTo(0, "failback", `preferred endpoint healthy for ${now() - s.healthySince} ms`);
    }
  }

  function success(i: number): void {
    const s = states[i]!;
    s.answered = true;
    s.failures = 0;
    s.failingSince = undefined;
    setHealthy(i, true);
    maybeFailback();
  }

  function failure(i: number, reason: string): void {
    const s = states[i]!;
    s.failures++;
    s.failingSince ??= now();
    const limit = s.answered ? threshold : 1;
    if (s.failures >= limit || now() - s.failingSince >= downAfterMs) setHealthy(i, false, reason);
    if (i === activeIndex) maybeFailover(reason);
  }

  async function poll(i: number): Promise<void> {
    if (polling.has(i)) return;
    polling.add(i);
    try {
      const ok = await endpoints[i]!.client.health(healthTimeoutMs);
      if (timer === undefined) return;
      if (ok) success(i);
      else failure(i, "no answer to GET /api/health");
    } finally {
      polling.delete(i);
    }
  }

  return {
    endpoints,
    active: () => endpoints[activeIndex]!,
    healthy() {
      const active = endpoints[activeIndex]!;
      const rest = endpoints.filter((ep) => ep.index !== activeIndex && states[ep.index]!.healthy);
      return states[activeIndex]!.healthy ? [active, ...rest] : [...rest, active];
    },
    reportSuccess: (ep) => success(ep.index),
    reportFailure: (ep, reason) => failure(ep.index, reason),
    health: () =>
      endpoints.map((ep) => ({
        url: ep.url,
        healthy: states[ep.index]!.healthy,
        failures: states[ep.index]!.failures,
        active: ep.index === activeIndex,
      })),
    call,
    start() {
      if (timer !== undefined) return;
      stopped = false;
      const round = (): void => {
        timer = scheduler.schedule(intervalMs, round);
        for (const ep of endpoints) void poll(ep.index);
        maybeFailback();
      };
      // The first round at once: an endpoint that refuses at start is known down after one health
      // check, not after a request's own retries.
      timer = scheduler.schedule(0, round);
    },
    stop() {
      timer?.();
      timer = undefined;
      stopped = true;
      for (const w of waits) {
        w.cancel();
        w.reject(stoppedError());
      }
      waits.clear();
      for (const ep of endpoints) ep.client.close();
    },
    on: events.on,
  };
}
