/**
 * `npm run bench -- nats`: nxs-sync over NATS JetStream (nats-server v2.15.3, `sync_interval:
 * always`) against raw JetStream publish-to-consume (peer `jetstream`) and against nxs-sync over
 * PocketBase (peer `pocketbase`), in the same run (issue 24, item 5): propagation latency p50/p99
 * (interleaved writes), replicated changes/s, and on a 3-node cluster the write pause of a gateway
 * when the stream leader is killed and when it restarts in lame-duck mode (nxs only), with the
 * acknowledged changes lost (goal 0).
 */
import { performance } from "node:perf_hooks";
import { DeliverPolicy, type JetStreamClient, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { createDoc, createReplica, type Doc, type Replica, silentLogger } from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { createNatsTransport, type NatsTransportOptions } from "@nxs-sync/nats";
import { type NatsCluster, type NatsServer, startNatsCluster, startNatsServer } from "@nxs-sync/testing";
import { z } from "zod";
import { quantile } from "../lib/stats.js";
import type { BenchCase, BenchSuite } from "../lib/types.js";
import { createStash, makeNode, recordId, startBenchServer, trigger } from "./pocketbase-env.js";
import { KEYS, nxsLatencyProbe, nxsThroughput, timeThroughput } from "./pocketbase-nxs.js";

const schema = z.object({ items: z.record(z.string(), z.number()) });
type State = z.output<typeof schema>;

interface NatsGateway {
  readonly doc: Doc<State>;
  readonly replica: Replica<Doc<State>>;
  readonly origin: string;
  onApplied(fn: () => void): void;
  onPushed(fn: (seqs: readonly number[]) => void): void;
  stop(): Promise<void>;
}

/** A gateway over the NATS transport with its defaults: memory storage, real timers. */
async function natsGateway(
  servers: readonly string[],
  docId: string,
  origin: string,
  extra: Partial<NatsTransportOptions> = {},
): Promise<NatsGateway> {
  const doc: Doc<State> = createDoc({
    schema,
    docId,
    replicaId: origin,
    clock: Date.now,
    initial: { items: {} },
  });
  const replica = createReplica({
    doc,
    transport: createNatsTransport({ servers: [...servers], docId, origin, logger: silentLogger, ...extra }),
    storage: createMemoryStorage(),
    scheduler: createTimerScheduler(),
    logger: silentLogger,
  });
  let applied: () => void = () => {};
  let pushed: (seqs: readonly number[]) => void = () => {};
  replica.on("applied", () => applied());
  replica.on("resync", () => applied());
  replica.on("pushed", (e) => pushed(e.changes.map((c) => c.seq)));
  await replica.start();
  await replica.synced();
  return {
    doc,
    replica,
    origin,
    onApplied: (fn) => {
      applied = fn;
    },
    onPushed: (fn) => {
      pushed = fn;
    },
    stop: () => replica.stop(),
  };
}

const versionOf = (g: NatsGateway, origin: string) => g.doc.version()[origin] ?? 0;

async function natsPair(servers: readonly string[], extra: Partial<NatsTransportOptions> = {}) {
  const docId = `d-${recordId()}`;
  const A = await natsGateway(servers, docId, "gw-a", extra);
  const B = await natsGateway(servers, docId, "gw-b", extra);
  return { A, B, close: () => Promise.all([A.stop(), B.stop()]) };
}

/** (a) nxs over NATS: one `doc.set` on A, timed until B applied it. */
async function natsLatencyProbe(url: string) {
  const { A, B, close } = await natsPair([url]);
  let i = 0;
  return {
    async write(): Promise<number> {
      i++;
      const t0 = performance.now();
      const c = A.doc.set(["items", `k${i % KEYS}`], i);
      if (c === undefined) throw new Error("bench: doc.set made no change");
      const t = trigger(() => versionOf(B, A.origin) >= c.seq, 10_000, `B applying seq ${c.seq}`);
      B.onApplied(t.check);
      return (await t.promise) - t0;
    },
    close,
  };
}

/**
 * (a) raw JetStream: one publish (awaiting its ack, as a push does) of a message of the same size
 * class to a stream, timed until an ordered consumer of another connection receives it.
 */
async function jetstreamLatencyProbe(url: string) {
  const pub = await connect({ servers: url });
  const sub = await connect({ servers: url });
  const stream = `RAW_${recordId().toUpperCase()}`;
  const jsm = await jetstreamManager(pub);
  await jsm.streams.add({ name: stream, subjects: [`raw.${stream}.>`] });
  const js = jetstream(pub);
  let waiting: ((t: number) => void) | undefined;
  const consumer = await jetstream(sub).consumers.get(stream, { deliver_policy: DeliverPolicy.New });
  const messages = await consumer.consume({ callback: () => waiting?.(performance.now()) });
  let i = 0;
  return {
    async write(): Promise<number> {
      i++;
      const t0 = performance.now();
      const got = new Promise<number>((r) => {
        waiting = r;
      });
      await js.publish(`raw.${stream}.a`, JSON.stringify({ path: ["items", `k${i % KEYS}`], value: i }), {
        msgID: `a-${i}`,
      });
      return (await got) - t0;
    },
    async close() {
      messages.stop();
      await jsm.streams.delete(stream);
      await Promise.all([pub.drain(), sub.drain()]);
    },
  };
}

/** (b) nxs over NATS: `count` changes on A, timed until A's outbox is acknowledged and B applied all. */
async function natsThroughput(url: string, count: number): Promise<number> {
  const { A, B, close } = await natsPair([url]);
  try {
    return await timeThroughput(A, B, count);
  } finally {
    await close();
  }
}

/** (b) raw JetStream: `count` pipelined publishes (256 in flight), until a consumer received all. */
async function jetstreamThroughput(url: string, count: number): Promise<number> {
  const pub = await connect({ servers: url });
  const sub = await connect({ servers: url });
  const stream = `RAW_${recordId().toUpperCase()}`;
  const jsm = await jetstreamManager(pub);
  await jsm.streams.add({ name: stream, subjects: [`raw.${stream}.>`] });
  try {
    const js: JetStreamClient = jetstream(pub);
    let received = 0;
    let done: (t: number) => void = () => {};
    const all = new Promise<number>((r) => {
      done = r;
    });
    const consumer = await jetstream(sub).consumers.get(stream, { deliver_policy: DeliverPolicy.New });
    const messages = await consumer.consume({
      callback: () => {
        if (++received === count) done(performance.now());
      },
    });
    const t0 = performance.now();
    const inFlight = new Set<Promise<unknown>>();
    for (let i = 1; i <= count; i++) {
      const p = js.publish(`raw.${stream}.a`, JSON.stringify({ path: ["items", `k${i % KEYS}`], value: i }));
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      if (inFlight.size >= 256) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const t1 = await all;
    messages.stop();
    return (count * 1000) / (t1 - t0);
  } finally {
    await jsm.streams.delete(stream);
    await Promise.all([pub.drain(), sub.drain()]);
  }
}

/**
 * (d) On a 3-node cluster: a gateway writes one change every 10 ms; `fault` hits the stream leader;
 * the result is the longest gap between two acknowledgements around it, and the acknowledged
 * changes a second gateway lacks after the writes stop (must be 0).
 */
async function writePause(
  cluster: NatsCluster,
  fault: (leader: NatsServer) => Promise<void>,
): Promise<{ pauseMs: number; lost: number; acked: number }> {
  const { A, B, close } = await natsPair(cluster.urls, { replicas: 3, requestTimeoutMs: 2000 });
  try {
    let lastAck = performance.now();
    let pauseMs = 0;
    let acked = 0;
    A.onPushed((seqs) => {
      const now = performance.now();
      pauseMs = Math.max(pauseMs, now - lastAck);
      lastAck = now;
      acked = Math.max(acked, ...seqs);
    });
    let i = 0;
    const writer = setInterval(() => {
      i++;
      A.doc.set(["items", `k${i % KEYS}`], i);
    }, 10);
    await new Promise((r) => setTimeout(r, 1000));
    lastAck = performance.now();
    pauseMs = 0;
    const leaderName = (await cluster.streamLeader("NXS_CHANGES")) as string;
    await fault(cluster.node(leaderName));
    await new Promise((r) => setTimeout(r, 2000));
    clearInterval(writer);
    await A.replica.flush();
    const all = trigger(
      () => versionOf(B, A.origin) >= acked,
      60_000,
      "B applying every acknowledged change",
    );
    B.onApplied(all.check);
    all.check();
    await all.promise.catch(() => undefined);
    return { pauseMs, lost: Math.max(0, acked - versionOf(B, A.origin)), acked };
  } finally {
    await close();
    await cluster.waitHealthy();
  }
}

export const suite: BenchSuite = {
  name: "nats",
  description:
    "nxs-sync over NATS JetStream vs raw JetStream publish-to-consume and vs nxs-sync over PocketBase: latency, throughput, write pause on leader faults",
  defaultRuns: 3,
  async setup({ quick, wants }) {
    const LAT_N = quick ? 50 : 200;
    const THR_N = quick ? 1000 : 5000;
    const server = await startNatsServer({ name: "bench-nats" });
    const gwA = makeNode("gw-a");
    const gwB = makeNode("gw-b");
    const pb = await startBenchServer("bench-nats-pb", [gwA, gwB]);
    let cluster: NatsCluster | undefined;
    const teardown = async () => {
      await cluster?.destroy();
      await server.destroy();
      await pb.destroy().catch(() => undefined);
    };
    const lat = createStash();
    const latencyRun = async () => {
      const probes = {
        nxs: await natsLatencyProbe(server.url),
        jetstream: await jetstreamLatencyProbe(server.url),
        pocketbase: await nxsLatencyProbe(pb.url, gwA, gwB),
      };
      const order = ["nxs", "jetstream", "pocketbase"] as const;
      try {
        const xs: Record<(typeof order)[number], number[]> = { nxs: [], jetstream: [], pocketbase: [] };
        for (let i = 0; i < LAT_N; i++) {
          for (let k = 0; k < order.length; k++) {
            const s = order[(i + k) % order.length] as (typeof order)[number];
            xs[s].push(await probes[s].write());
          }
        }
        for (const s of order) {
          lat.put(`${s}@0.5`, quantile(xs[s], 0.5));
          lat.put(`${s}@0.99`, quantile(xs[s], 0.99));
        }
      } finally {
        await Promise.all(order.map((s) => probes[s].close()));
      }
    };
    const latency = (subject: string, q: number) => async () => {
      if (!lat.has(`${subject}@${q}`)) await latencyRun();
      return lat.take(`${subject}@${q}`);
    };
    const faults = createStash();
    const faultRun = async (kind: "kill" | "lame-duck") => {
      cluster ??= await startNatsCluster();
      const r = await writePause(cluster, (leader) =>
        kind === "kill"
          ? leader.kill().then(async () => {
              await new Promise((res) => setTimeout(res, 3000));
              await leader.start();
            })
          : leader.lameDuckRestart(),
      );
      faults.put(`${kind}-pause`, r.pauseMs);
      faults.put(`${kind}-lost`, r.lost);
      console.error(`  ${kind}: pause ${r.pauseMs.toFixed(0)} ms, ${r.acked} acknowledged, ${r.lost} lost`);
    };
    const fault = (kind: "kill" | "lame-duck", what: "pause" | "lost") => async () => {
      if (!faults.has(`${kind}-${what}`)) await faultRun(kind);
      return faults.take(`${kind}-${what}`);
    };
    const cases: BenchCase[] = [
      {
        metric: "propagation-latency-p50",
        unit: "ms",
        better: "lower",
        subjects: {
          nxs: latency("nxs", 0.5),
          jetstream: latency("jetstream", 0.5),
          pocketbase: latency("pocketbase", 0.5),
        },
        note:
          `${LAT_N} writes per subject per run on one server each, interleaved one by one (the order rotates): ` +
          "nxs = doc.set on gateway A until gateway B applied it (NATS transport); jetstream = a publish awaiting its " +
          "ack until an ordered consumer of another connection got it; pocketbase = the same as nxs over PocketBase. " +
          "Goal: nxs at most 1.5x jetstream.",
      },
      {
        metric: "propagation-latency-p99",
        unit: "ms",
        better: "lower",
        subjects: {
          nxs: latency("nxs", 0.99),
          jetstream: latency("jetstream", 0.99),
          pocketbase: latency("pocketbase", 0.99),
        },
      },
      {
        metric: "replicated-changes-per-s",
        unit: "changes/s",
        better: "higher",
        subjects: {
          nxs: () => natsThroughput(server.url, THR_N),
          jetstream: () => jetstreamThroughput(server.url, THR_N),
          pocketbase: () => nxsThroughput(pb.url, gwA, gwB, THR_N),
        },
        note: `${THR_N} changes from A until B applied all (jetstream: pipelined publishes, 256 in flight, until consumed). Goal: nxs at least pocketbase.`,
      },
    ];
    if (wants("leader-kill-write-pause") || wants("leader-kill-lost")) {
      cases.push(
        {
          metric: "leader-kill-write-pause",
          unit: "ms",
          better: "lower",
          subjects: { nxs: fault("kill", "pause") },
          note: "3-node cluster, sync_interval always, R3: a gateway writes every 10 ms; SIGKILL of the stream leader (restarted 3 s later); the longest gap between two acks.",
        },
        {
          metric: "leader-kill-lost",
          unit: "changes",
          better: "lower",
          subjects: { nxs: fault("kill", "lost") },
        },
      );
    }
    if (!quick && (wants("lame-duck-write-pause") || wants("lame-duck-lost"))) {
      cases.push(
        {
          metric: "lame-duck-write-pause",
          unit: "ms",
          better: "lower",
          subjects: { nxs: fault("lame-duck", "pause") },
          note: "The stream leader restarted in lame-duck mode (SIGUSR2: it hands its leaderships over, then exits after lame_duck_duration 30 s); the longest gap between two acks.",
        },
        {
          metric: "lame-duck-lost",
          unit: "changes",
          better: "lower",
          subjects: { nxs: fault("lame-duck", "lost") },
        },
      );
    }
    return { cases, teardown, machine: { natsServer: "v2.15.3" } };
  },
};
