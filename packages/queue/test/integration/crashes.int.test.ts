import { createSeededRandom } from "@nxs-sync/core";
import type { JobRecord } from "@nxs-sync/queue";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { authOf, backendOf, closeBackends, gateway, newId, newJobs, startQueueServer } from "./servers.js";
import type { WorkerMessage } from "./worker-process.js";
import { killWorkers, spawnWorker, type WorkerChild } from "./workers.js";

/**
 * Crashes at seeded random points while workers drain a queue: workers SIGKILLed or frozen past
 * their lease, the server SIGKILLed and restarted. Checked against the model: no job is lost, each
 * is completed exactly once (one accepted completion), and every extra run of a job follows a lease
 * that lapsed, recorded as a `queue/stalled` failure. `NXS_QUEUE_CRASH_SEEDS` ("7 42") and
 * `NXS_QUEUE_CRASH_SECONDS` (6) make it a long run (`npm run test:long`).
 */
const SEEDS = (process.env.NXS_QUEUE_CRASH_SEEDS ?? "7").split(/\s+/).filter(Boolean).map(Number);
const SECONDS = Number(process.env.NXS_QUEUE_CRASH_SECONDS ?? 6);
const JOBS = Number(process.env.NXS_QUEUE_CRASH_JOBS ?? 150);

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
beforeAll(async () => {
  server = await startQueueServer(servers, "queue-crashes");
});
afterEach(killWorkers);
afterAll(closeBackends);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const seed of SEEDS) {
  it(`loses no job and completes each once under seeded crashes (seed ${seed}, ${SECONDS} s)`, async () => {
    const random = createSeededRandom(seed);
    const queue = `crash-${seed}-${newId()}`;
    const backend = backendOf([server.url], { timeoutMs: 30_000 });
    const jobs = newJobs(queue, JOBS);
    await backend.enqueue(jobs);
    const seen: WorkerMessage[] = [];
    let n = 0;
    const spawn = () =>
      spawnWorker(
        {
          name: `w${++n}`,
          endpoints: [server.url],
          auth: authOf(gateway),
          queue,
          leaseMs: 1200,
          max: 3,
          jobMs: 250,
          heartbeatMs: 300,
          idleRounds: 0,
          pollMs: 100,
        },
        seen,
      );
    const workers: WorkerChild[] = [spawn(), spawn(), spawn()];
    const log: string[] = [];
    const end = performance.now() + SECONDS * 1000;
    while (performance.now() < end) {
      await sleep(200 + random.int(600));
      const i = random.int(workers.length);
      const w = workers[i] as WorkerChild;
      const roll = random.int(10);
      if (roll < 5) {
        log.push(`kill ${i}`);
        w.proc.kill("SIGKILL");
        workers[i] = spawn();
      } else if (roll < 8) {
        log.push(`freeze ${i}`);
        w.proc.kill("SIGSTOP");
        await sleep(1500 + random.int(500));
        w.proc.kill("SIGCONT");
      } else {
        log.push("server");
        await server.kill();
        await sleep(random.int(300));
        await server.restart();
      }
    }
    const counts = await waitFor(
      async () => {
        const c = await backend.counts(queue);
        return c.completed + c.failed === JOBS ? c : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, description: `the drain after the crashes (${log.join(", ")})` },
    );
    for (const w of workers) w.proc.send("stop");
    await Promise.all(workers.map((w) => w.exited));

    const records = new Map<string, JobRecord>();
    for (let page = await backend.admin.list(queue, { limit: 1000 }); page.length > 0; ) {
      for (const r of page) records.set(r.id, r);
      page = await backend.admin.list(queue, { limit: 1000, after: page.at(-1)?.id });
    }
    const startsOf = (id: string) => seen.filter((m) => m.type === "start" && m.id === id).length;
    const completions = (id: string) =>
      seen.filter((m) => m.type === "settled" && m.ok && m.id === id).length;
    let duplicates = 0;
    for (const j of jobs) {
      const r = records.get(j.id);
      const stalls = r?.failures.filter((f) => f.code === "queue/stalled").length ?? 0;
      const why = `${j.id}: ${JSON.stringify(r)} (${log.join(", ")})`;
      // A job spent all its attempts only if every one of them lapsed.
      if (r?.state === "failed") expect(r.reason, why).toBe("queue/stalled");
      else expect(r?.state, why).toBe("completed");
      expect(completions(j.id), why).toBeLessThanOrEqual(1);
      if (r?.state === "completed") expect(r.attempt - 1, why).toBeLessThanOrEqual(stalls);
      expect(startsOf(j.id) - 1, why).toBeLessThanOrEqual(stalls);
      if (startsOf(j.id) > 1) duplicates++;
    }
    console.info(
      `[crashes seed ${seed}] ${log.length} faults (${log.join(", ")}); ${JSON.stringify(counts)}; ${duplicates} jobs ran more than once, each after a lapsed lease`,
    );
  });
}
