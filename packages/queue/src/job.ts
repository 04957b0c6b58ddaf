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
}

/** A claimed attempt: the job as it became active, and the token that fences it. */
export interface ClaimedJob {
  readonly job: JobRecord;
  readonly token: LeaseToken;
}
