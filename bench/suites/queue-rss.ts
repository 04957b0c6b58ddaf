/**
 * Worker RSS for `npm run bench -- queue`: a child process per measurement (bench/lib/queue-rss-child.ts)
 * enqueues 2,000 jobs and drains them with one worker of concurrency 10 (batched), then reports its
 * peak resident set (`process.resourceUsage().maxRSS`). Every library pays the same Node + tsx
 * start-up in that figure.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const child = fileURLToPath(new URL("../lib/queue-rss-child.ts", import.meta.url));

/**
 * Runs one child and reads its peak RSS.
 * @param lib - `nxs`, `pg-boss` or `bullmq`.
 * @param target - The server: a PocketBase URL, a PostgreSQL connection string, or a Redis port.
 * @param auth - The gateway account (nxs only).
 * @returns Peak RSS in MiB.
 */
export function workerRss(
  lib: "nxs" | "pg-boss" | "bullmq",
  target: string,
  auth?: { readonly email: string; readonly password: string },
): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", child, lib, target],
      {
        env: { ...process.env, NXS_BENCH_EMAIL: auth?.email ?? "", NXS_BENCH_PASSWORD: auth?.password ?? "" },
        timeout: 300_000,
      },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`${lib} rss child: ${err.message}\n${stderr}`));
        const m = /maxRssMiB=([\d.]+)/.exec(stdout);
        if (!m) return reject(new Error(`${lib} rss child printed no figure:\n${stdout}\n${stderr}`));
        resolve(Number(m[1]));
      },
    );
  });
}
