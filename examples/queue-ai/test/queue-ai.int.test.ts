import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const root = fileURLToPath(new URL("../../..", import.meta.url));

// The example is documentation that runs (docs/queue.md links it). It starts its own PocketBase
// server, as `npm start` does.
it("npm start -w examples/queue-ai: every call completes, no provider limit is passed, a 429 pauses only its group", async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--import", "tsx", "examples/queue-ai/src/main.ts"],
    {
      cwd: root,
      timeout: 110_000,
    },
  );
  expect(stdout).toMatch(/\[queue-ai\] done/);
  const line = stdout.split("\n").find((l) => l.startsWith("[queue-ai] summary "));
  const summary = JSON.parse(line?.slice("[queue-ai] summary ".length) ?? "null");
  expect(summary.completed).toBe(30);
  for (const name of ["openai", "anthropic"]) {
    const p = summary.providers[name];
    // The fleet-wide limits kept both gateways inside the provider's own limits: it never had to refuse.
    expect(p.throttled, `${name} over-limit 429s`).toBe(0);
    expect(p.peakConcurrency).toBeLessThanOrEqual(p.limits.concurrency);
    expect(p.peakTokens).toBeLessThanOrEqual(p.limits.tokensPerWindow);
  }
  expect(summary.providers.openai.served).toBe(20);
  expect(summary.providers.anthropic.served).toBe(10);
  // The scripted incident: one 429, answered by a pause of the anthropic group only.
  expect(summary.providers.anthropic.incidents).toBe(1);
  expect(stdout).toMatch(/429 from anthropic, pausing its group for 400 ms/);
  const anthropic = summary.flows.find((f: { group: string }) => f.group === "anthropic");
  expect(anthropic.pausedUntil).toBeGreaterThan(0);
  expect(summary.flows.find((f: { group: string }) => f.group === "openai").pausedUntil).toBe(0);
}, 120_000);
