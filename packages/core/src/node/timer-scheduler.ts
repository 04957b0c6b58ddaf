import type { Scheduler } from "../sync/scheduler.js";

/** Options of {@link createTimerScheduler}. */
export interface TimerSchedulerOptions {
  /**
   * Whether pending timers let the process exit (`timer.unref()`, default true): the replica's
   * retries and polls should not keep a process alive on their own.
   */
  readonly unref?: boolean;
}

/**
 * Creates the production {@link Scheduler}: `Date.now()` and `setTimeout`.
 * @param options - See {@link TimerSchedulerOptions}.
 * @returns A scheduler backed by real timers.
 * @example
 * ```ts
 * const replica = createReplica({ doc, transport, storage, scheduler: createTimerScheduler() });
 * ```
 */
export function createTimerScheduler(options: TimerSchedulerOptions = {}): Scheduler {
  const unref = options.unref ?? true;
  return {
    now: () => Date.now(),
    schedule(delayMs, task) {
      const timer = setTimeout(task, Math.max(0, delayMs));
      if (unref) timer.unref();
      return () => clearTimeout(timer);
    },
  };
}
