/**
 * The time port of the sync engine: it reads the time and runs a task later through a
 * {@link Scheduler}, never through timers of its own (core does no I/O). Use
 * `createTimerScheduler()` from `@nxs-sync/core/node` in production and
 * {@link createManualScheduler} in tests.
 */

/** Cancels a scheduled task; calling it after the task ran, or twice, does nothing. */
export type Cancel = () => void;

/** Runs tasks after a delay and tells the time. */
export interface Scheduler {
  /** Milliseconds since the Unix epoch (or since any fixed origin, for a fake). */
  now(): number;
  /**
   * Runs `task` once, `delayMs` from now (0 or less: as soon as possible, never synchronously).
   * @returns The function that cancels it.
   */
  schedule(delayMs: number, task: () => void): Cancel;
}

/** A {@link Scheduler} whose time only moves when a test moves it. */
export interface ManualScheduler extends Scheduler {
  /**
   * Moves the time forward by `ms`, running every task that falls due on the way, in due order
   * (ties in scheduling order), tasks scheduled meanwhile included.
   * @returns How many tasks ran.
   */
  advance(ms: number): number;
  /**
   * Jumps to the next due task (if later than now) and runs it.
   * @returns False when no task is pending.
   */
  runNext(): boolean;
  /** How many tasks are pending. */
  pending(): number;
  /** When the next task falls due, or undefined when none is pending. */
  nextAt(): number | undefined;
}

interface Task {
  readonly at: number;
  readonly order: number;
  readonly run: () => void;
}

/**
 * Creates a fake {@link Scheduler} for deterministic tests: nothing runs until `advance` or
 * `runNext` is called. A task that throws propagates out of `advance`/`runNext`.
 * @param options - `now`: the start time in ms (default 0).
 * @returns A manual scheduler.
 * @example
 * ```ts
 * const s = createManualScheduler({ now: 1_000 });
 * s.schedule(50, () => console.log("later"));
 * s.advance(50); // logs "later"; s.now() === 1_050
 * ```
 */
export function createManualScheduler(options: { now?: number } = {}): ManualScheduler {
  let time = options.now ?? 0;
  let counter = 0;
  const tasks: Task[] = [];

  const insert = (task: Task): void => {
    let i = tasks.length;
    while (i > 0) {
      const prev = tasks[i - 1]!;
      if (prev.at < task.at || (prev.at === task.at && prev.order < task.order)) break;
      i--;
    }
    tasks.splice(i, 0, task);
  };

  const runFirst = (): void => {
    const task = tasks.shift()!;
    if (task.at > time) time = task.at;
    task.run();
  };

  return {
    now: () => time,
    schedule(delayMs, run) {
      const task: Task = { at: time + Math.max(0, delayMs), order: counter++, run };
      insert(task);
      return () => {
        const i = tasks.indexOf(task);
        if (i >= 0) tasks.splice(i, 1);
      };
    },
    advance(ms) {
      const target = time + Math.max(0, ms);
      let ran = 0;
      while (tasks.length > 0 && tasks[0]!.at <= target) {
        runFirst();
        ran++;
      }
      time = target;
      return ran;
    },
    runNext() {
      if (tasks.length === 0) return false;
      runFirst();
      return true;
    },
    pending: () => tasks.length,
    nextAt: () => tasks[0]?.at,
  };
}
