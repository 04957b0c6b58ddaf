import type { ChildProcess } from "node:child_process";
import { createSeededRandom } from "@nxs-sync/core";
import type { Replicator } from "@nxs-sync/pocketbase";
import { createQueue } from "@nxs-sync/queue";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import type { FlowConfig, FlowMessage } from "./flow-process.js";
import {
  authOf,
  backendOf,
  closeBackends,
  gateway,
  newId,
  startQueueServer,
  startReplicatorBetween,
  useChildProcesses,
} from "./servers.js";

/**
 * Flow control on two real servers with the replicator between them (issue 22 items 4-6): worker
 * processes (gateways of both nodes; in a healthy fleet they all claim at the queue's home server)
 * drain queues under a fleet-wide concurrency limit, a weighted rate limit and a pause, and an
 * outside ledger (the parent, fed by every handler over IPC) checks that no limit is ever passed.
 */
const servers = usePocketBaseServers();
let a: ProcessPocketBase;
let b: ProcessPocketBase;
let replicator: Replicator;

/** A new replicator between a and b (a stopped one does not start again). */
const startReplicator = async (): Promise<void> => {
  replicator = await startReplicatorBetween([a, b]);
};
beforeAll(async () => {
  [a, b] = await Promise.all([startQueueServer(servers, "flow-a"), startQueueServer(servers, "flow-b")]);
  await startReplicator();
});
afterAll(async () => {
  await closeBackends();
  await replicator.stop();
});

type Ran = Extract<FlowMessage, { type: "ran" }>;
const messages: FlowMessage[] = [];
const ranOf = (ids: ReadonlySet<string>): Ran[] =>
  messages.filter((m): m is Ran => m.type === "ran" && ids.has(m.id));
const errors = () => messages.filter((m) => m.type === "error");
const forkChild = useChildProcesses<FlowMessage>("./flow-process.ts", (m) => messages.push(m));

/** Starts `n` worker processes on `queue` (homed on server a, then b, unless `endpoints` says) and waits until they are ready. */
async function workers(
  queue: string,
  n: number,
  concurrency: number,
  endpoints: () => readonly string[] = () => [a.url, b.url],
  tag = "w",
): Promise<ChildProcess[]> {
  const names = Array.from({ length: n }, (_, i) => `${queue}-${tag}${i}`);
  const procs = names.map((name) => {
    const cfg: FlowConfig = { name, queue, endpoints: endpoints(), auth: authOf(gateway), concurrency };
    return forkChild(cfg);
  });
  await waitFor(
    () => names.every((nm) => messages.some((m) => m.type === "ready" && m.name === nm)) || undefined,
    {
      timeoutMs: 30_000,
      intervalMs: 20,
      description: `workers ${names.join(", ")} ready`,
    },
  );
  return procs;
}
const stopAll = async (procs: readonly ChildProcess[]) => {
  const exited = procs.map(
    (p) => new Promise<void>((r) => (p.exitCode !== null ? r() : p.once("exit", () => r()))),
  );
  for (const p of procs) p.send("stop");
  await Promise.all(exited);
};

/** The most spans open at once (an end at t comes before a start at t). */
function maxOverlap(spans: readonly { from: number; to: number }[]): number {
  const edges = spans.flatMap((s) => [
    [s.from, 1],
    [s.to, -1],
  ]) as [number, number][];
  edges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let open = 0;
  let most = 0;
  for (const [, d] of edges) {
    open += d;
    most = Math.max(most, open);
  }
  return most;
}

const schema = z.object({ holdMs: z.number() });

it("a fleet-wide concurrency limit per queue and per group is never passed by 4 worker processes (outside ledger)", {
  timeout: 120_000,
}, async () => {
  const name = `conc-${newId()}`;
  const queue = createQueue({ name, schema, backend: backendOf([a.url, b.url]) });
  await queue.setLimits({ concurrency: 6 });
  await queue.setLimits({ concurrency: 3 }, { group: "openai" });
  await queue.setLimits({ concurrency: 2 }, { group: "*" });
  const random = createSeededRandom(4);
  const groups = [
    ...Array(18).fill("openai"),
    ...Array(9).fill("voice"),
    ...Array(9).fill("stt"),
  ] as string[];
  const ids = new Set<string>();
  for (const group of groups) ids.add(await queue.add({ holdMs: 30 + random.int(60) }, { group }));
  // 4 processes x 4 slots = 16 slots: only the limits hold them back.
  const procs = await workers(name, 4, 4);
  await waitFor(() => ranOf(ids).length === ids.size || undefined, {
    timeoutMs: 90_000,
    intervalMs: 50,
    description: `${ids.size} jobs ran`,
  });
  await stopAll(procs);
  expect(errors()).toEqual([]);
  const runs = ranOf(ids);
  expect(new Set(runs.map((r) => r.id)).size).toBe(ids.size);
  const peak = (g?: string) => maxOverlap(runs.filter((r) => g === undefined || r.group === g));
  const peaks = { all: peak(), openai: peak("openai"), voice: peak("voice"), stt: peak("stt") };
  expect(peaks.all).toBeLessThanOrEqual(6);
  expect(peaks.openai).toBeLessThanOrEqual(3);
  expect(peaks.voice).toBeLessThanOrEqual(2);
  expect(peaks.stt).toBeLessThanOrEqual(2);
  // Work did run in parallel (more than one process took jobs): the limits are what held it.
  expect(new Set(runs.map((r) => r.name)).size).toBeGreaterThan(1);
  expect(peaks.all).toBeGreaterThan(1);
});

it("a weighted rate limit of a group is never passed over any sliding window by 3 worker processes", {
  timeout: 120_000,
}, async () => {
  const name = `rate-${newId()}`;
  const queue = createQueue({ name, schema, backend: backendOf([a.url, b.url]) });
  const limit = { max: 8, intervalMs: 500 };
  await queue.setLimits({ rate: limit }, { group: "llm" });
  const random = createSeededRandom(5);
  const ids = new Set<string>();
  for (let i = 0; i < 24; i++)
    ids.add(await queue.add({ holdMs: 5 }, { group: "llm", weight: 1 + random.int(3) }));
  const free = new Set<string>();
  for (let i = 0; i < 8; i++) free.add(await queue.add({ holdMs: 5 }));
  const procs = await workers(name, 3, 4);
  await waitFor(() => ranOf(new Set([...ids, ...free])).length === ids.size + free.size || undefined, {
    timeoutMs: 90_000,
    intervalMs: 50,
    description: `${ids.size + free.size} jobs ran`,
  });
  await stopAll(procs);
  expect(errors()).toEqual([]);
  const runs = ranOf(ids).sort((x, y) => x.claimedAt - y.claimedAt);
  // Every window (t - intervalMs, t] ending at a claim holds at most `max` weight: the limit is on
  // claims, stamped on the claim authority's clock.
  for (const r of runs) {
    const inWindow = runs.filter(
      (x) => x.claimedAt > r.claimedAt - limit.intervalMs && x.claimedAt <= r.claimedAt,
    );
    expect(
      inWindow.reduce((s, x) => s + x.weight, 0),
      `window ending at ${r.claimedAt}`,
    ).toBeLessThanOrEqual(limit.max);
  }
  // The limit spread the drain: the whole weight needs at least this many windows.
  const weight = runs.reduce((s, x) => s + x.weight, 0);
  const span = runs.at(-1)!.claimedAt - runs[0]!.claimedAt;
  expect(span).toBeGreaterThanOrEqual((Math.ceil(weight / limit.max) - 1) * limit.intervalMs);
  // Jobs without a group are not limited by it.
  expect(ranOf(free)).toHaveLength(free.size);
});

it("pause of a queue from another process takes effect at once at the claim authority; resume drains the rest", {
  timeout: 120_000,
}, async () => {
  const name = `pause-${newId()}`;
  const queue = createQueue({ name, schema, backend: backendOf([a.url, b.url]) });
  const ids = new Set<string>();
  for (let i = 0; i < 40; i++) ids.add(await queue.add({ holdMs: 40 }, { group: i % 2 === 0 ? "a" : "b" }));
  // Group b is paused before any worker starts: none of its jobs runs until it is resumed.
  await queue.pause({ group: "b", reason: "provider b down" });
  const procs = await workers(name, 3, 2);
  await waitFor(() => ranOf(ids).length >= 5 || undefined, {
    timeoutMs: 60_000,
    description: "5 runs",
  });
  const paused = await queue.pause({ reason: "maintenance" });
  expect(paused).toMatchObject({ group: "", paused: true, reason: "maintenance" });
  const pausedAt = Date.now();
  await new Promise((r) => setTimeout(r, 1500));
  const before = ranOf(ids);
  expect(before.filter((r) => r.claimedAt > pausedAt)).toEqual([]);
  expect(before.filter((r) => r.group === "b")).toEqual([]);
  const counts = await queue.counts();
  expect(counts.waiting).toBe(ids.size - before.length);
  await queue.resume();
  await queue.resume({ group: "b" });
  await waitFor(() => ranOf(ids).length === ids.size || undefined, {
    timeoutMs: 60_000,
    intervalMs: 50,
    description: "every job ran after resume",
  });
  await stopAll(procs);
  expect(errors()).toEqual([]);
  // The flow records replicated: server b holds the same (resumed) state.
  const onB = createQueue({ name, schema, backend: backendOf([b.url]) });
  await waitFor(
    async () => {
      const flows = await onB.flows();
      return flows.length === 2 && flows.every((f) => !f.paused) ? flows : undefined;
    },
    { timeoutMs: 10_000, description: "the resumed flow records on b" },
  );
});

it("during a cut each side holds a group limit and its pauses alone; after the heal the pause reaches both", {
  timeout: 120_000,
}, async () => {
  const name = `cut-${newId()}`;
  const onA = createQueue({ name, schema, backend: backendOf([a.url]) });
  const onB = createQueue({ name, schema, backend: backendOf([b.url]) });
  await onA.setLimits({ concurrency: 2 }, { group: "p" });
  await waitFor(async () => ((await onB.flows()).length === 1 ? true : undefined), {
    timeoutMs: 10_000,
    description: "the limit replicated to b",
  });
  // The cut: the servers stop exchanging records; each side's gateways reach their own server only.
  await replicator.stop();
  try {
    const idsA = new Set<string>();
    const idsB = new Set<string>();
    for (let i = 0; i < 8; i++) idsA.add(await onA.add({ holdMs: 60 }, { group: "p" }));
    for (let i = 0; i < 8; i++) idsB.add(await onB.add({ holdMs: 60 }, { group: "p" }));
    const procs = [
      ...(await workers(name, 1, 4, () => [a.url], "a")),
      ...(await workers(name, 1, 4, () => [b.url], "b")),
    ];
    const all = new Set([...idsA, ...idsB]);
    await waitFor(() => ranOf(all).length === all.size || undefined, {
      timeoutMs: 60_000,
      intervalMs: 50,
      description: `${all.size} jobs ran on both sides`,
    });
    const sideA = ranOf(idsA);
    const sideB = ranOf(idsB);
    expect(sideA.every((r) => r.name.endsWith("-a0"))).toBe(true);
    expect(sideB.every((r) => r.name.endsWith("-b0"))).toBe(true);
    // Each side holds the limit on its own; the fleet may run up to twice it.
    expect(maxOverlap(sideA)).toBeLessThanOrEqual(2);
    expect(maxOverlap(sideB)).toBeLessThanOrEqual(2);
    expect(maxOverlap([...sideA, ...sideB])).toBeLessThanOrEqual(4);

    // A pause on side a holds side a only.
    await onA.pause({ group: "p", reason: "cut test" });
    const moreA = new Set<string>();
    const moreB = new Set<string>();
    for (let i = 0; i < 3; i++) moreA.add(await onA.add({ holdMs: 10 }, { group: "p" }));
    for (let i = 0; i < 3; i++) moreB.add(await onB.add({ holdMs: 10 }, { group: "p" }));
    await waitFor(() => ranOf(moreB).length === moreB.size || undefined, {
      timeoutMs: 30_000,
      intervalMs: 50,
      description: "side b runs its jobs: it has not seen the pause",
    });
    expect(ranOf(moreA)).toEqual([]);
    expect((await onA.counts()).waiting).toBe(3);
    expect((await onB.flows())[0]?.paused).toBe(false);

    // The heal: the pause reaches b (the later write of the record wins), and a third batch on b waits.
    await startReplicator();
    await waitFor(async () => ((await onB.flows())[0]?.paused === true ? true : undefined), {
      timeoutMs: 15_000,
      description: "the pause replicated to b after the heal",
    });
    const lastB = await onB.add({ holdMs: 10 }, { group: "p" });
    await new Promise((r) => setTimeout(r, 1500));
    expect(ranOf(new Set([lastB]))).toEqual([]);
    // Side a ran none of its held jobs. (At the heal, b's worker may take a's waiting jobs: they can
    // reach b before the pause record does. That is the cut's rule, docs/queue-servers.md.)
    expect(ranOf(moreA).filter((r) => r.name.endsWith("-a0"))).toEqual([]);
    await onA.resume({ group: "p" });
    await waitFor(() => ranOf(new Set([...moreA, lastB])).length === 4 || undefined, {
      timeoutMs: 30_000,
      intervalMs: 50,
      description: "every held job ran after resume",
    });
    await stopAll(procs);
    expect(errors()).toEqual([]);
  } finally {
    if (replicator.status().state !== "running") await startReplicator();
  }
});
