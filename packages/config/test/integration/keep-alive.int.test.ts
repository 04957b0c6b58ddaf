import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { closedPort, here } from "./pocketbase-servers.js";

/**
 * A plain script awaiting a store's `start()` (or a rollout's bake) is not cut short by Node exiting
 * (the store's timers are unref'd: a pending call holds the process), and a script whose started
 * store is idle exits on its own. Each case is a child process (`node --import tsx`).
 */
const run = promisify(execFile);
let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nxs-config-keep-alive-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function script(mode: string, ...endpoints: string[]): Promise<{ stdout: string; code: number }> {
  try {
    const { stdout } = await run(
      process.execPath,
      ["--import", "tsx", here("./keep-alive-script.ts"), mode, join(dir, `${mode}.json`), ...endpoints],
      { timeout: 60_000 },
    );
    return { stdout: stdout.trim(), code: 0 };
  } catch (e) {
    const err = e as { stdout?: string; code?: number; stderr?: string };
    return { stdout: `${err.stdout ?? ""}${err.stderr ?? ""}`.trim(), code: err.code ?? -1 };
  }
}

it("a script whose servers refuse connections boots from its cache file instead of exiting mid-start", async () => {
  const ports = [await closedPort(), await closedPort()];
  expect(await script("closed-ports", ...ports.map((p) => `http://127.0.0.1:${p}`))).toEqual({
    stdout: "cache",
    code: 0,
  });
});

it("a script whose server hangs waits out the boot bound and boots from its cache file", async () => {
  expect(await script("hang")).toEqual({ stdout: "cache", code: 0 });
});

it("a script awaiting a rollout's bake sees it end", async () => {
  expect(await script("bake")).toEqual({ stdout: "promoted", code: 0 });
});

it("a script whose started store is idle exits on its own", async () => {
  expect(await script("idle")).toEqual({ stdout: "started", code: 0 });
});
