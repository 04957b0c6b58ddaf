import { SingleBar } from "cli-progress";
import type { CommandEnv } from "./context.js";

/** A progress bar on stderr (a no-op unless stderr is a terminal or `--progress` is given). */
export interface Progress {
  start(total: number, label: string): void;
  increment(by?: number): void;
  stop(): void;
}

/**
 * The progress bar of long work (downloads, uploads, exports), drawn on stderr.
 * @param env - The command's env (`progress`, `stderr`).
 * @returns The bar.
 */
export function createProgress(env: Pick<CommandEnv, "progress" | "stderr">): Progress {
  if (!env.progress && env.stderr.isTTY !== true) {
    return { start() {}, increment() {}, stop() {} };
  }
  const tty = env.stderr.isTTY === true;
  const bar = new SingleBar({
    stream: env.stderr as unknown as NodeJS.WritableStream,
    format: "{label} [{bar}] {percentage}% {value}/{total}",
    noTTYOutput: !tty,
    notTTYSchedule: 1000,
    hideCursor: tty,
    clearOnComplete: false,
  });
  let running = false;
  return {
    start(total, label) {
      bar.start(Math.max(total, 1), 0, { label });
      running = true;
    },
    increment(by = 1) {
      if (running) bar.increment(by);
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}
