/**
 * `npm run bench -- queue`: the durable job queue against pg-boss (PostgreSQL) and BullMQ (Redis),
 * in one run. Each library enqueues in bulk and one by one, drains with concurrency 1 and 10 (one
 * job per fetch, and batched), and reports enqueue-to-start latency at a steady 200 jobs/s. The
 * peers' servers come from Debian's packages (installed if missing), on loopback, stopped after.
 * Worker RSS: bench/suites/queue-rss.ts, a worker per child process.
 */
import { startPostgres, startRedis } from "../lib/peer-services.js";
import { quantile } from "../lib/stats.js";
import type { BenchCase, BenchSuite } from "../lib/types.js";
import { createBullMqDriver, createPgBossDriver, type FlowBench, type QueueDriver } from "./queue-drivers.js";

/** The limits of the flow-control lines: a rate that binds a c10 drain, a group at half of it. */
const FLOW: FlowBench = { ratePerSecond: 400, groupConcurrency: 5 };

import { BATCHED_PREFETCH, createNxsQueueDriver } from "./queue-nxs.js";
import { workerRss } from "./queue-rss.js";

export const suite: BenchSuite = {
  name: "queue",
  description: "job queue: enqueue, drain, enqueue-to-start latency and worker RSS vs pg-boss and BullMQ",
  defaultRuns: 3,
  async setup({ quick }) {
    const n = quick ? 2_000 : 10_000;
    const nOne = quick ? 500 : 2_000;
    const nLatency = quick ? 400 : 1_000;
    const pg = await startPostgres();
    const redis = await startRedis();
    const nxs = await createNxsQueueDriver();
    const drivers: Record<string, QueueDriver> = {
      nxs: nxs.driver,
      "pg-boss": await createPgBossDriver(pg.url),
      bullmq: await createBullMqDriver(redis.port),
    };
    const each = (f: (d: QueueDriver) => Promise<number>) =>
      Object.fromEntries(Object.entries(drivers).map(([k, d]) => [k, () => f(d)]));
    // The libraries with a rate limiter.
    const nLimited = quick ? 800 : 2_000;
    const limited = (f: (d: QueueDriver) => Promise<number | undefined>) =>
      Object.fromEntries(
        Object.entries(drivers)
          .filter(([, d]) => d.drainLimited !== undefined)
          .map(([k, d]) => [k, async () => (await f(d)) ?? Number.NaN]),
      );
    // One latency sample set per run, shared by the p50 and p99 lines.
    const latencyRuns = new Map<string, number[][]>();
    const latencyOf = (name: string, d: QueueDriver, run: number) => async () => {
      const runs = latencyRuns.get(name) ?? [];
      latencyRuns.set(name, runs);
      if (runs[run] === undefined) runs[run] = await d.latency(nLatency, 200);
      return runs[run] as number[];
    };
    const latencyCase = (metric: string, p: number): BenchCase => {
      const calls = new Map<string, number>();
      return {
        metric,
        unit: "ms",
        better: "lower",
        subjects: Object.fromEntries(
          Object.entries(drivers).map(([k, d]) => [
            k,
            async () => {
              const run = calls.get(k) ?? 0;
              calls.set(k, run + 1);
              return quantile(await latencyOf(k, d, run)(), p);
            },
          ]),
        ),
        note:
          p === 0.5
            ? `${nLatency} jobs enqueued one by one at 200 jobs/s, worker concurrency 10 and idle; the same runs give p50 and p99`
            : undefined,
      };
    };
    const cases: BenchCase[] = [
      {
        metric: "enqueue-bulk",
        unit: "jobs/s",
        better: "higher",
        subjects: each((d) => d.enqueueBulk(n)),
        note: `${n} jobs; nxs: addBulk of 500 (one hook-route call each), pg-boss: insert of 1000, BullMQ: addBulk of 1000`,
      },
      {
        metric: "enqueue-one",
        unit: "jobs/s",
        better: "higher",
        subjects: each((d) => d.enqueueOne(nOne)),
        note: `${nOne} jobs, one awaited call each`,
      },
      {
        metric: "drain-c1",
        unit: "jobs/s",
        better: "higher",
        subjects: each((d) => d.drain(n, 1, false)),
        note: `${n} jobs, one job per fetch (pg-boss: fetch + complete loops; nxs: claim of 1, settlement sent alone)`,
      },
      { metric: "drain-c10", unit: "jobs/s", better: "higher", subjects: each((d) => d.drain(n, 10, false)) },
      {
        metric: "drain-c1-batched",
        unit: "jobs/s",
        better: "higher",
        subjects: each((d) => d.drain(n, 1, true)),
        note: `batched: nxs prefetches ${BATCHED_PREFETCH} jobs beyond \`concurrency\` and its claims carry the pending settlements (settleAndClaim); pg-boss work() with batchSize 100; BullMQ has no batch fetch (same as unbatched)`,
      },
      {
        metric: "drain-c10-batched",
        unit: "jobs/s",
        better: "higher",
        subjects: each((d) => d.drain(n, 10, true)),
      },
      latencyCase("latency-p50", 0.5),
      latencyCase("latency-p99", 0.99),
      {
        metric: "drain-limited-c10",
        unit: "jobs/s",
        better: "higher",
        subjects: limited(async (d) => d.drainLimited?.(nLimited, 10, FLOW)),
        note: `${nLimited} jobs of priorities 0-10, concurrency 10, a queue rate limit of ${FLOW.ratePerSecond} jobs/s (the ceiling of this line); nxs: half the jobs in a group limited to ${FLOW.groupConcurrency} at a time; BullMQ: its limiter {max: ${FLOW.ratePerSecond}, duration: 1000} and priorities (groups are BullMQ Pro); pg-boss has no rate limiter`,
      },
      {
        metric: "latency-limited-p50",
        unit: "ms",
        better: "lower",
        subjects: limited(async (d) => quantile((await d.latencyLimited?.(nLatency, 200, FLOW)) ?? [], 0.5)),
        note: `${nLatency} jobs one by one at 200 jobs/s with the limits above active (not binding at that rate), worker concurrency 10`,
      },
      {
        metric: "worker-rss",
        unit: "MiB",
        better: "lower",
        subjects: {
          nxs: () => workerRss("nxs", nxs.server.url, nxs.auth),
          "pg-boss": () => workerRss("pg-boss", pg.url),
          bullmq: () => workerRss("bullmq", String(redis.port)),
        },
        note: "peak RSS of a child process (node --import tsx) that runs one worker (concurrency 10) draining 2,000 jobs",
      },
    ];
    return {
      cases,
      machine: { postgres: "Debian postgresql", redis: "Debian redis-server, no persistence" },
      async teardown() {
        for (const d of Object.values(drivers)) await d.close().catch((e: unknown) => console.error(e));
        await pg.stop();
        await redis.stop();
      },
    };
  },
};
