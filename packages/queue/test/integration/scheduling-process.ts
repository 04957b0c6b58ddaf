// A child process of scheduling.int.test.ts (`node --import tsx scheduling-process.ts '<config>'`):
// a cron scheduler, a racing producer, or a singleton worker, each over its own PocketBase
// backend (its home server first), reporting to the parent over IPC.
import { silentLogger } from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { createCronScheduler, type JobKey, type NewJob } from "@nxs-sync/queue";
import { createPocketBaseQueueBackend } from "@nxs-sync/queue/pocketbase";

/** What the parent passes. */
export interface SchedulingConfig {
  readonly mode: "cron" | "enqueue" | "singleton";
  readonly name: string;
  readonly endpoints: readonly string[];
  readonly auth: { readonly email: string; readonly password: string };
  readonly queue: string;
  /** enqueue: the jobs to add, one request each, all at once after "go". */
  readonly jobs?: readonly { readonly id: string; readonly key: JobKey; readonly payload: number }[];
  /** singleton: how long a job is held (ms); the worker exits after 25 empty claims in a row. */
  readonly holdMs?: number;
}

/** What a child reports. */
export type SchedulingMessage =
  | { type: "ready"; name: string }
  | { type: "fired"; name: string; tick: number; jobId: string; fired: boolean; reason?: string }
  | { type: "enqueued"; name: string; results: { id: string; created: boolean; deduped?: string }[] }
  | { type: "held"; name: string; id: string; from: number; to: number }
  | { type: "error"; name: string; message: string };

const cfg = JSON.parse(process.argv[2] ?? "{}") as SchedulingConfig;
const send = (m: SchedulingMessage) => process.send?.(m);
const backend = createPocketBaseQueueBackend({
  endpoints: cfg.endpoints,
  auth: cfg.auth,
  logger: silentLogger,
});
const go = new Promise<void>((resolve) => process.on("message", (m) => m === "go" && resolve()));
const stop = new Promise<void>((resolve) => process.on("message", (m) => m === "stop" && resolve()));

async function main(): Promise<void> {
  await backend.counts(cfg.queue); // logged in and reachable
  if (cfg.mode === "cron") {
    const scheduler = createTimerScheduler();
    const cron = createCronScheduler({
      queue: { name: cfg.queue, backend },
      scheduler,
      refreshMs: 500,
      logger: silentLogger,
      onFire: (e) =>
        send({
          type: "fired",
          name: cfg.name,
          tick: e.tick,
          jobId: e.jobId,
          fired: e.fired,
          ...(e.reason ? { reason: e.reason } : {}),
        }),
    });
    send({ type: "ready", name: cfg.name });
    await stop;
    await cron.stop();
  } else if (cfg.mode === "enqueue") {
    send({ type: "ready", name: cfg.name });
    await go;
    const jobs = (cfg.jobs ?? []).map(
      (j): NewJob => ({
        id: j.id as NewJob["id"],
        queue: cfg.queue,
        payload: { n: j.payload },
        maxAttempts: 1,
        backoff: {},
        timeoutMs: 0,
        key: j.key,
      }),
    );
    const results = (await Promise.all(jobs.map((j) => backend.enqueue([j])))).flat();
    send({ type: "enqueued", name: cfg.name, results: results.map((r) => ({ ...r })) });
  } else {
    send({ type: "ready", name: cfg.name });
    await go;
    for (let idle = 0; idle < 25; ) {
      const [c] = await backend.claim({ queue: cfg.queue, worker: cfg.name, leaseMs: 30_000, max: 1 });
      if (c === undefined) {
        idle++;
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      idle = 0;
      // From after the claim committed to before the settle is sent: inside the server's hold.
      const from = Date.now();
      await new Promise((r) => setTimeout(r, cfg.holdMs ?? 50));
      const to = Date.now();
      await backend.settle([{ id: c.job.id, token: c.token, kind: "complete" }]);
      send({ type: "held", name: cfg.name, id: c.job.id, from, to });
    }
  }
}

main()
  .catch((e: unknown) => send({ type: "error", name: cfg.name, message: String(e) }))
  .finally(async () => {
    await backend.close();
    process.disconnect?.();
  });
