// A child process of flow.int.test.ts (`node --import tsx flow-process.ts '<config>'`): a real
// queue worker (createWorker over its own PocketBase backend) whose handler holds each job for
// the time its payload says and reports every run to the parent over IPC: the outside ledger.
import { silentLogger } from "@nxs-sync/core";
import { createQueue, createWorker } from "@nxs-sync/queue";
import { createPocketBaseQueueBackend } from "@nxs-sync/queue/pocketbase";
import { z } from "zod";

/** What the parent passes. */
export interface FlowConfig {
  readonly name: string;
  readonly endpoints: readonly string[];
  readonly auth: { readonly email: string; readonly password: string };
  readonly queue: string;
  readonly concurrency: number;
  /** The worker's polling backstop (ms). */
  readonly pollMs?: number;
}

/** What a child reports: a run's job, group and weight, the claim's time (the server's clock) and the handler's span. */
export type FlowMessage =
  | { type: "ready"; name: string }
  | {
      type: "ran";
      name: string;
      id: string;
      group: string;
      weight: number;
      claimedAt: number;
      from: number;
      to: number;
    }
  | { type: "error"; name: string; message: string };

const cfg = JSON.parse(process.argv[2] ?? "{}") as FlowConfig;
const send = (m: FlowMessage) => process.send?.(m);
const backend = createPocketBaseQueueBackend({
  endpoints: cfg.endpoints,
  auth: cfg.auth,
  logger: silentLogger,
});
const queue = createQueue({ name: cfg.queue, schema: z.object({ holdMs: z.number() }), backend });
const stop = new Promise<void>((resolve) => process.on("message", (m) => m === "stop" && resolve()));

async function main(): Promise<void> {
  await backend.counts(cfg.queue); // logged in and reachable
  const worker = createWorker(
    queue,
    async ({ payload, job }) => {
      // From after the claim committed to before the settlement is sent: inside the server's hold.
      const from = Date.now();
      await new Promise((r) => setTimeout(r, payload.holdMs));
      const to = Date.now();
      send({
        type: "ran",
        name: cfg.name,
        id: job.id,
        group: job.group ?? "",
        weight: job.weight ?? 1,
        // The claim stamps updatedAt with the server's clock (this machine's: the test is local).
        claimedAt: job.updatedAt,
        from,
        to,
      });
      return "ok";
    },
    {
      concurrency: cfg.concurrency,
      pollMs: cfg.pollMs ?? 1000,
      logger: silentLogger,
      onError: (e) => send({ type: "error", name: cfg.name, message: `${e.code}: ${e.message}` }),
    },
  );
  send({ type: "ready", name: cfg.name });
  await stop;
  await worker.close();
}

main()
  .catch((e: unknown) => send({ type: "error", name: cfg.name, message: String(e) }))
  .finally(async () => {
    await backend.close();
    process.disconnect?.();
  });
