/**
 * The flush: every interval, the recorder's window becomes one record of this node (every series
 * in it), written through the {@link MetricsClient}. Windows that cannot be written stay buffered
 * (up to a bound) and go first at the next flush, so a node cut from every server catches up.
 */
import { type Cancel, isNxsError, type Scheduler } from "@nxs-sync/core";
import type { MetricsClient } from "./client.js";
import { MetricsError, MetricsErrorCode } from "./errors.js";
import { type MetricsPoint, makePoint, mergeSeriesValue, type PointData, type SeriesValue } from "./point.js";
import type { Recorder } from "./recorder.js";
import { RAW_TIER, windowStart } from "./tiers.js";

/** Options of {@link createFlusher}. */
export interface FlusherOptions {
  readonly node: string;
  readonly recorder: Recorder;
  readonly client: MetricsClient;
  readonly scheduler: Scheduler;
  readonly intervalMs: number;
  /** Windows kept while no server is reachable. Default 360 (an hour at 10 s). */
  readonly maxBuffered?: number;
  readonly onError: (error: MetricsError) => void;
}

/** The flush loop. */
export interface Flusher {
  /** Starts flushing at every interval boundary. */
  start(): void;
  /**
   * Writes what is buffered; with `partial`, first takes the window under way (at close: a window
   * written early is not written again, so later samples of it would be lost).
   * @returns How many windows were written (created or found there).
   */
  flush(options?: { readonly partial?: boolean }): Promise<number>;
  /** Stops the loop (a last `flush()` is the caller's choice). */
  stop(): void;
  /** Windows waiting to be written. */
  buffered(): number;
}

/** Merges the data of two takes of one window. */
function mergeData(a: PointData, b: PointData): PointData {
  const s: Record<string, SeriesValue> = { ...a.s };
  for (const [k, v] of Object.entries(b.s)) {
    const prev = s[k];
    s[k] = prev === undefined ? v : mergeSeriesValue(prev, v);
  }
  return { v: 1, b: { ...a.b, ...b.b }, s };
}

/**
 * Creates the flush loop of one node.
 * @param options - Node, recorder, client, scheduler, interval, error listener.
 * @returns The flusher (stopped).
 */
export function createFlusher(options: FlusherOptions): Flusher {
  const { node, recorder, client, scheduler, intervalMs } = options;
  const maxBuffered = options.maxBuffered ?? 360;
  const pending: MetricsPoint[] = [];
  let cancel: Cancel | undefined;
  let running = false;
  let chain: Promise<number> = Promise.resolve(0);
  let failing = false;

  const take = (start: number) => {
    const data = recorder.takeWindow();
    const last = pending[pending.length - 1];
    if (last !== undefined && last.start === start) {
      pending[pending.length - 1] = makePoint({
        node,
        tier: RAW_TIER,
        start,
        span: intervalMs,
        n: 1,
        data: mergeData(last.data, data),
      });
    } else {
      pending.push(makePoint({ node, tier: RAW_TIER, start, span: intervalMs, n: 1, data }));
    }
    while (pending.length > maxBuffered) pending.shift();
  };

  const writeAll = async (): Promise<number> => {
    let written = 0;
    while (pending.length > 0) {
      const p = pending[0] as MetricsPoint;
      try {
        await client.write(p);
      } catch (e) {
        if (!failing) {
          failing = true;
          options.onError(
            new MetricsError(
              MetricsErrorCode.FlushFailed,
              `metrics flush of ${node}: ${isNxsError(e) ? e.message : String(e)}; ${pending.length} window(s) kept for the next flush`,
              { cause: e },
            ),
          );
        }
        return written;
      }
      failing = false;
      pending.shift();
      written++;
    }
    return written;
  };

  const run = (start: number): Promise<number> => {
    take(start);
    chain = chain.then(writeAll, writeAll);
    return chain;
  };

  const arm = () => {
    const now = scheduler.now();
    const next = windowStart(now, intervalMs) + intervalMs;
    cancel = scheduler.schedule(next - now, () => {
      if (!running) return;
      // The window that just ended: [next - interval, next).
      void run(windowStart(scheduler.now(), intervalMs) - intervalMs);
      arm();
    });
  };

  return {
    start() {
      if (running) return;
      running = true;
      arm();
    },
    flush(opts = {}) {
      if (opts.partial === true) return run(windowStart(scheduler.now(), intervalMs));
      chain = chain.then(writeAll, writeAll);
      return chain;
    },
    stop() {
      running = false;
      cancel?.();
      cancel = undefined;
    },
    buffered: () => pending.length,
  };
}
