/**
 * The flow-control part of the queue conformance suite (issue 22 items 4-6): concurrency limits
 * and rate limits per queue and per group, pause and resume, and a `RetryLaterError` that pauses
 * its group. Registered inside `runQueueBackendConformance`; every test needs the `flow` capability.
 */
import { isNxsError } from "@nxs-sync/core";
import { type ClaimedJobs, JobState, type QueueBackendCapabilities, type QueueFlow } from "@nxs-sync/queue";
import { expect, it, type TestContext } from "vitest";
import type { QueueConformanceHelpers } from "./queue-scheduling.js";

/**
 * Registers the flow-control tests (inside the suite's `describe`).
 * @param h - The suite's helpers.
 */
export function flowConformance(h: QueueConformanceHelpers): void {
  const { start, job, mustGet } = h;
  const claim = (
    backend: QueueBackendCapabilities,
    queue: string,
    lease: number,
    max = 10,
  ): Promise<ClaimedJobs> => backend.claim({ queue, worker: "w", leaseMs: lease, max });
  const groupsOf = (claimed: ClaimedJobs): string[] => claimed.map((c) => c.job.group ?? "-").sort();
  /** The suite's backend and its flow capability; a backend without it skips the test. */
  const flowOf = async (test: TestContext) => {
    const s = await start();
    if (s.backend.flow === undefined) test.skip("no flow capability");
    return { ...s, flow: s.backend.flow as QueueFlow };
  };

  it("limits concurrency per queue: a claim takes no more than the slots left, and an ended job frees one", async (test) => {
    const { backend, queue, lease, flow } = await flowOf(test);
    const record = await flow.setLimits(queue, "", { concurrency: 2 });
    expect(record).toMatchObject({ queue, group: "", concurrency: 2, paused: false, pausedUntil: 0 });
    await backend.enqueue([job(queue), job(queue), job(queue), job(queue)]);
    const first = await claim(backend, queue, lease);
    expect(first).toHaveLength(2);
    // A concurrency hold has no known end: no waitMs.
    const none = await claim(backend, queue, lease);
    expect(none).toHaveLength(0);
    expect(none.waitMs).toBeUndefined();
    const done = first[0]!;
    await backend.settle([{ id: done.job.id, token: done.token, kind: "complete" }]);
    expect(await claim(backend, queue, lease)).toHaveLength(1);
    // Removing the limit ({}) lets the rest go.
    await flow.setLimits(queue, "", {});
    expect(await claim(backend, queue, lease)).toHaveLength(1);
  });

  it("limits concurrency per group, for one group and for each group (*), beside ungrouped jobs", async (test) => {
    const { backend, queue, lease, flow } = await flowOf(test);
    await flow.setLimits(queue, "a", { concurrency: 1 });
    await flow.setLimits(queue, "*", { concurrency: 2 });
    const jobs = [
      ...["a", "a", "a", "b", "b", "b", "c", "c", "c"].map((group) => job(queue, { group })),
      job(queue),
      job(queue),
    ];
    await backend.enqueue(jobs);
    expect((await mustGet(jobs[0]!.id)).group).toBe("a");
    const claimed = await claim(backend, queue, lease, 20);
    expect(groupsOf(claimed)).toEqual(["-", "-", "a", "b", "b", "c", "c"]);
    expect(await claim(backend, queue, lease, 20)).toHaveLength(0);
    // Each group's own count: ending a b job frees a b slot only.
    const b = claimed.find((c) => c.job.group === "b")!;
    await backend.settle([{ id: b.job.id, token: b.token, kind: "complete" }]);
    expect(groupsOf(await claim(backend, queue, lease, 20))).toEqual(["b"]);
    const records = await flow.list(queue);
    expect(records.map((r) => [r.group, r.concurrency])).toEqual([
      ["*", 2],
      ["a", 1],
    ]);
  });

  it("holds a group limit under concurrent claims: 6 claimers at once never pass it", async (test) => {
    const { backend, queue, lease, flow } = await flowOf(test);
    await flow.setLimits(queue, "p", { concurrency: 3 });
    await backend.enqueue(Array.from({ length: 12 }, () => job(queue, { group: "p" })));
    const results = await Promise.all(Array.from({ length: 6 }, () => claim(backend, queue, lease, 2)));
    expect(results.flat()).toHaveLength(3);
  });

  it("rate-limits a queue over a sliding window, answers when to claim again, and frees the window in time", async (test) => {
    const { backend, queue, lease, flow, ctx } = await flowOf(test);
    const intervalMs = 2000;
    await flow.setLimits(queue, "", { rate: { max: 3, intervalMs } });
    await backend.enqueue(Array.from({ length: 5 }, () => job(queue)));
    const first = await claim(backend, queue, Math.max(lease, 10_000));
    expect(first).toHaveLength(3);
    // Settling does not give rate back: the window counts claims, not running jobs.
    await backend.settle(first.map((c) => ({ id: c.job.id, token: c.token, kind: "complete" as const })));
    const held = await claim(backend, queue, lease);
    expect(held).toHaveLength(0);
    expect(held.waitMs).toBeGreaterThan(0);
    expect(held.waitMs).toBeLessThanOrEqual(intervalMs);
    await ctx.wait(held.waitMs! + 100);
    expect(await claim(backend, queue, lease)).toHaveLength(2);
  });

  it("rate-limits a group by weight; a job heavier than the whole window is dead-lettered (queue/over-limit)", async (test) => {
    const { backend, queue, lease, flow } = await flowOf(test);
    await flow.setLimits(queue, "llm", { rate: { max: 10, intervalMs: 60_000 } });
    const heavy = job(queue, { group: "llm", weight: 11 });
    const jobs = [job(queue, { group: "llm", weight: 4 }), job(queue, { group: "llm", weight: 4 })];
    const third = job(queue, { group: "llm", weight: 4 });
    const light = job(queue, { group: "llm", weight: 2 });
    const other = job(queue, { group: "tts", weight: 50 });
    await backend.enqueue([heavy, ...jobs, third, light, other]);
    expect((await mustGet(jobs[0]!.id)).weight).toBe(4);
    const claimed = await claim(backend, queue, lease, 20);
    // 4 + 4 = 8; the third (4) would pass 10, the light one (2) fits; tts has no limit.
    expect(claimed.map((c) => c.job.id).sort()).toEqual(
      [jobs[0]!.id, jobs[1]!.id, light.id, other.id].sort(),
    );
    const dead = await mustGet(heavy.id);
    expect(dead.state).toBe(JobState.Failed);
    expect(dead.reason).toBe("queue/over-limit");
    expect((await mustGet(third.id)).state).toBe(JobState.Waiting);
  });

  it("pauses and resumes a queue and a group; a pause takes no running job back", async (test) => {
    const { backend, queue, lease, flow } = await flowOf(test);
    await backend.enqueue([
      job(queue, { group: "a" }),
      job(queue, { group: "a" }),
      job(queue, { group: "b" }),
    ]);
    const running = await claim(backend, queue, lease, 1);
    expect(running).toHaveLength(1);
    const paused = await flow.pause(queue, "", { reason: "maintenance" });
    expect(paused).toMatchObject({ group: "", paused: true, reason: "maintenance" });
    const none = await claim(backend, queue, lease);
    expect(none).toHaveLength(0);
    expect(none.waitMs).toBeUndefined();
    // The running job's lease is its own: it still settles.
    const r = running[0]!;
    expect(await backend.heartbeat([{ id: r.job.id, token: r.token, leaseMs: lease }])).toMatchObject([
      { ok: true },
    ]);
    const resumed = await flow.resume(queue, "");
    expect(resumed).toMatchObject({ paused: false, pausedUntil: 0 });
    await flow.pause(queue, "a");
    const claimed = await claim(backend, queue, lease);
    expect(groupsOf(claimed)).toEqual(["b"]);
    await flow.resume(queue, "a");
    expect(groupsOf(await claim(backend, queue, lease))).toEqual(["a"]);
  });

  it("a timed pause ends by itself, and the claim says when", async (test) => {
    const { backend, queue, lease, flow, ctx } = await flowOf(test);
    await backend.enqueue([job(queue, { group: "g" })]);
    const r = await flow.pause(queue, "g", { forMs: 800 });
    expect(r.pausedUntil).toBeGreaterThan(0);
    const held = await claim(backend, queue, lease);
    expect(held).toHaveLength(0);
    expect(held.waitMs).toBeGreaterThan(0);
    expect(held.waitMs).toBeLessThanOrEqual(800);
    await ctx.wait(held.waitMs! + 100);
    expect(await claim(backend, queue, lease)).toHaveLength(1);
  });

  it("a retry-later settlement with pauseGroup pauses the job's group for its delay, not the others", async (test) => {
    const { backend, queue, lease, flow, ctx } = await flowOf(test);
    const [a1, a2, b1] = [job(queue, { group: "a" }), job(queue, { group: "a" }), job(queue, { group: "b" })];
    await backend.enqueue([a1!]);
    const [c] = await claim(backend, queue, lease, 1);
    await backend.enqueue([a2!, b1!]);
    expect(
      await backend.settle([
        { id: c!.job.id, token: c!.token, kind: "retry-later", delayMs: 900, pauseGroup: true },
      ]),
    ).toMatchObject([{ ok: true, state: JobState.Waiting }]);
    const record = (await flow.list(queue)).find((x) => x.group === "a");
    expect(record?.pausedUntil).toBeGreaterThan(0);
    // A lease that outlasts the wait below (a lapsed one would be taken over again).
    const during = await claim(backend, queue, 30_000);
    expect(groupsOf(during)).toEqual(["b"]);
    expect(during.waitMs).toBeGreaterThan(0);
    await ctx.wait(1000);
    expect(groupsOf(await claim(backend, queue, lease))).toEqual(["a", "a"]);
  });

  it("refuses bad limits, a pause of *, and a job group of * (schema/invalid)", async (test) => {
    const { backend, queue, flow } = await flowOf(test);
    const invalid = async (p: Promise<unknown>) => {
      const e = await p.then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isNxsError(e) && e.code).toBe("schema/invalid");
    };
    await invalid(flow.setLimits(queue, "", { concurrency: 0 }));
    await invalid(flow.setLimits(queue, "", { rate: { max: 0, intervalMs: 1000 } }));
    await invalid(flow.setLimits(queue, "", { rate: { max: 5, intervalMs: 0 } }));
    await invalid(flow.pause(queue, "*"));
    await invalid(flow.pause(queue, "", { forMs: -1 }));
    await invalid(backend.enqueue([job(queue, { group: "*" })]));
    await invalid(backend.enqueue([job(queue, { weight: 0 })]));
    expect(await flow.list(queue)).toEqual([]);
  });
}
