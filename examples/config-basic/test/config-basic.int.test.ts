import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const root = fileURLToPath(new URL("../../..", import.meta.url));

// The example is documentation that runs (docs/config.md and the README link it): it must keep
// working as the package changes. It starts its own PocketBase server, as `npm start` does.
it("npm start -w examples/config-basic: put, invalid, watch, conflict, diff, rollback, export, boot from cache", async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--import", "tsx", "examples/config-basic/src/main.ts"],
    { cwd: root, timeout: 110_000, env: { ...process.env, NXS_CONFIG_KEYS: "" } },
  );
  expect(stdout).toMatch(/\[config\] done/);
  const line = stdout.split("\n").find((l) => l.startsWith("[config] summary "));
  const summary = JSON.parse(line?.slice("[config] summary ".length) ?? "null");
  expect(summary).toMatchObject({
    invalidFields: ["rps", "burst"],
    watched: [2, 3, 4],
    conflict: { expected: 1, current: 2 },
    rollback: { version: 4, rollbackOf: 1 },
    exportHasPlainSecret: false,
    bootSource: "cache",
    bootLimits: { rps: 50, burst: 100 },
  });
  // The patch's order follows the stored value's key order (the server may sort keys): compared as a set.
  expect(summary.diff).toHaveLength(2);
  expect(summary.diff).toEqual(
    expect.arrayContaining([
      { op: "replace", path: "/rps", value: 80 },
      { op: "replace", path: "/burst", value: 200 },
    ]),
  );
  expect(summary.historyApiKey).toMatch(/^\[secret demo-1 [0-9a-f]+\]$/);
  // The secret's plain text appears in no line the example printed (history, diff, export).
  expect(stdout).not.toContain("sk-live-123456");
});
