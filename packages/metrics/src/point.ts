/**
 * The compact record of one node and one window: every series of the window in one JSON object,
 * its codec (zod at the edge) and the merge of windows into a coarser one (the rollup).
 *
 * A series value is a tuple led by its kind:
 * - counter `["c", increase, total]`: the increase within the window and the running total at its end;
 * - gauge `["g", min, max, sum, count, last]`: the values set within the window;
 * - histogram `["h", count, sum, b0, b1, …, bInf]`: observations within the window, per bucket
 *   (not cumulative; the last is `+Inf`), the bounds in the record's `b` by metric name.
 */
import { z } from "zod";
import { deterministicId, hash53 } from "./hash.js";

/** A counter's value in a window. */
export type CounterValue = readonly ["c", increase: number, total: number];
/** A gauge's value in a window. */
export type GaugeValue = readonly ["g", min: number, max: number, sum: number, count: number, last: number];
/** A histogram's value in a window (counts per bucket, the last one `+Inf`). */
export type HistogramValue = readonly ["h", count: number, sum: number, ...buckets: number[]];
/** One series' value in a window. */
export type SeriesValue = CounterValue | GaugeValue | HistogramValue;

/** The data of one record: format version, histogram bounds by metric name, values by series key. */
export interface PointData {
  readonly v: 1;
  readonly b: Readonly<Record<string, readonly number[]>>;
  readonly s: Readonly<Record<string, SeriesValue>>;
}

/** One stored window of one node (a flush, or a rollup of a tier). */
export interface MetricsPoint {
  /** Deterministic id: {@link pointId}. */
  readonly id: string;
  readonly node: string;
  /** `raw` for a flush, else a tier name (`1m`, `10m`, …). */
  readonly tier: string;
  /** Window start, ms since the epoch. */
  readonly start: number;
  /** Window length, ms. */
  readonly span: number;
  /** How many flushes it covers (1 for a flush). */
  readonly n: number;
  /** Order of two versions of one window: `n * 2^21 + digest`; the greater wins everywhere. */
  readonly rev: number;
  readonly data: PointData;
}

const fin = z.number().finite();
const nonNeg = fin.nonnegative();
const seriesValueSchema = z.union([
  z.tuple([z.literal("c"), fin, fin]),
  z.tuple([z.literal("g"), fin, fin, fin, nonNeg, fin]),
  z.tuple([z.literal("h"), nonNeg, fin]).rest(nonNeg),
]);
const KEY_RE = /^[a-z_][a-z0-9_]*(\{.*\})?$/s;

/** The zod schema of {@link PointData}. */
export const pointDataSchema = z
  .object({
    v: z.literal(1),
    b: z.record(z.string().regex(/^[a-z_][a-z0-9_]*$/), z.array(fin).max(64)),
    s: z.record(z.string().max(2000).regex(KEY_RE), seriesValueSchema),
  })
  .superRefine((d, ctx) => {
    for (const [key, value] of Object.entries(d.s)) {
      if (value[0] !== "h") continue;
      const bounds = d.b[key.replace(/\{.*$/s, "")];
      if (bounds === undefined || value.length !== bounds.length + 4) {
        ctx.addIssue({
          code: "custom",
          path: ["s", key],
          message: "histogram buckets do not match its bounds",
        });
      }
    }
  });

/** The zod schema of a stored point (the fields of a record). */
export const pointSchema = z.object({
  id: z.string().regex(/^[a-z0-9]{15}$/),
  node: z.string().min(1).max(200),
  tier: z.string().regex(/^[a-z0-9]{1,16}$/),
  start: z.number().int().nonnegative(),
  span: z.number().int().positive(),
  n: z.number().int().positive(),
  rev: z.number().int().nonnegative(),
  data: pointDataSchema,
});

/** A decoding: the value, or the reason it was refused. */
export type Decoded<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: string };

/**
 * Decodes a stored point (fields as PocketBase returns them; extra fields ignored).
 * @param raw - The record.
 * @returns The point, or why it is refused.
 */
export function decodePoint(raw: unknown): Decoded<MetricsPoint> {
  const r = pointSchema.safeParse(raw);
  if (!r.success) {
    return { ok: false, reason: r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") };
  }
  const p = r.data as MetricsPoint;
  if (p.id !== pointId(p.node, p.tier, p.start)) return { ok: false, reason: "id is not the point's id" };
  return { ok: true, value: p };
}

/**
 * The id of a node's window in a tier: the same on every node and server.
 * @param node - The node id.
 * @param tier - `raw` or a tier name.
 * @param start - Window start (ms).
 * @returns A 15-character PocketBase id.
 */
export function pointId(node: string, tier: string, start: number): string {
  return deterministicId(`${node}|${tier}|${start}`);
}

/** Data with its keys sorted (so equal data serializes, and digests, the same). */
export function sortData(data: PointData): PointData {
  const s: Record<string, SeriesValue> = {};
  for (const k of Object.keys(data.s).sort()) s[k] = data.s[k] as SeriesValue;
  const b: Record<string, readonly number[]> = {};
  for (const k of Object.keys(data.b).sort()) b[k] = data.b[k] as readonly number[];
  return { v: 1, b, s };
}

/**
 * The revision of a window's content: more flushes covered win; equal coverage is ordered by a
 * digest of the content, so two servers holding two versions agree on one.
 * @param n - Flushes covered.
 * @param data - The data (sorted: {@link sortData}).
 * @returns `n * 2^21 + digest (21 bits)`.
 */
export function revisionOf(n: number, data: PointData): number {
  return n * 2 ** 21 + (hash53(JSON.stringify(data), 7) % 2 ** 21);
}

/**
 * Makes a point from its parts (sorted data, id and revision computed).
 * @param fields - Node, tier, window and covered flushes, data.
 * @returns The point.
 */
export function makePoint(fields: {
  readonly node: string;
  readonly tier: string;
  readonly start: number;
  readonly span: number;
  readonly n: number;
  readonly data: PointData;
}): MetricsPoint {
  const data = sortData(fields.data);
  return {
    id: pointId(fields.node, fields.tier, fields.start),
    node: fields.node,
    tier: fields.tier,
    start: fields.start,
    span: fields.span,
    n: fields.n,
    rev: revisionOf(fields.n, data),
    data,
  };
}

/**
 * Merges two values of one series, `b` the later window. Kinds or bucket counts that differ keep
 * the later value (a metric redeclared).
 * @param a - The earlier value.
 * @param b - The later value.
 * @returns The merged value.
 */
export function mergeSeriesValue(a: SeriesValue, b: SeriesValue): SeriesValue {
  if (a[0] === "c" && b[0] === "c") return ["c", a[1] + b[1], b[2]];
  if (a[0] === "g" && b[0] === "g") {
    return ["g", Math.min(a[1], b[1]), Math.max(a[2], b[2]), a[3] + b[3], a[4] + b[4], b[5]];
  }
  if (a[0] === "h" && b[0] === "h" && a.length === b.length) {
    const out: number[] = [];
    for (let i = 1; i < a.length; i++) out.push((a[i] as number) + (b[i] as number));
    return ["h", ...out] as unknown as HistogramValue;
  }
  return b;
}

/**
 * Rolls windows of one node up into one window of a coarser tier: every series merged in start
 * order ({@link mergeSeriesValue}). Deterministic: the same inputs in any order give the same point.
 * @param node - The node.
 * @param tier - The coarser tier's name.
 * @param start - Its window start.
 * @param span - Its window length.
 * @param inputs - The node's points inside the window (any tier finer than `tier`).
 * @returns The rolled-up point (`n` the flushes the inputs cover).
 */
export function rollupPoints(
  node: string,
  tier: string,
  start: number,
  span: number,
  inputs: readonly MetricsPoint[],
): MetricsPoint {
  const sorted = [...inputs].sort((x, y) => x.start - y.start || x.id.localeCompare(y.id));
  const s: Record<string, SeriesValue> = {};
  const b: Record<string, readonly number[]> = {};
  let n = 0;
  for (const p of sorted) {
    n += p.n;
    for (const [name, bounds] of Object.entries(p.data.b)) b[name] = bounds;
    for (const [key, value] of Object.entries(p.data.s)) {
      const prev = s[key];
      s[key] = prev === undefined ? value : mergeSeriesValue(prev, value);
    }
  }
  return makePoint({ node, tier, start, span, n, data: { v: 1, b, s } });
}
