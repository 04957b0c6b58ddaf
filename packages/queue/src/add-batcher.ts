/**
 * Coalesces a producer's single adds into batched enqueues, as a socket's Nagle rule does: an add
 * with no enqueue in flight goes at once, alone (no added latency on an idle queue); adds made
 * while one is in flight wait for it and then go together in one `enqueue` call (one request and
 * one transaction on PocketBase). Under load the producer sends fewer, fuller requests instead of
 * queueing one request per job behind the server's single writer.
 */
import { isNxsError } from "@nxs-sync/core";
import type { EnqueueResult, QueueBackend } from "./backend.js";
import type { NewJob } from "./job.js";

/** The add batcher of one queue. */
export interface AddBatcher {
  /** Enqueues one job, with others waiting at the time. @returns Its result. */
  add(job: NewJob): Promise<EnqueueResult>;
}

interface Pending {
  readonly job: NewJob;
  resolve(result: EnqueueResult): void;
  reject(error: unknown): void;
}

/**
 * Creates an add batcher.
 * @param backend - Where jobs go.
 * @param maxBatch - Most jobs in one enqueue call (default 200).
 * @returns The batcher.
 */
export function createAddBatcher(backend: Pick<QueueBackend, "enqueue">, maxBatch = 200): AddBatcher {
  const waiting: Pending[] = [];
  let sending = false;

  const send = async (batch: readonly Pending[]): Promise<void> => {
    try {
      const results = await backend.enqueue(batch.map((p) => p.job));
      batch.forEach((p, i) => {
        const r = results[i];
        if (r === undefined)
          p.reject(new Error(`enqueue answered ${results.length} results for ${batch.length} jobs`));
        else p.resolve(r);
      });
    } catch (error) {
      // A batch is stored all or nothing. A refusal of one job (not a transport failure) must not
      // fail the others' adds: each is sent again alone and gets its own answer.
      const refusal = isNxsError(error) && !error.retryable && batch.length > 1;
      if (!refusal) {
        for (const p of batch) p.reject(error);
        return;
      }
      await Promise.all(
        batch.map((p) =>
          backend.enqueue([p.job]).then(
            ([r]) => (r === undefined ? p.reject(error) : p.resolve(r)),
            (e: unknown) => p.reject(e),
          ),
        ),
      );
    }
  };

  const drain = async (): Promise<void> => {
    sending = true;
    try {
      while (waiting.length > 0) await send(waiting.splice(0, maxBatch));
    } finally {
      sending = false;
    }
  };

  return {
    add(job) {
      return new Promise<EnqueueResult>((resolve, reject) => {
        waiting.push({ job, resolve, reject });
        if (!sending) void drain();
      });
    },
  };
}
