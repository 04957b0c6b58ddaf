// A child process of `npm run bench -- metrics` (bundled by esbuild with the sources, run on plain
// node): the whole example gateway of examples/compose (a replica of the notes doc, a queue
// producer and worker, the config store) against the PocketBase at `url`, with (`metrics`) or
// without (`plain`) the metrics and the node collector at their default intervals (the gateway's
// own, `settings.metrics`: with a replica probe and a queue depth probe). After a 5 s
// warm-up it measures `idleS` seconds idle, then `loadS` seconds under a steady load (10 note
// writes a second, each awaited until the server acknowledged it; 2 echo jobs a second, worked by
// its own worker; 10 config reads a second), and prints the CPU share of one core, the resident
// set and its anonymous part at the end of each phase.
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Logger, silentLogger } from "@nxs-sync/core";
import { startGateway } from "../../examples/compose/src/gateway.js";

const [mode, url, idleArg, loadArg] = process.argv.slice(2);
const email = process.env.NXS_BENCH_EMAIL ?? "";
const password = process.env.NXS_BENCH_PASSWORD ?? "";
const nodeId = process.env.NXS_BENCH_NODE ?? "";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet: Logger = { ...silentLogger, error: (m: string) => process.stderr.write(`gateway: ${m}\n`) };

/** The process's anonymous resident memory (MiB): its own pages, without the mapped node binary and libraries. */
function anonMiB(): number {
  try {
    const m = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

function phase(): () => { cpuPercent: number; rssMiB: number; anonMiB: number } {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    const cpu = process.cpuUsage(cpu0);
    const wall = performance.now() - t0;
    return {
      cpuPercent: ((cpu.user + cpu.system) / 1000 / wall) * 100,
      rssMiB: process.memoryUsage().rss / 2 ** 20,
      anonMiB: anonMiB(),
    };
  };
}

async function main(): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), "nxs-bench-gw-"));
  const gw = await startGateway(
    {
      endpoints: [url ?? ""],
      nodeId,
      email,
      password,
      name: "bench-gw",
      stateDir,
      port: 0,
      configEnv: "bench",
      // The gateway's own metrics: createMetrics and the collector with the replica and queue probes.
      metrics: mode === "metrics",
    },
    quiet,
  );
  await sleep(5_000);
  let end = phase();
  await sleep(Number(idleArg) * 1000);
  const idle = end();

  end = phase();
  const until = Date.now() + Number(loadArg) * 1000;
  let n = 0;
  let failed = 0;
  const inFlight = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    const q = p.catch(() => {
      failed += 1;
    });
    inFlight.add(q);
    void q.finally(() => inFlight.delete(q));
  };
  while (Date.now() < until) {
    n += 1;
    track(gw.setNote(`k${n % 50}`, `v${n}`));
    if (n % 5 === 0) track(gw.enqueue(`job ${n}`));
    if (gw.config.version("greeting")) gw.config.get("greeting");
    await sleep(100);
  }
  const load = end();
  await Promise.all(inFlight);
  await gw.close();
  await rm(stateDir, { recursive: true, force: true });
  console.log(
    `idleCpu=${idle.cpuPercent.toFixed(4)} idleRss=${idle.rssMiB.toFixed(2)} idleAnon=${idle.anonMiB.toFixed(2)} loadCpu=${load.cpuPercent.toFixed(4)} loadRss=${load.rssMiB.toFixed(2)} loadAnon=${load.anonMiB.toFixed(2)} ops=${n} failed=${failed}`,
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
