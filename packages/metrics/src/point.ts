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
const KEY_RE = /^[a-z_][a-z0-9_]*(\{.*\})?$/s;
const isFin = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);
const isCount = (x: unknown): x is number => isFin(x) && x >= 0;

/**
 * Why a series value is malformed, or undefined when it is well formed (a hand check rather than a
 * zod union: a day of 1 m windows holds tens of thousands of values, and this is the hot path of a
 * query).
 */
function checkSeriesValue(v: readonly unknown[], bounds: readonly number[] | undefined): string | undefined {
  switch (v[0]) {
    case "c":
      return v.length === 3 && isFin(v[1]) && isFin(v[2]) ? undefined : 'a counter is ["c", increase, total]';
    case "g":
      return v.length === 6 && isFin(v[1]) && isFin(v[2]) && isFin(v[3]) && isCount(v[4]) && isFin(v[5])
        ? undefined
        : 'a gauge is ["g", min, max, sum, count, last]';
    case "h": {
      if (bounds === undefined || v.length !== bounds.length + 4)
        return "histogram buckets do not match its bounds";
      if (!isCount(v[1]) || !isFin(v[2])) return 'a histogram is ["h", count, sum, ...buckets]';
      for (let i = 3; i < v.length; i++) if (!isCount(v[i])) return "a histogram bucket is a count";
      return undefined;
    }
    default:
      return 'a series value starts with "c", "g" or "h"';
  }
}

/** The zod schema of {@link PointData} (series values checked by hand, see `checkSeriesValue`). */
export const pointDataSchema = z
  .object({
    v: z.literal(1),
    b: z.record(z.string().regex(/^[a-z_][a-z0-9_]*$/), z.array(fin).max(64)),
    s: z.record(z.string().max(2000), z.array(z.unknown()).max(70)),
  })
  .superRefine((d, ctx) => {
    for (const [key, value] of Object.entries(d.s)) {
      const why = KEY_RE.test(key)
        ? checkSeriesValue(value, d.b[key.replace(/\{.*$/s, "")])
        : "malformed series key";
      if (why !== undefined) ctx.addIssue({ code: "custom", path: ["s", key], message: why });
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
  // By hand, not with `pointSchema.safeParse`: the same checks at about a tenth of the cost (zod
  // took ~0.1 ms a record, and a day's query decodes 1,440 of them). A unit test holds the two equal.
  const fail = (reason: string): Decoded<MetricsPoint> => ({ ok: false, reason });
  if (typeof raw !== "object" || raw === null) return fail("not an object");
  const r = raw as Record<string, unknown>;
  const { id, node, tier, start, span, n, rev, data } = r;
  if (typeof id !== "string" || !/^[a-z0-9]{15}$/.test(id)) return fail("id: not 15 characters of [a-z0-9]");
  if (typeof node !== "string" || node.length < 1 || node.length > 200)
    return fail("node: 1 to 200 characters");
  if (typeof tier !== "string" || !/^[a-z0-9]{1,16}$/.test(tier)) return fail("tier: [a-z0-9]{1,16}");
  if (!(Number.isSafeInteger(start) && (start as number) >= 0)) return fail("start: a non-negative integer");
  if (!(Number.isSafeInteger(span) && (span as number) > 0)) return fail("span: a positive integer");
  if (!(Number.isSafeInteger(n) && (n as number) > 0)) return fail("n: a positive integer");
  if (!(Number.isSafeInteger(rev) && (rev as number) >= 0)) return fail("rev: a non-negative integer");
  const why = checkData(data);
  if (why !== undefined) return fail(`data: ${why}`);
  if (id !== pointId(node, tier, start as number)) return fail("id is not the point's id");
  return {
    ok: true,
    value: {
      id,
      node,
      tier,
      start: start as number,
      span: span as number,
      n: n as number,
      rev: rev as number,
      data: data as PointData,
    },
  };
}

/** Why a record's `data` is not a {@link PointData}, or undefined. */
function checkData(data: unknown): string | undefined {
  if (typeof data !== "object" || data === null || Array.isArray(data)) return "not an object";
  const d = data as Record<string, unknown>;
  if (d.v !== 1) return "v: not 1";
  const b = d.b;
  const s = d.s;
  if (typeof b !== "object" || b === null || Array.isArray(b)) return "b: not an object";
  if (typeof s !== "object" || s === null || Array.isArray(s)) return "s: not an object";
  for (const [name, bounds] of Object.entries(b)) {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) return `b.${name}: malformed metric name`;
    if (!Array.isArray(bounds) || bounds.length > 64 || !bounds.every(isFin))
      return `b.${name}: up to 64 finite bounds`;
  }
  for (const [key, value] of Object.entries(s)) {
    if (key.length > 2000 || !KEY_RE.test(key))
      return `s: malformed series key ${JSON.stringify(key.slice(0, 80))}`;
    if (!Array.isArray(value) || value.length > 70) return `s.${key}: not a series value`;
    const brace = key.indexOf("{");
    const why = checkSeriesValue(
      value,
      (b as Record<string, readonly number[]>)[brace < 0 ? key : key.slice(0, brace)],
    );
    if (why !== undefined) return `s.${key}: ${why}`;
  }
  return undefined;
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
