import type { AlertEvent } from "@nxs-sync/metrics";
import { absenceCheck } from "@nxs-sync/metrics";
import { ALERTS_COLLECTION } from "@nxs-sync/metrics/pocketbase";
import type { Replicator } from "@nxs-sync/pocketbase";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { closeAll, memHigh, metricsOf, pastStart, runFor, startPair } from "./servers.js";

/**
 * Checks and alerts on two real servers with the replicator: a scripted load on one node fires an
 * alert evaluated on the other server, every node hears it, it resolves with hysteresis, and a node
 * that stops reporting raises an absence alert. Manual clocks; no waits for windows.
 */
const servers = usePocketBaseServers();
let a: ProcessPocketBase;
let b: ProcessPocketBase;
let replicator: Replicator;

beforeAll(async () => {
  ({ a, b, replicator } = await startPair(servers, "alerts"));
});
afterAll(async () => {
  closeAll();
  await replicator.stop();
});

it("a scripted load fires an alert evaluated on the other server; every node hears it; it resolves once, with hysteresis", async () => {
  const t0 = pastStart();
  // Evaluated by hand (the loops' slot is a day: on these fast manual clocks an automatic pass
  // would run before the replicator brought a node's flushes and see it absent).
  const alerts = { checks: [memHigh, absenceCheck(10_000)], intervalMs: 86_400_000 };
  const load = metricsOf("loaded", [a.url], t0, { alerts });
  const watcher = metricsOf("watcher", [b.url], t0, { alerts });
  const heardOnA: AlertEvent[] = [];
  const heardOnB: AlertEvent[] = [];
  load.metrics.alerts.subscribe((e) => heardOnA.push(e));
  watcher.metrics.alerts.subscribe((e) => heardOnB.push(e));
  await Promise.all([load.metrics.alerts.poll(), watcher.metrics.alerts.poll()]);
  const mem = load.metrics.gauge("mem_percent");
  const quiet = watcher.metrics.gauge("mem_percent");
  // Load: 40 s at 80-90%, then flapping around 75 for 20 s, then 40 s at 60%.
  const script = (s: number) =>
    s < 10 ? 50 : s < 50 ? 80 + (s % 10) : s < 70 ? (s % 2 === 0 ? 74 : 76) : 60;
  const step = async (seconds: number) => {
    for (let i = 0; i < seconds; i += 10) {
      await Promise.all([
        runFor(load, 10_000, (s) => mem.set(script(Math.round((load.scheduler.now() - t0) / 1000) + 0 * s))),
        runFor(watcher, 10_000, () => quiet.set(20)),
      ]);
    }
    // Every flush written (a write that failed on a loaded machine is retried at the next flush).
    for (const m of [load, watcher]) {
      await waitFor(
        async () => {
          await m.metrics.flush();
          return m.metrics.buffered() === 0;
        },
        {
          timeoutMs: 20_000,
          description: "flushes written",
        },
      );
    }
  };
  // Evaluations on the watcher's server, until the flushes got there.
  const stored = async (srv: ProcessPocketBase) =>
    (await srv.client().collection(ALERTS_COLLECTION).getFullList({ sort: "startedAt" })).map((r) => ({
      check: r.check,
      node: r.node,
      state: r.state,
      startedAt: Number(r.startedAt) - t0,
      endedAt: r.endedAt === 0 ? 0 : Number(r.endedAt) - t0,
    }));
  const until = (m: typeof load, srv: ProcessPocketBase, want: unknown[], what: string) =>
    waitFor(
      async () => {
        await m.metrics.alerts.evaluate({ force: true });
        return JSON.stringify(await stored(srv)) === JSON.stringify(want);
      },
      { timeoutMs: 20_000, intervalMs: 200, description: what },
    );
  await step(50);
  const firing = [{ check: "mem-high", node: "loaded", state: "firing", startedAt: 10_000, endedAt: 0 }];
  await until(watcher, b, firing, "mem-high fired on B from the loaded node's flushes");
  await until(load, a, firing, "and replicated to A");
  await Promise.all([load.metrics.alerts.poll(), watcher.metrics.alerts.poll()]);
  expect(heardOnA.map((e) => e.change)).toEqual(["fired"]);
  expect(heardOnB.map((e) => e.change)).toEqual(["fired"]);
  expect(watcher.metrics.alerts.active().map((x) => x.node)).toEqual(["loaded"]);

  // Flapping around the threshold: no resolution, no new alert.
  await step(20);
  await until(load, a, firing, "still one alert, firing, on A");
  // Calm for 30 s: resolved once (at the first calm window), everywhere.
  await step(30);
  const resolved = [{ ...firing[0], state: "resolved", endedAt: 70_000 }];
  await until(load, a, resolved, "resolved on A");
  await until(watcher, b, resolved, "resolved on B");
  await Promise.all([load.metrics.alerts.poll(), watcher.metrics.alerts.poll()]);
  expect(heardOnA.map((e) => e.change)).toEqual(["fired", "resolved"]);
  expect(heardOnB.map((e) => e.change)).toEqual(["fired", "resolved"]);

  // The watcher stops reporting: the loaded node's checker raises an absence alert about it.
  await runFor(load, 30_000, () => mem.set(60));
  await waitFor(
    async () => {
      await load.metrics.flush();
      return load.metrics.buffered() === 0;
    },
    { timeoutMs: 20_000, description: "the loaded node's flushes written" },
  );
  await until(
    load,
    a,
    [...resolved, { check: "absence", node: "watcher", state: "firing", startedAt: 100_000, endedAt: 0 }],
    "absence of the watcher",
  );
});
