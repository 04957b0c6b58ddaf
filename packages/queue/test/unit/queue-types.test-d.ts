import { createManualScheduler } from "@nxs-sync/core";
import { describe, expectTypeOf, it } from "vitest";
import { z } from "zod";
import type { JobEvent } from "../../src/backend.js";
import type { JobId } from "../../src/job.js";
import { createMemoryQueueBackend } from "../../src/memory-backend.js";
import { createQueue } from "../../src/queue.js";
import { createWorker } from "../../src/worker.js";

const schema = z.object({ url: z.string(), retries: z.number().default(0) });
const backend = createMemoryQueueBackend({ scheduler: createManualScheduler() });
const queue = createQueue({ name: "t", schema, backend });

describe("typed queues and workers (types)", () => {
  it("takes the schema's input at add and gives its output to getJob and the handler", () => {
    expectTypeOf(queue.add).parameter(0).toEqualTypeOf<{ url: string; retries?: number | undefined }>();
    expectTypeOf(queue.add({ url: "u" })).resolves.toEqualTypeOf<JobId>();
    // @ts-expect-error: url is required
    void queue.add({ retries: 1 });
    createWorker(queue, async ({ payload, attempt, signal }) => {
      expectTypeOf(payload).toEqualTypeOf<{ url: string; retries: number }>();
      expectTypeOf(attempt).toEqualTypeOf<number>();
      expectTypeOf(signal).toEqualTypeOf<AbortSignal>();
      return { ok: true };
    });
    type Got = NonNullable<Awaited<ReturnType<typeof queue.getJob>>>;
    expectTypeOf<Got["payload"]>().toEqualTypeOf<{ url: string; retries: number }>();
  });

  it("types each event's payload by its name, and a handler's result as JSON", () => {
    queue.on("failed", (e) => {
      expectTypeOf(e).toEqualTypeOf<Extract<JobEvent, { type: "failed" }>>();
      expectTypeOf(e.final).toEqualTypeOf<boolean>();
    });
    // @ts-expect-error: not an event
    queue.on("finished", () => {});
    // @ts-expect-error: a function is not JSON
    createWorker(queue, async () => () => 1);
  });
});
