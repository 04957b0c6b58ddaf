import { createManualScheduler, silentLogger } from "@nxs-sync/core";
import {
  type AlertEvent,
  absenceCheck,
  alertRev,
  createMemoryMetricsClient,
  createMetrics,
  decodeAlert,
  evaluateChecks,
  hardwareCapCheck,
  type MetricsPoint,
  makePoint,
  type ThresholdCheck,
} from "@nxs-sync/metrics";
import { describe, expect, it } from "vitest";

const I = 10_000;
/** Raw windows of one node with a gauge `mem` taking `values` one window each, from 0. */
const windows = (node: string, values: readonly number[], from = 0): MetricsPoint[] =>
  values.map((v, i) =>
    makePoint({
      node,
      tier: "raw",
      start: from + i * I,
      span: I,
      n: 1,
      data: { v: 1, b: {}, s: { mem: ["g", v, v, v, 1, v] } },
    }),
  );
const memHigh: ThresholdCheck = {
  kind: "threshold",
  name: "mem-high",
  series: "mem",
  when: "above",
  threshold: 75,
  clearThreshold: 70,
  forMs: 30_000,
  clearForMs: 20_000,
};

describe("evaluateChecks", () => {
  it("fires once the breach lasted forMs, with a start every evaluator agrees on", () => {
    const two = windows("n1", [50, 80, 80]);
    expect(evaluateChecks([memHigh], two, [], 30_000).fire).toEqual([]); // 20 s of breach
    const three = windows("n1", [50, 80, 80, 90]);
    const e = evaluateChecks([memHigh], three, [], 40_000);
    expect(e.fire).toHaveLength(1);
    expect(e.fire[0]).toMatchObject({
      check: "mem-high",
      node: "n1",
      series: "mem",
      state: "firing",
      startedAt: I,
      value: 90,
    });
    // Another evaluator (another order of the same windows): the same alert.
    expect(evaluateChecks([memHigh], [...three].reverse(), [], 41_000).fire).toEqual(e.fire);
  });

  it("resolves only after clearForMs on the safe side of the clear threshold (hysteresis)", () => {
    const fired = evaluateChecks([memHigh], windows("n1", [80, 80, 80]), [], 30_000).fire;
    // Flapping around 75 (under 75 but above 70): neither resolves nor fires again.
    const flap = windows("n1", [80, 80, 80, 74, 76, 74, 76, 72]);
    const e1 = evaluateChecks([memHigh], flap, fired, 80_000);
    expect(e1).toEqual({ fire: [], resolve: [] });
    // 20 s at or under 70: resolved, ended at the first safe window.
    const calm = windows("n1", [80, 80, 80, 74, 76, 60, 65]);
    const e2 = evaluateChecks([memHigh], calm, fired, 70_000);
    expect(e2.resolve).toEqual([{ ...fired[0], state: "resolved", endedAt: 5 * I }]);
  });

  it("a gap breaks a breach run", () => {
    const pts = [...windows("n1", [80, 80]), ...windows("n1", [80, 80], 60_000)];
    expect(evaluateChecks([memHigh], pts, [], 80_000).fire).toEqual([]);
  });

  it("absence: fires for a node silent for two intervals, resolves when it reports again", () => {
    const check = absenceCheck(I);
    const pts = [...windows("n1", [1, 1, 1, 1, 1, 1]), ...windows("n2", [1, 1])];
    const e = evaluateChecks([check], pts, [], 60_000);
    expect(e.fire.map((a) => [a.node, a.startedAt])).toEqual([["n2", 20_000]]);
    const back = [...pts, ...windows("n2", [1], 70_000)];
    expect(evaluateChecks([check], back, e.fire, 80_000).resolve).toEqual([
      { ...e.fire[0], state: "resolved", endedAt: 70_000 },
    ]);
  });

  it("the hardware cap check reads node_over_cap per resource", () => {
    const pts = [0, 1, 2, 3, 4, 5, 6].map((i) =>
      makePoint({
        node: "n1",
        tier: "raw",
        start: i * 60_000,
        span: 60_000,
        n: 1,
        data: {
          v: 1,
          b: {},
          s: {
            'node_over_cap{resource="memory"}': ["g", 1, 1, 1, 1, 1],
            'node_over_cap{resource="cpu"}': ["g", 0, 1, 1, 2, 0],
          },
        },
      }),
    );
    const e = evaluateChecks([hardwareCapCheck()], pts, [], 7 * 60_000);
    expect(e.fire.map((a) => a.series)).toEqual(['node_over_cap{resource="memory"}']); // cpu dipped under within each minute
  });
});

describe("alert records", () => {
  it("decode only with their own id, a consistent end and the rev of their state", () => {
    const a = evaluateChecks([memHigh], windows("n1", [80, 80, 80]), [], 30_000).fire[0]!;
    const stored = { ...a, rev: alertRev(a) };
    expect(decodeAlert(stored)).toEqual(a);
    expect(decodeAlert({ ...stored, rev: 2 ** 51 })).toBeUndefined(); // a hostile rev to win every merge
    expect(decodeAlert({ ...stored, endedAt: 5 })).toBeUndefined();
    expect(decodeAlert({ ...stored, startedAt: a.startedAt + 1 })).toBeUndefined(); // not its id
    const r = { ...a, state: "resolved" as const, endedAt: 50_000 };
    expect(alertRev(r)).toBeGreaterThan(alertRev(a));
    expect(alertRev(r)).toBeGreaterThan(alertRev({ ...r, endedAt: 60_000 })); // the earlier end wins
  });
});

describe("checker", () => {
  it("one evaluator per slot writes; subscribers on every node hear; webhooks are told", async () => {
    const client = createMemoryMetricsClient();
    const posted: unknown[] = [];
    const fakeFetch = (async (_url: string, init?: RequestInit) => {
      posted.push(JSON.parse(String(init?.body)));
      return new Response(null, { status: 204 });
    }) as typeof fetch;
    const make = (node: string) => {
      const scheduler = createManualScheduler({ now: 0 });
      const metrics = createMetrics({
        client,
        node,
        scheduler,
        maintain: false,
        logger: silentLogger,
        alerts: { checks: [memHigh], webhooks: ["http://hooks.example/alerts"], fetch: fakeFetch },
      });
      return { scheduler, metrics };
    };
    const a = make("n1");
    const b = make("n2");
    const heard: AlertEvent[] = [];
    b.metrics.alerts.subscribe((e) => heard.push(e));
    await b.metrics.alerts.poll(); // primes
    for (const p of windows("n1", [80, 80, 80, 90])) await client.write(p);
    for (const m of [a, b]) m.scheduler.advance(40_000);
    const [ra, rb] = await Promise.all([a.metrics.alerts.evaluate(), b.metrics.alerts.evaluate()]);
    expect([ra.leased, rb.leased].sort()).toEqual([false, true]);
    expect([...ra.fired, ...rb.fired]).toHaveLength(1);
    await b.metrics.alerts.poll();
    expect(heard.map((e) => [e.change, e.alert.node])).toEqual([["fired", "n1"]]);
    expect(b.metrics.alerts.active()).toHaveLength(1);
    for (const p of windows("n1", [60, 60, 60], 40_000)) await client.write(p);
    for (const m of [a, b]) m.scheduler.advance(30_000);
    const r2 = await a.metrics.alerts.evaluate({ force: true });
    expect(r2.resolved).toHaveLength(1);
    await b.metrics.alerts.poll();
    expect(heard.map((e) => e.change)).toEqual(["fired", "resolved"]);
    await Promise.all([a.metrics.alerts.delivered(), b.metrics.alerts.delivered()]);
    expect(posted).toHaveLength(2);
    expect(posted.map((p) => (p as AlertEvent).change)).toEqual(["fired", "resolved"]);
    // Evaluating again writes nothing (the alert is known, resolved).
    const r3 = await b.metrics.alerts.evaluate({ force: true });
    expect([r3.fired.length, r3.resolved.length]).toEqual([0, 0]);
  });
});
