/**
 * The metrics package's error codes (area `metrics/*`), each listed in docs/errors.md.
 */
import { defineErrorCodes, NxsError, type NxsErrorOptions } from "@nxs-sync/core";

/** Error codes of `@nxs-sync/metrics`. */
export const MetricsErrorCode = defineErrorCodes("metrics", {
  /** A metric or label name that is not `[a-z_][a-z0-9_]*`, or a metric declared twice with another kind, labels or buckets. */
  InvalidName: { name: "invalid-name", retryable: false },
  /** The per-node cap on series or on values of one label was reached: the new series is dropped (counted, reported once). */
  CapReached: { name: "cap-reached", retryable: false },
  /** A stored metrics record does not decode: quarantined (skipped and reported), never merged. */
  InvalidRecord: { name: "invalid-record", retryable: false },
  /** A query that cannot be answered as asked (an empty range, an unknown tier, an aggregation of the wrong kind). */
  InvalidQuery: { name: "invalid-query", retryable: false },
  /** A flush could not reach any server: the interval stays buffered and is sent with the next flush. */
  FlushFailed: { name: "flush-failed", retryable: true },
  /**
   * An alert change could not be delivered to a sink (a webhook, mail): retried with backoff up to
   * the bound (retryable), or given up / refused for good (not retryable). Reported per attempt.
   */
  AlertUndelivered: { name: "alert-undelivered", retryable: true },
  /** The metrics were closed. */
  Closed: { name: "closed", retryable: false },
});

declare module "@nxs-sync/core" {
  interface ErrorCodeRegistry {
    metrics: typeof MetricsErrorCode;
  }
}

/** The union of the metrics codes. */
export type MetricsErrorCode = (typeof MetricsErrorCode)[keyof typeof MetricsErrorCode];

/**
 * An error of the metrics package.
 * @example
 * ```ts
 * const e = new MetricsError(MetricsErrorCode.InvalidQuery, "empty range");
 * console.log(e.code); // "metrics/invalid-query"
 * ```
 */
export class MetricsError extends NxsError {
  /**
   * @param code - A `metrics/*` code.
   * @param message - What happened and how to fix it.
   * @param options - `cause`, `retryable`.
   */
  constructor(code: MetricsErrorCode, message: string, options: NxsErrorOptions = {}) {
    super(code, message, options);
    this.name = "MetricsError";
  }
}
