/**
 * The checker: every interval, one node per server (a lease per slot) evaluates the checks over
 * the stored windows of every node and writes the alerts that fire or resolve; every node polls the
 * alerts and tells its subscribers of each change (a node anywhere hears an alert raised about
 * another). The writer also hands each change to the sinks (webhooks, mail), retried with backoff,
 * so alerts leave the fleet.
 */
import { type Cancel, isNxsError, type Logger, type Scheduler } from "@nxs-sync/core";
import type { MetricsClient } from "../client.js";
import { RAW_TIER, windowStart } from "../tiers.js";
import { type Alert, AlertState } from "./alert.js";
import {
  type AlertEvent,
  type AlertSink,
  createDelivery,
  type DeliveryRetry,
  webhookSink,
} from "./delivery.js";
import { type Check, evaluateChecks, lookbackOf } from "./evaluate.js";

export type { AlertEvent } from "./delivery.js";

/** Options of {@link createChecker}. */
export interface CheckerOptions {
  readonly client: MetricsClient;
  /** This node (the lease holder's name). */
  readonly holder: string;
  readonly checks: readonly Check[];
  readonly scheduler: Scheduler;
  readonly flushIntervalMs: number;
  /** Evaluation interval (ms). Default the flush interval. */
  readonly intervalMs?: number;
  /** URLs each change is POSTed to (JSON `{ change, alert }`) by the node that wrote it. */
  readonly webhooks?: readonly string[];
  readonly fetch?: typeof fetch;
  /**
   * Other sinks each change goes to from the node that wrote it, e.g. mail through PocketBase's
   * mailer (`pocketBaseAlertMail(client)` of `@nxs-sync/metrics/pocketbase`).
   */
  readonly sinks?: readonly AlertSink[];
  /** Retries of a failed delivery (default 5 attempts, 1 s doubling up to 60 s). */
  readonly retry?: DeliveryRetry;
  /** How far back alerts are polled (ms). Default a day. */
  readonly alertLookbackMs?: number;
  readonly logger: Logger;
  readonly onError?: (error: unknown) => void;
}

/** What one evaluation did. */
export interface CheckReport {
  readonly leased: boolean;
  readonly fired: readonly Alert[];
  readonly resolved: readonly Alert[];
}

/** The checker of one node. */
export interface Checker {
  /** Evaluates now (under the slot's lease unless `force`), then polls the alerts. */
  evaluate(options?: { readonly force?: boolean }): Promise<CheckReport>;
  /** Reads the alerts and tells the subscribers of changes since the last poll. */
  poll(): Promise<readonly Alert[]>;
  /** The alerts firing, as of the last poll. */
  active(): readonly Alert[];
  /** Resolves when every change written so far is delivered to the sinks or given up. */
  delivered(): Promise<void>;
  /** Subscribes to alert changes; returns the function that unsubscribes. */
  subscribe(listener: (event: AlertEvent) => void): () => void;
  start(): void;
  stop(): void;
}

/**
 * Creates a checker.
 * @param options - Client, checks, clock, webhooks.
 * @returns The checker (`createMetrics` makes one when given `checks`).
 */
export function createChecker(options: CheckerOptions): Checker {
  const { client, scheduler, checks } = options;
  const intervalMs = options.intervalMs ?? options.flushIntervalMs;
  const lookback = lookbackOf(checks, options.flushIntervalMs);
  const alertLookbackMs = options.alertLookbackMs ?? 86_400_000;
  const delivery = createDelivery({
    sinks: [
      ...(options.webhooks ?? []).map((url) =>
        webhookSink(url, options.fetch === undefined ? {} : { fetch: options.fetch }),
      ),
      ...(options.sinks ?? []),
    ],
    scheduler,
    ...(options.retry === undefined ? {} : { retry: options.retry }),
    logger: options.logger,
    ...(options.onError === undefined ? {} : { onError: options.onError }),
  });
  const listeners = new Set<(e: AlertEvent) => void>();
  const seen = new Map<string, string>(); // id -> state told
  let primed = false;
  let active: readonly Alert[] = [];
  let cancel: Cancel | undefined;
  let running = false;

  const tell = (e: AlertEvent) => {
    for (const l of listeners) {
      try {
        l(e);
      } catch (err) {
        options.onError?.(err);
        options.logger.warn(`metrics alert subscriber: ${String(err)}`);
      }
    }
  };

  const poll = async (): Promise<readonly Alert[]> => {
    const alerts = await client.listAlerts(scheduler.now() - alertLookbackMs);
    for (const a of alerts) {
      const told = seen.get(a.id);
      if (told === a.state) continue;
      seen.set(a.id, a.state);
      if (!primed) continue;
      tell({ change: a.state === AlertState.Firing ? "fired" : "resolved", alert: a });
    }
    primed = true;
    active = alerts.filter((a) => a.state === AlertState.Firing);
    return alerts;
  };

  const evaluate = async (opts: { readonly force?: boolean } = {}): Promise<CheckReport> => {
    const now = scheduler.now();
    if (opts.force !== true) {
      const slot = windowStart(now, intervalMs);
      if (!(await client.claim(`check|${slot}`, options.holder, slot + intervalMs))) {
        await poll();
        return { leased: false, fired: [], resolved: [] };
      }
    }
    const [points, alerts] = await Promise.all([
      client.list({ tier: RAW_TIER, from: now - lookback, to: now + 1 }),
      client.listAlerts(now - alertLookbackMs),
    ]);
    const known = new Set(alerts.map((a) => a.id));
    const open = alerts.filter((a) => a.state === AlertState.Firing);
    const result = evaluateChecks(checks, points.points, open, now);
    const fired = result.fire.filter((a) => !known.has(a.id));
    for (const a of [...fired, ...result.resolve]) await client.putAlert(a);
    for (const a of fired) delivery.deliver({ change: "fired", alert: a });
    for (const a of result.resolve) delivery.deliver({ change: "resolved", alert: a });
    await poll();
    return { leased: true, fired, resolved: result.resolve };
  };

  const arm = () => {
    cancel = scheduler.schedule(
      intervalMs - (scheduler.now() % intervalMs) + options.flushIntervalMs / 2,
      () => {
        if (!running) return;
        evaluate().catch((e: unknown) => {
          options.onError?.(e);
          options.logger.warn(`metrics checks: ${isNxsError(e) ? `${e.code}: ${e.message}` : String(e)}`);
        });
        arm();
      },
    );
  };

  return {
    evaluate,
    poll,
    active: () => active,
    delivered: () => delivery.idle(),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    start() {
      if (running) return;
      running = true;
      arm();
    },
    stop() {
      running = false;
      cancel?.();
      delivery.stop();
    },
  };
}
