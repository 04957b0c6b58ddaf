/** Options of {@link createReportThrottle}. */
export interface ReportThrottleOptions {
  /** Repeats of one key within this long after its last report are counted, not reported. Default 60 000 ms. */
  readonly windowMs?: number;
  /** Time source (ms). */
  readonly now: () => number;
  /** Most keys remembered; the oldest are forgotten past it. Default 1000. */
  readonly maxKeys?: number;
}

/** What {@link ReportThrottle.admit} decides for one occurrence. */
export interface ThrottleDecision {
  /** Whether to report this occurrence. */
  readonly report: boolean;
  /** When reporting: how many repeats of the key were held back since its previous report. */
  readonly suppressed: number;
}

/** Rate limiter of repeated reports (the same error again and again), by key. */
export interface ReportThrottle {
  /**
   * Decides whether an occurrence of `key` is reported: the first one is, and then at most one per
   * window, carrying the count of the repeats held back meanwhile.
   */
  admit(key: string): ThrottleDecision;
}

/**
 * Creates a rate limiter for repeated reports: an error that repeats (a record that cannot be copied,
 * a server that keeps refusing) is reported on its first occurrence and then once per `windowMs`,
 * with the number of repeats held back since, instead of once per occurrence. Pure: no timers (the
 * held-back count is told with the next report of that key).
 * @param options - Window and time source.
 * @returns The throttle.
 * @example
 * ```ts
 * const throttle = createReportThrottle({ now: scheduler.now, windowMs: 60_000 });
 * const d = throttle.admit(`${error.code} ${error.message}`);
 * if (d.report) logger.warn(error.message + (d.suppressed ? ` (${d.suppressed} more like it)` : ""));
 * ```
 */
export function createReportThrottle(options: ReportThrottleOptions): ReportThrottle {
  const windowMs = options.windowMs ?? 60_000;
  const maxKeys = options.maxKeys ?? 1000;
  const seen = new Map<string, { at: number; held: number }>();
  return {
    admit(key) {
      const t = options.now();
      const entry = seen.get(key);
      if (entry !== undefined && t - entry.at < windowMs) {
        entry.held++;
        return { report: false, suppressed: 0 };
      }
      const suppressed = entry?.held ?? 0;
      seen.delete(key);
      if (seen.size >= maxKeys) {
        const oldest = seen.keys().next().value;
        if (oldest !== undefined) seen.delete(oldest);
      }
      seen.set(key, { at: t, held: 0 });
      return { report: true, suppressed };
    },
  };
}

/**
 * The key under which an error is throttled: its code and message with numbers masked (except ports,
 * after a `:`), so that the same failure with another count, seq or duration counts as a repeat.
 * @param error - Any error (an `NxsError` gives its code).
 * @returns The key.
 */
export function throttleKey(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return `${typeof code === "string" ? code : ""} ${message.replace(/(?<![:\d])\d+/g, "#")}`;
}
