import { ErrorCode, isNxsError, NxsError } from "@nxs-sync/core";
import type { CommandEnv } from "../context.js";
import { type CredentialOptions, resolveSuperuser } from "../credentials.js";
import { CliExitCode, exitCodeOf } from "../exit-codes.js";
import { type MetricsReport, readNodeHealth } from "../node-health.js";
import { renderJson, renderTable } from "../output.js";
import { createSessions } from "../status.js";

export type { MetricsReport, NodeHealth } from "../node-health.js";

/** Options of `nxs-sync metrics`. */
export interface MetricsCommandOptions extends CredentialOptions {
  /** Servers, tried in order: the first that answers is read (each holds every node's metrics). */
  readonly server: readonly string[];
  /** Only these nodes (repeat). */
  readonly node?: readonly string[];
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
 * last hour's sparklines), the alerts firing, and where the server's dashboard is.
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
  out.push(`in a browser: ${r.server.replace(/\/+$/, "")}/nxs/metrics/dashboard (a superuser's login)`);
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
      const report: MetricsReport = {
        server: url,
        ...(await readNodeHealth(pb, lib, pbLib, now, options.node)),
      };
      env.stdout.write(env.json ? renderJson(report) : renderMetrics(report, now));
      return CliExitCode.Ok;
    }
  } finally {
    sessions.close();
  }
  return exitCodeOf(lastError);
}
