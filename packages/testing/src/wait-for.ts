import { HarnessError } from "./errors.js";

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this many milliseconds (default 10 000). */
  timeoutMs?: number;
  /** Poll every this many milliseconds (default 25). */
  intervalMs?: number;
  /** Text for the timeout error, e.g. "record to appear on node 2". */
  description?: string;
  /** Abort the wait early. */
  signal?: AbortSignal;
}

const delay = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/**
 * Polls `predicate` until it returns a truthy value (or a promise of one) and returns that value.
 * A predicate that throws counts as "not yet"; its last error becomes the timeout error's cause.
 * Bounded: use it instead of fixed sleeps in tests.
 *
 * @param predicate - checked immediately, then every `intervalMs`
 * @param options - timeout, interval, description, abort signal
 * @returns the first truthy value the predicate produced
 * @throws HarnessError `harness/timeout` when `timeoutMs` passes first
 * @example
 * ```ts
 * const rec = await waitFor(() => b.client().collection("notes").getOne(id).catch(() => null), { timeoutMs: 5000 });
 * ```
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 25;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() >= deadline) {
      const what = options.description ?? "condition";
      throw new HarnessError("harness/timeout", `waitFor: ${what} not met within ${timeoutMs} ms`, {
        cause: lastError,
        retryable: true,
      });
    }
    await delay(Math.max(1, Math.min(intervalMs, deadline - performance.now())), options.signal);
  }
}
