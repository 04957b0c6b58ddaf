/**
 * One driver per queue library for `npm run bench -- queue`, all measured the same way: a fresh
 * queue name per measurement, jobs carrying their enqueue time, a handler that does no work, and
 * "drained" meaning the handler has started every job (settlement of the last few is not waited
 * for, alike for every subject).
 */
import { performance } from "node:perf_hooks";
import { Queue as BullQueue, Worker as BullWorker } from "bullmq";
import { PgBoss } from "pg-boss";

/** What the suite measures of one queue library. */
export interface QueueDriver {
  /** Enqueues `n` jobs in bulk calls (of the library's natural size). @returns jobs/s. */
  enqueueBulk(n: number): Promise<number>;
  /** Enqueues `n` jobs one awaited call at a time. @returns jobs/s. */
  enqueueOne(n: number): Promise<number>;
  /**
   * Enqueues `n` jobs (not timed), then starts workers and times until every job has started.
   * @param batched - Fetch several jobs per request (the library's batch mode), or one per request.
   * @returns jobs/s.
   */
  drain(n: number, concurrency: number, batched: boolean): Promise<number>;
  /**
   * With a worker (concurrency {@link LATENCY_CONCURRENCY}) idle and waiting, enqueues `n` jobs one by one at `perSecond`, and records each
   * job's enqueue-to-start delay. @returns the delays in ms.
   */
  latency(n: number, perSecond: number): Promise<number[]>;
  /**
   * Flow control (issue 22): drains `n` jobs of random priorities 0-10 with a queue rate limit of
   * `flow.ratePerSecond` and, where the library has groups, half the jobs in a group limited to
   * `flow.groupConcurrency` at a time. @returns jobs/s. Absent: the library has no rate limiter.
   */
  drainLimited?(n: number, concurrency: number, flow: FlowBench): Promise<number>;
  /** {@link QueueDriver.latency} with the same limits active (not binding at `perSecond`). @returns ms. */
  latencyLimited?(n: number, perSecond: number, flow: FlowBench): Promise<number[]>;
  close(): Promise<void>;
}

/** The limits of the flow-control lines. */
export interface FlowBench {
  readonly ratePerSecond: number;
  readonly groupConcurrency: number;
}

/** A seeded priority 0-10 for job `i` (the same sequence for every library). */
export const priorityOf = (i: number): number => (i * 7919) % 11;

/** Wall time in ms with sub-ms precision, comparable across the process. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/** Resolves when `count()` reaches `n` (checked on every call of `tick`). */
export function counter(n: number): {
  readonly done: Promise<void>;
  tick(): void;
  readonly seen: () => number;
} {
  let seen = 0;
  let resolve: () => void = () => {};
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  if (n === 0) resolve();
  return {
    done,
    tick() {
      seen++;
      if (seen === n) resolve();
    },
    seen: () => seen,
  };
}

/** Sends `n` jobs at a steady rate with `send(i)`, without letting the sends queue up. */
export async function paced(
  n: number,
  perSecond: number,
  send: (i: number) => Promise<unknown>,
): Promise<void> {
  const start = nowMs();
  const interval = 1000 / perSecond;
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const due = start + i * interval;
    const wait = due - nowMs();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(send(i));
  }
  await Promise.all(pending);
}

/** Worker concurrency of the latency runs (every library alike). */
export const LATENCY_CONCURRENCY = 10;

let seq = 0;
const queueName = (prefix: string): string => `${prefix}_${process.pid}_${++seq}`;

/**
 * pg-boss on PostgreSQL. Per-job mode: loops of `fetch` (one job) and `complete`; batch mode: `work()`
 * with `batchSize` 100 and `burstWhenBatchFull`. Queues use LISTEN/NOTIFY (`notify: true`), which
 * wakes an idle `work()` worker at once, and the shortest polling intervals pg-boss allows (0.5 s,
 * also as the backstop under NOTIFY: notifications that arrive while a worker is busy coalesce).
 */
export async function createPgBossDriver(url: string): Promise<QueueDriver> {
  const boss = new PgBoss({
    connectionString: url,
    max: 20,
    supervise: false,
    schedule: false,
    useListenNotify: true,
  });
  boss.on("error", (e: unknown) => console.error("pg-boss:", e));
  await boss.start();
  const fresh = async (): Promise<string> => {
    const name = queueName("pgb");
    await boss.createQueue(name, { notify: true });
    return name;
  };
  const jobs = (n: number) => Array.from({ length: n }, (_, i) => ({ data: { i, t: 0 } }));
  return {
    async enqueueBulk(n) {
      const name = await fresh();
      const t0 = nowMs();
      for (let i = 0; i < n; i += 1000) await boss.insert(name, jobs(Math.min(1000, n - i)));
      return (n / (nowMs() - t0)) * 1000;
    },
    async enqueueOne(n) {
      const name = await fresh();
      const t0 = nowMs();
      for (let i = 0; i < n; i++) await boss.send(name, { i });
      return (n / (nowMs() - t0)) * 1000;
    },
    async drain(n, concurrency, batched) {
      const name = await fresh();
      for (let i = 0; i < n; i += 1000) await boss.insert(name, jobs(Math.min(1000, n - i)));
      const c = counter(n);
      const t0 = nowMs();
      if (!batched) {
        // Per-job mode: `concurrency` loops of fetch(1) + complete, back to back. (A `work()` worker
        // with batchSize 1 waits its polling interval, at least 0.5 s, between fetches.)
        const loop = async (): Promise<void> => {
          while (c.seen() < n) {
            const [job] = await boss.fetch(name, { batchSize: 1 });
            if (job === undefined) return;
            c.tick();
            await boss.complete(name, job.id);
          }
        };
        await Promise.all(Array.from({ length: concurrency }, loop));
        await c.done;
        return (n / (nowMs() - t0)) * 1000;
      }
      await boss.work(
        name,
        {
          localConcurrency: concurrency,
          batchSize: 100,
          burstWhenBatchFull: true,
          pollingIntervalSeconds: 0.5,
        },
        async (batch: readonly unknown[]) => {
          for (const _ of batch) c.tick();
        },
      );
      await c.done;
      const rate = (n / (nowMs() - t0)) * 1000;
      await boss.offWork(name, { wait: true });
      return rate;
    },
    async latency(n, perSecond) {
      const name = await fresh();
      const delays: number[] = [];
      const c = counter(n);
      await boss.work(
        name,
        {
          localConcurrency: LATENCY_CONCURRENCY,
          batchSize: 1,
          pollingIntervalSeconds: 0.5,
          notifyPollingIntervalSeconds: 0.5,
        },
        async (batch: readonly { data: { t: number } }[]) => {
          const at = nowMs();
          for (const j of batch) {
            delays.push(at - j.data.t);
            c.tick();
          }
        },
      );
      await paced(n, perSecond, () => boss.send(name, { t: nowMs() }));
      await c.done;
      await boss.offWork(name, { wait: true });
      return delays;
    },
    async close() {
      await boss.stop({ graceful: false, close: true });
    },
  };
}

/** BullMQ on Redis (no persistence). Batch mode: `addBulk` for enqueue; workers fetch one job at a time. */
export async function createBullMqDriver(port: number): Promise<QueueDriver> {
  const connection = { host: "127.0.0.1", port, maxRetriesPerRequest: null };
  const queues: BullQueue[] = [];
  const open = (): BullQueue => {
    const q = new BullQueue(queueName("bull"), { connection });
    queues.push(q);
    return q;
  };
  const bulk = (n: number) => Array.from({ length: n }, (_, i) => ({ name: "j", data: { i, t: 0 } }));
  return {
    async enqueueBulk(n) {
      const q = open();
      const t0 = nowMs();
      for (let i = 0; i < n; i += 1000) await q.addBulk(bulk(Math.min(1000, n - i)));
      return (n / (nowMs() - t0)) * 1000;
    },
    async enqueueOne(n) {
      const q = open();
      const t0 = nowMs();
      for (let i = 0; i < n; i++) await q.add("j", { i });
      return (n / (nowMs() - t0)) * 1000;
    },
    async drain(n, concurrency) {
      const q = open();
      for (let i = 0; i < n; i += 1000) await q.addBulk(bulk(Math.min(1000, n - i)));
      const c = counter(n);
      const t0 = nowMs();
      const w = new BullWorker(q.name, async () => c.tick(), { connection, concurrency });
      await c.done;
      const rate = (n / (nowMs() - t0)) * 1000;
      await w.close();
      return rate;
    },
    // BullMQ (open source) has priorities (1 first) and a queue rate limiter, not groups (Pro).
    async drainLimited(n, concurrency, flow) {
      const q = open();
      const jobs = Array.from({ length: n }, (_, i) => ({
        name: "j",
        data: { i, t: 0 },
        opts: { priority: 11 - priorityOf(i) },
      }));
      for (let i = 0; i < n; i += 1000) await q.addBulk(jobs.slice(i, i + 1000));
      const c = counter(n);
      const t0 = nowMs();
      const w = new BullWorker(q.name, async () => c.tick(), {
        connection,
        concurrency,
        limiter: { max: flow.ratePerSecond, duration: 1000 },
      });
      await c.done;
      const rate = (n / (nowMs() - t0)) * 1000;
      await w.close();
      return rate;
    },
    async latencyLimited(n, perSecond, flow) {
      return bullLatency(n, perSecond, { limiter: { max: flow.ratePerSecond, duration: 1000 } }, (i) => ({
        priority: 11 - priorityOf(i),
      }));
    },
    async latency(n, perSecond) {
      return bullLatency(n, perSecond, {}, () => ({}));
    },
    async close() {
      for (const q of queues) {
        await q.obliterate({ force: true }).catch(() => {});
        await q.close();
      }
    },
  };
  async function bullLatency(
    n: number,
    perSecond: number,
    workerOptions: { limiter?: { max: number; duration: number } },
    jobOptions: (i: number) => { priority?: number },
  ): Promise<number[]> {
    const q = open();
    const delays: number[] = [];
    const c = counter(n);
    const w = new BullWorker(
      q.name,
      async (job) => {
        delays.push(nowMs() - (job.data as { t: number }).t);
        c.tick();
      },
      { connection, concurrency: LATENCY_CONCURRENCY, ...workerOptions },
    );
    await w.waitUntilReady();
    await paced(n, perSecond, (i) => q.add("j", { t: nowMs() }, jobOptions(i)));
    await c.done;
    await w.close();
    return delays;
  }
}
