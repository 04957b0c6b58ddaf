import type { Random } from "../clock/random.js";

/** Retry timing of the sync engine: exponential backoff with jitter. */
export interface RetryPolicy {
  /** Delay before the first retry, in ms (default 250). */
  readonly minMs?: number;
  /** Upper bound of any delay, in ms (default 30 000). */
  readonly maxMs?: number;
  /** Growth factor per attempt (default 2). */
  readonly factor?: number;
}

/** The defaults of {@link RetryPolicy}. */
export const DEFAULT_RETRY_POLICY: Required<RetryPolicy> = Object.freeze({
  minMs: 250,
  maxMs: 30_000,
  factor: 2,
});

/**
 * The delay before retry number `attempt` ("equal jitter": half fixed, half random, so retries of
 * many replicas spread out but never fire immediately).
 * @param attempt - 0 for the first retry.
 * @param policy - Bounds and growth; missing fields take {@link DEFAULT_RETRY_POLICY}.
 * @param random - The jitter source.
 * @returns A delay in ms within [min(base, maxMs) / 2, min(base, maxMs)], base = minMs * factor^attempt.
 */
export function computeBackoff(attempt: number, policy: RetryPolicy, random: Random): number {
  const minMs = policy.minMs ?? DEFAULT_RETRY_POLICY.minMs;
  const maxMs = Math.max(minMs, policy.maxMs ?? DEFAULT_RETRY_POLICY.maxMs);
  const factor = policy.factor ?? DEFAULT_RETRY_POLICY.factor;
  const base = Math.min(maxMs, minMs * factor ** Math.max(0, attempt));
  return Math.round(base / 2 + random.next() * (base / 2));
}
