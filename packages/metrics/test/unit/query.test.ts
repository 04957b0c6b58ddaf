import {
  aggregatePoints,
  createMemoryMetricsClient,
  DEFAULT_TIERS,
  makePoint,
  pickTier,
  reduceValue,
  runQuery,
} from "@nxs-sync/metrics";
import { describe, expect, it } from "vitest";

const HOUR = 3_600_000;
const tiers = [{ name: "raw", spanMs: 10_000, retentionMs: 2 * HOUR }, ...DEFAULT_TIERS];

describe("query", () => {
  it("picks the coarsest tier that fits the step and still covers the range", () => {
    const now = 1_000 * HOUR;
    expect(pickTier(tiers, now - HOUR, 12_000, now).name).toBe("raw");
    expect(pickTier(tiers, now - HOUR, 60_000, now).name).toBe("1m");
    expect(pickTier(tiers, now - 24 * HOUR, 5 * 60_000, now).name).toBe("1m");
    expect(pickTier(tiers, now - 3 * 24 * HOUR, 20 * 60_000, now).name).toBe("10m"); // 1m is gone past a day
    expect(pickTier(tiers, now - 90 * 24 * HOUR, HOUR, now).name).toBe("1d"); // only 1d still covers it
  });

  it("merges per node or across the fleet, filters by labels, reduces by aggregation", async () => {
    const client = createMemoryMetricsClient();
    const at = (node: string, start: number, s: Record<string, never>) =>
      client.write(
        makePoint({ node, tier: "1m", start, span: 60_000, n: 6, data: { v: 1, b: { lat: [10, 100] }, s } }),
      );
    await at("n1", 0, {
      'req_total{code="200"}': ["c", 60, 60],
      'req_total{code="500"}': ["c", 6, 6],
      mem: ["g", 10, 30, 120, 6, 20],
      lat: ["h", 10, 300, 5, 4, 1],
    } as never);
    await at("n2", 0, {
      'req_total{code="200"}': ["c", 120, 120],
      mem: ["g", 50, 70, 360, 6, 60],
      lat: ["h", 10, 100, 10, 0, 0],
    } as never);
    await at("n1", 60_000, { 'req_total{code="200"}': ["c", 30, 90], mem: ["g", 5, 5, 30, 6, 5] } as never);
    const ctx = { tiers, now: 10 * HOUR };
    const per = await runQuery(
      client,
      { series: "req_total", labels: { code: "200" }, from: 0, to: 120_000, step: 60_000 },
      ctx,
    );
    expect(per.tier).toBe("1m");
    expect(per.agg).toBe("rate");
    expect(per.series.map((s) => [s.node, s.points.map((p) => p.v)])).toEqual([
      ["n1", [1, 0.5]],
      ["n2", [2]],
    ]);
    const fleet = await runQuery(
      client,
      {
        series: "req_total",
        labels: { code: "200" },
        from: 0,
        to: 120_000,
        step: 60_000,
        fleet: true,
        agg: "increase",
      },
      ctx,
    );
    expect(fleet.series).toEqual([
      {
        node: "*",
        key: 'req_total{code="200"}',
        labels: { code: "200" },
        points: [
          { t: 0, v: 180 },
          { t: 60_000, v: 30 },
        ],
      },
    ]);
    const mem = await runQuery(
      client,
      { series: "mem", from: 0, to: 120_000, step: 120_000, fleet: true, agg: "max" },
      ctx,
    );
    expect(mem.series[0]?.points).toEqual([{ t: 0, v: 70 }]);
    const memMean = await runQuery(
      client,
      { series: "mem", from: 0, to: 60_000, fleet: true, agg: "mean" },
      ctx,
    );
    expect(memMean.series[0]?.points[0]?.v).toBe(40);
    const p50 = await runQuery(
      client,
      { series: "lat", from: 0, to: 60_000, nodes: ["n1"], agg: "p50" },
      ctx,
    );
    expect(p50.series[0]?.points[0]?.v).toBe(10); // 5 of 10 observations at or below 10
    await expect(runQuery(client, { series: "mem", from: 5, to: 5 }, ctx)).rejects.toMatchObject({
      code: "metrics/invalid-query",
    });
    await expect(runQuery(client, { series: "mem", from: 0, to: 5, tier: "2m" }, ctx)).rejects.toMatchObject({
      code: "metrics/invalid-query",
    });
  });

  it("reduces each kind; an aggregation of the wrong kind is NaN", () => {
    expect(reduceValue(["g", 1, 3, 6, 3, 2], "mean", 1000)).toBe(2);
    expect(reduceValue(["c", 10, 100], "rate", 10_000)).toBe(1);
    expect(reduceValue(["c", 10, 100], "p99", 10_000)).toBeNaN();
    expect(reduceValue(["h", 4, 40, 0, 4, 0], "p90", 1000, [5, 15])).toBeCloseTo(14, 9);
    expect(aggregatePoints({ series: "x", from: 0, to: 1 }, 1, [])).toEqual([]);
  });
});
