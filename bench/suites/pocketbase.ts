/**
 * `npm run bench -- pocketbase`: nxs-sync over real PocketBase v0.39.11 servers against the raw
 * PocketBase JS SDK (peer `raw`) in the same run (issue 4, item 7):
 * (a) propagation latency p50/p99, (b) sustained replicated changes/s, (c) catch-up of a replica
 * that missed many changes (time and bytes on the wire), (d) failover RTO and RPO (nxs only).
 */
import { cp, rm } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { NodeRole } from "@nxs-sync/pocketbase";
import {
  ensurePocketBaseBinary,
  type PocketBaseServer,
  startPocketBase,
  startTcpProxy,
  type TcpProxy,
} from "@nxs-sync/testing";
import { quantile } from "../lib/stats.js";
import type { BenchCase, BenchSuite } from "../lib/types.js";
import { createStash, makeNode, RAW_COLLECTION, recordId, startBenchServer } from "./pocketbase-env.js";
import { type FailoverRig, startFailoverRig, WARMUP_ACKS, WRITE_EVERY_MS } from "./pocketbase-failover.js";
import {
  compactFilled,
  fillChanges,
  KEYS,
  nxsCatchUp,
  nxsLatencyProbe,
  nxsThroughput,
} from "./pocketbase-nxs.js";
import { fillRaw, rawLatencyProbe, rawReplayAll, rawThroughput } from "./pocketbase-raw.js";

const RAW_CONCURRENCY = 1;

export const suite: BenchSuite = {
  name: "pocketbase",
  description: "nxs-sync over PocketBase vs the raw PocketBase SDK: latency, throughput, catch-up, failover",
  defaultRuns: 3,
  async setup({ quick, wants }) {
    const wantsCatchUp = wants("catch-up-time") || wants("catch-up-bytes");
    const LAT_N = quick ? 50 : 200;
    const THR_N = quick ? 500 : 2000;
    const CATCH_N = quick ? 10_000 : 100_000;
    const TAIL = CATCH_N / 100;

    const gwA = makeNode("gw-a");
    const gwB = makeNode("gw-b");
    const gwC = makeNode("gw-c");
    const repl = makeNode("repl", NodeRole.Replicator);
    const nodes = [gwA, gwB, gwC, repl];

    const started: PocketBaseServer[] = [];
    const proxies: TcpProxy[] = [];
    let rig: FailoverRig | undefined;
    const teardown = async () => {
      await rig?.close().catch((e: unknown) => console.error("failover rig close:", e));
      for (const p of proxies) await p.close();
      for (const s of started) await s.destroy().catch(() => undefined);
    };

    try {
      const t0 = Date.now();
      const bin = await ensurePocketBaseBinary();
      const one = await startBenchServer("bench-one", nodes);
      started.push(one);
      const lat = createStash();
      const fo = createStash();

      /**
       * (a) One run: the nxs and raw writes interleaved one by one on one server; stashes each
       * subject's p50 and p99 for the two latency cases.
       */
      const latencyRun = async () => {
        const probes = {
          nxs: await nxsLatencyProbe(one.url, gwA, gwB),
          raw: await rawLatencyProbe(one.url, gwA, gwB),
        };
        try {
          const xs: Record<"nxs" | "raw", number[]> = { nxs: [], raw: [] };
          for (let i = 0; i < LAT_N; i++) {
            for (const s of i % 2 === 0 ? (["nxs", "raw"] as const) : (["raw", "nxs"] as const)) {
              xs[s].push(await probes[s].write());
            }
          }
          for (const s of ["nxs", "raw"] as const) {
            lat.put(`${s}@0.5`, quantile(xs[s], 0.5));
            lat.put(`${s}@0.99`, quantile(xs[s], 0.99));
          }
        } finally {
          await Promise.all([probes.nxs.close(), probes.raw.close()]);
        }
      };
      /** A subject of a latency case: runs the interleaved run when its figure is not stashed yet. */
      const latency = (subject: "nxs" | "raw", q: 0.5 | 0.99) => async () => {
        const key = `${subject}@${q}`;
        if (!lat.has(key)) await latencyRun();
        return lat.take(key);
      };

      const bytes = createStash();

      /**
       * The catch-up cases and their set-up (two filled servers, one compacted): built only when a
       * catch-up case is selected, since filling takes most of the suite's set-up time.
       */
      const catchUpCases = async (): Promise<BenchCase[]> => {
        // Catch-up: one server keeps every change (replay-all, raw), one was compacted (snapshot + tail).
        // The compacted one starts as a copy of the filled one's pb_data (same superuser): filling it
        // again through the API would only double the set-up time.
        const superuser = { email: "bench@nxs-sync.test", password: `pw-${recordId()}-bench` };
        const full = await startBenchServer("bench-catchup-full", nodes, { superuser });
        started.push(full);
        const compacted = await startPocketBase({ name: "bench-catchup-compacted", superuser });
        started.push(compacted);
        console.error(`  set-up: pushing ${CATCH_N} changes for the catch-up cases, then compacting a copy…`);
        const fullDoc = await fillChanges(full.url, gwC, CATCH_N, TAIL);
        const rawDoc = await fillRaw(full.url, gwC, CATCH_N);
        console.error(`  set-up: filled in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        await Promise.all([full.stop(), compacted.stop()]);
        await rm(compacted.dataDir, { recursive: true, force: true });
        await cp(full.dataDir, compacted.dataDir, { recursive: true });
        await Promise.all([full.restart(), compacted.restart()]);
        const compactedDoc = fullDoc;
        const tc = Date.now();
        await compactFilled(compacted.url, gwC, repl, compactedDoc);
        console.error(`  set-up: compacted in ${((Date.now() - tc) / 1000).toFixed(1)} s`);
        const pFull = await startTcpProxy(full.url);
        proxies.push(pFull);
        const pCompacted = await startTcpProxy(compacted.url);
        proxies.push(pCompacted);
        console.error(`  set-up done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

        /** Times `run` until it calls `done()` (in sync; before closing), and stashes the bytes carried until then. */
        const catchUp =
          (subject: string, p: TcpProxy, run: (done: () => void) => Promise<void>) => async () => {
            p.resetBytes();
            let ms = Number.NaN;
            const t = performance.now();
            await run(() => {
              ms = performance.now() - t;
              const b = p.bytes();
              bytes.put(subject, b.up + b.down);
            });
            if (Number.isNaN(ms)) throw new Error(`bench: ${subject} catch-up never finished`);
            return ms;
          };

        return [
          {
            metric: "catch-up-time",
            unit: "ms",
            better: "lower",
            note:
              `a new replica (empty doc, default transport) of a doc it missed ${CATCH_N} changes of (one origin, ${KEYS} keys), ` +
              "from start() until in sync with every change applied; one server, no other traffic, includes login. " +
              `nxs: the server was compacted (snapshot of the first ${CATCH_N - TAIL} changes published, the writer's ack written, ` +
              `compactDoc deleted the ${CATCH_N - TAIL} changes it covers), so the replica's pull gets the snapshot plus the ${TAIL}-change tail; ` +
              `nxs-replay-all: the same replica against a server holding all ${CATCH_N} changes pulls them all (packs of 1,000 changes, 1,000 packs per page); ` +
              `raw: a fresh SDK client reads ${CATCH_N} records of one change each (the same changes, written by the raw SDK) with getFullList (1,000 per page, offset paging)`,
            subjects: {
              nxs: catchUp("nxs", pCompacted, async (done) => {
                const r = await nxsCatchUp(pCompacted.url, gwB, compactedDoc, done);
                if (!r.snapshot)
                  throw new Error("bench self-check failed: no snapshot on the compacted server");
              }),
              "nxs-replay-all": catchUp("nxs-replay-all", pFull, async (done) => {
                const r = await nxsCatchUp(pFull.url, gwB, fullDoc, done);
                if (r.snapshot) throw new Error("bench self-check failed: a snapshot on the full server");
              }),
              raw: catchUp("raw", pFull, async (done) => {
                const n = await rawReplayAll(pFull.url, gwB, RAW_COLLECTION, rawDoc);
                done();
                if (n !== CATCH_N) throw new Error(`bench self-check failed: raw read ${n} records`);
              }),
            },
          },
          {
            metric: "catch-up-bytes",
            unit: "bytes",
            better: "lower",
            note: "bytes on the wire (both directions, HTTP headers included, counted by a TCP proxy) of the catch-up-time runs",
            subjects: {
              nxs: () => bytes.take("nxs"),
              "nxs-replay-all": () => bytes.take("nxs-replay-all"),
              raw: () => bytes.take("raw"),
            },
          },
        ];
      };

      const cases: BenchCase[] = [
        {
          metric: "propagation-latency-p50",
          unit: "ms",
          better: "lower",
          note:
            `${LAT_N} sequential writes per run through one server. nxs: doc.set on gateway A until gateway B has applied it ` +
            "(replica push: one pack of one change, a plain create; SSE; applyRemote; gateway A is subscribed to the doc too, as every gateway is, " +
            "its own origin filtered out); " +
            "raw: SDK create on client A (not subscribed) until client B's SSE callback gets the record. " +
            "Within a run the two subjects' writes alternate one by one (which goes first alternates too), every client " +
            "connected throughout, so both meet the same machine state. p50 of the run's writes; median over runs",
          subjects: { nxs: latency("nxs", 0.5), raw: latency("raw", 0.5) },
        },
        {
          metric: "propagation-latency-p99",
          unit: "ms",
          better: "lower",
          note: "p99 (nearest rank) of the same runs as propagation-latency-p50",
          subjects: { nxs: latency("nxs", 0.99), raw: latency("raw", 0.99) },
        },
        {
          metric: "replicated-changes-per-s",
          unit: "changes/s",
          better: "higher",
          note:
            `${THR_N} changes per run through one server, timed until all are acknowledged and a second client has them. ` +
            "nxs: gateway A makes them back to back (doc.set, yielding every 100), the replica pushes with its defaults " +
            "(up to 100 changes per push, sent as one pack record, one push in flight) until gateway B applied all; " +
            `raw: one SDK create per record, ${RAW_CONCURRENCY === 1 ? "sequential (one request in flight, like the nxs pusher)" : `${RAW_CONCURRENCY} in flight`}, until client B's SSE got all`,
          subjects: {
            nxs: () => nxsThroughput(one.url, gwA, gwB, THR_N),
            raw: () => rawThroughput(one.url, gwA, gwB, THR_N, RAW_CONCURRENCY),
          },
        },
        ...(wantsCatchUp ? await catchUpCases() : []),
        {
          metric: "failover-rto",
          unit: "ms",
          better: "lower",
          note:
            "primary + secondary server, replicator between them (defaults); one writer gateway, transport endpoints " +
            `[primary, secondary] with the default failover settings, writing one change every ${WRITE_EVERY_MS} ms. ` +
            `After ${WARMUP_ACKS} acknowledged writes the primary gets SIGKILL (one kill per run; the primary restarts after each); RTO = SIGKILL sent until the first ` +
            "acknowledgement of a change made after the primary was dead (so committed by the secondary). Raw has no failover",
          subjects: {
            nxs: async () => {
              if (rig === undefined) {
                // Started on first use, so its replicator does not run during the other cases.
                rig = await startFailoverRig(nodes, repl, gwA);
                started.push(...rig.servers);
              }
              const r = await rig.run();
              console.error(
                `    failover run: rto ${r.rtoMs.toFixed(0)} ms, lost ${r.lost}, behind ${r.behind}, acked ${r.acked}`,
              );
              fo.put("lost", r.lost);
              fo.put("behind", r.behind);
              return r.rtoMs;
            },
          },
        },
        {
          metric: "failover-rpo",
          unit: "changes",
          better: "lower",
          note:
            "acknowledged changes lost, per failover run: after the run the primary restarts and the replicator converges " +
            "(bounded at 60 s); lost = acknowledged changes missing on either server. Samples hold every run",
          subjects: { nxs: () => fo.take("lost") },
        },
        {
          metric: "failover-acked-behind",
          unit: "changes",
          better: "lower",
          note:
            "changes acknowledged by the primary before the kill that the secondary did not hold yet when writes resumed " +
            "there (asynchronous replication, minAcks 1: unavailable until the primary returns, not lost)",
          subjects: { nxs: () => fo.take("behind") },
        },
      ];
      // NXS_BENCH_ONLY=metric,metric runs a subset (development aid; the set-up is the same).
      const only = process.env.NXS_BENCH_ONLY?.split(",").filter(Boolean);
      return {
        cases: only ? cases.filter((c) => only.some((o) => c.metric.startsWith(o))) : cases,
        teardown,
        machine: {
          pocketbase: bin.version,
          catchUpChanges: CATCH_N,
          latencyWrites: LAT_N,
          throughputChanges: THR_N,
        },
      };
    } catch (e) {
      await teardown();
      throw e;
    }
  },
};
