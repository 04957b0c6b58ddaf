import {
  type Cancel,
  callGuarded,
  checkNumberOption,
  createEmitter,
  createReportThrottle,
  createSeededRandom,
  defaultLogger,
  ErrorCode,
  isNxsError,
  type Logger,
  NxsError,
  type RetryPolicy,
  type Scheduler,
  TransportError,
  throttleKey,
  ValidationError,
} from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { ClientResponseError } from "pocketbase";
import {
  type NodeAuth,
  type PocketBaseClient,
  REPLICATORS_COLLECTION,
  replicatorAuth,
  toTransportError,
  uniqueViolationFields,
} from "./client.js";
import type { RecordCheck, ReplicatedCollection } from "./collection-definition.js";
import { defaultReplicatedCollections } from "./collections/nxs.js";
import { checkRecordCollections, RECORDS_TOPIC } from "./collections/records.js";
import { createEndpointPool, type Endpoint } from "./failover.js";
import {
  isBelowPurgeFrontier,
  keyOf,
  MergeRules,
  mergeRecords,
  newestHolders,
  planCopies,
  planPurges,
  versionFields,
} from "./merge-plan.js";
import { createRealtimeSession, type RealtimeEvent, type RealtimeSession } from "./realtime-session.js";
import { createRecordSync, type RecordConflict, type RecordSync } from "./record-sync.js";
import { contentDigest, setBounded } from "./replicator-digest.js";
import type { ReportUntrusted } from "./replicator-snapshots.js";
import { Collections } from "./schema.js";

/** The predicate factory of records not to copy to a target: `skipAt`, else a `purge` policy's. */
function skipAtOf(coll: ReplicatedCollection): ReplicatedCollection["skipAt"] {
  return coll.skipAt ?? (coll.deletes?.kind === "purge" ? coll.deletes.skipAt : undefined);
}

/** One server of the replicator, with the credentials of a replicator account. */
export interface ReplicatorServer {
  readonly url: string;
  /** A replicator account (`ensureNode` with role `replicator`); `collection` defaults to `nxs_replicators`. */
  readonly auth: NodeAuth;
}

/** Options of {@link createReplicator}. */
export interface ReplicatorOptions {
  /** At least two servers. */
  readonly servers: readonly ReplicatorServer[];
  /**
   * Collections to replicate: a list, or a collection registry (its `replicated()` is read).
   * Default {@link defaultReplicatedCollections} (the nxs-sync ones).
   */
  readonly collections?: readonly ReplicatedCollection[] | { replicated(): readonly ReplicatedCollection[] };
  /**
   * Collections nxs-sync does not own (an app's `users`, its own data), replicated through the
   * `records` hook piece (`recordsHookPiece({ collections })` on every server, and
   * `recordsCollections()` in the schema): accounts with their password hashes, token keys and
   * OAuth2 links, deletes as tombstones, conflicts resolved by the servers and reported
   * (`conflict` event). See docs/accounts.md. Default: none.
   */
  readonly records?: readonly string[];
  /**
   * How long a tombstone of a `records` collection is kept once every server holds it (ms): a
   * restore from a backup younger than this cannot bring a deleted record back. Default 7 days.
   */
  readonly recordTombstoneRetentionMs?: number;
  /** Anti-entropy interval. Default 30 000 ms. */
  readonly intervalMs?: number;
  /**
   * Every this many anti-entropy rounds, compare full key lists even where digests agree (equal
   * head and count can hide two different holes). Default 10.
   */
  readonly fullSweepEvery?: number;
  /**
   * Most whole records a full sweep reads per collection to digest their content (each is read
   * once while its digest is cached); keys past it are compared by the next sweeps. Default 5000.
   */
  readonly contentReadsPerSweep?: number;
  /** Health poll interval per server (a paused server gives no SSE error). Default 1000 ms. */
  readonly healthIntervalMs?: number;
  /** Per-request timeout. Default 5000 ms. */
  readonly requestTimeoutMs?: number;
  /**
   * After an anti-entropy round, the replicator upserts its row of `nxs_replicator_status` on
   * every server it reached (rounds run, last error, the servers it sees; the server stamps the
   * time), at most once per this many ms: `nxs-sync status` shows it alive or stale, and
   * `nxs-sync restore` waits for it (a round after its fence). Default: the round interval, kept
   * within 1 000 .. 15 000 ms (15 000 at the default interval). A write that fails is reported,
   * never fatal.
   */
  readonly heartbeatMs?: number;
  /** Most concurrent writes per target server. Default 16. */
  readonly concurrency?: number;
  /**
   * When no server has been usable (reachable, and accepting this replicator's login) for this
   * long, the replicator reports it once: a `fatal` event, `onError`, an error line and
   * `status().lastError` (`nxs-replicator` then exits with code 4). It keeps trying meanwhile; a
   * server that comes back clears it. Default 60 000 ms.
   */
  readonly lostAllAfterMs?: number;
  /**
   * Repeats of one failure (same code, operation, collection and servers) within this long after
   * its report are counted, not reported; the count follows in one summary report at the end of
   * the window. Default 60 000 ms.
   */
  readonly reportWindowMs?: number;
  /**
   * Time and timers of the replicator's loops (the anti-entropy interval, its pool's health polls, the
   * backoff of subscribe retries, the `lostAllAfterMs` bound, report windows). Default `createTimerScheduler()` of
   * `@nxs-sync/core/node`; tests pass `createManualScheduler()`.
   */
  readonly scheduler?: Scheduler;
  /** Warnings and errors, one line each. Default core's `defaultLogger` (stderr); pass `silentLogger` to silence. */
  readonly logger?: Logger;
  /**
   * Errors of background work, already typed (quarantined records, refused logins, unreachable
   * servers, the `lostAllAfterMs` error), each reported once: repeats are rate-limited by
   * `reportWindowMs`.
   */
  readonly onError?: (error: Error) => void;
}

/** What {@link Replicator.status} returns. */
export interface ReplicatorStatus {
  /** `idle` before `start()`, `running`, `lost` while no server is usable, `stopped` after `stop()`. */
  readonly state: "idle" | "running" | "lost" | "stopped";
  /** Each server, in the order given. */
  readonly servers: readonly {
    readonly url: string;
    /**
     * `ok`: answers and accepted the login; `unreachable`: does not answer (down, frozen, cut off);
     * `refused`: answers but refused the login (wrong credentials, not a replicator account, schema
     * or hooks bundle missing).
     */
    readonly state: "ok" | "unreachable" | "refused";
    /** Why it is unreachable or refused (undefined when `ok`). */
    readonly lastError: NxsError | undefined;
  }[];
  /** Since when (scheduler ms) no server has been usable; undefined while one is. */
  readonly lostSince: number | undefined;
  /** The `lostAllAfterMs` error while every server stays lost past the bound, else undefined. */
  readonly lastError: NxsError | undefined;
}

/** What one anti-entropy round did. */
export interface SyncStats {
  /** Records copied (or overwritten under `lww`). */
  readonly copied: number;
  /** Records refused by `validate` this round (not copied; each is reported once and not fetched again). */
  readonly quarantined: number;
  /**
   * Records whose copy a target refused this round (a per-record failure, e.g. a 400): each reported,
   * skipped, and tried again next round; the rest of the round goes on.
   */
  readonly failed: number;
  /** Whole records read from the servers (to copy them, or to digest their content). */
  readonly fetched: number;
  /** Servers that did not answer this round (down, frozen, cut off). */
  readonly unreachable: readonly string[];
  /**
   * Servers that answered but refused this round's login or requests (`transport/unauthorized`,
   * `transport/rejected`, `server/incompatible`): a configuration problem, not an outage.
   */
  readonly refused: readonly string[];
  /** Key rows listed to compare (0 when every digest agreed). */
  readonly listed: number;
  /**
   * Tombstones purged (deleted) this round, under a tombstone policy with `purgeAfterMs` (see
   * `TombstoneOptions`).
   */
  readonly purged: number;
}

/** Events of a {@link Replicator}. */
export interface ReplicatorEvents {
  /** A record was written to `to` (by realtime or anti-entropy). */
  copied: { readonly collection: string; readonly from: string; readonly to: string; readonly key: string };
  /** A tombstone past its collection's `purgeAfterMs` was deleted at `url` (held nowhere else live). */
  purged: { readonly collection: string; readonly url: string; readonly key: string };
  /** A record failed validation and is not replicated. */
  quarantine: {
    readonly collection: string;
    readonly url: string;
    readonly recordId: string | undefined;
    readonly error: ValidationError;
  };
  /**
   * Two servers hold one key at the same version with different content (found by the full sweep's
   * content digests). Reported once per key until the digests change; the replicator does not
   * repair it (see docs/pocketbase.md, "The replicator").
   */
  divergence: {
    readonly collection: string;
    /** The key, as JSON of its fields' values (e.g. `["doc","<origin>",1]`). */
    readonly key: string;
    /** Each server holding the key at that version, with its record id and content digest. */
    readonly servers: readonly { readonly url: string; readonly recordId: string; readonly digest: string }[];
  };
  /**
   * A conflict a server resolved while importing a record of a `records` collection: two writes of
   * one record while the servers were apart (the later one won), or two accounts with one email
   * (the one created first kept it). Also logged as a warning.
   */
  conflict: RecordConflict;
  /** An anti-entropy round finished. */
  sync: SyncStats;
  /** A server's realtime (re)connected. */
  connected: { readonly url: string };
  /**
   * The replicator cannot do its job: every server has been lost (unreachable or refusing the
   * login) for longer than `lostAllAfterMs` (code `transport/unavailable`, or
   * `transport/unauthorized` when every server refused). Once per episode; it keeps trying.
   */
  fatal: { readonly reason: "lost-all"; readonly error: NxsError };
}

/** Keeps collections identical on every server: realtime copy plus periodic anti-entropy. */
export interface Replicator {
  /**
   * Logs in to every server, subscribes and runs a first anti-entropy round (in the background for
   * servers that are down). A server that refuses the login is reported and tried again every
   * anti-entropy round.
   * @throws TransportError `transport/unauthorized` (or `server/incompatible`) when every server
   *   refused the login: the message names each server, the auth collection tried and the reason.
   *   The replicator is stopped then.
   */
  start(): Promise<void>;
  /** Where the replicator stands: each server's state, and whether all are lost past the bound. */
  status(): ReplicatorStatus;
  /**
   * Runs one anti-entropy round over every collection and server now (joins a round already
   * queued). `full: true` compares full key lists even where digests agree.
   */
  sync(options?: { readonly full?: boolean }): Promise<SyncStats>;
  /** Stops realtime, timers and clients. Idempotent. */
  stop(): Promise<void>;
  /** Registers an event listener; returns the function that removes it. */
  on<E extends keyof ReplicatorEvents>(
    event: E,
    listener: (payload: ReplicatorEvents[E]) => void,
  ): () => void;
}

interface Server {
  readonly url: string;
  /** Its endpoint in the replicator's pool: its client, and where its session is pinned. */
  readonly endpoint: Endpoint;
  readonly client: PocketBaseClient;
  /** The realtime session of every replicated collection on this server (set once, below). */
  session: RealtimeSession | undefined;
  /** The auth collection it logs in to. */
  readonly collection: string;
  /** Its health in the pool (set by the pool's `health` events only). */
  healthy: boolean;
  /** A subscription attempt is running (the session's, with retries on the scheduler). */
  subscribing: boolean;
  /** Why the last login failed when the server answered and refused it; undefined after a login. */
  refused: NxsError | undefined;
  /** The last failure that made it unreachable. */
  lastError: NxsError | undefined;
  /** When (scheduler ms) the last login was tried. */
  loginTriedAt: number;
  /** Keys this replicator wrote there recently (their realtime echo is skipped). */
  readonly echoes: Map<string, number>;
  /** Limits concurrent writes to this server (a burst of realtime events must not flood it). */
  readonly gate: <T>(task: () => Promise<T>) => Promise<T>;
}

/** A FIFO semaphore: at most `limit` tasks run at once. */
function createGate(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await task();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

/** Whether a failure means the server answered and said no (as opposed to not answering). */
function isRefusal(error: NxsError): boolean {
  return (
    error.code !== ErrorCode.TransportUnavailable &&
    error.code !== ErrorCode.Aborted &&
    error.code !== ErrorCode.Closed
  );
}

/**
 * What stays the same when one failure repeats across records: the status and field error codes of
 * a server's answer, Node's error code of a request that got none (`ECONNREFUSED`), or else the
 * message with record ids, quoted values and numbers masked.
 */
function failureSignature(error: Error): string {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && e instanceof Error; depth++, e = e.cause) {
    if (e instanceof ClientResponseError && e.status !== 0) {
      const fields = (e.response?.data ?? {}) as Record<string, { code?: unknown } | undefined>;
      const codes = Object.entries(fields).map(([f, v]) => `${f}:${String(v?.code)}`);
      return [String(e.status), ...codes.sort()].join(",");
    }
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^E[A-Z_]+$/.test(code)) return code;
  }
  return throttleKey(
    error.message.replace(/\brecord [a-z0-9]+:/g, "record #:").replace(/"(?:[^"\\]|\\.)*"/g, '"…"'),
  );
}

/**
 * The throttle key of a failure: its code, the operation (with its collection), the server or pair
 * of servers, and {@link failureSignature}. The same failure across many records is one key; another
 * code, status, field, operation or server is another.
 */
function reportKey(error: Error, op: string, where: string): string {
  const code = isNxsError(error) ? error.code : error.name;
  return `${code}|${op}|${where}|${failureSignature(error)}`;
}

/** `error` with the count of its repeats held back (same type, code and cause). */
function withRepeats(error: Error, repeats: number, sinceMs: number): Error {
  const message = `${error.message} (and ${repeats.toLocaleString("en-US")} more like it in the last ${Math.max(1, Math.round(sinceMs / 1000))} s)`;
  if (error instanceof TransportError) {
    return new TransportError(error.code, message, {
      cause: error.cause,
      status: error.status,
      retryable: error.retryable,
    });
  }
  if (error instanceof ValidationError) {
    return new ValidationError(message, {
      code: error.code as typeof ErrorCode.SchemaInvalid,
      issues: error.issues,
      cause: error.cause,
    });
  }
  if (isNxsError(error)) {
    return new NxsError(error.code, message, {
      cause: error.cause,
      retryable: error.retryable,
    });
  }
  return new Error(message, { cause: error });
}

/** The backoff of a server's subscribe attempts (they go on until one works, is refused, or `stop()`). */
const SUBSCRIBE_RETRY: RetryPolicy = Object.freeze({ minMs: 200, maxMs: 2000, factor: 2 });

const SYSTEM_FIELDS = new Set(["collectionId", "collectionName", "created", "updated", "expand"]);
const ECHO_LIMIT = 10_000;
/** Most refused records remembered (each reported once and not fetched again while remembered). */
const QUARANTINE_LIMIT = 10_000;
/** Most digest groups remembered as settled (same data under digests that differ for good). */
const SETTLED_LIMIT = 100_000;
/** Most content digests of records kept between full sweeps (per record id and version). */
const DIGEST_LIMIT = 100_000;
/** Most divergent keys remembered (each reported once until its digests change). */
const DIVERGENT_LIMIT = 10_000;
/** Records per request when reading whole records to digest them (change packs run up to 8 MiB). */
const DIGEST_CHUNK = 20;

/**
 * The body of a copy of `record`: its fields without the server-made ones, without the source's
 * record id unless the id is the collection's key (ids are chosen by authors: copying them would
 * let one author's two records collide in the target's id space), and with a string held in a
 * json field (`jsonFields`) as JSON text: PocketBase would read a plain `"12"` or `"true"` as the
 * JSON it looks like, and stores JSON text verbatim. Other values of json fields go as they are
 * (the server stores an object, array, number, boolean or null as sent).
 * @param coll - The collection (its key and json fields).
 * @param record - The record as a server answered it.
 * @returns The body to send to the records API (create or update).
 */
export function bodyOf(
  coll: Pick<ReplicatedCollection, "key" | "jsonFields">,
  record: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) if (!SYSTEM_FIELDS.has(k)) out[k] = v;
  if (!coll.key.includes("id")) delete out.id;
  for (const f of coll.jsonFields ?? []) {
    const v = out[f];
    if (typeof v === "string") out[f] = JSON.stringify(v);
  }
  return out;
}

/**
 * Whether a create failed because the target already holds a record at the collection's key: a
 * uniqueness failure on a key field (PocketBase names each column of the violated index). A
 * uniqueness failure on another field is a failure of that record, not a duplicate.
 */
function isKeyDuplicate(coll: ReplicatedCollection, e: unknown): boolean {
  const violated = uniqueViolationFields(e);
  return coll.key.some((k) => violated.includes(k));
}

/** PocketBase refuses a filter longer than 3,500 characters; a listing's joined filter stays below. */
const FILTER_CHARS = 3000;

/**
 * Joins filter clauses with `||` into as few filters as fit: at most 20 clauses and `FILTER_CHARS`
 * characters each (a clause longer than that alone goes alone).
 */
function joinFilters(clauses: readonly string[]): string[] {
  const out: string[] = [];
  let batch: string[] = [];
  let length = 0;
  for (const c of clauses) {
    if (batch.length > 0 && (batch.length === 20 || length + 4 + c.length > FILTER_CHARS)) {
      out.push(batch.join(" || "));
      batch = [];
      length = 0;
    }
    length += (batch.length > 0 ? 4 : 0) + c.length;
    batch.push(c);
  }
  if (batch.length > 0) out.push(batch.join(" || "));
  return out;
}

/**
 * Creates a server-to-server replicator. It writes through the record API (so hooks and realtime
 * fire on every server), authenticates as a replicator account (`nxs_replicators`, never a superuser), and is
 * safe multi-master: servers may take writes while cut off, and converge when they meet again.
 * It fails loudly: `start()` rejects when every server refuses the login, and a `fatal` event (plus
 * `onError` and `status().lastError`) says when no server has been usable for `lostAllAfterMs`.
 * @param options - Servers (two or more), collections, intervals, bounds, scheduler, logger.
 * @returns A stopped replicator; call `start()`.
 * @throws NxsError `config/invalid` with fewer than two servers, or an interval, bound or count
 *   that is not a finite number in range (e.g. `intervalMs: 0`, `concurrency: 1.5`).
 * @example
 * ```ts
 * const replicator = createReplicator({
 *   servers: [
 *     { url: "http://primary:8090", auth: { email: "repl@nodes.local", password } },
 *     { url: "http://secondary:8090", auth: { email: "repl@nodes.local", password } },
 *   ],
 * });
 * replicator.on("fatal", ({ error }) => console.error(error.code, error.message));
 * await replicator.start(); // rejects with transport/unauthorized when every login is refused
 * ```
 */
export function createReplicator(options: ReplicatorOptions): Replicator {
  if (options.servers.length < 2) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `createReplicator: at least two servers are needed (got ${options.servers.length}): list every server to keep identical in \`servers\``,
    );
  }
  for (const [name, min] of [
    ["intervalMs", 1],
    ["healthIntervalMs", 1],
    ["requestTimeoutMs", 1],
    ["heartbeatMs", 0],
    ["lostAllAfterMs", 0],
    ["reportWindowMs", 0],
    ["fullSweepEvery", 1],
    ["contentReadsPerSweep", 2],
    ["concurrency", 1],
  ] as const) {
    checkNumberOption(`createReplicator: ${name}`, options[name], {
      min,
      integer: name === "fullSweepEvery" || name === "contentReadsPerSweep" || name === "concurrency",
    });
  }
  const logger = options.logger ?? defaultLogger;
  const scheduler = options.scheduler ?? createTimerScheduler();
  /** The jitter of the subscribe backoff. */
  const random = createSeededRandom(Math.floor(Math.random() * 2 ** 32));
  const lostAllAfterMs = options.lostAllAfterMs ?? 60_000;
  const reportWindowMs = options.reportWindowMs ?? 60_000;
  const given = options.collections ?? defaultReplicatedCollections();
  const collections = "replicated" in given ? given.replicated() : given;
  const intervalMs = options.intervalMs ?? 30_000;
  const healthIntervalMs = options.healthIntervalMs ?? 1000;
  const fullSweepEvery = Math.max(1, options.fullSweepEvery ?? 10);
  const contentReadsPerSweep = Math.max(2, options.contentReadsPerSweep ?? 5000);
  let rounds = 0;
  let fullRequested = false;
  const heartbeatMs = options.heartbeatMs ?? Math.min(15_000, Math.max(1_000, intervalMs));
  /** When (scheduler ms) the last heartbeat was written. */
  let beatAt = Number.NEGATIVE_INFINITY;
  const auths = options.servers.map((s) => replicatorAuth(s.auth));
  /**
   * The health of every server, one endpoint each with its own login: it polls `/api/health` every
   * `healthIntervalMs` and takes the outcomes the replicator and its sessions report; one failure
   * marks a server down (a replicator copies to each server directly: there is nothing to fail over
   * to, so it never switches endpoint).
   */
  const pool = createEndpointPool({
    endpoints: options.servers.map((s, i) => ({ url: s.url, auth: auths[i] })),
    requestTimeoutMs: options.requestTimeoutMs,
    retry: { retries: 1, minTimeoutMs: 50, maxTimeoutMs: 200 },
    failover: {
      failureThreshold: 1,
      healthIntervalMs,
      healthTimeoutMs: Math.min(healthIntervalMs, 2000),
      switchEndpoints: false,
    },
    logger,
    scheduler,
    random,
  });
  const servers: Server[] = options.servers.map((s, i) => {
    const endpoint = pool.endpoints[i]!;
    return {
      url: s.url,
      endpoint,
      client: endpoint.client,
      session: undefined,
      collection: auths[i]!.collection ?? REPLICATORS_COLLECTION,
      healthy: true,
      subscribing: false,
      refused: undefined,
      lastError: undefined,
      loginTriedAt: Number.NEGATIVE_INFINITY,
      echoes: new Map(),
      gate: createGate(options.concurrency ?? 16),
    };
  });
  const events = createEmitter<ReplicatorEvents>((error, event) =>
    logger.error(`[nxs-replicator] ${String(event)} listener threw`, error),
  );
  /** Refused records (see {@link recordTag}), oldest first, at most `QUARANTINE_LIMIT`. */
  const quarantined = new Map<string, true>();
  let stopped = false;
  let started = false;
  let loops: Cancel[] = [];
  let running: Promise<SyncStats> | undefined;
  let queued: Promise<SyncStats> | undefined;
  /** Since when no server has been usable, and the task that fires at the bound. */
  let lostSince: number | undefined;
  let cancelLost: Cancel | undefined;
  let lostError: NxsError | undefined;

  const emit = events.emit;

  // ---- reports --------------------------------------------------------------------------------

  const throttle = createReportThrottle({ now: () => scheduler.now(), windowMs: reportWindowMs });
  /** Per throttle key: when it was last reported. */
  const reportedAt = new Map<string, number>();
  /** Per throttle key: the latest repeat held back, how many were, and the summary's timer. */
  const held = new Map<string, { error: Error; count: number; level: "warn" | "error"; cancel: Cancel }>();

  /** Logs one error (one line, with its code) and hands it to `onError`. */
  function deliver(error: Error, level: "warn" | "error"): void {
    const code = isNxsError(error) ? `${error.code}: ` : "";
    logger[level](`[nxs-replicator] ${code}${error.message}`);
    // A handler that throws, or an async one that rejects, is logged: never an unhandled rejection.
    callGuarded("onError", options.onError, [error], (failure) =>
      logger.error(`[nxs-replicator] ${failure.message}`, failure.cause),
    );
  }

  function remember(key: string): void {
    setBounded(reportedAt, key, scheduler.now(), 1000);
  }

  /** Reports what was held back under `key`: its latest repeat, with the count. */
  function flush(key: string): void {
    const pending = held.get(key);
    if (pending === undefined) return;
    held.delete(key);
    pending.cancel();
    const since = reportedAt.get(key);
    throttle.admit(key); // due now: opens the next window
    remember(key);
    deliver(
      withRepeats(pending.error, pending.count, scheduler.now() - (since ?? scheduler.now())),
      pending.level,
    );
  }

  /**
   * Reports a failure of background work, at most once per `reportWindowMs` per kind of failure
   * (see {@link reportKey}): the first at once, the repeats as one summary with their count at the
   * end of the window.
   * @param op - The operation (with its collection), e.g. `copy nxs_changes`.
   * @param where - The server or servers, e.g. `http://a → http://b`.
   */
  function reportError(error: Error, op: string, where: string, level: "warn" | "error" = "warn"): void {
    if (stopped) return;
    const key = reportKey(error, op, where);
    const decision = throttle.admit(key);
    if (decision.report) {
      const pending = held.get(key);
      held.delete(key);
      pending?.cancel();
      const since = reportedAt.get(key);
      remember(key);
      const repeats = pending?.count ?? decision.suppressed;
      deliver(
        repeats > 0 ? withRepeats(error, repeats, scheduler.now() - (since ?? scheduler.now())) : error,
        level,
      );
      return;
    }
    const pending = held.get(key);
    if (pending !== undefined) {
      pending.error = error;
      pending.count++;
      return;
    }
    const due = (reportedAt.get(key) ?? scheduler.now()) + reportWindowMs - scheduler.now();
    held.set(key, { error, count: 1, level, cancel: scheduler.schedule(due, () => flush(key)) });
  }

  // ---- server states and the lost-all bound ---------------------------------------------------

  const usable = (s: Server): boolean => s.healthy && s.refused === undefined;

  /** A request to `s` found it unreachable: the pool marks it down (one failure is enough). */
  function markUnreachable(s: Server, error: NxsError): void {
    s.lastError = error;
    pool.reportFailure(s.endpoint, error.message);
    updateLost();
  }

  /**
   * A server's health changed in the pool (a poll, a failed request or session attempt, a dropped
   * stream, or a success). Back up: resubscribe if needed (an open session restarts itself when it
   * may have missed events) and catch up.
   */
  pool.on("health", ({ url, healthy, reason }) => {
    const server = servers.find((s) => s.url === url);
    if (server === undefined || server.healthy === healthy) return;
    server.healthy = healthy;
    if (!healthy) {
      // A failed request set its own error just before; a poll or a dropped stream did not.
      server.lastError ??= new TransportError(
        ErrorCode.TransportUnavailable,
        `${url}: ${reason ?? "unreachable"}`,
      );
      if (!stopped) logger.warn(`[nxs-replicator] ${url} is unreachable (${reason ?? "unreachable"})`);
      updateLost();
      return;
    }
    server.lastError = undefined;
    if (stopped) return;
    updateLost();
    logger.info(`[nxs-replicator] ${url} is reachable again: resubscribing and catching up`);
    if (!subscribed(server)) subscribeInBackground(server);
    scheduleSync();
  });

  /** Starts or ends a "no server usable" episode; at `lostAllAfterMs` into one, reports it. */
  function updateLost(): void {
    if (stopped || !started) return;
    if (servers.some(usable)) {
      if (lostSince === undefined) return;
      lostSince = undefined;
      cancelLost?.();
      cancelLost = undefined;
      if (lostError !== undefined) logger.warn("[nxs-replicator] a server is usable again");
      lostError = undefined;
      return;
    }
    if (lostSince !== undefined) return;
    lostSince = scheduler.now();
    cancelLost = scheduler.schedule(lostAllAfterMs, onLostAll);
  }

  function onLostAll(): void {
    cancelLost = undefined;
    if (stopped || lostSince === undefined) return;
    const allRefused = servers.every((s) => s.refused !== undefined);
    const why = servers
      .map((s) =>
        s.refused !== undefined
          ? `${s.url} refused the login to ${s.collection} (${s.refused.message})`
          : `${s.url} unreachable (${s.lastError?.message ?? "no answer to GET /api/health"})`,
      )
      .join("; ");
    const error = new TransportError(
      allRefused ? ErrorCode.TransportUnauthorized : ErrorCode.TransportUnavailable,
      `nxs-replicator: no server usable for ${Math.round((scheduler.now() - lostSince) / 1000)} s (lostAllAfterMs ${lostAllAfterMs}): ${why}`,
      {
        cause: servers.map((s) => s.refused ?? s.lastError).find((e) => e !== undefined),
        retryable: !allRefused,
      },
    );
    lostError = error;
    deliver(error, "error");
    emit("fatal", { reason: "lost-all", error });
  }

  /**
   * Logs in to one server and records the outcome: a refusal (the server answered no) or an
   * unreachable server.
   * @throws The typed failure.
   */
  async function login(s: Server): Promise<void> {
    try {
      await s.client.authenticate();
      s.refused = undefined;
    } catch (e) {
      const err = toTransportError(e, `login to ${s.collection} at ${s.url}`);
      if (isRefusal(err)) s.refused = err;
      else if (err.code === ErrorCode.TransportUnavailable) markUnreachable(s, err);
      throw err;
    } finally {
      s.loginTriedAt = scheduler.now();
      updateLost();
    }
  }

  const reportRefusal = (s: Server, error: NxsError): void =>
    reportError(error, `login to ${s.collection}`, s.url, "error");

  /**
   * What identifies a refused record: its server, collection, id and version (its `lww` field or
   * `log` end: an `lww` record updated since may be valid now).
   */
  function recordTag(coll: ReplicatedCollection, url: string, record: Readonly<Record<string, unknown>>) {
    const tag = `${url}|${coll.name}|${String(record.id)}`;
    return versionFields(coll).reduce((t, f) => `${t}|${String(record[f])}`, tag);
  }

  /** Reports a record not to be copied, once while it is remembered (the newest `QUARANTINE_LIMIT`). */
  function quarantine(
    tag: string,
    collection: string,
    url: string,
    recordId: string | undefined,
    error: ValidationError,
  ) {
    if (quarantined.has(tag)) return;
    setBounded(quarantined, tag, true, QUARANTINE_LIMIT);
    emit("quarantine", { collection, url, recordId, error });
    reportError(error, `quarantine ${collection}`, url);
  }

  /**
   * Validates (`validate`, then the check `validateAt` made for `from`); reports a refused record
   * once. @returns True when the record may be copied.
   */
  function admit(
    coll: ReplicatedCollection,
    from: Server,
    record: Readonly<Record<string, unknown>>,
    check?: RecordCheck,
  ): boolean {
    let error: ValidationError | undefined;
    try {
      error = coll.validate?.(record) ?? check?.(record);
    } catch (e) {
      // A check that throws refuses the record (a user callback never ends a round).
      error = new ValidationError(`${coll.name} record ${String(record.id)}: its check threw: ${String(e)}`, {
        cause: e,
      });
    }
    if (error === undefined) return true;
    const recordId = typeof record.id === "string" ? record.id : undefined;
    quarantine(recordTag(coll, from.url, record), coll.name, from.url, recordId, error);
    return false;
  }

  /** The `skipAt` reporter for target `to`: an untrusted record there is reported once. */
  const reportUntrusted =
    (to: Server): ReportUntrusted =>
    (collection, recordId, error) =>
      // The tag of an immutable collection's record (snapshots): the same record refused as a source
      // is not reported again, nor read again.
      quarantine(`${to.url}|${collection}|${recordId}`, collection, to.url, recordId, error);

  function rememberEcho(to: Server, coll: ReplicatedCollection, key: string): void {
    setBounded(to.echoes, `${coll.name}|${key}`, scheduler.now(), ECHO_LIMIT);
  }

  /** Writes `record` (from `from`) to `to`. @returns True when `to` changed. */
  async function copy(
    coll: ReplicatedCollection,
    from: Server,
    to: Server,
    record: Readonly<Record<string, unknown>>,
  ): Promise<boolean> {
    return to.gate(() => copyNow(coll, from, to, record));
  }

  async function copyNow(
    coll: ReplicatedCollection,
    from: Server,
    to: Server,
    record: Readonly<Record<string, unknown>>,
  ): Promise<boolean> {
    const key = keyOf(coll, record);
    const rule = coll.merge ?? MergeRules.immutable;
    rememberEcho(to, coll, key);
    try {
      await to.client.call(`replicate ${coll.name} to ${to.url}`, (pb) =>
        pb.collection(coll.name).create(bodyOf(coll, record), { requestKey: null }),
      );
      emit("copied", { collection: coll.name, from: from.url, to: to.url, key });
      return true;
    } catch (e) {
      // No record of ours was made there: an event at this key is someone else's (under `log`, maybe
      // a longer range), not our echo.
      to.echoes.delete(`${coll.name}|${key}`);
      // PocketBase checks a collection's other unique indexes before the key: a create of a record
      // the target holds can fail on those first (`nxs_queue_schedules`' queue + sid). It is a
      // duplicate when the target holds the record at the key; otherwise a real conflict.
      const keyDuplicate = isKeyDuplicate(coll, e);
      if (!keyDuplicate && uniqueViolationFields(e).length === 0) throw e;
      const immutable = rule.kind === "immutable" && coll.deletes?.kind !== "tombstone";
      if (keyDuplicate && immutable) return false;
      const filter = to.client.pb.filter(
        coll.key.map((k, i) => `${k} = {:k${i}}`).join(" && "),
        Object.fromEntries(coll.key.map((k, i) => [`k${i}`, record[k]])),
      );
      // The target's copy at the key (undefined when it holds none).
      const existing = await to.client.call(`read ${coll.name} at ${to.url}`, async (pb) => {
        try {
          return await pb.collection(coll.name).getFirstListItem(filter, { requestKey: null });
        } catch (readError) {
          if (readError instanceof ClientResponseError && readError.status === 404) return undefined;
          throw readError;
        }
      });
      if (existing === undefined) throw e;
      if (immutable) return false;
      // Compare with the target's copy.
      const merged = mergeRecords(coll, existing, record);
      if (merged === undefined) return false;
      if (rule.kind === "log") {
        // The target's range at this key ends earlier: give it the missing tail as a new record.
        const tail = rule.slice(record, Number(existing[rule.last]) + 1);
        return tail === undefined ? false : copyNow(coll, from, to, tail);
      }
      const body = bodyOf(coll, merged);
      delete body.id;
      await to.client.call(`replicate ${coll.name} update to ${to.url}`, (pb) =>
        pb.collection(coll.name).update(existing.id, body, { requestKey: null }),
      );
      emit("copied", { collection: coll.name, from: from.url, to: to.url, key });
      return true;
    }
  }

  // ---- records of other collections (the `records` piece) -------------------------------------

  /** Copies the `records` collections (undefined when none is named). */
  const recordSync: RecordSync | undefined =
    options.records === undefined || options.records.length === 0
      ? undefined
      : createRecordSync({
          collections: checkRecordCollections(options.records),
          configuredServers: servers.length,
          ...(options.recordTombstoneRetentionMs === undefined
            ? {}
            : { tombstoneRetentionMs: options.recordTombstoneRetentionMs }),
          servers: () =>
            servers
              .filter((s) => s.refused === undefined && s.client.nodeId !== undefined && s.healthy)
              .map((s) => ({ url: s.url, client: s.client })),
          onConflict: (c) => {
            logger.warn(
              `[nxs-replicator] conflict in ${c.collection} ${c.id} (${c.from} → ${c.to}), resolved: ${JSON.stringify(c.conflict)}`,
            );
            emit("conflict", c);
          },
          onInvalid: (r) =>
            reportError(
              new TransportError(
                ErrorCode.TransportRejected,
                `${r.to} refused ${r.collection} ${r.id}: ${r.message}`,
              ),
              `import ${r.collection}`,
              `${r.from} → ${r.to}`,
            ),
          onError: (e, op, url) => {
            const err = toTransportError(e, `${op} at ${url}`);
            const server = servers.find((x) => x.url === url);
            if (err.code === ErrorCode.TransportUnavailable && server !== undefined)
              markUnreachable(server, err);
            reportError(err, op, url);
          },
        });

  // ---- realtime -------------------------------------------------------------------------------

  async function onRealtime(
    coll: ReplicatedCollection,
    from: Server,
    e: { action?: string; record?: unknown },
  ) {
    if (stopped || (e.action !== "create" && e.action !== "update")) return;
    const record = e.record as Record<string, unknown> | undefined;
    if (record === undefined || typeof record !== "object") return;
    const key = keyOf(coll, record);
    const echo = `${coll.name}|${key}`;
    const kind = (coll.merge ?? MergeRules.immutable).kind;
    // An update at an lww or monotonic key may be a newer write than ours: not skipped as an echo.
    if (
      from.echoes.has(echo) &&
      (kind === "immutable" || kind === "log") &&
      coll.deletes?.kind !== "tombstone"
    ) {
      from.echoes.delete(echo);
      return;
    }
    // Below a tombstone policy's purge frontier (an old copy written back, e.g. from a backup): left
    // to anti-entropy, which copies it only where its key is held (a purged record does not return).
    if (isBelowPurgeFrontier(coll, record, scheduler.now())) return;
    let check: RecordCheck | undefined;
    try {
      check = await coll.validateAt?.(from.client, [record]);
    } catch (e) {
      // Anti-entropy copies it later, checked then.
      reportError(toTransportError(e, `check ${coll.name} at ${from.url}`), `check ${coll.name}`, from.url);
      return;
    }
    if (!admit(coll, from, record, check)) return;
    await Promise.all(
      servers
        .filter((s) => s !== from)
        .map((to) =>
          copy(coll, from, to, record).catch((e: unknown) => {
            // Anti-entropy copies it later (at the latest when `to` is reachable again).
            const err = toTransportError(e, `replicate to ${to.url}`);
            if (err.code === ErrorCode.TransportUnavailable) markUnreachable(to, err);
            reportError(err, `copy ${coll.name}`, `${from.url} → ${to.url}`);
          }),
        ),
    );
  }

  /**
   * The realtime session of `server`: every replicated collection on one connection, pinned to that
   * server's endpoint of the pool; after every (re)connect, `connected` and a catch-up round.
   */
  function sessionOf(server: Server): RealtimeSession {
    if (server.session !== undefined) return server.session;
    const byName = new Map(collections.map((c) => [c.name, c]));
    const [first, ...rest] = collections;
    server.session = createRealtimeSession({
      pool,
      endpoint: server.endpoint,
      collection: first?.name ?? "",
      also: rest.map((c) => c.name),
      ...(recordSync === undefined ? {} : { topics: [RECORDS_TOPIC] }),
      filter: () => "",
      onEvent: (e: RealtimeEvent) => {
        if (e.action === RECORDS_TOPIC) {
          recordSync
            ?.onEvent(server.url, (e.record ?? {}) as { collectionName?: unknown; id?: unknown })
            .catch((err: unknown) =>
              // Anti-entropy copies it later.
              reportError(
                toTransportError(err, `copy a record from ${server.url}`),
                "realtime records",
                server.url,
              ),
            );
          return;
        }
        const name = (e.record as { collectionName?: unknown } | undefined)?.collectionName;
        const coll = typeof name === "string" ? byName.get(name) : first;
        if (coll === undefined) return;
        onRealtime(coll, server, e as { action?: string; record?: unknown }).catch((err: unknown) =>
          // Anti-entropy copies it later; a user callback that threw is reported, not left unhandled.
          reportError(
            err instanceof Error ? err : new Error(String(err)),
            `realtime ${coll.name}`,
            server.url,
          ),
        );
      },
      onCatchUp: () => {
        if (stopped) return;
        emit("connected", { url: server.url });
        // Events were lost while disconnected: catch up.
        scheduleSync();
      },
      // A failed attempt, retried on the scheduler: an unreachable server is marked so.
      onError: (e) => {
        if (isNxsError(e) && e.code === ErrorCode.TransportUnavailable) markUnreachable(server, e);
      },
      scheduler,
      random,
      retry: SUBSCRIBE_RETRY,
      logger,
    });
    return server.session;
  }

  /** Subscribes to `server` (the session retries until it works, is refused, or the replicator stops). */
  function subscribeInBackground(server: Server): void {
    if (server.subscribing || stopped) return;
    server.subscribing = true;
    sessionOf(server)
      .connect()
      .catch((e: unknown) => {
        if (stopped) return;
        const err = toTransportError(e, `subscribe to ${server.url}`);
        // A refused login is tried again by the next anti-entropy round.
        if (isRefusal(err)) {
          server.refused = err;
          updateLost();
          reportRefusal(server, err);
        } else reportError(err, "subscribe", server.url);
      })
      .finally(() => {
        server.subscribing = false;
      });
  }

  /** Whether `server`'s subscription is open. */
  const subscribed = (server: Server): boolean => server.session?.endpoint() !== undefined;

  // ---- anti-entropy ---------------------------------------------------------------------------

  type Row = Readonly<Record<string, unknown>> & { id: string };

  /** Lists key fields (all records, or only those matching one of `filters`). */
  async function listKeys(
    server: Server,
    coll: ReplicatedCollection,
    filters?: readonly string[],
  ): Promise<Map<string, Row>> {
    const fields = new Set(["id", ...coll.key, ...versionFields(coll)]);
    for (const f of coll.digest?.groupBy ?? []) fields.add(f);
    const list = (filter?: string) =>
      server.client.call(`list ${coll.name} at ${server.url}`, (pb) =>
        pb.collection(coll.name).getFullList({
          fields: [...fields].join(","),
          batch: 1000,
          requestKey: null,
          ...(filter === undefined ? {} : { filter }),
        }),
      );
    const out = new Map<string, Row>();
    // (No spread into an array: a full listing may hold more rows than a call's arguments.)
    const add = (rows: readonly Row[]) => {
      for (const r of rows) out.set(keyOf(coll, r), r);
    };
    if (filters === undefined) add((await list()) as Row[]);
    else for (const filter of joinFilters(filters)) add((await list(filter)) as Row[]);
    return out;
  }

  /**
   * Per collection and group, the digests of every server when a listing of that group found
   * nothing to copy: the servers hold the same data under different digests (ranges of a log cut
   * differently). The group is not listed again while its digests stay the same.
   */
  const settled = new Map<string, string>();
  /** The differing groups of the round in progress, per collection: settled if it copies nothing. */
  const differing = new Map<string, Map<string, string>>();

  /**
   * Compares the digest view across servers.
   * @returns Filters selecting the groups that differ (empty: all equal), or undefined when a
   * digest could not be read (then everything is listed).
   */
  async function differingGroups(coll: ReplicatedCollection): Promise<string[] | undefined> {
    const digest = coll.digest;
    if (digest === undefined) return undefined;
    try {
      const perServer = await Promise.all(
        servers.map((srv) =>
          srv.client.call(`read ${digest.view} at ${srv.url}`, (pb) =>
            pb.collection(digest.view).getFullList({ batch: 1000, requestKey: null }),
          ),
        ),
      );
      const groups = new Map<string, { values: unknown[]; digests: string[] }>();
      perServer.forEach((rows, i) => {
        for (const r of rows) {
          const values = digest.groupBy.map((f) => r[f]);
          const g = JSON.stringify(values);
          const entry = groups.get(g) ?? { values, digests: servers.map(() => "") };
          entry.digests[i] = `${Number(r.head)}/${Number(r.n)}`;
          groups.set(g, entry);
        }
      });
      const pb = servers[0]!.client.pb;
      const out: string[] = [];
      const now = new Map<string, string>();
      differing.set(coll.name, now);
      for (const [g, { values, digests }] of groups) {
        if (digests.every((d) => d === digests[0])) continue;
        const signature = digests.join(" ");
        const key = `${coll.name}|${g}`;
        if (settled.get(key) === signature) continue;
        now.set(key, signature);
        const params = Object.fromEntries(values.map((v, j) => [`g${j}`, v]));
        out.push(`(${pb.filter(digest.groupBy.map((f, j) => `${f} = {:g${j}}`).join(" && "), params)})`);
      }
      return out;
    } catch (e) {
      logger.debug(`[nxs-replicator] digest ${digest.view} unavailable, listing everything: ${String(e)}`);
      return undefined;
    }
  }

  /**
   * Reads whole records by id, `chunk` per request, handing each page to `each` (large records are
   * not all held at once).
   * @returns How many records were read.
   */
  async function readRecords(
    server: Server,
    coll: ReplicatedCollection,
    ids: readonly string[],
    chunk: number,
    each: (rows: readonly Row[]) => void,
  ): Promise<number> {
    let n = 0;
    for (let i = 0; i < ids.length; i += chunk) {
      const part = ids.slice(i, i + chunk);
      const filter = server.client.pb.filter(
        part.map((_, j) => `id = {:i${j}}`).join(" || "),
        Object.fromEntries(part.map((id, j) => [`i${j}`, id])),
      );
      const rows = await server.client.call(`read ${coll.name} at ${server.url}`, (pb) =>
        pb.collection(coll.name).getFullList({ filter, batch: 1000, requestKey: null }),
      );
      n += rows.length;
      each(rows as Row[]);
    }
    return n;
  }

  /** Failed servers of one anti-entropy round. */
  interface RoundFailures {
    readonly unreachable: Set<string>;
    readonly refused: Set<string>;
  }

  /** Counts a failure of a round against a server, and reports it. */
  function failed(round: RoundFailures, s: Server, err: NxsError, op: string, where = s.url): void {
    if (isRefusal(err)) round.refused.add(s.url);
    else {
      round.unreachable.add(s.url);
      if (err.code === ErrorCode.TransportUnavailable) markUnreachable(s, err);
    }
    reportError(err, op, where);
  }

  /** Content digests per record (see {@link recordTag}), newest `DIGEST_LIMIT`. */
  const digests = new Map<string, string>();
  /** Per divergent key (collection and key), the servers' digests last reported. */
  const divergent = new Map<string, string>();

  /**
   * Compares the content of every key that several servers hold at its newest version: reads the
   * records not digested before (records of the nxs collections never change; an `lww` one that
   * does changes its version too), at most `contentReadsPerSweep` (the rest next sweep), and
   * reports a key whose digests differ, once until they change.
   * @returns How many records were read.
   */
  async function compareContent(
    coll: ReplicatedCollection,
    content: (record: Readonly<Record<string, unknown>>) => unknown,
    listed: readonly (ReadonlyMap<string, Row> | undefined)[],
    round: RoundFailures,
  ): Promise<number> {
    const tagOf = (i: number, row: Row) => recordTag(coll, servers[i]!.url, row);
    const keys = new Set<string>();
    for (const m of listed) if (m) for (const k of m.keys()) keys.add(k);
    const shared: { key: string; holders: [number, Row][] }[] = [];
    const unread = servers.map((): string[] => []);
    let budget = contentReadsPerSweep;
    for (const key of keys) {
      const held: [number, Row][] = [];
      listed.forEach((m, i) => {
        const row = m?.get(key);
        if (row !== undefined) held.push([i, row]);
      });
      // The holders of its newest version (with three servers, two may agree and one lag behind).
      const holders = newestHolders(coll, held);
      if (holders.length < 2) continue;
      const missing = holders.filter(([i, row]) => !digests.has(tagOf(i, row)));
      // A bounded sweep: keys past the budget wait for the next sweeps (the cache keeps what is done).
      if (missing.length > budget) continue;
      budget -= missing.length;
      shared.push({ key, holders });
      for (const [i, row] of missing) unread[i]!.push(row.id);
    }
    let fetched = 0;
    await Promise.all(
      servers.map(async (s, i) => {
        try {
          await readRecords(s, coll, unread[i]!, DIGEST_CHUNK, (rows) => {
            fetched += rows.length;
            for (const r of rows) setBounded(digests, tagOf(i, r), contentDigest(content(r)), DIGEST_LIMIT);
          });
        } catch (e) {
          const err = toTransportError(e, `anti-entropy: read ${coll.name} at ${s.url}`);
          failed(round, s, err, `read ${coll.name}`);
        }
      }),
    );
    for (const { key, holders } of shared) {
      const seen = holders.map(([i, row]) => ({
        url: servers[i]!.url,
        recordId: row.id,
        digest: digests.get(tagOf(i, row)) ?? "",
      }));
      // A record not read (its server failed this round): compared by the next sweep.
      if (seen.some((h) => h.digest === "")) continue;
      const where = `${coll.name}|${key}`;
      if (seen.every((h) => h.digest === seen[0]!.digest)) {
        divergent.delete(where);
        continue;
      }
      const signature = seen.map((h) => `${h.url}=${h.digest}`).join(" ");
      if (divergent.get(where) === signature) continue;
      setBounded(divergent, where, signature, DIVERGENT_LIMIT);
      emit("divergence", { collection: coll.name, key, servers: seen });
      logger.warn(
        `[nxs-replicator] divergence: ${coll.name} ${key} holds different content on ${seen
          .map((h) => `${h.url} (record ${h.recordId})`)
          .join(", ")}; not repaired: the author of these records wrote each server another body`,
      );
    }
    return fetched;
  }

  /** What one collection's anti-entropy did (see {@link SyncStats}). */
  type CollectionStats = Pick<
    SyncStats,
    "copied" | "quarantined" | "failed" | "fetched" | "listed" | "purged"
  >;

  async function syncCollection(
    coll: ReplicatedCollection,
    round: RoundFailures,
    full: boolean,
  ): Promise<CollectionStats> {
    const scope = full ? undefined : await differingGroups(coll);
    if (scope !== undefined && scope.length === 0)
      return { copied: 0, quarantined: 0, failed: 0, fetched: 0, listed: 0, purged: 0 };
    const listed = await Promise.all(
      servers.map((s) =>
        // A server that refused the login, or failed earlier in this round, is left out (its failure
        // is reported once, not once per collection).
        s.refused !== undefined || round.unreachable.has(s.url)
          ? undefined
          : listKeys(s, coll, scope).catch((e: unknown) => {
              const err = toTransportError(e, `anti-entropy: list ${coll.name} at ${s.url}`);
              failed(round, s, err, `list ${coll.name}`);
              return undefined;
            }),
      ),
    );
    /** The digest group of a row (JSON of its `groupBy` values), if the collection has a digest. */
    const groupOf = (row: Readonly<Record<string, unknown>>) =>
      coll.digest === undefined ? undefined : JSON.stringify(coll.digest.groupBy.map((f) => row[f]));
    // The copies that bring every listed server to the merge of all versions (merge-plan.ts).
    const plan = new Map<Server, Map<Server, string[]>>(); // from -> to -> record ids (at `from`)
    const now = scheduler.now();
    const copies = planCopies(coll, listed, {
      // Refused before (reported then): not read again.
      skipSource: (i, row) => quarantined.has(recordTag(coll, servers[i]!.url, row)),
      // Under a tombstone policy with purgeAfterMs: what is purged does not come back.
      now,
    });
    for (const c of copies) {
      const from = servers[c.from]!;
      const to = servers[c.to]!;
      let byTo = plan.get(from);
      if (byTo === undefined) {
        byTo = new Map();
        plan.set(from, byTo);
      }
      const ids = byTo.get(to) ?? [];
      ids.push(c.recordId);
      byTo.set(to, ids);
    }
    /** Digest groups where a copy was tried (made or failed): not settled this round. */
    const tried = new Set<string>();
    let copied = 0;
    let refused = 0;
    let failedCopies = 0;
    let fetched = 0;
    for (const [from, byTo] of plan) {
      const byId = new Map<string, Row>();
      let check: RecordCheck | undefined;
      try {
        const ids = [...new Set([...byTo.values()].flat())];
        const n = await readRecords(from, coll, ids, 100, (rows) => {
          for (const r of rows) byId.set(r.id, r);
        });
        fetched += n;
        check = await coll.validateAt?.(from.client, [...byId.values()]);
      } catch (e) {
        failed(
          round,
          from,
          toTransportError(e, `anti-entropy: read ${coll.name} at ${from.url}`),
          `read ${coll.name}`,
        );
        continue;
      }
      for (const [to, ids] of byTo) {
        let skip: (record: Readonly<Record<string, unknown>>) => boolean = () => false;
        const skipAt = skipAtOf(coll);
        if (skipAt !== undefined) {
          try {
            skip = await skipAt(to.client, reportUntrusted(to));
          } catch (e) {
            failed(
              round,
              to,
              toTransportError(e, `anti-entropy: prepare ${coll.name} at ${to.url}`),
              `prepare ${coll.name}`,
            );
            continue;
          }
        }
        for (const id of ids) {
          const record = byId.get(id);
          if (record === undefined || skip(record)) continue;
          if (!admit(coll, from, record, check)) {
            refused++;
            continue;
          }
          const group = groupOf(record);
          if (group !== undefined) tried.add(group);
          try {
            if (await copy(coll, from, to, record)) copied++;
          } catch (e) {
            const err = toTransportError(e, `anti-entropy: copy ${coll.name} to ${to.url}`);
            if (!isRefusal(err)) {
              // The target stopped answering: the rest waits for the next round.
              failed(round, to, err, `copy ${coll.name}`, `${from.url} → ${to.url}`);
              break;
            }
            // The target refused this record: reported, skipped, tried again next round.
            failedCopies++;
            reportError(err, `copy ${coll.name}`, `${from.url} → ${to.url}`);
          }
        }
      }
    }
    const purged = await purge(coll, listed, now, round);
    // Groups listed where no copy was tried (nothing to copy, or only refused records or records
    // under a target's snapshot): not listed again while their digests stay the same.
    if (listed.every((m) => m !== undefined) && round.unreachable.size + round.refused.size === 0) {
      for (const [key, signature] of differing.get(coll.name) ?? []) {
        if (!tried.has(key.slice(coll.name.length + 1))) setBounded(settled, key, signature, SETTLED_LIMIT);
      }
    }
    differing.delete(coll.name);
    if (full && coll.content !== undefined)
      fetched += await compareContent(coll, coll.content, listed, round);
    return {
      copied,
      quarantined: refused,
      failed: failedCopies,
      fetched,
      listed: listed.reduce((n, m) => n + (m?.size ?? 0), 0),
      purged,
    };
  }

  /**
   * Deletes the tombstones past a collection's `purgeAfterMs` that every server holds or lacks
   * (planPurges), when every server answered this round.
   * @returns How many were deleted.
   */
  async function purge(
    coll: ReplicatedCollection,
    listed: readonly (ReadonlyMap<string, Row> | undefined)[],
    now: number,
    round: RoundFailures,
  ): Promise<number> {
    if (round.unreachable.size + round.refused.size > 0) return 0;
    let n = 0;
    const down = new Set<Server>();
    for (const p of planPurges(coll, listed, now)) {
      const at = servers[p.server]!;
      if (stopped || down.has(at)) continue;
      try {
        await at.client.call(`purge ${coll.name} at ${at.url}`, (pb) =>
          pb.collection(coll.name).delete(p.recordId, { requestKey: null }),
        );
        n++;
        emit("purged", { collection: coll.name, url: at.url, key: p.key });
      } catch (e) {
        const err = toTransportError(e, `anti-entropy: purge ${coll.name} at ${at.url}`);
        // Gone, or set again meanwhile (the delete rule lets only tombstones go): nothing to do.
        if (err instanceof TransportError && err.status === 404) continue;
        if (isRefusal(err)) reportError(err, `purge ${coll.name}`, at.url);
        else {
          failed(round, at, err, `purge ${coll.name}`);
          down.add(at);
        }
      }
    }
    return n;
  }

  /**
   * Logs in again where a login is missing or was refused (at most once per half interval for a
   * refusal), and subscribes where a login now works.
   */
  async function loginWhereNeeded(round: RoundFailures): Promise<void> {
    await Promise.all(
      servers.map(async (s) => {
        const retry = s.refused !== undefined && scheduler.now() - s.loginTriedAt >= intervalMs / 2;
        if (s.client.nodeId === undefined || retry) {
          try {
            await login(s);
          } catch (e) {
            const err = e as NxsError;
            if (isRefusal(err)) reportRefusal(s, err);
            else {
              round.unreachable.add(s.url);
              reportError(err, `login to ${s.collection}`, s.url);
            }
          }
        }
        if (s.refused !== undefined) round.refused.add(s.url);
        else if (!subscribed(s) && s.healthy && s.client.nodeId !== undefined) subscribeInBackground(s);
      }),
    );
  }

  async function runSync(): Promise<SyncStats> {
    const round: RoundFailures = { unreachable: new Set(), refused: new Set() };
    await loginWhereNeeded(round);
    rounds++;
    const full = fullRequested || rounds % fullSweepEvery === 0;
    fullRequested = false;
    const sum: { -readonly [K in keyof CollectionStats]: number } = {
      copied: 0,
      quarantined: 0,
      failed: 0,
      fetched: 0,
      listed: 0,
      purged: 0,
    };
    for (const coll of collections) {
      if (stopped) break;
      const r = await syncCollection(coll, round, full);
      for (const k of Object.keys(sum) as (keyof CollectionStats)[]) sum[k] += r[k];
    }
    if (recordSync !== undefined && !stopped) {
      const r = await recordSync.round();
      sum.copied += r.copied;
      sum.failed += r.invalid;
    }
    const { copied } = sum;
    const stats: SyncStats = { ...sum, unreachable: [...round.unreachable], refused: [...round.refused] };
    if (copied > 0 || round.unreachable.size + round.refused.size > 0) {
      logger.info(
        `[nxs-replicator] anti-entropy: ${copied} copied, unreachable: ${stats.unreachable.join(", ") || "none"}, refused: ${stats.refused.join(", ") || "none"}`,
      );
    }
    await heartbeat(stats);
    emit("sync", stats);
    return stats;
  }

  /**
   * Upserts this replicator's `nxs_replicator_status` row (its id: the replicator account's) on
   * every server it reached this round, at most once per `heartbeatMs`. Never throws: a failed
   * write is reported (rate-limited like every error), and the round's outcome stands.
   */
  async function heartbeat(stats: SyncStats): Promise<void> {
    if (stopped || scheduler.now() - beatAt < heartbeatMs) return;
    beatAt = scheduler.now();
    const problems = [
      ...stats.unreachable.map((u) => `${u} unreachable`),
      ...stats.refused.map((u) => `${u} refused the login`),
      ...(stats.failed > 0 ? [`${stats.failed} record(s) failed to copy`] : []),
      ...(stats.quarantined > 0 ? [`${stats.quarantined} record(s) quarantined`] : []),
    ];
    const body = {
      rounds,
      intervalMs,
      lastError: (lostError?.message ?? problems.join("; ")).slice(0, 2000),
      servers: servers.map((s) => ({
        url: s.url,
        state: s.refused !== undefined ? "refused" : s.healthy ? "ok" : "unreachable",
      })),
    };
    const reached = servers.filter(
      (s) =>
        s.refused === undefined &&
        s.client.nodeId !== undefined &&
        !stats.unreachable.includes(s.url) &&
        !stats.refused.includes(s.url),
    );
    await Promise.all(
      reached.map(async (s) => {
        const id = s.client.nodeId as string;
        try {
          await s.client.call(`write the heartbeat at ${s.url}`, async (pb) => {
            const rows = pb.collection(Collections.ReplicatorStatus);
            try {
              return await rows.update(id, body, { requestKey: null });
            } catch (e) {
              // No row yet (404 on the record, not on the collection): make it, with our id.
              const missingRow =
                e instanceof ClientResponseError &&
                e.status === 404 &&
                !/collection context/i.test(String(e.response?.message ?? ""));
              if (!missingRow) throw e;
              return await rows.create({ id, ...body }, { requestKey: null });
            }
          });
        } catch (e) {
          reportError(e instanceof Error ? e : new Error(String(e)), "heartbeat", s.url);
        }
      }),
    );
  }

  /** Runs a round that starts after this call: joins the queued round when one is already waiting. */
  function sync(options: { readonly full?: boolean } = {}): Promise<SyncStats> {
    if (stopped) return Promise.reject(new TransportError(ErrorCode.Closed, "replicator stopped"));
    if (options.full) fullRequested = true;
    if (queued !== undefined) return queued;
    if (running === undefined) {
      running = runSync().finally(() => {
        running = undefined;
      });
      return running;
    }
    queued = running
      .catch(() => undefined)
      .then(() => {
        queued = undefined;
        return sync();
      });
    return queued;
  }

  function scheduleSync(): void {
    if (stopped) return;
    sync().catch((e: unknown) => {
      if (!stopped) reportError(e instanceof Error ? e : new Error(String(e)), "anti-entropy", "all servers");
    });
  }

  /** Runs `task` every `ms` (scheduler time) until stopped. */
  function every(ms: number, task: () => void): Cancel {
    let cancel: Cancel = () => {};
    const arm = (): void => {
      cancel = scheduler.schedule(ms, () => {
        if (stopped) return;
        arm();
        task();
      });
    };
    arm();
    return () => cancel();
  }

  async function stop(): Promise<void> {
    if (stopped) return;
    // What repeats held back is told now rather than lost.
    for (const key of [...held.keys()]) flush(key);
    stopped = true;
    for (const s of servers) s.session?.stop();
    for (const cancel of loops) cancel();
    loops = [];
    cancelLost?.();
    cancelLost = undefined;
    pool.stop();
    await running?.catch(() => undefined);
  }

  return {
    async start() {
      if (started || stopped) return;
      started = true;
      const logins = await Promise.all(
        servers.map((s) =>
          login(s).then(
            () => undefined,
            (e: unknown) => e as NxsError,
          ),
        ),
      );
      if (stopped) return;
      if (logins.every((e) => e !== undefined && isRefusal(e))) {
        const refusals = logins as NxsError[];
        const error = new TransportError(
          refusals.find((e) => e.code === ErrorCode.TransportUnauthorized)?.code ?? refusals[0]!.code,
          `nxs-replicator: no server accepted the login: ${servers
            .map((s, i) => `${s.url} refused the login to ${s.collection} (${refusals[i]!.message})`)
            .join("; ")}`,
          { cause: refusals[0] },
        );
        await stop();
        throw error;
      }
      servers.forEach((s, i) => {
        const e = logins[i];
        if (e !== undefined && isRefusal(e)) reportRefusal(s, e);
        else subscribeInBackground(s);
      });
      loops = [every(intervalMs, scheduleSync)];
      // The pool's health polling: one task on the scheduler, every healthIntervalMs.
      pool.start();
      updateLost();
      await sync();
    },
    sync,
    status() {
      return {
        state: stopped ? "stopped" : !started ? "idle" : lostSince !== undefined ? "lost" : "running",
        servers: servers.map((s) => ({
          url: s.url,
          state: s.refused !== undefined ? "refused" : s.healthy ? "ok" : "unreachable",
          lastError: s.refused ?? (s.healthy ? undefined : s.lastError),
        })),
        lostSince,
        lastError: lostError,
      };
    },
    stop,
    on: events.on,
  };
}
