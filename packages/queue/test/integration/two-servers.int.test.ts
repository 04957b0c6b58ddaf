import { silentLogger } from "@nxs-sync/core";
import {
  createEndpointPool,
  createNxsCollectionRegistry,
  createReplicator,
  type Replicator,
} from "@nxs-sync/pocketbase";
import type { JobRecord } from "@nxs-sync/queue";
import { JOBS_COLLECTION, queueCollections, type TakeoverEvent } from "@nxs-sync/queue/pocketbase";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import {
  authOf,
  backendOf,
  claimWhenReady,
  closeBackends,
  FAST_FAILOVER,
  gateway,
  newId,
  newJobs,
  registry,
  replicatorAccount,
  startQueueServer,
} from "./servers.js";
import type { WorkerMessage } from "./worker-process.js";
import { killWorkers, spawnWorker } from "./workers.js";

/**
 * Two real servers with the replicator between them: job copies merge by version (a completed job
 * never goes back to active, a cleaned one does not come back), jobs enqueued on both sides of a
 * cut all run after the heal, and a home server killed mid-drain is taken over by the other under
 * a higher epoch, every job run twice counted and explained.
 */
const servers = usePocketBaseServers();
let a: ProcessPocketBase;
let b: ProcessPocketBase;
let replicator: Replicator | undefined;

const startReplicator = async (tombstoneRetentionMs?: number): Promise<void> => {
  replicator = createReplicator({
    servers: [a, b].map((s) => ({ url: s.url, auth: authOf(replicatorAccount) })),
    collections:
      tombstoneRetentionMs === undefined
        ? registry()
        : createNxsCollectionRegistry().register(...queueCollections({ tombstoneRetentionMs })),
    intervalMs: 500,
    logger: silentLogger,
  });
  await replicator.start();
};
const stopReplicator = async (): Promise<void> => {
  await replicator?.stop();
  replicator = undefined;
};

beforeAll(async () => {
  [a, b] = await Promise.all([startQueueServer(servers, "queue-a"), startQueueServer(servers, "queue-b")]);
  await startReplicator();
});
afterEach(killWorkers);
afterAll(async () => {
  await closeBackends();
  await stopReplicator();
});

/** A server's copies of a queue's jobs (superuser read, tombstones included), by id. */
const copies = async (s: ProcessPocketBase, queue: string): Promise<Map<string, Record<string, unknown>>> => {
  const pb = s.client();
  const all = await pb
    .collection(JOBS_COLLECTION)
    .getFullList({ filter: pb.filter("queue = {:q}", { q: queue }), batch: 1000 });
  return new Map(all.map((r) => [r.id, r as Record<string, unknown>]));
};
/** Waits until both servers hold the same version of every job of `queue` and `check` holds on it. */
const converged = (
  queue: string,
  check: (jobs: Map<string, Record<string, unknown>>) => boolean,
  what: string,
) =>
  waitFor(
    async () => {
      const [x, y] = [await copies(a, queue), await copies(b, queue)];
      if (x.size !== y.size) return undefined;
      for (const [id, r] of x) if (y.get(id)?.version !== r.version) return undefined;
      return check(x) ? x : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 200, description: what },
  );
const every = (state: string) => (jobs: Map<string, Record<string, unknown>>) =>
  [...jobs.values()].every((r) => r.state === state);

it("merges job copies by version: a completed job never goes back to active, a cleaned one never comes back", async () => {
  const queue = `merge-${newId()}`;
  const home = backendOf([a.url, b.url]);
  const jobs = newJobs(queue, 5);
  await home.enqueue(jobs);
  const claimed = await home.claim({ queue, worker: "w", leaseMs: 30_000, max: 5 });
  await converged(queue, every("active"), "the active copies on both servers");
  // Cut the servers apart, complete on A: B still holds the active copies.
  await stopReplicator();
  await home.settle(claimed.map((c) => ({ id: c.job.id, token: c.token, kind: "complete" as const })));
  expect(every("active")(await copies(b, queue))).toBe(true);
  await startReplicator();
  const merged = await converged(queue, every("completed"), "completed on both after the heal");
  expect(merged.size).toBe(5);
  await replicator?.sync({ full: true });
  expect(every("completed")(await copies(a, queue))).toBe(true);

  // Clean on A: tombstones replicate, and a full sweep does not copy the jobs back.
  expect(await home.admin.clean(queue, { states: ["completed"], before: Date.now() + 60_000 })).toBe(5);
  await converged(queue, (j) => [...j.values()].every((r) => r.deleted === true), "tombstones on both");
  await replicator?.sync({ full: true });
  for (const s of [a, b]) {
    const other = backendOf([s.url]);
    for (const j of jobs) expect(await other.getJob(j.id)).toBeUndefined();
    expect(await other.counts(queue)).toMatchObject({ completed: 0, waiting: 0, active: 0 });
  }
  // Past the retention, the replicator purges the tombstones on both servers.
  await stopReplicator();
  await startReplicator(500);
  await waitFor(async () => (await copies(a, queue)).size === 0 && (await copies(b, queue)).size === 0, {
    timeoutMs: 15_000,
    intervalMs: 200,
    description: "the tombstones purged on both servers",
  });
  await stopReplicator();
  await startReplicator();
});

it("runs every job enqueued on either side of a cut after the heal", async () => {
  const queue = `cut-${newId()}`;
  await stopReplicator();
  const onA = newJobs(queue, 10);
  const onB = newJobs(queue, 10);
  await backendOf([a.url]).enqueue(onA);
  await backendOf([b.url]).enqueue(onB);
  await startReplicator();
  await converged(queue, (j) => j.size === 20, "both sides' jobs on both servers");
  const worker = backendOf([a.url, b.url]);
  const done: string[] = [];
  for (;;) {
    const claimed = await worker.claim({ queue, worker: "w", leaseMs: 30_000, max: 8 });
    if (claimed.length === 0) break;
    await worker.settle(claimed.map((c) => ({ id: c.job.id, token: c.token, kind: "complete" as const })));
    done.push(...claimed.map((c) => c.job.id));
  }
  expect(done.sort()).toEqual([...onA, ...onB].map((j) => j.id).sort());
  await converged(queue, every("completed"), "completed on both");
});

it("records a job run on both sides of a cut as a duplicate, on both servers", async () => {
  const queue = `both-${newId()}`;
  const [job] = newJobs(queue, 1);
  await backendOf([a.url]).enqueue([job!]);
  await converged(queue, (j) => j.size === 1, "the job on both servers");
  await stopReplicator();
  // Each side's gateways claim where they are: one reaches home (A); one is cut off from home (an
  // address that refuses) and fails over to B, which takes over above every epoch it has seen.
  const onA = backendOf([a.url]);
  const onB = backendOf(["http://127.0.0.1:9", b.url]);
  const [ca] = await onA.claim({ queue, worker: "wa", leaseMs: 30_000, max: 1 });
  const [cb] = await onB.claim({ queue, worker: "wb", leaseMs: 30_000, max: 1 });
  expect(cb!.job.epoch).toBeGreaterThan(ca!.job.epoch);
  await onA.settle([{ id: job!.id, token: ca!.token, kind: "complete", result: "a" }]);
  await onB.settle([{ id: job!.id, token: cb!.token, kind: "complete", result: "b" }]);
  await startReplicator();
  const merged = await converged(
    queue,
    (j) => ((j.get(job!.id)?.failures ?? []) as JobRecord["failures"]).length > 0,
    "the duplicate recorded on both servers",
  );
  const record = merged.get(job!.id);
  expect(record).toMatchObject({ state: "completed", result: "b", epoch: cb!.job.epoch });
  expect(record?.failures).toEqual([
    expect.objectContaining({
      attempt: 1,
      code: "queue/duplicate",
      message: expect.stringContaining(`attempt 1 also ran under epoch ${ca!.job.epoch} (completed)`),
    }),
  ]);
});

it("moves claims to the other server under a higher epoch when the home server dies mid-drain, each duplicate explained", async () => {
  const queue = `failover-${newId()}`;
  const takeovers: TakeoverEvent[] = [];
  const producer = backendOf([a.url, b.url], { onTakeover: (t) => takeovers.push(t) });
  const jobs = newJobs(queue, 120);
  await producer.enqueue(jobs);
  await converged(queue, (j) => j.size === 120, "the jobs on both servers");
  const seen: WorkerMessage[] = [];
  const config = (name: string) => ({
    name,
    endpoints: [a.url, b.url],
    auth: authOf(gateway),
    queue,
    leaseMs: 2000,
    max: 4,
    jobMs: 40,
    heartbeatMs: 600,
    idleRounds: 20,
    pollMs: 100,
    failover: FAST_FAILOVER,
  });
  const workers = ["w1", "w2"].map((w) => spawnWorker(config(w), seen));
  await waitFor(() => seen.filter((m) => m.type === "settled").length >= 30, {
    description: "the drain under way",
  });
  await a.kill();
  await Promise.all(workers.map((w) => w.exited));
  await a.restart();
  await converged(queue, every("completed"), "every job completed on both servers after the restart");

  const starts = seen.filter((m): m is Extract<WorkerMessage, { type: "start" }> => m.type === "start");
  const byJob = new Map<string, typeof starts>();
  for (const s of starts) byJob.set(s.id, [...(byJob.get(s.id) ?? []), s]);
  expect(new Set(byJob.keys())).toEqual(new Set(jobs.map((j) => j.id)));
  const epochs = new Set(starts.map((s) => s.epoch));
  expect(Math.max(...epochs), `epochs ${[...epochs]}`).toBeGreaterThan(Math.min(...epochs));
  // A job ran twice only because the home server died: its second run is under the other
  // server's higher epoch (the first run's claim or completion had not been copied yet), or after
  // its lease lapsed there. Either is recorded on the job, on both servers: a queue/stalled failure
  // (the lease lapsed), or a queue/duplicate one (written where the replicator merged the copies).
  const final = await converged(
    queue,
    (j) =>
      [...byJob.entries()]
        .filter(([, runs]) => runs.length > 1)
        .every(([id]) => ((j.get(id)?.failures ?? []) as JobRecord["failures"]).length > 0),
    "every duplicate recorded on both servers",
  ).catch(async (e: unknown) => {
    // Show what each server holds of the jobs that ran twice.
    const [x, y] = [await copies(a, queue), await copies(b, queue)];
    for (const [id, runs] of byJob) {
      if (runs.length > 1)
        console.error(`[failover] ${id} runs ${JSON.stringify(runs)}`, x.get(id), y.get(id));
    }
    throw e;
  });
  const duplicates = [...byJob.entries()].filter(([, s]) => s.length > 1);
  for (const [id, runs] of duplicates) {
    const failures = (final.get(id)?.failures ?? []) as JobRecord["failures"];
    const laterEpoch = runs.some((r, i) => i > 0 && r.epoch > (runs[0]?.epoch ?? 0));
    const recorded = failures.some((f) => f.code === "queue/stalled" || f.code === "queue/duplicate");
    expect(laterEpoch || recorded, `${id}: ${JSON.stringify(runs)} ${JSON.stringify(failures)}`).toBe(true);
    expect(recorded, `${id} recorded: ${JSON.stringify(runs)} ${JSON.stringify(failures)}`).toBe(true);
  }
  console.info(
    `[failover] ${starts.length} runs of ${jobs.length} jobs, ${duplicates.length} run twice (each under a new epoch or after a lapsed lease, recorded); epochs ${[...epochs].sort().join(",")}; ${JSON.stringify(duplicates.map(([id]) => final.get(id)?.failures))}`,
  );
});

it("fails back home under an epoch above the other server's, and a lease taken there still settles at home", async () => {
  const queue = `failback-${newId()}`;
  const takeovers: TakeoverEvent[] = [];
  // A pool of the test's own (the backend's `pool` option), to see when it fails back.
  const pool = createEndpointPool({
    endpoints: [a.url, b.url],
    auth: authOf(gateway),
    failover: { ...FAST_FAILOVER, failbackAfterMs: 500 },
    logger: silentLogger,
  });
  pool.start();
  const backend = backendOf([], { pool, onTakeover: (t) => takeovers.push(t) });
  const [first, second] = newJobs(queue, 2);
  await backend.enqueue([first!, second!]);
  await converged(queue, (j) => j.size === 2, "both jobs on both servers");
  await a.kill();
  const onB = await claimWhenReady(backend, queue, "w", 30_000, "a claim on the other server", 10_000);
  expect(backend.authority().url).toBe(b.url);
  const epochB = backend.authority().epoch;
  expect(onB.job.epoch).toBe(epochB);
  await a.restart();
  await converged(queue, (j) => [...j.values()].some((r) => r.state === "active"), "B's claim copied home");
  // Back home once A has been healthy for failbackAfterMs: the next claim takes over there.
  await waitFor(() => pool.active().url === a.url, { timeoutMs: 15_000, description: "the pool's failback" });
  const home = await claimWhenReady(backend, queue, "w", 30_000, "a claim at home again", 15_000);
  expect(backend.authority().url).toBe(a.url);
  expect(home.job.epoch).toBeGreaterThan(epochB);
  // B's epoch may be above everything it saw already (an earlier takeover): then it stays.
  expect(takeovers.map((t) => t.url)).toEqual([b.url, a.url]);
  expect(takeovers[0]?.epoch).toBeGreaterThanOrEqual(2); // above the home's first epoch
  expect(takeovers[1]?.epoch).toBeGreaterThan(takeovers[0]?.epoch ?? Number.POSITIVE_INFINITY);
  // B's token still settles its job (the claim and token were copied home).
  expect(await backend.settle([{ id: onB.job.id, token: onB.token, kind: "complete" }])).toEqual([
    { ok: true, state: "completed" },
  ]);
  await backend.settle([{ id: home.job.id, token: home.token, kind: "complete" }]);
  await converged(queue, every("completed"), "both completed on both servers");
  await backend.close();
  pool.stop();
});
