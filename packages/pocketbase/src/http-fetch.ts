import http from "node:http";
import https from "node:https";

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
  /** Closes idle keep-alive sockets; requests in flight finish. */
  close(): void;
}

/** Options of {@link createHttpFetch}. */
export interface HttpFetchOptions {
  /** Abort a request (sending it and reading its whole answer) after this many ms. */
  readonly timeoutMs: number;
}

const timeoutError = (ms: number): Error =>
  new DOMException(`request timed out after ${ms} ms`, "TimeoutError");
const abortError = (): Error => new DOMException("the request was aborted", "AbortError");

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
 * `AbortError` (the names the SDK and {@link toTransportError} map).
 * @param options - The timeout.
 * @returns The fetch, and `close()` to drop idle sockets.
 * @example
 * ```ts
 * const http = createHttpFetch({ timeoutMs: 5000 });
 * pb.beforeSend = (url, options) => ({ url, options: { ...options, fetch: http.fetch } });
 * ```
 */
export function createHttpFetch(options: HttpFetchOptions): HttpClient {
  const agents = {
    "http:": new http.Agent({ keepAlive: true, scheduling: "lifo" }),
    "https:": new https.Agent({ keepAlive: true, scheduling: "lifo" }),
  };
  const { timeoutMs } = options;

  const viaGlobalFetch: HttpFetch = async (url, init = {}) => {
    const timeout = AbortSignal.timeout(init.timeoutMs ?? timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    return (await fetch(url, { ...(init as RequestInit), signal })) as HttpResponse;
  };

  const fetchFn: HttpFetch = (url, init = {}) => {
    const body = init.body;
    if (body !== undefined && body !== null && typeof body !== "string") return viaGlobalFetch(url, init);
    const target = new URL(url);
    const agent = agents[target.protocol as keyof typeof agents];
    if (agent === undefined) return viaGlobalFetch(url, init);
    const signal = init.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(abortError());
    return new Promise<HttpResponse>((resolve, reject) => {
      const headers = headerRecord(init.headers);
      if (typeof body === "string") headers["content-length"] = String(Buffer.byteLength(body));
      const send = target.protocol === "https:" ? https.request : http.request;
      let settled = false;
      const finish = (error: Error | undefined, response?: HttpResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (error !== undefined) {
          req.destroy();
          reject(error);
        } else resolve(response as HttpResponse);
      };
      const onAbort = () => finish(abortError());
      const ms = init.timeoutMs ?? timeoutMs;
      const timer = setTimeout(() => finish(timeoutError(ms)), ms);
      const req = send(target, { method: init.method ?? "GET", headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (e) => finish(e));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const status = res.statusCode ?? 0;
          let responseHeaders: Headers | undefined;
          finish(undefined, {
            status,
            ok: status >= 200 && status < 300,
            url,
            // Built on first use: the SDK never reads them.
            get headers() {
              if (responseHeaders === undefined) {
                responseHeaders = new Headers();
                for (const [k, v] of Object.entries(res.headers)) {
                  if (typeof v === "string") responseHeaders.set(k, v);
                  else if (Array.isArray(v)) for (const x of v) responseHeaders.append(k, x);
                }
              }
              return responseHeaders;
            },
            json: async () => JSON.parse(text),
            text: async () => text,
          });
        });
      });
      req.on("error", (e) => finish(e));
      signal?.addEventListener("abort", onAbort, { once: true });
      req.end(body);
    });
  };

  return {
    fetch: fetchFn,
    close() {
      agents["http:"].destroy();
      agents["https:"].destroy();
    },
  };
}
