import type PocketBase from "pocketbase";

/** One node's health as `nxs-sync metrics` shows it. */
export interface NodeHealth {
  readonly node: string;
  /** End of its last flush (ms). */
  readonly lastSeen: number;
  readonly cpuPercent: number | undefined;
  readonly memoryPercent: number | undefined;
  readonly diskPercent: number | undefined;
  /** Resources above the 75% cap in its last flush. */
  readonly overCap: readonly string[];
  readonly rssBytes: number | undefined;
  /** The last hour, one value a minute (1 m rollups): CPU and memory %, null where none. */
  readonly cpuHour: readonly (number | null)[];
  readonly memoryHour: readonly (number | null)[];
}

/** What `nxs-sync metrics --json` prints. */
export interface MetricsReport extends FleetHealth {
  readonly server: string;
}

/** Every node's health and the alerts firing, as the metrics collections of one server hold them. */
export interface FleetHealth {
  readonly at: string;
  readonly nodes: readonly NodeHealth[];
  readonly alerts: readonly {
    readonly check: string;
    readonly node: string;
    readonly series: string;
    readonly severity: string;
    readonly since: string;
    readonly message: string;
  }[];
}

type MetricsLib = typeof import("@nxs-sync/metrics");
type MetricsPocketBase = typeof import("@nxs-sync/metrics/pocketbase");

/**
 * Reads every node's health from one server's metrics collections (each server holds every
 * node's): its last flush's CPU, memory and disk, what is over the 75% cap, its RSS, the last hour
 * of CPU and memory from the 1 m rollups, and the alerts firing.
 * @param pb - A superuser's client of the server.
 * @param lib - `@nxs-sync/metrics`.
 * @param pbLib - `@nxs-sync/metrics/pocketbase`.
 * @param now - The time (ms).
 * @param nodes - Only these nodes (default all).
 * @returns The health.
 */
export async function readNodeHealth(
  pb: PocketBase,
  lib: MetricsLib,
  pbLib: MetricsPocketBase,
  now: number,
  nodes?: readonly string[],
): Promise<FleetHealth> {
  const range = (tier: string, from: number) => ({
    tier,
    from,
    to: now + 1,
    ...(nodes === undefined ? {} : { nodes }),
  });
  const [recent, hour, alerts] = await Promise.all([
    pbLib.readPoints(pb, range("raw", now - 10 * 60_000)),
    pbLib.readPoints(pb, range("1m", now - 3_600_000)),
    pbLib.readAlerts(pb, now - 86_400_000),
  ]);
  const last = new Map<string, (typeof recent.points)[number]>();
  for (const p of recent.points) last.set(p.node, p);
  const hourFrom = Math.floor((now - 3_600_000) / 60_000) * 60_000;
  const line = (series: string, node: string) => {
    const s = lib.aggregatePoints(
      { series, nodes: [node], from: hourFrom, to: now, agg: "mean", fleet: true },
      60_000,
      hour.points.filter((p) => p.node === node),
    );
    const byT = new Map((s[0]?.points ?? []).map((p) => [p.t, p.v]));
    return Array.from({ length: 60 }, (_, i) => byT.get(hourFrom + i * 60_000) ?? null);
  };
  const gauge = (p: (typeof recent.points)[number], name: string): number | undefined => {
    const e = Object.entries(p.data.s).find(([k]) => k === name || k.startsWith(`${name}{`));
    return e !== undefined && e[1][0] === "g" ? e[1][5] : undefined;
  };
  return {
    at: new Date(now).toISOString(),
    nodes: [...new Set([...last.keys(), ...hour.points.map((p) => p.node)])].sort().map((node) => {
      const p = last.get(node);
      return {
        node,
        lastSeen: p === undefined ? 0 : p.start + p.span,
        cpuPercent: p === undefined ? undefined : gauge(p, "node_cpu_percent"),
        memoryPercent: p === undefined ? undefined : gauge(p, "node_memory_percent"),
        diskPercent: p === undefined ? undefined : gauge(p, "node_disk_percent"),
        overCap:
          p === undefined
            ? []
            : Object.entries(p.data.s)
                .filter(([k, v]) => k.startsWith("node_over_cap{") && v[0] === "g" && v[5] >= 1)
                .map(([k]) => lib.decodeSeriesKey(k)?.labels.resource ?? k),
        rssBytes: p === undefined ? undefined : gauge(p, "process_rss_bytes"),
        cpuHour: line("node_cpu_percent", node),
        memoryHour: line("node_memory_percent", node),
      };
    }),
    alerts: alerts
      .filter((a) => a.state === "firing" && (nodes === undefined || nodes.includes(a.node)))
      .map((a) => ({
        check: a.check,
        node: a.node,
        series: a.series,
        severity: a.severity,
        since: new Date(a.startedAt).toISOString(),
        message: a.message,
      })),
  };
}

/**
 * `@nxs-sync/metrics` and its PocketBase entry, when installed beside the CLI.
 * @returns Both, or undefined when the package is not installed.
 */
export async function loadMetricsLib(): Promise<[MetricsLib, MetricsPocketBase] | undefined> {
  try {
    return await Promise.all([import("@nxs-sync/metrics"), import("@nxs-sync/metrics/pocketbase")]);
  } catch {
    return undefined;
  }
}
