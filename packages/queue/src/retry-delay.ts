/**
 * How long a failed job waits before its next attempt, from the job's {@link BackoffOptions}:
 * exponential with jitter (core's `computeBackoff`, "equal jitter") or fixed.
 */
import { computeBackoff, type Random } from "@nxs-sync/core";
import type { BackoffOptions } from "./job.js";

/** Defaults of {@link BackoffOptions}. */
export const DEFAULT_BACKOFF: Required<BackoffOptions> = Object.freeze({
  type: "exponential",
  delayMs: 1000,
  maxMs: 3_600_000,
});

/**
 * The delay before retry number `retry` of a job.
 * @param backoff - The job's backoff (missing fields take {@link DEFAULT_BACKOFF}).
 * @param retry - 1 for the first retry.
 * @param random - The jitter source.
 * @returns A delay in ms: `fixed`: `delayMs`; `exponential`: within [b/2, b], b = min(maxMs, delayMs * 2^(retry-1)).
 */
export function retryDelay(backoff: BackoffOptions, retry: number, random: Random): number {
  const delayMs = Math.max(0, backoff.delayMs ?? DEFAULT_BACKOFF.delayMs);
  const maxMs = Math.max(0, backoff.maxMs ?? DEFAULT_BACKOFF.maxMs);
  if ((backoff.type ?? DEFAULT_BACKOFF.type) === "fixed") return Math.min(delayMs, maxMs);
  if (delayMs === 0) return 0;
  return computeBackoff(
    Math.max(0, retry - 1),
    { minMs: delayMs, maxMs: Math.max(delayMs, maxMs), factor: 2 },
    random,
  );
}
