/**
 * Queries over the stored windows: the tier is picked by the range and step (the coarsest whose
 * windows fit in a step and whose retention still covers the range), windows are merged per step
 * and series, per node or across the fleet, and each step reduced to one number.
 */
import type { MetricsClient } from "./client.js";
import { MetricsError, MetricsErrorCode } from "./errors.js";
import { decodeSeriesKey } from "./names.js";
import { type MetricsPoint, mergeSeriesValue, type SeriesValue } from "./point.js";
import { RAW_TIER, type Tier } from "./tiers.js";

/** How a step's values become one number. */
export const Agg = {
  Mean: "mean",
  Min: "min",
  Max: "max",
  Sum: "sum",
  Count: "count",
  Last: "last",
  /** Counter: increase per second. */
  Rate: "rate",
  /** Counter: increase in the step. */
  Increase: "increase",
  P50: "p50",
  P90: "p90",
  P99: "p99",
} as const;
/** An aggregation. */
export type Agg = (typeof Agg)[keyof typeof Agg];

/** A query. */
export interface MetricsQuery {
  /** Metric name. */
  readonly series: string;
  /** Label values the series must have (others free). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Only these nodes (default every node). */
  readonly nodes?: readonly string[];
  /** Range start (ms, inclusive). */
  readonly from: number;
  /** Range end (ms, exclusive). */
  readonly to: number;
  /** Step (ms). Default: the range in about 300 steps. Rounded up to a multiple of the tier's span. */
  readonly step?: number;
  /** Default `rate` for counters, `mean` for the others. */
  readonly agg?: Agg;
  /** Merge every node into one series per label set (node `*`). Default false: one per node. */
  readonly fleet?: boolean;
  /** Read this tier (`raw` or a tier name) instead of picking one. */
  readonly tier?: string;
}

/** One point of a result series. */
export interface QueryPoint {
  /** Step start (ms). */
  readonly t: number;
  readonly v: number;
}
/** One series of a result: a chart's line. */
export interface QuerySeries {
  /** The node, or `*` for a fleet query. */
  readonly node: string;
  readonly key: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Steps holding data, in time order (a step without data is absent). */
  readonly points: readonly QueryPoint[];
}
/** A query's result. */
export interface QueryResult {
  /** The tier read. */
  readonly tier: string;
  readonly step: number;
  readonly from: number;
  readonly to: number;
  readonly agg: Agg;
  readonly series: readonly QuerySeries[];
  /** Records in the range that did not decode (skipped). */
  readonly refused: number;
}

interface TierChoice {
  readonly name: string;
  readonly spanMs: number;
  readonly retentionMs: number;
}

/**
 * Picks the tier of a query: the coarsest whose span fits in the step and whose retention covers
 * `from`; else the finest that covers `from`; else the coarsest.
 * @param tiers - The raw tier then the rollup tiers, finest first.
 * @param from - Range start.
 * @param step - Step.
 * @param now - Current time.
 * @returns The tier.
 */
export function pickTier(tiers: readonly TierChoice[], from: number, step: number, now: number): TierChoice {
  const covers = (t: TierChoice) => now - t.retentionMs <= from;
  const fit = tiers.filter((t) => t.spanMs <= step && covers(t));
  if (fit.length > 0) return fit[fit.length - 1] as TierChoice;
  const cover = tiers.find(covers);
  return cover ?? (tiers[tiers.length - 1] as TierChoice);
}

const percentile = (v: SeriesValue, q: number, bounds: readonly number[] | undefined): number => {
  if (v[0] !== "h" || bounds === undefined) return Number.NaN;
  const count = v[1];
  if (count === 0) return Number.NaN;
  const rank = q * count;
  let acc = 0;
  for (let i = 3; i < v.length; i++) {
    const c = v[i] as number;
    if (acc + c >= rank && c > 0) {
      const b = i - 3;
      const lo = b === 0 ? 0 : (bounds[b - 1] as number);
      const hi = b < bounds.length ? (bounds[b] as number) : lo;
      return lo + ((hi - lo) * (rank - acc)) / c;
    }
    acc += c;
  }
  return bounds[bounds.length - 1] ?? Number.NaN;
};

/**
 * One number of a merged step value.
 * @param v - The merged value.
 * @param agg - The aggregation.
 * @param stepMs - The step (for `rate`).
 * @param bounds - A histogram's bounds.
 * @returns The number (NaN when the aggregation does not apply to the kind).
 */
export function reduceValue(v: SeriesValue, agg: Agg, stepMs: number, bounds?: readonly number[]): number {
  switch (v[0]) {
    case "c":
      if (agg === Agg.Rate) return v[1] / (stepMs / 1000);
      if (agg === Agg.Increase || agg === Agg.Sum) return v[1];
      if (agg === Agg.Last || agg === Agg.Max) return v[2];
      return Number.NaN;
    case "g":
      if (agg === Agg.Mean) return v[4] === 0 ? Number.NaN : v[3] / v[4];
      if (agg === Agg.Min) return v[1];
      if (agg === Agg.Max) return v[2];
      if (agg === Agg.Sum) return v[3];
      if (agg === Agg.Count) return v[4];
      if (agg === Agg.Last) return v[5];
      return Number.NaN;
    default:
      if (agg === Agg.Count) return v[1];
      if (agg === Agg.Sum) return v[2];
      if (agg === Agg.Mean) return v[1] === 0 ? Number.NaN : v[2] / v[1];
      if (agg === Agg.Rate) return v[1] / (stepMs / 1000);
      if (agg === Agg.P50) return percentile(v, 0.5, bounds);
      if (agg === Agg.P90) return percentile(v, 0.9, bounds);
      if (agg === Agg.P99) return percentile(v, 0.99, bounds);
      return Number.NaN;
  }
}

/**
 * Answers a query from points already read (pure: the part of {@link runQuery} after the read).
 * @param query - The query.
 * @param step - The step (a multiple of the tier's span).
 * @param points - The tier's points in the range.
 * @returns The series.
 */
export function aggregatePoints(
  query: MetricsQuery,
  step: number,
  points: readonly MetricsPoint[],
): QuerySeries[] {
  const acc = new Map<
    string,
    { node: string; key: string; labels: Record<string, string>; steps: Map<number, SeriesValue> }
  >();
  const want = Object.entries(query.labels ?? {});
  const sorted = [...points].sort((a, b) => a.start - b.start || a.node.localeCompare(b.node));
  let agg: Agg | undefined = query.agg;
  let bounds: readonly number[] | undefined;
  for (const p of sorted) {
    const t = query.from + Math.floor((p.start - query.from) / step) * step;
    for (const [key, value] of Object.entries(p.data.s)) {
      if (key !== query.series && !key.startsWith(`${query.series}{`)) continue;
      const decoded = decodeSeriesKey(key);
      if (decoded === undefined || want.some(([k, v]) => decoded.labels[k] !== v)) continue;
      if (value[0] === "h") bounds = p.data.b[query.series];
      agg ??= value[0] === "c" ? Agg.Rate : Agg.Mean;
      const node = query.fleet === true ? "*" : p.node;
      const id = `${node}\u0000${key}`;
      let s = acc.get(id);
      if (s === undefined) {
        s = { node, key, labels: { ...decoded.labels }, steps: new Map() };
        acc.set(id, s);
      }
      const prev = s.steps.get(t);
      s.steps.set(t, prev === undefined ? value : mergeSeriesValue(prev, value));
    }
  }
  const a = agg ?? Agg.Mean;
  return [...acc.values()]
    .sort((x, y) => x.node.localeCompare(y.node) || x.key.localeCompare(y.key))
    .map((s) => ({
      node: s.node,
      key: s.key,
      labels: s.labels,
      points: [...s.steps.entries()]
        .sort((x, y) => x[0] - y[0])
        .map(([t, v]) => ({ t, v: reduceValue(v, a, step, bounds) })),
    }));
}

/**
 * Runs a query: picks the tier, reads its points, aggregates.
 * @param client - Where the windows are.
 * @param query - The query.
 * @param context - The tiers (raw first, with its flush interval as span) and the time.
 * @returns The result.
 * @throws MetricsError `metrics/invalid-query` for an empty range or an unknown tier.
 */
export async function runQuery(
  client: MetricsClient,
  query: MetricsQuery,
  context: { readonly tiers: readonly TierChoice[]; readonly now: number },
): Promise<QueryResult> {
  if (!(Number.isFinite(query.from) && Number.isFinite(query.to) && query.to > query.from)) {
    throw new MetricsError(
      MetricsErrorCode.InvalidQuery,
      `query ${query.series}: \`to\` must be after \`from\``,
    );
  }
  const wanted = query.step ?? Math.max(1, Math.ceil((query.to - query.from) / 300));
  let tier: TierChoice;
  if (query.tier !== undefined) {
    const t = context.tiers.find((x) => x.name === query.tier);
    if (t === undefined) {
      throw new MetricsError(
        MetricsErrorCode.InvalidQuery,
        `query ${query.series}: no tier ${query.tier} (tiers: ${context.tiers.map((x) => x.name).join(", ")})`,
      );
    }
    tier = t;
  } else {
    tier = pickTier(context.tiers, query.from, wanted, context.now);
  }
  const step = Math.max(tier.spanMs, Math.ceil(wanted / tier.spanMs) * tier.spanMs);
  const list = await client.list({
    tier: tier.name,
    from: query.from - (((query.from % tier.spanMs) + tier.spanMs) % tier.spanMs),
    to: query.to,
    ...(query.nodes === undefined ? {} : { nodes: query.nodes }),
  });
  const series = aggregatePoints(
    query,
    step,
    list.points.filter((p) => p.start + p.span > query.from),
  );
  const first = series.find((s) => s.points.length > 0);
  const agg =
    query.agg ??
    (first?.key !== undefined && list.points.some((p) => p.data.s[first.key]?.[0] === "c")
      ? Agg.Rate
      : Agg.Mean);
  return { tier: tier.name, step, from: query.from, to: query.to, agg, series, refused: list.refused.length };
}

/** The raw tier as a {@link pickTier} choice. */
export const rawChoice = (flushIntervalMs: number, rawRetentionMs: number): TierChoice => ({
  name: RAW_TIER,
  spanMs: flushIntervalMs,
  retentionMs: rawRetentionMs,
});

/** The tiers of a query context: raw, then the rollup tiers. */
export const tierChoices = (
  flushIntervalMs: number,
  rawRetentionMs: number,
  tiers: readonly Tier[],
): TierChoice[] => [rawChoice(flushIntervalMs, rawRetentionMs), ...tiers];
