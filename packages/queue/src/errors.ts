/**
 * The queue's error codes (area `queue/*`) and the processor control errors a handler throws to
 * steer its job (bullmq `UnrecoverableError`, `DelayedError`).
 */
import { defineErrorCodes, NxsError, type NxsErrorOptions } from "@nxs-sync/core";

/** Error codes of the queue; each is listed in docs/errors.md. */
export const QueueErrorCode = defineErrorCodes("queue", {
  /** The attempt's lease lapsed or was taken over: its heartbeat or settlement changed nothing. */
  LeaseLost: { name: "lease-lost", retryable: false },
  /** A payload does not match the queue's schema (at enqueue), or a stored job is malformed. */
  InvalidPayload: { name: "invalid-payload", retryable: false },
  /** An attempt ran past the job's `timeoutMs`. */
  Timeout: { name: "timeout", retryable: true },
  /** A worker died or froze: its lease lapsed before it settled. */
  Stalled: { name: "stalled", retryable: true },
  /** A payload, result or blob is over its size limit. */
  TooLarge: { name: "too-large", retryable: false },
  /** No job of that id. */
  NotFound: { name: "not-found", retryable: false },
  /** The queue or worker is closed. */
  Closed: { name: "closed", retryable: false },
  /** A job weighs more than its rate limit's whole window: it could never be claimed (dead-lettered). */
  OverLimit: { name: "over-limit", retryable: false },
  /** A handler threw something that is not an error, or an error without a code. */
  HandlerFailed: { name: "handler-failed", retryable: true },
});

declare module "@nxs-sync/core" {
  interface ErrorCodeRegistry {
    queue: typeof QueueErrorCode;
  }
}

/**
 * Thrown by a handler: the job fails for good, without its remaining retries (dead-lettered).
 * @example
 * ```ts
 * const input: { audioUrl?: string } = {};
 * if (!input.audioUrl) throw new UnrecoverableJobError("no audio to transcribe");
 * ```
 */
export class UnrecoverableJobError extends NxsError {
  constructor(message: string, options: NxsErrorOptions = {}) {
    super(QueueErrorCode.HandlerFailed, message, { ...options, retryable: false });
    this.name = "UnrecoverableJobError";
  }
}

/** Options of {@link RetryLaterError}. */
export interface RetryLaterOptions extends NxsErrorOptions {
  /**
   * Pause the job's group (the whole queue for a job without a group) for the delay too, on every
   * worker: what a provider's 429 means for every job of that provider. Needs a backend with the
   * `flow` capability (the worker logs a warning and only delays the job otherwise).
   */
  readonly pauseGroup?: boolean;
}

/**
 * Thrown by a handler: run the job again after `delayMs` without spending an attempt (a
 * provider's 429 with `Retry-After`); with `pauseGroup`, hold every job of its group as long.
 * @example
 * ```ts
 * const res = await fetch("https://api.example.com/v1/speech", { method: "POST" });
 * if (res.status === 429)
 *   throw new RetryLaterError(Number(res.headers.get("retry-after")) * 1000, "429", { pauseGroup: true });
 * ```
 */
export class RetryLaterError extends NxsError {
  /** How long to wait, in ms. */
  readonly delayMs: number;
  /** Whether the job's group is paused for `delayMs` too. */
  readonly pauseGroup: boolean;
  constructor(delayMs: number, message = `retry in ${delayMs} ms`, options: RetryLaterOptions = {}) {
    const { pauseGroup, ...rest } = options;
    super(QueueErrorCode.HandlerFailed, message, { ...rest, retryable: true });
    this.name = "RetryLaterError";
    this.delayMs = Math.max(0, delayMs);
    this.pauseGroup = pauseGroup === true;
  }
}
