/**
 * A worker: claims jobs of one queue, runs a handler per job with an `AbortSignal`, renews the
 * leases it holds by one batched heartbeat, and settles attempts in batches. It wakes on the
 * backend's watch hints (`added`, `waiting`), on every resync, and on a polling backstop. All its
 * timers run on the injected {@link Scheduler}.
 */
import {
  type Cancel,
  callGuarded,
  checkNumberOption,
  defaultLogger,
  ErrorCode,
  guardLogger,
  isNxsError,
  type Json,
  type Logger,
  NxsError,
  type Random,
  type Scheduler,
} from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import type { z } from "zod";
import type { ClaimedJobs, ClaimRequest, Settlement } from "./backend.js";
import { QueueErrorCode, RetryLaterError, UnrecoverableJobError } from "./errors.js";
import type { ClaimedJob, JobId, LeaseToken } from "./job.js";
import { createCryptoRandom } from "./job-id.js";
import { describeIssues, type Queue, type QueueJob } from "./queue.js";
import { retryDelay } from "./retry-delay.js";
import { createSettleBatcher } from "./settle-batcher.js";

/** What a handler gets for one attempt. */
export interface JobContext<P> {
  readonly id: JobId;
  /** The payload, checked against the queue's schema at claim. */
  readonly payload: P;
  /** The attempt's number (1 for the first). */
  readonly attempt: number;
  /**
   * Fires when the attempt must stop: its lease was lost (`queue/lease-lost`), it timed out
   * (`queue/timeout`), an operator cancelled it (`aborted`), or the worker shuts down
   * (`queue/closed`). `signal.reason` is an `NxsError` with that code.
   */
  readonly signal: AbortSignal;
  /** Records progress (sent within `progressMs` by a heartbeat; watchers get a `progress` event). */
  progress(progress: Json): void;
  /** The whole job record as claimed. */
  readonly job: QueueJob<P>;
}

/** What a handler returns: JSON becomes the job's result; nothing, no result. */
// biome-ignore lint/suspicious/noConfusingVoidType: an async handler that returns nothing is a Promise<void>.
export type JobResult = Json | undefined | void;
/** The function that does a job (see {@link JobResult}). */
export type JobHandler<P> = (context: JobContext<P>) => Promise<JobResult> | JobResult;

/** Options of {@link createWorker}. */
export interface WorkerOptions {
  /** How many jobs run at once (default 1). */
  readonly concurrency?: number;
  /** Lease of each claim and heartbeat, in ms (default 30 000: outlasts a full backup's write stall). */
  readonly leaseMs?: number;
  /** Heartbeat period, in ms (default `leaseMs / 3`). */
  readonly heartbeatMs?: number;
  /** Polling backstop, in ms: a claim at least this often while slots are free (default 5 000). */
  readonly pollMs?: number;
  /**
   * Jobs claimed ahead, beyond `concurrency`, waiting in the worker for a free slot (default 0).
   * They cut the round trips of a busy worker: a claim fills up to `concurrency + prefetch` while
   * the handlers run. A prefetched job is held under its lease (renewed by the heartbeat like a
   * running one; released on close), so no other worker runs it meanwhile: keep it small for long
   * jobs or many workers.
   */
  readonly prefetch?: number;
  /** At most this many jobs per claim request (default `concurrency + prefetch`). */
  readonly batchSize?: number;
  /**
   * Take new jobs by hand-off when idle (default true where the backend can: its `handoff`
   * capability). A claim that leaves free slots parks the worker on the server for two polling
   * periods; a ready job added meanwhile is claimed for it by the add itself and arrives as a watch
   * event, which saves a round trip from add to start. A worker that dies while parked holds the
   * jobs handed to it until their leases lapse, as it would prefetched ones.
   */
  readonly handoff?: boolean;
  /**
   * Progress goes out with a heartbeat of the leases whose progress changed at most this many ms
   * after `progress()` (default 1 000), without waiting for the regular heartbeat.
   */
  readonly progressMs?: number;
  /** Longest a settlement waits to be sent with others, in ms (default 5). */
  readonly settleDelayMs?: number;
  /** Send settlements at once when this many are pending (default 50). */
  readonly settleBatch?: number;
  /** The worker's name on its jobs (default `worker-<random>`). */
  readonly name?: string;
  /**
   * Time and timers (default `createTimerScheduler({ unref: false })`: a worker keeps its process
   * alive until `close()`, as a server does).
   */
  readonly scheduler?: Scheduler;
  /** The jitter of retry delays (default crypto-random). */
  readonly random?: Random;
  /** Default: the line logger at `warn`. */
  readonly logger?: Logger;
  /**
   * Failures of the worker's own loops (claim, heartbeat, settle calls that failed; a job with an
   * invalid payload). Handler failures are the jobs' (their `failed` events), not reported here.
   */
  readonly onError?: (error: NxsError) => void;
}

/** Options of {@link Worker.close}. */
export interface CloseWorkerOptions {
  /** How long running handlers may take to finish before they are aborted and released (default 30 000). */
  readonly timeoutMs?: number;
}

/** A running worker (see {@link createWorker}). */
export interface Worker {
  /** Its name on the jobs it claims. */
  readonly name: string;
  /** How many handlers are running. */
  running(): number;
  /**
   * Stops claiming, waits for running handlers up to `timeoutMs`, then aborts the rest
   * (`queue/closed`) and releases their leases; sends every pending settlement.
   */
  close(options?: CloseWorkerOptions): Promise<void>;
}

/** How many delayed jobs' times a worker keeps to wake at. */
const MAX_WAKE_TIMES = 10_000;
/** Full claims in a row after which a worker pauses its wake-up watch (see the claim loop). */
const PAUSE_HINTS_AFTER = 16;

interface Held {
  readonly id: JobId;
  readonly token: LeaseToken;
  readonly claimed: ClaimedJob;
  readonly controller: AbortController;
  /** When the lease was last renewed, on the worker's clock. */
  renewedAt: number;
  progress?: Json;
  progressDirty: boolean;
  /** The attempt's outcome is decided (settlement queued, or lease lost). */
  decided: boolean;
  cancelTimeout?: Cancel;
}

const abortError = (code: NxsError["code"], message: string): NxsError =>
  new NxsError(code, message, { retryable: code !== ErrorCode.Aborted });

/** The code a handler's error is recorded with. */
function codeOf(error: unknown): string {
  if (isNxsError(error)) return error.code;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code !== "" ? code : QueueErrorCode.HandlerFailed;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : `non-error thrown: ${String(error)}`;
}

/**
 * Creates a worker and starts it.
 * @param queue - The queue whose jobs it runs.
 * @param handler - Does one job; throw `UnrecoverableJobError` to skip retries, `RetryLaterError`
 *   to run again later without spending an attempt.
 * @param options - Concurrency, lease, heartbeat, polling, batching, scheduler, logger, onError.
 * @returns The worker; `close()` shuts it down gracefully.
 * @throws NxsError `config/invalid` for an out-of-range option.
 * @example
 * ```ts
 * import { z } from "zod";
 * const backend = createMemoryQueueBackend({ scheduler: createTimerScheduler() });
 * const queue = createQueue({ name: "fetch", schema: z.object({ url: z.string() }), backend });
 * const worker = createWorker(queue, async ({ payload, signal, progress }) => {
 *   const res = await fetch(payload.url, { signal });
 *   progress(50);
 *   return { bytes: (await res.arrayBuffer()).byteLength };
 * }, { concurrency: 4 });
 * process.on("SIGTERM", () => void worker.close({ timeoutMs: 10_000 }));
 * ```
 */
export function createWorker<S extends z.ZodType>(
  queue: Queue<S>,
  handler: JobHandler<z.output<S>>,
  options: WorkerOptions = {},
): Worker {
  type P = z.output<S>;
  const concurrency = checkNumberOption("concurrency", options.concurrency, { min: 1, integer: true }) ?? 1;
  const leaseMs = checkNumberOption("leaseMs", options.leaseMs, { min: 1 }) ?? 30_000;
  const heartbeatMs =
    checkNumberOption("heartbeatMs", options.heartbeatMs, { min: 1, max: leaseMs }) ??
    Math.max(1, leaseMs / 3);
  const pollMs = checkNumberOption("pollMs", options.pollMs, { min: 1 }) ?? 5_000;
  const prefetch = checkNumberOption("prefetch", options.prefetch, { min: 0, integer: true }) ?? 0;
  const batchSize =
    checkNumberOption("batchSize", options.batchSize, { min: 1, integer: true }) ?? concurrency + prefetch;
  const progressMs = checkNumberOption("progressMs", options.progressMs, { min: 0 }) ?? 1_000;
  const scheduler = options.scheduler ?? createTimerScheduler({ unref: false });
  const random = options.random ?? createCryptoRandom();
  const logger = guardLogger(options.logger ?? defaultLogger);
  const name = options.name ?? `worker-${Math.floor(random.next() * 2 ** 32).toString(36)}`;
  const backend = queue.backend;
  const tag = `[nxs-sync worker ${queue.name}/${name}]`;
  /** Hand-off: this worker's park (one per worker), when the backend hands jobs off. */
  const handoff = options.handoff === false ? undefined : backend.handoff;
  const parkId = `park.${Math.floor(random.next() * 2 ** 48).toString(36)}${Math.floor(random.next() * 2 ** 48).toString(36)}`;
  /** How long a park lasts without a claim: two polling periods (an idle worker claims every `pollMs`). */
  const parkTtlMs = 2 * pollMs;
  /** Held ids a claim lists, so that the server answers only the hand-offs this worker has not seen. */
  const MAX_HOLDING = 1000;

  const held = new Map<JobId, Held>();
  const running = new Set<Promise<void>>();
  /** Prefetched jobs (held, not started), oldest first. */
  const ready: Held[] = [];
  let closing = false;
  let claiming: Promise<void> | undefined;
  let claimAgain = false;
  let pollTimer: Cancel | undefined;
  let heartbeatTimer: Cancel | undefined;
  let progressTimer: Cancel | undefined;
  let wakeTimer: Cancel | undefined;
  const wakeTimes: number[] = [];
  /** Stops the wake-up watch; undefined while it is paused (a backlog) or closed. */
  let unwatch: (() => void) | undefined;
  /** Claims in a row that came back full. */
  let fullClaims = 0;

  const report = (error: NxsError): void => {
    if (options.onError === undefined) {
      logger.error(`${tag} ${error.code}: ${error.message}`);
      return;
    }
    callGuarded("onError", options.onError, [error], (e) => logger.error(`${tag} ${e.message}`));
  };
  const asNxs = (error: unknown, what: string): NxsError =>
    isNxsError(error)
      ? error
      : new NxsError(ErrorCode.TransportUnavailable, `${what}: ${messageOf(error)}`, { cause: error });

  const outbox = createSettleBatcher({
    backend,
    scheduler,
    delayMs: checkNumberOption("settleDelayMs", options.settleDelayMs, { min: 0 }) ?? 5,
    maxBatch: checkNumberOption("settleBatch", options.settleBatch, { min: 1, integer: true }) ?? 50,
    retries: 3,
    // A claim in flight carries them when it is done, if the backend settles and claims at once.
    hold: () => claiming !== undefined && backend.settleAndClaim !== undefined,
    // Never so long that the lease of a finished job could lapse meanwhile (it is not renewed).
    holdMs: leaseMs / 4,
    onResult(settlement, result) {
      unsettled.delete(settlement.id);
      if (!result.ok) {
        logger.warn(
          `${tag} job ${settlement.id}: ${settlement.kind} refused (${result.code}): its lease was gone`,
        );
      }
    },
    onError(error, batch, dropped) {
      // Given up: their leases lapse on the server within a lease from now.
      if (dropped) for (const b of batch) unsettled.set(b.id, scheduler.now() + leaseMs);
      report(
        asNxs(
          error,
          `settling ${batch.length} job(s)${dropped ? " (given up: they run again after their lease)" : ""}`,
        ),
      );
    },
  });

  /**
   * Jobs decided here whose attempt may still be active on the server (a settlement not applied
   * yet, or a lease given up locally), with when that certainly ends: a claim lists them with the
   * held ones, so that the server does not answer them as hand-offs this worker never saw.
   */
  const unsettled = new Map<JobId, number>();
  const holding = (): JobId[] => {
    const now = scheduler.now();
    for (const [id, until] of unsettled) if (until <= now) unsettled.delete(id);
    return [...held.keys(), ...unsettled.keys()].slice(0, MAX_HOLDING);
  };
  /**
   * The attempts started here, by token, until their lease has surely ended: a hand-off's event can
   * come late (realtime does not keep order) or twice, after its job was started from a claim.
   */
  const startedTokens = new Map<string, number>();
  const firstStart = (claimed: ClaimedJob): boolean => {
    const now = scheduler.now();
    if (startedTokens.size > 4 * MAX_HOLDING)
      for (const [t, until] of startedTokens) if (until <= now) startedTokens.delete(t);
    if (held.has(claimed.job.id) || startedTokens.has(claimed.token)) return false;
    startedTokens.set(claimed.token, now + 2 * leaseMs);
    return true;
  };

  /** Decides an attempt's outcome once: queues its settlement (or none when its lease is lost). */
  const decide = (entry: Held, settlement: Settlement | undefined): void => {
    if (entry.decided) return;
    entry.decided = true;
    if (handoff !== undefined) {
      // Kept until its settlement is answered (or, without one, until its lease has surely lapsed).
      unsettled.set(entry.id, scheduler.now() + (settlement === undefined ? leaseMs : 2 * leaseMs));
    }
    entry.cancelTimeout?.();
    held.delete(entry.id);
    if (settlement !== undefined) outbox.add(settlement);
  };

  let warnedNoFlow = false;
  const warnNoFlow = (): void => {
    if (warnedNoFlow) return;
    warnedNoFlow = true;
    logger.warn(
      `${tag} a RetryLaterError asked to pause its group, but the backend has no flow capability: only the job waits`,
    );
  };

  const abort = (entry: Held, reason: NxsError, settlement: Settlement | undefined): void => {
    if (entry.decided) return;
    decide(entry, settlement);
    entry.controller.abort(reason);
  };

  const failure = (entry: Held, error: unknown): Settlement => {
    const job = entry.claimed.job;
    const ref = { id: entry.id, token: entry.token };
    if (error instanceof RetryLaterError) {
      if (error.pauseGroup && backend.flow === undefined) warnNoFlow();
      return {
        ...ref,
        kind: "retry-later",
        delayMs: error.delayMs,
        ...(error.pauseGroup && backend.flow !== undefined ? { pauseGroup: true } : {}),
      };
    }
    const base = { ...ref, kind: "fail" as const, code: codeOf(error), message: messageOf(error) };
    const retriable = !(error instanceof UnrecoverableJobError) && job.attemptsMade < job.maxAttempts;
    return retriable ? { ...base, retryDelayMs: retryDelay(job.backoff, job.attemptsMade, random) } : base;
  };

  const run = async (entry: Held, payload: P): Promise<void> => {
    const job = entry.claimed.job;
    if (job.timeoutMs > 0) {
      entry.cancelTimeout = scheduler.schedule(job.timeoutMs, () => {
        const error = abortError(
          QueueErrorCode.Timeout,
          `job ${entry.id} ran past its timeout of ${job.timeoutMs} ms`,
        );
        abort(entry, error, failure(entry, error));
      });
    }
    const context: JobContext<P> = {
      id: entry.id,
      payload,
      attempt: job.attempt,
      signal: entry.controller.signal,
      progress(progress) {
        if (entry.decided) return;
        entry.progress = progress;
        entry.progressDirty = true;
        progressTimer ??= scheduler.schedule(progressMs, () => {
          progressTimer = undefined;
          void beat(true);
        });
      },
      job: { ...job, payload },
    };
    try {
      const value = await handler(context);
      if (entry.decided) return;
      const result = value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as Json);
      decide(entry, {
        id: entry.id,
        token: entry.token,
        kind: "complete",
        ...(result === undefined ? {} : { result }),
      });
    } catch (error) {
      if (!entry.decided) decide(entry, failure(entry, error));
    }
  };

  const start = (claimed: ClaimedJob): void => {
    const id = claimed.job.id;
    const entry: Held = {
      id,
      token: claimed.token,
      claimed,
      controller: new AbortController(),
      renewedAt: scheduler.now(),
      progressDirty: false,
      decided: false,
    };
    held.set(id, entry);
    armHeartbeat();
    if (closing) {
      decide(entry, { id, token: claimed.token, kind: "release" });
      return;
    }
    ready.push(entry);
    launchReady();
  };

  /** Starts the next prefetched job that is still held, when a slot is free. */
  const launchReady = (): void => {
    while (!closing && running.size < concurrency && ready.length > 0) {
      const entry = ready.shift() as Held;
      if (!entry.decided) launch(entry);
    }
  };

  const launch = (entry: Held): void => {
    const { id, claimed } = entry;
    const parsed = queue.schema.safeParse(claimed.job.payload);
    if (!parsed.success) {
      const message = `job ${id}: ${describeIssues("payload", parsed.error.issues)}`;
      decide(entry, { id, token: claimed.token, kind: "fail", code: QueueErrorCode.InvalidPayload, message });
      report(
        new NxsError(QueueErrorCode.InvalidPayload, `${message} (dead-lettered)`, { cause: parsed.error }),
      );
      return;
    }
    const task = run(entry, parsed.data as P).finally(() => {
      running.delete(task);
      if (closing) return;
      launchReady();
      void claim();
    });
    running.add(task);
  };

  const claimLoop = async (): Promise<void> => {
    for (;;) {
      claimAgain = false;
      // Decided prefetched jobs (lease lost, cancelled) no longer take room.
      while (ready.length > 0 && (ready[0] as Held).decided) ready.shift();
      const free = concurrency + prefetch - running.size - ready.length;
      if (closing || free <= 0) return;
      // With jobs prefetched, wait until half the prefetch is free: fewer, fuller claims.
      if (ready.length > 0 && free < Math.ceil(prefetch / 2)) return;
      const max = Math.min(batchSize, free);
      const request: ClaimRequest = {
        queue: queue.name,
        worker: name,
        leaseMs,
        max,
        // Parked only while its wake-up watch is open (not during a backlog: its claims are full,
        // and the watch that tells hand-offs is paused).
        ...(handoff === undefined || unwatch === undefined
          ? {}
          : { park: { id: parkId, ttlMs: parkTtlMs, holding: holding() } }),
      };
      let claimed: ClaimedJobs;
      try {
        // Settlements waiting to be sent ride with the claim when the backend can (one round trip).
        const settleAndClaim = backend.settleAndClaim?.bind(backend);
        claimed =
          settleAndClaim !== undefined && outbox.pending() > 0
            ? await outbox.carry(async (settlements) => {
                const answer = await settleAndClaim(settlements, request);
                return { settled: answer.settled, value: answer.claimed };
              })
            : await backend.claim(request);
      } catch (error) {
        report(asNxs(error, "claim"));
        return;
      }
      // A claim with a park may answer hand-offs this worker has not seen: one whose event comes
      // too (before or after) is started once. A claim without one (hand-off off, or a backlog's
      // claims) answers no hand-off, so its jobs need no such check (nor its tokens kept).
      for (const c of claimed) if (request.park === undefined || firstStart(c)) start(c);
      // Flow control held ready jobs back with a known end (a timed pause, a full rate window):
      // claim again then, not at the next poll.
      if (claimed.waitMs !== undefined && claimed.length < max) wakeAt(scheduler.now() + claimed.waitMs);
      // A backlog (full claims in a row): slots are refilled by claims as jobs end, so wake-up
      // hints are not needed, and while none is watched the server skips their filter check on
      // every write of the queue. The first claim short of its batch watches again (its resync
      // claims once more, so a job added meanwhile is not missed).
      if (claimed.length < max) {
        fullClaims = 0;
        watchHints();
      } else if (++fullClaims >= PAUSE_HINTS_AFTER) {
        pauseHints();
      }
      // A full batch: the queue is busy, take more while slots are free (prefetch).
      if (claimed.length < max && !claimAgain) return;
    }
  };

  /** Claims while slots are free; a wake during a claim in flight makes it claim once more. */
  const claim = (): Promise<void> => {
    if (closing) return claiming ?? Promise.resolve();
    if (claiming !== undefined) {
      claimAgain = true;
      return claiming;
    }
    claiming = claimLoop().finally(() => {
      claiming = undefined;
      // A wake that came after the loop's last look (a slot freed as it ended) is not lost.
      if (claimAgain && !closing) void claim();
    });
    return claiming;
  };

  const armPoll = (): void => {
    if (closing) return;
    pollTimer = scheduler.schedule(pollMs, () => {
      void claim();
      armPoll();
    });
  };

  /**
   * Wakes at `runAt` (a delayed job's time, from a hint). The times wait in ascending order with
   * one timer armed for the earliest; past {@link MAX_WAKE_TIMES} the latest are dropped (the
   * polling backstop still finds those jobs).
   */
  const wakeAt = (runAt: number): void => {
    if (runAt <= scheduler.now()) {
      void claim();
      return;
    }
    let i = wakeTimes.length;
    while (i > 0 && (wakeTimes[i - 1] as number) > runAt) i--;
    if (wakeTimes[i - 1] === runAt) return;
    wakeTimes.splice(i, 0, runAt);
    if (wakeTimes.length > MAX_WAKE_TIMES) wakeTimes.pop();
    if (i === 0) armWake();
  };

  function armWake(): void {
    wakeTimer?.();
    wakeTimer = undefined;
    const next = wakeTimes[0];
    if (next === undefined || closing) return;
    wakeTimer = scheduler.schedule(next - scheduler.now(), () => {
      wakeTimer = undefined;
      const now = scheduler.now();
      while (wakeTimes.length > 0 && (wakeTimes[0] as number) <= now) wakeTimes.shift();
      void claim();
      armWake();
    });
  }

  /** Heartbeats the held leases (only those with new progress when `progressOnly`), in one call. */
  const beat = async (progressOnly = false): Promise<void> => {
    const now = scheduler.now();
    const entries = [...held.values()].filter((e) => !e.decided && (!progressOnly || e.progressDirty));
    for (const e of entries) {
      if (now - e.renewedAt >= leaseMs) {
        const error = abortError(
          QueueErrorCode.LeaseLost,
          `job ${e.id}: no heartbeat got through for ${leaseMs} ms`,
        );
        abort(e, error, undefined);
      }
    }
    const live = entries.filter((e) => !e.decided);
    if (live.length === 0) return;
    const beats = live.map((e) => {
      const progress = e.progressDirty ? e.progress : undefined;
      e.progressDirty = false;
      return { id: e.id, token: e.token, leaseMs, ...(progress === undefined ? {} : { progress }) };
    });
    let results: Awaited<ReturnType<typeof backend.heartbeat>>;
    try {
      results = await backend.heartbeat(beats);
    } catch (error) {
      for (const e of live)
        if (beats.find((b) => b.id === e.id)?.progress !== undefined) e.progressDirty = true;
      report(asNxs(error, `heartbeat of ${beats.length} lease(s)`));
      return;
    }
    live.forEach((e, i) => {
      const r = results[i];
      if (r === undefined || e.decided) return;
      if (!r.ok) {
        abort(e, abortError(QueueErrorCode.LeaseLost, `job ${e.id}: the lease was lost`), undefined);
      } else if (r.cancelRequested) {
        abort(e, abortError(ErrorCode.Aborted, `job ${e.id} was cancelled`), {
          id: e.id,
          token: e.token,
          kind: "cancelled",
        });
      } else {
        e.renewedAt = now;
      }
    });
  };

  function armHeartbeat(): void {
    if (heartbeatTimer !== undefined) return;
    heartbeatTimer = scheduler.schedule(heartbeatMs, () => {
      heartbeatTimer = undefined;
      void beat().finally(() => {
        if (held.size > 0) armHeartbeat();
      });
    });
  }

  function watchHints(): void {
    if (unwatch !== undefined || closing) return;
    // Wake-up hints only: the backend keeps the queue's other writes off this stream.
    unwatch = backend.watch(
      queue.name,
      {
        onEvent(event) {
          if (event.type === "added" || event.type === "waiting") wakeAt(event.runAt);
        },
        onResync() {
          void claim();
        },
        onHandoff(h) {
          // A job the server claimed for this worker's park as it was added: start it like a claimed one.
          if (h.parkId !== parkId || !firstStart(h.claimed)) return;
          start(h.claimed);
        },
      },
      { readyOnly: true, handoffs: handoff !== undefined },
    );
  }
  function pauseHints(): void {
    unwatch?.();
    unwatch = undefined;
  }
  watchHints();
  armPoll();
  void claim();

  let closed: Promise<void> | undefined;
  return {
    name,
    running: () => running.size,
    close(closeOptions = {}) {
      if (closed !== undefined) return closed;
      const timeoutMs = checkNumberOption("timeoutMs", closeOptions.timeoutMs, { min: 0 }) ?? 30_000;
      closing = true;
      pollTimer?.();
      wakeTimer?.();
      pauseHints();
      closed = (async () => {
        // No job is handed to this worker any more; those handed to it that it never saw are
        // released with the rest (a claim in flight first: it would park the worker again).
        if (handoff !== undefined) {
          await claiming;
          try {
            const unseen = await handoff.unpark({
              queue: queue.name,
              worker: name,
              park: { id: parkId, ttlMs: parkTtlMs, holding: holding() },
            });
            for (const c of unseen) if (firstStart(c)) start(c);
          } catch (error) {
            report(asNxs(error, "unpark (the jobs handed to this worker meanwhile run after their lease)"));
          }
        }
        if (running.size > 0) {
          let cancelWait: Cancel | undefined;
          const timedOut = new Promise<void>((resolve) => {
            cancelWait = scheduler.schedule(timeoutMs, resolve);
          });
          await Promise.race([Promise.allSettled([...running]), timedOut]);
          cancelWait?.();
        }
        // Running handlers past the timeout and prefetched jobs never started give their leases back.
        ready.length = 0;
        for (const entry of [...held.values()]) {
          abort(entry, abortError(QueueErrorCode.Closed, `worker ${name} is shutting down`), {
            id: entry.id,
            token: entry.token,
            kind: "release",
          });
        }
        // A claim in flight releases what it gets (start() sees `closing`).
        await claiming;
        await outbox.drain();
        heartbeatTimer?.();
        heartbeatTimer = undefined;
        progressTimer?.();
        progressTimer = undefined;
      })();
      return closed;
    },
  };
}
