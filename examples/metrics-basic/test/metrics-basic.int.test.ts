import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const root = fileURLToPath(new URL("../../..", import.meta.url));

// The example is documentation that runs (docs/metrics.md and the README link it). It starts its
// own two PocketBase servers and the replicator, as `npm start` does.
it("npm start -w examples/metrics-basic: record, flush, roll up, read from the other server, scrape", async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--import", "tsx", "examples/metrics-basic/src/main.ts"],
    {
      cwd: root,
      timeout: 110_000,
    },
  );
  expect(stdout).toMatch(/\[metrics\] done/);
  const line = stdout.split("\n").find((l) => l.startsWith("[metrics] summary "));
  const summary = JSON.parse(line?.slice("[metrics] summary ".length) ?? "null");
  expect(summary.recorded).toBeGreaterThan(50);
  // Every flushed request is on the other server; the last partial flush may still be on its way.
  expect(summary.requestsOnOtherServer).toBeGreaterThan(0);
  expect(summary.requestsOnOtherServer).toBeLessThanOrEqual(summary.recorded);
  expect(summary.rollupWindowsOnOtherServer).toBeGreaterThan(0);
  expect(summary.promLines).toBeGreaterThanOrEqual(3); // openai 200, openai 429, anthropic 200 (and 429)
  expect(summary.memorySeriesOnOtherServer).toBe(1);
  expect(["cgroup", "host"]).toContain(summary.memoryBasis);
});
