// A queue worker as a child process (`node --import tsx worker-process.ts '<config JSON>'`), for
// the tests that SIGKILL or SIGSTOP a worker or race several processes. It drives the backend
// directly (claim, heartbeat, settle) and reports each step to its parent over IPC.
import { silentLogger } from "@nxs-sync/core";
import { createPocketBaseQueueBackend } from "@nxs-sync/queue/pocketbase";

/** What the parent passes. */
export interface WorkerConfig {
  readonly name: string;
  readonly endpoints: readonly string[];
  readonly auth: { readonly email: string; readonly password: string };
  readonly queue: string;
  readonly leaseMs: number;
  /** Jobs per claim. */
  readonly max: number;
  /** How long one job takes (ms). */
  readonly jobMs: number;
  /** Heartbeat every this many ms while a job runs (0: none). */
  readonly heartbeatMs: number;
  /** Idle claims before the worker exits (0: never; it waits for "stop"). */
  readonly idleRounds: number;
  readonly pollMs: number;
  readonly failover?: Record<string, number>;
  /** Waits for the parent's "go" before the first claim (so racers start together). */
  readonly waitForGo?: boolean;
}

/** What the worker reports. */
export type WorkerMessage =
  | { type: "ready" }
  | { type: "start"; worker: string; id: string; attempt: number; epoch: number }
  | { type: "heartbeat-lost"; worker: string; id: string; attempt: number }
  | { type: "settled"; worker: string; id: string; attempt: number; ok: boolean; code?: string }
  | { type: "error"; worker: string; message: string }
  | { type: "exit"; worker: string };

const cfg = JSON.parse(process.argv[2] ?? "{}") as WorkerConfig;
const send = (m: WorkerMessage) => process.send?.(m);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const backend = createPocketBaseQueueBackend({
  endpoints: cfg.endpoints,
  auth: cfg.auth,
  logger: silentLogger,
  ...(cfg.failover === undefined ? {} : { failover: cfg.failover }),
});
let stopping = false;
let go: () => void = () => {};
const started = new Promise<void>((resolve) => {
  go = resolve;
});
process.on("message", (m) => {
  if (m === "stop") stopping = true;
  if (m === "go") go();
});

async function run(c: Awaited<ReturnType<typeof backend.claim>>[number]): Promise<void> {
  const { id, attempt, epoch } = c.job;
  send({ type: "start", worker: cfg.name, id, attempt, epoch });
  const until = Date.now() + cfg.jobMs;
  while (Date.now() < until) {
    await sleep(Math.min(cfg.heartbeatMs > 0 ? cfg.heartbeatMs : cfg.jobMs, Math.max(0, until - Date.now())));
    if (cfg.heartbeatMs > 0 && Date.now() < until) {
      const [beat] = await backend.heartbeat([{ id, token: c.token, leaseMs: cfg.leaseMs }]);
      if (beat?.ok !== true) send({ type: "heartbeat-lost", worker: cfg.name, id, attempt });
    }
  }
  // Settles even after a lost heartbeat: the server must refuse it (lease-lost) and change nothing.
  const [r] = await backend.settle([
    { id, token: c.token, kind: "complete", result: { by: cfg.name, attempt } },
  ]);
  send({
    type: "settled",
    worker: cfg.name,
    id,
    attempt,
    ok: r?.ok === true,
    ...(r?.ok === false ? { code: r.code } : {}),
  });
}

async function main(): Promise<void> {
  send({ type: "ready" });
  if (cfg.waitForGo === true) await started;
  let idle = 0;
  while (!stopping) {
    let claimed: Awaited<ReturnType<typeof backend.claim>> = [];
    try {
      claimed = await backend.claim({
        queue: cfg.queue,
        worker: cfg.name,
        leaseMs: cfg.leaseMs,
        max: cfg.max,
      });
      await Promise.all(claimed.map(run));
    } catch (e) {
      send({ type: "error", worker: cfg.name, message: (e as Error).message });
    }
    if (claimed.length > 0) {
      idle = 0;
      continue;
    }
    if (cfg.idleRounds > 0 && ++idle >= cfg.idleRounds) break;
    await sleep(cfg.pollMs);
  }
  await backend.close();
  send({ type: "exit", worker: cfg.name });
  process.disconnect?.();
}

void main();
