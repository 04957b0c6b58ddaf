import {
  createManualScheduler,
  createSeededRandom,
  isNxsError,
  type ManualScheduler,
  type NxsError,
} from "@nxs-sync/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import type { Heartbeat, QueueBackendCapabilities, Settlement } from "../../src/backend.js";
import { RetryLaterError, UnrecoverableJobError } from "../../src/errors.js";
import { type JobId, JobState } from "../../src/job.js";
import { createMemoryQueueBackend } from "../../src/memory-backend.js";
import { createQueue, type Queue } from "../../src/queue.js";
import { createWorker, type JobHandler, type Worker, type WorkerOptions } from "../../src/worker.js";

/**
 * The worker on the memory backend with a manual scheduler: no sleeps, no real timers. `step(ms)`
 * moves the clock in small steps and lets promises settle after each.
 */

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const schema = z.object({ n: z.number().int() });
type Payload = z.output<typeof schema>;

interface Spy {
  heartbeats: Heartbeat[][];
  settles: Settlement[][];
  claims: number;
  /** When set, heartbeats answer this instead of asking the backend. */
  heartbeatMode?: "lease-lost" | "throw";
  /** When false, watch gives no hints (only the polling backstop wakes the worker). */
  hints: boolean;
  /** Calls of `settleAndClaim` (offered only when `combined`): the settlements each carried. */
  carried: Settlement[][];
  combined: boolean;
  /** How many watches are open, after each change (starts at 0). */
  watching: number[];
  /** When set, `settleAndClaim` throws this many times before it answers. */
  combinedFailures?: number;
  /** When set, `settleAndClaim` never answers. */
  combinedHangs?: boolean;
}

function spyBackend(inner: QueueBackendCapabilities, spy: Spy): QueueBackendCapabilities {
  return {
    ...inner,
    async claim(request) {
      spy.claims++;
      return inner.claim(request);
    },
    async heartbeat(beats) {
      spy.heartbeats.push([...beats]);
      if (spy.heartbeatMode === "throw") throw new Error("backend unreachable");
      if (spy.heartbeatMode === "lease-lost")
        return beats.map(() => ({ ok: false, code: "queue/lease-lost" }) as const);
      return inner.heartbeat(beats);
    },
    async settle(settlements) {
      spy.settles.push([...settlements]);
      return inner.settle(settlements);
    },
    settleAndClaim: spy.combined
      ? async (settlements, request) => {
          spy.carried.push([...settlements]);
          spy.claims++;
          if ((spy.combinedFailures ?? 0) > 0) {
            spy.combinedFailures = (spy.combinedFailures ?? 0) - 1;
            throw new Error("backend unreachable");
          }
          if (spy.combinedHangs === true) return new Promise(() => {});
          return inner.settleAndClaim!(settlements, request);
        }
      : undefined,
    watch(queue, watcher, options) {
      if (!spy.hints) return () => {};
      const stop = inner.watch(queue, watcher, options);
      spy.watching.push(spy.watching.at(-1)! + 1);
      return () => {
        spy.watching.push(spy.watching.at(-1)! - 1);
        stop();
      };
    },
  };
}

interface Harness {
  scheduler: ManualScheduler;
  queue: Queue<typeof schema>;
  raw: QueueBackendCapabilities;
  spy: Spy;
  errors: NxsError[];
  start(handler: JobHandler<Payload>, options?: WorkerOptions): Worker;
  step(ms: number, by?: number): Promise<void>;
}

let workers: Worker[] = [];
afterEach(async () => {
  workers = [];
});

function harness(options: { hints?: boolean; combined?: boolean } = {}): Harness {
  const scheduler = createManualScheduler({ now: 1_000_000 });
  const raw = createMemoryQueueBackend({ scheduler });
  const spy: Spy = {
    heartbeats: [],
    settles: [],
    claims: 0,
    hints: options.hints ?? true,
    carried: [],
    combined: options.combined ?? false,
    watching: [0],
  };
  const backend = spyBackend(raw, spy);
  const queue = createQueue({ name: "jobs", schema, backend, random: createSeededRandom(5) });
  const errors: NxsError[] = [];
  return {
    scheduler,
    queue,
    raw,
    spy,
    errors,
    start(handler, opts = {}) {
      const w = createWorker(queue, handler, {
        scheduler,
        random: createSeededRandom(9),
        leaseMs: 3000,
        pollMs: 1_000_000,
        name: "w1",
        onError: (e) => errors.push(e),
        ...opts,
      });
      workers.push(w);
      return w;
    },
    async step(ms, by = 10) {
      await flush();
      for (let t = 0; t < ms; t += by) {
        scheduler.advance(Math.min(by, ms - t));
        await flush();
      }
    },
  };
}

/** A promise with its resolver, to hold a handler until the test lets it go. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** A handler that holds each job until the test opens its gate (by job id, in start order). */
function gatePerJob(): { gates: Map<JobId, ReturnType<typeof gate>>; handler: JobHandler<Payload> } {
  const gates = new Map<JobId, ReturnType<typeof gate>>();
  const handler: JobHandler<Payload> = async ({ id }) => {
    const g = gate();
    gates.set(id, g);
    await g.promise;
  };
  return { gates, handler };
}

const aborted = (signal: AbortSignal): Promise<NxsError> =>
  new Promise((resolve) => signal.addEventListener("abort", () => resolve(signal.reason as NxsError)));

describe("createWorker", () => {
  it("runs a job with its typed payload and stores the handler's result", async () => {
    const h = harness();
    const id = await h.queue.add({ n: 2 });
    const seen: unknown[] = [];
    h.start(async ({ payload, attempt, id: jobId }) => {
      seen.push([jobId, payload.n, attempt]);
      return { doubled: payload.n * 2 };
    });
    await h.step(20);
    expect(seen).toEqual([[id, 2, 1]]);
    expect(await h.queue.getJob(id)).toMatchObject({ state: JobState.Completed, result: { doubled: 4 } });
  });

  it("wakes on an added hint without polling, and claims what exists at start (resync)", async () => {
    const h = harness();
    const before = await h.queue.add({ n: 1 });
    const done: JobId[] = [];
    h.start(async ({ id }) => {
      done.push(id);
    });
    await flush();
    await flush();
    expect(done).toEqual([before]);
    const after = await h.queue.add({ n: 2 });
    await flush();
    await flush();
    expect(done).toEqual([before, after]);
    expect(h.scheduler.now()).toBe(1_000_000);
  });

  it("takes a job added while it idles by hand-off (no claim of its own), and without hand-off by a claim", async () => {
    const h = harness();
    const done: JobId[] = [];
    h.start(async ({ id }) => {
      done.push(id);
    });
    await h.step(10);
    const claimsBefore = h.spy.claims;
    const id = await h.queue.add({ n: 1 });
    await flush();
    await flush();
    expect(done).toEqual([id]);
    // The add claimed it for the parked worker: the worker's only claim after it is the one that
    // follows the job's end (and parks it again).
    expect(h.spy.claims - claimsBefore).toBeLessThanOrEqual(1);
    expect((await h.raw.getJob(id))?.worker).toBe("w1");

    const off = harness();
    const got: JobId[] = [];
    off.start(
      async ({ id: j }) => {
        got.push(j);
      },
      { handoff: false },
    );
    await off.step(10);
    const before = off.spy.claims;
    const j = await off.queue.add({ n: 2 });
    await flush();
    await flush();
    expect(got).toEqual([j]);
    // Woken by the hint, it claimed the job itself.
    expect(off.spy.claims - before).toBeGreaterThanOrEqual(1);
  });

  it("does not run a hand-off twice when its event comes after a claim answered it", async () => {
    const h = harness({ hints: false });
    const runs: JobId[] = [];
    h.start(
      async ({ id }) => {
        runs.push(id);
      },
      { pollMs: 1000 },
    );
    await h.step(10);
    // No hints: the hand-off's event is lost; the next poll's claim answers the job.
    const id = await h.queue.add({ n: 1 });
    expect((await h.raw.getJob(id))?.state).toBe("active");
    await h.step(1100, 100);
    expect(runs).toEqual([id]);
    await h.step(3000, 100);
    expect(runs).toEqual([id]);
    expect((await h.raw.getJob(id))?.state).toBe("completed");
  });

  it("wakes at a delayed job's runAt (from its hint), and by the polling backstop without hints", async () => {
    const h = harness();
    const done: JobId[] = [];
    h.start(async ({ id }) => {
      done.push(id);
    });
    const id = await h.queue.add({ n: 1 }, { delayMs: 500 });
    await h.step(490);
    expect(done).toEqual([]);
    await h.step(20);
    expect(done).toEqual([id]);

    const quiet = harness({ hints: false });
    const got: JobId[] = [];
    quiet.start(
      async ({ id: j }) => {
        got.push(j);
      },
      { pollMs: 1000 },
    );
    await quiet.step(10);
    const late = await quiet.queue.add({ n: 1 });
    await quiet.step(900, 100);
    expect(got).toEqual([]);
    await quiet.step(200, 100);
    expect(got).toEqual([late]);
  });

  it("runs at most `concurrency` handlers, claiming in batches, and takes the next job when one ends", async () => {
    const h = harness();
    const ids = await h.queue.addBulk([1, 2, 3, 4, 5].map((n) => ({ payload: { n } })));
    const { gates, handler } = gatePerJob();
    const w = h.start(handler, { concurrency: 2 });
    await h.step(20);
    expect(w.running()).toBe(2);
    expect([...gates.keys()]).toEqual(ids.slice(0, 2));
    gates.get(ids[0]!)!.open();
    await h.step(20);
    expect(w.running()).toBe(2);
    expect([...gates.keys()]).toEqual(ids.slice(0, 3));
    for (const g of gates.values()) g.open();
    await h.step(50);
    for (const g of gates.values()) g.open();
    await h.step(50);
    expect((await h.queue.counts()).completed).toBe(5);
  });

  it("retries a failing job with its backoff, keeping each failure, then succeeds", async () => {
    const h = harness();
    const id = await h.queue.add({ n: 1 }, { attempts: 3, backoff: { type: "fixed", delayMs: 200 } });
    let calls = 0;
    h.start(async ({ attempt }) => {
      calls++;
      if (attempt < 3) throw Object.assign(new Error(`flaky ${attempt}`), { code: "app/flaky" });
      return "ok";
    });
    await h.step(20);
    expect(calls).toBe(1);
    const waiting = await h.queue.getJob(id);
    expect(waiting).toMatchObject({ state: JobState.Waiting, attemptsMade: 1 });
    expect(waiting!.runAt - h.scheduler.now()).toBeGreaterThan(150);
    await h.step(200);
    expect(calls).toBe(2);
    await h.step(220);
    expect(calls).toBe(3);
    const job = await h.queue.getJob(id);
    expect(job).toMatchObject({ state: JobState.Completed, result: "ok", attempt: 3 });
    expect(job!.failures.map((f) => [f.attempt, f.code, f.message])).toEqual([
      [1, "app/flaky", "flaky 1"],
      [2, "app/flaky", "flaky 2"],
    ]);
  });

  it("waits an exponential backoff with jitter between attempts (within [b/2, b], b = delayMs * 2^(n-1))", async () => {
    const h = harness();
    const ids = await h.queue.addBulk(
      [1, 2, 3, 4].map((n) => ({ payload: { n }, options: { attempts: 3, backoff: { delayMs: 1000 } } })),
    );
    h.start(
      async () => {
        throw new Error("down");
      },
      { concurrency: 4 },
    );
    await h.step(20);
    const first = await Promise.all(
      ids.map(async (id) => (await h.queue.getJob(id))!.runAt - h.scheduler.now()),
    );
    for (const d of first) {
      expect(d).toBeGreaterThanOrEqual(500 - 20);
      expect(d).toBeLessThanOrEqual(1000);
    }
    expect(new Set(first).size).toBeGreaterThan(1);
    await h.step(1100, 20);
    const second = await Promise.all(ids.map(async (id) => (await h.queue.getJob(id))!));
    for (const job of second) {
      expect(job.attemptsMade).toBe(2);
      expect(job.runAt - job.updatedAt).toBeGreaterThanOrEqual(1000);
      expect(job.runAt - job.updatedAt).toBeLessThanOrEqual(2000);
    }
  });

  it("reports a failed claim to onError and claims again at the polling backstop", async () => {
    const h = harness();
    const id = await h.queue.add({ n: 1 });
    let failClaims = true;
    const backend = h.queue.backend;
    const flaky = createQueue({
      name: "jobs",
      schema,
      backend: {
        ...backend,
        async claim(request) {
          if (failClaims) throw new Error("connection refused");
          return backend.claim(request);
        },
      },
    });
    const ran: JobId[] = [];
    const w = createWorker(
      flaky,
      async ({ id: j }) => {
        ran.push(j);
      },
      { scheduler: h.scheduler, pollMs: 500, onError: (e) => h.errors.push(e) },
    );
    workers.push(w);
    await h.step(20);
    expect(ran).toEqual([]);
    expect(h.errors.map((e) => e.code)).toContain("transport/unavailable");
    failClaims = false;
    await h.step(500, 20);
    expect(ran).toEqual([id]);
  });

  it("dead-letters at once on UnrecoverableJobError, and after the last attempt otherwise", async () => {
    const h = harness();
    const hopeless = await h.queue.add({ n: 1 }, { attempts: 5 });
    const once = await h.queue.add({ n: 2 }, { attempts: 1 });
    h.start(
      async ({ payload }) => {
        if (payload.n === 1) throw new UnrecoverableJobError("no audio");
        throw "a string";
      },
      { concurrency: 2 },
    );
    await h.step(30);
    expect(await h.queue.getJob(hopeless)).toMatchObject({
      state: JobState.Failed,
      attemptsMade: 1,
      reason: "queue/handler-failed",
    });
    const failed = await h.queue.getJob(once);
    expect(failed).toMatchObject({ state: JobState.Failed, reason: "queue/handler-failed" });
    expect(failed!.failures[0]!.message).toContain("a string");
  });

  it("reschedules on RetryLaterError without spending an attempt", async () => {
    const h = harness();
    const id = await h.queue.add({ n: 1 }, { attempts: 1 });
    let calls = 0;
    h.start(async () => {
      calls++;
      if (calls === 1) throw new RetryLaterError(400);
      return "done";
    });
    await h.step(20);
    expect(await h.queue.getJob(id)).toMatchObject({ state: JobState.Waiting, attemptsMade: 0 });
    await h.step(400);
    expect(await h.queue.getJob(id)).toMatchObject({
      state: JobState.Completed,
      attempt: 2,
      attemptsMade: 1,
    });
  });

  it("pauses its group on RetryLaterError with pauseGroup: the group's other jobs wait, other groups run", async () => {
    // The settlement rides with the next claim (settleAndClaim): the pause is in place before it.
    const h = harness({ combined: true });
    const a1 = await h.queue.add({ n: 1 }, { group: "openai" });
    const a2 = await h.queue.add({ n: 2 }, { group: "openai" });
    const b1 = await h.queue.add({ n: 3 }, { group: "voice" });
    const ran: number[] = [];
    h.start(
      async ({ payload }) => {
        ran.push(payload.n);
        if (payload.n === 1 && ran.filter((n) => n === 1).length === 1)
          throw new RetryLaterError(2000, "429", { pauseGroup: true });
        return "ok";
      },
      { concurrency: 1, pollMs: 60_000 },
    );
    await h.step(200);
    expect(ran).toEqual([1, 3]);
    const flows = await h.queue.flows();
    expect(flows).toMatchObject([
      { group: "openai", paused: false, reason: `job ${a1}: retry later (2000 ms)` },
    ]);
    expect(flows[0]!.pausedUntil).toBeGreaterThanOrEqual(1_000_000 + 2000);
    // The claim answered waitMs: the worker claims again when the pause ends, not at its 60 s poll.
    await h.step(2000, 50);
    expect(ran.slice(0, 2)).toEqual([1, 3]);
    expect(ran.slice(2).sort()).toEqual([1, 2]);
    for (const id of [a1, a2, b1]) expect((await h.queue.getJob(id))?.state).toBe(JobState.Completed);
  });

  it("claims again when a rate window frees (waitMs), not at the next poll", async () => {
    const h = harness({ hints: false });
    await h.queue.setLimits({ rate: { max: 2, intervalMs: 1000 } });
    for (let n = 0; n < 5; n++) await h.queue.add({ n });
    const starts: number[] = [];
    h.start(
      async () => {
        starts.push(h.scheduler.now());
        return "ok";
      },
      { concurrency: 5, pollMs: 60_000 },
    );
    await h.step(3000, 50);
    expect(starts).toHaveLength(5);
    // Never more than 2 starts in any 1 s window, and each batch starts as the window frees.
    for (const t of starts)
      expect(starts.filter((u) => u > t - 1000 && u <= t).length).toBeLessThanOrEqual(2);
    expect(starts.at(-1)! - starts[0]!).toBeLessThan(2200);
  });

  it("aborts a handler past its timeout (queue/timeout) and fails the attempt with that code", async () => {
    const h = harness();
    const id = await h.queue.add({ n: 1 }, { attempts: 1, timeoutMs: 500 });
    let reason: NxsError | undefined;
    h.start(async ({ signal }) => {
      reason = await aborted(signal);
    });
    await h.step(490);
    expect(reason).toBeUndefined();
    await h.step(30);
    expect(reason?.code).toBe("queue/timeout");
    expect(await h.queue.getJob(id)).toMatchObject({ state: JobState.Failed, reason: "queue/timeout" });
  });

  it("aborts a cancelled job's handler at its next heartbeat and settles it cancelled", async () => {
    const h = harness();
    const id = await h.queue.add({ n: 1 });
    let reason: NxsError | undefined;
    h.start(async ({ signal }) => {
      reason = await aborted(signal);
    });
    await h.step(20);
    expect(await h.queue.cancel(id, "operator")).toBe(JobState.Active);
    await h.step(1100, 50);
    expect(reason?.code).toBe("aborted");
    expect(await h.queue.getJob(id)).toMatchObject({ state: JobState.Cancelled, reason: "operator" });
  });

  it("aborts on a lost lease (queue/lease-lost) and sends no settlement for it", async () => {
    const h = harness();
    await h.queue.add({ n: 1 });
    let reason: NxsError | undefined;
    h.start(async ({ signal }) => {
      reason = await aborted(signal);
      return "late";
    });
    await h.step(20);
    h.spy.heartbeatMode = "lease-lost";
    await h.step(1000, 50);
    expect(reason?.code).toBe("queue/lease-lost");
    await h.step(50);
    expect(h.spy.settles).toEqual([]);
  });

  it("aborts locally when no heartbeat got through for a whole lease, reporting each failure to onError", async () => {
    const h = harness();
    await h.queue.add({ n: 1 });
    let reason: NxsError | undefined;
    h.start(async ({ signal }) => {
      reason = await aborted(signal);
    });
    await h.step(20);
    h.spy.heartbeatMode = "throw";
    await h.step(2900, 50);
    expect(reason).toBeUndefined();
    expect(h.errors.length).toBeGreaterThan(0);
    await h.step(1100, 50);
    expect(reason?.code).toBe("queue/lease-lost");
  });

  it("lets another worker take over a job whose holder froze; the frozen one's late result is refused", async () => {
    const h = harness();
    const id = await h.queue.add({ n: 1 }, { attempts: 3 });
    const g = gate();
    let aSignal: AbortSignal | undefined;
    h.start(
      async ({ signal }) => {
        aSignal = signal;
        await g.promise; // frozen: ignores its signal
        return "from A";
      },
      { name: "A" },
    );
    await h.step(20);
    expect((await h.queue.getJob(id))!.worker).toBe("A");
    h.spy.heartbeatMode = "throw"; // A is cut off from the backend
    const b = createWorker(createQueue({ name: "jobs", schema, backend: h.raw }), async () => "from B", {
      scheduler: h.scheduler,
      leaseMs: 3000,
      pollMs: 500,
      name: "B",
      onError: () => {},
    });
    workers.push(b);
    await h.step(3600, 50);
    expect((aSignal?.reason as NxsError | undefined)?.code).toBe("queue/lease-lost");
    const done = await h.queue.getJob(id);
    expect(done).toMatchObject({
      state: JobState.Completed,
      result: "from B",
      attempt: 2,
    });
    expect(done!.failures.map((f) => f.code)).toEqual(["queue/stalled"]);
    h.spy.heartbeatMode = undefined;
    g.open();
    await h.step(50);
    expect(await h.queue.getJob(id)).toEqual(done);
    expect(h.spy.settles).toEqual([]);
  });

  it("renews all held leases in one heartbeat call that carries progress", async () => {
    const h = harness();
    const ids = await h.queue.addBulk([1, 2, 3].map((n) => ({ payload: { n } })));
    const progress: unknown[] = [];
    h.queue.on("progress", (e) => progress.push([e.id, e.progress]));
    const g = gate();
    h.start(
      async ({ payload, progress: report }) => {
        report(payload.n * 10);
        await g.promise;
      },
      { concurrency: 3 },
    );
    await h.step(5000, 50); // longer than the 3 s lease: renewed by heartbeats
    expect(h.spy.heartbeats.length).toBeGreaterThanOrEqual(4);
    for (const call of h.spy.heartbeats) expect(call).toHaveLength(3);
    expect(h.spy.heartbeats[0]!.map((b) => b.progress)).toEqual([10, 20, 30]);
    expect(h.spy.heartbeats[1]!.map((b) => b.progress)).toEqual([undefined, undefined, undefined]);
    expect((await h.queue.getJob(ids[2]!))!.progress).toBe(30);
    expect(progress).toContainEqual([ids[0], 10]);
    expect((await h.queue.counts()).active).toBe(3);
    g.open();
    await h.step(20);
    expect(h.spy.settles).toHaveLength(1);
    expect(h.spy.settles[0]).toHaveLength(3);
    expect((await h.queue.counts()).completed).toBe(3);
  });

  it("sends new progress within progressMs, in a heartbeat of only the leases whose progress changed", async () => {
    const h = harness();
    const [a] = await h.queue.addBulk([{ payload: { n: 1 } }, { payload: { n: 2 } }]);
    const g = gate();
    h.start(
      async ({ payload, progress }) => {
        if (payload.n === 1) progress({ pct: 5 });
        await g.promise;
      },
      { concurrency: 2, progressMs: 100, heartbeatMs: 1000 },
    );
    await h.step(150);
    expect(h.spy.heartbeats).toHaveLength(1);
    expect(h.spy.heartbeats[0]!.map((b) => [b.id, b.progress])).toEqual([[a, { pct: 5 }]]);
    expect((await h.queue.getJob(a!))!.progress).toEqual({ pct: 5 });
    await h.step(1000, 50);
    expect(h.spy.heartbeats[1]).toHaveLength(2);
    g.open();
    await h.step(20);
  });

  it("dead-letters a claimed job whose payload fails the schema (queue/invalid-payload) and goes on", async () => {
    const h = harness();
    const bad = "bad000000000001" as JobId;
    await h.raw.enqueue([
      { id: bad, queue: "jobs", payload: { n: "x" }, maxAttempts: 3, backoff: {}, timeoutMs: 0 },
    ]);
    const good = await h.queue.add({ n: 1 });
    const ran: JobId[] = [];
    h.start(async ({ id }) => {
      ran.push(id);
    });
    await h.step(30);
    expect(ran).toEqual([good]);
    expect(await h.raw.getJob(bad)).toMatchObject({
      state: JobState.Failed,
      reason: "queue/invalid-payload",
    });
    expect(h.errors.map((e) => e.code)).toEqual(["queue/invalid-payload"]);
  });

  it("closes gracefully: stops claiming and waits for running handlers", async () => {
    const h = harness();
    const id = await h.queue.add({ n: 1 });
    const g = gate();
    const w = h.start(async () => {
      await g.promise;
      return "finished";
    });
    await h.step(20);
    let closed = false;
    void w.close({ timeoutMs: 10_000 }).then(() => {
      closed = true;
    });
    const later = await h.queue.add({ n: 2 });
    await h.step(100);
    expect(closed).toBe(false);
    g.open();
    await h.step(20);
    expect(closed).toBe(true);
    expect(await h.queue.getJob(id)).toMatchObject({ state: JobState.Completed, result: "finished" });
    expect(await h.queue.getJob(later)).toMatchObject({ state: JobState.Waiting, attempt: 0 });
  });

  it("on close, aborts handlers still running after the timeout (queue/closed) and releases their leases", async () => {
    const h = harness();
    const id = await h.queue.add({ n: 1 }, { attempts: 1 });
    let reason: NxsError | undefined;
    const w = h.start(async ({ signal }) => {
      reason = await aborted(signal);
      await new Promise(() => {}); // ignores its signal
    });
    await h.step(20);
    let closed = false;
    void w.close({ timeoutMs: 1000 }).then(() => {
      closed = true;
    });
    await h.step(990);
    expect(closed).toBe(false);
    await h.step(30);
    expect(reason?.code).toBe("queue/closed");
    expect(closed).toBe(true);
    expect(await h.queue.getJob(id)).toMatchObject({ state: JobState.Waiting, attemptsMade: 0 });
    expect(h.spy.settles.flat().map((s) => s.kind)).toEqual(["release"]);
  });

  it("carries pending settlements with its next claim when the backend settles and claims in one call", async () => {
    const h = harness({ combined: true });
    const ids = await h.queue.addBulk([1, 2, 3].map((n) => ({ payload: { n } })));
    const w = h.start(async ({ payload }) => payload.n * 10);
    await h.step(100);
    expect((await h.queue.counts()).completed).toBe(3);
    const carried = h.spy.carried.flat();
    // Each settlement went exactly once, most with the claim that followed its job.
    expect([...carried, ...h.spy.settles.flat()].map((s) => s.id).sort()).toEqual([...ids].sort());
    expect(carried.map((s) => s.id)).toEqual(expect.arrayContaining(ids.slice(0, 2)));
    expect(carried.every((s) => s.kind === "complete")).toBe(true);
    expect(await h.queue.getJob(ids[2]!)).toMatchObject({ state: JobState.Completed, result: 30 });
    await w.close();
    expect(h.errors).toEqual([]);
  });

  it("gives carried settlements back to the outbox when the combined call fails, and settles them after", async () => {
    const h = harness({ combined: true });
    const [a] = await h.queue.addBulk([{ payload: { n: 1 } }]);
    h.spy.combinedFailures = 1;
    const w = h.start(async () => "done");
    await h.step(100);
    expect(h.spy.carried.map((c) => c.map((s) => s.id))).toEqual([[a]]);
    expect(h.errors.map((e) => e.message)).toEqual([expect.stringContaining("claim")]);
    expect(h.spy.settles.flat().map((s) => s.id)).toEqual([a]);
    expect(await h.queue.getJob(a!)).toMatchObject({ state: JobState.Completed, result: "done" });
    await w.close();
  });

  it("holds a settlement for a claim in flight at most a quarter of the lease, then sends it alone", async () => {
    const h = harness({ combined: true });
    const [a, b] = await h.queue.addBulk([{ payload: { n: 1 } }, { payload: { n: 2 } }]);
    const { gates, handler } = gatePerJob();
    h.start(handler, { concurrency: 2, leaseMs: 3000 });
    await h.step(20);
    h.spy.combinedHangs = true;
    gates.get(a!)!.open();
    await h.step(20);
    expect(h.spy.carried.map((c) => c.map((s) => s.id))).toEqual([[a]]);
    gates.get(b!)!.open();
    await h.step(500);
    expect(h.spy.settles).toEqual([]);
    await h.step(500);
    expect(h.spy.settles.map((c) => c.map((s) => s.id))).toEqual([[b]]);
    expect(await h.queue.getJob(b!)).toMatchObject({ state: JobState.Completed });
  });

  it("sets no timer of its own: every wait is on the injected scheduler", async () => {
    const timeout = vi.spyOn(globalThis, "setTimeout");
    const interval = vi.spyOn(globalThis, "setInterval");
    try {
      const h = harness();
      await h.queue.add({ n: 1 }, { timeoutMs: 5000, attempts: 2, backoff: { delayMs: 100 } });
      let calls = 0;
      const w = h.start(async ({ progress }) => {
        progress(1);
        if (++calls === 1) throw new Error("once");
        return "ok";
      });
      await h.step(1000, 50);
      await w.close({ timeoutMs: 100 });
      expect(calls).toBe(2);
      expect(timeout).not.toHaveBeenCalled();
      expect(interval).not.toHaveBeenCalled();
    } finally {
      timeout.mockRestore();
      interval.mockRestore();
    }
  });

  it("refuses out-of-range options with config/invalid", () => {
    const h = harness();
    const error = (() => {
      try {
        h.start(async () => {}, { concurrency: 0 });
      } catch (e) {
        return e;
      }
    })();
    expect(isNxsError(error) && error.code).toBe("config/invalid");
    expect(() => h.start(async () => {}, { leaseMs: 1000, heartbeatMs: 2000 })).toThrow(/heartbeatMs/);
    expect(() => h.start(async () => {}, { prefetch: -1 })).toThrow(/prefetch/);
  });

  it("prefetches up to `prefetch` jobs beyond concurrency, keeps their leases, and starts them in claim order", async () => {
    const h = harness();
    const ids = await h.queue.addBulk([1, 2, 3, 4, 5].map((n) => ({ payload: { n } })));
    const { gates, handler } = gatePerJob();
    const w = h.start(handler, { concurrency: 1, prefetch: 2 });
    await h.step(20);
    expect(w.running()).toBe(1);
    expect(await h.queue.counts()).toMatchObject({ active: 3, waiting: 2 });
    await h.step(5000, 50); // past the 3 s lease: the prefetched ones are renewed too
    for (const beat of h.spy.heartbeats) expect(beat).toHaveLength(3);
    expect(await h.raw.claim({ queue: "jobs", worker: "w2", leaseMs: 3000, max: 5 })).toHaveLength(2);
    expect((await h.queue.counts()).active).toBe(5);
    for (let i = 0; i < 3; i++) {
      gates.get(ids[i]!)!.open();
      await h.step(20);
    }
    expect([...gates.keys()]).toEqual(ids.slice(0, 3));
    gates.get(ids[2]!)!.open();
    await h.step(20);
    expect((await h.queue.counts()).completed).toBe(3);
    await w.close();
  });

  it("pauses its wake-up watch during a backlog (full claims in a row), and watches again once a claim comes back short", async () => {
    const h = harness();
    await h.queue.addBulk(Array.from({ length: 20 }, (_, n) => ({ payload: { n } })));
    const w = h.start(async () => {}, { concurrency: 1, batchSize: 1 });
    await h.step(200);
    expect((await h.queue.counts()).completed).toBe(20);
    // Watched at start, paused after 16 full claims, watched again when the queue ran dry.
    expect(h.spy.watching).toEqual([0, 1, 0, 1]);
    // The hint wakes it again (no polling in this harness).
    await h.queue.add({ n: 99 });
    await h.step(50);
    expect((await h.queue.counts()).completed).toBe(21);
    await w.close();
    expect(h.spy.watching.at(-1)).toBe(0);
  });

  it("gives prefetched jobs back on close, their attempt not spent", async () => {
    const h = harness();
    const ids = await h.queue.addBulk([1, 2, 3].map((n) => ({ payload: { n } })));
    const g = gate();
    const w = h.start(() => g.promise.then(() => "done"), { concurrency: 1, prefetch: 5 });
    await h.step(20);
    expect((await h.queue.counts()).active).toBe(3);
    const closed = w.close({ timeoutMs: 10_000 });
    await h.step(20);
    g.open();
    await h.step(20);
    await closed;
    expect(await h.queue.getJob(ids[0]!)).toMatchObject({ state: JobState.Completed, result: "done" });
    for (const id of ids.slice(1)) {
      expect(await h.queue.getJob(id)).toMatchObject({ state: JobState.Waiting, attemptsMade: 0 });
    }
  });
});
