/**
 * The example: one gateway node's health metrics with `@nxs-sync/metrics`. The node records its
 * requests (a counter by provider and status, a latency histogram) and the collector's figures
 * (CPU, memory, disk, RSS, event-loop lag, each server's `/api/health`), flushes one record a
 * second to its home server and rolls the flushes up into 5-second windows. A second node reads the
 * history from the other server (the replicator copied it), and the first one serves it to
 * Prometheus. Intervals are short so that it runs in seconds; the defaults are 10 s flushes and
 * 1 m / 10 m / 1 h / 1 d tiers.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { silentLogger } from "@nxs-sync/core";
import { createCollector, createMetrics, createPrometheusExposition } from "@nxs-sync/metrics";
import { createPocketBaseMetricsClient } from "@nxs-sync/metrics/pocketbase";

/** What {@link runExample} needs: two servers with the metrics collections, replicated, and a gateway account. */
export interface ExampleOptions {
  readonly home: string;
  readonly other: string;
  readonly gateway: { readonly email: string; readonly password: string };
  readonly log: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TIERS = [{ name: "5s", spanMs: 5_000, retentionMs: 10 * 60_000 }];

/**
 * Runs the example.
 * @param o - Servers, account, log.
 * @returns A summary the test checks.
 */
export async function runExample(o: ExampleOptions) {
  // gw-1: its home server first, the other one to fail over to.
  const client = createPocketBaseMetricsClient({
    endpoints: [o.home, o.other],
    auth: o.gateway,
    logger: silentLogger,
  });
  const metrics = createMetrics({
    client,
    node: "gw-1",
    flushIntervalMs: 1_000,
    tiers: TIERS,
    maintain: { intervalMs: 5_000 },
    logger: silentLogger,
  });
  const collector = createCollector({ metrics, intervalMs: 1_000, healthUrls: [o.home, o.other] });
  const requests = metrics.counter("gateway_requests_total", {
    help: "Requests",
    labels: ["provider", "status"],
  });
  const latency = metrics.histogram("gateway_latency_ms", {
    help: "Latency",
    labels: ["provider"],
    buckets: [50, 200, 1000],
  });
  metrics.start();
  collector.start();

  // 5 s of traffic: 20 requests a second, a 429 now and then.
  const started = Date.now();
  for (let i = 0; Date.now() - started < 5_000; i++) {
    const provider = i % 3 === 0 ? "anthropic" : "openai";
    requests.inc({ provider, status: i % 10 === 9 ? "429" : "200" });
    latency.observe({ provider }, 40 + ((i * 37) % 400));
    await sleep(50);
  }
  const figures = await collector.collect();
  o.log(
    `collector: memory ${figures.memoryPercent?.toFixed(1)}% of the ${figures.memoryBasis}, cpu ${figures.cpuPercent?.toFixed(1)}% of the ${figures.cpuBasis}; over the 75% cap: [${figures.overCap.join(", ")}]`,
  );

  // Prometheus: the current values of gw-1.
  const prom = createPrometheusExposition(metrics, { labels: { node: "gw-1" } });
  const server = createServer(prom.handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const text = await (
    await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`)
  ).text();
  server.close();
  const promLines = text.split("\n").filter((l) => l.startsWith("gateway_requests_total{"));
  for (const l of promLines) o.log(`prometheus: ${l}`);

  // gw-2 reads gw-1's history from the other server once a rollup window is there.
  const reader = createPocketBaseMetricsClient({
    endpoints: [o.other],
    auth: o.gateway,
    logger: silentLogger,
  });
  const gw2 = createMetrics({
    client: reader,
    node: "gw-2",
    flushIntervalMs: 1_000,
    tiers: TIERS,
    maintain: false,
    logger: silentLogger,
  });
  const from = Math.floor(started / 1_000) * 1_000;
  let rollups = 0;
  for (let tries = 0; tries < 100 && rollups === 0; tries++) {
    await metrics.maintain({ force: true });
    const q = await gw2.query({
      series: "gateway_requests_total",
      nodes: ["gw-1"],
      from,
      to: Date.now(),
      tier: "5s",
      fleet: true,
      agg: "increase",
    });
    rollups = q.series.reduce((n, s) => n + s.points.length, 0);
    if (rollups === 0) await sleep(200);
  }
  const raw = await gw2.query({
    series: "gateway_requests_total",
    nodes: ["gw-1"],
    from,
    to: Date.now(),
    tier: "raw",
    fleet: true,
    agg: "increase",
  });
  const fromOther = raw.series.reduce((n, s) => n + s.points.reduce((x, p) => x + p.v, 0), 0);
  const mem = await gw2.query({
    series: "node_memory_percent",
    nodes: ["gw-1"],
    from,
    to: Date.now(),
    tier: "raw",
    agg: "max",
  });
  o.log(
    `from the other server: ${fromOther} requests of gw-1 in ${raw.series[0]?.points.length ?? 0} flushes, ${rollups} rollup windows, memory series ${mem.series.map((s) => s.key).join(", ")}`,
  );

  collector.stop();
  await metrics.close();
  await gw2.close();
  client.close();
  reader.close();
  return {
    recorded: Object.values(
      metrics.snapshot().find((m) => m.name === "gateway_requests_total")?.series ?? [],
    ).reduce((n, s) => n + s.value, 0),
    requestsOnOtherServer: fromOther,
    rollupWindowsOnOtherServer: rollups,
    promLines: promLines.length,
    memoryBasis: figures.memoryBasis,
    memorySeriesOnOtherServer: mem.series.length,
  };
}
