/**
 * The cron scheduler: fires the ticks of a queue's schedules (stored with `queue.schedule`). Run
 * one or many, in any processes, on any server: each tick's job has a deterministic id
 * ({@link tickJobId}) and `fire` is atomic on the backend, so exactly one job is stored per tick.
 *
 * Missed ticks (every scheduler was down): by default the latest missed tick fires once when a
 * scheduler comes back, the older ones are skipped (`missed: "once"`); with `missed: "skip"` a tick
 * fires only within `graceMs` after its time. Daylight-saving changes follow croner: a wall time
 * that does not exist (spring forward) fires at the first valid instant after it; a wall time that
 * occurs twice (fall back) fires once, at its first occurrence; patterns of minutes or seconds
 * (every 30 minutes) follow the real instants, so the repeated hour has its runs too. Time comes
 * from the injected {@link Scheduler}.
 */
import {
  callGuarded,
  checkNumberOption,
  checkOption,
  defaultLogger,
  type Logger,
  type Scheduler,
} from "@nxs-sync/core";
import type { FireResult, QueueBackendCapabilities, QueueSchedules, ScheduleRecord } from "./backend.js";
import { parseCron, tickJobId } from "./scheduling.js";

/** Options of {@link createCronScheduler}. */
export interface CronSchedulerOptions {
  /** A queue (or anything with its `name` and `backend`) whose schedules to fire. */
  readonly queue: { readonly name: string; readonly backend: QueueBackendCapabilities };
  /** The clock and timers (`createTimerScheduler()`, or a manual one in tests). */
  readonly scheduler: Scheduler;
  /** How often the schedules are read again, to see new and removed ones (ms, default 10 000). */
  readonly refreshMs?: number;
  /** Missed ticks: `once` (default) fires the latest one, `skip` fires none older than `graceMs`. */
  readonly missed?: "once" | "skip";
  /** With `missed: "skip"`: how late a tick may still fire (ms, default 60 000). */
  readonly graceMs?: number;
  /** Each tick this scheduler fired or found done. */
  readonly onFire?: (event: FireEvent) => void;
  /** Where errors of a round are reported (default: the line logger). */
  readonly logger?: Logger;
}

/** One tick handled by a scheduler. */
export interface FireEvent extends FireResult {
  readonly schedule: string;
  readonly tick: number;
  readonly jobId: string;
  /** Ticks skipped before this one (missed while every scheduler was down). */
  readonly skipped: number;
}

/** A running cron scheduler. */
export interface CronScheduler {
  /**
   * Runs one round now: reads the schedules and fires every due tick.
   * @returns What it did, per tick handled.
   */
  runOnce(): Promise<readonly FireEvent[]>;
  /** Stops the timer (a round under way finishes). */
  stop(): Promise<void>;
}

/**
 * The latest tick of a schedule at or before `now`, and how many ticks after `after` it passes over.
 * @param rec - The schedule.
 * @param now - The time (ms since the epoch).
 * @returns The tick, or undefined when none is due.
 */
export function dueTick(rec: ScheduleRecord, now: number): { tick: number; skipped: number } | undefined {
  const cron = parseCron(rec.cron, rec.tz);
  const until = rec.endDate === undefined ? now : Math.min(now, rec.endDate - 1);
  const [last] = cron.previousRuns(1, new Date(until + 1));
  if (last === undefined) return undefined;
  const tick = last.getTime();
  const from = Math.max(rec.lastTick, rec.createdAt - 1);
  if (tick <= from) return undefined;
  // Count what is passed over, one tick at a time (bounded: at most 1000 are counted).
  let skipped = 0;
  for (let at = last; skipped < 1000; skipped++) {
    const [before] = cron.previousRuns(1, at);
    if (before === undefined || before.getTime() <= from) break;
    at = before;
  }
  return { tick, skipped };
}

/**
 * Starts a cron scheduler over a queue's schedules (the backend's `schedules` capability).
 * @param options - Queue, clock, refresh interval, missed-tick rule.
 * @returns The scheduler; `stop()` ends it.
 * @throws NxsError `config/invalid` when the backend has no `schedules` capability.
 * @example
 * ```ts
 * import { z } from "zod";
 * const scheduler = createManualScheduler({ now: Date.UTC(2026, 0, 1) });
 * const backend = createMemoryQueueBackend({ scheduler });
 * const queue = createQueue({ name: "reports", schema: z.object({ kind: z.string() }), backend });
 * await queue.schedule("nightly", "0 3 * * *", { kind: "usage" }, { tz: "Europe/Berlin" });
 * const cron = createCronScheduler({ queue, scheduler });
 * await cron.runOnce();
 * await cron.stop();
 * ```
 */
export function createCronScheduler(options: CronSchedulerOptions): CronScheduler {
  const { queue, scheduler } = options;
  const store: QueueSchedules | undefined = queue.backend.schedules;
  checkOption(
    store !== undefined,
    () => `createCronScheduler: the backend of ${queue.name} has no schedules capability`,
  );
  const refreshMs = checkNumberOption("refreshMs", options.refreshMs, { min: 1 }) ?? 10_000;
  const graceMs = checkNumberOption("graceMs", options.graceMs, { min: 0 }) ?? 60_000;
  const missed = options.missed ?? "once";
  const logger = options.logger ?? defaultLogger;
  let stopped = false;
  let cancel: (() => void) | undefined;
  let running: Promise<unknown> = Promise.resolve();

  const round = async (): Promise<{ events: FireEvent[]; next: number }> => {
    const now = scheduler.now();
    const events: FireEvent[] = [];
    let next = now + refreshMs;
    for (const rec of await store.list(queue.name)) {
      const due = dueTick(rec, now);
      if (due !== undefined && !(missed === "skip" && now - due.tick > graceMs)) {
        const jobId = await tickJobId(queue.name, rec.id, due.tick);
        const result = await store.fire(queue.name, rec.id, due.tick, jobId);
        const event: FireEvent = { ...result, schedule: rec.id, tick: due.tick, jobId, skipped: due.skipped };
        events.push(event);
        if (options.onFire) callGuarded("onFire", options.onFire, [event], (e) => logger.warn(e.message));
      }
      const after = parseCron(rec.cron, rec.tz).nextRun(new Date(now))?.getTime();
      if (after !== undefined && (rec.endDate === undefined || after < rec.endDate))
        next = Math.min(next, after);
    }
    return { events, next };
  };

  const loop = (): void => {
    if (stopped) return;
    const p = round().then(
      ({ next }) => next,
      (err: unknown) => {
        logger.warn(`[nxs-sync cron ${queue.name}] a round failed; next try in ${refreshMs} ms`, err);
        return scheduler.now() + refreshMs;
      },
    );
    running = p.then((next) => {
      if (!stopped) cancel = scheduler.schedule(Math.max(0, next - scheduler.now()), loop);
    });
  };
  // The first round at the next turn of the scheduler (a manual one: at its next advance).
  cancel = scheduler.schedule(0, loop);

  return {
    async runOnce() {
      return (await round()).events;
    },
    async stop() {
      stopped = true;
      cancel?.();
      await running;
    },
  };
}
