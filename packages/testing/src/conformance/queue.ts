import { randomUUID } from "node:crypto";
import { isNxsError } from "@nxs-sync/core";
import {
  type ClaimedJob,
  type JobEvent,
  type JobId,
  type JobRecord,
  JobState,
  jobVersion,
  type NewJob,
  type QueueBackendCapabilities,
} from "@nxs-sync/queue";
import { afterEach, describe, expect, it } from "vitest";
import { flowConformance } from "./queue-flow.js";
import { handoffConformance } from "./queue-handoff.js";
import { schedulingConformance } from "./queue-scheduling.js";
import { createSettleWaits } from "./settle.js";

/** What {@link runQueueBackendConformance} needs for one test. */
export interface QueueConformanceContext {
  /** A backend with no jobs of the queues the test uses (queue names are unique per test). */
  readonly backend: QueueBackendCapabilities;
  /**
   * Lets `ms` of the backend's time pass: a manual scheduler advances; a real server really waits.
   * The suite only calls it to let leases lapse and delays pass, never to wait for a delivery.
   */
  wait(ms: number): Promise<void>;
  /**
   * Lets pending deliveries (watch events) happen once, without moving the backend's clock. The
   * suite calls it in a loop (at most `maxSettleRounds` times) until what it waits for holds: a
   * poll interval, never a bound that decides a check. Default: 10 ms of real time.
   */
  settle?(): Promise<void>;
  /** How many `settle()` rounds a wait may take (default 300). */
  readonly maxSettleRounds?: number;
  /** Lease length the suite claims with, in ms (default 600; keep it short on real servers). */
  readonly leaseMs?: number;
  /** Releases what the test used; called after each test (the backend is closed by the suite). */
  cleanup?(): Promise<void>;
}

/** A fresh job id (15 chars of [a-z0-9]), unique across runs on a persistent server. */
const newId = (): JobId => randomUUID().replace(/-/g, "").slice(0, 15) as JobId;

/** Whether `sub` appears in `all` in order (other items may sit between). */
function isSubsequence(sub: readonly string[], all: readonly string[]): boolean {
  let i = 0;
  for (const x of all) if (x === sub[i]) i++;
  return i === sub.length;
}

/**
 * The conformance suite of the `QueueBackend` port (and its `admin` and `blobs` capabilities): the
 * memory backend runs it in the queue's unit tests with a manual clock, the PocketBase backend
 * against a real server with real time. Leases are short (`leaseMs`, default 600 ms) and every
 * lapse is bounded: no test depends on wall-clock speed beyond a lease lapsing. Registers a vitest
 * `describe` block.
 * @param name - A label of the backend, used in the describe title.
 * @param setup - Called before each test; returns the backend and how to let time pass.
 * @example
 * ```ts
 * import { createMemoryQueueBackend } from "@nxs-sync/queue";
 * runQueueBackendConformance("memory", () => {
 *   const scheduler = createManualScheduler({ now: 1_000_000 });
 *   const backend = createMemoryQueueBackend({ scheduler });
 *   return { backend, wait: async (ms) => { scheduler.advance(ms) } };
 * });
 * ```
 */
export function runQueueBackendConformance(
  name: string,
  setup: () => QueueConformanceContext | Promise<QueueConformanceContext>,
): void {
  describe(`QueueBackend conformance: ${name}`, () => {
    let ctx: QueueConformanceContext | undefined;
    let queueCounter = 0;
    const runTag = randomUUID().slice(0, 8);

    const start = async () => {
      ctx = await setup();
      const lease = ctx.leaseMs ?? 600;
      const queue = `conf-${runTag}-${++queueCounter}`;
      return { ctx, backend: ctx.backend, lease, queue };
    };
    const { eventually } = createSettleWaits(() => ctx);
    const job = (queue: string, over: Partial<NewJob> = {}): NewJob => ({
      id: newId(),
      queue,
      payload: { n: 1 },
      maxAttempts: 3,
      backoff: { type: "fixed", delayMs: 10 },
      timeoutMs: 0,
      ...over,
    });
    const mustGet = async (id: JobId): Promise<JobRecord> => {
      const j = await ctx!.backend.getJob(id);
      expect(j, `job ${id} exists`).toBeDefined();
      return j!;
    };
    const claimOne = async (queue: string, lease: number, worker = "w1"): Promise<ClaimedJob> => {
      const claimed = await ctx!.backend.claim({ queue, worker, leaseMs: lease, max: 1 });
      expect(claimed).toHaveLength(1);
      return claimed[0]!;
    };

    afterEach(async () => {
      await ctx?.backend.close?.();
      await ctx?.cleanup?.();
      ctx = undefined;
    });

    it("enqueues idempotently by id: a second enqueue of an id changes nothing", async () => {
      const { backend, queue } = await start();
      const a = job(queue, { payload: { v: "first" } });
      const res = await backend.enqueue([a, { ...a, payload: { v: "second" } }]);
      expect(res).toEqual([
        { id: a.id, created: true },
        { id: a.id, created: false },
      ]);
      expect(await backend.enqueue([{ ...a, payload: { v: "third" } }])).toEqual([
        { id: a.id, created: false },
      ]);
      const stored = await mustGet(a.id);
      expect(stored).toMatchObject({
        id: a.id,
        queue,
        state: JobState.Waiting,
        payload: { v: "first" },
        attempt: 0,
        attemptsMade: 0,
        maxAttempts: 3,
        generation: 0,
        failures: [],
      });
      expect((await backend.counts(queue)).waiting).toBe(1);
      expect(await backend.getJob(newId())).toBeUndefined();
    });

    it("respects delayMs and runAt: a job is not claimed before its time, and counts as delayed", async () => {
      const { ctx, backend, queue, lease } = await start();
      const probe = job(`${queue}-probe`);
      await backend.enqueue([probe]);
      const t0 = (await mustGet(probe.id)).createdAt;
      const delayed = job(queue, { delayMs: 600 });
      const at = job(queue, { runAt: t0 + 600 });
      await backend.enqueue([delayed, at]);
      expect((await mustGet(delayed.id)).runAt).toBeGreaterThanOrEqual(t0 + 600);
      expect((await mustGet(at.id)).runAt).toBe(t0 + 600);
      expect(await backend.claim({ queue, worker: "w1", leaseMs: lease, max: 5 })).toEqual([]);
      const before = await backend.counts(queue);
      expect(before.delayed).toBe(2);
      expect(before.waiting).toBe(0);
      await ctx.wait(800);
      const claimed = await backend.claim({ queue, worker: "w1", leaseMs: lease, max: 5 });
      expect(claimed.map((c) => c.job.id).sort()).toEqual([delayed.id, at.id].sort());
      expect((await backend.counts(queue)).active).toBe(2);
    });

    it("claims the oldest runAt first, at most `max` per call, each under its own token", async () => {
      const { backend, queue, lease } = await start();
      const probe = job(`${queue}-probe`);
      await backend.enqueue([probe]);
      const t0 = (await mustGet(probe.id)).createdAt;
      const j1 = job(queue, { runAt: t0 - 300 });
      const j2 = job(queue, { runAt: t0 - 100 });
      const j3 = job(queue, { runAt: t0 - 200 });
      await backend.enqueue([j1, j2, j3]);
      const first = await backend.claim({ queue, worker: "w1", leaseMs: lease, max: 2 });
      expect(first.map((c) => c.job.id)).toEqual([j1.id, j3.id]);
      for (const c of first) {
        expect(c.job).toMatchObject({ state: JobState.Active, attempt: 1, attemptsMade: 1, worker: "w1" });
        expect(c.job.leaseUntil).toBeGreaterThan(t0 - 1);
      }
      expect(first[0]!.token).not.toBe(first[1]!.token);
      const rest = await backend.claim({ queue, worker: "w2", leaseMs: lease, max: 5 });
      expect(rest.map((c) => c.job.id)).toEqual([j2.id]);
      expect(await backend.claim({ queue, worker: "w3", leaseMs: lease, max: 5 })).toEqual([]);
      expect(
        await backend.claim({ queue: `${queue}-probe`, worker: "w1", leaseMs: lease, max: 5 }),
      ).toHaveLength(1);
    });

    it("gives distinct winners to concurrent claims (no job claimed twice)", async () => {
      const { backend, queue, lease } = await start();
      const jobs = Array.from({ length: 5 }, () => job(queue));
      await backend.enqueue(jobs);
      const results = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          backend.claim({ queue, worker: `w${i}`, leaseMs: lease * 10, max: 1 + (i % 3) }),
        ),
      );
      const ids = results.flat().map((c) => c.job.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.sort()).toEqual(jobs.map((j) => j.id).sort());
      const counts = await backend.counts(queue);
      expect(counts.active).toBe(5);
      expect(counts.waiting).toBe(0);
    });

    it("renews a lease by heartbeat, which carries progress", async () => {
      const { ctx, backend, queue, lease } = await start();
      const a = job(queue);
      await backend.enqueue([a]);
      const c = await claimOne(queue, lease);
      await ctx.wait(Math.round(lease * 0.6));
      const [beat] = await backend.heartbeat([
        { id: a.id, token: c.token, leaseMs: lease, progress: { pct: 40 } },
      ]);
      expect(beat).toMatchObject({ ok: true, cancelRequested: false });
      if (beat?.ok !== true) throw new Error("heartbeat refused");
      expect(beat.leaseUntil).toBeGreaterThan(c.job.leaseUntil!);
      await ctx.wait(Math.round(lease * 0.6)); // past the first lease, within the renewed one
      const [again] = await backend.heartbeat([{ id: a.id, token: c.token, leaseMs: lease }]);
      expect(again?.ok).toBe(true);
      expect(await backend.claim({ queue, worker: "w2", leaseMs: lease, max: 1 })).toEqual([]);
      const stored = await mustGet(a.id);
      expect(stored).toMatchObject({ state: JobState.Active, progress: { pct: 40 }, attempt: 1 });
      const [done] = await backend.settle([{ id: a.id, token: c.token, kind: "complete", result: "ok" }]);
      expect(done).toEqual({ ok: true, state: JobState.Completed });
    });

    it("takes over a lapsed lease at the next claim (stalled); the old token changes nothing", async () => {
      const { ctx, backend, queue, lease } = await start();
      const events: JobEvent[] = [];
      backend.watch(queue, { onEvent: (e) => events.push(e), onResync: () => {} });
      const a = job(queue);
      await backend.enqueue([a]);
      const old = await claimOne(queue, lease, "w-old");
      await ctx.wait(lease + 200);
      const [lateBeat] = await backend.heartbeat([{ id: a.id, token: old.token, leaseMs: lease }]);
      expect(lateBeat).toEqual({ ok: false, code: "queue/lease-lost" });
      const fresh = await claimOne(queue, lease, "w-new");
      expect(fresh.job).toMatchObject({ id: a.id, attempt: 2, attemptsMade: 2, worker: "w-new" });
      expect(fresh.token).not.toBe(old.token);
      const before = await mustGet(a.id);
      expect(before.failures.map((f) => [f.attempt, f.code])).toEqual([[1, "queue/stalled"]]);
      const refused = await backend.settle([
        { id: a.id, token: old.token, kind: "complete", result: "stale" },
        { id: a.id, token: old.token, kind: "fail", code: "x", message: "stale" },
        { id: a.id, token: old.token, kind: "release" },
      ]);
      expect(refused).toEqual([
        { ok: false, code: "queue/lease-lost" },
        { ok: false, code: "queue/lease-lost" },
        { ok: false, code: "queue/lease-lost" },
      ]);
      expect(await backend.heartbeat([{ id: a.id, token: old.token, leaseMs: lease }])).toEqual([
        { ok: false, code: "queue/lease-lost" },
      ]);
      const after = await mustGet(a.id);
      expect(after).toEqual(before);
      await eventually("a stalled event", () => events.some((e) => e.type === "stalled" && e.id === a.id));
      const [ok] = await backend.settle([{ id: a.id, token: fresh.token, kind: "complete" }]);
      expect(ok).toEqual({ ok: true, state: JobState.Completed });
    });

    it("completes an attempt with its result; the token is spent after settling", async () => {
      const { backend, queue, lease } = await start();
      const a = job(queue);
      await backend.enqueue([a]);
      const c = await claimOne(queue, lease);
      expect(
        await backend.settle([{ id: a.id, token: c.token, kind: "complete", result: { text: "hi" } }]),
      ).toEqual([{ ok: true, state: JobState.Completed }]);
      const done = await mustGet(a.id);
      expect(done).toMatchObject({ state: JobState.Completed, result: { text: "hi" }, attempt: 1 });
      expect(done.finishedAt).toBeDefined();
      expect(done.leaseUntil).toBeUndefined();
      expect(await backend.settle([{ id: a.id, token: c.token, kind: "complete" }])).toEqual([
        { ok: false, code: "queue/lease-lost" },
      ]);
      expect(await backend.heartbeat([{ id: a.id, token: c.token, leaseMs: lease }])).toEqual([
        { ok: false, code: "queue/lease-lost" },
      ]);
      expect(await mustGet(a.id)).toEqual(done);
    });

    it("fails an attempt with retryDelayMs: waits that long, then runs again; without it: dead-lettered", async () => {
      const { ctx, backend, queue, lease } = await start();
      const a = job(queue);
      const b = job(queue);
      await backend.enqueue([a, b]);
      const [ca, cb] = await backend.claim({ queue, worker: "w1", leaseMs: lease, max: 2 });
      const res = await backend.settle([
        {
          id: a.id,
          token: ca!.token,
          kind: "fail",
          code: "app/flaky",
          message: "try again",
          retryDelayMs: 500,
        },
        { id: b.id, token: cb!.token, kind: "fail", code: "app/broken", message: "for good" },
      ]);
      expect(res).toEqual([
        { ok: true, state: JobState.Waiting },
        { ok: true, state: JobState.Failed },
      ]);
      const ja = await mustGet(a.id);
      expect(ja).toMatchObject({ state: JobState.Waiting, attempt: 1, attemptsMade: 1 });
      expect(ja.failures).toMatchObject([{ attempt: 1, code: "app/flaky", message: "try again" }]);
      const jb = await mustGet(b.id);
      expect(jb).toMatchObject({ state: JobState.Failed, reason: "app/broken", attemptsMade: 1 });
      expect(jb.failures).toMatchObject([{ attempt: 1, code: "app/broken", message: "for good" }]);
      expect((await backend.counts(queue)).delayed).toBe(1);
      expect(await backend.claim({ queue, worker: "w1", leaseMs: lease, max: 5 })).toEqual([]);
      await ctx.wait(700);
      const again = await claimOne(queue, lease);
      expect(again.job).toMatchObject({ id: a.id, attempt: 2, attemptsMade: 2 });
    });

    it("dead-letters a job once its attempts are spent, keeping its failure history", async () => {
      const { backend, queue, lease } = await start();
      const a = job(queue, { maxAttempts: 2 });
      await backend.enqueue([a]);
      for (const attempt of [1, 2]) {
        const c = await claimOne(queue, lease);
        expect(c.job.attempt).toBe(attempt);
        await backend.settle([
          {
            id: a.id,
            token: c.token,
            kind: "fail",
            code: "app/e",
            message: `boom ${attempt}`,
            retryDelayMs: 0,
          },
        ]);
      }
      const dead = await mustGet(a.id);
      expect(dead).toMatchObject({ state: JobState.Failed, attempt: 2, attemptsMade: 2, reason: "app/e" });
      expect(dead.failures.map((f) => [f.attempt, f.message])).toEqual([
        [1, "boom 1"],
        [2, "boom 2"],
      ]);
      expect(await backend.claim({ queue, worker: "w1", leaseMs: lease, max: 5 })).toEqual([]);
      expect((await backend.counts(queue)).failed).toBe(1);
    });

    it("dead-letters a stalled job with queue/stalled when no attempt is left", async () => {
      const { ctx, backend, queue, lease } = await start();
      const a = job(queue, { maxAttempts: 1 });
      await backend.enqueue([a]);
      const c = await claimOne(queue, lease);
      await ctx.wait(lease + 200);
      expect(await backend.claim({ queue, worker: "w2", leaseMs: lease, max: 5 })).toEqual([]);
      const dead = await mustGet(a.id);
      expect(dead).toMatchObject({ state: JobState.Failed, reason: "queue/stalled", attempt: 1 });
      expect(dead.failures.map((f) => f.code)).toEqual(["queue/stalled"]);
      expect(await backend.settle([{ id: a.id, token: c.token, kind: "complete" }])).toEqual([
        { ok: false, code: "queue/lease-lost" },
      ]);
    });

    it("retry-later gives the attempt back and reschedules; release makes the job ready at once", async () => {
      const { ctx, backend, queue, lease } = await start();
      const a = job(queue, { maxAttempts: 1 });
      const b = job(queue, { maxAttempts: 1 });
      await backend.enqueue([a, b]);
      const [ca, cb] = await backend.claim({ queue, worker: "w1", leaseMs: lease, max: 2 });
      expect(
        await backend.settle([
          { id: a.id, token: ca!.token, kind: "retry-later", delayMs: 500 },
          { id: b.id, token: cb!.token, kind: "release" },
        ]),
      ).toEqual([
        { ok: true, state: JobState.Waiting },
        { ok: true, state: JobState.Waiting },
      ]);
      expect(await mustGet(a.id)).toMatchObject({ state: JobState.Waiting, attempt: 1, attemptsMade: 0 });
      expect(await mustGet(b.id)).toMatchObject({ state: JobState.Waiting, attempt: 1, attemptsMade: 0 });
      const counts = await backend.counts(queue);
      expect(counts.delayed).toBe(1);
      expect(counts.waiting).toBe(1);
      const rb = await claimOne(queue, lease);
      expect(rb.job).toMatchObject({ id: b.id, attempt: 2, attemptsMade: 1 });
      expect(await backend.claim({ queue, worker: "w1", leaseMs: lease, max: 5 })).toEqual([]);
      await ctx.wait(700);
      const ra = await claimOne(queue, lease);
      expect(ra.job).toMatchObject({ id: a.id, attempt: 2, attemptsMade: 1 });
      expect((await mustGet(a.id)).failures).toEqual([]);
    });

    it("settles and claims in one call (a capability): the settlements first, then the claim", async (test) => {
      const { backend, queue, lease } = await start();
      if (backend.settleAndClaim === undefined) return test.skip("no settleAndClaim capability");
      const [a, b, c] = [job(queue), job(queue), job(queue)];
      await backend.enqueue([a]);
      const ca = await claimOne(queue, lease);
      await backend.enqueue([b]);
      const first = await backend.settleAndClaim(
        [
          { id: a.id, token: ca.token, kind: "complete", result: { ok: 1 } },
          { id: a.id, token: ca.token, kind: "complete" },
        ],
        { queue, worker: "w2", leaseMs: lease, max: 5 },
      );
      // The second settlement meets the token the first one spent.
      expect(first.settled).toEqual([
        { ok: true, state: JobState.Completed },
        { ok: false, code: "queue/lease-lost" },
      ]);
      expect(first.claimed.map((x) => x.job.id)).toEqual([b.id]);
      expect(first.claimed[0]!.job).toMatchObject({ state: JobState.Active, attempt: 1, worker: "w2" });
      expect(await mustGet(a.id)).toMatchObject({ state: JobState.Completed, result: { ok: 1 } });
      // A job released by the call is ready at once: the same call may claim it again.
      const cb = first.claimed[0]!;
      await backend.enqueue([c]);
      const second = await backend.settleAndClaim([{ id: b.id, token: cb.token, kind: "release" }], {
        queue,
        worker: "w2",
        leaseMs: lease,
        max: 5,
      });
      expect(second.settled).toEqual([{ ok: true, state: JobState.Waiting }]);
      expect(second.claimed.map((x) => x.job.id).sort()).toEqual([b.id, c.id].sort());
      const again = second.claimed.find((x) => x.job.id === b.id)!;
      expect(again.job).toMatchObject({ attempt: 2, attemptsMade: 1 });
      // Nothing to settle: a plain claim.
      const none = await backend.settleAndClaim([], { queue, worker: "w2", leaseMs: lease, max: 5 });
      expect(none).toEqual({ settled: [], claimed: [] });
      expect(await backend.counts(queue)).toMatchObject({ active: 2, completed: 1, waiting: 0 });
    });

    it("settles and claims all or nothing: a refused claim leaves the settlements undone", async (test) => {
      const { backend, queue, lease } = await start();
      if (backend.settleAndClaim === undefined) return test.skip("no settleAndClaim capability");
      const a = job(queue);
      await backend.enqueue([a, job(queue)]);
      const ca = await claimOne(queue, lease);
      const refused = await backend
        .settleAndClaim([{ id: a.id, token: ca.token, kind: "complete" }], {
          queue,
          worker: "w1",
          leaseMs: 0,
          max: 1,
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(isNxsError(refused), `refused with an NxsError: ${String(refused)}`).toBe(true);
      expect(await mustGet(a.id)).toMatchObject({ state: JobState.Active, attempt: 1 });
      expect(await backend.counts(queue)).toMatchObject({ active: 1, waiting: 1, completed: 0 });
      expect(await backend.settle([{ id: a.id, token: ca.token, kind: "complete" }])).toEqual([
        { ok: true, state: JobState.Completed },
      ]);
    });

    it("cancels a waiting job at once and flags an active one (seen at its heartbeat)", async (test) => {
      const { backend, queue, lease } = await start();
      const admin = backend.admin;
      if (admin === undefined) return test.skip("no admin capability");
      const w = job(queue, { delayMs: 10_000 });
      const a = job(queue);
      await backend.enqueue([w, a]);
      expect(await admin.cancel(w.id, "not needed")).toBe(JobState.Cancelled);
      expect(await mustGet(w.id)).toMatchObject({ state: JobState.Cancelled });
      const c = await claimOne(queue, lease);
      expect(await admin.cancel(a.id, "operator")).toBe(JobState.Active);
      expect((await mustGet(a.id)).cancelRequested).toBe(true);
      const [beat] = await backend.heartbeat([{ id: a.id, token: c.token, leaseMs: lease }]);
      expect(beat).toMatchObject({ ok: true, cancelRequested: true });
      expect(await backend.settle([{ id: a.id, token: c.token, kind: "cancelled" }])).toEqual([
        { ok: true, state: JobState.Cancelled },
      ]);
      const cancelled = await mustGet(a.id);
      expect(cancelled.state).toBe(JobState.Cancelled);
      expect(cancelled.finishedAt).toBeDefined();
      expect(await admin.cancel(a.id, "again")).toBe(JobState.Cancelled);
      expect(await admin.cancel(newId(), "unknown")).toBeUndefined();
      expect((await backend.counts(queue)).cancelled).toBe(2);
    });

    it("redrives dead-lettered jobs: next generation, attempt 0, a fresh budget", async (test) => {
      const { backend, queue, lease } = await start();
      const admin = backend.admin;
      if (admin === undefined) return test.skip("no admin capability");
      const jobs = [
        job(queue, { maxAttempts: 1 }),
        job(queue, { maxAttempts: 1 }),
        job(queue, { maxAttempts: 1 }),
      ];
      await backend.enqueue(jobs);
      const claimed = await backend.claim({ queue, worker: "w1", leaseMs: lease, max: 3 });
      await backend.settle(
        claimed.map((c) => ({
          id: c.job.id,
          token: c.token,
          kind: "fail" as const,
          code: "e",
          message: "m",
        })),
      );
      expect((await backend.counts(queue)).failed).toBe(3);
      expect(await admin.redrive(queue, { ids: [jobs[0]!.id] })).toBe(1);
      expect(await mustGet(jobs[0]!.id)).toMatchObject({
        state: JobState.Waiting,
        generation: 1,
        attempt: 0,
        attemptsMade: 0,
      });
      expect(await admin.redrive(queue, { limit: 1 })).toBe(1);
      expect(await admin.redrive(queue)).toBe(1);
      expect(await admin.redrive(queue)).toBe(0);
      const again = await backend.claim({ queue, worker: "w2", leaseMs: lease, max: 5 });
      expect(again).toHaveLength(3);
      for (const c of again) expect(c.job).toMatchObject({ generation: 1, attempt: 1, attemptsMade: 1 });
      expect((await mustGet(jobs[0]!.id)).failures.length).toBeGreaterThanOrEqual(1);
    });

    it("cleans only terminal jobs of the given states finished before a time", async (test) => {
      const { backend, queue, lease } = await start();
      const admin = backend.admin;
      if (admin === undefined) return test.skip("no admin capability");
      const done = job(queue);
      const dead = job(queue);
      const waiting = job(queue, { delayMs: 60_000 });
      const active = job(queue);
      await backend.enqueue([done, dead]);
      const [cd, cf] = await backend.claim({ queue, worker: "w1", leaseMs: lease * 10, max: 2 });
      await backend.settle([
        { id: cd!.job.id, token: cd!.token, kind: "complete" },
        { id: cf!.job.id, token: cf!.token, kind: "fail", code: "e", message: "m" },
      ]);
      await backend.enqueue([waiting, active]);
      await backend.claim({ queue, worker: "w1", leaseMs: lease * 10, max: 1 });
      const finished = Math.max((await mustGet(done.id)).finishedAt!, (await mustGet(dead.id)).finishedAt!);
      const all = [
        JobState.Completed,
        JobState.Failed,
        JobState.Waiting,
        JobState.Active,
        JobState.Cancelled,
      ];
      expect(await admin.clean(queue, { states: all, before: finished - 60_000 })).toBe(0);
      expect(await admin.clean(queue, { states: [JobState.Completed], before: finished + 1 })).toBe(1);
      expect(await backend.getJob(done.id)).toBeUndefined();
      expect(await admin.clean(queue, { states: all, before: finished + 1 })).toBe(1);
      expect(await backend.getJob(dead.id)).toBeUndefined();
      expect(await backend.getJob(waiting.id)).toBeDefined();
      expect(await backend.getJob(active.id)).toBeDefined();
    });

    it("counts every state of one queue, delayed apart from waiting, and no other queue's jobs", async (test) => {
      const { backend, queue, lease } = await start();
      const admin = backend.admin;
      if (admin === undefined) return test.skip("no admin capability");
      await backend.enqueue([job(queue), job(queue), job(queue), job(queue, { delayMs: 60_000 })]);
      await backend.enqueue([job(`${queue}-other`)]);
      const claimed = await backend.claim({ queue, worker: "w1", leaseMs: lease * 10, max: 5 });
      expect(claimed).toHaveLength(3);
      await backend.settle([
        { id: claimed[0]!.job.id, token: claimed[0]!.token, kind: "complete" },
        { id: claimed[1]!.job.id, token: claimed[1]!.token, kind: "fail", code: "e", message: "m" },
      ]);
      const cancelled = job(queue);
      await backend.enqueue([cancelled, job(queue)]);
      await admin.cancel(cancelled.id, "x");
      expect(await backend.counts(queue)).toEqual({
        waiting: 1,
        delayed: 1,
        active: 1,
        completed: 1,
        failed: 1,
        cancelled: 1,
      });
    });

    it("lists a queue's jobs by ascending id, filtered by state, in pages", async (test) => {
      const { backend, queue } = await start();
      const admin = backend.admin;
      if (admin === undefined) return test.skip("no admin capability");
      const jobs = Array.from({ length: 5 }, () => job(queue));
      await backend.enqueue(jobs);
      await backend.enqueue([job(`${queue}-other`)]);
      const ids = jobs.map((j) => j.id).sort();
      const page1 = await admin.list(queue, { limit: 3 });
      expect(page1.map((j) => j.id)).toEqual(ids.slice(0, 3));
      const page2 = await admin.list(queue, { limit: 3, after: page1.at(-1)!.id });
      expect(page2.map((j) => j.id)).toEqual(ids.slice(3));
      expect(await admin.list(queue, { state: JobState.Active })).toEqual([]);
    });

    it("tells watchers one job's events in order", async () => {
      const { backend, queue, lease } = await start();
      const events: JobEvent[] = [];
      let resyncs = 0;
      const stop = backend.watch(queue, {
        onEvent: (e) => events.push(e),
        onResync: () => {
          resyncs++;
        },
      });
      await eventually("the first onResync", () => resyncs > 0);
      const a = job(queue);
      await backend.enqueue([a]);
      const c = await claimOne(queue, lease, "w-watch");
      await backend.heartbeat([{ id: a.id, token: c.token, leaseMs: lease, progress: { step: 1 } }]);
      await backend.settle([{ id: a.id, token: c.token, kind: "complete", result: 7 }]);
      const sentinel = job(queue);
      await backend.enqueue([sentinel]);
      await eventually("the sentinel's added event", () =>
        events.some((e) => e.type === "added" && e.id === sentinel.id),
      );
      const mine = events.filter((e) => e.id === a.id);
      expect(
        isSubsequence(
          ["added", "active", "progress", "completed"],
          mine.map((e) => e.type),
        ),
      ).toBe(true);
      expect(mine.find((e) => e.type === "active")).toMatchObject({ attempt: 1, worker: "w-watch" });
      expect(mine.find((e) => e.type === "progress")).toMatchObject({ progress: { step: 1 } });
      expect(events.some((e) => e.id !== a.id && e.id !== sentinel.id)).toBe(false);
      stop();
      const late = job(queue);
      const other = job(queue);
      await backend.enqueue([late]);
      const probe: JobEvent[] = [];
      backend.watch(queue, { onEvent: (e) => probe.push(e), onResync: () => {} });
      await backend.enqueue([other]);
      await eventually("the probe's added event", () => probe.some((e) => e.id === other.id));
      expect(events.some((e) => e.id === late.id || e.id === other.id)).toBe(false);
    });

    it("tells a readyOnly watcher only what makes a job ready (added, waiting), and resyncs it", async () => {
      const { backend, queue, lease } = await start();
      const ready: JobEvent[] = [];
      let resyncs = 0;
      backend.watch(
        queue,
        {
          onEvent: (e) => ready.push(e),
          onResync: () => {
            resyncs++;
          },
        },
        { readyOnly: true },
      );
      await eventually("the first onResync", () => resyncs > 0);
      const a = job(queue, { maxAttempts: 2 });
      await backend.enqueue([a]);
      let c = await claimOne(queue, lease);
      await backend.heartbeat([{ id: a.id, token: c.token, leaseMs: lease, progress: { step: 1 } }]);
      await backend.settle([
        { id: a.id, token: c.token, kind: "fail", code: "e", message: "m", retryDelayMs: 0 },
      ]);
      c = await claimOne(queue, lease);
      await backend.settle([{ id: a.id, token: c.token, kind: "complete" }]);
      const sentinel = job(queue);
      await backend.enqueue([sentinel]);
      await eventually("the sentinel's added event", () => ready.some((e) => e.id === sentinel.id));
      const mine = ready.filter((e) => e.id === a.id).map((e) => e.type);
      expect(mine[0]).toBe("added");
      expect(mine).toContain("waiting");
      expect(ready.every((e) => e.type === "added" || e.type === "waiting")).toBe(true);
    });

    it("tells watchers of retries (failed, not final, then waiting) and of dead-lettering", async () => {
      const { backend, queue, lease } = await start();
      const events: JobEvent[] = [];
      backend.watch(queue, { onEvent: (e) => events.push(e), onResync: () => {} });
      const a = job(queue, { maxAttempts: 2 });
      await backend.enqueue([a]);
      for (let i = 0; i < 2; i++) {
        const c = await claimOne(queue, lease);
        await backend.settle([
          { id: a.id, token: c.token, kind: "fail", code: "e", message: "m", retryDelayMs: 0 },
        ]);
      }
      await eventually("the final failed event", () =>
        events.some((e) => e.type === "failed" && e.id === a.id && e.final),
      );
      const failed = events.filter((e) => e.type === "failed");
      expect(failed.map((e) => e.type === "failed" && e.final)).toEqual([false, true]);
      expect(events.some((e) => e.type === "waiting" && e.id === a.id)).toBe(true);
    });

    it("raises the job's version strictly on every write", async (test) => {
      const { ctx, backend, queue, lease } = await start();
      const admin = backend.admin;
      if (admin === undefined) return test.skip("no admin capability");
      const a = job(queue, { maxAttempts: 2 });
      await backend.enqueue([a]);
      const versions: string[] = [jobVersion(await mustGet(a.id))];
      const step = async (what: string): Promise<void> => {
        const v = jobVersion(await mustGet(a.id));
        expect(v > versions.at(-1)!, `${what}: ${v} > ${versions.at(-1)}`).toBe(true);
        versions.push(v);
      };
      let c = await claimOne(queue, lease);
      await step("claim");
      await backend.heartbeat([{ id: a.id, token: c.token, leaseMs: lease }]);
      await step("heartbeat");
      await backend.heartbeat([{ id: a.id, token: c.token, leaseMs: lease, progress: 1 }]);
      await step("progress");
      await backend.settle([{ id: a.id, token: c.token, kind: "retry-later", delayMs: 0 }]);
      await step("retry-later");
      c = await claimOne(queue, lease);
      await step("claim after retry-later");
      await backend.settle([{ id: a.id, token: c.token, kind: "release" }]);
      await step("release");
      c = await claimOne(queue, lease);
      await step("claim after release");
      await backend.settle([
        { id: a.id, token: c.token, kind: "fail", code: "e", message: "m", retryDelayMs: 0 },
      ]);
      await step("fail with retry");
      c = await claimOne(queue, lease);
      await step("claim after fail");
      await ctx.wait(lease + 200);
      expect(await backend.claim({ queue, worker: "w2", leaseMs: lease, max: 1 })).toEqual([]);
      await step("stalled, dead-lettered");
      expect(await admin.redrive(queue, { ids: [a.id] })).toBe(1);
      await step("redrive");
      c = await claimOne(queue, lease);
      await step("claim after redrive");
      await admin.cancel(a.id, "op");
      await step("cancel requested");
      await backend.settle([{ id: a.id, token: c.token, kind: "cancelled" }]);
      await step("cancelled");
      const b = job(queue);
      await backend.enqueue([b]);
      const vb = jobVersion(await mustGet(b.id));
      await admin.cancel(b.id, "op");
      expect(jobVersion(await mustGet(b.id)) > vb).toBe(true);
      const d = job(queue);
      await backend.enqueue([d]);
      const cd = await claimOne(queue, lease);
      const vd = jobVersion(await mustGet(d.id));
      await backend.settle([{ id: d.id, token: cd.token, kind: "complete" }]);
      expect(jobVersion(await mustGet(d.id)) > vd).toBe(true);
    });

    it("stores blobs up to maxBytes and refuses larger ones with queue/too-large", async (test) => {
      const { backend } = await start();
      const blobs = backend.blobs;
      if (blobs === undefined) return test.skip("no blobs capability");
      const bytes = new Uint8Array(1024).map((_, i) => i % 251);
      const ref = await blobs.put(bytes, { contentType: "audio/wav" });
      expect(ref).toMatchObject({ size: 1024, contentType: "audio/wav" });
      expect(typeof ref.$blob).toBe("string");
      expect(JSON.parse(JSON.stringify(ref))).toEqual(ref);
      expect(await blobs.get(ref)).toEqual(bytes);
      await blobs.delete(ref);
      expect(await blobs.get(ref)).toBeUndefined();
      await blobs.delete(ref);
      const tooBig = new Uint8Array(blobs.maxBytes + 1);
      const error = await blobs.put(tooBig).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isNxsError(error) && error.code).toBe("queue/too-large");
    });

    schedulingConformance({ start, job, mustGet, newId });
    flowConformance({ start, job, mustGet, newId });
    handoffConformance({ start, job, mustGet, newId, eventually });
  });
}
