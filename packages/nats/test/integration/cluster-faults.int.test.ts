/**
 * The fault test of the NATS transport: a 3-node JetStream cluster (`sync_interval: always`, R3
 * streams) and three gateway processes writing through it while the stream leader is killed, a
 * follower is paused, a node is cut off, and each comes back. After the heal: no acknowledged change
 * lost (checked against the chaos model on every gateway and on each node's view of the stream),
 * equal state hashes everywhere, time to converge printed. `NXS_NATS_FAULT_ROUNDS` (default 1)
 * repeats the schedule for the long runs (scripts/test-long.sh).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDoc, createReplica, isNxsError, silentLogger } from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import {
  type ChaosDocState,
  type ChaosGateway,
  chaosInitialState,
  createChaosModel,
  createChaosWorkload,
  createEventTally,
  hashChaosState,
  type NatsCluster,
  startChaosGateway,
  startNatsCluster,
  waitFor,
} from "@nxs-sync/testing";
import { afterAll, expect, it } from "vitest";
import { chaosSchema } from "../../../pocketbase/test/integration/chaos-schema.js";
import { createNatsTransport } from "../../src/index.js";
import type { NatsChaosGatewayConfig } from "./chaos-gateway.js";

const ROUNDS = Number(process.env.NXS_NATS_FAULT_ROUNDS ?? 1);
const GATEWAYS = ["g1", "g2", "g3"] as const;
const STREAM = "NXS_CHANGES";
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const log = (line: string) => process.stderr.write(`[nats-faults] ${line}\n`);

let cluster: NatsCluster | undefined;
const gateways: ChaosGateway[] = [];
const storageRoot = mkdtempSync(join(tmpdir(), "nxs-nats-faults-"));
let passed = false;
afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop(5000).catch(() => undefined)));
  await cluster?.destroy();
  if (passed) rmSync(storageRoot, { recursive: true, force: true });
  else log(`kept the gateways' storage in ${storageRoot}`);
});

/** The doc as one node serves it: a fresh replica that pulls through that node only. */
async function viewOf(c: NatsCluster, i: number, docId: string): Promise<ChaosDocState> {
  const replicaId = `observer-${i}`;
  const doc = createDoc({
    schema: chaosSchema([...GATEWAYS]),
    docId,
    replicaId,
    clock: Date.now,
    initial: chaosInitialState([...GATEWAYS]),
  });
  const replica = createReplica({
    doc,
    transport: createNatsTransport({ servers: c.urls[i], docId, origin: replicaId, logger: silentLogger }),
    storage: createMemoryStorage(),
    scheduler: createTimerScheduler(),
    logger: silentLogger,
  });
  try {
    await replica.start();
    await replica.synced();
    return doc.get() as ChaosDocState;
  } finally {
    await replica.stop();
  }
}

it("loses no acknowledged change when the stream leader is killed, a follower paused and a node cut off", async () => {
  const started = performance.now();
  const t = () => `${((performance.now() - started) / 1000).toFixed(1)}s`;
  const c = await startNatsCluster({ syncInterval: "always" });
  cluster = c;
  log(`${t()} cluster up`);
  const docId = "faults";
  // The streams, R3, before any gateway (each would create them when missing).
  // (A just-started cluster may refuse to place an R3 stream for a moment: retryable, retried.)
  await waitFor(
    async () => {
      const setup = createNatsTransport({ servers: [...c.urls], docId, replicas: 3, logger: silentLogger });
      try {
        await setup.connect();
        return true;
      } catch (error) {
        if (!isNxsError(error) || !error.retryable) throw error;
        return false;
      } finally {
        await setup.close();
      }
    },
    { timeoutMs: 30_000, intervalMs: 250, description: "the R3 streams created" },
  );

  const model = createChaosModel([...GATEWAYS]);
  const events = createEventTally();
  const workerScript = join(import.meta.dirname, "chaos-gateway.ts");
  gateways.push(
    ...(await Promise.all(
      GATEWAYS.map((name) =>
        startChaosGateway({
          name,
          script: workerScript,
          cwd: join(import.meta.dirname, "../../../.."),
          storageRoot,
          observer: model,
          onEvent: (g, e) => events.add(`${g} ${e.kind} ${e.code}`, e.detail),
          config: (storageDir): NatsChaosGatewayConfig => ({
            name,
            gateways: [...GATEWAYS],
            docId,
            replicaId: `gw-${name}`,
            storageDir,
            pollMs: 1000,
            servers: [...c.urls],
          }),
        }),
      ),
    )),
  );
  log(`${t()} gateways up`);
  const workloads = gateways.map((g) => ({ g, ops: createChaosWorkload(24, g.name) }));
  const writer = setInterval(() => {
    for (const { g, ops } of workloads) if (g.alive) g.write(ops.next());
  }, 50);

  const leaderNow = async (): Promise<string> => {
    for (let i = 0; i < 200; i++) {
      const leader = await c.streamLeader(STREAM);
      if (leader) return leader;
      await sleep(100);
    }
    throw new Error(`${STREAM} has no leader`);
  };
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      await sleep(1000);
      const leader = await leaderNow();
      log(`${t()} round ${round}: kill the stream leader ${leader}`);
      await c.node(leader).kill();
      // About the time the other two take to elect a new leader (~5 s measured); whichever leads
      // when it comes back, its writes paused and resumed.
      await sleep(4500);
      log(`${t()} restart ${leader} (leader reported now: ${await c.streamLeader(STREAM)})`);
      await c.node(leader).start();
      await sleep(1000);
      const follower = c.nodes.find((n) => n.name !== leader && n.running)?.name as string;
      const next = await leaderNow();
      const paused = next === follower ? (c.nodes.find((n) => n.name !== next)?.name as string) : follower;
      log(`${t()} pause follower ${paused} (leader ${next})`);
      c.node(paused).pause();
      await sleep(2000);
      c.node(paused).resume();
      log(`${t()} resume ${paused}`);
      await sleep(1000);
      const cut = await leaderNow();
      log(`${t()} cut off ${cut} (the stream leader)`);
      c.partition(cut);
      await sleep(3000);
      c.heal(cut);
      log(`${t()} heal ${cut}`);
    }
    await sleep(1000);
  } finally {
    clearInterval(writer);
  }
  c.heal();
  const healedAt = performance.now();
  log(`${t()} writes stopped, everything healed; waiting for convergence`);

  let hashes: Record<string, string> = {};
  let observed: { name: string; state: ChaosDocState }[] = [];
  let convergeMs: number | undefined;
  for (let i = 0; i < 120 && convergeMs === undefined; i++) {
    try {
      const states = await Promise.all(gateways.map((g) => g.state()));
      observed = states.map((s, j) => ({ name: GATEWAYS[j] as string, state: s.state as ChaosDocState }));
      const first = hashChaosState(states[0]?.state);
      if (i % 8 === 0) {
        const line = states.map(
          (s, j) => `${GATEWAYS[j]} ${s.replica} ${s.pending} pending ${JSON.stringify(s.gaps)}`,
        );
        log(`${t()} ${line.join("; ")}`);
      }
      if (states.every((s) => s.pending === 0 && hashChaosState(s.state) === first)) {
        const views = await Promise.all(c.nodes.map((_, j) => viewOf(c, j, docId)));
        observed.push(...views.map((state, j) => ({ name: c.nodes[j]?.name as string, state })));
        if (views.every((v) => hashChaosState(v) === first))
          convergeMs = Math.round(performance.now() - healedAt);
      }
    } catch (error) {
      log(`${t()} not converged yet: ${(error as Error).message}`);
    }
    if (convergeMs === undefined) await sleep(250);
  }
  hashes = Object.fromEntries(observed.map((o) => [o.name, hashChaosState(o.state)]));
  const counts = model.counts();
  const lost = observed.flatMap((o) => model.check(o.state).lost.map((l) => `${o.name}: ${l.why}`));
  const phantoms = observed.flatMap((o) => model.check(o.state).phantoms.map((p) => `${o.name}: ${p}`));
  log(
    `${t()} ${counts.written} written, ${counts.acked} acknowledged, ${lost.length} lost, ` +
      `converged ${convergeMs === undefined ? "NOT" : `${convergeMs} ms after the heal`}; hashes ${JSON.stringify(hashes)}; ` +
      `events ${JSON.stringify(events.counts())}`,
  );
  for (const sample of events.samples()) log(`  ${sample}`);
  expect(lost).toEqual([]);
  expect(phantoms).toEqual([]);
  expect(counts.unknownAcks).toBe(0);
  expect(counts.acked).toBeGreaterThan(0);
  expect(convergeMs, `not converged: ${JSON.stringify(hashes)}`).toBeDefined();
  expect(new Set(Object.values(hashes)).size).toBe(1);
  expect(Object.keys(hashes)).toHaveLength(GATEWAYS.length + c.nodes.length);
  passed = true;
});

it("status() shows a lost quorum as degraded, and ok again when it is back", async () => {
  const c = cluster;
  if (c === undefined) throw new Error("the cluster of the first test is not running");
  await c.waitHealthy();
  // Connected to n1 only; n2 and n3 are frozen (SIGSTOP), so n1 alone has no quorum. Frozen, not
  // cut: their routes stay open and the cluster is whole again as soon as they run.
  const t = createNatsTransport({
    servers: c.urls[0] as string,
    docId: "status",
    // No `replicas` (1): the streams and bucket exist with 3, and a transport uses them as they are.
    statusIntervalMs: 100,
    requestTimeoutMs: 1000,
    logger: silentLogger,
  });
  const seen: string[] = [];
  t.on("health", (h) => seen.push(h));
  try {
    await t.connect();
    await waitFor(() => t.status().health === "ok", { timeoutMs: 30_000, description: "health ok" });
    c.node("n2").pause();
    c.node("n3").pause();
    await waitFor(() => t.status().degraded, { timeoutMs: 30_000, description: "degraded without quorum" });
    expect(["no-quorum", "leader-election"]).toContain(t.status().health);
    expect(t.status().state).toBe("connected");
    c.node("n2").resume();
    c.node("n3").resume();
    await waitFor(() => t.status().health === "ok", {
      timeoutMs: 60_000,
      description: "ok after the resume",
    });
    log(`health transitions: ${seen.join(" -> ")}`);
  } finally {
    c.node("n2").resume();
    c.node("n3").resume();
    await t.close();
  }
});
