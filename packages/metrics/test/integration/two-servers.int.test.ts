import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type MetricsPoint, type RefusedPoint, rollupPoints, type SeriesValue } from "@nxs-sync/metrics";
import { POINTS_COLLECTION } from "@nxs-sync/metrics/pocketbase";
import type { Replicator } from "@nxs-sync/pocketbase";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  closeAll,
  contentOf,
  gateway,
  metricsOf,
  pastStart,
  pointsOn,
  RAW_RETENTION_MS,
  replicatorOf,
  runFor,
  startMetricsServer,
} from "./servers.js";

/**
 * Two real servers with the replicator between them (the metrics collections plugged in): flushes
 * and rollups on real PocketBase against a model, one rollup per window when two maintainers race,
 * convergence after a cut in which both sides rolled up, retention that replicates and does not come
 * back, hostile records quarantined. Every node runs on a manual clock (no waits for windows).
 */
const servers = usePocketBaseServers();
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
let a: ProcessPocketBase;
let b: ProcessPocketBase;
let replicator: Replicator | undefined;
const quarantinedByReplicator: string[] = [];

const startReplicator = async (): Promise<void> => {
  replicator = await replicatorOf([a, b]);
  replicator.on("quarantine", (q) => {
    if (q.recordId !== undefined) quarantinedByReplicator.push(q.recordId);
  });
};
const stopReplicator = async (): Promise<void> => {
  await replicator?.stop();
  replicator = undefined;
};

beforeAll(async () => {
  [a, b] = await Promise.all([
    startMetricsServer(servers, "metrics-a"),
    startMetricsServer(servers, "metrics-b"),
  ]);
});
afterAll(async () => {
  closeAll();
  await stopReplicator();
});

const BOUNDS = [10, 100];
const SEED = 20261207;
/** Seeded samples: per second a gauge value, a counter increase and 0 to 2 observations. */
const samples = (seconds: number, seed: number) =>
  fc.sample(
    fc.array(
      fc.record({
        g: fc.integer({ min: 0, max: 100 }),
        inc: fc.integer({ min: 0, max: 5 }),
        obs: fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 2 }),
      }),
      { minLength: seconds, maxLength: seconds },
    ),
    { seed, numRuns: 1 },
  )[0]!;

/** The model of one minute of samples: what the 1 m rollup must hold. */
function modelMinute(ss: ReturnType<typeof samples>, minute: number, totalBefore: number) {
  const part = ss.slice(minute * 60, minute * 60 + 60);
  const gs = part.map((s) => s.g);
  const obs = part.flatMap((s) => s.obs);
  const inc = part.reduce((x, s) => x + s.inc, 0);
  const bucket = (o: number) => (o <= 10 ? 0 : o <= 100 ? 1 : 2);
  const buckets = [0, 1, 2].map((i) => obs.filter((o) => bucket(o) === i).length);
  return {
    g: ["g", Math.min(...gs), Math.max(...gs), gs.reduce((x, y) => x + y, 0), gs.length, gs.at(-1)],
    c: ["c", inc, totalBefore + inc],
    h: ["h", obs.length, obs.reduce((x, y) => x + y, 0), ...buckets],
  };
}

it("writes one record per node and flush, and rolls up on real PocketBase exactly as a model of seeded samples", async () => {
  const t0 = pastStart();
  const n = metricsOf("model-node", [a.url], t0);
  const g = n.metrics.gauge("load");
  const c = n.metrics.counter("work_total", { labels: ["kind"] });
  const h = n.metrics.histogram("lat_ms", { buckets: BOUNDS });
  const ss = samples(180, SEED);
  await runFor(n, 210_000, (s) => {
    const x = ss[s];
    if (x === undefined) return;
    g.set(x.g);
    c.inc({ kind: "job" }, x.inc);
    for (const o of x.obs) h.observe(o);
  });
  const raw = await pointsOn(a, `node = "model-node" && tier = "raw"`);
  expect(raw.size).toBe(21); // 210 s of 10 s flushes: one record each, every series inside
  expect(Object.keys((raw.values().next().value as { data: { s: object } }).data.s).sort()).toEqual([
    "lat_ms",
    "load",
    'work_total{kind="job"}',
  ]);

  const report = await n.metrics.maintain({ force: true });
  expect(report.written["1m"]).toBe(3);
  let total = 0;
  for (let m = 0; m < 3; m++) {
    const want = modelMinute(ss, m, total);
    total = want.c[2] as number;
    const got = (
      await n.metrics.query({
        series: "load",
        from: t0 + m * 60_000,
        to: t0 + (m + 1) * 60_000,
        tier: "1m",
        agg: "mean",
      })
    ).series[0];
    expect(got?.points[0]?.v).toBeCloseTo((want.g[3] as number) / (want.g[4] as number), 9);
    const rec = (await pointsOn(a, `node = "model-node" && tier = "1m" && start = ${t0 + m * 60_000}`))
      .values()
      .next().value as { data: { s: Record<string, SeriesValue> }; n: number };
    expect(rec.n).toBe(6);
    expect(rec.data.s.load).toEqual(want.g);
    expect(rec.data.s['work_total{kind="job"}']).toEqual(want.c);
    expect(rec.data.s.lat_ms).toEqual(want.h);
  }
  // Idempotent: a second pass at the same time writes nothing.
  expect((await n.metrics.maintain({ force: true })).written["1m"]).toBe(0);
});

it("two processes racing to maintain one server: one takes the slot's lease, each window has one rollup", async () => {
  const t0 = pastStart() + 3_600_000;
  const p = metricsOf("race-p", [a.url], t0);
  const q = metricsOf("race-q", [a.url], t0);
  p.metrics.gauge("x").set(1);
  q.metrics.gauge("x").set(2);
  await Promise.all([runFor(p, 90_000), runFor(q, 90_000)]);
  // A second OS process (its own client, pool and clock at the same time) races this one.
  const child = spawn(
    process.execPath,
    ["--import", "tsx", here("racer.ts"), a.url, String(p.scheduler.now()), "race-r"],
    {
      env: { ...process.env, NXS_RACER_EMAIL: gateway.email, NXS_RACER_PASSWORD: gateway.password },
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  await waitFor(() => out.includes("ready"), { timeoutMs: 30_000, description: "the racer process ready" });
  child.stdin.write("go\n");
  const mine = await p.metrics.maintain();
  await waitFor(() => /leased=(true|false)/.test(out), {
    timeoutMs: 30_000,
    description: "the racer's pass",
  });
  const theirs = /leased=(true|false)/.exec(out)?.[1] === "true";
  expect([mine.leased, theirs].sort()).toEqual([false, true]);
  // Forced passes at once (no lease) still end with one record per node and window, the same content.
  const forced = await Promise.all([
    p.metrics.maintain({ force: true }),
    q.metrics.maintain({ force: true }),
  ]);
  expect(forced.map((r) => r.written["1m"])).toEqual([0, 0]);
  const rollups = await pointsOn(a, `(node = "race-p" || node = "race-q") && tier = "1m"`);
  expect([...rollups.values()].map((r) => `${r.node}@${Number(r.start) - t0}`).sort()).toEqual([
    "race-p@0",
    "race-q@0",
  ]);
});

it("after a cut in which both sides rolled up, both servers hold one equal rollup per window, of every flush", async () => {
  await startReplicator();
  const t0 = pastStart() + 2 * 3_600_000;
  const onA = metricsOf("cut-a", [a.url], t0);
  const onB = metricsOf("cut-b", [b.url], t0);
  for (const m of [onA, onB]) m.metrics.gauge("cpu").set(m === onA ? 10 : 20);
  // 90 s together, then a cut of 70 s in which each side keeps writing and rolls up.
  await Promise.all([runFor(onA, 90_000, (s) => onA.metrics.gauge("cpu").set(s)), runFor(onB, 90_000)]);
  await waitFor(async () => (await pointsOn(b, `tier = "raw" && node = "cut-a"`)).size === 9, {
    timeoutMs: 20_000,
    description: "the first 90 s copied",
  });
  await stopReplicator();
  await Promise.all([runFor(onA, 70_000, (s) => onA.metrics.gauge("cpu").set(100 - s)), runFor(onB, 70_000)]);
  const cutA = await onA.metrics.maintain({ force: true });
  const cutB = await onB.metrics.maintain({ force: true });
  expect(cutA.written["1m"]).toBeGreaterThan(0);
  expect(cutB.written["1m"]).toBeGreaterThan(0);
  const partial = await pointsOn(b, `tier = "1m" && node = "cut-a"`);
  // B rolled up cut-a's second minute from the flushes it had (3 of 6): a partial rollup.
  expect([...partial.values()].map((r) => Number(r.n)).sort()).toEqual([3, 6]);

  await startReplicator();
  const rawOf = async (s: ProcessPocketBase) =>
    [...(await pointsOn(s, `tier = "raw" && (node = "cut-a" || node = "cut-b")`)).keys()].sort().join();
  await waitFor(async () => (await rawOf(a)) === (await rawOf(b)), {
    timeoutMs: 30_000,
    description: "raw converged",
  });
  await onA.metrics.maintain({ force: true });
  await onB.metrics.maintain({ force: true });
  const rollupsOf = async (s: ProcessPocketBase) =>
    [...(await pointsOn(s, `tier = "1m" && (node = "cut-a" || node = "cut-b")`)).values()]
      .map(contentOf)
      .sort((x, y) => String(x.id).localeCompare(String(y.id)));
  const converged = await waitFor(
    async () => {
      const [x, y] = [await rollupsOf(a), await rollupsOf(b)];
      return JSON.stringify(x) === JSON.stringify(y) && x.length > 0 ? x : undefined;
    },
    { timeoutMs: 30_000, description: "rollups converged" },
  );
  // One record per node and minute (0, 1 and 2 closed), each the rollup of every flush of it.
  expect(converged.map((r) => `${r.node}@${(Number(r.start) - t0) / 60_000}`).sort()).toEqual([
    "cut-a@0",
    "cut-a@1",
    "cut-b@0",
    "cut-b@1",
  ]);
  const raws = [
    ...(await pointsOn(a, `tier = "raw" && (node = "cut-a" || node = "cut-b")`)).values(),
  ] as unknown as MetricsPoint[];
  for (const r of converged) {
    const inputs = raws.filter(
      (p) => p.node === r.node && p.start >= Number(r.start) && p.start < Number(r.start) + 60_000,
    );
    const model = rollupPoints(String(r.node), "1m", Number(r.start), 60_000, inputs);
    expect(r.n).toBe(6);
    expect(r.rev).toBe(model.rev);
    expect(r.data).toEqual(model.data);
  }
});

it("retention expires only what is past it; the deletes replicate, are purged everywhere and do not come back", async () => {
  if (replicator === undefined) await startReplicator();
  const t0 = pastStart() + 2.5 * 3_600_000;
  const n = metricsOf("ret-node", [a.url], t0);
  n.metrics.gauge("disk").set(1);
  await runFor(n, 15 * 60_000);
  const rawFilter = `tier = "raw" && node = "ret-node"`;
  await waitFor(async () => (await pointsOn(b, rawFilter)).size === 90, {
    timeoutMs: 30_000,
    description: "90 flushes on B",
  });
  const report = await n.metrics.maintain({ force: true });
  const now = n.scheduler.now();
  // Kept: windows ending within the raw retention (10 min) of now.
  const keep = (start: number) => start >= now - RAW_RETENTION_MS - 10_000;
  const expected = [...(await pointsOn(a, rawFilter)).values()]
    .filter((r) => keep(Number(r.start)))
    .map((r) => r.id)
    .sort();
  // (Other tests' older flushes of other nodes are expired too: retention is per tier, not per node.)
  expect(report.expired.raw).toBeGreaterThanOrEqual(90 - expected.length);
  expect(expected.length).toBeGreaterThanOrEqual(60);
  const live = async (s: ProcessPocketBase) =>
    [...(await pointsOn(s, rawFilter)).values()].map((r) => r.id).sort();
  await waitFor(
    async () => {
      const [x, y] = [await live(a), await live(b)];
      return JSON.stringify(x) === JSON.stringify(expected) && JSON.stringify(y) === JSON.stringify(expected);
    },
    { timeoutMs: 30_000, description: "expired windows tombstoned, copied and purged on both servers" },
  );
  await replicator?.sync({ full: true });
  expect(await live(a)).toEqual(expected);
  expect(await live(b)).toEqual(expected);
  // The rollups are not touched by the raw retention.
  expect((await pointsOn(a, `tier = "1m" && node = "ret-node"`)).size).toBeGreaterThan(0);
});

it("hostile records written straight into the collection are quarantined: rollups go on, the replicator does not copy them", async () => {
  if (replicator === undefined) await startReplicator();
  const t0 = pastStart() + 2.75 * 3_600_000;
  const refused: RefusedPoint[] = [];
  const n = metricsOf("victim", [a.url], t0, { onQuarantine: (r) => refused.push(r) });
  n.metrics.gauge("mem").set(7);
  await runFor(n, 40_000);
  const pb = a.client();
  const hostile = [
    {
      id: "hostile0000000a",
      node: "victim",
      tier: "raw",
      start: t0 + 10_000,
      span: 10_000,
      n: 1,
      rev: 1,
      data: { v: 1, b: {}, s: { mem: ["g", "NaN"] } },
    },
    {
      id: "hostile0000000b",
      node: "victim",
      tier: "raw",
      start: t0 + 20_000,
      span: 10_000,
      n: 1,
      rev: 1,
      data: { v: 9 },
    },
  ];
  for (const r of hostile) await pb.collection(POINTS_COLLECTION).create(r);
  await runFor(n, 50_000);
  const report = await n.metrics.maintain({ force: true });
  expect(report.written["1m"]).toBeGreaterThanOrEqual(1);
  const own = [...(await pointsOn(a, `tier = "1m" && node = "victim"`)).values()];
  expect(own.map((r) => r.n)).toEqual([6]);
  expect(refused.map((r) => r.id).sort()).toEqual(["hostile0000000a", "hostile0000000b"]);
  const q = await n.metrics.query({ series: "mem", from: t0, to: t0 + 60_000, tier: "1m", agg: "max" });
  expect(q.series[0]?.points).toEqual([{ t: t0, v: 7 }]);
  await waitFor(() => hostile.every((h) => quarantinedByReplicator.includes(h.id)), {
    timeoutMs: 20_000,
    description: "the replicator quarantines both",
  });
  await replicator?.sync({ full: true });
  expect((await pointsOn(b, `id = "hostile0000000a" || id = "hostile0000000b"`)).size).toBe(0);
  expect((await pointsOn(b, `tier = "1m" && node = "victim"`)).size).toBe(1);
});
