/**
 * A provider-limited AI job queue (docs/queue.md, flow control): model calls for two providers go
 * through one queue, each call in its provider's group with its token count as its weight. Each
 * group gets the provider's concurrency limit and a token rate limit a margin under the provider's,
 * set once for the whole fleet; two gateways' workers drain the queue, and a provider's 429 pauses
 * its group on every worker (`RetryLaterError` with `pauseGroup`) while the other provider's calls go on.
 */
import { createSeededRandom, silentLogger } from "@nxs-sync/core";
import { createQueue, createWorker, type FlowRecord, RetryLaterError } from "@nxs-sync/queue";
import { createPocketBaseQueueBackend } from "@nxs-sync/queue/pocketbase";
import { z } from "zod";
import { createFakeProvider, type FakeProvider } from "./provider.js";

/** One model call. */
export const modelCall = z.object({
  provider: z.enum(["openai", "anthropic"]),
  prompt: z.string(),
  tokens: z.number().int().positive(),
  /** How long the fake provider takes (ms). */
  ms: z.number().int().nonnegative(),
});

/** What the example did. */
export interface Summary {
  readonly completed: number;
  readonly providers: Readonly<
    Record<string, ReturnType<FakeProvider["stats"]> & { limits: FakeProvider["limits"] }>
  >;
  readonly flows: readonly FlowRecord[];
}

/** The largest call (tokens): the margin left under each provider's token limit. */
const MAX_TOKENS = 1000;
/** The longest time from a call's claim to its request reaching the provider, with room to spare (ms). */
const CLAIM_TO_REQUEST_MS = 500;

/**
 * Runs the example against a server prepared for the queue.
 * @param options - The server's URL, two gateway accounts, and where to print.
 * @returns The summary.
 */
export async function runExample(options: {
  readonly url: string;
  readonly gateways: readonly { readonly email: string; readonly password: string }[];
  readonly log: (line: string) => void;
}): Promise<Summary> {
  const { log } = options;
  const providers = {
    openai: createFakeProvider("openai", { concurrency: 3, tokensPerWindow: 6000, windowMs: 1000 }),
    anthropic: createFakeProvider("anthropic", { concurrency: 2, tokensPerWindow: 4000, windowMs: 1000 }),
  };
  // Each gateway has its own backend (its own login and realtime session) and the same queue.
  const backends = options.gateways.map((auth) =>
    createPocketBaseQueueBackend({ endpoints: [options.url], auth, logger: silentLogger }),
  );
  const queues = backends.map((backend) => createQueue({ name: "model-calls", schema: modelCall, backend }));
  const queue = queues[0]!;
  try {
    // The limits, once for the fleet: the provider's concurrency, and its token rate over a window
    // longer than the provider's by more than a call takes from its claim to its request (the
    // queue counts a call when it is claimed; the provider, when the request lands), less one call.
    for (const p of Object.values(providers)) {
      const rate = {
        max: p.limits.tokensPerWindow - MAX_TOKENS,
        intervalMs: p.limits.windowMs + CLAIM_TO_REQUEST_MS,
      };
      await queue.setLimits({ concurrency: p.limits.concurrency, rate }, { group: p.name });
      log(
        `limits of ${p.name}: ${p.limits.concurrency} at a time, ${rate.max} tokens per ${rate.intervalMs} ms`,
      );
    }
    const random = createSeededRandom(42);
    const calls = Array.from({ length: 30 }, (_, i) => {
      const provider = i % 3 === 2 ? ("anthropic" as const) : ("openai" as const);
      const tokens = 200 + random.int(MAX_TOKENS - 200 + 1);
      return {
        payload: { provider, prompt: `summarize ticket ${i}`, tokens, ms: 20 + random.int(40) },
        options: { group: provider, weight: tokens },
      };
    });
    await queue.addBulk(calls);
    log(`${calls.length} model calls enqueued`);
    // An incident: anthropic's next request gets a 429 (retry after 400 ms).
    providers.anthropic.incident(400);

    const workers = queues.map((q, i) =>
      createWorker(
        q,
        async ({ payload }) => {
          const p = providers[payload.provider];
          const answer = await p.complete(payload.prompt, payload.tokens, payload.ms);
          if (!answer.ok) {
            log(`gateway ${i + 1}: 429 from ${p.name}, pausing its group for ${answer.retryAfterMs} ms`);
            throw new RetryLaterError(answer.retryAfterMs, `429 from ${p.name}`, { pauseGroup: true });
          }
          return { text: answer.text };
        },
        { concurrency: 4, name: `gateway-${i + 1}`, pollMs: 500, logger: silentLogger },
      ),
    );
    const deadline = Date.now() + 90_000;
    let completed = 0;
    while (completed < calls.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      completed = (await queue.counts()).completed;
    }
    await Promise.all(workers.map((w) => w.close()));
    log(`${completed} of ${calls.length} calls completed`);
    const flows = await queue.flows();
    const stats = Object.fromEntries(
      Object.values(providers).map((p) => [p.name, { ...p.stats(), limits: p.limits }]),
    );
    for (const [name, s] of Object.entries(stats)) {
      log(
        `${name}: ${s.served} served, peak ${s.peakConcurrency}/${s.limits.concurrency} at a time, peak ${s.peakTokens}/${s.limits.tokensPerWindow} tokens per window, ${s.throttled} over-limit 429s, ${s.incidents} incident 429s`,
      );
    }
    return { completed, providers: stats, flows };
  } finally {
    await Promise.all(backends.map((b) => b.close()));
  }
}
