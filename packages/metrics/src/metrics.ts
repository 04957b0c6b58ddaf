/**
 * `createMetrics`: a node's recorder, its flush into the store every interval, the maintenance of
 * the stored windows (rollups and retention under a lease) and queries over them.
 */
import {
  type Cancel,
  defaultLogger,
  ErrorCode,
  isNxsError,
  type Logger,
  NxsError,
  type Scheduler,
} from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { type Checker, createChecker } from "./checks/checker.js";
import type { AlertSink, DeliveryRetry } from "./checks/delivery.js";
import type { Check } from "./checks/evaluate.js";
import type { MetricsClient, RefusedPoint } from "./client.js";
import { MetricsError, MetricsErrorCode } from "./errors.js";
import { createFlusher } from "./flusher.js";
import { createMaintainer, type MaintenanceReport } from "./maintainer.js";
import { type MetricsQuery, type QueryResult, runQuery, tierChoices } from "./query.js";
import { createRecorder, type Recorder, type RecorderOptions } from "./recorder.js";
import {
  checkTiers,
  DEFAULT_FLUSH_INTERVAL_MS,
  DEFAULT_RAW_RETENTION_MS,
  DEFAULT_TIERS,
  type Tier,
} from "./tiers.js";

/** Options of {@link createMetrics}. */
export interface MetricsOptions extends RecorderOptions {
  /** Where the windows are stored and read (`createPocketBaseMetricsClient`, or memory). */
  readonly client: MetricsClient;
  /** This node's id (the `node` of its records). */
  readonly node: string;
  /** Default `createTimerScheduler()`; tests pass a manual one. */
  readonly scheduler?: Scheduler;
  /** Flush interval, ms. Default 10 s. */
  readonly flushIntervalMs?: number;
  /** Rollup tiers. Default {@link DEFAULT_TIERS}. Every node of a fleet must use the same. */
  readonly tiers?: readonly Tier[];
  /** How long flushes are kept. Default 2 h. */
  readonly rawRetentionMs?: number;
  /**
   * Maintenance (rollups, retention) every `intervalMs` under a lease, or false for a node that
   * only records. Default `{ intervalMs: 60_000 }`.
   */
  readonly maintain?: false | { readonly intervalMs?: number; readonly lateWindows?: number };
  /**
   * Checks and alerts: the checks every node evaluates in turn (one per slot, under a lease) every
   * `intervalMs` (default the flush interval), the alerts polled by every node (subscribers hear
   * each change), webhooks and other sinks told by the node that wrote the change (retried with
   * backoff). Default off.
   */
  readonly alerts?: {
    readonly checks?: readonly Check[];
    readonly intervalMs?: number;
    readonly webhooks?: readonly string[];
    readonly fetch?: typeof fetch;
    /** More sinks, e.g. `pocketBaseAlertMail(client)` (mail through PocketBase's mailer). */
    readonly sinks?: readonly AlertSink[];
    /** Retries of a failed delivery (default 5 attempts, 1 s doubling up to 60 s). */
    readonly retry?: DeliveryRetry;
  };
  /** Told when a stored record is refused (quarantined): it is skipped, the rest goes on. */
  readonly onQuarantine?: (refused: RefusedPoint, error: MetricsError) => void;
  readonly logger?: Logger;
}

/** A node's metrics: record in memory, stored every interval, queried across the fleet. */
export interface Metrics extends Recorder {
  readonly node: string;
  /** Starts the flush (and maintenance) loop. */
  start(): void;
  /**
   * Writes the buffered windows now.
   * @returns How many were written.
   */
  flush(): Promise<number>;
  /**
   * Runs one maintenance pass now (under the slot's lease unless `force`).
   * @returns What it did.
   */
  maintain(options?: { readonly force?: boolean }): Promise<MaintenanceReport>;
  /**
   * Queries the stored windows (every node's, or those of `query.nodes`).
   * @returns The result.
   * @throws MetricsError `metrics/invalid-query` for an empty range or an unknown tier;
   *   `metrics/closed` after `close()`.
   */
  query(query: MetricsQuery): Promise<QueryResult>;
  /** The checks and alerts (evaluate, poll, subscribe, active). */
  readonly alerts: Checker;
  /** Windows waiting to be written (no server reachable). */
  buffered(): number;
  /** Stops the loops and writes the window under way. */
  close(): Promise<void>;
}

/**
 * Creates a node's metrics.
 * @param options - Client, node id, intervals, tiers, caps.
 * @returns The metrics (call `start()`).
 * @throws NxsError `config/invalid` for a malformed node id, interval or tier list.
 * @example
 * ```ts
 * import { createMemoryMetricsClient, createMetrics } from "@nxs-sync/metrics";
 * const metrics = createMetrics({ client: createMemoryMetricsClient(), node: "gw-1" });
 * const requests = metrics.counter("gateway_requests_total", { labels: ["provider"] });
 * requests.inc({ provider: "openai" });
 * metrics.start(); // a record every 10 s, rollups every minute
 * await metrics.close();
 * ```
 */
export function createMetrics(options: MetricsOptions): Metrics {
  const node = checkNode(options.node);
  const scheduler = options.scheduler ?? createTimerScheduler();
  const logger = options.logger ?? defaultLogger;
  const flushIntervalMs = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
  if (!(Number.isInteger(flushIntervalMs) && flushIntervalMs >= 100)) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `metrics flushIntervalMs must be an integer of at least 100 ms, got ${flushIntervalMs}`,
    );
  }
  const tiers = checkTiers(options.tiers ?? DEFAULT_TIERS, flushIntervalMs);
  const rawRetentionMs = options.rawRetentionMs ?? DEFAULT_RAW_RETENTION_MS;
  const onError = (e: MetricsError) => {
    if (options.onError !== undefined) options.onError(e);
    else logger.warn(`metrics: ${e.message}`);
  };
  const recorder = createRecorder({ ...options, onError });
  const flusher = createFlusher({
    node,
    recorder,
    client: options.client,
    scheduler,
    intervalMs: flushIntervalMs,
    onError,
  });
  const maintainOpts = options.maintain === false ? undefined : (options.maintain ?? {});
  const maintainIntervalMs = maintainOpts?.intervalMs ?? 60_000;
  const maintainer = createMaintainer({
    client: options.client,
    holder: node,
    tiers,
    flushIntervalMs,
    rawRetentionMs,
    scheduler,
    intervalMs: maintainIntervalMs,
    ...(maintainOpts?.lateWindows === undefined ? {} : { lateWindows: maintainOpts.lateWindows }),
    onQuarantine: (r, e) => {
      if (options.onQuarantine !== undefined) options.onQuarantine(r, e);
      else logger.warn(`metrics: ${e.message}`);
    },
  });
  const alertOpts = options.alerts;
  const checker = createChecker({
    client: options.client,
    holder: node,
    checks: alertOpts?.checks ?? [],
    scheduler,
    flushIntervalMs,
    ...(alertOpts?.intervalMs === undefined ? {} : { intervalMs: alertOpts.intervalMs }),
    ...(alertOpts?.webhooks === undefined ? {} : { webhooks: alertOpts.webhooks }),
    ...(alertOpts?.fetch === undefined ? {} : { fetch: alertOpts.fetch }),
    ...(alertOpts?.sinks === undefined ? {} : { sinks: alertOpts.sinks }),
    ...(alertOpts?.retry === undefined ? {} : { retry: alertOpts.retry }),
    // Deliveries that failed (MetricsError) go to onError; the checker logs its other errors itself.
    onError: (e) => {
      if (e instanceof MetricsError) onError(e);
    },
    logger,
  });
  let cancel: Cancel | undefined;
  let running = false;
  let closed = false;
  let maintaining: Promise<unknown> = Promise.resolve();

  const armMaintenance = () => {
    const now = scheduler.now();
    // Half a flush interval into each slot: the slot's last flushes are in.
    const next =
      Math.floor(now / maintainIntervalMs) * maintainIntervalMs + maintainIntervalMs + flushIntervalMs / 2;
    cancel = scheduler.schedule(next - now, () => {
      if (!running) return;
      maintaining = maintainer.runOnce().catch((e: unknown) => {
        logger.warn(`metrics maintenance: ${isNxsError(e) ? `${e.code}: ${e.message}` : String(e)}`);
      });
      armMaintenance();
    });
  };

  return {
    ...recorder,
    node,
    start() {
      if (running) return;
      running = true;
      flusher.start();
      if (maintainOpts !== undefined) armMaintenance();
      if (alertOpts !== undefined) checker.start();
    },
    flush: () => flusher.flush(),
    maintain: (o) => maintainer.runOnce(o),
    query: async (q) => {
      if (closed) throw new MetricsError(MetricsErrorCode.Closed, `metrics of ${node}: query after close()`);
      return runQuery(options.client, q, {
        tiers: tierChoices(flushIntervalMs, rawRetentionMs, tiers),
        now: scheduler.now(),
      });
    },
    alerts: checker,
    buffered: () => flusher.buffered(),
    async close() {
      closed = true;
      running = false;
      flusher.stop();
      checker.stop();
      cancel?.();
      await maintaining;
      await flusher.flush({ partial: true });
    },
  };
}

const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
function checkNode(node: string): string {
  if (!NODE_RE.test(node)) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `metrics node ${JSON.stringify(node)} must be 1 to 200 of [A-Za-z0-9._-]`,
    );
  }
  return node;
}
