/**
 * The job model of the queue: ids, states, the record every backend stores, and what a producer
 * sends. Plain data only: it crosses the port, the wire and the replicator as JSON.
 */
import type { Brand, Json } from "@nxs-sync/core";

/** Identifies one job across the fleet: 15 characters of `[a-z0-9]` (a PocketBase record id). */
export type JobId = Brand<string, "JobId">;
/** The fencing token of one attempt: only its holder may heartbeat, progress or settle it. */
export type LeaseToken = Brand<string, "LeaseToken">;

/** The form of a {@link JobId}. */
export const JOB_ID_PATTERN: RegExp = /^[a-z0-9]{15}$/;

/**
 * Where a job is. Stored states only: a `waiting` job whose `runAt` is still ahead is reported as
 * `delayed` by counts, but it is the same stored state.
 */
export const JobState = {
  /** Ready to be claimed once `runAt` has passed. */
  Waiting: "waiting",
  /** Claimed: one worker holds its lease. */
  Active: "active",
  /** The handler finished; `result` holds what it returned. Terminal. */
  Completed: "completed",
  /** Dead-lettered: attempts exhausted, unrecoverable, or malformed. `redrive()` brings it back. */
  Failed: "failed",
  /** Cancelled by an operator. Terminal. */
  Cancelled: "cancelled",
} as const;
/** A stored job state. */
export type JobState = (typeof JobState)[keyof typeof JobState];

/** The states a job never leaves on its own (only `redrive` moves a failed one). */
export const TERMINAL_STATES: readonly JobState[] = [JobState.Completed, JobState.Failed, JobState.Cancelled];

/** How long to wait before retry number `n` (1 for the first retry) after a failed attempt. */
export interface BackoffOptions {
  /** `exponential` (default): `delayMs * 2^(n-1)`, with jitter; `fixed`: `delayMs` each time. */
  readonly type?: "exponential" | "fixed";
  /** Base delay in ms (default 1000). */
  readonly delayMs?: number;
  /** Upper bound of one delay in ms (default 3 600 000). */
  readonly maxMs?: number;
}

/** One failed attempt, as kept in a job's error history (newest last, bounded). */
export interface JobFailure {
  readonly attempt: number;
  /** An error code (`queue/timeout`, `queue/stalled`, a handler's own `code`) or `error`. */
  readonly code: string;
  readonly message: string;
  /** When it was recorded (ms since the epoch, the backend's clock). */
  readonly at: number;
}

/** A job as a backend stores it (read-only view). */
export interface JobRecord {
  readonly id: JobId;
  /** The queue's name. */
  readonly queue: string;
  readonly state: JobState;
  /** The payload as enqueued (validated by the queue's schema at enqueue; checked again at claim). */
  readonly payload: Json;
  /** Earliest time the job may be claimed (ms since the epoch). */
  readonly runAt: number;
  /**
   * Claims made so far in this generation (the number of the current or last attempt, 0 before the
   * first). Only moves forward; part of the job's version ({@link jobVersion}).
   */
  readonly attempt: number;
  /**
   * Attempts spent against `maxAttempts`: a claim spends one; `retry-later` and `release` give
   * theirs back.
   */
  readonly attemptsMade: number;
  /** Attempts allowed before the job is dead-lettered (at least 1). */
  readonly maxAttempts: number;
  readonly backoff: BackoffOptions;
  /** Per-attempt time limit in ms, or 0 for none. */
  readonly timeoutMs: number;
  /** Bumped by `redrive`: a redriven job starts again at attempt 0 and outranks its old copies. */
  readonly generation: number;
  /** The claim authority's epoch of the current or last attempt (fences a deposed authority). */
  readonly epoch: number;
  /**
   * Higher runs first (0 to {@link MAX_PRIORITY}, default 0), with aging: a job counts as ready
   * `priority × PRIORITY_STEP_MS` earlier than its `runAt` (see {@link PRIORITY_STEP_MS}).
   * Absent on a job stored without one (read as 0).
   */
  readonly priority?: number;
  /** The dedupe key the job was enqueued with (see {@link JobKey}). */
  readonly jobKey?: string;
  /** The dedupe mode of `jobKey`. */
  readonly keyMode?: DedupeMode;
  /**
   * The flow-control group the job counts against (for example its model provider): its group's
   * concurrency limit, rate limit and pause apply (see `QueueFlow`). Absent: the queue's only.
   */
  readonly group?: string;
  /** What the job weighs against a rate limit (for example its tokens); absent: 1. */
  readonly weight?: number;
  /** The worker holding the lease (`active` only). */
  readonly worker?: string;
  /** When the lease lapses (`active` only; ms since the epoch, the backend's clock). */
  readonly leaseUntil?: number;
  /** Set by `cancel` while the job is active: the worker's signal fires at its next heartbeat. */
  readonly cancelRequested?: boolean;
  readonly progress?: Json;
  readonly result?: Json;
  /**
   * Why the job ended early: for `failed` the error code it was dead-lettered with; for `cancelled`
   * the reason given to `cancel` (optional: a backend may not keep it).
   */
  readonly reason?: string;
  /** Failed attempts, newest last, at most {@link MAX_FAILURES_KEPT}. */
  readonly failures: readonly JobFailure[];
  /**
   * Bumped by every write of the job on one server (heartbeats included): the last part of its
   * version, so that of two copies with the same attempt and phase the later write wins.
   */
  readonly rev: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** When the job reached a terminal state. */
  readonly finishedAt?: number;
}

/**
 * What one unit of priority is worth, in ms of waiting: a waiting job is claimed in the order of
 * `runAt - priority × PRIORITY_STEP_MS` (its rank), so a job of priority `p` goes before a job of
 * priority `q < p` that became ready less than `(p - q) × 1 s` before it, and never before one that
 * became ready earlier than that. That is the bound on starvation: a job is passed only by jobs of
 * higher priority that became ready at most `(MAX_PRIORITY_USED - its priority) × 1 s` after it.
 */
export const PRIORITY_STEP_MS = 1000;
/** The highest priority (a head start of 1000 s). */
export const MAX_PRIORITY = 1000;

/**
 * Dedupe modes of a {@link JobKey} (bullmq's deduplication modes, pg-boss's singleton policy):
 * - `simple`: an enqueue is ignored while an unfinished (waiting or active) job has the key;
 * - `throttle`: ignored for `ttlMs` after the enqueue that created the key's job, whatever its state;
 * - `debounce`: the job runs `ttlMs` after the latest enqueue; an enqueue while the key's job is
 *   still waiting (not yet claimed once) replaces its payload and pushes its `runAt` to now + ttl;
 * - `singleton`: every enqueue is stored, but at most one job of the key is active at a time (a
 *   claim skips the others until the active one ends or its lease lapses).
 */
export type DedupeMode = "simple" | "throttle" | "debounce" | "singleton";

/** A job's dedupe key and mode. */
export interface JobKey {
  /** 1-200 characters; keys are per queue. */
  readonly key: string;
  readonly mode: DedupeMode;
  /** The window of `throttle` and `debounce` (ms, at least 1); ignored by the others. */
  readonly ttlMs?: number;
}

/** How many failures a job record keeps (older ones are dropped first). */
export const MAX_FAILURES_KEPT = 20;

/** What a producer sends to enqueue one job (the queue fills the defaults before the backend). */
export interface NewJob {
  /** Chosen by the producer for idempotent enqueue; a second enqueue of one id is a no-op. */
  readonly id: JobId;
  readonly queue: string;
  readonly payload: Json;
  /** Run no earlier than this many ms after the backend stores it (its clock). Default 0. */
  readonly delayMs?: number;
  /** Run no earlier than this time (ms since the epoch); wins over `delayMs`. */
  readonly runAt?: number;
  readonly maxAttempts: number;
  readonly backoff: BackoffOptions;
  readonly timeoutMs: number;
  /** 0 to {@link MAX_PRIORITY}, higher first (default 0); needs the backend's `priorities` capability. */
  readonly priority?: number;
  /** Dedupe by key; needs the mode in the backend's `dedupeModes` capability. */
  readonly key?: JobKey;
  /** The flow-control group (1-200 characters, not `*`); needs the backend's `flow` capability. */
  readonly group?: string;
  /** The job's weight against rate limits (a finite number > 0, default 1); needs `flow`. */
  readonly weight?: number;
}

/** A claimed attempt: the job as it became active, and the token that fences it. */
export interface ClaimedJob {
  readonly job: JobRecord;
  readonly token: LeaseToken;
}
