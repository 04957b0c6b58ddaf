/**
 * The node collector: every interval it reads the machine (CPU, memory, disk, process RSS,
 * event-loop lag, each PocketBase server's `/api/health`) into gauges of a recorder, and runs the
 * probes it was given (replication, replicas, config heads, your own).
 *
 * The 75% rule: `node_cpu_percent`, `node_memory_percent` and `node_disk_percent` are measured
 * against the cgroup's limit when one is set (`basis="cgroup"`) and the host's capacity otherwise
 * (`basis="host"`); CPU is averaged over `cpuWindowMs` (a minute). `node_over_cap{resource}` is 1
 * while a figure is above `capRatio` (0.75).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { type Cancel, isNxsError, type Scheduler } from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import type { Recorder } from "../recorder.js";
import { readCgroup } from "./cgroup.js";
import { parseMeminfo, parseProcStat } from "./host.js";
import { nodeSystemReader, type SystemReader } from "./system.js";

/** A probe: records what it measures into the recorder; may be async (bounded by the interval). */
export type Probe = (metrics: Recorder, now: number) => void | Promise<void>;

/** Options of {@link createCollector}. */
export interface CollectorOptions {
  /** Where the gauges go (a `createMetrics` result). */
  readonly metrics: Recorder;
  readonly scheduler?: Scheduler;
  /** Probe interval, ms. Default 10 000. */
  readonly intervalMs?: number;
  /** Window of the CPU average, ms. Default 60 000. */
  readonly cpuWindowMs?: number;
  /** The hardware cap as a ratio. Default 0.75. */
  readonly capRatio?: number;
  /** A path on the disk to watch (PocketBase's `pb_data`). Default the working directory. */
  readonly diskPath?: string;
  /** PocketBase base URLs whose `/api/health` is probed. Default none. */
  readonly healthUrls?: readonly string[];
  /** Timeout of one health request, ms. Default 2 000. */
  readonly healthTimeoutMs?: number;
  /** Default the global `fetch`. */
  readonly fetch?: typeof fetch;
  /** Default the real machine ({@link nodeSystemReader}). */
  readonly system?: SystemReader;
  /** Measure event-loop lag (a `monitorEventLoopDelay` histogram). Default true. */
  readonly eventLoop?: boolean;
  /** More probes (see `replicatorProbe`, `replicaProbe`, `configHeadAgeProbe`). */
  readonly probes?: readonly Probe[];
  /** A probe that threw (the others go on). */
  readonly onError?: (error: unknown) => void;
}

/** What the last collection found (also in the gauges). */
export interface NodeFigures {
  readonly cpuPercent: number | undefined;
  readonly memoryPercent: number | undefined;
  readonly diskPercent: number | undefined;
  readonly cpuBasis: "cgroup" | "host";
  readonly memoryBasis: "cgroup" | "host";
  readonly overCap: readonly ("cpu" | "memory" | "disk")[];
  readonly rssBytes: number;
}

/** The collector. */
export interface Collector {
  /** Collects at once, then every interval. */
  start(): void;
  /** Collects now. @returns The figures. */
  collect(): Promise<NodeFigures>;
  stop(): void;
}

interface CpuSample {
  readonly at: number;
  readonly used: number;
  readonly capacity: number;
}

/**
 * Creates a node collector.
 * @param options - Recorder, interval, what to probe.
 * @returns The collector (call `start()`).
 * @example
 * ```ts
 * import { createCollector, createMemoryMetricsClient, createMetrics } from "@nxs-sync/metrics";
 * const metrics = createMetrics({ client: createMemoryMetricsClient(), node: "gw-1" });
 * const collector = createCollector({ metrics, healthUrls: ["http://127.0.0.1:8090"] });
 * const figures = await collector.collect();
 * console.log(figures.memoryBasis, figures.overCap); // "host" [] on a machine without a cgroup limit
 * ```
 */
export function createCollector(options: CollectorOptions): Collector {
  const m = options.metrics;
  const scheduler = options.scheduler ?? createTimerScheduler();
  const intervalMs = options.intervalMs ?? 10_000;
  const cpuWindowMs = options.cpuWindowMs ?? 60_000;
  const cap = (options.capRatio ?? 0.75) * 100;
  const sys = options.system ?? nodeSystemReader();
  const diskPath = options.diskPath ?? process.cwd();
  const fetchFn = options.fetch ?? fetch;
  const healthTimeoutMs = options.healthTimeoutMs ?? 2_000;

  const cpuPct = m.gauge("node_cpu_percent", {
    help: "CPU used, % of the cgroup quota or of all host cores, averaged over a minute",
    labels: ["basis"],
  });
  const memPct = m.gauge("node_memory_percent", {
    help: "Memory used, % of the cgroup limit or of host RAM",
    labels: ["basis"],
  });
  const memBytes = m.gauge("node_memory_bytes", {
    help: "Memory used (cgroup: charged minus inactive file cache; host: total minus available)",
    labels: ["basis"],
  });
  const memLimit = m.gauge("node_memory_limit_bytes", {
    help: "The memory the percentage is of",
    labels: ["basis"],
  });
  const diskPct = m.gauge("node_disk_percent", {
    help: "Disk used, % of the filesystem holding the data dir",
  });
  const diskUsed = m.gauge("node_disk_used_bytes", { help: "Disk used on the data dir's filesystem" });
  const overCap = m.gauge("node_over_cap", {
    help: "1 while the resource is above the cap (75%)",
    labels: ["resource"],
  });
  const rss = m.gauge("process_rss_bytes", { help: "Resident set of this process" });
  const heap = m.gauge("process_heap_used_bytes", { help: "V8 heap used by this process" });
  const procCpu = m.gauge("process_cpu_percent", {
    help: "CPU of this process, % of one core, over the last interval",
  });
  const lagP99 = m.gauge("nodejs_eventloop_lag_p99_ms", {
    help: "Event-loop delay, 99th percentile over the interval",
  });
  const lagMean = m.gauge("nodejs_eventloop_lag_mean_ms", {
    help: "Event-loop delay, mean over the interval",
  });
  const pbUp = m.gauge("pocketbase_up", { help: "1 when /api/health answered 200", labels: ["server"] });
  const pbMs = m.gauge("pocketbase_health_ms", { help: "Time of /api/health", labels: ["server"] });

  const loop = options.eventLoop === false ? undefined : monitorEventLoopDelay({ resolution: 20 });
  const cpuSamples: CpuSample[] = [];
  let lastProc: { at: number; cpu: number } | undefined;
  let cancel: Cancel | undefined;
  let running = false;

  const health = async (url: string) => {
    const started = performance.now();
    let up = 0;
    try {
      const r = await fetchFn(`${url.replace(/\/$/, "")}/api/health`, {
        signal: AbortSignal.timeout(healthTimeoutMs),
      });
      up = r.ok ? 1 : 0;
      await r.body?.cancel();
    } catch {
      up = 0;
    }
    pbUp.set({ server: url }, up);
    if (up === 1) pbMs.set({ server: url }, performance.now() - started);
  };

  const collect = async (): Promise<NodeFigures> => {
    const now = scheduler.now();
    const cg = readCgroup((p) => sys.readText(p));
    // CPU: cgroup time against its quota, or host busy time against all cores.
    let cpuBasis: "cgroup" | "host" = "host";
    let sample: CpuSample | undefined;
    if (cg?.cpuLimitCores !== undefined && cg.cpuUsageSeconds !== undefined) {
      cpuBasis = "cgroup";
      sample = { at: now, used: cg.cpuUsageSeconds, capacity: (now / 1000) * cg.cpuLimitCores };
    } else {
      const h = parseProcStat(sys.readText("/proc/stat"));
      if (h !== undefined) sample = { at: now, used: h.busySeconds, capacity: h.totalSeconds };
    }
    let cpuPercent: number | undefined;
    if (sample !== undefined) {
      cpuSamples.push(sample);
      while (cpuSamples.length > 2 && (cpuSamples[1] as CpuSample).at <= now - cpuWindowMs)
        cpuSamples.shift();
      const first = cpuSamples[0] as CpuSample;
      const dCap = sample.capacity - first.capacity;
      if (cpuSamples.length > 1 && dCap > 0) {
        cpuPercent = Math.min(100, Math.max(0, ((sample.used - first.used) / dCap) * 100));
        cpuPct.set({ basis: cpuBasis }, cpuPercent);
      }
    }
    // Memory: cgroup against its limit when there is one, else the host.
    let memoryBasis: "cgroup" | "host" = "host";
    let memoryPercent: number | undefined;
    if (cg?.memoryLimitBytes !== undefined && cg.memoryBytes !== undefined) {
      memoryBasis = "cgroup";
      memoryPercent = (cg.memoryBytes / cg.memoryLimitBytes) * 100;
      memBytes.set({ basis: "cgroup" }, cg.memoryBytes);
      memLimit.set({ basis: "cgroup" }, cg.memoryLimitBytes);
    } else {
      const mi = parseMeminfo(sys.readText("/proc/meminfo"));
      if (mi !== undefined) {
        memoryPercent = (mi.usedBytes / mi.totalBytes) * 100;
        memBytes.set({ basis: "host" }, mi.usedBytes);
        memLimit.set({ basis: "host" }, mi.totalBytes);
      }
    }
    if (memoryPercent !== undefined) memPct.set({ basis: memoryBasis }, memoryPercent);
    const d = sys.disk(diskPath);
    let diskPercent: number | undefined;
    if (d !== undefined && d.totalBytes > 0) {
      diskPercent = ((d.totalBytes - d.freeBytes) / d.totalBytes) * 100;
      diskPct.set(diskPercent);
      diskUsed.set(d.totalBytes - d.freeBytes);
    }
    const over: ("cpu" | "memory" | "disk")[] = [];
    for (const [res, v] of [
      ["cpu", cpuPercent],
      ["memory", memoryPercent],
      ["disk", diskPercent],
    ] as const) {
      if (v === undefined) continue;
      overCap.set({ resource: res }, v > cap ? 1 : 0);
      if (v > cap) over.push(res);
    }
    const p = sys.process();
    rss.set(p.rssBytes);
    heap.set(p.heapUsedBytes);
    if (lastProc !== undefined && now > lastProc.at) {
      procCpu.set(((p.cpuSeconds - lastProc.cpu) / ((now - lastProc.at) / 1000)) * 100);
    }
    lastProc = { at: now, cpu: p.cpuSeconds };
    if (loop !== undefined && loop.count > 0) {
      lagP99.set(loop.percentile(99) / 1e6);
      lagMean.set(loop.mean / 1e6);
      loop.reset();
    }
    const work: Promise<void>[] = (options.healthUrls ?? []).map(health);
    for (const probe of options.probes ?? []) {
      work.push(
        (async () => {
          try {
            await probe(m, now);
          } catch (e) {
            options.onError?.(e);
          }
        })(),
      );
    }
    await Promise.all(work);
    return {
      cpuPercent,
      memoryPercent,
      diskPercent,
      cpuBasis,
      memoryBasis,
      overCap: over,
      rssBytes: p.rssBytes,
    };
  };

  const arm = () => {
    cancel = scheduler.schedule(intervalMs, () => {
      if (!running) return;
      collect().catch((e: unknown) => options.onError?.(isNxsError(e) ? e : e));
      arm();
    });
  };

  return {
    start() {
      if (running) return;
      running = true;
      loop?.enable();
      collect().catch((e: unknown) => options.onError?.(e));
      arm();
    },
    collect,
    stop() {
      running = false;
      cancel?.();
      loop?.disable();
    },
  };
}
