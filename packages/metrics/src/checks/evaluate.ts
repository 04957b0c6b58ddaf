/**
 * Checks and their evaluation, pure: from the stored windows of the lookback and the open alerts,
 * which alerts fire and which resolve. Every evaluator that holds the same windows computes the
 * same alerts (ids, starts, ends), so two nodes, or two servers after a cut, write one record each.
 *
 * A threshold check fires when a series' value is on the wrong side of `threshold` in every window
 * for `forMs` (a run of windows without a gap), and resolves once it is on the safe side of
 * `clearThreshold` (default `threshold`) for `clearForMs` (default one window): with a clear
 * threshold below the threshold, a value flapping around the threshold does not fire again and
 * again. An absence check fires for a node whose last window ended more than `afterMs` ago, and
 * resolves when a newer window of it arrives.
 */
import { decodeSeriesKey } from "../names.js";
import type { MetricsPoint } from "../point.js";
import { type Agg, reduceValue } from "../query.js";
import { type Alert, AlertState, alertId } from "./alert.js";

/** A threshold check (like a Gatus condition with a duration). */
export interface ThresholdCheck {
  readonly kind: "threshold";
  /** Kebab or snake case, unique. */
  readonly name: string;
  /** The metric name. */
  readonly series: string;
  /** Label values a series must have (others free). */
  readonly labels?: Readonly<Record<string, string>>;
  /** How a window's value of the series becomes one number (default `max`; `rate` for counters). */
  readonly agg?: Agg;
  /** `above`: fires when the value is above the threshold; `below`: under it. */
  readonly when: "above" | "below";
  readonly threshold: number;
  /** The value must be on the safe side of this to resolve. Default `threshold`. */
  readonly clearThreshold?: number;
  /** How long the breach lasts before firing (ms). */
  readonly forMs: number;
  /** How long the recovery lasts before resolving (ms). Default one window. */
  readonly clearForMs?: number;
  /** Default `warning`. */
  readonly severity?: string;
}

/** An absence check: a node that stops reporting. */
export interface AbsenceCheck {
  readonly kind: "absence";
  readonly name: string;
  /** How long after a node's last window ended it is absent (ms): default two flush intervals. */
  readonly afterMs: number;
  readonly severity?: string;
}

/** A check. */
export type Check = ThresholdCheck | AbsenceCheck;

/**
 * The built-in 75% rule: `node_over_cap` (1 while CPU, memory or disk is above the cap of the
 * cgroup's limit, or the host's) for `forMs` (default 5 minutes) on any node, per resource.
 * @param options - `forMs`, `clearForMs` (default 1 minute).
 * @returns The check.
 */
export function hardwareCapCheck(
  options: { readonly forMs?: number; readonly clearForMs?: number } = {},
): ThresholdCheck {
  return {
    kind: "threshold",
    name: "hardware-cap",
    series: "node_over_cap",
    agg: "min",
    when: "above",
    threshold: 0.5,
    forMs: options.forMs ?? 5 * 60_000,
    clearForMs: options.clearForMs ?? 60_000,
    severity: "critical",
  };
}

/**
 * The built-in absence check: a node whose last flush ended more than two intervals ago.
 * @param flushIntervalMs - The fleet's flush interval.
 * @returns The check.
 */
export function absenceCheck(flushIntervalMs: number): AbsenceCheck {
  return { kind: "absence", name: "absence", afterMs: 2 * flushIntervalMs, severity: "critical" };
}

/** How far back an evaluation must read (ms). */
export function lookbackOf(checks: readonly Check[], flushIntervalMs: number): number {
  let ms = 4 * flushIntervalMs;
  for (const c of checks) {
    ms = Math.max(
      ms,
      c.kind === "threshold"
        ? c.forMs + (c.clearForMs ?? 0) + 3 * flushIntervalMs
        : c.afterMs + 3 * flushIntervalMs,
    );
  }
  return ms;
}

interface Sample {
  readonly start: number;
  readonly end: number;
  readonly value: number;
}

/**
 * The run of windows ending at the last one in which `test` holds (no gap longer than half a
 * window between them).
 * @returns The run's first and last sample, or undefined when the last window fails `test`.
 */
function lastRun(
  samples: readonly Sample[],
  test: (v: number) => boolean,
): { first: Sample; last: Sample } | undefined {
  const last = samples[samples.length - 1];
  if (last === undefined || !test(last.value)) return undefined;
  let first = last;
  for (let i = samples.length - 2; i >= 0; i--) {
    const s = samples[i] as Sample;
    if (!test(s.value) || first.start - s.end > (first.end - first.start) / 2) break;
    first = s;
  }
  return { first, last };
}

/** What an evaluation decided: alerts to write (new ones firing, open ones resolved). */
export interface Evaluation {
  readonly fire: readonly Alert[];
  readonly resolve: readonly Alert[];
}

/**
 * Evaluates checks over the stored windows.
 * @param checks - The checks.
 * @param points - The raw windows of the lookback (every node), any order.
 * @param open - The alerts firing now (as stored).
 * @param now - The time (ms).
 * @returns The alerts to fire and those to resolve.
 */
export function evaluateChecks(
  checks: readonly Check[],
  points: readonly MetricsPoint[],
  open: readonly Alert[],
  now: number,
): Evaluation {
  const fire: Alert[] = [];
  const resolve: Alert[] = [];
  const byNode = new Map<string, MetricsPoint[]>();
  for (const p of [...points].sort((a, b) => a.start - b.start)) {
    const list = byNode.get(p.node);
    if (list === undefined) byNode.set(p.node, [p]);
    else list.push(p);
  }
  const openOf = (check: string, node: string, series: string) =>
    open.find(
      (a) => a.check === check && a.node === node && a.series === series && a.state === AlertState.Firing,
    );
  const openNodes = (check: string) => new Set(open.filter((a) => a.check === check).map((a) => a.node));

  for (const c of checks) {
    if (c.kind === "absence") {
      for (const node of new Set([...byNode.keys(), ...openNodes(c.name)])) {
        const list = byNode.get(node) ?? [];
        const last = list[list.length - 1];
        const current = openOf(c.name, node, "");
        if (current !== undefined) {
          const back = list.find((p) => p.start >= current.startedAt);
          if (back !== undefined)
            resolve.push({ ...current, state: AlertState.Resolved, endedAt: back.start });
          continue;
        }
        if (last === undefined) continue;
        const endedAt = last.start + last.span;
        if (now - endedAt > c.afterMs) {
          fire.push({
            id: alertId(c.name, node, "", endedAt),
            check: c.name,
            node,
            series: "",
            state: AlertState.Firing,
            severity: c.severity ?? "warning",
            startedAt: endedAt,
            endedAt: 0,
            value: Number.NaN,
            message: `${node} has not reported since ${new Date(endedAt).toISOString()}`,
          });
        }
      }
      continue;
    }
    const clear = c.clearThreshold ?? c.threshold;
    const breach = (v: number) => (c.when === "above" ? v > c.threshold : v < c.threshold);
    const safe = (v: number) => (c.when === "above" ? v <= clear : v >= clear);
    const want = Object.entries(c.labels ?? {});
    for (const [node, list] of byNode) {
      const series = new Map<string, Sample[]>();
      for (const p of list) {
        for (const [key, value] of Object.entries(p.data.s)) {
          if (key !== c.series && !key.startsWith(`${c.series}{`)) continue;
          if (want.length > 0) {
            const d = decodeSeriesKey(key);
            if (d === undefined || want.some(([k, v]) => d.labels[k] !== v)) continue;
          }
          const agg = c.agg ?? (value[0] === "c" ? "rate" : "max");
          const v = reduceValue(value, agg, p.span, p.data.b[c.series]);
          if (Number.isNaN(v)) continue;
          const s = series.get(key);
          const sample = { start: p.start, end: p.start + p.span, value: v };
          if (s === undefined) series.set(key, [sample]);
          else s.push(sample);
        }
      }
      for (const [key, samples] of series) {
        const current = openOf(c.name, node, key);
        if (current !== undefined) {
          const run = lastRun(samples, safe);
          if (
            run !== undefined &&
            run.first.start >= current.startedAt &&
            run.last.end - run.first.start >= (c.clearForMs ?? 0)
          ) {
            resolve.push({ ...current, state: AlertState.Resolved, endedAt: run.first.start });
          }
          continue;
        }
        const run = lastRun(samples, breach);
        if (run === undefined || run.last.end - run.first.start < c.forMs) continue;
        fire.push({
          id: alertId(c.name, node, key, run.first.start),
          check: c.name,
          node,
          series: key,
          state: AlertState.Firing,
          severity: c.severity ?? "warning",
          startedAt: run.first.start,
          endedAt: 0,
          value: run.last.value,
          message: `${key} on ${node} is ${c.when} ${c.threshold} (${run.last.value}) for ${Math.round((run.last.end - run.first.start) / 1000)} s`,
        });
      }
    }
  }
  return { fire, resolve };
}
