/**
 * The scheduling part of the queue conformance suite (issue 22): priorities with aging, the dedupe
 * modes by key, and cron schedules' atomic `fire`. Registered inside `runQueueBackendConformance`.
 */
import { isNxsError } from "@nxs-sync/core";
import {
  type ClaimedJob,
  type JobId,
  type JobRecord,
  JobState,
  type NewJob,
  PRIORITY_STEP_MS,
  type QueueBackendCapabilities,
} from "@nxs-sync/queue";
import { expect, it } from "vitest";

/** What the main suite hands the scheduling tests. */
export interface QueueConformanceHelpers {
  start(): Promise<{
    readonly ctx: { wait(ms: number): Promise<void> };
    readonly backend: QueueBackendCapabilities;
    readonly lease: number;
    readonly queue: string;
  }>;
  job(queue: string, over?: Partial<NewJob>): NewJob;
  mustGet(id: JobId): Promise<JobRecord>;
  newId(): JobId;
}

/**
 * Registers the scheduling tests (inside the suite's `describe`).
 * @param h - The suite's helpers.
 */
export function schedulingConformance(h: QueueConformanceHelpers): void {
  const { start, job, mustGet, newId } = h;
  const claimAll = async (backend: QueueBackendCapabilities, queue: string, lease: number, max = 10) =>
    (await backend.claim({ queue, worker: "w", leaseMs: lease, max })).map((c: ClaimedJob) => c.job.id);
  /** The backend's clock, read off a probe job (a real server's clock is not the test's). */
  const backendNow = async (backend: QueueBackendCapabilities, queue: string): Promise<number> => {
    const probe = job(`${queue}-probe`);
    // runAt is absolute: a probe in another queue tells the backend's time.
    await backend.enqueue([probe]);
    return (await mustGet(probe.id)).createdAt;
  };

  it("claims waiting jobs by priority, higher first, with aging by PRIORITY_STEP_MS (a capability)", async (test) => {
    const { backend, queue, lease } = await start();
    if (backend.priorities === undefined) return test.skip("no priorities capability");
    expect(backend.priorities.stepMs).toBe(PRIORITY_STEP_MS);
    const now = await backendNow(backend, queue);
    const low = job(queue, { payload: { n: "low" } });
    const high = job(queue, { payload: { n: "high" }, priority: 10 });
    const mid = job(queue, { payload: { n: "mid" }, priority: 2 });
    // Ready 5 s before the others: ahead of priority 2 (2 s), behind priority 10 (10 s).
    const old = job(queue, { payload: { n: "old" }, runAt: now - 5 * PRIORITY_STEP_MS });
    const low2 = job(queue, { payload: { n: "low2" } });
    await backend.enqueue([low, high, mid, old, low2]);
    expect((await mustGet(high.id)).priority).toBe(10);
    const order = [];
    for (let i = 0; i < 5; i++) order.push(...(await claimAll(backend, queue, lease, 1)));
    expect(order).toEqual([high.id, old.id, mid.id, low.id, low2.id]);
  });

  it("dedupes simple: ignored while an unfinished job has the key; created again after it ends", async (test) => {
    const { backend, queue, lease } = await start();
    if (!backend.dedupeModes?.includes("simple")) return test.skip("no simple dedupe");
    const key = { key: "user-1", mode: "simple" as const };
    const a = job(queue, { key, payload: { v: 1 } });
    const b = job(queue, { key, payload: { v: 2 } });
    expect(await backend.enqueue([a])).toEqual([{ id: a.id, created: true }]);
    expect(await backend.enqueue([b])).toEqual([{ id: a.id, created: false, deduped: "ignored" }]);
    expect(await backend.getJob(b.id)).toBeUndefined();
    // Another key, and the same key in another queue, are not deduped.
    const other = job(queue, { key: { key: "user-2", mode: "simple" } });
    const elsewhere = job(`${queue}-x`, { key });
    expect((await backend.enqueue([other, elsewhere])).map((r) => r.created)).toEqual([true, true]);
    const [ca] = await backend.claim({ queue, worker: "w", leaseMs: lease, max: 1 });
    expect(ca?.job.id).toBe(a.id);
    expect((await backend.enqueue([b]))[0]).toMatchObject({ id: a.id, created: false }); // active: unfinished
    await backend.settle([{ id: a.id, token: ca!.token, kind: "complete" }]);
    expect(await backend.enqueue([b])).toEqual([{ id: b.id, created: true }]);
    expect((await mustGet(b.id)).jobKey).toBe("user-1");
  });

  it("dedupes simple under a race: of 8 concurrent enqueues of one key, one job is stored", async (test) => {
    const { backend, queue } = await start();
    if (!backend.dedupeModes?.includes("simple")) return test.skip("no simple dedupe");
    const jobs = Array.from({ length: 8 }, (_, i) =>
      job(queue, { key: { key: "k", mode: "simple" }, payload: { i } }),
    );
    const results = (await Promise.all(jobs.map((j) => backend.enqueue([j])))).flat();
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const winner = results.find((r) => r.created)!.id;
    expect(results.every((r) => r.id === winner)).toBe(true);
    expect((await backend.counts(queue)).waiting).toBe(1);
  });

  it("dedupes throttle: ignored for ttlMs after the first, whatever its state", async (test) => {
    const { backend, queue, lease, ctx } = await start();
    if (!backend.dedupeModes?.includes("throttle")) return test.skip("no throttle dedupe");
    const key = { key: "t", mode: "throttle" as const, ttlMs: 800 };
    const a = job(queue, { key });
    expect((await backend.enqueue([a]))[0]).toEqual({ id: a.id, created: true });
    const [ca] = await backend.claim({ queue, worker: "w", leaseMs: lease, max: 1 });
    await backend.settle([{ id: a.id, token: ca!.token, kind: "complete" }]);
    const b = job(queue, { key });
    expect((await backend.enqueue([b]))[0]).toEqual({ id: a.id, created: false, deduped: "ignored" });
    await ctx.wait(900);
    expect((await backend.enqueue([b]))[0]).toEqual({ id: b.id, created: true });
    const c = job(queue, { key });
    expect((await backend.enqueue([c]))[0]).toMatchObject({ id: b.id, created: false });
  });

  it("dedupes debounce: the latest payload replaces the waiting job, which runs ttlMs after the last add", async (test) => {
    const { backend, queue, lease, ctx } = await start();
    if (!backend.dedupeModes?.includes("debounce")) return test.skip("no debounce dedupe");
    const key = { key: "d", mode: "debounce" as const, ttlMs: 600 };
    const a = job(queue, { key, payload: { v: 1 } });
    const b = job(queue, { key, payload: { v: 2 } });
    expect((await backend.enqueue([a]))[0]).toEqual({ id: a.id, created: true });
    const runAt1 = (await mustGet(a.id)).runAt;
    expect(runAt1 - (await mustGet(a.id)).createdAt).toBeGreaterThanOrEqual(600);
    expect(await claimAll(backend, queue, lease)).toEqual([]);
    await ctx.wait(300);
    expect((await backend.enqueue([b]))[0]).toEqual({ id: a.id, created: false, deduped: "replaced" });
    const replaced = await mustGet(a.id);
    expect(replaced.payload).toEqual({ v: 2 });
    expect(replaced.runAt).toBeGreaterThan(runAt1);
    expect(await backend.getJob(b.id)).toBeUndefined();
    await ctx.wait(350); // past the first add's window, not the second's
    expect(await claimAll(backend, queue, lease)).toEqual([]);
    await ctx.wait(400);
    expect(await claimAll(backend, queue, lease)).toEqual([a.id]);
    // Once claimed, a new add is a new job.
    const c = job(queue, { key, payload: { v: 3 } });
    expect((await backend.enqueue([c]))[0]).toEqual({ id: c.id, created: true });
  });

  it("dedupes singleton: every add is stored, at most one job of the key is active", async (test) => {
    const { backend, queue, lease } = await start();
    if (!backend.dedupeModes?.includes("singleton")) return test.skip("no singleton dedupe");
    const key = { key: "s", mode: "singleton" as const };
    const [a, b, c] = [
      job(queue, { key }),
      job(queue, { key }),
      job(queue, { key: { key: "s2", mode: "singleton" } }),
    ];
    expect((await backend.enqueue([a, b, c])).map((r) => r.created)).toEqual([true, true, true]);
    const first = await backend.claim({ queue, worker: "w", leaseMs: lease, max: 5 });
    expect(first.map((x) => x.job.id).sort()).toEqual([a.id, c.id].sort());
    expect(await claimAll(backend, queue, lease)).toEqual([]);
    const ca = first.find((x) => x.job.id === a.id)!;
    await backend.settle([{ id: a.id, token: ca.token, kind: "complete" }]);
    expect(await claimAll(backend, queue, lease)).toEqual([b.id]);
  });

  it("dedupes singleton: a backlog of one held key does not hide the ready jobs behind it", async (test) => {
    const { backend, queue, lease } = await start();
    if (!backend.dedupeModes?.includes("singleton")) return test.skip("no singleton dedupe");
    const key = { key: "busy", mode: "singleton" as const };
    await backend.enqueue(Array.from({ length: 40 }, () => job(queue, { key })));
    const free = job(queue);
    await backend.enqueue([free]);
    expect(await claimAll(backend, queue, lease, 1)).toHaveLength(1); // the key's first job
    expect(await claimAll(backend, queue, lease, 1)).toEqual([free.id]);
    expect(await claimAll(backend, queue, lease, 5)).toEqual([]);
  });

  it("dedupes singleton under a race: concurrent claims hold at most one active job per key", async (test) => {
    const { backend, queue, lease } = await start();
    if (!backend.dedupeModes?.includes("singleton")) return test.skip("no singleton dedupe");
    await backend.enqueue(
      Array.from({ length: 6 }, () => job(queue, { key: { key: "one", mode: "singleton" } })),
    );
    const claims = await Promise.all(
      Array.from({ length: 6 }, (_, i) => backend.claim({ queue, worker: `w${i}`, leaseMs: lease, max: 2 })),
    );
    expect(claims.flat()).toHaveLength(1);
    expect((await backend.counts(queue)).active).toBe(1);
  });

  it("refuses a bad priority or key with schema/invalid", async (test) => {
    const { backend, queue } = await start();
    if (backend.priorities === undefined || backend.dedupeModes === undefined)
      return test.skip("no capability");
    for (const bad of [
      job(queue, { priority: -1 }),
      job(queue, { priority: 1.5 }),
      job(queue, { key: { key: "", mode: "simple" } }),
      job(queue, { key: { key: "k", mode: "throttle" } }),
    ] as NewJob[]) {
      const error = await backend.enqueue([bad]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isNxsError(error), JSON.stringify(bad)).toBe(true);
    }
    expect((await backend.counts(queue)).waiting).toBe(0);
  });

  it("fires a schedule's tick once: atomic, deterministic id, past ticks and spent limits refused", async (test) => {
    const { backend, queue } = await start();
    const schedules = backend.schedules;
    if (schedules === undefined) return test.skip("no schedules capability");
    const spec = {
      id: "every-minute",
      queue,
      cron: "* * * * *",
      tz: "Europe/Berlin",
      payload: { report: "usage" },
      limit: 3,
      job: { maxAttempts: 2, backoff: { type: "fixed" as const, delayMs: 5 }, timeoutMs: 0, priority: 3 },
    };
    const stored = await schedules.put(spec);
    expect(stored).toMatchObject({ ...spec, runs: 0, lastTick: 0 });
    expect((await schedules.list(queue)).map((s) => s.id)).toEqual(["every-minute"]);
    const tick = Math.floor(stored.createdAt / 60_000) * 60_000 + 60_000;
    const jobId = newId();
    const fires = await Promise.all(
      Array.from({ length: 6 }, () => schedules.fire(queue, spec.id, tick, jobId)),
    );
    expect(fires.filter((f) => f.fired)).toHaveLength(1);
    expect(fires.filter((f) => !f.fired).every((f) => f.reason === "past")).toBe(true);
    expect(await mustGet(jobId)).toMatchObject({
      queue,
      state: JobState.Waiting,
      payload: { report: "usage" },
      runAt: tick,
      maxAttempts: 2,
      priority: 3,
    });
    expect(await schedules.fire(queue, spec.id, tick, newId())).toEqual({ fired: false, reason: "past" });
    // A later tick whose job is stored already (replicated from another server): no second job.
    const existing = job(queue);
    await backend.enqueue([existing]);
    expect(await schedules.fire(queue, spec.id, tick + 60_000, existing.id)).toEqual({
      fired: false,
      reason: "exists",
    });
    const second = newId();
    expect(await schedules.fire(queue, spec.id, tick + 120_000, second)).toEqual({ fired: true });
    // The tick whose job was found stored counts as a run: three ticks, three runs.
    expect((await schedules.list(queue))[0]).toMatchObject({ runs: 3, lastTick: tick + 120_000 });
    expect(await schedules.fire(queue, spec.id, tick + 180_000, newId())).toEqual({
      fired: false,
      reason: "limit",
    });
    // Replacing keeps the count and the cursor; removing stops every fire.
    await schedules.put({ ...spec, limit: 5 });
    expect((await schedules.list(queue))[0]).toMatchObject({ runs: 3, lastTick: tick + 120_000, limit: 5 });
    expect(await schedules.remove(queue, spec.id)).toBe(true);
    expect(await schedules.remove(queue, spec.id)).toBe(false);
    expect(await schedules.list(queue)).toEqual([]);
    expect(await schedules.fire(queue, spec.id, tick + 240_000, newId())).toEqual({
      fired: false,
      reason: "gone",
    });
    expect(await backend.getJob(jobId as JobId)).toBeDefined();
  });
}
