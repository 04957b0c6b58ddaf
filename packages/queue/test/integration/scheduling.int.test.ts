import type { ChildProcess } from "node:child_process";
import { createSeededRandom, silentLogger } from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import type { Replicator } from "@nxs-sync/pocketbase";
import { createCronScheduler, type JobId, type JobKey, PRIORITY_STEP_MS, tickJobId } from "@nxs-sync/queue";
import { JOBS_COLLECTION } from "@nxs-sync/queue/pocketbase";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { SchedulingConfig, SchedulingMessage } from "./scheduling-process.js";
import {
  authOf,
  backendOf,
  closeBackends,
  gateway,
  newId,
  newJob,
  startQueueServer,
  startReplicatorBetween,
  useChildProcesses,
} from "./servers.js";

/**
 * Scheduling on two real servers with the replicator between them (issue 22): cron schedulers in
 * separate processes on both servers fire every tick exactly once; dedupe races from several
 * processes store one job per key; singleton jobs of one key never overlap across processes;
 * priorities order a drain.
 */
const servers = usePocketBaseServers();
let a: ProcessPocketBase;
let b: ProcessPocketBase;
let replicator: Replicator;

const startReplicator = async (): Promise<void> => {
  replicator = await startReplicatorBetween([a, b]);
};
beforeAll(async () => {
  [a, b] = await Promise.all([startQueueServer(servers, "sched-a"), startQueueServer(servers, "sched-b")]);
  await startReplicator();
});
afterAll(async () => {
  await closeBackends();
  await replicator.stop();
});

interface Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<void>;
}
const messages: SchedulingMessage[] = [];
const forkChild = useChildProcesses<SchedulingMessage>("./scheduling-process.ts", (m) => messages.push(m));
function spawn(config: Omit<SchedulingConfig, "auth">): Child {
  const proc = forkChild({ ...config, auth: authOf(gateway) });
  return { proc, exited: new Promise((resolve) => proc.once("exit", () => resolve())) };
}
const ready = (names: readonly string[]) =>
  waitFor(() => names.every((n) => messages.some((m) => m.type === "ready" && m.name === n)) || undefined, {
    timeoutMs: 30_000,
    intervalMs: 20,
    description: `children ${names.join(", ")} ready`,
  });
const errors = () => messages.filter((m) => m.type === "error");

/** A server's live jobs of a queue (superuser read), by id. */
const jobsOn = async (s: ProcessPocketBase, queue: string) => {
  const pb = s.client();
  const all = await pb
    .collection(JOBS_COLLECTION)
    .getFullList({ filter: pb.filter("queue = {:q} && deleted = false", { q: queue }), batch: 1000 });
  return new Map(all.map((r) => [r.id, r as Record<string, unknown>]));
};

it("cron: 4 schedulers in separate processes, 2 on each server, fire every tick of a per-second schedule exactly once", {
  timeout: 120_000 + Number(process.env.NXS_QUEUE_CRON_TICKS ?? 0) * 1500,
}, async () => {
  const queue = `cron-${newId()}`;
  const names = ["on-a-1", "on-a-2", "on-b-1", "on-b-2"];
  const procs = names.map((name) =>
    spawn({
      mode: "cron",
      name,
      queue,
      endpoints: name.startsWith("on-a") ? [a.url, b.url] : [b.url, a.url],
    }),
  );
  await ready(names);
  const backend = backendOf([a.url]); // one server: the tests' fast failover would move a loaded claimer
  // A short run in npm test; `npm run test:long` soaks it (NXS_QUEUE_CRON_TICKS, e.g. 120).
  const TICKS = Number(process.env.NXS_QUEUE_CRON_TICKS ?? 6);
  const stored = await backend.schedules.put({
    id: "every-second",
    queue,
    cron: "* * * * * *",
    payload: { report: "usage" },
    // No tick at or after: a definite set of ticks, however late the last round runs.
    endDate: Math.ceil(Date.now() / 1000) * 1000 + TICKS * 1000,
    job: { maxAttempts: 1, backoff: {}, timeoutMs: 0 },
  });
  const first = Math.ceil(stored.createdAt / 1000) * 1000;
  const ticks = Array.from({ length: (stored.endDate! - first) / 1000 }, (_, i) => first + i * 1000);
  expect(ticks.length).toBeGreaterThanOrEqual(TICKS - 1);
  const expected = new Set(await Promise.all(ticks.map((t) => tickJobId(queue, "every-second", t))));
  // Every tick handled by all four, on both servers; then both servers converge to the same jobs.
  // Both servers' cursors reach the last tick (a scheduler whose list shows that cursor fires
  // nothing more); then one more refresh of every scheduler (500 ms) before they stop.
  const last = ticks[ticks.length - 1]!;
  await waitFor(
    async () => {
      const cursors = await Promise.all(
        [a, b].map(async (s) => (await backendOf([s.url]).schedules.list(queue))[0]?.lastTick),
      );
      return cursors.every((c) => c === last) || undefined;
    },
    {
      timeoutMs: 20_000 + TICKS * 1000,
      intervalMs: 100,
      description: "both servers' cursors at the last tick",
    },
  );
  await new Promise((r) => setTimeout(r, 1000));
  for (const p of procs) p.proc.send("stop");
  await Promise.all(procs.map((p) => p.exited));
  expect(errors()).toEqual([]);
  const fires = messages.filter((m) => m.type === "fired" && ticks.includes(m.tick)) as Extract<
    SchedulingMessage,
    { type: "fired" }
  >[];
  // Per server, one fire stored each tick's job (the others found it past or present).
  for (const side of ["on-a", "on-b"]) {
    for (const t of ticks) {
      const stores = fires.filter((f) => f.name.startsWith(side) && f.tick === t && f.fired);
      expect(stores.length, `${side} tick ${t}`).toBeLessThanOrEqual(1);
    }
  }
  const [onA, onB] = await waitFor(
    async () => {
      const [x, y] = [await jobsOn(a, queue), await jobsOn(b, queue)];
      return x.size === expected.size && y.size === expected.size ? [x, y] : undefined;
    },
    { timeoutMs: 15_000, intervalMs: 200, description: "both servers hold the tick jobs" },
  );
  // Exactly the tick jobs: none missed, none twice, the same on both servers.
  expect(new Set(onA.keys())).toEqual(expected);
  expect(new Set(onB.keys())).toEqual(expected);
  expect([...onA.values()].map((j) => j.runAt).sort()).toEqual(ticks);
  // They run once each: drained on the claim authority, no duplicate noted after replication.
  const done = new Map<string, number>();
  await waitFor(
    async () => {
      for (const c of await backend.claim({ queue, worker: "drain", leaseMs: 10_000, max: 50 })) {
        done.set(c.job.id, (done.get(c.job.id) ?? 0) + 1);
        await backend.settle([{ id: c.job.id, token: c.token, kind: "complete" }]);
      }
      return done.size === expected.size || undefined;
    },
    { timeoutMs: 10_000, intervalMs: 100, description: "every tick job ran" },
  );
  expect([...done.values()].every((n) => n === 1)).toBe(true);
  await waitFor(
    async () => {
      const y = await jobsOn(b, queue);
      return [...y.values()].every((j) => j.state === "completed") || undefined;
    },
    { timeoutMs: 15_000, intervalMs: 200, description: "completions replicated to b" },
  );
  const failures = [...(await jobsOn(b, queue)).values()].flatMap(
    (j) => (j.failures as unknown[] | null) ?? [],
  );
  expect(failures).toEqual([]);
  const [schedA] = await backendOf([a.url]).schedules.list(queue);
  expect(schedA).toMatchObject({ lastTick: ticks[ticks.length - 1] });
});

it("cron during a cut: schedulers on each side fire the same ticks under the same ids; after the heal, one job per tick", async () => {
  const queue = `cut-${newId()}`;
  const [onA, onB] = [backendOf([a.url]), backendOf([b.url])];
  const stored = await onA.schedules.put({
    id: "cut",
    queue,
    cron: "* * * * * *",
    payload: { n: 1 },
    endDate: Math.ceil(Date.now() / 1000) * 1000 + 4000,
    job: { maxAttempts: 1, backoff: {}, timeoutMs: 0 },
  });
  await waitFor(async () => (await onB.schedules.list(queue)).length === 1 || undefined, {
    timeoutMs: 10_000,
    intervalMs: 100,
    description: "the schedule replicated to b",
  });
  await replicator.stop(); // the cut: nothing moves between the servers
  const scheduler = createTimerScheduler();
  const crons = [onA, onB].map((backend) =>
    createCronScheduler({ queue: { name: queue, backend }, scheduler, refreshMs: 300, logger: silentLogger }),
  );
  const first = Math.ceil(stored.createdAt / 1000) * 1000;
  const ticks = Array.from({ length: (stored.endDate! - first) / 1000 }, (_, i) => first + i * 1000);
  const expected = new Set(await Promise.all(ticks.map((t) => tickJobId(queue, "cut", t))));
  for (const side of [a, b]) {
    await waitFor(async () => (await jobsOn(side, queue)).size === expected.size || undefined, {
      timeoutMs: 15_000,
      intervalMs: 200,
      description: "each side stored every tick's job",
    });
    expect(new Set((await jobsOn(side, queue)).keys())).toEqual(expected);
  }
  for (const c of crons) await c.stop();
  // The home side runs them during the cut; the other side's copies wait (no worker failed over).
  const claimed = await onA.claim({ queue, worker: "home", leaseMs: 10_000, max: 50 });
  await onA.settle(claimed.map((c) => ({ id: c.job.id, token: c.token, kind: "complete" as const })));
  expect(claimed).toHaveLength(expected.size);
  await startReplicator(); // the heal
  const healed = await waitFor(
    async () => {
      const y = await jobsOn(b, queue);
      return [...y.values()].every((j) => j.state === "completed") ? y : undefined;
    },
    { timeoutMs: 15_000, intervalMs: 200, description: "b holds the completed jobs after the heal" },
  );
  expect(new Set(healed.keys())).toEqual(expected);
  expect(new Set((await jobsOn(a, queue)).keys())).toEqual(expected);
  expect([...healed.values()].flatMap((j) => (j.failures as unknown[] | null) ?? [])).toEqual([]);
});

it("dedupe races: 4 processes add 10 jobs each under one key per mode; one job per key, debounce replacements all applied", async () => {
  const queue = `dedupe-${newId()}`;
  const keys: JobKey[] = [
    { key: "simple", mode: "simple" },
    { key: "throttle", mode: "throttle", ttlMs: 60_000 },
    { key: "debounce", mode: "debounce", ttlMs: 60_000 },
  ];
  const names = ["p1", "p2", "p3", "p4"];
  const procs = names.map((name, p) =>
    spawn({
      mode: "enqueue",
      name,
      queue,
      // The first two on server a, the others on b's pool with a first (all enqueue on the authority).
      endpoints: [a.url, b.url],
      jobs: Array.from({ length: 10 }, (_, i) => ({ id: newId(), key: keys[i % 3]!, payload: p * 100 + i })),
    }),
  );
  await ready(names);
  for (const p of procs) p.proc.send("go");
  await Promise.all(procs.map((p) => p.exited));
  expect(errors()).toEqual([]);
  const results = messages.flatMap((m) => (m.type === "enqueued" ? m.results : []));
  expect(results).toHaveLength(40);
  const jobs = await jobsOn(a, queue);
  expect(jobs.size).toBe(3);
  const byKey = new Map([...jobs.values()].map((j) => [j.jobKey as string, j]));
  for (const k of keys) {
    const holder = byKey.get(k.key)!;
    const mine = results.filter((r) => r.id === holder.id);
    // Every add of the key answered with the one job; exactly one created it.
    expect(mine.filter((r) => r.created)).toHaveLength(1);
    if (k.mode === "debounce") {
      const replaced = mine.filter((r) => r.deduped === "replaced").length;
      expect(replaced).toBe(mine.length - 1);
      // Each replacement was one write of the job (rev 1 at creation, +1 per replacement).
      expect(holder.rev).toBe(1 + replaced);
    } else {
      expect(mine.filter((r) => r.deduped === "ignored")).toHaveLength(mine.length - 1);
    }
  }
  expect(results.filter((r) => r.created)).toHaveLength(3);
});

it("singleton: 3 worker processes drain 8 jobs of one key; no two holds overlap (an outside ledger)", async () => {
  const queue = `single-${newId()}`;
  const backend = backendOf([a.url]); // one server: the tests' fast failover would move a loaded claimer
  const key: JobKey = { key: "voice-user-1", mode: "singleton" };
  const other: JobKey = { key: "voice-user-2", mode: "singleton" };
  await backend.enqueue([
    ...Array.from({ length: 8 }, () => newJob(queue, { key })),
    ...Array.from({ length: 4 }, () => newJob(queue, { key: other })),
  ]);
  const names = ["s1", "s2", "s3"];
  const procs = names.map((name) =>
    spawn({ mode: "singleton", name, queue, endpoints: [a.url, b.url], holdMs: 40 }),
  );
  await ready(names);
  for (const p of procs) p.proc.send("go");
  await Promise.all(procs.map((p) => p.exited));
  expect(errors()).toEqual([]);
  const holds = messages.filter((m) => m.type === "held" && names.includes(m.name)) as Extract<
    SchedulingMessage,
    { type: "held" }
  >[];
  expect(holds).toHaveLength(12);
  const jobs = await jobsOn(a, queue);
  for (const k of [key.key, other.key]) {
    const spans = holds.filter((h) => jobs.get(h.id)?.jobKey === k).sort((x, y) => x.from - y.from);
    for (let i = 1; i < spans.length; i++) {
      expect(spans[i]!.from, `${k}: hold ${i} starts after hold ${i - 1} ended`).toBeGreaterThanOrEqual(
        spans[i - 1]!.to,
      );
    }
  }
  expect([...jobs.values()].every((j) => j.state === "completed")).toBe(true);
});

it("priority order under load: 200 jobs of seeded priorities, drained by 3 claimers at once, leave in rank order", async () => {
  const queue = `prio-${newId()}`;
  const backend = backendOf([a.url]); // one server: the tests' fast failover would move a loaded claimer
  const random = createSeededRandom(22);
  const jobs = Array.from({ length: 200 }, () => newJob(queue, { priority: random.int(10) }));
  await backend.enqueue(jobs);
  const order: { id: JobId; priority: number; rank: number; round: number }[] = [];
  let round = 0;
  await Promise.all(
    [1, 2, 3].map(async (w) => {
      for (;;) {
        const batch = await backend.claim({ queue, worker: `w${w}`, leaseMs: 10_000, max: 10 });
        if (batch.length === 0) return;
        const r = ++round;
        for (const c of batch) {
          order.push({
            id: c.job.id,
            priority: c.job.priority ?? 0,
            rank: c.job.runAt - (c.job.priority ?? 0) * PRIORITY_STEP_MS,
            round: r,
          });
        }
        await backend.settle(batch.map((c) => ({ id: c.job.id, token: c.token, kind: "complete" as const })));
      }
    }),
  );
  const seen = new Map<string, number>();
  for (const o of order) seen.set(o.id, (seen.get(o.id) ?? 0) + 1);
  const twice = order.filter((o) => (seen.get(o.id) ?? 0) > 1);
  expect(twice.map((o) => `${o.id} r${o.round} p${o.priority}`)).toEqual([]);
  expect(order).toHaveLength(200);
  // The server runs the claims one at a time (one writer): each took the best-ranked jobs still
  // waiting, so in the order they committed the claims' rank ranges follow each other without
  // overlap. Answers of claims in flight together can reach the client in another order, so the
  // claims are put in commit order by their ranges (each claim's lowest rank; ties by highest).
  const rounds = new Map<number, number[]>();
  for (const o of order) rounds.set(o.round, [...(rounds.get(o.round) ?? []), o.rank]);
  const ranges = [...rounds.values()]
    .map((rs) => ({ min: Math.min(...rs), max: Math.max(...rs), ranks: rs }))
    .sort((x, y) => x.min - y.min || x.max - y.max);
  for (let i = 1; i < ranges.length; i++) {
    expect(ranges[i]!.min, `claim ${i} starts at or after claim ${i - 1} ends`).toBeGreaterThanOrEqual(
      ranges[i - 1]!.max,
    );
  }
  // Within each claim, ranks ascend (the claim's own order).
  for (const r of ranges) expect(r.ranks).toEqual([...r.ranks].sort((x, y) => x - y));
  // All 200 were enqueued in one request (one runAt): rank order is priority order, high first.
  const byRank = new Map(order.map((o) => [o.rank, o.priority]));
  const priorities = ranges.flatMap((r) => r.ranks.map((k) => byRank.get(k) ?? -1));
  expect(
    priorities.slice(0, 5).every((p) => p === 9),
    priorities.join(""),
  ).toBe(true);
  expect(
    priorities.slice(-5).every((p) => p === 0),
    priorities.join(""),
  ).toBe(true);
});
