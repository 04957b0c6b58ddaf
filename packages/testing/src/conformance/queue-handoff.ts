/**
 * The hand-off part of the queue conformance suite (issue 16: enqueue-to-start latency): a
 * worker whose claim left it free slots is parked; a ready job added meanwhile is claimed for it
 * by the add and told to its watch; lost hand-offs come back with its next claim; nothing is handed
 * after the park ends. Registered inside `runQueueBackendConformance`; every test needs the
 * `handoff` capability.
 */
import {
  type ClaimedJob,
  JobState,
  type QueueBackendCapabilities,
  type QueueHandoff,
  type QueueWatcher,
} from "@nxs-sync/queue";
import { expect, it, type TestContext } from "vitest";
import type { QueueConformanceHelpers } from "./queue-scheduling.js";

/** The suite's helpers, and its wait for an asynchronous delivery. */
export interface HandoffConformanceHelpers extends QueueConformanceHelpers {
  eventually(what: string, condition: () => boolean): Promise<void>;
}

/**
 * Registers the hand-off tests (inside the suite's `describe`).
 * @param h - The suite's helpers.
 */
export function handoffConformance(h: HandoffConformanceHelpers): void {
  const { start, job, mustGet, eventually } = h;
  /** The suite's backend and its handoff capability; a backend without it skips the test. */
  const handoffOf = async (test: TestContext) => {
    const s = await start();
    if (s.backend.handoff === undefined) test.skip("no handoff capability");
    return { ...s, handoff: s.backend.handoff as QueueHandoff };
  };
  const park = (id: string, ttlMs = 60_000, holding: readonly string[] = []) => ({
    id: `park.${id}`,
    ttlMs,
    holding: holding as never,
  });
  /** A worker's wake-up watch with hand-offs; resolves once it is connected (its first resync). */
  const watchHandoffs = async (backend: QueueBackendCapabilities, queue: string) => {
    const got: { parkId: string; claimed: ClaimedJob }[] = [];
    let resyncs = 0;
    const watcher: QueueWatcher = {
      onEvent: () => {},
      onResync: () => {
        resyncs++;
      },
      onHandoff: (x) => {
        got.push(x);
      },
    };
    const stop = backend.watch(queue, watcher, { readyOnly: true, handoffs: true });
    await eventually("the hand-off watch connected", () => resyncs > 0);
    return { got, stop };
  };

  it("hands a job added while a worker is parked to it: its watch gets the claim, no one else can claim it, its token settles it", async (test) => {
    const { backend, queue, lease } = await handoffOf(test);
    const { got, stop } = await watchHandoffs(backend, queue);
    try {
      const p = park("conf-a");
      expect(await backend.claim({ queue, worker: "w", leaseMs: lease * 20, max: 2, park: p })).toEqual([]);
      const a = job(queue);
      await backend.enqueue([a]);
      await eventually("a's hand-off", () => got.some((x) => x.claimed.job.id === a.id));
      const handed = got.find((x) => x.claimed.job.id === a.id)!;
      expect(handed.parkId).toBe(p.id);
      expect(handed.claimed.job).toMatchObject({ id: a.id, state: JobState.Active, attempt: 1, worker: "w" });
      expect(await mustGet(a.id)).toMatchObject({ state: JobState.Active, worker: "w", attempt: 1 });
      // Nobody else claims it: it is the parked worker's attempt.
      expect(await backend.claim({ queue, worker: "w2", leaseMs: lease, max: 5 })).toEqual([]);
      // Two slots: the next job is handed too, the one after it waits for a claim.
      const b = job(queue);
      const c = job(queue);
      await backend.enqueue([b, c]);
      await eventually("b's hand-off", () => got.some((x) => x.claimed.job.id === b.id));
      expect((await mustGet(c.id)).state).toBe(JobState.Waiting);
      expect(got.some((x) => x.claimed.job.id === c.id)).toBe(false);
      const [done] = await backend.settle([
        { id: a.id, token: handed.claimed.token, kind: "complete", result: 1 },
      ]);
      expect(done).toMatchObject({ ok: true });
      expect(await mustGet(a.id)).toMatchObject({ state: JobState.Completed, result: 1 });
      expect(
        (await backend.claim({ queue, worker: "w2", leaseMs: lease, max: 5 })).map((x) => x.job.id),
      ).toEqual([c.id]);
    } finally {
      stop();
    }
  });

  it("answers a hand-off whose event was lost to the worker's next claim with its park, not the ones it holds", async (test) => {
    const { backend, queue, lease } = await handoffOf(test);
    const p = park("conf-lost");
    expect(await backend.claim({ queue, worker: "w", leaseMs: lease * 20, max: 3, park: p })).toEqual([]);
    const a = job(queue);
    const b = job(queue);
    await backend.enqueue([a, b]);
    // No watch: both events are lost. The worker holds a (say, from an event), not b.
    expect((await mustGet(a.id)).state).toBe(JobState.Active);
    expect((await mustGet(b.id)).state).toBe(JobState.Active);
    const again = await backend.claim({
      queue,
      worker: "w",
      leaseMs: lease * 20,
      max: 3,
      park: park("conf-lost", 60_000, [a.id]),
    });
    expect(again.map((x) => x.job.id)).toEqual([b.id]);
    const [beat] = await backend.heartbeat([{ id: b.id, token: again[0]!.token, leaseMs: lease * 20 }]);
    expect(beat).toMatchObject({ ok: true });
    // Another worker's claim, or the same worker's without its park, is not answered them.
    expect(await backend.claim({ queue, worker: "w2", leaseMs: lease, max: 3, park: p })).toEqual([]);
    expect(await backend.claim({ queue, worker: "w", leaseMs: lease, max: 3 })).toEqual([]);
  });

  it("hands off nothing after the park's ttl, a full claim, or to delayed, singleton-keyed or flow-limited jobs", async (test) => {
    const { ctx, backend, queue, lease } = await handoffOf(test);
    // A park with a short ttl: a job added after it ends waits for a claim.
    expect(
      await backend.claim({ queue, worker: "w", leaseMs: lease * 20, max: 5, park: park("conf-ttl", 300) }),
    ).toEqual([]);
    await ctx.wait(500);
    const late = job(queue);
    await backend.enqueue([late]);
    expect((await mustGet(late.id)).state).toBe(JobState.Waiting);
    // A full claim leaves no free slot: the worker is not parked.
    const full = await backend.claim({
      queue,
      worker: "w",
      leaseMs: lease * 20,
      max: 1,
      park: park("conf-full"),
    });
    expect(full.map((x) => x.job.id)).toEqual([late.id]);
    const next = job(queue);
    await backend.enqueue([next]);
    expect((await mustGet(next.id)).state).toBe(JobState.Waiting);
    expect(
      (await backend.claim({ queue, worker: "w", leaseMs: lease, max: 5 })).map((x) => x.job.id),
    ).toEqual([next.id]);
    // Parked again: a delayed job and a singleton-keyed job wait for the claim that checks them.
    expect(
      await backend.claim({ queue, worker: "w", leaseMs: lease * 20, max: 5, park: park("conf-kinds") }),
    ).toEqual([]);
    const delayed = job(queue, { delayMs: 60_000 });
    await backend.enqueue([delayed]);
    expect((await mustGet(delayed.id)).state).toBe(JobState.Waiting);
    if (backend.dedupeModes?.includes("singleton") === true) {
      const single = job(queue, { key: { key: "k", mode: "singleton" } });
      await backend.enqueue([single]);
      expect((await mustGet(single.id)).state).toBe(JobState.Waiting);
    }
    // A queue with flow records: its claims' flow gate decides, so nothing is handed off.
    if (backend.flow !== undefined) {
      await backend.flow.setLimits(queue, "", { concurrency: 10 });
      const limited = job(queue);
      await backend.enqueue([limited]);
      expect((await mustGet(limited.id)).state).toBe(JobState.Waiting);
    }
  });

  it("unpark ends the park and answers the jobs handed to it that the worker does not hold", async (test) => {
    const { backend, queue, lease, handoff } = await handoffOf(test);
    const p = park("conf-unpark");
    expect(await backend.claim({ queue, worker: "w", leaseMs: lease * 20, max: 3, park: p })).toEqual([]);
    const a = job(queue);
    await backend.enqueue([a]);
    expect((await mustGet(a.id)).state).toBe(JobState.Active);
    const unseen = await handoff.unpark({ queue, worker: "w", park: p });
    expect(unseen.map((x) => x.job.id)).toEqual([a.id]);
    // Its token is the attempt's: the closing worker releases it, and it is ready again.
    const [released] = await backend.settle([{ id: a.id, token: unseen[0]!.token, kind: "release" }]);
    expect(released).toMatchObject({ ok: true });
    expect((await mustGet(a.id)).state).toBe(JobState.Waiting);
    const b = job(queue);
    await backend.enqueue([b]);
    expect((await mustGet(b.id)).state).toBe(JobState.Waiting);
  });
}
