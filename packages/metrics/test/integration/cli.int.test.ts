import { runCli } from "@nxs-sync/cli";
import { hardwareCapCheck } from "@nxs-sync/metrics";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { closeAll, metricsOf, pastStart, runFor, startMetricsServer } from "./servers.js";

/**
 * `nxs-sync metrics` (and `status`'s node health table) on a real server: every node's last figures, the last hour's sparklines and
 * the alerts firing, as a table and as JSON (the nodes on a manual clock an hour back, the CLI's
 * clock injected).
 */
const servers = usePocketBaseServers();
let a: ProcessPocketBase;
beforeAll(async () => {
  a = await startMetricsServer(servers, "metrics-cli");
});
afterAll(closeAll);

async function cli(
  args: readonly string[],
  now: number,
): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runCli(
    [...args, "--superuser-email", a.superuser.email, "--superuser-password", a.superuser.password],
    {
      env: {},
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: (t: string) => (err += t) },
      signal: AbortSignal.timeout(60_000),
      now: () => now,
    },
  );
  return { code, out, err };
}

it("shows each node's health, the last hour and the alerts firing; --json for scripts", async () => {
  const t0 = pastStart();
  const gw = metricsOf("gw-cli", [a.url], t0, {
    // Evaluated and maintained by hand below (one pass over the ten minutes).
    alerts: { checks: [hardwareCapCheck({ forMs: 60_000 })], intervalMs: 86_400_000 },
    maintain: { intervalMs: 86_400_000, lateWindows: 12 },
  });
  const cpu = gw.metrics.gauge("node_cpu_percent", { labels: ["basis"] });
  const mem = gw.metrics.gauge("node_memory_percent", { labels: ["basis"] });
  const over = gw.metrics.gauge("node_over_cap", { labels: ["resource"] });
  // 10 minutes: memory climbs from 50% to 95% (over the cap for the last minutes), CPU steady.
  await runFor(gw, 600_000, (s) => {
    cpu.set({ basis: "host" }, 20);
    const m = 50 + (45 * s) / 600;
    mem.set({ basis: "cgroup" }, m);
    over.set({ resource: "memory" }, m > 75 ? 1 : 0);
  });
  await gw.metrics.maintain({ force: true });
  await gw.metrics.alerts.evaluate({ force: true });
  const now = gw.scheduler.now();

  const json = await cli(["metrics", "--server", a.url, "--json"], now);
  expect(json.code).toBe(0);
  const report = JSON.parse(json.out);
  expect(report.server).toBe(a.url);
  expect(report.nodes.map((n: { node: string }) => n.node)).toContain("gw-cli");
  const node = report.nodes.find((n: { node: string }) => n.node === "gw-cli");
  expect(node.cpuPercent).toBe(20);
  expect(node.memoryPercent).toBeGreaterThan(94);
  expect(node.overCap).toEqual(["memory"]);
  expect(node.lastSeen).toBe(now);
  expect(node.memoryHour).toHaveLength(60);
  expect(node.memoryHour.filter((v: number | null) => v !== null).length).toBeGreaterThanOrEqual(7);
  expect(report.alerts.map((x: { check: string; node: string }) => [x.check, x.node])).toEqual([
    ["hardware-cap", "gw-cli"],
  ]);

  const table = await cli(["metrics", "--server", a.url, "--node", "gw-cli"], now);
  expect(table.code).toBe(0);
  expect(table.out).toContain("gw-cli");
  expect(table.out).toMatch(/[▁▂▃▄▅▆▇█]{5,}/);
  expect(table.out).toContain("hardware-cap");
  expect(table.out).toContain(`in a browser: ${a.url}/nxs/metrics/dashboard`);
  if (process.env.NXS_SHOW_CLI === "1") console.log(table.out);

  // `nxs-sync status` shows the same health in its node health table (and in --json).
  const status = await cli(["status", "--server", a.url, "--json", "--stale-after", "86400"], now);
  const health = JSON.parse(status.out).health;
  expect(health.nodes.find((n: { node: string }) => n.node === "gw-cli")).toMatchObject({
    cpuPercent: 20,
    overCap: ["memory"],
  });
  expect(health.alerts.map((x: { check: string }) => x.check)).toEqual(["hardware-cap"]);
  const statusTable = await cli(["status", "--server", a.url, "--stale-after", "86400"], now);
  expect(statusTable.out).toContain("node health");
  expect(statusTable.out).toMatch(/\| gw-cli +\|.*\| memory +\| 1 +\|/);

  // No server answers: exit 4 (unreachable).
  const down = await cli(["metrics", "--server", "http://127.0.0.1:9", "--timeout", "500"], now);
  expect(down.code).toBe(4);
});
