import { createManualScheduler, createSeededRandom, silentLogger } from "@nxs-sync/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { RetryLaterError, UnrecoverableJobError } from "../../src/errors.js";
import { type JobId, JobState } from "../../src/job.js";
import { createMemoryQueueBackend } from "../../src/memory-backend.js";
import { createQueue } from "../../src/queue.js";
import { createWorker } from "../../src/worker.js";

/**
 * Seeded drains: several workers on one memory backend run jobs whose handlers succeed, throw,
 * ask to retry later, give up, or hang until their per-job timeout aborts them. Every
 * job ends in a terminal state, none is lost, a completed job's result is the one its handler
 * returned, and no job spends more attempts than it was given.
 */

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
type Outcome = "ok" | "throw" | "later" | "unrecoverable" | "hang";
const outcome = fc.constantFrom<Outcome>("ok", "ok", "ok", "throw", "later", "unrecoverable", "hang");

describe("workers draining a queue (seeded, memory backend)", () => {
  it("finish every job once its outcome allows, losing none", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            attempts: fc.integer({ min: 1, max: 3 }),
            script: fc.array(outcome, { minLength: 1, maxLength: 4 }),
          }),
          {
            minLength: 1,
            maxLength: 25,
          },
        ),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        async (specs, concurrency, workerCount) => {
          const scheduler = createManualScheduler({ now: 1_000_000 });
          const backend = createMemoryQueueBackend({ scheduler });
          const queue = createQueue({
            name: "drain",
            schema: z.object({ i: z.number() }),
            backend,
            random: createSeededRandom(1),
          });
          const ids = await queue.addBulk(
            specs.map((s, i) => ({
              payload: { i },
              options: { attempts: s.attempts, backoff: { delayMs: 50 }, timeoutMs: 200 },
            })),
          );
          const index = new Map<JobId, number>(ids.map((id, i) => [id, i]));
          const calls = new Map<JobId, number>();
          const workers = Array.from({ length: workerCount }, (_, w) =>
            createWorker(
              queue,
              async ({ id, signal }) => {
                const n = calls.get(id) ?? 0;
                calls.set(id, n + 1);
                const script = specs[index.get(id)!]!.script;
                const step = script[Math.min(n, script.length - 1)];
                // After its script, a job succeeds (a hang at the end would block it forever).
                const what = n >= script.length ? "ok" : step;
                if (what === "throw") throw new Error(`boom ${n}`);
                if (what === "later") throw new RetryLaterError(30);
                if (what === "unrecoverable") throw new UnrecoverableJobError("no");
                if (what === "hang") {
                  await new Promise((resolve) => signal.addEventListener("abort", resolve));
                  return "late";
                }
                return { i: index.get(id)!, n };
              },
              {
                scheduler,
                concurrency,
                leaseMs: 300,
                heartbeatMs: 100,
                pollMs: 200,
                name: `w${w}`,
                random: createSeededRandom(w),
                logger: silentLogger,
              },
            ),
          );
          for (let t = 0; t < 400; t++) {
            const counts = await queue.counts();
            if (counts.completed + counts.failed === ids.length) break;
            scheduler.advance(25);
            await flush();
          }
          await Promise.all(
            workers.map(async (w) => {
              const closing = w.close({ timeoutMs: 100 });
              for (let i = 0; i < 20; i++) {
                scheduler.advance(10);
                await flush();
              }
              await closing;
            }),
          );
          for (const [i, id] of ids.entries()) {
            const job = await queue.getJob(id);
            expect(job, `job ${i} lost`).toBeDefined();
            expect(job!.attemptsMade).toBeLessThanOrEqual(job!.maxAttempts);
            if (job!.state === JobState.Completed) expect(job!.result).toMatchObject({ i });
            expect([JobState.Completed, JobState.Failed]).toContain(job!.state);
            if (job!.state === JobState.Failed && specs[i]!.script[0] === "hang" && job!.maxAttempts === 1) {
              expect(job!.reason).toBe("queue/timeout");
            }
          }
        },
      ),
      { seed: 4242, numRuns: 100 },
    );
  });
});
