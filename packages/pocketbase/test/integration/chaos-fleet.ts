/**
 * The PocketBase fleet of the chaos suite: two servers (primary, secondary) with the replicator
 * between them, two or three gateway processes (each: endpoints [own server, other server], file
 * storage), and a TCP proxy on every link (gateway → server, replicator → server) for the link
 * faults. `runChaosSeed` builds it, runs one seed with the engine of `@nxs-sync/testing`
 * (`runChaos`) and tears it down. Used by chaos.int.test.ts and `npm run chaos`.
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createDoc, createReplica, silentLogger } from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import {
  type ChaosDocState,
  type ChaosGateway,
  type ChaosLink,
  type ChaosReport,
  type ChaosServer,
  chaosInitialState,
  createChaosModel,
  createEventTally,
  type FaultKind,
  type ObservedState,
  type PocketBaseServer,
  runChaos,
  startChaosGateway,
  startCluster,
  startTcpProxy,
} from "@nxs-sync/testing";
import { createPocketBaseTransport, createReplicator, ensureSchema, NodeRole } from "../../src/index.js";
import type { ChaosGatewayConfig } from "./chaos-gateway.js";
import { chaosSchema } from "./chaos-schema.js";
import { makeNode, provision, recordId } from "./helpers.js";

const WORKER = fileURLToPath(new URL("./chaos-gateway.ts", import.meta.url));
const REPO_ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

/** Options of {@link runChaosSeed}. */
export interface ChaosSeedOptions {
  readonly seed: number;
  /** How long the gateways write under faults (default 60). */
  readonly seconds?: number;
  /** 2 or 3 gateways (default 3). */
  readonly gateways?: 2 | 3;
  /** Schedule gateway restarts on empty storage (default true). */
  readonly emptyRestarts?: boolean;
  /** Fault kinds never to draw (default none). */
  readonly exclude?: readonly FaultKind[];
  /** Each gateway writes one op every this many ms (default 100). */
  readonly writeIntervalMs?: number;
  /** Bound of the wait for convergence after the heal (default 30 000). */
  readonly convergeTimeoutMs?: number;
  /** Servers to use, `[primary, secondary]` (default: a cluster of its own, destroyed at the end). */
  readonly servers?: readonly [PocketBaseServer, PocketBaseServer];
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

/**
 * The command that reruns a seed.
 * @param options - The seed's options.
 * @returns e.g. `npm run chaos -- --seed 7 --seconds 60`.
 */
export function chaosRerunCommand(options: ChaosSeedOptions): string {
  return [
    `npm run chaos -- --seed ${options.seed} --seconds ${options.seconds ?? 60}`,
    options.gateways === 2 ? " --gateways 2" : "",
    options.emptyRestarts === false ? " --no-empty-restarts" : "",
    options.exclude?.length ? ` --without ${options.exclude.join(",")}` : "",
  ].join("");
}

/** Waits for `promise` at most `ms`; resolves to false when time ran out. */
const within = (promise: Promise<unknown>, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });

/**
 * Runs one chaos seed on a fleet of real processes and returns the report.
 * @param options - Seed, length, fleet size, servers.
 * @returns The report (`passed` is the verdict; `formatChaosReport` prints it).
 * @throws HarnessError when the fleet cannot be started.
 */
export async function runChaosSeed(options: ChaosSeedOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => {});
  const names = options.gateways === 2 ? ["g1", "g2"] : ["g1", "g2", "g3"];
  const own = options.servers === undefined ? await startCluster({ nodes: 2, batch: false }) : undefined;
  const pair = options.servers ?? own?.nodes;
  const [primary, secondary] = [pair?.[0], pair?.[1]];
  if (!primary || !secondary) throw new Error("runChaosSeed needs two servers");
  const storageRoot = mkdtempSync(
    join(process.env.NXS_PB_TEST_DATA_DIR ?? tmpdir(), `nxs-chaos-${options.seed}-`),
  );
  const teardown: (() => Promise<unknown>)[] = [];
  let report: ChaosReport | undefined;
  try {
    const nodes = names.map((n) => makeNode(`chaos-${n}`));
    const repl = makeNode("chaos-repl", NodeRole.Replicator);
    const observer = makeNode("chaos-obs");
    for (const s of [primary, secondary]) {
      await ensureSchema(s.client());
      await provision(s, [...nodes, repl, observer]);
    }
    const serverNames = ["primary", "secondary"] as const;
    const serverOf = { primary, secondary };
    const servers: ChaosServer[] = serverNames.map((name) => {
      const s = serverOf[name];
      return {
        name,
        get stopped() {
          return s.stopped;
        },
        kill: () => s.kill(),
        restart: () => s.restart(),
        pause: () => s.pause(),
        resume: () => s.resume(),
      };
    });
    const links: ChaosLink[] = [];
    const link = async (from: string, to: (typeof serverNames)[number]): Promise<string> => {
      const proxy = await startTcpProxy(serverOf[to].url);
      teardown.push(() => proxy.close());
      links.push({ name: `${from}>${to}`, proxy });
      return proxy.url;
    };

    const events = createEventTally();
    const replicator = createReplicator({
      servers: [
        { url: await link("repl", "primary"), auth: repl.auth },
        { url: await link("repl", "secondary"), auth: repl.auth },
      ],
      logger: silentLogger,
      onError: (e) => events.add(`replicator ${(e as { code?: string }).code ?? "error"}`, e.message),
    });
    teardown.push(() => replicator.stop());
    await replicator.start();

    const docId = `chaos-${options.seed}-${recordId().slice(0, 6)}`;
    const model = createChaosModel(names);
    const gateways: ChaosGateway[] = [];
    const starting = names.map(async (name, i) => {
      const node = nodes[i] ?? nodes[0];
      if (!node) throw new Error("no node");
      // Gateways alternate between the servers: g1 and g3 on the primary, g2 on the secondary.
      const home = i % 2 === 0 ? "primary" : "secondary";
      const away = home === "primary" ? "secondary" : "primary";
      const endpoints = [await link(name, home), await link(name, away)];
      const gateway = await startChaosGateway({
        name,
        script: WORKER,
        cwd: REPO_ROOT,
        storageRoot,
        observer: model,
        onEvent: (g, e) => events.add(`${g} ${e.kind} ${e.code}`, e.detail),
        config: (storageDir): ChaosGatewayConfig => ({
          name,
          gateways: names,
          docId,
          replicaId: `${node.id}.${name}`,
          endpoints,
          auth: node.auth,
          storageDir,
          pollMs: 10_000,
        }),
      });
      gateways.push(gateway);
      teardown.push(() => gateway.stop());
    });
    await Promise.all(starting);
    gateways.sort((a, b) => a.name.localeCompare(b.name));

    const rebuild = async (): Promise<ObservedState[]> =>
      Promise.all(
        serverNames.map(async (name, i) => {
          const doc = createDoc({
            schema: chaosSchema(names),
            docId,
            replicaId: `${observer.id}.r${i}`,
            clock: Date.now,
            initial: chaosInitialState(names),
          });
          const replica = createReplica({
            doc,
            transport: createPocketBaseTransport({
              endpoints: [serverOf[name].url],
              auth: observer.auth,
              docId,
              origin: `${observer.id}.r${i}`,
              logger: silentLogger,
            }),
            storage: createMemoryStorage(),
            scheduler: createTimerScheduler(),
            logger: silentLogger,
          });
          try {
            await replica.start();
            // A server that lacks a change leaves a gap that never fills: take what it holds then.
            await within(replica.synced(), 10_000);
            return { name, state: doc.get() as ChaosDocState };
          } finally {
            await replica.stop();
          }
        }),
      );

    report = await runChaos({
      fleet: { servers, gateways, links, rebuild },
      model,
      events,
      seed: options.seed,
      durationMs: (options.seconds ?? 60) * 1000,
      emptyRestarts: options.emptyRestarts ?? true,
      ...(options.exclude === undefined ? {} : { exclude: options.exclude }),
      writeIntervalMs: options.writeIntervalMs ?? 100,
      convergeTimeoutMs: options.convergeTimeoutMs ?? 30_000,
      rerun: chaosRerunCommand(options),
      log,
    });
    return report;
  } finally {
    for (const step of teardown.reverse()) await step().catch(() => undefined);
    if (report?.passed === false) log(`kept the gateways' storage in ${storageRoot}`);
    else rmSync(storageRoot, { recursive: true, force: true });
    await own?.stop({ keepData: report?.passed === false });
  }
}
