/**
 * The in-memory queue backend: every port method and capability (admin, blobs) in one process, for
 * tests and single-process use. Each call runs synchronously inside (so every transition is atomic),
 * reads time from the injected {@link Scheduler}, and tells watchers asynchronously (after the call,
 * never inside the caller's stack). It passes `runQueueBackendConformance`.
 */
import {
  callGuarded,
  createSeededRandom,
  defaultLogger,
  type Logger,
  NxsError,
  type Random,
  type Scheduler,
  ValidationError,
} from "@nxs-sync/core";
import type {
  BlobRef,
  BlobStore,
  ClaimedJobs,
  ClaimRequest,
  EnqueueResult,
  FireResult,
  FlowRecord,
  Heartbeat,
  HeartbeatResult,
  JobCounts,
  JobEvent,
  ListOptions,
  ParkRequest,
  QueueAdmin,
  QueueBackendCapabilities,
  QueueFlow,
  QueueSchedules,
  QueueWatcher,
  ScheduleRecord,
  Settlement,
  SettleResult,
} from "./backend.js";
import { QueueErrorCode } from "./errors.js";
import {
  checkFlowGroup,
  checkFlowLimits,
  checkJobGroup,
  checkPauseMs,
  checkWeight,
  createFlowGate,
  type FlowGate,
  type RateEntry,
} from "./flow.js";
import {
  type ClaimedJob,
  JOB_ID_PATTERN,
  type JobFailure,
  type JobId,
  type JobRecord,
  JobState,
  type LeaseToken,
  MAX_FAILURES_KEPT,
  type NewJob,
  PRIORITY_STEP_MS,
  TERMINAL_STATES,
} from "./job.js";
import { checkJobKey, checkPriority, checkScheduleSpec, DEDUPE_MODES } from "./scheduling.js";

/** Options of {@link createMemoryQueueBackend}. */
export interface MemoryQueueBackendOptions {
  /** The clock and timer source (`createManualScheduler()` in tests, `createTimerScheduler()` else). */
  readonly scheduler: Scheduler;
  /** The source of lease tokens and blob ids (default: a fixed seed). */
  readonly random?: Random;
  /** Prefix of lease tokens and blob ids, to tell backends apart in logs (default `m`). */
  readonly idPrefix?: string;
  /** The largest blob accepted, in bytes (default 16 MiB). */
  readonly maxBlobBytes?: number;
  /** Where a watcher that throws is reported (default: the line logger at `warn`). */
  readonly logger?: Logger;
}

/** The memory backend's default blob limit: 16 MiB. */
export const DEFAULT_MEMORY_MAX_BLOB_BYTES = 16 * 1024 * 1024;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface StoredJob {
  record: Mutable<JobRecord>;
  /** The token of the current attempt (`active` only). */
  token?: LeaseToken;
  /** Insertion order: ties of `runAt` are claimed first in, first out. */
  readonly seq: number;
  /** The reason an operator gave when cancelling an active job. */
  cancelReason?: string;
  /** The park the current attempt was handed to (a hand-off), until its lease ends. */
  parkId?: string;
}

/** A parked worker (see `ClaimRequest.park`). */
interface Park {
  readonly id: string;
  readonly worker: string;
  slots: number;
  readonly until: number;
  readonly leaseMs: number;
}

const LIST_DEFAULT = 100;
const LIST_MAX = 1000;
const TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

const copyJob = (job: JobRecord): JobRecord => structuredClone(job);
const without = <T extends object>(obj: T, ...keys: (keyof T)[]): void => {
  for (const k of keys) delete obj[k];
};

/**
 * Creates an in-memory {@link QueueBackendCapabilities}: the port, `admin` and `blobs`.
 * @param options - Scheduler (required), random source, id prefix, blob limit, logger.
 * @returns The backend; `close()` stops event delivery.
 * @example
 * ```ts
 * import { z } from "zod";
 * const backend = createMemoryQueueBackend({ scheduler: createTimerScheduler() });
 * const queue = createQueue({ name: "mail", schema: z.object({ to: z.string() }), backend });
 * ```
 */
export function createMemoryQueueBackend(options: MemoryQueueBackendOptions): QueueBackendCapabilities {
  const { scheduler } = options;
  const random = options.random ?? createSeededRandom(0x9e3779b9);
  const prefix = options.idPrefix ?? "m";
  const maxBlobBytes = options.maxBlobBytes ?? DEFAULT_MEMORY_MAX_BLOB_BYTES;
  const logger = options.logger ?? defaultLogger;
  const jobs = new Map<JobId, StoredJob>();
  const watchers = new Map<string, Set<QueueWatcher>>();
  const blobs = new Map<string, { bytes: Uint8Array; contentType?: string }>();
  /**
   * The key table: queue + key -> the job that holds it and the end of its throttle window (one
   * row per key, like a unique index; it outlives a cleaned job, as the PocketBase key rows do).
   */
  const keys = new Map<string, { readonly job: JobId; readonly until: number }>();
  const schedules = new Map<string, ScheduleRecord>();
  /** Flow records by queue, then group (`""` the queue's, `"*"` each group's). */
  const flows = new Map<string, Map<string, FlowRecord>>();
  /** Rate windows by queue, then group (`""` the queue's). */
  const windows = new Map<string, Map<string, RateEntry[]>>();
  const keyOf = (queue: string, key: string): string => JSON.stringify([queue, key]);
  let seq = 0;
  let tokens = 0;
  let closed = false;

  const randomChars = (n: number): string => {
    let s = "";
    for (let i = 0; i < n; i++) s += TOKEN_ALPHABET[random.int(TOKEN_ALPHABET.length)];
    return s;
  };
  const newToken = (): LeaseToken => `${prefix}${(++tokens).toString(36)}.${randomChars(12)}` as LeaseToken;

  const deliver = (queue: string, events: readonly JobEvent[]): void => {
    if (events.length === 0) return;
    // After the caller's synchronous work, never inside its stack.
    queueMicrotask(() => {
      if (closed) return;
      const set = watchers.get(queue);
      if (set === undefined) return;
      for (const event of events) {
        for (const w of [...set]) {
          if (!set.has(w)) continue;
          callGuarded(
            `a queue watcher of "${queue}"`,
            (e: JobEvent) => w.onEvent(e),
            [event],
            (err) => logger.warn(`[nxs-sync queue memory] ${err.message}`),
          );
        }
      }
    });
  };

  /** Tells the queue's watchers to re-read (after the caller's work, as events are). */
  const resync = (queue: string): void => {
    queueMicrotask(() => {
      if (closed) return;
      for (const w of [...(watchers.get(queue) ?? [])]) {
        callGuarded(
          `a queue watcher of "${queue}" (onResync)`,
          () => w.onResync(),
          [],
          (err) => logger.warn(`[nxs-sync queue memory] ${err.message}`),
        );
      }
    });
  };

  /** Events of one call, grouped by queue, delivered once the call's transitions are done. */
  const batchEvents = () => {
    const byQueue = new Map<string, JobEvent[]>();
    return {
      push(queue: string, event: JobEvent) {
        const list = byQueue.get(queue) ?? [];
        list.push(event);
        byQueue.set(queue, list);
      },
      flush() {
        for (const [queue, list] of byQueue) deliver(queue, list);
      },
    };
  };

  const touch = (job: Mutable<JobRecord>, now: number): void => {
    job.rev += 1;
    job.updatedAt = now;
  };

  const addFailure = (job: Mutable<JobRecord>, failure: JobFailure): void => {
    job.failures = [...job.failures, failure].slice(-MAX_FAILURES_KEPT);
  };

  const endLease = (stored: StoredJob): void => {
    delete stored.token;
    delete stored.parkId;
    without(stored.record, "worker", "leaseUntil", "cancelRequested");
  };

  const finish = (stored: StoredJob, state: JobState, now: number): void => {
    endLease(stored);
    stored.record.state = state;
    stored.record.finishedAt = now;
  };

  /** The stored job a lease refers to, when the lease is still held. */
  const held = (id: JobId, token: LeaseToken, now: number): StoredJob | undefined => {
    const stored = jobs.get(id);
    if (stored === undefined || stored.record.state !== JobState.Active) return undefined;
    if (stored.token !== token) return undefined;
    if ((stored.record.leaseUntil ?? 0) <= now) return undefined;
    return stored;
  };

  const checkOpen = (): void => {
    if (closed) throw new NxsError(QueueErrorCode.Closed, "the memory queue backend is closed");
  };

  /** One port method: refused after close, else the synchronous transition, as a promise. */
  const whenOpen =
    <A, R>(run: (arg: A) => R) =>
    async (arg: A): Promise<R> => {
      checkOpen();
      return run(arg);
    };

  const checkDuration = (name: string, ms: number, min: number): void => {
    if (!Number.isFinite(ms) || ms < min) {
      throw new ValidationError(`${name} ${String(ms)} must be a finite number >= ${min}`);
    }
  };

  const enqueueSync = (batch: readonly NewJob[]): EnqueueResult[] => {
    for (const [i, job] of batch.entries()) {
      if (!JOB_ID_PATTERN.test(job.id)) {
        throw new ValidationError(`jobs[${i}].id ${JSON.stringify(job.id)} is not 15 chars of [a-z0-9]`, {
          issues: [{ path: [i, "id"], message: "not a job id" }],
        });
      }
      if (!Number.isInteger(job.maxAttempts) || job.maxAttempts < 1) {
        throw new ValidationError(`jobs[${i}].maxAttempts ${job.maxAttempts} must be an integer >= 1`, {
          issues: [{ path: [i, "maxAttempts"], message: "at least 1" }],
        });
      }
      if (typeof job.queue !== "string" || job.queue === "") {
        throw new ValidationError(`jobs[${i}].queue must be a non-empty string`, {
          issues: [{ path: [i, "queue"], message: "required" }],
        });
      }
      checkPriority(job.priority, `jobs[${i}].priority`);
      if (job.key !== undefined) checkJobKey(job.key, `jobs[${i}].key`);
      checkJobGroup(job.group, `jobs[${i}].group`);
      checkWeight(job.weight, `jobs[${i}].weight`);
    }
    const now = scheduler.now();
    const events = batchEvents();
    const handoffs = handoffsOf();
    const results = batch.map((job): EnqueueResult => {
      if (jobs.has(job.id)) return { id: job.id, created: false };
      let runAt = job.runAt ?? now + Math.max(0, job.delayMs ?? 0);
      const key = job.key;
      if (key !== undefined) {
        const row = keys.get(keyOf(job.queue, key.key));
        const holder = row === undefined ? undefined : jobs.get(row.job);
        const h = holder?.record;
        const ttl = key.ttlMs ?? 0;
        if (key.mode === "simple" && h !== undefined && !TERMINAL_STATES.includes(h.state)) {
          return { id: h.id, created: false, deduped: "ignored" };
        }
        if (key.mode === "throttle" && row !== undefined && row.until > now) {
          return { id: row.job, created: false, deduped: "ignored" };
        }
        if (key.mode === "debounce") {
          runAt = Math.max(runAt, now + ttl);
          if (holder !== undefined && h !== undefined && h.state === JobState.Waiting && h.attempt === 0) {
            h.payload = structuredClone(job.payload);
            h.runAt = runAt;
            keys.set(keyOf(job.queue, key.key), { job: h.id, until: now + ttl });
            touch(h, now);
            events.push(h.queue, { type: "waiting", id: h.id, runAt });
            return { id: h.id, created: false, deduped: "replaced" };
          }
        }
      }
      const record: Mutable<JobRecord> = {
        id: job.id,
        queue: job.queue,
        state: JobState.Waiting,
        payload: structuredClone(job.payload),
        runAt,
        attempt: 0,
        attemptsMade: 0,
        maxAttempts: job.maxAttempts,
        backoff: { ...job.backoff },
        timeoutMs: Math.max(0, job.timeoutMs),
        generation: 0,
        epoch: 0,
        ...(job.priority ? { priority: job.priority } : {}),
        ...(key === undefined ? {} : { jobKey: key.key, keyMode: key.mode }),
        ...(job.group === undefined ? {} : { group: job.group }),
        ...(job.weight === undefined || job.weight === 1 ? {} : { weight: job.weight }),
        failures: [],
        rev: 0,
        createdAt: now,
        updatedAt: now,
      };
      const stored: StoredJob = { record, seq: seq++ };
      if (key !== undefined)
        keys.set(keyOf(job.queue, key.key), { job: job.id, until: now + (key.ttlMs ?? 0) });
      jobs.set(job.id, stored);
      events.push(job.queue, { type: "added", id: job.id, runAt });
      // Ready now, no singleton key, a queue without flow records: a parked worker takes it at once.
      const live = runAt <= now && key?.mode !== "singleton" && (flows.get(job.queue)?.size ?? 0) === 0;
      const park = live ? liveParks(job.queue, now)[0] : undefined;
      if (park !== undefined) {
        park.slots -= 1;
        const turns = (parks.get(job.queue) ?? []).filter((p) => p !== park);
        parks.set(job.queue, park.slots > 0 ? [...turns, park] : turns);
        const token = newToken();
        stored.token = token;
        stored.parkId = park.id;
        record.state = JobState.Active;
        record.attempt = 1;
        record.attemptsMade = 1;
        record.worker = park.worker;
        record.leaseUntil = now + park.leaseMs;
        events.push(job.queue, { type: "active", id: job.id, attempt: 1, worker: park.worker });
        handoffs.push(job.queue, park.id, { job: copyJob(record), token });
      }
      return { id: job.id, created: true };
    });
    events.flush();
    handoffs.flush();
    return results;
  };

  /** Parked workers per queue (hand-off): in the order they take turns. */
  const parks = new Map<string, Park[]>();
  const liveParks = (queue: string, now: number): Park[] =>
    (parks.get(queue) ?? []).filter((p) => p.until > now && p.slots > 0);
  /** Hand-offs of one call, told to the queue's hand-off watchers after its events. */
  const handoffsOf = () => {
    const list: { queue: string; parkId: string; claimed: ClaimedJob }[] = [];
    return {
      push: (queue: string, parkId: string, claimed: ClaimedJob) => list.push({ queue, parkId, claimed }),
      flush() {
        if (list.length === 0) return;
        queueMicrotask(() => {
          if (closed) return;
          for (const h of list) {
            for (const w of [...(watchers.get(h.queue) ?? [])]) {
              if (w.onHandoff === undefined) continue;
              callGuarded(
                `a queue watcher of "${h.queue}" (onHandoff)`,
                (x: { parkId: string; claimed: ClaimedJob }) => w.onHandoff?.(x),
                [{ parkId: h.parkId, claimed: { job: copyJob(h.claimed.job), token: h.claimed.token } }],
                (err) => logger.warn(`[nxs-sync queue memory] ${err.message}`),
              );
            }
          }
        });
      },
    };
  };
  /** The jobs handed to a park that its worker does not hold (by its list), still under lease. */
  const handedTo = (queue: string, worker: string, park: ParkRequest, now: number): ClaimedJob[] => {
    const holding = new Set(park.holding ?? []);
    const out: ClaimedJob[] = [];
    for (const stored of jobs.values()) {
      const r = stored.record;
      if (r.queue !== queue || r.state !== JobState.Active || stored.parkId !== park.id) continue;
      if (
        r.worker !== worker ||
        (r.leaseUntil ?? 0) <= now ||
        holding.has(r.id) ||
        stored.token === undefined
      )
        continue;
      out.push({ job: copyJob(r), token: stored.token });
    }
    return out;
  };
  const checkPark = (park: ParkRequest): void => {
    if (!/^park\.[A-Za-z0-9_-]{1,58}$/.test(park.id)) {
      throw new ValidationError(
        `park.id ${JSON.stringify(park.id)} must be park. and 1-58 characters of [A-Za-z0-9_-]`,
      );
    }
    checkDuration("park.ttlMs", park.ttlMs, 1);
  };

  /** The claim's flow gate (given the queue's live active jobs), or undefined when it has no flow records. */
  const flowGate = (queue: string, now: number, live: readonly JobRecord[]): FlowGate | undefined => {
    const records = flows.get(queue);
    if (records === undefined || records.size === 0) return undefined;
    const byGroup = new Map<string, number>();
    for (const r of live) if (r.group !== undefined) byGroup.set(r.group, (byGroup.get(r.group) ?? 0) + 1);
    const total = live.length;
    const w = windows.get(queue) ?? new Map<string, RateEntry[]>();
    windows.set(queue, w);
    return createFlowGate({ now, records: [...records.values()], active: { total, byGroup }, windows: w });
  };

  const claimSync = (request: ClaimRequest): ClaimedJobs => {
    checkDuration("leaseMs", request.leaseMs, 1);
    if (request.park !== undefined) checkPark(request.park);
    const now = scheduler.now();
    const claimed = claimReady(request, now);
    const park = request.park;
    if (park !== undefined) {
      // This worker's park: replaced by this claim's free slots (none: it is not parked).
      const free = Math.max(1, Math.trunc(request.max)) - claimed.length;
      const others = (parks.get(request.queue) ?? []).filter((p) => p.worker !== request.worker);
      const parked =
        free > 0 && claimed.waitMs === undefined && (flows.get(request.queue)?.size ?? 0) === 0
          ? [
              ...others,
              {
                id: park.id,
                worker: request.worker,
                slots: free,
                until: now + park.ttlMs,
                leaseMs: request.leaseMs,
              },
            ]
          : others;
      parks.set(request.queue, parked);
    }
    return claimed;
  };

  const claimReady = (request: ClaimRequest, now: number): ClaimedJobs => {
    const events = batchEvents();
    // Stalled jobs by lease end; waiting ones by rank: runAt minus the priority's head start.
    const dueAt = (s: StoredJob): number =>
      s.record.state === JobState.Active
        ? (s.record.leaseUntil ?? 0)
        : s.record.runAt - (s.record.priority ?? 0) * PRIORITY_STEP_MS;
    // The queue's live attempts (a lapsed lease holds nothing): they hold their singleton keys and
    // count against flow limits.
    const live: JobRecord[] = [];
    const activeKeys = new Set<string>();
    for (const { record: r } of jobs.values()) {
      if (r.queue !== request.queue || r.state !== JobState.Active || (r.leaseUntil ?? 0) <= now) continue;
      live.push(r);
      if (r.keyMode === "singleton" && r.jobKey !== undefined) activeKeys.add(r.jobKey);
    }
    const ready = [...jobs.values()]
      .filter(
        (s) =>
          s.record.queue === request.queue &&
          ((s.record.state === JobState.Waiting && s.record.runAt <= now) ||
            (s.record.state === JobState.Active && (s.record.leaseUntil ?? 0) <= now)),
      )
      .sort((a, b) => dueAt(a) - dueAt(b) || a.seq - b.seq);
    // The jobs handed to this worker's park that it has not seen first (their events were lost).
    const claimed: ClaimedJob[] =
      request.park === undefined ? [] : handedTo(request.queue, request.worker, request.park, now);
    const max = Math.max(1, Math.trunc(request.max));
    const gate = flowGate(request.queue, now, live);
    let held = false;
    for (const stored of ready) {
      if (claimed.length >= max) break;
      const job = stored.record;
      const singleton = job.keyMode === "singleton" && job.jobKey !== undefined ? job.jobKey : undefined;
      if (singleton !== undefined && activeKeys.has(singleton)) continue;
      const verdict = gate?.admit(job.group, job.weight ?? 1) ?? "ok";
      if (verdict === "held") {
        held = true;
        continue;
      }
      if (verdict === "over-limit") {
        const message = `job ${job.id} weighs ${job.weight ?? 1}, more than its rate limit allows in a whole window: it could never run`;
        endLease(stored);
        addFailure(job, { attempt: job.attempt, code: QueueErrorCode.OverLimit, message, at: now });
        finish(stored, JobState.Failed, now);
        job.reason = QueueErrorCode.OverLimit;
        touch(job, now);
        events.push(job.queue, {
          type: "failed",
          id: job.id,
          code: QueueErrorCode.OverLimit,
          message,
          final: true,
        });
        continue;
      }
      if (job.state === JobState.Active) {
        // A stall: the holder died or froze. Its token is refused from now on.
        events.push(job.queue, { type: "stalled", id: job.id, attempt: job.attempt });
        if (job.cancelRequested) {
          const reason = stored.cancelReason;
          finish(stored, JobState.Cancelled, now);
          if (reason !== undefined) job.reason = reason;
          touch(job, now);
          events.push(job.queue, { type: "cancelled", id: job.id });
          continue;
        }
        const message = `worker ${job.worker ?? "?"} lost its lease on attempt ${job.attempt}`;
        addFailure(job, { attempt: job.attempt, code: QueueErrorCode.Stalled, message, at: now });
        if (job.attemptsMade >= job.maxAttempts) {
          finish(stored, JobState.Failed, now);
          job.reason = QueueErrorCode.Stalled;
          touch(job, now);
          events.push(job.queue, {
            type: "failed",
            id: job.id,
            code: QueueErrorCode.Stalled,
            message,
            final: true,
          });
          continue;
        }
      }
      const token = newToken();
      stored.token = token;
      delete stored.cancelReason;
      job.state = JobState.Active;
      job.attempt += 1;
      job.attemptsMade += 1;
      job.worker = request.worker;
      job.leaseUntil = now + request.leaseMs;
      without(job, "cancelRequested", "progress");
      touch(job, now);
      events.push(job.queue, { type: "active", id: job.id, attempt: job.attempt, worker: request.worker });
      if (singleton !== undefined) activeKeys.add(singleton);
      gate?.take(job.group, job.weight ?? 1);
      claimed.push({ job: copyJob(job), token });
    }
    events.flush();
    const waitMs = held && claimed.length < max ? gate?.waitMs() : undefined;
    return waitMs === undefined ? claimed : Object.assign(claimed, { waitMs });
  };

  const heartbeatSync = (beats: readonly Heartbeat[]): HeartbeatResult[] => {
    const now = scheduler.now();
    const events = batchEvents();
    const results = beats.map((beat): HeartbeatResult => {
      const stored = held(beat.id, beat.token, now);
      if (stored === undefined) return { ok: false, code: QueueErrorCode.LeaseLost };
      const job = stored.record;
      job.leaseUntil = now + Math.max(1, beat.leaseMs);
      if (beat.progress !== undefined) {
        job.progress = structuredClone(beat.progress);
        events.push(job.queue, { type: "progress", id: job.id, progress: structuredClone(beat.progress) });
      }
      touch(job, now);
      return { ok: true, leaseUntil: job.leaseUntil, cancelRequested: job.cancelRequested === true };
    });
    events.flush();
    return results;
  };

  const settleOne = (s: Settlement, now: number, events: ReturnType<typeof batchEvents>): SettleResult => {
    const stored = held(s.id, s.token, now);
    if (stored === undefined) return { ok: false, code: QueueErrorCode.LeaseLost };
    const job = stored.record;
    switch (s.kind) {
      case "complete":
        finish(stored, JobState.Completed, now);
        if (s.result !== undefined) job.result = structuredClone(s.result);
        events.push(job.queue, {
          type: "completed",
          id: job.id,
          ...(s.result === undefined ? {} : { result: structuredClone(s.result) }),
        });
        break;
      case "fail": {
        addFailure(job, { attempt: job.attempt, code: s.code, message: s.message, at: now });
        const retry = s.retryDelayMs !== undefined && job.attemptsMade < job.maxAttempts;
        if (retry) {
          endLease(stored);
          job.state = JobState.Waiting;
          job.runAt = now + Math.max(0, s.retryDelayMs ?? 0);
        } else {
          finish(stored, JobState.Failed, now);
          job.reason = s.code;
        }
        events.push(job.queue, {
          type: "failed",
          id: job.id,
          code: s.code,
          message: s.message,
          final: !retry,
        });
        if (retry) events.push(job.queue, { type: "waiting", id: job.id, runAt: job.runAt });
        break;
      }
      case "retry-later":
        if (s.pauseGroup === true && s.delayMs > 0) {
          pauseFor(
            job.queue,
            job.group ?? "",
            now + s.delayMs,
            `job ${job.id}: retry later (${s.delayMs} ms)`,
            now,
          );
        }
        endLease(stored);
        job.state = JobState.Waiting;
        job.attemptsMade = Math.max(0, job.attemptsMade - 1);
        job.runAt = now + Math.max(0, s.delayMs);
        events.push(job.queue, { type: "waiting", id: job.id, runAt: job.runAt });
        break;
      case "release":
        endLease(stored);
        job.state = JobState.Waiting;
        job.attemptsMade = Math.max(0, job.attemptsMade - 1);
        job.runAt = now;
        events.push(job.queue, { type: "waiting", id: job.id, runAt: job.runAt });
        break;
      case "cancelled": {
        const reason = stored.cancelReason;
        finish(stored, JobState.Cancelled, now);
        if (reason !== undefined) job.reason = reason;
        events.push(job.queue, { type: "cancelled", id: job.id });
        break;
      }
    }
    delete stored.cancelReason;
    touch(job, now);
    return { ok: true, state: job.state };
  };

  const settleSync = (settlements: readonly Settlement[]): SettleResult[] => {
    const now = scheduler.now();
    const events = batchEvents();
    const results = settlements.map((s) => settleOne(s, now, events));
    events.flush();
    return results;
  };

  const countsSync = (queue: string): JobCounts => {
    const now = scheduler.now();
    const c = { waiting: 0, active: 0, completed: 0, failed: 0, cancelled: 0, delayed: 0 };
    for (const { record } of jobs.values()) {
      if (record.queue !== queue) continue;
      if (record.state === JobState.Waiting && record.runAt > now) c.delayed++;
      else c[record.state]++;
    }
    return c;
  };

  const admin: QueueAdmin = {
    async cancel(id, reason) {
      checkOpen();
      const stored = jobs.get(id);
      if (stored === undefined) return undefined;
      const job = stored.record;
      const now = scheduler.now();
      if (job.state === JobState.Waiting) {
        finish(stored, JobState.Cancelled, now);
        job.reason = reason;
        touch(job, now);
        deliver(job.queue, [{ type: "cancelled", id }]);
      } else if (job.state === JobState.Active && job.cancelRequested !== true) {
        job.cancelRequested = true;
        stored.cancelReason = reason;
        touch(job, now);
      }
      return job.state;
    },
    async redrive(queue, opts = {}) {
      checkOpen();
      const now = scheduler.now();
      const wanted = opts.ids === undefined ? undefined : new Set(opts.ids);
      const limit = opts.limit ?? Number.POSITIVE_INFINITY;
      const events: JobEvent[] = [];
      const failed = [...jobs.values()]
        .filter((s) => s.record.queue === queue && s.record.state === JobState.Failed)
        .filter((s) => wanted === undefined || wanted.has(s.record.id))
        .sort((a, b) => (a.record.id < b.record.id ? -1 : 1));
      let moved = 0;
      for (const stored of failed) {
        if (moved >= limit) break;
        const job = stored.record;
        job.state = JobState.Waiting;
        job.generation += 1;
        job.attempt = 0;
        job.attemptsMade = 0;
        job.runAt = now;
        without(job, "reason", "finishedAt", "result", "progress");
        touch(job, now);
        events.push({ type: "waiting", id: job.id, runAt: now });
        moved++;
      }
      deliver(queue, events);
      return moved;
    },
    async clean(queue, opts) {
      checkOpen();
      const states = new Set(opts.states.filter((s) => TERMINAL_STATES.includes(s)));
      const limit = opts.limit ?? Number.POSITIVE_INFINITY;
      let deleted = 0;
      for (const [id, { record }] of [...jobs.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
        if (deleted >= limit) break;
        if (record.queue !== queue || !states.has(record.state)) continue;
        if ((record.finishedAt ?? Number.POSITIVE_INFINITY) >= opts.before) continue;
        jobs.delete(id);
        deleted++;
      }
      return deleted;
    },
    async list(queue, opts: ListOptions = {}) {
      checkOpen();
      const limit = Math.min(LIST_MAX, Math.max(1, opts.limit ?? LIST_DEFAULT));
      return [...jobs.values()]
        .map((s) => s.record)
        .filter((r) => r.queue === queue && (opts.state === undefined || r.state === opts.state))
        .filter((r) => opts.after === undefined || r.id > opts.after)
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .slice(0, limit)
        .map(copyJob);
    },
  };

  const blobStore: BlobStore = {
    maxBytes: maxBlobBytes,
    async put(bytes, opts = {}) {
      checkOpen();
      if (bytes.byteLength > maxBlobBytes) {
        throw new NxsError(
          QueueErrorCode.TooLarge,
          `blob of ${bytes.byteLength} bytes is over the limit of ${maxBlobBytes} bytes`,
        );
      }
      const id = `${prefix}b${blobs.size.toString(36)}${randomChars(10)}`;
      blobs.set(id, {
        bytes: bytes.slice(),
        ...(opts.contentType === undefined ? {} : { contentType: opts.contentType }),
      });
      const ref: BlobRef = {
        $blob: id,
        size: bytes.byteLength,
        ...(opts.contentType === undefined ? {} : { contentType: opts.contentType }),
      };
      return ref;
    },
    async get(ref) {
      checkOpen();
      return blobs.get(ref.$blob)?.bytes.slice();
    },
    async delete(ref) {
      checkOpen();
      blobs.delete(ref.$blob);
    },
  };

  const flowOf = (queue: string, group: string, now: number): FlowRecord => {
    const existing = flows.get(queue)?.get(group);
    return existing ?? { queue, group, paused: false, pausedUntil: 0, updatedAt: now };
  };
  const storeFlow = (record: FlowRecord): FlowRecord => {
    const m = flows.get(record.queue) ?? new Map<string, FlowRecord>();
    flows.set(record.queue, m);
    m.set(record.group, record);
    return structuredClone(record);
  };
  /** Pauses a queue or group until `until` at least (a timed pause never shortens a longer one). */
  function pauseFor(queue: string, group: string, until: number, reason: string, now: number): FlowRecord {
    const r = flowOf(queue, group, now);
    return storeFlow({ ...r, pausedUntil: Math.max(r.pausedUntil, until), reason, updatedAt: now });
  }
  const flowStore: QueueFlow = {
    async setLimits(queue, group, limits) {
      checkOpen();
      checkFlowGroup(group, true);
      checkFlowLimits(limits);
      const now = scheduler.now();
      const { concurrency: _c, rate: _r, ...rest } = flowOf(queue, group, now);
      return storeFlow({
        ...rest,
        ...(limits.concurrency === undefined ? {} : { concurrency: limits.concurrency }),
        ...(limits.rate === undefined
          ? {}
          : { rate: { max: limits.rate.max, intervalMs: limits.rate.intervalMs } }),
        updatedAt: now,
      });
    },
    async pause(queue, group, opts = {}) {
      checkOpen();
      checkFlowGroup(group, false);
      checkPauseMs(opts.forMs);
      const now = scheduler.now();
      const reason = opts.reason ?? "paused";
      if (opts.forMs !== undefined) return pauseFor(queue, group, now + opts.forMs, reason, now);
      return storeFlow({ ...flowOf(queue, group, now), paused: true, reason, updatedAt: now });
    },
    async resume(queue, group) {
      checkOpen();
      checkFlowGroup(group, false);
      const now = scheduler.now();
      const { reason: _reason, ...r } = flowOf(queue, group, now);
      const resumed = storeFlow({ ...r, paused: false, pausedUntil: 0, updatedAt: now });
      // Watchers re-read (a worker claims): held jobs may be ready now.
      resync(queue);
      return resumed;
    },
    async list(queue) {
      checkOpen();
      return [...(flows.get(queue)?.values() ?? [])]
        .sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0))
        .map((r) => structuredClone(r));
    },
  };

  const scheduleKey = (queue: string, id: string): string => JSON.stringify([queue, id]);
  const scheduleStore: QueueSchedules = {
    async put(spec) {
      checkOpen();
      checkScheduleSpec(spec);
      const now = scheduler.now();
      const old = schedules.get(scheduleKey(spec.queue, spec.id));
      const rec: ScheduleRecord = structuredClone({
        ...spec,
        runs: old?.runs ?? 0,
        lastTick: old?.lastTick ?? 0,
        createdAt: old?.createdAt ?? now,
        updatedAt: now,
      });
      schedules.set(scheduleKey(spec.queue, spec.id), rec);
      return structuredClone(rec);
    },
    async remove(queue, id) {
      checkOpen();
      return schedules.delete(scheduleKey(queue, id));
    },
    async list(queue) {
      checkOpen();
      return [...schedules.values()]
        .filter((r) => r.queue === queue)
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .map((r) => structuredClone(r));
    },
    async fire(queue, id, tick, jobId): Promise<FireResult> {
      checkOpen();
      const k = scheduleKey(queue, id);
      const rec = schedules.get(k);
      if (rec === undefined) return { fired: false, reason: "gone" };
      if (tick <= rec.lastTick) return { fired: false, reason: "past" };
      if (rec.limit !== undefined && rec.runs >= rec.limit) return { fired: false, reason: "limit" };
      const [r] = enqueueSync([
        {
          id: jobId,
          queue,
          payload: rec.payload,
          runAt: tick,
          maxAttempts: rec.job.maxAttempts,
          backoff: rec.job.backoff,
          timeoutMs: rec.job.timeoutMs,
          ...(rec.job.priority === undefined ? {} : { priority: rec.job.priority }),
        },
      ]);
      const created = r?.created === true;
      schedules.set(k, {
        ...rec,
        lastTick: tick,
        // A tick's job found stored (the other server's scheduler made it) is a run too.
        runs: rec.runs + 1,
        updatedAt: scheduler.now(),
      });
      return created ? { fired: true } : { fired: false, reason: "exists" };
    },
  };

  return {
    priorities: { stepMs: PRIORITY_STEP_MS },
    dedupeModes: DEDUPE_MODES,
    schedules: scheduleStore,
    flow: flowStore,
    enqueue: whenOpen(enqueueSync),
    claim: whenOpen(claimSync),
    heartbeat: whenOpen(heartbeatSync),
    settle: whenOpen(settleSync),
    async settleAndClaim(settlements, request) {
      checkOpen();
      // Checked before anything changes: all or nothing.
      checkDuration("leaseMs", request.leaseMs, 1);
      return { settled: settleSync(settlements), claimed: claimSync(request) };
    },
    getJob: whenOpen((id: JobId) => {
      const stored = jobs.get(id);
      return stored === undefined ? undefined : copyJob(stored.record);
    }),
    counts: whenOpen(countsSync),
    watch(queue, given, watchOptions = {}) {
      checkOpen();
      const set = watchers.get(queue) ?? new Set<QueueWatcher>();
      watchers.set(queue, set);
      const watcher: QueueWatcher =
        watchOptions.readyOnly === true
          ? {
              // Hints of jobs still waiting (a job handed to a parked worker is not one).
              onEvent: (e) => {
                if (e.type !== "added" && e.type !== "waiting") return;
                if (jobs.get(e.id)?.record.state !== JobState.Waiting) return;
                given.onEvent(e);
              },
              onResync: () => given.onResync(),
              ...(watchOptions.handoffs === true && given.onHandoff !== undefined
                ? {
                    onHandoff: (h: { readonly parkId: string; readonly claimed: ClaimedJob }) =>
                      given.onHandoff?.(h),
                  }
                : {}),
            }
          : given;
      set.add(watcher);
      // "Connected": a watcher re-reads what it missed before it started watching.
      queueMicrotask(() => {
        if (closed || !set.has(watcher)) return;
        callGuarded(
          `a queue watcher of "${queue}" (onResync)`,
          () => watcher.onResync(),
          [],
          (err) => logger.warn(`[nxs-sync queue memory] ${err.message}`),
        );
      });
      return () => {
        set.delete(watcher);
      };
    },
    admin,
    blobs: blobStore,
    handoff: {
      unpark: whenOpen(
        (request: { readonly queue: string; readonly worker: string; readonly park: ParkRequest }) => {
          checkPark(request.park);
          const now = scheduler.now();
          const left = (parks.get(request.queue) ?? []).filter(
            (p) => p.worker !== request.worker || p.id !== request.park.id,
          );
          parks.set(request.queue, left);
          return handedTo(request.queue, request.worker, request.park, now) as ClaimedJobs;
        },
      ),
    },
    async close() {
      closed = true;
      watchers.clear();
    },
  };
}
