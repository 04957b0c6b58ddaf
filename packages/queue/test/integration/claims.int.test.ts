import { randomBytes } from "node:crypto";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import {
  authOf,
  backendOf,
  claimWhenReady,
  closeBackends,
  gateway,
  newId,
  newJob,
  newJobs,
  startQueueServer,
} from "./servers.js";
import type { WorkerConfig, WorkerMessage } from "./worker-process.js";
import { killWorkers, spawnWorker } from "./workers.js";

/**
 * Claims on one real server, with workers in separate processes: a race of several processes,
 * a worker SIGKILLed mid-job, a worker frozen (SIGSTOP) past its lease, a full backup mid-drain.
 */
const servers = usePocketBaseServers();
let server: ProcessPocketBase;
beforeAll(async () => {
  server = await startQueueServer(servers, "queue-claims");
});
afterEach(killWorkers);
afterAll(closeBackends);

const jobs = newJobs;
const config = (queue: string, name: string, extra: Partial<WorkerConfig> = {}): WorkerConfig => ({
  name,
  endpoints: [server.url],
  auth: authOf(gateway),
  queue,
  leaseMs: 30_000,
  max: 5,
  jobMs: 0,
  heartbeatMs: 0,
  idleRounds: 3,
  pollMs: 50,
  ...extra,
});
/** One job of a fresh queue, started by a worker process. */
async function oneJobInChild(name: string, extra: Partial<WorkerConfig>) {
  const queue = `${name}-${newId()}`;
  const backend = backendOf([server.url]);
  const j = newJob(queue);
  await backend.enqueue([j]);
  const child = spawnWorker(config(queue, name, { ...extra, idleRounds: 0 }));
  await child.until((m) => m.type === "start", `${name}: the worker starts the job`);
  return { queue, backend, j, child };
}
const starts = (messages: readonly WorkerMessage[]) =>
  messages.filter((m): m is Extract<WorkerMessage, { type: "start" }> => m.type === "start");

it("gives every attempt to exactly one of four worker processes racing on 200 jobs", async () => {
  const queue = `race-${newId()}`;
  const backend = backendOf([server.url]);
  const all = jobs(queue, 200);
  await backend.enqueue(all);
  const seen: WorkerMessage[] = [];
  const workers = ["a", "b", "c", "d"].map((w) => spawnWorker(config(queue, w, { waitForGo: true }), seen));
  await Promise.all(workers.map((w) => w.until((m) => m.type === "ready", "a racer ready")));
  for (const w of workers) w.proc.send("go");
  await Promise.all(workers.map((w) => w.exited));
  const started = starts(seen);
  const perWorker = Object.fromEntries(
    ["a", "b", "c", "d"].map((w) => [w, started.filter((s) => s.worker === w).length]),
  );
  expect(started.map((s) => `${s.id}#${s.attempt}`).sort()).toEqual(all.map((j) => `${j.id}#1`).sort());
  expect(seen.filter((m) => m.type === "settled" && !m.ok)).toEqual([]);
  expect(seen.filter((m) => m.type === "error")).toEqual([]);
  expect(Object.values(perWorker).filter((n) => n > 0).length, JSON.stringify(perWorker)).toBeGreaterThan(1);
  expect(await backend.counts(queue)).toMatchObject({ completed: 200, active: 0, waiting: 0, failed: 0 });
});

it("takes over the job of a worker SIGKILLed mid-job once its lease lapses", async () => {
  const {
    queue,
    backend,
    j,
    child: victim,
  } = await oneJobInChild("kill", {
    leaseMs: 1500,
    jobMs: 60_000,
    heartbeatMs: 400,
  });
  victim.proc.kill("SIGKILL");
  await victim.exited;
  expect(await backend.claim({ queue, worker: "rescuer", leaseMs: 5000, max: 1 })).toEqual([]); // lease still runs
  const taken = await claimWhenReady(backend, queue, "rescuer", 5000, "the lapsed lease taken over");
  expect(taken?.job).toMatchObject({ id: j.id, attempt: 2, attemptsMade: 2, worker: "rescuer" });
  expect(taken?.job.failures.map((f) => [f.attempt, f.code])).toEqual([[1, "queue/stalled"]]);
  expect(await backend.settle([{ id: j.id, token: taken!.token, kind: "complete" }])).toEqual([
    { ok: true, state: "completed" },
  ]);
  expect(await backend.counts(queue)).toMatchObject({ completed: 1, active: 0, waiting: 0, failed: 0 });
});

it("refuses the heartbeat and the completion of a worker frozen (SIGSTOP) past its lease", async () => {
  const {
    queue,
    backend,
    j,
    child: frozen,
  } = await oneJobInChild("frozen", {
    leaseMs: 1000,
    jobMs: 2500,
    heartbeatMs: 300,
  });
  frozen.proc.kill("SIGSTOP");
  const taken = await claimWhenReady(
    backend,
    queue,
    "rescuer",
    10_000,
    "the frozen worker's lease taken over",
  );
  expect(taken?.job.attempt).toBe(2);
  frozen.proc.kill("SIGCONT");
  const settled = await frozen.until((m) => m.type === "settled", "the thawed worker settles");
  expect(settled).toMatchObject({ ok: false, code: "queue/lease-lost", attempt: 1 });
  expect(frozen.messages.some((m) => m.type === "heartbeat-lost")).toBe(true);
  const stored = await backend.getJob(j.id);
  expect(stored).toMatchObject({ state: "active", attempt: 2, worker: "rescuer" });
  expect(stored?.result).toBeUndefined();
  await backend.settle([{ id: j.id, token: taken!.token, kind: "complete", result: "rescued" }]);
  expect(await backend.getJob(j.id)).toMatchObject({ state: "completed", result: "rescued", attempt: 2 });
});

it("runs no job twice when a full backup stalls writes mid-drain", async () => {
  const queue = `backup-${newId()}`;
  const backend = backendOf([server.url]);
  // Job records of random text in another queue make data.db (the zip written while writes wait)
  // larger: 24 MB in the gate, NXS_QUEUE_BACKUP_MB (e.g. 300, a stall of seconds) in a long run.
  const mb = Number(process.env.NXS_QUEUE_BACKUP_MB ?? 24);
  const padding = `pad-${newId()}`;
  for (let left = mb * 4; left > 0; left -= 20) {
    await backend.enqueue(
      newJobs(padding, Math.min(20, left)).map((j) => ({
        ...j,
        payload: { text: randomBytes(180_000).toString("base64") },
      })),
    );
  }
  const all = jobs(queue, 300);
  await backend.enqueue(all);
  const seen: WorkerMessage[] = [];
  // Default-like lease and heartbeat: a 30 s lease renewed every 10 s outlasts the stall.
  const workers = ["a", "b"].map((w) =>
    spawnWorker(config(queue, w, { jobMs: 20, heartbeatMs: 10_000, max: 5, idleRounds: 5 }), seen),
  );
  await waitFor(() => seen.filter((m) => m.type === "settled").length >= 40, {
    description: "the drain under way",
  });
  const t0 = performance.now();
  await server.client().backups.create(`mid-drain-${newId()}.zip`);
  const backupMs = performance.now() - t0;
  const settledDuring = seen.filter((m) => m.type === "settled").length;
  await Promise.all(workers.map((w) => w.exited));
  const started = starts(seen);
  expect(started.map((s) => `${s.id}#${s.attempt}`).sort(), `backup took ${Math.round(backupMs)} ms`).toEqual(
    all.map((j) => `${j.id}#1`).sort(),
  );
  expect(seen.filter((m) => m.type === "settled" && !m.ok)).toEqual([]);
  expect(await backend.counts(queue)).toMatchObject({ completed: 300, active: 0, waiting: 0 });
  expect((await backend.counts(padding)).waiting).toBe(mb * 4);
  console.info(
    `[backup] POST /api/backups took ${Math.round(backupMs)} ms mid-drain (${settledDuring} of 300 settled when it returned); 300 jobs, 300 runs, no duplicate`,
  );
});
