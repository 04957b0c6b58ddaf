/**
 * The workload of the metrics benchmark: a gateway's series (the node collector's, plus requests,
 * errors and latency per provider), and the naive one-record-per-sample design it is compared with.
 */
import {
  createCollector,
  createRecorder,
  type PointData,
  type Recorder,
  type SystemReader,
} from "@nxs-sync/metrics";
import { AuthRules, type CollectionDef } from "@nxs-sync/pocketbase";

export const PROVIDERS = ["openai", "anthropic", "mistral", "groq", "local"] as const;
export const STATUSES = ["200", "429", "500"] as const;

/** A fixed machine for the collector's series (the figures do not matter, their count does). */
export const fixedSystem = (): SystemReader => ({
  readText: (p) =>
    p === "/proc/stat"
      ? "cpu  4705 150 1120 16250 520 20 5 0 0 0\n"
      : p === "/proc/meminfo"
        ? "MemTotal: 8000000 kB\nMemAvailable: 2000000 kB\n"
        : undefined,
  disk: () => ({ totalBytes: 100e9, freeBytes: 60e9 }),
  cores: () => 2,
  process: () => ({ rssBytes: 80e6, heapUsedBytes: 20e6, cpuSeconds: 1 }),
});

/**
 * A gateway's recorder: the collector's series for one PocketBase server, and per provider the
 * requests by status, errors and a latency histogram.
 * @returns The recorder and a function recording one interval of traffic (seeded by `i`).
 */
export function gatewayRecorder(): { recorder: Recorder; interval: (i: number) => Promise<void> } {
  const recorder = createRecorder();
  const collector = createCollector({
    metrics: recorder,
    system: fixedSystem(),
    eventLoop: false,
    healthUrls: [],
    probes: [
      (m) => m.gauge("pocketbase_up", { labels: ["server"] }).set({ server: "http://10.0.0.1:8090" }, 1),
    ],
  });
  const req = recorder.counter("gateway_requests_total", { labels: ["provider", "status"] });
  const err = recorder.counter("gateway_errors_total", { labels: ["provider"] });
  const lat = recorder.histogram("gateway_latency_ms", { labels: ["provider"] });
  return {
    recorder,
    async interval(i) {
      await collector.collect();
      PROVIDERS.forEach((p, k) => {
        for (const s of STATUSES)
          req.inc({ provider: p, status: s }, ((i * 7 + k * 3) % 11) + (s === "200" ? 50 : 0));
        err.inc({ provider: p }, (i + k) % 3);
        for (let j = 0; j < 20; j++) lat.observe({ provider: p }, ((i * 31 + j * 17 + k) % 400) * 7);
      });
    },
  };
}

/** Samples in a window's data: a counter or gauge is one, a histogram one per bucket plus sum and count. */
export function samplesIn(data: PointData): number {
  let n = 0;
  for (const v of Object.values(data.s)) n += v[0] === "h" ? v.length - 1 : 1;
  return n;
}

/** The naive design: one record per sample (node, metric name, labels, time, value), indexed for queries. */
export function naiveCollection(): CollectionDef {
  return {
    id: "pbc_bench_naive_samples",
    name: "bench_naive_samples",
    type: "base",
    fields: [
      { name: "node", type: "text", max: 200 },
      { name: "name", type: "text", max: 200 },
      { name: "labels", type: "json", maxSize: 4096 },
      { name: "at", type: "number" },
      { name: "value", type: "number" },
    ],
    indexes: [
      "CREATE INDEX idx_bench_naive_name ON bench_naive_samples (name, at)",
      "CREATE INDEX idx_bench_naive_node ON bench_naive_samples (node, name, at)",
    ],
    listRule: AuthRules.gateway,
    viewRule: AuthRules.gateway,
    createRule: AuthRules.gateway,
    updateRule: null,
    deleteRule: null,
  };
}

/** The naive records of one window: one per sample (a histogram's buckets, sum and count each one). */
export function naiveRecords(node: string, at: number, data: PointData): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const [key, v] of Object.entries(data.s)) {
    const name = key.replace(/\{.*$/s, "");
    const labels = key.includes("{") ? key.slice(name.length) : "";
    if (v[0] === "h") {
      const bounds = data.b[name] ?? [];
      v.slice(3).forEach((c, i) => {
        out.push({
          node,
          name: `${name}_bucket`,
          labels: { key: labels, le: String(bounds[i] ?? "+Inf") },
          at,
          value: c,
        });
      });
      out.push({ node, name: `${name}_sum`, labels: { key: labels }, at, value: v[2] });
      out.push({ node, name: `${name}_count`, labels: { key: labels }, at, value: v[1] });
    } else {
      out.push({ node, name, labels: { key: labels }, at, value: v[0] === "c" ? v[2] : v[5] });
    }
  }
  return out;
}
