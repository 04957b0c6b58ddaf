/**
 * The edge of the PocketBase backend: zod schemas of what the server answers (job records from
 * the hook routes and the records API, the routes' answers) and their mapping to the port's types.
 */
import type { Json } from "@nxs-sync/core";
import { z } from "zod";
import type { FlowRecord, JobEvent, ScheduleRecord } from "../backend.js";
import { JOB_ID_PATTERN, type JobId, type JobRecord, JobState, type LeaseToken } from "../job.js";

const count = z.number().finite().min(0);
const STATES = Object.values(JobState) as [JobState, ...JobState[]];

/** A job record as stored in `nxs_jobs` (route answers and the records API carry the same fields). */
/** What a worker's wake-up reads of a waiting job's realtime event. */
export const readyJobSchema = z.object({
  id: z.string().regex(JOB_ID_PATTERN),
  attempt: z.number(),
  runAt: z.number(),
  deleted: z.boolean().optional(),
});

const backoffSchema = z
  .object({
    type: z.enum(["exponential", "fixed"]).optional(),
    delayMs: count.optional(),
    maxMs: count.optional(),
  })
  .nullable()
  .catch({});

export const storedJobSchema = z.object({
  id: z.string().regex(JOB_ID_PATTERN),
  queue: z.string().min(1),
  state: z.enum(STATES),
  payload: z.unknown(),
  runAt: count,
  attempt: count,
  attemptsMade: count,
  maxAttempts: count,
  backoff: backoffSchema,
  timeoutMs: count,
  generation: count,
  epoch: count,
  worker: z.string(),
  leaseUntil: count,
  token: z.string().optional(),
  cancelRequested: z.boolean(),
  progress: z.unknown(),
  result: z.unknown(),
  reason: z.string(),
  failures: z
    .array(z.object({ attempt: count, code: z.string(), message: z.string(), at: count }))
    .nullable()
    .catch([]),
  rev: count,
  version: z.string(),
  createdAt: count,
  updatedAt: count,
  finishedAt: count,
  deleted: z.boolean(),
  // Scheduling fields (hook piece 4); absent from a record stored before them.
  priority: count.optional(),
  jobKey: z.string().optional(),
  keyMode: z.enum(["simple", "throttle", "debounce", "singleton", ""]).optional().catch(""),
  // Flow fields (hook piece 5); absent from a record stored before them (weight 0 reads as 1).
  groupKey: z.string().optional(),
  weight: count.optional(),
});
/** A stored job record (validated). */
export type StoredJob = z.infer<typeof storedJobSchema>;

/** The prefix of a park's id: the claimId of a job the server handed to a parked worker. */
export const PARK_PREFIX = "park.";
/** A job record as a realtime event shows it once handed to a parked worker: active, with its token. */
export const handedJobSchema = storedJobSchema.extend({
  state: z.literal("active"),
  token: z.string().min(1),
  claimId: z.string(),
});

/**
 * The port's view of a stored job: empty optional fields left out, the token and storage fields
 * (`version`, `deleted`) dropped.
 * @param s - A validated record.
 * @returns The job.
 */
export function toJobRecord(s: StoredJob): JobRecord {
  const job: { -readonly [K in keyof JobRecord]?: JobRecord[K] } = {
    id: s.id as JobId,
    queue: s.queue,
    state: s.state,
    payload: (s.payload ?? null) as Json,
    runAt: s.runAt,
    attempt: s.attempt,
    attemptsMade: s.attemptsMade,
    maxAttempts: s.maxAttempts,
    backoff: s.backoff ?? {},
    timeoutMs: s.timeoutMs,
    generation: s.generation,
    epoch: s.epoch,
    failures: s.failures ?? [],
    rev: s.rev,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
  };
  if (s.state === JobState.Active) {
    if (s.worker !== "") job.worker = s.worker;
    if (s.leaseUntil > 0) job.leaseUntil = s.leaseUntil;
    if (s.cancelRequested) job.cancelRequested = true;
  }
  if (s.progress !== null && s.progress !== undefined) job.progress = s.progress as Json;
  if (s.result !== null && s.result !== undefined) job.result = s.result as Json;
  if (s.reason !== "" && s.state !== JobState.Waiting && s.state !== JobState.Active) job.reason = s.reason;
  if (s.finishedAt > 0) job.finishedAt = s.finishedAt;
  if ((s.priority ?? 0) > 0) job.priority = s.priority;
  if (s.jobKey) {
    job.jobKey = s.jobKey;
    if (s.keyMode) job.keyMode = s.keyMode;
  }
  if (s.groupKey) job.group = s.groupKey;
  if (s.weight !== undefined && s.weight > 0 && s.weight !== 1) job.weight = s.weight;
  return job as JobRecord;
}

export const enqueueAnswer = z.object({
  results: z.array(
    z.object({ id: z.string(), created: z.boolean(), deduped: z.enum(["ignored", "replaced"]).optional() }),
  ),
});
/** A schedule as the schedule routes answer it (0 and "" for absent options). */
export const storedScheduleSchema = z.object({
  queue: z.string(),
  id: z.string(),
  cron: z.string(),
  tz: z.string(),
  payload: z.unknown(),
  limit: count,
  endDate: count,
  job: z.object({
    maxAttempts: count,
    backoff: backoffSchema,
    timeoutMs: count,
    priority: count.optional(),
  }),
  runs: count,
  lastTick: count,
  createdAt: count,
  updatedAt: count,
});
/**
 * The port's view of a stored schedule.
 * @param s - A validated record.
 * @returns The schedule.
 */
export function toScheduleRecord(s: z.infer<typeof storedScheduleSchema>): ScheduleRecord {
  return {
    id: s.id,
    queue: s.queue,
    cron: s.cron,
    ...(s.tz === "" ? {} : { tz: s.tz }),
    payload: (s.payload ?? null) as Json,
    ...(s.limit > 0 ? { limit: s.limit } : {}),
    ...(s.endDate > 0 ? { endDate: s.endDate } : {}),
    job: {
      maxAttempts: s.job.maxAttempts,
      backoff: s.job.backoff ?? {},
      timeoutMs: s.job.timeoutMs,
      ...(s.job.priority ? { priority: s.job.priority } : {}),
    },
    runs: s.runs,
    lastTick: s.lastTick,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
  };
}
export const schedulePutAnswer = z.object({ schedule: storedScheduleSchema });
export const scheduleListAnswer = z.object({ schedules: z.array(storedScheduleSchema) });
export const scheduleRemoveAnswer = z.object({ removed: z.boolean() });
export const scheduleFireAnswer = z.object({
  fired: z.boolean(),
  reason: z.enum(["past", "gone", "limit", "exists"]).optional(),
});
export const claimAnswer = z.object({
  jobs: z.array(z.object({ job: storedJobSchema, token: z.string().min(1), stalled: z.boolean() })),
  dead: z.array(z.object({ id: z.string(), reason: z.string() })),
  epoch: count,
  waitMs: count.optional(),
});
/** A flow record as the flow routes answer it. */
export const storedFlowSchema = z.object({
  queue: z.string(),
  group: z.string(),
  concurrency: count.optional(),
  rate: z.object({ max: count, intervalMs: count }).optional(),
  paused: z.boolean(),
  pausedUntil: count,
  reason: z.string(),
  updatedAt: count,
});
/**
 * The port's view of a stored flow record.
 * @param s - A validated record.
 * @returns The record.
 */
export function toFlowRecord(s: z.infer<typeof storedFlowSchema>): FlowRecord {
  return {
    queue: s.queue,
    group: s.group,
    ...(s.concurrency === undefined ? {} : { concurrency: s.concurrency }),
    ...(s.rate === undefined ? {} : { rate: s.rate }),
    paused: s.paused,
    pausedUntil: s.pausedUntil,
    ...(s.reason === "" ? {} : { reason: s.reason }),
    updatedAt: s.updatedAt,
  };
}
export const flowAnswer = z.object({ flow: storedFlowSchema });
export const flowListAnswer = z.object({ flows: z.array(storedFlowSchema) });
const leaseLost = z.object({ ok: z.literal(false), code: z.literal("queue/lease-lost") });
export const heartbeatAnswer = z.object({
  results: z.array(
    z.union([z.object({ ok: z.literal(true), leaseUntil: count, cancelRequested: z.boolean() }), leaseLost]),
  ),
});
export const settleAnswer = z.object({
  results: z.array(z.union([z.object({ ok: z.literal(true), state: z.enum(STATES) }), leaseLost])),
});
export const settleAndClaimAnswer = claimAnswer.extend({ settled: settleAnswer.shape.results });
export const cancelAnswer = z.object({ state: z.enum(STATES).nullable() });
export const movedAnswer = z.object({ moved: count });
export const deletedAnswer = z.object({ deleted: count });
export const takeoverAnswer = z.object({ epoch: count, previous: count, seen: count });
export const countsAnswer = z.object({
  waiting: count,
  active: count,
  completed: count,
  failed: count,
  cancelled: count,
  delayed: count,
});
/** The body of a refused route call (400). */
export const refusalSchema = z.object({
  code: z.string(),
  message: z.string(),
  field: z.string().optional(),
  index: z.number().optional(),
});

/** What a watcher remembers of a job to tell what changed. */
export interface SeenJob {
  readonly version: string;
  readonly state: JobState;
  readonly attempt: number;
  readonly failures: number;
  readonly progress: string;
}

/** What is remembered of a job. */
export function seenOf(s: StoredJob): SeenJob {
  return {
    version: s.version,
    state: s.state,
    attempt: s.attempt,
    failures: s.failures?.length ?? 0,
    progress: JSON.stringify(s.progress ?? null),
  };
}

const TERMINAL = new Set<JobState>([JobState.Completed, JobState.Failed, JobState.Cancelled]);

/** The failure code a server notes on a job that also ran under another epoch (the hook piece). */
export const DUPLICATE = "queue/duplicate";

/** What a job created while watching was before its first change: nothing but enqueued. */
const ENQUEUED: SeenJob = { version: "", state: JobState.Waiting, attempt: 0, failures: 0, progress: "null" };

/**
 * The job events one record change stands for (a hint; a change seen out of order or twice gives
 * none). From a job created while watching, all its history is told (added, its failures, its
 * state), so a catch-up query after a late connect reports what the stream did not.
 * @param prev - What was seen of the job before, if anything.
 * @param s - The record as it is now.
 * @param created - Whether the job was created while watching (its creation event, or a catch-up
 *   record created since the watch began).
 * @returns The events, in the order they happened.
 */
export function eventsOf(prev: SeenJob | undefined, s: StoredJob, created: boolean): JobEvent[] {
  if (s.deleted) return [];
  if (prev !== undefined && prev.version >= s.version) return [];
  const id = s.id as JobId;
  const events: JobEvent[] = [];
  let before = prev;
  if (before === undefined && created) {
    events.push({ type: "added", id, runAt: s.runAt });
    before = ENQUEUED;
  }
  const failures = s.failures ?? [];
  const fresh = failures.slice(before === undefined ? failures.length : before.failures);
  const last = failures[failures.length - 1];
  // Each failure that was not final sent the job back to waiting (a stall: straight to a new claim).
  let waited = false;
  for (const f of fresh) {
    // A duplicate noted where two servers' copies met is history, not a transition.
    if (f.code === DUPLICATE || (s.state === JobState.Failed && f === last)) continue;
    if (f.code === "queue/stalled") {
      events.push({ type: "stalled", id, attempt: f.attempt });
      continue;
    }
    events.push({ type: "failed", id, code: f.code, message: f.message, final: false });
    const now = f === last && s.state === JobState.Waiting;
    events.push({ type: "waiting", id, runAt: now ? s.runAt : f.at });
    waited = now;
  }
  // A later write of a job already seen in this terminal state (a note) is no new transition.
  if (
    before !== undefined &&
    before.state === s.state &&
    before.attempt === s.attempt &&
    TERMINAL.has(s.state)
  )
    return events;
  switch (s.state) {
    case JobState.Waiting:
      if (!waited && !(before === ENQUEUED && s.attempt === 0))
        events.push({ type: "waiting", id, runAt: s.runAt });
      break;
    case JobState.Active:
      if (before === undefined || before.state !== JobState.Active || before.attempt !== s.attempt) {
        events.push({ type: "active", id, attempt: s.attempt, worker: s.worker });
      } else if (JSON.stringify(s.progress ?? null) !== before.progress) {
        events.push({ type: "progress", id, progress: (s.progress ?? null) as Json });
      }
      break;
    case JobState.Completed:
      events.push(
        s.result === null || s.result === undefined
          ? { type: "completed", id }
          : { type: "completed", id, result: s.result as Json },
      );
      break;
    case JobState.Failed:
      if (last?.code === "queue/stalled" && before !== undefined && before.failures < failures.length) {
        events.push({ type: "stalled", id, attempt: last.attempt });
      }
      events.push({
        type: "failed",
        id,
        code: last?.code ?? "queue/invalid-payload",
        message: last?.message ?? s.reason,
        final: true,
      });
      break;
    case JobState.Cancelled:
      events.push({ type: "cancelled", id });
      break;
  }
  return events;
}

/** A lease token as the port types it. */
export const asToken = (t: string): LeaseToken => t as LeaseToken;
