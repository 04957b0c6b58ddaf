/**
 * A fake model provider with the limits a real one has: at most `concurrency` requests in flight
 * and at most `tokensPerWindow` tokens of requests started in any sliding window of `windowMs`.
 * Past either it answers 429 with a retry-after, as OpenAI or Anthropic do; it can also be told to
 * answer 429 to its next request (an incident). It keeps what it saw, for the example's summary.
 */
export interface ProviderLimits {
  readonly concurrency: number;
  readonly tokensPerWindow: number;
  readonly windowMs: number;
}

/** What a call answers. */
export type ProviderAnswer =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly status: 429; readonly retryAfterMs: number };

/** A fake provider (in process). */
export interface FakeProvider {
  readonly name: string;
  readonly limits: ProviderLimits;
  /** Serves one completion of `tokens` tokens, taking `ms`. */
  complete(prompt: string, tokens: number, ms: number): Promise<ProviderAnswer>;
  /** Answers 429 (retry after `retryAfterMs`) to the next request. */
  incident(retryAfterMs: number): void;
  /** What it saw: requests served, 429s answered (`throttled`: past a limit; `incidents`), peaks. */
  stats(): {
    readonly served: number;
    readonly throttled: number;
    readonly incidents: number;
    readonly peakConcurrency: number;
    readonly peakTokens: number;
  };
}

/**
 * Creates a fake provider.
 * @param name - Its name (the queue's group).
 * @param limits - Its limits.
 * @returns The provider.
 */
export function createFakeProvider(name: string, limits: ProviderLimits): FakeProvider {
  let inFlight = 0;
  const started: { at: number; tokens: number }[] = [];
  let served = 0;
  let throttled = 0;
  let incidents = 0;
  let peakConcurrency = 0;
  let peakTokens = 0;
  let nextIncident: number | undefined;
  return {
    name,
    limits,
    async complete(prompt, tokens, ms) {
      const now = Date.now();
      if (nextIncident !== undefined) {
        const retryAfterMs = nextIncident;
        nextIncident = undefined;
        incidents++;
        return { ok: false, status: 429, retryAfterMs };
      }
      while (started.length > 0 && (started[0] as { at: number }).at <= now - limits.windowMs)
        started.shift();
      const windowTokens = started.reduce((s, r) => s + r.tokens, 0);
      if (inFlight >= limits.concurrency || windowTokens + tokens > limits.tokensPerWindow) {
        throttled++;
        return { ok: false, status: 429, retryAfterMs: limits.windowMs };
      }
      started.push({ at: now, tokens });
      inFlight++;
      peakConcurrency = Math.max(peakConcurrency, inFlight);
      peakTokens = Math.max(peakTokens, windowTokens + tokens);
      try {
        await new Promise((r) => setTimeout(r, ms));
        served++;
        return { ok: true, text: `${name}: ${prompt.length} chars in, ${tokens} tokens` };
      } finally {
        inFlight--;
      }
    },
    incident(retryAfterMs) {
      nextIncident = retryAfterMs;
    },
    stats: () => ({ served, throttled, incidents, peakConcurrency, peakTokens }),
  };
}
