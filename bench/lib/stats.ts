/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("median of an empty list");
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The q-quantile (0..1) of a non-empty list, nearest-rank. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error("quantile of an empty list");
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i]!;
}

/**
 * How many times better `nxs` is than `peer` for a metric: > 1 means nxs is better.
 */
export function advantage(nxs: number, peer: number, better: "higher" | "lower"): number {
  if (better === "higher") return peer === 0 ? Number.POSITIVE_INFINITY : nxs / peer;
  return nxs === 0 ? Number.POSITIVE_INFINITY : peer / nxs;
}
