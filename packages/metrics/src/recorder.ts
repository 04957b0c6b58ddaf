/**
 * The in-memory recorder: counters, gauges and histograms with labels. Recording touches memory
 * only (no I/O, no timer); {@link Recorder.takeWindow} hands the values of the window to the flush
 * and starts the next. A cap on series, and on the values of each label, keeps a label explosion
 * from growing memory and the records: a sample of a series over the cap is dropped and counted.
 */
import { ErrorCode, NxsError } from "@nxs-sync/core";
import { MetricsError, MetricsErrorCode } from "./errors.js";
import { checkName, encodeSeriesKey, type Labels, MAX_LABEL_VALUE } from "./names.js";
import type { PointData, SeriesValue } from "./point.js";

/** Kinds of metric (const object + union). */
export const MetricKind = { Counter: "counter", Gauge: "gauge", Histogram: "histogram" } as const;
/** A kind of metric. */
export type MetricKind = (typeof MetricKind)[keyof typeof MetricKind];

/** Default histogram bounds (ms): 5 ms to 10 s. */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
]);
/** Default cap on series per node. */
export const DEFAULT_MAX_SERIES = 1000;
/** Default cap on distinct values of one label of one metric. */
export const DEFAULT_MAX_LABEL_VALUES = 100;

/** Options of a metric. */
export interface MetricOptions<L extends string> {
  /** One line for people (Prometheus `# HELP`). */
  readonly help?: string;
  /** Label names, in the order of the series key. */
  readonly labels?: readonly L[];
}
/** Options of a histogram. */
export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds of the buckets, ascending, finite (`+Inf` is implied). Default {@link DEFAULT_BUCKETS}. */
  readonly buckets?: readonly number[];
}

/** A call with the labels first when the metric has labels (`L`), without them otherwise. */
type WithLabels<L extends string, A extends unknown[], R> = [L] extends [never]
  ? (...args: A) => R
  : (labels: Labels<L>, ...args: A) => R;

/** A counter's series (bound to its labels). */
export interface CounterChild {
  /** Adds `by` (default 1; a negative or non-finite amount is ignored). */
  inc(by?: number): void;
}
/** A gauge's series. */
export interface GaugeChild {
  /** Sets the value (a non-finite value is ignored). */
  set(value: number): void;
}
/** A histogram's series. */
export interface HistogramChild {
  /** Records one observation (a non-finite value is ignored). */
  observe(value: number): void;
}

/** A counter: only goes up. */
export interface Counter<L extends string = never> {
  readonly name: string;
  /** Adds `by` (default 1) to the series of the labels (the first argument when it has labels). */
  readonly inc: WithLabels<L, [by?: number], void>;
  /** The series of the labels, for a hot path (no key built per call). */
  readonly labels: WithLabels<L, [], CounterChild>;
}
/** A gauge: a value that goes up and down. */
export interface Gauge<L extends string = never> {
  readonly name: string;
  /** Sets the series of the labels (the first argument when it has labels) to `value`. */
  readonly set: WithLabels<L, [value: number], void>;
  /** The series of the labels, for a hot path. */
  readonly labels: WithLabels<L, [], GaugeChild>;
}
/** A histogram with fixed buckets. */
export interface Histogram<L extends string = never> {
  readonly name: string;
  readonly buckets: readonly number[];
  /** Records `value` in the series of the labels (the first argument when it has labels). */
  readonly observe: WithLabels<L, [value: number], void>;
  /** The series of the labels, for a hot path. */
  readonly labels: WithLabels<L, [], HistogramChild>;
}

/** The current value of one series (what Prometheus scrapes). */
export interface SeriesSnapshot {
  readonly key: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Counter total or gauge value; a histogram's count. */
  readonly value: number;
  /** Histogram only: cumulative counts per bound (then `+Inf`) and the sum. */
  readonly buckets?: readonly number[];
  readonly sum?: number;
}
/** The current values of one metric. */
export interface MetricSnapshot {
  readonly name: string;
  readonly kind: MetricKind;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly bounds?: readonly number[];
  readonly series: readonly SeriesSnapshot[];
}

/** Options of {@link createRecorder}. */
export interface RecorderOptions {
  /** Cap on series (all metrics). Default {@link DEFAULT_MAX_SERIES}. */
  readonly maxSeries?: number;
  /** Cap on distinct values of one label of one metric. Default {@link DEFAULT_MAX_LABEL_VALUES}. */
  readonly maxLabelValues?: number;
  /** Told once per metric when its samples start being dropped (`metrics/cap-reached`). */
  readonly onError?: (error: MetricsError) => void;
}

/** Counters, gauges and histograms in memory. */
export interface Recorder {
  /**
   * Declares (or returns, when declared the same way) a counter.
   * @throws MetricsError `metrics/invalid-name` for a bad name, or one declared with another kind or labels.
   */
  counter<L extends string = never>(name: string, options?: MetricOptions<L>): Counter<L>;
  /** Declares a gauge (see {@link Recorder.counter}). */
  gauge<L extends string = never>(name: string, options?: MetricOptions<L>): Gauge<L>;
  /** Declares a histogram (see {@link Recorder.counter}); also for other buckets. */
  histogram<L extends string = never>(name: string, options?: HistogramOptions<L>): Histogram<L>;
  /** The current value of every series. */
  snapshot(): readonly MetricSnapshot[];
  /** The window's values of every series (see `point.ts`), then starts the next window. */
  takeWindow(): PointData;
  /** How many series exist, and how many samples were dropped by the caps since the start. */
  stats(): { readonly series: number; readonly dropped: number };
}

interface CounterState {
  total: number;
  inc: number;
}
interface GaugeState {
  last: number;
  has: boolean;
  min: number;
  max: number;
  sum: number;
  n: number;
}
interface HistState {
  window: Float64Array; // per bucket, then count, sum
  totals: Float64Array;
}

interface Metric {
  readonly name: string;
  readonly kind: MetricKind;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly bounds: readonly number[];
  /** By the label values joined with U+0001 (cheap to build per call); each holds its series key. */
  readonly series: Map<
    string,
    { key: string; labels: Readonly<Record<string, string>>; state: CounterState | GaugeState | HistState }
  >;
  readonly values: Map<string, Set<string>>;
  handle: unknown;
  capReported: boolean;
}

const noop = { inc() {}, set() {}, observe() {} };

/**
 * Creates a recorder.
 * @param options - Caps and the error listener.
 * @returns The recorder.
 * @throws NxsError `config/invalid` for a cap that is not a positive integer.
 * @example
 * ```ts
 * const r = createRecorder();
 * const requests = r.counter("http_requests_total", { labels: ["status"] });
 * requests.inc({ status: "200" });
 * const latency = r.histogram("http_latency_ms", { buckets: [10, 100, 1000] });
 * latency.observe(42);
 * console.log(Object.keys(r.takeWindow().s)); // ['http_requests_total{status="200"}', 'http_latency_ms']
 * ```
 */
export function createRecorder(options: RecorderOptions = {}): Recorder {
  const maxSeries = capOf(options.maxSeries, DEFAULT_MAX_SERIES, "maxSeries");
  const maxLabelValues = capOf(options.maxLabelValues, DEFAULT_MAX_LABEL_VALUES, "maxLabelValues");
  const metrics = new Map<string, Metric>();
  let seriesCount = 0;
  let dropped = 0;

  const declare = (name: string, kind: MetricKind, opts: HistogramOptions<string>): Metric => {
    checkName(name, "metric");
    const labelNames = [...(opts.labels ?? [])];
    for (const l of labelNames) checkName(l, "label");
    if (new Set(labelNames).size !== labelNames.length) {
      throw new MetricsError(MetricsErrorCode.InvalidName, `metric ${name}: a label is named twice`);
    }
    const bounds = kind === MetricKind.Histogram ? checkBounds(name, opts.buckets ?? DEFAULT_BUCKETS) : [];
    const known = metrics.get(name);
    if (known !== undefined) {
      if (
        known.kind !== kind ||
        known.labelNames.join(",") !== labelNames.join(",") ||
        known.bounds.join(",") !== bounds.join(",")
      ) {
        throw new MetricsError(
          MetricsErrorCode.InvalidName,
          `metric ${name} is declared already as a ${known.kind} with labels [${known.labelNames.join(", ")}]: declare it once, the same way`,
        );
      }
      return known;
    }
    const m: Metric = {
      name,
      kind,
      help: opts.help ?? "",
      labelNames,
      bounds,
      series: new Map(),
      values: new Map(labelNames.map((l) => [l, new Set<string>()])),
      handle: undefined,
      capReported: false,
    };
    metrics.set(name, m);
    return m;
  };

  const newState = (m: Metric): CounterState | GaugeState | HistState => {
    if (m.kind === MetricKind.Counter) return { total: 0, inc: 0 };
    if (m.kind === MetricKind.Gauge) return { last: 0, has: false, min: 0, max: 0, sum: 0, n: 0 };
    return { window: new Float64Array(m.bounds.length + 3), totals: new Float64Array(m.bounds.length + 3) };
  };

  /** The state of a series, made on first use; undefined when over a cap (counted as dropped). */
  const stateOf = (
    m: Metric,
    labels: Labels | undefined,
  ): CounterState | GaugeState | HistState | undefined => {
    const names = m.labelNames;
    let id = "";
    for (let i = 0; i < names.length; i++) {
      const raw = labels?.[names[i] as string];
      let v = typeof raw === "string" ? raw : String(raw ?? "");
      if (v.length > MAX_LABEL_VALUE) v = v.slice(0, MAX_LABEL_VALUE);
      if (v.includes("\u0001")) {
        // The separator inside a value: the unambiguous series key instead (it holds U+0001, so it
        // cannot equal a joined id, whose values hold none).
        id = `\u0001${encodeSeriesKey(m.name, names, labels)}`;
        break;
      }
      id = i === 0 ? v : `${id}\u0001${v}`;
    }
    const s = m.series.get(id);
    if (s !== undefined) return s.state;
    const values: Record<string, string> = {};
    let over = seriesCount >= maxSeries;
    for (const l of m.labelNames) {
      const v = String(labels?.[l] ?? "").slice(0, MAX_LABEL_VALUE);
      values[l] = v;
      const seen = m.values.get(l) as Set<string>;
      if (!seen.has(v) && seen.size >= maxLabelValues) over = true;
    }
    if (over) {
      dropped++;
      if (!m.capReported) {
        m.capReported = true;
        options.onError?.(
          new MetricsError(
            MetricsErrorCode.CapReached,
            `metric ${m.name}: the cap of ${maxSeries} series or ${maxLabelValues} values per label is reached; new series are dropped (a label with unbounded values, such as an id?)`,
          ),
        );
      }
      return undefined;
    }
    for (const l of m.labelNames) (m.values.get(l) as Set<string>).add(values[l] as string);
    const state = newState(m);
    m.series.set(id, { key: encodeSeriesKey(m.name, names, values), labels: values, state });
    seriesCount++;
    return state;
  };

  const addCounter = (st: CounterState, by: number) => {
    if (!(by >= 0) || by === Number.POSITIVE_INFINITY) return;
    st.total += by;
    st.inc += by;
  };
  const setGauge = (st: GaugeState, v: number) => {
    if (!Number.isFinite(v)) return;
    st.last = v;
    st.has = true;
    if (st.n === 0) {
      st.min = v;
      st.max = v;
    } else {
      if (v < st.min) st.min = v;
      if (v > st.max) st.max = v;
    }
    st.sum += v;
    st.n++;
  };
  const observe = (m: Metric, st: HistState, v: number) => {
    if (!Number.isFinite(v)) return;
    const b = m.bounds;
    let i = 0;
    while (i < b.length && v > (b[i] as number)) i++;
    const nb = b.length + 1;
    const w = st.window;
    const t = st.totals;
    w[i] = (w[i] as number) + 1;
    w[nb] = (w[nb] as number) + 1;
    w[nb + 1] = (w[nb + 1] as number) + v;
    t[i] = (t[i] as number) + 1;
    t[nb] = (t[nb] as number) + 1;
    t[nb + 1] = (t[nb + 1] as number) + v;
  };

  const recorder: Recorder = {
    counter<L extends string = never>(name: string, opts: MetricOptions<L> = {}): Counter<L> {
      const m = declare(name, MetricKind.Counter, opts);
      if (m.handle !== undefined) return m.handle as Counter<L>;
      const hasLabels = m.labelNames.length > 0;
      const handle = {
        name,
        inc: (a?: unknown, b?: unknown) => {
          const labels = hasLabels ? (a as Labels) : undefined;
          const by = (hasLabels ? b : a) as number | undefined;
          const st = stateOf(m, labels) as CounterState | undefined;
          if (st !== undefined) addCounter(st, by ?? 1);
        },
        labels: (labels?: Labels) => {
          const st = stateOf(m, labels) as CounterState | undefined;
          return st === undefined ? noop : { inc: (by = 1) => addCounter(st, by) };
        },
      };
      m.handle = handle;
      return handle as unknown as Counter<L>;
    },
    gauge<L extends string = never>(name: string, opts: MetricOptions<L> = {}): Gauge<L> {
      const m = declare(name, MetricKind.Gauge, opts);
      if (m.handle !== undefined) return m.handle as Gauge<L>;
      const hasLabels = m.labelNames.length > 0;
      const handle = {
        name,
        set: (a?: unknown, b?: unknown) => {
          const labels = hasLabels ? (a as Labels) : undefined;
          const v = (hasLabels ? b : a) as number | undefined;
          const st = stateOf(m, labels) as GaugeState | undefined;
          if (st !== undefined) setGauge(st, v ?? Number.NaN);
        },
        labels: (labels?: Labels) => {
          const st = stateOf(m, labels) as GaugeState | undefined;
          return st === undefined ? noop : { set: (v: number) => setGauge(st, v) };
        },
      };
      m.handle = handle;
      return handle as unknown as Gauge<L>;
    },
    histogram<L extends string = never>(name: string, opts: HistogramOptions<L> = {}): Histogram<L> {
      const m = declare(name, MetricKind.Histogram, opts);
      if (m.handle !== undefined) return m.handle as Histogram<L>;
      const hasLabels = m.labelNames.length > 0;
      const handle = {
        name,
        buckets: m.bounds,
        observe: (a?: unknown, b?: unknown) => {
          const labels = hasLabels ? (a as Labels) : undefined;
          const v = (hasLabels ? b : a) as number | undefined;
          const st = stateOf(m, labels) as HistState | undefined;
          if (st !== undefined) observe(m, st, v ?? Number.NaN);
        },
        labels: (labels?: Labels) => {
          const st = stateOf(m, labels) as HistState | undefined;
          return st === undefined ? noop : { observe: (v: number) => observe(m, st, v) };
        },
      };
      m.handle = handle;
      return handle as unknown as Histogram<L>;
    },
    snapshot() {
      const out: MetricSnapshot[] = [];
      for (const m of metrics.values()) {
        const series: SeriesSnapshot[] = [];
        for (const s of m.series.values()) {
          const key = s.key;
          if (m.kind === MetricKind.Counter) {
            series.push({ key, labels: s.labels, value: (s.state as CounterState).total });
          } else if (m.kind === MetricKind.Gauge) {
            const g = s.state as GaugeState;
            if (g.has) series.push({ key, labels: s.labels, value: g.last });
          } else {
            const t = (s.state as HistState).totals;
            const nb = m.bounds.length + 1;
            const buckets: number[] = [];
            let acc = 0;
            for (let i = 0; i < nb; i++) {
              acc += t[i] as number;
              buckets.push(acc);
            }
            series.push({ key, labels: s.labels, value: t[nb] as number, buckets, sum: t[nb + 1] as number });
          }
        }
        out.push({
          name: m.name,
          kind: m.kind,
          help: m.help,
          labelNames: m.labelNames,
          ...(m.kind === MetricKind.Histogram ? { bounds: m.bounds } : {}),
          series,
        });
      }
      return out;
    },
    takeWindow() {
      const s: Record<string, SeriesValue> = {};
      const b: Record<string, readonly number[]> = {};
      for (const m of metrics.values()) {
        for (const ser of m.series.values()) {
          const key = ser.key;
          if (m.kind === MetricKind.Counter) {
            const c = ser.state as CounterState;
            s[key] = ["c", c.inc, c.total];
            c.inc = 0;
          } else if (m.kind === MetricKind.Gauge) {
            const g = ser.state as GaugeState;
            if (!g.has) continue;
            s[key] =
              g.n === 0 ? ["g", g.last, g.last, g.last, 1, g.last] : ["g", g.min, g.max, g.sum, g.n, g.last];
            g.n = 0;
            g.sum = 0;
          } else {
            const w = (ser.state as HistState).window;
            const nb = m.bounds.length + 1;
            s[key] = ["h", w[nb] as number, w[nb + 1] as number, ...Array.from(w.subarray(0, nb))];
            w.fill(0);
            b[m.name] = m.bounds;
          }
        }
      }
      return { v: 1, b, s };
    },
    stats: () => ({ series: seriesCount, dropped }),
  };
  return recorder;
}

function capOf(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (!(Number.isInteger(v) && v > 0)) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `metrics ${what} must be a positive integer, got ${String(value)}`,
    );
  }
  return v;
}

function checkBounds(name: string, bounds: readonly number[]): readonly number[] {
  const ok =
    bounds.length > 0 &&
    bounds.length <= 60 &&
    bounds.every((x, i) => Number.isFinite(x) && (i === 0 || x > (bounds[i - 1] as number)));
  if (!ok) {
    throw new MetricsError(
      MetricsErrorCode.InvalidName,
      `histogram ${name}: buckets must be 1 to 60 finite bounds in ascending order, e.g. [10, 100, 1000]`,
    );
  }
  return Object.freeze([...bounds]);
}
