import PocketBase, { type BaseAuthStore, ClientResponseError, type SendOptions } from "pocketbase";
import { FleetError, FleetErrorCode } from "./errors.js";
import { type FleetRequest, isRetriedRequest } from "./retry-rule.js";

/** Options of `createFleetClient` (both entry points). */
export interface FleetClientOptions {
  /**
   * Server base URLs (`http://` or `https://`), preferred first, e.g.
   * `["https://a.example.com", "https://b.example.com"]`. The client starts on the first one.
   */
  readonly endpoints: readonly string[];
  /**
   * The one auth store of every endpoint (a login on one server is sent to the others). Default:
   * the browser entry's `LocalAuthStore` (localStorage, key `pocketbase_auth`), the Node entry's
   * in-memory `BaseAuthStore`.
   */
  readonly authStore?: BaseAuthStore;
  /**
   * One attempt ends after this many ms with no full answer; it counts as a failure of that
   * endpoint. Does not apply to the realtime stream. Default 10 000.
   */
  readonly requestTimeoutMs?: number;
  /**
   * Which failed requests are sent again, at once, to the next endpoint. Default
   * {@link isRetriedRequest}: GET, HEAD and auth-refresh. Widen it only for requests you made
   * idempotent yourself.
   */
  readonly retryIf?: (request: FleetRequest) => boolean;
  /**
   * While on another endpoint than the first, check the first one's `/api/health` this often and
   * go back to it once it answers (a `switch` event of kind `failback`). 0 (default): stay on the
   * endpoint that works until it fails (a frontend's session stays on one server).
   */
  readonly failbackIntervalMs?: number;
  /** `Accept-Language` of the SDK. Default `en-US`. */
  readonly lang?: string;
  /** Where an exception of a `switch` listener goes. Default `console.error`. */
  readonly onError?: (error: unknown) => void;
}

/** Payload of the `switch` event: the client moved to another endpoint. */
export interface SwitchEvent {
  /** The endpoint left. */
  readonly from: string;
  /** The endpoint now in use. */
  readonly to: string;
  /** `failover`: `from` failed. `failback`: the preferred endpoint answers again. */
  readonly kind: "failover" | "failback";
  /** The failure or check that caused it, for logs. */
  readonly reason: string;
}

/** Events of a {@link FleetClient}, by name. */
export interface FleetClientEvents {
  /**
   * The client moved to another endpoint. Realtime subscriptions are moved along; events published
   * while the stream was down are not replayed, so re-read what the page shows (realtime is a hint,
   * a read is the truth).
   */
  switch: SwitchEvent;
}

/** Health of one endpoint as the client last saw it. */
export interface FleetEndpointState {
  readonly url: string;
  /** Whether this is the endpoint requests go to. */
  readonly active: boolean;
  /** False after a failure (network error, timeout, 5xx), true again after an answer. */
  readonly healthy: boolean;
}

/**
 * A PocketBase JS SDK client over several servers that hold the same data and accounts (nxs-sync
 * replicates them). Use {@link FleetClient.pb} exactly as the SDK: every request goes to the
 * active endpoint; on a network error, a timeout or a 5xx (a fenced server answers 503) the client
 * moves to the next endpoint, sends retried requests (see {@link FleetClientOptions.retryIf}) there
 * at once, and throws `FleetError` `client/write-unconfirmed` for the others. The auth store is
 * shared, so a session started on one server goes on on the next without a new login, provided
 * the servers share the account (same id and token key) and the collection's auth-token secret.
 */
export interface FleetClient {
  /** The SDK instance (a subclass of `PocketBase`): collections, auth, realtime, files. */
  readonly pb: PocketBase;
  /** The configured endpoints, preferred first (without a trailing slash). */
  readonly endpoints: readonly string[];
  /** The endpoint requests go to now. */
  active(): string;
  /**
   * The endpoint the realtime stream is connected to, or undefined while it is not connected (no
   * subscription, or reconnecting). After a switch it follows {@link FleetClient.active}.
   */
  realtimeEndpoint(): string | undefined;
  /** The state of every endpoint. */
  state(): readonly FleetEndpointState[];
  /**
   * Registers a listener.
   * @param event - `switch`.
   * @param listener - Called with the event's payload.
   * @returns The function that removes the listener.
   */
  on<E extends keyof FleetClientEvents>(
    event: E,
    listener: (payload: FleetClientEvents[E]) => void,
  ): () => void;
  /**
   * Stops the failback checks, cancels pending requests and closes the realtime stream. Requests
   * after it throw `FleetError` `client/closed`. The auth store is left as it is.
   */
  close(): void;
}

/** The private parts of the SDK's realtime service the client relies on (pocketbase 0.28). */
interface RealtimeInternals {
  eventSource?: { readonly url?: string; onerror?: ((event: unknown) => void) | null } | null;
  clientId?: string;
  reconnectAttempts?: number;
  subscriptions?: Record<string, readonly unknown[]>;
  initConnect?: () => void;
}

/** How long after a lost stream the client checks that the SDK is still reconnecting. */
const REVIVE_CHECK_MS = 3000;

/** One attempt's timer; `timedOut` is read after the attempt fails. */
interface AttemptClock {
  timedOut: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const trimSlash = (url: string) => url.replace(/\/+$/, "");

function checkEndpoints(endpoints: readonly string[]): string[] {
  if (endpoints.length === 0) {
    throw new FleetError(
      FleetErrorCode.ConfigInvalid,
      'endpoints is empty: list the server base URLs, e.g. ["https://a.example.com", "https://b.example.com"]',
    );
  }
  return endpoints.map((url, i) => {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || !/^https?:$/.test(parsed.protocol) || parsed.hostname === "") {
      throw new FleetError(
        FleetErrorCode.ConfigInvalid,
        `endpoints[${i}] ${JSON.stringify(url)} is not an http(s) URL with a host: write it like "https://a.example.com"`,
      );
    }
    return trimSlash(url);
  });
}

/** Sends one request: `attempt` is one try of the SDK's own `send` with the options given. */
type FleetRoute = (
  path: string,
  options: SendOptions,
  attempt: (options: SendOptions) => Promise<unknown>,
) => Promise<unknown>;

/** The SDK client whose `send` goes through the fleet's routing. */
class FleetPocketBase extends PocketBase {
  readonly #route: FleetRoute;

  constructor(baseURL: string, authStore: BaseAuthStore, lang: string, route: FleetRoute) {
    super(baseURL, authStore, lang);
    this.#route = route;
  }

  override send<T = unknown>(path: string, options: SendOptions): Promise<T> {
    return this.#route(path, options, (o) => super.send(path, o)) as Promise<T>;
  }
}

/**
 * Builds a fleet client with a given default auth store (what the entry points share).
 * @param options - See {@link FleetClientOptions}.
 * @param defaultStore - The auth store when `options.authStore` is absent.
 * @returns The client, on the first endpoint.
 * @throws FleetError `client/config-invalid` for an empty or malformed `endpoints`.
 */
export function buildFleetClient(
  options: FleetClientOptions,
  defaultStore: () => BaseAuthStore,
): FleetClient {
  const endpoints = checkEndpoints(options.endpoints);
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const retryIf = options.retryIf ?? isRetriedRequest;
  const failbackMs = options.failbackIntervalMs ?? 0;
  const onError = options.onError ?? ((error: unknown) => console.error("[nxs-client]", error));
  const healthy = endpoints.map(() => true);
  const listeners = new Set<(event: SwitchEvent) => void>();
  let activeIndex = 0;
  let closed = false;
  let failbackTimer: ReturnType<typeof setTimeout> | undefined;
  /** Realtime subscription submits (`POST /api/realtime`) under way, and a move they hold back. */
  let submitsInFlight = 0;
  let moveAfterSubmit = false;
  let reviveTimer: ReturnType<typeof setTimeout> | undefined;

  const pb = new FleetPocketBase(
    endpoints[0]!,
    options.authStore ?? defaultStore(),
    options.lang ?? "en-US",
    route,
  );
  const realtime = pb.realtime as unknown as RealtimeInternals;

  /** The endpoint after `from` to move to: the next healthy one, else simply the next. */
  function nextAfter(from: number): number {
    for (let k = 1; k < endpoints.length; k++) {
      const i = (from + k) % endpoints.length;
      if (healthy[i]) return i;
    }
    return (from + 1) % endpoints.length;
  }

  function switchTo(to: number, kind: SwitchEvent["kind"], reason: string): void {
    if (to === activeIndex || closed) return;
    const from = endpoints[activeIndex]!;
    activeIndex = to;
    pb.baseURL = endpoints[to]!;
    moveRealtime();
    for (const listener of [...listeners]) {
      try {
        listener({ from, to: endpoints[to]!, kind, reason });
      } catch (error) {
        onError(error);
      }
    }
    scheduleFailback();
  }

  /** The endpoint the realtime stream is connected to, if it is. */
  function realtimeIndex(): number | undefined {
    return pb.realtime.isConnected ? streamIndex() : undefined;
  }

  /** The endpoint of the realtime stream, connected or still connecting. */
  function streamIndex(): number | undefined {
    const url = realtime.eventSource?.url;
    if (typeof url !== "string") return undefined;
    const i = endpoints.findIndex((e) => url.startsWith(`${e}/`));
    return i < 0 ? undefined : i;
  }

  /**
   * Sends a connected realtime stream that is not on the active endpoint there: the SDK's own
   * error path closes it and reconnects (to `pb.baseURL`), and on connect it re-submits every
   * subscription. A stream still connecting is left alone: its next attempt uses `pb.baseURL`.
   */
  function moveRealtime(): void {
    const on = realtimeIndex();
    if (on === undefined || on === activeIndex) return;
    // While the SDK submits the subscriptions of a (re)connect, its completion clears the
    // reconnect timer an error would set: move once the submit is over.
    if (submitsInFlight > 0) {
      moveAfterSubmit = true;
      return;
    }
    realtime.eventSource?.onerror?.({ type: "error" });
  }

  /**
   * Watches a lost stream until it is connected again. The SDK can drop its own reconnect: a
   * stream that fails while the subscriptions of its connect are being submitted ends with no
   * stream, no client id and no reconnect scheduled (the submit's completion clears the timer).
   * Found in that state with subscriptions left, the stream is started again, in the SDK's
   * reconnect mode (failures retried in the background).
   */
  function watchRealtime(): void {
    if (reviveTimer !== undefined || closed) return;
    reviveTimer = setTimeout(() => {
      reviveTimer = undefined;
      const wanted = Object.values(realtime.subscriptions ?? {}).some((l) => l.length > 0);
      if (closed || !wanted || pb.realtime.isConnected) return;
      const dead = !realtime.eventSource && !realtime.clientId && realtime.reconnectAttempts === 0;
      if (dead && typeof realtime.initConnect === "function") {
        realtime.reconnectAttempts = 1;
        realtime.initConnect();
      }
      watchRealtime();
    }, REVIVE_CHECK_MS);
  }

  function failed(index: number, reason: string): void {
    healthy[index] = false;
    if (index === activeIndex && endpoints.length > 1) switchTo(nextAfter(index), "failover", reason);
  }

  function answered(index: number): void {
    healthy[index] = true;
    if (index !== activeIndex && !healthy[activeIndex]) switchTo(index, "failover", "answered in its place");
    // A stream that connected while the client was moving may have landed on the endpoint left.
    moveRealtime();
  }

  /** `GET /api/health` of one endpoint, bounded by the request timeout. */
  async function probe(index: number): Promise<boolean> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const response = await fetch(`${endpoints[index]}/api/health`, { signal: controller.signal });
      return response.status === 200;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  function scheduleFailback(): void {
    if (failbackTimer !== undefined || failbackMs <= 0 || closed || activeIndex === 0) return;
    failbackTimer = setTimeout(() => {
      failbackTimer = undefined;
      if (closed || activeIndex === 0) return;
      void probe(0).then((ok) => {
        if (ok) {
          healthy[0] = true;
          switchTo(0, "failback", `${endpoints[0]}/api/health answered 200`);
        } else scheduleFailback();
      });
    }, failbackMs);
  }

  // A dropped realtime stream is often the first sign of a dead server: check it, and move on if
  // it does not answer, so that the SDK's reconnect (to pb.baseURL) lands on a live one.
  let userOnDisconnect: ((subscriptions: string[]) => void) | undefined;
  const onDisconnect = (subscriptions: string[]) => {
    userOnDisconnect?.(subscriptions);
    if (subscriptions.length === 0 || closed) return;
    watchRealtime();
    const index = activeIndex;
    void probe(index).then((ok) => {
      if (!ok) failed(index, "realtime stream lost and /api/health did not answer");
    });
  };
  Object.defineProperty(pb.realtime, "onDisconnect", {
    configurable: true,
    enumerable: true,
    get: () => onDisconnect,
    // Code that saves and restores the handler gets ours back: keep no loop to itself.
    set: (fn: ((subscriptions: string[]) => void) | undefined) => {
      userOnDisconnect = fn === onDisconnect ? undefined : fn;
    },
  });

  /** Why an attempt counts as an endpoint failure, or undefined when the server answered. */
  function failureOf(error: unknown, clock: AttemptClock): string | undefined {
    if (clock.timedOut) return `no answer within ${timeoutMs} ms`;
    if (!(error instanceof ClientResponseError)) return undefined;
    if (error.isAbort) return undefined;
    if (error.status === 0) {
      const cause = error.originalError as { message?: unknown; cause?: { message?: unknown } } | null;
      const detail = cause?.cause?.message ?? cause?.message;
      return `network error${typeof detail === "string" ? `: ${detail}` : ""}`;
    }
    if (error.status >= 500) return `HTTP ${error.status}`;
    return undefined;
  }

  /** Whether the request surely did not reach the application: a 503 or a refused connection. */
  function surelyNotApplied(error: unknown): boolean {
    if (!(error instanceof ClientResponseError)) return false;
    if (error.status === 503) return true;
    const cause = error.originalError as { cause?: { code?: unknown } } | null;
    return error.status === 0 && cause?.cause?.code === "ECONNREFUSED";
  }

  /** The fetch of one attempt: sent to `index`'s endpoint, aborted after the timeout. */
  function attemptFetch(index: number, clock: AttemptClock, base: SendOptions["fetch"]): typeof fetch {
    return (input, init) => {
      const url = String(input);
      const prefix = endpoints.find((e) => url.startsWith(`${e}/`));
      const target = prefix === undefined ? url : endpoints[index] + url.slice(prefix.length);
      const controller = new AbortController();
      const outer = init?.signal;
      if (outer?.aborted) controller.abort(outer.reason);
      else outer?.addEventListener("abort", () => controller.abort(outer.reason), { once: true });
      clock.timer = setTimeout(() => {
        clock.timedOut = true;
        controller.abort(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      return (base ?? fetch)(target, { ...init, signal: controller.signal });
    };
  }

  async function route(
    path: string,
    options: SendOptions,
    attempt: (options: SendOptions) => Promise<unknown>,
  ): Promise<unknown> {
    if (closed) throw new FleetError(FleetErrorCode.Closed, "the fleet client is closed");
    const request: FleetRequest = { method: (options?.method ?? "GET").toUpperCase(), path };
    const retried = retryIf(request);
    const submit = request.method === "POST" && /^\/?api\/realtime\/?$/.test(path);
    if (submit) submitsInFlight++;
    try {
      // A subscription submit names the stream's client id: it goes to the stream's server.
      const first = submit ? (streamIndex() ?? activeIndex) : activeIndex;
      return await routeAttempts(path, options, attempt, request, retried, first);
    } finally {
      if (submit && --submitsInFlight === 0 && moveAfterSubmit) {
        moveAfterSubmit = false;
        // After the SDK's own continuation of the submit (promise jobs) has run.
        setTimeout(moveRealtime, 0);
      }
    }
  }

  async function routeAttempts(
    path: string,
    options: SendOptions,
    attempt: (options: SendOptions) => Promise<unknown>,
    request: FleetRequest,
    retried: boolean,
    first: number,
  ): Promise<unknown> {
    const tried = new Set<number>();
    let index = first;
    for (;;) {
      tried.add(index);
      const clock: AttemptClock = { timedOut: false, timer: undefined };
      try {
        const result = await attempt({ ...options, fetch: attemptFetch(index, clock, options?.fetch) });
        answered(index);
        return result;
      } catch (error) {
        const failure = failureOf(error, clock);
        if (failure === undefined) {
          if (error instanceof ClientResponseError && error.status > 0) answered(index);
          throw error;
        }
        const endpoint = endpoints[index]!;
        failed(index, `${request.method} ${path}: ${failure}`);
        if (closed)
          throw new FleetError(FleetErrorCode.Closed, "the fleet client is closed", { cause: error });
        const status = error instanceof ClientResponseError ? error.status : 0;
        if (!retried) {
          const notApplied = surelyNotApplied(error);
          throw new FleetError(
            FleetErrorCode.WriteUnconfirmed,
            `${request.method} ${path} at ${endpoint}: ${failure}; not sent again (the client moved to ${endpoints[activeIndex]}): ` +
              (notApplied
                ? "the server did not apply it, send it again"
                : "it may have been applied, read before sending it again"),
            { cause: error, endpoint, status, maybeApplied: !notApplied },
          );
        }
        const next = tried.has(activeIndex)
          ? [...endpoints.keys()].map((k) => (index + 1 + k) % endpoints.length).find((i) => !tried.has(i))
          : activeIndex;
        if (next === undefined) {
          throw new FleetError(
            FleetErrorCode.Unavailable,
            `${request.method} ${path}: no endpoint answered (${endpoints.join(", ")}); last: ${endpoint}: ${failure}`,
            { cause: error, endpoint, status },
          );
        }
        index = next;
      } finally {
        clearTimeout(clock.timer);
      }
    }
  }

  return {
    pb,
    endpoints,
    active: () => endpoints[activeIndex]!,
    realtimeEndpoint() {
      const i = realtimeIndex();
      return i === undefined ? undefined : endpoints[i];
    },
    state: () => endpoints.map((url, i) => ({ url, active: i === activeIndex, healthy: healthy[i]! })),
    on(_event, listener) {
      const l = listener as (event: SwitchEvent) => void;
      listeners.add(l);
      return () => {
        listeners.delete(l);
      };
    },
    close() {
      if (closed) return;
      clearTimeout(failbackTimer);
      failbackTimer = undefined;
      clearTimeout(reviveTimer);
      reviveTimer = undefined;
      void pb.realtime.unsubscribe().catch(() => undefined);
      pb.cancelAllRequests();
      closed = true;
      listeners.clear();
    },
  };
}
