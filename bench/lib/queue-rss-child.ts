/**
 * Child process of the queue bench's worker-RSS line: `node --import tsx queue-rss-child.ts <lib>
 * <target>` enqueues 2,000 jobs, drains them with one worker (concurrency 10, batched), and prints
 * `maxRssMiB=<peak resident set in MiB>`.
 */
import { createBullMqDriver, createPgBossDriver, type QueueDriver } from "../suites/queue-drivers.js";
import { nxsDriverOn } from "../suites/queue-nxs.js";

const [lib, target] = process.argv.slice(2);
let driver: QueueDriver;
if (lib === "nxs") {
  driver = nxsDriverOn(target as string, {
    email: process.env.NXS_BENCH_EMAIL ?? "",
    password: process.env.NXS_BENCH_PASSWORD ?? "",
  });
} else if (lib === "pg-boss") driver = await createPgBossDriver(target as string);
else if (lib === "bullmq") driver = await createBullMqDriver(Number(target));
else throw new Error(`unknown library ${lib}`);
await driver.drain(2_000, 10, true);
await driver.close();
console.log(`maxRssMiB=${(process.resourceUsage().maxRSS / 1024).toFixed(1)}`);
process.exit(0);
