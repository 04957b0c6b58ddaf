import {
  ConflictError,
  checkNumberOption,
  ErrorCode,
  guardLogger,
  isNxsError,
  type Logger,
  NxsError,
  silentLogger,
  TransportError,
  ValidationError,
} from "@nxs-sync/core";
import { EventSource as EventSourcePolyfill } from "eventsource";
import pRetry from "p-retry";
import PocketBase, { ClientResponseError, getTokenPayload } from "pocketbase";
import { checkHooksVersion, NXS_VERSION_PATH, SCHEMA_FIX } from "./hooks.js";
import { createHttpFetch, type HttpClient } from "./http-fetch.js";

/** Name of the auth collection that holds one identity per NXS node. */
export const NODES_COLLECTION = "nxs_nodes";
/**
 * Name of the auth collection of replicator accounts (the replicator and the compactor): they copy
 * and delete any node's records. A collection of their own lets every API rule tell them apart by
 * `@request.auth.collectionName`, which PocketBase binds as a parameter (a field of the account
 * would cost a join in every rule check).
 */
export const REPLICATORS_COLLECTION = "nxs_replicators";
/**
 * Name of the auth collection of operator accounts: people who read the fleet's health (the
 * metrics dashboard) and write nothing. Defined by the package that grants them reads
 * (`@nxs-sync/metrics`); made with `ensureNode({ role: "operator" })` or `nxs-sync node add NAME --role operator`.
 */
export const OPERATORS_COLLECTION = "nxs_operators";

/**
 * Replicator credentials: `auth`, logging in to `nxs_replicators` unless it names a collection.
 * @param auth - Credentials of a replicator account.
 * @returns The credentials with their collection.
 */
export function replicatorAuth(auth: NodeAuth): NodeAuth {
  return { ...auth, collection: auth.collection ?? REPLICATORS_COLLECTION };
}

/**
 * How a gateway proves it is a node: a record of the `nxs_nodes` auth collection, by email and
 * password (re-authenticated automatically when the token expires) or by a ready token.
 */
export type NodeAuth =
  | { readonly email: string; readonly password: string; readonly collection?: string }
  | { readonly token: string; readonly collection?: string };

/** Retry policy of one request: p-retry options for network errors and 5xx (never 4xx). */
export interface RetryOptions {
  /** Retries after the first attempt. Default 3. */
  readonly retries?: number;
  /** First delay in ms. Default 100. */
  readonly minTimeoutMs?: number;
  /** Longest delay in ms. Default 1000. */
  readonly maxTimeoutMs?: number;
}

/** Options of {@link createPocketBaseClient}. */
export interface PocketBaseClientOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:8090`. */
  readonly url: string;
  /** Node credentials. Omit for a guest client (every nxs collection refuses guests). */
  readonly auth?: NodeAuth;
  /** Abort a request (not the SSE stream) after this many ms; counts as `transport/unavailable`. Default 5000. */
  readonly requestTimeoutMs?: number;
  /** Retry policy of {@link PocketBaseClient.call}. */
  readonly retry?: RetryOptions;
  /**
   * Log in again (or refresh a token) when the token expires within this many seconds, before a
   * request and at each health check (so that the SDK's realtime reconnects never use an expired
   * token). Default 600. A token that lives shorter than this is renewed halfway through its life.
   */
  readonly refreshBeforeS?: number;
  readonly logger?: Logger;
}

/**
 * One server, one SDK client, authenticated as a node. The only place nxs-sync creates SDK clients:
 * auto-cancellation is off, requests time out, the EventSource polyfill is installed when needed,
 * and every failure leaves as a typed error, mapped once by {@link toTransportError} (a
 * {@link TransportError}, or a {@link ConflictError} for a unique-index violation).
 */
export interface PocketBaseClient {
  /** The server base URL. */
  readonly url: string;
  /** The SDK client (for realtime subscriptions and `pb.filter`). Requests should go through {@link PocketBaseClient.call}. */
  readonly pb: PocketBase;
  /** The id of the authenticated node record; `undefined` before {@link PocketBaseClient.authenticate} or for guests. */
  readonly nodeId: string | undefined;
  /**
   * Authenticates as the configured node (no-op for a guest). The first successful login also
   * checks `GET /nxs/version`: the server must run the `pb_hooks` bundle of this client's version
   * (`NXS_HOOKS_VERSION`), which binds origins to their node at write time.
   * @returns The node record id.
   * @throws TransportError `transport/unauthorized` for refused credentials (the message names the
   *   auth collection and URL), `server/incompatible` when the server lacks the nxs-sync schema or
   *   hooks bundle (or runs another version of it), `transport/unavailable` when unreachable.
   */
  authenticate(): Promise<string | undefined>;
  /**
   * Runs one SDK call with the retry policy (network errors and 5xx only), re-authenticating once
   * on a 401, and maps any failure with {@link toTransportError}.
   * @param what - Short description for error messages.
   * @param fn - The SDK call.
   * @param options - `retry: false` for a single attempt; `signal` to abort the retries.
   * @throws TransportError with the code of {@link toTransportError}; ConflictError `conflict`
   *   (not retried) when the write violates a unique index (`fields` names its columns).
   */
  call<T>(
    what: string,
    fn: (pb: PocketBase) => Promise<T>,
    options?: { readonly retry?: boolean; readonly signal?: AbortSignal },
  ): Promise<T>;
  /**
   * One `GET /api/health` without retry.
   * @returns True when the server answered 200.
   */
  health(timeoutMs?: number): Promise<boolean>;
  /** Unsubscribes every realtime topic and cancels pending requests. */
  close(): void;
}

/**
 * Installs the `eventsource` polyfill as `globalThis.EventSource` when the runtime lacks one.
 * Called by every client factory; never at import time.
 */
export function installEventSource(): void {
  const g = globalThis as { EventSource?: unknown };
  if (typeof g.EventSource === "undefined") g.EventSource = EventSourcePolyfill;
}

/**
 * Checks that `url` is a usable server base URL: an absolute `http://` or `https://` URL with a
 * host (`127.0.0.1:8090` without a scheme is not one: it would be read as the scheme `127.0.0.1:`).
 * @param url - The endpoint as configured.
 * @param what - Which option it came from, for the message.
 * @returns `url` unchanged.
 * @throws NxsError `config/invalid` saying how to write it.
 */
export function assertEndpointUrl(url: string, what = "endpoint"): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (
    parsed === undefined ||
    (parsed.protocol !== "http:" && parsed.protocol !== "https:") ||
    parsed.hostname === ""
  ) {
    const hint = /^[a-z][a-z0-9+.-]*:\/\//i.test(url)
      ? "use http:// or https:// with a host"
      : `write it with its scheme, e.g. "http://${url}"`;
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `${what} ${JSON.stringify(url)} is not an http(s) URL with a host: ${hint}`,
    );
  }
  return url;
}

/**
 * The underlying failure of a request that got no HTTP answer: the Node system error (its `code`:
 * `ECONNREFUSED`, `ENOTFOUND`, `ECONNRESET`, …) or the timeout, found in the SDK error's
 * `originalError` and its `cause` chain.
 */
function networkFailure(start: unknown): { readonly detail: string; readonly cause: Error } | undefined {
  let e: unknown = start;
  for (let depth = 0; depth < 5 && e instanceof Error; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^E[A-Z_]+$/.test(code)) {
      const message = e.message === "" ? code : e.message;
      return { detail: message.includes(code) ? message : `${code}: ${message}`, cause: e };
    }
    if (e.name === "TimeoutError") return { detail: `timeout: ${e.message}`, cause: e };
    e = e.cause;
  }
  return undefined;
}

/** PocketBase's code of a field whose value breaks a unique index. */
const NOT_UNIQUE = "validation_not_unique";

/** One answer of PocketBase: its status, message and field errors. */
interface Answer {
  readonly status: number;
  readonly message: string;
  readonly data: Readonly<Record<string, unknown>>;
  /** The index of the failed request when the answer is a batch's (`/api/batch`). */
  readonly request?: string;
}

const asRecord = (v: unknown): Readonly<Record<string, unknown>> =>
  typeof v === "object" && v !== null ? (v as Record<string, unknown>) : {};

/**
 * The answer that explains a failure: the error's own, or for `/api/batch` (which answers 400 with
 * `data.requests.<index>.response`) that of its failed request.
 */
function answerOf(error: ClientResponseError): Answer {
  const response = asRecord(error.response);
  const own: Answer = {
    status: error.status,
    message: typeof response.message === "string" ? response.message : error.message,
    data: asRecord(response.data),
  };
  const requests = asRecord(own.data.requests);
  const [index, failed] = Object.entries(requests)[0] ?? [];
  if (error.status !== 400 || index === undefined) return own;
  const inner = asRecord(asRecord(failed).response);
  return {
    status: typeof inner.status === "number" ? inner.status : error.status,
    message: typeof inner.message === "string" ? inner.message : own.message,
    data: asRecord(inner.data),
    request: index,
  };
}

/**
 * The fields of the unique index a write violated, as PocketBase names them (each column of the
 * index gets `validation_not_unique`; for `/api/batch`, those of its failed request).
 * @param error - What a call threw: a {@link ConflictError}, an nxs-sync error whose `cause` is the
 *   SDK's error, or the SDK's `ClientResponseError` itself.
 * @returns The fields, empty when `error` is not a unique violation.
 */
export function uniqueViolationFields(error: unknown): readonly string[] {
  if (error instanceof ConflictError && error.fields.length > 0) return error.fields;
  const cause = isNxsError(error) ? error.cause : error;
  if (!(cause instanceof ClientResponseError) || cause.status !== 400) return [];
  const answer = answerOf(cause);
  if (answer.status !== 400) return [];
  return Object.entries(answer.data)
    .filter(([, v]) => (v as { code?: unknown } | null)?.code === NOT_UNIQUE)
    .map(([k]) => k);
}

/**
 * Whether a write failed on a unique index: the one check every caller uses instead of reading
 * PocketBase's answer itself.
 * @param error - What a call threw (see {@link uniqueViolationFields}).
 * @param fields - When given, every one of them must be a field of the violated index (a violation
 *   of another unique index is then a failure, not a duplicate).
 * @returns True for a unique violation (on `fields`).
 * @example
 * ```ts
 * const client = createPocketBaseClient({ url, auth });
 * try {
 *   await client.call("write ack", (pb) => pb.collection("nxs_acks").create({ doc: "d", replica: "r" }));
 * } catch (e) {
 *   if (!isUniqueViolation(e, ["doc", "replica"])) throw e; // else it exists: update it
 * }
 * ```
 */
export function isUniqueViolation(error: unknown, fields?: readonly string[]): boolean {
  const violated = uniqueViolationFields(error);
  if (violated.length === 0) return false;
  return fields === undefined || fields.every((f) => violated.includes(f));
}

/** The collection a `/api/collections/<name>/…` URL names. */
function collectionOfUrl(url: string): string | undefined {
  const m = /\/api\/collections\/([^/?#]+)/.exec(url);
  if (m?.[1] === undefined) return undefined;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

/**
 * Maps any error of an SDK call to a typed error, keeping the original as `cause`. This is the one
 * place PocketBase answers become nxs-sync errors:
 * - network errors, timeouts, 5xx, 408 and 429 → `transport/unavailable` (retryable; a request
 *   that got no answer names why in the message, e.g. `connect ECONNREFUSED 127.0.0.1:8090`,
 *   `getaddrinfo ENOTFOUND host`, `timeout: …`, and keeps Node's error, with its `code`, as `cause`);
 * - 401/403 → `transport/unauthorized`;
 * - a 400 naming unique-index fields (`validation_not_unique`) → {@link ConflictError} `conflict`
 *   (not retryable: the same write fails again) with those `fields`;
 * - a 404 "Missing collection context" (the collection does not exist there) →
 *   `server/incompatible` naming the collection and how to install the schema;
 * - other 4xx → `transport/rejected`; an abort → `aborted`.
 * @param error - What the SDK threw.
 * @param what - Short description of the request, used in the message.
 * @returns The typed error (the same error when it is already an nxs-sync error).
 */
export function toTransportError(error: unknown, what: string): NxsError {
  if (isNxsError(error)) return error;
  if (error instanceof ClientResponseError) {
    const status = error.status;
    const detail = typeof error.response?.message === "string" ? error.response.message : error.message;
    if (error.isAbort) {
      return new TransportError(ErrorCode.Aborted, `${what}: aborted`, { cause: error });
    }
    const fields = uniqueViolationFields(error);
    if (fields.length > 0) {
      return new ConflictError(
        `${what}: conflict: a record with the same ${fields.join(", ")} exists (${status} ${detail})`,
        { cause: error, fields, retryable: false },
      );
    }
    const answer = answerOf(error);
    if (answer.status === 404 && /collection context/i.test(answer.message)) {
      // PocketBase: 404 "Missing collection context." (records routes) or "Missing or invalid
      // collection context." (auth routes, updates) when the collection does not exist there.
      const name =
        answer.request === undefined
          ? `collection ${collectionOfUrl(error.url) ?? "(unknown)"}`
          : `collection that request ${answer.request} of the batch names`;
      return new TransportError(
        ErrorCode.ServerIncompatible,
        `${what}: the server has no ${name} (404 ${answer.message}): ${SCHEMA_FIX}`,
        { cause: error, status },
      );
    }
    if (status === 0) {
      // No answer at all: say why (refused, unknown host, timeout) and keep Node's error as the cause.
      const net = networkFailure(error.originalError);
      return new TransportError(
        ErrorCode.TransportUnavailable,
        `${what}: server unavailable (${net?.detail ?? detail})`,
        { cause: net?.cause ?? error, retryable: true },
      );
    }
    // A 503 inside a batch (a fenced server refuses each write with one) is the server's answer too.
    if (status >= 500 || answer.status >= 500 || status === 408 || status === 429) {
      const why = answer.status >= 500 && status < 500 ? answer.message : detail;
      return new TransportError(ErrorCode.TransportUnavailable, `${what}: server unavailable (${why})`, {
        cause: error,
        status: status || undefined,
        retryable: true,
      });
    }
    if (status === 401 || status === 403) {
      return new TransportError(
        ErrorCode.TransportUnauthorized,
        `${what}: unauthorized (${status} ${detail})`,
        {
          cause: error,
          status,
        },
      );
    }
    return new TransportError(ErrorCode.TransportRejected, `${what}: rejected (${status} ${detail})`, {
      cause: error,
      status,
    });
  }
  const name = (error as { name?: unknown } | null)?.name;
  if (name === "AbortError")
    return new TransportError(ErrorCode.Aborted, `${what}: aborted`, { cause: error });
  const net = networkFailure(error);
  return new TransportError(
    ErrorCode.TransportUnavailable,
    `${what}: ${net === undefined ? String(error) : `server unavailable (${net.detail})`}`,
    { cause: net?.cause ?? error, retryable: true },
  );
}

/**
 * Creates a PocketBase SDK client the nxs-sync way: auto-cancellation off, requests over keep-alive
 * `node:http` with a per-request timeout, the EventSource polyfill
 * installed. {@link closeSdkClient} closes it.
 * @param url - Server base URL.
 * @param requestTimeoutMs - Per-request timeout (not applied to the SSE stream). Default 5000.
 * @returns A raw SDK client.
 * @throws NxsError `config/invalid` when `requestTimeoutMs` is not a finite number >= 1.
 */
export function createSdkClient(url: string, requestTimeoutMs = 5000): PocketBase {
  checkNumberOption("requestTimeoutMs", requestTimeoutMs, { min: 1 });
  installEventSource();
  const pb = new PocketBase(url);
  pb.autoCancellation(false);
  const client = createHttpFetch({ timeoutMs: requestTimeoutMs });
  const beforeSend: NonNullable<PocketBase["beforeSend"]> = (u, options) => {
    options.fetch ??= client.fetch as typeof fetch;
    return { url: u, options };
  };
  pb.beforeSend = beforeSend;
  sdkHttp.set(pb, { client, beforeSend });
  return pb;
}

/**
 * Creates a record the way `pb.collection(name).create(body)` does (the client's token, JSON body,
 * the same `ClientResponseError` on failure), without the SDK's request pipeline (option
 * normalization, a scan of the body for files, query serialization): a gateway's push is this
 * request, and the pipeline cost ~70 us of its ~300 us before the request left (CPU profile of the
 * latency bench). Falls back to the SDK for clients not made by {@link createSdkClient}, and
 * when someone replaced its `beforeSend` or set an `afterSend` (those hooks apply to every request).
 * @param pb - An SDK client made by {@link createSdkClient}.
 * @param collection - Collection name.
 * @param body - The record (no files).
 * @returns The created record as the server answers it.
 * @throws ClientResponseError as the SDK would.
 */
export async function createRecord(
  pb: PocketBase,
  collection: string,
  body: Readonly<Record<string, unknown>>,
): Promise<Record<string, unknown>> {
  const own = sdkHttp.get(pb);
  // Hooks someone else installed apply to every request: go through the SDK then.
  if (own === undefined || pb.beforeSend !== own.beforeSend || pb.afterSend !== undefined) {
    return pb.collection(collection).create(body, { requestKey: null });
  }
  const client = own.client;
  const url = pb.buildURL(`/api/collections/${encodeURIComponent(collection)}/records`);
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    "Accept-Language": pb.lang,
  };
  if (pb.authStore.token) headers.Authorization = pb.authStore.token;
  let res: Awaited<ReturnType<HttpClient["fetch"]>>;
  try {
    res = await client.fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  } catch (e) {
    throw new ClientResponseError(e);
  }
  let data: Record<string, unknown> = {};
  try {
    data = (await res.json()) as Record<string, unknown>;
  } catch {
    // An empty or non-JSON answer: the SDK reads {} too.
  }
  if (res.status >= 400) throw new ClientResponseError({ url: res.url, status: res.status, data });
  return data;
}

/** The keep-alive HTTP client of each SDK client made by {@link createSdkClient}, closed with it. */
const sdkHttp = new WeakMap<
  PocketBase,
  { readonly client: HttpClient; readonly beforeSend: NonNullable<PocketBase["beforeSend"]> }
>();

/**
 * Closes what {@link createSdkClient} opened for `pb`: its realtime connection and idle keep-alive
 * sockets. Requests in flight finish.
 * @param pb - An SDK client made by {@link createSdkClient} (others: only realtime is closed).
 */
export function closeSdkClient(pb: PocketBase): void {
  pb.realtime.unsubscribe().catch(() => {});
  sdkHttp.get(pb)?.client.close();
}

/** The fixed id of PocketBase's `_superusers` collection (the same on every server). */
export const SUPERUSERS_COLLECTION_ID = "pbc_3142635823";

/** Whether `collection` (a name or id) names `_superusers`. */
function isSuperuserCollection(collection: string | undefined): boolean {
  return collection === "_superusers" || collection === SUPERUSERS_COLLECTION_ID;
}

/** Whether `token` is a `_superusers` token (its `collectionId` claim); unreadable tokens are not. */
function isSuperuserToken(token: string): boolean {
  const claims = getTokenPayload(token) as { collectionId?: unknown; collectionName?: unknown };
  return claims.collectionId === SUPERUSERS_COLLECTION_ID || claims.collectionName === "_superusers";
}

/**
 * Checks the numeric options of {@link createPocketBaseClient} (p-retry would otherwise throw a
 * `RangeError`/`TypeError` at the first request).
 * @param options - The client's options.
 * @throws NxsError `config/invalid` naming the option.
 */
function checkClientOptions(options: PocketBaseClientOptions): void {
  checkNumberOption("requestTimeoutMs", options.requestTimeoutMs, { min: 1 });
  const retries = options.retry?.retries;
  if (retries !== Number.POSITIVE_INFINITY)
    checkNumberOption("retry.retries", retries, { min: 0, integer: true });
  checkNumberOption("retry.minTimeoutMs", options.retry?.minTimeoutMs, { min: 0 });
  checkNumberOption("retry.maxTimeoutMs", options.retry?.maxTimeoutMs, {
    min: options.retry?.minTimeoutMs ?? 0,
  });
  checkNumberOption("refreshBeforeS", options.refreshBeforeS, { min: 0 });
}

/**
 * Creates the client of one server, authenticated (lazily) as a node.
 * @param options - URL, credentials, timeouts and retry policy.
 * @returns A {@link PocketBaseClient}; call `authenticate()` (or any `call`) to log in.
 * @throws ValidationError `schema/invalid` when `auth.collection` is `_superusers` (by name or by its
 *   id `pbc_3142635823`) or `auth.token` is a superuser token; NxsError
 *   `config/invalid` when `url` is not an `http(s)://` URL with a host, or a timeout, a retry
 *   count or `refreshBeforeS` is not a number it takes (negative, not finite, a fraction of a retry).
 * @example
 * ```ts
 * const c = createPocketBaseClient({ url: "http://127.0.0.1:8090", auth: { email, password } });
 * await c.authenticate();
 * const page = await c.call("list", (pb) => pb.collection("nxs_changes").getList(1, 10));
 * ```
 */
export function createPocketBaseClient(options: PocketBaseClientOptions): PocketBaseClient {
  const auth = options.auth;
  if (
    auth !== undefined &&
    (isSuperuserCollection(auth.collection) || ("token" in auth && isSuperuserToken(auth.token)))
  ) {
    // Superusers bypass every API rule: run-time clients authenticate as nodes only.
    throw new ValidationError("nxs-sync clients authenticate as nodes, never as superusers");
  }
  assertEndpointUrl(options.url, "server URL");
  checkClientOptions(options);
  // A logger that throws must not fail the request that logged.
  const logger = guardLogger(options.logger ?? silentLogger);
  const pb = createSdkClient(options.url, options.requestTimeoutMs ?? 5000);
  const retry = options.retry ?? {};
  const collection = options.auth?.collection ?? NODES_COLLECTION;
  let nodeId: string | undefined;
  let authPromise: Promise<string | undefined> | undefined;
  /** Whether this server's hooks bundle was checked (once per client, i.e. per endpoint). */
  let hooksChecked = false;

  /** The id of a logged-in record that is not a superuser; else clears the session and throws. */
  function notSuperuser(record: { id: string; collectionId?: string; collectionName?: string }): string {
    if (isSuperuserCollection(record.collectionId) || isSuperuserCollection(record.collectionName)) {
      pb.authStore.clear();
      throw new ValidationError("nxs-sync clients authenticate as nodes, never as superusers");
    }
    return record.id;
  }

  /** Logs in; every refusal says which auth collection was tried, at which URL, and what to fix. */
  async function login(auth: NodeAuth): Promise<string> {
    const what = `login to ${collection} at ${options.url}`;
    try {
      if ("token" in auth) {
        // Refresh the token in use (itself renewed by earlier refreshes), else start from the given one.
        if (!pb.authStore.isValid) pb.authStore.save(auth.token, null);
        return notSuperuser((await pb.collection(collection).authRefresh()).record);
      }
      return notSuperuser(
        (await pb.collection(collection).authWithPassword(auth.email, auth.password)).record,
      );
    } catch (e) {
      if (e instanceof ValidationError) throw e;
      pb.authStore.clear();
      const err = toTransportError(e, what);
      if (!(err instanceof TransportError) || err.code === ErrorCode.TransportUnavailable) throw err;
      if (err.code === ErrorCode.Aborted) throw err;
      if (err.status === 404) {
        // PocketBase: 404 "Missing or invalid collection context." when the collection does not exist.
        throw new TransportError(
          ErrorCode.ServerIncompatible,
          `${what}: the server has no auth collection ${collection} (404): ${
            collection === NODES_COLLECTION || collection === REPLICATORS_COLLECTION
              ? SCHEMA_FIX
              : `auth.collection names a collection that does not exist there, or ${SCHEMA_FIX}`
          }`,
          { cause: e, status: 404 },
        );
      }
      // PocketBase answers 400 "Failed to authenticate." to wrong credentials.
      const other = collection === REPLICATORS_COLLECTION ? NODES_COLLECTION : REPLICATORS_COLLECTION;
      const hint =
        "token" in auth
          ? "the token is expired or was issued by another server or collection: give fresh credentials"
          : `check the email and password, and that the account is a record of ${collection} on this server (gateways log in to ${NODES_COLLECTION}, the replicator and compactor to ${REPLICATORS_COLLECTION}; an account of ${other} needs auth.collection "${other}")`;
      throw new TransportError(ErrorCode.TransportUnauthorized, `${err.message}: refused; ${hint}`, {
        cause: e,
        status: err.status,
      });
    }
  }

  /** `GET /nxs/version`: the server must run the hooks bundle of this client's version. */
  async function checkHooks(): Promise<void> {
    const http = (sdkHttp.get(pb) as { client: HttpClient }).client;
    const what = `check the nxs-sync hooks bundle at ${options.url}`;
    let status: number;
    let body: unknown;
    try {
      // With the session's token: the check then counts as the account's (rate limits of `/nxs/`
      // for authenticated accounts), not a guest's that anyone on the same address can exhaust.
      const token = pb.authStore.token;
      const res = await http.fetch(pb.buildURL(NXS_VERSION_PATH), {
        method: "GET",
        ...(token ? { headers: { Authorization: token } } : {}),
      });
      status = res.status;
      body = await res.json().catch(() => undefined);
    } catch (e) {
      throw toTransportError(new ClientResponseError(e), what);
    }
    if (status >= 500 || status === 429) {
      throw toTransportError(new ClientResponseError({ status, url: options.url, data: body }), what);
    }
    checkHooksVersion(options.url, status, body);
  }

  async function doAuth(): Promise<string | undefined> {
    const auth = options.auth;
    if (auth === undefined) return undefined;
    const id = await login(auth);
    if (!hooksChecked) {
      await checkHooks();
      hooksChecked = true;
    }
    nodeId = id;
    return nodeId;
  }

  function authenticate(): Promise<string | undefined> {
    if (authPromise === undefined) {
      authPromise = doAuth().finally(() => {
        authPromise = undefined;
      });
    }
    return authPromise;
  }

  const refreshBeforeS = options.refreshBeforeS ?? 600;
  /** The token last looked at, and when (epoch ms) it is due for a refresh: decoded once per token. */
  let seenToken = "";
  let refreshAt = 0;
  /** Whether the node token is missing or expires soon. */
  const needsAuth = (): boolean => {
    if (options.auth === undefined) return false;
    const token = pb.authStore.token;
    if (token !== seenToken) {
      if (token !== "" && isSuperuserToken(token)) {
        // Someone saved a superuser token into this client's auth store.
        pb.authStore.clear();
        throw new ValidationError("nxs-sync clients authenticate as nodes, never as superusers");
      }
      seenToken = token;
      const exp = token === "" ? undefined : (getTokenPayload(token) as { exp?: unknown }).exp;
      // A token that lives no longer than refreshBeforeS is renewed halfway through its life, not
      // at every request (a login per request would hit the server's auth rate limit).
      const now = Date.now();
      refreshAt =
        typeof exp === "number" ? Math.max((exp - refreshBeforeS) * 1000, now + (exp * 1000 - now) / 2) : 0;
    }
    return token === "" || Date.now() >= refreshAt;
  };

  async function once<T>(what: string, fn: (pb: PocketBase) => Promise<T>): Promise<T> {
    if (needsAuth()) await authenticate();
    try {
      return await fn(pb);
    } catch (e) {
      const err = toTransportError(e, what);
      // An expired or revoked token: log in again once (password auth only).
      if (
        err.code === ErrorCode.TransportUnauthorized &&
        (err as TransportError).status === 401 &&
        options.auth !== undefined &&
        "password" in options.auth
      ) {
        logger.debug(`[nxs-pocketbase] ${what}: 401, re-authenticating`);
        pb.authStore.clear();
        await authenticate();
        try {
          return await fn(pb);
        } catch (e2) {
          throw toTransportError(e2, what);
        }
      }
      throw err;
    }
  }

  return {
    url: options.url,
    pb,
    get nodeId() {
      return nodeId;
    },
    authenticate,
    async call(what, fn, callOptions = {}) {
      if (callOptions.retry === false) return once(what, fn);
      try {
        return await pRetry(() => once(what, fn), {
          retries: retry.retries ?? 3,
          minTimeout: retry.minTimeoutMs ?? 100,
          maxTimeout: retry.maxTimeoutMs ?? 1000,
          randomize: true,
          signal: callOptions.signal,
          shouldRetry: ({ error }) => isNxsError(error) && error.retryable,
          onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
            if (retriesLeft > 0 && isNxsError(error) && error.retryable) {
              logger.debug(`[nxs-pocketbase] ${what}: attempt ${attemptNumber} failed: ${error.message}`);
            }
          },
        });
      } catch (e) {
        throw toTransportError(e, what);
      }
    },
    async health(timeoutMs = 1000) {
      try {
        const http = (sdkHttp.get(pb) as { client: HttpClient }).client;
        await pb.health.check({
          fetch: ((u: string, init: object) => http.fetch(u, { ...init, timeoutMs })) as typeof fetch,
        });
      } catch {
        return false;
      }
      let due = false;
      try {
        due = needsAuth();
      } catch {
        // A superuser token in the store (cleared): the next request re-authenticates as the node.
      }
      if (due && pb.authStore.isValid) {
        // Renew a token that expires soon while the server is reachable (errors surface on requests).
        await authenticate().catch((e: unknown) =>
          logger.warn(`[nxs-pocketbase] token refresh failed: ${String(e)}`),
        );
      }
      return true;
    },
    close() {
      pb.cancelAllRequests();
      closeSdkClient(pb);
    },
  };
}
