/**
 * The worker's outbox of settlements: many attempts end in one backend call (SQLite has one
 * writer; batching is the lever). A settlement waits at most `delayMs`, or less once `maxBatch`
 * are pending. A call that fails is tried again a few times (the lease is still held meanwhile;
 * when it lapses the backend answers `lease-lost`, and the job runs again elsewhere).
 */
import type { Cancel, Scheduler } from "@nxs-sync/core";
import type { QueueBackend, Settlement, SettleResult } from "./backend.js";

/** Options of {@link createSettleBatcher}. */
export interface SettleBatcherOptions {
  readonly backend: Pick<QueueBackend, "settle">;
  readonly scheduler: Scheduler;
  /** Longest wait of a settlement before its batch is sent, in ms. */
  readonly delayMs: number;
  /** Send at once when this many are pending. */
  readonly maxBatch: number;
  /** How many times a failed call is tried again before its settlements are dropped. */
  readonly retries: number;
  /**
   * While this answers true, settlements past their `delayMs` keep waiting (another `delayMs` at a
   * time) instead of going alone: a call that will {@link SettleBatcher.carry} them is coming (a
   * worker's claim in flight). `maxBatch` still sends at once. Default: never.
   */
  readonly hold?: () => boolean;
  /** Longest a settlement is held by `hold`, in ms (default: as long as `hold` says). */
  readonly holdMs?: number;
  /** Each answer (`ok`, or `lease-lost`: the job's lease was gone). */
  onResult(settlement: Settlement, result: SettleResult): void;
  /** A call that failed (its settlements are tried again, or dropped when `dropped`). */
  onError(error: unknown, batch: readonly Settlement[], dropped: boolean): void;
}

/** The outbox. */
export interface SettleBatcher {
  /** Queues one settlement. */
  add(settlement: Settlement): void;
  /**
   * Hands what is pending to another call that settles it (a claim that carries settlements:
   * `settleAndClaim`), instead of a `settle` of its own. The settlements count as in flight until
   * that call answers; each answer is reported then. When the call fails they are pending again
   * (tried again as any failed batch), and its error is rethrown.
   * @param send - Makes the call with the settlements; answers one result per settlement, in order,
   *   and its own value.
   * @returns What `send` answered besides the settlements.
   */
  carry<T>(
    send: (
      settlements: readonly Settlement[],
    ) => Promise<{ readonly settled: readonly SettleResult[]; readonly value: T }>,
  ): Promise<T>;
  /** How many settlements are pending (not yet sent). */
  pending(): number;
  /** Sends what is pending now and waits until nothing is pending or in flight. */
  drain(): Promise<void>;
  /** How many settlements are pending or in flight. */
  size(): number;
}

interface Pending {
  readonly settlement: Settlement;
  readonly tries: number;
  /** When it was added (its first try), on the scheduler's clock. */
  readonly at: number;
}

/**
 * Creates a settlement outbox.
 * @param options - Backend, scheduler, batching bounds, callbacks.
 * @returns The outbox.
 */
export function createSettleBatcher(options: SettleBatcherOptions): SettleBatcher {
  const { backend, scheduler } = options;
  let pending: Pending[] = [];
  let inFlight = 0;
  let timer: Cancel | undefined;
  let sending: Promise<void> = Promise.resolve();
  /** Calls of {@link SettleBatcher.carry} in flight. */
  const carried = new Set<Promise<unknown>>();

  /** Takes the pending settlements out (in flight from now on). */
  const take = (): Pending[] => {
    timer?.();
    timer = undefined;
    const batch = pending;
    pending = [];
    inFlight += batch.length;
    return batch;
  };
  const answered = (batch: readonly Pending[], results: readonly SettleResult[]): void => {
    batch.forEach((b, i) => {
      const result = results[i];
      if (result !== undefined) options.onResult(b.settlement, result);
    });
  };
  /** A failed call: its settlements are pending again, up to `retries` tries each. */
  const failed = (error: unknown, batch: readonly Pending[], quiet: boolean): void => {
    const retry = batch.filter((b) => b.tries < options.retries).map((b) => ({ ...b, tries: b.tries + 1 }));
    const dropped = retry.length < batch.length;
    if (!quiet || dropped) {
      options.onError(
        error,
        batch.map((b) => b.settlement),
        dropped,
      );
    }
    if (retry.length > 0) {
      pending.push(...retry);
      arm();
    }
  };

  const send = (): Promise<void> => {
    if (pending.length === 0) {
      timer?.();
      timer = undefined;
      return sending;
    }
    const batch = take();
    const run = async (): Promise<void> => {
      try {
        answered(batch, await backend.settle(batch.map((b) => b.settlement)));
      } catch (error) {
        failed(error, batch, false);
      } finally {
        inFlight -= batch.length;
      }
    };
    sending = sending.then(run);
    return sending;
  };

  const arm = (): void => {
    if (timer !== undefined) return;
    timer = scheduler.schedule(options.delayMs, () => {
      timer = undefined;
      const oldest = pending[0]?.at ?? scheduler.now();
      const held = scheduler.now() - oldest < (options.holdMs ?? Number.POSITIVE_INFINITY);
      if (held && options.hold?.() === true) arm();
      else void send();
    });
  };

  return {
    add(settlement) {
      pending.push({ settlement, tries: 0, at: scheduler.now() });
      if (pending.length >= options.maxBatch) void send();
      else arm();
    },
    carry(call) {
      const batch = take();
      const run = (async () => {
        try {
          const answer = await call(batch.map((b) => b.settlement));
          answered(batch, answer.settled);
          return answer.value;
        } catch (error) {
          // The caller reports the call's error; only settlements given up on are reported here.
          failed(error, batch, true);
          throw error;
        } finally {
          inFlight -= batch.length;
        }
      })();
      const tracked = run.then(
        () => undefined,
        () => undefined,
      );
      carried.add(tracked);
      void tracked.then(() => carried.delete(tracked));
      return run;
    },
    pending: () => pending.length,
    async drain() {
      while (pending.length > 0 || inFlight > 0) {
        if (pending.length > 0) await send();
        else await Promise.all([sending, ...carried]);
      }
    },
    size: () => pending.length + inFlight,
  };
}
