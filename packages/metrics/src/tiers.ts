/**
 * Rollup tiers: each rolls the one before it (the flushes first) into windows of its `span`, and
 * keeps them `retentionMs`.
 */
import { ErrorCode, NxsError } from "@nxs-sync/core";

/** One rollup tier. */
export interface Tier {
  /** `[a-z0-9]{1,16}`, e.g. `1m`. */
  readonly name: string;
  /** Window length, ms: a multiple of the tier before it (of the flush interval for the first). */
  readonly spanMs: number;
  /** How long its windows are kept, ms (by window end). */
  readonly retentionMs: number;
}

/** The flushes' own tier name. */
export const RAW_TIER = "raw";
/** Default flush interval: 10 s. */
export const DEFAULT_FLUSH_INTERVAL_MS = 10_000;
/** Default retention of the flushes: 2 hours. */
export const DEFAULT_RAW_RETENTION_MS = 2 * 3_600_000;

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Default tiers: 1 m kept a day, 10 m a week, 1 h 30 days, 1 d a year. */
export const DEFAULT_TIERS: readonly Tier[] = Object.freeze([
  { name: "1m", spanMs: MIN, retentionMs: DAY },
  { name: "10m", spanMs: 10 * MIN, retentionMs: 7 * DAY },
  { name: "1h", spanMs: HOUR, retentionMs: 30 * DAY },
  { name: "1d", spanMs: DAY, retentionMs: 365 * DAY },
]);

/**
 * Checks a tier list against the flush interval: names unique and well formed, spans growing, each
 * a multiple of the one before.
 * @param tiers - The tiers, finest first.
 * @param flushIntervalMs - The flush interval (the raw tier's span).
 * @returns The tiers.
 * @throws NxsError `config/invalid` naming the first problem.
 */
export function checkTiers(tiers: readonly Tier[], flushIntervalMs: number): readonly Tier[] {
  let prev = flushIntervalMs;
  const seen = new Set<string>([RAW_TIER]);
  for (const t of tiers) {
    const bad = (why: string) =>
      new NxsError(ErrorCode.ConfigInvalid, `metrics tier ${JSON.stringify(t.name)}: ${why}`);
    if (!/^[a-z0-9]{1,16}$/.test(t.name) || seen.has(t.name))
      throw bad("name must be [a-z0-9]{1,16}, unique, not raw");
    if (!(Number.isInteger(t.spanMs) && t.spanMs > prev && t.spanMs % prev === 0)) {
      throw bad(`spanMs ${t.spanMs} must be a multiple of ${prev} and larger`);
    }
    if (!(Number.isFinite(t.retentionMs) && t.retentionMs >= t.spanMs))
      throw bad("retentionMs must be at least spanMs");
    seen.add(t.name);
    prev = t.spanMs;
  }
  return tiers;
}

/**
 * The start of the window of length `span` holding `t`.
 * @param t - A time (ms).
 * @param span - Window length (ms).
 * @returns The window start.
 */
export const windowStart = (t: number, span: number): number => Math.floor(t / span) * span;
