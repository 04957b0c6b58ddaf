import { execFileSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

/** Milliseconds taken by `fn` (awaited). */
export async function timeMs(fn: () => unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Operations per second for `ops` operations done by `fn`. */
export async function opsPerSec(ops: number, fn: () => unknown): Promise<number> {
  const ms = await timeMs(fn);
  return (ops * 1000) / ms;
}

/** Forces a full GC when node runs with --expose-gc (the bench script passes it). */
export function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * Retained memory, in MiB, of what `module`'s export `exportName()` returns, measured in a fresh
 * Node process: JS heap plus external memory (ArrayBuffers and WebAssembly memory) after GC, with
 * the value alive, minus the same before building it.
 */
export function retainedMiBInChild(moduleUrl: string, exportName: string): number {
  const child = fileURLToPath(new URL("./heap-child.ts", import.meta.url));
  const out = execFileSync(
    process.execPath,
    ["--expose-gc", "--import", "tsx", child, moduleUrl, exportName],
    {
      encoding: "utf8",
    },
  );
  const parsed = JSON.parse(out) as { mib: number; alive: boolean };
  if (!parsed.alive) throw new Error(`${exportName} built nothing`);
  return parsed.mib;
}
