/**
 * The nxs-sync subject of `npm run bench -- queue`: `createQueue` + `createWorker` over the
 * PocketBase backend (`@nxs-sync/queue/pocketbase`), on one real PocketBase process with the queue's
 * collections and hook piece, logged in as a gateway account. Unbatched: one job per claim request
 * and one settlement per request; batched: {@link BATCHED_PREFETCH} jobs prefetched beyond
 * `concurrency`, and claims that carry the pending settlements (`settleAndClaim`).
 */
import { silentLogger } from "@nxs-sync/core";
import { createNxsCollectionRegistry, ensureNode, ensureSchema, NodeRole } from "@nxs-sync/pocketbase";
import { type AddOptions, createQueue, createWorker, type Queue } from "@nxs-sync/queue";
import {
  createPocketBaseQueueBackend,
  type PocketBaseQueueBackend,
  queueCollections,
  queueHookPiece,
} from "@nxs-sync/queue/pocketbase";
import { type ProcessPocketBase, startPocketBase } from "@nxs-sync/testing";
import { z } from "zod";
import { recordId } from "./pocketbase-env.js";
import {
  counter,
  type FlowBench,
  LATENCY_CONCURRENCY,
  nowMs,
  paced,
  priorityOf,
  type QueueDriver,
} from "./queue-drivers.js";

/** Jobs a batched worker claims ahead, beyond its concurrency (`prefetch`). */
export const BATCHED_PREFETCH = 40;

const schema = z.object({ i: z.number().int().optional(), t: z.number().optional() });

/** The nxs-sync driver, the server it runs on and the gateway account it uses. */
export interface NxsQueueBench {
  readonly driver: QueueDriver;
  readonly server: ProcessPocketBase;
  readonly auth: { readonly email: string; readonly password: string };
}

/**
 * Starts a PocketBase server for the queue and returns the driver.
 * @returns The driver (its `close` stops the server too).
 */
export async function createNxsQueueDriver(): Promise<NxsQueueBench> {
  const server = await startPocketBase({ name: "bench-queue", hookFiles: [queueHookPiece()] });
  const id = recordId();
  const gateway = { id, email: `${id}@queue.bench`, password: `pw-${id}-secret`, role: NodeRole.Gateway };
  // The fleet's /nxs/ rate limit is meant for a gateway's normal load, not a bench's flood: off here.
  await ensureSchema(server.client(), {
    collections: createNxsCollectionRegistry().register(...queueCollections()),
    rateLimits: false,
  });
  await ensureNode(server.client(), gateway);
  const auth = { email: gateway.email, password: gateway.password };
  const driver = nxsDriverOn(server.url, auth);
  return {
    driver: { ...driver, close: async () => (await driver.close(), await server.destroy()) },
    server,
    auth,
  };
}

/**
 * The nxs-sync driver on a running server prepared by {@link createNxsQueueDriver}.
 * @returns The driver (its `close` closes its backends, not the server).
 */
export function nxsDriverOn(
  url: string,
  auth: { readonly email: string; readonly password: string },
): QueueDriver {
  const backends = new Set<PocketBaseQueueBackend>();
  // A backend per measurement, closed after it: no realtime session of an earlier measurement is
  // left on the server (each one costs every later write a filter check).
  const open = (): Queue<typeof schema> & { close(): Promise<void> } => {
    const backend = createPocketBaseQueueBackend({
      endpoints: [url],
      auth,
      logger: silentLogger,
    });
    backends.add(backend);
    const close = async () => {
      backends.delete(backend);
      await backend.close();
    };
    return Object.assign(createQueue({ name: `q${recordId()}`, schema, backend }), { close });
  };
  const payloads = (n: number) => Array.from({ length: n }, (_, i) => ({ payload: { i } }));
  const driver: QueueDriver = {
    async enqueueBulk(n) {
      const q = open();
      const t0 = nowMs();
      for (let i = 0; i < n; i += 500) await q.addBulk(payloads(Math.min(500, n - i)));
      const rate = (n / (nowMs() - t0)) * 1000;
      await q.close();
      return rate;
    },
    async enqueueOne(n) {
      const q = open();
      const t0 = nowMs();
      for (let i = 0; i < n; i++) await q.add({ i });
      const rate = (n / (nowMs() - t0)) * 1000;
      await q.close();
      return rate;
    },
    async drain(n, concurrency, batched) {
      const q = open();
      for (let i = 0; i < n; i += 500) await q.addBulk(payloads(Math.min(500, n - i)));
      const c = counter(n);
      const t0 = nowMs();
      const w = createWorker(q, async () => c.tick(), {
        concurrency,
        ...(batched ? { prefetch: BATCHED_PREFETCH } : { batchSize: 1, settleBatch: 1, settleDelayMs: 0 }),
        logger: silentLogger,
      });
      await c.done;
      const rate = (n / (nowMs() - t0)) * 1000;
      await w.close({ timeoutMs: 5_000 });
      await q.close();
      return rate;
    },
    async drainLimited(n, concurrency, flow) {
      const q = open();
      await limit(q, flow);
      const jobs = Array.from({ length: n }, (_, i) => ({
        payload: { i },
        options: { priority: priorityOf(i), ...(i % 2 === 0 ? { group: "provider-a" } : {}) },
      }));
      for (let i = 0; i < n; i += 500) await q.addBulk(jobs.slice(i, i + 500));
      const c = counter(n);
      const t0 = nowMs();
      const w = createWorker(q, async () => c.tick(), { concurrency, logger: silentLogger });
      await c.done;
      const rate = (n / (nowMs() - t0)) * 1000;
      await w.close({ timeoutMs: 5_000 });
      await q.close();
      return rate;
    },
    async latencyLimited(n, perSecond, flow) {
      return latencyOf(
        n,
        perSecond,
        async (q) => limit(q, flow),
        (i) => ({
          priority: priorityOf(i),
          ...(i % 2 === 0 ? { group: "provider-a" } : {}),
        }),
      );
    },
    async latency(n, perSecond) {
      return latencyOf(
        n,
        perSecond,
        async () => {},
        () => ({}),
      );
    },
    async close() {
      await Promise.all([...backends].map((b) => b.close()));
    },
  };
  async function limit(q: Queue<typeof schema>, flow: FlowBench): Promise<void> {
    await q.setLimits({ rate: { max: flow.ratePerSecond, intervalMs: 1000 } });
    await q.setLimits({ concurrency: flow.groupConcurrency }, { group: "provider-a" });
  }
  async function latencyOf(
    n: number,
    perSecond: number,
    prepare: (q: Queue<typeof schema>) => Promise<void>,
    options: (i: number) => AddOptions,
  ): Promise<number[]> {
    const q = open();
    await prepare(q);
    const delays: number[] = [];
    const c = counter(n);
    const w = createWorker(
      q,
      async ({ payload }) => {
        delays.push(nowMs() - (payload.t ?? 0));
        c.tick();
      },
      { concurrency: LATENCY_CONCURRENCY, logger: silentLogger },
    );
    // Let the worker's realtime subscription open before the first job.
    await new Promise((r) => setTimeout(r, 500));
    await paced(n, perSecond, (i) => q.add({ t: nowMs() }, options(i)));
    await c.done;
    await w.close({ timeoutMs: 5_000 });
    await q.close();
    return delays;
  }
  return driver;
}
