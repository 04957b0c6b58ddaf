import http from "node:http";
import https from "node:https";
import { ErrorCode, type Scheduler, TransportError } from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";

/**
 * Request header that caps the answer of one request, in bytes (a decimal number). It is read and
 * removed by {@link createHttpFetch}, never sent: SDK calls pass it with their `headers` option
 * (the SDK forwards nothing else to the fetch).
 */
export const MAX_RESPONSE_BYTES_HEADER = "x-nxs-max-response-bytes";

/** What the PocketBase SDK reads of a response: status, url and the body as JSON. */
export interface HttpResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly url: string;
  readonly headers: Headers;
  json(): Promise<unknown>;
  text(): Promise<string>;
}

/** The `fetch` the SDK calls (`SendOptions.fetch`): the SDK's request options are the init. */
export type HttpFetch = (
  url: string,
  init?: {
    readonly method?: string;
    readonly headers?: unknown;
    readonly body?: unknown;
    readonly signal?: AbortSignal | null;
    /** This request's timeout instead of the client's. */
    readonly timeoutMs?: number;
  },
) => Promise<HttpResponse>;

/** A keep-alive HTTP client shaped as `fetch`, see {@link createHttpFetch}. */
export interface HttpClient {
  readonly fetch: HttpFetch;
  /** Closes idle keep-alive sockets; requests in flight finish, later ones use one-off connections. */
  close(): void;
}

/** Options of {@link createHttpFetch}. */
export interface HttpFetchOptions {
  /** Abort a request (sending it and reading its whole answer) after this many ms. */
  readonly timeoutMs: number;
  /**
   * Abort a request whose answer grows past this many bytes, instead of buffering it whole.
   * Default: no cap. A request's {@link MAX_RESPONSE_BYTES_HEADER} header sets its own.
   */
  readonly maxResponseBytes?: number;
  /** The timer of request timeouts. Default `createTimerScheduler()` of `@nxs-sync/core/node`. */
  readonly scheduler?: Scheduler;
}

/** Idle keep-alive sockets are closed after this long. */
const IDLE_MS = 4000;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;

const timeoutError = (ms: number): Error =>
  new DOMException(`request timed out after ${ms} ms`, "TimeoutError");
const abortError = (): Error => new DOMException("the request was aborted", "AbortError");
const tooLargeError = (url: string, max: number): Error =>
  new TransportError(
    ErrorCode.TransportRejected,
    `the answer of ${url} is larger than the ${max} bytes asked for: aborted unread`,
  );

/** The cap a request asks for in its {@link MAX_RESPONSE_BYTES_HEADER} header (removed from `headers`). */
function takeMaxBytes(headers: Record<string, string>): number | undefined {
  let max: number | undefined;
  for (const k of Object.keys(headers)) {
    if (k.toLowerCase() !== MAX_RESPONSE_BYTES_HEADER) continue;
    const n = Number(headers[k]);
    if (Number.isSafeInteger(n) && n >= 0) max = n;
    delete headers[k];
  }
  return max;
}

/** Plain header record from what the SDK passes (a record, or a `Headers`). */
function headerRecord(headers: unknown): Record<string, string> {
  if (headers === undefined || headers === null) return {};
  if (headers instanceof Headers) return Object.fromEntries(headers.entries());
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers as Record<string, unknown>)) {
    if (v !== undefined && v !== null) out[k] = String(v);
  }
  return out;
}

/**
 * A `fetch` for the PocketBase SDK over `node:http`/`node:https` with keep-alive sockets, for
 * requests whose body is a string (the SDK's JSON requests) or absent; other bodies (`FormData`:
 * batch requests, file uploads) go to the global `fetch`. It exists for speed: per request on a
 * small machine, undici's `fetch` costs ~0.4 ms more CPU than `node:http` (measured in
 * docs/benchmarks.md), and every push is one request. The whole exchange, answer body included,
 * is bounded by `timeoutMs`; a timeout rejects with a `TimeoutError`, an abort with an
 * `AbortError` (the names the SDK and {@link toTransportError} map). As `fetch` does, it follows
 * redirects (at most 20; a 303, or a 301/302 after a POST, becomes a GET; `Authorization` does not
 * follow to another origin). A request that meets a kept-alive socket the server has just closed
 * (`ECONNRESET`/`EPIPE` on a reused socket) is sent again once on a new one; idle sockets close
 * after 4 s. An answer larger than its cap (`maxResponseBytes`, or the request's
 * {@link MAX_RESPONSE_BYTES_HEADER} header) is aborted as soon as it is known to be (by its
 * `content-length`, or once that many bytes arrived): a `TransportError` `transport/rejected`,
 * which the SDK keeps as `originalError` of its `ClientResponseError`.
 * @param options - The timeout and the default cap of an answer.
 * @returns The fetch, and `close()` to drop idle sockets.
 * @example
 * ```ts
 * const http = createHttpFetch({ timeoutMs: 5000 });
 * pb.beforeSend = (url, options) => ({ url, options: { ...options, fetch: http.fetch } });
 * ```
 */
export function createHttpFetch(options: HttpFetchOptions): HttpClient {
  // Idle keep-alive sockets close after IDLE_MS (below the idle timeouts of servers and proxies,
  // so a request rarely meets a socket the other side just closed; when it does, it is retried).
  const agents = {
    "http:": new http.Agent({ keepAlive: true, scheduling: "lifo", timeout: IDLE_MS }),
    "https:": new https.Agent({ keepAlive: true, scheduling: "lifo", timeout: IDLE_MS }),
  };
  const { timeoutMs, maxResponseBytes } = options;
  const scheduler = options.scheduler ?? createTimerScheduler();
  let closed = false;
  for (const agent of Object.values(agents)) {
    // After close(), a socket freed by a request that was in flight is not kept.
    agent.on("free", (socket) => {
      if (closed) socket.destroy();
    });
  }

  const viaGlobalFetch: HttpFetch = async (url, init = {}) => {
    // Not capped (FormData requests: batches and uploads, whose answers are small); the header stays unsent.
    if (init.headers !== undefined && init.headers !== null && !(init.headers instanceof Headers)) {
      const headers = headerRecord(init.headers);
      takeMaxBytes(headers);
      init = { ...init, headers };
    }
    const timeout = AbortSignal.timeout(init.timeoutMs ?? timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    return (await fetch(url, { ...(init as RequestInit), signal })) as HttpResponse;
  };

  const fetchFn: HttpFetch = (url, init = {}) => {
    const body = init.body;
    if (body !== undefined && body !== null && typeof body !== "string") return viaGlobalFetch(url, init);
    const first = new URL(url);
    if (!(first.protocol in agents)) return viaGlobalFetch(url, init);
    const signal = init.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(abortError());
    const ms = init.timeoutMs ?? timeoutMs;
    const headers = headerRecord(init.headers);
    const maxBytes = takeMaxBytes(headers) ?? maxResponseBytes ?? Number.POSITIVE_INFINITY;
    return new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      let current: http.ClientRequest | undefined;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        cancelTimeout();
        signal?.removeEventListener("abort", onAbort);
        return true;
      };
      const fail = (error: unknown): void => {
        if (!settle()) return;
        current?.destroy();
        reject(error);
      };
      const onAbort = () => fail(abortError());
      const cancelTimeout = scheduler.schedule(ms, () => fail(timeoutError(ms)));
      signal?.addEventListener("abort", onAbort, { once: true });

      /** One request; follows redirects and retries once on a kept-alive socket the server closed. */
      const attempt = (
        target: URL,
        method: string,
        payload: string | undefined,
        headers: Record<string, string>,
        redirects: number,
        retried: boolean,
      ): void => {
        // A retry takes a new connection: the pool may hold more sockets the server closed.
        const agent = closed || retried ? false : agents[target.protocol as keyof typeof agents];
        const send = target.protocol === "https:" ? https.request : http.request;
        let req: http.ClientRequest;
        try {
          req = send(target, { method, headers, agent }, (res) => {
            const status = res.statusCode ?? 0;
            const location = res.headers.location;
            if (REDIRECT_STATUSES.has(status) && location !== undefined) {
              res.resume();
              let next: URL;
              try {
                next = new URL(location, target);
              } catch {
                // Thrown here, it would escape the HTTP parser's callback and crash the process.
                fail(new TypeError(`redirect to an invalid location ${JSON.stringify(location)}`));
                return;
              }
              if (redirects >= MAX_REDIRECTS || !(next.protocol in agents)) {
                fail(new TypeError(`redirect to ${next.href} not followed (after ${redirects} redirects)`));
                return;
              }
              // As fetch does: 303 (and 301/302 after a POST) become a GET without a body; the
              // credentials do not follow to another origin.
              const toGet = status === 303 ? method !== "HEAD" : status <= 302 && method === "POST";
              const nextHeaders = { ...headers };
              if (toGet) {
                for (const k of Object.keys(nextHeaders)) {
                  if (/^content-(type|length)$/i.test(k)) delete nextHeaders[k];
                }
              }
              if (next.origin !== target.origin) {
                for (const k of Object.keys(nextHeaders))
                  if (/^authorization$/i.test(k)) delete nextHeaders[k];
              }
              attempt(
                next,
                toGet ? "GET" : method,
                toGet ? undefined : payload,
                nextHeaders,
                redirects + 1,
                false,
              );
              return;
            }
            const declared = Number(res.headers["content-length"]);
            if (declared > maxBytes) {
              fail(tooLargeError(target.href, maxBytes));
              return;
            }
            const chunks: Buffer[] = [];
            let received = 0;
            res.on("data", (c: Buffer) => {
              received += c.length;
              if (received > maxBytes) fail(tooLargeError(target.href, maxBytes));
              else chunks.push(c);
            });
            res.on("error", fail);
            res.on("end", () => {
              if (!settle()) return;
              resolve(answer(status, target.href, res.headers, Buffer.concat(chunks).toString("utf8")));
            });
          });
        } catch (error) {
          // A synchronous refusal (an invalid header value, say).
          fail(error);
          return;
        }
        current = req;
        req.on("error", (error: NodeJS.ErrnoException) => {
          // An error of a request already followed by a redirect's is no longer this call's.
          if (settled || req !== current) return;
          // Sent again only when no answer had started: the server may not have seen it at all.
          const unanswered = (req as { res?: unknown }).res == null;
          if (
            !retried &&
            unanswered &&
            req.reusedSocket &&
            (error.code === "ECONNRESET" || error.code === "EPIPE")
          ) {
            attempt(target, method, payload, headers, redirects, true);
            return;
          }
          fail(error);
        });
        req.end(payload);
      };

      if (typeof body === "string") headers["content-length"] = String(Buffer.byteLength(body));
      attempt(first, init.method ?? "GET", typeof body === "string" ? body : undefined, headers, 0, false);
    });
  };

  return {
    fetch: fetchFn,
    close() {
      closed = true;
      // Only idle sockets: requests in flight finish (later requests use one-off connections).
      for (const agent of Object.values(agents)) {
        for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) s.destroy();
      }
    },
  };
}

/** The answer as the SDK reads it. */
function answer(status: number, url: string, raw: http.IncomingHttpHeaders, text: string): HttpResponse {
  let headers: Headers | undefined;
  return {
    status,
    ok: status >= 200 && status < 300,
    url,
    // Built on first use: the SDK never reads them.
    get headers() {
      if (headers === undefined) {
        headers = new Headers();
        for (const [k, v] of Object.entries(raw)) {
          if (typeof v === "string") headers.set(k, v);
          else if (Array.isArray(v)) for (const x of v) headers.append(k, x);
        }
      }
      return headers;
    },
    json: async () => JSON.parse(text),
    text: async () => text,
  };
}
