/**
 * A seeded property test of priorities and dedupe on the memory backend against a plain model:
 * random sequences of adds (keys in every mode, random priorities), claims, completions and time
 * steps; every enqueue answer, every claim and the final states must match the model's.
 */
import { createManualScheduler } from "@nxs-sync/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DedupeMode, JobId, JobKey, LeaseToken, NewJob } from "../../src/job.js";
import { PRIORITY_STEP_MS } from "../../src/job.js";
import { createMemoryQueueBackend } from "../../src/memory-backend.js";

type Op =
  | { readonly kind: "add"; readonly key: number; readonly priority: number }
  | { readonly kind: "claim" }
  | { readonly kind: "complete" }
  | { readonly kind: "advance"; readonly ms: number };

const MODES: readonly (DedupeMode | "none")[] = ["none", "simple", "throttle", "debounce", "singleton"];
const TTL = 1000;

interface ModelJob {
  readonly id: string;
  readonly key?: string;
  readonly mode?: DedupeMode;
  readonly seq: number;
  readonly priority: number;
  runAt: number;
  payload: number;
  state: "waiting" | "active" | "completed";
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("add" as const), key: fc.nat(9), priority: fc.nat(3) }),
  fc.constant({ kind: "claim" as const }),
  fc.constant({ kind: "complete" as const }),
  fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 1500 }) }),
);

describe("priorities and dedupe against a model (fast-check, seeded)", () => {
  it("matches the model on random sequences", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60 }), async (ops) => {
        const scheduler = createManualScheduler({ now: 1_000_000 });
        const backend = createMemoryQueueBackend({ scheduler });
        const model: ModelJob[] = [];
        const keys = new Map<string, { job: string; until: number }>();
        const tokens = new Map<string, LeaseToken>();
        let n = 0;
        for (const op of ops) {
          const now = scheduler.now();
          if (op.kind === "advance") {
            scheduler.advance(op.ms);
          } else if (op.kind === "add") {
            // Keys 0-1: no key; 2-3 simple; 4-5 throttle; 6-7 debounce; 8-9 singleton.
            const mode = MODES[Math.floor(op.key / 2)]!;
            const key: JobKey | undefined =
              mode === "none"
                ? undefined
                : {
                    key: `k${op.key}`,
                    mode,
                    ...(mode === "throttle" || mode === "debounce" ? { ttlMs: TTL } : {}),
                  };
            const id = `j${String(++n).padStart(14, "0")}` as JobId;
            const job: NewJob = {
              id,
              queue: "q",
              payload: n,
              maxAttempts: 1,
              backoff: {},
              timeoutMs: 0,
              priority: op.priority,
              ...(key ? { key } : {}),
            };
            // The model's answer.
            let expected: { id: string; created: boolean; deduped?: string } = { id, created: true };
            let runAt = now;
            const row = key ? keys.get(key.key) : undefined;
            const holder = row ? model.find((j) => j.id === row.job) : undefined;
            if (key?.mode === "simple" && holder && holder.state !== "completed")
              expected = { id: holder.id, created: false, deduped: "ignored" };
            if (key?.mode === "throttle" && row && row.until > now)
              expected = { id: row.job, created: false, deduped: "ignored" };
            if (key?.mode === "debounce") {
              runAt = now + TTL;
              if (holder && holder.state === "waiting") {
                holder.payload = n;
                holder.runAt = runAt;
                keys.set(key.key, { job: holder.id, until: now + TTL });
                expected = { id: holder.id, created: false, deduped: "replaced" };
              }
            }
            if (expected.created) {
              model.push({
                id,
                seq: n,
                priority: op.priority,
                runAt,
                payload: n,
                state: "waiting",
                ...(key ? { key: key.key, mode: key.mode } : {}),
              });
              if (key) keys.set(key.key, { job: id, until: now + (key.ttlMs ?? 0) });
            }
            expect(await backend.enqueue([job])).toEqual([expected]);
          } else if (op.kind === "claim") {
            const live = new Set(
              model.filter((j) => j.state === "active" && j.mode === "singleton").map((j) => j.key),
            );
            const next = model
              .filter(
                (j) =>
                  j.state === "waiting" && j.runAt <= now && !(j.mode === "singleton" && live.has(j.key)),
              )
              .sort(
                (a, b) =>
                  a.runAt - a.priority * PRIORITY_STEP_MS - (b.runAt - b.priority * PRIORITY_STEP_MS) ||
                  a.seq - b.seq,
              )[0];
            // A long lease: no stall in this test (stalls are the job model's).
            const claimed = await backend.claim({ queue: "q", worker: "w", leaseMs: 1e9, max: 1 });
            expect(claimed.map((c) => c.job.id)).toEqual(next ? [next.id] : []);
            if (next) {
              next.state = "active";
              tokens.set(next.id, claimed[0]!.token);
              expect(claimed[0]!.job.payload).toBe(next.payload);
            }
          } else {
            const active = model.find((j) => j.state === "active");
            if (active === undefined) continue;
            const token = tokens.get(active.id)!;
            expect(await backend.settle([{ id: active.id as JobId, token, kind: "complete" }])).toEqual([
              { ok: true, state: "completed" },
            ]);
            active.state = "completed";
          }
        }
        for (const j of model) expect((await backend.getJob(j.id as JobId))?.runAt).toBe(j.runAt);
        await backend.close?.();
      }),
      { seed: 20261222, numRuns: 200 },
    );
  });
});
