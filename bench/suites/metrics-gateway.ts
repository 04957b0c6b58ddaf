/**
 * The whole-gateway part of `npm run bench -- metrics`: the example gateway of examples/compose (a
 * replica, a queue worker, the config store) in one process, with and without the metrics and the
 * collector, idle and under a steady load, against one real PocketBase set up as `nxs-sync setup`
 * would (every collection and hook piece). Children bundled by esbuild and run on plain node.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { configCollections, configHookPiece } from "@nxs-sync/config/pocketbase";
import { metricsCollections, metricsHookPiece } from "@nxs-sync/metrics/pocketbase";
import { createNxsCollectionRegistry, ensureNode, ensureSchema, NodeRole } from "@nxs-sync/pocketbase";
import { queueCollections, queueHookPiece } from "@nxs-sync/queue/pocketbase";
import { type ProcessPocketBase, startPocketBase } from "@nxs-sync/testing";
// @ts-expect-error: a plain JavaScript module of the scripts (no declarations)
import { bundleForNode } from "../../scripts/bundle-node.mjs";
import type { BenchCase } from "../lib/types.js";

const entry = fileURLToPath(new URL("./metrics-gateway-child.ts", import.meta.url));
const account = {
  id: "benchgatewaynd1",
  email: "gw@gateway.bench",
  password: "pw-bench-gateway-1",
  role: NodeRole.Gateway,
};

/**
 * The memory settings the deployments give a gateway (examples/compose, examples/k3s): V8's
 * size-optimizing mode, a 1 MiB young generation and two glibc malloc arenas. `NXS_BENCH_GATEWAY_NODE_FLAGS` replaces the flags.
 */
export const DEPLOYED_NODE_FLAGS = ["--optimize-for-size", "--max-semi-space-size=1"] as const;
export const DEPLOYED_ENV = { MALLOC_ARENA_MAX: "2" } as const;

const nodeFlags = (): string[] =>
  process.env.NXS_BENCH_GATEWAY_NODE_FLAGS === undefined
    ? [...DEPLOYED_NODE_FLAGS]
    : process.env.NXS_BENCH_GATEWAY_NODE_FLAGS.split(" ").filter(Boolean);

/** How a child runs: as deployed, or with Node's defaults (no flags, glibc's default arenas). */
type Tuning = "deployed" | "defaults";

interface GatewayFigures {
  readonly idleCpu: number;
  readonly idleRss: number;
  readonly idleAnon: number;
  readonly loadCpu: number;
  readonly loadRss: number;
  readonly loadAnon: number;
  readonly ops: number;
  readonly failed: number;
}

function runGateway(
  file: string,
  mode: "plain" | "metrics",
  url: string,
  idleS: number,
  loadS: number,
  tuning: Tuning = "deployed",
) {
  const { MALLOC_ARENA_MAX: _inherited, ...parentEnv } = process.env;
  return new Promise<GatewayFigures>((resolve, reject) => {
    execFile(
      process.execPath,
      [...(tuning === "deployed" ? nodeFlags() : []), file, mode, url, String(idleS), String(loadS)],
      {
        env: {
          ...parentEnv,
          ...(tuning === "deployed" ? DEPLOYED_ENV : {}),
          NXS_BENCH_EMAIL: account.email,
          NXS_BENCH_PASSWORD: account.password,
          NXS_BENCH_NODE: account.id,
        },
        timeout: (idleS + loadS + 90) * 1000,
      },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`gateway child ${mode}: ${err.message}\n${stderr}`));
        const m =
          /idleCpu=([\d.]+) idleRss=([\d.]+) idleAnon=([\d.]+) loadCpu=([\d.]+) loadRss=([\d.]+) loadAnon=([\d.]+) ops=(\d+) failed=(\d+)/.exec(
            stdout,
          );
        if (!m) return reject(new Error(`gateway child printed no figure:\n${stdout}\n${stderr}`));
        const [idleCpu, idleRss, idleAnon, loadCpu, loadRss, loadAnon, ops, failed] = m
          .slice(1)
          .map(Number) as number[];
        resolve({
          idleCpu: idleCpu ?? 0,
          idleRss: idleRss ?? 0,
          idleAnon: idleAnon ?? 0,
          loadCpu: loadCpu ?? 0,
          loadRss: loadRss ?? 0,
          loadAnon: loadAnon ?? 0,
          ops: ops ?? 0,
          failed: failed ?? 0,
        });
      },
    );
  });
}

/**
 * The whole-gateway cases: three children one after the other on a server of their own (the
 * gateway alone, then with the metrics and the collector, both with the deployments' memory
 * settings; then the latter with Node's defaults), each idle then under load.
 * @param servers - Where the started server is recorded (torn down by the suite).
 * @param quick - Shorter phases.
 * @returns The cases (one measurement each: the runner repeats the closures, which return the figures taken once).
 */
export async function gatewayCases(servers: ProcessPocketBase[], quick: boolean): Promise<BenchCase[]> {
  const registry = createNxsCollectionRegistry()
    .register(...queueCollections(), ...configCollections(), ...metricsCollections())
    .registerHooks(queueHookPiece(), configHookPiece(), metricsHookPiece());
  const server = await startPocketBase({
    name: "bench-metrics-gateway",
    hookFiles: registry.hooks().map((p) => ({ file: p.file, source: p.source })),
  });
  servers.push(server);
  await ensureSchema(server.client(), { collections: registry, rateLimits: false });
  await ensureNode(server.client(), account);
  const dir = mkdtempSync(join(tmpdir(), "nxs-bench-gw-bundle-"));
  const file = join(dir, "gateway-child.mjs");
  try {
    await bundleForNode(entry, file);
    const idleS = quick ? 20 : 60;
    const loadS = quick ? 20 : 60;
    // One after the other: the two would share the server and the 2 cores.
    const plain = await runGateway(file, "plain", server.url, idleS, loadS);
    const withMetrics = await runGateway(file, "metrics", server.url, idleS, loadS);
    const defaults = await runGateway(file, "metrics", server.url, idleS, loadS, "defaults");
    const note = (what: string) =>
      `${what}; the example gateway of examples/compose (a notes replica, an echo queue with its worker, the config store) on plain node (one minified esbuild bundle, as in the gateway image), one local PocketBase; "gateway": without metrics, nxs: plus createMetrics and the collector at the default intervals (with a replica probe and a queue depth probe). Idle ${idleS} s after a 5 s warm-up, then ${loadS} s of load: 10 note writes/s (each awaited until acknowledged), 2 jobs/s worked by its own worker, 10 config reads/s (${withMetrics.ops} writes, ${withMetrics.failed} failed). Measured once per run of the suite (the children run one after the other). As deployed: node flags ${nodeFlags().join(" ") || "(none)"}, MALLOC_ARENA_MAX=${DEPLOYED_ENV.MALLOC_ARENA_MAX}; "nxs-node-defaults": the metrics child with Node's and glibc's defaults`;
    return [
      {
        metric: "gateway-idle-rss-mib",
        unit: "MiB",
        better: "lower",
        subjects: {
          nxs: () => withMetrics.idleRss,
          gateway: () => plain.idleRss,
          "nxs-node-defaults": () => defaults.idleRss,
        },
        note: note("resident set at the end of the idle phase"),
      },
      {
        metric: "gateway-idle-anon-mib",
        unit: "MiB",
        better: "lower",
        subjects: {
          nxs: () => withMetrics.idleAnon,
          gateway: () => plain.idleAnon,
          "nxs-node-defaults": () => defaults.idleAnon,
        },
        note: note(
          "anonymous resident memory at the end of the idle phase (RssAnon of /proc/self/status: the process's own pages; the rest of the RSS is file pages, mostly the mapped node binary, shared and reclaimable)",
        ),
      },
      {
        metric: "gateway-idle-cpu-percent-of-core",
        unit: "%",
        better: "lower",
        subjects: { nxs: () => withMetrics.idleCpu, gateway: () => plain.idleCpu },
        note: note("CPU share of one core over the idle phase"),
      },
      {
        metric: "gateway-load-rss-mib",
        unit: "MiB",
        better: "lower",
        subjects: {
          nxs: () => withMetrics.loadRss,
          gateway: () => plain.loadRss,
          "nxs-node-defaults": () => defaults.loadRss,
        },
        note: note("resident set at the end of the load phase"),
      },
      {
        metric: "gateway-load-anon-mib",
        unit: "MiB",
        better: "lower",
        subjects: { nxs: () => withMetrics.loadAnon, gateway: () => plain.loadAnon },
        note: note("anonymous resident memory at the end of the load phase"),
      },
      {
        metric: "gateway-load-cpu-percent-of-core",
        unit: "%",
        better: "lower",
        subjects: {
          nxs: () => withMetrics.loadCpu,
          gateway: () => plain.loadCpu,
          "nxs-node-defaults": () => defaults.loadCpu,
        },
        note: note("CPU share of one core over the load phase"),
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
