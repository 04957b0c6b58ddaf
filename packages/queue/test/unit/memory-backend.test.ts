import { createManualScheduler, createSeededRandom, type Logger } from "@nxs-sync/core";
import { runQueueBackendConformance } from "@nxs-sync/testing/conformance";
import { describe, expect, it } from "vitest";
import type { JobEvent } from "../../src/backend.js";
import type { JobId, NewJob } from "../../src/job.js";
import { createMemoryQueueBackend } from "../../src/memory-backend.js";

/** Lets queued microtasks (the memory backend's event deliveries) run. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

runQueueBackendConformance("memory", () => {
  const scheduler = createManualScheduler({ now: 1_700_000_000_000 });
  const backend = createMemoryQueueBackend({
    scheduler,
    random: createSeededRandom(7),
    maxBlobBytes: 64 * 1024,
  });
  return {
    backend,
    wait: async (ms) => {
      scheduler.advance(ms);
      await flush();
    },
    settle: flush,
  };
});

const newJob = (id: string, over: Partial<NewJob> = {}): NewJob => ({
  id: id.padEnd(15, "0") as JobId,
  queue: "q",
  payload: null,
  maxAttempts: 1,
  backoff: {},
  timeoutMs: 0,
  ...over,
});

describe("memory queue backend", () => {
  it("delivers events after the call returns, never inside it, and guards a watcher that throws", async () => {
    const scheduler = createManualScheduler();
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, error() {}, warn: (m) => warnings.push(m) };
    const backend = createMemoryQueueBackend({ scheduler, logger });
    const seen: JobEvent["type"][] = [];
    backend.watch("q", {
      onEvent: () => {
        throw new Error("watcher bug");
      },
      onResync: () => {},
    });
    backend.watch("q", { onEvent: (e) => seen.push(e.type), onResync: () => {} });
    const pending = backend.enqueue([newJob("a")]);
    expect(seen).toEqual([]);
    await pending;
    await flush();
    expect(seen).toEqual(["added"]);
    expect(warnings.join()).toContain("watcher bug");
  });

  it("refuses a malformed job id or attempt budget with schema/invalid, storing none of the batch", async () => {
    const backend = createMemoryQueueBackend({ scheduler: createManualScheduler() });
    await expect(backend.enqueue([newJob("a"), newJob("BAD")])).rejects.toMatchObject({
      code: "schema/invalid",
    });
    await expect(backend.enqueue([newJob("b", { maxAttempts: 0 })])).rejects.toMatchObject({
      code: "schema/invalid",
    });
    expect(await backend.getJob(newJob("a").id)).toBeUndefined();
  });

  it("keeps at most MAX_FAILURES_KEPT failures, newest last", async () => {
    const scheduler = createManualScheduler();
    const backend = createMemoryQueueBackend({ scheduler });
    const job = newJob("f", { maxAttempts: 1000 });
    await backend.enqueue([job]);
    for (let i = 1; i <= 25; i++) {
      const [c] = await backend.claim({ queue: "q", worker: "w", leaseMs: 100, max: 1 });
      await backend.settle([
        { id: job.id, token: c!.token, kind: "fail", code: "e", message: `m${i}`, retryDelayMs: 0 },
      ]);
    }
    const stored = await backend.getJob(job.id);
    expect(stored!.failures).toHaveLength(20);
    expect(stored!.failures.at(-1)!.message).toBe("m25");
    expect(stored!.failures[0]!.message).toBe("m6");
  });

  it("cancels a stalled job whose cancel was requested instead of running it again", async () => {
    const scheduler = createManualScheduler();
    const backend = createMemoryQueueBackend({ scheduler });
    const job = newJob("c", { maxAttempts: 3 });
    await backend.enqueue([job]);
    await backend.claim({ queue: "q", worker: "w", leaseMs: 100, max: 1 });
    await backend.admin!.cancel(job.id, "stop");
    scheduler.advance(200);
    expect(await backend.claim({ queue: "q", worker: "w2", leaseMs: 100, max: 1 })).toEqual([]);
    expect(await backend.getJob(job.id)).toMatchObject({ state: "cancelled", reason: "stop" });
  });

  it("refuses every call after close with queue/closed", async () => {
    const backend = createMemoryQueueBackend({ scheduler: createManualScheduler() });
    await backend.close!();
    await expect(backend.counts("q")).rejects.toMatchObject({ code: "queue/closed" });
  });
});
