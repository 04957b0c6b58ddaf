import { isNxsError, silentLogger } from "@nxs-sync/core";
import { blobRefSchema, createQueue, createWorker, type JobEvent, type Worker } from "@nxs-sync/queue";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import { backendOf, closeBackends, newId, startQueueServer } from "./servers.js";

/**
 * The typed queue and worker over the PocketBase backend on a real server: a bad payload refused
 * at enqueue naming the field, a handler that outlives its lease kept alive by heartbeats, its
 * progress and result, events seen by another process's watcher, a large payload by blob.
 */
const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const workers: Worker[] = [];
beforeAll(async () => {
  server = await startQueueServer(servers, "queue-typed");
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.close({ timeoutMs: 2000 })));
  await closeBackends();
});

const schema = z.object({ text: z.string(), words: z.number().int().min(0) });

it("runs typed jobs end to end: refuses a bad payload, keeps a long job's lease, reports progress and results", async () => {
  const name = `typed-${newId()}`;
  const queue = createQueue({ name, schema, backend: backendOf([server.url]), logger: silentLogger });
  const watcher = createQueue({ name, schema, backend: backendOf([server.url]), logger: silentLogger });
  const events: JobEvent[] = [];
  for (const type of ["added", "active", "progress", "completed"] as const) {
    watcher.on(type, (e) => events.push(e));
  }
  const refused = await queue.add({ text: 7 as unknown as string, words: 1 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isNxsError(refused) && refused.code).toBe("schema/invalid");
  expect((refused as Error).message).toContain("text");
  expect(await queue.counts()).toMatchObject({ waiting: 0 });

  const long = await queue.add({ text: "long", words: 1 });
  const ids = await queue.addBulk(
    Array.from({ length: 12 }, (_, i) => ({ payload: { text: `t${i}`, words: i } })),
  );
  const seenAttempts: number[] = [];
  const worker = createWorker(
    queue,
    async (job) => {
      seenAttempts.push(job.attempt);
      if (job.id === long) {
        // Twice the lease: the heartbeats keep it.
        for (let i = 0; i < 4; i++) {
          job.progress({ step: i });
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      return { upper: job.payload.text.toUpperCase() };
    },
    { concurrency: 4, leaseMs: 1000, pollMs: 200, logger: silentLogger },
  );
  workers.push(worker);
  await waitFor(async () => (await queue.counts()).completed === 13, {
    timeoutMs: 20_000,
    description: "all done",
  });
  expect(seenAttempts.every((a) => a === 1)).toBe(true);
  expect(seenAttempts).toHaveLength(13);
  expect(await queue.getJob(long)).toMatchObject({
    state: "completed",
    attempt: 1,
    result: { upper: "LONG" },
  });
  expect((await queue.getJob(ids[3]!))?.result).toEqual({ upper: "T3" });
  await waitFor(() => events.some((e) => e.type === "completed" && e.id === long), {
    description: "the watcher's completed event",
  });
  expect(events.some((e) => e.type === "progress" && e.id === long)).toBe(true);
});

it("carries a large payload by blob reference", async () => {
  const name = `blob-${newId()}`;
  const backend = backendOf([server.url]);
  const queue = createQueue({
    name,
    schema: z.object({ audio: blobRefSchema }),
    backend,
    logger: silentLogger,
  });
  const bytes = new Uint8Array(600_000).map((_, i) => i % 253);
  const ref = await queue.putBlob(bytes, { contentType: "audio/wav" });
  const id = await queue.add({ audio: ref });
  let got: Uint8Array | undefined;
  workers.push(
    createWorker(
      queue,
      async (job) => {
        got = await backend.blobs.get(job.payload.audio);
        return got?.byteLength ?? 0;
      },
      { pollMs: 200, logger: silentLogger },
    ),
  );
  await waitFor(async () => (await queue.getJob(id))?.state === "completed", { description: "the blob job" });
  expect(got).toEqual(bytes);
  expect((await queue.getJob(id))?.result).toBe(600_000);
});
