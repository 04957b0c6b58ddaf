import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const root = fileURLToPath(new URL("../../..", import.meta.url));

// The demo is documentation that runs: it must keep working as the packages change.
it("npm run demo: two nodes, a primary crash, convergence", async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--import", "tsx", "examples/two-nodes/src/main.ts"],
    {
      cwd: root,
      timeout: 110_000,
    },
  );
  expect(stdout).toMatch(/\[demo\] converged: both servers hold all \d+ changes/);
  expect(stdout).toMatch(/\[demo\] done/);
});
