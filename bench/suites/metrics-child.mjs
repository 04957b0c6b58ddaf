// A child process of `npm run bench -- metrics` (plain JavaScript, so that plain node runs it on
// the built packages without a TypeScript loader in the figures): `collector <url> <seconds>` runs
// a node's metrics (flush every 10 s to the PocketBase at `url`, maintenance every minute) and the
// node collector at the default interval; `idle <url> <seconds>` loads the same modules, makes one
// request (as any gateway does: it loads Node's HTTP client) and waits. Prints the CPU share of one
// core after a 5 s warm-up, and the resident set at the end and at its peak.
import { silentLogger } from "@nxs-sync/core";
import { createCollector, createMetrics } from "@nxs-sync/metrics";
import { createPocketBaseMetricsClient } from "@nxs-sync/metrics/pocketbase";

const [mode, url, seconds] = process.argv.slice(2);
const auth = { email: process.env.NXS_BENCH_EMAIL ?? "", password: process.env.NXS_BENCH_PASSWORD ?? "" };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const total = Number(seconds) * 1000;
  let stop = async () => {};
  if (mode === "collector") {
    const client = createPocketBaseMetricsClient({ endpoints: [url], auth, logger: silentLogger });
    const metrics = createMetrics({ client, node: "bench-child", logger: silentLogger });
    const collector = createCollector({ metrics, healthUrls: [url] });
    metrics.start();
    collector.start();
    stop = async () => {
      collector.stop();
      await metrics.close();
      client.close();
    };
  } else {
    await (await fetch(`${url}/api/health`)).text();
  }
  await sleep(5_000);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(total - 5_000);
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  const rss = process.memoryUsage().rss;
  await stop();
  const share = ((cpu.user + cpu.system) / 1000 / wall) * 100;
  console.log(
    `cpuPercent=${share.toFixed(4)} rssMiB=${(rss / 2 ** 20).toFixed(2)} maxRssMiB=${(process.resourceUsage().maxRSS / 1024).toFixed(2)}`,
  );
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
