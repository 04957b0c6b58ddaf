import { ErrorCode, isNxsError, NxsError } from "@nxs-sync/core";
import type { CommandEnv } from "../context.js";
import { type CredentialOptions, resolveSuperuser } from "../credentials.js";
import { CliExitCode, exitCodeOf } from "../exit-codes.js";
import { renderJson, renderTable } from "../output.js";
import { createSessions } from "../status.js";

/** Options of `nxs-sync metrics`. */
export interface MetricsCommandOptions extends CredentialOptions {
  /** Servers, tried in order: the first that answers is read (each holds every node's metrics). */
  readonly server: readonly string[];
  /** Only these nodes (repeat). */
  readonly node?: readonly string[];
}

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
export interface MetricsReport {
  readonly at: string;
  readonly server: string;
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

const BARS = "▁▂▃▄▅▆▇█";

/**
 * A sparkline of percentages (0 to 100), a space where a value is missing.
 * @param values - The values.
 * @returns One character a value.
 */
export function sparkline(values: readonly (number | null)[]): string {
  return values
    .map((v) => (v === null ? " " : (BARS[Math.min(7, Math.max(0, Math.floor((v / 100) * 8)))] ?? "?")))
    .join("");
}

const pct = (v: number | undefined) => (v === undefined ? "-" : `${v.toFixed(1)}%`);
const mib = (v: number | undefined) => (v === undefined ? "-" : `${(v / 2 ** 20).toFixed(0)} MiB`);

/**
 * Renders the report as a table (per node: last seen, CPU, memory, disk, over the cap, RSS, the
 * last hour's sparklines) and the alerts firing.
 * @param r - The report.
 * @param now - The time (ms).
 * @returns The text.
 */
export function renderMetrics(r: MetricsReport, now: number): string {
  const out = [
    renderTable(
      ["node", "seen", "cpu", "memory", "disk", "over 75%", "rss", "cpu, last hour", "memory, last hour"],
      r.nodes.map((n) => [
        n.node,
        `${Math.max(0, Math.round((now - n.lastSeen) / 1000))}s ago`,
        pct(n.cpuPercent),
        pct(n.memoryPercent),
        pct(n.diskPercent),
        n.overCap.length === 0 ? "-" : n.overCap.join(","),
        mib(n.rssBytes),
        sparkline(n.cpuHour),
        sparkline(n.memoryHour),
      ]),
    ),
  ];
  out.push(
    r.alerts.length === 0
      ? "no alert firing"
      : renderTable(
          ["alert", "node", "series", "severity", "since", "message"],
          r.alerts.map((a) => [a.check, a.node, a.series || "-", a.severity, a.since, a.message]),
        ),
  );
  return `${out.join("\n\n")}\n`;
}

/**
 * `nxs-sync metrics`: every node's health from the first server that answers (each server holds
 * every node's metrics): its last flush's figures, the last hour as sparklines, the alerts firing.
 * Needs `@nxs-sync/metrics` installed beside the CLI.
 * @param env - The command's environment.
 * @param options - Servers, nodes, credentials.
 * @returns The exit code.
 * @throws NxsError `config/invalid` without a server, or when `@nxs-sync/metrics` is not installed.
 */
export async function runMetrics(env: CommandEnv, options: MetricsCommandOptions): Promise<CliExitCode> {
  if (options.server.length === 0)
    throw new NxsError(ErrorCode.ConfigInvalid, "metrics: give every --server URL");
  let lib: typeof import("@nxs-sync/metrics");
  let pbLib: typeof import("@nxs-sync/metrics/pocketbase");
  try {
    [lib, pbLib] = await Promise.all([import("@nxs-sync/metrics"), import("@nxs-sync/metrics/pocketbase")]);
  } catch (e) {
    throw new NxsError(ErrorCode.ConfigInvalid, "metrics: install @nxs-sync/metrics beside @nxs-sync/cli", {
      cause: e,
    });
  }
  const superuser = await resolveSuperuser(options, env.env);
  for (const url of options.server) superuser(url);
  const sessions = createSessions();
  let lastError: unknown;
  try {
    for (const url of options.server) {
      let pb: Awaited<ReturnType<typeof sessions.get>>;
      try {
        pb = await sessions.get(url, superuser(url), env.timeoutMs);
      } catch (e) {
        lastError = e;
        env.note(`${url}: ${isNxsError(e) ? e.message : String(e)}`);
        continue;
      }
      const now = env.now?.() ?? Date.now();
      const nodes = options.node;
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
      const report: MetricsReport = {
        at: new Date(now).toISOString(),
        server: url,
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
      env.stdout.write(env.json ? renderJson(report) : renderMetrics(report, now));
      return CliExitCode.Ok;
    }
  } finally {
    sessions.close();
  }
  return exitCodeOf(lastError);
}
