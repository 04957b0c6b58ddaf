/**
 * The queue's storage port. Semantic and atomic: every transition of an attempt is guarded by its
 * lease token (bullmq `moveToActive(token)`), and every method takes a batch so a backend can do
 * one round trip (SQLite has one writer; batching is the lever). No storage terms (collections,
 * filters, keys) appear here. Backends: `createMemoryQueueBackend` (tests, one process) and the
 * PocketBase backend (`@nxs-sync/queue/pocketbase`). Both pass `runQueueBackendConformance` from
 * `@nxs-sync/testing/conformance`.
 *
 * Time belongs to the backend: `runAt`, leases and retry delays are measured on its clock (the
 * server's for PocketBase), so callers send durations, never their own timestamps for leases.
 */
import type { Json } from "@nxs-sync/core";
import type {
  BackoffOptions,
  ClaimedJob,
  DedupeMode,
  JobId,
  JobRecord,
  JobState,
  LeaseToken,
  NewJob,
} from "./job.js";

/** What `enqueue` did with one job. */
export interface EnqueueResult {
  /** The job's id; for a deduped enqueue, the id of the job that holds the key. */
  readonly id: JobId;
  /** False when a job of that id existed already, or the key deduped it (nothing new stored). */
  readonly created: boolean;
  /**
   * Set when the job's key deduped it: `ignored` (simple, throttle: nothing changed), `replaced`
   * (debounce: the waiting job took this payload and a later `runAt`).
   */
  readonly deduped?: "ignored" | "replaced";
}

/** A request for up to `max` ready jobs of one queue. */
export interface ClaimRequest {
  readonly queue: string;
  /** Who claims (shown on the job; any string, e.g. `gateway-1/worker-3`). */
  readonly worker: string;
  /** Lease length in ms, from the claim (renewed by `heartbeat`). */
  readonly leaseMs: number;
  /** At most this many jobs (at least 1). */
  readonly max: number;
  /**
   * Park the worker when this claim leaves it free slots (fewer than `max` jobs): a backend with
   * the {@link QueueBackendCapabilities.handoff} capability then claims jobs added later for it, up
   * to its free slots, until `ttlMs` passes or its next claim, and tells it through
   * {@link QueueWatcher.onHandoff}. Every claim with a park first answers the jobs handed to that
   * park that the worker does not list in `holding` (their events were lost). Ignored elsewhere.
   */
  readonly park?: ParkRequest;
}

/** A worker's park: see {@link ClaimRequest.park}. */
export interface ParkRequest {
  /** The park's id: `park.` and 1-58 characters of `[A-Za-z0-9_-]`, one per worker. */
  readonly id: string;
  /** How long the park lasts without another claim (ms). */
  readonly ttlMs: number;
  /** The jobs handed to this park that the worker holds (they are not answered again). */
  readonly holding?: readonly JobId[];
}

/** One held lease: the job and the token of its attempt. */
export interface LeaseRef {
  readonly id: JobId;
  readonly token: LeaseToken;
}

/** A heartbeat of one lease, optionally carrying the handler's progress. */
export interface Heartbeat extends LeaseRef {
  /** Renew until now + this many ms. */
  readonly leaseMs: number;
  /** New progress, if it changed. */
  readonly progress?: Json;
}

/** The answer to one heartbeat. */
export type HeartbeatResult =
  | { readonly ok: true; readonly leaseUntil: number; readonly cancelRequested: boolean }
  | { readonly ok: false; readonly code: "queue/lease-lost" };

/** How an attempt ended, as the worker reports it. */
export type Settlement = LeaseRef &
  (
    | { readonly kind: "complete"; readonly result?: Json }
    /**
     * The attempt failed. With `retryDelayMs` the job waits that long and runs again (when attempts
     * remain: the worker decides, from the job's backoff); without, it is dead-lettered.
     */
    | {
        readonly kind: "fail";
        readonly code: string;
        readonly message: string;
        readonly retryDelayMs?: number;
      }
    /**
     * Run again after `delayMs` without spending the attempt (a provider's 429). With `pauseGroup`
     * (needs the `flow` capability) the job's group (the whole queue for a job without a group) is
     * paused for `delayMs` too: no job of it is claimed until then, by any worker.
     */
    | { readonly kind: "retry-later"; readonly delayMs: number; readonly pauseGroup?: boolean }
    /** The worker stopped because of a cancel request. */
    | { readonly kind: "cancelled" }
    /** The worker gives the job back unfinished (shutdown): it is ready again at once, attempt not spent. */
    | { readonly kind: "release" }
  );

/** The answer to one settlement. */
export type SettleResult =
  | { readonly ok: true; readonly state: JobState }
  | { readonly ok: false; readonly code: "queue/lease-lost" };

/**
 * What a claim answers: the claimed attempts, and when flow control held ready jobs back (a
 * paused group, a full rate window), how long until the first of those holds may lift.
 */
export type ClaimedJobs = readonly ClaimedJob[] & {
  /**
   * Set when a flow limit kept a ready job from this claim and a time is known when it lifts (a
   * timed pause ends, a rate window frees a slot): claim again after this many ms. Absent for a
   * concurrency limit (a slot frees when a job ends) and an untimed pause (`resume`).
   */
  readonly waitMs?: number;
};

/** The answer to {@link QueueBackendCapabilities.settleAndClaim}. */
export interface SettleAndClaimResult {
  /** One answer per settlement, in request order. */
  readonly settled: readonly SettleResult[];
  /** The jobs claimed after the settlements (as {@link QueueBackend.claim} answers). */
  readonly claimed: ClaimedJobs;
}

/** Counts of one queue per state; `delayed` counts `waiting` jobs whose `runAt` is still ahead. */
export type JobCounts = Readonly<Record<JobState | "delayed", number>>;

/** What a backend tells watchers. A hint: the truth is always a read (`getJob`, `claim`). */
export type JobEvent =
  | { readonly type: "added"; readonly id: JobId; readonly runAt: number }
  | { readonly type: "active"; readonly id: JobId; readonly attempt: number; readonly worker: string }
  | { readonly type: "progress"; readonly id: JobId; readonly progress: Json }
  | { readonly type: "completed"; readonly id: JobId; readonly result?: Json }
  | {
      readonly type: "failed";
      readonly id: JobId;
      readonly code: string;
      readonly message: string;
      readonly final: boolean;
    }
  | { readonly type: "stalled"; readonly id: JobId; readonly attempt: number }
  | { readonly type: "cancelled"; readonly id: JobId }
  | { readonly type: "waiting"; readonly id: JobId; readonly runAt: number };

/** A watcher of one queue. */
export interface QueueWatcher {
  /** A job changed (a hint). */
  onEvent(event: JobEvent): void;
  /** Events may have been missed (after every (re)connect): re-read what matters. */
  onResync(): void;
  /**
   * A job was claimed for a parked worker of this queue ({@link ClaimRequest.park}): its claim,
   * with the park's id. Told to the watchers of a `handoffs` watch; a worker keeps those of its own park.
   */
  onHandoff?(handoff: { readonly parkId: string; readonly claimed: ClaimedJob }): void;
}

/** Options of {@link QueueBackend.watch}. */
export interface WatchOptions {
  /**
   * Only the events that make a job ready to claim (`added`, `waiting`): what a worker's wake-up
   * needs. A backend may then skip the rest at the source (the PocketBase backend subscribes to
   * waiting jobs only, which keeps every other write of the queue off the worker's stream).
   */
  readonly readyOnly?: boolean;
  /** With `readyOnly`: also the jobs handed to parked workers ({@link QueueWatcher.onHandoff}). */
  readonly handoffs?: boolean;
}

/**
 * Hand-off to parked workers: a capability of a backend (`handoff` on
 * {@link QueueBackendCapabilities}). A ready job added while a worker of its queue is parked is
 * claimed for that worker in the add itself, and reaches it as a watch event, not a claim.
 */
export interface QueueHandoff {
  /**
   * Ends a worker's park (it closes): nothing more is handed to it.
   * @returns The jobs handed to the park that `holding` does not list (the worker releases them).
   */
  unpark(request: {
    readonly queue: string;
    readonly worker: string;
    readonly park: ParkRequest;
  }): Promise<ClaimedJobs>;
}

/**
 * The core port every backend implements: enqueue, claim, heartbeat, settle, read, count, watch.
 * Every write is atomic per item; results come back in request order.
 */
export interface QueueBackend {
  /**
   * Stores new jobs (idempotent by id).
   * @throws NxsError `transport/unavailable` when the backend cannot be reached (nothing or all of a
   *   batch is stored: a backend stores a batch in one transaction).
   */
  enqueue(jobs: readonly NewJob[]): Promise<readonly EnqueueResult[]>;
  /**
   * Atomically moves up to `max` ready jobs (waiting with `runAt` passed, oldest `runAt` first, or
   * active with a lapsed lease: a stall) to `active` under fresh lease tokens. A stalled job whose
   * attempts are spent is dead-lettered instead (`queue/stalled`).
   */
  claim(request: ClaimRequest): Promise<ClaimedJobs>;
  /** Renews leases (and records progress); a lease that lapsed or was taken over answers `lease-lost`. */
  heartbeat(beats: readonly Heartbeat[]): Promise<readonly HeartbeatResult[]>;
  /** Ends attempts; an outdated token answers `lease-lost` and changes nothing. */
  settle(settlements: readonly Settlement[]): Promise<readonly SettleResult[]>;
  /** Reads one job, or undefined. */
  getJob(id: JobId): Promise<JobRecord | undefined>;
  /** Counts one queue's jobs per state. */
  counts(queue: string): Promise<JobCounts>;
  /**
   * Watches one queue's job events.
   * @param options - `readyOnly`: only `added` and `waiting` events.
   * @returns The function that stops watching.
   */
  watch(queue: string, watcher: QueueWatcher, options?: WatchOptions): () => void;
}

/** Filters of {@link QueueAdmin.list}. */
export interface ListOptions {
  readonly state?: JobState;
  /** At most this many (default 100, at most 1000). */
  readonly limit?: number;
  /** Continue after this id (ids in ascending order). */
  readonly after?: JobId;
}

/** Operator actions: a capability of a backend (`admin` on {@link QueueBackendCapabilities}). */
export interface QueueAdmin {
  /**
   * Cancels a job: a waiting one at once; an active one is flagged and its worker's signal fires at
   * the next heartbeat (the worker then settles it `cancelled`). A terminal job is left as it is.
   * @returns The job's state after the call, or undefined for an unknown id.
   */
  cancel(id: JobId, reason: string): Promise<JobState | undefined>;
  /**
   * Moves dead-lettered jobs back to `waiting` with a fresh attempt budget (next generation).
   * @returns How many moved.
   */
  redrive(
    queue: string,
    options?: { readonly ids?: readonly JobId[]; readonly limit?: number },
  ): Promise<number>;
  /**
   * Deletes terminal jobs finished before `before` (ms since the epoch), at most `limit`; deletes
   * replicate (they do not come back from another server).
   * @returns How many were deleted.
   */
  clean(
    queue: string,
    options: { readonly states: readonly JobState[]; readonly before: number; readonly limit?: number },
  ): Promise<number>;
  /** Lists jobs of a queue, by ascending id. */
  list(queue: string, options?: ListOptions): Promise<readonly JobRecord[]>;
}

/** Payloads and results too large for a job record travel as blobs, referenced from the job. */
export interface BlobStore {
  /** The largest blob accepted, in bytes. */
  readonly maxBytes: number;
  /**
   * Stores bytes.
   * @returns A reference to put in a payload or result.
   * @throws NxsError `queue/too-large` past `maxBytes`.
   */
  put(bytes: Uint8Array, options?: { readonly contentType?: string }): Promise<BlobRef>;
  /** Reads a blob, or undefined when it is gone. */
  get(ref: BlobRef): Promise<Uint8Array | undefined>;
  /** Deletes a blob (no-op when gone). */
  delete(ref: BlobRef): Promise<void>;
}

/** A reference to a blob, as it sits in a JSON payload. */
export interface BlobRef {
  readonly $blob: string;
  readonly size: number;
  readonly contentType?: string;
}

/** A cron schedule as given to {@link QueueSchedules.put}. */
export interface ScheduleSpec {
  /** The schedule's id, unique per queue (1-100 characters of `[A-Za-z0-9_.:-]`). */
  readonly id: string;
  readonly queue: string;
  /** A cron expression (croner's syntax: 5 or 6 fields, optional seconds). */
  readonly cron: string;
  /** IANA time zone the expression is read in (default UTC). */
  readonly tz?: string;
  /** The payload of every run. */
  readonly payload: Json;
  /** At most this many runs in all (default unlimited). */
  readonly limit?: number;
  /** No run at or after this time (ms since the epoch). */
  readonly endDate?: number;
  /** The job options of every run. */
  readonly job: {
    readonly maxAttempts: number;
    readonly backoff: BackoffOptions;
    readonly timeoutMs: number;
    readonly priority?: number;
  };
}

/** A stored schedule. */
export interface ScheduleRecord extends ScheduleSpec {
  /** Ticks fired so far, whoever stored their jobs (counted against `limit`). */
  readonly runs: number;
  /** The tick time of the last run fired (ms since the epoch), 0 before the first. */
  readonly lastTick: number;
  /** When the schedule was first stored (no tick before it runs). */
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** What {@link QueueSchedules.fire} did. */
export interface FireResult {
  /** True when this call stored the tick's job. */
  readonly fired: boolean;
  /** Why not: `past` (a tick at or before `lastTick`), `gone` (unscheduled), `limit` (runs spent), `exists` (the tick's job was stored already, e.g. replicated from the other server). */
  readonly reason?: "past" | "gone" | "limit" | "exists";
}

/**
 * Cron schedules, stored beside the jobs (a capability: `schedules`). Any number of schedulers
 * (`createCronScheduler`) may fire the same tick: `fire` is atomic and the tick's job id is
 * deterministic, so exactly one job per tick is stored.
 */
export interface QueueSchedules {
  /** Stores or replaces a schedule (keeps `runs`, `lastTick` and `createdAt` of one it replaces). */
  put(spec: ScheduleSpec): Promise<ScheduleRecord>;
  /**
   * Removes a schedule (jobs it fired stay).
   * @returns False when there was none.
   */
  remove(queue: string, id: string): Promise<boolean>;
  /** The queue's schedules, by id. */
  list(queue: string): Promise<readonly ScheduleRecord[]>;
  /**
   * Atomically: when the schedule exists, `tick` is after its `lastTick` and its runs are not
   * spent, stores a job of id `jobId` (payload and options from the schedule, `runAt` = tick) unless
   * one of that id exists, and moves `lastTick` to `tick`, counting a run either way (the job of a
   * tick found stored was stored by another server's scheduler).
   */
  fire(queue: string, id: string, tick: number, jobId: JobId): Promise<FireResult>;
}

/** A rate limit: at most `max` units (each job's `weight`, default 1) claimed in any window of `intervalMs`. */
export interface RateLimit {
  /** Units per window (a finite number > 0). */
  readonly max: number;
  /** The window's length in ms (an integer from 1 to 86 400 000). */
  readonly intervalMs: number;
}

/** Limits of a queue or of one group of its jobs. */
export interface FlowLimits {
  /** At most this many jobs active at a time (live leases), on every worker together (an integer >= 1). */
  readonly concurrency?: number;
  /** At most this many units claimed in any sliding window (see {@link RateLimit}). */
  readonly rate?: RateLimit;
}

/** The group of a flow record that limits each group without a record of its own. */
export const EACH_GROUP = "*";

/** The flow controls of a queue (`group` `""`) or of one group (or each group: {@link EACH_GROUP}). */
export interface FlowRecord extends FlowLimits {
  readonly queue: string;
  /** `""`: the whole queue; `"*"`: each group that has no record of its own; else one group. */
  readonly group: string;
  /** Paused until `resume` (no job of the queue or group is claimed). */
  readonly paused: boolean;
  /** Paused until this time too (ms since the epoch, the backend's clock; 0: not). */
  readonly pausedUntil: number;
  /** Why it was paused last (`pause`'s reason, or the `RetryLaterError`'s message). */
  readonly reason?: string;
  readonly updatedAt: number;
}

/**
 * Flow control (a capability: `flow`): concurrency limits, rate limits and pause, per queue and per
 * group, enforced inside the claim on the backend (for PocketBase, in the claim route's
 * transaction on the claim authority), so that they hold across every worker process at once.
 * A claim admits a job only when the queue's record and the job's group's record (its own, or the
 * `"*"` one) both allow it.
 */
export interface QueueFlow {
  /**
   * Sets the limits of the queue (`group` `""`), of one group, or of each group (`"*"`); replaces
   * the limits it had (an empty object removes them), keeps its pause.
   */
  setLimits(queue: string, group: string, limits: FlowLimits): Promise<FlowRecord>;
  /**
   * Pauses the queue (`group` `""`) or one group: no claim takes a job of it until `resume` (or,
   * with `forMs`, until that long from now). Jobs already active run on.
   */
  pause(
    queue: string,
    group: string,
    options?: { readonly forMs?: number; readonly reason?: string },
  ): Promise<FlowRecord>;
  /** Lifts a pause of the queue or group (timed or not). */
  resume(queue: string, group: string): Promise<FlowRecord>;
  /** The queue's flow records, by group (`""` first). */
  list(queue: string): Promise<readonly FlowRecord[]>;
}

/** A backend with its optional capabilities. */
export interface QueueBackendCapabilities extends QueueBackend {
  /**
   * Present when the backend claims waiting jobs by priority with aging (`NewJob.priority`): the ms
   * one unit of priority is worth (`PRIORITY_STEP_MS`). A queue refuses priorities without it.
   */
  readonly priorities?: { readonly stepMs: number };
  /** The dedupe modes the backend enforces for `NewJob.key` (a queue refuses the others). */
  readonly dedupeModes?: readonly DedupeMode[];
  /** Cron schedules. */
  readonly schedules?: QueueSchedules;
  /** Concurrency limits, rate limits and pause per queue and group (`NewJob.group`, `weight`). */
  readonly flow?: QueueFlow;
  /** Hand-off of new jobs to parked workers (lower enqueue-to-start latency). */
  readonly handoff?: QueueHandoff;
  readonly admin?: QueueAdmin;
  readonly blobs?: BlobStore;
  /**
   * Settles a batch, then claims, in one round trip and one transaction (as bullmq's
   * `moveToCompleted` hands out the next job): what a busy worker does between two jobs. The
   * settlements are applied first, in order, exactly as {@link QueueBackend.settle} would (a job one
   * of them releases may be claimed again by the same call), then the claim as
   * {@link QueueBackend.claim}. All or nothing: on an error neither part happened, or (for a request
   * sent again after its answer was lost) both did, and the claim answers the jobs its first sending
   * took (a settlement the first sending applied then answers `lease-lost`, as a re-sent `settle`).
   * @throws NxsError `queue/too-large` for a result over the inline limit (nothing is stored).
   */
  settleAndClaim?(settlements: readonly Settlement[], request: ClaimRequest): Promise<SettleAndClaimResult>;
  /** Releases what the backend holds (connections, timers). */
  close?(): Promise<void>;
}
