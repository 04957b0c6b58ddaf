/**
 * The Prometheus exposition of a recorder's current values, formatted by `prom-client` (its
 * registry and text format; the values come from the recorder's snapshot at each scrape).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Registry } from "prom-client";
import type { MetricSnapshot, Recorder } from "./recorder.js";

/** Options of {@link createPrometheusExposition}. */
export interface PrometheusOptions {
  /** Labels added to every series (e.g. `{ node: "gw-1" }`). */
  readonly labels?: Readonly<Record<string, string>>;
}

/** The exposition: the text, its content type, and a `node:http` handler. */
export interface PrometheusExposition {
  /** The `prom-client` registry behind it (add your own prom-client metrics if you like). */
  readonly registry: Registry;
  readonly contentType: string;
  /** The current values in the Prometheus text format. */
  text(): Promise<string>;
  /** Answers `GET /metrics` (any other path: 404). */
  handler(req: IncomingMessage, res: ServerResponse): void;
}

interface Sample {
  readonly value: number;
  readonly labels: Record<string, string | number>;
  readonly metricName?: string;
}

const promType = { counter: "counter", gauge: "gauge", histogram: "histogram" } as const;

function samplesOf(m: MetricSnapshot): Sample[] {
  const out: Sample[] = [];
  for (const s of m.series) {
    if (m.kind !== "histogram") {
      out.push({ value: s.value, labels: { ...s.labels } });
      continue;
    }
    const bounds = m.bounds ?? [];
    (s.buckets ?? []).forEach((count, i) => {
      const le = i < bounds.length ? String(bounds[i]) : "+Inf";
      out.push({ value: count, labels: { ...s.labels, le }, metricName: `${m.name}_bucket` });
    });
    out.push({ value: s.sum ?? 0, labels: { ...s.labels }, metricName: `${m.name}_sum` });
    out.push({ value: s.value, labels: { ...s.labels }, metricName: `${m.name}_count` });
  }
  return out;
}

/**
 * Creates the Prometheus exposition of a recorder (or a `createMetrics` result).
 * @param recorder - Where the values are.
 * @param options - Labels for every series.
 * @returns The exposition.
 * @example
 * ```ts
 * import { createServer } from "node:http";
 * import { createMemoryMetricsClient, createMetrics, createPrometheusExposition } from "@nxs-sync/metrics";
 * const metrics = createMetrics({ client: createMemoryMetricsClient(), node: "gw-1" });
 * const prom = createPrometheusExposition(metrics, { labels: { node: "gw-1" } });
 * createServer(prom.handler).listen(9464); // scrape http://host:9464/metrics
 * ```
 */
export function createPrometheusExposition(
  recorder: Recorder,
  options: PrometheusOptions = {},
): PrometheusExposition {
  const registry = new Registry();
  if (options.labels !== undefined) registry.setDefaultLabels({ ...options.labels });
  const known = new Set<string>();
  const sync = () => {
    for (const m of recorder.snapshot()) {
      if (known.has(m.name)) continue;
      known.add(m.name);
      const name = m.name;
      registry.registerMetric({
        name,
        help: m.help === "" ? name : m.help,
        type: promType[m.kind],
        aggregator: "sum",
        get: async () => {
          const now = recorder.snapshot().find((x) => x.name === name) ?? m;
          return {
            name,
            help: m.help === "" ? name : m.help,
            type: promType[m.kind],
            aggregator: "sum",
            values: samplesOf(now),
          };
        },
      } as unknown as Parameters<Registry["registerMetric"]>[0]);
    }
  };
  const text = async () => {
    sync();
    return registry.metrics();
  };
  return {
    registry,
    contentType: registry.contentType,
    text,
    handler(req, res) {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method !== "GET" || path !== "/metrics") {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
        return;
      }
      text().then(
        (body) => res.writeHead(200, { "content-type": registry.contentType }).end(body),
        (e: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`${String(e)}\n`),
      );
    },
  };
}
