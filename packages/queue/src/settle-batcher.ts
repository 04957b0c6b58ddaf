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
  /** Each answer (`ok`, or `lease-lost`: the job's lease was gone). */
  onResult(settlement: Settlement, result: SettleResult): void;
  /** A call that failed (its settlements are tried again, or dropped when `dropped`). */
  onError(error: unknown, batch: readonly Settlement[], dropped: boolean): void;
}

/** The outbox. */
export interface SettleBatcher {
  /** Queues one settlement. */
  add(settlement: Settlement): void;
  /** Sends what is pending now and waits until nothing is pending or in flight. */
  drain(): Promise<void>;
  /** How many settlements are pending or in flight. */
  size(): number;
}

/**
 * Creates a settlement outbox.
 * @param options - Backend, scheduler, batching bounds, callbacks.
 * @returns The outbox.
 */
export function createSettleBatcher(options: SettleBatcherOptions): SettleBatcher {
  const { backend, scheduler } = options;
  let pending: { settlement: Settlement; tries: number }[] = [];
  let inFlight = 0;
  let timer: Cancel | undefined;
  let sending: Promise<void> = Promise.resolve();

  const send = (): Promise<void> => {
    timer?.();
    timer = undefined;
    if (pending.length === 0) return sending;
    const batch = pending;
    pending = [];
    inFlight += batch.length;
    const run = async (): Promise<void> => {
      try {
        const results = await backend.settle(batch.map((b) => b.settlement));
        batch.forEach((b, i) => {
          const result = results[i];
          if (result !== undefined) options.onResult(b.settlement, result);
        });
      } catch (error) {
        const retry = batch
          .filter((b) => b.tries < options.retries)
          .map((b) => ({ ...b, tries: b.tries + 1 }));
        options.onError(
          error,
          batch.map((b) => b.settlement),
          retry.length < batch.length,
        );
        if (retry.length > 0) {
          pending.push(...retry);
          arm();
        }
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
      void send();
    });
  };

  return {
    add(settlement) {
      pending.push({ settlement, tries: 0 });
      if (pending.length >= options.maxBatch) void send();
      else arm();
    },
    async drain() {
      while (pending.length > 0 || inFlight > 0) {
        if (pending.length > 0) await send();
        else await sending;
      }
    },
    size: () => pending.length + inFlight,
  };
}
