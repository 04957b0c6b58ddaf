import { ErrorCode, NxsError, ValidationError } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import { createAddBatcher } from "../../src/add-batcher.js";
import type { EnqueueResult } from "../../src/backend.js";
import type { JobId, NewJob } from "../../src/job.js";

const job = (n: number): NewJob => ({
  id: `job${String(n).padStart(12, "0")}` as JobId,
  queue: "q",
  payload: { n },
  maxAttempts: 1,
  backoff: {},
  timeoutMs: 0,
});

/** A backend whose enqueue calls wait until the test lets them answer. */
function heldBackend(refuse?: (j: NewJob) => boolean, unavailable = false) {
  const calls: NewJob[][] = [];
  const gates: (() => void)[] = [];
  return {
    calls,
    release: () => {
      for (const g of gates.splice(0)) g();
    },
    async enqueue(jobs: readonly NewJob[]): Promise<readonly EnqueueResult[]> {
      calls.push([...jobs]);
      await new Promise<void>((r) => gates.push(r));
      if (unavailable) throw new NxsError(ErrorCode.TransportUnavailable, "server unavailable");
      if (refuse !== undefined && jobs.some(refuse)) throw new ValidationError("a job is refused");
      return jobs.map((j) => ({ id: j.id, created: true }));
    },
  };
}
const settle = () => new Promise((r) => setImmediate(r));

describe("add batcher (Nagle-style coalescing of single adds)", () => {
  it("sends an add at once when nothing is in flight, and coalesces the adds made meanwhile into one call", async () => {
    const backend = heldBackend();
    const adds = createAddBatcher(backend);
    const first = adds.add(job(0));
    expect(backend.calls).toEqual([[job(0)]]);
    const rest = Array.from({ length: 50 }, (_, i) => adds.add(job(i + 1)));
    await settle();
    expect(backend.calls).toHaveLength(1);
    backend.release();
    expect((await first).id).toBe(job(0).id);
    await settle();
    expect(backend.calls.map((c) => c.length)).toEqual([1, 50]);
    backend.release();
    expect((await Promise.all(rest)).map((r) => r.id)).toEqual(
      Array.from({ length: 50 }, (_, i) => job(i + 1).id),
    );
  });

  it("splits what waits into calls of at most maxBatch, in order", async () => {
    const backend = heldBackend();
    const adds = createAddBatcher(backend, 200);
    const all = Array.from({ length: 450 }, (_, i) => adds.add(job(i)));
    for (let i = 0; i < 4; i++) {
      await settle();
      backend.release();
    }
    const results = await Promise.all(all);
    expect(backend.calls.map((c) => c.length)).toEqual([1, 200, 200, 49]);
    expect(results.map((r) => r.id)).toEqual(Array.from({ length: 450 }, (_, i) => job(i).id));
  });

  it("a refused job fails its own add only: the others of its batch are sent again alone and stored", async () => {
    const bad = job(3);
    const backend = heldBackend((j) => j.id === bad.id);
    const adds = createAddBatcher(backend);
    const first = adds.add(job(0));
    const batch = [1, 2, 3, 4].map((n) => adds.add(job(n)));
    const outcomes = Promise.allSettled(batch);
    for (let i = 0; i < 4; i++) {
      await settle();
      backend.release();
    }
    await first;
    const settled = await outcomes;
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
    expect((settled[2] as PromiseRejectedResult).reason).toBeInstanceOf(ValidationError);
    expect(backend.calls.map((c) => c.length)).toEqual([1, 4, 1, 1, 1, 1]);
  });

  it("a transport failure fails every add of its batch (each caller sees it, as with a single add)", async () => {
    const backend = heldBackend(undefined, true);
    const adds = createAddBatcher(backend);
    const all = [0, 1, 2].map((n) => adds.add(job(n)));
    const outcomes = Promise.allSettled(all);
    for (let i = 0; i < 2; i++) {
      await settle();
      backend.release();
    }
    const settled = await outcomes;
    expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(backend.calls.map((c) => c.length)).toEqual([1, 2]);
    // Nothing is left waiting: a later add is sent at once.
    void adds.add(job(9)).catch(() => undefined);
    expect(backend.calls).toHaveLength(3);
  });
});
