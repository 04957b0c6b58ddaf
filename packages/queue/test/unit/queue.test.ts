import { createManualScheduler, createSeededRandom, isNxsError, type Logger } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import type { JobEvent } from "../../src/backend.js";
import { blobRefSchema } from "../../src/blob-ref.js";
import { type JobId, JobState } from "../../src/job.js";
import { createMemoryQueueBackend } from "../../src/memory-backend.js";
import { createQueue } from "../../src/queue.js";
import { retryDelay } from "../../src/retry-delay.js";

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const schema = z.object({ to: z.string().email(), n: z.number().int().default(1) });

function setup(over: { maxPayloadBytes?: number; maxBlobBytes?: number; logger?: Logger } = {}) {
  const scheduler = createManualScheduler({ now: 1_000_000 });
  const backend = createMemoryQueueBackend({ scheduler, maxBlobBytes: over.maxBlobBytes ?? 1024 });
  const queue = createQueue({
    name: "mail",
    schema,
    backend,
    random: createSeededRandom(1),
    defaults: { attempts: 4, backoff: { type: "fixed", delayMs: 50 } },
    ...(over.maxPayloadBytes === undefined ? {} : { maxPayloadBytes: over.maxPayloadBytes }),
    ...(over.logger === undefined ? {} : { logger: over.logger }),
  });
  return { scheduler, backend, queue };
}

const caught = async (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe("createQueue", () => {
  it("adds a job with the queue's defaults, the schema's output as payload, and a 15-char id", async () => {
    const { queue, scheduler } = setup();
    const id = await queue.add({ to: "a@b.io" }, { delayMs: 100, timeoutMs: 5000 });
    expect(id).toMatch(/^[a-z0-9]{15}$/);
    const job = await queue.getJob(id);
    expect(job).toMatchObject({
      id,
      queue: "mail",
      state: JobState.Waiting,
      payload: { to: "a@b.io", n: 1 },
      maxAttempts: 4,
      backoff: { type: "fixed", delayMs: 50 },
      timeoutMs: 5000,
      runAt: scheduler.now() + 100,
    });
    const n: number = job!.payload.n;
    expect(n).toBe(1);
    expect(await queue.counts()).toMatchObject({ delayed: 1 });
  });

  it("makes ids from the injected random source, and takes the producer's own id idempotently", async () => {
    const a = setup();
    const b = setup();
    expect(await a.queue.add({ to: "a@b.io" })).toBe(await b.queue.add({ to: "a@b.io" }));
    const own = "order000000001x";
    expect(await a.queue.add({ to: "a@b.io" }, { id: own })).toBe(own);
    expect(await a.queue.add({ to: "c@d.io" }, { id: own })).toBe(own);
    expect((await a.queue.getJob(own as JobId))!.payload.to).toBe("a@b.io");
    const bad = await caught(a.queue.add({ to: "a@b.io" }, { id: "Not-An-Id" }));
    expect(bad).toMatchObject({ code: "schema/invalid" });
    expect(String((bad as Error).message)).toContain("options.id");
  });

  it("refuses a payload that fails the schema with schema/invalid naming the field; nothing is enqueued", async () => {
    const { queue } = setup();
    const error = await caught(queue.add({ to: "not-an-email" }));
    expect(isNxsError(error) && error.code).toBe("schema/invalid");
    expect((error as Error).message).toContain("payload.to");
    expect((error as { issues: { path: unknown[] }[] }).issues[0]!.path).toEqual(["to"]);
    expect(await queue.counts()).toMatchObject({ waiting: 0, delayed: 0 });
  });

  it("addBulk stores all jobs in one call, or none when one is refused (its index named)", async () => {
    const { queue } = setup();
    const ids = await queue.addBulk([
      { payload: { to: "a@b.io" } },
      { payload: { to: "c@d.io", n: 2 }, options: { attempts: 1 } },
    ]);
    expect(ids).toHaveLength(2);
    expect((await queue.getJob(ids[1]!))!.maxAttempts).toBe(1);
    const error = await caught(
      queue.addBulk([{ payload: { to: "e@f.io" } }, { payload: { to: "g@h.io", n: 1.5 } }]),
    );
    expect(error).toMatchObject({ code: "schema/invalid" });
    expect((error as Error).message).toContain("jobs[1].payload.n");
    expect((await queue.counts()).waiting).toBe(2);
    expect(await queue.addBulk([])).toEqual([]);
  });

  it("refuses a payload whose JSON is over maxPayloadBytes with queue/too-large (default 1 MiB)", async () => {
    const small = setup({ maxPayloadBytes: 64 });
    const big = { to: `${"x".repeat(80)}@b.io` };
    expect(await caught(small.queue.add(big))).toMatchObject({ code: "queue/too-large" });
    const dflt = setup();
    const huge = z.object({ blob: z.string() });
    const q = createQueue({ name: "big", schema: huge, backend: dflt.backend });
    expect(await caught(q.add({ blob: "y".repeat(1024 * 1024) }))).toMatchObject({ code: "queue/too-large" });
    await q.add({ blob: "y".repeat(1024 * 1024 - 20) });
    expect((await q.counts()).waiting).toBe(1);
  });

  it("refuses bad job options with config/invalid naming the option", async () => {
    const { queue } = setup();
    const error = await caught(queue.add({ to: "a@b.io" }, { attempts: 0 }));
    expect(error).toMatchObject({ code: "config/invalid" });
    expect((error as Error).message).toContain("options.attempts");
    expect(() => createQueue({ name: "", schema, backend: setup().backend })).toThrow(/name/);
  });

  it("reports a stored payload that no longer matches the schema as queue/invalid-payload", async () => {
    const { queue, backend } = setup();
    const id = "bad000000000001" as JobId;
    await backend.enqueue([
      { id, queue: "mail", payload: { to: 3 }, maxAttempts: 1, backoff: {}, timeoutMs: 0 },
    ]);
    expect(await caught(queue.getJob(id))).toMatchObject({ code: "queue/invalid-payload" });
    expect(await queue.getJob("none00000000000" as JobId)).toBeUndefined();
  });

  it("cancels, redrives and cleans through the backend's admin capability", async () => {
    const { queue, backend, scheduler } = setup();
    const a = await queue.add({ to: "a@b.io" }, { attempts: 1 });
    const b = await queue.add({ to: "b@b.io" }, { delayMs: 10_000 });
    const [c] = await backend.claim({ queue: "mail", worker: "w", leaseMs: 100, max: 1 });
    await backend.settle([{ id: a, token: c!.token, kind: "fail", code: "e", message: "m" }]);
    expect(await queue.cancel(b)).toBe(JobState.Cancelled);
    expect(await queue.redrive()).toBe(1);
    expect((await queue.getJob(a))!.generation).toBe(1);
    scheduler.advance(10);
    expect(await queue.clean({ before: scheduler.now() })).toBe(1);
    expect(await queue.getJob(b)).toBeUndefined();
  });

  it("emits job events to listeners by type; a throwing listener is logged, others still called", async () => {
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, error() {}, warn: (m) => warnings.push(m) };
    const { queue } = setup({ logger });
    const added: JobEvent[] = [];
    queue.on("added", () => {
      throw new Error("listener bug");
    });
    const stop = queue.on("added", (e) => added.push(e));
    const id = await queue.add({ to: "a@b.io" });
    await flush();
    expect(added).toMatchObject([{ type: "added", id }]);
    expect(warnings.join()).toContain("added");
    stop();
    await queue.add({ to: "a@b.io" });
    await flush();
    expect(added).toHaveLength(1);
  });

  it("puts large bytes in a blob referenced from the payload, with a size limit (queue/too-large)", async () => {
    const { backend } = setup({ maxBlobBytes: 1000 });
    const q = createQueue({ name: "audio", schema: z.object({ audio: blobRefSchema }), backend });
    const bytes = new Uint8Array(1000).fill(7);
    const audio = await q.putBlob(bytes, { contentType: "audio/wav" });
    const id = await q.add({ audio });
    const job = await q.getJob(id);
    expect(await q.getBlob(job!.payload.audio)).toEqual(bytes);
    expect(await caught(q.putBlob(new Uint8Array(1001)))).toMatchObject({ code: "queue/too-large" });
    await q.deleteBlob(audio);
    expect(await caught(q.getBlob(audio))).toMatchObject({ code: "queue/not-found" });
    expect(await caught(q.add({ audio: { size: 3 } as never }))).toMatchObject({ code: "schema/invalid" });
  });

  it("refuses every call after close with queue/closed", async () => {
    const { queue } = setup();
    await queue.close();
    expect(await caught(queue.add({ to: "a@b.io" }))).toMatchObject({ code: "queue/closed" });
    expect(await caught(queue.counts())).toMatchObject({ code: "queue/closed" });
  });
});

describe("retryDelay", () => {
  it("is fixed, or exponential with equal jitter within [b/2, b] and capped by maxMs", () => {
    const random = createSeededRandom(3);
    expect(retryDelay({ type: "fixed", delayMs: 300 }, 5, random)).toBe(300);
    for (let n = 1; n <= 12; n++) {
      const b = Math.min(10_000, 100 * 2 ** (n - 1));
      const d = retryDelay({ delayMs: 100, maxMs: 10_000 }, n, random);
      expect(d).toBeGreaterThanOrEqual(b / 2);
      expect(d).toBeLessThanOrEqual(b);
    }
    expect(retryDelay({ delayMs: 0 }, 3, random)).toBe(0);
  });
});
