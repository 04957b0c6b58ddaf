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
 * its home server with the producer paused and the worker stopped from before it (status
 * converged: every acknowledged job on both servers) until status converges again (jobs per state
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

  it("no acknowledged enqueue lost, no job run twice", async () => {
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
    const workerBackend = createPocketBaseQueueBackend({
      endpoints: [a.url, b.url],
      auth,
      logger: silentLogger,
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
    let worker = startWorker("w1");
    const stopReplicator = new AbortController();
    const replicating = runReplicator([a.url, b.url], replicator, stopReplicator.signal);
    const acked: JobId[] = [];
    let refused = 0;
    let enqueuing = true;
    /** While set, the producer holds its next enqueue (the home server's restore, below). */
    let paused: Promise<void> | undefined;
    let resume = () => {};
    const enqueuer = (async () => {
      let n = 0;
      while (enqueuing) {
        await paused;
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
      const run = await cli(["restore", "--server", server.url, "--file", path]);
      expect(run.code, run.stderr).toBe(0);
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
      // 3. The home server goes back to its backup with its writers stopped (the runbook): a
      // restore discards what the server acknowledged since its last copy reached the peer (an
      // enqueue acknowledged milliseconds before the restart was lost in one run of three without
      // this pause), and the jobs completed since are waiting there again until the replicator
      // brings their completion back. Producer and worker stop, status converges (every
      // acknowledged job on both servers), the restore runs, and they start again once status
      // converges again.
      await worker.close();
      paused = new Promise<void>((r) => {
        resume = r;
      });
      await waitFor(converged, {
        timeoutMs: 60_000,
        intervalMs: 300,
        description: "converged before a's restore",
      });
      await restore(a, home.path);
      await waitFor(converged, {
        timeoutMs: 60_000,
        intervalMs: 300,
        description: "converged after a's restore",
      });
      paused = undefined;
      resume();
      worker = startWorker("w2");
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
        const held = await Promise.all(
          missing.map(async (id) => {
            const at = await Promise.all(
              [a, b].map((srv) =>
                srv
                  .client()
                  .collection("nxs_jobs")
                  .getOne(id, { requestKey: null })
                  .then(
                    (r) =>
                      `${r.state} attempt ${r.attempt} epoch ${r.epoch} worker ${r.worker} runAt ${r.runAt}`,
                    () => "absent",
                  ),
              ),
            );
            return `${id}: a ${at[0]}; b ${at[1]}`;
          }),
        );
        throw new Error(
          `${acked.length - runs.size} of ${acked.length} acknowledged jobs never ran: ${held.join(" | ")}`,
          { cause: e },
        );
      }
      await waitFor(converged, { timeoutMs: 60_000, intervalMs: 300, description: "converged at the end" });
      expect([...runs].filter(([, n]) => n > 1)).toEqual([]);
      expect([...runs.keys()].sort()).toEqual([...acked].sort());
      const s = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
      expect(s.servers.map((x) => x.queue?.completed)).toEqual([acked.length, acked.length]);
      console.info(
        `[queue ride-through] ${acked.length} jobs acknowledged and run once, ${refused} enqueue(s) refused; full backup of the home server: serverMs ${home.manifest.serverMs}`,
      );
    } finally {
      enqueuing = false;
      paused = undefined;
      resume();
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
