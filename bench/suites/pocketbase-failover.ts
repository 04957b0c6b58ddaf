/**
 * (d) of `npm run bench -- pocketbase`: a primary and a secondary server, a replicator between them
 * (defaults), and one writer gateway whose transport lists [primary, secondary] with the default
 * failover settings. Each run SIGKILLs the primary during a steady stream of writes.
 */
import { performance } from "node:perf_hooks";
import { createReplicator, type Replicator } from "@nxs-sync/pocketbase";
import { type PocketBaseServer, startCluster } from "@nxs-sync/testing";
import { type BenchNode, prepareServer, recordId, trigger, until } from "./pocketbase-env.js";
import { gateway } from "./pocketbase-nxs.js";

/** Interval between writes of the steady stream (ms). */
export const WRITE_EVERY_MS = 10;
/** Acknowledged writes before the kill. */
export const WARMUP_ACKS = 50;
/** Writes go on this long after the first post-kill acknowledgement. */
export const AFTER_MS = 500;

export interface FailoverResult {
  /** SIGKILL sent → first acknowledgement of a change made after the primary was dead. */
  readonly rtoMs: number;
  /** Acknowledged changes missing on either server once the primary is back and the replicator converged. */
  readonly lost: number;
  /** Acknowledged changes (before the kill) the secondary did not hold when writes resumed there. */
  readonly behind: number;
  /** Acknowledged changes in the run. */
  readonly acked: number;
}

export interface FailoverRig {
  readonly servers: readonly PocketBaseServer[];
  run(): Promise<FailoverResult>;
  close(): Promise<void>;
}

async function seqsOn(server: PocketBaseServer, docId: string, origin: string): Promise<Set<number>> {
  const pb = server.client();
  const rows = await pb.collection("nxs_changes").getFullList({
    filter: pb.filter("doc = {:d} && origin = {:o}", { d: docId, o: origin }),
    fields: "seq,last",
    batch: 1000,
  });
  // A record is a pack of the changes seq..last.
  const seqs = new Set<number>();
  for (const r of rows) for (let q = Number(r.seq); q <= Number(r.last); q++) seqs.add(q);
  return seqs;
}

const missing = (acked: ReadonlySet<number>, have: ReadonlySet<number>): number => {
  let n = 0;
  for (const s of acked) if (!have.has(s)) n++;
  return n;
};

export async function startFailoverRig(
  nodes: readonly BenchNode[],
  repl: BenchNode,
  writerNode: BenchNode,
): Promise<FailoverRig> {
  const cluster = await startCluster({ nodes: 2, name: "bench-fo" });
  const primary = cluster.primary;
  const second = cluster.secondaries[0];
  if (second === undefined) throw new Error("bench: the cluster has no secondary");
  const secondary: PocketBaseServer = second;
  let replicator: Replicator | undefined;
  try {
    for (const s of cluster.nodes) await prepareServer(s, nodes);
    replicator = createReplicator({
      servers: [
        { url: primary.url, auth: repl.auth },
        { url: secondary.url, auth: repl.auth },
      ],
    });
    await replicator.start();
  } catch (e) {
    await replicator?.stop().catch(() => undefined);
    await cluster.stop();
    throw e;
  }
  let runNo = 0;

  async function run(): Promise<FailoverResult> {
    if (primary.stopped) await primary.restart();
    const docId = `fo-${recordId()}`;
    const W = await gateway({
      endpoints: [primary.url, secondary.url],
      node: writerNode,
      instance: `f${++runNo}`,
      docId,
    });
    const acked = new Set<number>();
    let boundary = Number.POSITIVE_INFINITY;
    const warm = trigger(() => acked.size >= WARMUP_ACKS, 30_000, `${WARMUP_ACKS} acknowledged writes`);
    const after = trigger(
      () => [...acked].some((s) => s > boundary),
      60_000,
      "a write acknowledged by the secondary",
    );
    W.onPushed((cs) => {
      for (const c of cs) acked.add(c.seq);
      warm.check();
      after.check();
    });
    let lastSeq = 0;
    let writing = true;
    const writer = (async () => {
      for (let i = 1; writing; i++) {
        const c = W.doc.set(["items", `k${i % 100}`], i);
        if (c) lastSeq = c.seq;
        await new Promise((r) => setTimeout(r, WRITE_EVERY_MS));
      }
    })();
    try {
      await W.replica.synced();
      await warm.promise;
      const t0 = performance.now();
      await primary.kill();
      boundary = lastSeq;
      const ackedAtKill = new Set(acked);
      after.check();
      const t1 = await after.promise;
      const onSecondary = await seqsOn(secondary, docId, W.origin);
      const behind = missing(ackedAtKill, onSecondary);
      await new Promise((r) => setTimeout(r, AFTER_MS));
      writing = false;
      await writer;
      await W.replica.flush();
      await primary.restart();
      // Converged: both servers hold every acknowledged change (the replicator copies both ways).
      let lost = Number.NaN;
      await until(
        async () => {
          const [p, s] = await Promise.all([
            seqsOn(primary, docId, W.origin),
            seqsOn(secondary, docId, W.origin),
          ]);
          lost = Math.max(missing(acked, p), missing(acked, s));
          return lost === 0;
        },
        60_000,
        "both servers holding every acknowledged change",
      ).catch((e: unknown) => {
        console.error(
          `  failover run ${runNo}: not converged after 60 s (${lost} acknowledged changes missing)`,
          e,
        );
      });
      return { rtoMs: t1 - t0, lost, behind, acked: acked.size };
    } finally {
      writing = false;
      await writer;
      await W.stop();
    }
  }

  return {
    servers: cluster.nodes,
    run,
    async close() {
      await replicator?.stop();
    },
  };
}
