import { isNxsError } from "@nxs-sync/core";
import { createRecorder, decodeSeriesKey, encodeSeriesKey, type MetricsError } from "@nxs-sync/metrics";
import { describe, expect, it } from "vitest";

describe("recorder", () => {
  it("counts, sets and observes per label set, and hands each window over once", () => {
    const r = createRecorder();
    const req = r.counter("http_requests_total", { labels: ["provider", "status"] });
    req.inc({ provider: "a", status: "200" });
    req.inc({ provider: "a", status: "200" }, 2);
    req.labels({ provider: "b", status: "500" }).inc();
    const mem = r.gauge("memory_bytes");
    mem.set(10);
    mem.set(30);
    mem.set(20);
    const lat = r.histogram("latency_ms", { buckets: [10, 100] });
    for (const v of [5, 10, 50, 500]) lat.observe(v);

    const w = r.takeWindow();
    expect(w.s['http_requests_total{provider="a",status="200"}']).toEqual(["c", 3, 3]);
    expect(w.s['http_requests_total{provider="b",status="500"}']).toEqual(["c", 1, 1]);
    expect(w.s.memory_bytes).toEqual(["g", 10, 30, 60, 3, 20]);
    expect(w.s.latency_ms).toEqual(["h", 4, 565, 2, 1, 1]);
    expect(w.b).toEqual({ latency_ms: [10, 100] });

    // Next window: counters keep their totals, gauges their value, histograms start at zero.
    req.inc({ provider: "a", status: "200" });
    const w2 = r.takeWindow();
    expect(w2.s['http_requests_total{provider="a",status="200"}']).toEqual(["c", 1, 4]);
    expect(w2.s.memory_bytes).toEqual(["g", 20, 20, 20, 1, 20]);
    expect(w2.s.latency_ms).toEqual(["h", 0, 0, 0, 0, 0]);

    const snap = r.snapshot();
    const h = snap.find((m) => m.name === "latency_ms")?.series[0];
    expect(h?.buckets).toEqual([2, 3, 4]);
    expect(h?.sum).toBe(565);
  });

  it("ignores negative and non-finite amounts", () => {
    const r = createRecorder();
    const c = r.counter("c_total");
    c.inc(-1);
    c.inc(Number.NaN);
    c.inc(Number.POSITIVE_INFINITY);
    r.gauge("g").set(Number.NaN);
    expect(r.takeWindow().s).toEqual({ c_total: ["c", 0, 0] });
  });

  it("refuses bad names and a second declaration of another shape, returns the same metric otherwise", () => {
    const r = createRecorder();
    expect(() => r.counter("Bad-Name")).toThrow(expect.objectContaining({ code: "metrics/invalid-name" }));
    expect(() => r.counter("ok", { labels: ["Bad"] as never })).toThrow(
      expect.objectContaining({ code: "metrics/invalid-name" }),
    );
    const a = r.counter("x_total", { labels: ["a"] });
    expect(r.counter("x_total", { labels: ["a"] })).toBe(a);
    expect(() => r.gauge("x_total")).toThrow(expect.objectContaining({ code: "metrics/invalid-name" }));
    expect(() => r.histogram("h", { buckets: [3, 2] })).toThrow(
      expect.objectContaining({ code: "metrics/invalid-name" }),
    );
  });

  it("caps series and label values: new series are dropped, counted and reported once", () => {
    const errors: MetricsError[] = [];
    const r = createRecorder({ maxSeries: 50, maxLabelValues: 10, onError: (e) => errors.push(e) });
    const c = r.counter("by_user_total", { labels: ["user"] });
    for (let i = 0; i < 1000; i++) c.inc({ user: `u${i}` });
    expect(r.stats()).toEqual({ series: 10, dropped: 990 });
    c.inc({ user: "u3" }); // an existing series still counts
    expect(r.takeWindow().s['by_user_total{user="u3"}']).toEqual(["c", 2, 2]);
    expect(errors).toHaveLength(1);
    expect(isNxsError(errors[0]) && errors[0].code).toBe("metrics/cap-reached");
    const g = r.gauge("g", { labels: ["k"] });
    for (let i = 0; i < 100; i++) g.set({ k: `${i % 10}` }, i);
    for (let i = 0; i < 100; i++) r.gauge(`g${i}`).set(i);
    expect(r.stats().series).toBe(50);
  });

  it("keeps label sets apart whatever their values hold", () => {
    const r = createRecorder();
    const c = r.counter("x_total", { labels: ["a", "b"] });
    c.inc({ a: "p\u0001", b: "q" });
    c.inc({ a: "p", b: "\u0001q" });
    c.inc({ a: "p", b: "q" });
    expect(Object.values(r.takeWindow().s)).toEqual([
      ["c", 1, 1],
      ["c", 1, 1],
      ["c", 1, 1],
    ]);
    expect(r.stats().series).toBe(3);
  });

  it("series keys round-trip, escapes included", () => {
    const key = encodeSeriesKey("m", ["a", "b"], { a: 'x"y\\z', b: "line\nbreak" });
    expect(decodeSeriesKey(key)).toEqual({ name: "m", labels: { a: 'x"y\\z', b: "line\nbreak" } });
    expect(decodeSeriesKey("m")).toEqual({ name: "m", labels: {} });
    expect(decodeSeriesKey("M{")).toBeUndefined();
  });
});
