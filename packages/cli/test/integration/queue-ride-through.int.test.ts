import { join } from "node:path";
import { silentLogger } from "@nxs-sync/core";
import { createQueue, createWorker, type JobId } from "@nxs-sync/queue";
import { createPocketBaseQueueBackend } from "@nxs-sync/queue/pocketbase";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { FleetStatus } from "../../src/status.js";
import { cli, readIds, runReplicator, serverArgs, startSetUpFleet } from "./fleet.js";

const servers = usePocketBaseServers();

/**
 * A queue worker draining jobs through what docs/operations.md prescribes: a full backup of its
 * home server (the claim authority: its writes stall), a restore of the other server (it restarts
 * on the backup's job states) while the worker drains and a producer enqueues, and a restore of
 * its home server while the producer keeps enqueuing and the worker keeps running (the restore
 * fences the server and waits for the replicator before and after; the worker's claims wait for
 * the fence instead of moving to the other server), until status converges again (jobs per state
 * equal on both servers).
 */
describe("a queue worker rides through a full backup and a restore", () => {
  let a: ProcessPocketBase;
  let b: ProcessPocketBase;
  let dir: string;
  let ids: string;
  beforeAll(async () => {
    ({ a, b, dir, ids } = await startSetUpFleet(servers, "qride"));
  });

  // Two restores, each waiting for the replicator twice, and three convergence waits: on a loaded
  // 2-core machine this took 36-40 s alone; the bound leaves room for a slow round.
  it("no acknowledged enqueue lost, no job run twice", { timeout: 300_000 }, async () => {
    const { nodes, replicator } = await readIds(ids);
    const gw = nodes[0]!;
    const auth = { email: gw.email, password: gw.password };
    const schema = z.object({ n: z.number() });
    // Home (claim authority) first: a. The producer and the worker each have their own backend.
    const producerBackend = createPocketBaseQueueBackend({
      endpoints: [a.url, b.url],
      auth,
      logger: silentLogger,
    });
    const producer = createQueue({ name: "ride", schema, backend: producerBackend });
    const takeovers: string[] = [];
    const workerBackend = createPocketBaseQueueBackend({
      endpoints: [a.url, b.url],
      auth,
      logger: silentLogger,
      onTakeover: (t) => takeovers.push(`${t.from} -> ${t.url} epoch ${t.epoch}`),
    });
    const workerQueue = createQueue({ name: "ride", schema, backend: workerBackend });
    const runs = new Map<JobId, number>();
    const startWorker = (name: string) =>
      createWorker(
        workerQueue,
        async (job) => {
          runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, 5));
        },
        { concurrency: 4, pollMs: 200, name, logger: silentLogger },
      );
    const worker = startWorker("w1");
    const stopReplicator = new AbortController();
    const replicating = runReplicator([a.url, b.url], replicator, stopReplicator.signal);
    const acked: JobId[] = [];
    let refused = 0;
    let enqueuing = true;
    const enqueuer = (async () => {
      let n = 0;
      while (enqueuing) {
        try {
          acked.push(await producer.add({ n: ++n }));
        } catch {
          refused++; // not acknowledged: its caller retries; not a lost job
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const ran = () => runs.size;
    const moreRun = async (n: number, what: string) => {
      const at = ran();
      await waitFor(() => ran() >= at + n || undefined, { timeoutMs: 30_000, description: what });
    };
    /** What each server holds of a job (for a failure's message). */
    const whereIs = async (id: JobId): Promise<string> => {
      const at = await Promise.all(
        [a, b].map((srv) =>
          srv
            .client()
            .collection("nxs_jobs")
            .getOne(id, { requestKey: null })
            .then(
              (r) =>
                `${r.state} attempt ${r.attempt} epoch ${r.epoch} worker ${r.worker} runAt ${r.runAt} failures ${JSON.stringify(r.failures)}`,
              () => "absent",
            ),
        ),
      );
      return `${id}: a ${at[0]}; b ${at[1]}`;
    };
    const converged = async () => {
      const s = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
      return s.converged || undefined;
    };
    const backupOf = async (server: ProcessPocketBase, name: string) => {
      const run = await cli(["backup", "--server", server.url, "--dir", join(dir, name), "--json"]);
      expect(run.code, run.stderr).toBe(0);
      return run.json<{ path: string; manifest: { serverMs: number } }>();
    };
    const restore = async (server: ProcessPocketBase, path: string) => {
      // Bounded waits: a replicator that does not keep up fails here (exit 9, with what it saw),
      // not as the test's timeout.
      const run = await cli([
        "restore",
        "--server",
        server.url,
        "--file",
        path,
        "--json",
        "--drain-timeout",
        "45",
        "--catch-up-timeout",
        "45",
      ]);
      expect(run.code, run.stderr).toBe(0);
      // A replicator runs: the restore waited for it before and after, then lifted the fence.
      expect(run.json<{ fence: unknown }>().fence).toMatchObject({
        kind: "restored",
        drained: true,
        caughtUp: true,
      });
      expect((await cli(["fence", "--server", server.url, "--json"])).json()).toMatchObject({
        fenced: false,
      });
    };
    try {
      await moreRun(20, "the drain under way");
      // 1. A full backup of the worker's home server: claims, heartbeats and settlements wait.
      const home = await backupOf(a, "a");
      await moreRun(20, "jobs run after the home server's backup");
      // 2. The other server goes back to its backup (it restarts) while the worker drains at home.
      const other = await backupOf(b, "b");
      await moreRun(20, "jobs run between b's backup and its restore");
      await restore(b, other.path);
      await moreRun(20, "jobs run after b's restore");
      // 3. The home server goes back to its backup while the producer keeps enqueuing. `restore`
      // fences it (its writes answer 503: the producer's enqueues go to b), waits for a replicator
      // round that copies what it acknowledged to b, restores, waits for a round that brings it up
      // to date, and lifts the fence. Without the fence an enqueue acknowledged milliseconds
      // before the restart was lost (one run in three). The worker keeps running: its claims wait
      // while its home server answers "fenced" (they do not move to b: a takeover there and one back
      // when the fence lifts opened a window in which a job ran twice), its heartbeats and
      // settlements go to b.
      const enqueuedBefore = acked.length;
      await restore(a, home.path);
      // Enqueues went on during the restore, and a holds every job again.
      expect(acked.length).toBeGreaterThan(enqueuedBefore);
      // Jobs run again after the restore (the servers converge once the producer stops, below:
      // with the worker and the producer both going, the counts never hold still on both at once).
      await moreRun(20, "jobs run after a's restore");
      enqueuing = false;
      await enqueuer;
      try {
        await waitFor(() => acked.every((id) => runs.has(id)) || undefined, {
          timeoutMs: 60_000,
          intervalMs: 200,
          description: `all ${acked.length} acknowledged jobs run`,
        });
      } catch (e) {
        // Say which jobs never ran and what each server holds of them.
        const missing = acked.filter((id) => !runs.has(id)).slice(0, 10);
        const held = await Promise.all(missing.map(whereIs));
        throw new Error(
          `${acked.length - runs.size} of ${acked.length} acknowledged jobs never ran: ${held.join(" | ")}`,
          { cause: e },
        );
      }
      await waitFor(converged, { timeoutMs: 60_000, intervalMs: 300, description: "converged at the end" });
      const twice = [...runs].filter(([, n]) => n > 1);
      if (twice.length > 0) {
        const held = await Promise.all(twice.slice(0, 5).map(([id]) => whereIs(id)));
        console.info(
          `[queue ride-through] ran twice: ${held.join(" | ")}; takeovers ${JSON.stringify(takeovers)}`,
        );
      }
      expect(twice).toEqual([]);
      // Claims never left the home server (they waited through its fence).
      expect(takeovers).toEqual([]);
      expect([...runs.keys()].sort()).toEqual([...acked].sort());
      const s = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
      expect(s.servers.map((x) => x.queue?.completed)).toEqual([acked.length, acked.length]);
      console.info(
        `[queue ride-through] ${acked.length} jobs acknowledged and run once, ${refused} enqueue(s) refused; full backup of the home server: serverMs ${home.manifest.serverMs}`,
      );
    } finally {
      enqueuing = false;
      await enqueuer;
      await worker.close();
      await workerQueue.close();
      await producer.close();
      await workerBackend.close();
      await producerBackend.close();
      stopReplicator.abort();
      await replicating;
    }
  });
});
