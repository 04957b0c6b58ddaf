import { randomUUID } from "node:crypto";
import {
  callGuarded,
  checkNumberOption,
  ErrorCode,
  isNxsError,
  type Logger,
  NxsError,
  TransportError,
} from "@nxs-sync/core";
import {
  checkHookPieces,
  createRealtimeSession,
  type Endpoint,
  type EndpointPool,
  openRoutePool,
  type RealtimeSession,
  type RoutePoolOptions,
} from "@nxs-sync/pocketbase";
import type PocketBase from "pocketbase";
import type { ClientResponseError } from "pocketbase";
import type { z } from "zod";
import type {
  BlobRef,
  BlobStore,
  ClaimedJobs,
  ClaimRequest,
  EnqueueResult,
  Heartbeat,
  HeartbeatResult,
  JobCounts,
  JobEvent,
  QueueAdmin,
  QueueBackendCapabilities,
  QueueFlow,
  QueueHandoff,
  QueueSchedules,
  QueueWatcher,
  Settlement,
  SettleResult,
  WatchOptions,
} from "../backend.js";
import { QueueErrorCode } from "../errors.js";
import { checkFlowGroup, checkFlowLimits, checkJobGroup, checkPauseMs, checkWeight } from "../flow.js";
import { type DedupeMode, type JobId, type JobRecord, type NewJob, PRIORITY_STEP_MS } from "../job.js";
import {
  checkJobKey,
  checkPriority,
  checkScheduleSpec,
  DEDUPE_MODES,
  scheduleRecordId,
} from "../scheduling.js";
import {
  BLOBS_COLLECTION,
  DEFAULT_MAX_BLOB_BYTES,
  JOBS_COLLECTION,
  MAX_INLINE_JSON,
  QUEUE_HOOKS,
  queueHookPiece,
} from "./collections.js";
import {
  asToken,
  cancelAnswer,
  claimAnswer,
  countsAnswer,
  deletedAnswer,
  enqueueAnswer,
  eventsOf,
  flowAnswer,
  flowListAnswer,
  handedJobSchema,
  heartbeatAnswer,
  movedAnswer,
  PARK_PREFIX,
  readyJobSchema,
  refusalSchema,
  type SeenJob,
  type StoredJob,
  scheduleFireAnswer,
  scheduleListAnswer,
  schedulePutAnswer,
  scheduleRemoveAnswer,
  seenOf,
  settleAndClaimAnswer,
  settleAnswer,
  storedJobSchema,
  takeoverAnswer,
  toFlowRecord,
  toJobRecord,
  toScheduleRecord,
} from "./records.js";

/** The server that claims were moved to: reported by {@link PocketBaseQueueBackendOptions.onTakeover}. */
export interface TakeoverEvent {
  /** The server that is the claim authority now. */
  readonly url: string;
  /** The server that was, before. */
  readonly from: string;
  /** Its claim epoch now (above every epoch it had seen), and before. */
  readonly epoch: number;
  readonly previous: number;
}

/** A job the server dead-lettered while claiming (malformed record, or stalled with no attempt left). */
export interface DeadLetterEvent {
  readonly id: JobId;
  readonly reason: string;
}

/** Options of {@link createPocketBaseQueueBackend}. */
export interface PocketBaseQueueBackendOptions extends RoutePoolOptions {
  /**
   * Server base URLs, the queue's home server first: it is the claim authority; the others take
   * over (with a higher epoch) only while the pool has failed over to them. Or pass `pool`.
   */
  readonly endpoints?: readonly string[];
  /** Bound of one operation, failovers included (ms). Default 15 000: outlasts a backup's write stall. */
  readonly timeoutMs?: number;
  /** Items per request (at most 500, the route's bound). Default 200. */
  readonly batchSize?: number;
  /** The largest blob (bytes); the server's `nxs_job_blobs` file limit must allow it. Default 16 MiB. */
  readonly maxBlobBytes?: number;
  /** Claims moved to another server (failover or failback). */
  readonly onTakeover?: (event: TakeoverEvent) => void;
  /** The server dead-lettered a job while claiming. */
  readonly onDeadLetter?: (event: DeadLetterEvent) => void;
  /** Warnings (takeovers, dead-lettered jobs, watch errors). Default core's `defaultLogger` (stderr). */
  readonly logger?: Logger;
}

/** The PocketBase backend: the port plus the authority it is claiming on. */
export interface PocketBaseQueueBackend extends QueueBackendCapabilities {
  readonly admin: QueueAdmin;
  readonly blobs: BlobStore;
  readonly schedules: QueueSchedules;
  readonly priorities: { readonly stepMs: number };
  readonly dedupeModes: readonly DedupeMode[];
  /** The server claims go to, and its epoch once known (0 before the first takeover). */
  authority(): { readonly url: string; readonly epoch: number };
  close(): Promise<void>;
}

const MAX_ROUTE_BATCH = 500;
/** Clock skew allowed between this process and the servers when replaying changes (ms). */
const CATCH_UP_MARGIN_MS = 2000;
/** Jobs a watch remembers (the oldest are forgotten first). */
const MAX_SEEN = 10_000;

/** How often claims ask a fenced home server again (ms). */
const FENCE_RECHECK_MS = 1000;
/**
 * How long claims keep waiting for a fenced home server that stopped answering (a restore restarts
 * it; one that stays silent longer is down, and claims fail over as usual).
 */
const FENCE_GRACE_MS = 60_000;

/**
 * When a call was refused by a fenced server (503 with `data.fence`, pb_hooks/nxs-fence.pb.js),
 * until when the fence holds (ms since the epoch); undefined for any other failure.
 */
function fencedUntil(e: unknown): number | undefined {
  const cause = (isNxsError(e) ? e.cause : e) as ClientResponseError | undefined;
  const fence = (cause?.response as { data?: { fence?: { code?: unknown; message?: unknown } } } | undefined)
    ?.data?.fence;
  if (fence?.code !== "nxs_fenced" || typeof fence.message !== "string") return undefined;
  const until = /until (\d+)$/.exec(fence.message);
  return until === null ? undefined : Number(until[1]);
}

/**
 * Creates the PocketBase backend of the queue: every transition goes through the hook routes of
 * `pb_hooks/nxs-queue.pb.js` (one transaction each, on the server's clock), over an endpoint pool
 * (one retry layer, failover); `watch` follows `nxs_jobs` with a realtime session (catch-up after
 * each reconnect: `onResync`). The servers need the queue's collections ({@link queueCollections})
 * and its hook piece.
 * @param options - Servers or a pool, a gateway account, bounds.
 * @returns The backend (call `close()` when done).
 * @throws NxsError `config/invalid` for bad options.
 * @example
 * ```ts
 * const backend = createPocketBaseQueueBackend({
 *   endpoints: ["http://home:8090", "http://other:8090"],
 *   auth: { email: "gateway-1@fleet", password },
 * });
 * const [job] = await backend.claim({ queue: "voice", worker: "gw-1", leaseMs: 30_000, max: 1 });
 * ```
 */
export function createPocketBaseQueueBackend(options: PocketBaseQueueBackendOptions): PocketBaseQueueBackend {
  const timeoutMs = checkNumberOption("timeoutMs", options.timeoutMs, { min: 0 }) ?? 15_000;
  const batchSize =
    checkNumberOption("batchSize", options.batchSize, { min: 1, max: MAX_ROUTE_BATCH, integer: true }) ?? 200;
  const maxBlobBytes =
    checkNumberOption("maxBlobBytes", options.maxBlobBytes, { min: 1, integer: true }) ??
    DEFAULT_MAX_BLOB_BYTES;
  const {
    pool,
    ownPool,
    home,
    newPool: poolOf,
    scheduler,
    logger,
    random,
  } = openRoutePool("queue backend", options);
  let closed = false;
  let authority = { url: home, epoch: 0 };
  let takingOver: Promise<void> | undefined;
  /**
   * Until when the home server said it is fenced (ms, its clock): a restore or reseed is rebuilding
   * it. Claims then wait for it instead of moving to another server (a takeover there, then one
   * back when the fence lifts, opens the failover window in which a job runs twice); enqueues,
   * heartbeats and settlements go on through the pool as before.
   */
  let homeFencedUntil = 0;
  /** When the home server last answered "fenced" (a restart in between answers nothing). */
  let homeFenceSeenAt = 0;
  /** Whether claims wait for a fenced home server now (see {@link homeFencedUntil}). */
  const waitForHome = (ep: Endpoint): boolean => {
    const now = scheduler.now();
    return (
      ep.url !== home &&
      authority.url === home &&
      homeFencedUntil > now &&
      now - homeFenceSeenAt < FENCE_GRACE_MS
    );
  };

  const report = (what: string, fn: () => void) =>
    callGuarded(what, fn, [], (f) => logger.error(f.message, f.cause));

  /** Maps a route's refusal (400 with a `queue/*` code). */
  function mapError(e: unknown, op: string): unknown {
    if (!(isNxsError(e) && e instanceof TransportError)) return e;
    const cause = e.cause as ClientResponseError | undefined;
    if (e.status === 400) {
      const r = refusalSchema.safeParse(cause?.response?.data);
      if (r.success) {
        const code =
          r.data.code === QueueErrorCode.TooLarge ? QueueErrorCode.TooLarge : QueueErrorCode.InvalidPayload;
        const where = r.data.index === undefined ? "" : ` (item ${r.data.index})`;
        return new NxsError(code, `queue ${op}${where}: ${r.data.message}`, { cause: e });
      }
    }
    return e;
  }

  // Each server is checked once for the hook piece of this release (server/incompatible otherwise).
  const piece = queueHookPiece();
  const checked = new Map<string, Promise<void>>();
  const checkPiece = (ep: Endpoint): Promise<void> => {
    let p = checked.get(ep.url);
    if (p === undefined) {
      p = checkHookPieces(ep.client, [piece]);
      checked.set(ep.url, p);
      p.catch(() => checked.delete(ep.url));
    }
    return p;
  };

  /** One POST to a route on one endpoint (no retry: the pool's call is the retry layer). */
  async function post<S extends z.ZodType>(
    ep: Endpoint,
    op: string,
    body: unknown,
    schema: S,
  ): Promise<z.infer<S>> {
    await checkPiece(ep);
    let raw: unknown;
    try {
      raw = await ep.client.call(
        `queue ${op}`,
        (pb) => pb.send(`/nxs/queue/${op}`, { method: "POST", body: body as Record<string, unknown> }),
        { retry: false },
      );
    } catch (e) {
      const until = fencedUntil(e);
      if (until !== undefined && ep.url === home) {
        homeFencedUntil = until;
        homeFenceSeenAt = scheduler.now();
      }
      throw mapError(e, op);
    }
    // Back on the home server through the pool: the fence is over for claims.
    if (ep.url === home && pool.active().url === home) homeFencedUntil = 0;
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      throw new TransportError(
        ErrorCode.ServerIncompatible,
        `${ep.url}: POST /nxs/queue/${op} answered in another form (${parsed.error.message.slice(0, 300)}): install the ${QUEUE_HOOKS.file} of this release`,
      );
    }
    return parsed.data;
  }

  /** Claims go to the pool's active server; on another one than before, it takes over first. */
  async function ensureAuthority(ep: Endpoint): Promise<void> {
    while (ep.url !== authority.url) {
      if (takingOver === undefined) {
        const from = authority.url;
        takingOver = post(ep, "takeover", {}, takeoverAnswer)
          .then((t) => {
            authority = { url: ep.url, epoch: t.epoch };
            logger.warn(
              `[queue] claims move from ${from} to ${ep.url} under epoch ${t.epoch} (was ${t.previous})`,
            );
            const ev = { url: ep.url, from, epoch: t.epoch, previous: t.previous };
            if (options.onTakeover !== undefined) report("onTakeover", () => options.onTakeover?.(ev));
          })
          .finally(() => {
            takingOver = undefined;
          });
      }
      await takingOver;
    }
  }

  const call = <T>(op: string, fn: (ep: Endpoint) => Promise<T>): Promise<T> => {
    if (closed)
      return Promise.reject(new NxsError(QueueErrorCode.Closed, `queue ${op}: the backend is closed`));
    return pool.call(`queue ${op}`, fn, { timeoutMs });
  };
  const chunks = <T>(items: readonly T[], size = batchSize): T[][] => {
    const out: T[][] = [];
    for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
    return out;
  };
  const records = (pb: PocketBase) => pb.collection(JOBS_COLLECTION);
  const parseJob = (raw: unknown): JobRecord | undefined => {
    const r = storedJobSchema.safeParse(raw);
    if (!r.success) {
      logger.warn(`[queue] a job record of another form was skipped: ${r.error.message.slice(0, 200)}`);
      return undefined;
    }
    return r.data.deleted ? undefined : toJobRecord(r.data);
  };

  // Watch: one realtime session (and pool: a session owns its clients' realtime) per queue.
  interface Watch {
    readonly session: RealtimeSession;
    readonly pool: EndpointPool;
    readonly watchers: Set<QueueWatcher>;
    readonly seen: Map<string, SeenJob>;
    /** Settles once the session has connected (or given up). */
    connected?: Promise<void>;
  }
  const watches = new Map<string, Watch>();
  /** The pool of each queue's ready watches (kept while the backend lives: no login per reopening). */
  const readyPools = new Map<string, EndpointPool>();
  /** The last step (connect or stop) of each queue's ready sessions, which take turns on its pool. */
  const readyTurns = new Map<string, Promise<void>>();
  const tell = (watchers: Set<QueueWatcher>, e: JobEvent): void => {
    for (const w of watchers) callGuarded("watch", w.onEvent, [e], (f) => logger.error(f.message, f.cause));
  };
  const resync = (watchers: Set<QueueWatcher>): void => {
    for (const w of watchers) callGuarded("watch", w.onResync, [], (f) => logger.error(f.message, f.cause));
  };
  const watchSessionBase = (queue: string) => ({
    onError: (e: Error) => logger.warn(`[queue] watch ${queue}: ${e.message}`),
    scheduler,
    random,
    logger,
  });
  function openWatch(queue: string): Watch {
    const watchPool = poolOf();
    const watchers = new Set<QueueWatcher>();
    const seen = new Map<string, SeenJob>();
    // Jobs changed since this time (the server's clock, less a margin) are replayed at catch-up.
    const openedAt = scheduler.now() - CATCH_UP_MARGIN_MS;
    let latest = openedAt;
    const deliver = (record: unknown, created: (s: StoredJob) => boolean): void => {
      const r = storedJobSchema.safeParse(record);
      if (!r.success) return;
      const s: StoredJob = r.data;
      const events = eventsOf(seen.get(s.id), s, created(s));
      if ((seen.get(s.id)?.version ?? "") < s.version) {
        seen.delete(s.id);
        seen.set(s.id, seenOf(s));
        if (seen.size > MAX_SEEN) seen.delete(seen.keys().next().value as string);
      }
      latest = Math.max(latest, s.updatedAt);
      for (const e of events) tell(watchers, e);
    };
    const session = createRealtimeSession({
      pool: watchPool,
      collection: JOBS_COLLECTION,
      filter: (pb) => pb.filter("queue = {:q}", { q: queue }),
      // A job created since the watch began has all its history told when first seen.
      onEvent: (ev) => deliver(ev.record, (s) => ev.action === "create" || s.createdAt >= openedAt),
      // Realtime is a hint: after every (re)connect, what changed meanwhile is replayed (at most a
      // page), then the watchers are told to re-read what matters.
      onCatchUp: (ep) => {
        const since = Math.min(latest, scheduler.now()) - CATCH_UP_MARGIN_MS;
        ep.client
          .call("queue watch catch-up", (pb) =>
            records(pb).getList(1, 1000, {
              filter: pb.filter("queue = {:q} && updatedAt >= {:since}", { q: queue, since }),
              sort: "updatedAt",
              skipTotal: true,
            }),
          )
          .then(
            (page) => {
              for (const r of page.items) deliver(r, (s) => s.createdAt >= openedAt);
            },
            (e: unknown) => logger.warn(`[queue] watch ${queue} catch-up failed: ${(e as Error).message}`),
          )
          .finally(() => resync(watchers));
      },
      ...watchSessionBase(queue),
    });
    watchPool.start();
    return { session, pool: watchPool, watchers, seen };
  }

  // A worker's wake-up: waiting jobs only, filtered by the server, so the queue's other writes
  // (claims, heartbeats, settlements) never reach the worker's stream. No replay at catch-up: the
  // watchers are told to resync (a worker then claims, which is the truth).
  function openReadyWatch(queue: string, watchPool: EndpointPool): Watch {
    const watchers = new Set<QueueWatcher>();
    const session = createRealtimeSession({
      pool: watchPool,
      collection: JOBS_COLLECTION,
      // Waiting jobs (wake-up hints), and jobs the server handed to a parked worker (claimId park.…).
      filter: (pb) =>
        pb.filter("queue = {:q} && (state = 'waiting' || (state = 'active' && claimId ~ {:park}))", {
          q: queue,
          park: PARK_PREFIX,
        }),
      onEvent: (ev) => {
        const handed = handedJobSchema.safeParse(ev.record);
        if (handed.success) {
          if (handed.data.deleted || !handed.data.claimId.startsWith(PARK_PREFIX)) return;
          const handoff = {
            parkId: handed.data.claimId,
            claimed: { job: toJobRecord(handed.data), token: asToken(handed.data.token) },
          };
          for (const w of watchers) {
            if (w.onHandoff === undefined) continue;
            callGuarded("watch", w.onHandoff.bind(w), [handoff], (f) => logger.error(f.message, f.cause));
          }
          return;
        }
        const r = readyJobSchema.safeParse(ev.record);
        if (!r.success || r.data.deleted === true) return;
        const id = r.data.id as JobId;
        tell(
          watchers,
          r.data.attempt === 0
            ? { type: "added", id, runAt: r.data.runAt }
            : { type: "waiting", id, runAt: r.data.runAt },
        );
      },
      onCatchUp: () => resync(watchers),
      ...watchSessionBase(queue),
    });
    return { session, pool: watchPool, watchers, seen: new Map() };
  }

  const admin: QueueAdmin = {
    cancel: (id, reason) =>
      call("cancel", (ep) => post(ep, "cancel", { id, reason }, cancelAnswer)).then(
        (a) => a.state ?? undefined,
      ),
    async redrive(queue, opts = {}) {
      let moved = 0;
      if (opts.ids !== undefined) {
        for (const ids of chunks(opts.ids)) {
          moved += (await call("redrive", (ep) => post(ep, "redrive", { queue, ids }, movedAnswer))).moved;
        }
        return moved;
      }
      let left = opts.limit ?? Number.POSITIVE_INFINITY;
      while (left > 0) {
        const limit = Math.min(left, MAX_ROUTE_BATCH);
        const n = (await call("redrive", (ep) => post(ep, "redrive", { queue, limit }, movedAnswer))).moved;
        moved += n;
        left -= n;
        if (n < limit) break;
      }
      return moved;
    },
    async clean(queue, opts) {
      let deleted = 0;
      let left = opts.limit ?? Number.POSITIVE_INFINITY;
      while (left > 0) {
        const limit = Math.min(left, MAX_ROUTE_BATCH);
        const body = { queue, states: opts.states, before: Math.floor(opts.before), limit };
        const n = (await call("clean", (ep) => post(ep, "clean", body, deletedAnswer))).deleted;
        deleted += n;
        left -= n;
        if (n < limit) break;
      }
      return deleted;
    },
    async list(queue, opts = {}) {
      const limit = Math.min(Math.max(opts.limit ?? 100, 1), 1000);
      const page = await call("list", (ep) =>
        ep.client.call(
          "queue list",
          (pb) => {
            const parts = [pb.filter("queue = {:q} && deleted = false", { q: queue })];
            if (opts.state !== undefined) parts.push(pb.filter("state = {:s}", { s: opts.state }));
            if (opts.after !== undefined) parts.push(pb.filter("id > {:a}", { a: opts.after }));
            return records(pb).getList(1, limit, { filter: parts.join(" && "), sort: "id", skipTotal: true });
          },
          { retry: false },
        ),
      );
      return page.items.flatMap((r) => parseJob(r) ?? []);
    },
  };

  const blobs: BlobStore = {
    maxBytes: maxBlobBytes,
    async put(bytes, opts = {}) {
      if (bytes.byteLength > maxBlobBytes) {
        throw new NxsError(
          QueueErrorCode.TooLarge,
          `queue blob: ${bytes.byteLength} bytes, over the limit of ${maxBlobBytes}`,
        );
      }
      const contentType = opts.contentType ?? "application/octet-stream";
      const rec = await call("put blob", (ep) =>
        ep.client.call(
          "queue put blob",
          (pb) => {
            const form = new FormData();
            form.append("data", new Blob([bytes], { type: contentType }), "blob.bin");
            form.append("size", String(bytes.byteLength));
            form.append("contentType", contentType);
            return pb.collection(BLOBS_COLLECTION).create(form);
          },
          { retry: false },
        ),
      );
      return { $blob: rec.id, size: bytes.byteLength, contentType };
    },
    async get(ref: BlobRef) {
      return call("get blob", (ep) =>
        ep.client.call(
          "queue get blob",
          async (pb) => {
            let rec: Record<string, unknown>;
            try {
              rec = await pb.collection(BLOBS_COLLECTION).getOne(ref.$blob);
            } catch (e) {
              if ((e as ClientResponseError).status === 404) return undefined;
              throw e;
            }
            const token = await pb.files.getToken();
            const url = pb.files.getURL(rec, String(rec.data), { token });
            const res = await fetch(url);
            if (!res.ok) throw new Error(`blob download answered ${res.status}`);
            return new Uint8Array(await res.arrayBuffer());
          },
          { retry: false },
        ),
      );
    },
    async delete(ref: BlobRef) {
      await call("delete blob", (ep) =>
        ep.client.call(
          "queue delete blob",
          (pb) =>
            pb
              .collection(BLOBS_COLLECTION)
              .delete(ref.$blob)
              .catch((e: ClientResponseError) => {
                if (e.status !== 404) throw e;
                return true;
              }),
          { retry: false },
        ),
      );
    },
  };

  /** Results over the inline limit are refused before anything is sent. */
  const checkResults = (op: string, settlements: readonly Settlement[]): void => {
    for (const [i, s] of settlements.entries()) {
      if (s.kind !== "complete" || s.result === undefined) continue;
      const size = JSON.stringify(s.result).length;
      if (size > MAX_INLINE_JSON) {
        throw new NxsError(
          QueueErrorCode.TooLarge,
          `queue ${op} (item ${i}): result is ${size} characters of JSON, over ${MAX_INLINE_JSON}: store it as a blob`,
        );
      }
    }
  };
  const settleParts = async (parts: readonly (readonly Settlement[])[]): Promise<SettleResult[]> => {
    const out: SettleResult[] = [];
    for (const part of parts) {
      const a = await call("settle", (ep) => post(ep, "settle", { settlements: part }, settleAnswer));
      out.push(...a.results);
    }
    return out;
  };
  // One id per claim, kept across the pool's retries: a claim whose answer was lost and that is sent
  // again to the same server gets the jobs it took back.
  const claimBody = (request: ClaimRequest) => ({
    ...request,
    max: Math.min(Math.max(1, Math.floor(request.max)), MAX_ROUTE_BATCH),
    claimId: randomUUID(),
  });
  /** A claiming call: on the claim authority (taken over first when the pool moved). */
  const claimCall = <S extends z.ZodType>(
    op: "claim" | "settle-and-claim",
    body: Record<string, unknown>,
    schema: S,
  ): Promise<z.infer<S>> => {
    let sendings = 0;
    return call(op, async (ep) => {
      if (waitForHome(ep)) {
        // The home server is fenced: claim nothing (settle what rides along) and ask again soon;
        // claims go on there once the pool is back on it (the fence lifted, its health held).
        const settled =
          op === "settle-and-claim"
            ? (await post(ep, "settle", { settlements: body.settlements }, settleAnswer)).results
            : undefined;
        const waitMs = Math.max(1, Math.min(FENCE_RECHECK_MS, homeFencedUntil - scheduler.now()));
        return schema.parse({
          jobs: [],
          dead: [],
          epoch: authority.epoch,
          waitMs,
          ...(settled === undefined ? {} : { settled }),
        });
      }
      await ensureAuthority(ep);
      // The server looks for the jobs of an earlier sending only when this one may be a re-send.
      return post(ep, op, { ...body, firstSend: sendings++ === 0 }, schema);
    });
  };
  const claimedOf = (a: z.infer<typeof claimAnswer>): ClaimedJobs => {
    if (a.epoch > authority.epoch && authority.url === pool.active().url)
      authority = { ...authority, epoch: a.epoch };
    for (const d of a.dead) {
      logger.warn(`[queue] job ${d.id} dead-lettered by the server: ${d.reason}`);
      if (options.onDeadLetter !== undefined) {
        const ev = { id: d.id as JobId, reason: d.reason };
        report("onDeadLetter", () => options.onDeadLetter?.(ev));
      }
    }
    const claimed = a.jobs.map((c) => ({ job: toJobRecord(c.job), token: asToken(c.token) }));
    return a.waitMs === undefined ? claimed : Object.assign(claimed, { waitMs: a.waitMs });
  };

  const schedules: QueueSchedules = {
    async put(spec) {
      checkScheduleSpec(spec);
      const id = await scheduleRecordId(spec.queue, spec.id);
      const a = await call("schedule put", (ep) => post(ep, "schedule-put", { id, spec }, schedulePutAnswer));
      return toScheduleRecord(a.schedule);
    },
    async remove(queue, id) {
      const a = await call("schedule remove", (ep) =>
        post(ep, "schedule-remove", { queue, sid: id }, scheduleRemoveAnswer),
      );
      return a.removed;
    },
    async list(queue) {
      const a = await call("schedule list", (ep) => post(ep, "schedule-list", { queue }, scheduleListAnswer));
      return a.schedules.map(toScheduleRecord);
    },
    async fire(queue, id, tick, jobId) {
      const body = { queue, sid: id, tick: Math.trunc(tick), jobId };
      const a = await call("schedule fire", (ep) => post(ep, "schedule-fire", body, scheduleFireAnswer));
      return a.reason === undefined ? { fired: a.fired } : { fired: a.fired, reason: a.reason };
    },
  };

  const flowCall = (what: string, op: string, body: Record<string, unknown>) =>
    call(what, (ep) => post(ep, op, body, flowAnswer)).then((a) => toFlowRecord(a.flow));
  const flow: QueueFlow = {
    async setLimits(queue, group, limits) {
      checkFlowGroup(group, true);
      checkFlowLimits(limits);
      return flowCall("flow set limits", "flow-set", { queue, group, limits });
    },
    async pause(queue, group, opts = {}) {
      checkFlowGroup(group, false);
      checkPauseMs(opts.forMs);
      return flowCall("flow pause", "flow-pause", { queue, group, ...opts });
    },
    async resume(queue, group) {
      checkFlowGroup(group, false);
      return flowCall("flow resume", "flow-resume", { queue, group });
    },
    async list(queue) {
      const a = await call("flow list", (ep) => post(ep, "flow-list", { queue }, flowListAnswer));
      return a.flows.map(toFlowRecord);
    },
  };

  const handoff: QueueHandoff = {
    async unpark(request) {
      const a = await call("unpark", (ep) =>
        post(ep, "unpark", { queue: request.queue, worker: request.worker, park: request.park }, claimAnswer),
      );
      return claimedOf(a);
    },
  };

  return {
    admin,
    blobs,
    schedules,
    flow,
    handoff,
    priorities: { stepMs: PRIORITY_STEP_MS },
    dedupeModes: DEDUPE_MODES,
    authority: () => authority,
    async enqueue(jobs: readonly NewJob[]): Promise<readonly EnqueueResult[]> {
      for (const [i, j] of jobs.entries()) {
        checkPriority(j.priority, `jobs[${i}].priority`);
        if (j.key !== undefined) checkJobKey(j.key, `jobs[${i}].key`);
        checkJobGroup(j.group, `jobs[${i}].group`);
        checkWeight(j.weight, `jobs[${i}].weight`);
        const size = JSON.stringify(j.payload ?? null).length;
        if (size > MAX_INLINE_JSON) {
          throw new NxsError(
            QueueErrorCode.TooLarge,
            `queue enqueue (item ${i}): payload is ${size} characters of JSON, over ${MAX_INLINE_JSON}: put the bytes in a blob (backend.blobs) and enqueue its reference`,
          );
        }
      }
      const out: EnqueueResult[] = [];
      for (const part of chunks(jobs)) {
        const a = await call("enqueue", (ep) => post(ep, "enqueue", { jobs: part }, enqueueAnswer));
        out.push(
          ...a.results.map((r) => ({
            id: r.id as JobId,
            created: r.created,
            ...(r.deduped === undefined ? {} : { deduped: r.deduped }),
          })),
        );
      }
      return out;
    },
    claim: async (request: ClaimRequest): Promise<ClaimedJobs> =>
      claimedOf(await claimCall("claim", claimBody(request), claimAnswer)),
    async heartbeat(beats: readonly Heartbeat[]): Promise<readonly HeartbeatResult[]> {
      const out: HeartbeatResult[] = [];
      for (const part of chunks(beats)) {
        const a = await call("heartbeat", (ep) => post(ep, "heartbeat", { beats: part }, heartbeatAnswer));
        out.push(...a.results);
      }
      return out;
    },
    async settle(settlements: readonly Settlement[]): Promise<readonly SettleResult[]> {
      checkResults("settle", settlements);
      return settleParts(chunks(settlements));
    },
    async settleAndClaim(settlements: readonly Settlement[], request: ClaimRequest) {
      checkResults("settle", settlements);
      // The last part rides with the claim; earlier ones (past the route's bound) go first.
      const parts = chunks(settlements);
      const last = parts.pop() ?? [];
      const settled = await settleParts(parts);
      const body = { ...claimBody(request), settlements: last };
      const a = await claimCall("settle-and-claim", body, settleAndClaimAnswer);
      return { settled: [...settled, ...a.settled], claimed: claimedOf(a) };
    },
    getJob: (id: JobId) =>
      call("get job", (ep) =>
        ep.client.call(
          "queue get job",
          (pb) =>
            records(pb)
              .getOne(id)
              .catch((e: ClientResponseError) => {
                if (e.status === 404) return undefined;
                throw e;
              }),
          { retry: false },
        ),
      ).then((r) => (r === undefined ? undefined : parseJob(r))),
    counts: (queue: string): Promise<JobCounts> =>
      call("counts", (ep) => post(ep, "counts", { queue }, countsAnswer)),
    watch(queue: string, watcher: QueueWatcher, watchOptions: WatchOptions = {}): () => void {
      const readyOnly = watchOptions.readyOnly === true;
      const key = readyOnly ? `ready\u0000${queue}` : `all\u0000${queue}`;
      let w = watches.get(key);
      if (w === undefined) {
        let readyPool = readyPools.get(key);
        if (readyOnly && readyPool === undefined) {
          readyPool = poolOf();
          readyPool.start();
          readyPools.set(key, readyPool);
        }
        w = readyPool !== undefined ? openReadyWatch(queue, readyPool) : openWatch(queue);
        watches.set(key, w);
        const session = w.session;
        // A ready watch's sessions share its pool one at a time: this one connects once the one
        // before it has stopped.
        w.connected = (readyTurns.get(key) ?? Promise.resolve())
          .then(() => (closed ? undefined : session.connect()))
          .catch((e: unknown) => {
            logger.error(`[queue] watch ${queue} cannot connect: ${(e as Error).message}`, e);
          });
        if (readyOnly) readyTurns.set(key, w.connected);
      }
      const watch = w;
      watch.watchers.add(watcher);
      // A full watch stays open until close(): a watcher added later sees events at once. A ready
      // watch closes its subscription when its last watcher leaves (a worker pauses its wake-ups
      // during a backlog: every write of the queue then skips that subscription's filter check on
      // the server), once it has connected; its pool, logged in, serves the next one.
      return () => {
        if (!watch.watchers.delete(watcher)) return;
        if (!readyOnly || watch.watchers.size > 0 || watches.get(key) !== watch || closed) return;
        watches.delete(key);
        readyTurns.set(
          key,
          (watch.connected ?? Promise.resolve()).then(() => watch.session.stop()),
        );
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const w of watches.values()) {
        w.session.stop();
        w.pool.stop();
      }
      watches.clear();
      for (const p of readyPools.values()) p.stop();
      readyPools.clear();
      if (ownPool) pool.stop();
    },
  };
}
