import { createManualScheduler, silentLogger } from "@nxs-sync/core";
import {
  createMemoryMetricsClient,
  createMetrics,
  type MetricsClient,
  type MetricsError,
  type RefusedPoint,
} from "@nxs-sync/metrics";
import { describe, expect, it } from "vitest";

const T0 = Date.UTC(2026, 0, 1); // a day boundary
const TIERS = [
  { name: "1m", spanMs: 60_000, retentionMs: 10 * 60_000 },
  { name: "10m", spanMs: 600_000, retentionMs: 3_600_000 },
];

/** Lets the promise chains a scheduler task started settle. */
const settle = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

function setup(client: MetricsClient = createMemoryMetricsClient()) {
  const scheduler = createManualScheduler({ now: T0 });
  const quarantined: RefusedPoint[] = [];
  const errors: MetricsError[] = [];
  const metrics = createMetrics({
    client,
    node: "gw-1",
    scheduler,
    tiers: TIERS,
    rawRetentionMs: 5 * 60_000,
    maintain: false,
    logger: silentLogger,
    onQuarantine: (r) => quarantined.push(r),
    onError: (e) => errors.push(e),
  });
  return { scheduler, metrics, quarantined, errors };
}

describe("createMetrics", () => {
  it("writes one record per interval holding every series, rolls up, expires and queries", async () => {
    const client = createMemoryMetricsClient();
    const { scheduler, metrics } = setup(client);
    const req = metrics.counter("requests_total", { labels: ["provider"] });
    const mem = metrics.gauge("memory_percent");
    metrics.start();
    for (let s = 0; s < 180; s++) {
      req.inc({ provider: "a" });
      if (s % 2 === 0) req.inc({ provider: "b" });
      mem.set(s % 60);
      scheduler.advance(1_000);
      await settle();
    }
    // 180 s: 18 flushes, one record each, every series in it.
    const raw = await client.list({ tier: "raw", from: 0, to: T0 + 10 * 3_600_000 });
    expect(raw.points).toHaveLength(18);
    expect(Object.keys(raw.points[0]!.data.s).sort()).toEqual([
      "memory_percent",
      'requests_total{provider="a"}',
      'requests_total{provider="b"}',
    ]);

    const report = await metrics.maintain({ force: true });
    // The minute [120 s, 180 s) is not closed yet (grace of two flushes): minutes 0 and 1.
    expect(report.written).toEqual({ "1m": 2, "10m": 0 });
    expect((await metrics.maintain({ force: true })).written).toEqual({ "1m": 0, "10m": 0 }); // idempotent

    const q = await metrics.query({ series: "requests_total", from: T0, to: T0 + 120_000, step: 60_000 });
    expect(q.tier).toBe("1m");
    expect(q.series.map((s) => [s.labels.provider, s.points.map((p) => p.v)])).toEqual([
      ["a", [1, 1]],
      ["b", [0.5, 0.5]],
    ]);
    const g = await metrics.query({
      series: "memory_percent",
      from: T0,
      to: T0 + 120_000,
      step: 60_000,
      agg: "max",
    });
    expect(g.series[0]?.points.map((p) => p.v)).toEqual([59, 59]);
    const fine = await metrics.query({
      series: "memory_percent",
      from: T0,
      to: T0 + 60_000,
      step: 10_000,
      agg: "mean",
    });
    expect(fine.tier).toBe("raw");
    expect(fine.series[0]?.points).toHaveLength(6);

    // Retention: raw kept 5 min, 1m kept 10 min.
    scheduler.advance(6 * 60_000);
    await settle();
    const later = await metrics.maintain({ force: true });
    expect(later.expired.raw).toBeGreaterThan(0);
    expect(later.expired["1m"]).toBe(0);
    const left = await client.list({ tier: "raw", from: 0, to: T0 + 10 * 3_600_000 });
    expect(left.points.every((p) => p.start + p.span > scheduler.now() - 5 * 60_000 - 10_000)).toBe(true);
    await metrics.close();
    await expect(metrics.query({ series: "x", from: 0, to: 1 })).rejects.toMatchObject({
      code: "metrics/closed",
    });
  });

  it("takes the maintenance lease once per slot", async () => {
    const client = createMemoryMetricsClient();
    const a = setup(client);
    const b = setup(client);
    const [ra, rb] = await Promise.all([a.metrics.maintain(), b.metrics.maintain()]);
    expect([ra.leased, rb.leased].sort()).toEqual([false, true]);
  });

  it("keeps windows while no server is reachable and writes them, in order, once one is", async () => {
    const inner = createMemoryMetricsClient();
    let down = true;
    const client: MetricsClient = {
      ...inner,
      write: (p) => (down ? Promise.reject(new Error("ECONNREFUSED")) : inner.write(p)),
    };
    const { scheduler, metrics, errors } = setup(client);
    metrics.gauge("g").set(1);
    metrics.start();
    for (let i = 0; i < 5; i++) {
      scheduler.advance(10_000);
      await settle();
    }
    expect(metrics.buffered()).toBe(5);
    expect(errors.map((e) => e.code)).toEqual(["metrics/flush-failed"]); // once per outage
    down = false;
    scheduler.advance(10_000);
    await settle();
    expect(metrics.buffered()).toBe(0);
    expect([...inner.records().values()].map((r) => r.start)).toEqual(
      [0, 1, 2, 3, 4, 5].map((i) => T0 + i * 10_000),
    );
    await metrics.close();
  });

  it("quarantines hostile records without stopping: reported once, skipped by rollups and queries", async () => {
    const client = createMemoryMetricsClient();
    const { scheduler, metrics, quarantined } = setup(client);
    metrics.gauge("g").set(5);
    metrics.start();
    for (let i = 0; i < 12; i++) {
      scheduler.advance(10_000);
      await settle();
    }
    client.insertRaw({
      id: "hostile00000001",
      node: "gw-1",
      tier: "raw",
      start: T0 + 10_000,
      span: 10_000,
      n: 1,
      rev: 1,
      data: { v: 1, b: {}, s: { g: ["g", "x"] } },
    });
    client.insertRaw({
      id: "hostile00000002",
      node: "evil",
      tier: "raw",
      start: T0 + 20_000,
      span: 10_000,
      n: 1,
      rev: 1,
      data: "<script>",
    });
    const r1 = await metrics.maintain({ force: true });
    const r2 = await metrics.maintain({ force: true });
    expect(r1.written["1m"]).toBe(1);
    expect(r2.refused).toBe(2);
    expect(quarantined.map((q) => q.id).sort()).toEqual(["hostile00000001", "hostile00000002"]);
    const q = await metrics.query({ series: "g", from: T0, to: T0 + 60_000, step: 60_000, tier: "1m" });
    expect(q.series[0]?.points).toEqual([{ t: T0, v: 5 }]);
    expect((await metrics.query({ series: "g", from: T0, to: T0 + 60_000, tier: "raw" })).refused).toBe(2);
    await metrics.close();
  });
});
