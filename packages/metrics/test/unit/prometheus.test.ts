import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createPrometheusExposition, createRecorder } from "@nxs-sync/metrics";
import { describe, expect, it } from "vitest";

describe("prometheus exposition", () => {
  it("serves the current values in the text format through prom-client", async () => {
    const r = createRecorder();
    const req = r.counter("http_requests_total", { help: "Requests", labels: ["code"] });
    req.inc({ code: "200" }, 3);
    r.gauge("node_memory_percent", { labels: ["basis"] }).set({ basis: "cgroup" }, 42.5);
    const h = r.histogram("latency_ms", { buckets: [10, 100] });
    for (const v of [5, 50, 500]) h.observe(v);
    const prom = createPrometheusExposition(r, { labels: { node: "gw-1" } });
    const server = createServer(prom.handler);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
      const text = await res.text();
      expect(text).toContain("# HELP http_requests_total Requests");
      expect(text).toContain("# TYPE http_requests_total counter");
      expect(text).toContain('http_requests_total{code="200",node="gw-1"} 3');
      expect(text).toContain('node_memory_percent{basis="cgroup",node="gw-1"} 42.5');
      expect(text).toContain("# TYPE latency_ms histogram");
      expect(text).toContain('latency_ms_bucket{le="10",node="gw-1"} 1');
      expect(text).toContain('latency_ms_bucket{le="100",node="gw-1"} 2');
      expect(text).toContain('latency_ms_bucket{le="+Inf",node="gw-1"} 3');
      expect(text).toContain('latency_ms_sum{node="gw-1"} 555');
      expect(text).toContain('latency_ms_count{node="gw-1"} 3');
      // Current values: a later scrape sees later values and new metrics.
      req.inc({ code: "200" });
      r.gauge("late_gauge").set(1);
      const again = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(again).toContain('http_requests_total{code="200",node="gw-1"} 4');
      expect(again).toContain('late_gauge{node="gw-1"} 1');
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
