/**
 * A/B bench of two PocketBase transport implementations, interleaved in one run (issue 15, item 2):
 * push latency (p50 of sequential one-change pushes on one server) and failover RTO (a writer
 * gateway on [primary, secondary], the primary SIGKILLed mid-stream; kill → first acknowledgement
 * of a change made after it). Each alternation runs both subjects, in alternating order.
 *
 * Usage: `node --import tsx bench/transport-ab.ts [alternations] [pushes]`. The second subject is
 * the module named by `NXS_AB_TRANSPORT` (a path exporting `createPocketBaseTransport`, e.g. a
 * scratch copy of an earlier transport); without it both subjects are the current transport.
 */
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { createDoc, createReplica, type Doc } from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { createPocketBaseTransport, NodeRole, type PocketBaseTransportOptions } from "@nxs-sync/pocketbase";
import { startCluster, startPocketBase } from "@nxs-sync/testing";
import { z } from "zod";
import { median, quantile } from "./lib/stats.js";
import { type BenchNode, makeNode, prepareServer, recordId, trigger } from "./suites/pocketbase-env.js";

type Factory = (o: PocketBaseTransportOptions) => ReturnType<typeof createPocketBaseTransport>;

const schema = z.object({ items: z.record(z.string(), z.number()) });
type State = z.output<typeof schema>;

const alternations = Number(process.argv[2] ?? 4);
const pushes = Number(process.argv[3] ?? 300);

function newDoc(docId: string, origin: string): Doc<State> {
  return createDoc({ schema, docId, replicaId: origin, clock: Date.now, initial: { items: {} } });
}

/** Sequential one-change pushes of a connected transport: their latencies in ms. */
async function pushLatencies(create: Factory, url: string, node: BenchNode, n: number): Promise<number[]> {
  const docId = `lat-${recordId()}`;
  const origin = `${node.id}.${recordId().slice(0, 6)}`;
  const doc = newDoc(docId, origin);
  const t = create({ endpoints: [url], auth: node.auth, docId, origin });
  await t.connect();
  const out: number[] = [];
  try {
    for (let i = 0; i < n + 20; i++) {
      const c = doc.set(["items", `k${i % 100}`], i);
      if (c === undefined) throw new Error("bench: no change");
      const t0 = performance.now();
      const ack = await t.push([c]);
      const ms = performance.now() - t0;
      if (ack.acked !== 1) throw new Error("bench: push not acknowledged");
      if (i >= 20) out.push(ms); // the first 20 warm the connection and the lease
    }
  } finally {
    await t.close();
  }
  return out;
}

/** One failover run: kill → first acknowledgement of a change made after the kill, in ms. */
async function failoverRto(
  create: Factory,
  cluster: Awaited<ReturnType<typeof startCluster>>,
  node: BenchNode,
): Promise<number> {
  const primary = cluster.primary;
  const secondary = cluster.secondaries[0]!;
  if (primary.stopped) await primary.restart();
  const docId = `fo-${recordId()}`;
  const origin = `${node.id}.${recordId().slice(0, 6)}`;
  const doc = newDoc(docId, origin);
  const transport = create({ endpoints: [primary.url, secondary.url], auth: node.auth, docId, origin });
  const replica = createReplica({
    doc,
    transport,
    storage: createMemoryStorage(),
    scheduler: createTimerScheduler(),
  });
  const acked = new Set<number>();
  let boundary = Number.POSITIVE_INFINITY;
  const warm = trigger(() => acked.size >= 50, 30_000, "50 acknowledged writes");
  const after = trigger(
    () => [...acked].some((s) => s > boundary),
    60_000,
    "a write acknowledged after the kill",
  );
  replica.on("pushed", (e) => {
    for (const c of e.changes) acked.add(c.seq);
    warm.check();
    after.check();
  });
  await replica.start();
  let lastSeq = 0;
  let writing = true;
  const writer = (async () => {
    for (let i = 1; writing; i++) {
      const c = doc.set(["items", `k${i % 100}`], i);
      if (c) lastSeq = c.seq;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  try {
    await replica.synced();
    await warm.promise;
    const t0 = performance.now();
    await primary.kill();
    boundary = lastSeq;
    after.check();
    return (await after.promise) - t0;
  } finally {
    writing = false;
    await writer;
    await replica.stop();
  }
}

async function main(): Promise<void> {
  const other = process.env.NXS_AB_TRANSPORT;
  const b: Factory = other
    ? ((await import(pathToFileURL(other).href)) as { createPocketBaseTransport: Factory })
        .createPocketBaseTransport
    : createPocketBaseTransport;
  const subjects: [string, Factory][] = [
    ["new", createPocketBaseTransport],
    [other ? "old" : "new'", b],
  ];
  const node = makeNode("gw-ab");
  const nodes = [node, makeNode("repl-ab", NodeRole.Replicator)];
  const one = await startPocketBase({ name: "bench-ab-one" });
  const cluster = await startCluster({ nodes: 2, name: "bench-ab-fo" });
  const names = subjects.map(([n]) => n);
  const series = () => Object.fromEntries(names.map((n) => [n, [] as number[]]));
  const p50 = series();
  const p99 = series();
  const rto = series();
  try {
    await prepareServer(one, nodes);
    for (const s of cluster.nodes) await prepareServer(s, nodes);
    for (let a = 0; a < alternations; a++) {
      const order = a % 2 === 0 ? subjects : [...subjects].reverse();
      for (const [name, create] of order) {
        const lat = await pushLatencies(create, one.url, node, pushes);
        p50[name]!.push(median(lat));
        p99[name]!.push(quantile(lat, 0.99));
        const r = await failoverRto(create, cluster, node);
        rto[name]!.push(r);
        console.log(
          `alternation ${a + 1} ${name}: push p50 ${median(lat).toFixed(2)} ms, p99 ${quantile(lat, 0.99).toFixed(2)} ms; failover RTO ${r.toFixed(0)} ms`,
        );
      }
    }
  } finally {
    await cluster.stop();
    await one.destroy().catch(() => undefined);
  }
  const [x, y] = subjects.map(([n]) => n) as [string, string];
  const ratio = (m: Record<string, number[]>) => median(m[x]!) / median(m[y]!);
  console.log("\nmedians over the alternations:");
  for (const [n] of subjects) {
    console.log(
      `  ${n}: push p50 ${median(p50[n]!).toFixed(2)} ms, p99 ${median(p99[n]!).toFixed(2)} ms; failover RTO ${median(rto[n]!).toFixed(0)} ms (runs: ${rto[n]!.map((v) => v.toFixed(0)).join(", ")})`,
    );
  }
  console.log(`  ${x}/${y}: push p50 ${ratio(p50).toFixed(3)}, failover RTO ${ratio(rto).toFixed(3)}`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
