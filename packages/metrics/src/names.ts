/**
 * Metric and label names, and the series key: `name{label="value",…}` with the labels in their
 * declared order (the Prometheus text form), the identity of a series in memory and in records.
 */
import { MetricsError, MetricsErrorCode } from "./errors.js";

/** What a metric or label name must look like: lower case, digits and `_`, not starting with a digit. */
export const NAME_PATTERN = /^[a-z_][a-z0-9_]{0,99}$/;
/** The longest label value kept; a longer one is cut to this many characters. */
export const MAX_LABEL_VALUE = 128;

/** The label values of one series, by label name. */
export type Labels<L extends string = string> = { readonly [K in L]: string };

/**
 * Checks a metric or label name.
 * @param name - The name.
 * @param what - `metric` or `label` (for the message).
 * @returns The name.
 * @throws MetricsError `metrics/invalid-name` when it does not match {@link NAME_PATTERN}.
 */
export function checkName(name: string, what: "metric" | "label"): string {
  if (!NAME_PATTERN.test(name)) {
    throw new MetricsError(
      MetricsErrorCode.InvalidName,
      `${what} name ${JSON.stringify(name)} is not [a-z_][a-z0-9_]* (at most 100 characters), e.g. "http_requests_total"`,
    );
  }
  return name;
}

const escapeValue = (v: string): string =>
  v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/**
 * The key of a series: `name` alone without labels, else `name{a="x",b="y"}` in `labelNames` order.
 * @param name - The metric name.
 * @param labelNames - The metric's declared labels.
 * @param labels - The values (a missing one is `""`).
 * @returns The key.
 */
export function encodeSeriesKey(
  name: string,
  labelNames: readonly string[],
  labels: Labels | undefined,
): string {
  if (labelNames.length === 0) return name;
  let out = `${name}{`;
  for (let i = 0; i < labelNames.length; i++) {
    const n = labelNames[i] as string;
    const raw = labels?.[n];
    let v = typeof raw === "string" ? raw : String(raw ?? "");
    if (v.length > MAX_LABEL_VALUE) v = v.slice(0, MAX_LABEL_VALUE);
    if (NEEDS_ESCAPE.test(v)) v = escapeValue(v);
    out += i === 0 ? `${n}="${v}"` : `,${n}="${v}"`;
  }
  return `${out}}`;
}

const NEEDS_ESCAPE = /[\\"\n]/;

/** A decoded series key. */
export interface SeriesKey {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

const KEY = /^([a-z_][a-z0-9_]*)(?:\{(.*)\})?$/s;
const PAIR = /([a-z_][a-z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/gy;

/**
 * Decodes a series key made by {@link encodeSeriesKey}.
 * @param key - The key.
 * @returns Its name and labels, or undefined when it is malformed.
 */
export function decodeSeriesKey(key: string): SeriesKey | undefined {
  const m = KEY.exec(key);
  if (m === null) return undefined;
  const name = m[1] as string;
  const body = m[2];
  if (body === undefined) return { name, labels: {} };
  const labels: Record<string, string> = {};
  PAIR.lastIndex = 0;
  let consumed = 0;
  for (let p = PAIR.exec(body); p !== null; p = PAIR.exec(body)) {
    labels[p[1] as string] = (p[2] as string).replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    consumed = PAIR.lastIndex;
  }
  return consumed === body.length ? { name, labels } : undefined;
}
