/**
 * `npm run bench -- metrics`: the cost of @nxs-sync/metrics.
 * - recording: ns per recorded sample (counter, gauge, histogram; a bound series and labels per
 *   call), against prom-client's in the same process;
 * - storage: bytes per stored sample on a real PocketBase (growth of `data.db`, measured after a
 *   clean stop) for the flushes and each rollup tier, against a naive design of one record per
 *   sample written in the same run, with a gateway's series (the collector's, requests, errors and
 *   latency per provider);
 * - write load per node: records and bytes a second;
 * - query: a day of one node at 1 m (1,440 windows) read from PocketBase and aggregated;
 * - collector: CPU share of one core and RSS of a process running the metrics and the collector at
 *   the default intervals (flush 10 s, probes 10 s) against the same process idle (child processes,
 *   bench/suites/metrics-child.mjs);
 * - a whole gateway (a replica, a queue worker, the config store) with and without the metrics and
 *   the collector, idle and under a steady load (bench/suites/metrics-gateway.ts).
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { silentLogger } from "@nxs-sync/core";
import {
  createRecorder,
  DEFAULT_TIERS,
  type MetricsPoint,
  makePoint,
  RAW_TIER,
  rollupPoints,
  runQuery,
} from "@nxs-sync/metrics";
import {
  createPocketBaseMetricsClient,
  metricsCollections,
  POINTS_COLLECTION,
  pointRecord,
} from "@nxs-sync/metrics/pocketbase";
import { createNxsCollectionRegistry, ensureNode, ensureSchema, NodeRole } from "@nxs-sync/pocketbase";
import { type ProcessPocketBase, startPocketBase } from "@nxs-sync/testing";
import client from "prom-client";
import type { BenchCase, BenchSuite } from "../lib/types.js";
import { gatewayCases } from "./metrics-gateway.js";
import { gatewayRecorder, naiveCollection, naiveRecords, samplesIn } from "./metrics-workload.js";

const child = fileURLToPath(new URL("./metrics-child.mjs", import.meta.url));
const root = fileURLToPath(new URL("../../", import.meta.url));
/** Whether the packages are built: the child (plain JavaScript) then runs on plain node against dist. */
const BUILT = ["core", "pocketbase", "metrics"].every((p) =>
  existsSync(join(root, "packages", p, "dist", "index.js")),
);
const gateway = {
  id: "benchmetricsgw1",
  email: "gw@metrics.bench",
  password: "pw-bench-metrics-1",
  role: NodeRole.Gateway,
};

/** Size of a server's database after a clean stop (WAL checkpointed). */
async function dbBytes(s: ProcessPocketBase): Promise<number> {
  await s.stop();
  const size = (f: string) => {
    try {
      return statSync(join(s.dataDir, f)).size;
    } catch {
      return 0;
    }
  };
  const n = size("data.db") + size("data.db-wal");
  await s.restart();
  return n;
}

async function enableBatch(s: ProcessPocketBase): Promise<void> {
  await s
    .client()
    .settings.update({ batch: { enabled: true, maxRequests: 1000, timeout: 30, maxBodySize: 0 } });
}

/** Writes records through the superuser's batches of 500. */
async function writeAll(
  s: ProcessPocketBase,
  collection: string,
  records: readonly Record<string, unknown>[],
): Promise<void> {
  const pb = s.client();
  for (let i = 0; i < records.length; i += 500) {
    const b = pb.createBatch();
    for (const r of records.slice(i, i + 500)) b.collection(collection).create(r);
    await b.send();
  }
}

const body = pointRecord;

function nsPerCall(n: number, f: (i: number) => void): number {
  for (let i = 0; i < 10_000; i++) f(i); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f(i);
  return Number(process.hrtime.bigint() - t0) / n;
}

function runChild(mode: "collector" | "idle", url: string, seconds: number) {
  return new Promise<{ cpuPercent: number; rssMiB: number; maxRssMiB: number }>((resolve, reject) => {
    execFile(
      process.execPath,
      [...(BUILT ? [] : ["--import", "tsx"]), child, mode, url, String(seconds)],
      {
        env: { ...process.env, NXS_BENCH_EMAIL: gateway.email, NXS_BENCH_PASSWORD: gateway.password },
        timeout: (seconds + 60) * 1000,
      },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`metrics child ${mode}: ${err.message}\n${stderr}`));
        const m = /cpuPercent=([\d.]+) rssMiB=([\d.]+) maxRssMiB=([\d.]+)/.exec(stdout);
        if (!m) return reject(new Error(`metrics child printed no figure:\n${stdout}\n${stderr}`));
        resolve({ cpuPercent: Number(m[1]), rssMiB: Number(m[2]), maxRssMiB: Number(m[3]) });
      },
    );
  });
}

/**
 * The Go standalone collector (packages/metrics/collector-go, built by scripts/go-collector.sh) at
 * the default interval against `url` for `seconds`: its CPU share of one core after a 5 s warm-up
 * (from /proc/<pid>/stat) and its resident set at the end and at its peak (/proc/<pid>/status).
 */
async function runGoCollector(url: string, seconds: number) {
  const script = fileURLToPath(new URL("../../scripts/go-collector.sh", import.meta.url));
  const bin = execFileSync("bash", [script, "build"], { encoding: "utf8" }).trim();
  const child = spawn(bin, ["--node", "bench-go", "--servers", url], {
    env: {
      PATH: process.env.PATH,
      NXS_COLLECTOR_EMAIL: gateway.email,
      NXS_COLLECTOR_PASSWORD: gateway.password,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const ticks = () => {
    const f = readFileSync(`/proc/${child.pid}/stat`, "utf8")
      .replace(/^.*\) /s, "")
      .split(" ");
    return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (100 a second)
  };
  const kib = (field: string) =>
    Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1]);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    await sleep(5_000);
    const t0 = performance.now();
    const c0 = ticks();
    await sleep(seconds * 1000 - 5_000);
    const cpuPercent = ((ticks() - c0) / 100 / ((performance.now() - t0) / 1000)) * 100;
    const rssMiB = kib("VmRSS") / 1024;
    const maxRssMiB = kib("VmHWM") / 1024;
    if (child.exitCode !== null) throw new Error(`the Go collector exited: ${stderr}`);
    return { cpuPercent, rssMiB, maxRssMiB };
  } finally {
    child.kill("SIGTERM");
  }
}

export const suite: BenchSuite = {
  name: "metrics",
  description:
    "metrics: ns per recorded sample, bytes per stored sample per tier vs one record per sample, write load, a day's query, collector CPU and RSS",
  defaultRuns: 5,
  async setup({ quick, wants }) {
    const cases: BenchCase[] = [];
    const calls = quick ? 200_000 : 2_000_000;

    // Recording, nxs and prom-client side by side.
    const r = createRecorder();
    const reg = new client.Registry();
    const nC = r.counter("c_total", { labels: ["provider", "status"] });
    const pC = new client.Counter({
      name: "c_total",
      help: "c",
      labelNames: ["provider", "status"],
      registers: [reg],
    });
    const nG = r.gauge("g", { labels: ["provider"] });
    const pG = new client.Gauge({ name: "g", help: "g", labelNames: ["provider"], registers: [reg] });
    const nH = r.histogram("h_ms", { labels: ["provider"] });
    const pH = new client.Histogram({
      name: "h_ms",
      help: "h",
      labelNames: ["provider"],
      buckets: [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
      registers: [reg],
    });
    const nCb = nC.labels({ provider: "openai", status: "200" });
    const pCb = pC.labels({ provider: "openai", status: "200" });
    const labels = [
      { provider: "openai", status: "200" },
      { provider: "groq", status: "429" },
    ];
    cases.push(
      {
        metric: "record-counter-bound-ns",
        unit: "ns",
        better: "lower",
        subjects: {
          nxs: () => nsPerCall(calls, () => nCb.inc()),
          "prom-client": () => nsPerCall(calls, () => pCb.inc()),
        },
        note: "one inc() on a series bound once (`counter.labels({...})`)",
      },
      {
        metric: "record-counter-labels-ns",
        unit: "ns",
        better: "lower",
        subjects: {
          nxs: () => nsPerCall(calls, (i) => nC.inc(labels[i & 1] as (typeof labels)[0])),
          "prom-client": () => nsPerCall(calls, (i) => pC.inc(labels[i & 1] as (typeof labels)[0])),
        },
        note: "inc(labels) with the labels passed per call (the series looked up each time)",
      },
      {
        metric: "record-gauge-labels-ns",
        unit: "ns",
        better: "lower",
        subjects: {
          nxs: () => nsPerCall(calls, (i) => nG.set({ provider: "openai" }, i)),
          "prom-client": () => nsPerCall(calls, (i) => pG.set({ provider: "openai" }, i)),
        },
      },
      {
        metric: "record-histogram-labels-ns",
        unit: "ns",
        better: "lower",
        subjects: {
          nxs: () => nsPerCall(calls, (i) => nH.observe({ provider: "openai" }, i % 3000)),
          "prom-client": () => nsPerCall(calls, (i) => pH.observe({ provider: "openai" }, i % 3000)),
        },
        note: "11 buckets",
      },
    );

    const servers: ProcessPocketBase[] = [];
    const teardown = async () => {
      await Promise.all(servers.map((s) => s.destroy()));
    };
    const needServers = ["bytes", "write", "query", "collector"].some((p) => wants(p));
    if (!needServers) {
      if (!wants("gateway-idle-rss-mib")) return { cases };
      return { cases: [...cases, ...(await gatewayCases(servers, quick))], teardown };
    }

    // Storage: the same windows stored compactly (flushes, then each tier) and one record per sample.
    const intervals = quick ? 180 : 360; // 30 min or an hour of 10 s flushes
    const t0 = Math.floor((Date.now() - 2 * 86_400_000) / 86_400_000) * 86_400_000;
    const work = gatewayRecorder();
    const raw: MetricsPoint[] = [];
    for (let i = 0; i < intervals; i++) {
      await work.interval(i);
      raw.push(
        makePoint({
          node: "gw-1",
          tier: RAW_TIER,
          start: t0 + i * 10_000,
          span: 10_000,
          n: 1,
          data: work.recorder.takeWindow(),
        }),
      );
    }
    const samplesPerWindow = samplesIn(raw[raw.length - 1]!.data);
    const samplesOf = (pts: readonly MetricsPoint[]) => pts.reduce((a, p) => a + samplesIn(p.data), 0);
    const tiers: { name: string; points: MetricsPoint[] }[] = [];
    let below = raw;
    for (const t of DEFAULT_TIERS.slice(0, 3)) {
      const groups = new Map<number, MetricsPoint[]>();
      for (const p of below) {
        const w = Math.floor(p.start / t.spanMs) * t.spanMs;
        groups.set(w, [...(groups.get(w) ?? []), p]);
      }
      const pts = [...groups].map(([w, g]) => rollupPoints("gw-1", t.name, w, t.spanMs, g));
      tiers.push({ name: t.name, points: pts });
      below = pts;
    }
    const registry = createNxsCollectionRegistry().register(...metricsCollections());
    const compact = await startPocketBase({ name: "bench-metrics-compact" });
    servers.push(compact);
    await ensureSchema(compact.client(), { collections: registry, rateLimits: false });
    await ensureNode(compact.client(), gateway);
    await enableBatch(compact);
    let before = await dbBytes(compact);
    const bytesPerSample: Record<string, number> = {};
    for (const [name, pts] of [["raw", raw] as const, ...tiers.map((t) => [t.name, t.points] as const)]) {
      await writeAll(compact, POINTS_COLLECTION, pts.map(body));
      const after = await dbBytes(compact);
      bytesPerSample[name] = (after - before) / samplesOf(pts);
      before = after;
    }
    const naive = await startPocketBase({ name: "bench-metrics-naive" });
    servers.push(naive);
    await ensureSchema(naive.client(), {
      collections: createNxsCollectionRegistry().register({ schema: naiveCollection() }),
      rateLimits: false,
    });
    await enableBatch(naive);
    const naiveBefore = await dbBytes(naive);
    const naiveRecs = raw.flatMap((p) => naiveRecords("gw-1", p.start, p.data));
    await writeAll(naive, "bench_naive_samples", naiveRecs);
    const naivePerSample = ((await dbBytes(naive)) - naiveBefore) / naiveRecs.length;
    const storageNote = `${intervals} flushes of one gateway node, ${samplesPerWindow} samples each (${Object.keys(raw[0]!.data.s).length} series; a histogram counts its buckets, sum and count); naive: ${naiveRecs.length} records; growth of data.db after a clean stop`;
    cases.push({
      metric: "bytes-per-sample-raw",
      unit: "bytes",
      better: "lower",
      subjects: { nxs: () => bytesPerSample.raw!, naive: () => naivePerSample },
      note: storageNote,
    });
    for (const t of tiers) {
      cases.push({
        metric: `bytes-per-sample-${t.name}`,
        unit: "bytes",
        better: "lower",
        subjects: { nxs: () => bytesPerSample[t.name]!, naive: () => naivePerSample },
        note: `${t.points.length} ${t.name} rollup records (a sample: one series' min/max/sum/count/last, increase, or bucket); naive: its raw per-sample cost (it has no tiers)`,
      });
    }
    const flushBytes = JSON.stringify(body(raw[1]!)).length;
    const naiveWindowBytes = naiveRecords("gw-1", raw[1]!.start, raw[1]!.data).reduce(
      (a, x) => a + JSON.stringify(x).length,
      0,
    );
    cases.push(
      {
        metric: "write-records-per-s-per-node",
        unit: "records/s",
        better: "lower",
        subjects: { nxs: () => 1 / 10, naive: () => samplesPerWindow / 10 },
        note: "at the default 10 s flush",
      },
      {
        metric: "write-bytes-per-s-per-node",
        unit: "bytes/s",
        better: "lower",
        subjects: { nxs: () => flushBytes / 10, naive: () => naiveWindowBytes / 10 },
        note: "JSON bodies sent at the default 10 s flush",
      },
    );

    // Query: a day of one node at 1 m.
    if (wants("query")) {
      const day: MetricsPoint[] = [];
      // The last day, inside the 1 m retention (the collector child's maintenance runs on this server).
      const q0 = Math.floor(Date.now() / 60_000) * 60_000 - 86_400_000 + 600_000;
      for (let i = 0; i < 1440; i++) {
        const src = tiers[0]!.points[i % tiers[0]!.points.length]!;
        day.push(
          makePoint({
            node: "gw-day",
            tier: "1m",
            start: q0 + i * 60_000,
            span: 60_000,
            n: 6,
            data: src.data,
          }),
        );
      }
      await writeAll(compact, POINTS_COLLECTION, day.map(body));
      const mc = createPocketBaseMetricsClient({
        endpoints: [compact.url],
        auth: { email: gateway.email, password: gateway.password },
        logger: silentLogger,
      });
      const queryTiers = [{ name: "raw", spanMs: 10_000, retentionMs: 7_200_000 }, ...DEFAULT_TIERS];
      cases.push({
        metric: "query-day-1m-ms",
        unit: "ms",
        better: "lower",
        subjects: {
          nxs: async () => {
            const s = performance.now();
            const res = await runQuery(
              mc,
              {
                series: "node_memory_percent",
                nodes: ["gw-day"],
                from: q0,
                to: q0 + 86_400_000,
                step: 60_000,
                tier: "1m",
              },
              { tiers: queryTiers, now: q0 + 86_400_000 },
            );
            if (res.series[0]?.points.length !== 1440)
              throw new Error(`query returned ${res.series[0]?.points.length}`);
            return performance.now() - s;
          },
        },
        note: "1,440 records of one node, every series in each (read whole, then one series aggregated)",
      });
      const prevTeardown = teardown;
      return {
        cases: await withCollector(cases, servers, quick, wants),
        teardown: async () => {
          mc.close();
          await prevTeardown();
        },
      };
    }
    return { cases: await withCollector(cases, servers, quick, wants), teardown };
  },
};

async function withCollector(
  cases: BenchCase[],
  servers: ProcessPocketBase[],
  quick: boolean,
  wants: (m: string) => boolean,
): Promise<BenchCase[]> {
  const whole = wants("gateway-idle-rss-mib") ? await gatewayCases(servers, quick) : [];
  if (!wants("collector")) return [...cases, ...whole];
  // A server of its own: the node's maintenance sees only its own windows.
  const server = await startPocketBase({ name: "bench-metrics-node" });
  servers.push(server);
  await ensureSchema(server.client(), {
    collections: createNxsCollectionRegistry().register(...metricsCollections()),
    rateLimits: false,
  });
  await ensureNode(server.client(), gateway);
  const seconds = quick ? 35 : 65;
  const [busy, idle, go] = await Promise.all([
    runChild("collector", server.url, seconds),
    runChild("idle", server.url, seconds),
    runGoCollector(server.url, seconds),
  ]);
  return [
    ...cases,
    ...whole,
    {
      metric: "collector-cpu-percent-of-core",
      unit: "%",
      better: "lower",
      subjects: { nxs: () => busy.cpuPercent, go: () => go.cpuPercent, idle: () => idle.cpuPercent },
      note: `a process running createMetrics (flush 10 s to PocketBase, maintenance 1 min) and the collector (10 s, /api/health included) for ${seconds} s, measured after a 5 s warm-up; "go": the Go standalone collector (packages/metrics/collector-go: the same probes, flush 10 s, no maintenance); "idle": the same Node process with the same modules loaded and one request made (as any gateway), nothing started (measured once, the three in parallel)`,
    },
    {
      metric: "collector-process-rss-mib",
      unit: "MiB",
      better: "lower",
      subjects: { nxs: () => busy.rssMiB, go: () => go.rssMiB, idle: () => idle.rssMiB },
      note: `resident set at the end of that run (the Go collector's peak: ${go.maxRssMiB.toFixed(1)} MiB) (${BUILT ? "plain node on the built packages (dist)" : "node + tsx on the sources: run npm run build first for plain node"}, included in both)`,
    },
  ];
}
