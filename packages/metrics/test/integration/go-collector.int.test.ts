import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { decodePoint, type MetricsPoint, makePoint } from "@nxs-sync/metrics";
import { readPoints } from "@nxs-sync/metrics/pocketbase";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gateway, newId, startMetricsServer } from "./servers.js";

/**
 * The Go standalone collector (packages/metrics/collector-go) against two real servers: its
 * windows are read by this package as its own (ids and revisions recomputed in TypeScript), it
 * fails over when its home server stops, keeps the windows no server took and writes them once one
 * is back (no window missing), writes the window under way on SIGTERM, and stops at once on a
 * refused account. The binary is built once per source version (scripts/go-collector.sh).
 */
const servers = usePocketBaseServers();
const script = fileURLToPath(new URL("../../../../scripts/go-collector.sh", import.meta.url));
const INTERVAL = 500;
let bin: string;
let a: ProcessPocketBase;
let b: ProcessPocketBase;
let diskDir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  bin = execFileSync("bash", [script, "build"], { encoding: "utf8" }).trim();
  diskDir = mkdtempSync(join(tmpdir(), "nxs-collector-"));
  [a, b] = await Promise.all([
    startMetricsServer(servers, "collector-a"),
    startMetricsServer(servers, "collector-b"),
  ]);
}, 300_000);
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(diskDir, { recursive: true, force: true });
});

/** Starts the collector of `node`; its stderr is collected. */
function startCollector(node: string, password = gateway.password) {
  const child = spawn(
    bin,
    [
      "--node",
      node,
      "--servers",
      `${a.url},${b.url}`,
      "--interval-ms",
      String(INTERVAL),
      "--disk-path",
      diskDir,
    ],
    { env: { PATH: process.env.PATH, NXS_COLLECTOR_EMAIL: gateway.email, NXS_COLLECTOR_PASSWORD: password } },
  );
  children.push(child);
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, stderr: () => stderr, exited };
}

/** The node's raw windows on one server (none while it is down). */
async function windowsOn(server: ProcessPocketBase, node: string): Promise<MetricsPoint[]> {
  const list = await readPoints(server.client(), {
    tier: "raw",
    from: 0,
    to: Date.now() + 60_000,
    nodes: [node],
  });
  expect(list.refused).toEqual([]);
  return [...list.points];
}

describe("the Go standalone collector", () => {
  it("writes windows that @nxs-sync/metrics reads as its own, with the collector's series", async () => {
    const node = `go-${newId().slice(0, 6)}`;
    const c = startCollector(node);
    const points = await waitFor(
      async () => {
        const p = await windowsOn(a, node);
        return p.length >= 3 ? p : undefined;
      },
      { timeoutMs: 20_000 },
    );
    for (const p of points) {
      expect(decodePoint(p).ok).toBe(true);
      // The id and revision the TypeScript code gives the same window and data.
      const again = makePoint({ node, tier: "raw", start: p.start, span: p.span, n: p.n, data: p.data });
      expect({ id: p.id, rev: p.rev }).toEqual({ id: again.id, rev: again.rev });
      expect(p.span).toBe(INTERVAL);
      expect(p.start % INTERVAL).toBe(0);
    }
    const last = points[points.length - 1] as MetricsPoint;
    const s = last.data.s;
    expect(s[`pocketbase_up{server="${a.url}"}`]?.[5]).toBe(1);
    expect(s[`pocketbase_up{server="${b.url}"}`]?.[5]).toBe(1);
    expect(Object.keys(s)).toEqual(
      expect.arrayContaining([
        "node_disk_percent",
        "process_rss_bytes",
        "process_cpu_percent",
        'node_over_cap{resource="memory"}',
        'node_over_cap{resource="disk"}',
      ]),
    );
    expect(Object.keys(s).some((k) => k.startsWith("node_memory_percent{basis="))).toBe(true);
    expect(Object.keys(s).some((k) => k.startsWith("node_cpu_percent{basis="))).toBe(true);
    // The bound for a standalone collector: 45 MB of resident memory.
    const rss = s.process_rss_bytes?.[5] as number;
    expect(rss).toBeGreaterThan(0);
    expect(rss).toBeLessThan(45e6);
    const status = readFileSync(`/proc/${c.child.pid}/status`, "utf8");
    expect(Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024).toBeLessThan(45e6);
    c.child.kill("SIGTERM");
    expect(await c.exited).toBe(0);
  });

  it("fails over when its home server stops, keeps what no server took, and leaves no window out", async () => {
    const node = `go-${newId().slice(0, 6)}`;
    const c = startCollector(node);
    await waitFor(async () => ((await windowsOn(a, node)).length >= 2 ? true : undefined), {
      timeoutMs: 20_000,
    });
    await a.stop();
    const stoppedAt = Date.now();
    // The next windows go to the other server.
    await waitFor(
      async () => ((await windowsOn(b, node)).some((p) => p.start >= stoppedAt) ? true : undefined),
      {
        timeoutMs: 20_000,
      },
    );
    // Neither server answers: the windows stay with the collector.
    await b.stop();
    await waitFor(() => (c.stderr().includes("no server took window") ? true : undefined), {
      timeoutMs: 20_000,
    });
    const cutAt = Date.now();
    await waitFor(() => (Date.now() > cutAt + 3 * INTERVAL ? true : undefined), { timeoutMs: 10_000 });
    await a.restart();
    await waitFor(() => (c.stderr().includes("writing again") ? true : undefined), { timeoutMs: 20_000 });
    const healedAt = Date.now();
    await waitFor(
      async () => ((await windowsOn(a, node)).some((p) => p.start >= healedAt) ? true : undefined),
      {
        timeoutMs: 20_000,
      },
    );
    await b.restart();
    c.child.kill("SIGTERM");
    expect(await c.exited).toBe(0);
    // Every window from the first to the last is on one server or the other.
    const starts = new Set(
      [...(await windowsOn(a, node)), ...(await windowsOn(b, node))].map((p) => p.start),
    );
    const sorted = [...starts].sort((x, y) => x - y);
    const first = sorted[0] as number;
    const last = sorted[sorted.length - 1] as number;
    const missing: number[] = [];
    for (let t = first; t <= last; t += INTERVAL) if (!starts.has(t)) missing.push(t);
    expect(missing).toEqual([]);
    expect(sorted.some((t) => t > cutAt && t < healedAt)).toBe(true); // windows of the cut were kept
  });

  it("writes the window under way on SIGTERM", async () => {
    const node = `go-${newId().slice(0, 6)}`;
    const c = startCollector(node);
    await waitFor(async () => ((await windowsOn(a, node)).length >= 1 ? true : undefined), {
      timeoutMs: 20_000,
    });
    const signalledAt = Date.now();
    c.child.kill("SIGTERM");
    expect(await c.exited).toBe(0);
    // The window the signal fell in (or a later one, when a boundary passed before it was handled)
    // was written before its end.
    const starts = (await windowsOn(a, node)).map((p) => p.start);
    expect(Math.max(...starts)).toBeGreaterThanOrEqual(Math.floor(signalledAt / INTERVAL) * INTERVAL);
  });

  it("stops at once with exit code 2 when the servers refuse its account, saying what to fix", async () => {
    const c = startCollector(`go-${newId().slice(0, 6)}`, "not-the-password");
    expect(await c.exited).toBe(2);
    expect(c.stderr()).toContain("NXS_COLLECTOR_PASSWORD");
    expect(c.stderr()).toContain(gateway.email);
  });
});
