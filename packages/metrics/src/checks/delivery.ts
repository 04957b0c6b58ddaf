/**
 * Delivery of alert changes out of the fleet (webhooks, mail through PocketBase's mailer): each
 * change goes to every sink, a failed attempt is retried with exponential backoff up to a bound
 * (a sink that says the failure is final is not retried), and the loop never blocks the checker.
 */
import { type Cancel, isNxsError, type Logger, type Scheduler } from "@nxs-sync/core";
import { MetricsError, MetricsErrorCode } from "../errors.js";
import type { Alert } from "./alert.js";

/** A change of an alert, as subscribers and sinks hear it. */
export interface AlertEvent {
  readonly change: "fired" | "resolved";
  readonly alert: Alert;
}

/**
 * Where alert changes leave the fleet. `send` resolves once the change is delivered; it throws to
 * be retried, or throws an `NxsError` with `retryable: false` when retrying cannot help.
 */
export interface AlertSink {
  /** For logs and errors, e.g. `webhook https://hooks.example/nxs` or `mail`. */
  readonly name: string;
  send(event: AlertEvent): Promise<void>;
}

/** Retries of a failed delivery: attempt n waits `min(baseDelayMs × 2^(n-2), maxDelayMs)` after attempt n-1. */
export interface DeliveryRetry {
  /** Attempts in all, the first included. Default 5. */
  readonly attempts?: number;
  /** Delay before the second attempt (ms). Default 1 000. */
  readonly baseDelayMs?: number;
  /** Longest delay between two attempts (ms). Default 60 000. */
  readonly maxDelayMs?: number;
}

/** The delivery loop of one node. */
export interface Delivery {
  /** Sends a change to every sink (in the background; retried). */
  deliver(event: AlertEvent): void;
  /** Deliveries not finished (under way or waiting for a retry), one per change and sink. */
  pending(): number;
  /** Resolves when no delivery is pending. */
  idle(): Promise<void>;
  /** Cancels the waiting retries (they count as given up). */
  stop(): void;
}

/**
 * A webhook sink: POSTs `{ change, alert }` as JSON. A 2xx delivers; 408, 425, 429, 5xx and network
 * failures are retried; any other status is final.
 * @param url - The URL.
 * @param options - `fetch` (default the global one), `timeoutMs` per attempt (default 5 000).
 * @returns The sink.
 */
export function webhookSink(
  url: string,
  options: { readonly fetch?: typeof fetch; readonly timeoutMs?: number } = {},
): AlertSink {
  const fetchFn = options.fetch ?? fetch;
  const name = `webhook ${url}`;
  return {
    name,
    async send(event) {
      const r = await fetchFn(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(event),
        signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
      });
      await r.body?.cancel();
      if (r.ok) return;
      const retryable = r.status >= 500 || r.status === 408 || r.status === 425 || r.status === 429;
      throw new MetricsError(MetricsErrorCode.AlertUndelivered, `${name}: HTTP ${r.status}`, { retryable });
    },
  };
}

/**
 * Creates the delivery loop.
 * @param options - Sinks, clock, retries, logger, `onError` (told of every failed attempt; else logged).
 * @returns The loop.
 */
export function createDelivery(options: {
  readonly sinks: readonly AlertSink[];
  readonly scheduler: Scheduler;
  readonly retry?: DeliveryRetry;
  readonly logger: Logger;
  readonly onError?: (error: MetricsError) => void;
}): Delivery {
  const attempts = Math.max(1, options.retry?.attempts ?? 5);
  const base = options.retry?.baseDelayMs ?? 1_000;
  const max = options.retry?.maxDelayMs ?? 60_000;
  const timers = new Set<Cancel>();
  let pending = 0;
  let waiters: (() => void)[] = [];
  let stopped = false;

  const done = () => {
    pending -= 1;
    if (pending > 0) return;
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };

  const attempt = (sink: AlertSink, event: AlertEvent, n: number) => {
    Promise.resolve()
      .then(() => sink.send(event))
      .then(done, (e: unknown) => {
        const final = isNxsError(e) && !e.retryable;
        const last = final || n >= attempts || stopped;
        const what = `alert ${event.change} ${event.alert.check}/${event.alert.node} to ${sink.name}`;
        const error = new MetricsError(
          MetricsErrorCode.AlertUndelivered,
          `${what}: attempt ${n} of ${attempts} failed${last ? (final ? " (final)" : ", given up") : ", retried"}: ${e instanceof Error ? e.message : String(e)}`,
          { cause: e, retryable: !last },
        );
        if (options.onError !== undefined) options.onError(error);
        else options.logger.warn(`metrics: ${error.message}`);
        if (last) {
          done();
          return;
        }
        const cancel = options.scheduler.schedule(Math.min(base * 2 ** (n - 1), max), () => {
          timers.delete(cancel);
          attempt(sink, event, n + 1);
        });
        timers.add(cancel);
      });
  };

  return {
    deliver(event) {
      for (const sink of options.sinks) {
        pending += 1;
        attempt(sink, event, 1);
      }
    },
    pending: () => pending,
    idle: () => (pending === 0 ? Promise.resolve() : new Promise<void>((r) => waiters.push(r))),
    stop() {
      stopped = true;
      const waiting = [...timers];
      timers.clear();
      for (const cancel of waiting) {
        cancel();
        done();
      }
    },
  };
}
